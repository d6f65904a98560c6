"""Softmax and LogSoftmax on CUDA (both opset semantics, through the operator's (outer, n, inner) view)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ops.softmax import _Softmax
from ..emitter import CudaEmitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


@emits(_Softmax)
class SoftmaxEmitter(CudaEmitter):
    """``kernels::softmax<Log>``: a block per contiguous row, or a thread per strided column."""

    kernels = ("softmax",)

    def emit(self, ctx: NodeContext) -> str:
        outer, n, inner = self.op.view3(ctx.inputs[0].shape)
        log = str(bool(self.op.logarithm)).lower()
        return (f"kernels::softmax<{log}>({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(outer)}, {ctx.dim(n)}, {ctx.dim(inner)}, "
                "stream_);")
