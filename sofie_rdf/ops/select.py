"""Operators whose output size depends on the input values: NonZero, Compress, Unique, NonMaxSuppression,
and Range when its bounds are computed.

The size is a dim computed while ``infer`` runs (:meth:`Op.runtime_dim`):
the code counts first, records the count, reserves the output (its buffer only
grows past the largest count seen, so steady-state calls do not allocate)
and then writes it.  When the input is a constant the whole node folds.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, num_elements, simplify
from .base import Op, normalize_axis
from .registry import register


@register
class NonZero(Op):
    """Indices of the non-zero elements, shape (rank, count), row-major order."""

    op_type = "NonZero"
    since_version = 9

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.rank == 0:
            raise self.error("a scalar input has no axes to index (rank >= 1 expected)")
        if x.value is not None and x.is_constant:
            return [TensorType(np.int64, (x.rank, int(np.count_nonzero(x.value))))]
        return [TensorType(np.int64, (x.rank, self.runtime_dim("count")))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        return [np.array(np.nonzero(values[0]), dtype=np.int64).reshape(values[0].ndim, -1)]


@register
class Range(Op):
    """start, start + delta, ... up to limit (excluded): ``max(ceil((limit - start) / delta), 0)`` values.

    Bounds known when the code is generated fold to a constant, or, when
    symbolic (``Range(0, seq_len, 1)`` over a symbolic sequence length), give a
    symbolic length; bounds computed at run time make the length a run-time dim.
    """

    op_type = "Range"
    since_version = 11
    value_inputs = (0, 1, 2)

    def at_run_time(self, inputs) -> bool:
        return any(t.value is None for t in inputs[:3])

    def scalars(self, inputs) -> list:
        out = []
        for i, what in enumerate(("start", "limit", "delta")):
            v = np.asarray(inputs[i].value)
            if v.size != 1:
                raise self.error(f"{what} must be a scalar, got shape {v.shape}")
            out.append(v.reshape(-1)[0])
        if out[2] == 0:
            raise self.error("delta must not be 0")
        return out

    def infer(self, inputs):
        dtype = inputs[0].dtype
        if any(t.size != 1 or t.dtype != dtype for t in inputs[:3]):
            raise self.error(f"start, limit and delta must be scalars of one type, got {[t.dtype for t in inputs[:3]]}")
        if self.at_run_time(inputs):
            return [TensorType(dtype, (self.runtime_dim("count"),))]
        start, limit, delta = self.scalars(inputs)
        if any(isinstance(v, sympy.Expr) and not v.is_number for v in (start, limit, delta)):
            if dtype.kind != "i":
                raise self.error(f"symbolic bounds need an integer type, got {dtype}")
            count = simplify(sympy.Max(sympy.ceiling((limit - start) / delta), 0))
        else:
            count = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
        return [TensorType(dtype, (count,))]

    def evaluate(self, values):
        start, limit, delta = (np.asarray(v).reshape(-1)[0] for v in values[:3])
        return [np.arange(start, limit, delta).astype(np.asarray(values[0]).dtype)]


def _axis_view(op: Op, shape: tuple) -> tuple[Optional[int], Dim, Dim, Dim]:
    """The ``axis`` attribute (None when absent: the input is flattened) and the (outer, n, inner) view around it."""
    if op.attrs.get("axis") is None:
        return None, 1, num_elements(shape), 1
    axis = normalize_axis(op, op.attrs["axis"], len(shape))
    return axis, num_elements(shape[:axis]), shape[axis], num_elements(shape[axis + 1:])


def _sized_shape(shape: tuple, axis: Optional[int], count: Dim) -> tuple:
    """The input shape with the selected axis (or the flattened input) resized to ``count``."""
    return (count,) if axis is None else shape[:axis] + (count,) + shape[axis + 1:]


def _folded(op: Op, inputs: list[Optional[TensorType]]) -> Optional[list[TensorType]]:
    """The outputs' types when every input is a constant: the node folds, so its sizes are known now."""
    given = [t for t in inputs if t is not None]
    if not all(t.value is not None and t.is_constant for t in given):
        return None
    values = op.evaluate([None if t is None else np.asarray(t.value) for t in inputs])
    return [TensorType(v.dtype, v.shape) for v in values]


@register
class Compress(Op):
    """The slices along ``axis`` (or elements of the flattened input) whose condition is true.

    A condition shorter than the axis leaves the rest out, and as in
    onnxruntime a longer one is read up to the axis length.  A condition known
    when the code is generated gives a fixed output length.
    """

    op_type = "Compress"
    since_version = 9

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, cond = inputs[0], inputs[1]
        if cond.dtype != np.bool_ or cond.rank != 1:
            raise self.error(f"condition must be a 1-D bool tensor, got {cond.dtype} of rank {cond.rank}")
        axis, _, n, _ = _axis_view(self, x.shape)
        folded = _folded(self, inputs)
        if folded:
            return folded
        if cond.value is not None and cond.is_constant and isinstance(n, int):
            count: Dim = int(np.count_nonzero(np.asarray(cond.value)[:n]))
        else:
            count = self.runtime_dim("count")
        return [TensorType(x.dtype, _sized_shape(x.shape, axis, count))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, cond = values[0], values[1]
        axis = self.attrs.get("axis")
        n = x.size if axis is None else x.shape[axis]
        return [np.compress(cond[:n], x, axis=axis)]


@register
class Unique(Op):
    """The unique slices along ``axis`` (or elements of the flattened input), their first indices,
    the inverse indices and the counts; sorted ascending (lexicographically over a slice) or, with
    ``sorted=0``, in order of first occurrence."""

    op_type = "Unique"
    since_version = 11

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        axis, _, n, _ = _axis_view(self, x.shape)
        folded = _folded(self, inputs)
        if folded:
            return folded
        count = self.runtime_dim("count")
        i64 = np.dtype(np.int64)
        return [TensorType(x.dtype, _sized_shape(x.shape, axis, count)), TensorType(i64, (count,)),
                TensorType(i64, (n,)), TensorType(i64, (count,))][:len(self.node.outputs)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, axis = values[0], self.attrs.get("axis")
        y, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis)
        inverse = inverse.reshape(-1)
        if not self.attrs["sorted"]:
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            y = np.take(y, order, axis=0 if axis is None else axis)
            first, counts, inverse = first[order], counts[order], rank[inverse]
        return [y, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)][:len(self.node.outputs)]

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [TensorType(np.dtype(np.int64), (6 * _axis_view(self, inputs[0].shape)[2],))]


@register
class NonMaxSuppression(Op):
    """Per batch and class, the boxes kept by greedy non-maximum suppression, as (batch, class, box) rows
    in onnxruntime's order; the limit and thresholds (optional inputs 2-4) are read at run time."""

    op_type = "NonMaxSuppression"
    since_version = 10

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        boxes, scores = inputs[0], inputs[1]
        if boxes.dtype != np.float32 or scores.dtype != np.float32:
            raise self.error(f"boxes and scores must be float32, got {boxes.dtype} and {scores.dtype}")
        if boxes.rank != 3 or scores.rank != 3:
            raise self.error(f"boxes (batches, n, 4) and scores (batches, classes, n) expected, got {boxes.shape}"
                             f" and {scores.shape}")
        self.require(sympy.Eq(boxes.shape[2], 4), f"boxes (batches, n, 4) expected, got {boxes.shape}")
        self.require(sympy.Eq(boxes.shape[0], scores.shape[0]), "boxes and scores must have the same batch count")
        self.require(sympy.Eq(boxes.shape[1], scores.shape[2]), "scores must have one entry per box")
        for i, dtype in ((2, np.int64), (3, np.float32), (4, np.float32)):
            if i < len(inputs) and inputs[i] is not None and (inputs[i].dtype != dtype or inputs[i].size != 1):
                raise self.error(f"input {i} must be a {np.dtype(dtype)} scalar")
        if self.attrs["center_point_box"] not in (0, 1):
            raise self.error(f"center_point_box must be 0 or 1, got {self.attrs['center_point_box']}")
        folded = _folded(self, inputs)
        if folded:
            return folded
        return [TensorType(np.dtype(np.int64), (self.runtime_dim("count"), 3))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        def scalar(i: int, default):
            return np.asarray(values[i]).reshape(-1)[0] if i < len(values) and values[i] is not None else default

        boxes, scores = values[0], values[1]
        max_out, iou, threshold = int(scalar(2, 0)), np.float32(scalar(3, 0)), scalar(4, None)
        if not 0 <= iou <= 1:
            raise self.error(f"iou_threshold must be in [0, 1], got {iou}")
        rows = []
        for b, c in np.ndindex(scores.shape[:2]):
            s = scores[b, c]
            order = [i for i in np.argsort(-s, kind="stable") if threshold is None or s[i] > threshold]
            kept: list[int] = []
            for i in order:
                if len(kept) < max_out and not any(_iou(boxes[b, k], boxes[b, i], self.attrs["center_point_box"]) > iou
                                                   for k in kept):
                    kept.append(int(i))
            rows += [(b, c, i) for i in kept]
        return [np.array(rows, dtype=np.int64).reshape(-1, 3)]

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        batches, n, _ = inputs[0].shape
        i64 = np.dtype(np.int64)
        return [TensorType(i64, (batches * inputs[1].shape[1] * n * 3,)), TensorType(i64, (2 * n,))]


def _iou(a: np.ndarray, b: np.ndarray, center: int) -> float:
    """Intersection over union of two boxes as onnxruntime computes it (0 for degenerate boxes)."""
    def corners(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if center:
            c, half = p[[1, 0]], p[[3, 2]] / np.float32(2)
            return c - half, c + half
        return np.minimum(p[:2], p[2:]), np.maximum(p[:2], p[2:])

    (lo_a, hi_a), (lo_b, hi_b) = corners(a), corners(b)
    side = np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)
    if np.any(side <= 0):
        return 0.0
    inter = side[0] * side[1]
    area_a, area_b = np.prod(hi_a - lo_a), np.prod(hi_b - lo_b)
    union = area_a + area_b - inter
    return 0.0 if area_a <= 0 or area_b <= 0 or union <= 0 else float(inter / union)
