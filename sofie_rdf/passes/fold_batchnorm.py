"""Folding inference BatchNormalization into the Conv or Gemm that feeds it.

In inference BatchNormalization is a per-channel affine map,
``y = x * f + (bias - mean * f)`` with ``f = scale / sqrt(var + epsilon)``.
When ``x`` comes straight from a Conv or Gemm with constant weights and
nothing else reads it, the map is merged into those weights at generation
time (``W' = W * f`` per output channel, ``B' = (B - mean) * f + bias``) and
the BatchNormalization node disappears: one pass over the data less, and no
intermediate tensor.

The folded weights get fresh names, since the original ones may be shared
with other nodes; weights nothing reads any more are dropped.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Model, Node, TensorType


def fold_batchnorm(model: Model) -> Model:
    readers = _readers(model)
    producer = model.producers()
    removed: set[int] = set()
    for node in model.nodes:
        if node.op_type != "BatchNormalization" or not _foldable_bn(model, node):
            continue
        source = producer.get(node.inputs[0])
        if source is None or len(readers.get(node.inputs[0], [])) != 1 or node.inputs[0] in model.outputs:
            continue
        affine = _affine(model, node)
        if affine is None:
            continue
        folded = {"Conv": _fold_conv, "Gemm": _fold_gemm}.get(source.op_type)
        if folded is None or not folded(model, source, *affine):
            continue
        del model.tensors[source.outputs[0]]
        source.outputs = [node.outputs[0], *source.outputs[1:]]
        removed.add(id(node))
    if removed:
        model.nodes = [n for n in model.nodes if id(n) not in removed]
        used = {i for n in model.nodes for i in n.inputs} | set(model.outputs)
        model.initializers = {k: v for k, v in model.initializers.items() if k in used}
    return model


def _readers(model: Model) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for n in model.nodes:
        for i in set(n.inputs):
            if i:
                out.setdefault(i, []).append(n)
    return out


def _constant(model: Model, name: Optional[str]) -> Optional[np.ndarray]:
    t = model.tensors.get(name) if name else None
    return t.value if t is not None and t.is_constant else None


def _foldable_bn(model: Model, node: Node) -> bool:
    """Inference form with only Y and per-channel (spatial) parameters."""
    return (not node.attrs.get("training_mode", 0) and not any(node.outputs[1:])
            and node.attrs.get("spatial", 1) == 1 and len(node.inputs) >= 5)


def _affine(model: Model, node: Node) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(f, shift) in float64 with y = x * f + shift per channel, or None when a parameter is not constant."""
    params = [_constant(model, node.input(i)) for i in range(1, 5)]
    if any(p is None for p in params):
        return None
    scale, bias, mean, var = (np.asarray(p, np.float64).reshape(-1) for p in params)
    factor = scale / np.sqrt(var + node.attrs["epsilon"])
    return factor, bias - mean * factor


def _fold_conv(model: Model, conv: Node, factor: np.ndarray, shift: np.ndarray) -> bool:
    w = _constant(model, conv.input(1))
    if w is None or w.ndim < 2 or w.shape[0] != factor.size:
        return False
    b = _constant(model, conv.input(2))
    if conv.input(2) and b is None:
        return False
    bias = np.zeros(factor.size) if b is None else np.asarray(b, np.float64).reshape(-1)
    new_w = w.astype(np.float64) * factor.reshape((-1,) + (1,) * (w.ndim - 1))
    new_b = bias * factor + shift
    conv.inputs = [conv.inputs[0], _add(model, conv.inputs[1], new_w, w.dtype),
                   _add(model, conv.input(2) or f"{conv.inputs[1]}_bias", new_b, w.dtype)]
    return True


def _fold_gemm(model: Model, gemm: Node, factor: np.ndarray, shift: np.ndarray) -> bool:
    """Y = alpha * A' B' + beta * C: columns of B' scale by f, C becomes beta * C * f + shift (beta = 1)."""
    b = _constant(model, gemm.input(1))
    c = _constant(model, gemm.input(2))
    if b is None or b.ndim != 2 or (gemm.input(2) and c is None):
        return False
    trans_b = bool(gemm.attrs.get("transB", 0))
    if (b.shape[0] if trans_b else b.shape[1]) != factor.size:
        return False
    new_b = b.astype(np.float64) * (factor[:, None] if trans_b else factor[None, :])
    new_c = shift if c is None else gemm.attrs["beta"] * np.asarray(c, np.float64) * factor + shift
    if new_c.ndim > 2:
        return False
    gemm.inputs = [gemm.inputs[0], _add(model, gemm.inputs[1], new_b, b.dtype),
                   _add(model, gemm.input(2) or f"{gemm.inputs[1]}_bias", new_c, b.dtype)]
    gemm.attrs = {**gemm.attrs, "beta": 1.0}
    return True


def _add(model: Model, base: str, value: np.ndarray, dtype: np.dtype) -> str:
    """Register a folded weight under a fresh name derived from ``base``."""
    name, k = f"{base}_bnfold", 2
    while name in model.tensors or name in model.initializers:
        name, k = f"{base}_bnfold{k}", k + 1
    value = np.ascontiguousarray(value.astype(dtype))
    model.initializers[name] = value
    model.tensors[name] = TensorType(value.dtype, value.shape, value)
    return name
