"""QDQ graphs as integer operators: what ``DequantizeLinear -> op -> QuantizeLinear`` means, computed on the
quantized values (the first rewrite, before constant folding turns the dequantized weights into floats).

onnxruntime's ``quantize_static`` (QDQ format), PyTorch's and other tools' exports write a quantized layer as
float operators between DequantizeLinear and QuantizeLinear nodes.  For a node F whose output only a
QuantizeLinear Q reads (through a ReLU or Clip, optionally), with inputs that are DequantizeLinear outputs of
one scale and zero point each (per tensor; the weights per tensor or per output channel):

* Gemm and Conv become ``sofie_rdf::QuantizedGemm`` / ``QuantizedConv`` (QGemm / QLinearConv whose outputs are
  clamped to the quantized bounds of the ReLU or Clip: Q(relu(v)) = max(Q(v), Q(0)), Q being monotone), the
  bias taken as the int32 it was quantized to where its scale is the product of the input's and weights'
  scales (as quantizers write it); MatMul without an activation becomes QLinearMatMul.
* GlobalAveragePool, Sigmoid, LeakyRelu, Add, Mul and Concat become their QLinear forms of onnxruntime's domain.
* MaxPool and the data movers (Reshape, Flatten, Squeeze, Unsqueeze, Transpose) whose input and output share
  one scale and zero point run on the quantized values: max and moves commute with a monotone Q.

Each replacement computes what the float graph computes up to the rounding of its float steps (integer outputs
may differ by one where a value lies on a rounding boundary), as onnxruntime's own QDQ fusions do.  A
QLinearAveragePool is written out here as DequantizeLinear -> AveragePool -> QuantizeLinear, its definition.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Model, Node, TensorType
from ..ir.dtypes import integer_range
from ..ops import make_node
from ..ops.qlinear import AVERAGE_POOL_VERSION, MS_DOMAIN
from ..ops.registry import INTERNAL_DOMAIN

ONNX = ("", "ai.onnx")
BYTES = (np.dtype(np.int8), np.dtype(np.uint8))
# Operators that move values without computing on them: on quantized values they mean the same.
MOVERS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose")
# Element-wise functions of one value onnxruntime's domain has as a table of the 256 results.
LOOKUPS = {"Sigmoid": "QLinearSigmoid", "LeakyRelu": "QLinearLeakyRelu"}
DEQUANTIZE_VERSION, QUANTIZE_VERSION, TRANSPOSE_VERSION = 13, 13, 13


class _Graph:
    """The model with its producer and reader maps (kept as nodes are added)."""

    def __init__(self, model: Model):
        self.model = model
        self.producer = model.producers()
        self.readers: dict[str, list[Node]] = {}
        for node in model.nodes:
            for name in node.inputs:
                if name:
                    self.readers.setdefault(name, []).append(node)

    def only_reader(self, tensor: str) -> Optional[Node]:
        readers = self.readers.get(tensor, [])
        return readers[0] if len(readers) == 1 and tensor not in self.model.outputs else None

    def value(self, name: str) -> Optional[np.ndarray]:
        t = self.model.tensors.get(name) if name else None
        return t.value if t is not None and t.is_constant else None

    def dequantized(self, tensor: str) -> Optional[Node]:
        """The DequantizeLinear node making ``tensor`` from 8-bit values, its scale and zero point constant."""
        node = self.producer.get(tensor)
        if node is None or node.op_type != "DequantizeLinear" or node.domain not in ONNX:
            return None
        if self.model.tensors[node.inputs[0]].dtype not in BYTES or node.attrs.get("block_size", 0):
            return None
        if self.value(node.inputs[1]) is None or (len(node.inputs) > 2 and node.inputs[2] and
                                                  self.value(node.inputs[2]) is None):
            return None
        return node


def _params(node: Node) -> tuple[str, str]:
    """(scale, zero point) input names of a Q or DQ node ("" for an omitted zero point)."""
    return node.inputs[1], node.inputs[2] if len(node.inputs) > 2 else ""


def _per_tensor(g: _Graph, node: Node) -> bool:
    return g.value(_params(node)[0]).size == 1


def _quantization(g: _Graph, node: Node) -> tuple[float, int, np.dtype]:
    """(scale, zero point, quantized type) of a per-tensor Q or DQ node."""
    scale, zero = _params(node)
    quantized = node.inputs[0] if node.op_type == "DequantizeLinear" else node.outputs[0]
    z = int(g.value(zero).reshape(-1)[0]) if zero else 0
    return float(g.value(scale).reshape(-1)[0]), z, g.model.tensors[quantized].dtype


def _same_params(g: _Graph, a: Node, b: Node) -> bool:
    """Whether two per-tensor Q/DQ nodes quantize alike (one type, scale and zero point)."""
    return _per_tensor(g, a) and _per_tensor(g, b) and _quantization(g, a) == _quantization(g, b)


def fuse_quantized(model: Model) -> Model:
    """``model`` with its QDQ patterns as integer operators and its QLinearAveragePools written out (changed)."""
    _write_out_average_pools(model)
    g = _Graph(model)
    replaced: dict[int, Node] = {}
    dropped: set[int] = set()
    for q in model.nodes:
        if q.op_type != "QuantizeLinear" or q.domain not in ONNX or not _quantizes_bytes(g, q):
            continue
        fused = _fuse(g, q)
        if fused is None:
            continue
        node, through = fused
        replaced[id(q)] = node
        dropped.update(id(n) for n in through)
        for n in through:
            for out in n.outputs:
                model.tensors.pop(out, None)
    if replaced:
        model.nodes = [replaced.get(id(n), n) for n in model.nodes if id(n) not in dropped]
    return model


def fuse_dynamic_products(model: Model) -> Model:
    """``model`` with onnxruntime's ``quantize_dynamic`` products as one ``DynamicQuantizeMatMul`` each (changed).

    ``quantize_dynamic`` writes a float MatMul as DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zero,
    W_zero) -> Cast to float -> Mul by Mul(x_scale, W_scale), then the bias Add of a Gemm: five passes over the
    product (an int32 matrix written, read, cast, scaled, biased), which onnxruntime fuses as well.  The fused
    node computes the same float operations in the same order (the integer sum, times x_scale * W_scale, plus
    the bias) as its register tiles leave, and quantizes x itself, as the DynamicQuantizeLinear did.  A
    DynamicQuantizeLinear whose outputs other nodes read stays for them."""
    g = _Graph(model)
    replaced: dict[int, Node] = {}
    dropped: set[int] = set()
    for mm in model.nodes:
        if mm.op_type == "MatMulInteger" and mm.domain in ONNX:
            fused = _dynamic_product(g, mm)
            if fused is not None:
                node, through = fused
                replaced[id(through[-1])] = node
                dropped.update(id(n) for n in through[:-1])
    if not replaced:
        return model
    dropped |= _unread(g, replaced, dropped)
    for n in model.nodes:
        if id(n) in dropped or id(n) in replaced:
            for out in n.outputs:
                if all(out not in r.outputs for r in replaced.values()):
                    model.tensors.pop(out, None)
    model.nodes = [replaced.get(id(n), n) for n in model.nodes if id(n) not in dropped]
    return model


def _dynamic_product(g: _Graph, mm: Node) -> Optional[tuple[Node, list[Node]]]:
    """(DynamicQuantizeMatMul, the nodes it replaces, the last one's place taking it) for a MatMulInteger of a
    DynamicQuantizeLinear's bytes and zero point by constant weights, cast to float and scaled; None otherwise."""
    dql = g.producer.get(mm.inputs[0])
    zero = mm.inputs[2] if len(mm.inputs) > 2 else ""
    if dql is None or dql.op_type != "DynamicQuantizeLinear" or dql.domain not in ONNX or zero != dql.outputs[2]:
        return None
    weights, w_zero = g.value(mm.inputs[1]), mm.inputs[3] if len(mm.inputs) > 3 else ""
    if weights is None or weights.ndim != 2 or (w_zero and g.value(w_zero) is None):
        return None
    cast = g.only_reader(mm.outputs[0])
    if cast is None or cast.op_type != "Cast" or cast.attrs.get("to") != 1 or dql.outputs[0] in g.model.outputs:
        return None
    mul = g.only_reader(cast.outputs[0])
    if mul is None or mul.op_type != "Mul" or mul.domain not in ONNX:
        return None
    scales = g.producer.get(_other_input(mul, cast.outputs[0]))
    w_scale = _other_operand(g, scales, dql.outputs[1])
    if w_scale is None or g.value(w_scale).ndim > 1 or g.value(w_scale).size not in (1, weights.shape[1]):
        return None
    through, bias = [mm, cast, mul], ""
    add = g.only_reader(mul.outputs[0])
    if add is not None and add.op_type == "Add" and add.domain in ONNX:
        b = _other_input(add, mul.outputs[0])
        value = g.value(b)
        if value is not None and value.dtype == np.float32 and value.shape == (weights.shape[1],):
            through, bias = through + [add], b
    out = through[-1].outputs
    node = make_node("DynamicQuantizeMatMul", [dql.inputs[0], mm.inputs[1], w_scale, w_zero, bias], out, {},
                     name=f"{mm.name}/DynamicQuantizeMatMul", domain=MS_DOMAIN, version=1, model=g.model.name)
    if scales is not None and g.only_reader(scales.outputs[0]) is mul:
        through.insert(0, scales)
    return node, through


def _other_operand(g: _Graph, mul: Optional[Node], known: str) -> Optional[str]:
    """The float32 constant ``mul`` multiplies ``known`` by (a Mul node of the default domain), or None."""
    if mul is None or mul.op_type != "Mul" or mul.domain not in ONNX or known not in mul.inputs[:2]:
        return None
    other = _other_input(mul, known)
    value = g.value(other)
    return other if value is not None and value.dtype == np.float32 else None


def _other_input(node: Node, known: str) -> str:
    """The input of a two-input node beside ``known``."""
    return node.inputs[1] if node.inputs[0] == known else node.inputs[0]


def _unread(g: _Graph, replaced: dict[int, Node], dropped: set[int]) -> set[int]:
    """The DynamicQuantizeLinear nodes no remaining node reads (nor the graph's outputs)."""
    read = {name for n in g.model.nodes if id(n) not in dropped for name in
            (replaced[id(n)].inputs if id(n) in replaced else n.inputs)}
    return {id(n) for n in g.model.nodes if n.op_type == "DynamicQuantizeLinear" and n.domain in ONNX and
            not any(o in read or o in g.model.outputs for o in n.outputs)}


def _quantizes_bytes(g: _Graph, q: Node) -> bool:
    """A per-tensor QuantizeLinear to int8 or uint8 with constant parameters."""
    scale, zero = _params(q)
    return (g.model.tensors[q.outputs[0]].dtype in BYTES and g.value(scale) is not None and g.value(scale).size == 1
            and (not zero or g.value(zero) is not None) and not q.attrs.get("block_size", 0))


def _fuse(g: _Graph, q: Node) -> Optional[tuple[Node, list[Node]]]:
    """(the node replacing Q, the nodes it replaces with Q) for Q's producer, or None."""
    source = g.producer.get(q.inputs[0])
    if source is None or g.only_reader(source.outputs[0]) is not q:
        return None
    bounds = integer_range(g.model.tensors[q.outputs[0]].dtype)
    activation = None
    if source.op_type in ("Relu", "Clip") and source.domain in ONNX:
        activation, bounds = source, _clamped(g, source, q, bounds)
        source = g.producer.get(source.inputs[0])
        if bounds is None or source is None or g.only_reader(source.outputs[0]) is not activation:
            return None
    if source.domain not in ONNX:
        return None
    through = [source] + ([activation] if activation else [])
    node = _integer_node(g, source, q, bounds, activation is not None)
    return (node, through) if node is not None else None


def _integer_node(g: _Graph, f: Node, q: Node, bounds: tuple[int, int], activated: bool) -> Optional[Node]:
    if f.op_type in ("Gemm", "Conv"):
        return _product(g, f, q, bounds)
    if activated:
        return None
    if f.op_type == "MatMul":
        return _product(g, f, q, bounds)
    inputs = [g.dequantized(i) for i in f.inputs if i]
    if not inputs or any(d is None or not _per_tensor(g, d) for d in inputs):
        return None
    if f.op_type in ("MaxPool", *MOVERS):
        same = _same_params(g, inputs[0], q) and len(f.outputs) == 1
        return _node(g, f.op_type, [inputs[0].inputs[0], *f.inputs[1:]], q, f.attrs, f.version) if same else None
    scale, zero = _params(q)
    if f.op_type in ("GlobalAveragePool", *LOOKUPS):
        op = LOOKUPS.get(f.op_type, "QLinearGlobalAveragePool")
        attrs = {"alpha": f.attrs["alpha"]} if f.op_type == "LeakyRelu" else {}
        return _node(g, op, [*_triple(inputs[0])[:3], scale, zero], q, attrs, 1, MS_DOMAIN)
    if f.op_type in ("Add", "Mul") and len(inputs) == 2:
        a, b = _triple(inputs[0]), _triple(inputs[1])
        return _node(g, f"QLinear{f.op_type}", [*a, *b, scale, zero], q, {}, 1, MS_DOMAIN)
    if f.op_type == "Concat":
        parts = [name for d in inputs for name in _triple(d)]
        return _node(g, "QLinearConcat", [scale, zero, *parts], q, {"axis": f.attrs["axis"]}, 1, MS_DOMAIN)
    return None


def _triple(dq: Node) -> list[str]:
    """(values, scale, zero point) of a DequantizeLinear's input."""
    return [dq.inputs[0], *_params(dq)]


def _node(g: _Graph, op_type: str, inputs: list[str], q: Node, attrs: dict, version: int, domain: str = "") -> Node:
    internal = domain == INTERNAL_DOMAIN
    return make_node(op_type, inputs, q.outputs, attrs, name=f"{q.name}/{op_type}", domain=domain, version=version,
                     model=g.model.name, internal=internal)


def _clamped(g: _Graph, act: Node, q: Node, bounds: tuple[int, int]) -> Optional[tuple[int, int]]:
    """The quantized bounds of Q(act(v)): Q(0) and up for ReLU, [Q(min), Q(max)] for Clip, within ``bounds``."""
    scale, zero = _params(q)
    s = np.float32(g.value(scale).reshape(-1)[0])
    z = int(g.value(zero).reshape(-1)[0]) if zero else 0

    def quantized(v: float) -> int:
        return int(np.clip(np.rint(np.float32(v) / s) + z, *bounds))

    if act.op_type == "Relu":
        return max(bounds[0], quantized(0.0)), bounds[1]
    if act.version < 11:
        low, high = act.attrs["min"], act.attrs["max"]
    else:
        names = act.inputs[1:3] + [""] * (3 - len(act.inputs))
        values = [g.value(n) if n else None for n in names[:2]]
        if any(n and v is None for n, v in zip(names, values)):
            return None
        low = float(values[0].reshape(())) if values[0] is not None else -np.inf
        high = float(values[1].reshape(())) if values[1] is not None else np.inf
    return max(bounds[0], quantized(low)), min(bounds[1], quantized(high))


def _product(g: _Graph, f: Node, q: Node, bounds: tuple[int, int]) -> Optional[Node]:
    """Gemm, Conv (clamped to ``bounds``) or MatMul of DQ(x) and DQ(constant weights), plus a bias quantized with
    the product's scale: its integer form."""
    x, w = (g.dequantized(i) for i in f.inputs[:2])
    if x is None or w is None or not _per_tensor(g, x) or g.value(w.inputs[0]) is None:
        return None
    channel_axis = {"Conv": 0, "MatMul": 1, "Gemm": 0 if f.attrs.get("transB") else 1}[f.op_type]
    weights = g.model.tensors[w.inputs[0]]
    if not _per_tensor(g, w) and _axis(w, weights.rank) != channel_axis:
        return None
    if f.op_type == "Gemm" and (f.attrs.get("transA") or g.model.tensors[f.inputs[0]].rank != 2):
        return None
    bias = _integer_bias(g, f, x, w)
    if bias is None:
        return None
    scale, zero = _params(q)
    (sx, zx), (sw, zw) = _params(x), _params(w)
    if f.op_type == "MatMul":
        return _node(g, "QLinearMatMul", [x.inputs[0], sx, zx, w.inputs[0], sw, zw, scale, zero], q, {}, 10)
    clamp = {"y_min": bounds[0], "y_max": bounds[1]}
    if f.op_type == "Gemm":
        attrs = {"alpha": f.attrs.get("alpha", 1.0), "transA": 0, "transB": f.attrs.get("transB", 0), **clamp}
        return _node(g, "QuantizedGemm", [x.inputs[0], sx, zx, w.inputs[0], sw, zw, bias, scale, zero], q, attrs, 1,
                     INTERNAL_DOMAIN)
    attrs = {k: v for k, v in f.attrs.items() if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads",
                                                         "strides")}
    return _node(g, "QuantizedConv", [x.inputs[0], sx, zx, w.inputs[0], sw, zw, scale, zero, bias], q,
                 {**attrs, **clamp}, 1, INTERNAL_DOMAIN)


def _axis(dq: Node, rank: int) -> int:
    return dq.attrs.get("axis", 1) % rank


def _integer_bias(g: _Graph, f: Node, x: Node, w: Node) -> Optional[str]:
    """The int32 bias of a product ("" for none), or None where it is not the int32 of scale x_scale * w_scale."""
    name = f.inputs[2] if len(f.inputs) > 2 else ""
    if f.op_type == "MatMul" or not name:
        return ""
    if f.op_type == "Gemm" and f.attrs.get("beta", 1.0) != 1.0:
        return None
    dq = g.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear" or g.model.tensors[dq.inputs[0]].dtype != np.int32:
        return None
    scale, zero = _params(dq)
    values = [g.value(n) for n in (dq.inputs[0], scale, _params(x)[0], _params(w)[0])]
    if any(v is None for v in values) or (zero and np.any(g.value(zero) != 0)):
        return None
    bias, bias_scale, sx, sw = values
    expected = (sx.astype(np.float32).reshape(()) * sw.astype(np.float32).reshape(-1)).astype(np.float32)
    if bias.ndim != 1 or not np.array_equal(np.broadcast_to(bias_scale.astype(np.float32).reshape(-1), bias.shape),
                                            np.broadcast_to(expected, bias.shape)):
        return None
    return dq.inputs[0]


def _write_out_average_pools(model: Model) -> None:
    """Every QLinearAveragePool as DequantizeLinear -> AveragePool -> QuantizeLinear (in NCHW: Transposes around
    it for channels_last)."""
    nodes = []
    for node in model.nodes:
        if node.op_type != "QLinearAveragePool" or node.domain != MS_DOMAIN:
            nodes.append(node)
            continue
        x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
        names = node.inputs + [""] * (5 - len(node.inputs))
        last = bool(node.attrs["channels_last"])
        source, target = _fresh(model, f"{node.name}/x"), _fresh(model, f"{node.name}/y")
        nchw_in = (x.shape[0], x.shape[-1], *x.shape[1:-1]) if last else x.shape
        nchw_out = (y.shape[0], y.shape[-1], *y.shape[1:-1]) if last else y.shape
        model.tensors[source] = TensorType(np.dtype(np.float32), nchw_in)
        model.tensors[target] = TensorType(np.dtype(np.float32), nchw_out)
        pool_attrs = {k: v for k, v in node.attrs.items() if k != "channels_last" and v != []}
        steps = []
        quantized_in, quantized_out = names[0], node.outputs[0]
        if last:
            quantized_in = _transposed(model, names[0], (0, x.rank - 1, *range(1, x.rank - 1)), f"{node.name}/nchw", steps)
            quantized_out = _fresh(model, f"{node.name}/nchw_y")
            model.tensors[quantized_out] = TensorType(y.dtype, nchw_out)
        steps += [make_node("DequantizeLinear", [quantized_in, names[1], names[2]], [source], name=f"{node.name}/dq",
                            version=DEQUANTIZE_VERSION, model=model.name),
                  make_node("AveragePool", [source], [target], pool_attrs, name=f"{node.name}/pool",
                            version=AVERAGE_POOL_VERSION, model=model.name),
                  make_node("QuantizeLinear", [target, names[3], names[4]], [quantized_out], name=f"{node.name}/q",
                            version=QUANTIZE_VERSION, model=model.name)]
        if last:
            steps.append(make_node("Transpose", [quantized_out], node.outputs, {"perm": [0, *range(2, y.rank), 1]},
                                   name=f"{node.name}/nhwc", version=TRANSPOSE_VERSION, model=model.name))
        nodes += steps
    model.nodes = nodes


def _transposed(model: Model, name: str, perm: tuple, base: str, steps: list[Node]) -> str:
    """A Transpose of ``name`` by ``perm`` appended to ``steps``; its output's name."""
    t = model.tensors[name]
    out = _fresh(model, base)
    model.tensors[out] = TensorType(t.dtype, tuple(t.shape[p] for p in perm))
    steps.append(make_node("Transpose", [name], [out], {"perm": list(perm)}, name=base, version=TRANSPOSE_VERSION,
                           model=model.name))
    return out


def _fresh(model: Model, base: str) -> str:
    name, k = base, 2
    while name in model.tensors or name in model.initializers:
        name, k = f"{base}{k}", k + 1
    return name
