"""LRN: local response normalization across channels (AlexNet, GoogLeNet)."""

from __future__ import annotations

import numpy as np

from ..ir import TensorType
from ..ir.dims import num_elements
from .base import EmitContext, Op
from .registry import register


@register
class LRN(Op):
    """y = x / (bias + alpha / size * sum over a channel window of x^2)^beta."""

    op_type = "LRN"
    kernels = ("lrn",)

    def infer(self, inputs):
        x = inputs[0]
        if x.rank < 2:
            raise self.error(f"expects an (N, C, ...) input, got shape {x.shape}")
        if int(self.attrs["size"]) < 1:
            raise self.error(f"size must be positive, got {self.attrs['size']}")
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values):
        x = values[0]
        size = int(self.attrs["size"])
        before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
        sq = np.pad(x.astype(np.float64) ** 2, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
        window = sum(sq[:, k:k + x.shape[1]] for k in range(size))
        scale = (self.attrs["bias"] + self.attrs["alpha"] / size * window) ** self.attrs["beta"]
        return [(x / scale).astype(x.dtype)]

    def emit(self, ctx: EmitContext) -> str:
        x = ctx.inputs[0]
        inner = num_elements(x.shape[2:])
        a = self.attrs
        return (f"kernels::lrn({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(x.shape[0])}, {ctx.dim(x.shape[1])}, "
                f"{ctx.dim(inner)}, {int(a['size'])}, {ctx.literal(a['alpha'], np.float64)}, "
                f"{ctx.literal(a['beta'], np.float64)}, {ctx.literal(a['bias'], np.float64)});")
