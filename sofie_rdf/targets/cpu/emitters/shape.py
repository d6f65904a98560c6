"""CPU emitters of the operators in :mod:`sofie_rdf.ops.shape`."""

from __future__ import annotations

from ....ops import shape as shape_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(shape_ops.ViewOp)
class ViewOpEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.ViewOp`."""

    def emit(self, ctx: NodeContext) -> str:
        return ""


def assign_dims(ctx: NodeContext, dims: tuple, computed: str) -> list[str]:
    """Statements setting the run-time dims ``dims`` from the C++ array ``computed``."""
    return [f"{ctx.dim(d)} = {computed}[{i}];" for i, d in enumerate(dims)]


@emits(shape_ops.Reshape)
class ReshapeEmitter(ViewOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.Reshape`: none (a view), but the dims of a target shape
    read at run time, computed and checked."""

    def emit(self, ctx: NodeContext) -> str:
        if not self.op.at_run_time(ctx.inputs):
            return ""
        x, y = ctx.inputs[0], ctx.outputs[0]
        in_dims = ctx.array("in_dims", x.shape)
        allow_zero = str(bool(self.attrs.get("allowzero", 0))).lower()
        ctx.declarations.append(f"size_t out_dims_[{y.rank}];")
        call = (f"kernels::value_reshape({ctx.x(1)}, {y.rank}, {in_dims}, {x.rank}, {allow_zero}, out_dims_, "
                f"{ctx.where});")
        return "\n".join([call, *assign_dims(ctx, y.shape, "out_dims_")])


@emits(shape_ops.Squeeze)
class SqueezeEmitter(ViewOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.Squeeze` and ``Unsqueeze``: none (a view), but the dims
    for axes read at run time, computed and checked."""

    kernel = "value_squeeze"

    def emit(self, ctx: NodeContext) -> str:
        if not self.op.at_run_time(ctx.inputs):
            return ""
        x, y = ctx.inputs[0], ctx.outputs[0]
        in_dims = ctx.array("in_dims", x.shape)
        ctx.declarations += [f"bool axes_mask_[{max(x.rank, y.rank, 1)}];", f"size_t out_dims_[{max(y.rank, 1)}];"]
        call = (f"kernels::{self.kernel}({ctx.x(1)}, {ctx.inputs[1].shape[0]}, {in_dims}, {x.rank}, axes_mask_, "
                f"out_dims_, {ctx.where});")
        return "\n".join([call, *assign_dims(ctx, y.shape, "out_dims_")])


@emits(shape_ops.Unsqueeze)
class UnsqueezeEmitter(SqueezeEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.Unsqueeze`."""

    kernel = "value_unsqueeze"


@emits(shape_ops.Dropout)
class DropoutEmitter(ViewOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.Dropout`: the all-true mask, and where training_mode or
    the ratio is read at run time, the check that the node is the identity."""

    def emit(self, ctx: NodeContext) -> str:
        lines = []
        if self.op.at_run_time(ctx.inputs):
            training = f"{ctx.x(2)}[0]" if ctx.inputs[2].value is None else "true"
            ratio = f"{ctx.x(1)}[0]" if ctx.inputs[1] is not None and ctx.inputs[1].value is None \
                else repr(self.op.ratio(ctx.inputs))
            lines += [f"if ({training} && {ratio} != 0)",
                      f"   kernels::value_error({ctx.where}, \"training_mode is true with ratio \" + "
                      f"std::to_string({ratio}) + \": sofie-rdf generates inference code\");"]
        if len(ctx.outputs) > 1:
            lines.append(f"std::fill_n({ctx.y(1)}, {ctx.dim(ctx.outputs[1].size)}, true);  // mask")
        return "\n".join(lines)


@emits(shape_ops.ConstantOfShape)
class ConstantOfShapeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.ConstantOfShape`."""

    kernels = ("select",)

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        v = ctx.literal(self.op.fill()[0], y.dtype)
        fill = f"std::fill_n({ctx.y(0)}, {ctx.dim(y.size)}, {v});"
        if ctx.inputs[0].value is not None:
            return fill
        dims = [f"{ctx.dim(d)} = kernels::checked_dim({ctx.x(0)}[{i}], \"ConstantOfShape\");" for i, d in enumerate(y.shape)]
        return "\n".join([*dims, ctx.reserve(0), fill])


@emits(shape_ops.Shape)
class ShapeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.Shape` where a dim is computed at run time (else folded)."""

    def emit(self, ctx: NodeContext) -> str:
        return "\n".join(f"{ctx.y(0)}[{i}] = static_cast<int64_t>({ctx.dim(d)});"
                         for i, d in enumerate(self.op.dims(ctx.inputs)))


@emits(shape_ops.Size)
class SizeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.Size` where a dim is computed at run time (else folded)."""

    def emit(self, ctx: NodeContext) -> str:
        return f"{ctx.y(0)}[0] = static_cast<int64_t>({ctx.dim(ctx.inputs[0].size)});"
