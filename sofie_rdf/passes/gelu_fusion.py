"""GELU as exported into one ``Gelu`` node (the operator of opset 20), as onnxruntime's GeluFusion does.

Exporters before opset 20 write GELU as a chain of element-wise nodes: PyTorch's exact form as
``Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5)``, its tanh approximation as
``x * x * x -> Mul(0.044715) -> Add(x) -> Mul(sqrt(2 / pi)) -> Tanh -> Add(1) -> Mul(x) -> Mul(0.5)``.
One ``Gelu`` node computes the same function of x, and as a unary operator it fuses into the Gemm or Conv
before it (``passes/fusion.py``): the activation then runs in the product's epilogue while the tile is in
cache, where the chain (one loop of its own after element-wise fusion) read and wrote the hidden layer
once more (a transformer's feed-forward block, 128 tokens x 512 features: 29 us of 340).

A chain qualifies when every constant is a single value equal to the form's (to float32 rounding), the
multiplications by x and by 0.5 come in any order and association, and no intermediate tensor is read
outside the chain or is a graph output.  The node computes x / sqrt 2 as x * (1 / sqrt 2) and the
product's factors in its own order: results differ from the chain's in the last bits, as onnxruntime's do.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..ir import Model, Node
from ..ir.dims import dims_equal
from ..ops import make_node

GELU_VERSION = 20
# Relative tolerance on the constants: exporters write them as float32 (sqrt 2 is 1.41421354 there).
_RTOL = 1e-6


def fuse_gelu(model: Model) -> Model:
    """Replace every exported GELU chain by one ``Gelu`` node placed where the chain ended."""
    match = _Matcher(model)
    replaced: dict[int, Node] = {}
    removed: set[int] = set()
    for node in model.nodes:
        found = match.gelu(node)
        if found is None or any(id(n) in removed for n in found[2]):
            continue
        x, approximate, nodes = found
        last = nodes[-1]
        gelu = make_node("Gelu", [x], last.outputs, {"approximate": approximate}, name=f"{node.name}:Gelu",
                         version=GELU_VERSION, model=model.name)
        replaced[id(last)] = gelu
        removed.update(id(n) for n in nodes[:-1])
        for n in nodes[:-1]:
            del model.tensors[n.outputs[0]]
    model.nodes = [replaced.get(id(n), n) for n in model.nodes if id(n) not in removed]
    used = {name for n in model.nodes for name in n.inputs if name}
    model.initializers = {k: v for k, v in model.initializers.items() if k in used or k in model.outputs}
    return model


class _Matcher:
    """Looks up a model's producers and readers to recognise the chains, from their Erf or Tanh node."""

    def __init__(self, model: Model):
        self.model = model
        self.producer = {o: n for n in model.nodes for o in n.outputs if o}
        self.readers: dict[str, list[Node]] = {}
        for n in model.nodes:
            for name in n.inputs:
                if name:
                    self.readers.setdefault(name, []).append(n)

    def gelu(self, node: Node) -> Optional[tuple[str, str, list[Node]]]:
        """(x, approximate, the chain's nodes with the last one last) when ``node`` is the Erf or Tanh of a chain."""
        if not _standard(node) or node.op_type not in ("Erf", "Tanh") or len(node.inputs) != 1:
            return None
        head = self._head(node)
        if head is None:
            return None
        x, before = head
        one = self._sole_reader(node, "Add")
        tail = None if one is None or not self._operand_is(one, node.outputs[0], 1.0) else self._tail(one, x)
        if tail is None:
            return None
        nodes = before + [node, one] + tail
        out = self.model.tensors[nodes[-1].outputs[0]]
        xt = self.model.tensors[x]
        if out.dtype != xt.dtype or xt.dtype.kind != "f" or len(out.shape) != len(xt.shape) or \
                not all(dims_equal(a, b) for a, b in zip(out.shape, xt.shape)):
            return None
        return x, "none" if node.op_type == "Erf" else "tanh", nodes

    def _head(self, node: Node) -> Optional[tuple[str, list[Node]]]:
        """x and the nodes before the Erf (x / sqrt 2) or Tanh (sqrt(2 / pi) (x + 0.044715 x^3))."""
        scaled = self._private_producer(node.inputs[0])
        if scaled is None:
            return None
        if node.op_type == "Erf":
            if scaled.op_type == "Div" and self._constant(scaled.inputs[1], math.sqrt(2)):
                return scaled.inputs[0], [scaled]
            x = self._scaled_by(scaled, 1 / math.sqrt(2))
            return None if x is None else (x, [scaled])
        inner = self._scaled_by(scaled, math.sqrt(2 / math.pi))
        add = self._private_producer(inner) if inner else None
        if add is None or add.op_type != "Add" or len(add.inputs) != 2:
            return None
        for x, cubic in (add.inputs, add.inputs[::-1]):
            found = self._cubic_term(cubic, x)
            if found is not None:
                return x, found + [add, scaled]
        return None

    def _cubic_term(self, name: str, x: str) -> Optional[list[Node]]:
        """The nodes computing 0.044715 * x^3 (as x * x * x in any association, or Pow(x, 3)), or None."""
        mul = self._private_producer(name)
        cube = self._private_producer(self._scaled_by(mul, 0.044715) or "") if mul else None
        if cube is None:
            return None
        if cube.op_type == "Pow" and cube.inputs[0] == x and self._constant(cube.inputs[1], 3.0):
            return [cube, mul]
        if cube.op_type != "Mul" or x not in cube.inputs:
            return None
        square = self._private_producer(cube.inputs[1] if cube.inputs[0] == x else cube.inputs[0])
        if square is None or square.op_type != "Mul" or square.inputs != [x, x]:
            return None
        return [square, cube, mul]

    def _tail(self, one: Node, x: str) -> Optional[list[Node]]:
        """The Muls by x and by 0.5 that end the chain after its Add(1), in any order and association."""
        first = self._sole_reader(one, "Mul")
        if first is None:
            return None
        other = first.inputs[1] if first.inputs[0] == one.outputs[0] else first.inputs[0]
        half = self._private_producer(other)
        if half is not None and half.op_type == "Mul" and self._scaled_by(half, 0.5) == x:
            return [half, first]  # (0.5 x) * (1 + erf)
        second = self._sole_reader(first, "Mul")
        if second is None:
            return None
        last = second.inputs[1] if second.inputs[0] == first.outputs[0] else second.inputs[0]
        if {other, last} == {x} or x not in (other, last):
            return None
        return [first, second] if self._constant(last if other == x else other, 0.5) else None

    def _scaled_by(self, node: Node, value: float) -> Optional[str]:
        """The other operand of a Mul ``node`` by the constant ``value``, or None."""
        if not _standard(node) or node.op_type != "Mul" or len(node.inputs) != 2:
            return None
        a, b = node.inputs
        return a if self._constant(b, value) else b if self._constant(a, value) else None

    def _operand_is(self, node: Node, chain: str, value: float) -> bool:
        """Whether ``node``'s operand other than ``chain`` is the constant ``value``."""
        other = [n for n in node.inputs if n != chain]
        return len(node.inputs) == 2 and len(other) == 1 and self._constant(other[0], value)

    def _constant(self, name: str, value: float) -> bool:
        v = self.model.initializers.get(name)
        return v is not None and v.size == 1 and v.dtype.kind == "f" and \
            abs(float(np.asarray(v).reshape(())) - value) <= _RTOL * abs(value)

    def _private_producer(self, name: str) -> Optional[Node]:
        """The standard node writing ``name`` when only one node reads it and it is not a graph output."""
        node = self.producer.get(name)
        if node is None or not _standard(node) or name in self.model.outputs or len(self.readers.get(name, [])) != 1:
            return None
        return node

    def _sole_reader(self, node: Node, op_type: str) -> Optional[Node]:
        """The one node of ``op_type`` reading ``node``'s output, which is not a graph output."""
        out = node.outputs[0]
        readers = self.readers.get(out, [])
        if out in self.model.outputs or len(readers) != 1 or readers[0].op_type != op_type or not _standard(readers[0]):
            return None
        return readers[0] if len(readers[0].inputs) == 2 else None


def _standard(node: Node) -> bool:
    return node.domain in ("", "ai.onnx") and len(node.outputs) == 1
