"""Normalisations on CUDA: LayerNormalization and RMSNormalization (a block per row), Group- and
InstanceNormalization (a block per sample and group), and BatchNormalization where the passes could not fold it
into a convolution or product (an element-wise kernel over the channels)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ....ir.dims import num_elements
from ....ops.base import broadcast_strides
from ....ops.normalization import BatchNormalization, LayerNormalization, _GroupNorm
from ....ops.transformer import RMSNormalization
from ..._cxx.cpp import cpp_type
from ..emitter import CudaEmitter, emits
from .movement import strided

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


@emits(_GroupNorm)
class GroupNormEmitter(CudaEmitter):
    """``kernels::group_norm`` (InstanceNormalization: a group per channel)."""

    kernels = ("normalization",)

    def emit(self, ctx: NodeContext) -> str:
        batch, channels, groups, spatial, per_param = self.op.layout(ctx.inputs)
        sizes = ", ".join(ctx.dim(d) for d in (batch * groups, groups, channels // groups, spatial, per_param))
        return (f"kernels::group_norm({ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {ctx.y(0)}, {sizes}, "
                f"{ctx.literal(self.attrs['epsilon'], np.float64)}, stream_);")


@emits(RMSNormalization)
class RmsNormEmitter(CudaEmitter):
    """``kernels::rms_norm`` in the stash type, scale broadcast to X's shape."""

    kernels = ("normalization",)

    def emit(self, ctx: NodeContext) -> str:
        x, scale = ctx.inputs[0], ctx.inputs[1]
        axis = self.op.axis(x)
        stash = self.op.stash()
        layout = strided(ctx, x.shape, broadcast_strides(scale.shape, x.shape))
        return (f"kernels::rms_norm({ctx.x(0)}, {ctx.x(1)}, {layout}, {ctx.y(0)}, {ctx.dim(num_elements(x.shape[:axis]))}, "
                f"{ctx.dim(num_elements(x.shape[axis:]))}, static_cast<{cpp_type(stash)}>("
                f"{ctx.literal(self.attrs['epsilon'], stash)}), stream_);")
