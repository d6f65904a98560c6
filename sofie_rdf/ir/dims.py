"""Tensor dimensions: plain ints or symbolic expressions.

A dimension the model leaves open (the batch, a sequence length) is a named
symbol; shape inference combines symbols into expressions (``N*12`` after a
Flatten), so every dim is either an ``int`` or a :mod:`sympy` expression over
non-negative integer symbols.  Symbols keep the name the model gave them;
code generation maps them to C++ identifiers.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterable, Iterator, Optional, Union

import sympy

from ..errors import ShapeError

Dim = Union[int, sympy.Expr]
Shape = tuple  # tuple[Dim, ...]


# Joins a run-time dim's tensor and label in its name (Op.runtime_dim), which is how is_runtime_dim knows it.
RUNTIME_DIM_MARK = ":"


def is_runtime_dim(symbol: sympy.Symbol) -> bool:
    """Whether a dim is one a node's code computes while running (:meth:`Op.runtime_dim`).  A model dim whose
    own name holds the mark reads as one too, which only moves what depends on it to run time."""
    return RUNTIME_DIM_MARK in symbol.name


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
    """Structural equality of two dims after simplification.

    While :func:`unifying` is active, a dim the model file left unnamed is equal to whatever it is
    compared with, and the binding is recorded: the file said "unknown", not "different".
    """
    if sympy.simplify(sympy.Integer(0) + a - b) == 0:
        return True
    unifier = _unifier.get()
    return unifier is not None and unifier.bind(a, b)


class Unifier:
    """Bindings of input dims made while comparing shapes (see :func:`unifying`).

    ``free`` are the dims the file left unnamed, bound wherever an operator compares them; ``named`` are the
    dims the file named, bound only where an operator cannot run unless two of them are equal (:func:`equate`).
    ``reasons`` says, for each named dim bound, which node needed it.
    """

    def __init__(self, free: Iterable[sympy.Symbol], named: Iterable[sympy.Symbol] = ()) -> None:
        self.free = set(free)
        self.named = set(named) - self.free
        self.bindings: dict[sympy.Symbol, Dim] = {}
        self.reasons: dict[sympy.Symbol, str] = {}

    def bind(self, a: Dim, b: Dim) -> bool:
        """Make ``a == b`` true by giving one unnamed symbol in them the only value that does (``u + 16 == 24``
        binds u to 8); False when no unnamed symbol can, and the caller reports the mismatch."""
        return self._solve(a, b, sorted(self._symbols(a, b) & self.free, key=lambda s: s.name))

    def equate(self, a: Dim, b: Dim, reason: str) -> bool:
        """Make ``a == b`` true by binding a named dim, preferring one of ``b``'s (the operand compared with
        ``a``) and the last by name: ``n1 + n2 == n4 + n5`` binds n5 to ``n1 + n2 - n4``.  The exporter named
        the particle counts of two inputs apart, but the graph adds them, so they are one count."""
        candidates = self._symbols(a, b) & (self.free | self.named)
        in_b = set(b.free_symbols) if isinstance(b, sympy.Expr) else set()
        order = sorted(candidates, key=lambda s: (s in in_b, s.name), reverse=True)
        named, before = set(self.named), len(self.bindings)
        if not self._solve(a, b, order):
            return False
        bound = next(reversed(self.bindings)) if len(self.bindings) > before else None
        if bound in named:
            self.reasons[bound] = reason
        return True

    @staticmethod
    def _symbols(a: Dim, b: Dim) -> set:
        return set((sympy.Integer(0) + a - b).free_symbols)

    def _solve(self, a: Dim, b: Dim, order: list) -> bool:
        difference = sympy.expand((sympy.Integer(0) + a - b).subs(self.bindings))
        if difference == 0:  # a binding made earlier in this round (another axis of the same node) settles it
            return True
        for x in order:
            solutions = sympy.solve(difference, x)
            if len(solutions) == 1 and solutions[0].is_nonnegative is not False and solutions[0].is_integer is not False:
                self.free.discard(x)
                self.named.discard(x)
                self.bindings[x] = as_dim(solutions[0])
                return True
        return False


_unifier: ContextVar[Optional[Unifier]] = ContextVar("sofie_rdf_unifier", default=None)


@contextmanager
def unifying(free: Iterable[sympy.Symbol], named: Iterable[sympy.Symbol] = ()) -> Iterator[Unifier]:
    """Within the block, dims in ``free`` unify with the dims they are compared with, and dims in ``named``
    with the dims an operator needs them equal to (:func:`equate`): shape inference's use."""
    token = _unifier.set(Unifier(free, named))
    try:
        yield _unifier.get()
    finally:
        _unifier.reset(token)


def equate(a: Dim, b: Dim, reason: str) -> bool:
    """Bind an input dim so that ``a == b``, where an operator cannot run otherwise (two symbolic dims that
    broadcasting needs equal); False outside shape inference or when no input dim can be bound."""
    unifier = _unifier.get()
    return unifier is not None and unifier.equate(a, b, reason)


def substitute(shape: Iterable[Dim], bindings: dict) -> tuple:
    """``shape`` with symbols replaced by the dims they are bound to."""
    return tuple(as_dim(simplify(d.subs(bindings))) if isinstance(d, sympy.Expr) else d for d in shape)


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
