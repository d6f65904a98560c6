"""CPU emitters of the operators in :mod:`sofie_rdf.ops.movement`."""

from __future__ import annotations

import numpy as np

from ....ir.dims import Dim, simplify
from ....ops import movement as movement_ops
from ....ops.base import broadcast_strides, coalesce, contiguous_strides, normalize_axis
from ..context import NodeContext
from ..emitter import Emitter, emits


def emit_strided_copy(ctx: NodeContext, shape: tuple, strides: list, offset: Dim = 0, out: int = 0) -> str:
    """C++ copying input 0 (read from ``offset`` with ``strides``) to output ``out``."""
    shape, (strides,) = coalesce(shape, strides)
    t = ctx.ctype(ctx.inputs[0].dtype)
    dims = ctx.array("shape", shape)
    st = ctx.array("strides", strides, "std::ptrdiff_t")
    src = ctx.x(0) if offset == 0 else f"{ctx.x(0)} + {ctx.dim(offset)}"
    return (f"kernels::unary_strided({src}, {st}, {ctx.y(out)}, {dims}, {len(shape)}, "
            f"[](const {t} v) {{ return v; }});")


@emits(movement_ops.Transpose)
class TransposeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Transpose`."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        perm = self.op.perm(x.rank)
        strides = contiguous_strides(x.shape)
        return emit_strided_copy(ctx, ctx.outputs[0].shape, [strides[p] for p in perm])


@emits(movement_ops.Concat)
class ConcatEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Concat`."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        axis = normalize_axis(self, self.attrs["axis"], y.rank)
        outer = ctx.dim(simplify(np.prod(y.shape[:axis], dtype=object) if axis else 1))
        inner = np.prod(y.shape[axis + 1:], dtype=object) if axis + 1 < y.rank else 1
        lines, offset = [], 0
        out_block = simplify(y.shape[axis] * inner)
        for i, x in enumerate(ctx.inputs):
            if x is None:
                continue
            block = simplify(x.shape[axis] * inner)
            dst = ctx.y(0) if offset == 0 else f"{ctx.y(0)} + {ctx.dim(offset)}"
            lines.append(f"kernels::copy_blocks({ctx.x(i)}, {dst}, {outer}, {ctx.dim(block)}, {ctx.dim(out_block)});")
            offset = simplify(offset + block)
        return "\n".join(lines)


@emits(movement_ops.Slice)
class SliceEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Slice`."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        ranges = self.op.ranges(ctx.inputs)
        strides = contiguous_strides(x.shape)
        offset = simplify(sum((s * st for (s, _, _), st in zip(ranges, strides)), 0))
        return emit_strided_copy(ctx, ctx.outputs[0].shape,
                                 [simplify(st * step) for (_, _, step), st in zip(ranges, strides)], offset)


@emits(movement_ops.Split)
class SplitEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Split`."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        axis, sizes = self.op.parts(ctx.inputs)
        strides = contiguous_strides(ctx.inputs[0].shape)
        lines, start = [], 0
        for i, (y, size) in enumerate(zip(ctx.outputs, sizes)):
            lines.append(emit_strided_copy(ctx, y.shape, strides, simplify(start * strides[axis]), out=i))
            start = simplify(start + size)
        return "\n".join(lines)


@emits(movement_ops.Expand)
class ExpandEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Expand`."""

    kernels = ("elementwise", "broadcast")

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        if not self.op.at_run_time(ctx.inputs):
            return emit_strided_copy(ctx, y.shape, broadcast_strides(ctx.inputs[0].shape, y.shape))
        rank = y.rank
        padded = self.op.padded_input_dims(ctx.inputs)
        in_dims = ctx.array("in_dims", padded)
        computed = [i for i, d in enumerate(padded) if isinstance(d, int) and d == 1]  # the run-time dims (infer)
        expected = ctx.array("expected", [0 if i in computed else d for i, d in enumerate(y.shape)])
        lines = [f"size_t out_dims_[{max(rank, 1)}];", f"std::ptrdiff_t strides_[{max(rank, 1)}];",
                 f"kernels::expand_dims({ctx.x(1)}, {ctx.inputs[1].shape[0]}, {in_dims}, {expected}, {rank}, out_dims_);"]
        lines += [f"{ctx.dim(y.shape[i])} = out_dims_[{i}];" for i in computed]
        lines += [ctx.reserve(0), f"kernels::expand({ctx.x(0)}, {in_dims}, out_dims_, {rank}, strides_, {ctx.y(0)});"]
        return "\n".join(line for line in lines if line)


@emits(movement_ops.Tile)
class TileEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Tile`."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        shape, strides = [], []
        for d, r, s in zip(x.shape, self.op.repeats(ctx.inputs), contiguous_strides(x.shape)):
            shape += [r, d]
            strides += [0, s]
        return emit_strided_copy(ctx, tuple(shape), strides)
