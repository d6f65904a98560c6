"""CausalConvWithState and DeformConv: convolutions whose reads the plain Conv kernels cannot express.

CausalConvWithState (opset 27) is the decode-step form of a depthwise causal 1-D convolution: the
carried state (the last k - 1 positions) replaces the left padding, and the new state is an output,
so that a streaming model need not concatenate and slice around a Conv.  DeformConv (opsets 19, 22)
moves every kernel tap by a learned, per-position offset read with bilinear interpolation; it runs as
a deformable im2col followed by the same per-group product Conv uses (``kernels::gemm``).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from ..ir.dtypes import FLOAT_TYPES, HALF_TYPES
from .base import EmitContext, Op
from .conv import Conv, Geometry
from .registry import register

_COMPUTE_TYPES = tuple(t for t in FLOAT_TYPES if t not in HALF_TYPES)  # DeformConv: float32/float64 only
_ACTIVATIONS = ("none", "silu", "swish")


def _optional(inputs: list, i: int) -> Optional[Any]:
    """Input ``i``, or None when omitted (trailing optional inputs may be absent from the node)."""
    return inputs[i] if len(inputs) > i else None


def optional_ptr(ctx: EmitContext, i: int) -> str:
    """C++ pointer of optional input ``i``: ``nullptr`` when omitted."""
    return ctx.x(i) if len(ctx.inputs) > i and ctx.inputs[i] is not None else "nullptr"


def _check_float(op: Op, types: tuple, *tensors: Optional[TensorType]) -> None:
    """Every given tensor of one type, one of ``types``."""
    given = [t for t in tensors if t is not None]
    if given[0].dtype not in types or any(t.dtype != given[0].dtype for t in given):
        raise op.error(f"inputs must be of one type among {[str(t) for t in types]}, got {[str(t.dtype) for t in given]}")


@register
class CausalConvWithState(Op):
    """Depthwise causal 1-D convolution over [past_state, input], with optional SiLU, returning the new state."""

    op_type = "CausalConvWithState"
    since_version = 27
    kernels = ("conv_extra",)

    def _activation(self) -> bool:
        """True for the fused SiLU (``silu`` and ``swish`` name the same function)."""
        name = self.attrs.get("activation", "none")
        if name not in _ACTIVATIONS:
            raise self.error(f"activation {name!r} is not one of {', '.join(_ACTIVATIONS)}")
        return name != "none"

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, b, past = inputs[0], inputs[1], _optional(inputs, 2), _optional(inputs, 3)
        self._activation()
        _check_float(self, FLOAT_TYPES, x, w, b, past)
        if x.rank != 3 or w.rank != 3:
            raise self.error(f"input {x.shape} and weight {w.shape} must be rank 3: (batch, channels, length), (channels, 1, k)")
        channels, k = w.shape[0], w.shape[2]
        if not isinstance(k, int) or k < 1 or not dims_equal(w.shape[1], 1) or not dims_equal(channels, x.shape[1]):
            raise self.error(f"weight {w.shape} should be (channels, 1, k) with channels = {x.shape[1]} and a fixed k")
        if b is not None and (b.rank != 1 or not dims_equal(b.shape[0], channels)):
            raise self.error(f"bias of shape {b.shape} should be ({channels},)")
        state = (x.shape[0], x.shape[1], k - 1)
        if past is not None and (past.rank != 3 or not all(dims_equal(a, e) for a, e in zip(past.shape, state))):
            raise self.error(f"past_state of shape {past.shape} should be {state}")
        return [TensorType(x.dtype, x.shape), TensorType(x.dtype, state)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, w, b, past = values[0], values[1], _optional(values, 2), _optional(values, 3)
        k = w.shape[2]
        if past is None:
            past = np.zeros(x.shape[:2] + (k - 1,), x.dtype)
        seq = np.concatenate([past, x], axis=2)
        wide, kernel = seq.astype(np.float64), w.astype(np.float64)  # the 16-bit types round once, at the end
        y = sum(kernel[None, :, 0, j, None] * wide[:, :, j:j + x.shape[2]] for j in range(k))
        if b is not None:
            y = y + b[None, :, None]
        if self._activation():
            y = y / (1 + np.exp(-y))
        return [y.astype(x.dtype), seq[:, :, seq.shape[2] - (k - 1):].copy()]

    def emit(self, ctx: EmitContext) -> str:
        x, w = ctx.inputs[0], ctx.inputs[1]
        sizes = f"{ctx.dim(x.shape[0])}, {ctx.dim(x.shape[1])}, {ctx.dim(x.shape[2])}, {w.shape[2]}"
        silu = "true" if self._activation() else "false"
        return (f"kernels::causal_conv_with_state({ctx.x(0)}, {ctx.x(1)}, {optional_ptr(ctx, 2)}, {optional_ptr(ctx, 3)}, "
                f"{ctx.y(0)}, "
                f"{ctx.y(1)}, {sizes}, {silu});")


@register
class DeformConv(Conv):
    """2-D deformable convolution with group, offset_group, dilations, pads, strides, kernel_shape, mask and bias.

    Deriving from Conv reuses its attribute handling and output geometry (DeformConv has no auto_pad).
    """

    op_type = "DeformConv"
    since_version = 19
    kernels = ("conv_extra",)

    def _taps(self, x: TensorType, w: TensorType) -> tuple[Geometry, int]:
        if x.rank != 4:
            raise self.error(f"only 2-D deformable convolutions (rank-4 input) are supported, got input {x.shape}")
        return self.geometry(x, w), math.prod(w.shape[2:])

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, offset, b, mask = inputs[0], inputs[1], inputs[2], _optional(inputs, 3), _optional(inputs, 4)
        _check_float(self, _COMPUTE_TYPES, x, w, offset, b, mask)
        geom, taps = self._taps(x, w)
        self._channels(x, w)
        self._check_types(x, w, b, w.shape[0])
        groups = self.attrs["offset_group"]
        if groups < 1 or x.shape[1] % groups:
            raise self.error(f"input channels {x.shape[1]} are not divisible by offset_group {groups}")
        expect = {"offset": (offset, groups * taps * 2), "mask": (mask, groups * taps)}
        for what, (t, channels) in expect.items():
            shape = (x.shape[0], channels) + geom.grid
            if t is not None and (t.rank != 4 or not all(dims_equal(a, e) for a, e in zip(t.shape, shape))):
                raise self.error(f"{what} of shape {t.shape} should be {shape}")
        return [TensorType(x.dtype, (x.shape[0], w.shape[0]) + geom.grid)]

    def workspace(self, inputs, outputs) -> list[TensorType]:
        x, w = inputs[0], inputs[1]
        geom, taps = self._taps(x, w)
        return [TensorType(x.dtype, (w.shape[1] * taps, math.prod(geom.grid)))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, w, offset, b, mask = values[0], values[1], values[2], _optional(values, 3), _optional(values, 4)
        geom, _ = self._taps(TensorType(x.dtype, x.shape), TensorType(w.dtype, w.shape))
        return [deform_conv_reference(x, w, offset, b, mask, geom, self.attrs["group"], self.attrs["offset_group"])]

    def emit(self, ctx: EmitContext) -> str:
        x, w, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        geom, _ = self._taps(x, w)
        sizes = f"{ctx.dim(x.shape[0])}, {x.shape[1]}, {y.shape[1]}, {self.attrs['group']}, {self.attrs['offset_group']}"
        return (f"kernels::deform_conv({ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {optional_ptr(ctx, 3)}, {optional_ptr(ctx, 4)}, "
                f"{ctx.y(0)}, "
                f"{ctx.w(0)}, {sizes}, {geom.arrays(ctx)});")


@register
class DeformConv22(DeformConv):
    """Opset 22 adds bfloat16 to the types; the computation is unchanged."""

    since_version = 22


def _bilinear(image: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bilinear reads of ``image`` (..., H, W) at positions (py, px); corners outside count as 0."""
    h, w = image.shape[-2:]
    y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    out = np.zeros(image.shape[:-2] + py.shape, dtype=np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            weight = (py - y0 if dy else 1 - (py - y0)) * (px - x0 if dx else 1 - (px - x0))
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            out += np.where(inside, weight * image[..., np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0)
    return out


def deform_conv_reference(x: np.ndarray, w: np.ndarray, offset: np.ndarray, b: Optional[np.ndarray],
                          mask: Optional[np.ndarray], geom: Geometry, group: int, offset_group: int) -> np.ndarray:
    """DeformConv by building the deformable im2col matrix with numpy (constant folding)."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = geom.kernel, geom.grid
    off = offset.reshape(n, offset_group, kh, kw, 2, oh, ow).astype(np.float64)
    msk = np.ones((n, offset_group, kh, kw, oh, ow)) if mask is None else mask.reshape(n, offset_group, kh, kw, oh, ow)
    ky = np.arange(kh)[:, None, None, None] * geom.dilations[0] - geom.pads_begin[0]
    kx = np.arange(kw)[None, :, None, None] * geom.dilations[1] - geom.pads_begin[1]
    oy = (np.arange(oh) * geom.strides[0])[None, None, :, None]
    ox = (np.arange(ow) * geom.strides[1])[None, None, None, :]
    per = c // offset_group
    cols = np.empty((n, c, kh, kw, oh, ow))
    for i in range(n):
        for g in range(offset_group):
            py, px = oy + ky + off[i, g, :, :, 0], ox + kx + off[i, g, :, :, 1]
            cols[i, g * per:(g + 1) * per] = _bilinear(x[i, g * per:(g + 1) * per].astype(np.float64), py, px) * msk[i, g]
    cg, mg = c // group, w.shape[0] // group
    y = np.concatenate([np.einsum("mckl,nckl...->nm...", w[g * mg:(g + 1) * mg], cols[:, g * cg:(g + 1) * cg])
                        for g in range(group)], axis=1)
    if b is not None:
        y = y + b[None, :, None, None]
    return y.astype(x.dtype)
