"""Emitting a graph network as standard ONNX operators into one IR graph.

A :class:`Builder` owns the graph under construction: the four graph inputs,
the two symbolic sizes ``n_nodes`` and ``n_edges``, and helpers for what every
block needs (gathers by senders and receivers, aggregations by segment,
broadcasting globals to rows, concatenation).  Tensors whose size follows the
graph (zeros to scatter into, a row of globals per edge) are built from the
runtime ``Shape`` of an input, so nothing in the graph fixes a node or edge
count and the generated Session takes any graph.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .. import ir
from ..errors import SofieError
from ..ir.dims import symbol
from ..ops import make_node

# ScatterND's "max" reduction needs opset 18 (ReduceMax with axes as an input too).
OPSET = 18
AGGREGATIONS = ("sum", "mean", "max")
N_NODES, N_EDGES = "n_nodes", "n_edges"


@dataclass(frozen=True)
class Part:
    """One tensor of the graph state and its feature count (nodes and edges: rows x features; globals: features)."""

    tensor: str
    features: int


@dataclass(frozen=True)
class Graph:
    """Node, edge and global features of the graph as the blocks see it; globals may be absent."""

    nodes: Part
    edges: Part
    globals: Optional[Part]


def check_aggregation(kind: str, what: str) -> str:
    if kind not in AGGREGATIONS:
        raise SofieError(f"{what} aggregation must be one of {', '.join(AGGREGATIONS)}, got {kind!r}")
    return kind


class Builder:
    """The IR graph of one network under construction, with the graph inputs declared."""

    def __init__(self, name: str, node_features: int, edge_features: int, global_features: int):
        for what, n, least in (("node", node_features, 1), ("edge", edge_features, 1), ("global", global_features, 0)):
            if not isinstance(n, (int, np.integer)) or n < least:
                raise SofieError(f"graph network {name!r}: {what}_features must be an integer >= {least}, got {n!r}")
        self.name = name
        self.nodes: list[ir.Node] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.opsets: dict[str, int] = {"": OPSET}
        self.tensors: dict[str, ir.TensorType] = {}
        self.inputs: list[str] = []
        self._ids = itertools.count()
        self._cache: dict[tuple, str] = {}
        self.functions: dict[int, Any] = {}  # id(update function) -> its model, loaded once (see _functions)
        n_nodes, n_edges = symbol(N_NODES), symbol(N_EDGES)
        nodes = self._input("nodes", np.float32, (n_nodes, int(node_features)))
        edges = self._input("edges", np.float32, (n_edges, int(edge_features)))
        self.senders = self._input("senders", np.int64, (n_edges,))
        self.receivers = self._input("receivers", np.int64, (n_edges,))
        glob = self._input("globals", np.float32, (int(global_features),)) if global_features else None
        self.graph = Graph(Part(nodes, int(node_features)), Part(edges, int(edge_features)),
                           Part(glob, int(global_features)) if glob else None)

    def _input(self, name: str, dtype: type, shape: tuple) -> str:
        self.inputs.append(name)
        self.tensors[name] = ir.TensorType(np.dtype(dtype), shape)
        return name

    # ---- primitives ----------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A new tensor name (deterministic: the emission order numbers them)."""
        return f"{hint}_{next(self._ids)}"

    def op(self, op_type: str, inputs: Sequence[str], hint: str, **attrs) -> str:
        """Append one node of the default domain; returns its (single) output."""
        out = self.fresh(hint)
        self.nodes.append(make_node(op_type, inputs, [out], attrs, name=out, version=OPSET, model=self.name))
        return out

    def const(self, value: np.ndarray, hint: str) -> str:
        """An initializer holding ``value`` (the same value is stored once)."""
        value = np.asarray(value)
        key = ("const", value.dtype.str, value.shape, value.tobytes())
        if key not in self._cache:
            name = self.fresh(hint)
            self.initializers[name] = value
            self._cache[key] = name
        return self._cache[key]

    def cached(self, key: tuple, make) -> str:
        """The tensor ``make()`` emits, emitted once per ``key`` (counts, shapes and indices are shared by blocks)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # ---- graph sizes -----------------------------------------------------------
    def rows(self, of: str) -> str:
        """1-D int64 tensor [n] with the runtime number of nodes (``of="nodes"``) or edges (``of="edges"``)."""
        source = self.graph.nodes.tensor if of == "nodes" else self.senders
        return self.cached(("rows", of), lambda: self.op("Shape", [source], f"n_{of}", start=0, end=1))

    def rows_shape(self, of: str, features: int) -> str:
        """1-D int64 tensor [n_of, features]: the runtime shape of a per-node or per-edge tensor."""
        return self.cached(("shape", of, features), lambda: self.op(
            "Concat", [self.rows(of), self.const(np.array([features], np.int64), "features")], f"{of}_shape", axis=0))

    def filled(self, of: str, features: int, value: float, hint: str) -> str:
        """A float (n_of, features) tensor of ``value``, sized at run time."""
        return self.cached(("filled", of, features, value), lambda: self.op(
            "ConstantOfShape", [self.rows_shape(of, features)], hint, value=np.array([value], np.float32)))

    def concat(self, parts: Sequence[str], axis: int, hint: str) -> str:
        return parts[0] if len(parts) == 1 else self.op("Concat", list(parts), hint, axis=axis)

    # ---- graph operations ----------------------------------------------------------
    def gather_nodes(self, nodes: str, by: str) -> str:
        """Rows of ``nodes`` at the senders or receivers of every edge (an out-of-range index throws)."""
        index = self.senders if by == "senders" else self.receivers
        return self.op("Gather", [nodes, index], f"{by}_nodes", axis=0)

    def broadcast_globals(self, glob: Part, of: str) -> str:
        """The global features repeated on every node or edge: (n_of, Fu)."""
        return self.op("Expand", [glob.tensor, self.rows_shape(of, glob.features)], f"globals_per_{of[:-1]}")

    def _segment_index(self, by: str) -> str:
        """(n_edges, 1) index tensor of the senders or receivers, as ScatterND reads it."""
        index = self.senders if by == "senders" else self.receivers
        axes = self.const(np.array([-1], np.int64), "axes")
        return self.cached(("index", by), lambda: self.op("Unsqueeze", [index, axes], f"{by}_index"))

    def _segment_counts(self, by: str) -> str:
        """(n_nodes, 1) number of edges per node through the senders or receivers."""
        return self.cached(("counts", by), lambda: self.op(
            "ScatterND", [self.filled("nodes", 1, 0.0, "zeros"), self._segment_index(by),
                          self.filled("edges", 1, 1.0, "ones")], f"edges_per_node_by_{by}", reduction="add"))

    def edges_to_nodes(self, edges: Part, by: str, kind: str) -> str:
        """(n_nodes, F) aggregate of the edge features per receiving (or sending) node; 0 where a node has no edges."""
        index, zeros = self._segment_index(by), self.filled("nodes", edges.features, 0.0, "zeros")
        if kind == "sum":
            return self.op("ScatterND", [zeros, index, edges.tensor], f"sum_by_{by}", reduction="add")
        counts = self._segment_counts(by)
        if kind == "mean":
            total = self.op("ScatterND", [zeros, index, edges.tensor], f"sum_by_{by}", reduction="add")
            one = self.const(np.array(1.0, np.float32), "one")
            return self.op("Div", [total, self.op("Max", [counts, one], "divisor")], f"mean_by_{by}")
        lowest = self.filled("nodes", edges.features, float(np.finfo(np.float32).min), "lowest")
        top = self.op("ScatterND", [lowest, index, edges.tensor], f"max_by_{by}", reduction="max")
        return self._zero_unless(self.op("Greater", [counts, self.const(np.array(0.0, np.float32), "zero")], "has_edges"),
                                 top, "max_or_zero")

    def rows_to_global(self, part: Part, of: str, kind: str) -> str:
        """(F,) aggregate of all node or edge rows; 0 for a graph without any."""
        axes = self.const(np.array([0], np.int64), "axes0")
        if kind == "sum":
            return self.op("ReduceSum", [part.tensor, axes], f"{of}_sum", keepdims=0)
        if kind == "mean":  # our ReduceMean gives 0 for an empty axis, as onnxruntime does
            return self.op("ReduceMean", [part.tensor, axes], f"{of}_mean", keepdims=0)
        top = self.op("ReduceMax", [part.tensor, axes], f"{of}_max", keepdims=0)
        nonempty = self.op("Greater", [self.rows(of), self.const(np.array(0, np.int64), "zero_count")], f"has_{of}")
        return self._zero_unless(nonempty, top, f"{of}_max_or_zero")

    def _zero_unless(self, condition: str, value: str, hint: str) -> str:
        return self.op("Where", [condition, value, self.const(np.array(0.0, np.float32), "zero")], hint)

    # ---- the result ------------------------------------------------------------
    def finish(self, graph: Graph, name: str) -> ir.Model:
        """The IR model whose outputs are the final node, edge and (when present) global features."""
        outputs = []
        for label, part in (("nodes_out", graph.nodes), ("edges_out", graph.edges), ("globals_out", graph.globals)):
            if part is not None:
                self.nodes.append(make_node("Identity", [part.tensor], [label], name=label, version=OPSET, model=self.name))
                outputs.append(label)
        return ir.Model(name=ir.model_name_from(name), inputs=list(self.inputs), outputs=outputs, nodes=self.nodes,
                        initializers=self.initializers, tensors=dict(self.tensors), opsets=dict(self.opsets),
                        source="sofie_rdf.gnn graph network", doc="")
