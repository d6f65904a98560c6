"""Pad on the CPU: negative pads crop the input first (a pointer offset and a smaller extent), so that the
kernel (``kernels::pad``) only ever adds elements."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ops.base import contiguous_strides
from ....ops.pad import Pad, Pad_11
from ..emitter import Emitter, emits
from .movement import value_ptr

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


@emits(Pad)
class PadEmitter(Emitter):
    """Pad with the constant as an attribute (opset 1 to 10)."""

    kernels = ("pad",)

    def value(self, ctx: NodeContext) -> str:
        """C++ expression of the padding constant."""
        return ctx.literal(self.attrs.get("value", 0.0), ctx.inputs[0].dtype)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            return self.emit_at_run_time(ctx)
        x = ctx.inputs[0]
        offset, extent, begin = self.op.crop(ctx.inputs)
        src = ctx.x(0) if offset == 0 else f"{ctx.x(0)} + {ctx.dim(offset)}"
        args = [ctx.array("extent", extent), ctx.array("strides", contiguous_strides(x.shape), "std::ptrdiff_t"),
                ctx.array("begin", begin), ctx.array("out_shape", ctx.outputs[0].shape)]
        return (f"kernels::pad({src}, {ctx.y(0)}, {', '.join(args)}, {x.rank}, "
                f"kernels::pad_mode::{self.op.mode()}, static_cast<{ctx.ctype(x.dtype)}>({self.value(ctx)}));")

    def emit_at_run_time(self, ctx: NodeContext) -> str:
        """The pads (and axes) read while running: extents and offsets computed, then the same kernel."""
        x, y = ctx.inputs[0], ctx.outputs[0]
        rank = max(x.rank, 1)
        pads, axes = value_ptr(ctx, 1, "pads"), value_ptr(ctx, 3, "axes")
        in_dims, strides = ctx.array("in_dims", x.shape), ctx.array("strides", contiguous_strides(x.shape), "std::ptrdiff_t")
        ctx.declarations += [f"bool axes_mask_[{rank}];", f"size_t extent_[{rank}], begin_[{rank}], out_dims_[{rank}];"]
        constant_mode = str(self.op.mode() == "constant").lower()
        lines = [f"const std::ptrdiff_t offset_ = kernels::value_pad({pads}, {ctx.inputs[1].shape[0]}, {axes}, {in_dims}, "
                 f"{strides}, {x.rank}, {constant_mode}, axes_mask_, extent_, begin_, out_dims_, {ctx.where});"]
        lines += [f"{ctx.dim(y.shape[i])} = out_dims_[{i}];" for i in self.op.runtime_axes(ctx.inputs)]
        lines += [ctx.reserve(0),
                  f"kernels::pad({ctx.x(0)} + offset_, {ctx.y(0)}, extent_, {strides}, begin_, out_dims_, {x.rank}, "
                  f"kernels::pad_mode::{self.op.mode()}, static_cast<{ctx.ctype(x.dtype)}>({self.value(ctx)}));"]
        return "\n".join(line for line in lines if line)


@emits(Pad_11)
class Pad11Emitter(PadEmitter):
    """Pad with the constant as an optional input (opset 11 on): a literal where known, else read at run time."""

    def value(self, ctx: NodeContext) -> str:
        c = ctx.inputs[2] if len(ctx.inputs) > 2 else None
        if c is None or (c.value is None and c.size == 0):
            return ctx.literal(0, ctx.inputs[0].dtype)
        if c.value is not None:
            return ctx.literal(self.op.constant([None, None, c.value]), ctx.inputs[0].dtype)
        return f"{ctx.x(2)}[0]"
