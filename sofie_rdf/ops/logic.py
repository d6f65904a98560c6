"""Comparisons, boolean logic and Where.

Comparisons and And/Or/Xor are :class:`~sofie_rdf.ops.elementwise.BinaryOp`
subclasses with a bool output, so they broadcast like the arithmetic; Where
broadcasts its three operands together.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

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

    def evaluate(self, values):
        # Shape values may hold symbols: compare them only once they are plain integers (a symbolic
        # entry raises TypeError and the node stays a run-time one).
        a, b = (v.astype(np.int64) if v.dtype == object else v for v in values[:2])
        return super().evaluate([a, b])


@register
class Equal(Comparison):
    op_type = "Equal"
    kinds = NUMERIC + "b"
    reference = staticmethod(np.equal)


@register
class Less(Comparison):
    op_type = "Less"
    reference = staticmethod(np.less)


@register
class LessOrEqual(Comparison):
    op_type = "LessOrEqual"
    since_version = 12
    reference = staticmethod(np.less_equal)


@register
class Greater(Comparison):
    op_type = "Greater"
    reference = staticmethod(np.greater)


@register
class GreaterOrEqual(Comparison):
    op_type = "GreaterOrEqual"
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
