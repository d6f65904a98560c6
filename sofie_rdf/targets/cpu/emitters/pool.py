"""Pooling on the CPU: every pooling operator is one reducer over the same window walk (``kernels::pool``).

The window geometry (``ops/pool.py``) goes to the kernel as a ``PoolShape`` of local arrays; each family
(max, average, Lp) constructs its reducer, which writes the outputs.  MaxPool without Indices and
AveragePool in float or double take ``kernels::pool_lines`` instead, vectorized along the last axis: it
needs a line of the padded input and the divisor of each output column as scratch.  It hands the 2 x 2 (or
2 x 2 x 2) stride-2 windows of CNNs on lines of whole vectors to ``kernels::pool_pairs``, which decides when
the code runs (the line width and vector width are known there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from ....ir import TensorType
from ....ir.dims import num_elements
from ....ops.pool import _AveragePool, _LpPool, _MaxPool
from ..emitter import Emitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


# Element types pool_lines takes (the 16-bit floats go through the generic walk).
_LINE_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


class PoolEmitter(Emitter):
    """The window walk shared by every pooling operator; subclasses name the reducer."""

    kernels = ("pool",)

    def by_lines(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> bool:
        """Whether ``kernels::pool_lines`` computes the node (MaxPool without Indices, AveragePool)."""
        return False

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        if not self.by_lines(inputs, outputs):
            return []
        g = self.op.geometry(inputs[0])
        span = (g.out[-1] - 1) * g.strides[-1] + (g.kernel[-1] - 1) * g.dilations[-1] + 1  # pool_lines_span
        return [TensorType(inputs[0].dtype, (span + g.out[-1],))]

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        g = self.op.geometry(x)
        names = [ctx.array(label, values) for label, values in (
            ("in_shape", g.spatial), ("out_shape", g.out), ("kernel", g.kernel), ("strides", g.strides),
            ("dilations", g.dilations), ("pads_begin", g.pads_begin), ("pads_end", g.pads_end))]
        shape = f"kernels::PoolShape{{{len(g.spatial)}, {', '.join(names)}}}"
        planes = ctx.dim(num_elements(x.shape[:2]))
        if self.by_lines(ctx.inputs, ctx.outputs):
            t, include = ctx.ctype(x.dtype), "true" if self.op.attr("count_include_pad", 0) else "false"
            is_max = "true" if isinstance(self.op, _MaxPool) else "false"
            return (f"kernels::pool_lines<{t}, {is_max}>({ctx.x(0)}, {ctx.y(0)}, {planes}, {shape}, {include}, "
                    f"{ctx.w(0)});")
        return f"kernels::pool({ctx.x(0)}, {planes}, {shape}, {self.reducer(ctx)});"

    def reducer(self, ctx: NodeContext) -> str:
        """C++ expression constructing the kernel's reducer."""
        raise NotImplementedError


@emits(_MaxPool)
class MaxPoolEmitter(PoolEmitter):
    """MaxPool and GlobalMaxPool: the maximum, and its flat index where Indices is wanted."""

    def by_lines(self, inputs, outputs):
        return inputs[0].dtype in _LINE_TYPES and (len(outputs) < 2 or outputs[1] is None)

    def reducer(self, ctx: NodeContext) -> str:
        indices = ctx.y(1) if len(ctx.outputs) > 1 and ctx.outputs[1] is not None else "nullptr"
        column_major = "true" if self.op.attr("storage_order", 0) else "false"
        t = ctx.ctype(ctx.inputs[0].dtype)
        return f"kernels::MaxPoolReducer<{t}>({ctx.y(0)}, {indices}, {column_major})"


@emits(_AveragePool)
class AveragePoolEmitter(PoolEmitter):
    """AveragePool and GlobalAveragePool."""

    def by_lines(self, inputs, outputs):
        return inputs[0].dtype in _LINE_TYPES

    def reducer(self, ctx: NodeContext) -> str:
        include = "true" if self.op.attr("count_include_pad", 0) else "false"
        return f"kernels::AveragePoolReducer<{ctx.ctype(ctx.inputs[0].dtype)}>({ctx.y(0)}, {include})"


@emits(_LpPool)
class LpPoolEmitter(PoolEmitter):
    """LpPool and GlobalLpPool."""

    def reducer(self, ctx: NodeContext) -> str:
        dt = ctx.inputs[0].dtype
        return f"kernels::LpPoolReducer<{ctx.ctype(dt)}>({ctx.y(0)}, {ctx.literal(float(self.op.p()), dt)})"
