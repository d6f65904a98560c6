"""CPU emitters of the operators in :mod:`sofie_rdf.ops.training`."""

from __future__ import annotations

import numpy as np

from ....ops import training as training_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits

# The kernel of each optimizer (kernels/training.hxx) and the arguments it takes after the float attributes (in ``params`` order).
KERNELS = {
    "Momentum": ("momentum_update", lambda op: ["true" if op.nesterov() else "false"]),
    "Adagrad": ("adagrad_update", lambda op: []),
    "Adam": ("adam_update", lambda op: []),
}


@emits(training_ops._Optimizer)
class OptimizerEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.training._Optimizer`."""

    kernels = ("training",)

    def emit(self, ctx: NodeContext) -> str:
        n = self.op.tensors(len(ctx.inputs))
        r, t = f"static_cast<double>({ctx.x(0)}[0])", f"{ctx.x(1)}[0]"
        function, flags = KERNELS[self.op.op_type]
        params = [ctx.literal(float(self.attrs[p]), np.dtype(np.float64)) for p in self.op.params] + flags(self.op)
        lines = []
        for k in range(n):
            ins = [ctx.x(2 + group * n + k) for group in range(2 + self.op.states)]
            missing = f"static_cast<{ctx.ctype(ctx.inputs[2 + k].dtype)} *>(nullptr)"
            outs = [ctx.y(j * n + k) if j * n + k < len(ctx.outputs) else missing for j in range(1 + self.op.states)]
            size = ctx.dim(ctx.inputs[2 + k].size)
            lines.append(f"kernels::{function}({r}, {t}, {', '.join(ins)}, {size}, {', '.join(params + outs)});")
        return "\n".join(lines)
