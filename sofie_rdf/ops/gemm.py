"""Matrix products: Gemm and MatMul, both through the BLAS-backed kernel."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal, num_elements
from .base import EmitContext, Op, Packed, broadcast_shapes, broadcast_strides, coalesce
from .registry import register

# Products served by gemm_panels (kernels/gemm.hxx) in native code: a constant float B stored in panels of
# PANEL_COLUMNS columns (kPanelColumns), for outputs beyond L2 (kGemmStreamedOutput elements), where BLAS and a
# bias and activation pass after it go over Y twice, with PANEL_MIN_ROWS to PANEL_MAX_ROWS rows (fewer make
# the tiles load-bound: the small-product loop is faster; more leave A out of L1, and BLAS's blocking wins)
# and a depth whose panel stays in L1 (PANEL_MAX_DEPTH).  On a generator's 64 x 100 x 40500 layer + Sigmoid
# this is 0.93x BLAS + the activation pass; on 256 x 256 x 1024, 1.05x, hence the row limit.
PANEL_COLUMNS = 16
PANEL_MIN_OUTPUTS = 1 << 18
PANEL_MIN_ROWS = 4
PANEL_MAX_ROWS = 64
PANEL_MAX_DEPTH = 256


@register
class Gemm(Op):
    """Y = alpha * A' * B' + beta * C, with C broadcast to (M, N)."""

    op_type = "Gemm"
    since_version = 7
    kernels = ("gemm",)
    row_wise = True

    def _mnk(self, a: TensorType, b: TensorType) -> tuple:
        columns = self.attrs.get("panel_columns")
        if a.rank != 2 or b.rank != (3 if columns else 2):
            raise self.error(f"A and B must be matrices, got shapes {a.shape} and {b.shape}")
        m, k = a.shape[::-1] if self.attrs["transA"] else a.shape
        if columns:  # B in panels (pack_constants): (panels, K, PANEL_COLUMNS)
            kb, n = b.shape[1], columns
        else:
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
        """A constant B in panels for gemm_panels (``panel_columns``: N) where it serves the product, else
        stored untransposed: the small-product kernel streams B row by row (PyTorch and Keras exports store
        Linear weights transposed, ``transB=1``)."""
        b = constants.get(1)
        if b is None or b.ndim != 2 or self.attrs.get("panel_columns"):
            return None
        b = b.T if self.attrs["transB"] else b
        if target == "native" and self._panels_serve(inputs, b):
            k, n = b.shape
            padded = np.zeros((k, -(-n // PANEL_COLUMNS) * PANEL_COLUMNS), b.dtype)
            padded[:, :n] = b
            panels = padded.reshape(k, -1, PANEL_COLUMNS).transpose(1, 0, 2)
            return {1: np.ascontiguousarray(panels)}, {"transB": 0, "panel_columns": n}
        if not self.attrs["transB"]:
            return None
        return {1: np.ascontiguousarray(b)}, {"transB": 0}

    def _panels_serve(self, inputs: list[Optional[TensorType]], b: np.ndarray) -> bool:
        """Whether gemm_panels computes this product (B being ``b``, K x N): float32, fixed and large enough
        sizes, and C (if any) a row of N values."""
        a, c = inputs[0], inputs[2] if len(inputs) > 2 and self.attrs["beta"] != 0 else None
        if a is None or a.rank != 2:
            return False
        m = a.shape[1] if self.attrs["transA"] else a.shape[0]
        k, n = b.shape
        if (b.dtype != np.float32 or not isinstance(m, int) or not PANEL_MIN_ROWS <= m <= PANEL_MAX_ROWS
                or k > PANEL_MAX_DEPTH):
            return False
        if c is not None and (c.size != n or c.rank not in (1, 2) or c.shape[-1] != n):
            return False
        return m * n >= PANEL_MIN_OUTPUTS

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
        if self.attrs.get("panel_columns"):
            return self._emit_panels(ctx, m, n, k, c is not None, act)
        if c is None and act is None:
            return f"kernels::gemm({product}, {ctx.literal(0.0, dt)}, {ctx.y(0)});"
        bias = "nullptr, 0, 0"
        if c is not None:
            row, col = broadcast_strides(c.shape, (m, n))
            bias = f"{ctx.x(2)}, {ctx.dim(row)}, {ctx.dim(col)}"
        beta = ctx.literal(self.attrs["beta"] if c is not None else 0.0, dt)
        act = act or f"[](const {ctx.ctype(dt)} v) {{ return v; }}"
        return f"kernels::gemm_bias_act({product}, {beta}, {bias}, {ctx.y(0)}, {act});"

    def _emit_panels(self, ctx: EmitContext, m: int, n: int, k: int, has_bias: bool, act: Optional[str]) -> str:
        """The gemm_panels call: A's strides from transA, C (a row of N) as the bias."""
        a_row, a_col = (1, m) if self.attrs["transA"] else (k, 1)
        dt = ctx.inputs[0].dtype
        beta = ctx.literal(self.attrs["beta"] if has_bias else 0.0, dt)
        act = act or "[](const float v) { return v; }"
        return (f"kernels::gemm_panels({m}, {n}, {k}, {ctx.literal(self.attrs['alpha'], dt)}, {ctx.x(0)}, "
                f"{a_row}, {a_col}, {ctx.x(1)}, {beta}, {ctx.x(2) if has_bias else 'nullptr'}, {ctx.y(0)}, {act});")


@register
class MatMul(Op):
    """Numpy matmul: 1-D operands promoted, batch dims broadcast."""

    op_type = "MatMul"
    kernels = ("gemm",)
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
