"""onnxruntime's element-wise quantized operators on the CPU (``kernels/qlinear.hxx``): QLinearAdd and
QLinearMul as the broadcasting binary loops of ``kernels/elementwise.hxx`` around a lambda that dequantizes,
combines and requantizes; QLinearSigmoid, QLinearLeakyRelu and QLinearConcat through tables of the 256 results,
built per call (the scales may be computed while running); QLinearGlobalAveragePool's integer channel sums.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from ....ir import TensorType
from ....ir.dims import num_elements
from ....ops.base import normalize_axis
from ....ops.qlinear import (
    DynamicQuantizeLSTM,
    QLinearAdd,
    QLinearBinary,
    QLinearConcat,
    QLinearGlobalAveragePool,
    QLinearLeakyRelu,
    QLinearLookup,
    QLinearSigmoid,
)
from ..emitter import Emitter, emits
from .elementwise import binary_loop
from .quantized import pack_right, zero_value
from .recurrent import LstmEmitter

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


def scale_value(ctx: NodeContext, i: int) -> str:
    return f"static_cast<float>({ctx.x(i)}[0])"


@emits(QLinearBinary)
class QLinearBinaryEmitter(Emitter):
    """The lambda captures the float32 factors and the zero points (onnxruntime's order of operations)."""

    kernels = ("elementwise", "quantize")
    op: QLinearBinary

    def captures(self, ctx: NodeContext) -> str:
        sa, sb, sc = (scale_value(ctx, i) for i in (1, 4, 6))
        zeros = f"za = {zero_value(ctx, 2)}, zb = {zero_value(ctx, 5)}, zc = {zero_value(ctx, 7)}"
        if isinstance(self.op, QLinearAdd):
            return f"ra = {sa} / {sc}, rb = {sb} / {sc}, {zeros}"
        return f"r = {sa} * {sb} / {sc}, {zeros}"

    def body(self) -> str:
        va, vb = "static_cast<float>(static_cast<int32_t>(a) - za)", "static_cast<float>(static_cast<int32_t>(b) - zb)"
        return f"{va} * ra + {vb} * rb" if isinstance(self.op, QLinearAdd) else f"{va} * {vb} * r"

    def emit(self, ctx: NodeContext) -> str:
        t = ctx.ctype(ctx.outputs[0].dtype)
        f = (f"[{self.captures(ctx)}](const {t} a, const {t} b) -> {t} {{ "
             f"return kernels::saturate_round<{t}>({self.body()}, zc); }}")
        return binary_loop(ctx, 0, 3, f)


def lookup_function(op: QLinearLookup, ctx: NodeContext) -> str:
    """The float function the table holds the results of."""
    if isinstance(op, QLinearSigmoid):
        return "[](float x) { return 1.0f / (1.0f + std::exp(-x)); }"
    if isinstance(op, QLinearLeakyRelu):
        alpha = ctx.literal(op.attrs["alpha"], np.dtype(np.float32))
        return f"[](float x) {{ return x >= 0.0f ? x : x * {alpha}; }}"
    raise op.error("no function for this lookup operator")


@emits(QLinearSigmoid, QLinearLeakyRelu)
class QLinearLookupEmitter(Emitter):
    kernels = ("qlinear",)
    op: QLinearLookup

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [TensorType(inputs[0].dtype, (256,))]

    def emit(self, ctx: NodeContext) -> str:
        t = ctx.ctype(ctx.inputs[0].dtype)
        table = (f"kernels::qlinear_table<{t}>({scale_value(ctx, 1)}, {zero_value(ctx, 2)}, {scale_value(ctx, 3)}, "
                 f"{zero_value(ctx, 4)}, {lookup_function(self.op, ctx)}, {ctx.w(0)});")
        return f"{table}\nkernels::qlinear_lookup({ctx.x(0)}, {ctx.dim(ctx.inputs[0].size)}, {ctx.w(0)}, {ctx.y(0)});"


@emits(QLinearConcat)
class QLinearConcatEmitter(Emitter):
    """One table per input (its scale and zero point to the output's), each input mapped into its columns of
    the output seen as (outer, total)."""

    kernels = ("qlinear",)
    op: QLinearConcat

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [TensorType(outputs[0].dtype, (256 * len(self.op.parts(inputs)),))]

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        t = ctx.ctype(y.dtype)
        axis = normalize_axis(self.op, self.attrs["axis"], y.rank)
        outer, total = num_elements(y.shape[:axis]), num_elements(y.shape[axis:])
        lines, offset = [], 0
        for k in range(len(self.op.parts(ctx.inputs))):
            x, s, z = 2 + 3 * k, 3 + 3 * k, 4 + 3 * k
            table = f"{ctx.w(0)} + {256 * k}"
            part = num_elements(ctx.inputs[x].shape[axis:])
            lines += [f"kernels::qlinear_table<{t}>({scale_value(ctx, s)}, {zero_value(ctx, z)}, {scale_value(ctx, 0)}, "
                      f"{zero_value(ctx, 1)}, [](float v) {{ return v; }}, {table});",
                      f"kernels::qlinear_concat_part({ctx.x(x)}, {ctx.dim(outer)}, {ctx.dim(part)}, {ctx.dim(total)}, "
                      f"{ctx.dim(offset)}, {table}, {ctx.y(0)});"]
            offset = offset + part
        return "\n".join(lines)


@emits(QLinearGlobalAveragePool)
class QLinearGlobalAveragePoolEmitter(Emitter):
    kernels = ("qlinear",)
    op: QLinearGlobalAveragePool

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        if self.attrs["channels_last"]:  # (N, D..., C)
            outer, image, inner = x.shape[0], num_elements(x.shape[1:-1]), x.shape[-1]
        else:
            outer, image, inner = num_elements(x.shape[:2]), num_elements(x.shape[2:]), 1
        dims = ", ".join(ctx.dim(d) for d in (outer, image, inner))
        return (f"kernels::qlinear_global_average_pool({ctx.x(0)}, {dims}, {scale_value(ctx, 1)}, {zero_value(ctx, 2)}, "
                f"{scale_value(ctx, 3)}, {zero_value(ctx, 4)}, {ctx.y(0)});")



@emits(DynamicQuantizeLSTM)
class DynamicQuantizeLstmEmitter(LstmEmitter):
    """The LSTM kernel with kernels/qrnn.hxx's QuantizedProducts: W and R packed per direction as qgemm's B
    (stored signed: the operand is uint8), their column sums and stored zero points added as constants."""

    kernels = ("gemm", "rnn", "qgemm", "quantize", "qrnn")
    op: DynamicQuantizeLSTM
    # The added constants: per weight (W, R), its column sums and, where not all 0, its stored zero points.
    SUMS = {"w": 12, "r": 14}
    ZEROS = {"w": 13, "r": 15}

    def __init__(self, op: DynamicQuantizeLSTM, target) -> None:
        super().__init__(op, target)
        self.stored_zeros: set[str] = set()

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        op = self.op
        packed = {}
        for name, weights, zero in (("w", 1, op.W_ZERO), ("r", 2, op.R_ZERO)):
            if weights not in constants or zero not in constants:
                raise self.error("W, R and their zero points must be constants (the CPU packs them)")
            q, zeros = constants[weights], constants[zero]
            directions, depth, columns = q.shape
            zb = np.broadcast_to(zeros.reshape(directions, -1).astype(np.int64), (directions, columns))
            flip = q.dtype == np.uint8  # the operand is uint8: the weights are stored signed
            packed[weights] = np.concatenate([pack_right(q[d], flip).reshape(-1) for d in range(directions)])
            packed[self.SUMS[name]] = (q.astype(np.int64).sum(axis=1) - depth * zb).astype(np.int32).reshape(-1)
            stored = zb - (128 if flip else 0)
            if np.any(stored != 0):
                packed[self.ZEROS[name]] = stored.astype(np.int32).reshape(-1)
                self.stored_zeros.add(name)
        return packed

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """The LSTM's scratch, then the quantized operand, the per-column offsets and multipliers."""
        s = self.op.sizes(inputs)
        operand = max(num_elements((s.seq, s.batch, s.input)), num_elements((s.batch, s.hidden)))
        gates = TensorType(np.dtype(np.int32), (4 * s.hidden,))
        return super().workspace(inputs, outputs) + [TensorType(np.dtype(np.uint8), (operand,)), gates,
                                                     TensorType(np.dtype(np.float32), (4 * s.hidden,))]

    def weights(self, ctx: NodeContext) -> list[str]:
        s = self.op.sizes(ctx.inputs)
        first = len(self.op.scratch(s))
        parts = []
        for name, weights, scale, depth in (("w", 1, self.op.W_SCALE, s.input), ("r", 2, self.op.R_SCALE, s.hidden)):
            zeros = ctx.x(self.ZEROS[name]) if name in self.stored_zeros else "nullptr"
            step = "1" if ctx.inputs[scale].rank == 2 else "0"
            parts.append(f"{{reinterpret_cast<const uint8_t *>({ctx.x(weights)}), {ctx.x(self.SUMS[name])}, {zeros}, "
                         f"{ctx.x(scale)}, {step}, {ctx.dim(depth)}}}")
        return [f"const kernels::QuantizedProducts products{{{parts[0]},\n   {parts[1]},\n   {ctx.w(first)}, "
                f"{ctx.w(first + 1)}, {ctx.w(first + 2)}}};"]

    def cell_call(self, ctx: NodeContext, d: int, reverse: bool, acts: list) -> str:
        return super().cell_call(ctx, d, reverse, acts)[:-1] + ", products)"
