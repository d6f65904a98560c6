"""CPU emitters of the operators in :mod:`sofie_rdf.ops.misc`."""

from __future__ import annotations

from ....ir.dims import num_elements
from ....ops import misc as misc_ops
from ....ops.base import coalesce, contiguous_strides
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(misc_ops._AxisView)
class AxisViewEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.misc._AxisView`."""

    kernels = ("misc",)


@emits(misc_ops.Hardmax)
class HardmaxEmitter(AxisViewEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.misc.Hardmax`."""

    def emit(self, ctx: NodeContext) -> str:
        sizes = ", ".join(ctx.dim(d) for d in self.op.view3(ctx.inputs[0].shape))
        return f"kernels::hardmax({ctx.x(0)}, {ctx.y(0)}, {sizes});"


@emits(misc_ops.LpNormalization)
class LpNormalizationEmitter(AxisViewEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.misc.LpNormalization`."""

    def emit(self, ctx: NodeContext) -> str:
        sizes = ", ".join(ctx.dim(d) for d in self.op.view3(ctx.inputs[0].shape))
        return f"kernels::lp_normalize({ctx.x(0)}, {ctx.y(0)}, {sizes}, {self.op.p()});"


@emits(misc_ops.MeanVarianceNormalization)
class MeanVarianceNormalizationEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.misc.MeanVarianceNormalization`."""

    kernels = ("misc",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        axes = self.op.axes(x.rank)
        strides = contiguous_strides(x.shape)
        args = []
        for label, part in (("kept", [i for i in range(x.rank) if i not in axes]), ("normalized", axes)):
            shape, (st,) = coalesce([x.shape[i] for i in part], [strides[i] for i in part])
            args += [ctx.array(f"{label}_shape", shape), ctx.array(f"{label}_strides", st, "std::ptrdiff_t"), str(len(shape))]
        return f"kernels::mean_variance_normalize({ctx.x(0)}, {ctx.y(0)}, {', '.join(args)});"


@emits(misc_ops.ReverseSequence)
class ReverseSequenceEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.misc.ReverseSequence`."""

    kernels = ("misc",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        batch, time = self.op.axes()
        inner = num_elements(x.shape[2:])
        stride = {0: x.shape[1] * inner, 1: inner}
        sizes = ", ".join(ctx.dim(d) for d in (x.shape[batch], x.shape[time], inner, stride[batch], stride[time]))
        return f"kernels::reverse_sequence({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {sizes});"
