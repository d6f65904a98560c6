"""The quantized operators of onnxruntime's ``com.microsoft`` domain that its quantization tools write:
QGemm, MatMulIntegerToFloat and DynamicQuantizeMatMul (products), QLinearAdd and QLinearMul (element-wise,
broadcasting), QLinearSigmoid and QLinearLeakyRelu (functions of one quantized value), QLinearConcat,
QLinearAveragePool, QLinearGlobalAveragePool, and the domain's QuantizeLinear / DequantizeLinear.

Every one means "dequantize, compute in float, quantize"; the formulas below are the ones onnxruntime's CPU
kernels evaluate (their float32 multipliers and where they round), so that integer outputs agree exactly:

* QGemm: ``acc = C + (A - za)(B - zb)`` in int32, then ``acc * (alpha * a_scale * b_scale / y_scale)``
  requantized, or ``acc * alpha * a_scale * b_scale`` in float without ``y_scale``.
* QLinearAdd: ``(a - za) * (a_scale / c_scale) + (b - zb) * (b_scale / c_scale) + zc``, rounded half to even.
* QLinearMul: ``(a - za) * (b - zb) * (a_scale * b_scale / c_scale) + zc``.
* QLinearSigmoid, QLinearLeakyRelu, QLinearConcat: a table of the 256 inputs, each dequantized, mapped,
  divided by the output scale and rounded.
* QLinearGlobalAveragePool: the integer sum of each channel, ``(sum - zx n) * (x_scale / (y_scale n))``.
* QLinearAveragePool: as its spec says, dequantize -> AveragePool in float -> quantize
  (``passes/quantized_fusion.py`` writes it so).
* DynamicQuantizeLSTM: ONNX's LSTM, each product's float operand quantized to uint8 as DynamicQuantizeLinear
  does (X over all steps, each step's hidden states) and multiplied by the quantized W or R.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal, num_elements
from .base import Op, broadcast_shapes, normalize_axis
from .pool import AveragePool
from .quantized import (
    BYTE_TYPES,
    FLOAT32,
    INT32,
    DequantizeLinear,
    IntegerProduct,
    QLinearConv,
    QuantizeLinear,
    _check_bytes,
    _check_zero,
    _float_scale,
    _optional,
    _value,
    dynamic_quantization,
    requantize,
    saturate_integers,
    vector_of,
)
from .recurrent import LSTM
from .registry import INTERNAL_DOMAIN, make_node, register

MS_DOMAIN = "com.microsoft"


def _scalar(values: list, i: int, default: float = 0.0) -> np.float32:
    v = _value(values, i)
    return np.float32(default) if v is None else np.float32(v.reshape(-1)[0])


def _zero(values: list, i: int) -> np.int64:
    v = _value(values, i)
    return np.int64(0) if v is None else np.int64(v.reshape(-1)[0])


def _check_scalars(op: Op, inputs: list, indices: dict[int, str]) -> None:
    """Scales (float) and zero points (8-bit) that must be one value each: ``indices`` maps input -> name."""
    for i, what in indices.items():
        t = _optional(inputs, i)
        if t is None:
            continue
        if "scale" in what.lower():
            _float_scale(op, t, what)
        vector_of(op, t, 1, what, "tensor")


# ---- products --------------------------------------------------------------------------------------------------


@register
class QGemm(IntegerProduct):
    """Quantized Gemm: C (int32, broadcast to M x N, quantized with A's and B's scales) plus the integer
    product, requantized with y_scale and y_zero_point, or scaled to float where they are omitted."""

    op_type = "QGemm"
    domain = MS_DOMAIN
    A, B, A_ZERO, B_ZERO, INPUTS = 0, 3, 2, 5, 9
    strict_attrs = True
    attr_defaults = {"alpha": 1.0, "transA": 0, "transB": 0}

    def shapes(self, inputs: list[Optional[TensorType]]) -> tuple:
        """(A as M x K, B as K x N, no batch dims): the transpositions applied."""
        a, b = self.operands(inputs)
        if a.rank != 2 or b.rank != 2:
            raise self.error(f"A and B must be matrices, got shapes {a.shape} and {b.shape}")
        sa = a.shape[::-1] if self.attrs["transA"] else a.shape
        sb = b.shape[::-1] if self.attrs["transB"] else b.shape
        if not dims_equal(sa[1], sb[0]):
            raise self.error(f"inner dimensions differ: A {a.shape}, B {b.shape}")
        return tuple(sa), tuple(sb), ()

    def out_shape(self, inputs: list[Optional[TensorType]]) -> tuple:
        sa, sb, _ = self.shapes(inputs)
        return (sa[0], sb[1])

    def out_dtype(self, inputs: list[Optional[TensorType]]) -> np.dtype:
        zero = _optional(inputs, 8)
        return zero.dtype if zero is not None else FLOAT32

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.check_operands(inputs)
        sa, sb, _ = self.shapes(inputs)
        _check_scalars(self, inputs, {1: "a_scale", 2: "a_zero_point", 7: "y_scale", 8: "y_zero_point"})
        _float_scale(self, inputs[4], "b_scale")
        vector_of(self, inputs[4], sb[1], "b_scale", "column of B")
        if (_optional(inputs, 7) is None) != (_optional(inputs, 8) is None):
            raise self.error("y_scale and y_zero_point come together: both for a quantized output, neither for float")
        c = _optional(inputs, 6)
        if c is not None:
            if c.dtype != INT32:
                raise self.error(f"C must be int32, got {c.dtype}")
            out = broadcast_shapes(self, c.shape, (sa[0], sb[1]))
            if len(out) != 2 or not dims_equal(out[0], sa[0]) or not dims_equal(out[1], sb[1]):
                raise self.error(f"C of shape {c.shape} does not broadcast to ({sa[0]}, {sb[1]})")
        out = self.out_dtype(inputs)
        if out != FLOAT32 and out not in BYTE_TYPES:
            raise self.error(f"y's zero point must be int8 or uint8, got {out}")
        return [TensorType(out, self.out_shape(inputs))]

    def integer_product(self, values: list) -> np.ndarray:
        a = values[0].T if self.attrs["transA"] else values[0]
        b = values[3].T if self.attrs["transB"] else values[3]
        acc = super().integer_product([a, None, values[2], b, None, values[5]])
        return acc + values[6].astype(np.int64) if _value(values, 6) is not None else acc

    def evaluate(self, values):
        acc = self.integer_product(values)
        scale = np.float32(self.attrs["alpha"]) * _scalar(values, 1) * values[4].astype(np.float32).reshape(1, -1)
        if _value(values, 7) is None:
            return [(acc.astype(np.float32) * scale).astype(np.float32)]
        return [requantize(acc, scale / _scalar(values, 7), values[8].reshape(()), values[8].dtype)]


@register
class MatMulIntegerToFloat(IntegerProduct):
    """(A - a_zero)(B - b_zero) * a_scale * b_scale + bias in float; MatMul's broadcasting, B's scale and zero
    point per column."""

    op_type = "MatMulIntegerToFloat"
    domain = MS_DOMAIN
    A, B, A_ZERO, B_ZERO, INPUTS = 0, 1, 4, 5, 7
    strict_attrs = True

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.check_operands(inputs)
        sa, sb, _ = self.shapes(inputs)
        _check_scalars(self, inputs, {2: "a_scale"})
        _float_scale(self, inputs[3], "b_scale")
        vector_of(self, inputs[3], sb[-1], "b_scale", "column of B")
        _check_bias(self, _optional(inputs, 6), sb[-1])
        return [TensorType(FLOAT32, self.out_shape(inputs))]

    def evaluate(self, values):
        acc = self.integer_product(values)
        y = acc.astype(np.float32) * (_scalar(values, 2) * values[3].astype(np.float32).reshape(-1))
        return [_with_bias(y, _value(values, 6))]


def _check_bias(op: Op, bias: Optional[TensorType], n: object) -> None:
    if bias is not None and (bias.dtype != FLOAT32 or bias.rank != 1 or not dims_equal(bias.shape[0], n)):
        raise op.error(f"the bias must be float32 of shape ({n},), got {bias.dtype} {bias.shape}")


def _with_bias(y: np.ndarray, bias: Optional[np.ndarray]) -> np.ndarray:
    return (y + bias if bias is not None else y).astype(np.float32)


@register
class DynamicQuantizeMatMul(IntegerProduct):
    """Float A quantized to uint8 while running (DynamicQuantizeLinear's scale and zero point over all of A),
    then MatMulIntegerToFloat with B's scale and zero point per column and a float bias."""

    op_type = "DynamicQuantizeMatMul"
    domain = MS_DOMAIN
    row_wise = False  # A's scale and zero point come from all of its rows: no block of rows runs alone
    A, B, B_ZERO, INPUTS = 0, 1, 3, 5
    strict_attrs = True

    def check_operands(self, inputs: list[Optional[TensorType]]) -> None:
        a, b = self.operands(inputs)
        if a.dtype != FLOAT32:
            raise self.error(f"A must be float32, got {a.dtype}")
        _check_bytes(self, b, "B")
        _check_zero(self, _optional(inputs, 3), b, "B's zero point")
        vector_of(self, _optional(inputs, 3), self.shapes(inputs)[1][-1], "B's zero point", "column of B")

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.check_operands(inputs)
        sb = self.shapes(inputs)[1]
        _float_scale(self, inputs[2], "b_scale")
        vector_of(self, inputs[2], sb[-1], "b_scale", "column of B")
        _check_bias(self, _optional(inputs, 4), sb[-1])
        return [TensorType(FLOAT32, self.out_shape(inputs))]

    def evaluate(self, values):
        a = values[0]
        scale, zero = dynamic_quantization(a)
        q = saturate_integers(np.rint(a / scale) + np.float32(zero), np.dtype(np.uint8))
        acc = MatMulIntegerToFloat.integer_product(self, [q, values[1], None, None, np.array(zero), _value(values, 3)])
        y = acc.astype(np.float32) * (scale * values[2].astype(np.float32).reshape(-1))
        return [_with_bias(y, _value(values, 4))]


class Clamped:
    """The internal forms of the quantized products that ``passes/quantized_fusion.py`` makes of a QDQ layer
    with a ReLU or Clip: the quantized output clamped to [y_min, y_max] (the activation's bounds quantized)."""

    def bounds(self) -> tuple[int, int]:
        return int(self.attrs["y_min"]), int(self.attrs["y_max"])


@register
class QuantizedGemm(Clamped, QGemm):
    op_type = "QuantizedGemm"
    domain = INTERNAL_DOMAIN
    strict_attrs = False
    attr_defaults = {**QGemm.attr_defaults, "y_min": -128, "y_max": 255}

    def evaluate(self, values):
        return [np.clip(super().evaluate(values)[0], *self.bounds())]


@register
class QuantizedConv(Clamped, QLinearConv):
    op_type = "QuantizedConv"
    domain = INTERNAL_DOMAIN
    since_version = 1
    attr_defaults = {"auto_pad": "NOTSET", "dilations": [], "group": 1, "kernel_shape": [], "pads": [], "strides": [],
                     "y_min": -128, "y_max": 255}

    def evaluate(self, values):
        return [np.clip(super().evaluate(values)[0], *self.bounds())]


# ---- element-wise ------------------------------------------------------------------------------------------------


class QLinearBinary(Op):
    """A and B (8-bit, broadcast together) combined into C of A's type; scales and zero points per tensor."""

    domain = MS_DOMAIN
    row_wise = True
    strict_attrs = True

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        a, b = inputs[0], inputs[3]
        _check_bytes(self, a, "A")
        if b.dtype != a.dtype:
            raise self.error(f"A and B must have one type, got {a.dtype} and {b.dtype}")
        for i in (2, 5, 7):
            _check_zero(self, _optional(inputs, i), a, "a zero point")
        _check_scalars(self, inputs, {1: "A_scale", 2: "A_zero_point", 4: "B_scale", 5: "B_zero_point",
                                      6: "C_scale", 7: "C_zero_point"})
        return [TensorType(a.dtype, broadcast_shapes(self, a.shape, b.shape))]

    def multipliers(self, values: list) -> tuple[np.float32, np.float32]:
        """The float32 factors the kernel applies (onnxruntime's order of operations)."""
        raise NotImplementedError

    def combine(self, a: np.ndarray, b: np.ndarray, multipliers: tuple) -> np.ndarray:
        raise NotImplementedError

    def evaluate(self, values):
        a = values[0].astype(np.float32) - np.float32(_zero(values, 2))
        b = values[3].astype(np.float32) - np.float32(_zero(values, 5))
        v = self.combine(a, b, self.multipliers(values)) + np.float32(_zero(values, 7))
        return [saturate_integers(np.rint(v), values[0].dtype)]


@register
class QLinearAdd(QLinearBinary):
    op_type = "QLinearAdd"

    def multipliers(self, values):
        c = _scalar(values, 6)
        return _scalar(values, 1) / c, _scalar(values, 4) / c

    def combine(self, a, b, multipliers):
        return a * multipliers[0] + b * multipliers[1]


@register
class QLinearMul(QLinearBinary):
    op_type = "QLinearMul"

    def multipliers(self, values):
        return _scalar(values, 1) * _scalar(values, 4) / _scalar(values, 6), np.float32(0)

    def combine(self, a, b, multipliers):
        return a * b * multipliers[0]


def lookup_table(x_dtype: np.dtype, x_scale: np.float32, x_zero: int, y_scale: np.float32, y_zero: int,
                 f) -> np.ndarray:
    """The 256 outputs of a function of one quantized value, indexed by the input's byte."""
    q = np.arange(256, dtype=np.uint8).view(x_dtype)
    y = f((q.astype(np.float32) - np.float32(x_zero)) * x_scale).astype(np.float32)
    return saturate_integers(np.rint(y / y_scale) + np.float32(y_zero), x_dtype)


class QLinearLookup(Op):
    """y = quantize(f(dequantize(x))) for 8-bit x, through a table of the 256 values (onnxruntime's way)."""

    domain = MS_DOMAIN
    row_wise = True
    strict_attrs = True
    inplace_inputs = (0,)

    def function(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_bytes(self, x, "X")
        for i in (2, 4):
            _check_zero(self, _optional(inputs, i), x, "a zero point")
        _check_scalars(self, inputs, {1: "X_scale", 2: "X_zero_point", 3: "Y_scale", 4: "Y_zero_point"})
        return [TensorType(x.dtype, x.shape)]

    def table(self, values: list) -> np.ndarray:
        return lookup_table(values[0].dtype, _scalar(values, 1), int(_zero(values, 2)), _scalar(values, 3),
                            int(_zero(values, 4)), self.function)

    def evaluate(self, values):
        x = values[0]
        return [self.table(values)[x.view(np.uint8)]]


@register
class QLinearSigmoid(QLinearLookup):
    op_type = "QLinearSigmoid"

    def function(self, x):
        return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


@register
class QLinearLeakyRelu(QLinearLookup):
    op_type = "QLinearLeakyRelu"
    attr_defaults = {"alpha": 0.01}

    def function(self, x):
        return np.where(x >= 0, x, x * np.float32(self.attrs["alpha"]))


@register
class QLinearConcat(Op):
    """Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input: each input requantized to Y's scale
    (through a table where its own differ), concatenated along ``axis``."""

    op_type = "QLinearConcat"
    domain = MS_DOMAIN
    row_wise = True
    strict_attrs = True
    attr_defaults = {"axis": 0}

    def parts(self, inputs: list) -> list[tuple]:
        if len(inputs) < 5 or (len(inputs) - 2) % 3:
            raise self.error(f"expected Y_scale, Y_zero_point and triples (X, X_scale, X_zero_point), got "
                             f"{len(inputs)} inputs")
        return [tuple(inputs[i:i + 3]) for i in range(2, len(inputs), 3)]

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        parts = self.parts(inputs)
        zero = inputs[1]
        _check_scalars(self, inputs, {0: "Y_scale", 1: "Y_zero_point"})
        if zero is None or zero.dtype not in BYTE_TYPES:
            raise self.error("Y_zero_point must be an int8 or uint8 scalar")
        rank = parts[0][0].rank
        axis = normalize_axis(self, self.attrs["axis"], rank)
        for k, (x, scale, x_zero) in enumerate(parts):
            if x.dtype != zero.dtype or x.rank != rank or (x_zero is not None and x_zero.dtype != x.dtype):
                raise self.error(f"input {k} ({x.dtype}, rank {x.rank}) does not match Y ({zero.dtype}, rank {rank})")
            _check_scalars(self, [scale, x_zero], {0: f"X_scale of input {k}", 1: f"X_zero_point of input {k}"})
            if any(i != axis and not dims_equal(x.shape[i], parts[0][0].shape[i]) for i in range(rank)):
                raise self.error(f"input shapes {[p[0].shape for p in parts]} differ outside axis {axis}")
        length = sum((p[0].shape[axis] for p in parts), 0)
        return [TensorType(zero.dtype, parts[0][0].shape[:axis] + (length,) + parts[0][0].shape[axis + 1:])]

    def evaluate(self, values):
        y_scale, y_zero = np.float32(values[0].reshape(-1)[0]), int(values[1].reshape(-1)[0])
        out = []
        for x, scale, zero in self.parts(values):
            x_zero = 0 if zero is None else int(zero.reshape(-1)[0])
            table = lookup_table(x.dtype, np.float32(scale.reshape(-1)[0]), x_zero, y_scale, y_zero, lambda v: v)
            out.append(table[x.view(np.uint8)])
        return [np.concatenate(out, axis=self.attrs["axis"])]


class ChannelsLast:
    """The ``channels_last`` attribute of onnxruntime's NHWC pools: the channel axis last instead of second."""

    def channel_axis(self, rank: int) -> int:
        return rank - 1 if self.attrs["channels_last"] else 1


@register
class QLinearGlobalAveragePool(ChannelsLast, Op):
    """The mean of each channel of quantized x, requantized: (sum - x_zero n) * x_scale / (y_scale n)."""

    op_type = "QLinearGlobalAveragePool"
    domain = MS_DOMAIN
    row_wise = True
    strict_attrs = True
    attr_defaults = {"channels_last": 0}

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_bytes(self, x, "X")
        if x.rank < 3:
            raise self.error(f"X must be (N, C, D1, ...), got shape {x.shape}")
        for i in (2, 4):
            _check_zero(self, _optional(inputs, i), x, "a zero point")
        _check_scalars(self, inputs, {1: "x_scale", 2: "x_zero_point", 3: "y_scale", 4: "y_zero_point"})
        axis = self.channel_axis(x.rank)
        return [TensorType(x.dtype, tuple(d if i in (0, axis) else 1 for i, d in enumerate(x.shape)))]

    def evaluate(self, values):
        x = values[0]
        axes = tuple(i for i in range(1, x.ndim) if i != self.channel_axis(x.ndim))
        n = int(num_elements([x.shape[i] for i in axes]))
        acc = x.astype(np.int64).sum(axis=axes, keepdims=True) - _zero(values, 2) * n
        m = _scalar(values, 1) / (_scalar(values, 3) * np.float32(n))
        return [requantize(acc, np.asarray(m), np.asarray(_zero(values, 4)), x.dtype)]


# The opset of the AveragePool a QLinearAveragePool is written as (ceil_mode, count_include_pad, no dilations).
AVERAGE_POOL_VERSION = 11


@register
class QLinearAveragePool(ChannelsLast, Op):
    """AveragePool of the dequantized x, quantized with y's scale and zero point: the spec's definition, which
    ``passes/quantized_fusion.py`` writes out as DequantizeLinear -> AveragePool -> QuantizeLinear (with
    Transposes around it for ``channels_last``); :meth:`pool` is that AveragePool."""

    op_type = "QLinearAveragePool"
    domain = MS_DOMAIN
    row_wise = True
    strict_attrs = True
    attr_defaults = {"auto_pad": "NOTSET", "ceil_mode": 0, "channels_last": 0, "count_include_pad": 0,
                     "kernel_shape": [], "pads": [], "strides": []}

    def pool_attrs(self) -> dict:
        """The float AveragePool's attributes (the ones it has, unset lists dropped)."""
        return {k: v for k, v in self.attrs.items() if k != "channels_last" and v != []}

    def pool(self) -> AveragePool:
        node = make_node("AveragePool", ["x"], ["y"], self.pool_attrs(), version=AVERAGE_POOL_VERSION,
                         model=self.model)
        return AveragePool(node, self.model)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_bytes(self, x, "X")
        for i in (2, 4):
            _check_zero(self, _optional(inputs, i), x, "a zero point")
        _check_scalars(self, inputs, {1: "x_scale", 2: "x_zero_point", 3: "y_scale", 4: "y_zero_point"})
        if not self.attrs["kernel_shape"]:
            raise self.error("kernel_shape is required")
        nchw = self.to_nchw(x)
        y = self.pool().infer([TensorType(FLOAT32, nchw.shape)])[0]
        return [TensorType(x.dtype, self.from_nchw(y.shape))]

    def to_nchw(self, x: TensorType) -> TensorType:
        if not self.attrs["channels_last"]:
            return x
        return TensorType(x.dtype, (x.shape[0], x.shape[-1]) + tuple(x.shape[1:-1]))

    def from_nchw(self, shape: tuple) -> tuple:
        return (shape[0],) + tuple(shape[2:]) + (shape[1],) if self.attrs["channels_last"] else tuple(shape)

    def evaluate(self, values):
        x = values[0]
        d = (x.astype(np.float32) - np.float32(_zero(values, 2))) * _scalar(values, 1)
        if self.attrs["channels_last"]:
            d = np.moveaxis(d, -1, 1)
        y = self.pool().evaluate([d])[0]
        if self.attrs["channels_last"]:
            y = np.moveaxis(y, 1, -1)
        q = np.rint(y / _scalar(values, 3)) + np.float32(_zero(values, 4))
        return [saturate_integers(q, x.dtype)]


@register
class MsQuantizeLinear(QuantizeLinear):
    """com.microsoft's QuantizeLinear: ONNX's (per tensor or per ``axis``)."""

    domain = MS_DOMAIN
    since_version = 1
    strict_attrs = True
    attr_defaults = {"axis": 1}


@register
class MsDequantizeLinear(DequantizeLinear):
    """com.microsoft's DequantizeLinear: ONNX's (per tensor or per ``axis``)."""

    domain = MS_DOMAIN
    since_version = 1
    strict_attrs = True
    attr_defaults = {"axis": 1}


# ---- recurrent ---------------------------------------------------------------------------------------------------

# The LSTM opset a DynamicQuantizeLSTM reads its attributes as (time-major: no layout).
LSTM_VERSION = 7


@register
class DynamicQuantizeLSTM(Op):
    """LSTM whose W ([directions, input, 4 hidden]) and R ([directions, hidden, 4 hidden]) are quantized (int8 or
    uint8, scale and zero point per direction or per gate column), its products computed as onnxruntime does:
    the float operand quantized to uint8 first (X over all steps, each step's hidden states), the int32 sums
    scaled back.  Everything else is ONNX's LSTM (:meth:`lstm`), which this defers to."""

    op_type = "DynamicQuantizeLSTM"
    domain = MS_DOMAIN
    strict_attrs = True
    attr_defaults = {"activation_alpha": [], "activation_beta": [], "activations": [], "clip": 0.0,
                     "direction": "forward", "hidden_size": 0, "input_forget": 0}
    W_SCALE, W_ZERO, R_SCALE, R_ZERO = 8, 9, 10, 11

    def lstm(self) -> LSTM:
        """The float LSTM of the same attributes (clip 0 and hidden_size 0: unset, as the schema's defaults)."""
        attrs = {k: v for k, v in self.attrs.items() if v not in ([], 0, 0.0)}
        return LSTM(make_node("LSTM", [], ["y"], attrs, version=LSTM_VERSION, model=self.model), self.model)

    def float_inputs(self, inputs: list[Optional[TensorType]]) -> list[Optional[TensorType]]:
        """The inputs as the float LSTM takes them: W and R transposed to [directions, 4 hidden, depth]."""
        x, w, r = inputs[0], inputs[1], inputs[2]
        for t, what in ((w, "W"), (r, "R")):
            _check_bytes(self, t, what)
            if t.rank != 3:
                raise self.error(f"{what} must have rank 3, got shape {t.shape}")
        as_float = [TensorType(x.dtype, (t.shape[0], t.shape[2], t.shape[1])) for t in (w, r)]
        return [x, *as_float, *inputs[3:8]]

    # What the recurrent layers' code reads of an operator (targets/cpu/emitters/recurrent.py), as the LSTM's.
    default_activations = LSTM.default_activations

    def sizes(self, inputs: list[Optional[TensorType]]):
        return self.lstm().sizes(self.float_inputs(inputs))

    def batch_major(self) -> bool:
        return False

    def reverse_flags(self) -> tuple[bool, ...]:
        return self.lstm().reverse_flags()

    def activations(self) -> list:
        return self.lstm().activations()

    def clip(self) -> Optional[float]:
        return self.lstm().clip()

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        if len(inputs) <= self.R_ZERO or any(inputs[i] is None for i in (self.W_SCALE, self.W_ZERO, self.R_SCALE,
                                                                          self.R_ZERO)):
            raise self.error("W_scale, W_zero_point, R_scale and R_zero_point (inputs 8 to 11) are required")
        outputs = self.lstm().infer(self.float_inputs(inputs))
        s = self.sizes(inputs)
        for weights, scale, zero, what in ((1, 8, 9, "W"), (2, 10, 11, "R")):
            _check_zero(self, inputs[zero], inputs[weights], f"{what}'s zero point")
            _float_scale(self, inputs[scale], f"{what}'s scale")
            for t in (inputs[scale], inputs[zero]):
                if t.shape not in ((s.directions,), (s.directions, 4 * s.hidden)):
                    raise self.error(f"{what}'s scale and zero point must have shape ({s.directions},) or "
                                     f"({s.directions}, {4 * s.hidden}), got {t.shape}")
        return outputs

    def scratch(self, s) -> dict[str, tuple]:
        return self.lstm().scratch(s)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return self.lstm().workspace(self.float_inputs(inputs), outputs)
