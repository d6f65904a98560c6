"""Data movement on CUDA: Transpose (a strided copy) and Gather with indices known when the code is generated
(``kernels/movement.cuh``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ....ir.dims import num_elements
from ....ops.base import coalesce, normalize_axis
from ....ops.indexing import Gather, wrap_indices
from ....ops.movement import Transpose
from ..emitter import CudaEmitter, emits
from ._structs import values

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


def contiguous_strides(shape: tuple) -> list:
    """Element strides of a C-contiguous tensor of ``shape`` (dims may be symbolic)."""
    return [num_elements(shape[d + 1:]) for d in range(len(shape))]


@emits(Transpose)
class TransposeEmitter(CudaEmitter):
    """``kernels::strided_copy``: each output dim walks the input dim the permutation names."""

    kernels = ("movement",)

    def emit(self, ctx: NodeContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        strides = contiguous_strides(x.shape)
        perm = self.op.perm(x.rank)
        shape, (walk,) = coalesce(y.shape, [strides[p] for p in perm])
        layout = f"kernels::Strided<{max(len(shape), 1)}>{{{values(ctx, shape or [1], 'size_t')}, " \
                 f"{values(ctx, walk or [0], 'long long')}}}"
        return f"kernels::strided_copy({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(y.size)}, {layout}, stream_);"


@emits(Gather)
class GatherEmitter(CudaEmitter):
    """``kernels::gather``; indices computed while the model runs have no range check on the GPU yet and are
    refused."""

    kernels = ("movement",)

    def emit(self, ctx: NodeContext) -> str:
        data, indices = ctx.inputs[0], ctx.inputs[1]
        if indices.value is None:
            raise self.error("the CUDA target gathers with indices known when the code is generated only "
                             "(indices computed while running need a device-side range check)")
        axis = normalize_axis(self, self.attrs["axis"], data.rank)
        n = data.shape[axis]
        if isinstance(n, int):
            wrap_indices(self.op, indices.value, n)  # raises naming the node where one is out of range
        elif np.any(indices.value < 0):
            raise self.error("negative indices along a dim known only while running are not supported")
        outer, inner = num_elements(data.shape[:axis]), num_elements(data.shape[axis + 1:])
        return (f"kernels::gather({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {ctx.dim(outer)}, {ctx.dim(n)}, "
                f"{ctx.dim(indices.size)}, {ctx.dim(inner)}, stream_);")
