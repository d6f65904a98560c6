"""CPU emitters of the operators in :mod:`sofie_rdf.ops.linalg`."""

from __future__ import annotations

from ....ops import linalg as linalg_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(linalg_ops.Det)
class DetEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.linalg.Det`."""

    kernels = ("linalg",)

    def emit(self, ctx: NodeContext) -> str:
        batch, n = (ctx.dim(d) for d in self.op.layout(ctx.inputs[0]))
        return f"kernels::det({ctx.x(0)}, {ctx.y(0)}, {batch}, {n}, {ctx.w(0)});"
