"""Keras attention: MultiHeadAttention and the EinsumDense projections it is made of.

MultiHeadAttention is written with the einsum equations the Keras layer
itself built (``_dot_product_equation``, ``_combine_equation`` and those of
its EinsumDense sublayers), so every ``attention_axes`` and input rank Keras
accepts maps onto ONNX ``Einsum`` unchanged:

    scores = softmax(einsum(dot, K, Q / sqrt(key_dim)) + mask bias)
    output = output_dense(einsum(combine, scores, V) [* gate(query)])

``use_causal_mask`` and ``sliding_window`` become an additive bias of -1e9
(Keras's own "large negative" for masked scores) on the disallowed (T, S)
positions; masks carried by the inputs or an explicit ``attention_mask`` are
refused.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ...errors import UnsupportedOperatorError
from .builder import GraphBuilder, Tensor, call_arguments, weight
from .core import activation
from .registry import CONVERTERS, converts

# Keras's _large_negative_number for float32 scores.
_MASKED = -1e9


def _einsum_dense(b: GraphBuilder, dense: Any, x: str) -> str:
    """``einsum(equation, x, kernel) + bias``, then the activation."""
    if getattr(dense, "quantization_mode", None):
        raise ValueError(f"quantized EinsumDense {dense.name!r} ({dense.quantization_mode}) is not supported")
    y = b.add("Einsum", [x, b.const(weight(dense.kernel), f"{dense.name}_kernel")], {"equation": dense.equation})
    if dense.bias is not None:
        y = b.add("Add", [y, b.const(weight(dense.bias), f"{dense.name}_bias")])
    shape = tuple(getattr(dense, "full_output_shape", None) or ())
    return activation(b, Tensor(y, shape), dense.activation)


@converts("EinsumDense")
def _einsum_dense_layer(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return _einsum_dense(b, layer, inputs[0].name)


@converts("MultiHeadAttention")
def _multi_head_attention(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> Any:
    args = call_arguments(layer, call)
    _refuse_masks(b, layer, call, args)
    names = {id(t): i for t, i in zip(call.input_tensors, inputs)}
    query, value = names[id(args["query"])], names[id(args["value"])]
    key = names[id(args["key"])] if args.get("key") is not None else value
    q = _einsum_dense(b, layer._query_dense, query.name)
    k = _einsum_dense(b, layer._key_dense, key.name)
    v = _einsum_dense(b, layer._value_dense, value.name)
    q = b.add("Mul", [q, b.const(layer._inverse_sqrt_key_dim, "scale")])
    scores = b.add("Einsum", [k, q], {"equation": layer._dot_product_equation})
    bias = _mask_bias(b, layer, query, value, bool(args.get("use_causal_mask")), scores)
    if bias is not None:
        scores = b.add("Add", [scores, bias])
    rank = len(layer._dot_product_equation.split("->")[1])
    scores = CONVERTERS["Softmax"](b, layer._softmax, [Tensor(scores, (None,) * rank)], None)
    y = b.add("Einsum", [scores, v], {"equation": layer._combine_equation})
    if layer._use_gate:
        y = b.add("Mul", [y, _einsum_dense(b, layer._gate_dense, query.name)])
    y = _einsum_dense(b, layer._output_dense, y)
    return [y, scores] if args.get("return_attention_scores") else y


def _refuse_masks(b: GraphBuilder, layer: Any, call: Any, args: dict) -> None:
    """Masks from the inputs (Keras drops them from the query/value tensors once used) or given explicitly."""
    explicit = [k for k in ("query_mask", "value_mask", "key_mask", "attention_mask") if args.get(k) is not None]
    carried = any(getattr(t, "_keras_mask", None) is not None for t in (*call.input_tensors, *call.output_tensors))
    if explicit or carried:
        what = ", ".join(explicit) or "a mask from Masking or Embedding(mask_zero=True)"
        raise UnsupportedOperatorError(b.model_name, {f"keras.layers.MultiHeadAttention with {what}": [layer.name]})


def _mask_bias(b: GraphBuilder, layer: Any, query: Tensor, value: Tensor, causal: bool, scores: str) -> Optional[str]:
    """(T, S) additive bias for the causal and sliding-window masks (Keras: row i sees columns j <= i, |i - j| < w);
    a constant for fixed sequence lengths, built at run time for a causal mask over open ones."""
    window = getattr(layer, "_sliding_window", None)
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
