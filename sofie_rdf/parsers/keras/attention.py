"""Keras attention: MultiHeadAttention and the EinsumDense projections it is made of.

MultiHeadAttention is written with the einsum equations the Keras layer
itself built (``_dot_product_equation``, ``_combine_equation`` and those of
its EinsumDense sublayers), so every ``attention_axes`` and input rank Keras
accepts maps onto ONNX ``Einsum`` unchanged:

    scores = softmax(einsum(dot, K, Q / sqrt(key_dim)) + mask bias)
    output = output_dense(einsum(combine, scores, V) [* gate(query)])

``use_causal_mask`` and ``sliding_window`` alone become an additive bias of
-1e9 (Keras's own "large negative" for masked scores) on the disallowed (T, S)
positions.  With masks, as Keras's ``_compute_attention_mask`` computes them:
the query's mask (carried from ``Masking`` or ``Embedding(mask_zero=True)``,
or ``query_mask=``) as (B, T, 1), the value's and the key's as (B, 1, S), the
causal and window masks and ``attention_mask`` (B, T, S), all and-ed.  Keras
then takes one of two roads, and so do we: where it calls the backend's
``dot_product_attention`` (inputs of rank 3, no dropout, no scores returned)
the masked scores are -0.7 x 3.39e38 (torch's backend), so a query position
that sees nothing averages all the values; elsewhere its masked ``Softmax``
sets them to -1e9 and the weights after it to 0, so such a position gets
zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .builder import GraphBuilder, Tensor, call_arguments, weight
from .core import activation
from .registry import CONVERTERS, converts

# Keras's _large_negative_number for float32 scores, and the torch backend's _get_large_negative, which its
# dot_product_attention (torch's scaled_dot_product_attention) adds to masked scores.
_MASKED = -1e9
_SDPA_MASKED = float(np.float32(3.38953e38 * -0.7))


def _einsum_dense(b: GraphBuilder, dense: Any, x: str, repeat: Optional[tuple[str, int]] = None) -> str:
    """``einsum(equation, x, kernel) + bias``, then the activation.

    ``repeat = (letter, n)`` repeats each slice of the kernel and bias along
    the axis ``letter`` names ``n`` times (``np.repeat``): the projection then
    computes what Keras gets by repeating its output along that axis.
    """
    if getattr(dense, "quantization_mode", None):
        raise ValueError(f"quantized EinsumDense {dense.name!r} ({dense.quantization_mode}) is not supported")
    kernel = weight(dense.kernel)
    bias = None if dense.bias is None else weight(dense.bias)
    if repeat is not None:
        letter, times = repeat
        kernel = np.repeat(kernel, times, axis=dense.equation.split("->")[0].split(",")[1].index(letter))
        bias = None if bias is None else np.repeat(bias, times, axis=dense.bias_axes.index(letter))
    y = b.add("Einsum", [x, b.const(kernel, f"{dense.name}_kernel")], {"equation": dense.equation})
    if bias is not None:
        y = b.add("Add", [y, b.const(bias, f"{dense.name}_bias")])
    shape = tuple(getattr(dense, "full_output_shape", None) or ())
    return activation(b, Tensor(y, shape), dense.activation)


@converts("EinsumDense")
def _einsum_dense_layer(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return _einsum_dense(b, layer, inputs[0].name)


def _query_key_value(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any,
                     given: tuple[str, ...]) -> tuple[dict, list[Tensor]]:
    """The call's arguments, and its query, key and value tensors (the key is the value where not given); in
    ``args["masks"]`` the masks the layer reads, the ``given`` ones by hand in place of those carried."""
    args = call_arguments(layer, call)
    names = {id(t): i for t, i in zip(call.input_tensors, inputs)}
    query, value = names[id(args["query"])], names[id(args["value"])]
    key = names[id(args["key"])] if args.get("key") is not None else value
    # Each mask's name and rank: those carried by the inputs, replaced by any given by hand.
    carried = {"query_mask": query, "value_mask": value, "key_mask": key if args.get("key") is not None else None}
    masks = {k: (t.mask, t.rank - 1) for k, t in carried.items() if t is not None and t.mask is not None}
    for k in given:
        if args.get(k) is not None:
            masks[k] = (names[id(args[k])].name, len(args[k].shape))
    args["masks"] = masks
    return args, [query, key, value]


@converts("MultiHeadAttention", masks=True)
def _multi_head_attention(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> Any:
    # MultiHeadAttention.call reads the query's carried mask, never a query_mask= given.
    args, (query, key, value) = _query_key_value(b, layer, inputs, call, ("value_mask", "key_mask", "attention_mask"))
    q = _einsum_dense(b, layer._query_dense, query.name)
    k = _einsum_dense(b, layer._key_dense, key.name)
    v = _einsum_dense(b, layer._value_dense, value.name)
    options = _HeadOptions(layer._inverse_sqrt_key_dim, getattr(layer, "_sliding_window", None), layer._use_gate, True)
    return _heads(b, layer, args, (query, value), (q, k, v), options)


@converts("GroupedQueryAttention", masks=True)
def _grouped_query_attention(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> Any:
    """MultiHeadAttention whose key and value heads Keras repeats to the number of query heads: repeated here in
    the projection weights."""
    args, (query, key, value) = _query_key_value(b, layer, inputs, call,
                                                 ("query_mask", "value_mask", "key_mask", "attention_mask"))
    repeat = ("v", int(layer.num_repeats))
    q = _einsum_dense(b, layer._query_dense, query.name)
    k = _einsum_dense(b, layer._key_dense, key.name, repeat)
    v = _einsum_dense(b, layer._value_dense, value.name, repeat)
    options = _HeadOptions(layer._inverse_sqrt_head_dim, layer.sliding_window, layer.use_gate, False)
    return _heads(b, layer, args, (query, value), (q, k, v), options)


@dataclass(frozen=True)
class _HeadOptions:
    """What differs between MultiHeadAttention and GroupedQueryAttention once the heads are projected."""

    scale: float  # 1 / sqrt(key or head dim), applied to the projected query
    window: Optional[int]  # sliding_window
    gated: bool  # use_gate
    key_first: bool  # the dot-product equation takes the key first (MultiHeadAttention) or the query


def _heads(b: GraphBuilder, layer: Any, args: dict, sources: tuple[Tensor, Tensor], projected: tuple[str, str, str],
           options: _HeadOptions) -> Any:
    """Scores, softmax, the weighted values, the gate and the output projection of a multi-head attention."""
    (query, value), (q, k, v) = sources, projected
    q = b.add("Mul", [q, b.const(options.scale, "scale")])
    scores = b.add("Einsum", [k, q] if options.key_first else [q, k], {"equation": layer._dot_product_equation})
    rank = len(layer._dot_product_equation.split("->")[1])
    causal = bool(args.get("use_causal_mask"))
    allowed, fused = None, _fused_attention(layer, args, query)
    if args["masks"]:
        allowed = _expanded(b, layer, _allowed(b, args["masks"], query, value, causal, options.window, scores), rank)
        fill = b.const(np.float32(_SDPA_MASKED if fused else _MASKED), "masked")
        scores = b.add("Where", [allowed, scores, fill])
    else:
        bias = _mask_bias(b, query, value, causal, options.window, scores)
        if bias is not None:
            scores = b.add("Add", [scores, bias])
    scores = CONVERTERS["Softmax"](b, layer._softmax, [Tensor(scores, (None,) * rank)], None)
    if allowed is not None and not fused:
        scores = b.add("Where", [allowed, scores, b.const(np.float32(0.0), "zero")])
    y = b.add("Einsum", [scores, v], {"equation": layer._combine_equation})
    if options.gated:
        y = b.add("Mul", [y, _einsum_dense(b, layer._gate_dense, query.name)])
    y = _einsum_dense(b, layer._output_dense, y)
    return [y, scores] if args.get("return_attention_scores") else y


def _fused_attention(layer: Any, args: dict, query: Tensor) -> bool:
    """Whether Keras computes this call with the backend's dot_product_attention (``_compute_attention``)."""
    dropout = getattr(layer, "_dropout", getattr(layer, "dropout", 0.0))
    return not (dropout > 0 or args.get("return_attention_scores") or query.rank != 3)


def _allowed(b: GraphBuilder, masks: dict[str, tuple[str, int]], query: Tensor, value: Tensor, causal: bool,
             window: Optional[int], scores: str) -> tuple[str, int]:
    """The booleans of the positions a query attends to, (B, T, S) (Keras's ``_compute_attention_mask``), and
    their rank.  Keras casts the masks to booleans: nonzero is kept."""
    parts = []
    if "query_mask" in masks:
        name, rank = masks["query_mask"]
        parts.append((b.add("Unsqueeze", [_boolean(b, name), b.ints([-1], "axes")]), rank + 1))
    for key in ("value_mask", "key_mask"):
        if key in masks:
            name, rank = masks[key]
            parts.append((b.add("Unsqueeze", [_boolean(b, name), b.ints([-2], "axes")]), rank + 1))
    if causal or window is not None:
        parts.append((_positions_allowed(b, query, value, causal, window, scores), 2))
    if "attention_mask" in masks:
        name, rank = masks["attention_mask"]
        parts.append((_boolean(b, name), rank))
    allowed, rank = parts[0]
    for part, part_rank in parts[1:]:
        allowed, rank = b.add("And", [allowed, part]), max(rank, part_rank)
    return allowed, rank


def _boolean(b: GraphBuilder, mask: str) -> str:
    return b.add("Cast", [mask], {"to": 9})


def _expanded(b: GraphBuilder, layer: Any, allowed: tuple[str, int], rank: int) -> str:
    """The mask with the scores' rank: axes inserted before the attention axes, at the heads (``_masked_softmax``)."""
    name, mask_rank = allowed
    axis = -len(getattr(layer, "_attention_axes", None) or (1,)) * 2 - 1
    for _ in range(rank - mask_rank):
        name = b.add("Unsqueeze", [name, b.ints([axis], "axes")])
    return name


def _positions_allowed(b: GraphBuilder, query: Tensor, value: Tensor, causal: bool, window: Optional[int],
                       scores: str) -> str:
    """(T, S) booleans of the causal and sliding-window masks."""
    bias = _mask_bias(b, query, value, causal, window, scores)
    return b.add("Equal", [bias, b.const(np.float32(0.0), "zero")])


def _mask_bias(b: GraphBuilder, query: Tensor, value: Tensor, causal: bool, window: Optional[int],
               scores: str) -> Optional[str]:
    """(T, S) additive bias for the causal and sliding-window masks (Keras: row i sees columns j <= i, |i - j| < w);
    a constant for fixed sequence lengths, built at run time for a causal mask over open ones."""
    if not causal and window is None:
        return None
    if query.rank != 3 or value.rank != 3:
        raise ValueError("use_causal_mask and sliding_window are supported for (batch, sequence, features) inputs only")
    steps, source = query.shape[1], value.shape[1]
    if steps is None or source is None:
        if window is not None:
            raise ValueError("sliding_window needs fixed sequence lengths")
        return _runtime_causal_bias(b, scores)
    i, j = np.arange(steps)[:, None], np.arange(source)[None, :]
    allowed = np.ones((steps, source), dtype=bool)
    if causal:
        allowed &= i >= j
    if window is not None:
        allowed &= np.abs(i - j) < window
    return b.const(np.where(allowed, 0.0, _MASKED).astype(np.float32), "mask_bias")


def _runtime_causal_bias(b: GraphBuilder, scores: str) -> str:
    """The masked value above the diagonal of the scores' last two dims: a full matrix minus its lower triangle."""
    masked = b.add("ConstantOfShape", [b.add("Shape", [scores], {"start": -2})],
                   {"value": np.asarray([_MASKED], dtype=np.float32)})
    return b.add("Sub", [masked, b.add("Trilu", [masked], {"upper": 0})])


# ---- Attention and AdditiveAttention --------------------------------------------------------------------------
#
# Both score a query (N, Tq, dim) against a key (N, Tv, dim) (the value where no key is given), then
#     weights = softmax(where(mask, scores, scores - 1e9)),  output = weights @ value
# with mask the value mask and/or the causal mask; positions where the query is masked give 0.


def _dot_scores(b: GraphBuilder, layer: Any, q: str, k: str) -> str:
    """``score_mode="dot"``: ``q @ k^T`` (times the learned scale); ``"concat"``: ``w * sum(tanh(s * (q + k)))``."""
    if layer.score_mode == "dot":
        scores = b.add("MatMul", [q, b.transpose(k, [0, 2, 1])])
        return scores if layer.scale is None else b.add("Mul", [scores, b.const(weight(layer.scale), "scale")])
    pairs = _pairwise_sum(b, q, k)
    if layer.scale is not None:
        pairs = b.add("Mul", [b.const(weight(layer.scale), "scale"), pairs])
    total = b.add("ReduceSum", [b.add("Tanh", [pairs]), b.ints([-1], "axes")], {"keepdims": 0})
    return b.add("Mul", [b.const(weight(layer.concat_score_weight), "concat_score_weight"), total])


def _additive_scores(b: GraphBuilder, layer: Any, q: str, k: str) -> str:
    """``sum(scale * tanh(q + k))`` over the feature axis (scale 1 without ``use_scale``)."""
    terms = b.add("Tanh", [_pairwise_sum(b, q, k)])
    if layer.use_scale:
        terms = b.add("Mul", [b.const(weight(layer.scale), "scale"), terms])
    return b.add("ReduceSum", [terms, b.ints([-1], "axes")], {"keepdims": 0})


def _pairwise_sum(b: GraphBuilder, q: str, k: str) -> str:
    """(N, Tq, 1, dim) + (N, 1, Tv, dim)."""
    return b.add("Add", [b.add("Unsqueeze", [q, b.ints([-2], "axes")]), b.add("Unsqueeze", [k, b.ints([-3], "axes")])])


def _causal(b: GraphBuilder, scores: str) -> str:
    """(Tq, Tv) booleans, true where the query position is at or after the key position."""
    ones = b.add("ConstantOfShape", [b.add("Shape", [scores], {"start": -2})], {"value": np.ones(1, dtype=np.float32)})
    return b.add("Cast", [b.add("Trilu", [ones], {"upper": 0})], {"to": 9})


def _attend(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any, score: Any) -> Any:
    args = call_arguments(layer, call)
    query, value = inputs[0], inputs[1]
    key = inputs[2] if len(args["inputs"]) > 2 else value
    scores = score(b, layer, query.name, key.name)
    allowed = None if value.mask is None else b.add("Unsqueeze", [value.mask, b.ints([-2], "axes")])
    if args.get("use_causal_mask"):
        causal = _causal(b, scores)
        allowed = causal if allowed is None else b.add("And", [allowed, causal])
    if allowed is not None:
        lowered = b.add("Sub", [scores, b.const(-_MASKED, "max_value")])
        scores = b.add("Where", [allowed, scores, lowered])
    weights = b.add("Softmax", [scores], {"axis": -1})
    y = b.add("MatMul", [weights, value.name])
    if query.mask is not None:
        kept = b.add("Unsqueeze", [query.mask, b.ints([-1], "axes")])
        y = b.add("Where", [kept, y, b.const(0.0, "zero")])
    return [y, weights] if args.get("return_attention_scores") else y


@converts("Attention", masks=True)
def _attention(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> Any:
    return _attend(b, layer, inputs, call, _dot_scores)


@converts("AdditiveAttention", masks=True)
def _additive_attention(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> Any:
    return _attend(b, layer, inputs, call, _additive_scores)
