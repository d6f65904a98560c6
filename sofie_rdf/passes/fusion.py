"""Fusions: ``MatMul + Add`` into Gemm, and an activation into the Conv, ConvTranspose or Gemm node that feeds it.

``MatMul(A, B) -> Add(., bias)`` with a constant matrix B and a constant
bias row becomes one ``Gemm(A, B, bias)``: the bias is then added by the
product's kernel instead of a second pass over the result (TensorFlow and
Keras exports, and PyTorch's for inputs of rank 3 and up, write Linear layers
this way), and a following activation fuses into the Gemm like any other.
An A of rank 3 and up (particles x features, tokens x features) is viewed as
one matrix of rows: ``Reshape -> Gemm -> Reshape``, the Reshapes being views
that copy nothing; an activation after the second Reshape fuses into the Gemm
too (an element-wise function commutes with a reshape).  Deep Sets' per-particle
layers (64 events x 64 particles) spent a sixth of their time in the separate
passes of bias and ReLU.

``Conv -> Relu`` becomes one ``sofie_rdf::FusedConv`` node carrying the
activation as attributes (``activation``, ``activation_version`` and the
activation's attributes prefixed ``activation_``), the way onnxruntime's
``com.microsoft`` FusedConv does.  The fused node applies the activation to
its output while it is still in cache and the intermediate tensor disappears.

A pair is fused only when the activation is an element-wise unary operator
(not a type conversion) reading the producer's output, which nothing else
reads and which is not a graph output.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..ir import Model, Node, TensorType, num_elements
from ..ops import lookup, make_node
from ..ops.elementwise import Cast, Clip, UnaryOp
from ..ops.fused import ACTIVATION_PREFIX, FUSED_DOMAIN

# Producer op type -> its fused form.
FUSABLE = {"Conv": "FusedConv", "ConvTranspose": "FusedConvTranspose", "Gemm": "FusedGemm"}
# Clip from opset 11 takes its bounds as inputs (which a fused node does not have); fused, they become
# the attributes of Clip-6.
CLIP_INPUT_BOUNDS, CLIP_ATTR_VERSION = 11, 6


# Gemm's version used for MatMul + Add (C optional, any float type), and the element types it runs through BLAS.
GEMM_VERSION = 13
RESHAPE_VERSION = 14
GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def fuse_matmul_add(model: Model) -> Model:
    """Replace every ``MatMul(A, B) -> Add(., bias)`` pair by ``Gemm(A, B, bias)`` where that keeps the meaning,
    and every other MatMul by a constant matrix by ``Gemm(A, B)``.

    A MatMul qualifies when B is a constant matrix and A's rows are known (see :func:`_constant_product`); the
    pair when the product is read by the Add alone and is not a graph output, and the bias is a constant of shape
    (N,) or (1, N) of the product's type.  The Gemm takes the MatMul's place in the node list (its inputs are all
    known there) and the Add's output name, so the rewrite holds under any topological order and whoever reads
    the sum, graph outputs included.  A product without a bias (Linear(bias=False), attention's projections)
    then takes the same kernels as one with: register-tile panels, a fused activation.
    """
    consumers = _consumers(model)
    replaced: dict[int, list[Node]] = {}
    removed: set[int] = set()
    for node in model.nodes:
        if not _constant_product(model, node):
            continue
        add = _bias_add(model, node, consumers)
        bias, out = None, node.outputs[0]
        if add is not None:
            bias, out = add.inputs[1] if add.inputs[0] == node.outputs[0] else add.inputs[0], add.outputs[0]
            removed.add(id(add))
            del model.tensors[node.outputs[0]]
        name = f"{node.name}+{add.name}" if add is not None else node.name
        inputs = [node.inputs[0], node.inputs[1]] + ([bias] if bias else [])
        if model.tensors[node.inputs[0]].rank == 2:
            replaced[id(node)] = [make_node("Gemm", inputs, [out], name=name, version=GEMM_VERSION, model=model.name)]
        else:
            replaced[id(node)] = _rows_gemm(model, node, inputs[2:], out, name)
    model.nodes = [m for n in model.nodes if id(n) not in removed for m in replaced.get(id(n), [n])]
    return model


def _rows_gemm(model: Model, node: Node, bias: list[str], out: str, name: str) -> list[Node]:
    """``Reshape(A) -> Gemm -> Reshape`` for a MatMul of an A of rank 3 and up by a constant matrix."""
    n = model.initializers[node.inputs[1]].shape[1]
    return _rows_product(model, node.inputs[0], n, out, name, lambda rows, matrix: make_node(
        "Gemm", [rows, node.inputs[1], *bias], [matrix], name=name, version=GEMM_VERSION, model=model.name))


def _rows_product(model: Model, a_name: str, n: int, out: str, name: str, product) -> list[Node]:
    """``Reshape(A) -> product -> Reshape``: A's leading dims as the rows of one matrix product (N columns) made by
    ``product(rows, matrix)`` (the names of its input and output), and back (at most one of them open: it is the
    Reshapes' -1)."""
    a = model.tensors[a_name]
    k, lead = a.shape[-1], a.shape[:-1]
    rows, matrix = _fresh(model, f"{a_name}_rows"), _fresh(model, f"{out}_rows")
    model.tensors[rows] = TensorType(a.dtype, (num_elements(lead), k))
    model.tensors[matrix] = TensorType(a.dtype, (num_elements(lead), n))
    to_rows = _shape_constant(model, f"{rows}_shape", [-1, k])
    back = _shape_constant(model, f"{out}_shape", [d if isinstance(d, int) else -1 for d in lead] + [n])
    return [make_node("Reshape", [a_name, to_rows], [rows], name=f"{name}/rows", version=RESHAPE_VERSION,
                      model=model.name),
            product(rows, matrix),
            make_node("Reshape", [matrix, back], [out], name=f"{name}/shape", version=RESHAPE_VERSION,
                      model=model.name)]


def _fresh(model: Model, base: str) -> str:
    """A tensor name derived from ``base`` that the model does not use."""
    name, k = base, 2
    while name in model.tensors or name in model.initializers:
        name, k = f"{base}{k}", k + 1
    return name


def _shape_constant(model: Model, base: str, dims: list[int]) -> str:
    """A new int64 constant holding ``dims`` (a Reshape's target shape)."""
    name = _fresh(model, base)
    value = np.array(dims, dtype=np.int64)
    model.initializers[name] = value
    model.tensors[name] = TensorType(value.dtype, value.shape, value)
    return name


def _consumers(model: Model) -> dict[str, list[Node]]:
    consumers: dict[str, list[Node]] = {}
    for node in model.nodes:
        for name in node.inputs:
            if name:
                consumers.setdefault(name, []).append(node)
    return consumers


def _constant_product(model: Model, node: Node) -> bool:
    """Whether ``node`` is a MatMul of a float A (rank 2 and up) by a constant matrix of its type, A's leading dims
    holding at most one open dim and no 0 (the Reshapes of _rows_gemm spell one open dim as -1, which an empty
    tensor leaves undefined)."""
    if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx"):
        return False
    a, weight = model.tensors[node.inputs[0]], model.initializers.get(node.inputs[1])
    if a.rank < 2 or weight is None or weight.ndim != 2 or a.dtype not in GEMM_DTYPES or weight.dtype != a.dtype:
        return False
    return sum(not isinstance(d, int) for d in a.shape[:-1]) <= 1 and isinstance(a.shape[-1], int) and 0 not in a.shape


def _bias_add(model: Model, node: Node, consumers: dict[str, list[Node]]) -> Optional[Node]:
    """The Add that adds a constant bias row to the product of ``node``, a MatMul by a constant matrix."""
    a, weight, out = model.tensors[node.inputs[0]], model.initializers[node.inputs[1]], node.outputs[0]
    readers = consumers.get(out, [])
    if out in model.outputs or len(readers) != 1:
        return None
    add = readers[0]
    if add.op_type != "Add" or add.domain not in ("", "ai.onnx") or len(add.inputs) != 2 or add.inputs[0] == add.inputs[1]:
        return None
    bias = add.inputs[1] if add.inputs[0] == out else add.inputs[0]
    value = model.initializers.get(bias)
    n = weight.shape[1]
    if value is None or value.shape not in ((n,), (1, n)) or not value.dtype == weight.dtype == a.dtype:
        return None
    return add if a.dtype in GEMM_DTYPES else None


def fuse_activations(model: Model) -> Model:
    """Replace every fusable (producer, activation) pair by one fused node; also where a Reshape stands between
    them (``Gemm -> Reshape -> Relu`` becomes ``FusedGemm -> Reshape``: the view then shows the activated
    values)."""
    consumers = _consumers(model)
    removed: set[int] = set()
    nodes = []
    for node in model.nodes:
        if id(node) in removed:
            continue
        view = _single_reshape(model, node, consumers)
        act = _fusable_activation(model, view or node, consumers, producer=node)
        spec = None if act is None else _activation_spec(model, act)
        if spec is None:
            nodes.append(node)
            continue
        removed.add(id(act))
        if view is None:
            nodes.append(_fused(model, node, act, spec, act.outputs))
            del model.tensors[node.outputs[0]]
        else:  # the view, placed after the fused node, now ends where the activation ended
            nodes.append(_fused(model, node, act, spec, node.outputs))
            del model.tensors[view.outputs[0]]
            view.outputs = list(act.outputs)
    model.nodes = nodes
    used = {name for n in nodes for name in n.inputs if name}
    model.initializers = {k: v for k, v in model.initializers.items() if k in used or k in model.outputs}
    return model


def _single_reshape(model: Model, node: Node, consumers: dict[str, list[Node]]) -> Optional[Node]:
    """The Reshape that alone reads a fusable ``node``'s output, which is not a graph output, if there is one."""
    if node.op_type not in FUSABLE or len(node.outputs) != 1 or node.outputs[0] in model.outputs:
        return None
    readers = consumers.get(node.outputs[0], [])
    if len(readers) != 1 or readers[0].op_type != "Reshape" or readers[0].inputs[0] != node.outputs[0]:
        return None
    return readers[0]


def _fusable_activation(model: Model, node: Node, consumers: dict[str, list[Node]],
                        producer: Optional[Node] = None) -> Optional[Node]:
    """The activation that alone reads ``node``'s output; ``producer`` (default ``node``) is the node it would
    fuse into, ``node`` being a Reshape of its output."""
    producer = producer or node
    if producer.op_type not in FUSABLE or producer.domain not in ("", "ai.onnx") or len(producer.outputs) != 1:
        return None
    out = node.outputs[0]
    readers = consumers.get(out, [])
    if out in model.outputs or len(readers) != 1:
        return None
    act = readers[0]
    cls = lookup(act.op_type, act.domain, act.version)
    if cls is None or not issubclass(cls, UnaryOp) or issubclass(cls, Cast) or act.inputs[0] != out:
        return None
    if model.tensors[act.outputs[0]].dtype != model.tensors[out].dtype:
        return None
    return act


def _activation_spec(model: Model, act: Node) -> Optional[tuple[dict[str, Any], int]]:
    """The activation's attributes and the version they belong to; None when it cannot be fused."""
    cls = lookup(act.op_type, act.domain, act.version)
    if issubclass(cls, Clip) and cls.since_version >= CLIP_INPUT_BOUNDS:
        bounds = _clip_bounds(model, act)
        return None if bounds is None else (bounds, CLIP_ATTR_VERSION)
    if any(act.inputs[1:]):
        return None
    return dict(act.attrs), act.version


def _clip_bounds(model: Model, act: Node) -> Optional[dict[str, float]]:
    """Clip's bound inputs as attributes (an omitted bound is infinite); None when one is computed at run time."""
    bounds = {"min": -math.inf, "max": math.inf}
    for key, name in zip(("min", "max"), act.inputs[1:3]):
        if not name:
            continue
        t = model.tensors[name]
        if t.value is None or not t.is_constant or t.value.size != 1:
            return None  # a bound computed at run time keeps Clip a node of its own
        bounds[key] = float(t.value.reshape(()))
    return bounds


def _fused(model: Model, node: Node, act: Node, spec: tuple[dict[str, Any], int], outputs: list[str]) -> Node:
    attrs, version = spec
    fused_attrs = {**node.attrs, "activation": act.op_type, "activation_version": version,
                   **{ACTIVATION_PREFIX + k: v for k, v in attrs.items()}}
    return make_node(FUSABLE[node.op_type], node.inputs, outputs, fused_attrs,
                     name=f"{node.name}+{act.name}", domain=FUSED_DOMAIN, version=1, model=model.name, internal=True)

