"""The GNN family's addressing on CUDA (``kernels/indexing.cuh``): GatherElements, ScatterElements (and opset 9's
Scatter) and ScatterND, every reduction; indices checked on the device (an index outside its axis raises after
the call, naming the node)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ....ir.dims import num_elements
from ....ir.dtypes import FLOAT_TYPES
from ....ops.base import contiguous_strides
from ....ops.indexing import GatherElements, ScatterElements, ScatterND
from ..emitter import CudaEmitter, emits
from ._structs import values

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

_REDUCTIONS = {"none": "None", "add": "Add", "mul": "Mul", "max": "Max", "min": "Min"}


def _addressing(ctx: NodeContext, emitter: CudaEmitter) -> tuple[str, int, str]:
    """(``Strided`` over the indices' shape with the data's strides, the axis, the axis length) of an element
    addressing (the strides are not merged: the axis must stay a dim of its own)."""
    data, indices = ctx.inputs[0], ctx.inputs[1]
    axis = emitter.op.axis(data)
    layout = (f"kernels::Strided<{data.rank}>{{{values(ctx, indices.shape, 'size_t')}, "
              f"{values(ctx, contiguous_strides(data.shape), 'long long')}}}")
    return layout, axis, ctx.dim(data.shape[axis])


@emits(GatherElements)
class GatherElementsEmitter(CudaEmitter):
    kernels = ("indexing",)
    reports = True

    def emit(self, ctx: NodeContext) -> str:
        layout, axis, n = _addressing(ctx, self)
        return (f"kernels::gather_elements({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {ctx.dim(ctx.outputs[0].size)}, {layout}, "
                f"{axis}, {n}, status_, {ctx.index}, stream_);")


class ScatterEmitter(CudaEmitter):
    """The reductions other than "none" need atomics on float32 or float64."""

    kernels = ("indexing",)
    reports = True

    @classmethod
    def supports(cls, op: Any) -> bool:
        return op.reduction() in _REDUCTIONS

    def reduction(self, ctx: NodeContext) -> str:
        reduction = self.op.reduction()
        if reduction != "none" and ctx.inputs[0].dtype not in FLOAT_TYPES:
            raise self.error(f"the CUDA target reduces scattered {ctx.inputs[0].dtype} values with 'none' only")
        return f"kernels::Scatter::{_REDUCTIONS[reduction]}"


@emits(ScatterElements)
class ScatterElementsEmitter(ScatterEmitter):
    def emit(self, ctx: NodeContext) -> str:
        layout, axis, n = _addressing(ctx, self)
        return (f"kernels::scatter_elements<{self.reduction(ctx)}>({ctx.x(0)}, {ctx.dim(ctx.inputs[0].size)}, {ctx.x(2)}, "
                f"{ctx.x(1)}, {ctx.y(0)}, {ctx.dim(ctx.inputs[1].size)}, {layout}, {axis}, {n}, status_, {ctx.index}, "
                "stream_);")


@emits(ScatterND)
class ScatterNDEmitter(ScatterEmitter):
    def emit(self, ctx: NodeContext) -> str:
        data, indices, updates = ctx.inputs[0], ctx.inputs[1], ctx.inputs[2]
        q = indices.shape[-1]
        strides = contiguous_strides(data.shape)
        dims = f"kernels::Strided<{q}>{{{values(ctx, data.shape[:q], 'size_t')}, {values(ctx, strides[:q], 'long long')}}}"
        return (f"kernels::scatter_nd<{self.reduction(ctx)}>({ctx.x(0)}, {ctx.dim(data.size)}, {ctx.x(2)}, {ctx.x(1)}, "
                f"{ctx.y(0)}, {ctx.dim(updates.size)}, {ctx.dim(num_elements(data.shape[q:]))}, {dims}, status_, "
                f"{ctx.index}, stream_);")
