"""Quantized operators of the ONNX domain: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, and the
integer products MatMulInteger, ConvInteger, QLinearMatMul and QLinearConv.

A quantized tensor stands for ``(q - zero_point) * scale``.  The scale (and zero point) of QuantizeLinear and
DequantizeLinear covers the tensor whole, one axis (one value per index of ``axis``) or blocks of
``block_size`` along one axis (:class:`Layout`); the products take a scale per tensor or one per row of A /
column of B / output channel.  The integer products accumulate exactly in int32 and, for the QLinear ones,
requantize the sum once: ``saturate(round_half_even(acc * a_scale * b_scale / y_scale) + y_zero_point)``, the
multiplier rounded to float32 as onnxruntime computes it.  Meaning only: the CPU's kernels are
``targets/cpu/emitters/quantized.py``; a QDQ graph becomes these products in ``passes/quantized_fusion.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import ml_dtypes
import numpy as np

from ..ir import TensorType
from ..ir.dims import Dim, dims_equal
from ..ir.dtypes import FLOAT_TYPES, MINIFLOAT_TYPES, NARROW_INT_RANGES, from_onnx, integer_range
from .base import Op, ceil_div, normalize_axis
from .conv import Conv, ConvBase
from .gemm import MatMul
from .reference import conv_reference
from .registry import register

BYTE_TYPES = (np.dtype(np.int8), np.dtype(np.uint8))
INTEGER_TYPES = BYTE_TYPES + (np.dtype(np.int16), np.dtype(np.uint16)) + tuple(NARROW_INT_RANGES)
# What QuantizeLinear writes and DequantizeLinear reads (DequantizeLinear reads int32 too).
QUANTIZED_TYPES = INTEGER_TYPES + MINIFLOAT_TYPES
INT32 = np.dtype(np.int32)
FLOAT32 = np.dtype(np.float32)


@dataclass(frozen=True)
class Layout:
    """How a scale (and its zero point) lies over a tensor: one value for all (``tensor``), one per index of
    ``axis`` (``axis``), or one per run of ``block`` indices along ``axis``, per index of the other dims
    (``block``)."""

    kind: str
    axis: int = 0
    block: int = 1

    def spread(self, value: np.ndarray, shape: tuple) -> np.ndarray:
        """``value`` broadcastable against a tensor of ``shape`` (numpy references)."""
        if self.kind == "tensor":
            return value.reshape(())
        if self.kind == "axis":
            return value.reshape([-1 if i == self.axis else 1 for i in range(len(shape))])
        return np.repeat(value, self.block, axis=self.axis).take(range(shape[self.axis]), axis=self.axis)


def scale_layout(op: Op, x: TensorType, scale: TensorType, zero: Optional[TensorType], axis: int,
                 block: int) -> Layout:
    """The layout of ``scale`` over ``x``, checked: a scalar (or one value), a 1-D tensor as long as x's
    ``axis``, or with ``block`` > 0 a tensor of x's rank whose ``axis`` holds ceil(length / block) blocks."""
    if zero is not None and tuple(zero.shape) != tuple(scale.shape) and not zero.size == scale.size == 1:
        raise op.error(f"the zero point's shape {zero.shape} differs from the scale's {scale.shape}")
    if block < 0:
        raise op.error(f"block_size {block} is negative")
    if block == 0 and (scale.rank == 0 or scale.shape == (1,)):
        return Layout("tensor")
    axis = normalize_axis(op, axis, x.rank)
    if block == 0:
        if scale.rank != 1 or not dims_equal(scale.shape[0], x.shape[axis]):
            raise op.error(f"a scale of shape {scale.shape} fits neither the whole of x {x.shape} (a scalar) nor "
                           f"its axis {axis} (a 1-D tensor of {x.shape[axis]})")
        return Layout("axis", axis)
    expected = tuple(ceil_div(d, block) if i == axis else d for i, d in enumerate(x.shape))
    if scale.rank != x.rank or not all(dims_equal(a, b) for a, b in zip(scale.shape, expected)):
        raise op.error(f"a blocked scale (block_size {block}, axis {axis}) over x {x.shape} should have shape "
                       f"{expected}, got {scale.shape}")
    return Layout("block", axis, block)


def _optional(inputs: list, i: int) -> Optional[TensorType]:
    return inputs[i] if len(inputs) > i else None


def _float_scale(op: Op, t: TensorType, what: str) -> None:
    if t.dtype not in FLOAT_TYPES:
        raise op.error(f"{what} must be a float tensor, got {t.dtype}")


def saturate_integers(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Rounded values clamped to an integer type's range and stored in it (NaN: the lowest value, as
    onnxruntime's conversion of NaN to int32 and clamping give)."""
    lo, hi = integer_range(dtype)
    v = np.where(np.isnan(v), lo, v)
    return np.clip(v, lo, hi).astype(np.int64).astype(dtype)


@register
class QuantizeLinear(Op):
    """y = saturate(round_half_even(x / y_scale) + y_zero_point) into an integer type; into a float8 or float4
    type, x / y_scale rounded to it (saturating to its largest value where ``saturate``)."""

    op_type = "QuantizeLinear"
    since_version = 10
    row_wise = True

    def out_dtype(self, inputs: list[Optional[TensorType]]) -> np.dtype:
        zero = _optional(inputs, 2)
        declared = self.attr("output_dtype", 0)
        if zero is not None:
            if declared and from_onnx(declared) != zero.dtype:
                raise self.error(f"output_dtype {from_onnx(declared)} differs from the zero point's type {zero.dtype}")
            return zero.dtype
        return from_onnx(declared) if declared else np.dtype(np.uint8)

    def compute_dtype(self, x: np.dtype, scale: np.dtype) -> np.dtype:
        """The type x / y_scale is computed in: ``precision`` where given, else the operands' common type (float64
        for int32 x)."""
        precision = self.attr("precision", 0)
        if precision:
            return from_onnx(precision)
        return np.result_type(x, scale) if x != INT32 else np.dtype(np.float64)

    def layout(self, inputs: list[Optional[TensorType]]) -> Layout:
        return scale_layout(self, inputs[0], inputs[1], _optional(inputs, 2), self.attr("axis", 1),
                            self.attr("block_size", 0))

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, scale = inputs[0], inputs[1]
        if x.dtype not in FLOAT_TYPES and x.dtype != INT32:
            raise self.error(f"x must be a float or int32 tensor, got {x.dtype}")
        _float_scale(self, scale, "y_scale")
        out = self.out_dtype(inputs)
        if out not in QUANTIZED_TYPES:
            raise self.error(f"{out} is not a quantized type")
        if self.compute_dtype(x.dtype, scale.dtype) not in FLOAT_TYPES:
            raise self.error(f"precision {from_onnx(self.attr('precision'))} is not a float type")
        self.layout(inputs)
        return [TensorType(out, x.shape)]

    def evaluate(self, values):
        x, scale, zero = values[0], values[1], values[2] if len(values) > 2 else None
        types = [TensorType(v.dtype, v.shape) if v is not None else None for v in values]
        layout, out = self.layout(types), self.out_dtype(types)
        dt = self.compute_dtype(x.dtype, scale.dtype)
        q = x.astype(dt) / layout.spread(scale, x.shape).astype(dt)
        if out in MINIFLOAT_TYPES:
            if zero is not None and out == np.dtype("float4_e2m1fn"):
                q = q + layout.spread(zero, x.shape).astype(np.float32)
            return [minifloat(q.astype(np.float32), out, bool(self.attr("saturate", 1)))]
        q = np.rint(q.astype(np.float64))
        if zero is not None:
            q = q + layout.spread(zero, x.shape).astype(np.float64)
        return [saturate_integers(q, out)]


def minifloat(v: np.ndarray, dtype: np.dtype, saturate: bool) -> np.ndarray:
    """float32 values rounded to an 8- or 4-bit float type; ``saturate`` clamps them to its finite range first."""
    if saturate:
        top = float(ml_dtypes.finfo(dtype).max)
        v = np.where(np.isnan(v), v, np.clip(v, -top, top))
    return v.astype(dtype)


@register
class DequantizeLinear(Op):
    """y = (x - x_zero_point) * x_scale, of the scale's type unless ``output_dtype`` says another."""

    op_type = "DequantizeLinear"
    since_version = 10
    row_wise = True

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, scale, zero = inputs[0], inputs[1], _optional(inputs, 2)
        if x.dtype not in QUANTIZED_TYPES and x.dtype != INT32:
            raise self.error(f"x must be a quantized type (int8, uint8, int16, uint16, int4, ..., float8) or int32, "
                             f"got {x.dtype}")
        _float_scale(self, scale, "x_scale")
        if zero is not None and zero.dtype != x.dtype:
            raise self.error(f"the zero point's type {zero.dtype} differs from x's {x.dtype}")
        if zero is not None and x.dtype in MINIFLOAT_TYPES and zero.value is not None and \
                np.any(zero.value.astype(np.float32) != 0):
            raise self.error(f"a {x.dtype} zero point must be zero")  # the spec's rule: one given while running is not read
        self.layout(inputs)
        return [TensorType(self.out_dtype(scale.dtype), x.shape)]

    def out_dtype(self, scale: np.dtype) -> np.dtype:
        declared = self.attr("output_dtype", 0)
        return from_onnx(declared) if declared else scale

    def layout(self, inputs: list[Optional[TensorType]]) -> Layout:
        return scale_layout(self, inputs[0], inputs[1], _optional(inputs, 2), self.attr("axis", 1),
                            self.attr("block_size", 0))

    def evaluate(self, values):
        x, scale, zero = values[0], values[1], values[2] if len(values) > 2 else None
        layout = self.layout([TensorType(v.dtype, v.shape) if v is not None else None for v in values])
        if x.dtype in MINIFLOAT_TYPES:
            d = x.astype(np.float32)
        else:
            d = x.astype(np.int64) - (layout.spread(zero, x.shape).astype(np.int64) if zero is not None else 0)
            d = d.astype(np.float32)
        y = d * layout.spread(scale, x.shape).astype(np.float32)
        return [y.astype(self.out_dtype(scale.dtype))]


def dynamic_quantization(x: np.ndarray) -> tuple[np.float32, np.uint8]:
    """(scale, zero point) DynamicQuantizeLinear gives x: its range stretched to hold 0, over 0 ... 255."""
    hi = np.float32(max(0.0, float(np.max(x)) if x.size else 0.0))
    lo = np.float32(min(0.0, float(np.min(x)) if x.size else 0.0))
    scale = np.float32(np.float32(1.0 if hi == lo else hi - lo) / np.float32(255))
    zero = np.rint(np.clip(np.float32(0) - lo / scale, 0, 255))
    return scale, np.uint8(zero)


@register
class DynamicQuantizeLinear(Op):
    """uint8 x, with the scale and zero point that map x's range (stretched to hold 0) onto 0 ... 255."""

    op_type = "DynamicQuantizeLinear"
    since_version = 11

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.dtype != FLOAT32:
            raise self.error(f"x must be float32, got {x.dtype}")
        return [TensorType(np.dtype(np.uint8), x.shape), TensorType(FLOAT32, ()), TensorType(np.dtype(np.uint8), ())]

    def evaluate(self, values):
        x = values[0]
        scale, zero = dynamic_quantization(x)
        y = saturate_integers(np.rint(x / scale) + np.float32(zero), np.dtype(np.uint8))
        return [y, np.array(scale, np.float32), np.array(zero, np.uint8)]


# ---- integer products ----------------------------------------------------------


def _check_bytes(op: Op, t: TensorType, what: str) -> None:
    if t.dtype not in BYTE_TYPES:
        raise op.error(f"{what} must be int8 or uint8, got {t.dtype}")


def _check_zero(op: Op, zero: Optional[TensorType], of: TensorType, what: str) -> None:
    if zero is not None and zero.dtype != of.dtype:
        raise op.error(f"{what} has type {zero.dtype}, its tensor {of.dtype}")


def vector_of(op: Op, t: Optional[TensorType], length: Dim, what: str, along: str) -> int:
    """How many values ``t`` (a scale or zero point) holds: 1 for a scalar, ``length`` for one per ``along``
    (a 1-D tensor, or a tensor whose dims are 1 but its last or second-to-last)."""
    if t is None or t.size == 1:
        return 1
    squeezed = [d for d in t.shape if not (isinstance(d, int) and d == 1)]
    if len(squeezed) == 1 and dims_equal(squeezed[0], length) and isinstance(length, int):
        return length
    raise op.error(f"{what} of shape {t.shape} is neither a scalar nor one value per {along} ({length})")


class IntegerProduct(Op):
    """What the matrix products share: which inputs hold A, B and their zero points and scales, the product's
    batch dims (MatMul's broadcasting), and the per-row / per-column checks of the quantization parameters."""

    row_wise = True
    A, B = 0, 1
    A_ZERO: Optional[int] = None
    B_ZERO: Optional[int] = None
    INPUTS = 2  # the most inputs a node of the operator has

    def operands(self, inputs: list[Optional[TensorType]]) -> tuple[TensorType, TensorType]:
        return inputs[self.A], inputs[self.B]

    def shapes(self, inputs: list[Optional[TensorType]]) -> tuple:
        """(A's shape, B's shape, batch dims) as MatMul takes them (1-D operands promoted)."""
        return MatMul._shapes(self, *self.operands(inputs))

    def out_shape(self, inputs: list[Optional[TensorType]]) -> tuple:
        a, b = self.operands(inputs)
        sa, sb, batch = self.shapes(inputs)
        out = batch + (sa[-2], sb[-1])
        if a.rank == 1:
            out = out[:-2] + out[-1:]
        return out[:-1] if b.rank == 1 else out

    def check_operands(self, inputs: list[Optional[TensorType]]) -> None:
        a, b = self.operands(inputs)
        _check_bytes(self, a, "A")
        _check_bytes(self, b, "B")
        sa, sb, _ = self.shapes(inputs)
        if self.A_ZERO is not None:
            _check_zero(self, _optional(inputs, self.A_ZERO), a, "A's zero point")
            vector_of(self, _optional(inputs, self.A_ZERO), sa[-2], "A's zero point", "row of A")
        if self.B_ZERO is not None:
            _check_zero(self, _optional(inputs, self.B_ZERO), b, "B's zero point")
            vector_of(self, _optional(inputs, self.B_ZERO), sb[-1], "B's zero point", "column of B")

    def flops(self, inputs, outputs):
        return 2 * outputs[0].size * self.shapes(inputs)[0][-1]

    def integer_product(self, values: list[Optional[np.ndarray]]) -> np.ndarray:
        """The exact product (A - a_zero) (B - b_zero) in int64, zero points per row of A / column of B."""
        a, b = values[self.A].astype(np.int64), values[self.B].astype(np.int64)
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        if self.A_ZERO is not None and _value(values, self.A_ZERO) is not None:
            a2 = a2 - _value(values, self.A_ZERO).astype(np.int64).reshape(-1, 1)
        if self.B_ZERO is not None and _value(values, self.B_ZERO) is not None:
            b2 = b2 - _value(values, self.B_ZERO).astype(np.int64).reshape(1, -1)
        y = np.matmul(a2, b2)
        if a.ndim == 1:
            y = y.reshape(y.shape[:-2] + y.shape[-1:])
        return y.reshape(y.shape[:-1]) if b.ndim == 1 else y


def _value(values: list, i: int) -> Optional[np.ndarray]:
    return values[i] if len(values) > i else None


@register
class MatMulInteger(IntegerProduct):
    """int32 (A - a_zero_point) x (B - b_zero_point), MatMul's broadcasting; zero points per tensor, per row of
    A, per column of B."""

    op_type = "MatMulInteger"
    since_version = 10
    A_ZERO, B_ZERO, INPUTS = 2, 3, 4

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.check_operands(inputs)
        return [TensorType(INT32, self.out_shape(inputs))]

    def evaluate(self, values):
        return [self.integer_product(values).astype(np.int32)]


def requantize(acc: np.ndarray, multiplier: np.ndarray, zero: Optional[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """saturate(round_half_even(acc * multiplier) + zero) in ``dtype``, the product in float32 as onnxruntime
    (MLAS) computes it."""
    v = np.rint(acc.astype(np.float32) * multiplier.astype(np.float32))
    return saturate_integers(v.astype(np.float64) + (0 if zero is None else zero.astype(np.float64)), dtype)


def output_multiplier(*scales: np.ndarray, y_scale: Optional[np.ndarray] = None) -> np.ndarray:
    """The float32 product of the input scales, divided by the output's (its per-column values broadcast)."""
    m = np.float32(1)
    for s in scales:
        m = m * s.astype(np.float32)
    return m if y_scale is None else m / y_scale.astype(np.float32)


@register
class QLinearMatMul(IntegerProduct):
    """MatMulInteger requantized: saturate(round((A - a_zero) (B - b_zero) a_scale b_scale / y_scale) + y_zero),
    scales and zero points per tensor, per row of A, per column of B."""

    op_type = "QLinearMatMul"
    since_version = 10
    A, B, A_ZERO, B_ZERO, INPUTS = 0, 3, 2, 5, 8

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.check_operands(inputs)
        a, b = self.operands(inputs)
        sa, sb, _ = self.shapes(inputs)
        for i, what in ((1, "a_scale"), (4, "b_scale"), (6, "y_scale")):
            _float_scale(self, inputs[i], what)
        vector_of(self, inputs[1], sa[-2], "a_scale", "row of A")
        vector_of(self, inputs[4], sb[-1], "b_scale", "column of B")
        vector_of(self, inputs[6], 1, "y_scale", "tensor")
        out = inputs[7].dtype if len(inputs) > 7 and inputs[7] is not None else a.dtype
        if out not in BYTE_TYPES:
            raise self.error(f"y must be int8 or uint8, got {out}")
        return [TensorType(out, self.out_shape(inputs))]

    def evaluate(self, values):
        acc = self.integer_product(values)
        a_scale, b_scale = values[1].reshape(-1, 1), values[4].reshape(1, -1)
        m = output_multiplier(a_scale, b_scale, y_scale=values[6].reshape(()))
        if values[self.A].ndim == 1:
            m = m.reshape(m.shape[1:])
        if values[self.B].ndim == 1:
            m = m.reshape(m.shape[:-1])
        zero = values[7] if len(values) > 7 else None
        return [requantize(acc, m, None if zero is None else zero.reshape(()),
                           zero.dtype if zero is not None else values[0].dtype)]


class IntegerConv(ConvBase):
    """What ConvInteger and QLinearConv share: Conv's geometry and channel checks on x and w at other input
    positions, int8/uint8 operands, zero points per tensor (x) and per output channel (w).  Not a Conv: a
    target's Conv code would take them for float convolutions."""

    X, W, X_ZERO, W_ZERO = 0, 1, 2, 3
    geometry = Conv.geometry
    _channels = Conv._channels

    def conv_inputs(self, inputs: list) -> tuple:
        return inputs[self.X], inputs[self.W]

    def check_integer(self, inputs: list[Optional[TensorType]]) -> tuple:
        x, w = self.conv_inputs(inputs)
        _check_bytes(self, x, "x")
        _check_bytes(self, w, "w")
        _check_zero(self, _optional(inputs, self.X_ZERO), x, "x's zero point")
        _check_zero(self, _optional(inputs, self.W_ZERO), w, "w's zero point")
        vector_of(self, _optional(inputs, self.X_ZERO), 1, "x's zero point", "tensor")
        vector_of(self, _optional(inputs, self.W_ZERO), w.shape[0], "w's zero point", "output channel")
        geom = self.geometry(x, w)
        self._channels(x, w)
        return x, w, geom

    def out_shape(self, x: TensorType, w: TensorType) -> tuple:
        return (x.shape[0], w.shape[0]) + self.geometry(x, w).grid

    def flops(self, inputs, outputs):
        return 2 * self._taps(self.conv_inputs(inputs)[1]) * outputs[0].size

    def integer_conv(self, values: list) -> np.ndarray:
        """The exact convolution of (x - x_zero) and (w - w_zero) (float64 holds its sums exactly)."""
        x, w = values[self.X].astype(np.int64), values[self.W].astype(np.int64)
        if _value(values, self.X_ZERO) is not None:
            x = x - _value(values, self.X_ZERO).astype(np.int64).reshape(())
        if _value(values, self.W_ZERO) is not None:
            w = w - _value(values, self.W_ZERO).astype(np.int64).reshape((-1,) + (1,) * (w.ndim - 1))
        geom = self.geometry(TensorType(np.dtype(np.float64), x.shape), TensorType(np.dtype(np.float64), w.shape))
        return np.rint(conv_reference(x.astype(np.float64), w.astype(np.float64), None, geom,
                                      self.attrs["group"])).astype(np.int64)


@register
class ConvInteger(IntegerConv):
    """int32 convolution of (x - x_zero_point) and (w - w_zero_point)."""

    op_type = "ConvInteger"
    since_version = 10
    INPUTS = 4  # the most inputs a node of the operator has

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, _ = self.check_integer(inputs)
        return [TensorType(INT32, self.out_shape(x, w))]

    def evaluate(self, values):
        return [self.integer_conv(values).astype(np.int32)]


@register
class QLinearConv(IntegerConv):
    """ConvInteger plus an int32 bias, requantized: saturate(round(acc x_scale w_scale / y_scale) + y_zero),
    w_scale per tensor or per output channel."""

    op_type = "QLinearConv"
    since_version = 10
    X, W, X_ZERO, W_ZERO, INPUTS = 0, 3, 2, 5, 9

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, _ = self.check_integer(inputs)
        for i, what in ((1, "x_scale"), (4, "w_scale"), (6, "y_scale")):
            _float_scale(self, inputs[i], what)
        vector_of(self, inputs[1], 1, "x_scale", "tensor")
        vector_of(self, inputs[4], w.shape[0], "w_scale", "output channel")
        vector_of(self, inputs[6], 1, "y_scale", "tensor")
        zero = _optional(inputs, 7)
        if zero is not None and zero.dtype not in BYTE_TYPES:
            raise self.error(f"y's zero point must be int8 or uint8, got {zero.dtype}")
        bias = _optional(inputs, 8)
        if bias is not None and (bias.dtype != INT32 or bias.rank != 1 or bias.shape[0] != w.shape[0]):
            raise self.error(f"the bias must be int32 of shape ({w.shape[0]},), got {bias.dtype} {bias.shape}")
        return [TensorType(zero.dtype if zero is not None else x.dtype, self.out_shape(x, w))]

    def evaluate(self, values):
        acc = self.integer_conv(values)
        rank = acc.ndim
        if _value(values, 8) is not None:
            acc = acc + values[8].astype(np.int64).reshape((1, -1) + (1,) * (rank - 2))
        w_scale = values[4].reshape((1, -1) + (1,) * (rank - 2)) if values[4].size > 1 else values[4].reshape(())
        m = output_multiplier(values[1].reshape(()), w_scale, y_scale=values[6].reshape(()))
        zero = _value(values, 7)
        return [requantize(acc, m, None if zero is None else zero.reshape(()),
                           zero.dtype if zero is not None else values[0].dtype)]
