"""Which tensors the run-time code reads, and the last node that reads each."""

from __future__ import annotations

from typing import Sequence

from ..ir import Model
from ..ops.base import Op


def read_at_run_time(model: Model, ops: Sequence[Op]) -> set[str]:
    """Every tensor some node's code or the caller reads while ``infer`` runs."""
    return set(model.outputs).union(*(op.runtime_inputs(model.tensors) for op in ops))


def last_uses(model: Model, ops: Sequence[Op], root: dict[str, str]) -> dict[str, int]:
    """Index of the last node reading each tensor's memory (``root`` maps a view to the tensor it shares);
    graph outputs copied at the end live past the last node."""
    last: dict[str, int] = {}
    for i, op in enumerate(ops):
        for name in op.runtime_inputs(model.tensors):
            last[root.get(name, name)] = i
        for name in op.node.outputs:
            if name in root:
                r = root[name]
                last[r] = max(last.get(r, i), i)
    return last
