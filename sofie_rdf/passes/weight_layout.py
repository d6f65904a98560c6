"""Storing constant weights in the layout the kernels read fastest.

Per-event inference multiplies a single row by each weight matrix; the small
product kernel streams its right operand row by row, which needs it
untransposed, while exporters store Linear and recurrent weights transposed.
Each operator says how it wants its constant inputs (:meth:`Op.pack_constants`);
this pass stores the re-laid-out copies once, at generation time.
"""

from __future__ import annotations

from ..ir import Model, TensorType
from .shape_inference import op_for


def pack_weights(model: Model, target: str) -> Model:
    """Constant inputs re-laid-out as each operator asks for the compiler ``target`` (ops.base.TARGETS)."""
    for node in model.nodes:
        constants = {i: model.initializers[n] for i, n in enumerate(node.inputs) if n in model.initializers}
        types = [model.tensors.get(n) if n else None for n in node.inputs]
        packed = op_for(model, node).pack_constants(constants, types, target) if constants else None
        if packed is None:
            continue
        values, attrs = packed
        inputs = list(node.inputs)
        for i, value in values.items():
            name = _unique(model, f"{inputs[i]}_packed")
            model.initializers[name] = value
            model.tensors[name] = TensorType(value.dtype, value.shape, value)
            inputs[i] = name
        node.inputs = inputs
        node.attrs = {**node.attrs, **attrs}
    used = {i for n in model.nodes for i in n.inputs} | set(model.outputs)
    model.initializers = {k: v for k, v in model.initializers.items() if k in used}
    return model


def _unique(model: Model, name: str) -> str:
    candidate, k = name, 2
    while candidate in model.tensors:
        candidate, k = f"{name}_{k}", k + 1
    return candidate
