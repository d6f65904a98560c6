"""Internal operators the fusion passes make (domain ``sofie_rdf``; a model file may not contain them).

``FusedConv``/``FusedConvTranspose``/``FusedGemm`` (``passes/fusion.py``) carry a following activation as
attributes (``activation``, ``activation_version``, ``activation_<attr>``), like onnxruntime's
``com.microsoft`` FusedConv; the node computes the activation of the base operator's output.

``FusedElementwise`` (``passes/elementwise_fusion.py``) runs a chain of element-wise operators, like
GELU's exported form (``Mul -> Erf -> Add -> Mul -> Mul``), as one loop: instead of one pass over memory
per operator, each element goes through the whole chain while it is in a register.  Input 0 is the
chain's input; the others are, in step order, the second operands of its binary steps, each either of
the output's shape or a single (constant) value.  The attribute ``steps`` is a JSON list, one entry per
operator: ``{"op", "version", "attrs", "operand"}`` where ``operand`` is the index of the step's other
input (-1 for a unary step) and ``operand_first`` says it is the binary operator's first argument.
Each step is evaluated by its own operator, so the fused node computes exactly what the separate
nodes compute.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from .base import Op, static_size
from .conv import Conv, ConvTranspose
from .gemm import Gemm
from .indexing import check_indices, require_same_dim, wrap_indices
from .registry import INTERNAL_DOMAIN, lookup, make_node, register

FUSED_DOMAIN = INTERNAL_DOMAIN

ACTIVATION_PREFIX = "activation_"


def activation_attrs(node_attrs: dict[str, Any]) -> dict[str, Any]:
    """The fused activation's own attributes (prefix removed)."""
    skip = {"activation", "activation_version"}
    return {k[len(ACTIVATION_PREFIX):]: v for k, v in node_attrs.items()
            if k.startswith(ACTIVATION_PREFIX) and k not in skip}


class FusedActivation:
    """Mixin: the activation named by the node's attributes, applied to every output of the base operator."""

    attr_defaults = {"activation": "Identity", "activation_version": 0}

    def activation_op(self) -> Op:
        """The activation as an operator of its own (the emitter binds it to the target for its code)."""
        attrs = self.attrs
        node = make_node(attrs["activation"], ["x"], ["y"], activation_attrs(attrs),
                         version=int(attrs["activation_version"]), model=self.model)
        return lookup(node.op_type, node.domain, node.version)(node, self.model)

    @property
    def has_activation(self) -> bool:
        """False for a fused node that carries none (a Gemm given a pooling epilogue alone)."""
        return self.attrs["activation"] != "Identity"

    def activation_reference(self, y: np.ndarray) -> np.ndarray:
        return self.activation_op().evaluate([y])[0] if self.has_activation else y


@register
class FusedConv(FusedActivation, Conv):
    """Conv followed by an element-wise activation, computed in one pass, and where ``pool_window`` is 2, the
    maximum over each 2 x 2 window (stride 2, unpadded, the last ones cut where an image side is odd) of the
    activated 2-D output (``passes/conv_pool_fusion.py``: the Conv, ReLU, MaxPool of calorimeter CNNs): the
    output is (N, F, H / 2, W / 2), and the full-size output is never stored."""

    op_type = "FusedConv"
    domain = FUSED_DOMAIN
    attr_defaults = {**Conv.attr_defaults, **FusedActivation.attr_defaults, "auto_pad": "NOTSET", "group": 1,
                     "pool_window": 0}

    @property
    def pool_window(self) -> int:
        return int(self.attrs["pool_window"])

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        (y,) = super().infer(inputs)
        p = self.pool_window
        if not p:
            return [y]
        if p != 2 or y.rank != 4 or not all(isinstance(d, int) and d >= 2 for d in y.shape[2:]):
            raise self.error(f"pool_window {p} needs a 2-D output of static sides of 2 or more, got {y.shape}")
        return [TensorType(y.dtype, y.shape[:2] + tuple(d // p for d in y.shape[2:]))]

    def flops(self, inputs, outputs):
        conv = super().infer(inputs)[0]  # the convolution's own output, before the pooling
        return 2 * self._taps(inputs[1]) * conv.size

    def evaluate(self, values):
        y = self.activation_reference(super().evaluate(values)[0])
        p = self.pool_window
        if not p:
            return [y]
        n, f, h, w = y.shape
        windows = y[:, :, :h // p * p, :w // p * p].reshape(n, f, h // p, p, w // p, p)
        return [windows.max(axis=(3, 5))]


@register
class FusedConvTranspose(FusedActivation, ConvTranspose):
    """ConvTranspose followed by an element-wise activation."""

    op_type = "FusedConvTranspose"
    domain = FUSED_DOMAIN
    attr_defaults = {**ConvTranspose.attr_defaults, **FusedActivation.attr_defaults, "auto_pad": "NOTSET",
                     "group": 1}

    def evaluate(self, values):
        return [self.activation_reference(super().evaluate(values)[0])]


POOLS = ("sum", "mean")


@register
class FusedGemm(FusedActivation, Gemm):
    """Gemm followed by an element-wise activation of its output and, where ``pool_rows`` is P > 0, the sum or
    mean (``pool``) of each run of P consecutive rows (``passes/pool_fusion.py``: a per-particle network summed
    or averaged over the particles or neighbours, as Deep Sets, energy flow and EdgeConv layers are): the output
    is (M / P, N), and the M x N product never needs to be stored."""

    op_type = "FusedGemm"
    domain = FUSED_DOMAIN
    since_version = 1  # fused nodes are made at version 1 (Gemm's own since_version is 7)
    attr_defaults = {**FusedActivation.attr_defaults, "alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0,
                     "pool_rows": 0, "pool": "sum"}

    @property
    def pool_rows(self) -> int:
        return int(self.attrs["pool_rows"])

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        (y,) = super().infer(inputs)
        p = self.pool_rows
        if not p:
            return [y]
        if self.attrs["pool"] not in POOLS:
            raise self.error(f"pool must be one of {', '.join(POOLS)}, got {self.attrs['pool']!r}")
        m, n = y.shape
        if p < 0 or (isinstance(m, int) and m % p):
            raise self.error(f"pool_rows {p} does not divide the {m} rows of the product")
        return [TensorType(y.dtype, (m // p if isinstance(m, int) else m / p, n))]

    def evaluate(self, values):
        y = self.activation_reference(super().evaluate(values)[0])
        p = self.pool_rows
        if not p:
            return [y]
        groups = y.reshape(-1, p, y.shape[-1])
        pooled = groups.sum(axis=1, dtype=np.float64)
        if self.attrs["pool"] == "mean":
            pooled /= p
        return [pooled.astype(y.dtype)]


@register
class NeighbourGather(FusedActivation, Op):
    """y[n, c, q, k] = act(base[n, c, q] + x[n, c, i[n, q, k]]): the features of each point's neighbours
    (EdgeConv), from inputs x (N, C, P), indices i (N, Q, K) and an optional base (N, C, Q).

    ``passes/edge_conv.py`` makes it from the chain weaver's ParticleNet exports for ``x[:, :, idx]``: the
    indices offset by ``n * P`` (``Range(N) * P``), x transposed and viewed as (C, N * P), a Gather of the
    flattened indices along its second axis and the result viewed back as (N, C, Q, K).  It computes exactly
    that: index ``i[n, q, k] + n * P`` of the (C, N * P) view, negatives counted from its end and each checked
    against it, so an index outside [0, P) reads what the chain reads.  With a base and an activation it is the
    first layer of an EdgeConv, its 1x1 convolution split over the centre and the neighbour (that pass)."""

    op_type = "NeighbourGather"
    domain = FUSED_DOMAIN
    since_version = 1
    attr_defaults = dict(FusedActivation.attr_defaults)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, idx = inputs[0], inputs[1]
        base = inputs[2] if len(inputs) > 2 else None
        if x.rank != 3 or idx.rank != 3:
            raise self.error(f"x must be (N, C, P) and the indices (N, Q, K), got {x.shape} and {idx.shape}")
        check_indices(self, idx)
        require_same_dim(self, x.shape[0], idx.shape[0], "the indices' batch")
        n, c, q, k = x.shape[0], x.shape[1], idx.shape[1], idx.shape[2]
        if base is not None:
            if base.dtype != x.dtype or base.rank != 3:
                raise self.error(f"base must be (N, C, Q) of {x.dtype}, got {base.dtype} {base.shape}")
            for want, got, what in zip((n, c, q), base.shape, ("batch", "channels", "points")):
                require_same_dim(self, got, want, f"the base's {what}")
        return [TensorType(x.dtype, (n, c, q, k))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, idx = values[0], values[1]
        n, c, p = x.shape
        flat = wrap_indices(self, idx.astype(np.int64) + (np.arange(n, dtype=np.int64) * p)[:, None, None], n * p)
        y = x.transpose(1, 0, 2).reshape(c, n * p)[:, flat].transpose(1, 0, 2, 3)
        if len(values) > 2 and values[2] is not None:
            y = y + values[2][..., None]
        return [self.activation_reference(y).astype(x.dtype)]


SELECTION_MODES = ("gather", "scatter")


@register
class SelectionGemm(Gemm):
    """Y = alpha * A B for a constant B that selects: one nonzero per column (``mode="gather"``: column j of Y is
    column index[j] of A times scale[j]) or one per row (``"scatter"``: column j of Y is the sum over t in
    [offsets[j], offsets[j + 1]) of column index[t] of A times scale[t]).  Inputs: A (M, K), B (K, N) itself,
    index and scale (N values, or K), and for a scatter the offsets (N + 1), which ``passes/selection.py`` reads
    off B.  The interaction network's receiver and sender matrices (60 x 3540 0/1)
    are such products: the product of every row of A with every column of B was a third of its time.  The
    meaning is the product's (Gemm's reference): an A holding an infinity or a NaN, whose zero multiples make NaNs,
    is computed as the whole product."""

    op_type = "SelectionGemm"
    domain = FUSED_DOMAIN
    since_version = 1
    attr_defaults = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0, "mode": "gather"}

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        (y,) = super().infer(inputs[:2])
        index, scale = inputs[2], inputs[3]
        k, n = inputs[1].shape
        gather = self.attrs["mode"] == "gather"
        if self.attrs["mode"] not in SELECTION_MODES or self.attrs["transA"] or self.attrs["transB"]:
            raise self.error(f"mode must be one of {', '.join(SELECTION_MODES)}, A and B untransposed")
        count = n if gather else k
        check_indices(self, index)
        if index.shape != (count,) or scale.shape != (count,) or scale.dtype != y.dtype:
            raise self.error(f"index and scale must hold {count} values, got {index.shape} and {scale.shape}")
        if not gather and (len(inputs) < 5 or inputs[4] is None or inputs[4].shape != (n + 1,)):
            raise self.error(f"a scatter needs the {n + 1} offsets of its groups as input 4")
        return [y]

    def flops(self, inputs, outputs):
        return None  # data movement: the product's operations are not done

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        return super().evaluate(values[:2])


EDGE_POOLS = {"mean": np.mean, "max": np.max, "sum": np.sum}


@register
class EdgeConvChain(NeighbourGather):
    """An EdgeConv block's edges through its 1x1 convolutions and pooled over the neighbours, in one node:
    ``h = NeighbourGather(x, idx, base)`` (with the node's own activation), then for each layer l
    ``h = act_l(W_l h + b_l)`` over the (N, C, Q, K) edges, then the mean, maximum or sum over the K neighbours
    (``pool``): (N, F, Q), or (N, F, Q, 1) with ``keepdims``.

    Inputs: x, idx, base (as NeighbourGather's), then per layer its weights (F_l, C_l, 1, 1) and bias (F_l,)
    ("" for none).  ``layers`` is a JSON list with per layer ``{"activation", "version", "attrs"}`` ("Identity"
    for none).  ``passes/edge_conv.py`` makes it from a NeighbourGather whose edges only convolutions and a
    reduction over the last axis read, so that a target may compute each block of points through all the
    layers while its edges are in cache: ParticleNet's (N, 256, P, 16) edge tensors, 115 MB at 64 jets,
    are then never stored."""

    op_type = "EdgeConvChain"
    attr_defaults = {**NeighbourGather.attr_defaults, "layers": "[]", "pool": "mean", "keepdims": 0}

    @property
    def layer_ops(self) -> list[Op]:
        """Each layer's activation as an operator of its own (Identity where none)."""
        return [step_op({"op": spec["activation"], "version": spec["version"], "attrs": spec["attrs"],
                         "operand": -1}, self.model) for spec in json.loads(self.attrs["layers"])]

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        (edges,) = super().infer(inputs[:3])
        layers = inputs[3:]
        if len(layers) != 2 * len(self.layer_ops) or self.attrs["pool"] not in EDGE_POOLS:
            raise self.error(f"{len(self.layer_ops)} layers need {2 * len(self.layer_ops)} weight and bias inputs "
                             f"(got {len(layers)}), pool one of {', '.join(EDGE_POOLS)}")
        channels = edges.shape[1]
        for w, b in zip(layers[::2], layers[1::2]):
            if w is None or w.rank != 4 or w.shape[2:] != (1, 1) or not dims_equal(w.shape[1], channels):
                raise self.error(f"layer weights must be (F, {channels}, 1, 1), got {None if w is None else w.shape}")
            if b is not None and b.shape != (w.shape[0],):
                raise self.error(f"a layer's bias must be ({w.shape[0]},), got {b.shape}")
            channels = w.shape[0]
        n, _, q, _ = edges.shape
        return [TensorType(edges.dtype, (n, channels, q) + ((1,) if self.attrs["keepdims"] else ()))]

    def flops(self, inputs, outputs):
        """The layers' multiply-adds over every edge (the gather and the pooling are data movement)."""
        idx = inputs[1]
        edges = inputs[0].shape[0] * idx.shape[1] * idx.shape[2]
        return 2 * edges * sum(w.shape[0] * w.shape[1] for w in inputs[3::2])

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        h = super().evaluate(values[:3])[0]
        for act, w, b in zip(self.layer_ops, values[3::2], values[4::2]):
            h = np.einsum("fc,ncqk->nfqk", w[:, :, 0, 0], h) + (0 if b is None else b[None, :, None, None])
            h = act.evaluate([h.astype(values[0].dtype)])[0]
        y = EDGE_POOLS[self.attrs["pool"]](h, axis=-1, keepdims=bool(self.attrs["keepdims"]))
        return [y.astype(values[0].dtype)]


def step_op(step: dict[str, Any], model: str) -> Op:
    """The operator of one step, built like any node (schema defaults, checks)."""
    inputs = ["x"] if step["operand"] < 0 else ["a", "b"]
    node = make_node(step["op"], inputs, ["y"], step["attrs"], version=int(step["version"]), model=model)
    return lookup(node.op_type, node.domain, node.version)(node, model)


@register
class FusedElementwise(Op):
    """y = f_n(...f_2(f_1(x, c_1), c_2)...) element by element, in one loop."""

    op_type = "FusedElementwise"
    row_wise = True
    domain = INTERNAL_DOMAIN
    attr_defaults = {"steps": "[]"}

    @property
    def steps(self) -> list[dict[str, Any]]:
        return json.loads(self.attrs["steps"])

    @property
    def ops(self) -> list[Op]:
        return [step_op(s, self.model) for s in self.steps]

    @property
    def inplace_inputs(self) -> tuple[int, ...]:
        """Any input of the output's shape: element i of every input is read before element i is written."""
        return tuple(range(len(self.node.inputs)))

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        for k, t in enumerate(inputs[1:], 1):
            if t.dtype != x.dtype:
                raise self.error(f"operand {k} has type {t.dtype}, the chain {x.dtype}")
            if not (static_size(t.shape) == 1 or (len(t.shape) == len(x.shape) and all(map(dims_equal, t.shape, x.shape)))):
                raise self.error(f"operand {k} of shape {t.shape} is neither one value nor of shape {x.shape}")
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        v = values[0]
        for step, op in zip(self.steps, self.ops):
            k = step["operand"]
            if k < 0:
                v = op.evaluate([v])[0]
            else:
                operand = values[k]
                v = op.evaluate([operand, v] if step.get("operand_first") else [v, operand])[0]
        return [v]
