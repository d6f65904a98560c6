"""LRN on the CPU: one call of ``kernels::lrn`` over (batch, channels, inner positions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ....ir.dims import num_elements
from ....ops.lrn import LRN
from ..emitter import Emitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


@emits(LRN)
class LrnEmitter(Emitter):
    """LRN: the parameters as double literals (the kernel sums squares in double)."""

    kernels = ("lrn",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        inner = num_elements(x.shape[2:])
        a = self.attrs
        return (f"kernels::lrn({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(x.shape[0])}, {ctx.dim(x.shape[1])}, "
                f"{ctx.dim(inner)}, {int(a['size'])}, {ctx.literal(a['alpha'], np.float64)}, "
                f"{ctx.literal(a['beta'], np.float64)}, {ctx.literal(a['bias'], np.float64)});")
