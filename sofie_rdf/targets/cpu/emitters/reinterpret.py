"""CPU emitters of the operators in :mod:`sofie_rdf.ops.reinterpret`."""

from __future__ import annotations

from ....ops import reinterpret as reinterpret_ops
from ....ops.base import contiguous_strides
from ..._cxx.context import NodeContext
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
        if self.op.at_run_time(ctx.inputs):
            return self.emit_at_run_time(ctx)
        x, y = ctx.inputs[0], ctx.outputs[0]
        src, dst = self.op.windows(x.shape, y.shape)
        xs, ys = contiguous_strides(x.shape), contiguous_strides(y.shape)
        x_start = sum(s * st for (s, _), st in zip(src, xs))
        y_start = sum(s * st for (s, _), st in zip(dst, ys))
        region = ctx.array("region", [r for _, r in src])
        return (f"kernels::center_crop_pad({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(y.size)}, {x.rank}, {region}, "
                f"{ctx.array('x_strides', xs)}, {ctx.array('y_strides', ys)}, {ctx.dim(x_start)}, {ctx.dim(y_start)});")

    def emit_at_run_time(self, ctx: NodeContext) -> str:
        """The target shape read now: the output's dims and the window computed, then the same copy."""
        x, y = ctx.inputs[0], ctx.outputs[0]
        r, axes = x.rank, self.op.axes(x.rank)
        in_shape, axes_ = ctx.array("in_shape", x.shape), ctx.array("axes", axes)
        lines = [f"size_t out_shape_[{r}] = {{}}, region_[{r}] = {{}}, x_strides_[{r}] = {{}}, y_strides_[{r}] = {{}};",
                 "size_t x_start_ = 0, y_start_ = 0, y_size_ = 0;",
                 f"kernels::center_crop_pad_shape({in_shape}, {r}, {axes_}, {len(axes)}, {ctx.x(1)}, out_shape_, region_, "
                 f"x_strides_, y_strides_, x_start_, y_start_, y_size_, {ctx.where});",
                 *(f"{ctx.dim(y.shape[a])} = out_shape_[{a}];" for a in axes), ctx.reserve(0),
                 f"kernels::center_crop_pad({ctx.x(0)}, {ctx.y(0)}, y_size_, {r}, region_, x_strides_, y_strides_, "
                 "x_start_, y_start_);"]
        return "\n".join(line for line in lines if line)
