"""Building IR graphs from Keras layers: names, constants, nodes.

Layer converters speak ONNX operators through :class:`GraphBuilder`, which
names every tensor and node after the Keras layer that made it (so errors and
generated code point at the user's layer), fills attribute defaults through
:func:`sofie_rdf.ops.make_node`, and removes the layout transposes that
channels-last Keras layers put around channels-first ONNX kernels where two
of them cancel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ...ir import Model, Node, TensorType
from ...ops import make_node

# ONNX opset the Keras front end writes (Gelu needs 20).
OPSET = 21


@dataclass(frozen=True)
class Tensor:
    """A Keras tensor as converters see it: its IR name, its Keras shape (None for open dims) and the IR name of
    the boolean mask Keras attaches to it (``Masking``, ``Embedding(mask_zero=True)``), if any."""

    name: str
    shape: tuple
    mask: Optional[str] = None

    @property
    def rank(self) -> int:
        return len(self.shape)


class GraphBuilder:
    """Accumulates the nodes and initializers of one IR model."""

    def __init__(self, model_name: str):
        self.model_name = model_name
        self.nodes: list[Node] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.tensors: dict[str, TensorType] = {}
        self.scope = ""  # the Keras layer being converted: prefix of new names
        self._used: set[str] = set()
        self._transposed: dict[str, tuple[str, tuple[int, ...]]] = {}  # output -> (input, perm)

    # ---- names ----------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A tensor or node name not used yet, ``<layer>/<hint>`` in the current scope."""
        base = f"{self.scope}/{hint}" if self.scope else hint
        name, k = base, 1
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim an exact name (graph inputs); a clash gets a suffix."""
        saved, self.scope = self.scope, ""
        try:
            return self.fresh(name)
        finally:
            self.scope = saved

    # ---- graph pieces -----------------------------------------------------------
    def const(self, value: Any, hint: str = "const", dtype: Any = np.float32) -> str:
        """An initializer holding ``value`` (converted to ``dtype`` unless already an array)."""
        array = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        self.initializers[name] = np.asarray(array, order="C")  # not ascontiguousarray: it makes scalars 1-D
        return name

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        """An int64 1-D initializer (shapes, axes, pads for operators that take them as inputs)."""
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def add(self, op_type: str, inputs: Sequence[str], attrs: Optional[dict] = None, outputs: int = 1,
            hint: Optional[str] = None, version: int = OPSET, domain: str = "") -> Any:
        """Append one node; returns its output name, or the list of names when ``outputs > 1``."""
        names = [self.fresh(hint or op_type) for _ in range(outputs)]
        node_name = names[0] if outputs == 1 else self.fresh(f"{hint or op_type}_node")
        self.nodes.append(make_node(op_type, list(inputs), names, attrs or {}, node_name, domain, version,
                                    model=self.model_name))
        return names[0] if outputs == 1 else names

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        """``Transpose(x, perm)``, or the tensor before a transpose this one undoes."""
        perm = tuple(perm)
        if perm == tuple(range(len(perm))):
            return x
        if x in self._transposed:
            source, before = self._transposed[x]
            if tuple(before[p] for p in perm) == tuple(range(len(perm))):
                return source
        y = self.add("Transpose", [x], {"perm": list(perm)})
        self._transposed[y] = (x, perm)
        return y

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        """``Reshape`` to ``shape`` (ONNX rules: 0 copies a dim, -1 is inferred)."""
        return self.add("Reshape", [x, self.ints(shape)])

    def rename(self, old: str, new: str) -> bool:
        """Give the node output ``old`` the name ``new`` everywhere; False when no node produces ``old``."""
        if not any(old in n.outputs for n in self.nodes):
            return False
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
            n.outputs = [new if o == old else o for o in n.outputs]
        self._transposed = {(new if k == old else k): (new if v[0] == old else v[0], v[1])
                            for k, v in self._transposed.items()}
        return True

    def identity(self, x: str, name: str) -> None:
        """An ``Identity`` node writing ``x`` to the exact (reserved) name ``name``."""
        self.nodes.append(make_node("Identity", [x], [name], {}, name, "", OPSET, model=self.model_name))

    def model(self, inputs: list[str], outputs: list[str], source: str, doc: str = "") -> Model:
        """The finished IR, keeping only the nodes the outputs depend on."""
        graph = Model(name=self.model_name, inputs=inputs, outputs=outputs, nodes=self._live(outputs),
                      initializers={}, opsets={"": OPSET}, source=source, doc=doc)
        used = {i for n in graph.nodes for i in n.inputs} | set(outputs)
        graph.initializers = {k: v for k, v in self.initializers.items() if k in used}
        graph.tensors = {n: self.tensors[n] for n in inputs}
        return graph

    def _live(self, outputs: list[str]) -> list[Node]:
        producer = {o: n for n in self.nodes for o in n.outputs}
        needed, stack = set(), list(outputs)
        while stack:
            node = producer.get(stack.pop())
            if node is not None and id(node) not in needed:
                needed.add(id(node))
                stack.extend(i for i in node.inputs if i)
        return [n for n in self.nodes if id(n) in needed]


# ONNX TensorProto element types by Keras dtype name.
ONNX_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "bool": 9,
              "float16": 10, "float64": 11, "uint32": 12, "uint64": 13, "bfloat16": 16}


def cast(b: GraphBuilder, x: str, source: Any, target: Any) -> str:
    """``x`` (of Keras dtype ``source``) as dtype ``target``: a ``Cast`` only where they differ."""
    source, target = str(source), str(target)
    if source == target:
        return x
    if target not in ONNX_TYPES:
        raise ValueError(f"dtype {target!r} is not supported")
    return b.add("Cast", [x], {"to": ONNX_TYPES[target]})


def weight(variable: Any) -> np.ndarray:
    """A Keras variable's value as a float32 numpy array (any backend)."""
    from keras import ops

    return np.ascontiguousarray(ops.convert_to_numpy(variable), dtype=np.float32)


def axis_of(axis: int, rank: int) -> int:
    """A Keras axis (negative counts from the end) as a non-negative axis."""
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def call_arguments(layer: Any, call: Any) -> dict[str, Any]:
    """The arguments of one layer call by parameter name, positional ones included (defaults left out),
    so converters read ``initial_state`` or ``value`` however the user passed them."""
    import inspect

    bound = inspect.signature(layer.call).bind_partial(*call.arguments.args, **call.arguments.kwargs)
    return dict(bound.arguments)


def untransposed(b: GraphBuilder, x: str, rank: int) -> tuple[str, tuple[int, ...]]:
    """``(source, perm)`` with ``x == Transpose(source, perm)`` when the builder made ``x`` so, else ``(x, identity)``.

    Layers that act per axis (batch normalization, padding, cropping, global
    pooling, upsampling) work on ``source`` with axis ``a`` of ``x`` read as
    axis ``perm[a]``, then transpose back; that transpose cancels with the next
    channels-first layer's, so a chain of Keras image layers stays channels-first.
    """
    return b._transposed.get(x, (x, tuple(range(rank))))
