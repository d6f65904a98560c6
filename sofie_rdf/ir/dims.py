"""Tensor dimensions: plain ints or symbolic expressions.

A dimension the model leaves open (the batch, a sequence length) is a named
symbol; shape inference combines symbols into expressions (``N*12`` after a
Flatten), so every dim is either an ``int`` or a :mod:`sympy` expression over
non-negative integer symbols.  Symbols keep the name the model gave them;
code generation maps them to C++ identifiers.
"""

from __future__ import annotations

import math
from typing import Iterable, Union

import sympy

from ..errors import ShapeError

Dim = Union[int, sympy.Expr]
Shape = tuple  # tuple[Dim, ...]


def symbol(name: str) -> sympy.Symbol:
    """The symbol of a named dimension (same name -> same symbol)."""
    return sympy.Symbol(name, integer=True, nonnegative=True)


def as_dim(value: object) -> Dim:
    """Normalize an int, numpy integer, string or expression to a :data:`Dim`."""
    if isinstance(value, str):
        return symbol(value)
    if isinstance(value, sympy.Expr):
        return int(value) if value.is_Integer else value
    try:
        return int(value)  # type: ignore[call-overload]
    except TypeError:
        raise ShapeError(f"invalid dimension {value!r}") from None


def is_static(shape: Iterable[Dim]) -> bool:
    """True when every dimension is a known integer."""
    return all(isinstance(d, int) for d in shape)


def num_elements(shape: Iterable[Dim]) -> Dim:
    """Product of the dimensions (an int when the shape is static)."""
    dims = list(shape)
    if is_static(dims):
        return math.prod(dims)
    return as_dim(sympy.Mul(*dims))


def simplify(expr: Dim) -> Dim:
    """Canonical form of a dimension expression."""
    return as_dim(sympy.expand(expr)) if isinstance(expr, sympy.Expr) else expr


def dims_equal(a: Dim, b: Dim) -> bool:
    """Structural equality of two dims after simplification."""
    return sympy.simplify(sympy.Integer(0) + a - b) == 0


def dim_str(d: Dim) -> str:
    """Human-readable spelling of a dim (the symbol name for plain symbols)."""
    return str(d)


def free_symbols(shapes: Iterable[Iterable[Dim]]) -> list[sympy.Symbol]:
    """Symbols used by the given shapes, in order of first appearance."""
    seen: dict[sympy.Symbol, None] = {}
    for shape in shapes:
        for d in shape:
            if isinstance(d, sympy.Expr):
                for s in sorted(d.free_symbols, key=lambda s: s.name):
                    seen.setdefault(s, None)
    return list(seen)
