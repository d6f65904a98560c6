"""Quantized operators on the CPU: ``kernels/quantize.hxx`` for QuantizeLinear, DequantizeLinear and
DynamicQuantizeLinear, ``kernels/qgemm.hxx`` for the integer products.

A product with constant weights B stores them packed for the VNNI tiles (:func:`pack_right`: panels of
PANEL_COLUMNS columns, four consecutive k of a column per int32 lane, the signedness A does not have) and adds
their column sums as a constant of its own; A's zero point, the bias and the output multipliers are applied per
call (a few values per column), so they may come from DynamicQuantizeLinear while running.  Products with B
computed while running, zero points per row of A or batched weights run the plain loop (``qmatmul_batched``).
Convolutions read their weights as they are (the tiles' A) and pack each image's columns as they run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

import numpy as np

from ....ir import TensorType
from ....ir.dims import num_elements
from ....ir.dtypes import integer_range
from ....ops.base import broadcast_strides, coalesce
from ....ops.quantized import (
    ConvInteger,
    DequantizeLinear,
    DynamicQuantizeLinear,
    IntegerConv,
    IntegerProduct,
    MatMulInteger,
    QLinearConv,
    QLinearMatMul,
    QuantizeLinear,
)
from ..emitter import Emitter, emits, optional_ptr

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

PANEL_COLUMNS = 16  # kernels/qgemm.hxx: kQPanelColumns
GROUP = 4           # kQGroup: bytes of one column per int32 lane


def scale_steps(op: QuantizeLinear | DequantizeLinear, ctx: NodeContext) -> str:
    """The kernels::ScaleLayout of the node's scale over x (see kernels/quantize.hxx)."""
    x = ctx.inputs[0]
    layout = op.layout(ctx.inputs)
    if layout.kind == "tensor":
        values = (1, 1, x.size, 1, 0, 0, 0)
    else:
        outer, length, inner = num_elements(x.shape[:layout.axis]), x.shape[layout.axis], num_elements(x.shape[layout.axis + 1:])
        if layout.kind == "axis":
            values = (outer, length, inner, 1, 0, 1, 0)
        else:
            blocks = -(-length // layout.block)
            values = (outer, length, inner, layout.block, blocks * inner, inner, 1)
    return "kernels::ScaleLayout{" + ", ".join(ctx.dim(v) for v in values) + "}"


@emits(QuantizeLinear)
class QuantizeEmitter(Emitter):
    kernels = ("quantize",)

    def emit(self, ctx: NodeContext) -> str:
        x, scale = ctx.inputs[0], ctx.inputs[1]
        precision = ctx.ctype(self.op.compute_dtype(x.dtype, scale.dtype))
        zero = optional_ptr(ctx, 2)
        saturate = "true" if self.attrs.get("saturate", 1) else "false"
        return (f"kernels::quantize_linear<{precision}>({ctx.x(0)}, {ctx.x(1)}, "
                f"static_cast<const {ctx.ctype(ctx.outputs[0].dtype)} *>({zero}), {ctx.y(0)}, "
                f"{scale_steps(self.op, ctx)}, {saturate});")


@emits(DequantizeLinear)
class DequantizeEmitter(Emitter):
    kernels = ("quantize",)

    def emit(self, ctx: NodeContext) -> str:
        zero = f"static_cast<const {ctx.ctype(ctx.inputs[0].dtype)} *>({optional_ptr(ctx, 2)})"
        return f"kernels::dequantize_linear({ctx.x(0)}, {ctx.x(1)}, {zero}, {ctx.y(0)}, {scale_steps(self.op, ctx)});"


@emits(DynamicQuantizeLinear)
class DynamicQuantizeEmitter(Emitter):
    kernels = ("quantize",)

    def emit(self, ctx: NodeContext) -> str:
        n = ctx.dim(ctx.inputs[0].size)
        return f"kernels::dynamic_quantize_linear({ctx.x(0)}, {n}, {ctx.y(0)}, {ctx.y(1)}, {ctx.y(2)});"


def as_bytes(ctx: NodeContext, i: int) -> str:
    """Input ``i`` (int8 or uint8) as the kernels read it: its bytes."""
    return f"reinterpret_cast<const uint8_t *>({ctx.x(i)})"


def unsigned(dtype: np.dtype) -> str:
    return "true" if np.dtype(dtype) == np.uint8 else "false"


def pack_right(b: np.ndarray, flip: bool) -> np.ndarray:
    """B (K x N) in qgemm's panels: (panels, ceil(K / 4), PANEL_COLUMNS, 4) bytes, zero-padded, each byte's top
    bit flipped where ``flip`` (the stored signedness is then the other one); the bytes keep B's dtype."""
    k, n = b.shape
    stored = b.view(np.uint8) ^ np.uint8(0x80 if flip else 0)
    groups, panels = -(-k // GROUP), -(-n // PANEL_COLUMNS)
    padded = np.zeros((groups * GROUP, panels * PANEL_COLUMNS), np.uint8)
    padded[:k, :n] = stored
    packed = padded.reshape(groups, GROUP, panels, PANEL_COLUMNS).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(packed).view(b.dtype)


class ProductEmitter(Emitter):
    """MatMulInteger and QLinearMatMul: the packed tiles where B is a constant matrix and A's zero point (and
    scale) one value, else the plain loop; the output stage is the operator's (:meth:`stage`)."""

    kernels = ("qgemm",)
    op: IntegerProduct
    # Set by pack(): the index of the added constant holding S_B (B's column sums, zero point subtracted) and of
    # B's stored zero points where they are not 0 (None: packed B has none); None while B is not packed.
    sums_input: Optional[int] = None
    zero_input: Optional[int] = None

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        op, a_type = self.op, inputs[self.op.A]
        b = constants.get(op.B)
        if b is None or b.ndim != 2 or not self._per_tensor_a(inputs):
            return None
        zero = constants.get(op.B_ZERO) if op.B_ZERO is not None and len(inputs) > op.B_ZERO else None
        if op.B_ZERO is not None and len(inputs) > op.B_ZERO and inputs[op.B_ZERO] is not None and zero is None:
            return None  # B's zero point computed while running: the plain loop reads it
        k, n = b.shape
        zb = np.broadcast_to(zero.reshape(-1).astype(np.int32) if zero is not None else np.int32(0), (n,))
        flip = b.dtype == a_type.dtype  # vpdpbusd multiplies unsigned by signed bytes
        shift = 0 if not flip else (128 if b.dtype == np.int8 else -128)
        sums = b.astype(np.int64).sum(axis=0) - k * zb.astype(np.int64)
        packed = {op.B: pack_right(b, flip)}
        self.sums_input = op.INPUTS  # the added constants follow the operator's inputs
        packed[self.sums_input] = sums.astype(np.int32)
        stored_zero = zb + shift
        if np.any(stored_zero != 0):
            self.zero_input = op.INPUTS + 1
            packed[self.zero_input] = np.ascontiguousarray(stored_zero, np.int32)
        return packed

    def _per_tensor_a(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether A's zero point (and, for QLinearMatMul, scale) is one value for all rows."""
        return all(i is None or len(inputs) <= i or inputs[i] is None or inputs[i].size == 1 for i in self.a_params)

    @property
    def a_params(self) -> tuple[int, ...]:
        return tuple(i for i in (self.op.A_ZERO,) if i is not None)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """The per-column offsets (bias - A's zero point x S_B) of the packed product."""
        n = self.op.shapes(inputs)[1][-1]
        return [TensorType(np.dtype(np.int32), (n,))] if self.sums_input is not None else []

    def stage(self, ctx: NodeContext, n: object, extra: int) -> tuple[str, str]:
        """(statements before the product, the output stage) for outputs of ``n`` columns; the stage's
        scratch starts at workspace ``extra``."""
        raise NotImplementedError

    def emit(self, ctx: NodeContext) -> str:
        sa, sb, batch = self.op.shapes(ctx.inputs)
        k, n = sa[-1], sb[-1]
        a_unsigned = unsigned(ctx.inputs[self.op.A].dtype)
        if self.sums_input is None:
            before, stage = self.stage(ctx, n, 0)
            return before + self._plain(ctx, sa, sb, batch, stage)
        before, stage = self.stage(ctx, n, 1)
        rows = num_elements(sa[:-1])
        za = f"static_cast<int32_t>({ctx.x(self.op.A_ZERO)}[0])" if self._has(ctx, self.op.A_ZERO) else "0"
        zero = ctx.x(self.zero_input) if self.zero_input is not None else "nullptr"
        return (f"{before}kernels::qgemm_offsets({ctx.dim(n)}, nullptr, {za}, {ctx.x(self.sums_input)}, {ctx.w(0)});\n"
                f"kernels::qgemm<{a_unsigned}>({ctx.dim(rows)}, {ctx.dim(n)}, {ctx.dim(k)}, {as_bytes(ctx, self.op.A)}, "
                f"{ctx.dim(k)}, {as_bytes(ctx, self.op.B)},\n   kernels::QSums{{nullptr, {ctx.w(0)}, nullptr, nullptr, "
                f"{zero}, nullptr}}, {stage});")

    @staticmethod
    def _has(ctx: NodeContext, i: Optional[int]) -> bool:
        return i is not None and len(ctx.inputs) > i and ctx.inputs[i] is not None

    def _plain(self, ctx: NodeContext, sa: tuple, sb: tuple, batch: tuple, stage: str) -> str:
        """qmatmul_batched over the broadcast batch dims, zero points per row / column or per tensor."""
        m, k, n = sa[-2], sa[-1], sb[-1]
        stride_a = [s * m * k for s in broadcast_strides(sa[:-2], batch)]
        stride_b = [s * k * n for s in broadcast_strides(sb[:-2], batch)]
        shape, (st_a, st_b) = coalesce(batch, stride_a, stride_b)
        dims = ctx.array("batch_shape", shape)
        pa, pb = ctx.array("a_strides", st_a, "std::ptrdiff_t"), ctx.array("b_strides", st_b, "std::ptrdiff_t")
        zeros = []
        for i, t in ((self.op.A_ZERO, ctx.inputs[self.op.A]), (self.op.B_ZERO, ctx.inputs[self.op.B])):
            present = self._has(ctx, i)
            zeros += [f"static_cast<const {ctx.ctype(t.dtype)} *>({ctx.x(i) if present else 'nullptr'})",
                      "1" if present and ctx.inputs[i].size > 1 else "0"]
        return (f"kernels::qmatmul_batched({ctx.x(self.op.A)}, {pa}, {ctx.x(self.op.B)}, {pb}, {dims}, {len(shape)}, "
                f"{ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)}, {', '.join(zeros)},\n   {stage});")


@emits(MatMulInteger)
class MatMulIntegerEmitter(ProductEmitter):
    def stage(self, ctx: NodeContext, n: object, extra: int) -> tuple[str, str]:
        return "", f"kernels::QStoreInt32{{{ctx.y(0)}, {ctx.dim(n)}}}"


def requantize_stage(ctx: NodeContext, out: np.dtype, ldy: str, multiplier: str, row_step: str, column_step: str,
                     zero: str) -> str:
    """The QRequantize stage writing ``out`` values (its whole range), ``zero`` the output zero point's C++."""
    lo, hi = integer_range(out)
    return (f"kernels::QRequantize<{ctx.ctype(out)}>{{{ctx.y(0)}, {ldy}, {multiplier}, {row_step}, {column_step}, "
            f"{zero}, {lo}, {hi}}}")


def zero_value(ctx: NodeContext, i: int) -> str:
    """The int32 value of scalar zero point input ``i`` (0 where omitted)."""
    return f"static_cast<int32_t>({ctx.x(i)}[0])" if len(ctx.inputs) > i and ctx.inputs[i] is not None else "0"


@emits(QLinearMatMul)
class QLinearMatMulEmitter(ProductEmitter):
    """The multipliers a_scale b_scale / y_scale per row or column, computed per call (qlinear_multipliers)."""

    @property
    def a_params(self) -> tuple[int, ...]:
        return (1, 2)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        sa, sb, _ = self.op.shapes(inputs)
        count = max(inputs[1].size, 1) * max(inputs[4].size, 1)
        return super().workspace(inputs, outputs) + [TensorType(np.dtype(np.float32), (count,))]

    def stage(self, ctx: NodeContext, n: object, extra: int) -> tuple[str, str]:
        rows, columns = ctx.inputs[1].size, ctx.inputs[4].size
        mult = ctx.w(extra)
        before = (f"kernels::qlinear_multipliers({ctx.x(1)}, {rows}, {ctx.x(4)}, {columns}, {ctx.x(6)}, {mult});\n")
        out = ctx.outputs[0].dtype
        row_step, column_step = (str(columns) if rows > 1 else "0"), ("1" if columns > 1 else "0")
        return before, requantize_stage(ctx, out, ctx.dim(n), mult, row_step, column_step, zero_value(ctx, 7))


@emits(ConvInteger, QLinearConv)
class IntegerConvEmitter(Emitter):
    """The weights as they are (A), each image's columns packed into the workspace as the product runs (B), with
    x's bytes flipped where x and w agree in signedness; S_w and the row offsets computed per call."""

    kernels = ("qgemm",)
    op: IntegerConv

    def _geometry(self, inputs: list[Optional[TensorType]]) -> tuple:
        x, w = self.op.conv_inputs(inputs)
        geom = self.op.geometry(x, w)
        return x, w, geom, 3 - len(geom.image)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """The packed columns of one group of one image, their sums (for weight zero points), the row offsets, w's
        zero points as int32 and, for QLinearConv, the multipliers."""
        x, w, geom, _ = self._geometry(inputs)
        columns, depth = math.prod(geom.grid), math.prod(w.shape[1:])
        packed = -(-columns // PANEL_COLUMNS) * PANEL_COLUMNS * -(-depth // GROUP) * GROUP
        channels = TensorType(np.dtype(np.int32), (w.shape[0],))
        out = [TensorType(np.dtype(np.uint8), (packed,)), TensorType(np.dtype(np.int32), (columns,)), channels, channels]
        if isinstance(self.op, QLinearConv):
            out.append(TensorType(np.dtype(np.float32), (w.shape[0],)))
        return out

    def emit(self, ctx: NodeContext) -> str:
        op = self.op
        x, w, geom, missing = self._geometry(ctx.inputs)
        group = self.attrs["group"]
        depth, out_channels, columns = math.prod(w.shape[1:]), w.shape[0], math.prod(geom.grid)
        fields = [(1, geom.image), (1, geom.kernel), (1, geom.grid), (1, geom.strides), (1, geom.dilations),
                  (0, geom.pads_begin)]  # seen as 3-D: the missing leading dims of one, unpadded
        shape = "kernels::QConvShape{" + f"{w.shape[1]}, " + ", ".join(
            "{" + ", ".join(ctx.dim(v) for v in (fill,) * missing + tuple(values)) + "}" for fill, values in fields) + "}"
        w_zero = ProductEmitter._has(ctx, op.W_ZERO)
        flip = x.dtype == w.dtype
        shift = 0 if not flip else (128 if x.dtype == np.int8 else -128)
        x_zero = f"({zero_value(ctx, op.X_ZERO)} {'+' if shift > 0 else '-'} 128)" if shift else zero_value(ctx, op.X_ZERO)
        w_zero_ptr = f"static_cast<const {ctx.ctype(w.dtype)} *>({ctx.x(op.W_ZERO) if w_zero else 'nullptr'})"
        w_zero_step = "1" if w_zero and ctx.inputs[op.W_ZERO].size > 1 else "0"
        bias = optional_ptr(ctx, 8) if isinstance(op, QLinearConv) else "nullptr"
        zeros = ctx.w(3) if w_zero else "nullptr"
        lines = [f"kernels::qconv_offsets({out_channels}, {depth}, {ctx.x(op.W)}, {w_zero_ptr}, {w_zero_step}, {x_zero}, "
                 f"{bias}, {ctx.w(2)}, {zeros});"]
        if isinstance(op, QLinearConv):
            lines.append(f"kernels::qlinear_multipliers({ctx.x(1)}, 1, {ctx.x(4)}, {ctx.inputs[4].size}, {ctx.x(6)}, "
                         f"{ctx.w(4)});")
            stage = requantize_stage(ctx, ctx.outputs[0].dtype, ctx.dim(columns), ctx.w(4),
                                     "1" if ctx.inputs[4].size > 1 else "0", "0", zero_value(ctx, 7))
        else:
            stage = f"kernels::QStoreInt32{{{ctx.y(0)}, {ctx.dim(columns)}}}"
        flag = "true" if flip else "false"
        lines.append(f"kernels::qconv<{unsigned(w.dtype)}>({as_bytes(ctx, op.X)}, {as_bytes(ctx, op.W)}, "
                     f"{ctx.dim(x.shape[0])}, {group}, {out_channels // group}, {shape},\n   "
                     f"static_cast<uint8_t>({x_zero}), {flag}, {ctx.w(2)}, {zeros}, "
                     f"reinterpret_cast<uint8_t *>({ctx.w(0)}), {ctx.w(1)}, {stage});")
        return "\n".join(lines)
