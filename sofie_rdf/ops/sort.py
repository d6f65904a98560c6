"""TopK: the k largest or smallest elements along an axis, and their indices.

K may be an attribute (opset 1) or an input (opset 10).  An input known when
the code is generated may be symbolic (``min(P, 8)`` computed from a shape),
so a kNN over a variable number of particles compiles once; an input computed
at run time makes K a run-time dim (the outputs' memory is reserved per call,
growing only past the largest K seen).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, as_dim, num_elements
from .base import Op, normalize_axis
from .registry import register


@register
class TopK(Op):
    """Values and int64 indices of the top ``K`` along ``axis`` (ties: lower index first; NaN ranks highest)."""

    op_type = "TopK"
    since_version = 1

    def k(self, inputs: list[Optional[TensorType]]) -> Dim:
        return as_dim(self.attrs["k"])

    def k_at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        return False

    def largest(self) -> bool:
        return bool(self.attrs.get("largest", 1))

    def layout(self, inputs: list[Optional[TensorType]]) -> tuple[Dim, Dim, Dim, Dim, int]:
        """(outer, n, inner, k, axis) of the input viewed around the axis."""
        x = inputs[0]
        if x.rank == 0:
            raise self.error("input must have rank >= 1")
        axis = normalize_axis(self, self.attrs["axis"], x.rank)
        n, k = x.shape[axis], self.k(inputs)
        if isinstance(k, int) and k < 0:
            raise self.error(f"K must be >= 0, got {k}")
        if isinstance(k, int) and isinstance(n, int) and k > n:
            raise self.error(f"K = {k} is larger than the axis ({n} elements)")
        if not (isinstance(k, int) and isinstance(n, int)) and not self.defined_dims:
            self.require(sympy.Ge(n, k), f"K = {k} must not exceed the axis size {n}")
        return num_elements(x.shape[:axis]), n, num_elements(x.shape[axis + 1:]), k, axis

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        *_, k, axis = self.layout(inputs)
        shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
        return [TensorType(x.dtype, shape), TensorType(np.int64, shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        k = int(self.k([TensorType(np.asarray(v).dtype, np.shape(v), v) if v is not None else None for v in values]))
        axis = normalize_axis(self, self.attrs["axis"], x.ndim)
        keyed = -x if self.largest() else x
        if x.dtype.kind == "f":  # NaN ranks highest: first when largest, last when smallest
            keyed = np.where(np.isnan(x), -np.inf if self.largest() else np.inf, keyed)
        order = np.argsort(keyed, axis=axis, kind="stable")
        idx = np.take(order, np.arange(k), axis=axis)
        return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        _, n, *_ = self.layout(inputs)
        return [TensorType(np.int64, (n,))]


@register
class TopK_10(TopK):
    """K becomes an input (one int64 value, needed at generation time)."""

    since_version = 10
    value_inputs = (1,)

    def k_at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        return inputs[1].value is None

    def k(self, inputs: list[Optional[TensorType]]) -> Dim:
        if self.k_at_run_time(inputs):
            if inputs[1].dtype != np.int64 or inputs[1].size != 1:
                raise self.error(f"K must be one int64 value, got {inputs[1].dtype} of shape {inputs[1].shape}")
            return self.runtime_dim("K")
        value = np.asarray(inputs[1].value).reshape(-1)
        if value.size != 1:
            raise self.error(f"K must hold one value, got {value.size}")
        return as_dim(value[0])


@register
class TopK_11(TopK_10):
    """Adds ``largest`` and ``sorted`` (results are always sorted, which ``sorted=0`` allows)."""

    since_version = 11
