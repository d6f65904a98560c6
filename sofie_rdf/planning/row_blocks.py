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

from typing import Optional, Sequence

import numpy as np
import sympy

from ..ir import Model
from ..ir.dims import Dim
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
    computed = [o for node in model.nodes for o in node.outputs if o] + list(model.outputs)
    if not all(_leads(model.tensors[n].shape, dim) for n in computed):
        return None
    for op in ops:
        inputs = [model.tensors[i] if i else None for i in op.node.inputs]
        if not op.rows_independent(inputs):
            return None
    row_bytes = sum(np.dtype(d).itemsize * _per_row(size, dim) for d, size in plan.arenas.items())
    if row_bytes <= 0:
        return None  # no intermediate grows with the batch: nothing to keep in cache
    return dim.name, max(1, ROW_BLOCK_BYTES // row_bytes)


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
    if not shape or shape[0] != dim:
        return False
    return not any(isinstance(d, sympy.Basic) and dim in d.free_symbols for d in shape[1:])


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
