"""Matrix products on the CPU: Gemm (and FusedGemm) through BLAS or register-tile panels, MatMul through BLAS.

Per-event inference multiplies few rows by each weight matrix; ``kernels::gemm`` hands larger products to
BLAS and runs small ones itself, streaming B row by row, so a constant B is stored untransposed (PyTorch and
Keras exports store Linear weights transposed, ``transB=1``).  Native code runs products with large outputs
and a constant float B as ``gemm_panels``, B stored in column panels.  A bias C and a fused activation are
applied by the same kernel call while each row of Y is in cache (``gemm_bias_act``).

:class:`ActivationCode` is how every emitter of a ``Fused*`` operator (``ops/conv.py``) applies its activation:
the activation operator bound to the same target gives the lambda and the kernels it calls.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Optional

import numpy as np

from ....ir import TensorType
from ....ir.dims import num_elements
from ....ops.base import broadcast_strides, coalesce
from ....ops.fused import FusedActivation, FusedGemm, SelectionGemm
from ....ops.gemm import Gemm, MatMul
from ..emitter import Emitter, emits
from .reduce import FOLDS

if TYPE_CHECKING:
    from ....ops.base import Op
    from ..._cxx.context import NodeContext
    from .. import CpuTarget

# Products served by gemm_panels (kernels/gemm.hxx) in native code: a constant float B stored in panels of
# PANEL_COLUMNS columns (kPanelColumns), bias and activation applied to each register tile as it is written
# (BLAS and a pass after it go over Y twice), at least one whole panel of columns, at least PANEL_MIN_ROWS rows
# known when the code is generated, of any depth.  Measured with bias
# and ReLU against BLAS and its passes (Xeon, AVX-512), depth 10 to 256, 24 to 256 columns: 16 rows 0.56-1.02x
# its time, 64 to 4096 rows 0.68-1.01x (Deep Sets' 4096 x 64 x 64 layers 0.81-0.90x); built for AVX2 against
# OpenBLAS's Haswell kernels, 64 to 4096 rows, 0.81-1.07x but 1.19x on 1024 x 8 x 256; on a generator's
# 64 x 100 x 40500 layer + Sigmoid (AVX2), 0.93x.  Fewer rows make the tiles load- or latency-bound: 4 to 15 rows
# took 1.1-7x the small-product loop's time, one row 1.2-2.2x.  A row count known only when the code runs (the
# open batch of every exported model) takes the panels too: gemm_panels_rows chooses gemm_panels' tiles from
# PANEL_MIN_ROWS rows and tiles of one or two rows over eight panels below (kernels/gemm.hxx).  From
# PANEL_MIN_STREAMED_ROWS rows, outputs beyond L2
# (PANEL_MIN_OUTPUTS elements, kGemmStreamedOutput) take the panels too: BLAS and the activation's pass after it
# would go over Y twice.  Deeper products (a transformer's 512 -> 128 feed-forward output, depth 384 to 8192), on a
# Sapphire Rapids-class Xeon against OpenBLAS's SkylakeX kernels: 0.5x to 0.95x the time, where BLAS took 1.15x to
# 1.27x onnxruntime's (MLAS) on 128 x 384..1024 x 128.
PANEL_COLUMNS = 16
PANEL_MIN_ROWS = 16
PANEL_MIN_STREAMED_ROWS = 4
PANEL_MIN_OUTPUTS = 1 << 18
# Products of at most this many terms per output run as gemm_shallow in register-tile code (kernels/gemm.hxx: B's
# 2K vectors held in registers while the rows stream past).
SHALLOW_DEPTH = 12


# The activation of a kernel call that has none: kernels/gemm.hxx's Identity, a type kernels can tell from an
# activation (a copy of a tile's row is then kept out of GCC's `rep movs`).
IDENTITY = "kernels::Identity{}"


class ActivationCode(Emitter):
    """An emitter whose operator may carry a fused activation (:class:`~sofie_rdf.ops.fused.FusedActivation`),
    applied to every output by the base operator's kernel through a lambda."""

    # The kernels of the base operator's code; :attr:`kernels` adds the activation's.
    own_kernels: tuple[str, ...] = ()

    @cached_property
    def activation(self) -> Optional[Emitter]:
        """The fused activation bound to this target, None for the plain operator."""
        if not isinstance(self.op, FusedActivation) or not self.op.has_activation:
            return None
        return self.target.bind(self.op.activation_op())

    @property
    def kernels(self) -> tuple[str, ...]:
        """The base operator's kernels and those the activation's code calls (e.g. fastmath for Sigmoid)."""
        own = self.own_kernels
        return own if self.activation is None else tuple(dict.fromkeys(own + tuple(self.activation.kernels)))

    def activation_function(self, ctx: NodeContext) -> Optional[str]:
        """The lambda applied to every output, None without a fused activation."""
        return None if self.activation is None else self.activation.function(ctx)

    def activation_or_identity(self, ctx: NodeContext) -> str:
        """The activation's lambda, or :data:`IDENTITY` where none is fused."""
        return self.activation_function(ctx) or IDENTITY


@emits(Gemm, FusedGemm)
class GemmEmitter(ActivationCode):
    """Gemm: one kernel call, ``gemm``, ``gemm_bias_act`` (a bias C or an activation follows the product) or,
    with B packed in panels, ``gemm_panels``."""

    own_kernels = ("gemm",)

    # Set by :meth:`pack`: how B is stored.  ``b_transposed``: B's stored order is the model's transB
    # (False once a transposed constant B is stored untransposed); ``panel_columns``: N where B is in panels
    # of PANEL_COLUMNS columns ((panels, K, PANEL_COLUMNS), zero-padded), None where it is not.
    b_transposed: bool
    panel_columns: Optional[int] = None

    def __init__(self, op: Op, target: CpuTarget):
        super().__init__(op, target)
        self.b_transposed = bool(self.attrs["transB"])
        # rows per pooled row of a FusedGemm that sums or averages runs of its rows (0: none)
        self.pool_rows = op.pool_rows if isinstance(op, FusedGemm) else 0

    @property
    def kernels(self) -> tuple[str, ...]:
        """A pooled product without panels sums its rows with ``reduce_sum`` after the product."""
        pooled = ("reduce",) if self.pool_rows and not self.panel_columns else ()
        return tuple(dict.fromkeys(super().kernels + pooled))

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """The whole product, for a pooled product without panels (whose tiles pool as they go)."""
        if not self.pool_rows or self.panel_columns:
            return super().workspace(inputs, outputs)
        m, n, _ = self.op._mnk(inputs[0], inputs[1])
        return [TensorType(inputs[0].dtype, (m, n))]

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        """A constant B in panels for gemm_panels where it serves the product, else stored untransposed: the
        small-product kernel streams B row by row."""
        b = constants.get(1)
        if b is None or b.ndim != 2:
            return None
        b = b.T if self.attrs["transB"] else b
        if self.target.register_tiles and self._panels_serve(inputs, b):
            k, n = b.shape
            padded = np.zeros((k, -(-n // PANEL_COLUMNS) * PANEL_COLUMNS), b.dtype)
            padded[:, :n] = b
            panels = padded.reshape(k, -1, PANEL_COLUMNS).transpose(1, 0, 2)
            self.b_transposed, self.panel_columns = False, n
            return {1: np.ascontiguousarray(panels)}
        if not self.attrs["transB"]:
            return None
        self.b_transposed = False
        return {1: np.ascontiguousarray(b)}

    def _panels_serve(self, inputs: list[Optional[TensorType]], b: np.ndarray) -> bool:
        """Whether gemm_panels computes this product (B being ``b``, K x N): float32, fixed and large enough
        sizes, and C (if any) a row of N values."""
        a, c = inputs[0], inputs[2] if len(inputs) > 2 and self.attrs["beta"] != 0 else None
        if a is None or a.rank != 2:
            return False
        m = a.shape[1] if self.attrs["transA"] else a.shape[0]
        k, n = b.shape
        if b.dtype != np.float32 or n < PANEL_COLUMNS:
            return False
        if isinstance(m, int) and m < PANEL_MIN_ROWS and not (m >= PANEL_MIN_STREAMED_ROWS and m * n >= PANEL_MIN_OUTPUTS):
            return False  # (a row count known only while running: gemm_panels_rows chooses then)
        return c is None or (c.size == n and c.rank in (1, 2) and c.shape[-1] == n)

    def emit(self, ctx: NodeContext) -> str:
        a, b = ctx.inputs[0], ctx.inputs[1]
        c = ctx.inputs[2] if len(ctx.inputs) > 2 and self.attrs["beta"] != 0 else None
        m, n, k = self.op._mnk(a, b)  # the model's shapes and transB: the IR keeps B's meaning
        dt = a.dtype
        trans = ", ".join(str(t).lower() for t in (bool(self.attrs["transA"]), self.b_transposed))
        product = (f"{trans}, {ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)}, {ctx.literal(self.attrs['alpha'], dt)}, "
                   f"{ctx.x(0)}, {ctx.x(1)}")
        act = self.activation_function(ctx)
        if self.panel_columns:
            return self._emit_panels(ctx, m, n, k, c is not None, act)
        y = ctx.w(0) if self.pool_rows else ctx.y(0)
        if c is None and act is None:
            call = f"kernels::gemm({product}, {ctx.literal(0.0, dt)}, {y});"
        else:
            bias = "nullptr, 0, 0"
            if c is not None:
                row, col = broadcast_strides(c.shape, (m, n))
                bias = f"{ctx.x(2)}, {ctx.dim(row)}, {ctx.dim(col)}"
            beta = ctx.literal(self.attrs["beta"] if c is not None else 0.0, dt)
            call = f"kernels::gemm_bias_act({product}, {beta}, {bias}, {y}, {act or IDENTITY});"
        return call + (self._pool_rows_after(ctx, m, n) if self.pool_rows else "")

    def _pool_rows_after(self, ctx: NodeContext, m: int, n: int) -> str:
        """The pooled rows from the product in the workspace: runs of pool_rows rows summed (or averaged)."""
        fold = FOLDS[self.attrs["pool"]].sum_lambdas(ctx, ctx.inputs[0].dtype)
        p = self.pool_rows
        return f"\nkernels::reduce_sum({ctx.w(0)}, {ctx.y(0)}, {ctx.dim(m // p)}, {p}, {ctx.dim(n)},\n   {fold});"

    def _emit_panels(self, ctx: NodeContext, m: int, n: int, k: int, has_bias: bool, act: Optional[str]) -> str:
        """The gemm_panels call: A's strides from transA, C (a row of N) as the bias."""
        a_row, a_col = (1, m) if self.attrs["transA"] else (k, 1)
        dt = ctx.inputs[0].dtype
        beta = ctx.literal(self.attrs["beta"] if has_bias else 0.0, dt)
        act = act or IDENTITY
        alpha, b, bias = ctx.literal(self.attrs["alpha"], dt), ctx.x(1), ctx.x(2) if has_bias else "nullptr"
        rows, a_row, a_col = (ctx.dim(d) for d in (m, a_row, a_col))
        if k <= SHALLOW_DEPTH and not self.pool_rows:
            return (f"kernels::gemm_shallow<{k}>({rows}, {n}, {alpha}, {ctx.x(0)}, {a_row}, {a_col}, {b}, {beta}, "
                    f"{bias}, {ctx.y(0)}, {act});")
        pool = f", {self.pool_rows}, {'true' if self.attrs['pool'] == 'mean' else 'false'}" if self.pool_rows else ""
        kernel = "gemm_panels_rows" if not isinstance(m, int) and not self.pool_rows else "gemm_panels"
        return (f"kernels::{kernel}({rows}, {n}, {k}, {alpha}, {ctx.x(0)}, {a_row}, {a_col}, {b}, {beta}, {bias}, "
                f"{ctx.y(0)}, {act}{pool});")


@emits(MatMul)
class MatMulEmitter(Emitter):
    """MatMul: one product with the batch rows stacked where B is one matrix, else a batched product over the
    broadcast batch dims (coalesced)."""

    kernels = ("gemm",)

    def emit(self, ctx: NodeContext) -> str:
        a, b = ctx.inputs[0], ctx.inputs[1]
        sa, sb, batch = self.op._shapes(a, b)
        m, k, n = sa[-2], sa[-1], sb[-1]
        one = ctx.literal(1.0, a.dtype)
        zero = ctx.literal(0.0, a.dtype)
        b_is_matrix = all(isinstance(d, int) and d == 1 for d in sb[:-2])
        if b_is_matrix:  # (..., M, K) x (K, N): one product with all batch rows stacked
            rows = num_elements(sa[:-1])
            return (f"kernels::gemm(false, false, {ctx.dim(rows)}, {ctx.dim(n)}, {ctx.dim(k)}, {one}, "
                    f"{ctx.x(0)}, {ctx.x(1)}, {zero}, {ctx.y(0)});")
        stride_a = [s * m * k for s in broadcast_strides(sa[:-2], batch)]
        stride_b = [s * k * n for s in broadcast_strides(sb[:-2], batch)]
        shape, (st_a, st_b) = coalesce(batch, stride_a, stride_b)
        dims = ctx.array("batch_shape", shape)
        pa, pb = ctx.array("a_strides", st_a, "std::ptrdiff_t"), ctx.array("b_strides", st_b, "std::ptrdiff_t")
        return (f"kernels::matmul_batched({ctx.x(0)}, {pa}, {ctx.x(1)}, {pb}, {ctx.y(0)}, {dims}, {len(shape)}, "
                f"{ctx.dim(m)}, {ctx.dim(n)}, {ctx.dim(k)});")


@emits(SelectionGemm)
class SelectionGemmEmitter(Emitter):
    """SelectionGemm: one ``selection_gemm`` call, B kept for an A that is not finite."""

    kernels = ("gemm",)

    def emit(self, ctx: NodeContext) -> str:
        a, b = ctx.inputs[0], ctx.inputs[1]
        sizes = ", ".join(ctx.dim(d) for d in (a.shape[0], b.shape[1], b.shape[0]))
        index_type = ctx.ctype(ctx.inputs[2].dtype)
        offsets = ctx.x(4) if self.attrs["mode"] == "scatter" else f"static_cast<const {index_type} *>(nullptr)"
        return (f"kernels::selection_gemm({sizes}, {ctx.literal(self.attrs['alpha'], a.dtype)}, {ctx.x(0)}, "
                f"{ctx.x(1)}, {ctx.x(2)}, {ctx.x(3)}, {offsets}, {ctx.y(0)});")
