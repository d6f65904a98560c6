"""Products with a constant matrix that only selects: a gather or a sum of columns instead of a product.

An interaction network (the Higgs one CMS publishes) builds its edges as ``Gemm(features, R)`` with R a constant
(particles x edges) 0/1 matrix, one 1 per column (the receiving or sending particle of each edge), and sums
each particle's incoming edges as ``Gemm(edges, R^T)``, one 1 per row.  As products they cost 2 x rows x
particles x edges operations, a third of the network's time; as a gather (each output column a column of A) and a
sum of columns (each column of A added to one of Y) they cost a read and a write of the result.

Every ``Gemm`` without C (or with beta 0), A untransposed (a MatMul by a constant matrix is one by then:
``passes/fusion.py``), whose B is a constant float32 matrix with exactly one nonzero per column or per row becomes a
``sofie_rdf::SelectionGemm`` carrying B (its meaning, and the product an A holding infinities or NaNs still
takes) and the positions and values of those nonzeros (for a sum of columns, A's columns grouped by the column of
Y they add to, and where each group starts), for targets that compute it (``Target.selection_products``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Model, Node, TensorType, unique_name
from ..ops import make_node
from ..ops.registry import INTERNAL_DOMAIN

SELECTION_VERSION = 1
# Rows (and columns) B must have for a selection to be taken: one of fewer is most of a dense product (a layer's
# single output, Linear(100, 1), has one nonzero per row), which BLAS computes in vectors.
MIN_CHOICES = 8


def use_selection_products(model: Model) -> Model:
    """Replace every qualifying Gemm (see the module's text) by a SelectionGemm."""
    model.nodes = [_selection(model, node) or node for node in model.nodes]
    used = {i for n in model.nodes for i in n.inputs if i}
    model.initializers = {k: v for k, v in model.initializers.items() if k in used or k in model.outputs}
    return model


def _selection(model: Model, node: Node) -> Optional[Node]:
    """The SelectionGemm of a Gemm whose B selects, else None."""
    if node.op_type != "Gemm" or node.domain not in ("", "ai.onnx") or node.attrs.get("transA"):
        return None
    if len(node.inputs) > 2 and node.inputs[2] and node.attrs.get("beta", 1.0) != 0:
        return None
    a, b = model.tensors[node.inputs[0]], model.initializers.get(node.inputs[1])
    if b is None or b.ndim != 2 or b.dtype != np.float32 or a.dtype != np.float32:
        return None
    return _selection_node(model, node, b.T if node.attrs.get("transB") else b)


def _selection_node(model: Model, node: Node, b: np.ndarray) -> Optional[Node]:
    """The SelectionGemm of ``node`` by ``b`` (K x N, as the product reads it), or None where b does not select."""
    nonzero = b != 0
    if min(b.shape) < MIN_CHOICES:
        return None
    if np.all(nonzero.sum(axis=0) == 1):
        mode, index = "gather", np.argmax(nonzero, axis=0)
        parts = {"index": index, "scale": b[index, np.arange(b.shape[1])]}
    elif np.all(nonzero.sum(axis=1) == 1):
        mode, target = "scatter", np.argmax(nonzero, axis=1)
        order = np.argsort(target, kind="stable")  # A's columns grouped by the column of Y they add to
        parts = {"index": order, "scale": b[order, target[order]],
                 "offsets": np.searchsorted(target[order], np.arange(b.shape[1] + 1))}
    else:
        return None
    names = [_weight(model, f"{node.name}/matrix", np.ascontiguousarray(b))]
    names += [_weight(model, f"{node.name}/{part}", value.astype(np.float32 if part == "scale" else np.int64))
              for part, value in parts.items()]
    return make_node("SelectionGemm", [node.inputs[0], *names], node.outputs,
                     {"alpha": float(node.attrs.get("alpha", 1.0)), "mode": mode}, name=node.name,
                     domain=INTERNAL_DOMAIN, version=SELECTION_VERSION, model=model.name, internal=True)


def _weight(model: Model, name: str, value: np.ndarray) -> str:
    name = unique_name(name, set(model.tensors) | set(model.initializers))
    model.initializers[name] = value
    model.tensors[name] = TensorType(value.dtype, value.shape, value)
    return name
