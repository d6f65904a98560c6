"""Scaled dot-product attention as exported, ``MatMul(Q, Transpose(K)) -> Mul(scale) -> Softmax -> MatMul(., V)``,
rewritten into one ONNX ``Attention`` node (opset 23 semantics).

PyTorch exports every hand-written attention (ParT, ParticleTransformer-style encoders, ``q @ k.transpose(-1,
-2) * d ** -0.5``) as that chain, which materialises the (batch, heads, queries, keys) scores three times: the
product, the scaled product and the probabilities; at 256 tokens and 8 heads that is 2 MB per tensor, beyond
L2.  The Attention kernel computes one (batch, head) at a time with its scores in cache, the scale applied by
the first product and the transposed K read as it is.

The chain qualifies when Q, K (the Transpose's input, whose perm swaps the last two axes) and V are float32
4-D tensors of the same batch and heads, the scale (if any) is a scalar constant multiplying (``Mul``) or
dividing (``Div``) the product, the Softmax normalises the last axis, and every intermediate is read by the
next node alone and is not a graph output.  A bias or mask added to the scores is not fused: a row whose keys
are all masked (-inf) is NaN through Softmax, as onnxruntime computes it, and zeros through Attention.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Model, Node
from ..ir.dims import dims_equal
from ..ops import make_node
from .constant_folding import eliminate_dead_nodes

ATTENTION_VERSION = 23
SWAP_LAST = [0, 1, 3, 2]


def fuse_attention(model: Model) -> Model:
    """Replace every qualifying attention chain (see the module's text) by one Attention node."""
    consumers: dict[str, list[Node]] = {}
    for node in model.nodes:
        for name in node.inputs:
            if name:
                consumers.setdefault(name, []).append(node)
    producers = {out: node for node in model.nodes for out in node.outputs if out}
    replaced: dict[int, Node] = {}
    removed: set[int] = set()
    for node in model.nodes:
        chain = _chain(model, node, consumers, producers)
        if chain is None or any(id(n) in removed or id(n) in replaced for n in chain.nodes):
            continue
        replaced[id(chain.nodes[-1])] = make_node(
            "Attention", [node.inputs[0], chain.key, chain.nodes[-1].inputs[1]], chain.nodes[-1].outputs,
            {"scale": chain.scale}, name="+".join(n.name for n in chain.nodes), version=ATTENTION_VERSION,
            model=model.name)
        removed.update(id(n) for n in chain.nodes[:-1])
        for n in chain.nodes[:-1]:
            del model.tensors[n.outputs[0]]
    if not replaced:
        return model
    nodes = [replaced.get(id(n), n) for n in model.nodes if id(n) not in removed]
    model.nodes = eliminate_dead_nodes(model, nodes)  # the Transposes of K that the chains alone read
    kept = {id(n) for n in model.nodes}
    for node in nodes:
        if id(node) not in kept:
            for out in node.outputs:
                model.tensors.pop(out, None)
    return model


class _Chain:
    """A matched chain: its nodes from the first product to the second, K, and the scale."""

    def __init__(self, nodes: list[Node], key: str, scale: float) -> None:
        self.nodes, self.key, self.scale = nodes, key, scale


def _chain(model: Model, first: Node, consumers: dict[str, list[Node]],
           producers: dict[str, Node]) -> Optional[_Chain]:
    """The chain that starts at ``first`` (the scores' product), None where ``first`` starts none."""
    if not _is(first, "MatMul"):
        return None
    transpose = producers.get(first.inputs[1])
    if transpose is None or not _is(transpose, "Transpose") or list(transpose.attrs.get("perm", [])) != SWAP_LAST:
        return None
    nodes, scale = [first], 1.0
    step = _only_reader(model, first, consumers)
    if step is not None and _is(step, "Mul", "Div"):
        value = _scalar_operand(model, step, first.outputs[0])
        if value is None or (step.op_type == "Div" and value == 0):
            return None
        scale = value if step.op_type == "Mul" else 1.0 / value
        nodes.append(step)
        step = _only_reader(model, step, consumers)
    if step is None or not _softmax_last_axis(model, step):
        return None
    nodes.append(step)
    second = _only_reader(model, step, consumers)
    if second is None or not _is(second, "MatMul") or second.inputs[0] != step.outputs[0]:
        return None
    nodes.append(second)
    if not _shapes_fit(model, first.inputs[0], transpose.inputs[0], second.inputs[1]):
        return None
    return _Chain(nodes, transpose.inputs[0], scale)


def _is(node: Node, *op_types: str) -> bool:
    return node.op_type in op_types and node.domain in ("", "ai.onnx")


def _only_reader(model: Model, node: Node, consumers: dict[str, list[Node]]) -> Optional[Node]:
    """The one node reading ``node``'s single output, None where it has other readers or is a graph output."""
    out = node.outputs[0]
    readers = consumers.get(out, [])
    if len(node.outputs) != 1 or out in model.outputs or len(readers) != 1:
        return None
    return readers[0]


def _scalar_operand(model: Model, node: Node, data: str) -> Optional[float]:
    """The constant scalar ``node`` multiplies or divides ``data`` by (as its second operand), else None."""
    if len(node.inputs) != 2 or node.inputs[0] != data or node.inputs[1] == data:
        return None
    value = model.initializers.get(node.inputs[1])
    if value is None or value.size != 1 or value.dtype != np.float32 or not np.isfinite(value).all():
        return None
    return float(value.reshape(()))


def _softmax_last_axis(model: Model, node: Node) -> bool:
    """A Softmax over the last axis of a 4-D tensor (in either opset's meaning: before 13 the axis flattens the
    rest into rows, the same for the last axis)."""
    if not _is(node, "Softmax"):
        return False
    rank = model.tensors[node.inputs[0]].rank
    return rank == 4 and node.attrs.get("axis", -1) in (-1, rank - 1)


def _shapes_fit(model: Model, q: str, k: str, v: str) -> bool:
    """Q, K and V are float32 (batch, heads, length, head size) tensors of one batch and heads, K and V of one
    length, as Attention's 4-D form takes them."""
    tq, tk, tv = (model.tensors.get(name) for name in (q, k, v))
    if tq is None or tk is None or tv is None:
        return False
    if any(t.rank != 4 or t.dtype != np.float32 for t in (tq, tk, tv)):
        return False
    return (all(dims_equal(a, b) for a, b in zip(tq.shape[:2], tk.shape[:2]))
            and all(dims_equal(a, b) for a, b in zip(tk.shape[:3], tv.shape[:3]))
            and dims_equal(tq.shape[3], tk.shape[3]))
