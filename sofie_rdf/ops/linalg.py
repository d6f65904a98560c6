"""Linear algebra: Det."""

from __future__ import annotations

from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, num_elements
from ..ir.dtypes import FLOAT_TYPES
from .base import Op
from .registry import register


@register
class Det(Op):
    """Determinants of the square matrices in the last two dims (``[*, M, M] -> [*]``).

    LU with partial pivoting in double whatever the element type, so float
    inputs lose no accuracy to elimination.
    """

    op_type = "Det"
    since_version = 11

    def layout(self, x: TensorType) -> tuple[Dim, Dim]:
        """(batch, n): how many matrices and their order."""
        if x.dtype not in FLOAT_TYPES:
            raise self.error(f"input type {x.dtype} is not supported (float32 or float64 expected)")
        if x.rank < 2:
            raise self.error(f"input must have rank >= 2 (matrices in the last two dims), got shape {x.shape}")
        rows, cols = x.shape[-2:]
        self.require(sympy.Eq(rows, cols), f"matrices must be square, got {rows} x {cols}")
        return num_elements(x.shape[:-2]), rows

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        self.layout(x)
        return [TensorType(x.dtype, x.shape[:-2])]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        return [np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)]

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        _, n = self.layout(inputs[0])
        return [TensorType(np.dtype(np.float64), (n, n))]
