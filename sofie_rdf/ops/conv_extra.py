"""CausalConvWithState and DeformConv: convolutions with a carried state or learned, per-position tap offsets.

CausalConvWithState (opset 27) is the decode-step form of a depthwise causal 1-D convolution: the
carried state (the last k - 1 positions) replaces the left padding, and the new state is an output,
so that a streaming model need not concatenate and slice around a Conv.  DeformConv (opsets 19, 22)
moves every kernel tap by a learned, per-position offset read with bilinear interpolation.  Their CPU
code is in ``targets/cpu/emitters/conv.py``.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from ..ir.dtypes import FLOAT_TYPES, HALF_TYPES
from .base import Op
from .conv import Conv, Geometry
from .reference import deform_conv_reference
from .registry import register

_COMPUTE_TYPES = tuple(t for t in FLOAT_TYPES if t not in HALF_TYPES)  # DeformConv: float32/float64 only
_ACTIVATIONS = ("none", "silu", "swish")


def _optional(inputs: list, i: int) -> Optional[Any]:
    """Input ``i``, or None when omitted (trailing optional inputs may be absent from the node)."""
    return inputs[i] if len(inputs) > i else None



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


@register
class DeformConv(Conv):
    """2-D deformable convolution with group, offset_group, dilations, pads, strides, kernel_shape, mask and bias.

    Deriving from Conv reuses its attribute handling and output geometry (DeformConv has no auto_pad).
    """

    op_type = "DeformConv"
    since_version = 19

    def _deform_geometry(self, x: TensorType, w: TensorType) -> tuple[Geometry, int]:
        if x.rank != 4:
            raise self.error(f"only 2-D deformable convolutions (rank-4 input) are supported, got input {x.shape}")
        return self.geometry(x, w), math.prod(w.shape[2:])

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, offset, b, mask = inputs[0], inputs[1], inputs[2], _optional(inputs, 3), _optional(inputs, 4)
        _check_float(self, _COMPUTE_TYPES, x, w, offset, b, mask)
        geom, taps = self._deform_geometry(x, w)
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

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, w, offset, b, mask = values[0], values[1], values[2], _optional(values, 3), _optional(values, 4)
        geom, _ = self._deform_geometry(TensorType(x.dtype, x.shape), TensorType(w.dtype, w.shape))
        return [deform_conv_reference(x, w, offset, b, mask, geom, self.attrs["group"], self.attrs["offset_group"])]


@register
class DeformConv22(DeformConv):
    """Opset 22 adds bfloat16 to the types; the computation is unchanged."""

    since_version = 22
