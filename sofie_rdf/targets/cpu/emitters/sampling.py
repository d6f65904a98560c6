"""CPU emitters of the operators in :mod:`sofie_rdf.ops.sampling`."""

from __future__ import annotations

from ....ir.dims import num_elements
from ....ops import sampling as sampling_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits
from .movement import value_ptr


@emits(sampling_ops.GridSample)
class GridSampleEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.sampling.GridSample`."""

    kernels = ("sampling",)

    def emit(self, ctx: NodeContext) -> str:
        x, grid = ctx.inputs[0], ctx.inputs[1]
        mode, padding, align = self.op.settings()
        dims = ctx.array("dims", x.shape[2:])
        return (f"kernels::grid_sample({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {ctx.dim(x.shape[0])}, {ctx.dim(x.shape[1])}, "
                f"{dims}, {x.rank - 2}, {ctx.dim(num_elements(grid.shape[1:-1]))}, kernels::GridMode::{mode}, "
                f"kernels::GridPadding::{padding}, {'true' if align else 'false'});")


@emits(sampling_ops.AffineGrid)
class AffineGridEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.sampling.AffineGrid`."""

    kernels = ("sampling",)

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        r = y.rank - 2
        align = "true" if self.attrs.get("align_corners", 0) else "false"
        call = f"kernels::affine_grid({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(y.shape[0])}, {{dims}}, {r}, {align});"
        if not self.op.at_run_time(ctx.inputs):
            return call.format(dims=ctx.array("dims", y.shape[1:-1]))
        lines = [f"size_t dims_[{r}] = {{}};",  # size read now: checked, the grid's dims set
                 f"kernels::affine_grid_size({ctx.x(1)}, {r}, {ctx.dim(y.shape[0])}, dims_, {ctx.where});",
                 *(f"{ctx.dim(y.shape[1 + d])} = dims_[{d}];" for d in range(r)), ctx.reserve(0),
                 call.format(dims="dims_")]
        return "\n".join(line for line in lines if line)


@emits(sampling_ops.Col2Im)
class Col2ImEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.sampling.Col2Im`."""

    kernels = ("sampling",)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            return self.emit_at_run_time(ctx)
        x, y = ctx.inputs[0], ctx.outputs[0]
        image, block, counts, a = self.op.layout(ctx.inputs)
        r = len(image)
        arrays = [ctx.array(label, values) for label, values in (
            ("image", image), ("block", block), ("counts", counts), ("strides", a["strides"]),
            ("dilations", a["dilations"]), ("pads_begin", a["pads"][:r]))]
        return (f"kernels::col2im({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(x.shape[0])}, {ctx.dim(y.shape[1])}, {r}, "
                f"{', '.join(arrays)});")

    def emit_at_run_time(self, ctx: NodeContext) -> str:
        """image_shape or block_shape read now: checked, the output's dims set, then the same col2im."""
        x, y = ctx.inputs[0], ctx.outputs[0]
        r = self.op.runtime_rank(ctx.inputs)
        a = self.op.attributes(r)
        image, block = value_ptr(ctx, 1, "image_shape"), value_ptr(ctx, 2, "block_shape")
        params = [ctx.array(label, a[label]) for label in ("strides", "dilations", "pads")]
        lines = [f"size_t image_[{r}] = {{}}, block_[{r}] = {{}}, counts_[{r}] = {{}}, channels_ = 0;",
                 f"kernels::col2im_shape({image}, {block}, {r}, {ctx.dim(x.shape[1])}, {ctx.dim(x.shape[2])}, "
                 f"{', '.join(params)}, image_, block_, counts_, channels_, {ctx.where});"]
        read = [("channels_", y.shape[1])] if ctx.inputs[2].value is None else []  # else known: dims as they are
        read += [(f"image_[{d}]", y.shape[2 + d]) for d in range(r)] if ctx.inputs[1].value is None else []
        lines += [f"{ctx.dim(d)} = {value};" for value, d in read]
        lines.append(ctx.reserve(0))
        lines.append(f"kernels::col2im({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(x.shape[0])}, channels_, {r}, image_, block_, "
                     f"counts_, {params[0]}, {params[1]}, {params[2]});")
        return "\n".join(line for line in lines if line)


@emits(sampling_ops.MaxUnpool)
class MaxUnpoolEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.sampling.MaxUnpool`."""

    kernels = ("sampling",)

    def emit(self, ctx: NodeContext) -> str:
        return (f"kernels::max_unpool({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {ctx.dim(ctx.inputs[0].size)}, "
                f"{ctx.dim(ctx.outputs[0].size)});")
