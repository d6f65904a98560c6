"""QONNX: the quantization operators of the ``qonnx`` package's domains (what Brevitas exports, what hls4ml reads
and writes for QKeras and HGQ models), and its channels-last wrappers of Conv, MaxPool and BatchNormalization.

* ``Quant`` (``IntQuant``): ``(round(clamp(x / scale + zeropt)) - zeropt) * scale`` with the clamp bounds of a
  ``bitwidth``-bit integer (``signed``, ``narrow``) and one of qonnx's rounding modes; 1 bit signed is bipolar.
* ``BipolarQuant``: ``(x / scale >= 0 ? 1 : -1) * scale``.
* ``Trunc`` (opset 1: ``input_bit_width``, ``output_bit_width``; opset 2: ``output_scale``, ``narrow``,
  ``signed``): drop the low bits of a quantized value, as Brevitas' TruncIntQuant.
* ``FloatQuant``: round to a float of ``exponent_bitwidth`` and ``mantissa_bitwidth`` bits (bias, largest value,
  saturation) scaled by ``scale``.
* ``qonnx.custom_op.channels_last``: ``Conv`` (x and w channels-last), ``MaxPool``, ``BatchNormalization``: the
  ONNX operator between transpositions, of the ONNX opset the domain's version names (as qonnx reads it).

Every formula is qonnx's own (``qonnx.custom_op.general``), in float32 as numpy computes it there; the bit
widths, and what Trunc rescales by, must be known when the code is generated.  ``passes/qonnx_layout.py`` writes
Quant, BipolarQuant and Trunc out as ONNX element-wise operators (which fuse into one loop) and the
channels-last operators as the ONNX ones between Transposes; FloatQuant has a kernel of its own.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from .base import Op, broadcast_shapes
from .registry import make_node, register

# The domains a QONNX operator is found under: qonnx's own, Brevitas' older name for it, FINN's.
QONNX_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general")
CHANNELS_LAST_DOMAIN = "qonnx.custom_op.channels_last"
FLOAT32 = np.dtype(np.float32)
ROUNDING = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


def rounding(mode: str, y: np.ndarray) -> np.ndarray:
    """qonnx's ``resolve_rounding_mode``: ROUND and HALF_EVEN to even, UP and DOWN away from and toward zero."""
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(y)
    if mode in ("CEIL", "FLOOR"):
        return np.ceil(y) if mode == "CEIL" else np.floor(y)
    if mode == "DOWN":
        return np.fix(y)
    magnitude = {"UP": np.ceil(np.abs(y)), "HALF_UP": np.floor(np.abs(y) + np.float32(0.5)),
                 "HALF_DOWN": np.ceil(np.abs(y) - np.float32(0.5))}[mode]
    return np.sign(y) * magnitude


def int_bounds(signed: bool, narrow: bool, bits: int) -> tuple[int, int]:
    """qonnx's min_int and max_int: the range of a ``bits``-bit integer, one smaller where ``narrow``."""
    if signed:
        return -(2 ** (bits - 1)) + int(narrow), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1 - int(narrow)


class QonnxOp(Op):
    """What the quantizers share: a float32 x, parameters broadcast against it, bit widths known when the code is
    generated, qonnx's rounding modes."""

    row_wise = True
    strict_attrs = True
    # the inputs (bit widths, a format's parameters) that must be known when generating, by name
    BIT_WIDTHS: dict[int, str] = {}

    def known(self, inputs: list[Optional[TensorType]], i: int, what: str) -> float:
        """The single value of input ``i`` (a bit width), known when the code is generated."""
        value = self.value_of(inputs, i, what)
        if value is None or np.unique(value).size != 1:
            raise self.error(f"{what} must be one value, known when the code is generated")
        return float(value.reshape(-1)[0])

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.dtype != FLOAT32:
            raise self.error(f"x must be float32, got {x.dtype}")
        if any(t is None for t in inputs):
            raise self.error("every input is required")
        out = broadcast_shapes(self, *(t.shape for t in inputs))
        if tuple(out) != tuple(x.shape):
            raise self.error(f"the parameters' shapes {[t.shape for t in inputs[1:]]} do not broadcast into x's "
                             f"{x.shape}")
        for i, what in self.BIT_WIDTHS.items():
            self.known(inputs, i, what)
        mode = str(self.attrs.get("rounding_mode", "ROUND")).upper()
        if mode not in ROUNDING:
            raise self.error(f"rounding_mode {mode!r} is not one of {', '.join(ROUNDING)}")
        return [TensorType(FLOAT32, x.shape)]


def _f32(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float32)


@register
class Quant(QonnxOp):
    """Integer quantization: (round(clamp(x / scale + zeropt)) - zeropt) * scale, bitwidth bits."""

    op_type = "Quant"
    domain = QONNX_DOMAINS[0]
    attr_defaults = {"signed": 1, "narrow": 0, "rounding_mode": "ROUND"}
    BIT_WIDTHS = {3: "bitwidth"}
    value_inputs = (3,)

    def bits(self, inputs: list[Optional[TensorType]]) -> int:
        bits = self.known(inputs, 3, "bitwidth")
        if bits < 1 or bits != int(bits):
            raise self.error(f"bitwidth must be a positive integer, got {bits}")
        return int(bits)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        out = super().infer(inputs)
        self.bits(inputs)
        return out

    def bipolar(self, bits: int) -> bool:
        """qonnx maps 1-bit signed quantization to -1 and 1."""
        return bits == 1 and bool(self.attrs["signed"])

    def evaluate(self, values):
        x, scale, zero = (_f32(v) for v in values[:3])
        bits = int(values[3].reshape(-1)[0])
        y = x / scale + zero
        if self.bipolar(bits):
            y = np.where(y >= 0, np.float32(1), np.float32(-1))
        else:
            lo, hi = int_bounds(bool(self.attrs["signed"]), bool(self.attrs["narrow"]), bits)
            y = rounding(self.attrs["rounding_mode"], np.clip(y, np.float32(lo), np.float32(hi)))
        return [_f32((y - zero) * scale)]


@register
class IntQuant(Quant):
    op_type = "IntQuant"


@register
class BipolarQuant(QonnxOp):
    """(x / scale >= 0 ? 1 : -1) * scale."""

    op_type = "BipolarQuant"
    domain = QONNX_DOMAINS[0]

    def evaluate(self, values):
        x, scale = _f32(values[0]), _f32(values[1])
        return [_f32(np.where(x / scale >= 0, np.float32(1), np.float32(-1)) * scale)]


@register
class Trunc(QonnxOp):
    """Opset 1: drop input_bit_width - output_bit_width low bits of the quantized value (``rounding_mode``)."""

    op_type = "Trunc"
    domain = QONNX_DOMAINS[0]
    attr_defaults = {"rounding_mode": "FLOOR"}
    BIT_WIDTHS = {3: "input_bit_width", 4: "output_bit_width"}
    value_inputs = (3, 4)

    def divisor(self, values: list) -> np.ndarray:
        """What the rounded value is divided by before the truncating rounding (a power of two)."""
        return np.float32(2.0 ** (float(values[3].reshape(-1)[0]) - float(values[4].reshape(-1)[0])))

    def evaluate(self, values):
        x, scale, zero = (_f32(v) for v in values[:3])
        y = rounding(self.attrs["rounding_mode"], np.round(x / scale + zero) / self.divisor(values))
        return [_f32((y - zero) * scale)]


@register
class Trunc_2(Trunc):  # noqa: N801  (version suffix, as the reference evaluator names them)
    """Opset 2: rescale to output_scale (by the power of two nearest output_scale / scale), clamp to an
    output_bit_width-bit integer (``signed``, ``narrow``), then round (``rounding_mode``)."""

    since_version = 2
    attr_defaults = {"rounding_mode": "FLOOR", "narrow": 0, "signed": 1}
    BIT_WIDTHS = {3: "input_bit_width", 5: "output_bit_width"}
    value_inputs = (1, 3, 4, 5)  # the scales too: what the value is rescaled by is a power of two chosen from them

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        out = super().infer(inputs)
        for i, what in ((1, "scale"), (4, "output_scale")):
            self.value_of(inputs, i, f"{what} (what Trunc rescales by)")
        return out

    def divisor(self, values: list) -> np.ndarray:
        return _f32(2 ** np.round(np.log2(_f32(values[4]) / _f32(values[1]))))

    def evaluate(self, values):
        x, scale, zero, output_scale = (_f32(values[i]) for i in (0, 1, 2, 4))
        divisor = self.divisor(values)
        lo, hi = int_bounds(bool(self.attrs["signed"]), bool(self.attrs["narrow"]), int(values[5].reshape(-1)[0]))
        y = np.clip(np.round(x / scale + zero) / divisor, np.float32(lo), np.float32(hi))
        y = rounding(self.attrs["rounding_mode"], y)
        return [_f32((y - zero / divisor) * output_scale)]


@register
class FloatQuant(QonnxOp):
    """x / scale rounded to a float of exponent_bitwidth and mantissa_bitwidth bits (exponent_bias, subnormals
    below), clamped to +-max_val (to infinity or NaN past it where not ``saturation``), times scale."""

    op_type = "FloatQuant"
    domain = QONNX_DOMAINS[0]
    attr_defaults = {"rounding_mode": "ROUND", "has_inf": 0, "has_nan": 0, "has_subnormal": 0, "saturation": 1}
    BIT_WIDTHS = {2: "exponent_bitwidth", 3: "mantissa_bitwidth", 4: "exponent_bias", 5: "max_val"}
    value_inputs = (2, 3, 4, 5)

    def format(self, inputs: list) -> tuple[int, int, float, float]:
        """(exponent bits, mantissa bits, exponent bias, largest value) of the format, known when generating."""
        exponent, mantissa = (int(self.known(inputs, i, w)) for i, w in ((2, "exponent_bitwidth"), (3, "mantissa_bitwidth")))
        bias = self.known(inputs, 4, "exponent_bias")
        largest = (2.0 - 2.0 ** -mantissa) * 2.0 ** ((2**exponent) - 1 - bias)
        return exponent, mantissa, bias, min(largest, self.known(inputs, 5, "max_val"))

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        out = super().infer(inputs)
        self.format(inputs)
        if not self.attrs["saturation"] and not (self.attrs["has_inf"] or self.attrs["has_nan"]):
            raise self.error("a FloatQuant that does not saturate needs has_inf or has_nan (what overflow becomes)")
        return out

    def evaluate(self, values):
        _, mantissa, bias, largest = self.format([TensorType(np.asarray(v).dtype, np.shape(v), np.asarray(v))
                                                  if v is not None else None for v in values])
        x, scale = _f32(values[0]), _f32(values[1])
        v = x / scale
        exponent = np.floor(np.log2(np.abs(v) + np.finfo(np.float32).tiny)) - mantissa
        step = np.exp2(np.maximum(exponent, np.float32(1.0 - bias - mantissa))).astype(np.float32)
        q = step * rounding(self.attrs["rounding_mode"], v / step)
        clamped = np.clip(q, -largest, largest)
        if not self.attrs["saturation"]:
            over = np.where(q > largest, np.inf, -np.inf) if self.attrs["has_inf"] else np.nan
            clamped = np.where(np.isinf(q) | (np.abs(q) > largest), over, clamped)
        return [_f32(clamped * scale)]


for _domain in QONNX_DOMAINS[1:]:  # the same operators under the other domains' names
    for _cls in (Quant, IntQuant, BipolarQuant, Trunc, Trunc_2, FloatQuant):
        register(type(_cls.__name__, (_cls,), {"domain": _domain, "__doc__": _cls.__doc__}))


# ---- channels last --------------------------------------------------------------------------------------------

def to_first(rank: int) -> list[int]:
    """The permutation making a channels-last tensor channels-first."""
    return [0, rank - 1, *range(1, rank - 1)]


def to_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


class ChannelsLast(Op):
    """An ONNX operator on channels-last tensors (x, and Conv's w): the operator between transpositions."""

    domain = CHANNELS_LAST_DOMAIN
    row_wise = True
    # the inputs given channels-last (the rest as ONNX has them)
    TRANSPOSED = (0,)

    def inner(self) -> Op:
        """The ONNX operator of the same attributes, read (as qonnx runs it) at the ONNX opset of the domain's
        version."""
        from .registry import lookup

        cls = lookup(self.op_type, "", self.node.version)
        if cls is None:
            raise self.error(f"the ONNX {self.op_type} of opset {self.node.version} (the version of the "
                             f"{CHANNELS_LAST_DOMAIN} domain) is not supported")
        node = make_node(self.op_type, [f"in{i}" for i in range(len(self.node.inputs))], ["out"], dict(self.node.attrs),
                         name=self.node.name, version=self.node.version, model=self.model)
        return cls(node, self.model)

    def first(self, inputs: list) -> list:
        return [TensorType(t.dtype, tuple(t.shape[p] for p in to_first(t.rank)), None)
                if i in self.TRANSPOSED and t is not None else t for i, t in enumerate(inputs)]

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        if inputs[0].rank < 3:
            raise self.error(f"x must be (N, D1, ..., C), got shape {inputs[0].shape}")
        out = self.inner().infer(self.first(inputs))[0]
        return [TensorType(out.dtype, tuple(out.shape[p] for p in to_last(out.rank)))]

    def evaluate(self, values):
        moved = [np.transpose(v, to_first(v.ndim)) if i in self.TRANSPOSED and v is not None else v
                 for i, v in enumerate(values)]
        out = self.inner().evaluate(moved)[0]
        return [np.ascontiguousarray(np.transpose(out, to_last(out.ndim)))]


@register
class ChannelsLastConv(ChannelsLast):
    op_type = "Conv"
    TRANSPOSED = (0, 1)


@register
class ChannelsLastMaxPool(ChannelsLast):
    op_type = "MaxPool"


@register
class ChannelsLastBatchNormalization(ChannelsLast):
    op_type = "BatchNormalization"
