"""Matrix products: Gemm and MatMul, both through the BLAS-backed kernel."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal, num_elements
from .base import EmitContext, Op, Packed, broadcast_shapes, broadcast_strides, coalesce
from .registry import register


@register
class Gemm(Op):
    """Y = alpha * A' * B' + beta * C, with C broadcast to (M, N)."""

    op_type = "Gemm"
    since_version = 7
    kernels = ("gemm",)

    def _mnk(self, a: TensorType, b: TensorType) -> tuple:
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

    def evaluate(self, values):
        a, b = values[0], values[1]
        a = a.T if self.attrs["transA"] else a
        b = b.T if self.attrs["transB"] else b
        y = self.attrs["alpha"] * (a @ b)
        if len(values) > 2 and values[2] is not None:
            y = y + self.attrs["beta"] * values[2]
        return [y.astype(values[0].dtype)]

    def pack_constants(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]],
                       target: str) -> Packed:
        """A constant B stored untransposed: the small-product kernel streams B row by row
        (PyTorch and Keras exports store Linear weights transposed, ``transB=1``)."""
        b = constants.get(1)
        if b is None or b.ndim != 2 or not self.attrs["transB"]:
            return None
        return {1: np.ascontiguousarray(b.T)}, {"transB": 0}

    def _activation(self, ctx: EmitContext) -> Optional[str]:
        """The lambda applied to every output (FusedGemm's activation), None for none."""
        return None

    def emit(self, ctx: EmitContext) -> str:
        """One kernel call: ``gemm``, or ``gemm_bias_act`` where a bias C or an activation follows the product
        (it adds them while each row of Y is in cache)."""
        a, b = ctx.inputs[0], ctx.inputs[1]
        c = ctx.inputs[2] if len(ctx.inputs) > 2 and self.attrs["beta"] != 0 else None
        m, n, k = self._mnk(a, b)
        dt = a.dtype
        trans = ", ".join(str(bool(self.attrs[t])).lower() for t in ("transA", "transB"))
        product = (f"{trans}, {ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)}, {ctx.literal(self.attrs['alpha'], dt)}, "
                   f"{ctx.x(0)}, {ctx.x(1)}")
        act = self._activation(ctx)
        if c is None and act is None:
            return f"kernels::gemm({product}, {ctx.literal(0.0, dt)}, {ctx.y(0)});"
        bias = "nullptr, 0, 0"
        if c is not None:
            row, col = broadcast_strides(c.shape, (m, n))
            bias = f"{ctx.x(2)}, {ctx.dim(row)}, {ctx.dim(col)}"
        beta = ctx.literal(self.attrs["beta"] if c is not None else 0.0, dt)
        act = act or f"[](const {ctx.ctype(dt)} v) {{ return v; }}"
        return f"kernels::gemm_bias_act({product}, {beta}, {bias}, {ctx.y(0)}, {act});"


@register
class MatMul(Op):
    """Numpy matmul: 1-D operands promoted, batch dims broadcast."""

    op_type = "MatMul"
    kernels = ("gemm",)

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

    def evaluate(self, values):
        return [np.matmul(values[0], values[1])]

    def emit(self, ctx: EmitContext) -> str:
        a, b = ctx.inputs[0], ctx.inputs[1]
        sa, sb, batch = self._shapes(a, b)
        m, k, n = sa[-2], sa[-1], sb[-1]
        one = ctx.literal(1.0, a.dtype)
        zero = ctx.literal(0.0, a.dtype)
        b_is_matrix = all(isinstance(d, int) and d == 1 for d in sb[:-2])
        if b_is_matrix:  # (..., M, K) x (K, N): one product with all batch rows stacked
            rows = num_elements(sa[:-1])
            return (f"kernels::gemm(false, false, {ctx.dim(rows)}, {ctx.dim(n)}, {ctx.dim(k)}, {one}, "
                    f"{ctx.x(0)}, {ctx.x(1)}, {zero}, {ctx.y(0)});")
        stride_a = [s * m * k for s in broadcast_strides(sa[:-2], batch)]
        stride_b = [s * k * n for s in broadcast_strides(sb[:-2], batch)]
        shape, (st_a, st_b) = coalesce(batch, stride_a, stride_b)
        dims = ctx.array("batch_shape", shape)
        pa, pb = ctx.array("a_strides", st_a, "std::ptrdiff_t"), ctx.array("b_strides", st_b, "std::ptrdiff_t")
        return (f"kernels::matmul_batched({ctx.x(0)}, {pa}, {ctx.x(1)}, {pb}, {ctx.y(0)}, {dims}, {len(shape)}, "
                f"{ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)});")
