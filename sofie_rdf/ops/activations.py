"""More element-wise unary operators: trigonometric and rounding functions,
Erf and the smooth or piecewise-linear activations, IsNaN/IsInf, Sign, and
PRelu (whose slope broadcasts to the input).

All are :class:`~sofie_rdf.ops.elementwise.UnaryOp` (or ``BinaryOp``)
subclasses with a numpy reference, so they fuse into a preceding Conv or Gemm
like the basic activations do (their C++ expressions: ``targets/cpu/emitters/elementwise.py``).
"""

from __future__ import annotations

import math
from typing import ClassVar, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from .elementwise import BinaryOp, UnaryOp
from .registry import register

_erf = np.vectorize(math.erf, otypes=[np.float64])


# ---- plain math functions: y = f(x) ----------------------------------------------------------

# op type -> (first opset of today's form, numpy reference)
MATH_FUNCTIONS = {
    "Sin": (7, np.sin), "Cos": (7, np.cos), "Tan": (7, np.tan),
    "Asin": (7, np.arcsin), "Acos": (7, np.arccos), "Atan": (7, np.arctan),
    "Sinh": (9, np.sinh), "Cosh": (9, np.cosh), "Asinh": (9, np.arcsinh),
    "Acosh": (9, np.arccosh), "Atanh": (9, np.arctanh),
    "Floor": (6, np.floor), "Ceil": (6, np.ceil),
    "Round": (11, np.round),  # half to even, as the spec says
    "Erf": (9, _erf),
}


def _math_function(op_type: str, since_version: int, reference) -> type:
    """The UnaryOp class ``y = reference(x)`` (one line of the table above each)."""
    return register(type(op_type, (UnaryOp,), {
        "__doc__": f"{op_type}, element by element.",
        "__module__": __name__,
        "op_type": op_type,
        "since_version": since_version,
        "reference": staticmethod(reference),
    }))


for _name, (_since, _reference) in MATH_FUNCTIONS.items():
    globals()[_name] = _math_function(_name, _since, _reference)


# ---- activations --------------------------------------------------------------------------

def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x)


@register
class Softplus(UnaryOp):
    op_type = "Softplus"
    reference = staticmethod(_softplus)


@register
class Mish(UnaryOp):
    op_type = "Mish"
    since_version = 18

    def reference(self, x):
        return x * np.tanh(_softplus(x))


@register
class Softsign(UnaryOp):
    op_type = "Softsign"

    def reference(self, x):
        return x / (1 + np.abs(x))


@register
class HardSigmoid(UnaryOp):
    op_type = "HardSigmoid"
    since_version = 6

    def reference(self, x):
        return np.clip(self.attrs["alpha"] * x + self.attrs["beta"], 0, 1)


@register
class HardSwish(UnaryOp):
    """x * HardSigmoid(x) with alpha = 1/6, beta = 0.5."""

    op_type = "HardSwish"
    since_version = 14

    def reference(self, x):
        return x * np.clip(x / 6 + 0.5, 0, 1)


@register
class ThresholdedRelu(UnaryOp):
    op_type = "ThresholdedRelu"
    since_version = 10

    def reference(self, x):
        return np.where(x > self.attrs["alpha"], x, 0)


@register
class Celu(UnaryOp):
    op_type = "Celu"
    since_version = 12

    def reference(self, x):
        a = self.attrs["alpha"]
        return np.maximum(0, x) + np.minimum(0, a * (np.exp(x / a) - 1))


@register
class Gelu(UnaryOp):
    """Gelu: exact (erf) form, or onnxruntime's tanh approximation with approximate="tanh"."""

    op_type = "Gelu"
    since_version = 20
    APPROXIMATIONS: ClassVar[tuple[str, ...]] = ("none", "tanh")

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        if self.attrs["approximate"] not in self.APPROXIMATIONS:
            raise self.error(f"approximate must be 'none' or 'tanh', got {self.attrs['approximate']!r}")
        return super().infer(inputs)

    def reference(self, x):
        if self.attrs["approximate"] == "tanh":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))

@register
class Sign(UnaryOp):
    """-1, 0 or 1 (NaN stays NaN); unsigned values are never negative."""

    op_type = "Sign"
    since_version = 9
    kinds = "fiu"
    reference = staticmethod(np.sign)

# ---- floating-point classification -> bool ----------------------------------------------------

class Classification(UnaryOp):
    """A float predicate: bool output."""

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(np.bool_)


@register
class IsNaN(Classification):
    op_type = "IsNaN"
    since_version = 9
    reference = staticmethod(np.isnan)


@register
class IsInf(Classification):
    """Infinities of the signs selected by detect_positive / detect_negative."""

    op_type = "IsInf"
    since_version = 10

    def reference(self, x):
        return np.isinf(x) & np.where(x > 0, bool(self.attrs["detect_positive"]), bool(self.attrs["detect_negative"]))

# ---- PRelu ------------------------------------------------------------------------------------

@register
class PRelu(BinaryOp):
    """x < 0 ? slope * x : x, the slope broadcast to x's shape (unidirectionally)."""

    op_type = "PRelu"
    since_version = 7
    kinds = "fi"

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        (out,) = super().infer(inputs)
        x = inputs[0]
        if len(out.shape) != len(x.shape) or not all(dims_equal(a, b) for a, b in zip(out.shape, x.shape)):
            raise self.error(f"slope of shape {inputs[1].shape} does not broadcast to X's shape {x.shape}")
        return [TensorType(out.dtype, x.shape)]

    @staticmethod
    def reference(a, b):
        return np.where(a < 0, a * b, a)

