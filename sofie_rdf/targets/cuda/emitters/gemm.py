"""Matrix products on CUDA: Gemm (and FusedGemm) and MatMul through cuBLAS and cuBLASLt (``kernels/gemm.cuh``),
fp32 and fp64.

Weights stay in the model's layout: cuBLAS reads a transposed B as fast as a plain one.  A bias over the output's
columns, with ReLU or no activation after it, is the epilogue of one cuBLASLt product (``gemm_bias``); other
biases and activations follow the product in one launch (``bias_act``); without either, the product is the node.
GELU stays a launch of its own: ONNX's is the erf form, not the tanh approximation of cuBLASLt's GELU epilogues.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ....ir import TensorType
from ....ir.dims import Dim, dims_equal, num_elements
from ....ops.base import broadcast_strides, coalesce, contiguous_strides
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
        if c is not None and self._bias_epilogue(c, m, n):
            relu = str(self.activation is not None).lower()
            return (f"kernels::gemm_bias(blas_lt_, {trans}, {ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)}, "
                    f"{ctx.literal(self.attrs['alpha'], dt)}, {ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {relu}, {ctx.y(0)}, "
                    "blas_workspace_, kBlasWorkspace, stream_);")
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

    def _bias_epilogue(self, c: TensorType, m: Dim, n: Dim) -> bool:
        """Whether cuBLASLt's epilogue computes the bias and activation: fp32, C is one value per output column (a
        vector over N, added as it is: beta 1) and the activation is ReLU or none."""
        over_columns = [dims_equal(s, want) for s, want in zip(broadcast_strides(c.shape, (m, n)), (0, 1))]
        relu_or_none = self.activation is None or self.op.activation_op().node.op_type == "Relu"
        return (c.dtype == np.float32 and all(over_columns) and not dims_equal(n, 1) and self.attrs["beta"] == 1.0
                and relu_or_none)


def _strided_dim(shape: Sequence[Dim]) -> int:
    """The batch dim one strided-batched call covers: one holding the batch's symbol where there is one (the
    host then loops over known dims only, as many calls whatever the batch), else the longest."""
    symbolic = [i for i, d in enumerate(shape) if not isinstance(d, int)]
    if symbolic:
        return symbolic[0]
    return max(range(len(shape)), key=lambda i: shape[i])


@emits(MatMul)
class MatMulEmitter(CudaEmitter):
    """MatMul: one product with the batch rows stacked where B is one matrix, else one strided-batched product
    over the batch dims merged (symbolic ones included); dims that cannot merge (operands broadcast differently
    along them) are looped over on the host, all but the one holding the batch, so that the calls do not grow
    with it."""

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
        stride_y = [s * m * n for s in contiguous_strides(batch)]
        shape, (st_a, st_b, st_y) = coalesce(batch, stride_a, stride_b, stride_y, symbolic=True)
        if len(shape) == 1:
            return (f"kernels::gemm_batched(blas_, false, false, {dims}, {one}, {ctx.x(0)}, {ctx.dim(st_a[0])}, "
                    f"{ctx.x(1)}, {ctx.dim(st_b[0])}, {zero}, {ctx.y(0)}, {ctx.dim(st_y[0])}, {ctx.dim(shape[0])});")
        inner = _strided_dim(shape)
        outer = [i for i in range(len(shape)) if i != inner]
        outer_shape = ctx.array("outer_shape", [shape[i] for i in outer])
        oa, ob, oy = (ctx.array(f"{name}_strides", [st[i] for i in outer], "long long")
                      for name, st in (("a", st_a), ("b", st_b), ("y", st_y)))
        return "\n".join([
            f"for (size_t o_ = 0; o_ < {ctx.dim(num_elements([shape[i] for i in outer]))}; ++o_) {{",
            "   size_t rest_ = o_;",
            "   long long at_a_ = 0, at_b_ = 0, at_y_ = 0;",
            f"   for (int d_ = {len(outer) - 1}; d_ >= 0; --d_) {{",
            f"      const long long i_ = static_cast<long long>(rest_ % {outer_shape}[d_]);",
            f"      at_a_ += i_ * {oa}[d_];",
            f"      at_b_ += i_ * {ob}[d_];",
            f"      at_y_ += i_ * {oy}[d_];",
            f"      rest_ /= {outer_shape}[d_];",
            "   }",
            f"   kernels::gemm_batched(blas_, false, false, {dims}, {one}, {ctx.x(0)} + at_a_, {ctx.dim(st_a[inner])}, "
            f"{ctx.x(1)} + at_b_, {ctx.dim(st_b[inner])}, {zero}, {ctx.y(0)} + at_y_, {ctx.dim(st_y[inner])}, "
            f"{ctx.dim(shape[inner])});",
            "}"])
