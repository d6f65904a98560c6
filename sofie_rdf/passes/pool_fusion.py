"""A sum or mean over rows of a product's output into the product: ``FusedGemm`` with ``pool_rows``.

Deep Sets and energy flow networks sum a per-particle network over the particles, EdgeConv layers
(ParticleNet) average theirs over each particle's neighbours: ``Gemm -> Reshape -> ReduceSum`` (or
``ReduceMean``) over the axes between the batch and the features.  Fused, the product adds each register
tile's rows into the pooled row they belong to, after the activation, and the M x N output of the
per-particle layer is never stored nor read back (Deep Sets at batch 64: 4096 x 64 floats, 1 MB, written
once and read once).

A pair qualifies when the product is a ``Gemm`` or ``FusedGemm`` of static float32 shapes whose output is
read by one Reshape alone (the view ``passes/fusion.py`` makes of a per-particle layer) or directly by the
reduction, neither output a graph output; the reduction is a ``ReduceSum`` or ``ReduceMean`` of constant
axes that are consecutive and end just before the last axis (the features), which the view leaves whole.
The fused node's (M / P, N) output is reshaped to the reduction's output shape (``keepdims`` either way).
Targets whose code has no such epilogue leave the pair alone (``Target.pooled_gemm``).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..ir import Model, Node, TensorType
from ..ops import lookup, make_node
from ..ops.fused import FUSED_DOMAIN
from .fusion import RESHAPE_VERSION, _consumers, _fresh, _shape_constant

POOLS = {"ReduceSum": "sum", "ReduceMean": "mean"}


def fuse_row_pooling(model: Model) -> Model:
    """Fold every qualifying ``ReduceSum``/``ReduceMean`` over rows into the product before it."""
    consumers = _consumers(model)
    producer = {o: n for n in model.nodes for o in n.outputs if o}
    replaced: dict[int, list[Node]] = {}
    removed: set[int] = set()
    for node in model.nodes:
        found = _pooled_product(model, node, producer, consumers)
        if found is None:
            continue
        gemm, view, rows = found
        pooled = _fresh(model, f"{node.outputs[0]}_pooled")
        y = model.tensors[gemm.outputs[0]]
        model.tensors[pooled] = TensorType(y.dtype, (y.shape[0] // rows, y.shape[1]))
        attrs = {**gemm.attrs, "pool_rows": rows, "pool": POOLS[node.op_type]}
        fused = make_node("FusedGemm", gemm.inputs, [pooled], attrs, name=f"{gemm.name}+{node.name}",
                          domain=FUSED_DOMAIN, version=1, model=model.name, internal=True)
        shape = _shape_constant(model, f"{node.outputs[0]}_shape", list(model.tensors[node.outputs[0]].shape))
        back = make_node("Reshape", [pooled, shape], node.outputs, name=f"{node.name}/shape",
                         version=RESHAPE_VERSION, model=model.name)
        replaced[id(node)] = [fused, back]
        removed.add(id(gemm))
        for n in (gemm, view):
            if n is not None:
                removed.add(id(n))
                del model.tensors[n.outputs[0]]
    model.nodes = [m for n in model.nodes if id(n) not in removed for m in replaced.get(id(n), [n])]
    used = {name for n in model.nodes for name in n.inputs if name}
    model.initializers = {k: v for k, v in model.initializers.items() if k in used or k in model.outputs}
    return model


def _pooled_product(model: Model, node: Node, producer: dict[str, Node],
                    consumers: dict[str, list[Node]]) -> Optional[tuple[Node, Optional[Node], int]]:
    """(the product, the view between it and ``node`` or None, rows per pooled row) where ``node`` is a
    reduction that fuses into the product before it."""
    if node.op_type not in POOLS or node.domain not in ("", "ai.onnx"):
        return None
    x = model.tensors[node.inputs[0]]
    if x.dtype != np.float32 or not all(isinstance(d, int) and d > 0 for d in x.shape) or x.rank < 2:
        return None
    axes = _constant_axes(model, node)
    if axes is None or not axes or axes != list(range(axes[0], x.rank - 1)):
        return None
    view, gemm = None, producer.get(node.inputs[0])
    if gemm is not None and gemm.op_type == "Reshape" and gemm.domain in ("", "ai.onnx"):
        view, gemm = gemm, producer.get(gemm.inputs[0])
    if gemm is None or not _pools(model, gemm) or (view is None and x.rank != 2):
        return None
    for n in (gemm, view):
        if n is not None and (n.outputs[0] in model.outputs or len(consumers.get(n.outputs[0], [])) != 1):
            return None
    y = model.tensors[gemm.outputs[0]].shape
    if y[-1] != x.shape[-1] or y[0] != math.prod(x.shape[:-1]):
        return None  # the view must keep the features and put the product's rows in order
    return gemm, view, math.prod(x.shape[axes[0]:x.rank - 1])


def _pools(model: Model, gemm: Node) -> bool:
    """Whether ``gemm`` is a product that can take a pooling epilogue: not pooled yet, static float32 rows."""
    if gemm.op_type not in ("Gemm", "FusedGemm") or gemm.attrs.get("pool_rows", 0):
        return False
    y = model.tensors[gemm.outputs[0]]
    return y.dtype == np.float32 and all(isinstance(d, int) for d in y.shape)


def _constant_axes(model: Model, node: Node) -> Optional[list[int]]:
    """The reduction's sorted axes when known at generation time (all of them when none are given)."""
    op = lookup(node.op_type, node.domain, node.version)(node, model.name)
    inputs = [model.tensors[i] if i else None for i in node.inputs]
    if op.axes_at_run_time(inputs):
        return None
    return op.reduced_axes(inputs[0].rank, op.axes_value(inputs))
