"""BitCast and CenterCropPad: data moved without arithmetic.

BitCast copies the bytes (``std::memcpy``) into a tensor of another type of
the same size.  CenterCropPad resizes the chosen axes to a target shape (known
when the code is generated, or read at run time): each axis is cropped to its centre or zero-padded
around it (the extra element on the end side), a fill and a strided copy.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dtypes import from_onnx
from .base import Op, normalize_axis
from .registry import register


@register
class BitCast(Op):
    """The input's bytes read as type ``to`` (same element size, same shape)."""

    op_type = "BitCast"
    since_version = 26

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, to = inputs[0], from_onnx(self.attrs["to"])
        if to.itemsize != x.dtype.itemsize:
            raise self.error(f"cannot reinterpret {x.dtype} ({x.dtype.itemsize} bytes) as {to} ({to.itemsize} bytes)")
        return [TensorType(to, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        to = from_onnx(self.attrs["to"])
        x = np.ascontiguousarray(values[0])
        return [x.view(np.uint8).astype(bool) if to == np.bool_ else x.view(to)]


@register
class CenterCropPad(Op):
    """Each axis in ``axes`` (all by default) cropped or zero-padded to the target length, centred.

    The offset is ``(|input - target|) // 2`` on the start side, as the ONNX
    reference.  A target shape (input 1) known when the code is generated
    fixes the window then, and the input's length on the axes it changes must
    be known too; one computed at run time makes those output dims run-time
    dims and the code computes the window per call.
    """

    op_type = "CenterCropPad"
    since_version = 18
    value_inputs = (1,)

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the target shape is computed while running (the code then reads and checks it)."""
        return inputs[1].value is None

    def axes(self, rank: int) -> list[int]:
        """The axes cropped or padded."""
        return [normalize_axis(self, a, rank) for a in (self.attrs.get("axes") or range(rank))]

    def targets(self, inputs: list[Optional[TensorType]]) -> tuple:
        """The output shape (run-time dims on the axes a target shape read at run time sets)."""
        x = inputs[0]
        axes = self.axes(x.rank)
        if self.at_run_time(inputs):
            length = inputs[1].shape[0] if inputs[1].rank == 1 else None
            if len(set(axes)) != len(axes) or length != len(axes) or not axes:
                raise self.error(f"a target shape of shape {inputs[1].shape} for axes {axes} (distinct, one length"
                                 " each, expected)")
            return tuple(self.runtime_dim(f"dim{a}") if a in axes else d for a, d in enumerate(x.shape))
        shape = [int(v) for v in np.asarray(self.value_of(inputs, 1, "the target shape")).reshape(-1)]
        if len(set(axes)) != len(axes) or len(shape) != len(axes):
            raise self.error(f"{len(shape)} target lengths for axes {axes} (distinct, one length each, expected)")
        out = list(x.shape)
        for a, n in zip(axes, shape):
            if n < 0:
                raise self.error(f"target length {n} is negative")
            if not isinstance(x.shape[a], int):
                raise self.error(f"axis {a} has the symbolic length {x.shape[a]}: crop or pad needs it known")
            out[a] = n
        return tuple(out)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [TensorType(inputs[0].dtype, self.targets(inputs))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        out = self.targets([TensorType(x.dtype, x.shape), TensorType(values[1].dtype, values[1].shape, values[1])])
        y = np.zeros(out, dtype=x.dtype)
        src, dst = self.windows(x.shape, out)
        y[tuple(slice(s, s + r) for s, r in dst)] = x[tuple(slice(s, s + r) for s, r in src)]
        return [y]

    @staticmethod
    def windows(shape: tuple, out: tuple) -> tuple[list, list]:
        """Per axis, (start, length) of the copied window in the input and in the output."""
        src, dst = [], []
        for n, m in zip(shape, out):
            if n is m or n == m:
                src.append((0, n))
                dst.append((0, n))
            else:
                src.append(((n - m) // 2 if n > m else 0, min(n, m)))
                dst.append(((m - n) // 2 if m > n else 0, min(n, m)))
        return src, dst
