"""More element-wise unary operators: trigonometric and rounding functions,
Erf and the smooth or piecewise-linear activations, IsNaN/IsInf, Sign, and
PRelu (whose slope broadcasts to the input).

All are :class:`~sofie_rdf.ops.elementwise.UnaryOp` (or ``BinaryOp``)
subclasses: a C++ expression plus a numpy reference, so they fuse into a
preceding Conv or Gemm like the basic activations do.
"""

from __future__ import annotations

import math
from typing import ClassVar, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from ..ir.dtypes import compute_dtype
from .base import EmitContext
from .elementwise import BinaryOp, UnaryOp
from .registry import register

_erf = np.vectorize(math.erf, otypes=[np.float64])


# ---- plain math functions: y = std::f(x) -------------------------------------------------

# op type -> (first opset of today's form, C++ function in std::, numpy reference)
MATH_FUNCTIONS = {
    "Sin": (7, "sin", np.sin), "Cos": (7, "cos", np.cos), "Tan": (7, "tan", np.tan),
    "Asin": (7, "asin", np.arcsin), "Acos": (7, "acos", np.arccos), "Atan": (7, "atan", np.arctan),
    "Sinh": (9, "sinh", np.sinh), "Cosh": (9, "cosh", np.cosh), "Asinh": (9, "asinh", np.arcsinh),
    "Acosh": (9, "acosh", np.arccosh), "Atanh": (9, "atanh", np.arctanh),
    "Floor": (6, "floor", np.floor), "Ceil": (6, "ceil", np.ceil),
    # nearbyint rounds half to even in the default rounding mode, as np.round and the spec do.
    "Round": (11, "nearbyint", np.round),
    "Erf": (9, "erf", _erf),
}


def _math_function(op_type: str, since_version: int, function: str, reference) -> type:
    """The UnaryOp class ``y = std::function(x)`` (one line of the table above each)."""
    return register(type(op_type, (UnaryOp,), {
        "__doc__": f"{op_type}: y = std::{function}(x).",
        "__module__": __name__,
        "op_type": op_type,
        "since_version": since_version,
        "expr": f"std::{function}(x)",
        "reference": staticmethod(reference),
    }))


for _name, (_since, _function, _reference) in MATH_FUNCTIONS.items():
    globals()[_name] = _math_function(_name, _since, _function, _reference)


# ---- activations --------------------------------------------------------------------------

# log(1 + exp(x)) without overflow for large x (onnxruntime's form).
_SOFTPLUS = "(x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)))"


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x)


@register
class Softplus(UnaryOp):
    op_type = "Softplus"
    expr = _SOFTPLUS
    reference = staticmethod(_softplus)


@register
class Mish(UnaryOp):
    op_type = "Mish"
    since_version = 18
    expr = f"x * std::tanh({_SOFTPLUS})"

    def reference(self, x):
        return x * np.tanh(_softplus(x))


@register
class Softsign(UnaryOp):
    op_type = "Softsign"
    expr = "x / ({T}(1) + std::abs(x))"

    def reference(self, x):
        return x / (1 + np.abs(x))


@register
class HardSigmoid(UnaryOp):
    op_type = "HardSigmoid"
    since_version = 6
    params = ("alpha", "beta")
    expr = "std::max(std::min({alpha} * x + {beta}, {T}(1)), {T}(0))"  # this operand order keeps NaN

    def reference(self, x):
        return np.clip(self.attrs["alpha"] * x + self.attrs["beta"], 0, 1)


@register
class HardSwish(UnaryOp):
    """x * HardSigmoid(x) with alpha = 1/6, beta = 0.5."""

    op_type = "HardSwish"
    since_version = 14
    expr = "x * std::max({T}(0), std::min({T}(1), x / {T}(6) + {T}(0.5)))"

    def reference(self, x):
        return x * np.clip(x / 6 + 0.5, 0, 1)


@register
class ThresholdedRelu(UnaryOp):
    op_type = "ThresholdedRelu"
    since_version = 10
    params = ("alpha",)
    expr = "x > {alpha} ? x : {T}(0)"

    def reference(self, x):
        return np.where(x > self.attrs["alpha"], x, 0)


@register
class Celu(UnaryOp):
    op_type = "Celu"
    since_version = 12
    params = ("alpha",)
    expr = "std::max(x, {T}(0)) + std::min({alpha} * (std::exp(x / {alpha}) - {T}(1)), {T}(0))"  # keeps NaN

    def reference(self, x):
        a = self.attrs["alpha"]
        return np.maximum(0, x) + np.minimum(0, a * (np.exp(x / a) - 1))


@register
class Gelu(UnaryOp):
    """Gelu: exact (erf) form, or onnxruntime's tanh approximation with approximate="tanh"."""

    op_type = "Gelu"
    since_version = 20
    # approximate -> expression; {c} is the constant inside erf (1/sqrt 2) or tanh (sqrt(2/pi)).
    FORMS: ClassVar[dict[str, tuple[str, float]]] = {
        "none": ("{T}(0.5) * x * ({T}(1) + std::erf(x * {c}))", 1 / math.sqrt(2)),
        "tanh": ("{T}(0.5) * x * ({T}(1) + std::tanh({c} * (x + {T}(0.044715) * x * x * x)))", math.sqrt(2 / math.pi)),
    }

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        if self.attrs["approximate"] not in self.FORMS:
            raise self.error(f"approximate must be 'none' or 'tanh', got {self.attrs['approximate']!r}")
        return super().infer(inputs)

    def reference(self, x):
        if self.attrs["approximate"] == "tanh":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))

    def body(self, ctx: EmitContext) -> str:
        expr, c = self.FORMS[self.attrs["approximate"]]
        dtype = compute_dtype(ctx.inputs[0].dtype)
        return expr.format(T=ctx.ctype(dtype), c=ctx.literal(c, dtype))


@register
class Sign(UnaryOp):
    """-1, 0 or 1 (NaN stays NaN); unsigned values are never negative."""

    op_type = "Sign"
    since_version = 9
    kinds = "fiu"
    expr = "x > 0 ? {T}(1) : x < 0 ? {T}(-1) : x"
    reference = staticmethod(np.sign)

    def body(self, ctx: EmitContext) -> str:
        # "x < 0" on an unsigned type trips -Wtype-limits.
        if ctx.inputs[0].dtype.kind == "u":
            return f"x > 0 ? {ctx.ctype(ctx.inputs[0].dtype)}(1) : x"
        return super().body(ctx)


# ---- floating-point classification -> bool ----------------------------------------------------

class Classification(UnaryOp):
    """A float predicate: bool output."""

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(np.bool_)


@register
class IsNaN(Classification):
    op_type = "IsNaN"
    since_version = 9
    expr = "std::isnan(x)"
    reference = staticmethod(np.isnan)


@register
class IsInf(Classification):
    """Infinities of the signs selected by detect_positive / detect_negative."""

    op_type = "IsInf"
    since_version = 10

    def reference(self, x):
        return np.isinf(x) & np.where(x > 0, bool(self.attrs["detect_positive"]), bool(self.attrs["detect_negative"]))

    def body(self, ctx: EmitContext) -> str:
        positive, negative = (ctx.literal(self.attrs[k], np.dtype(np.bool_)) for k in ("detect_positive", "detect_negative"))
        return f"std::isinf(x) && (x > 0 ? {positive} : {negative})"


# ---- PRelu ------------------------------------------------------------------------------------

@register
class PRelu(BinaryOp):
    """x < 0 ? slope * x : x, the slope broadcast to x's shape (unidirectionally)."""

    op_type = "PRelu"
    since_version = 7
    kinds = "fi"
    expr = "a < 0 ? a * b : a"

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        (out,) = super().infer(inputs)
        x = inputs[0]
        if len(out.shape) != len(x.shape) or not all(dims_equal(a, b) for a, b in zip(out.shape, x.shape)):
            raise self.error(f"slope of shape {inputs[1].shape} does not broadcast to X's shape {x.shape}")
        return [TensorType(out.dtype, x.shape)]

    @staticmethod
    def reference(a, b):
        return np.where(a < 0, a * b, a)

