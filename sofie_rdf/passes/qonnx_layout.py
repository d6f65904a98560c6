"""QONNX's operators written out as ONNX ones (the first rewrite, with passes/quantized_fusion.py).

* ``Quant`` / ``IntQuant``, ``BipolarQuant`` and ``Trunc`` become the element-wise chain of their formula
  (Div, Add, Clip, a rounding, Sub, Mul, ...; ``ops/qonnx.py``), each step in float32 as qonnx computes it, so
  the results are qonnx's bit for bit; runs of them fuse into one loop (passes/elementwise_fusion.py).  Those
  whose output is known when generating (the quantized weights) are left to constant folding.
* The channels-last ``Conv``, ``MaxPool`` and ``BatchNormalization`` become the ONNX operator between two
  Transposes (a constant w is stored transposed).  The channels-first values travel on: an operator reading a
  channels-last tensor whose channels-first twin this pass knows reads the twin instead (channels-last
  operators, quantizers of single-valued parameters, activations, the model's own Transpose back to
  channels-first), so the Transposes between them are read by nothing and dropped with the dead nodes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Model, Node, TensorType
from ..ops import make_node
from ..ops.base import static_size
from ..ops.qonnx import CHANNELS_LAST_DOMAIN, QONNX_DOMAINS, int_bounds, to_first, to_last

VERSION = 13  # of the ONNX operators the chains are written with
CLIP_VERSION = 6  # Clip's bounds as attributes: a step of a fused element-wise loop
FLOAT32 = np.dtype(np.float32)
QUANTIZERS = ("Quant", "IntQuant", "BipolarQuant", "Trunc")
# ONNX operators acting on each element alike, whatever the layout (their other inputs single values)
LAYOUT_FREE = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "HardSwish", "Softsign",
               "Softplus", "Abs", "Neg", "Identity", "Clip"}


class _Writer:
    """Nodes and tensors added to a model, named after the node they replace; new tensors are of ``shape``."""

    def __init__(self, model: Model, node: Node, shape: tuple):
        self.model, self.base, self.shape = model, node.name, shape
        self.nodes: list[Node] = []

    def fresh(self, label: str) -> str:
        name, k = f"{self.base}/{label}", 2
        while name in self.model.tensors or name in self.model.initializers:
            name, k = f"{self.base}/{label}{k}", k + 1
        return name

    def constant(self, label: str, value: float | np.ndarray) -> str:
        name = self.fresh(label)
        array = np.asarray(value, np.float32) if np.isscalar(value) else np.ascontiguousarray(value)
        self.model.initializers[name] = array
        self.model.tensors[name] = TensorType(array.dtype, array.shape, array)
        return name

    def add(self, op_type: str, inputs: list[str], attrs: dict | None = None, output: str = "",
            shape: tuple | None = None, dtype: np.dtype = FLOAT32, version: int = VERSION) -> str:
        out = output or self.fresh(op_type)
        if not output:
            self.model.tensors[out] = TensorType(dtype, self.shape if shape is None else shape)
        self.nodes.append(make_node(op_type, inputs, [out], attrs or {}, name=f"{self.base}/{op_type}{len(self.nodes)}",
                                    version=version, model=self.model.name))
        return out

    def rounded(self, v: str, mode: str, output: str = "") -> str:
        """qonnx's rounding modes (ops/qonnx.py: rounding) as ONNX operators."""
        mode = mode.upper()
        if mode in ("ROUND", "HALF_EVEN", "CEIL", "FLOOR"):
            return self.add({"CEIL": "Ceil", "FLOOR": "Floor"}.get(mode, "Round"), [v], output=output)
        magnitude = self.add("Abs", [v])
        if mode in ("HALF_UP", "HALF_DOWN"):
            magnitude = self.add("Add" if mode == "HALF_UP" else "Sub", [magnitude, self.constant("half", 0.5)])
        step = self.add("Floor" if mode in ("DOWN", "HALF_UP") else "Ceil", [magnitude])
        return self.add("Mul", [self.add("Sign", [v]), step], output=output)

    def clip(self, v: str, bounds: tuple[int, int]) -> str:
        return self.add("Clip", [v], {"min": float(bounds[0]), "max": float(bounds[1])}, version=CLIP_VERSION)

    def transposed(self, source: str, perm: list[int]) -> str:
        """``source`` transposed: a constant when its value is known, else a Transpose."""
        t = self.model.tensors[source]
        if t.value is not None:
            return self.constant("channels_first", np.transpose(t.value, perm))
        return self.add("Transpose", [source], {"perm": perm}, shape=tuple(t.shape[p] for p in perm), dtype=t.dtype)

    def channels_last(self, first: str, output: str) -> None:
        """``output`` (channels-last) written from its channels-first twin."""
        self.add("Transpose", [first], {"perm": to_last(self.model.tensors[first].rank)}, output=output)


def write_out_qonnx(model: Model) -> Model:
    """``model`` with its QONNX quantizers and channels-last operators as ONNX operators (changed)."""
    nodes: list[Node] = []
    twins: dict[str, str] = {}  # channels-last tensor -> a tensor of the same values channels-first
    for node in model.nodes:
        known = all(model.tensors[o].value is not None for o in node.outputs if o)
        if node.domain in QONNX_DOMAINS and node.op_type in QUANTIZERS and not known:
            nodes += _quantizer(model, node, twins)
        elif node.domain == CHANNELS_LAST_DOMAIN:
            nodes += _channels_last(model, node, twins)
        elif node.domain in ("", "ai.onnx") and node.op_type in LAYOUT_FREE and _twin(model, node, twins):
            nodes += _on_twin(model, node, twins)
        else:
            nodes.append(_transpose(model, node, twins))
    model.nodes = nodes
    return model


def _twin(model: Model, node: Node, twins: dict[str, str]) -> Optional[str]:
    """The channels-first twin of x that ``node`` may read instead (its other inputs single values)."""
    if any(name and static_size(model.tensors[name].shape) != 1 for name in node.inputs[1:]):
        return None
    return twins.get(node.inputs[0])


def _first_shape(model: Model, name: str) -> tuple:
    t = model.tensors[name]
    return tuple(t.shape[p] for p in to_first(t.rank))


def _on_twin(model: Model, node: Node, twins: dict[str, str]) -> list[Node]:
    """``node`` on the twin of its x, writing the twin of its output (and its output, for other readers)."""
    out = node.outputs[0]
    w = _Writer(model, node, _first_shape(model, out))
    first = w.fresh("channels_first")
    model.tensors[first] = TensorType(model.tensors[out].dtype, w.shape)
    w.nodes.append(make_node(node.op_type, [twins[node.inputs[0]], *node.inputs[1:]], [first], dict(node.attrs),
                             name=node.name, version=node.version, model=model.name))
    w.channels_last(first, out)
    twins[out] = first
    return w.nodes


def _transpose(model: Model, node: Node, twins: dict[str, str]) -> Node:
    """The model's own Transposes between layouts: to channels-last makes a twin, back reads one."""
    if node.op_type != "Transpose" or node.domain not in ("", "ai.onnx"):
        return node
    x, out = node.inputs[0], node.outputs[0]
    rank, perm = model.tensors[x].rank, list(node.attrs.get("perm", []))
    if rank >= 3 and perm == to_last(rank):
        twins[out] = x
    elif rank >= 3 and perm == to_first(rank) and x in twins:
        return make_node("Identity", [twins[x]], [out], {}, name=node.name, version=VERSION, model=model.name)
    return node


def _quantizer(model: Model, node: Node, twins: dict[str, str]) -> list[Node]:
    twin = _twin(model, node, twins)
    x, out = node.inputs[0], node.outputs[0]
    w = _Writer(model, node, _first_shape(model, x) if twin else model.tensors[x].shape)
    if twin:
        first = w.fresh("channels_first")
        model.tensors[first] = TensorType(FLOAT32, w.shape)
        _quantized(model, node, w, twin, first)
        w.channels_last(first, out)
        twins[out] = first
    else:
        _quantized(model, node, w, x, out)
    return w.nodes


def _quantized(model: Model, node: Node, w: _Writer, x: str, output: str) -> None:
    """The chain of a quantizer's formula from x to output."""
    scale = node.inputs[1]
    a = node.attrs
    if node.op_type == "BipolarQuant":
        w.add("Mul", [_bipolar_sign(w, w.add("Div", [x, scale])), scale], output=output)
        return
    zero = node.inputs[2]
    v = w.add("Add", [w.add("Div", [x, scale]), zero])
    if node.op_type != "Trunc" and _bipolar(model, node):
        v = _bipolar_sign(w, v)
    elif node.op_type in ("Quant", "IntQuant"):
        bits = int(model.tensors[node.inputs[3]].value.reshape(-1)[0])
        v = w.rounded(w.clip(v, int_bounds(bool(a["signed"]), bool(a["narrow"]), bits)), a["rounding_mode"])
    else:  # Trunc: round, drop the low bits (opset 2: rescale, clamp), round as the node says
        op = _op(model, node)
        values = [model.tensors[i].value if i else None for i in node.inputs]
        divisor = w.constant("divisor", op.divisor(values))
        v = w.add("Div", [w.add("Round", [v]), divisor])
        if node.version >= 2:
            bits = int(values[5].reshape(-1)[0])
            v = w.clip(v, int_bounds(bool(a["signed"]), bool(a["narrow"]), bits))
            zero = w.add("Div", [zero, divisor], shape=np.broadcast_shapes(model.tensors[zero].shape,
                                                                             np.shape(op.divisor(values))))
            scale = node.inputs[4]
        v = w.rounded(v, a["rounding_mode"])
    w.add("Mul", [w.add("Sub", [v, zero]), scale], output=output)


def _bipolar_sign(w: _Writer, v: str) -> str:
    """1 where v >= 0, else -1."""
    sign = w.add("GreaterOrEqual", [v, w.constant("zero", 0.0)], dtype=np.dtype(np.bool_))
    return w.add("Where", [sign, w.constant("one", 1.0), w.constant("minus_one", -1.0)])


def _bipolar(model: Model, node: Node) -> bool:
    return int(model.tensors[node.inputs[3]].value.reshape(-1)[0]) == 1 and bool(node.attrs["signed"])


def _op(model: Model, node: Node):
    from ..ops import op_for

    return op_for(node, model.name)


def _channels_last(model: Model, node: Node, twins: dict[str, str]) -> list[Node]:
    """The ONNX operator on channels-first inputs (x's twin where there is one), writing the twin of the
    output."""
    out = node.outputs[0]
    w = _Writer(model, node, _first_shape(model, out))
    rank = model.tensors[node.inputs[0]].rank
    inputs = list(node.inputs)
    for i in (0, 1) if node.op_type == "Conv" else (0,):
        inputs[i] = twins.get(inputs[i]) or w.transposed(inputs[i], to_first(rank))
    first = w.fresh("channels_first")
    model.tensors[first] = TensorType(model.tensors[out].dtype, w.shape)
    w.nodes.append(make_node(node.op_type, inputs, [first], dict(node.attrs), name=f"{node.name}/{node.op_type}",
                             version=node.version, model=model.name))
    w.channels_last(first, out)
    twins[out] = first
    return w.nodes
