"""The intermediate representation: one graph of operator nodes.

Every front end (ONNX, Keras, PyTorch, stored ``.root`` IR) produces a
:class:`Model`; passes rewrite it and code generation reads it.  Nothing here
knows which parser built a model or how it is emitted.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..errors import ModelFormatError
from .dims import Dim, as_dim, free_symbols, symbol
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
class Graph:
    """A subgraph held in a control-flow node's attribute (If's branches, Loop's and Scan's bodies).

    ``inputs`` are its formal parameters (Loop's iteration number, Scan's elements; none for If), named as
    inside the graph.  ``outer`` names the enclosing scope's tensors it reads, in the order the owning node
    lists them after its own ONNX inputs: every subgraph of a node shares that one list, and the node's
    trailing inputs are those tensors in the enclosing graph.  So topological order, dead-node elimination
    and liveness see what a subgraph reads without knowing subgraphs, and a pass renaming a node's input
    leaves the graph right (it is bound by position).  A nested control-flow node inside lists its own
    captures as inputs the same way.
    """

    name: str
    inputs: list[str]
    outputs: list[str]
    nodes: list[Node]
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    outer: list[str] = field(default_factory=list)

    def feed(self, h: Any) -> None:
        """Add everything that decides the generated code to a hash (see :meth:`Model.digest`)."""
        h.update(f"graph {self.name!r} {self.inputs!r} {self.outputs!r} {self.outer!r}\0".encode())
        _feed_nodes(h, self.nodes)
        for name, value in self.initializers.items():
            h.update(name.encode())
            _feed(h, value)


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
    # Names of the input dims the file left unnamed (no dim_value, no dim_param): unknown, not different.
    # Shape inference binds each to the first dim an operator needs it equal to (passes.prepare).
    unnamed_dims: set = field(default_factory=set)
    # Named input dims bound to an expression of the others because an operator needs them equal (weaver's
    # ParT adds a mask over the features' particles to the pair embedding over the 4-vectors'): name -> the
    # node and dims that needed it (set by shape inference).
    equated_dims: dict = field(default_factory=dict)

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
        _feed_nodes(h, self.nodes)
        for name, value in self.initializers.items():
            h.update(name.encode())
            _feed(h, value)
        return h.hexdigest()

    def fix_inputs(self, dims: Optional[Mapping[str, int]] = None,
                   shapes: Optional[Mapping[str, Sequence[Any]]] = None) -> None:
        """Give symbolic input dims values before shape inference, as TMVA SOFIE's
        ``RModel::Initialize(map<string, size_t>)`` does: the code is then specialised for them like constants.

        ``dims`` maps a dim's name to its size; ``shapes`` maps an input's name to its whole shape, whose
        entries are sizes, dim names (a symbol, possibly renaming an unnamed dim) or None (kept).  Raises
        :class:`ModelFormatError` for a name the model does not have, a rank that differs, a fixed size
        contradicted or a negative size.
        """
        for name, shape in (shapes or {}).items():
            if name not in self.inputs:
                raise ModelFormatError(f"model {self.name!r}: input_shapes names {name!r}, which is not an input "
                                       f"(inputs: {', '.join(self.inputs)})")
            self.tensors[name] = self._fixed_shape(name, list(shape))
        if not dims:
            return
        known = {s.name: s for s in free_symbols(self.tensors[n].shape for n in self.inputs)}
        for name, size in dims.items():
            if name not in known:
                raise ModelFormatError(f"model {self.name!r}: dims names {name!r}, which is no dim of the inputs "
                                       f"(symbolic dims: {', '.join(sorted(known)) or 'none'})")
            if not isinstance(size, (int, np.integer)) or size < 0:
                raise ModelFormatError(f"model {self.name!r}: dim {name!r} must be a size >= 0, got {size!r}")
        values = {known[n]: int(v) for n, v in dims.items()}
        for n in self.inputs:
            t = self.tensors[n]
            self.tensors[n] = TensorType(t.dtype, tuple(as_dim(d if isinstance(d, int) else d.subs(values))
                                                        for d in t.shape))

    def _fixed_shape(self, name: str, shape: list[Any]) -> TensorType:
        t = self.tensors[name]
        if len(shape) != len(t.shape):
            raise ModelFormatError(f"model {self.name!r}: input_shapes gives {name!r} rank {len(shape)}, "
                                   f"but the input has shape {tuple(str(d) for d in t.shape)}")
        out: list[Dim] = []
        for axis, (old, new) in enumerate(zip(t.shape, shape)):
            if new is None:
                out.append(old)
            elif isinstance(new, str):
                if isinstance(old, int):
                    raise ModelFormatError(f"model {self.name!r}: input {name!r} axis {axis} has the fixed size "
                                           f"{old}; it cannot become the dim {new!r}")
                out.append(symbol(new))
            elif isinstance(new, (int, np.integer)) and new >= 0:
                if isinstance(old, int) and old != new:
                    raise ModelFormatError(f"model {self.name!r}: input {name!r} axis {axis} has the fixed size "
                                           f"{old}, not {new}")
                out.append(int(new))
            else:
                raise ModelFormatError(f"model {self.name!r}: input_shapes[{name!r}] axis {axis}: expected a size "
                                       f">= 0, a dim name or None, got {new!r}")
        return TensorType(t.dtype, tuple(out))

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


def _feed_nodes(h: Any, nodes: Sequence[Node]) -> None:
    for n in nodes:
        h.update(f"{n.op_type}|{n.domain}|{n.version}|{n.name}|{n.inputs}|{n.outputs}\0".encode())
        for key, value in sorted(n.attrs.items()):
            h.update(key.encode())
            _feed(h, value)


def _feed(h: Any, value: Any) -> None:
    """Add an attribute or weight to a hash: arrays by dtype, shape and bytes, subgraphs by their content,
    the rest by repr."""
    if isinstance(value, Graph):
        value.feed(h)
    elif isinstance(value, np.ndarray):
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes() if value.dtype != object else repr(value.tolist()).encode())
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _feed(h, v)
        h.update(b"]")
    else:
        h.update(f"{type(value).__name__}:{value!r}\0".encode())


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or it with a number appended, that is not in ``taken`` (then added to it): for tensors a
    rewrite moves from a subgraph into the enclosing graph."""
    out, k = name, 2
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    taken.add(out)
    return out


_IDENT = re.compile(r"[^0-9A-Za-z_]+")


def model_name_from(text: str) -> str:
    """A valid C++ identifier made from a file stem or user string."""
    name = _IDENT.sub("_", text).strip("_")
    name = re.sub("_+", "_", name)
    if not name:
        return "Model"
    return name if not name[0].isdigit() else "Model_" + name


__all__ = ["Dim", "Graph", "Model", "Node", "model_name_from", "unique_name"]
