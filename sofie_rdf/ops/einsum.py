"""Einsum: any equation numpy accepts (implicit or explicit output, ellipsis, repeated letters).

The equation is resolved at generation time into one size per letter and one
stride per (letter, operand); the kernel is a single loop nest over them, so
diagonals, broadcast ellipsis dims, outer products and n-ary contractions are
all the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import Dim, dims_equal, simplify
from .base import Op, broadcast_shapes, contiguous_strides
from .registry import register

# Limits of the kernel's fixed-size index arrays (kernels/einsum.hxx).
MAX_LETTERS, MAX_OPERANDS = 64, 16


@dataclass(frozen=True)
class _Plan:
    letters: list[str]          # output letters first, then the summed ones
    n_out: int
    sizes: list[Dim]
    strides: list[list[Dim]]    # [letter][operand]


@register
class Einsum(Op):
    """Sum over the letters missing from the output of the product of the operands."""

    op_type = "Einsum"
    since_version = 12

    def terms(self, ranks: list[int]) -> tuple[list[list[str]], list[str]]:
        """Operand and output terms as letter lists, ellipsis expanded to ``.0``, ``.1``, ... (rightmost last)."""
        equation = self.attrs["equation"].replace(" ", "")
        lhs, arrow, rhs = equation.partition("->")
        inputs = lhs.split(",")
        if len(inputs) != len(ranks):
            raise self.error(f"equation {equation!r} has {len(inputs)} operand(s), the node has {len(ranks)}")
        ellipsis = 0
        terms = []
        for term, rank in zip(inputs, ranks):
            letters = self.letters(term, equation)
            if "..." in letters:
                k = rank - (len(letters) - 1)
                if k < 0:
                    raise self.error(f"term {term!r} has more letters than its operand's rank {rank}")
                ellipsis = max(ellipsis, k)
                at = letters.index("...")
                letters[at:at + 1] = [f".{ellipsis - k + i}" for i in range(k)]
            elif len(letters) != rank:
                raise self.error(f"term {term!r} has {len(letters)} letters for an operand of rank {rank}")
            terms.append(letters)
        if arrow:
            out = self.letters(rhs, equation)
            if "..." in out:
                at = out.index("...")
                out[at:at + 1] = [f".{i}" for i in range(ellipsis)]
            seen = {c for t in terms for c in t}
            if any(c not in seen for c in out) or len(set(out)) != len(out):
                raise self.error(f"output {rhs!r} of {equation!r} repeats letters or uses letters no operand has")
        else:
            counts = [c for t in terms for c in t]
            out = [f".{i}" for i in range(ellipsis)] + sorted(c for c in set(counts) if counts.count(c) == 1
                                                              and not c.startswith("."))
        return terms, out

    def letters(self, term: str, equation: str) -> list[str]:
        body = term.replace("...", "")
        if not all(c.isalpha() for c in body) or term.count("...") > 1:
            raise self.error(f"invalid term {term!r} in equation {equation!r}")
        head, dots, tail = term.partition("...")
        return list(head) + (["..."] if dots else []) + list(tail)

    def plan(self, inputs: list[Optional[TensorType]]) -> _Plan:
        xs = [x for x in inputs if x is not None]
        if len(xs) > MAX_OPERANDS:
            raise self.error(f"{len(xs)} operands: at most {MAX_OPERANDS} are supported")
        terms, out = self.terms([x.rank for x in xs])
        ellipsis_dims = {c for t in terms for c in t if c.startswith(".")}
        sizes: dict[str, Dim] = {}
        for c in sorted(ellipsis_dims):  # ellipsis dims broadcast across operands
            dims = [(x.shape[t.index(c)],) for x, t in zip(xs, terms) if c in t]
            sizes[c] = broadcast_shapes(self, *dims)[0]
        for x, t in zip(xs, terms):
            for c, d in zip(t, x.shape):
                if c.startswith("."):
                    continue
                if c in sizes and not dims_equal(sizes[c], d):
                    raise self.error(f"letter {c!r} has sizes {sizes[c]} and {d}")
                sizes.setdefault(c, d)
        summed = [c for t in terms for c in t if c not in out]
        letters = out + list(dict.fromkeys(summed))
        if len(letters) > MAX_LETTERS:
            raise self.error(f"{len(letters)} distinct letters: at most {MAX_LETTERS} are supported")
        strides = []
        for c in letters:
            row = []
            for x, t in zip(xs, terms):
                own = contiguous_strides(x.shape)
                broadcast = [i for i, tc in enumerate(t) if tc == c and not (x.shape[i] == 1 and sizes[c] != 1)]
                row.append(simplify(sum((own[i] for i in broadcast), 0)))
            strides.append(row)
        return _Plan(letters, len(out), [sizes[c] for c in letters], strides)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        xs = [x for x in inputs if x is not None]
        if any(x.dtype != xs[0].dtype for x in xs):
            raise self.error(f"operand types differ: {[str(x.dtype) for x in xs]}")
        plan = self.plan(inputs)
        return [TensorType(xs[0].dtype, tuple(plan.sizes[:plan.n_out]))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        xs = [v for v in values if v is not None]
        return [np.asarray(np.einsum(self.attrs["equation"], *xs), dtype=xs[0].dtype)]
