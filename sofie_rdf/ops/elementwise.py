"""Element-wise operators: unary math and activations, Cast, Clip, the
broadcasting binary arithmetic (with Mod) and the n-ary Sum, Min, Max and Mean.

Each op is a numpy reference plus its type rules; the bases are also what
``activations``, ``logic`` and ``bitwise`` build on.  Their C++ (an expression
per op in the loops of ``kernels/elementwise.hxx``) is the CPU emitter's,
``targets/cpu/emitters/elementwise.py``.
"""

from __future__ import annotations

import functools
from typing import Callable, ClassVar, Optional

import ml_dtypes
import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import dims_equal
from ..ir.dtypes import MINIFLOAT_TYPES, from_onnx, kind
from .base import Op, broadcast_shapes
from .registry import register


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))


# numpy dtype kinds an op accepts ("f" float, "i" signed, "u" unsigned integer, "b" bool, "q" narrow), spelled for messages.
_KIND_NAMES = {
    "f": "float",
    "i": "signed integer",
    "u": "unsigned integer",
    "b": "bool",
    "q": "narrow (4-bit integer, 8- or 4-bit float)",
}
NUMERIC = "fiu"


def check_kinds(op: Op, dtype: np.dtype, kinds: str) -> None:
    """Refuse an element type outside the op's ONNX type constraint."""
    if kind(dtype) not in kinds:
        raise op.error(f"input type {dtype} is not supported ({' or '.join(_KIND_NAMES[k] for k in kinds)} expected)")


class UnaryOp(Op):
    """y = f(x) element by element, same shape."""

    row_wise = True
    kinds: ClassVar[str] = "f"
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

@register
class Relu(UnaryOp):
    op_type = "Relu"
    kinds = NUMERIC

    def reference(self, x):
        return np.maximum(x, 0)


@register
class LeakyRelu(UnaryOp):
    op_type = "LeakyRelu"

    def reference(self, x):
        return np.where(x >= 0, x, x * self.attrs["alpha"])


@register
class Sigmoid(UnaryOp):
    op_type = "Sigmoid"

    def reference(self, x):
        return 1 / (1 + np.exp(-x))


@register
class Tanh(UnaryOp):
    op_type = "Tanh"
    reference = staticmethod(np.tanh)


@register
class Selu(UnaryOp):
    op_type = "Selu"

    def reference(self, x):
        a, g = self.attrs["alpha"], self.attrs["gamma"]
        return np.where(x > 0, g * x, g * (a * np.exp(x) - a))


@register
class Elu(UnaryOp):
    op_type = "Elu"

    def reference(self, x):
        return np.where(x >= 0, x, self.attrs["alpha"] * (np.exp(x) - 1))


@register
class Sqrt(UnaryOp):
    op_type = "Sqrt"
    reference = staticmethod(np.sqrt)


@register
class Exp(UnaryOp):
    op_type = "Exp"
    reference = staticmethod(np.exp)


@register
class Log(UnaryOp):
    op_type = "Log"
    reference = staticmethod(np.log)


@register
class Neg(UnaryOp):
    op_type = "Neg"
    kinds = NUMERIC
    reference = staticmethod(np.negative)


@register
class Abs(UnaryOp):
    op_type = "Abs"
    kinds = NUMERIC
    reference = staticmethod(np.abs)

@register
class Reciprocal(UnaryOp):
    op_type = "Reciprocal"
    reference = staticmethod(np.reciprocal)


@register
class Cast(UnaryOp):
    """Type conversion; to bool means "not zero", as in numpy.  To an 8- or 4-bit float, a value beyond the type's
    range becomes its largest finite value where ``saturate`` is 1 (the default, opset 19), else infinity or NaN
    as the type has them."""

    op_type = "Cast"
    kinds = NUMERIC + "bq"

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        return from_onnx(self.attrs["to"])

    @property
    def saturates(self) -> bool:
        return bool(self.attrs.get("saturate", 1))

    def evaluate(self, values):
        x = values[0]
        out = self.out_dtype(x.dtype)
        if x.dtype == object:
            if out.kind not in "iu":
                raise NotImplementedError
            return [x.copy()]
        if out in MINIFLOAT_TYPES and self.saturates:
            largest = float(ml_dtypes.finfo(out).max)
            x = np.clip(x.astype(np.float32), -largest, largest)  # NaN stays NaN
        return [x.astype(out)]

@register
class CastLike(Cast):
    """Cast to the element type of input 1, whose values are never read.

    ``saturate`` concerns 8- and 4-bit float targets, as Cast's; ``round_mode`` only float8e8m0, which
    sofie-rdf has no type for, so it cannot change a result.
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

    def reference(self, x):
        return np.clip(x, self.attrs["min"], self.attrs["max"])

@register
class Clip_11(Clip):
    """Clip with optional min/max inputs, which may be run-time scalars."""

    since_version = 11

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

    row_wise = True
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

def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype == object or b.dtype == object:
        return a // b
    if a.dtype.kind in "iu":
        return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(a.dtype)
    return a / b


@register
class Add(BinaryOp):
    op_type = "Add"
    reference = staticmethod(lambda a, b: a + b)


@register
class Sub(BinaryOp):
    op_type = "Sub"
    reference = staticmethod(lambda a, b: a - b)


@register
class Mul(BinaryOp):
    op_type = "Mul"
    reference = staticmethod(lambda a, b: a * b)


@register
class Div(BinaryOp):
    op_type = "Div"
    reference = staticmethod(_int_div)


@register
class Pow(BinaryOp):
    """Pow: the exponent may have another type; the result has the base's."""

    op_type = "Pow"
    reference = staticmethod(lambda a, b: np.power(a.astype(np.float64), b.astype(np.float64)))

    def out_dtype(self, a: np.dtype, b: np.dtype) -> np.dtype:
        return a

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

@register
class Mod_28(Mod):
    """Opset 28 defines fmod=0 on floating-point inputs too."""

    since_version = 28
    float_floor = True


class NaryOp(BinaryOp):
    """A binary op folded over one or more inputs, all broadcast together.

    The first two inputs are combined into the output; each further input is
    then combined into the output (Mean then divides it: :meth:`finish_value`).
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
        """The combined value after the last input (Mean divides it by the count)."""
        return total

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
    reference = staticmethod(_shape_arithmetic(np.minimum, sympy.Min))


@register
class Max(NaryOp):
    """Element-wise maximum; a NaN anywhere makes that element NaN, as in onnxruntime."""

    op_type = "Max"
    since_version = 6
    kinds = NUMERIC
    reference = staticmethod(_shape_arithmetic(np.maximum, sympy.Max))


@register
class Mean(NaryOp, Add):
    """Element-wise mean: the inputs are summed into the output, which is then divided once."""

    op_type = "Mean"
    since_version = 6
    kinds = "f"

    def finish_value(self, total: np.ndarray, count: int) -> np.ndarray:
        return total / total.dtype.type(count)
