"""Comparisons, boolean logic and Where.

Comparisons and And/Or/Xor are :class:`~sofie_rdf.ops.elementwise.BinaryOp`
subclasses with a bool output, so they broadcast like the arithmetic; Where
broadcasts its three operands together.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from .base import Op, broadcast_shapes
from .elementwise import NUMERIC, BinaryOp, UnaryOp, check_kinds
from .registry import register

BOOL = np.dtype(np.bool_)


class Comparison(BinaryOp):
    """a <op> b -> bool, inputs of one numeric type."""

    since_version = 7
    kinds = NUMERIC

    def out_dtype(self, a: np.dtype, b: np.dtype) -> np.dtype:
        super().out_dtype(a, b)
        return BOOL

    relation: Optional[type] = None  # the sympy relation deciding it on symbolic dims

    def evaluate(self, values):
        a, b = values[:2]
        if object in (a.dtype, b.dtype):
            return [self.decide(a, b)]
        return super().evaluate([a, b])

    def decide(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Compare shape values holding symbols where the dims' assumptions settle it (a dim is never
        -1, as torch's ``Where(Equal(shape, -1), 1, shape)`` asks); otherwise TypeError, and the node
        stays a run-time one."""
        if self.relation is None:
            raise TypeError(f"{self.op_type} of symbolic values")
        a, b = np.broadcast_arrays(a, b)
        out = np.empty(a.shape, dtype=BOOL)
        for i, (x, y) in enumerate(zip(a.flat, b.flat)):
            result = self.relation(sympy.sympify(x), sympy.sympify(y))
            if result not in (sympy.true, sympy.false):
                raise TypeError(f"{x} {self.op_type} {y} is not known before run time")
            out.flat[i] = bool(result)
        return out


@register
class Equal(Comparison):
    op_type = "Equal"
    relation = sympy.Eq
    kinds = NUMERIC + "b"
    reference = staticmethod(np.equal)


@register
class Less(Comparison):
    op_type = "Less"
    relation = sympy.Lt
    reference = staticmethod(np.less)


@register
class LessOrEqual(Comparison):
    op_type = "LessOrEqual"
    relation = sympy.Le
    since_version = 12
    reference = staticmethod(np.less_equal)


@register
class Greater(Comparison):
    op_type = "Greater"
    relation = sympy.Gt
    reference = staticmethod(np.greater)


@register
class GreaterOrEqual(Comparison):
    op_type = "GreaterOrEqual"
    relation = sympy.Ge
    since_version = 12
    reference = staticmethod(np.greater_equal)


# ---- boolean logic ----------------------------------------------------------------------------

class Logical(BinaryOp):
    """bool x bool -> bool."""

    since_version = 7
    kinds = "b"


@register
class And(Logical):
    op_type = "And"
    reference = staticmethod(np.logical_and)


@register
class Or(Logical):
    op_type = "Or"
    reference = staticmethod(np.logical_or)


@register
class Xor(Logical):
    op_type = "Xor"
    reference = staticmethod(np.logical_xor)


@register
class Not(UnaryOp):
    op_type = "Not"
    kinds = "b"
    reference = staticmethod(np.logical_not)


# ---- Where --------------------------------------------------------------------------------------

@register
class Where(Op):
    """condition ? X : Y, the three broadcast together (multidirectionally)."""

    op_type = "Where"
    since_version = 9
    row_wise = True

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        cond, x, y = inputs[:3]
        check_kinds(self, cond.dtype, "b")
        if x.dtype != y.dtype:
            raise self.error(f"X and Y types differ ({x.dtype} and {y.dtype})")
        return [TensorType(x.dtype, broadcast_shapes(self, cond.shape, x.shape, y.shape))]

    def evaluate(self, values):
        cond, x, y = values[:3]
        out = np.where(cond.astype(bool), x, y)
        return [out if out.dtype == object else out.astype(x.dtype)]
