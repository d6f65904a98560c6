"""CPU emitters of the operators in :mod:`sofie_rdf.ops.roi`."""

from __future__ import annotations

from ....ops import roi as roi_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(roi_ops.RoiAlign)
class RoiAlignEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.roi.RoiAlign`."""

    kernels = ("roi",)

    def emit(self, ctx: NodeContext) -> str:
        x, rois = ctx.inputs[0], ctx.inputs[1]
        half_pixel, max_mode, out_h, out_w, ratio, scale = self.op.options()
        sizes = ", ".join(ctx.dim(d) for d in x.shape)
        flags = f"{'true' if half_pixel else 'false'}, {'true' if max_mode else 'false'}"
        return (f"kernels::roi_align({ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {ctx.y(0)}, {sizes}, {ctx.dim(rois.shape[0])}, "
                f"{out_h}, {out_w}, {ratio}, {ctx.literal(scale, x.dtype)}, {flags});")
