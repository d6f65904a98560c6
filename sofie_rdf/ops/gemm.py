"""Matrix products: Gemm and MatMul (numpy's matmul: batch dims broadcast, 1-D operands promoted).

Shapes and references only; the CPU code (BLAS, register-tile panels for large products with constant
weights, which it stores its own way) is in ``targets/cpu/emitters/gemm.py``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from .base import Op, broadcast_shapes
from .registry import register


@register
class Gemm(Op):
    """Y = alpha * A' * B' + beta * C, with C broadcast to (M, N)."""

    op_type = "Gemm"
    since_version = 7
    row_wise = True

    def _mnk(self, a: TensorType, b: TensorType) -> tuple:
        """(M, N, K) of the product, A being M x K and B K x N after their transpositions."""
        if a.rank != 2 or b.rank != 2:
            raise self.error(f"A and B must be matrices, got shapes {a.shape} and {b.shape}")
        m, k = a.shape[::-1] if self.attrs["transA"] else a.shape
        kb, n = b.shape[::-1] if self.attrs["transB"] else b.shape
        if not dims_equal(k, kb):
            ta, tb = self.attrs["transA"], self.attrs["transB"]
            raise self.error(f"inner dimensions differ: A {a.shape}, B {b.shape} (transA={ta}, transB={tb})")
        return m, n, k

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        a, b, c = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        m, n, _ = self._mnk(a, b)
        if c is not None:
            out = broadcast_shapes(self, c.shape, (m, n))
            if len(out) != 2 or not dims_equal(out[0], m) or not dims_equal(out[1], n):
                raise self.error(f"C of shape {c.shape} does not broadcast to ({m}, {n})")
        return [TensorType(a.dtype, (m, n))]

    def flops(self, inputs, outputs):
        m, n, k = self._mnk(inputs[0], inputs[1])
        return 2 * m * n * k

    def evaluate(self, values):
        a, b = values[0], values[1]
        a = a.T if self.attrs["transA"] else a
        b = b.T if self.attrs["transB"] else b
        y = self.attrs["alpha"] * (a @ b)
        if len(values) > 2 and values[2] is not None:
            y = y + self.attrs["beta"] * values[2]
        return [y.astype(values[0].dtype)]


@register
class MatMul(Op):
    """Numpy matmul: 1-D operands promoted, batch dims broadcast."""

    op_type = "MatMul"
    row_wise = True

    def _shapes(self, a: TensorType, b: TensorType) -> tuple:
        if a.rank == 0 or b.rank == 0:
            raise self.error("MatMul operands must have rank >= 1")
        sa = (1,) + a.shape if a.rank == 1 else a.shape
        sb = b.shape + (1,) if b.rank == 1 else b.shape
        if not dims_equal(sa[-1], sb[-2]):
            raise self.error(f"inner dimensions differ: {a.shape} and {b.shape}")
        batch = broadcast_shapes(self, sa[:-2], sb[:-2])
        return sa, sb, batch

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        a, b = inputs[0], inputs[1]
        if a.dtype != b.dtype:
            raise self.error(f"input types differ ({a.dtype} and {b.dtype})")
        sa, sb, batch = self._shapes(a, b)
        out = batch + (sa[-2], sb[-1])
        if a.rank == 1:
            out = out[:-2] + out[-1:]
        if b.rank == 1:
            out = out[:-1]
        return [TensorType(a.dtype, out)]

    def flops(self, inputs, outputs):
        return 2 * outputs[0].size * inputs[0].shape[-1]

    def evaluate(self, values):
        return [np.matmul(values[0], values[1])]
