"""CPU emitters of the operators in :mod:`sofie_rdf.ops.movement`."""

from __future__ import annotations

import numpy as np

from ....ir.dims import Dim, simplify
from ....ops import movement as movement_ops
from ....ops.base import broadcast_strides, coalesce, contiguous_strides, normalize_axis
from ..._cxx.context import NodeContext
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


# Concats whose parts all have blocks (elements per row of the output) shorter than this run as one pass
# over the output (kernels::concat_rows); longer blocks are copied part by part, a copy call per block.
CONCAT_ROWS_MAX_BLOCK = 16


@emits(movement_ops.Concat)
class ConcatEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Concat`."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        axis = normalize_axis(self, self.attrs["axis"], y.rank)
        outer = ctx.dim(simplify(np.prod(y.shape[:axis], dtype=object) if axis else 1))
        inner = np.prod(y.shape[axis + 1:], dtype=object) if axis + 1 < y.rank else 1
        parts = [i for i, x in enumerate(ctx.inputs) if x is not None]
        blocks = [simplify(ctx.inputs[i].shape[axis] * inner) for i in parts]
        if len(parts) > 1 and all(isinstance(b, int) and b < CONCAT_ROWS_MAX_BLOCK for b in blocks):
            pointers = ctx.pointers("parts", [ctx.x(i) for i in parts], ctx.ctype(y.dtype))
            return (f"kernels::concat_rows({pointers}, {ctx.array('blocks', blocks)}, {len(parts)}, {outer}, "
                    f"{ctx.y(0)});")
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


def value_ptr(ctx: NodeContext, i: int, label: str) -> str:
    """C++ pointer to the value of input ``i``: the tensor when read at run time, a local array of the value
    known when generating, a null ``const int64_t *`` when omitted."""
    t = ctx.inputs[i] if i < len(ctx.inputs) else None
    if t is None:
        return "static_cast<const int64_t *>(nullptr)"
    if t.value is None:
        return ctx.x(i)
    return ctx.array(label, np.asarray(t.value).reshape(-1).tolist(), "int64_t")


def emit_runtime_copy(ctx: NodeContext, offset: str, strides: str, dims: str) -> str:
    """C++ copying input 0 read from ``offset`` with ``strides`` to output 0 of dims ``dims`` (C++ arrays
    computed while running): the strided copy of the constant path."""
    t = ctx.ctype(ctx.inputs[0].dtype)
    return (f"kernels::unary_strided({ctx.x(0)} + {offset}, {strides}, {ctx.y(0)}, {dims}, {ctx.outputs[0].rank}, "
            f"[](const {t} v) {{ return v; }});")


@emits(movement_ops.Slice)
class SliceEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Slice`: a strided copy, its ranges computed while
    running where a parameter is read at run time."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            return self.emit_at_run_time(ctx)
        x = ctx.inputs[0]
        ranges = self.op.ranges(ctx.inputs)
        strides = contiguous_strides(x.shape)
        offset = simplify(sum((s * st for (s, _, _), st in zip(ranges, strides)), 0))
        return emit_strided_copy(ctx, ctx.outputs[0].shape,
                                 [simplify(st * step) for (_, _, step), st in zip(ranges, strides)], offset)

    def emit_at_run_time(self, ctx: NodeContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        params = [value_ptr(ctx, i, label) for i, label in enumerate(("starts", "ends", "axes", "steps"), 1)]
        in_dims = ctx.array("in_dims", x.shape)
        rank = max(x.rank, 1)
        ctx.declarations += [f"bool axes_mask_[{rank}];", f"size_t out_dims_[{rank}];", f"std::ptrdiff_t strides_[{rank}];"]
        lines = [f"const std::ptrdiff_t offset_ = kernels::value_slice({', '.join(params)}, {ctx.inputs[1].shape[0]}, "
                 f"{in_dims}, {x.rank}, axes_mask_, out_dims_, strides_, {ctx.where});"]
        lines += [f"{ctx.dim(y.shape[i])} = out_dims_[{i}];" for i in self.op.runtime_axes(ctx.inputs)]
        lines += [ctx.reserve(0), emit_runtime_copy(ctx, "offset_", "strides_", "out_dims_")]
        return "\n".join(line for line in lines if line)


@emits(movement_ops.Split)
class SplitEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.movement.Split`: a strided copy per part, of sizes checked
    while running where they are read at run time."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            return self.emit_at_run_time(ctx)
        axis, sizes = self.op.parts(ctx.inputs)
        strides = contiguous_strides(ctx.inputs[0].shape)
        lines, start = [], 0
        for i, (y, size) in enumerate(zip(ctx.outputs, sizes)):
            lines.append(emit_strided_copy(ctx, y.shape, strides, simplify(start * strides[axis]), out=i))
            start = simplify(start + size)
        return "\n".join(lines)

    def emit_at_run_time(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        axis = normalize_axis(self, self.attrs["axis"], x.rank)
        outer, inner = (simplify(np.prod(dims, dtype=object)) if dims else 1 for dims in (x.shape[:axis], x.shape[axis + 1:]))
        parts = [y.shape[axis] for y in ctx.outputs]
        strides = ctx.array("strides", [simplify(x.shape[axis] * inner), inner, 1], "std::ptrdiff_t")
        lines = [f"kernels::value_split({ctx.x(1)}, {len(parts)}, {ctx.dim(x.shape[axis])}, {ctx.where});"]
        lines += [f"{ctx.dim(d)} = static_cast<size_t>({ctx.x(1)}[{k}]);" for k, d in enumerate(parts)]
        lines += [ctx.reserve(k) for k in range(len(parts))]
        t, start = ctx.ctype(x.dtype), 0
        for k, d in enumerate(parts):
            src = ctx.x(0) if start == 0 else f"{ctx.x(0)} + {ctx.dim(simplify(start * inner))}"
            lines += [f"const size_t part{k}_dims_[3] = {{{ctx.dim(outer)}, {ctx.dim(d)}, {ctx.dim(inner)}}};",
                      f"kernels::unary_strided({src}, {strides}, {ctx.y(k)}, part{k}_dims_, 3, [](const {t} v) {{ return v; }});"]
            start = simplify(start + d)
        return "\n".join(line for line in lines if line)


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
    """The CPU code of :class:`~sofie_rdf.ops.movement.Tile`: a strided copy reading each dim as
    (repeats, size) with strides (0, stride), the repeats read while running where not known."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        strides = [s for st in contiguous_strides(x.shape) for s in (0, st)]
        if self.op.at_run_time(ctx.inputs):
            return self.emit_at_run_time(ctx, strides)
        shape = tuple(v for d, r in zip(x.shape, self.op.repeats(ctx.inputs)) for v in (r, d))
        return emit_strided_copy(ctx, shape, strides)

    def emit_at_run_time(self, ctx: NodeContext, strides: list) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        rank = max(x.rank, 1)
        st = ctx.array("strides", strides, "std::ptrdiff_t")
        repeats = ", ".join(f"kernels::value_dim({ctx.x(1)}[{i}], {ctx.where}, \"a repeat count\")" for i in range(x.rank))
        tiled = ", ".join(f"repeats_[{i}], {ctx.dim(d)}" for i, d in enumerate(x.shape))
        t = ctx.ctype(x.dtype)
        lines = [f"const size_t repeats_[{rank}] = {{{repeats or '0'}}};"]
        lines += [f"{ctx.dim(d)} = {ctx.dim(x.shape[i])} * repeats_[{i}];" for i, d in enumerate(y.shape)]
        lines += [ctx.reserve(0), f"const size_t tiled_dims_[{2 * rank}] = {{{tiled or '0'}}};",
                  f"kernels::unary_strided({ctx.x(0)}, {st}, {ctx.y(0)}, tiled_dims_, {2 * x.rank}, "
                  f"[](const {t} v) {{ return v; }});"]
        return "\n".join(line for line in lines if line)
