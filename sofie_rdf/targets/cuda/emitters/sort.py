"""TopK on CUDA (``kernels/sort.cuh``): K known when the code is generated, at most :data:`MAX_K`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ops.sort import TopK
from ..emitter import CudaEmitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

# A column's K best values live in registers: beyond this, a per-column sort would be the kernel to write.
MAX_K = 64


@emits(TopK)
class TopKEmitter(CudaEmitter):
    """``kernels::topk<K, largest>``: a thread per column (sorted output whatever ``sorted`` says, which allows it)."""

    kernels = ("sort",)

    def emit(self, ctx: NodeContext) -> str:
        outer, n, inner, k, _ = self.op.layout(ctx.inputs)
        if not isinstance(k, int) or k > MAX_K:
            raise self.error(f"the CUDA target takes a K known when the code is generated, at most {MAX_K}; got {k}")
        if k == 0:
            return ""  # empty outputs
        largest = str(self.op.largest()).lower()
        return (f"kernels::topk<{k}, {largest}>({ctx.x(0)}, {ctx.y(0)}, {ctx.y(1)}, {ctx.dim(outer)}, {ctx.dim(n)}, "
                f"{ctx.dim(inner)}, stream_);")
