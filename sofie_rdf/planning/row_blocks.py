"""Row blocks: a large batch computed a block of rows at a time.

Where every row of the leading dim (the batch N) goes through the graph on its own, ``infer`` may run
any number of rows as consecutive blocks.  Sized so that one block's intermediates fill a part of L2,
the blocks keep every intermediate tensor in cache where a batch of 100,000 rows would otherwise stream
each of them through memory (a columnar chunk), and the arena holds one block instead of the batch.

The rows are independent when each node's operator says so for its attributes
(``Op.rows_independent``: element-wise ops, products, convolutions...) and the shapes leave no
other way to mix them: one symbolic dim, leading every input, output and computed tensor and appearing
nowhere else in their shapes, no value computed from it (``Shape`` arithmetic), no run-time condition on
it and no dim computed while running.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Optional, Sequence

import numpy as np
import sympy

from ..ir import Model
from ..ir.dims import Dim, free_symbols, symbol
from ..ops.base import Op
from .memory import MemoryPlan

# Bytes of intermediate tensors in one block: a part of L2 (1 MB on the machine measured), the rest left
# to the weights the block's products read.
ROW_BLOCK_BYTES = 256 << 10


def plan_row_blocks(model: Model, ops: Sequence[Op], plan: MemoryPlan) -> Optional[tuple[str, int]]:
    """(dim name, rows per block) when ``infer`` can run the leading dim in blocks and gains by it, else None."""
    dim = _leading_dim(model)
    if dim is None or model.runtime_dims or any(dim in c.condition.free_symbols for c in model.constraints):
        return None
    if any(_uses(t.value, dim) for n, t in model.tensors.items() if plan.storage.get(n) is not None
           and plan.storage[n].kind == "symbolic"):
        return None
    if not all(_leads(model.tensors[n].shape, dim) for n in model.outputs):
        return None
    for op in ops:
        inputs = [model.tensors[i] if i else None for i in op.node.inputs]
        if not op.rows_independent(inputs) or not _keeps_rows(op, model, dim):
            return None
    row_bytes = sum(np.dtype(d).itemsize * _per_row(size, dim) for d, size in plan.arenas.items())
    if row_bytes <= 0:
        return None  # no intermediate grows with the batch: nothing to keep in cache
    return dim.name, max(1, ROW_BLOCK_BYTES // row_bytes)


def static_batch(model: Model) -> Optional[int]:
    """The batch N > 1 of a model whose inputs all have static shapes and lead with N, else None."""
    shapes = [model.tensors[n].shape for n in model.inputs]
    if not shapes or not all(shape and all(isinstance(d, int) for d in shape) for shape in shapes):
        return None
    first = {shape[0] for shape in shapes}
    return first.pop() if len(first) == 1 and min(first) > 1 else None


# The leading dim of a static model made open, to ask whether the graph computes its rows independently.
OPEN_ROWS = symbol("rows")


def with_leading_dim(model: Model, dim: Dim) -> Model:
    """A copy of ``model`` whose inputs lead with ``dim`` instead (its shapes to be inferred again: passes.prepare)."""
    out = copy.copy(model)
    out.tensors = dict(model.tensors)
    for n in model.inputs:
        t = model.tensors[n]
        out.tensors[n] = dataclasses.replace(t, shape=(dim,) + tuple(t.shape[1:]))
    return out


def static_block(batch: int, rows: int) -> Optional[int]:
    """Rows per block for a static ``batch`` where blocks of ``rows`` keep the intermediates in cache: the
    largest divisor of ``batch`` up to ``rows``, so that every block has one shape and one specialised code.
    None when that is the whole batch, or under half of ``rows`` (a prime batch of 1009 rows would run one row
    at a time: a dense layer's products would lose far more than the cache gains)."""
    block = max(d for d in range(1, min(rows, batch) + 1) if batch % d == 0)
    return block if block < batch and 2 * block >= rows else None


def _leading_dim(model: Model) -> Optional[sympy.Symbol]:
    """The one symbol of the input shapes, when it leads every input."""
    shapes = [model.tensors[n].shape for n in model.inputs]
    symbols = {s for shape in shapes for d in shape if isinstance(d, sympy.Basic) for s in d.free_symbols}
    if len(symbols) != 1:
        return None
    dim = symbols.pop()
    return dim if all(_leads(shape, dim) for shape in shapes) else None


def _leads(shape: tuple, dim: sympy.Symbol) -> bool:
    """``dim`` is the first dim and no other dim depends on it."""
    return _rows_per_row(shape, dim) == 1


def _rows_per_row(shape: tuple, dim: sympy.Symbol) -> Optional[int]:
    """c where the shape leads with c * ``dim`` and no other dim depends on it, else None."""
    if not shape or any(isinstance(d, sympy.Basic) and dim in d.free_symbols for d in shape[1:]):
        return None
    if not isinstance(shape[0], sympy.Expr):
        return None
    c, rest = shape[0].as_coeff_Mul()
    return int(c) if rest == dim and c.is_Integer and c > 0 else None


def _keeps_rows(op: Op, model: Model, dim: sympy.Symbol) -> bool:
    """Every output leads with a multiple of ``dim`` (a per-particle layer's 64 * N rows), the same as the inputs
    that have it, unless the node is a view: a Reshape of (N, 64, 8) to (64 N, 8) moves no memory, so block b's
    rows are the same floats either way; a Concat of two (N, 8) along the rows to (2 N, 8) would interleave them."""
    outputs = [_rows_per_row(model.tensors[o].shape, dim) for o in op.node.outputs if o]
    if None in outputs:
        return False
    inputs = {_rows_per_row(model.tensors[i].shape, dim) for i in op.node.inputs
              if i and dim in free_symbols([model.tensors[i].shape])}
    return None not in inputs and (op.view or len(inputs | set(outputs)) <= 1)


def _uses(value: Optional[np.ndarray], dim: sympy.Symbol) -> bool:
    if value is None or value.dtype != object:
        return False
    return any(isinstance(v, sympy.Basic) and dim in v.free_symbols for v in value.reshape(-1))


def _per_row(size: Dim, dim: sympy.Symbol) -> int:
    """Elements per row of an arena size linear in ``dim`` (a maximum of such sizes: its largest slope)."""
    if isinstance(size, int):
        return 0
    return int(size.subs(dim, _LARGE + 1) - size.subs(dim, _LARGE))


_LARGE = 1 << 20  # a batch beyond every constant term of a size
