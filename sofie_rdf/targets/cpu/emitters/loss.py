"""CPU emitters of the operators in :mod:`sofie_rdf.ops.loss`."""

from __future__ import annotations

import numpy as np

from ....ir.dims import num_elements
from ....ops import loss as loss_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(loss_ops._ClassLoss)
class ClassLossEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.loss._ClassLoss`."""

    kernels = ("loss",)

    def emit(self, ctx: NodeContext) -> str:
        scores = ctx.inputs[0]
        t = ctx.ctype(scores.dtype)
        sizes = f"{ctx.dim(scores.shape[0])}, {ctx.dim(scores.shape[1])}, {ctx.dim(num_elements(scores.shape[2:]))}"
        lines = []
        logp = ctx.x(0)
        if self.op.log_softmax:
            logp = ctx.y(1) if self.op.wants_log_prob() else ctx.w(0)
            lines.append(f"kernels::softmax<{t}>({ctx.x(0)}, {logp}, {sizes}, true);  // log-softmax over the classes")
        ignore = self.attrs.get("ignore_index")
        weight = ctx.x(2) if len(ctx.inputs) > 2 and ctx.inputs[2] is not None else f"static_cast<const {t} *>(nullptr)"
        lines.append(f"kernels::nll_loss({logp}, {ctx.x(1)}, {weight}, {ctx.y(0)}, {sizes}, "
                     f"{'true' if ignore is not None else 'false'}, {ctx.literal(ignore or 0, np.int64)}, "
                     f"kernels::LossReduction::{self.op.reduction()});")
        return "\n".join(lines)
