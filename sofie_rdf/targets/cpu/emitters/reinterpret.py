"""CPU emitters of the operators in :mod:`sofie_rdf.ops.reinterpret`."""

from __future__ import annotations

from ....ops import reinterpret as reinterpret_ops
from ....ops.base import contiguous_strides
from ..context import NodeContext
from ..emitter import Emitter, emits


@emits(reinterpret_ops.BitCast)
class BitCastEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.reinterpret.BitCast`."""

    kernels = ("reinterpret",)

    def emit(self, ctx: NodeContext) -> str:
        to = ctx.ctype(ctx.outputs[0].dtype)
        return f"kernels::bit_cast<{to}>({ctx.x(0)}, {ctx.dim(ctx.inputs[0].size)}, {ctx.y(0)});"


@emits(reinterpret_ops.CenterCropPad)
class CenterCropPadEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.reinterpret.CenterCropPad`."""

    kernels = ("reinterpret",)

    def emit(self, ctx: NodeContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        src, dst = self.op.windows(x.shape, y.shape)
        xs, ys = contiguous_strides(x.shape), contiguous_strides(y.shape)
        x_start = sum(s * st for (s, _), st in zip(src, xs))
        y_start = sum(s * st for (s, _), st in zip(dst, ys))
        region = ctx.array("region", [r for _, r in src])
        return (f"kernels::center_crop_pad({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(y.size)}, {x.rank}, {region}, "
                f"{ctx.array('x_strides', xs)}, {ctx.array('y_strides', ys)}, {ctx.dim(x_start)}, {ctx.dim(y_start)});")
