"""Element-wise chains into one loop: ``sofie_rdf::FusedElementwise`` (see ``ops/fused.py``).

A chain is a run of element-wise operators where each one reads the previous
one's output, which nothing else reads and which is not a graph output.  A
step qualifies when its operator emits through its own per-element lambda (the
``UnaryOp``/``BinaryOp`` bases, not a type conversion, no bound inputs) on
floating-point values of one type, and a binary step's other operand has the
chain's shape or is a single value.  Chains of two or more steps become one
node, placed where the chain's last operator was: every operand is computed
before that point in any topological order, so the rewrite keeps the graph
valid whatever order the front end wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from ..ir import Model, Node
from ..ir.dims import dims_equal
from ..ops import lookup, make_node
from ..ops.base import static_size
from ..ops.elementwise import BinaryOp, Cast, NaryOp, UnaryOp
from ..ops.registry import INTERNAL_DOMAIN


@dataclass
class _Chain:
    """The nodes of one chain so far, its inputs (chain input first) and its steps."""

    nodes: list[Node]
    inputs: list[str]
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tail(self) -> str:
        return self.nodes[-1].outputs[0]


def fuse_elementwise_chains(model: Model) -> Model:
    """Replace every chain of two or more element-wise nodes by one fused node."""
    readers: dict[str, int] = {}
    for node in model.nodes:
        for name in node.inputs:
            if name:
                readers[name] = readers.get(name, 0) + 1
    open_chains: dict[str, _Chain] = {}  # tail tensor -> chain ending there
    chains: list[_Chain] = []
    for node in model.nodes:
        step = _step(model, node)
        if step is None:
            continue
        main, operand, first = step
        if main not in open_chains and operand in open_chains and step_shape_is_full(model, operand, node):
            main, operand, first = operand, main, not first  # continue the chain through the other operand
        chain = open_chains.pop(main, None) if readers.get(main) == 1 and main not in model.outputs else None
        if chain is None:
            chain = _Chain([], [main])
            chains.append(chain)
        _append(chain, node, operand, first)
        open_chains[chain.tail] = chain
    fused = {id(c.nodes[-1]): c for c in chains if len(c.nodes) > 1}
    inner = {id(n) for c in fused.values() for n in c.nodes[:-1]}
    for chain in fused.values():
        for n in chain.nodes[:-1]:
            del model.tensors[n.outputs[0]]
    model.nodes = [_fused_node(model, fused[id(n)]) if id(n) in fused else n for n in model.nodes if id(n) not in inner]
    return model


def _step(model: Model, node: Node) -> Optional[tuple[str, Optional[str], bool]]:
    """(chain input, other operand or None, operand is the first argument) when ``node`` can be a step."""
    if node.domain not in ("", "ai.onnx") or len(node.outputs) != 1:
        return None
    cls = lookup(node.op_type, node.domain, node.version)
    out = model.tensors.get(node.outputs[0])
    if cls is None or out is None or out.dtype.kind != "f":
        return None
    if issubclass(cls, UnaryOp) and not issubclass(cls, Cast):
        if any(node.inputs[1:]) or model.tensors[node.inputs[0]].dtype != out.dtype:
            return None
        return node.inputs[0], None, False
    if issubclass(cls, BinaryOp) and not issubclass(cls, NaryOp) and len(node.inputs) == 2:
        return _binary_step(model, node)
    return None


def step_shape_is_full(model: Model, name: str, node: Node) -> bool:
    """Whether tensor ``name`` has the shape of ``node``'s output (so it can carry the chain)."""
    t, out = model.tensors[name], model.tensors[node.outputs[0]]
    return len(t.shape) == len(out.shape) and all(map(dims_equal, t.shape, out.shape))


def _binary_step(model: Model, node: Node) -> Optional[tuple[str, Optional[str], bool]]:
    """The operand of the output's shape continues the chain; the other must be of that shape or one value."""
    a, b = node.inputs
    out = model.tensors[node.outputs[0]]
    ta, tb = model.tensors[a], model.tensors[b]
    if ta.dtype != out.dtype or tb.dtype != out.dtype or a == b:
        return None

    full_a, full_b = step_shape_is_full(model, a, node), step_shape_is_full(model, b, node)
    if full_a and (full_b or static_size(tb.shape) == 1):
        return a, b, False
    if full_b and static_size(ta.shape) == 1:
        return b, a, True
    return None


def _append(chain: _Chain, node: Node, operand: Optional[str], first: bool) -> None:
    index = -1
    if operand is not None:
        chain.inputs.append(operand)
        index = len(chain.inputs) - 1
    attrs = {k: v.item() if hasattr(v, "item") else v for k, v in node.attrs.items()}  # numpy scalars -> JSON
    chain.steps.append({"op": node.op_type, "version": node.version, "attrs": attrs, "operand": index,
                        "operand_first": first})
    chain.nodes.append(node)


def _fused_node(model: Model, chain: _Chain) -> Node:
    name = "+".join(n.name for n in chain.nodes)
    return make_node("FusedElementwise", chain.inputs, [chain.tail], {"steps": json.dumps(chain.steps)}, name=name,
                     domain=INTERNAL_DOMAIN, model=model.name, internal=True)
