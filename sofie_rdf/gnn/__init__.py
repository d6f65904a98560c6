"""Graph networks in DeepMind's Graph Nets style, compiled like any other model.

    import sofie_rdf as sr
    edge_mlp = sr.gnn.MLP([w1, w2], [b1, b2])      # weights (in, out): x @ W + b, ReLU between layers
    gn = sr.gnn.GraphNetwork(edge=edge_mlp, node=node_mlp, edge_to_node="mean")  # or torch/Keras/ONNX models
    model = gn.to_model(node_features=4, edge_features=3)          # an sr.Model: n_nodes, n_edges symbolic
    nodes_out, edges_out = sr.compile(model).infer(nodes, edges, senders, receivers)

Blocks (:class:`GraphNetwork`, :class:`GraphIndependent`, :class:`Sequential`,
:class:`EncodeProcessDecode`) become standard ONNX operators (Gather by
senders and receivers, ScatterND and Reduce* aggregations) in one IR graph,
so code generation, the allocation-free Session, ``.root`` storage and
RDataFrame work as for any model; :func:`define` feeds a graph network from
per-event RVec columns.
"""

from ._blocks import Block, EncodeProcessDecode, GraphIndependent, GraphNetwork, Sequential
from ._builder import AGGREGATIONS
from ._functions import ACTIVATIONS, MLP
from ._rdf import define

__all__ = ["ACTIVATIONS", "AGGREGATIONS", "MLP", "Block", "EncodeProcessDecode", "GraphIndependent", "GraphNetwork",
           "Sequential", "define"]
