"""Graph-network blocks in DeepMind's Graph Nets style, and their composition.

Each block maps a graph (node, edge and global features over fixed senders
and receivers) to a graph with updated features; :meth:`Block.to_model` turns
a block into an ordinary :class:`sofie_rdf.Model` with two symbolic sizes,
``n_nodes`` and ``n_edges``.  The inputs each update function sees, and their
order, are those of ``graph_nets.blocks``:

* edge update: ``[edges, receiver nodes, sender nodes, globals]``
* node update: ``[aggregated received edges, aggregated sent edges, nodes, globals]``
* global update: ``[aggregated edges, aggregated nodes, globals]``

Aggregations are ``"sum"``, ``"mean"`` or ``"max"``; a node without edges (or
a graph without nodes or edges) aggregates to 0 for each of them, as
graph_nets' ``unsorted_segment_max_or_zero`` and torch_scatter do.
"""

from __future__ import annotations

from typing import Any, Optional

from ..errors import SofieError
from ..model import Model
from ._builder import Builder, Graph, Part, check_aggregation
from ._functions import MLP, apply, apply_split_mlp, apply_to_globals

_EDGE_OPTS = {"use_edges": True, "use_receiver_nodes": True, "use_sender_nodes": True, "use_globals": True}
_NODE_OPTS = {"use_received_edges": True, "use_sent_edges": False, "use_nodes": True, "use_globals": True}
_GLOBAL_OPTS = {"use_edges": True, "use_nodes": True, "use_globals": True}


class Block:
    """A map from graph to graph; compose blocks with :class:`Sequential` or :class:`EncodeProcessDecode`."""

    def build(self, b: Builder, g: Graph) -> Graph:
        """Emit this block's operators into ``b``, reading the graph ``g``; returns the updated graph."""
        raise NotImplementedError

    def to_model(self, node_features: int, edge_features: int, global_features: int = 0, name: str = "GNN") -> Model:
        """The block as a model of a graph with these input feature counts.

        Inputs: ``nodes`` float32 ``(n_nodes, node_features)``, ``edges``
        float32 ``(n_edges, edge_features)``, ``senders`` and ``receivers``
        int64 ``(n_edges,)`` (node indices; out of range ones make inference
        fail), then ``globals`` float32 ``(global_features,)`` when
        ``global_features > 0``.  Outputs: ``nodes_out`` ``(n_nodes, F)``,
        ``edges_out`` ``(n_edges, F)`` and, when the graph has globals,
        ``globals_out`` ``(F,)``.  The C++ ``infer`` takes ``n_nodes`` and
        ``n_edges`` first.
        """
        b = Builder(name, node_features, edge_features, global_features)
        return Model(b.finish(self.build(b, b.graph), name))


def _options(given: Optional[dict], defaults: dict, what: str) -> dict:
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise SofieError(f"{what}: unknown option(s) {', '.join(unknown)} (known: {', '.join(defaults)})")
    return {**defaults, **(given or {})}


def _rows_input(b: Builder, parts: list[tuple[str, int]], what: str) -> tuple[str, int]:
    """Concatenation of the per-row parts an update function reads: (tensor, features)."""
    if not parts:
        raise SofieError(f"graph network {b.name!r}, {what}: the options leave the update function no input")
    return b.concat([t for t, _ in parts], 1, f"{what.split()[0]}_input"), sum(f for _, f in parts)


class GraphNetwork(Block):
    """A full graph-network block: edge update, then node update, then global update (graph_nets' GraphNetwork).

    ``edge``, ``node``, ``glob``: update functions (:class:`MLP` or anything
    ``sr.load`` takes); None skips that update (the features pass through), so
    ``GraphNetwork(edge=..., node=...)`` is an interaction network.
    ``edge_to_node``, ``edge_to_global``, ``node_to_global``: ``"sum"``,
    ``"mean"`` or ``"max"``.  ``*_block_opt`` take graph_nets' flags: edge
    block ``use_edges``, ``use_receiver_nodes``, ``use_sender_nodes``,
    ``use_globals``; node block ``use_received_edges``, ``use_sent_edges``
    (False by default), ``use_nodes``, ``use_globals``; global block
    ``use_edges``, ``use_nodes``, ``use_globals``.  Globals a graph does not
    have are left out of every input.  An :class:`MLP` edge function has its
    first layer applied to the node features before they are gathered per
    edge (same result, less work when edges outnumber nodes).
    """

    def __init__(self, edge: Any = None, node: Any = None, glob: Any = None, edge_to_node: str = "sum",
                 edge_to_global: str = "sum", node_to_global: str = "sum", edge_block_opt: Optional[dict] = None,
                 node_block_opt: Optional[dict] = None, global_block_opt: Optional[dict] = None):
        self.edge, self.node, self.glob = edge, node, glob
        self.edge_to_node = check_aggregation(edge_to_node, "edge_to_node")
        self.edge_to_global = check_aggregation(edge_to_global, "edge_to_global")
        self.node_to_global = check_aggregation(node_to_global, "node_to_global")
        self.edge_opt = _options(edge_block_opt, _EDGE_OPTS, "edge_block_opt")
        self.node_opt = _options(node_block_opt, _NODE_OPTS, "node_block_opt")
        self.global_opt = _options(global_block_opt, _GLOBAL_OPTS, "global_block_opt")

    def build(self, b: Builder, g: Graph) -> Graph:
        if self.edge is not None:
            g = Graph(g.nodes, self._edge_update(b, g), g.globals)
        if self.node is not None:
            g = Graph(self._node_update(b, g), g.edges, g.globals)
        if self.glob is not None:
            g = Graph(g.nodes, g.edges, self._global_update(b, g))
        return g

    def _edge_update(self, b: Builder, g: Graph) -> Part:
        """The edge function on [edges, receiver nodes, sender nodes, globals] (as the options select)."""
        o, parts = self.edge_opt, []  # (how each part becomes per-edge rows, tensor, features)
        if o["use_edges"]:
            parts.append(("rows", g.edges.tensor, g.edges.features))
        if o["use_receiver_nodes"]:
            parts.append(("receivers", g.nodes.tensor, g.nodes.features))
        if o["use_sender_nodes"]:
            parts.append(("senders", g.nodes.tensor, g.nodes.features))
        if o["use_globals"] and g.globals is not None:
            parts.append(("globals", g.globals.tensor, g.globals.features))
        if isinstance(self.edge, MLP) and any(how != "globals" for how, _, _ in parts):
            return apply_split_mlp(b, self.edge, parts, "edge block")
        rows = [(t if how == "rows" else b.gather_nodes(t, how) if how != "globals"
                 else b.broadcast_globals(Part(t, f), "edges"), f) for how, t, f in parts]
        x, features = _rows_input(b, rows, "edge block")
        return apply(b, self.edge, x, features, "edge block")

    def _node_update(self, b: Builder, g: Graph) -> Part:
        o, parts = self.node_opt, []
        for flag, by in (("use_received_edges", "receivers"), ("use_sent_edges", "senders")):
            if o[flag]:
                parts.append((b.edges_to_nodes(g.edges, by, self.edge_to_node), g.edges.features))
        if o["use_nodes"]:
            parts.append((g.nodes.tensor, g.nodes.features))
        if o["use_globals"] and g.globals is not None:
            parts.append((b.broadcast_globals(g.globals, "nodes"), g.globals.features))
        x, features = _rows_input(b, parts, "node block")
        return apply(b, self.node, x, features, "node block")

    def _global_update(self, b: Builder, g: Graph) -> Part:
        o, parts = self.global_opt, []
        if o["use_edges"]:
            parts.append((b.rows_to_global(g.edges, "edges", self.edge_to_global), g.edges.features))
        if o["use_nodes"]:
            parts.append((b.rows_to_global(g.nodes, "nodes", self.node_to_global), g.nodes.features))
        if o["use_globals"] and g.globals is not None:
            parts.append((g.globals.tensor, g.globals.features))
        if not parts:
            raise SofieError(f"graph network {b.name!r}, global block: the options leave the update function no input")
        x = b.concat([t for t, _ in parts], 0, "global_input")
        return apply_to_globals(b, self.glob, x, sum(f for _, f in parts), "global block")


class GraphIndependent(Block):
    """Each of edges, nodes and globals updated on its own (graph_nets' GraphIndependent); None keeps a part as is.

    The usual encoder and decoder of :class:`EncodeProcessDecode`.
    """

    def __init__(self, edge: Any = None, node: Any = None, glob: Any = None):
        self.edge, self.node, self.glob = edge, node, glob

    def build(self, b: Builder, g: Graph) -> Graph:
        nodes = apply(b, self.node, g.nodes.tensor, g.nodes.features, "node model") if self.node is not None else g.nodes
        edges = apply(b, self.edge, g.edges.tensor, g.edges.features, "edge model") if self.edge is not None else g.edges
        glob = g.globals
        if self.glob is not None:
            if glob is None:
                raise SofieError(f"graph network {b.name!r}: a global model is given but the graph has no globals")
            glob = apply_to_globals(b, self.glob, glob.tensor, glob.features, "global model")
        return Graph(nodes, edges, glob)


class Sequential(Block):
    """Blocks applied one after the other."""

    def __init__(self, *blocks: Block):
        if not blocks or not all(isinstance(k, Block) for k in blocks):
            raise SofieError("Sequential takes one or more graph-network blocks")
        self.blocks = blocks

    def build(self, b: Builder, g: Graph) -> Graph:
        for block in self.blocks:
            g = block.build(b, g)
        return g


class EncodeProcessDecode(Block):
    """DeepMind's encode-process-decode: encoder, ``steps`` message passings of a shared core, decoder.

    As in graph_nets' example, the core reads at each step the encoded graph
    concatenated (per part, features last) with the latent graph of the
    previous step (the encoded one at the first step); its weights are stored
    once.  ``encoder`` and ``decoder`` may be None (identity); the outputs are
    those of the last step.
    """

    def __init__(self, encoder: Optional[Block], core: Block, decoder: Optional[Block] = None, steps: int = 1):
        if not isinstance(core, Block) or any(x is not None and not isinstance(x, Block) for x in (encoder, decoder)):
            raise SofieError("EncodeProcessDecode takes graph-network blocks as encoder, core and decoder")
        if not isinstance(steps, int) or steps < 1:
            raise SofieError(f"EncodeProcessDecode needs steps >= 1, got {steps!r}")
        self.encoder, self.core, self.decoder, self.steps = encoder, core, decoder, steps

    def build(self, b: Builder, g: Graph) -> Graph:
        encoded = self.encoder.build(b, g) if self.encoder is not None else g
        latent = encoded
        for _ in range(self.steps):
            latent = self.core.build(b, _concat_graphs(b, encoded, latent))
        return self.decoder.build(b, latent) if self.decoder is not None else latent


def _concat_graphs(b: Builder, x: Graph, y: Graph) -> Graph:
    """Features of two graphs over the same nodes and edges side by side (graph_nets' ``utils_tf.concat(axis=1)``)."""
    def cat(p: Optional[Part], q: Optional[Part], axis: int, hint: str) -> Optional[Part]:
        if p is None or q is None:
            return p or q
        return Part(b.concat([p.tensor, q.tensor], axis, hint), p.features + q.features)

    return Graph(cat(x.nodes, y.nodes, 1, "core_nodes"), cat(x.edges, y.edges, 1, "core_edges"),
                 cat(x.globals, y.globals, 0, "core_globals"))
