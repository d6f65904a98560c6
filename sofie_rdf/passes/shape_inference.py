"""Shape and type inference, evaluating what can be known before run time.

Walks the nodes in order and asks each operator for its output types.  When
every input of a node has a known value the operator's numpy reference
computes the output values too, so constant subgraphs and shape arithmetic
(``Shape -> Gather -> Concat -> Reshape``) resolve here; values may be
symbolic when they depend on an open dimension.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import sympy

from ..errors import ModelFormatError, NeedsDimsError, ShapeError, SofieError
from ..ir import Model, TensorType, unique_name
from ..ir.dims import Unifier, free_symbols, substitute, symbol, unifying
from ..ir.limits import ENV_VAR, max_tensor_bytes, tensor_bytes, too_large
from ..ops import make_node, op_for
from ..ops.base import fold_values
from ..ops.registry import INTERNAL_DOMAIN


def infer_shapes(model: Model) -> Model:
    """Fill ``model.tensors`` for every tensor, with values where computable.

    Dims the file left unnamed are unified as onnxruntime does while running: the first operator that
    needs one equal to another dim binds it, the inputs' types are rewritten and inference starts again
    (at most once per unnamed dim). Inputs that then share a dim are checked against each other on
    every call, so a mismatch is a ShapeError naming the input, not a refusal at load.
    """
    model.unnamed_dims = set(model.unnamed_dims)
    while True:
        named = [s for s in free_symbols(model.tensors[n].shape for n in model.inputs)
                 if s.name not in model.equated_dims]
        with unifying((symbol(n) for n in model.unnamed_dims), named) as unifier:
            if _infer_nodes(model, unifier):
                return model
        _rebind_inputs(model, unifier)


def _rebind_inputs(model: Model, unifier: Unifier) -> None:
    """Inputs' types with unified dims substituted; everything inferred from the old ones dropped.

    A dim the file left unnamed is replaced in the input's type.  A named dim keeps its place in the
    interface: the input is read through an ``EquatedDims`` view spelling it as what it was bound to, whose
    code checks on every call that the two agree (``Model.equated_dims`` remembers why)."""
    named = {s: d for s, d in unifier.bindings.items() if s in unifier.reasons}
    unnamed = {s: d for s, d in unifier.bindings.items() if s not in named}
    model.unnamed_dims -= {s.name for s in unnamed}
    model.equated_dims.update((s.name, unifier.reasons[s]) for s in named)
    for name in model.inputs:
        shape = model.tensors[name].shape
        if named and set(free_symbols([shape])) & named.keys():
            _read_through_equated(model, name, substitute(shape, {**unnamed, **named}), unifier.reasons)
    model.tensors = {n: TensorType(model.tensors[n].dtype, substitute(model.tensors[n].shape, unnamed))
                     for n in model.inputs}
    model.constraints = []
    model.runtime_dims = {}


def _read_through_equated(model: Model, name: str, shape: tuple, reasons: dict) -> None:
    """Put an ``EquatedDims`` view of input ``name`` with ``shape`` in front of every node that reads it."""
    view = unique_name(f"{name}/equated", set(model.tensors) | {o for n in model.nodes for o in n.outputs})
    why = "; ".join(sorted({reasons[s] for s in free_symbols([model.tensors[name].shape]) if s in reasons}))
    dims = json.dumps([sympy.srepr(sympy.sympify(d)) for d in shape])
    node = make_node("EquatedDims", [name], [view], {"dims": dims, "reason": why}, f"{name}/equated",
                     INTERNAL_DOMAIN, model=model.name, internal=True)
    model.nodes = [node] + [dataclasses.replace(n, inputs=[view if i == name else i for i in n.inputs])
                            for n in model.nodes]


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
        except NeedsDimsError as exc:
            if exc.dims is None and exc.input is not None and exc.input < len(node.inputs):
                exc.dims = deciding_dims(model, node.inputs[exc.input])
            raise
        except SofieError:
            raise
        except Exception as exc:  # an operator bug must still name the node
            message = f"model {model.name!r}: {node}: shape inference failed: {exc}"
            dims = _symbolic_value_dims(model, inputs)
            if dims:  # shape arithmetic the operator cannot take symbolically (pads of L % 8): the sizes settle it
                raise NeedsDimsError(f"{message} (its inputs' values depend on the dims {', '.join(sorted(dims))})",
                                     dims) from exc
            raise ShapeError(message) from exc
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


def _symbolic_value_dims(model: Model, inputs: list) -> frozenset[str]:
    """The input dims in the symbolic values of a node's inputs (empty: none, or one a node computes)."""
    dims = {s.name for t in inputs if t is not None and t.value is not None and t.value.dtype == object
            for v in t.value.flat if isinstance(v, sympy.Basic) for s in v.free_symbols}
    known = {s.name for s in free_symbols(model.tensors[n].shape for n in model.inputs)}
    return frozenset(dims) if dims <= known else frozenset()


def deciding_dims(model: Model, name: str) -> Optional[frozenset[str]]:
    """The input dims whose sizes decide tensor ``name`` (an ``If``'s condition, a shape read from a tensor),
    found in the values of the shape arithmetic it is computed from; None when data decide it too (the walk
    reaches an input's values) or a dim a node computes while running."""
    producers = model.producers()
    inputs = {s.name for s in free_symbols(model.tensors[n].shape for n in model.inputs)}
    dims: set[str] = set()
    stack, seen = [name], set()
    while stack:
        tensor = stack.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        t = model.tensors.get(tensor)
        if t is not None and t.value is not None:
            dims |= {s.name for v in t.value.flat if isinstance(v, sympy.Basic) for s in v.free_symbols}
            continue
        node = producers.get(tensor)
        if node is None:  # a model input's values
            return None
        stack += [i for i in node.inputs if i]
    return frozenset(dims) if dims <= inputs else None
