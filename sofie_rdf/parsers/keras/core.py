"""Core Keras layers: Dense, activations, reshaping, merging, inference no-ops."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .builder import GraphBuilder, Tensor, axis_of, untransposed, weight
from .qkeras import Quantizer
from .registry import converts

# ---- activations ----------------------------------------------------------------------------------------------


def _unary(op_type: str, **attrs: Any) -> Callable[[GraphBuilder, str], str]:
    return lambda b, x: b.add(op_type, [x], attrs)


def _clip(low: float, high: float) -> Callable[[GraphBuilder, str], str]:
    return lambda b, x: b.add("Clip", [x, b.const(low, "min"), b.const(high, "max")])


def _silu(b: GraphBuilder, x: str) -> str:
    return b.add("Mul", [x, b.add("Sigmoid", [x])])


def _glu(b: GraphBuilder, x: str) -> str:
    first, second = b.add("Split", [x], {"axis": -1, "num_outputs": 2}, outputs=2)
    return b.add("Mul", [first, b.add("Sigmoid", [second])])


def _tanh_shrink(b: GraphBuilder, x: str) -> str:
    return b.add("Sub", [x, b.add("Tanh", [x])])


def _log_sigmoid(b: GraphBuilder, x: str) -> str:
    return b.add("Neg", [b.add("Softplus", [b.add("Neg", [x])])])


def _squareplus(b: GraphBuilder, x: str, shift: float = 4.0) -> str:
    """``(x + sqrt(x^2 + b)) / 2`` with Keras's default b = 4."""
    root = b.add("Sqrt", [b.add("Add", [b.add("Mul", [x, x]), b.const(shift, "b")])])
    return b.add("Mul", [b.add("Add", [x, root]), b.const(0.5, "half")])


def _sparse_plus(b: GraphBuilder, x: str) -> str:
    """0 below -1, ``(x + 1)^2 / 4`` between -1 and 1, x above: the clipped parabola plus ``relu(x - 1)``."""
    t = b.add("Add", [_clip(-1.0, 1.0)(b, x), b.const(1.0, "one")])
    parabola = b.add("Mul", [b.add("Mul", [t, t]), b.const(0.25, "quarter")])
    return b.add("Add", [parabola, b.add("Relu", [b.add("Sub", [x, b.const(1.0, "one")])])])


def _sparsemax(b: GraphBuilder, x: str, size: int) -> str:
    """Sparsemax over the last axis (Martins & Astudillo 2016), from a sort and a cumulative sum."""
    k = b.ints([size], "k")
    z, _ = b.add("TopK", [x, k], {"axis": -1, "largest": 1, "sorted": 1}, outputs=2)
    cumulative = b.add("CumSum", [z, b.const(np.asarray(-1, dtype=np.int64), "axis")])
    ranks = b.const(np.arange(1, size + 1, dtype=np.float32), "ranks")
    bound = b.add("Add", [b.add("Mul", [ranks, z]), b.const(1.0, "one")])
    support = b.add("Cast", [b.add("Greater", [bound, cumulative])], {"to": 1})
    axes = b.ints([-1], "axes")
    count = b.add("ReduceSum", [support, axes], {"keepdims": 1})
    total = b.add("ReduceSum", [b.add("Mul", [z, support]), axes], {"keepdims": 1})
    tau = b.add("Div", [b.add("Sub", [total, b.const(1.0, "one")]), count])
    return b.add("Relu", [b.add("Sub", [x, tau])])


ACTIVATIONS: dict[str, Callable[[GraphBuilder, str], str]] = {
    "relu": _unary("Relu"),
    "relu6": _clip(0.0, 6.0),
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "softmax": _unary("Softmax", axis=-1),
    "log_softmax": _unary("LogSoftmax", axis=-1),
    "softplus": _unary("Softplus"),
    "softsign": _unary("Softsign"),
    "selu": _unary("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805),
    "elu": _unary("Elu", alpha=1.0),
    "celu": _unary("Celu", alpha=1.0),
    "exponential": _unary("Exp"),
    "leaky_relu": _unary("LeakyRelu", alpha=0.2),
    "silu": _silu,
    "swish": _silu,
    "gelu": _unary("Gelu", approximate="none"),
    "hard_sigmoid": _unary("HardSigmoid", alpha=1.0 / 6.0, beta=0.5),
    "hard_sigmoid_keras2": _unary("HardSigmoid", alpha=0.2, beta=0.5),  # legacy.hard_sigmoid_keras2
    "hard_silu": _unary("HardSwish"),
    "hard_swish": _unary("HardSwish"),
    "mish": _unary("Mish"),
    "glu": _glu,
    "hard_tanh": _clip(-1.0, 1.0),
    "hard_shrink": _unary("Shrink", lambd=0.5, bias=0.0),
    "soft_shrink": _unary("Shrink", lambd=0.5, bias=0.5),
    "tanh_shrink": _tanh_shrink,
    "log_sigmoid": _log_sigmoid,
    "squareplus": _squareplus,
    "sparse_plus": _sparse_plus,
    "sparse_sigmoid": _unary("HardSigmoid", alpha=0.5, beta=0.5),
}


# Activations along the last (channel) axis; every other one is element-wise.
AXIS_ACTIVATIONS = frozenset({"softmax", "log_softmax", "glu", "sparsemax"})


def activation(b: GraphBuilder, x: Tensor, fn: Any) -> str:
    """Apply a Keras activation (function or name) to ``x``.

    Element-wise ones run on the tensor a layout transpose made ``x`` from
    (see :func:`.builder.untransposed`), so ``Conv -> Activation -> Pool``
    stays channels-first without a transpose pair around the activation.
    """
    if isinstance(fn, Quantizer):  # a QKeras quantizer (read from a QKeras layer's configuration)
        return elementwise(b, x, lambda source: fn.to_graph(b, source))
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
    if name in ("linear", None):
        return x.name
    if name == "sparsemax":
        return _sparsemax(b, x.name, _static_last(x, name))
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not supported (known: {', '.join(sorted(ACTIVATIONS))}, sparsemax)")
    if name in AXIS_ACTIVATIONS:
        return ACTIVATIONS[name](b, x.name)
    return elementwise(b, x, lambda source: ACTIVATIONS[name](b, source))


def elementwise(b: GraphBuilder, x: Tensor, apply: Callable[[str], str]) -> str:
    """``apply`` (an element-wise computation) in whatever layout ``x``'s source has, then back to Keras's."""
    source, perm = untransposed(b, x.name, x.rank)
    return b.transpose(apply(source), perm)


def _static_last(x: Tensor, what: str) -> int:
    if x.shape[-1] is None:
        raise ValueError(f"{what} needs a fixed last dimension, got shape {x.shape}")
    return int(x.shape[-1])


@converts("Activation")
def _activation_layer(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return activation(b, inputs[0], layer.activation)


@converts("ReLU")
def _relu(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """``max_value`` above the cap, x from ``threshold`` up, ``negative_slope * (x - threshold)`` below."""
    return elementwise(b, inputs[0], lambda x: _relu_of(b, x, layer))


def _relu_of(b: GraphBuilder, x: str, layer: Any) -> str:
    cap, slope, threshold = layer.max_value, float(layer.negative_slope), float(layer.threshold)
    if threshold == 0.0:
        y = b.add("LeakyRelu", [x], {"alpha": slope}) if slope else b.add("Relu", [x])
    else:
        below = b.add("Mul", [b.add("Sub", [x, b.const(threshold, "threshold")]), b.const(slope, "slope")])
        y = b.add("Where", [b.add("GreaterOrEqual", [x, b.const(threshold, "threshold")]), x, below])
    if cap is not None:
        y = b.add("Min", [y, b.const(float(cap), "max_value")])
    return y


@converts("LeakyReLU")
def _leaky_relu(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return elementwise(b, inputs[0], lambda x: b.add("LeakyRelu", [x], {"alpha": float(layer.negative_slope)}))


@converts("ELU")
def _elu(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return elementwise(b, inputs[0], lambda x: b.add("Elu", [x], {"alpha": float(layer.alpha)}))


@converts("PReLU")
def _prelu(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return b.add("PRelu", [inputs[0].name, b.const(weight(layer.alpha), "alpha")])


# Keras's _large_negative_number for float32: what a masked Softmax puts in place of masked inputs.
MASKED_SCORE = -1e9


@converts("Softmax", masks=True)
def _softmax(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Over one axis or several; with a mask (broadcast as numpy does), masked inputs count as -1e9 and
    masked outputs are 0, as in Keras."""
    x = inputs[0]
    name = x.name if x.mask is None else b.add("Where", [x.mask, x.name, b.const(MASKED_SCORE, "masked")])
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    if len(axes) == 1:
        y = b.add("Softmax", [name], {"axis": int(axes[0])})
    else:
        axes_input = b.ints([axis_of(a, x.rank) for a in axes], "axes")
        shifted = b.add("Sub", [name, b.add("ReduceMax", [name, axes_input], {"keepdims": 1})])
        e = b.add("Exp", [shifted])
        y = b.add("Div", [e, b.add("ReduceSum", [e, axes_input], {"keepdims": 1})])
    return y if x.mask is None else b.add("Where", [x.mask, y, b.const(0.0, "zero")])


@converts("Masking")
def _masking(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Steps whose features all equal ``mask_value`` become 0 (the mask itself is the ``any(not_equal)``
    operation Keras records, converted where a layer reads it)."""
    x, dtype = inputs[0], str(call.input_tensors[0].dtype)
    differs = b.add("Not", [b.add("Equal", [x.name, b.const(np.asarray(layer.mask_value, dtype=dtype), "mask_value")])])
    kept = b.add("ReduceMax", [b.add("Cast", [differs], {"to": 1}), b.ints([-1], "axes")], {"keepdims": 1})
    return b.add("Where", [b.add("Cast", [kept], {"to": 9}), x.name, b.const(np.zeros((), dtype=dtype), "zero")])


@converts("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
          "AlphaDropout", "ActivityRegularization")
def _inference_identity(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Regularization layers do nothing at inference."""
    return inputs[0].name


# ---- Dense ------------------------------------------------------------------------------------------------------


@converts("Dense")
def _dense(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """``Gemm`` on 2-D inputs; ``MatMul`` (+ ``Add``) on the last axis of higher ranks."""
    if getattr(layer, "quantization_mode", None):
        raise ValueError(f"quantized Dense ({layer.quantization_mode}) is not supported")
    x = inputs[0]
    kernel = b.const(weight(layer.kernel), "kernel")
    bias = b.const(weight(layer.bias), "bias") if layer.use_bias else None
    if x.rank == 2:
        y = b.add("Gemm", [x.name, kernel] + ([bias] if bias else []))
    else:
        y = b.add("MatMul", [x.name, kernel])
        if bias:
            y = b.add("Add", [y, bias])
    return activation(b, Tensor(y, x.shape[:-1] + (layer.units,)), layer.activation)


# ---- shapes --------------------------------------------------------------------------------------------------


@converts("Flatten")
def _flatten(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return b.reshape(inputs[0].name, [0, -1])


@converts("Reshape")
def _reshape(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return b.reshape(inputs[0].name, [0, *layer.target_shape])


@converts("Permute")
def _permute(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return b.transpose(inputs[0].name, [0, *layer.dims])


@converts("RepeatVector")
def _repeat_vector(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """(N, F) -> (N, n, F)."""
    expanded = b.add("Unsqueeze", [inputs[0].name, b.ints([1], "axes")])
    return b.add("Tile", [expanded, b.ints([1, layer.n, 1], "repeats")])


# ---- merging --------------------------------------------------------------------------------------------------


def _nary(op_type: str) -> Callable[[GraphBuilder, Any, list[Tensor], Any], str]:
    def convert(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
        return b.add(op_type, [t.name for t in inputs])
    return convert


for _keras_name, _op in (("Add", "Sum"), ("Average", "Mean"), ("Maximum", "Max"), ("Minimum", "Min")):
    converts(_keras_name)(_nary(_op))


@converts("Subtract")
def _subtract(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return b.add("Sub", [inputs[0].name, inputs[1].name])


@converts("Multiply")
def _multiply(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    y = inputs[0].name
    for t in inputs[1:]:
        y = b.add("Mul", [y, t.name])
    return y


@converts("Concatenate")
def _concatenate(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    return b.add("Concat", [t.name for t in inputs], {"axis": axis_of(layer.axis, inputs[0].rank)})


@converts("Dot")
def _dot(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Keras ``batch_dot`` as an Einsum; 2-D inputs give (N, 1) as in Keras."""
    x, y = inputs
    axes = layer.axes if isinstance(layer.axes, (list, tuple)) else (layer.axes, layer.axes)
    ax, ay = axis_of(axes[0], x.rank), axis_of(axes[1], y.rank)
    names = [_l2_normalize(b, t.name, a) if layer.normalize else t.name for t, a in ((x, ax), (y, ay))]
    letters = iter("bcdefghijklmnopqrstuvwxyz")
    sx = ["a"] + [next(letters) for _ in range(x.rank - 1)]
    sy = ["a"] + [next(letters) for _ in range(y.rank - 1)]
    sy[ay] = sx[ax]
    out = ["a"] + [s for i, s in enumerate(sx) if i not in (0, ax)] + [s for i, s in enumerate(sy) if i not in (0, ay)]
    z = b.add("Einsum", names, {"equation": f"{''.join(sx)},{''.join(sy)}->{''.join(out)}"})
    return b.add("Unsqueeze", [z, b.ints([1], "axes")]) if len(out) == 1 else z


def _l2_normalize(b: GraphBuilder, x: str, axis: int) -> str:
    """Keras ``l2_normalize``: ``x / sqrt(max(sum(x^2), 1e-12))``."""
    squares = b.add("ReduceSum", [b.add("Mul", [x, x]), b.ints([axis], "axes")], {"keepdims": 1})
    return b.add("Div", [x, b.add("Sqrt", [b.add("Max", [squares, b.const(1e-12, "epsilon")])])])
