"""Element-wise operators: unary math and activations, Cast, Clip, the
broadcasting binary arithmetic (with Mod) and the n-ary Sum, Min, Max and Mean.

Each unary op is a C++ expression in ``x`` (attributes as ``{name}``
placeholders) and a numpy reference; the shared bases emit the kernel call.
The bases are also what ``activations`` and ``logic`` build on.
"""

from __future__ import annotations

import functools
from typing import Callable, ClassVar, Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import dims_equal
from ..ir.dtypes import compute_dtype, from_onnx, kind
from .base import EmitContext, Op, broadcast_shapes, broadcast_strides, coalesce, static_size
from .registry import register


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))


# numpy dtype kinds an op accepts ("f" float, "i" signed, "u" unsigned integer, "b" bool), spelled for messages.
_KIND_NAMES = {"f": "float", "i": "signed integer", "u": "unsigned integer", "b": "bool"}
NUMERIC = "fiu"


def check_kinds(op: Op, dtype: np.dtype, kinds: str) -> None:
    """Refuse an element type outside the op's ONNX type constraint (its C++ expression may not even compile)."""
    if kind(dtype) not in kinds:
        raise op.error(f"input type {dtype} is not supported ({' or '.join(_KIND_NAMES[k] for k in kinds)} expected)")


class UnaryOp(Op):
    """y = f(x) element by element, same shape."""

    kernels = ("elementwise",)
    row_wise = True
    expr: ClassVar[str] = "x"
    params: ClassVar[tuple[str, ...]] = ()
    kinds: ClassVar[str] = "f"
    # Inputs whose memory the output may take over (passes/memory_planning.py): element i is read before
    # element i is written, and by no other element.
    inplace_inputs: ClassVar[tuple[int, ...]] = (0,)

    def reference(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        check_kinds(self, x.dtype, self.kinds)
        return [TensorType(self.out_dtype(x.dtype), x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        with np.errstate(all="ignore"):
            return [np.asarray(self.reference(x)).astype(self.out_dtype(x.dtype))]

    def body(self, ctx: EmitContext) -> str:
        """The C++ expression in ``x`` with attribute values filled in."""
        dtype = compute_dtype(ctx.inputs[0].dtype)
        values = {p: ctx.literal(self.attrs[p], dtype) for p in self.params}
        return self.expr.format(T=ctx.ctype(dtype), **values)

    def function(self, ctx: EmitContext) -> str:
        """The lambda applied per element (also used by fused epilogues)."""
        t_in, t_out = ctx.ctype(compute_dtype(ctx.inputs[0].dtype)), ctx.ctype(ctx.outputs[0].dtype)
        return f"[](const {t_in} x) -> {t_out} {{ return {self.body(ctx)}; }}"

    def emit(self, ctx: EmitContext) -> str:
        n = ctx.dim(ctx.outputs[0].size)
        return f"kernels::unary({ctx.x(0)}, {ctx.y(0)}, {n}, {self.function(ctx)});"


@register
class Relu(UnaryOp):
    op_type = "Relu"
    kinds = NUMERIC
    expr = "x < 0 ? {T}(0) : x"  # NaN propagates, as in onnxruntime

    def reference(self, x):
        return np.maximum(x, 0)


@register
class LeakyRelu(UnaryOp):
    op_type = "LeakyRelu"
    params = ("alpha",)
    expr = "x >= 0 ? x : {alpha} * x"

    def reference(self, x):
        return np.where(x >= 0, x, x * self.attrs["alpha"])


@register
class Sigmoid(UnaryOp):
    op_type = "Sigmoid"
    expr = "kernels::fast_sigmoid(x)"  # vectorizes (kernels/fastmath.hxx); std::exp would not

    def reference(self, x):
        return 1 / (1 + np.exp(-x))


@register
class Tanh(UnaryOp):
    op_type = "Tanh"
    expr = "kernels::fast_tanh(x)"
    reference = staticmethod(np.tanh)


@register
class Selu(UnaryOp):
    op_type = "Selu"
    params = ("alpha", "gamma")
    expr = "x > 0 ? {gamma} * x : {gamma} * ({alpha} * std::exp(x) - {alpha})"

    def reference(self, x):
        a, g = self.attrs["alpha"], self.attrs["gamma"]
        return np.where(x > 0, g * x, g * (a * np.exp(x) - a))


@register
class Elu(UnaryOp):
    op_type = "Elu"
    params = ("alpha",)
    expr = "x >= 0 ? x : {alpha} * (std::exp(x) - {T}(1))"

    def reference(self, x):
        return np.where(x >= 0, x, self.attrs["alpha"] * (np.exp(x) - 1))


@register
class Sqrt(UnaryOp):
    op_type = "Sqrt"
    expr = "std::sqrt(x)"
    reference = staticmethod(np.sqrt)


@register
class Exp(UnaryOp):
    op_type = "Exp"
    expr = "std::exp(x)"
    reference = staticmethod(np.exp)


@register
class Log(UnaryOp):
    op_type = "Log"
    expr = "std::log(x)"
    reference = staticmethod(np.log)


@register
class Neg(UnaryOp):
    op_type = "Neg"
    kinds = NUMERIC
    expr = "-x"
    reference = staticmethod(np.negative)


@register
class Abs(UnaryOp):
    op_type = "Abs"
    kinds = NUMERIC
    expr = "x < 0 ? -x : x"
    reference = staticmethod(np.abs)

    def body(self, ctx: EmitContext) -> str:
        # Unsigned values are their own absolute value; "x < 0" on them trips -Wtype-limits.
        return "x" if ctx.inputs[0].dtype.kind == "u" else super().body(ctx)


@register
class Reciprocal(UnaryOp):
    op_type = "Reciprocal"
    expr = "{T}(1) / x"
    reference = staticmethod(np.reciprocal)


@register
class Cast(UnaryOp):
    """Type conversion; to bool means "not zero", as in numpy."""

    op_type = "Cast"
    kinds = NUMERIC + "b"

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        return from_onnx(self.attrs["to"])

    def evaluate(self, values):
        x = values[0]
        if x.dtype == object:
            if self.out_dtype(x.dtype).kind not in "iu":
                raise NotImplementedError
            return [x.copy()]
        return [x.astype(self.out_dtype(x.dtype))]

    def body(self, ctx: EmitContext) -> str:
        if ctx.outputs[0].dtype == np.bool_:
            return "x != 0"
        return f"static_cast<{ctx.ctype(ctx.outputs[0].dtype)}>(x)"


@register
class CastLike(Cast):
    """Cast to the element type of input 1, whose values are never read.

    ``saturate`` and ``round_mode`` only concern float8 (and float8e8m0)
    targets, which sofie-rdf has no type for, so they cannot change a result.
    """

    op_type = "CastLike"
    since_version = 15
    target: np.dtype

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        return self.target

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.target = inputs[1].dtype
        return super().infer(inputs)

    def evaluate(self, values):
        like = values[1]
        self.target = np.dtype(np.int64) if like.dtype == object else like.dtype  # object: a shape value
        return super().evaluate(values)


@register
class Clip(UnaryOp):
    """Clip with bounds as attributes (opset < 11)."""

    op_type = "Clip"
    kinds = NUMERIC

    def bounds(self, ctx: EmitContext) -> tuple[str, str]:
        dtype = ctx.inputs[0].dtype
        return ctx.literal(self.attrs["min"], dtype), ctx.literal(self.attrs["max"], dtype)

    def reference(self, x):
        return np.clip(x, self.attrs["min"], self.attrs["max"])

    def function(self, ctx: EmitContext) -> str:
        t = ctx.ctype(ctx.inputs[0].dtype)
        lo, hi = self.bounds(ctx)
        return f"[lo = {lo}, hi = {hi}](const {t} x) -> {t} {{ return std::min(std::max(x, lo), hi); }}"


@register
class Clip_11(Clip):
    """Clip with optional min/max inputs, which may be run-time scalars."""

    since_version = 11

    def bounds(self, ctx: EmitContext) -> tuple[str, str]:
        t = ctx.ctype(ctx.inputs[0].dtype)
        lo = f"{ctx.x(1)}[0]" if ctx.inputs[1:2] and ctx.inputs[1] else f"std::numeric_limits<{t}>::lowest()"
        hi = f"{ctx.x(2)}[0]" if ctx.inputs[2:3] and ctx.inputs[2] else f"std::numeric_limits<{t}>::max()"
        return lo, hi

    def evaluate(self, values):
        x = values[0]
        lo = values[1] if len(values) > 1 and values[1] is not None else None
        hi = values[2] if len(values) > 2 and values[2] is not None else None
        y = x
        if lo is not None:
            y = np.maximum(y, lo.reshape(()))
        if hi is not None:
            y = np.minimum(y, hi.reshape(()))
        return [np.asarray(y, dtype=x.dtype)]


# ---- binary operators ----------------------------------------------------

class BinaryOp(Op):
    """y = f(a, b) with numpy broadcasting."""

    kernels = ("elementwise",)
    row_wise = True
    expr: ClassVar[str] = ""
    kinds: ClassVar[str] = NUMERIC + "b"
    reference: ClassVar[Callable]
    # As UnaryOp's; an n-ary op writes its output before it reads inputs 2 and up, so only the first two.
    inplace_inputs: ClassVar[tuple[int, ...]] = (0, 1)

    def out_dtype(self, a: np.dtype, b: np.dtype) -> np.dtype:
        if a != b:
            raise self.error(f"input types differ ({a} and {b})")
        check_kinds(self, a, self.kinds)
        return a

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        a, b = inputs[0], inputs[1]
        return [TensorType(self.out_dtype(a.dtype, b.dtype), broadcast_shapes(self, a.shape, b.shape))]

    def evaluate(self, values):
        a, b = values[0], values[1]
        out = self.out_dtype(a.dtype, b.dtype) if object not in (a.dtype, b.dtype) else object
        with np.errstate(all="ignore"):
            y = np.asarray(self.reference(a, b))
        return [y.astype(out) if out is not object else y]

    def body(self, ctx: EmitContext) -> str:
        """The C++ expression in ``a`` and ``b``."""
        return self.expr

    def function(self, ctx: EmitContext) -> str:
        ta, tb = (ctx.ctype(compute_dtype(t.dtype)) for t in ctx.inputs[:2])
        ty = ctx.ctype(ctx.outputs[0].dtype)
        return f"[](const {ta} a, const {tb} b) -> {ty} {{ return {self.body(ctx)}; }}"
    def emit(self, ctx: EmitContext) -> str:
        a, b = ctx.inputs[0], ctx.inputs[1]
        y = ctx.outputs[0]
        f = self.function(ctx)
        n = ctx.dim(y.size)
        if _same_shape(a.shape, y.shape) and _same_shape(b.shape, y.shape):
            return f"kernels::binary({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {n}, {f});"
        if _same_shape(a.shape, y.shape) and static_size(b.shape) == 1:
            return f"kernels::binary_scalar_b({ctx.x(0)}, {ctx.x(1)}[0], {ctx.y(0)}, {n}, {f});"
        if _same_shape(b.shape, y.shape) and static_size(a.shape) == 1:
            return f"kernels::binary_scalar_a({ctx.x(0)}[0], {ctx.x(1)}, {ctx.y(0)}, {n}, {f});"
        shape, (sa, sb) = coalesce(y.shape, broadcast_strides(a.shape, y.shape), broadcast_strides(b.shape, y.shape))
        dims = ctx.array("shape", shape)
        sa_, sb_ = ctx.array("a_strides", sa, "std::ptrdiff_t"), ctx.array("b_strides", sb, "std::ptrdiff_t")
        return (
            f"kernels::binary_strided({ctx.x(0)}, {sa_}, {ctx.x(1)}, {sb_}, {ctx.y(0)}, {dims}, {len(shape)}, {f});"
        )


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype == object or b.dtype == object:
        return a // b
    if a.dtype.kind in "iu":
        return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(a.dtype)
    return a / b


@register
class Add(BinaryOp):
    op_type = "Add"
    expr = "a + b"
    reference = staticmethod(lambda a, b: a + b)


@register
class Sub(BinaryOp):
    op_type = "Sub"
    expr = "a - b"
    reference = staticmethod(lambda a, b: a - b)


@register
class Mul(BinaryOp):
    op_type = "Mul"
    expr = "a * b"
    reference = staticmethod(lambda a, b: a * b)


@register
class Div(BinaryOp):
    op_type = "Div"
    expr = "a / b"
    reference = staticmethod(_int_div)


@register
class Pow(BinaryOp):
    """Pow: the exponent may have another type; the result has the base's."""

    op_type = "Pow"
    expr = "std::pow(a, b)"
    reference = staticmethod(lambda a, b: np.power(a.astype(np.float64), b.astype(np.float64)))

    def out_dtype(self, a: np.dtype, b: np.dtype) -> np.dtype:
        return a

    def function(self, ctx: EmitContext) -> str:
        ty = ctx.ctype(ctx.outputs[0].dtype)
        ta, tb = (ctx.ctype(compute_dtype(t.dtype)) for t in ctx.inputs[:2])
        return f"[](const {ta} a, const {tb} b) -> {ty} {{ return static_cast<{ty}>(std::pow(a, b)); }}"


@register
class Mod(BinaryOp):
    """Remainder: fmod=0 floors the quotient (sign of the divisor, Python's %), fmod=1 truncates it (C fmod).

    Before opset 28 floored remainders are integer-only; an integer division
    by zero throws std::invalid_argument instead of trapping.
    """

    op_type = "Mod"
    since_version = 10
    kinds = NUMERIC
    float_floor: ClassVar[bool] = False

    def out_dtype(self, a: np.dtype, b: np.dtype) -> np.dtype:
        dtype = super().out_dtype(a, b)
        if self.attrs["fmod"] not in (0, 1):
            raise self.error(f"fmod must be 0 or 1, got {self.attrs['fmod']}")
        if dtype.kind == "f" and self.attrs["fmod"] == 0 and not self.float_floor:
            raise self.error(f"fmod=0 on {dtype} inputs is only defined from opset 28 (set fmod=1)")
        return dtype

    def reference(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if b.dtype.kind in "iu" and np.any(b == 0):
            raise self.error("integer division by zero")
        return np.mod(a, b) if self.attrs["fmod"] == 0 else np.fmod(a, b)

    def body(self, ctx: EmitContext) -> str:
        return f"kernels::{'mod_floor' if self.attrs['fmod'] == 0 else 'mod_trunc'}(a, b)"


@register
class Mod_28(Mod):
    """Opset 28 defines fmod=0 on floating-point inputs too."""

    since_version = 28
    float_floor = True


class NaryOp(BinaryOp):
    """A binary op folded over one or more inputs, all broadcast together.

    The first two inputs are combined into the output; each further input is
    then combined into the output in place (element ``i`` is read before it
    is written, so aliasing is safe); :meth:`finish` may then rescale it.
    """

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        shape = inputs[0].shape
        for t in inputs[1:]:
            self.out_dtype(inputs[0].dtype, t.dtype)
            shape = broadcast_shapes(self, shape, t.shape)
        check_kinds(self, inputs[0].dtype, self.kinds)
        return [TensorType(inputs[0].dtype, shape)]

    def evaluate(self, values):
        with np.errstate(all="ignore"):
            total = np.asarray(self.finish_value(functools.reduce(self.reference, values), len(values)))
        return [total if total.dtype == object else total.astype(values[0].dtype)]  # object: symbolic dims

    def finish_value(self, total: np.ndarray, count: int) -> np.ndarray:
        """The numpy counterpart of :meth:`finish`."""
        return total

    def finish(self, ctx: EmitContext) -> str:
        """Statements applied to the combined output (Mean divides it)."""
        return ""

    def emit(self, ctx: EmitContext) -> str:
        y = ctx.outputs[0]
        if len(ctx.inputs) == 1:
            shape, (sx,) = coalesce(y.shape, broadcast_strides(ctx.inputs[0].shape, y.shape))
            return (f"kernels::unary_strided({ctx.x(0)}, {ctx.array('x_strides', sx, 'std::ptrdiff_t')}, {ctx.y(0)}, "
                    f"{ctx.array('shape', shape)}, {len(shape)}, [](const auto a) {{ return a; }});")
        lines = [super().emit(ctx)]
        f = self.function(ctx)
        for k in range(2, len(ctx.inputs)):
            shape, (sy, sx) = coalesce(y.shape, broadcast_strides(y.shape, y.shape),
                                       broadcast_strides(ctx.inputs[k].shape, y.shape))
            dims = ctx.array(f"shape{k}", shape)
            sy_, sx_ = (ctx.array(f"{n}{k}", s, "std::ptrdiff_t") for n, s in (("y_strides", sy), ("x_strides", sx)))
            lines.append(f"kernels::binary_strided({ctx.y(0)}, {sy_}, {ctx.x(k)}, {sx_}, {ctx.y(0)}, {dims}, "
                         f"{len(shape)}, {f});")
        lines.append(self.finish(ctx))
        return "\n".join(line for line in lines if line)


@register
class Sum(NaryOp, Add):
    """Sum of one or more tensors with numpy broadcasting (resnet50 and shufflenet's residual joins)."""

    op_type = "Sum"
    since_version = 6
    kinds = "f"


def _shape_arithmetic(numeric, symbolic):
    """``numeric`` (a numpy function of two arrays), or ``symbolic`` element by element when an operand
    holds sympy dims: exporters compute sizes like ``min(P - 1, k)`` from shapes, which must fold."""
    elementwise = np.frompyfunc(symbolic, 2, 1)

    def apply(a, b):
        if np.asarray(a).dtype == object or np.asarray(b).dtype == object:
            return elementwise(a, b)
        return numeric(a, b)

    return apply


@register
class Min(NaryOp):
    """Element-wise minimum; a NaN anywhere makes that element NaN, as in onnxruntime."""

    op_type = "Min"
    since_version = 6
    kinds = NUMERIC
    expr = "kernels::minimum(a, b)"
    reference = staticmethod(_shape_arithmetic(np.minimum, sympy.Min))


@register
class Max(NaryOp):
    """Element-wise maximum; a NaN anywhere makes that element NaN, as in onnxruntime."""

    op_type = "Max"
    since_version = 6
    kinds = NUMERIC
    expr = "kernels::maximum(a, b)"
    reference = staticmethod(_shape_arithmetic(np.maximum, sympy.Max))


@register
class Mean(NaryOp, Add):
    """Element-wise mean: the inputs are summed into the output, which is then divided once."""

    op_type = "Mean"
    since_version = 6
    kinds = "f"

    def finish_value(self, total: np.ndarray, count: int) -> np.ndarray:
        return total / total.dtype.type(count)

    def finish(self, ctx: EmitContext) -> str:
        if len(ctx.inputs) == 1:
            return ""
        y = ctx.outputs[0]
        t = ctx.ctype(y.dtype)
        count = ctx.literal(len(ctx.inputs), y.dtype)
        return f"kernels::unary({ctx.y(0)}, {ctx.y(0)}, {ctx.dim(y.size)}, [](const {t} v) -> {t} {{ return v / {count}; }});"
