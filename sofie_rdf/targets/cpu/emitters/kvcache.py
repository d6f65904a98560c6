"""CPU emitters of the operators in :mod:`sofie_rdf.ops.kvcache`."""

from __future__ import annotations

from ....ir.dims import num_elements
from ....ops import kvcache as kvcache_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits, optional_ptr


@emits(kvcache_ops.TensorScatter)
class TensorScatterEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.kvcache.TensorScatter`."""

    kernels = ("kvcache",)

    def emit(self, ctx: NodeContext) -> str:
        axis = self.op.layout(ctx.inputs)
        past, update = ctx.inputs[0], ctx.inputs[1]
        outer, inner = ctx.dim(num_elements(past.shape[1:axis])), ctx.dim(num_elements(past.shape[axis + 1:]))
        sizes = f"{ctx.dim(past.shape[0])}, {outer}, {ctx.dim(past.shape[axis])}, {ctx.dim(update.shape[axis])}, {inner}"
        circular = "true" if self.attrs.get("mode", "linear") == "circular" else "false"
        return f"kernels::tensor_scatter({ctx.x(0)}, {ctx.x(1)}, {optional_ptr(ctx, 2)}, {ctx.y(0)}, {sizes}, {circular});"
