"""CPU emitters of the operators in :mod:`sofie_rdf.ops.softmax`."""

from __future__ import annotations

from ....ops import softmax as softmax_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(softmax_ops._Softmax)
class _SoftmaxEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.softmax._Softmax`."""

    kernels = ("softmax",)

    def emit(self, ctx: NodeContext) -> str:
        outer, n, inner = (ctx.dim(d) for d in self.op.view3(ctx.inputs[0].shape))
        log = "true" if self.op.logarithm else "false"
        return f"kernels::softmax({ctx.x(0)}, {ctx.y(0)}, {outer}, {n}, {inner}, {log});"
