"""CPU emitters of the operators in :mod:`sofie_rdf.ops.reduce`."""

from __future__ import annotations

from ....ir.dtypes import kind
from ....ops import reduce as reduce_ops
from ....ops.base import coalesce, contiguous_strides
from ....ops.reduce import _axis_view, block_view
from ..context import NodeContext
from ..emitter import Emitter, emits


@emits(reduce_ops._Reduce)
class ReduceEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.reduce._Reduce`."""

    kernels = ("reduce",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        axes = self.op.reduced_axes(x.rank, self.op.axes_value(ctx.inputs))
        fold = self.op.reduction.lambdas(ctx, x.dtype)
        view = block_view(x.shape, axes)
        if view is not None:
            sizes = ", ".join(ctx.dim(d) for d in view)
            return f"kernels::reduce({ctx.x(0)}, {ctx.y(0)}, {sizes},\n   {fold});"
        strides = contiguous_strides(x.shape)
        args = []
        for label, part in (("kept", [i for i in range(x.rank) if i not in axes]), ("reduced", axes)):
            shape, (st,) = coalesce([x.shape[i] for i in part], [strides[i] for i in part])
            args += [ctx.array(f"{label}_shape", shape), ctx.array(f"{label}_strides", st, "std::ptrdiff_t"), str(len(shape))]
        return f"kernels::reduce_strided({ctx.x(0)}, {ctx.y(0)}, {', '.join(args)},\n   {fold});"


@emits(reduce_ops._ArgReduce)
class ArgReduceEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.reduce._ArgReduce`."""

    kernels = ("reduce",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        sizes = ", ".join(ctx.dim(d) for d in _axis_view(x.shape, self.op.axis(x.shape)))
        maximum = "true" if self.op.maximum else "false"
        last = "true" if self.attrs.get("select_last_index", 0) else "false"
        return f"kernels::arg_reduce({ctx.x(0)}, {ctx.y(0)}, {sizes}, {maximum}, {last});"


@emits(reduce_ops._Cumulative)
class CumulativeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.reduce._Cumulative`."""

    kernels = ("reduce",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        sizes = ", ".join(ctx.dim(d) for d in _axis_view(x.shape, self.op.axis(x.rank, self.op.value_of(ctx.inputs, 1, "axis"))))
        acc = "double" if kind(x.dtype) == "f" else "uint64_t"
        flags = ", ".join("true" if self.attrs[k] else "false" for k in ("exclusive", "reverse"))
        combine = f"[](const {acc} a, const {acc} b) -> {acc} {{ return {self.op.combine}; }}"
        return f"kernels::cumulate<{acc}>({ctx.x(0)}, {ctx.y(0)}, {sizes}, {flags}, {acc}({self.op.identity}), {combine});"
