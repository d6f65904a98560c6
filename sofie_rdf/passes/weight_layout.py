"""Storing constant weights in the layout the kernels read fastest.

Per-event inference multiplies a single row by each weight matrix; the small
product kernel streams B row by row, which needs B untransposed.  PyTorch and
Keras exports store Linear weights transposed (``transB=1``), so constant B
operands of Gemm are transposed once here, at generation time.
"""

from __future__ import annotations

import numpy as np

from ..ir import Model, TensorType


def pretranspose_weights(model: Model) -> Model:
    for node in model.nodes:
        if node.op_type not in ("Gemm", "FusedGemm") or not node.attrs.get("transB"):
            continue
        b = node.input(1)
        if b not in model.initializers or model.initializers[b].ndim != 2:
            continue
        name = _unique(model, f"{b}_T")
        value = np.ascontiguousarray(model.initializers[b].T)
        model.initializers[name] = value
        model.tensors[name] = TensorType(value.dtype, value.shape, value)
        node.inputs = [node.inputs[0], name, *node.inputs[2:]]
        node.attrs = {**node.attrs, "transB": 0}
    used = {i for n in model.nodes for i in n.inputs} | set(model.outputs)
    model.initializers = {k: v for k, v in model.initializers.items() if k in used}
    return model


def _unique(model: Model, name: str) -> str:
    candidate, k = name, 2
    while candidate in model.tensors:
        candidate, k = f"{name}_{k}", k + 1
    return candidate
