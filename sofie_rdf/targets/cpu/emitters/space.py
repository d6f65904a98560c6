"""CPU emitters of the operators in :mod:`sofie_rdf.ops.space`."""

from __future__ import annotations

from ....ops import space as space_ops
from ....ops.base import contiguous_strides
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits
from .movement import emit_strided_copy


@emits(space_ops._BlockRearrange)
class BlockRearrangeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.space._BlockRearrange`."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        shape, perm = self.op.layout(ctx.inputs[0].shape)
        strides = contiguous_strides(shape)
        return emit_strided_copy(ctx, tuple(shape[p] for p in perm), [strides[p] for p in perm])
