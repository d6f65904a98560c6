"""Pad on CUDA (``kernels/movement.cuh``): negative pads crop the input first (``Pad.crop``), the kernel only adds
elements; pads and the constant known when the code is generated, or the constant read on the device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ops.base import contiguous_strides
from ....ops.pad import Pad, Pad_11
from ..emitter import CudaEmitter, emits
from ._structs import values

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

_MODES = {"constant": "Constant", "reflect": "Reflect", "edge": "Edge", "wrap": "Wrap"}


@emits(Pad)
class PadEmitter(CudaEmitter):
    """Pad with the constant as an attribute (opset 1 to 10)."""

    kernels = ("movement",)

    def value(self, ctx: NodeContext) -> str:
        """C++ expression of the padding constant."""
        return ctx.literal(self.attrs.get("value", 0.0), ctx.inputs[0].dtype)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            raise self.error("the CUDA target pads by amounts known when the code is generated")
        x, y = ctx.inputs[0], ctx.outputs[0]
        offset, extent, begin = self.op.crop(ctx.inputs)
        source = ctx.x(0) if offset == 0 else f"{ctx.x(0)} + {ctx.dim(offset)}"
        fields = [values(ctx, f, "size_t") for f in (y.shape, extent, begin)]
        fields.append(values(ctx, contiguous_strides(x.shape), "long long"))
        layout = f"kernels::PadLayout<{x.rank}>{{{', '.join(fields)}}}"
        return (f"kernels::pad<kernels::PadMode::{_MODES[self.op.mode()]}>({source}, {ctx.y(0)}, {ctx.dim(y.size)}, "
                f"{layout}, static_cast<{ctx.ctype(x.dtype)}>({self.value(ctx)}), stream_);")


@emits(Pad_11)
class Pad11Emitter(PadEmitter):
    """Pad with the constant as an optional input (opset 11 on), known when generating or refused."""

    def value(self, ctx: NodeContext) -> str:
        c = ctx.inputs[2] if len(ctx.inputs) > 2 else None
        if c is None or (c.value is None and c.size == 0):
            return ctx.literal(0, ctx.inputs[0].dtype)
        if c.value is None:
            raise self.error("the CUDA target pads with a constant known when the code is generated")
        return ctx.literal(self.op.constant([None, None, c.value]), ctx.inputs[0].dtype)
