"""The C++ expression of each element-wise operator, for every target that writes C++.

Each unary operator is an expression in ``x``, each binary one an expression in ``a`` and ``b``;
``{T}`` stands for the type computed in and ``{name}`` for the value of the operator's attribute ``name``.
They call ``std::`` math and a few functions every target's kernel library defines in its ``kernels``
namespace (``fast_exp``, ``fast_sigmoid``, ``fast_tanh``, ``fast_erf``, ``minimum``, ``maximum``): the CPU's
vectorise, CUDA's are device functions.  One table, so every target computes what the operator means.
"""

from __future__ import annotations

import math
import string
from typing import Any, Optional

import numpy as np

from ...ops import activations, bitwise, elementwise, logic, misc

# C++ function of std:: computing each plain math operator (activations.MATH_FUNCTIONS).
STD_FUNCTIONS = {
    "Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan",
    "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh",
    "Floor": "floor", "Ceil": "ceil",
    "Round": "nearbyint",  # rounds half to even in the default rounding mode, as np.round and the spec do
}

# log(1 + exp(x)) without overflow for large x (onnxruntime's form).
_SOFTPLUS = "(x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)))"

EXPRESSIONS: dict[type, str] = {
    elementwise.UnaryOp: "x",
    elementwise.Relu: "x < 0 ? {T}(0) : x",  # NaN propagates, as in onnxruntime
    elementwise.LeakyRelu: "x >= 0 ? x : {alpha} * x",
    # kernels::fast_* (kernels/fastmath.hxx) vectorize; std::exp, std::tanh, std::erf are library calls
    elementwise.Sigmoid: "kernels::fast_sigmoid(x)",
    elementwise.Tanh: "kernels::fast_tanh(x)",
    activations.Erf: "kernels::fast_erf(x)",
    elementwise.Selu: "x > 0 ? {gamma} * x : {gamma} * ({alpha} * kernels::fast_exp(x) - {alpha})",
    elementwise.Elu: "x >= 0 ? x : {alpha} * (kernels::fast_exp(x) - {T}(1))",
    elementwise.Sqrt: "std::sqrt(x)",
    elementwise.Exp: "kernels::fast_exp(x)",
    elementwise.Log: "std::log(x)",
    elementwise.Neg: "-x",
    elementwise.Abs: "x < 0 ? -x : x",
    elementwise.Reciprocal: "{T}(1) / x",
    elementwise.Add: "a + b",
    elementwise.Sub: "a - b",
    elementwise.Mul: "a * b",
    elementwise.Div: "a / b",
    elementwise.Min: "kernels::minimum(a, b)",
    elementwise.Max: "kernels::maximum(a, b)",
    activations.Softplus: _SOFTPLUS,
    activations.Mish: f"x * kernels::fast_tanh({_SOFTPLUS})",
    activations.Softsign: "x / ({T}(1) + std::abs(x))",
    activations.HardSigmoid: "std::max(std::min({alpha} * x + {beta}, {T}(1)), {T}(0))",  # this order keeps NaN
    activations.HardSwish: "x * std::max({T}(0), std::min({T}(1), x / {T}(6) + {T}(0.5)))",
    activations.ThresholdedRelu: "x > {alpha} ? x : {T}(0)",
    activations.Celu: "std::max(x, {T}(0)) + std::min({alpha} * (std::exp(x / {alpha}) - {T}(1)), {T}(0))",  # keeps NaN
    activations.Sign: "x > 0 ? {T}(1) : x < 0 ? {T}(-1) : x",
    activations.IsNaN: "std::isnan(x)",
    activations.PRelu: "a < 0 ? a * b : a",
    logic.Equal: "a == b",
    logic.Less: "a < b",
    logic.LessOrEqual: "a <= b",
    logic.Greater: "a > b",
    logic.GreaterOrEqual: "a >= b",
    logic.And: "a && b",
    logic.Or: "a || b",
    logic.Xor: "a != b",
    logic.Not: "!x",
    bitwise.BitwiseAnd: "a & b",
    bitwise.BitwiseOr: "a | b",
    bitwise.BitwiseXor: "a ^ b",
    bitwise.BitwiseNot: "static_cast<{T}>(~x)",
    misc.Swish: "x * kernels::fast_sigmoid({alpha} * x)",
    **{getattr(activations, op_type): f"std::{function}(x)" for op_type, function in STD_FUNCTIONS.items()},
}

# Gelu's approximate -> expression; {c} is the constant inside erf (1/sqrt 2) or tanh (sqrt(2/pi)).
GELU_FORMS = {
    "none": ("{T}(0.5) * x * ({T}(1) + kernels::fast_erf(x * {c}))", 1 / math.sqrt(2)),
    "tanh": ("{T}(0.5) * x * ({T}(1) + kernels::fast_tanh({c} * (x + {T}(0.044715) * x * x * x)))",
             math.sqrt(2 / math.pi)),
}


# The expressions on unsigned types of those that compare with 0 ("x < 0" on them trips -Wtype-limits).
UNSIGNED_EXPRESSIONS = {elementwise.Abs: "x", activations.Sign: "x > 0 ? {T}(1) : x"}


def expression(op_class: type, dtype: Optional[np.dtype] = None) -> str:
    """The expression of an operator class (the nearest class along its bases that has one), its unsigned
    spelling for an unsigned ``dtype``."""
    if dtype is not None and np.dtype(dtype).kind == "u":
        unsigned = next((UNSIGNED_EXPRESSIONS[c] for c in op_class.__mro__ if c in UNSIGNED_EXPRESSIONS), None)
        if unsigned is not None:
            return unsigned
    return next(EXPRESSIONS[c] for c in op_class.__mro__ if c in EXPRESSIONS)


def filled(op: Any, ctx: Any, dtype: np.dtype) -> str:
    """The expression of ``op``'s class with ``{T}`` (``dtype``'s C++ type) and its attributes' values filled in."""
    expr = expression(type(op), dtype)
    names = {field for _, field, _, _ in string.Formatter().parse(expr) if field and field != "T"}
    values = {p: ctx.literal(op.attrs[p], dtype) for p in names}
    return expr.format(T=ctx.ctype(dtype), **values)


def gelu(approximate: str, ctx: Any, dtype: np.dtype) -> str:
    """Gelu's expression in ``x`` in its ``approximate`` form."""
    expr, c = GELU_FORMS[approximate]
    return expr.format(T=ctx.ctype(dtype), c=ctx.literal(c, dtype))


def step_inputs(inputs: list, step: dict) -> list:
    """The operand types of one step of a fused element-wise chain (``inputs``: the node's): the chain's value,
    and the step's operand in its place."""
    chain, k = inputs[0], step["operand"]
    if k < 0:
        return [chain]
    return [inputs[k], chain] if step.get("operand_first") else [chain, inputs[k]]
