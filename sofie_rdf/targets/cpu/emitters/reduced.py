"""Weights stored smaller, computed in float: what a CPU target with ``weights="bf16" | "fp16" | "int8"`` does with
the constant weights of Gemm, FusedGemm and MatMul (``sr.compile(model, weights="bf16")``; never the default).

:func:`stored_weights` wraps the emitter a product would have: where B is a constant float32 matrix, the wrapper
stores it as bfloat16 or float16 (rounded to nearest even) or as int8 with one scale per column (symmetric,
max |w| / 127), in ``kernels/wgemm.hxx``'s panels of PANEL_COLUMNS columns, and calls ``gemm_stored``, which
widens the weights to float in registers; everything else (other operators, weights computed while running,
pooled products) keeps its emitter.  The IR keeps the float32 weights' meaning; how far the results move is
what ``sr.compile``'s precision report measures on a sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import ml_dtypes
import numpy as np

from ....ir import TensorType
from ....ir.dims import num_elements
from ....ops.base import broadcast_strides
from ....ops.fused import FusedGemm
from ....ops.gemm import Gemm, MatMul
from ..emitter import Emitter

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

PANEL_COLUMNS = 64  # kernels/wgemm.hxx: kWeightPanel
PAIR_COLUMNS = 16  # kWeightColumns: a vector's columns, two of which a bfloat16 load interleaves
# The widening policy of each stored type (kernels/wgemm.hxx) and the numpy type its bits are written as.
WIDEN = {"bf16": "kernels::Bf16Weights", "fp16": "kernels::Fp16Weights", "int8": "kernels::Int8Weights"}
INT8_LIMIT = 127


def stored_weights(emitter: Emitter) -> Emitter:
    """``emitter`` wrapped where its operator is a product whose weights the target may store smaller."""
    op = emitter.op
    if type(op) in (Gemm, MatMul) or (isinstance(op, FusedGemm) and not op.pool_rows):
        return StoredWeightsEmitter(emitter)
    return emitter


def store(b: np.ndarray, dtype: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(B (K x N float32) in panels as ``dtype``'s bits, the per-column scales for int8 or None)."""
    k, n = b.shape
    panels = -(-n // PANEL_COLUMNS)
    padded = np.zeros((k, panels * PANEL_COLUMNS), np.float32)
    padded[:, :n] = b
    scales = None
    if dtype == "int8":
        top = np.abs(padded).max(axis=0)
        scales = np.where(top > 0, top / INT8_LIMIT, 1).astype(np.float32)
        bits = np.clip(np.rint(padded / scales), -INT8_LIMIT, INT8_LIMIT).astype(np.int8)
        scales = scales[:n]
    elif dtype == "fp16":
        bits = padded.astype(np.float16).view(np.uint16)
    else:  # each 32 columns interleaved: column i, then 16 + i (kernels/wgemm.hxx: Bf16Weights)
        halves = padded.astype(ml_dtypes.bfloat16).view(np.uint16).reshape(k, -1, 2, PAIR_COLUMNS)
        bits = halves.transpose(0, 1, 3, 2).reshape(k, -1)
    return np.ascontiguousarray(bits.reshape(k, panels, PANEL_COLUMNS).transpose(1, 0, 2)), scales


class StoredWeightsEmitter(Emitter):
    """A product's emitter with its constant B stored smaller (where :meth:`pack` finds one); the wrapped emitter
    otherwise."""

    def __init__(self, base: Emitter):
        super().__init__(base.op, base.target)
        self.base = base
        self.active = False
        self.gemm = isinstance(base.op, Gemm)
        # The added constant holding int8's column scales: after the operator's inputs (A, B and Gemm's C).
        self.scales_input = 3 if self.gemm else 2

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    @property
    def kernels(self) -> tuple[str, ...]:
        if not self.active:
            return tuple(self.base.kernels)
        activation = self.base.activation if self.gemm else None
        return ("wgemm",) + (tuple(activation.kernels) if activation is not None else ())

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [] if self.active else self.base.workspace(inputs, outputs)

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        b, a = constants.get(1), inputs[0]
        if b is None or b.ndim != 2 or b.dtype != np.float32 or a is None or a.dtype != np.float32:
            return self.base.pack(constants, inputs)
        self.active = True
        stored, scales = store(b.T if self.gemm and self.attrs["transB"] else b, self.target.weights)
        return {1: stored} if scales is None else {1: stored, self.scales_input: scales}

    def _sizes(self, ctx: NodeContext) -> tuple:
        """(M, N, K, A's row step, A's column step)."""
        a, b = ctx.inputs[0], ctx.inputs[1]
        if self.gemm:
            m, n, k = self.op._mnk(a, b)
            return (m, n, k) + ((1, m) if self.attrs["transA"] else (k, 1))
        sa, sb, _ = self.op._shapes(a, b)
        return num_elements(sa[:-1]), sb[-1], sa[-1], sa[-1], 1

    def emit(self, ctx: NodeContext) -> str:
        if not self.active:
            return self.base.emit(ctx)
        m, n, k, a_row, a_col = self._sizes(ctx)
        alpha, bias = (self.attrs["alpha"], self._bias(ctx, m, n)) if self.gemm else (1.0, "kernels::StoredBias{}")
        act = (self.base.activation_function(ctx) if self.gemm else None) or "[](float v) { return v; }"
        scales = ctx.x(self.scales_input) if self.target.weights == "int8" else "nullptr"
        weights = f"reinterpret_cast<const {WIDEN[self.target.weights]}::Stored *>({ctx.x(1)})"
        dims = ", ".join(ctx.dim(d) for d in (m, n, k))
        return (f"kernels::gemm_stored<{WIDEN[self.target.weights]}>({dims}, {ctx.literal(alpha, np.float32)}, "
                f"{ctx.x(0)}, {ctx.dim(a_row)}, {ctx.dim(a_col)},\n   {weights}, {scales}, {bias}, {ctx.y(0)}, {act});")

    def _bias(self, ctx: NodeContext, m: object, n: object) -> str:
        """Gemm's C with its broadcast steps and beta (none where beta is 0 or C omitted)."""
        c = ctx.inputs[2] if len(ctx.inputs) > 2 else None
        if c is None or self.attrs["beta"] == 0:
            return "kernels::StoredBias{}"
        row, column = broadcast_strides(c.shape, (m, n))
        beta = ctx.literal(self.attrs["beta"], np.float32)
        return f"kernels::StoredBias{{{ctx.x(2)}, {ctx.dim(row)}, {ctx.dim(column)}, {beta}}}"
