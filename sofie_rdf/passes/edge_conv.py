"""EdgeConv as ParticleNet exports it: the neighbours' features gathered by one node, and the first 1x1
convolution of each block computed per point instead of per (point, neighbour) pair.

ParticleNet (weaver's ``get_graph_feature``) builds each EdgeConv block's input as
``cat([x_i, x_j - x_i])`` over every point i and each of its K nearest neighbours j, then runs 1x1
convolutions over those (N, 2C, P, K) edges.  ``torch.onnx.export`` writes the neighbours ``x[:, :, idx]`` as

    offsets = Range(0, N, 1).reshape(N, 1, 1) * P;  flat = (idx + offsets).reshape(-1)
    Transpose(Reshape(Gather(Reshape(Transpose(x, [1, 0, 2]), (C, N * P)), flat, axis=1), (C, N, Q, K)), [1, 0, 2, 3])

(the published files: ``get_graph_feature_v2``) or, with the points' features as rows (``v1``),
``Transpose(Reshape(Gather(Reshape(Transpose(x, [0, 2, 1]), (N * P, C)), flat, axis=0), (N, Q, K, C)), [0, 3, 1, 2])``,

and the centre as ``Tile(Reshape(x, (N, C, P, 1)), (1, 1, 1, K))``.  Two rewrites, for targets that compute
``sofie_rdf::NeighbourGather`` (``Target.neighbour_gather``):

1. either chain becomes one ``NeighbourGather(x, idx)`` (no transposed copies, no flattened index tensor),
   checked to compute the same: the offsets are n * P (their Range and the factor read from the shape
   arithmetic's values), the views' shapes are those of the chain;
2. a 1x1 convolution W (F x [centre | neighbour - centre]) over such edges is linear in each part:
   ``W_c x_i + W_d (x_j - x_i) = (W_c - W_d) x_i + W_d x_j``, and a 1x1 convolution commutes with both the
   tiling of the centre and the gathering of the neighbours.  So it becomes two 1x1 convolutions over the P
   points, ``A = (W_c - W_d) x + b`` and ``B = W_d x``, and ``NeighbourGather(B, idx, base=A)`` with the
   convolution's fused activation: the same sums (in another order) for K times fewer multiply-adds, and the
   (N, 2C, P, K) edge tensor is never built.  Parts may be any of centre, neighbour and difference, in any
   order (DGCNN writes ``cat([x_j - x_i, x_i])``);
3. where the target computes ``sofie_rdf::EdgeConvChain`` (``Target.edge_chains``), a NeighbourGather whose
   edges only 1x1 convolutions and a reduction over the neighbours (mean, max or sum) read becomes one node:
   each block of points goes from the gather through every layer to the pooling while its edges are in cache.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np

from ..ir import Model, Node, TensorType, unique_name
from ..ir.dims import dims_equal
from ..ops import make_node, op_for
from ..ops.fused import activation_attrs
from ..ops.registry import INTERNAL_DOMAIN
from .constant_folding import eliminate_dead_nodes, runtime_inputs

GATHER_VERSION = 1
CONV_VERSION = 11
INTEGERS = (np.dtype(np.int32), np.dtype(np.int64))


def fuse_edge_convs(model: Model, chains: bool = True) -> Model:
    """The rewrites of the module's text, where they apply; with ``chains``, the third too."""
    model = _rewrite(model, _neighbour_gather)
    model = _rewrite(model, _split_conv)
    return _rewrite(model, _chain) if chains else model


def _rewrite(model: Model, match) -> Model:
    """Replace each node for which ``match(model, node, producers, readers)`` gives nodes by those nodes (in its
    place); then drop what nothing reads any more."""
    producers = {o: n for n in model.nodes for o in n.outputs if o}
    readers: dict[str, int] = {}
    for n in model.nodes:
        for i in set(n.inputs):
            readers[i] = readers.get(i, 0) + 1
    nodes: list[Node] = []
    changed = False
    for node in model.nodes:
        replacement = match(model, node, producers, readers)
        nodes += [node] if replacement is None else replacement
        changed = changed or replacement is not None
    if not changed:
        return model
    model.nodes = eliminate_dead_nodes(model, nodes)
    produced = {o for n in model.nodes for o in n.outputs if o} | set(model.inputs) | set(model.initializers)
    model.tensors = {k: t for k, t in model.tensors.items() if k in produced or t.value is not None}
    read = set(model.outputs).union(*(runtime_inputs(model, n) for n in model.nodes))
    model.initializers = {k: v for k, v in model.initializers.items() if k in read}
    return model


# ---------------------------------------------------------------- 1. the neighbours' gather


# The two ways weaver writes ``x[:, :, idx]`` (get_graph_feature_v2 and v1): the permutation ending the chain, the
# one starting it, and the axis of the flattened points that the Gather indexes.
_GATHER_CHAINS = (([1, 0, 2, 3], [1, 0, 2], 1), ([0, 3, 1, 2], [0, 2, 1], 0))


def _neighbour_gather(model: Model, node: Node, producers: dict[str, Node], readers: dict) -> Optional[list[Node]]:
    """``NeighbourGather(x, idx)`` in place of the Transpose ending an exported gather of neighbours."""
    perm = list(node.attrs.get("perm", [])) if _is(node, "Transpose") else None
    chain = next((c for c in _GATHER_CHAINS if c[0] == perm), None)
    viewed = chain and _producer(producers, node.inputs[0], "Reshape")
    gather = viewed and _producer(producers, viewed.inputs[0], "Gather")
    if gather is None or gather.attrs.get("axis", 0) != chain[2]:
        return None
    flat_view = _producer(producers, gather.inputs[0], "Reshape")
    transposed = flat_view and _producer(producers, flat_view.inputs[0], "Transpose")
    if transposed is None or list(transposed.attrs.get("perm", [])) != chain[1]:
        return None
    x = model.tensors[transposed.inputs[0]]
    idx = _offset_indices(model, gather.inputs[1], x, producers)
    if x.rank != 3 or idx is None:
        return None
    n, c, p = x.shape
    q, k = model.tensors[idx].shape[1:]
    flat, edges = ((c, n * p), (c, n, q, k)) if chain[2] == 1 else ((n * p, c), (n, q, k, c))
    if not (_shape_is(model.tensors[flat_view.outputs[0]], flat) and _shape_is(model.tensors[viewed.outputs[0]], edges)):
        return None
    return [make_node("NeighbourGather", [transposed.inputs[0], idx], node.outputs, {}, name=node.name,
                      domain=INTERNAL_DOMAIN, version=GATHER_VERSION, model=model.name, internal=True)]


def _offset_indices(model: Model, flat: str, x: TensorType, producers: dict[str, Node]) -> Optional[str]:
    """The (N, Q, K) indices that ``flat`` is ``(idx + n * P).reshape(-1)`` of, for x of shape (N, C, P)."""
    view = _producer(producers, _uncast(model, flat, producers), "Reshape")
    if view is None or model.tensors[view.outputs[0]].rank != 1:
        return None
    add = _producer(producers, _uncast(model, view.inputs[0], producers), "Add")
    if add is None:
        return None
    for idx, offsets in (add.inputs, add.inputs[::-1]):
        t = model.tensors[idx]
        if (t.rank == 3 and t.dtype in INTEGERS and t.value is None and dims_equal(t.shape[0], x.shape[0])
                and _batch_offsets(model, offsets, x, producers)):
            return idx
    return None


def _batch_offsets(model: Model, name: str, x: TensorType, producers: dict[str, Node]) -> bool:
    """Whether ``name`` is ``Range(0, N, 1).reshape(N, 1, 1) * P``: n * P along the batch."""
    mul = _producer(producers, _uncast(model, name, producers), "Mul")
    if mul is None:
        return False
    for ranged, factor in (mul.inputs, mul.inputs[::-1]):
        view = _producer(producers, _uncast(model, ranged, producers), "Reshape")
        arange = view and _producer(producers, _uncast(model, view.inputs[0], producers), "Range")
        if (arange is not None and _shape_is(model.tensors[view.outputs[0]], (x.shape[0], 1, 1))
                and _value_is(model, factor, x.shape[2]) and _value_is(model, arange.inputs[0], 0)
                and _value_is(model, arange.inputs[1], x.shape[0]) and _value_is(model, arange.inputs[2], 1)):
            return True
    return False


# ---------------------------------------------------------------- 2. the first convolution, split


def _split_conv(model: Model, node: Node, producers: dict[str, Node], readers: dict) -> Optional[list[Node]]:
    """Two 1x1 convolutions over the points and a NeighbourGather with a base, in place of a 1x1 convolution
    over an EdgeConv's (centre, neighbour, difference) parts."""
    weight = _pointwise_weight(model, node)
    concat = weight is not None and _producer(producers, node.inputs[0], "Concat")
    if not concat or concat.attrs.get("axis") not in (1, -3):
        return None
    parts = [_edge_part(model, part, producers) for part in concat.inputs]
    if any(p is None for p in parts) or len({(x, idx) for _, _, x, idx in parts if idx is not None}) != 1:
        return None
    (x, idx), = {(x, idx) for _, _, x, idx in parts if idx is not None}
    if any(part_x != x or (part_idx not in (None, idx)) for _, _, part_x, part_idx in parts):
        return None
    xt, it = model.tensors[x], model.tensors[idx]
    channels = xt.shape[1]
    if not isinstance(channels, int) or weight.shape[1] != channels * len(parts) or \
            not dims_equal(it.shape[1], xt.shape[2]) or not all(dims_equal(model.tensors[p].shape[3], it.shape[2])
                                                                 for p in concat.inputs):
        return None
    blocks = [weight[:, j * channels:(j + 1) * channels, 0, 0].astype(np.float64) for j in range(len(parts))]
    centre = sum(c * b for (c, _, _, _), b in zip(parts, blocks))
    neighbour = sum(g * b for (_, g, _, _), b in zip(parts, blocks))
    return _split_nodes(model, node, x, idx, centre, neighbour, weight.dtype)


def _pointwise_weight(model: Model, node: Node) -> Optional[np.ndarray]:
    """The constant (F, C, 1, 1) float weights of a 2-D 1x1 convolution of stride 1, unpadded, ungrouped, unpooled."""
    if node.op_type not in ("Conv", "FusedConv") or node.domain not in ("", "ai.onnx", INTERNAL_DOMAIN):
        return None
    w = model.initializers.get(node.inputs[1])
    a = node.attrs
    plain = all(all(v == d for v in a.get(key) or [d]) for key, d in (("strides", 1), ("dilations", 1), ("pads", 0)))
    if w is None or w.dtype != np.float32 or w.ndim != 4 or w.shape[2:] != (1, 1) or not plain:
        return None
    if a.get("group", 1) != 1 or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or a.get("pool_window"):
        return None
    return w


def _edge_part(model: Model, name: str, producers: dict[str, Node]):
    """(centre coefficient, neighbour coefficient, x, idx or None) of one part of an EdgeConv's input: the centre
    (1, 0), the neighbours (0, 1) or their difference (-1, 1), or (1, -1) reversed; None for anything else."""
    centre = _centre_of(model, name, producers)
    if centre is not None:
        return 1, 0, centre, None
    gathered = _gathered(model, name, producers)
    if gathered is not None:
        return 0, 1, *gathered
    sub = _producer(producers, name, "Sub")
    if sub is None:
        return None
    for sign, (a, b) in ((1, sub.inputs), (-1, sub.inputs[::-1])):
        gathered, centre = _gathered(model, a, producers), _centre_of(model, b, producers)
        if gathered is not None and centre == gathered[0]:
            return -sign, sign, *gathered
    return None


def _centre_of(model: Model, name: str, producers: dict[str, Node]) -> Optional[str]:
    """x where ``name`` is x (N, C, P) repeated along a new last axis: Tiles and Expands (torch's ``repeat``
    writes both) of its (N, C, P, 1) view, which leave the first three dims as they are."""
    repeated = name
    while _producer(producers, repeated, "Tile") or _producer(producers, repeated, "Expand"):
        repeated = producers[repeated].inputs[0]
    view = repeated != name and (_producer(producers, repeated, "Reshape") or _producer(producers, repeated, "Unsqueeze"))
    if not view:
        return None
    x, single = model.tensors[view.inputs[0]], model.tensors[view.outputs[0]]
    out = model.tensors[name]
    if x.rank != 3 or not _shape_is(single, x.shape + (1,)) or out.rank != 4 or not all(
            map(dims_equal, out.shape[:3], x.shape)):
        return None
    return view.inputs[0]


def _gathered(model: Model, name: str, producers: dict[str, Node]) -> Optional[tuple[str, str]]:
    """(x, idx) where ``name`` is a plain NeighbourGather(x, idx)."""
    node = producers.get(name)
    if node is None or node.op_type != "NeighbourGather" or node.domain != INTERNAL_DOMAIN or len(node.inputs) != 2:
        return None
    return (node.inputs[0], node.inputs[1]) if node.attrs.get("activation", "Identity") == "Identity" else None


def _split_nodes(model: Model, conv: Node, x: str, idx: str, centre: np.ndarray, neighbour: np.ndarray,
                 dtype: np.dtype) -> list[Node]:
    """``A = conv(x; centre, bias)``, ``B = conv(x; neighbour)``, ``NeighbourGather(B, idx, A)`` + activation."""
    taken = set(model.tensors) | set(model.initializers) | {o for n in model.nodes for o in n.outputs}
    names = {part: unique_name(f"{conv.name}/{part}", taken) for part in ("centre", "neighbour")}
    xt, out = model.tensors[x], model.tensors[conv.outputs[0]]
    features = centre.shape[0]
    nodes = []
    for part, w in (("centre", centre), ("neighbour", neighbour)):
        weight = unique_name(f"{names[part]}/weight", taken)
        model.initializers[weight] = w.astype(dtype)[:, :, None]
        model.tensors[weight] = TensorType(dtype, model.initializers[weight].shape, model.initializers[weight])
        inputs = [x, weight] + ([conv.inputs[2]] if part == "centre" and len(conv.inputs) > 2 and conv.inputs[2] else [])
        nodes.append(make_node("Conv", inputs, [names[part]], {"kernel_shape": [1]}, name=names[part],
                               version=CONV_VERSION, model=model.name))
        model.tensors[names[part]] = TensorType(out.dtype, (xt.shape[0], features, xt.shape[2]))
    activation = {k: v for k, v in conv.attrs.items() if k.startswith("activation")}
    nodes.append(make_node("NeighbourGather", [names["neighbour"], idx, names["centre"]], conv.outputs, activation,
                           name=conv.name, domain=INTERNAL_DOMAIN, version=GATHER_VERSION, model=model.name,
                           internal=True))
    op_for(nodes[-1], model.name).infer([model.tensors[names["neighbour"]], model.tensors[idx],
                                         model.tensors[names["centre"]]])  # checks the shapes now
    return nodes


# ---------------------------------------------------------------- 3. the block's layers, in one node

POOLS = {"ReduceMean": "mean", "ReduceMax": "max", "ReduceSum": "sum"}
IDENTITY_VERSION = 16


def _chain(model: Model, node: Node, producers: dict[str, Node], readers: dict) -> Optional[list[Node]]:
    """``EdgeConvChain`` in place of a reduction over the neighbours of edges that a NeighbourGather made and only
    1x1 convolutions transformed, each intermediate read by the next node alone."""
    pool = POOLS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    edges = model.tensors[node.inputs[0]] if pool else None
    if edges is None or edges.rank != 4 or edges.dtype != np.float32 or not _reduces_last_axis(model, node):
        return None
    layers: list[Node] = []
    name = node.inputs[0]
    while True:
        producer = producers.get(name)
        if producer is None or readers.get(name, 0) != 1 or name in model.outputs:
            return None
        if producer.op_type == "NeighbourGather" and producer.domain == INTERNAL_DOMAIN:
            break
        if _pointwise_weight(model, producer) is None:
            return None
        layers.insert(0, producer)
        name = producer.inputs[0]
    gather = producer
    if not isinstance(model.tensors[gather.inputs[1]].shape[2], int):
        return None  # the blocks of points are sized by K when the code is generated
    inputs = [gather.inputs[0], gather.inputs[1], gather.inputs[2] if len(gather.inputs) > 2 else ""]
    for layer in layers:
        inputs += [layer.inputs[1], layer.inputs[2] if len(layer.inputs) > 2 else ""]
    attrs = {**{k: v for k, v in gather.attrs.items() if k.startswith("activation")},
             "layers": json.dumps([_activation_spec(layer) for layer in layers]), "pool": pool,
             "keepdims": int(node.attrs.get("keepdims", 1))}
    return [make_node("EdgeConvChain", inputs, node.outputs, attrs, name=f"{gather.name}..{node.name}",
                      domain=INTERNAL_DOMAIN, version=GATHER_VERSION, model=model.name, internal=True)]


def _reduces_last_axis(model: Model, node: Node) -> bool:
    op = op_for(node, model.name)
    inputs = [model.tensors[i] if i else None for i in node.inputs]
    return not op.axes_at_run_time(inputs) and op.reduced_axes(4, op.axes_value(inputs)) == [3]


def _activation_spec(layer: Node) -> dict:
    """A fused convolution's activation as EdgeConvChain's ``layers`` spell it (Identity for a plain Conv)."""
    if layer.op_type != "FusedConv" or layer.attrs.get("activation", "Identity") == "Identity":
        return {"activation": "Identity", "version": IDENTITY_VERSION, "attrs": {}}
    return {"activation": layer.attrs["activation"], "version": int(layer.attrs["activation_version"]),
            "attrs": activation_attrs(layer.attrs)}


# ---------------------------------------------------------------- helpers


def _is(node: Optional[Node], op_type: str) -> bool:
    return node is not None and node.op_type == op_type and node.domain in ("", "ai.onnx")


def _producer(producers: dict[str, Node], name: str, op_type: str) -> Optional[Node]:
    node = producers.get(name)
    return node if _is(node, op_type) else None


def _uncast(model: Model, name: str, producers: dict[str, Node]) -> str:
    """What ``name`` is a Cast of, while the Cast widens integers (their values unchanged)."""
    while True:
        cast = _producer(producers, name, "Cast")
        if cast is None:
            return name
        src, dst = model.tensors[cast.inputs[0]].dtype, model.tensors[name].dtype
        if src.kind not in "iu" or dst.kind not in "iu" or dst.itemsize < src.itemsize:
            return name
        name = cast.inputs[0]


def _shape_is(t: TensorType, shape: tuple) -> bool:
    return t.rank == len(shape) and all(map(dims_equal, t.shape, shape))


def _value_is(model: Model, name: str, want) -> bool:
    """Whether tensor ``name`` holds one value, known when generating, equal to ``want`` (a dim or a number)."""
    t = model.tensors.get(name)
    if t is None or t.value is None or t.value.size != 1:
        return False
    return dims_equal(t.value.reshape(-1)[0], want)
