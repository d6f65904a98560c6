"""TensorScatter (opset 24): the functional form of an in-place KV-cache update.

The present cache is the past cache with ``update`` written along the sequence axis at each batch
row's write index (linear, or wrapping around in circular mode): a copy of the past cache, then one row copy per
written position.  Write indices are read and range-checked at run time.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from .base import Op, normalize_axis
from .registry import register

_MODES = ("linear", "circular")


@register
class TensorScatter(Op):
    """present = past with update written at write_indices[b] (+ s, modulo the cache length when circular)."""

    op_type = "TensorScatter"
    since_version = 24

    def layout(self, inputs: list[Optional[TensorType]]) -> int:
        """The checked sequence axis."""
        past, update = inputs[0], inputs[1]
        if self.attrs.get("mode", "linear") not in _MODES:
            raise self.error(f"mode {self.attrs.get('mode')!r} is not one of {', '.join(_MODES)}")
        if past.rank < 2 or update.rank != past.rank or update.dtype != past.dtype:
            raise self.error(f"past_cache {past.shape} and update {update.shape} must have one type and rank >= 2")
        axis = normalize_axis(self, int(self.attrs.get("axis", -2)), past.rank)
        if axis == 0:
            raise self.error("axis must not be 0 (the batch dimension)")
        for i, (p, u) in enumerate(zip(past.shape, update.shape)):
            if i != axis and not dims_equal(p, u):
                raise self.error(f"update {update.shape} differs from past_cache {past.shape} in dim {i}")
        if isinstance(past.shape[axis], int) and isinstance(update.shape[axis], int) and update.shape[axis] > past.shape[axis]:
            raise self.error(f"update {update.shape} is longer than the cache {past.shape} along axis {axis}")
        return axis

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.layout(inputs)
        past = inputs[0]
        idx = inputs[2] if len(inputs) > 2 else None
        if idx is not None and (idx.dtype != np.int64 or idx.rank != 1 or not dims_equal(idx.shape[0], past.shape[0])):
            raise self.error(f"write_indices must be int64 of shape ({past.shape[0]},), got {idx.dtype} {idx.shape}")
        return [TensorType(past.dtype, past.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        past, update = values[0], values[1]
        axis = normalize_axis(self, int(self.attrs.get("axis", -2)), past.ndim)
        idx = values[2] if len(values) > 2 and values[2] is not None else np.zeros(past.shape[0], np.int64)
        seq, span = update.shape[axis], past.shape[axis]
        out = past.copy()
        for b in range(past.shape[0]):
            at = idx[b] + np.arange(seq)
            if self.attrs.get("mode", "linear") == "circular":
                at = at % span
            elif idx[b] < 0 or idx[b] + seq > span:
                raise self.error(f"write index {idx[b]} + sequence length {seq} exceeds the cache length {span}")
            target = np.moveaxis(out[b], axis - 1, 0)  # a view: writes land in out
            target[at] = np.moveaxis(update[b], axis - 1, 0)
        return [out]
