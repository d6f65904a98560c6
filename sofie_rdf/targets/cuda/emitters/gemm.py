"""Matrix products on CUDA: Gemm (and FusedGemm) and MatMul through cuBLAS (``kernels/gemm.cuh``), fp32 and fp64.

Weights stay in the model's layout: cuBLAS reads a transposed B as fast as a plain one.  A bias C and a fused
activation follow the product in one epilogue launch (``bias_act``); without either, the product is the node.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ....ir.dims import num_elements
from ....ops.base import broadcast_strides, coalesce
from ....ops.fused import FusedActivation, FusedGemm
from ....ops.gemm import Gemm, MatMul
from ..emitter import CudaEmitter, emits, has_code

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

BLAS_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ActivationCode(CudaEmitter):
    """An emitter whose operator may carry a fused activation, applied by its kernel or epilogue as a lambda."""

    own_kernels: tuple[str, ...] = ()

    @classmethod
    def supports(cls, op: Any) -> bool:
        """A fused activation must itself have CUDA code."""
        return not isinstance(op, FusedActivation) or has_code(op.activation_op())

    @cached_property
    def activation(self) -> Optional[CudaEmitter]:
        """The fused activation bound to this target, None for the plain operator."""
        return self.target.bind(self.op.activation_op()) if isinstance(self.op, FusedActivation) else None

    @property
    def kernels(self) -> tuple[str, ...]:
        own = self.own_kernels
        return own if self.activation is None else tuple(dict.fromkeys(own + tuple(self.activation.kernels)))

    def activation_or_identity(self, ctx: NodeContext, dtype: np.dtype) -> str:
        """The activation's device lambda, or the identity on ``dtype``."""
        if self.activation is not None:
            return self.activation.function(ctx)
        t = ctx.ctype(dtype)
        return f"[] __device__ (const {t} v) -> {t} {{ return v; }}"


def _check_blas_type(emitter: CudaEmitter, dtype: np.dtype) -> None:
    if dtype not in BLAS_TYPES:
        raise emitter.error(f"the CUDA target multiplies float32 and float64 matrices, not {dtype}")


@emits(Gemm, FusedGemm)
class GemmEmitter(ActivationCode):
    """Gemm: ``kernels::gemm`` (cuBLAS), then ``bias_act`` where a bias C or an activation follows."""

    own_kernels = ("gemm",)

    def emit(self, ctx: NodeContext) -> str:
        a, b = ctx.inputs[0], ctx.inputs[1]
        _check_blas_type(self, a.dtype)
        c = ctx.inputs[2] if len(ctx.inputs) > 2 and ctx.inputs[2] is not None and self.attrs["beta"] != 0 else None
        m, n, k = self.op._mnk(a, b)
        dt = a.dtype
        trans = ", ".join(str(bool(self.attrs[t])).lower() for t in ("transA", "transB"))
        lines = [f"kernels::gemm(blas_, {trans}, {ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)}, "
                 f"{ctx.literal(self.attrs['alpha'], dt)}, {ctx.x(0)}, {ctx.x(1)}, {ctx.literal(0.0, dt)}, {ctx.y(0)});"]
        if c is None and self.activation is None:
            return lines[0]
        bias = f"static_cast<const {ctx.ctype(dt)} *>(nullptr), 0, 0"
        if c is not None:
            row, col = broadcast_strides(c.shape, (m, n))
            bias = f"{ctx.x(2)}, {ctx.dim(row)}, {ctx.dim(col)}"
        beta = ctx.literal(self.attrs["beta"] if c is not None else 0.0, dt)
        lines.append(f"kernels::bias_act({ctx.y(0)}, {ctx.dim(m)}, {ctx.dim(n)}, {beta}, {bias}, "
                     f"{self.activation_or_identity(ctx, dt)}, stream_);")
        return "\n".join(lines)


@emits(MatMul)
class MatMulEmitter(CudaEmitter):
    """MatMul: one product with the batch rows stacked where B is one matrix, else strided batched products
    over the last broadcast batch dim (coalesced), looped over the others on the host."""

    kernels = ("gemm",)

    def emit(self, ctx: NodeContext) -> str:
        a, b = ctx.inputs[0], ctx.inputs[1]
        _check_blas_type(self, a.dtype)
        sa, sb, batch = self.op._shapes(a, b)
        m, k, n = sa[-2], sa[-1], sb[-1]
        one, zero = ctx.literal(1.0, a.dtype), ctx.literal(0.0, a.dtype)
        dims = f"{ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)}"
        if all(isinstance(d, int) and d == 1 for d in sb[:-2]):  # (..., M, K) x (K, N): all batch rows stacked
            rows = num_elements(sa[:-1])
            return (f"kernels::gemm(blas_, false, false, {ctx.dim(rows)}, {ctx.dim(n)}, {ctx.dim(k)}, {one}, "
                    f"{ctx.x(0)}, {ctx.x(1)}, {zero}, {ctx.y(0)});")
        stride_a = [s * m * k for s in broadcast_strides(sa[:-2], batch)]
        stride_b = [s * k * n for s in broadcast_strides(sb[:-2], batch)]
        shape, (st_a, st_b) = coalesce(batch, stride_a, stride_b)
        if len(shape) == 1:
            return (f"kernels::gemm_batched(blas_, false, false, {dims}, {one}, {ctx.x(0)}, {ctx.dim(st_a[0])}, "
                    f"{ctx.x(1)}, {ctx.dim(st_b[0])}, {zero}, {ctx.y(0)}, {ctx.dim(m * n)}, {ctx.dim(shape[0])});")
        outer = ctx.array("outer_shape", shape[:-1])
        oa, ob = ctx.array("a_strides", st_a[:-1], "long long"), ctx.array("b_strides", st_b[:-1], "long long")
        inner = ctx.dim(shape[-1])
        return "\n".join([
            f"for (size_t o_ = 0; o_ < {ctx.dim(num_elements(shape[:-1]))}; ++o_) {{",
            "   size_t rest_ = o_;",
            "   long long at_a_ = 0, at_b_ = 0;",
            f"   for (int d_ = {len(shape) - 2}; d_ >= 0; --d_) {{",
            f"      at_a_ += static_cast<long long>(rest_ % {outer}[d_]) * {oa}[d_];",
            f"      at_b_ += static_cast<long long>(rest_ % {outer}[d_]) * {ob}[d_];",
            f"      rest_ /= {outer}[d_];",
            "   }",
            f"   kernels::gemm_batched(blas_, false, false, {dims}, {one}, {ctx.x(0)} + at_a_, {ctx.dim(st_a[-1])}, "
            f"{ctx.x(1)} + at_b_, {ctx.dim(st_b[-1])}, {zero}, {ctx.y(0)} + o_ * {inner} * {ctx.dim(m * n)}, "
            f"{ctx.dim(m * n)}, {inner});",
            "}"])
