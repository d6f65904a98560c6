"""Update functions: small networks applied to every edge, every node or the globals.

An update function is an :class:`MLP` given by weight arrays or any model
:func:`sofie_rdf.load` accepts (a ``Model``, an ONNX model, a Keras model or
file, a ``torch.nn.Module``) with one input ``(batch, F_in)`` and one output
``(batch, F_out)``.  Its IR is inlined into the graph network: node and tensor
names get a prefix per application, weights a prefix per function, so a core
block applied at every message-passing step stores its weights once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import onnx

from .. import ir
from ..errors import SofieError
from ..model import Model
from ..ops import make_node
from ._builder import OPSET, Builder, Part

ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "elu": "Elu", "softplus": "Softplus",
               "leaky_relu": "LeakyRelu", "linear": None, None: None}
_ACTIVATION_ATTRS = {"LeakyRelu": {"alpha": 0.01}}  # torch's default slope
_BATCH = "batch"


class MLP:
    """A multilayer perceptron from weight arrays: ``x @ W1 + b1 -> activation -> ... -> x @ Wn + bn``.

    ``weights[k]`` has shape ``(in, out)`` (numpy's ``x @ W`` convention; a
    ``torch.nn.Linear`` weight is its transpose), ``biases[k]`` shape ``(out,)``
    (zeros when ``biases`` is None).  ``activation`` follows every layer but the
    last, ``final_activation`` the last one: ``"relu"``, ``"tanh"``,
    ``"sigmoid"``, ``"elu"``, ``"softplus"``, ``"leaky_relu"`` (slope 0.01) or
    None.  Weights are stored as float32.
    """

    def __init__(self, weights: Sequence[Any], biases: Optional[Sequence[Any]] = None, activation: Optional[str] = "relu",
                 final_activation: Optional[str] = None):
        self.weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        if not self.weights:
            raise SofieError("an MLP needs at least one weight matrix")
        self.biases = ([np.ascontiguousarray(b, dtype=np.float32) for b in biases] if biases is not None
                       else [np.zeros(w.shape[-1], np.float32) for w in self.weights])
        for a in (activation, final_activation):
            if a not in ACTIVATIONS:
                raise SofieError(f"MLP activation must be one of {', '.join(map(str, ACTIVATIONS))}, got {a!r}")
        self.activation, self.final_activation = activation, final_activation
        self._check_shapes()

    def _check_shapes(self) -> None:
        if len(self.biases) != len(self.weights):
            raise SofieError(f"MLP: {len(self.weights)} weight matrices but {len(self.biases)} biases")
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.ndim != 2 or b.shape != (w.shape[1],):
                raise SofieError(f"MLP layer {k}: weight shape {w.shape} (want (in, out)) and bias shape {b.shape} "
                                 "do not fit")
            if k and w.shape[0] != self.weights[k - 1].shape[1]:
                raise SofieError(f"MLP layer {k} takes {w.shape[0]} features, layer {k - 1} gives "
                                 f"{self.weights[k - 1].shape[1]}")

    @property
    def in_features(self) -> int:
        return self.weights[0].shape[0]

    @property
    def out_features(self) -> int:
        return self.weights[-1].shape[1]

    def to_ir(self, name: str = "mlp") -> ir.Model:
        """The MLP as an IR graph ``x (batch, in) -> y (batch, out)`` of Gemm and activation nodes."""
        nodes, inits, x = [], {}, "x"
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            last = k == len(self.weights) - 1
            act = ACTIVATIONS[self.final_activation if last else self.activation]
            inits[f"W{k}"], inits[f"b{k}"] = w, b
            dense = "y" if last and act is None else f"dense{k}"
            nodes.append(make_node("Gemm", [x, f"W{k}", f"b{k}"], [dense], name=f"dense{k}", version=OPSET, model=name))
            x = dense
            if act is not None:
                x = "y" if last else f"act{k}"
                nodes.append(make_node(act, [dense], [x], _ACTIVATION_ATTRS.get(act), name=f"{act.lower()}{k}",
                                       version=OPSET, model=name))
        tensors = {"x": ir.TensorType(np.float32, (ir.dims.symbol(_BATCH), self.in_features))}
        return ir.Model(name, ["x"], ["y"], nodes, inits, tensors, opsets={"": OPSET}, source="sofie_rdf.gnn.MLP")

    @cached_property
    def tail(self) -> Optional[MLP]:
        """The layers after the first (None for one layer); one object, so that its weights are stored once."""
        return MLP(self.weights[1:], self.biases[1:], self.activation, self.final_activation) if len(self.weights) > 1 \
            else None

    def first_activation(self) -> Optional[str]:
        """ONNX op type of the activation after the first layer (None: linear)."""
        return ACTIVATIONS[self.activation if len(self.weights) > 1 else self.final_activation]

    def __repr__(self) -> str:
        sizes = [self.in_features] + [w.shape[1] for w in self.weights]
        return f"MLP({' -> '.join(map(str, sizes))}, activation={self.activation!r})"


@dataclass
class _Resolved:
    """An update function loaded once per network: its model, the prefix of its weights and its sizes."""

    source: Any  # kept so that id(source) stays unique while the network is built
    model: Model
    prefix: str
    in_features: int
    out_features: int


def _load(fn: Any, in_features: int) -> Model:
    """The function as a Model; torch modules and files are traced on (2, in_features) with a symbolic batch."""
    from ..api import TORCH_SUFFIXES, _module_of, load

    if isinstance(fn, MLP):
        return Model(fn.to_ir())
    torch_file = isinstance(fn, (str, os.PathLike)) and Path(fn).suffix.lower() in TORCH_SUFFIXES
    if torch_file or (_module_of(fn, "torch") and not _module_of(fn, "keras")):  # Keras-on-torch models are Modules
        import torch

        return load(fn, example_inputs=torch.zeros(2, in_features), dynamic_axes={0: {0: _BATCH}})
    return load(fn)


def _resolve(b: Builder, fn: Any, in_features: int, where: str) -> _Resolved:
    """The function's model, checked to map (batch, in_features) to (batch, F_out) float32."""
    known, where = b.functions.get(id(fn)), f"graph network {b.name!r}, {where}"
    if known is None:
        try:
            model = _load(fn, in_features)
        except (SofieError, TypeError) as exc:
            raise SofieError(f"{where}: cannot use this {type(fn).__name__} as an update function: {exc}") from exc
        known = _Resolved(fn, model, b.fresh("fn"), *_io_features(model, where))
        b.functions[id(fn)] = known
        for name, value in model.ir.initializers.items():
            b.initializers[f"{known.prefix}/{name}"] = value
        for domain, version in model.ir.opsets.items():
            b.opsets[domain] = max(b.opsets.get(domain, 0), version)
    if known.in_features != in_features:
        raise SofieError(f"{where}: the update function takes {known.in_features} features, the block gives it "
                         f"{in_features}")
    return known


def _io_features(model: Model, where: str) -> tuple[int, int]:
    """(F_in, F_out) of a model mapping float32 (batch, F_in) to (batch, F_out) with a symbolic batch; else raise."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise SofieError(f"{where}: an update function needs one input and one output, model {model.name!r} has "
                         f"{len(model.inputs)} and {len(model.outputs)}")
    x, y = model.inputs[0], model.outputs[0]
    for t in (x, y):
        if len(t.shape) != 2 or not isinstance(t.shape[1], int) or t.dtype != np.float32:
            raise SofieError(f"{where}: model {model.name!r}: {t.name!r} is {t.dtype} {t.shape}; an update function "
                             "maps float32 (batch, features) to float32 (batch, features)")
    if isinstance(x.shape[0], int):
        raise SofieError(f"{where}: model {model.name!r} has a fixed batch size {x.shape[0]}; export it with a "
                         "symbolic first dim so that it applies to any number of nodes or edges")
    return x.shape[1], y.shape[1]


def apply(b: Builder, fn: Any, x: str, in_features: int, where: str) -> Part:
    """``fn`` applied to every row of ``x`` (rows, in_features): its IR inlined under fresh names."""
    f = _resolve(b, fn, in_features, where)
    graph = f.model.ir
    scope = b.fresh(where.replace(" ", "_"))
    rename = {graph.inputs[0]: x, **{name: f"{f.prefix}/{name}" for name in graph.initializers}}

    def new(name: str) -> str:
        if name and name not in rename:
            rename[name] = f"{scope}/{name}"
        return rename.get(name, "")

    for node in graph.nodes:
        if any(isinstance(v, onnx.AttributeProto) for v in node.attrs.values()):
            raise SofieError(f"graph network {b.name!r}, {where}: {node} of model {f.model.name!r} has a subgraph, "
                             "which update functions cannot have")
        b.nodes.append(ir.Node(node.op_type, [new(i) for i in node.inputs], [new(o) for o in node.outputs],
                               dict(node.attrs), f"{scope}/{node.name}", node.domain, node.version))
    return Part(new(graph.outputs[0]), f.out_features)


def apply_to_globals(b: Builder, fn: Any, x: str, in_features: int, where: str) -> Part:
    """``fn`` on the (F,) global features: as one row (1, F), flattened back to (F',)."""
    row = b.op("Unsqueeze", [x, b.const(np.array([0], np.int64), "axes0")], "globals_row")
    y = apply(b, fn, row, in_features, where)
    return Part(b.op("Reshape", [y.tensor, b.const(np.array([-1], np.int64), "flat")], "globals"), y.features)


def apply_split_mlp(b: Builder, mlp: MLP, parts: list[tuple[str, str, int]], where: str) -> Part:
    """An MLP on the concatenated per-edge input, its first layer applied to each part before the gathers.

    ``parts``: (how, tensor, features) in input order, ``how`` being "rows" (one row per edge), "receivers" or
    "senders" (node rows, gathered per edge) or "globals" (one row for all).  ``[e, x_r, x_s, u] @ W`` is
    ``e @ W_e + (x @ W_r)[r] + (x @ W_s)[s] + u @ W_u``: the node parts are multiplied once per node rather than
    once per edge, which saves work whenever edges outnumber nodes, as they do in most graphs.
    """
    features = sum(f for _, _, f in parts)
    if features != mlp.in_features:
        raise SofieError(f"graph network {b.name!r}, {where}: the update function takes {mlp.in_features} features, "
                         f"the block gives it {features}")
    w0, offset, terms = mlp.weights[0], 0, []
    bias = b.const(mlp.biases[0], "bias")
    for how, tensor, f in parts:
        product = b.op("MatMul", [tensor, b.const(w0[offset:offset + f], "weights")], f"{how}_product")
        offset += f
        if how in ("receivers", "senders"):
            product = b.gather_nodes(product, how)
        if how == "globals":
            bias = b.op("Add", [product, bias], "global_bias")
        else:
            terms.append(product)
    h = terms[0]
    for t in [*terms[1:], bias]:
        h = b.op("Add", [h, t], "first_layer")
    act = mlp.first_activation()
    if act is not None:
        h = b.op(act, [h], act.lower(), **_ACTIVATION_ATTRS.get(act, {}))
    tail = mlp.tail
    return apply(b, tail, h, tail.in_features, where) if tail is not None else Part(h, mlp.out_features)

