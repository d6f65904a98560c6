"""Lowering the control flow the passes left: an ``If`` decided while running becomes its branches' own nodes
between marker nodes (``sofie_rdf::IfBegin``, ``Else``, ``EndIf``; :mod:`sofie_rdf.ops.control`), a
``Loop`` or ``Scan`` its body's nodes between ``LoopBegin``/``ScanBegin`` and ``LoopEnd``/``ScanEnd``.

Each branch is prepared and rewritten as a model of its own (its inputs: the enclosing tensors it reads), its
tensors renamed ``<If>/<branch>/<name>``, and spliced into the enclosing node list, so the memory planner
places both branches' tensors like any others: a tensor the If reads stays alive up to ``EndIf`` (which reads
both branches' outputs and copies the taken one's into the If's outputs), and the else-branch may reuse the
then-branch's memory, since only one of them runs.  A loop's end marker reads every tensor the iterations
need again (its state, its counter, the trip count, the enclosing tensors the body reads, the scan inputs and
outputs), so they stay alive through the loop; the body's own tensors are recomputed each iteration.  The
session writer writes each branch and each loop body as a block.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import sympy

from ..ir import Graph, Model, Node, TensorType, unique_name
from ..ir.dims import dims_equal
from ..ops import make_node, op_for
from ..ops.base import Constraint
from ..ops.registry import INTERNAL_DOMAIN
from ..passes import prepare, rewrite

BRANCHES = ("then_branch", "else_branch")


# Rewrites a prepared subgraph for the machine the model is planned for (passes.rewrite with its options).
Rewriter = Callable[[Model], Model]


def lower_control_flow(model: Model, rewriter: Rewriter = rewrite) -> Model:
    """``model`` (changed) with every ``If``, ``Loop`` and ``Scan`` lowered; their subgraphs' tensors, weights,
    run-time dims and conditions on dims become the model's.  Subgraphs go through ``rewriter``, as the model
    did."""
    lower = {"If": _lower_if, "Loop": _lower_loop, "Scan": _lower_scan}
    nodes: list[Node] = []
    for node in model.nodes:
        ours = node.domain in ("", "ai.onnx") and node.op_type in lower
        nodes += lower[node.op_type](model, node, rewriter) if ours else [node]
    model.nodes = nodes
    return model


def _marker(model: Model, node: Node, op_type: str, inputs: list[str], outputs: list[str],
            attrs: Optional[dict[str, Any]] = None) -> Node:
    return make_node(op_type, inputs, outputs, attrs, f"{node.name}/{op_type}", INTERNAL_DOMAIN, model=model.name,
                     internal=True)


def _lower_if(model: Model, node: Node, rewriter: Rewriter) -> list[Node]:
    then_model, else_model = (_subgraph(model, node, key, {}, rewriter) for key in BRANCHES)
    cond = node.inputs[0]
    return [_marker(model, node, "IfBegin", [cond], []), *then_model.nodes, _marker(model, node, "Else", [], []),
            *else_model.nodes,
            _marker(model, node, "EndIf", [cond, *then_model.outputs, *else_model.outputs], list(node.outputs))]


def _lower_loop(model: Model, node: Node, rewriter: Rewriter) -> list[Node]:
    """LoopBegin, the body's nodes, LoopEnd: the body's loop-carried values are the Loop's outputs."""
    body, taken = node.attrs["body"], _taken(model)
    own = node.inputs[:len(node.inputs) - len(body.outer)]
    n = len(own) - 2
    names = _output_names(model, node, taken)
    counter = [unique_name(f"{node.name}/{what}", taken) for what in ("iteration", "condition")]
    params = {body.inputs[0]: (counter[0], TensorType(np.int64, ())), body.inputs[1]: (counter[1], TensorType(np.bool_, ()))}
    params.update((b, (o, model.tensors[o])) for b, o in zip(body.inputs[2:], names[:n]))
    sub = _subgraph(model, node, "body", params, rewriter)
    _keep_state(model, node, names[:n], sub.outputs[1:1 + n])
    counts = [n, 0, len(names) - n]
    begin = _marker(model, node, "LoopBegin", own, counter + names, {"counts": counts})
    # The trip count is read by every iteration's test: it stays alive up to LoopEnd too.
    end = _marker(model, node, "LoopEnd", [*counter, *names, *sub.outputs, *node.inputs[len(own):], own[0]], [],
                  {"counts": counts})
    return [begin, *sub.nodes, end]


def _lower_scan(model: Model, node: Node, rewriter: Rewriter) -> list[Node]:
    """ScanBegin, the body's nodes, ScanEnd: the body's state values are the Scan's outputs."""
    body, taken = node.attrs["body"], _taken(model)
    own = node.inputs[:len(node.inputs) - len(body.outer)]
    m = node.attrs["num_scan_inputs"]
    n = len(own) - m
    names = _output_names(model, node, taken)
    counter = unique_name(f"{node.name}/iteration", taken)
    op = op_for(node, model.name)
    element_types = op.body_inputs([model.tensors[i] for i in own])[n:]
    elements = [unique_name(f"{node.name}/{b}", taken) for b in body.inputs[n:]]
    params = {b: (o, model.tensors[o]) for b, o in zip(body.inputs[:n], names[:n])}
    params.update((b, (e, t)) for b, e, t in zip(body.inputs[n:], elements, element_types))
    sub = _subgraph(model, node, "body", params, rewriter)
    _keep_state(model, node, names[:n], sub.outputs[:n])
    model.tensors[counter] = TensorType(np.int64, ())
    attrs = {k: v for k, v in node.attrs.items() if k.startswith("scan_")}
    attrs["counts"] = [n, m, len(names) - n]
    begin = _marker(model, node, "ScanBegin", own, [counter, *names[:n], *elements, *names[n:]], attrs)
    end = _marker(model, node, "ScanEnd", [counter, *names[:n], *own[n:], *names[n:], *sub.outputs,
                                           *node.inputs[len(own):]], [], attrs)
    return [begin, *sub.nodes, end]


def _keep_state(model: Model, node: Node, states: list[str], updates: list[str]) -> None:
    """Checks, where the body computes them, that the dims of a loop-carried value stay what they were."""
    for k, (state, update) in enumerate(zip(states, updates)):
        for a, b in zip(model.tensors[state].shape, model.tensors[update].shape):
            if not dims_equal(a, b):
                model.constraints.append(Constraint(sympy.Eq(b, a), f"{node}: loop-carried value {k} keeps its shape"))


def _output_names(model: Model, node: Node, taken: set[str]) -> list[str]:
    """The node's outputs, an omitted one given a name and its type (the loop still computes it)."""
    if all(node.outputs):
        return list(node.outputs)
    types = op_for(node, model.name).infer([model.tensors[i] if i else None for i in node.inputs])
    names = [o or unique_name(f"{node.name}/output{k}", taken) for k, o in enumerate(node.outputs)]
    model.tensors.update((name, t) for name, t in zip(names, types) if name not in model.tensors)
    return names


def _taken(model: Model) -> set[str]:
    return set(model.tensors) | set(model.initializers)


def _subgraph(model: Model, node: Node, key: str, params: dict[str, tuple[str, TensorType]],
              rewriter: Rewriter) -> Model:
    """Subgraph ``key`` of ``node`` prepared, rewritten and lowered as a model whose inputs are its parameters
    (``params``: its input name -> (name in ``model``, type)) and the enclosing tensors the node reads; what
    it adds (tensors, weights, dims) is added to ``model``."""
    graph = node.attrs[key]
    rename = dict(zip(graph.outer, _enclosing(graph, node)))
    rename.update((inner, outer) for inner, (outer, _) in params.items())
    taken = _taken(model)
    prefix = f"{node.name}/{key}/"
    for name in [*graph.initializers, *(o for n in graph.nodes for o in n.outputs if o)]:
        rename[name] = unique_name(prefix + name, taken)
    nodes = [Node(n.op_type, [rename.get(i, i) for i in n.inputs], [rename[o] if o else o for o in n.outputs],
                  dict(n.attrs), prefix + n.name, n.domain, n.version) for n in graph.nodes]
    inputs = list(dict.fromkeys([*(outer for outer, _ in params.values()), *_enclosing(graph, node)]))
    sub = Model(model.name, inputs, [rename.get(o, o) for o in graph.outputs], nodes,
                {rename[n]: v for n, v in graph.initializers.items()}, opsets=model.opsets, source=model.source)
    sub.tensors = {n: model.tensors[n] for n in inputs if n in model.tensors}
    sub.tensors.update((outer, t) for outer, t in params.values())
    sub = lower_control_flow(rewriter(prepare(sub)), rewriter)
    model.tensors.update(sub.tensors)
    model.initializers.update(sub.initializers)
    model.runtime_dims.update(sub.runtime_dims)
    model.constraints.extend(c for c in sub.constraints if c not in model.constraints)
    return sub


def _enclosing(graph: Graph, node: Node) -> list[str]:
    """The enclosing tensors ``graph`` reads, by their names in the enclosing graph."""
    return node.inputs[len(node.inputs) - len(graph.outer):]

