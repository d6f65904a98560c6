"""CPU emitters of the operators in :mod:`sofie_rdf.ops.training`."""

from __future__ import annotations

import numpy as np

from ....ops import training as training_ops
from ..context import NodeContext
from ..emitter import Emitter, emits


@emits(training_ops._Optimizer)
class OptimizerEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.training._Optimizer`."""

    kernels = ("training",)

    def emit(self, ctx: NodeContext) -> str:
        n = self.op.tensors(len(ctx.inputs))
        r, t = f"static_cast<double>({ctx.x(0)}[0])", f"{ctx.x(1)}[0]"
        params = [ctx.literal(float(self.attrs[p]), np.dtype(np.float64)) for p in self.op.params]
        if isinstance(self.op, training_ops.Momentum):  # the kernel's mode flag after the attributes
            params.append("true" if self.op.nesterov() else "false")
        lines = []
        for k in range(n):
            ins = [ctx.x(2 + group * n + k) for group in range(2 + self.op.states)]
            missing = f"static_cast<{ctx.ctype(ctx.inputs[2 + k].dtype)} *>(nullptr)"
            outs = [ctx.y(j * n + k) if j * n + k < len(ctx.outputs) else missing for j in range(1 + self.op.states)]
            size = ctx.dim(ctx.inputs[2 + k].size)
            lines.append(f"kernels::{self.op.function}({r}, {t}, {', '.join(ins)}, {size}, {', '.join(params + outs)});")
        return "\n".join(lines)
