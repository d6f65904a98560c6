"""QKeras layers read from their Keras 2 configurations (QKeras needs TensorFlow, which is never imported).

QKeras models are tf.keras 2 models saved as ``.h5`` (or ``.json`` + weights): :mod:`.legacy` reads them, and
builds each QKeras layer as the Keras 3 layer it quantizes (``QDense`` as ``Dense``, ``QConv2D`` as ``Conv2D``,
``QActivation`` as ``Activation``, ...) with its quantizers from this module:

* weight quantizers (``kernel_quantizer``, ``bias_quantizer``, ``depthwise_quantizer``) are applied to the
  saved float weights when they are assigned, in float32 as QKeras computes them, so the model holds the
  quantized values;
* activation quantizers (a ``QActivation``'s, or a layer's ``activation``) become QONNX ``Quant`` nodes
  (``ops/qonnx.py``), as qonnx's own QKeras converter writes them: quantized_bits(bits, integer, symmetric,
  keep_negative, alpha) is a ``Quant`` of scale 2^(integer - bits + keep_negative) (times a numeric alpha),
  quantized_relu(bits, integer) an unsigned one of scale 2^(integer - bits).

A quantizer's value is the quantized value it means, the one hls4ml and qonnx read it as.  QKeras's forward
pass computes it as ``x + (xq - x)`` (the straight-through estimator) in float32, which rounds to xq except far
outside the quantizer's range, where the difference loses bits.

Quantizers are given as their serialized ``{"class_name", "config"}`` or as the string QKeras also accepts
(``"quantized_bits(8,0,alpha=1)"``).  Those whose value depends on the batch (``alpha="auto"`` on an
activation), are random (stochastic rounding, ``bernoulli``, ``stochastic_*``) or are not read here
(``binary``, ``ternary``, ``quantized_po2``, ``quantized_tanh``, ...; quantized_relu's negative_slope and
use_sigmoid) are refused, naming the quantizer.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ...ops.qonnx import QONNX_DOMAINS
from .builder import GraphBuilder

# QKeras layer class -> (the Keras 3 class it quantizes, config key of each weight quantizer -> Keras 3 weight)
LAYERS = {
    "QDense": ("Dense", {"kernel_quantizer": "kernel", "bias_quantizer": "bias"}),
    "QConv1D": ("Conv1D", {"kernel_quantizer": "kernel", "bias_quantizer": "bias"}),
    "QConv2D": ("Conv2D", {"kernel_quantizer": "kernel", "bias_quantizer": "bias"}),
    "QDepthwiseConv2D": ("DepthwiseConv2D", {"depthwise_quantizer": "kernel", "bias_quantizer": "bias"}),
    "QActivation": ("Activation", {}),
}
# Keys of the QKeras layers that Keras 3's classes do not take (deprecated ranges, QKeras-only settings).
_DROPPED = {"kernel_range", "bias_range", "depthwise_range"}
# The quantizers of a layer's kernel QKeras turns from alpha=None to "auto_po2" (_set_trainable_parameter).
_TRAINABLE = ("kernel_quantizer", "depthwise_quantizer")
# How QKeras's quantizers' names begin (an activation named so is a quantizer, not a Keras activation).
QUANTIZER_NAMES = ("quantized_", "binary", "ternary", "bernoulli", "stochastic_")
# Each quantizer's constructor arguments in order (what a positional argument of the string form is).
PARAMETERS = {
    "quantized_bits": ("bits", "integer", "symmetric", "keep_negative", "alpha", "use_stochastic_rounding",
                       "scale_axis", "qnoise_factor", "var_name", "use_ste", "use_variables",
                       "elements_per_scale", "min_po2_exponent", "max_po2_exponent", "post_training_scale"),
    "quantized_relu": ("bits", "integer", "use_sigmoid", "negative_slope", "use_stochastic_rounding",
                       "relu_upper_bound", "is_quantized_clip", "qnoise_factor", "var_name", "use_ste",
                       "use_variables", "enable_fast_inference"),
}
DEFAULTS = {
    "quantized_bits": {"bits": 8, "integer": 0, "symmetric": 0, "keep_negative": True, "alpha": None,
                       "use_stochastic_rounding": False, "scale_axis": None, "elements_per_scale": None,
                       "min_po2_exponent": None, "max_po2_exponent": None, "post_training_scale": None},
    "quantized_relu": {"bits": 8, "integer": 0, "use_sigmoid": 0, "negative_slope": 0.0,
                       "use_stochastic_rounding": False},
}
EPSILON = np.float32(1e-7)  # Keras's backend epsilon, in QKeras's scale arithmetic
F32 = np.float32


@dataclass
class Quantizer:
    """One QKeras quantizer (its class name and its complete configuration)."""

    name: str
    config: dict

    @property
    def __name__(self) -> str:  # what the Keras front end and Keras name an activation by
        return self.name

    def __call__(self, x: Any) -> Any:
        """The quantizer on a Keras tensor (Keras builds the model by calling its layers)."""
        from keras import ops

        scale, low, high, alpha = self.grid()
        return ops.clip(ops.round(x / scale), low, high) * (scale * alpha)

    def grid(self) -> tuple[float, int, int, float]:
        """(step, lowest integer, highest integer, alpha) of an activation quantizer: values
        ``alpha * step * clip(round(x / step), lowest, highest)``."""
        c = self.config
        if self.name == "quantized_relu":
            for key in ("use_sigmoid", "negative_slope"):
                if c[key]:
                    raise ValueError(f"{self}: {key}={c[key]!r} is not supported (only the plain quantized relu)")
            return 2.0 ** (c["integer"] - c["bits"]), 0, 2 ** c["bits"] - 1, 1.0
        if isinstance(c["alpha"], str):
            raise ValueError(f"{self}: alpha={c['alpha']!r} on an activation depends on each batch's values; "
                             "only a fixed alpha (None or a number) is supported")
        unsigned = c["bits"] - int(c["keep_negative"])
        if unsigned <= 0:
            raise ValueError(f"{self}: a 1-bit quantized_bits (a sign) is not supported")
        low = -(2**unsigned) + int(c["symmetric"]) if c["keep_negative"] else 0
        return 2.0 ** (c["integer"] - unsigned), low, 2**unsigned - 1, 1.0 if c["alpha"] is None else float(c["alpha"])

    def to_graph(self, b: GraphBuilder, x: str) -> str:
        """The quantizer as a QONNX Quant node (and the product by a numeric alpha)."""
        step, low, high, alpha = self.grid()
        bits = int(self.config["bits"])
        signed = low < 0
        y = b.add("Quant", [x, b.const(step, "scale"), b.const(0.0, "zeropt"), b.const(float(bits), "bitwidth")],
                  {"signed": int(signed), "narrow": int(signed and low == -high), "rounding_mode": "ROUND"},
                  domain=QONNX_DOMAINS[0], version=1)
        return y if alpha == 1.0 else b.add("Mul", [y, b.const(alpha, "alpha")])

    def weights(self, w: np.ndarray) -> np.ndarray:
        """The quantized values of a weight (the kernel: per output channel, its last axis)."""
        c = self.config
        if self.name != "quantized_bits":
            raise ValueError(f"{self}: only quantized_bits quantizes weights here")
        x = np.asarray(w, F32)
        unsigned = c["bits"] - int(c["keep_negative"])
        m, m_i = F32(2.0**unsigned), F32(2.0 ** c["integer"])
        if isinstance(c["alpha"], str):
            return _auto_scaled(x, c, m, m_i)
        alpha = F32(1.0 if c["alpha"] is None else c["alpha"])
        if unsigned <= 0:
            sign = np.sign(x) + (F32(1) - np.abs(np.sign(x)))
            return alpha * (sign if c["keep_negative"] else (sign + F32(1)) / F32(2))
        low = F32(int(c["keep_negative"]) * (-m + int(c["symmetric"])))
        return alpha * (m_i * np.clip(np.round(x * m / m_i), low, m - F32(1)) / m)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.config.items() if v is not None)})"


def _auto_scaled(x: np.ndarray, c: dict, m: np.float32, m_i: np.float32) -> np.ndarray:
    """quantized_bits with alpha "auto" / "auto_po2": symmetric, a least-squares scale per output channel (a
    power of two for "auto_po2", refined five times as QKeras does)."""
    axes = _scaling_axes(c["scale_axis"], x.ndim)
    x = x / m_i
    levels = F32((2 ** (c["bits"] - 1) - 1) * 2)
    scale = np.max(np.abs(x), axis=axes, keepdims=True) * F32(2) / levels
    if c["alpha"] == "auto_po2":
        scale = _po2(scale, c)
        for _ in range(5):
            scale = _least_squares(x, _levels(x, scale, levels), axes, c)
    z = _levels(x, scale, levels)
    return (scale * m) * (m_i * z / m)


def _scaling_axes(scale_axis: Any, rank: int) -> tuple[int, ...]:
    """Every axis but the channel one (the last, channels-last), or but ``scale_axis``."""
    if rank <= 1:
        return (0,)
    if scale_axis is None:
        return tuple(range(rank - 1))
    kept = scale_axis if isinstance(scale_axis, list) else [scale_axis]
    return tuple(i for i in range(rank) if i not in kept)


def _levels(x: np.ndarray, scale: np.ndarray, levels: np.float32) -> np.ndarray:
    v = np.floor(np.abs(x) / scale + F32(0.5))
    return np.sign(x) * np.where(v < levels / F32(2), v, levels / F32(2))


def _po2(scale: np.ndarray, c: dict) -> np.ndarray:
    """The power of two nearest ``scale`` (in log space), within the configuration's exponent bounds."""
    scale = np.power(F32(2), np.round(np.log(scale + EPSILON) / F32(np.log(2.0))))
    low, high = c["min_po2_exponent"], c["max_po2_exponent"]
    if low is not None or high is not None:
        scale = np.clip(scale, None if low is None else F32(2.0**low), None if high is None else F32(2.0**high))
    return scale.astype(F32)


def _least_squares(x: np.ndarray, q: np.ndarray, axes: tuple[int, ...], c: dict) -> np.ndarray:
    qx = np.mean(x * q, axis=axes, keepdims=True, dtype=F32)
    qq = np.mean(q * q, axis=axes, keepdims=True, dtype=F32)
    return _po2(qx / (qq + EPSILON), c)


def quantizer(value: Any, where: str, kernel: bool = False) -> Optional[Quantizer]:
    """The quantizer a configuration names (serialized, or QKeras's string form), None for none; QKeras turns a
    kernel's quantized_bits of no alpha into "auto_po2"."""
    if value is None:
        return None
    name, args, kwargs = _parse(value, where)
    if name not in PARAMETERS:
        raise ValueError(f"{where}: the QKeras quantizer {name!r} is not supported (supported: "
                         f"{', '.join(PARAMETERS)})")
    if len(args) > len(PARAMETERS[name]):
        raise ValueError(f"{where}: {name} takes at most {len(PARAMETERS[name])} arguments, got {len(args)}")
    config = {**DEFAULTS[name], **dict(zip(PARAMETERS[name], args)), **kwargs}
    unknown = set(config) - set(PARAMETERS[name])
    if unknown:
        raise ValueError(f"{where}: {name} has no argument(s) {', '.join(sorted(unknown))}")
    if config.get("use_stochastic_rounding"):
        raise ValueError(f"{where}: {name} with stochastic rounding is random; it is not supported")
    if config.get("qnoise_factor", 1.0) != 1.0:  # a blend of the float and the quantized value
        raise ValueError(f"{where}: {name} with qnoise_factor={config['qnoise_factor']} is not quantized; "
                         "only qnoise_factor=1 is supported")
    config = {k: v for k, v in config.items() if k in DEFAULTS[name]}  # those the quantized value depends on
    if kernel and name == "quantized_bits" and config["alpha"] is None:
        config.update(alpha="auto_po2", symmetric=1)
    if name == "quantized_bits" and isinstance(config["alpha"], str):
        if config["alpha"] not in ("auto", "auto_po2"):
            raise ValueError(f"{where}: alpha={config['alpha']!r} is not one of None, a number, 'auto', 'auto_po2'")
        if config["elements_per_scale"] is not None or config["post_training_scale"] is not None:
            raise ValueError(f"{where}: quantized_bits' elements_per_scale and post_training_scale are not supported")
    return Quantizer(name, config)


def _parse(value: Any, where: str) -> tuple[str, list, dict]:
    """(class name, positional arguments, keyword arguments) of a quantizer configuration."""
    if isinstance(value, dict) and "class_name" in value:
        return value["class_name"], [], dict(value.get("config") or {})
    if isinstance(value, str):
        try:
            call = ast.parse(value.strip(), mode="eval").body
            if isinstance(call, ast.Name):
                return call.id, [], {}
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                return (call.func.id, [ast.literal_eval(a) for a in call.args],
                        {k.arg: ast.literal_eval(k.value) for k in call.keywords})
        except (SyntaxError, ValueError):
            pass
    raise ValueError(f"{where}: cannot read the quantizer {value!r}")


def keras3_spec(cls: str, config: dict) -> tuple[str, dict, dict[str, Quantizer]]:
    """(the Keras 3 class, its Keras 2 configuration with a quantized activation as a :class:`Quantizer`,
    the weight quantizers by Keras 3 weight name) of a QKeras layer's configuration."""
    base, weight_keys = LAYERS[cls]
    name = config.get("name", "?")
    plain = {k: v for k, v in config.items() if k not in weight_keys and k not in _DROPPED}
    activation = plain.get("activation")
    if isinstance(activation, dict) or (isinstance(activation, str) and activation.startswith(QUANTIZER_NAMES)):
        plain["activation"] = quantizer(activation, f"layer {name!r} ({cls}) activation")
    found = {weight: quantizer(config.get(key), f"layer {name!r} ({cls}) {key}", key in _TRAINABLE)
             for key, weight in weight_keys.items()}
    return base, plain, {weight: q for weight, q in found.items() if q is not None}
