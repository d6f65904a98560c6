"""Operators that read or write a tensor at run-time indices: Gather.

The indices may be computed at run time (a kNN's TopK feeding a Gather of
neighbour features), so the kernels check each one against its axis and
throw instead of reading out of bounds; negative indices count from the end.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import num_elements
from .base import EmitContext, Op, normalize_axis
from .registry import register

INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


def wrap_indices(op: Op, indices: np.ndarray, n: int) -> np.ndarray:
    """Indices with negatives counted from the end, checked against an axis of size ``n``."""
    indices = np.asarray(indices).astype(np.int64)
    bad = (indices < -n) | (indices >= n)
    if np.any(bad):
        raise op.error(f"index {int(indices[bad].reshape(-1)[0])} is out of range for an axis of size {n}")
    return np.where(indices < 0, indices + n, indices)


def check_indices(op: Op, t: Optional[TensorType], what: str = "indices") -> None:
    if t is None or t.dtype not in INDEX_TYPES:
        raise op.error(f"{what} must be int32 or int64, got {None if t is None else t.dtype}")


@register
class Gather(Op):
    """y = data indexed along ``axis`` by ``indices`` (any rank): shape data[:axis] + indices + data[axis+1:]."""

    op_type = "Gather"
    kernels = ("indexing",)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        data, indices = inputs[0], inputs[1]
        check_indices(self, indices)
        if data.rank == 0:
            raise self.error("data must have rank >= 1")
        axis = normalize_axis(self, self.attrs["axis"], data.rank)
        return [TensorType(data.dtype, data.shape[:axis] + indices.shape + data.shape[axis + 1:])]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        data, indices = values[0], values[1]
        axis = normalize_axis(self, self.attrs["axis"], data.ndim)
        return [np.take(data, wrap_indices(self, indices, data.shape[axis]), axis=axis)]

    def emit(self, ctx: EmitContext) -> str:
        data, indices = ctx.inputs[0], ctx.inputs[1]
        axis = normalize_axis(self, self.attrs["axis"], data.rank)
        outer, inner = num_elements(data.shape[:axis]), num_elements(data.shape[axis + 1:])
        sizes = ", ".join(ctx.dim(d) for d in (outer, data.shape[axis], indices.size, inner))
        return f"kernels::gather({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {sizes});"
