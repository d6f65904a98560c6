"""Operators whose output size depends on the input values: NonZero, and Range when its bounds are computed.

The size is a dim computed while ``infer`` runs (:meth:`Op.runtime_dim`):
the code counts first, records the count, reserves the output (its buffer only
grows past the largest count seen, so steady-state calls do not allocate)
and then writes it.  When the input is a constant the whole node folds.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import simplify
from .base import EmitContext, Op
from .registry import register


@register
class NonZero(Op):
    """Indices of the non-zero elements, shape (rank, count), row-major order."""

    op_type = "NonZero"
    since_version = 9
    kernels = ("select",)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.rank == 0:
            raise self.error("a scalar input has no axes to index (rank >= 1 expected)")
        if x.value is not None and x.is_constant:
            return [TensorType(np.int64, (x.rank, int(np.count_nonzero(x.value))))]
        return [TensorType(np.int64, (x.rank, self.runtime_dim("count")))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        return [np.array(np.nonzero(values[0]), dtype=np.int64).reshape(values[0].ndim, -1)]

    def emit(self, ctx: EmitContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        count, n = ctx.dim(y.shape[1]), ctx.dim(x.size)
        shape = ctx.array("shape", x.shape)
        lines = [f"{count} = kernels::count_nonzero({ctx.x(0)}, {n});" if ctx.reserve(0) else "",
                 ctx.reserve(0),
                 f"kernels::nonzero({ctx.x(0)}, {shape}, {x.rank}, {n}, {count}, {ctx.y(0)});"]
        return "\n".join(line for line in lines if line)


@register
class Range(Op):
    """start, start + delta, ... up to limit (excluded): ``max(ceil((limit - start) / delta), 0)`` values.

    Bounds known when the code is generated fold to a constant, or, when
    symbolic (``Range(0, seq_len, 1)`` over a symbolic sequence length), give a
    symbolic length; bounds computed at run time make the length a run-time dim.
    """

    op_type = "Range"
    since_version = 11
    value_inputs = (0, 1, 2)
    kernels = ("select",)

    def at_run_time(self, inputs) -> bool:
        return any(t.value is None for t in inputs[:3])

    def scalars(self, inputs) -> list:
        out = []
        for i, what in enumerate(("start", "limit", "delta")):
            v = np.asarray(inputs[i].value)
            if v.size != 1:
                raise self.error(f"{what} must be a scalar, got shape {v.shape}")
            out.append(v.reshape(-1)[0])
        if out[2] == 0:
            raise self.error("delta must not be 0")
        return out

    def infer(self, inputs):
        dtype = inputs[0].dtype
        if any(t.size != 1 or t.dtype != dtype for t in inputs[:3]):
            raise self.error(f"start, limit and delta must be scalars of one type, got {[t.dtype for t in inputs[:3]]}")
        if self.at_run_time(inputs):
            return [TensorType(dtype, (self.runtime_dim("count"),))]
        start, limit, delta = self.scalars(inputs)
        if any(isinstance(v, sympy.Expr) and not v.is_number for v in (start, limit, delta)):
            if dtype.kind != "i":
                raise self.error(f"symbolic bounds need an integer type, got {dtype}")
            count = simplify(sympy.Max(sympy.ceiling((limit - start) / delta), 0))
        else:
            count = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
        return [TensorType(dtype, (count,))]

    def evaluate(self, values):
        start, limit, delta = (np.asarray(v).reshape(-1)[0] for v in values[:3])
        return [np.arange(start, limit, delta).astype(np.asarray(values[0]).dtype)]

    def emit(self, ctx: EmitContext) -> str:
        t = ctx.ctype(ctx.outputs[0].dtype)
        count = ctx.dim(ctx.outputs[0].shape[0])
        start, limit, delta = (self.scalar_cpp(ctx, i) for i in range(3))
        fill = f"for (size_t i = 0; i < {count}; ++i)\n   {ctx.y(0)}[i] = {start} + static_cast<{t}>(i) * {delta};"
        if not self.at_run_time(ctx.inputs):
            return fill
        return f"{count} = kernels::range_count<{t}>({start}, {limit}, {delta});\n{ctx.reserve(0)}\n{fill}"

    def scalar_cpp(self, ctx: EmitContext, i: int) -> str:
        """C++ value of start, limit or delta: read at run time, or the value known when generating."""
        t = ctx.inputs[i]
        if t.value is None:
            return f"{ctx.x(i)}[0]"
        v = np.asarray(t.value).reshape(-1)[0]
        if isinstance(v, sympy.Expr):
            return f"static_cast<{ctx.ctype(t.dtype)}>({ctx.dim(v)})"
        return ctx.literal(v, t.dtype)
