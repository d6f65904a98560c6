"""Views on CUDA (Reshape, Flatten, Squeeze, Identity, Dropout, ...): no code, the output shares the input's
device memory (the memory plan's ``view``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ops import shape as shape_ops
from ..emitter import CudaEmitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


@emits(shape_ops.ViewOp)
class ViewEmitter(CudaEmitter):
    """No code; a shape read while the code runs (a Reshape target computed on the device) is refused."""

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            raise self.error("the CUDA target cannot read a shape computed while the model runs")
        return ""
