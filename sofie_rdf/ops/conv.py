"""Convolutions: Conv and ConvTranspose (1-D to 3-D).

This module owns what a convolution means: the output geometry from ``kernel_shape``, ``strides``,
``dilations``, ``pads``, ``auto_pad`` (and, transposed, ``output_padding`` and ``output_shape``), the
channel and group checks, and the numpy references (:mod:`~sofie_rdf.ops.reference`) used to fold
constants.  How the CPU computes a layer (im2col + BLAS, shifted products, Winograd, register tiles) and
how it stores the weights for it is the emitter's (``targets/cpu/emitters/conv.py``): the IR keeps the
weights as the model gives them.

Their forms with a fused activation are in :mod:`~sofie_rdf.ops.fused`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import sympy

from ..ir import TensorType
from ..ir.dims import Dim, as_dim, num_elements
from ..ir.dtypes import FLOAT_TYPES
from .base import Op, at_least_zero, ceil_div
from .geometry import Geometry, extent
from .reference import conv_reference, conv_transpose_reference
from .registry import register

# The highest spatial rank supported (1-D to 3-D convolutions; the CPU kernels see every one as 3-D).
KERNEL_RANK = 3


def _same_split(total: Dim, upper: bool) -> tuple[Dim, Dim]:
    """SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning."""
    small = as_dim(total // 2)
    large = as_dim(total - small)
    return (small, large) if upper else (large, small)


class ConvBase(Op):
    """Shared attribute handling of Conv and ConvTranspose."""

    row_wise = True  # over the batch dim N

    def _spatial(self, x: TensorType, w: TensorType) -> tuple[tuple[Dim, ...], tuple[int, ...]]:
        """Spatial dims of X (numbers, or symbols for a length known when the code runs) and the kernel shape."""
        if x.rank < 3 or x.rank > 2 + KERNEL_RANK:
            raise self.error(f"input of rank {x.rank} is not supported (1-D to 3-D convolutions: rank 3 to 5)")
        if w.rank != x.rank:
            raise self.error(f"weights of shape {w.shape} do not match input of shape {x.shape}")
        spatial = x.shape[2:]
        if not all(isinstance(d, int) for d in w.shape + x.shape[1:2]):
            raise self.error(f"the weights {w.shape} and input channels {x.shape[1]} must be fixed numbers")
        stored = tuple(w.shape[2:])
        kernel = tuple(self.attr("kernel_shape") or stored)
        if kernel != stored:
            raise self.error(f"kernel_shape {list(kernel)} differs from the weights' spatial shape {w.shape[2:]}")
        return tuple(spatial), kernel

    def _per_dim(self, name: str, rank: int, fill: int) -> tuple[int, ...]:
        values = self.attr(name)
        if values is None or len(values) == 0:
            return (fill,) * rank
        if len(values) != rank:
            raise self.error(f"{name} {values} should have {rank} entries")
        return tuple(int(v) for v in values)

    def _pads(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        pads = self._per_dim("pads", 2 * rank, 0)
        return pads[:rank], pads[rank:]

    def _check_fits(self, sizes: Sequence[Dim], least: Sequence[Dim], what: str) -> None:
        """Refuse a spatial size below its least value; where it depends on run-time dims, check it when the code
        runs (on the sizes themselves: the output length's formula subtracts, which unsigned C++ cannot check)."""
        for size, low in zip(sizes, least):
            if isinstance(size, int) and isinstance(low, int):
                if size < low:
                    raise self.error(what)
            else:
                self.require(sympy.Ge(size, low), what)

    @staticmethod
    def _taps(w: TensorType) -> int:
        """Multiply-adds per output value (Conv) or input value (ConvTranspose): channels per group x kernel."""
        return num_elements(w.shape[1:])

    def _check_types(self, x: TensorType, w: TensorType, b: Optional[TensorType], out_channels: int) -> None:
        if x.dtype not in FLOAT_TYPES or w.dtype != x.dtype:
            raise self.error(f"X and W must be float32 or float64 of one type, got {x.dtype} and {w.dtype}")
        if b is not None and (b.rank != 1 or b.shape[0] != out_channels):
            raise self.error(f"bias of shape {b.shape} should be ({out_channels},)")


@register
class Conv(ConvBase):
    """N-D convolution with groups, dilations, strides, pads and auto_pad."""

    op_type = "Conv"

    def geometry(self, x: TensorType, w: TensorType) -> Geometry:
        image, kernel = self._spatial(x, w)
        rank = len(image)
        strides, dilations = self._per_dim("strides", rank, 1), self._per_dim("dilations", rank, 1)
        auto_pad = self.attrs.get("auto_pad", "NOTSET")
        extents = [extent(k, d) for k, d in zip(kernel, dilations)]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            grid = tuple(ceil_div(i, s) for i, s in zip(image, strides))
            totals = [at_least_zero((o - 1) * s + e - i) for o, s, e, i in zip(grid, strides, extents, image)]
            split = [_same_split(t, auto_pad == "SAME_UPPER") for t in totals]
            begin, end = tuple(p[0] for p in split), tuple(p[1] for p in split)
        elif auto_pad in ("NOTSET", "VALID"):
            begin, end = self._pads(rank) if auto_pad == "NOTSET" else ((0,) * rank, (0,) * rank)
            grid = tuple(as_dim((i + b + e - ext) // s + 1)
                         for i, b, e, ext, s in zip(image, begin, end, extents, strides))
        else:
            raise self.error(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        return Geometry(image, grid, kernel, strides, dilations, begin, end)

    def _channels(self, x: TensorType, w: TensorType) -> None:
        group = self.attrs["group"]
        if group < 1 or x.shape[1] % group or w.shape[0] % group or w.shape[1] * group != x.shape[1]:
            raise self.error(f"input channels {x.shape[1]}, weights {w.shape} and group {group} do not agree")

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        geom = self.geometry(x, w)
        padded = [i + b + e for i, b, e in zip(geom.image, geom.pads_begin, geom.pads_end)]
        spans = [extent(k, d) for k, d in zip(geom.kernel, geom.dilations)]
        self._check_fits(padded, spans, f"kernel {geom.kernel} (dilations {geom.dilations}) does not fit the "
                                        f"padded input {tuple(padded)}")
        self._channels(x, w)
        self._check_types(x, w, b, w.shape[0])
        return [TensorType(x.dtype, (x.shape[0], w.shape[0]) + geom.grid)]

    def flops(self, inputs, outputs):
        return 2 * self._taps(inputs[1]) * outputs[0].size

    def evaluate(self, values):
        x, w = values[0], values[1]
        b = values[2] if len(values) > 2 else None
        geom = self.geometry(TensorType(x.dtype, x.shape), TensorType(w.dtype, w.shape))
        return [conv_reference(x, w, b, geom, self.attrs["group"]).astype(x.dtype)]


@register
class ConvTranspose(ConvBase):
    """N-D transposed convolution with groups, dilations, strides, pads, output_padding and output_shape."""

    op_type = "ConvTranspose"

    def geometry(self, x: TensorType, w: TensorType) -> Geometry:
        grid, kernel = self._spatial(x, w)
        rank = len(grid)
        strides, dilations = self._per_dim("strides", rank, 1), self._per_dim("dilations", rank, 1)
        out_pad = self._per_dim("output_padding", rank, 0)
        auto_pad = self.attrs.get("auto_pad", "NOTSET")
        if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
            raise self.error(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        full = [s * (i - 1) + p + extent(k, d) for s, i, p, k, d in zip(strides, grid, out_pad, kernel, dilations)]
        shape = self.attr("output_shape")
        if shape:
            shape = tuple(int(v) for v in shape)[-rank:]
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            shape = tuple(i * s for i, s in zip(grid, strides))
        if shape:
            # The spec's total padding; SAME_UPPER puts the odd pad at the end, anything else at the beginning.
            # An output larger than the full result gets zeros at the end (no negative pad), as in onnxruntime.
            totals = [at_least_zero(f - o) for f, o in zip(full, shape)]
            split = [_same_split(t, auto_pad == "SAME_UPPER") for t in totals]
            begin, end = tuple(p[0] for p in split), tuple(p[1] for p in split)
            image = shape
        else:
            begin, end = self._pads(rank) if auto_pad == "NOTSET" else ((0,) * rank, (0,) * rank)
            image = tuple(as_dim(f - b - e) for f, b, e in zip(full, begin, end))
        return Geometry(tuple(image), grid, kernel, strides, dilations, begin, end)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        geom = self.geometry(x, w)
        self._check_fits(geom.image, [1] * len(geom.image), f"the output {geom.image} is empty")
        group = self.attrs["group"]
        if group < 1 or x.shape[1] % group or w.shape[0] != x.shape[1]:
            raise self.error(f"input channels {x.shape[1]}, weights {w.shape} and group {group} do not agree")
        features = w.shape[1] * group
        self._check_types(x, w, b, features)
        return [TensorType(x.dtype, (x.shape[0], features) + geom.image)]

    def flops(self, inputs, outputs):
        return 2 * self._taps(inputs[1]) * inputs[0].size

    def evaluate(self, values):
        x, w = values[0], values[1]
        b = values[2] if len(values) > 2 else None
        geom = self.geometry(TensorType(x.dtype, x.shape), TensorType(w.dtype, w.shape))
        return [conv_transpose_reference(x, w, b, geom, self.attrs["group"]).astype(x.dtype)]
