"""CPU emitters of the operators in :mod:`sofie_rdf.ops.sampling`."""

from __future__ import annotations

from ....ir.dims import num_elements
from ....ops import sampling as sampling_ops
from ..context import NodeContext
from ..emitter import Emitter, emits


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
        dims = ctx.array("dims", y.shape[1:-1])
        align = "true" if self.attrs.get("align_corners", 0) else "false"
        return (f"kernels::affine_grid({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(y.shape[0])}, {dims}, {y.rank - 2}, "
                f"{align});")


@emits(sampling_ops.Col2Im)
class Col2ImEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.sampling.Col2Im`."""

    kernels = ("sampling",)

    def emit(self, ctx: NodeContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        image, block, counts, a = self.op.layout(ctx.inputs)
        r = len(image)
        arrays = [ctx.array(label, values) for label, values in (
            ("image", image), ("block", block), ("counts", counts), ("strides", a["strides"]),
            ("dilations", a["dilations"]), ("pads_begin", a["pads"][:r]))]
        return (f"kernels::col2im({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(x.shape[0])}, {ctx.dim(y.shape[1])}, {r}, "
                f"{', '.join(arrays)});")


@emits(sampling_ops.MaxUnpool)
class MaxUnpoolEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.sampling.MaxUnpool`."""

    kernels = ("sampling",)

    def emit(self, ctx: NodeContext) -> str:
        return (f"kernels::max_unpool({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {ctx.dim(ctx.inputs[0].size)}, "
                f"{ctx.dim(ctx.outputs[0].size)});")
