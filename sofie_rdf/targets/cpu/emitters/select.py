"""CPU emitters of the operators in :mod:`sofie_rdf.ops.select`."""

from __future__ import annotations

import numpy as np
import sympy

from ....ir.dims import Dim
from ....ops import select as select_ops
from ....ops.select import _axis_view
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


def _count_statement(ctx: NodeContext, dim: Dim, expr: str) -> str:
    """``dim = expr;`` and the reservations of the outputs it sizes, when ``dim`` is a run-time dim."""
    reserve = [ctx.reserve(i) for i in range(len(ctx.outputs)) if ctx.outputs[i] is not None]
    if not any(reserve):
        return ""
    return "\n".join([f"{ctx.dim(dim)} = {expr};"] + [r for r in reserve if r])


@emits(select_ops.NonZero)
class NonZeroEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.select.NonZero`."""

    kernels = ("select",)

    def emit(self, ctx: NodeContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        count, n = ctx.dim(y.shape[1]), ctx.dim(x.size)
        shape = ctx.array("shape", x.shape)
        lines = [f"{count} = kernels::count_nonzero({ctx.x(0)}, {n});" if ctx.reserve(0) else "",
                 ctx.reserve(0),
                 f"kernels::nonzero({ctx.x(0)}, {shape}, {x.rank}, {n}, {count}, {ctx.y(0)});"]
        return "\n".join(line for line in lines if line)


@emits(select_ops.Range)
class RangeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.select.Range`."""

    kernels = ("select",)

    def emit(self, ctx: NodeContext) -> str:
        t = ctx.ctype(ctx.outputs[0].dtype)
        count = ctx.dim(ctx.outputs[0].shape[0])
        start, limit, delta = (self.scalar_cpp(ctx, i) for i in range(3))
        fill = f"for (size_t i = 0; i < {count}; ++i)\n   {ctx.y(0)}[i] = {start} + static_cast<{t}>(i) * {delta};"
        if not self.op.at_run_time(ctx.inputs):
            return fill
        return f"{count} = kernels::range_count<{t}>({start}, {limit}, {delta});\n{ctx.reserve(0)}\n{fill}"

    def scalar_cpp(self, ctx: NodeContext, i: int) -> str:
        """C++ value of start, limit or delta: read at run time, or the value known when generating."""
        t = ctx.inputs[i]
        if t.value is None:
            return f"{ctx.x(i)}[0]"
        v = np.asarray(t.value).reshape(-1)[0]
        if isinstance(v, sympy.Expr):
            return f"static_cast<{ctx.ctype(t.dtype)}>({ctx.dim(v)})"
        return ctx.literal(v, t.dtype)


@emits(select_ops.Compress)
class CompressEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.select.Compress`."""

    kernels = ("select",)

    def emit(self, ctx: NodeContext) -> str:
        x, cond = ctx.inputs[0], ctx.inputs[1]
        axis, outer, n, inner = _axis_view(self, x.shape)
        count = _count_statement(ctx, ctx.outputs[0].shape[axis or 0],
                                 f"kernels::compress_count({ctx.x(1)}, {ctx.dim(cond.shape[0])}, {ctx.dim(n)})")
        call = (f"kernels::compress({ctx.x(0)}, {ctx.x(1)}, {ctx.dim(cond.shape[0])}, {ctx.dim(outer)}, {ctx.dim(n)}, "
                f"{ctx.dim(inner)}, {ctx.y(0)});")
        return f"{count}\n{call}" if count else call


@emits(select_ops.Unique)
class UniqueEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.select.Unique`."""

    kernels = ("select",)

    def emit(self, ctx: NodeContext) -> str:
        axis, outer, n, inner = _axis_view(self, ctx.inputs[0].shape)
        view = f"{ctx.dim(outer)}, {ctx.dim(n)}, {ctx.dim(inner)}"
        count = ctx.outputs[0].shape[axis or 0]
        outputs = ", ".join(ctx.y(i) if i < len(ctx.outputs) else "nullptr" for i in range(4))
        sorted_ = "true" if self.attrs["sorted"] else "false"
        return "\n".join([
            _count_statement(ctx, count, f"kernels::unique_slices({ctx.x(0)}, {view}, {sorted_}, {ctx.w(0)})"),
            f"kernels::unique_write({ctx.x(0)}, {view}, {ctx.dim(count)}, {ctx.w(0)}, {outputs});"])


@emits(select_ops.NonMaxSuppression)
class NonMaxSuppressionEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.select.NonMaxSuppression`."""

    kernels = ("select",)

    def emit(self, ctx: NodeContext) -> str:
        batches, n, _ = ctx.inputs[0].shape
        sizes = ", ".join(ctx.dim(d) for d in (batches, ctx.inputs[1].shape[1], n))
        optional = ", ".join(ctx.x(i) if i < len(ctx.inputs) and ctx.inputs[i] is not None else "nullptr" for i in (2, 3, 4))
        center = "true" if self.attrs["center_point_box"] else "false"
        count = ctx.dim(ctx.outputs[0].shape[0])
        return "\n".join([
            _count_statement(ctx, ctx.outputs[0].shape[0], f"kernels::nms({ctx.x(0)}, {ctx.x(1)}, {sizes}, {optional}, "
                                                           f"{center}, {ctx.w(0)}, {ctx.w(1)})"),
            f"std::copy({ctx.w(0)}, {ctx.w(0)} + 3 * {count}, {ctx.y(0)});"])
