"""RoiAlign (opsets 10, 16, 22): bilinear pooling of regions of interest, as in Mask R-CNN.

Opset 10 has no coordinate_transformation_mode and behaves as ``output_half_pixel`` (no -0.5 shift);
opset 16 adds the attribute with ``half_pixel`` as default.  The sampling follows onnxruntime: samples
outside [-1, size] count as 0, max mode takes the max of the weighted bilinear taps.  batch_indices are
read at run time and range-checked there.
"""

from __future__ import annotations

import math
from typing import ClassVar, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from ..ir.dtypes import FLOAT_TYPES, HALF_TYPES
from .base import Op
from .registry import register

_MODES = ("avg", "max")
_TRANSFORMS = ("half_pixel", "output_half_pixel")


@register
class RoiAlign(Op):
    """(num_rois, C, output_height, output_width) pooled features of the RoIs of X."""

    op_type = "RoiAlign"
    since_version = 10
    default_transform: ClassVar[str] = "output_half_pixel"  # opset 10 has no attribute: no pixel shift

    def options(self) -> tuple[bool, bool, int, int, int, float]:
        """(half_pixel, max mode, output height, output width, sampling_ratio, spatial_scale), checked."""
        mode = self.attrs.get("mode", "avg")
        transform = self.attrs.get("coordinate_transformation_mode", self.default_transform)
        if mode not in _MODES or transform not in _TRANSFORMS:
            raise self.error(f"mode {mode!r} / coordinate_transformation_mode {transform!r} should be one of "
                             f"{_MODES} / {_TRANSFORMS}")
        out_h, out_w = int(self.attrs.get("output_height", 1)), int(self.attrs.get("output_width", 1))
        ratio = int(self.attrs.get("sampling_ratio", 0))
        if out_h < 1 or out_w < 1 or ratio < 0:
            raise self.error(f"output_height {out_h} and output_width {out_w} must be >= 1, sampling_ratio {ratio} >= 0")
        return transform == "half_pixel", mode == "max", out_h, out_w, ratio, float(self.attrs.get("spatial_scale", 1.0))

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, rois, idx = inputs
        _, _, out_h, out_w, _, _ = self.options()
        if x.dtype not in FLOAT_TYPES or x.dtype in HALF_TYPES or rois.dtype != x.dtype:
            raise self.error(f"X and rois must be float32 or float64 of one type, got {x.dtype} and {rois.dtype}")
        if x.rank != 4 or rois.rank != 2 or not dims_equal(rois.shape[1], 4):
            raise self.error(f"X {x.shape} must be (N, C, H, W) and rois {rois.shape} (num_rois, 4)")
        if idx.dtype != np.int64 or idx.rank != 1 or not dims_equal(idx.shape[0], rois.shape[0]):
            raise self.error(f"batch_indices must be int64 of shape ({rois.shape[0]},), got {idx.dtype} {idx.shape}")
        return [TensorType(x.dtype, (rois.shape[0], x.shape[1], out_h, out_w))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, rois, idx = values
        half_pixel, max_mode, out_h, out_w, ratio, scale = self.options()
        if np.any((idx < 0) | (idx >= x.shape[0])):
            raise self.error(f"batch_indices {idx.tolist()} are outside [0, {x.shape[0]})")
        y = np.zeros((rois.shape[0], x.shape[1], out_h, out_w), dtype=x.dtype)
        for r, (roi, b) in enumerate(zip(rois.astype(np.float64), idx)):
            start, end = roi[:2] * scale - 0.5 * half_pixel, roi[2:] * scale - 0.5 * half_pixel
            size = end - start if half_pixel else np.maximum(end - start, 1.0)
            bins = size / (out_w, out_h)
            grid = [ratio or max(math.ceil(s / n), 0) for s, n in zip(size, (out_w, out_h))]
            for ph in range(out_h):
                for pw in range(out_w):
                    samples = [_sample(x[b], start[1] + ph * bins[1] + (iy + 0.5) * bins[1] / grid[1],
                                       start[0] + pw * bins[0] + (ix + 0.5) * bins[0] / grid[0])
                               for iy in range(grid[1]) for ix in range(grid[0])]
                    if samples and max_mode:
                        y[r, :, ph, pw] = np.max([s.max(axis=0) for s in samples], axis=0)
                    elif samples:
                        y[r, :, ph, pw] = np.sum([s.sum(axis=0) for s in samples], axis=0) / len(samples)
        return [y]


@register
class RoiAlign16(RoiAlign):
    """Opset 16 adds coordinate_transformation_mode, defaulting to half_pixel."""

    since_version = 16
    default_transform = "half_pixel"


@register
class RoiAlign22(RoiAlign16):
    """Opset 22 adds bfloat16 to the types; the computation is unchanged."""

    since_version = 22


def _sample(image: np.ndarray, y: float, x: float) -> np.ndarray:
    """The four weighted bilinear taps (4, C) of one sample point of a (C, H, W) image, as onnxruntime."""
    height, width = image.shape[1:]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros((4, image.shape[0]))
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    weights = ((1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx)
    return np.stack([w * image[:, yy, xx] for w, (yy, xx) in zip(weights, ((y0, x0), (y0, x1), (y1, x0), (y1, x1)))])
