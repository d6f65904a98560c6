"""Convolutions on CUDA, 1-D to 3-D, plain and transposed, over a ``kernels::Window`` (``kernels/conv.cuh``):
an implicit GEMM (no im2col buffer) where a group has 4 output channels or more, direct kernels for depthwise
layers and transposed convolutions.  A fused bias and activation (FusedConv, BatchNorm folded by the passes) are
applied by the convolution kernel as it stores.

Not cuDNN: its calls cannot run in the host emulation that checks this target without a GPU (it would need an
emulated cuDNN, whose algorithm choice is exactly what cannot be checked there), and the ``[cuda]`` extra would
grow by NVIDIA's cuDNN wheel; the implicit GEMM is written so that the emulation runs it as it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ops.conv import Conv, ConvTranspose
from ....ops.fused import FusedConv, FusedConvTranspose
from ..emitter import emits
from ._structs import values
from .gemm import ActivationCode

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


def window(ctx: NodeContext, image: tuple, grid: tuple, kernel: tuple, strides: tuple, dilations: tuple,
           begin: tuple, end: tuple) -> str:
    """The ``kernels::Window<rank>`` initialiser of a convolution's or pooling's geometry."""
    fields = [values(ctx, f, "size_t") for f in (image, grid, kernel, strides, dilations)]
    fields += [values(ctx, f, "long long") for f in (begin, end)]
    return f"kernels::Window<{len(image)}>{{{', '.join(fields)}}}"


@emits(Conv, FusedConv)
class ConvEmitter(ActivationCode):
    """``kernels::conv``: the implicit GEMM (a block per tile of features x output positions of all events), or a
    thread per output value for depthwise layers; bias and activation applied as the outputs are stored."""

    own_kernels = ("conv",)
    kernel = "conv"

    def emit(self, ctx: NodeContext) -> str:
        x, w = ctx.inputs[0], ctx.inputs[1]
        g = self.op.geometry(x, w)
        win = window(ctx, g.image, g.grid, g.kernel, g.strides, g.dilations, g.pads_begin, g.pads_end)
        has_bias = len(ctx.inputs) > 2 and ctx.inputs[2] is not None
        bias = ctx.x(2) if has_bias else f"static_cast<const {ctx.ctype(x.dtype)} *>(nullptr)"
        return (f"kernels::{self.kernel}({ctx.x(0)}, {ctx.x(1)}, {bias}, {ctx.y(0)}, {ctx.dim(x.shape[0])}, "
                f"{ctx.dim(x.shape[1])}, {self.features(ctx)}, {self.attrs['group']}, {win}, "
                f"{self.activation_or_identity(ctx, x.dtype)}, stream_);")

    def features(self, ctx: NodeContext) -> str:
        """Output channels."""
        return ctx.dim(ctx.inputs[1].shape[0])


@emits(ConvTranspose, FusedConvTranspose)
class ConvTransposeEmitter(ConvEmitter):
    """``kernels::conv_transpose``: a thread per output value over the inputs its windows cover."""

    kernel = "conv_transpose"

    def features(self, ctx: NodeContext) -> str:
        return ctx.dim(ctx.inputs[1].shape[1] * self.attrs["group"])
