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


def to_cpp(expr: Dim, names: dict[str, str]) -> str:
    """C++ ``size_t`` expression of a dim; ``names`` maps symbol name -> identifier."""
    if isinstance(expr, int):
        return str(expr)
    return _CppDimPrinter(names).emit(sympy.expand(expr))


class _CppDimPrinter:
    """Prints the small subset of sympy that dimension arithmetic produces."""

    def __init__(self, names: dict[str, str]):
        self.names = names

    def emit(self, e: sympy.Expr) -> str:
        if e.is_Integer:
            return str(int(e))
        if e.is_Symbol:
            return self.names[e.name]
        if e.is_Add:
            return self._add(e)
        if e.is_Mul:
            return self._mul(e)
        if e.is_Pow and e.exp.is_Integer and int(e.exp) > 0:
            return "(" + " * ".join([self.emit(e.base)] * int(e.exp)) + ")"
        if isinstance(e, (sympy.Max, sympy.Min)):
            fn = "std::max" if isinstance(e, sympy.Max) else "std::min"
            out = self.emit(e.args[0])
            for a in e.args[1:]:
                out = f"{fn}<size_t>({out}, {self.emit(a)})"
            return out
        if isinstance(e, sympy.floor):
            num, den = sympy.fraction(sympy.together(e.args[0]))
            return f"(({self.emit(num)}) / ({self.emit(den)}))"
        if isinstance(e, sympy.ceiling):
            num, den = sympy.fraction(sympy.together(e.args[0]))
            return f"(({self.emit(num)} + {self.emit(den)} - 1) / ({self.emit(den)}))"
        if isinstance(e, sympy.Mod):
            return f"(({self.emit(e.args[0])}) % ({self.emit(e.args[1])}))"
        raise ShapeError(f"dimension expression {e} cannot be expressed in C++")

    def _add(self, e: sympy.Expr) -> str:
        pos = [a for a in e.args if not a.could_extract_minus_sign()]
        neg = [-a for a in e.args if a.could_extract_minus_sign()]
        out = " + ".join(self.emit(a) for a in pos) or "0"
        for a in neg:
            out += f" - {self.emit(a)}"
        return f"({out})"

    def _mul(self, e: sympy.Expr) -> str:
        coeff, rest = e.as_coeff_Mul()
        if not coeff.is_Integer:
            raise ShapeError(f"dimension expression {e} is not an integer")
        factors = [self.emit(a) for a in sympy.Mul.make_args(rest)]
        if coeff != 1:
            factors.insert(0, str(int(coeff)))
        return "(" + " * ".join(factors) + ")"
