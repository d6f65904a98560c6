"""Pooling on the CPU: every pooling operator is one reducer over the same window walk (``kernels::pool``).

The window geometry (``ops/pool.py``) goes to the kernel as a ``PoolShape`` of local arrays; each family
(max, average, Lp) constructs its reducer, which writes the outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ir.dims import num_elements
from ....ops.pool import _AveragePool, _LpPool, _MaxPool
from ..emitter import Emitter, emits

if TYPE_CHECKING:
    from ..context import NodeContext


class PoolEmitter(Emitter):
    """The window walk shared by every pooling operator; subclasses name the reducer."""

    kernels = ("pool",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        g = self.op.geometry(x)
        names = [ctx.array(label, values) for label, values in (
            ("in_shape", g.spatial), ("out_shape", g.out), ("kernel", g.kernel), ("strides", g.strides),
            ("dilations", g.dilations), ("pads_begin", g.pads_begin), ("pads_end", g.pads_end))]
        shape = f"kernels::PoolShape{{{len(g.spatial)}, {', '.join(names)}}}"
        planes = ctx.dim(num_elements(x.shape[:2]))
        return f"kernels::pool({ctx.x(0)}, {planes}, {shape}, {self.reducer(ctx)});"

    def reducer(self, ctx: NodeContext) -> str:
        """C++ expression constructing the kernel's reducer."""
        raise NotImplementedError


@emits(_MaxPool)
class MaxPoolEmitter(PoolEmitter):
    """MaxPool and GlobalMaxPool: the maximum, and its flat index where Indices is wanted."""

    def reducer(self, ctx: NodeContext) -> str:
        indices = ctx.y(1) if len(ctx.outputs) > 1 and ctx.outputs[1] is not None else "nullptr"
        column_major = "true" if self.op.attr("storage_order", 0) else "false"
        t = ctx.ctype(ctx.inputs[0].dtype)
        return f"kernels::MaxPoolReducer<{t}>({ctx.y(0)}, {indices}, {column_major})"


@emits(_AveragePool)
class AveragePoolEmitter(PoolEmitter):
    """AveragePool and GlobalAveragePool."""

    def reducer(self, ctx: NodeContext) -> str:
        include = "true" if self.op.attr("count_include_pad", 0) else "false"
        return f"kernels::AveragePoolReducer<{ctx.ctype(ctx.inputs[0].dtype)}>({ctx.y(0)}, {include})"


@emits(_LpPool)
class LpPoolEmitter(PoolEmitter):
    """LpPool and GlobalLpPool."""

    def reducer(self, ctx: NodeContext) -> str:
        dt = ctx.inputs[0].dtype
        return f"kernels::LpPoolReducer<{ctx.ctype(dt)}>({ctx.y(0)}, {ctx.literal(float(self.op.p()), dt)})"
