"""LRN: local response normalization across channels (AlexNet, GoogLeNet); CPU code in ``targets/cpu/emitters/lrn.py``."""

from __future__ import annotations

import numpy as np

from ..ir import TensorType
from .base import Op
from .registry import register


@register
class LRN(Op):
    """y = x / (bias + alpha / size * sum over a channel window of x^2)^beta."""

    op_type = "LRN"

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
