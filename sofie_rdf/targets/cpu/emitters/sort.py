"""CPU emitters of the operators in :mod:`sofie_rdf.ops.sort`."""

from __future__ import annotations

from ....ops import sort as sort_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(sort_ops.TopK)
class TopKEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.sort.TopK`."""

    kernels = ("sort",)

    def emit(self, ctx: NodeContext) -> str:
        outer, n, inner, k, _ = self.op.layout(ctx.inputs)
        sizes = ", ".join(ctx.dim(d) for d in (outer, n, inner, k))
        present = [i < len(ctx.outputs) and ctx.outputs[i] is not None for i in (0, 1)]
        values = ctx.y(0) if present[0] else f"static_cast<{ctx.ctype(ctx.inputs[0].dtype)} *>(nullptr)"
        indices = ctx.y(1) if present[1] else "nullptr"
        call = (f"kernels::topk({ctx.x(0)}, {values}, {indices}, {sizes}, {str(self.op.largest()).lower()}, "
                f"{ctx.w(0)});")
        if not self.op.k_at_run_time(ctx.inputs):
            return call
        reserve = [ctx.reserve(i) for i in (0, 1) if present[i]]
        return "\n".join([f"{ctx.dim(k)} = kernels::checked_k({ctx.x(1)}[0], {ctx.dim(n)});", *reserve, call])
