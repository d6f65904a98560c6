"""Operators whose output size depends on the input values: NonZero.

The size is a dim computed while ``infer`` runs (:meth:`Op.runtime_dim`):
the code counts first, records the count, reserves the output (its buffer only
grows past the largest count seen, so steady-state calls do not allocate)
and then writes it.  When the input is a constant the whole node folds.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from .base import EmitContext, Op
from .registry import register


@register
class NonZero(Op):
    """Indices of the non-zero elements, shape (rank, count), row-major order."""

    op_type = "NonZero"
    since_version = 9
    kernels = ("select",)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.rank == 0:
            raise self.error("a scalar input has no axes to index (rank >= 1 expected)")
        if x.value is not None and x.is_constant:
            return [TensorType(np.int64, (x.rank, int(np.count_nonzero(x.value))))]
        return [TensorType(np.int64, (x.rank, self.runtime_dim("count")))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        return [np.array(np.nonzero(values[0]), dtype=np.int64).reshape(values[0].ndim, -1)]

    def emit(self, ctx: EmitContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        count, n = ctx.dim(y.shape[1]), ctx.dim(x.size)
        shape = ctx.array("shape", x.shape)
        lines = [f"{count} = kernels::count_nonzero({ctx.x(0)}, {n});" if ctx.reserve(0) else "",
                 ctx.reserve(0),
                 f"kernels::nonzero({ctx.x(0)}, {shape}, {x.rank}, {n}, {count}, {ctx.y(0)});"]
        return "\n".join(line for line in lines if line)
