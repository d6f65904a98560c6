"""Shape and type inference, evaluating what can be known before run time.

Walks the nodes in order and asks each operator for its output types.  When
every input of a node has a known value the operator's numpy reference
computes the output values too, so constant subgraphs and shape arithmetic
(``Shape -> Gather -> Concat -> Reshape``) resolve here; values may be
symbolic when they depend on an open dimension.
"""

from __future__ import annotations

from ..errors import ModelFormatError, ShapeError, SofieError
from ..ir import Model, TensorType
from ..ir.dims import Unifier, substitute, symbol, unifying
from ..ir.limits import ENV_VAR, max_tensor_bytes, tensor_bytes, too_large
from ..ops import op_for
from ..ops.base import fold_values


def infer_shapes(model: Model) -> Model:
    """Fill ``model.tensors`` for every tensor, with values where computable.

    Dims the file left unnamed are unified as onnxruntime does while running: the first operator that
    needs one equal to another dim binds it, the inputs' types are rewritten and inference starts again
    (at most once per unnamed dim). Inputs that then share a dim are checked against each other on
    every call, so a mismatch is a ShapeError naming the input, not a refusal at load.
    """
    model.unnamed_dims = set(model.unnamed_dims)
    while True:
        with unifying(symbol(n) for n in model.unnamed_dims) as unifier:
            if _infer_nodes(model, unifier):
                return model
        _rebind_inputs(model, unifier.bindings)


def _rebind_inputs(model: Model, bindings: dict) -> None:
    """Inputs' types with unified dims substituted; everything inferred from the old ones dropped."""
    model.unnamed_dims -= {s.name for s in bindings}
    model.tensors = {n: TensorType(model.tensors[n].dtype, substitute(model.tensors[n].shape, bindings))
                     for n in model.inputs}
    model.constraints = []
    model.runtime_dims = {}


def _infer_nodes(model: Model, unifier: Unifier) -> bool:
    """Infer every node in order; False as soon as a node unified a dim (the caller starts again)."""
    tensors = model.tensors
    for name, value in model.initializers.items():
        if name not in model.inputs:  # an initializer may only be an input's default
            tensors[name] = TensorType(value.dtype, value.shape, value)
    for node in model.nodes:
        op = op_for(node, model.name)
        inputs = [tensors[i] if i else None for i in node.inputs]
        try:
            outputs = op.infer(inputs)
        except SofieError:
            raise
        except Exception as exc:  # an operator bug must still name the node
            raise ShapeError(f"model {model.name!r}: {node}: shape inference failed: {exc}") from exc
        named = [k for k, name in enumerate(node.outputs) if name]
        if named and named[-1] >= len(outputs):
            raise ModelFormatError(f"model {model.name!r}: {node} has {len(node.outputs)} outputs; "
                                   f"this operator produces at most {len(outputs)} here")
        _check_sizes(model, node, outputs)
        fold_values(op, inputs, outputs)
        model.constraints.extend(c for c in op.constraints if c not in model.constraints)
        model.runtime_dims.update((d.name, node.outputs[0]) for d in op.defined_dims)
        if unifier.bindings:
            return False
        for name, t in zip(node.outputs, outputs):
            if name:
                tensors[name] = t
    return True


def _check_sizes(model: Model, node, outputs: list[TensorType]) -> None:
    """Refuse a tensor whose static size exceeds the limit, before anything computes or allocates it."""
    for name, t in zip(node.outputs, outputs):
        if t.is_static and too_large(t.shape, t.dtype):
            raise ShapeError(f"model {model.name!r}: {node}: output {name!r} of shape {tuple(t.shape)} would take "
                             f"{tensor_bytes(t.shape, t.dtype):.3g} bytes, over the limit of {max_tensor_bytes():,} "
                             f"(environment variable {ENV_VAR})")
