"""Reduce* operators on CUDA (float32 and float64), axes known when the code is generated, and ArgMax/ArgMin
(``kernels/reduce.cuh``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ir.dims import num_elements
from ....ir.dtypes import FLOAT_TYPES
from ....ops.base import contiguous_strides
from ....ops.reduce import _ArgReduce, _Reduce
from ..emitter import CudaEmitter, emits
from .movement import strided

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

# The kernel's fold of each reduction (ops.reduce.Reduction.name).
FOLDS = {"sum": "Sum", "mean": "Mean", "sum_square": "SumSquare", "l1": "L1", "l2": "L2", "log_sum": "LogSum",
         "log_sum_exp": "LogSumExp", "prod": "Prod", "max": "Max", "min": "Min"}


@emits(_Reduce)
class ReduceEmitter(CudaEmitter):
    """``kernels::reduce<Fold>``: a thread per output value over the kept and the reduced dims' strides."""

    kernels = ("reduce",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        if x.dtype not in FLOAT_TYPES:
            raise self.error(f"the CUDA target reduces float32 and float64 tensors, not {x.dtype}")
        if self.op.axes_at_run_time(ctx.inputs):
            raise self.error("the CUDA target reduces over axes known when the code is generated only")
        axes = self.op.reduced_axes(x.rank, self.op.axes_value(ctx.inputs))
        strides = contiguous_strides(x.shape)
        kept = [i for i in range(x.rank) if i not in axes]
        fold = FOLDS[self.op.reduction.name]
        return (f"kernels::reduce<kernels::Fold::{fold}>({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(ctx.outputs[0].size)}, "
                f"{strided(ctx, [x.shape[i] for i in kept], [strides[i] for i in kept])}, "
                f"{ctx.dim(num_elements([x.shape[i] for i in axes]))}, "
                f"{strided(ctx, [x.shape[i] for i in axes], [strides[i] for i in axes])}, stream_);")


@emits(_ArgReduce)
class ArgReduceEmitter(CudaEmitter):
    """``kernels::arg_reduce<maximum, last>``: a thread per column of the (outer, n, inner) view."""

    kernels = ("reduce",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        axis = self.op.axis(x.shape)
        flags = f"{str(self.op.maximum).lower()}, {str(bool(self.attrs.get('select_last_index', 0))).lower()}"
        sizes = (num_elements(x.shape[:axis]), x.shape[axis], num_elements(x.shape[axis + 1:]))
        return (f"kernels::arg_reduce<{flags}>({ctx.x(0)}, {ctx.y(0)}, {', '.join(ctx.dim(d) for d in sizes)}, "
                "stream_);")
