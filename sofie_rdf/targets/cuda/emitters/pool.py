"""Pooling on CUDA: Max, Average and Lp (p 1 or 2), windowed and global, 1-D to 3-D (``kernels/pool.cuh``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ....ir.dims import num_elements
from ....ops.pool import _AveragePool, _LpPool, _MaxPool
from ..emitter import CudaEmitter, emits
from .conv import window

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


@emits(_MaxPool, _AveragePool, _LpPool)
class PoolEmitter(CudaEmitter):
    """``kernels::pool<Kind>``: a thread per output value."""

    kernels = ("pool",)

    @classmethod
    def supports(cls, op: Any) -> bool:
        """MaxPool's Indices output and Lp norms other than 1 and 2 have no kernel yet."""
        if isinstance(op, _MaxPool):
            return not (len(op.node.outputs) > 1 and op.node.outputs[1])
        return not isinstance(op, _LpPool) or op.attr("p", 2) in (1, 2)

    def kind(self) -> str:
        if isinstance(self.op, _MaxPool):
            return "Max"
        if isinstance(self.op, _LpPool):
            return f"L{self.op.attr('p', 2)}"
        return "AverageIncludePad" if self.op.attr("count_include_pad", 0) else "Average"

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        g = self.op.geometry(x)
        win = window(ctx, g.spatial, g.out, g.kernel, g.strides, g.dilations, g.pads_begin, g.pads_end)
        planes = ctx.dim(num_elements(x.shape[:2]))
        return f"kernels::pool<kernels::Pool::{self.kind()}>({ctx.x(0)}, {ctx.y(0)}, {planes}, {win}, stream_);"
