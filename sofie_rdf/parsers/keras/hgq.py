"""HGQ's ``FixedPointQuantizer`` (calad0i/HGQ, ``HGQ/proxy/fixed_point_quantizer.py``) read from Keras 2 files.

HGQ (high-granularity quantization) trains networks whose every value has its own fixed-point type, and
exports them as "proxy" models: plain Keras layers with their weights already on their grids, each followed
by a ``FixedPointQuantizer`` that puts its output on the grid of the type hls4ml will give it, per element
where the types differ (``keep_negative``, ``bits`` and ``integers`` are int8 weights of the layer's
``shape``, broadcast against its input).  HGQ needs TensorFlow, so :mod:`.legacy` builds the layer here as
:class:`HGQFixedPointQuantizer`, which computes HGQ's ``gfixed_quantizer`` in ``keras.ops``; the converter
writes the same float32 steps as ONNX element-wise operators:

    y = rnd(x * 2^(b - i));   q = sat(y, k, b);   out = q / 2^(b - i) * (b != 0)

with ``k`` keep_negative, ``b`` bits (the sign bit included) and ``i`` integers (the sign bit included),
as ``ap_fixed<b, i>`` (k = 1) and ``ap_ufixed<b, i>`` (k = 0).  The rounding modes (``RND``) are TRN
(floor), RND (floor(y + 0.5)), RND_CONV (half to even), TRN_ZERO, RND_ZERO, RND_MIN_INF, RND_INF; the
overflow modes (``SAT``) are WRAP, SAT, SAT_SYM, SAT_ZERO and WRAP_SM, on the integer range
``high = 2^(b - k) - 1``, ``low = -(high + 1) k`` computed in float32 as HGQ does.  These are not QONNX
``Quant`` nodes (the QKeras route): Quant saturates before it rounds and cannot wrap, while HGQ rounds
first and wraps by default.  Every step is exact in float32 for the widths HGQ uses (products by powers of
two, floors and remainders of integers below 2^24), so the values are HGQ's bit for bit.

``overrides`` (the precisions hls4ml's synthesis reads) and ``fusible`` do not change the values computed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .builder import GraphBuilder, Tensor
from .registry import converts

CLASSES = ("FixedPointQuantizer",)
ROUNDING = ("TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_MIN_INF", "RND_INF")
SATURATION = ("WRAP", "SAT", "SAT_SYM", "SAT_ZERO", "WRAP_SM")
# Keys of HGQ's get_config (Keras's common ones included) that do not change the values.
_KEYS = frozenset({"name", "trainable", "dtype", "RND", "SAT", "shape", "overrides", "fusible"})
F32 = np.float32


@dataclass(frozen=True)
class FixedPointSpec:
    """A FixedPointQuantizer's modes and the shape of its per-element types."""

    rounding: str
    saturation: str
    shape: tuple[int, ...]


def spec_of(config: dict) -> FixedPointSpec:
    """The checked modes of a saved FixedPointQuantizer configuration (ValueError naming the option)."""
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise ValueError(f"FixedPointQuantizer configuration keys {unknown} are not ones HGQ's get_config writes")
    rounding, saturation = config.get("RND", "TRN"), config.get("SAT", "WRAP")
    if rounding not in ROUNDING:
        raise ValueError(f"RND={rounding!r} is not one of HGQ's rounding modes {list(ROUNDING)}")
    if saturation not in SATURATION:
        raise ValueError(f"SAT={saturation!r} is not one of HGQ's overflow modes {list(SATURATION)}")
    shape = config.get("shape")
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"shape={shape!r} is not the shape of the quantizer's bit widths (positive integers)")
    return FixedPointSpec(rounding, saturation, tuple(shape))


def make_layer(cls: str, config: dict, keras: Any) -> Any:
    """The Keras 3 layer computing HGQ's FixedPointQuantizer as its configuration says."""
    return _layer_class(keras)(spec_of(config), name=config.get("name"), dtype=config.get("dtype", "float32"))


@dataclass(frozen=True)
class Grid:
    """The float32 constants of HGQ's quantizer, per element of the bit widths' shape."""

    scale: np.ndarray  # 2^(b - i)
    high: np.ndarray  # 2^(b - k) - 1
    low: np.ndarray  # -(high + 1) k
    kept: np.ndarray  # b != 0 (HGQ zeroes the values of 0-bit elements)
    keep_negative: np.ndarray

    @classmethod
    def of(cls, keep_negative: np.ndarray, bits: np.ndarray, integers: np.ndarray, where: str) -> Grid:
        k, b, i = (np.asarray(v, F32) for v in (keep_negative, bits, integers))
        if not np.all((k == 0) | (k == 1)):
            raise ValueError(f"{where}: keep_negative must be 0 or 1, got {sorted(set(k.ravel().tolist()))}")
        if np.any(b < 0):
            raise ValueError(f"{where}: bits must be non-negative (HGQ's get_config clips them), got {b.min():g}")
        high = np.power(F32(2), b - k) - F32(1)
        return cls(np.power(F32(2), b - i), high, -(high + F32(1)) * k, (b != 0).astype(F32), k)


@functools.cache
def _layer_class(keras: Any) -> type:
    """:class:`HGQFixedPointQuantizer`, defined once Keras is imported (the front end imports it lazily)."""
    ops = keras.ops

    class HGQFixedPointQuantizer(keras.layers.Layer):
        """HGQ's FixedPointQuantizer on Keras 3: its int8 weights in HGQ's saved order (keep_negative, bits,
        integers) and ``gfixed_quantizer`` in ``keras.ops``, step for step."""

        def __init__(self, spec: FixedPointSpec, **kwargs: Any):
            super().__init__(trainable=False, **kwargs)
            self.spec = spec
            self.widths = [self.add_weight(shape=spec.shape, name=n, dtype="int8", initializer="zeros",
                                           trainable=False) for n in ("keep_negative", "bits", "integers")]

        def grid(self) -> Grid:
            return Grid.of(*(ops.convert_to_numpy(v) for v in self.widths), f"layer {self.name!r}")

        def call(self, x: Any) -> Any:
            k, b, i = (ops.cast(v, "float32") for v in self.widths)
            scale = ops.power(2.0, b - i)
            high = ops.power(2.0, b - k) - 1.0
            low = -(high + 1.0) * k
            y = _KERAS_ROUNDING[self.spec.rounding](ops, x * scale)
            q = _keras_saturation(ops, self.spec.saturation, y, high, low, k)
            return q / scale * ops.cast(ops.not_equal(b, 0.0), "float32")

        def compute_output_shape(self, input_shape: Any) -> tuple:
            return tuple(input_shape)

    return HGQFixedPointQuantizer


_KERAS_ROUNDING: dict[str, Callable[[Any, Any], Any]] = {
    "TRN": lambda ops, x: ops.floor(x),
    "RND": lambda ops, x: ops.floor(x + 0.5),
    "RND_CONV": lambda ops, x: ops.round(x),
    "TRN_ZERO": lambda ops, x: ops.floor(ops.abs(x)) * ops.sign(x),
    "RND_ZERO": lambda ops, x: -ops.floor(-ops.abs(x) + 0.5) * ops.sign(x),
    "RND_MIN_INF": lambda ops, x: -ops.floor(-x + 0.5),
    "RND_INF": lambda ops, x: ops.floor(ops.abs(x) + 0.5) * ops.sign(x),
}


def _keras_saturation(ops: Any, mode: str, x: Any, high: Any, low: Any, k: Any) -> Any:
    if mode == "SAT":
        return ops.minimum(ops.maximum(x, low), high)
    if mode == "SAT_SYM":
        return ops.minimum(ops.maximum(x, -high * k), high)
    if mode == "SAT_ZERO":
        return x * ops.cast(ops.logical_and(x <= high, x >= low), "float32")
    if mode == "WRAP":
        return ops.mod(x - low, high - low + 1.0) + low
    interval = (high - low + 1.0) * 2.0  # WRAP_SM
    return ops.abs(ops.mod(x - high - 1.0, interval) - interval / 2.0 + 0.5) - 0.5 + low


# ---- the converter ---------------------------------------------------------------------------------------------


def _floor(b: GraphBuilder, x: str) -> str:
    return b.add("Floor", [x])


def _plus(b: GraphBuilder, x: str, value: float) -> str:
    return b.add("Add", [x, b.const(value, "half")])


def _signed(b: GraphBuilder, x: str, magnitude: Callable[[str], str]) -> str:
    """``magnitude(|x|) * sign(x)``: HGQ's modes that round the magnitude."""
    return b.add("Mul", [magnitude(b.add("Abs", [x])), b.add("Sign", [x])])


_ROUNDING: dict[str, Callable[[GraphBuilder, str], str]] = {
    "TRN": _floor,
    "RND": lambda b, x: _floor(b, _plus(b, x, 0.5)),
    "RND_CONV": lambda b, x: b.add("Round", [x]),
    "TRN_ZERO": lambda b, x: _signed(b, x, lambda m: _floor(b, m)),
    "RND_ZERO": lambda b, x: _signed(b, x, lambda m: b.add("Neg", [_floor(b, _plus(b, b.add("Neg", [m]), 0.5))])),
    "RND_MIN_INF": lambda b, x: b.add("Neg", [_floor(b, _plus(b, b.add("Neg", [x]), 0.5))]),
    "RND_INF": lambda b, x: _signed(b, x, lambda m: _floor(b, _plus(b, m, 0.5))),
}


def _floor_mod(b: GraphBuilder, x: str, divisor: np.ndarray) -> str:
    """TensorFlow's floormod of floats: C's fmod, plus the divisor where that is negative (the divisors here
    are positive), a zero remainder kept as it is."""
    d = b.const(divisor, "divisor")
    remainder = b.add("Mod", [x, d], {"fmod": 1})
    return b.add("Where", [b.add("Less", [remainder, b.const(0.0, "zero")]), b.add("Add", [remainder, d]), remainder])


def _saturation(b: GraphBuilder, mode: str, x: str, g: Grid) -> str:
    if mode in ("SAT", "SAT_SYM"):
        low = g.low if mode == "SAT" else -g.high * g.keep_negative
        return b.add("Min", [b.add("Max", [x, b.const(low, "low")]), b.const(g.high, "high")])
    if mode == "SAT_ZERO":
        inside = b.add("And", [b.add("LessOrEqual", [x, b.const(g.high, "high")]),
                               b.add("GreaterOrEqual", [x, b.const(g.low, "low")])])
        return b.add("Mul", [x, b.add("Cast", [inside], {"to": 1})])
    if mode == "WRAP":
        wrapped = _floor_mod(b, b.add("Sub", [x, b.const(g.low, "low")]), g.high - g.low + F32(1))
        return b.add("Add", [wrapped, b.const(g.low, "low")])
    interval = (g.high - g.low + F32(1)) * F32(2)  # WRAP_SM: the range reflected at both ends
    shifted = b.add("Sub", [b.add("Sub", [x, b.const(g.high, "high")]), b.const(1.0, "one")])
    centred = b.add("Sub", [_floor_mod(b, shifted, interval), b.const(interval / F32(2), "half_interval")])
    folded = b.add("Sub", [b.add("Abs", [_plus(b, centred, 0.5)]), b.const(0.5, "half")])
    return b.add("Add", [folded, b.const(g.low, "low")])


@converts("HGQFixedPointQuantizer")
def _fixed_point(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """HGQ's gfixed_quantizer (see the module's docstring) as ONNX element-wise operators."""
    spec, g = layer.spec, layer.grid()
    scale = b.const(g.scale, "scale")
    y = _ROUNDING[spec.rounding](b, b.add("Mul", [inputs[0].name, scale], hint="scaled"))
    q = b.add("Div", [_saturation(b, spec.saturation, y, g), scale], hint="quantized")
    return q if np.all(g.kept == 1) else b.add("Mul", [q, b.const(g.kept, "kept")], hint="quantized")
