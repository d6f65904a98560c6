"""Removing nodes whose outputs are known before run time.

After shape inference, a node all of whose outputs have values computes
nothing at run time: it is dropped.  Numeric values still read by the
remaining graph become initializers (weights); symbolic ones (shape
arithmetic on an open dim) stay as known values that code generation writes
out from the dims at the start of ``infer``.  Nodes that no output depends
on are dropped too.
"""

from __future__ import annotations

from ..ir import Model
from ..ops import op_for


def runtime_inputs(model: Model, node) -> list[str]:
    """Inputs whose data the code of ``node`` reads (see :meth:`Op.runtime_inputs`)."""
    return op_for(node, model.name).runtime_inputs(model.tensors)


def fold_constants(model: Model) -> Model:
    keep = [n for n in model.nodes if not all(_known(model.tensors[o]) for o in n.outputs if o)]
    model.nodes = eliminate_dead_nodes(model, keep)
    needed = {o for o in model.outputs}
    for node in model.nodes:
        needed.update(runtime_inputs(model, node))
    model.initializers = {
        name: t.value
        for name, t in model.tensors.items()
        if name in needed and t.is_constant and name not in model.inputs
    }
    return model


def _known(t) -> bool:
    """Known when the code is generated; a value of dims computed while running is its node's to write."""
    return t.value is not None and not t.value_at_run_time


def eliminate_dead_nodes(model: Model, nodes: list) -> list:
    """Nodes some graph output depends on, in their original order."""
    producer = {o: n for n in nodes for o in n.outputs if o}
    live: set[int] = set()
    stack = [producer[o] for o in model.outputs if o in producer]
    while stack:
        node = stack.pop()
        if id(node) in live:
            continue
        live.add(id(node))
        stack.extend(producer[i] for i in runtime_inputs(model, node) if i in producer)
    return [n for n in nodes if id(n) in live]
