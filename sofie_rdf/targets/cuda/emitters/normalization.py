"""Normalisations on CUDA: LayerNormalization (a block per row) and BatchNormalization where the passes could
not fold it into a convolution or product (an element-wise kernel over the channels)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ir.dims import num_elements
from ....ops.normalization import BatchNormalization, LayerNormalization
from ..emitter import CudaEmitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


@emits(LayerNormalization)
class LayerNormEmitter(CudaEmitter):
    """``kernels::layer_norm``; Mean and InvStdDev written where the node has them (stash type = the input's)."""

    kernels = ("normalization",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        axis = self.op.axis(x)
        for k in (1, 2):
            out = ctx.outputs[k] if len(ctx.outputs) > k else None
            if out is not None and out.dtype != x.dtype:
                raise self.error(f"the CUDA target writes Mean and InvStdDev as {x.dtype}, not {out.dtype}")
        rows, n = num_elements(x.shape[:axis]), num_elements(x.shape[axis:])
        scale = ctx.inputs[1]
        bias = ctx.inputs[2] if len(ctx.inputs) > 2 and ctx.inputs[2] is not None else None
        t = ctx.ctype(x.dtype)
        bias_args = f"{ctx.x(2)}, {ctx.dim(bias.size)}" if bias is not None else f"static_cast<const {t} *>(nullptr), 1"
        stats = [ctx.y(k) if len(ctx.outputs) > k and ctx.outputs[k] is not None else f"static_cast<{t} *>(nullptr)"
                 for k in (1, 2)]
        return (f"kernels::layer_norm({ctx.x(0)}, {ctx.x(1)}, {ctx.dim(scale.size)}, {bias_args}, {ctx.y(0)}, "
                f"{stats[0]}, {stats[1]}, {ctx.dim(rows)}, {ctx.dim(n)}, {ctx.literal(self.attrs['epsilon'], x.dtype)}, "
                "stream_);")


@emits(BatchNormalization)
class BatchNormEmitter(CudaEmitter):
    """``kernels::batch_norm`` over (batch, channels, spatial)."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        _, channels, spatial = self.op.channels3(x)
        args = ", ".join(ctx.x(k) for k in range(1, 5))
        return (f"kernels::batch_norm({ctx.x(0)}, {args}, {ctx.literal(self.attrs['epsilon'], x.dtype)}, {ctx.y(0)}, "
                f"{ctx.dim(x.size)}, {ctx.dim(channels)}, {ctx.dim(spatial)}, stream_);")
