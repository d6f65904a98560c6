"""CPU emitters of the operators in :mod:`sofie_rdf.ops.shape`."""

from __future__ import annotations

from ....ops import shape as shape_ops
from ..context import NodeContext
from ..emitter import Emitter, emits


@emits(shape_ops.ViewOp)
class ViewOpEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.ViewOp`."""

    def emit(self, ctx: NodeContext) -> str:
        return ""


@emits(shape_ops.Dropout)
class DropoutEmitter(ViewOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.shape.Dropout`."""

    def emit(self, ctx: NodeContext) -> str:
        if len(ctx.outputs) > 1:
            return f"std::fill_n({ctx.y(1)}, {ctx.dim(ctx.outputs[1].size)}, true);  // mask"
        return ""


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
