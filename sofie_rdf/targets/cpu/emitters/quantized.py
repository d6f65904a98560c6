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
from textwrap import indent
from typing import TYPE_CHECKING, Optional

import numpy as np
import sympy

from ....ir import TensorType
from ....ir.dims import Dim, as_dim, is_static, num_elements, simplify
from ....ir.dtypes import integer_range
from ....ops import make_node, op_for
from ....ops.base import broadcast_strides, ceil_div, coalesce
from ....ops.conv import Geometry, extent
from ....ops.qlinear import Clamped, DynamicQuantizeMatMul, MatMulIntegerToFloat, QGemm
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
from ..emitter import Emitter, emits, emitter_for, optional_ptr

if TYPE_CHECKING:
    from ....ops.base import Op
    from ..._cxx.context import NodeContext

PANEL_COLUMNS = 16  # kernels/qgemm.hxx: kQPanelColumns
GROUP = 4           # kQGroup: bytes of one column per int32 lane
TILE_DEPTH = 64     # kQTileDepth: a panel's depth is padded to a multiple (one AMX tile of B)
AMX_BLOCK_ROWS = 32  # kAmxBlockRows: rows of A per AMX block
AMX_ROWS = 16        # kAmxRows: rows of one tile
AMX_CONV_TAPS = 64   # kQConvAmxTaps: the most kernel offsets qconv_amx takes
CONV_VERSION = 11    # the float Conv a requantized convolution computes without VNNI
# The float Conv's kernels a requantized convolution runs on without VNNI, those faster there than the exact
# integer products (single layers on an AMD EPYC Zen 3, batch 1 and 16): Winograd (0.5x to 0.6x), conv_shifted on
# few channels (a first layer, 1 -> 16: 0.48x; 8 -> 8: 0.45x to 0.51x, where the products' depth is padded to 64),
# conv_pointwise (0.6x to 0.9x); not conv_rows (0.92x to 1.13x) nor im2col and BLAS.
FLOAT_LAYOUTS = ("winograd", "winograd_tiles", "shifted", "pointwise")


def padded_extent(geom: Geometry) -> tuple[Dim, ...]:
    """Per spatial dim, the padded image's extent a convolution's columns read: the image after its leading pad,
    or as far as the last window reaches (kernels/qgemm.hxx: QConvShape::padded)."""
    out = []
    for image, begin, grid, stride, kernel, dilation in zip(geom.image, geom.pads_begin, geom.grid, geom.strides,
                                                             geom.kernel, geom.dilations):
        reach = (grid - 1) * stride + extent(kernel, dilation)
        both = (image + begin, reach)
        out.append(max(both) if is_static(both) else as_dim(sympy.Max(*both)))
    return tuple(out)


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


def _known_zero(t: TensorType) -> bool:
    """Whether a zero point is known to be 0 when the code is generated (symmetric quantization)."""
    return t.value is not None and t.is_constant and not np.any(t.value.astype(np.int64))


def amx_scratch(target: object, depth: Dim) -> list[TensorType]:
    """qgemm's scratch for AMX blocks (kernels/qgemm.hxx: qgemm_scratch_bytes), for native AVX-512 code, where
    the compiler may target AMX; none elsewhere."""
    if getattr(target, "compiler", "") != "native" or getattr(target, "isa", "") != "avx512":
        return []
    return [TensorType(np.dtype(np.uint8), (AMX_BLOCK_ROWS * ceil_div(depth, TILE_DEPTH) * TILE_DEPTH,))]


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
    groups, panels = -(-k // TILE_DEPTH) * TILE_DEPTH // GROUP, -(-n // PANEL_COLUMNS)
    padded = np.zeros((groups * GROUP, panels * PANEL_COLUMNS), np.uint8)
    padded[:k, :n] = stored
    packed = padded.reshape(groups, GROUP, panels, PANEL_COLUMNS).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(packed).view(b.dtype)


class ProductEmitter(Emitter):
    """The integer products: the packed tiles where B is a constant matrix and A's zero point (and scale) one
    value, else the plain loop.  Each operator gives what differs: where A's bytes come from (:meth:`prologue`,
    DynamicQuantizeMatMul quantizes A first), its zero point, the scratch its output stage needs
    (:meth:`scratch`) and the stage (:meth:`stage`)."""

    kernels = ("qgemm",)
    op: IntegerProduct
    # Set by pack(): the index of the added constant holding S_B (B's column sums, zero point subtracted) and of
    # B's stored zero points where they are not 0 (None: packed B has none); None while B is not packed.
    sums_input: Optional[int] = None
    zero_input: Optional[int] = None

    # ---- what each operator gives ---------------------------------------------------------------------------
    def scratch(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        """Workspace the prologue and the stage need (ctx.w(0) on)."""
        return []

    def prologue(self, ctx: NodeContext) -> str:
        """Statements before the product."""
        return ""

    def stage(self, ctx: NodeContext, n: object) -> str:
        """The output stage of a product of ``n`` columns."""
        raise NotImplementedError

    def a_bytes(self, ctx: NodeContext) -> str:
        return as_bytes(ctx, self.op.A)

    def a_dtype(self, ctx: NodeContext) -> np.dtype:
        return ctx.inputs[self.op.A].dtype

    def a_zero(self, ctx: NodeContext) -> tuple[str, str]:
        """A's zero point as (typed pointer, step per row) for the plain loop."""
        t = self.a_dtype(ctx)
        present = self._has(ctx, self.op.A_ZERO)
        ptr = f"static_cast<const {ctx.ctype(t)} *>({ctx.x(self.op.A_ZERO) if present else 'nullptr'})"
        return ptr, "1" if present and ctx.inputs[self.op.A_ZERO].size > 1 else "0"

    def a_params(self) -> tuple[int, ...]:
        """Inputs about A that must be one value for the packed tiles."""
        return tuple(i for i in (self.op.A_ZERO,) if i is not None)

    def addend(self, ctx: NodeContext) -> tuple[str, str, str]:
        """The int32 matrix added to C with its (row, column) steps: QGemm's C."""
        return "nullptr", "0", "0"

    def transposed(self) -> tuple[bool, bool]:
        return False, False

    # ---- the product -----------------------------------------------------------------------------------------
    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        op = self.op
        b = constants.get(op.B)
        if b is None or b.ndim != 2 or self.transposed()[0] or not self._per_tensor_a(inputs):
            return None
        zero = constants.get(op.B_ZERO) if op.B_ZERO is not None else None
        if op.B_ZERO is not None and len(inputs) > op.B_ZERO and inputs[op.B_ZERO] is not None and zero is None:
            return None  # B's zero point computed while running: the plain loop reads it
        b = b.T if self.transposed()[1] else b
        k, n = b.shape
        zb = np.broadcast_to(zero.reshape(-1).astype(np.int32) if zero is not None else np.int32(0), (n,))
        flip = b.dtype == self._a_type(inputs)  # vpdpbusd multiplies unsigned by signed bytes
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

    def _a_type(self, inputs: list[Optional[TensorType]]) -> np.dtype:
        return inputs[self.op.A].dtype

    def _per_tensor_a(self, inputs: list[Optional[TensorType]]) -> bool:
        return all(len(inputs) <= i or inputs[i] is None or inputs[i].size == 1 for i in self.a_params())

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """The operator's scratch, then for the packed product the per-column offsets (- A's zero point x S_B) and
        the AMX blocks' scratch."""
        if self.sums_input is None:
            return self.scratch(inputs)
        sa, sb, _ = self.op.shapes(inputs)
        return self.scratch(inputs) + [TensorType(np.dtype(np.int32), (sb[-1],))] + amx_scratch(self.target, sa[-1])

    @staticmethod
    def _has(ctx: NodeContext, i: Optional[int]) -> bool:
        return i is not None and len(ctx.inputs) > i and ctx.inputs[i] is not None

    def emit(self, ctx: NodeContext) -> str:
        sa, sb, batch = self.op.shapes(ctx.inputs)
        k, n = sa[-1], sb[-1]
        before, stage = self.prologue(ctx), self.stage(ctx, n)
        if self.sums_input is None:
            return before + self._plain(ctx, sa, sb, batch, stage)
        first = len(self.scratch(ctx.inputs))
        offsets = ctx.w(first)
        scratch = ctx.w(first + 1) if amx_scratch(self.target, k) else "nullptr"
        zero_ptr, _ = self.a_zero(ctx)
        za = f"static_cast<int32_t>({zero_ptr}[0])" if "nullptr" not in zero_ptr else "0"
        stored_zero = ctx.x(self.zero_input) if self.zero_input is not None else "nullptr"
        addend, row_step, column_step = self.addend(ctx)
        bias = "nullptr"
        if (row_step, column_step) == ("0", "1"):  # one value a column (a bias): into the column offsets
            bias, addend = addend, "nullptr"
        sums = (f"kernels::QSums{{nullptr, {offsets}, nullptr, nullptr, {stored_zero}, nullptr, {addend}, {row_step}, "
                f"{column_step}}}")
        return (f"{before}kernels::qgemm_offsets({ctx.dim(n)}, {bias}, {za}, {ctx.x(self.sums_input)}, {offsets});\n"
                f"kernels::qgemm<{unsigned(self.a_dtype(ctx))}>({ctx.dim(num_elements(sa[:-1]))}, {ctx.dim(n)}, "
                f"{ctx.dim(k)}, {self.a_bytes(ctx)}, {ctx.dim(k)}, {as_bytes(ctx, self.op.B)},\n   {sums}, {stage}, "
                f"{scratch});")

    def _plain(self, ctx: NodeContext, sa: tuple, sb: tuple, batch: tuple, stage: str) -> str:
        """qmatmul_batched over the broadcast batch dims, zero points per row / column or per tensor."""
        m, k, n = sa[-2], sa[-1], sb[-1]
        stride_a = [s * m * k for s in broadcast_strides(sa[:-2], batch)]
        stride_b = [s * k * n for s in broadcast_strides(sb[:-2], batch)]
        shape, (st_a, st_b) = coalesce(batch, stride_a, stride_b)
        dims = ctx.array("batch_shape", shape)
        pa, pb = ctx.array("a_strides", st_a, "std::ptrdiff_t"), ctx.array("b_strides", st_b, "std::ptrdiff_t")
        trans_a, trans_b = self.transposed()
        a_steps = (1, m) if trans_a else (k, 1)
        b_steps = (1, k) if trans_b else (n, 1)
        addend, row_step, column_step = self.addend(ctx)
        layout = (f"kernels::QPlainLayout{{{', '.join(ctx.dim(s) for s in a_steps + b_steps)}, {addend}, {row_step}, "
                  f"{column_step}}}")
        za, za_step = self.a_zero(ctx)
        b_type = ctx.inputs[self.op.B].dtype
        present = self._has(ctx, self.op.B_ZERO)
        zb = f"static_cast<const {ctx.ctype(b_type)} *>({ctx.x(self.op.B_ZERO) if present else 'nullptr'})"
        zb_step = "1" if present and ctx.inputs[self.op.B_ZERO].size > 1 else "0"
        a = f"reinterpret_cast<const {ctx.ctype(self.a_dtype(ctx))} *>({self.a_bytes(ctx)})"
        return (f"kernels::qmatmul_batched({a}, {pa}, {ctx.x(self.op.B)}, {pb}, {dims}, {len(shape)}, {layout}, "
                f"{ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)},\n   {za}, {za_step}, {zb}, {zb_step}, {stage});")


@emits(MatMulInteger)
class MatMulIntegerEmitter(ProductEmitter):
    def stage(self, ctx: NodeContext, n: object) -> str:
        return f"kernels::QStoreInt32{{{ctx.y(0)}, {ctx.dim(n)}}}"


def requantize_stage(ctx: NodeContext, op: Op, out: np.dtype, ldy: str, multiplier: str, row_step: str,
                     column_step: str, zero: str) -> str:
    """The QRequantize stage writing ``out`` values (its whole range, or an internal form's clamp), ``zero`` the
    output zero point's C++."""
    lo, hi = op.bounds() if isinstance(op, Clamped) else integer_range(out)
    return (f"kernels::QRequantize<{ctx.ctype(out)}>{{{ctx.y(0)}, {ldy}, {multiplier}, {row_step}, {column_step}, "
            f"{zero}, {lo}, {hi}}}")


def zero_value(ctx: NodeContext, i: int) -> str:
    """The int32 value of scalar zero point input ``i`` (0 where omitted)."""
    return f"static_cast<int32_t>({ctx.x(i)}[0])" if len(ctx.inputs) > i and ctx.inputs[i] is not None else "0"


def float_stage(ctx: NodeContext, ldy: str, scale: str, column_step: str, bias: str) -> str:
    """The QScaleFloat stage: C * scale (per column or one) + bias (per column, or "nullptr")."""
    return (f"kernels::QScaleFloat<kernels::QIdentity>{{{ctx.y(0)}, {ldy}, {scale}, 0, {column_step}, {bias}, 0, 1, "
            "kernels::QIdentity{}}")


class ScaledProduct(ProductEmitter):
    """A product whose stage multiplies by the scales: one float per column (or one) computed per call by
    qlinear_multipliers into the scratch."""

    # input indices of A's scale, B's scale, y's scale (None: a float output); alpha
    A_SCALE: int
    B_SCALE: int
    Y_SCALE: Optional[int] = None

    def a_params(self) -> tuple[int, ...]:
        return super().a_params() + (self.A_SCALE,)

    def scratch(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [TensorType(np.dtype(np.float32), (max(inputs[self.B_SCALE].size, 1),))]

    def alpha(self) -> float:
        return 1.0

    def quantized(self, ctx: NodeContext) -> bool:
        return self.Y_SCALE is not None and self._has(ctx, self.Y_SCALE)

    def a_scale(self, ctx: NodeContext) -> str:
        return ctx.x(self.A_SCALE)

    def multipliers(self, ctx: NodeContext) -> str:
        y_scale = ctx.x(self.Y_SCALE) if self.quantized(ctx) else "static_cast<const float *>(nullptr)"
        alpha = ctx.literal(self.alpha(), np.dtype(np.float32))
        return (f"kernels::qlinear_multipliers({alpha}, {self.a_scale(ctx)}, 1, {ctx.x(self.B_SCALE)}, "
                f"{ctx.inputs[self.B_SCALE].size}, {y_scale}, {ctx.w(0)});\n")

    def prologue(self, ctx: NodeContext) -> str:
        return self.multipliers(ctx)

    def column_step(self, ctx: NodeContext) -> str:
        return "1" if ctx.inputs[self.B_SCALE].size > 1 else "0"


@emits(QLinearMatMul)
class QLinearMatMulEmitter(ScaledProduct):
    """Scales per row of A (the plain loop) or one, per column of B or one."""

    A_SCALE, B_SCALE, Y_SCALE = 1, 4, 6

    def scratch(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [TensorType(np.dtype(np.float32), (max(inputs[1].size, 1) * max(inputs[4].size, 1),))]

    def multipliers(self, ctx: NodeContext) -> str:
        rows, columns = ctx.inputs[1].size, ctx.inputs[4].size
        return (f"kernels::qlinear_multipliers(1.0f, {ctx.x(1)}, {rows}, {ctx.x(4)}, {columns}, {ctx.x(6)}, "
                f"{ctx.w(0)});\n")

    def stage(self, ctx: NodeContext, n: object) -> str:
        rows, columns = ctx.inputs[1].size, ctx.inputs[4].size
        row_step, column_step = (str(columns) if rows > 1 else "0"), ("1" if columns > 1 else "0")
        return requantize_stage(ctx, self.op, ctx.outputs[0].dtype, ctx.dim(n), ctx.w(0), row_step, column_step,
                                zero_value(ctx, 7))


@emits(QGemm)
class QGemmEmitter(ScaledProduct):
    """C broadcast as the addend; requantized with y's scale, or scaled to float."""

    A_SCALE, B_SCALE, Y_SCALE = 1, 4, 7

    def alpha(self) -> float:
        return self.attrs["alpha"]

    def transposed(self) -> tuple[bool, bool]:
        return bool(self.attrs["transA"]), bool(self.attrs["transB"])

    def addend(self, ctx: NodeContext) -> tuple[str, str, str]:
        if not self._has(ctx, 6):
            return super().addend(ctx)
        sa, sb, _ = self.op.shapes(ctx.inputs)
        row, column = broadcast_strides(ctx.inputs[6].shape, (sa[0], sb[1]))
        return ctx.x(6), ctx.dim(row), ctx.dim(column)

    def stage(self, ctx: NodeContext, n: object) -> str:
        if self.quantized(ctx):
            return requantize_stage(ctx, self.op, ctx.outputs[0].dtype, ctx.dim(n), ctx.w(0), "0", self.column_step(ctx),
                                    zero_value(ctx, 8))
        return float_stage(ctx, ctx.dim(n), ctx.w(0), self.column_step(ctx), "nullptr")


@emits(MatMulIntegerToFloat)
class MatMulIntegerToFloatEmitter(ScaledProduct):
    A_SCALE, B_SCALE = 2, 3

    def stage(self, ctx: NodeContext, n: object) -> str:
        return float_stage(ctx, ctx.dim(n), ctx.w(0), self.column_step(ctx), optional_ptr(ctx, 6))


@emits(DynamicQuantizeMatMul)
class DynamicQuantizeMatMulEmitter(ScaledProduct):
    """A quantized into the scratch first (uint8, its scale and zero point after it), then the product of
    MatMulIntegerToFloat with that scale and zero point."""

    kernels = ("qgemm", "quantize")
    B_SCALE = 2

    def scratch(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        a = inputs[0]
        return super().scratch(inputs) + [TensorType(np.dtype(np.uint8), (a.size,)),
                                          TensorType(np.dtype(np.float32), (1,)), TensorType(np.dtype(np.uint8), (1,))]

    def a_params(self) -> tuple[int, ...]:
        return ()

    def _a_type(self, inputs: list[Optional[TensorType]]) -> np.dtype:
        return np.dtype(np.uint8)

    def a_dtype(self, ctx: NodeContext) -> np.dtype:
        return np.dtype(np.uint8)

    def a_bytes(self, ctx: NodeContext) -> str:
        return ctx.w(1)

    def a_zero(self, ctx: NodeContext) -> tuple[str, str]:
        return ctx.w(3), "0"

    def a_scale(self, ctx: NodeContext) -> str:
        return ctx.w(2)

    def prologue(self, ctx: NodeContext) -> str:
        n = ctx.dim(ctx.inputs[0].size)
        return (f"kernels::dynamic_quantize_linear({ctx.x(0)}, {n}, {ctx.w(1)}, {ctx.w(2)}, {ctx.w(3)});\n"
                + self.multipliers(ctx))

    def stage(self, ctx: NodeContext, n: object) -> str:
        return float_stage(ctx, ctx.dim(n), ctx.w(0), self.column_step(ctx), optional_ptr(ctx, 4))


def amx_conv_quads(channels: int) -> tuple[int, int]:
    """(quads of channels a chunk, chunks) of qconv_amx's weight tiles: a chunk is one tile of up to 16 quads."""
    quads = -(-channels // GROUP)
    per_chunk = min(quads, AMX_ROWS)
    return per_chunk, -(-quads // per_chunk)


def amx_conv_weights(w: np.ndarray) -> np.ndarray:
    """w (M, C, kernel...) as qconv_amx's tiles of A: (M / 16, kernel offsets, chunks, 16 channels, 4 x quads
    bytes), the channels past C zero."""
    m, c = w.shape[:2]
    per_chunk, chunks = amx_conv_quads(c)
    padded = np.zeros((m, chunks * per_chunk * GROUP, math.prod(w.shape[2:])), w.dtype)
    padded[:, :c] = w.reshape(m, c, -1)
    tiles = padded.reshape(m // AMX_ROWS, AMX_ROWS, chunks, per_chunk * GROUP, -1).transpose(0, 4, 2, 1, 3)
    return np.ascontiguousarray(tiles)


@emits(ConvInteger, QLinearConv)
class IntegerConvEmitter(Emitter):
    """The weights as they are (A), each image's columns packed into the workspace as the product runs (B), with
    x's bytes flipped where x and w agree in signedness; S_w and the row offsets computed per call.  Where the
    native compiler may target AMX, constant weights of one group and a stride of 1 along the lines are also
    stored as qconv_amx's tiles, which read the image without packing it (qconv where the tiles cannot run)."""

    op: IntegerConv
    # Set by pack(): the index of the added constant holding the weights as qconv_amx's tiles (None: no tiles).
    tiles_input: Optional[int] = None
    # Set by pack() where the layer also runs in float without VNNI (see _float_conv): the float convolution's
    # emitter, its weights and bias being the added constants FLOAT_WEIGHTS and FLOAT_BIAS past the inputs.
    float_conv: Optional[Emitter] = None
    FLOAT_WEIGHTS, FLOAT_BIAS = 1, 2  # past the operator's INPUTS (the AMX tiles' index)

    @property
    def kernels(self) -> tuple[str, ...]:
        return ("qgemm",) + (tuple(self.float_conv.kernels) if self.float_conv else ())

    def _direct(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether qconv_amx can compute the node and is worth it: channels in sixteens, no weight zero point, a
        stride of 1 along the lines, shapes known, and either 8 input channels or more or lines of whole blocks
        of 32 positions (with fewer channels and a ragged line, im2col's deeper tiles waste less)."""
        x, w, geom, _ = self._geometry(inputs)
        values = (*geom.image, *geom.grid, *geom.kernel, *geom.strides, *geom.dilations, *geom.pads_begin)
        return (bool(amx_scratch(self.target, 1)) and self.attrs["group"] == 1 and w.shape[0] % AMX_ROWS == 0
                and not self._w_zero(inputs) and all(isinstance(v, int) for v in values)
                and geom.strides[-1] == 1 and math.prod(geom.kernel) <= AMX_CONV_TAPS
                and (w.shape[1] >= 2 * GROUP or geom.grid[-1] % AMX_BLOCK_ROWS == 0))

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        w = constants.get(self.op.W)
        if w is None:
            return None
        packed = self._float_conv(constants, inputs) or {}
        if self._direct(inputs):
            self.tiles_input = self.op.INPUTS
            packed[self.tiles_input] = amx_conv_weights(w)
        return packed or None

    def _float_conv(self, constants: dict[int, np.ndarray],
                    inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        """The float layer's weights (w - w_zero) and bias, stored as the float Conv's emitter wants them, where
        that emitter runs the layer with one of FLOAT_LAYOUTS (kernels/qgemm.hxx: qconv_float_input says why); None
        elsewhere.  A requantized convolution (QLinearConv, a QDQ Conv) with constant weights, zero points and bias."""
        op, x = self.op, inputs[self.op.X]
        w = constants[op.W]
        known = all(len(inputs) <= i or inputs[i] is None or i in constants for i in (op.W_ZERO, 8))
        if not isinstance(op, QLinearConv) or x is None or w.ndim != 4 or not known:
            return None
        zero = constants.get(op.W_ZERO, np.zeros(1, w.dtype)).astype(np.float32).reshape(-1, 1, 1, 1)
        weights = w.astype(np.float32) - zero
        bias = constants.get(8, np.zeros(w.shape[0], np.int32)).astype(np.float32)
        attrs = {k: v for k, v in self.attrs.items() if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads",
                                                                "strides")}
        node = make_node("Conv", ["x", "w", "b"], ["y"], attrs, name=f"{op.node.name}/float", version=CONV_VERSION,
                         model=op.model)
        conv = emitter_for(op_for(node, op.model), self.target)
        types = self._float_types(inputs)
        packed = conv.pack({1: weights, 2: bias}, types[:3])
        if getattr(conv, "layout", None) not in FLOAT_LAYOUTS:
            return None
        self.float_conv = conv
        return {op.INPUTS + self.FLOAT_WEIGHTS: packed.get(1, weights), op.INPUTS + self.FLOAT_BIAS: packed.get(2, bias)}

    def _float_types(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        """The float layer's x, w, bias and y."""
        x, w = self.op.conv_inputs(inputs)
        return [TensorType(np.dtype(np.float32), shape) for shape in
                (x.shape, w.shape, (w.shape[0],), self.op.out_shape(x, w))]

    def _geometry(self, inputs: list[Optional[TensorType]]) -> tuple:
        x, w = self.op.conv_inputs(inputs)
        geom = self.op.geometry(x, w)
        return x, w, geom, 3 - len(geom.image)

    def _slots(self, inputs: list[Optional[TensorType]]) -> dict[str, TensorType]:
        """The workspace by name, in order: the padded copy and packed columns of one group of one image
        (kernels/qgemm.hxx: qconv_workspace_bytes), the row offsets, and where they are needed the packed columns'
        sums and w's zero points as int32 (a weight zero point not known to be 0), the multipliers (QLinearConv),
        the AMX blocks' scratch."""
        x, w, geom, _ = self._geometry(inputs)
        columns, depth = num_elements(geom.grid), math.prod(w.shape[1:])
        packed = ceil_div(columns, PANEL_COLUMNS) * PANEL_COLUMNS * -(-depth // TILE_DEPTH) * TILE_DEPTH
        padded = (w.shape[1] + 1) * num_elements(padded_extent(geom))
        channels = TensorType(np.dtype(np.int32), (w.shape[0],))
        slots = {"work": TensorType(np.dtype(np.uint8), (simplify(padded + packed),)), "offsets": channels}
        if self._w_zero(inputs):
            slots |= {"sums": TensorType(np.dtype(np.int32), (columns,)), "zeros": channels}
        if isinstance(self.op, QLinearConv):
            slots["multipliers"] = TensorType(np.dtype(np.float32), (w.shape[0],))
        if self.tiles_input is not None:  # qconv_amx's padded copy (kernels/qgemm.hxx: qconv_amx_bytes)
            per_chunk, chunks = amx_conv_quads(w.shape[1])
            image = per_chunk * chunks * num_elements(padded_extent(geom)) * GROUP + PANEL_COLUMNS * GROUP
            slots["amx_image"] = TensorType(np.dtype(np.uint8), (simplify(image + geom.image[-1]),))
        slots |= dict(zip(["amx"], amx_scratch(self.target, depth)))
        if self.float_conv is not None:  # the float layer's x - x_zero, its sums and its own scratch
            x_f, w_f, bias_f, y_f = self._float_types(inputs)
            slots |= {"float_x": x_f, "float_y": y_f}
            slots |= {f"float_work{k}": t for k, t in enumerate(self.float_conv.workspace([x_f, w_f, bias_f], [y_f]))}
        return slots

    def _w_zero(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the weights have a zero point not known to be 0 (a term of its own)."""
        i = self.op.W_ZERO
        return len(inputs) > i and inputs[i] is not None and not _known_zero(inputs[i])

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return list(self._slots(inputs).values())

    def emit(self, ctx: NodeContext) -> str:
        op = self.op
        x, w, geom, missing = self._geometry(ctx.inputs)
        group = self.attrs["group"]
        depth, out_channels, columns = math.prod(w.shape[1:]), w.shape[0], num_elements(geom.grid)
        fields = [(1, geom.image), (1, geom.kernel), (1, geom.grid), (1, geom.strides), (1, geom.dilations),
                  (0, geom.pads_begin), (1, padded_extent(geom))]  # seen as 3-D: the missing leading dims of one
        shape = "kernels::QConvShape{" + f"{w.shape[1]}, " + ", ".join(
            "{" + ", ".join(ctx.dim(v) for v in (fill,) * missing + tuple(values)) + "}" for fill, values in fields) + "}"
        slots = {name: ctx.w(k) for k, name in enumerate(self._slots(ctx.inputs))}
        w_zero = "zeros" in slots
        flip = x.dtype == w.dtype
        shift = 0 if not flip else (128 if x.dtype == np.int8 else -128)
        x_zero = f"({zero_value(ctx, op.X_ZERO)} {'+' if shift > 0 else '-'} 128)" if shift else zero_value(ctx, op.X_ZERO)
        w_zero_ptr = f"static_cast<const {ctx.ctype(w.dtype)} *>({ctx.x(op.W_ZERO) if w_zero else 'nullptr'})"
        w_zero_step = "1" if w_zero and ctx.inputs[op.W_ZERO].size > 1 else "0"
        bias = optional_ptr(ctx, 8) if isinstance(op, QLinearConv) else "nullptr"
        zeros, sums = slots.get("zeros", "nullptr"), slots.get("sums", "nullptr")
        lines = [f"kernels::qconv_offsets({out_channels}, {depth}, {ctx.x(op.W)}, {w_zero_ptr}, {w_zero_step}, {x_zero}, "
                 f"{bias}, {slots['offsets']}, {zeros});"]
        multipliers = []
        if isinstance(op, QLinearConv):
            multipliers = [f"kernels::qlinear_multipliers(1.0f, {ctx.x(1)}, 1, {ctx.x(4)}, {ctx.inputs[4].size}, "
                           f"{ctx.x(6)}, {slots['multipliers']});"]
            stage = requantize_stage(ctx, self.op, ctx.outputs[0].dtype, ctx.dim(columns), slots["multipliers"],
                                     "1" if ctx.inputs[4].size > 1 else "0", "0", zero_value(ctx, 7))
        else:
            stage = f"kernels::QStoreInt32{{{ctx.y(0)}, {ctx.dim(columns)}}}"
        flag = "true" if flip else "false"
        general = (f"kernels::qconv<{unsigned(w.dtype)}>({as_bytes(ctx, op.X)}, {as_bytes(ctx, op.W)}, "
                   f"{ctx.dim(x.shape[0])}, {group}, {out_channels // group}, {shape},\n   "
                   f"static_cast<uint8_t>({x_zero}), {flag}, {slots['offsets']}, {zeros}, "
                   f"reinterpret_cast<uint8_t *>({slots['work']}), {sums}, {stage}, {slots.get('amx', 'nullptr')});")
        integer = [*lines, general]
        if self.tiles_input is not None:
            per_chunk, chunks = amx_conv_quads(w.shape[1])
            direct = (f"kernels::qconv_amx<{unsigned(w.dtype)}>({as_bytes(ctx, op.X)}, "
                      f"{as_bytes(ctx, self.tiles_input)}, {ctx.dim(x.shape[0])}, {out_channels}, {shape}, {per_chunk}, "
                      f"{chunks},\n   static_cast<uint8_t>({x_zero}), {flag}, {slots['offsets']}, "
                      f"reinterpret_cast<uint8_t *>({slots['amx_image']}), {stage})")
            integer = [*lines, f"if (!{direct})", general]
        if self.float_conv is None:
            return "\n".join(multipliers + integer)
        float_way = "if (kernels::kQFloatConv) {  // no VNNI or no AMX: the float Conv's kernels (qconv_float_input)"
        return "\n".join([*multipliers, float_way, indent(self._float_code(ctx, slots, stage), "   "), "} else {",
                          indent("\n".join(integer), "   "), "}"])

    def _float_code(self, ctx: NodeContext, slots: dict[str, str], stage: str) -> str:
        """The layer in float: x - x_zero, the float convolution of the stored weights and bias, requantized."""
        op = self.op
        x_f, w_f, bias_f, y_f = types = self._float_types(ctx.inputs)
        weights, bias = (ctx.x(op.INPUTS + k) for k in (self.FLOAT_WEIGHTS, self.FLOAT_BIAS))
        work = [name for key, name in slots.items() if key.startswith("float_work")]
        inner = ctx.nested(types[:3], [y_f], [slots["float_x"], weights, bias], [slots["float_y"]], work)
        batch, channels, positions = x_f.shape[0], y_f.shape[1], num_elements(y_f.shape[2:])
        return "\n".join([
            f"kernels::qconv_float_input({ctx.x(op.X)}, {ctx.dim(num_elements(x_f.shape))}, {zero_value(ctx, op.X_ZERO)}, "
            f"{slots['float_x']});",
            self.float_conv.emit(inner),
            f"kernels::qconv_float_output({slots['float_y']}, {ctx.dim(batch)}, {channels}, {ctx.dim(positions)}, {stage});"])
