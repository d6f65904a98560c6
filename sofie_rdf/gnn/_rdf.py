"""Graph networks in RDataFrame: one inference per event from RVec columns."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from .. import rdf
from ..errors import SofieError
from ..session import Session

_PARTS = ("nodes", "edges", "globals")


def _features(sess: Session) -> dict[str, int]:
    """Feature count of each input and output part of a graph-network Session (by the names ``to_model`` gives)."""
    shapes = {t.name: t.shape for t in [*sess.inputs, *sess.outputs]}
    missing = [n for n in ("nodes", "edges", "senders", "receivers", "nodes_out", "edges_out") if n not in shapes]
    if missing or [t.name for t in sess.inputs][:4] != ["nodes", "edges", "senders", "receivers"]:
        raise SofieError(f"model {sess.name!r} is not a graph network made by sofie_rdf.gnn (inputs nodes, edges, "
                         f"senders, receivers[, globals]; outputs nodes_out, edges_out[, globals_out])")
    return {name: shape[-1] for name, shape in shapes.items() if name in (*_PARTS, *(p + "_out" for p in _PARTS))}


def define(df: Any, prefix: str, session_or_model: Any, nodes: str, edges: str, senders: str, receivers: str,
           globals: Optional[Union[str, Sequence[str]]] = None, backend: str = "auto") -> Any:  # noqa: A002
    """Evaluate a graph network on every event; defines ``<prefix>_nodes``, ``<prefix>_edges`` (and ``<prefix>_globals``).

    ``nodes`` and ``edges`` are ``RVec`` columns holding each event's node and
    edge features flat, row after row (``n_nodes * F`` and ``n_edges * F``
    values); ``senders`` and ``receivers`` ``RVec`` columns of node indices (any
    integer type); ``globals`` a column or a list of scalar columns, for
    networks with global inputs.  The outputs are ``RVec<float>`` columns in
    the same flat layout.  Inference runs once per event, in a column
    ``<prefix>_all`` holding every output back to back, which the defined
    columns slice.
    """
    for what, column in (("nodes", nodes), ("edges", edges), ("senders", senders), ("receivers", receivers)):
        if not isinstance(column, str):  # several RVec columns would be concatenated one after the other, not by row
            raise SofieError(f"{what}= takes one RVec column holding the values row after row, got {column!r}")
    sess = rdf.session_of(session_or_model, backend)
    features = _features(sess)
    has_globals = "globals" in features
    if has_globals != (globals is not None):
        raise SofieError(f"model {sess.name!r} {'takes' if has_globals else 'has no'} global features: "
                         f"{'pass globals=' if has_globals else 'leave globals out'}")
    columns = [nodes, edges, senders, receivers] + ([globals] if has_globals else [])
    everything = f"{prefix}_all"
    df = rdf.define(df, everything, sess, columns, output=None)
    n_node_values = f"({nodes}.size() / {features['nodes']} * {features['nodes_out']})"
    n_edge_values = f"({senders}.size() * {features['edges_out']})"
    df = df.Define(f"{prefix}_nodes", f"ROOT::RVec<float>({everything}.begin(), {everything}.begin() + {n_node_values})")
    df = df.Define(f"{prefix}_edges", f"ROOT::RVec<float>({everything}.begin() + {n_node_values}, "
                                      f"{everything}.begin() + {n_node_values} + {n_edge_values})")
    if "globals_out" in features:
        df = df.Define(f"{prefix}_globals",
                       f"ROOT::RVec<float>({everything}.begin() + {n_node_values} + {n_edge_values}, {everything}.end())")
    return df
