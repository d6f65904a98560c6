"""Element-wise operators on CUDA: the grid-stride loops of ``kernels/elementwise.cuh`` around one device lambda.

The expressions are the CPU's (``targets/_cxx/expressions.py``); ``kernels/math.cuh`` defines the functions they
call.  A lambda is ``__device__`` (nvcc's extended lambdas) where a kernel takes it, plain inside another
device lambda (a step of :class:`FusedElementwise`, whose one lambda reads every operand itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ....ir.dims import dims_equal
from ....ir.dtypes import compute_dtype
from ....ops import activations, elementwise, logic
from ....ops.base import broadcast_strides, coalesce, static_size
from ....ops.fused import FusedElementwise
from ..._cxx.expressions import EXPRESSIONS, filled, gelu, step_inputs
from ..emitter import CudaEmitter, emits, has_code
from ._structs import values

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

_T = compute_dtype
DEVICE = "__device__ "


def has_expression(op_class: type, base: type) -> bool:
    """Whether the expression table covers ``op_class`` itself or a class between it and ``base`` (``base``'s
    own entry, the identity, is no operator's meaning)."""
    for cls in op_class.__mro__:
        if cls is base:
            return False
        if cls in EXPRESSIONS:
            return True
    return False


@emits(elementwise.UnaryOp)
class UnaryEmitter(CudaEmitter):
    """``y = f(x)``: one ``kernels::unary`` launch."""

    kernels = ("elementwise",)

    @classmethod
    def supports(cls, op: Any) -> bool:
        return has_expression(type(op), elementwise.UnaryOp)

    def body(self, ctx: NodeContext) -> str:
        """The C++ expression in ``x``."""
        return filled(self.op, ctx, _T(ctx.inputs[0].dtype))

    def function(self, ctx: NodeContext, space: str = DEVICE) -> str:
        """The lambda applied per element (by this node's kernel, a fused epilogue or a fused chain's step)."""
        t_in, t_out = ctx.ctype(_T(ctx.inputs[0].dtype)), ctx.ctype(ctx.outputs[0].dtype)
        return f"[] {space}(const {t_in} x) -> {t_out} {{ return {self.body(ctx)}; }}"

    def emit(self, ctx: NodeContext) -> str:
        n = ctx.dim(ctx.outputs[0].size)
        return f"kernels::unary({ctx.x(0)}, {ctx.y(0)}, {n}, {self.function(ctx)}, stream_);"


@emits(elementwise.Cast)
class CastEmitter(UnaryEmitter):
    @classmethod
    def supports(cls, op: Any) -> bool:
        return True

    def body(self, ctx: NodeContext) -> str:
        if ctx.outputs[0].dtype == np.bool_:
            return "x != 0"
        return f"static_cast<{ctx.ctype(ctx.outputs[0].dtype)}>(x)"


@emits(elementwise.Clip)
class ClipEmitter(UnaryEmitter):
    """Bounds as constants of the expression."""

    @classmethod
    def supports(cls, op: Any) -> bool:
        return True

    def bounds(self, ctx: NodeContext) -> tuple[str, str]:
        dtype = ctx.inputs[0].dtype
        return ctx.literal(self.attrs["min"], dtype), ctx.literal(self.attrs["max"], dtype)

    def body(self, ctx: NodeContext) -> str:
        lo, hi = self.bounds(ctx)
        return f"kernels::minimum(kernels::maximum(x, {lo}), {hi})"


@emits(elementwise.Clip_11)
class Clip11Emitter(ClipEmitter):
    """Bounds from the optional min/max inputs: constants where known, else read on the device."""

    def bounds(self, ctx: NodeContext) -> tuple[str, str]:
        t = ctx.ctype(ctx.inputs[0].dtype)
        out = []
        for k, default in ((1, f"std::numeric_limits<{t}>::lowest()"), (2, f"std::numeric_limits<{t}>::max()")):
            bound = ctx.inputs[k] if len(ctx.inputs) > k else None
            if bound is None:
                out.append(default)
            elif bound.value is not None:
                out.append(ctx.literal(bound.value.reshape(-1)[0], ctx.inputs[0].dtype))
            else:
                out.append(f"bound{k}_[0]")
        return out[0], out[1]

    def function(self, ctx: NodeContext, space: str = DEVICE) -> str:
        """Bounds computed while running are device pointers the lambda captures."""
        captures = ", ".join(f"bound{k}_ = {ctx.x(k)}" for k in (1, 2)
                             if len(ctx.inputs) > k and ctx.inputs[k] is not None and ctx.inputs[k].value is None)
        t = ctx.ctype(ctx.inputs[0].dtype)
        return f"[{captures}] {space}(const {t} x) -> {t} {{ return {self.body(ctx)}; }}"


@emits(activations.Gelu)
class GeluEmitter(UnaryEmitter):
    @classmethod
    def supports(cls, op: Any) -> bool:
        return True

    def body(self, ctx: NodeContext) -> str:
        return gelu(self.attrs["approximate"], ctx, _T(ctx.inputs[0].dtype))


@emits(elementwise.BinaryOp)
class BinaryEmitter(CudaEmitter):
    """``y = f(a, b)``: a flat launch where each operand is of the output's shape or one value, else the
    strided launch over the broadcast shape (adjacent dims merged)."""

    kernels = ("elementwise",)

    @classmethod
    def supports(cls, op: Any) -> bool:
        return has_expression(type(op), elementwise.BinaryOp)

    def body(self, ctx: NodeContext) -> str:
        """The C++ expression in ``a`` and ``b``."""
        return filled(self.op, ctx, _T(ctx.inputs[0].dtype))

    def function(self, ctx: NodeContext, space: str = DEVICE) -> str:
        ta, tb = (ctx.ctype(_T(t.dtype)) for t in ctx.inputs[:2])
        ty = ctx.ctype(ctx.outputs[0].dtype)
        return f"[] {space}(const {ta} a, const {tb} b) -> {ty} {{ return {self.body(ctx)}; }}"

    def emit(self, ctx: NodeContext) -> str:
        a, b, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        f, n = self.function(ctx), ctx.dim(y.size)
        steps = [_step(t.shape, y.shape) for t in (a, b)]
        if None not in steps:
            return (f"kernels::binary({ctx.x(0)}, {steps[0]}, {ctx.x(1)}, {steps[1]}, {ctx.y(0)}, {n}, {f}, "
                    "stream_);")
        shape, (sa, sb) = coalesce(y.shape, broadcast_strides(a.shape, y.shape), broadcast_strides(b.shape, y.shape))
        layout = (f"kernels::Broadcast<{len(shape)}>{{{values(ctx, shape, 'size_t')}, "
                  f"{values(ctx, sa, 'long long')}, {values(ctx, sb, 'long long')}}}")
        return f"kernels::binary_strided({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {n}, {layout}, {f}, stream_);"


def _step(shape: tuple, out: tuple) -> Any:
    """1 for an operand of the output's shape, 0 for a single value, None for a broadcast."""
    if len(shape) == len(out) and all(map(dims_equal, shape, out)):
        return 1
    return 0 if static_size(shape) == 1 else None


@emits(elementwise.Pow)
class PowEmitter(BinaryEmitter):
    """``std::pow``, the exponent of either type; the result is the base's."""

    @classmethod
    def supports(cls, op: Any) -> bool:
        return True

    def body(self, ctx: NodeContext) -> str:
        return f"static_cast<{ctx.ctype(ctx.outputs[0].dtype)}>(std::pow(a, b))"


@emits(logic.Where)
class WhereEmitter(CudaEmitter):
    """condition ? X : Y over the three broadcast together (``kernels::where``)."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        shape, strides = coalesce(y.shape, *(broadcast_strides(t.shape, y.shape) for t in ctx.inputs[:3]))
        shape, strides = (shape, strides) if shape else ([1], [[0], [0], [0]])
        layout = ", ".join([values(ctx, shape, "size_t")] + [values(ctx, s, "long long") for s in strides])
        return (f"kernels::where({ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {ctx.y(0)}, {ctx.dim(y.size)}, "
                f"kernels::Broadcast3<{len(shape)}>{{{layout}}}, stream_);")


@emits(FusedElementwise)
class FusedElementwiseEmitter(CudaEmitter):
    """One launch: each element goes through every step while in a register (one device lambda reading the
    operands: each of the output's shape or a single value)."""

    kernels = ("elementwise",)

    def __init__(self, op: FusedElementwise, target: Any) -> None:
        super().__init__(op, target)
        self.steps = [target.bind(step) for step in op.ops]

    @classmethod
    def supports(cls, op: Any) -> bool:
        return all(has_code(step) for step in op.ops)

    def emit(self, ctx: NodeContext) -> str:
        n = ctx.dim(ctx.outputs[0].size)
        scalar = {k for k, t in enumerate(ctx.inputs) if k and static_size(t.shape) == 1}
        captures = ", ".join(f"x{k} = {ctx.x(k)}" for k in range(len(ctx.inputs)))
        lines = [f"const auto f{i} = {emitter.function(ctx.with_inputs(step_inputs(ctx.inputs, step)), space='')};"
                 for i, (emitter, step) in enumerate(zip(self.steps, self.op.steps))]
        lines.append("auto v = x0[i];")
        for i, step in enumerate(self.op.steps):
            k = step["operand"]
            if k < 0:
                lines.append(f"v = f{i}(v);")
                continue
            operand = f"x{k}[0]" if k in scalar else f"x{k}[i]"
            lines.append(f"v = f{i}({operand}, v);" if step.get("operand_first") else f"v = f{i}(v, {operand});")
        lines.append("return v;")
        t = ctx.ctype(ctx.outputs[0].dtype)
        body = "\n".join("   " + line for line in lines)
        return f"kernels::generate({ctx.y(0)}, {n}, [{captures}] __device__ (const size_t i) -> {t} {{\n{body}\n}}, stream_);"
