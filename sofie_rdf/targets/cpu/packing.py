"""Storing constant weights in the layout the CPU kernels read fastest.

Per-event inference multiplies a single row by each weight matrix; the small
product kernel streams its right operand row by row, which needs it
untransposed, while exporters store Linear and recurrent weights transposed.
Each emitter says how it wants its constant inputs (:meth:`Emitter.pack`);
this step stores the re-laid-out copies once, at generation time.  The IR keeps
the weights' meaning: a packed tensor keeps the type of the input it stands for,
and only its emitter knows the stored order.  An emitter may also add constants its kernel reads that the
model does not have (the column sums of an integer product's weights): they become trailing inputs of the
node, numbered by the emitter from the operator's largest input count on (the optional inputs a node omits
between are left empty).
"""

from __future__ import annotations

from ...ir import Model, TensorType
from .emitter import Emitter


def pack_weights(model: Model, emitters: list[Emitter]) -> None:
    """Constant inputs re-laid-out as each node's emitter asks (``emitters[i]`` is node i's)."""
    for node, emitter in zip(model.nodes, emitters):
        constants = {i: model.initializers[n] for i, n in enumerate(node.inputs) if n in model.initializers}
        if not constants:
            continue
        types = [model.tensors.get(n) if n else None for n in node.inputs]
        values = emitter.pack(constants, types)
        if not values:
            continue
        inputs = list(node.inputs)
        for i, value in sorted(values.items()):
            if i < len(node.inputs):
                name = _unique(model, f"{inputs[i]}_packed")
                model.tensors[name] = TensorType(types[i].dtype, types[i].shape)
                inputs[i] = name
            else:  # a constant of the emitter's own, as it computed it
                name = _unique(model, f"{node.name}_constant{i}")
                model.tensors[name] = TensorType(value.dtype, value.shape)
                inputs += [""] * (i - len(inputs)) + [name]
            model.initializers[name] = value
        node.inputs = inputs
    used = {i for n in model.nodes for i in n.inputs} | set(model.outputs)
    model.initializers = {k: v for k, v in model.initializers.items() if k in used}


def _unique(model: Model, name: str) -> str:
    candidate, k = name, 2
    while candidate in model.tensors:
        candidate, k = f"{name}_{k}", k + 1
    return candidate
