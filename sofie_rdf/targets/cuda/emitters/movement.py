"""Data movement on CUDA (``kernels/movement.cuh``): Transpose, Slice and Expand as strided copies, Concat and
Split as 2-D copies, and Gather (indices checked on the device)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ir.dims import num_elements
from ....ops.base import broadcast_strides, coalesce, contiguous_strides, normalize_axis
from ....ops.indexing import Gather, wrap_indices
from ....ops.movement import Concat, Expand, Slice, Split, Transpose
from ..emitter import CudaEmitter, emits
from ._structs import values

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


def strided(ctx: NodeContext, shape: tuple, strides: list) -> str:
    """``kernels::Strided<rank>`` walking ``shape`` with the input's ``strides`` (adjacent dims merged; one dim
    of 1 where none is left)."""
    shape, (walk,) = coalesce(shape, strides)
    shape, walk = (shape, walk) if shape else ([1], [0])
    return f"kernels::Strided<{len(shape)}>{{{values(ctx, shape, 'size_t')}, {values(ctx, walk, 'long long')}}}"


def strided_copy(ctx: NodeContext, source: str, strides: list) -> str:
    """The ``kernels::strided_copy`` writing output 0 from ``source`` walked with ``strides``."""
    y = ctx.outputs[0]
    return f"kernels::strided_copy({source}, {ctx.y(0)}, {ctx.dim(y.size)}, {strided(ctx, y.shape, strides)}, stream_);"


@emits(Transpose)
class TransposeEmitter(CudaEmitter):
    """Each output dim walks the input dim the permutation names."""

    kernels = ("movement",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        strides = contiguous_strides(x.shape)
        return strided_copy(ctx, ctx.x(0), [strides[p] for p in self.op.perm(x.rank)])


@emits(Slice)
class SliceEmitter(CudaEmitter):
    """Each output dim walks its input dim from the start with the step (negative steps walk backwards)."""

    kernels = ("movement",)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            raise self.error("the CUDA target slices with starts, ends and steps known when the code is generated")
        x = ctx.inputs[0]
        strides = contiguous_strides(x.shape)
        ranges = self.op.ranges(ctx.inputs)
        start = sum((s * st for (s, _, _), st in zip(ranges, strides)), 0)
        return strided_copy(ctx, f"{ctx.x(0)} + {ctx.dim(start)}", [st * step for (_, _, step), st in zip(ranges, strides)])


@emits(Expand)
class ExpandEmitter(CudaEmitter):
    """The input walked with stride 0 along the dims it is broadcast over."""

    kernels = ("movement",)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            raise self.error("the CUDA target expands to shapes known when the code is generated")
        x, y = ctx.inputs[0], ctx.outputs[0]
        return strided_copy(ctx, ctx.x(0), broadcast_strides(x.shape, y.shape))


@emits(Concat)
class ConcatEmitter(CudaEmitter):
    """A 2-D copy per input into its columns of the (outer, axis * inner) view of the output."""

    kernels = ("movement",)

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        axis = normalize_axis(self, self.attrs["axis"], y.rank)
        outer, inner = num_elements(y.shape[:axis]), num_elements(y.shape[axis + 1:])
        lines, at = [], 0
        for k, x in enumerate(ctx.inputs):
            if x is None:
                continue
            cols = x.shape[axis] * inner
            lines.append(f"kernels::copy_rows({ctx.x(k)}, {ctx.dim(cols)}, {ctx.y(0)} + {ctx.dim(at * inner)}, "
                         f"{ctx.dim(y.shape[axis] * inner)}, {ctx.dim(outer)}, {ctx.dim(cols)}, stream_);")
            at = at + x.shape[axis]
        return "\n".join(lines)


@emits(Split)
class SplitEmitter(CudaEmitter):
    """A 2-D copy per output from its columns of the (outer, axis * inner) view of the input."""

    kernels = ("movement",)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            raise self.error("the CUDA target splits into parts known when the code is generated")
        x = ctx.inputs[0]
        axis, sizes = self.op.parts(ctx.inputs)
        outer, inner = num_elements(x.shape[:axis]), num_elements(x.shape[axis + 1:])
        lines, at = [], 0
        for k, size in enumerate(sizes):
            if k < len(ctx.outputs) and ctx.outputs[k] is not None:
                lines.append(f"kernels::copy_rows({ctx.x(0)} + {ctx.dim(at * inner)}, {ctx.dim(x.shape[axis] * inner)}, "
                             f"{ctx.y(k)}, {ctx.dim(size * inner)}, {ctx.dim(outer)}, {ctx.dim(size * inner)}, stream_);")
            at = at + size
        return "\n".join(lines)


@emits(Gather)
class GatherEmitter(CudaEmitter):
    """``kernels::gather``: indices known when generating are checked then; every index is checked on the
    device too (an index outside the axis raises after the call, naming the node)."""

    kernels = ("movement",)
    reports = True

    def emit(self, ctx: NodeContext) -> str:
        data, indices = ctx.inputs[0], ctx.inputs[1]
        axis = normalize_axis(self, self.attrs["axis"], data.rank)
        n = data.shape[axis]
        if indices.value is not None and isinstance(n, int):
            wrap_indices(self.op, indices.value, n)  # raises naming the node where one is out of range
        outer, inner = num_elements(data.shape[:axis]), num_elements(data.shape[axis + 1:])
        return (f"kernels::gather({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {ctx.dim(outer)}, {ctx.dim(n)}, "
                f"{ctx.dim(indices.size)}, {ctx.dim(inner)}, status_, {ctx.index}, stream_);")


