"""Transformer building blocks: RMSNormalization (23), RotaryEmbedding (23) and SwiGLU (28).

They are the per-token pieces around Attention in Llama-style models (the CPU code:
``targets/cpu/emitters/transformer.py``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import Dim, dims_equal
from ..ir.dtypes import FLOAT_TYPES, from_onnx
from .base import Op, broadcast_shapes, normalize_axis
from .registry import register


def _check_float(op: Op, *types: TensorType) -> None:
    for t in types:
        if t.dtype not in FLOAT_TYPES:
            raise op.error(f"input type {t.dtype} is not supported (float32 or float64 expected)")


@register
class RMSNormalization(Op):
    """Y = X / sqrt(mean(X^2 over axis..) + epsilon) * scale, statistics in ``stash_type``."""

    op_type = "RMSNormalization"
    since_version = 23

    def axis(self, x: TensorType) -> int:
        return normalize_axis(self, self.attrs["axis"], x.rank)

    def stash(self) -> np.dtype:
        stash = from_onnx(self.attrs["stash_type"])
        if stash not in FLOAT_TYPES:
            raise self.error(f"stash_type {self.attrs['stash_type']} is not supported (float32 or float64 expected)")
        return stash

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, scale = inputs[0], inputs[1]
        _check_float(self, x, scale)
        self.axis(x)
        self.stash()
        shape = broadcast_shapes(self, x.shape, scale.shape)
        if len(shape) != x.rank or not all(dims_equal(a, b) for a, b in zip(shape, x.shape)):
            raise self.error(f"scale of shape {scale.shape} does not broadcast to X {x.shape}")
        return [TensorType(scale.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, scale = values[0], values[1]
        axes = tuple(range(self.axis(TensorType(x.dtype, x.shape)), x.ndim))
        xs = x.astype(self.stash())
        inv = 1 / np.sqrt((xs * xs).mean(axis=axes, keepdims=True) + self.attrs["epsilon"])
        return [((xs * inv).astype(scale.dtype) * scale).astype(scale.dtype)]


@register
class RotaryEmbedding(Op):
    """Rotates the first ``rotary_embedding_dim`` values of each head by position-dependent angles.

    X is (batch, heads, seq, head) or packed (batch, seq, heads * head) with
    ``num_heads``; the cos/sin caches are (max_position, rot / 2) indexed by
    ``position_ids`` (batch, seq), or (batch, seq, rot / 2) without them.
    """

    op_type = "RotaryEmbedding"
    since_version = 23

    def sizes(self, x: TensorType) -> tuple[Dim, Dim, Dim, int, int]:
        """(batch, seq, heads, head, rot) of the input."""
        heads = self.attrs.get("num_heads")
        if x.rank == 4:
            b, h, s, d = x.shape
            if heads is not None and not dims_equal(heads, h):
                raise self.error(f"num_heads={heads} disagrees with the heads dim {h} of X {x.shape}")
        elif x.rank == 3:
            if not heads:
                raise self.error("3-D input needs the num_heads attribute")
            b, s, hidden = x.shape
            if not isinstance(hidden, int) or hidden % heads:
                raise self.error(f"hidden size {hidden} is not a known multiple of num_heads={heads}")
            h, d = heads, hidden // heads
        else:
            raise self.error(f"X must be 3-D or 4-D, got shape {x.shape}")
        if not isinstance(d, int):
            raise self.error(f"head size {d} must be known when the code is generated")
        rot = self.attrs["rotary_embedding_dim"] or d
        if rot % 2 or not 0 < rot <= d:
            raise self.error(f"rotary_embedding_dim {rot} must be even and in (0, {d}]")
        return b, s, h, d, rot

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, cos, sin = inputs[0], inputs[1], inputs[2]
        pos = inputs[3] if len(inputs) > 3 else None
        _check_float(self, x)
        b, s, _, _, rot = self.sizes(x)
        want = (None, rot // 2) if pos is not None else (b, s, rot // 2)
        for what, c in (("cos_cache", cos), ("sin_cache", sin)):
            ok = c.dtype == x.dtype and c.rank == len(want) and all(w is None or dims_equal(w, d) for w, d in zip(want, c.shape))
            if not ok:
                raise self.error(f"{what} of shape {c.shape} ({c.dtype}) does not match {want} ({x.dtype})")
        if not dims_equal(cos.shape[0], sin.shape[0]):
            raise self.error(f"cos_cache {cos.shape} and sin_cache {sin.shape} differ")
        if pos is not None and (pos.dtype != np.int64 or pos.rank != 2 or not dims_equal(pos.shape[0], b)
                                or not dims_equal(pos.shape[1], s)):
            raise self.error(f"position_ids must be int64 of shape ({b}, {s}), got {pos.dtype} {pos.shape}")
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, cos, sin = values[0], values[1], values[2]
        pos = values[3] if len(values) > 3 else None
        b, s, h, d, rot = self.sizes(TensorType(x.dtype, x.shape))
        if pos is not None:
            if pos.size and (pos.min() < 0 or pos.max() >= cos.shape[0]):
                raise self.error(f"position ids must lie in [0, {cos.shape[0]})")
            cos, sin = cos[pos], sin[pos]
        x4 = x.reshape(b, s, h, d) if x.ndim == 3 else x.transpose(0, 2, 1, 3)
        y4 = x4.copy()
        idx = np.arange(rot // 2)
        i1, i2 = (2 * idx, 2 * idx + 1) if self.attrs["interleaved"] else (idx, idx + rot // 2)
        c, sn = cos[:, :, None, :], sin[:, :, None, :]
        y4[..., i1] = c * x4[..., i1] - sn * x4[..., i2]
        y4[..., i2] = sn * x4[..., i1] + c * x4[..., i2]
        return [y4.reshape(x.shape) if x.ndim == 3 else y4.transpose(0, 2, 1, 3)]


@register
class SwiGLU(Op):
    """Y = A * sigmoid(alpha * A) * B; A and B have one shape (no broadcasting)."""

    op_type = "SwiGLU"
    since_version = 28

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        a, b = inputs[0], inputs[1]
        _check_float(self, a)
        same = a.rank == b.rank and all(dims_equal(p, q) for p, q in zip(a.shape, b.shape))
        if a.dtype != b.dtype or not same:
            raise self.error(f"A {a.shape} ({a.dtype}) and B {b.shape} ({b.dtype}) must have one shape and type")
        return [TensorType(a.dtype, a.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        a, b = values[0], values[1]
        with np.errstate(over="ignore"):
            gate = a * (1 / (1 + np.exp(-self.attrs["alpha"] * a))).astype(a.dtype)
        return [(gate * b).astype(a.dtype)]
