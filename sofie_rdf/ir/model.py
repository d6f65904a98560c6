"""The intermediate representation: one graph of operator nodes.

Every front end (ONNX, Keras, PyTorch, stored ``.root`` IR) produces a
:class:`Model`; passes rewrite it and code generation reads it.  Nothing here
knows which parser built a model or how it is emitted.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..errors import ModelFormatError
from .dims import Dim
from .tensors import TensorInfo, TensorType


@dataclass
class Node:
    """One operator application.

    ``inputs`` keeps ONNX positions: an omitted optional input is ``""``.
    ``attrs`` is complete (schema defaults filled in by
    :func:`sofie_rdf.ops.make_node`), so operators never guess a default.
    ``version`` is the opset version of ``domain`` the node was written for.
    """

    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    name: str
    domain: str = ""
    version: int = 0

    @property
    def qualified_type(self) -> str:
        """``Type`` in the default domain, ``domain::Type`` elsewhere."""
        return self.op_type if self.domain in ("", "ai.onnx") else f"{self.domain}::{self.op_type}"

    def input(self, i: int) -> Optional[str]:
        """Name of input ``i``, or None when it is absent or omitted."""
        return self.inputs[i] if i < len(self.inputs) and self.inputs[i] else None

    def __str__(self) -> str:
        return f"{self.qualified_type} node {self.name!r}"


@dataclass
class Model:
    """A computation graph with its weights.

    ``tensors`` holds a :class:`TensorType` for every tensor once shape
    inference ran; before that only graph inputs and initializers are there.
    """

    name: str
    inputs: list[str]
    outputs: list[str]
    nodes: list[Node]
    initializers: dict[str, np.ndarray]
    tensors: dict[str, TensorType] = field(default_factory=dict)
    opsets: dict[str, int] = field(default_factory=dict)
    source: str = ""
    doc: str = ""
    # Conditions on symbolic dims the generated code relies on (set by shape inference).
    constraints: list = field(default_factory=list)
    # Dims known only when the code runs (NonZero's count, ...): symbol name -> the tensor whose
    # producer computes it (set by shape inference; see Op.runtime_dim).
    runtime_dims: dict = field(default_factory=dict)

    # ---- public view -----------------------------------------------------
    @property
    def input_info(self) -> list[TensorInfo]:
        return [self.tensors[n].info(n) for n in self.inputs]

    @property
    def output_info(self) -> list[TensorInfo]:
        return [self.tensors[n].info(n) for n in self.outputs]

    def digest(self) -> str:
        """Hash of everything that decides the generated code: name, graph, input types and weights."""
        h = hashlib.sha256()
        for part in (self.name, self.source, self.inputs, self.outputs, self.opsets):
            h.update(f"{part!r}\0".encode())
        for name in self.inputs:
            t = self.tensors.get(name)
            h.update(f"{name}:{t.dtype if t else None}:{t.shape if t else None}\0".encode())
        for n in self.nodes:
            h.update(f"{n.op_type}|{n.domain}|{n.version}|{n.name}|{n.inputs}|{n.outputs}\0".encode())
            for key, value in sorted(n.attrs.items()):
                h.update(key.encode())
                _feed(h, value)
        for name, value in self.initializers.items():
            h.update(name.encode())
            _feed(h, value)
        return h.hexdigest()

    def producers(self) -> dict[str, Node]:
        """Map tensor name -> node producing it."""
        return {o: n for n in self.nodes for o in n.outputs if o}

    # ---- validation ------------------------------------------------------
    def validate(self) -> None:
        """Check the graph is well formed and sort nodes topologically.

        Raises :class:`ModelFormatError` naming the model and the offending
        node or tensor: a name produced twice, a node reading a tensor nobody
        produces, a cycle, or a graph output that is never produced.
        """
        defined: dict[str, str] = {}
        for name in self.inputs:
            self._define(defined, name, "graph input")
        for name in self.initializers:
            if name in defined:  # ONNX allows an initializer as default of an input
                continue
            self._define(defined, name, "initializer")
        for node in self.nodes:
            for o in node.outputs:
                if o:
                    self._define(defined, o, str(node))
        for node in self.nodes:
            for i in node.inputs:
                if i and i not in defined:
                    raise ModelFormatError(f"model {self.name!r}: {node} reads tensor {i!r}, which nothing produces")
        for o in self.outputs:
            if o not in defined:
                raise ModelFormatError(f"model {self.name!r}: graph output {o!r} is never produced")
        self.nodes = self._topological_order()

    def _define(self, defined: dict[str, str], name: str, by: str) -> None:
        if name in defined:
            raise ModelFormatError(
                f"model {self.name!r}: tensor {name!r} is produced twice ({defined[name]} and {by})"
            )
        defined[name] = by

    def _topological_order(self) -> list[Node]:
        producer = self.producers()
        order: list[Node] = []
        state: dict[int, int] = {}  # 1 = visiting, 2 = done
        for root in self.nodes:
            stack: list[tuple[Node, bool]] = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                key = id(node)
                if expanded:
                    state[key] = 2
                    order.append(node)
                    continue
                if state.get(key) == 2:
                    continue
                if state.get(key) == 1:
                    raise ModelFormatError(f"model {self.name!r}: the graph has a cycle through {node}")
                state[key] = 1
                stack.append((node, True))
                for i in reversed(node.inputs):
                    dep = producer.get(i)
                    if dep is None:
                        continue
                    if state.get(id(dep)) == 1:
                        raise ModelFormatError(f"model {self.name!r}: the graph has a cycle through {dep}")
                    if state.get(id(dep)) != 2:
                        stack.append((dep, False))
        return order


def _feed(h: Any, value: Any) -> None:
    """Add an attribute or weight to a hash: arrays by dtype, shape and bytes, the rest by repr."""
    if isinstance(value, np.ndarray):
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes() if value.dtype != object else repr(value.tolist()).encode())
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _feed(h, v)
        h.update(b"]")
    else:
        h.update(f"{type(value).__name__}:{value!r}\0".encode())


_IDENT = re.compile(r"[^0-9A-Za-z_]+")


def model_name_from(text: str) -> str:
    """A valid C++ identifier made from a file stem or user string."""
    name = _IDENT.sub("_", text).strip("_")
    name = re.sub("_+", "_", name)
    if not name:
        return "Model"
    return name if not name[0].isdigit() else "Model_" + name


__all__ = ["Dim", "Model", "Node", "model_name_from"]
