"""CPU emitters of the operators in :mod:`sofie_rdf.ops.normalization`."""

from __future__ import annotations

import numpy as np

from ....ir.dims import num_elements
from ....ir.dtypes import from_onnx
from ....ops import normalization as normalization_ops
from ....ops.normalization import _optional
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(normalization_ops._Normalization)
class NormalizationEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.normalization._Normalization`."""

    kernels = ("normalization",)


@emits(normalization_ops.BatchNormalization)
class BatchNormalizationEmitter(NormalizationEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.normalization.BatchNormalization`."""

    def emit(self, ctx: NodeContext) -> str:
        batch, channels, spatial = (ctx.dim(d) for d in self.op.channels3(ctx.inputs[0]))
        eps = ctx.literal(self.attrs["epsilon"], np.float64)
        params = ", ".join(ctx.x(i) for i in range(1, 5))
        return f"kernels::batch_norm({ctx.x(0)}, {params}, {ctx.y(0)}, {batch}, {channels}, {spatial}, {eps});"


@emits(normalization_ops._GroupNorm)
class GroupNormEmitter(NormalizationEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.normalization._GroupNorm`."""

    def emit(self, ctx: NodeContext) -> str:
        sizes = ", ".join(ctx.dim(d) for d in self.op.layout(ctx.inputs))
        eps = ctx.literal(self.attrs["epsilon"], np.float64)
        return f"kernels::group_norm({ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {ctx.y(0)}, {sizes}, {eps});"


@emits(normalization_ops.LayerNormalization)
class LayerNormalizationEmitter(NormalizationEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.normalization.LayerNormalization`."""

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        axis = self.op.axis(x)
        outer, n = num_elements(x.shape[:axis]), num_elements(x.shape[axis:])
        scale, bias = ctx.inputs[1], _optional(ctx.inputs, 2)
        bias_ptr, bias_size = (ctx.x(2), ctx.dim(bias.size)) if bias is not None else ("nullptr", "1")
        t, u = ctx.ctype(x.dtype), ctx.ctype(from_onnx(self.attrs["stash_type"]))
        mean, inv_std = (ctx.y(i) if _optional(ctx.outputs, i) is not None else "nullptr" for i in (1, 2))
        eps = ctx.literal(self.attrs["epsilon"], np.float64)
        return (f"kernels::layer_norm<{t}, {u}>({ctx.x(0)}, {ctx.x(1)}, {ctx.dim(scale.size)}, {bias_ptr}, "
                f"{bias_size}, {ctx.y(0)}, {mean}, {inv_std}, {ctx.dim(outer)}, {ctx.dim(n)}, {eps});")
