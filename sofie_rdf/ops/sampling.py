"""Spatial resampling: GridSample, AffineGrid, Col2Im and MaxUnpool.

Col2Im's image and block shapes and AffineGrid's size may be computed at run
time: the dims they fix are then run-time dims (:meth:`Op.runtime_dim`), and
the code reads and checks the values before the same kernels run.

GridSample reads each output sample as a tensor product of per-axis taps
(1 nearest, 2 linear, 4 cubic), so one formula covers 1 to 3 spatial axes
and every padding mode.  Coordinates follow the onnx reference: rounded (nearest),
then brought inside by the padding mode, then their neighbours read under it.
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar, Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, dims_equal, num_elements, simplify
from ..ir.dtypes import FLOAT_TYPES
from .base import Op, shape_from_value
from .registry import register

_MODES = {"bilinear": "linear", "linear": "linear", "nearest": "nearest", "bicubic": "cubic", "cubic": "cubic"}
_PADDINGS = ("zeros", "border", "reflection")


def _np_reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold coordinates back into [lo, hi] (as the CPU's grid_reflect does)."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    out = x
    for dist, mask, near, far, sign in ((lo - x, x < lo, lo, hi, 1.0), (x - hi, x > hi, hi, lo, -1.0)):
        turns = np.trunc(dist / span)
        rest = dist - turns * span
        out = np.where(mask, np.where(np.fmod(turns, 2) == 0, near + sign * rest, far - sign * rest), out)
    return out


def _np_cubic(t: np.ndarray) -> np.ndarray:
    """Keys' weights (A = -0.75) of the 4 pixels around fraction t, stacked on a last axis."""
    a = -0.75

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def _np_taps(g: np.ndarray, size: int, mode: str, padding: str, align: bool) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights) along one axis, a last axis of 1, 2 or 4 taps; index -1 reads zero."""
    s = float(size)
    lo, hi = (0.0, s - 1) if align else (-0.5, s - 0.5)
    x = (g + 1) / 2 * (s - 1) if align else ((g + 1) * s - 1) / 2
    nan = np.isnan(x)
    x = np.where(nan, lo, np.rint(x) if mode == "nearest" else x)
    outside = (x < lo) | (x > hi)
    if padding == "border":
        x = np.where(outside, np.clip(x, 0, s - 1), x)
    elif padding == "reflection":
        x = np.where(outside, _np_reflect(x, lo, hi), x)
    else:
        x = np.clip(x, lo - 4, hi + 4)
    if mode == "nearest":
        first, weights = np.trunc(x).astype(np.int64), np.ones(x.shape + (1,))
    else:
        x0 = np.floor(x)
        t = x - x0
        first = x0.astype(np.int64) - (1 if mode == "cubic" else 0)
        weights = np.stack([1 - t, t], axis=-1) if mode == "linear" else _np_cubic(t)
    idx = first[..., None] + np.arange(weights.shape[-1])
    if padding == "zeros":
        idx = np.where((idx >= 0) & (idx < size), idx, -1)
    else:
        if padding == "reflection":
            idx = _np_reflect(idx.astype(np.float64), lo, hi).astype(np.int64)
        idx = np.clip(idx, 0, size - 1)
    return np.where(nan[..., None], -1, idx), weights


@register
class GridSample(Op):
    """Samples X (N, C, *spatial) at the grid's normalized (x, y[, z]) points; opset 16: 4-D, bilinear/bicubic names."""

    op_type = "GridSample"
    since_version = 16
    mode_names: ClassVar[tuple[str, ...]] = ("bilinear", "nearest", "bicubic")
    max_spatial: ClassVar[int] = 2

    def settings(self) -> tuple[str, str, bool]:
        mode, padding = self.attrs.get("mode", self.mode_names[0]), self.attrs.get("padding_mode", "zeros")
        if mode not in self.mode_names:
            raise self.error(f"mode must be one of {', '.join(self.mode_names)} in this opset, got {mode!r}")
        if padding not in _PADDINGS:
            raise self.error(f"padding_mode must be one of {', '.join(_PADDINGS)}, got {padding!r}")
        return _MODES[mode], padding, bool(self.attrs.get("align_corners", 0))

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, grid = inputs[0], inputs[1]
        self.settings()
        spatial = x.rank - 2
        if x.dtype not in FLOAT_TYPES or grid.dtype not in FLOAT_TYPES:
            raise self.error(f"X and grid must be float32 or float64, got {x.dtype} and {grid.dtype}")
        if not 1 <= spatial <= self.max_spatial:
            raise self.error(f"X must have 1 to {self.max_spatial} spatial axes in this opset, got shape {x.shape}")
        if grid.rank != x.rank or grid.shape[-1] != spatial or not dims_equal(grid.shape[0], x.shape[0]):
            raise self.error(f"grid must be (N, *out, {spatial}) for X {x.shape}, got {grid.shape}")
        return [TensorType(x.dtype, (*x.shape[:2], *grid.shape[1:-1]))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, grid = values[0], values[1]
        mode, padding, align = self.settings()
        n, c, dims = x.shape[0], x.shape[1], x.shape[2:]
        r = len(dims)
        g = grid.reshape(n, -1, r).astype(np.float64)
        taps = [_np_taps(g[..., r - 1 - d], dims[d], mode, padding, align) for d in range(r)]
        strides = [math.prod(dims[d + 1:]) for d in range(r)]
        flat_x = x.reshape(n, c, -1).astype(np.float64)
        y = np.zeros((n, c, g.shape[1]))
        for combo in itertools.product(*(range(t[0].shape[-1]) for t in taps)):
            idx = [t[0][..., k] for t, k in zip(taps, combo)]
            weight = math.prod(t[1][..., k] for t, k in zip(taps, combo)) * np.all([i >= 0 for i in idx], axis=0)
            flat = sum(np.maximum(i, 0) * s for i, s in zip(idx, strides))
            y += np.take_along_axis(flat_x, np.broadcast_to(flat[:, None, :], y.shape), axis=2) * weight[:, None, :]
        return [y.reshape(n, c, *grid.shape[1:-1]).astype(x.dtype)]


@register
class GridSample20(GridSample):
    """Opset 20 renames the modes linear/nearest/cubic and adds volumetric (5-D) input."""

    since_version = 20
    mode_names = ("linear", "nearest", "cubic")
    max_spatial = 3


def _base_axis(size: int, align: bool) -> np.ndarray:
    """Normalized coordinates of the pixels along one axis: corners at +-1 (align_corners) or centres."""
    i = np.arange(size, dtype=np.float64)
    if align:
        return -1 + 2 * i / (size - 1) if size > 1 else np.full(size, -1.0)
    return (2 * i + 1) / size - 1


@register
class AffineGrid(Op):
    """Grid of theta (N, 2, 3) or (N, 3, 4) applied to the base grid of size (N, C, H, W) or (N, C, D, H, W)."""

    op_type = "AffineGrid"
    since_version = 20
    value_inputs = (1,)

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether size is computed while running (the code then reads and checks it)."""
        return inputs[1].value is None

    def spatial(self, inputs: list[Optional[TensorType]]) -> tuple:
        theta = inputs[0]
        if self.at_run_time(inputs):  # (N, C, *dims): N is theta's, the dims run-time ones
            length = inputs[1].shape[0] if inputs[1].rank == 1 else None
            size = (theta.shape[0], 1, *(self.runtime_dim(f"dim{d}") for d in range((length or 2) - 2)))
        else:
            size = shape_from_value(self, self.value_of(inputs, 1, "size"))
        if theta.dtype not in FLOAT_TYPES or len(size) not in (4, 5):
            raise self.error(f"theta must be float32/float64 and size 4 or 5 long, got {theta.dtype} and {size}")
        r = len(size) - 2
        if theta.rank != 3 or theta.shape[1:] != (r, r + 1) or not dims_equal(theta.shape[0], size[0]):
            raise self.error(f"theta must be ({size[0]}, {r}, {r + 1}) for size {size}, got {theta.shape}")
        return size[2:]

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        dims = self.spatial(inputs)
        return [TensorType(inputs[0].dtype, (inputs[0].shape[0], *dims, len(dims)))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        theta = values[0]
        dims = [int(d) for d in np.asarray(values[1]).reshape(-1)[2:]]
        align = bool(self.attrs.get("align_corners", 0))
        axes = np.meshgrid(*(_base_axis(d, align) for d in dims), indexing="ij")
        base = np.stack([*axes[::-1], np.ones(dims)], axis=-1).reshape(-1, len(dims) + 1)
        grid = np.einsum("nkj,pj->npk", theta.astype(np.float64), base)
        return [grid.reshape(theta.shape[0], *dims, len(dims)).astype(theta.dtype)]


def _ints(op: Op, name: str, rank: int, default: int) -> list[int]:
    """A per-axis attribute (pads are 2 * rank long), checked for length and sign."""
    n = 2 * rank if name == "pads" else rank
    values = [int(v) for v in op.attrs.get(name) or [default] * n]
    if len(values) != n or any(v < (0 if name == "pads" else 1) for v in values):
        raise op.error(f"{name} must hold {n} {'non-negative' if name == 'pads' else 'positive'} values, got {values}")
    return values


def _channels(columns: Dim, taps: int) -> Dim:
    """Col2Im's output channels: input dim 1 over the block size."""
    return columns // taps if isinstance(columns, int) else simplify(columns / sympy.Integer(taps))


@register
class Col2Im(Op):
    """Adds the columns of an im2col matrix (N, C * prod(block), L) back into images (N, C, *image_shape)."""

    op_type = "Col2Im"
    since_version = 18
    value_inputs = (1, 2)

    def layout(self, inputs: list[Optional[TensorType]]) -> tuple[list[Dim], list[int], list[int], dict]:
        """(image, block, blocks per axis, {strides, dilations, pads})."""
        x = inputs[0]
        image = list(shape_from_value(self, self.value_of(inputs, 1, "image_shape")))
        block = [int(v) for v in np.asarray(self.value_of(inputs, 2, "block_shape")).reshape(-1)]
        r = len(image)
        if x.rank != 3 or x.dtype == np.bool_ or len(block) != r or r < 1 or any(b < 1 for b in block):
            raise self.error(f"expects numeric (N, C * prod(block), L) input and matching image/block shapes,"
                             f" got {x.dtype} {x.shape}, image {image}, block {block}")
        a = self.attributes(r)
        counts = [simplify(sympy.floor((image[d] + a["pads"][d] + a["pads"][d + r] - a["dilations"][d] * (block[d] - 1) - 1)
                                       / sympy.Integer(a["strides"][d])) + 1) for d in range(r)]
        if any(isinstance(c, int) and c < 1 for c in counts):
            raise self.error(f"image {image} holds no block {block}")
        self.require(sympy.Eq(x.shape[2], num_elements(counts)),
                     f"input length {x.shape[2]} must equal the number of blocks {counts}")
        if isinstance(x.shape[1], int) and x.shape[1] % math.prod(block):
            raise self.error(f"input dim 1 ({x.shape[1]}) is not a multiple of the block size {math.prod(block)}")
        return image, block, counts, a

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether image_shape or block_shape is computed while running (the code then reads and checks them)."""
        return inputs[1].value is None or inputs[2].value is None

    def attributes(self, rank: int) -> dict[str, list[int]]:
        """strides, dilations and pads (2 * rank), checked."""
        return {k: _ints(self, k, rank, 0 if k == "pads" else 1) for k in ("strides", "dilations", "pads")}

    def runtime_rank(self, inputs: list[Optional[TensorType]]) -> int:
        """The image rank when a shape is read at run time: what the static shapes of both value inputs say."""
        x, image, block = inputs[0], inputs[1], inputs[2]
        lengths = {t.shape[0] if t.rank == 1 else None for t in (image, block)}
        r = lengths.pop() if len(lengths) == 1 else None
        if x.rank != 3 or x.dtype == np.bool_ or not isinstance(r, int) or r < 1:
            raise self.error(f"expects numeric (N, C * prod(block), L) input and image/block shapes of one fixed"
                             f" length, got {x.dtype} {x.shape}, image {image.shape}, block {block.shape}")
        return r

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if self.at_run_time(inputs):
            r = self.runtime_rank(inputs)
            self.attributes(r)
            known = inputs[1].value is not None
            image = shape_from_value(self, inputs[1].value) if known else [self.runtime_dim(f"image{d}")
                                                                           for d in range(r)]
            channels = (self.runtime_dim("channels") if inputs[2].value is None
                        else _channels(x.shape[1], int(np.prod(np.asarray(inputs[2].value)))))
            return [TensorType(x.dtype, (x.shape[0], channels, *image))]
        image, block, _, _ = self.layout(inputs)
        return [TensorType(x.dtype, (x.shape[0], _channels(x.shape[1], math.prod(block)), *image))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        image, block, counts, a = self.layout([TensorType(v.dtype, v.shape, v) for v in values])
        r, n = len(image), x.shape[0]
        c = x.shape[1] // math.prod(block)
        cols = x.reshape(n, c, math.prod(block), -1)
        y = np.zeros((n, c, math.prod(image)), dtype=x.dtype)
        grid = np.stack(np.meshgrid(*(np.arange(k) for k in counts), indexing="ij"), axis=-1).reshape(-1, r)
        for k, tap in enumerate(itertools.product(*(range(b) for b in block))):
            pos = grid * a["strides"] - a["pads"][:r] + np.array(tap) * a["dilations"]
            inside = np.all((pos >= 0) & (pos < image), axis=1)
            flat = np.ravel_multi_index(tuple(pos[inside].T), image)
            np.add.at(y, (slice(None), slice(None), flat), cols[:, :, k, inside])
        return [y.reshape(n, c, *image)]


@register
class MaxUnpool(Op):
    """Scatters X into a zero output at the flat indices I (MaxPool's Indices); output_shape fixes the size.

    Indices are flat over the whole output, as the spec and onnxruntime read
    them: with output_shape they address that shape (MaxPool's input), which
    the onnx reference does not (it addresses the inferred shape, then pads).
    """

    op_type = "MaxUnpool"
    since_version = 9
    value_inputs = (2,)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, indices = inputs[0], inputs[1]
        if x.dtype not in FLOAT_TYPES or indices.dtype != np.int64 or x.rank < 3:
            raise self.error(f"expects float (N, C, ...) X and int64 I, got {x.dtype} {x.shape} and {indices.dtype}")
        if indices.rank != x.rank or not all(dims_equal(a, b) for a, b in zip(x.shape, indices.shape)):
            raise self.error(f"I {indices.shape} must have the shape of X {x.shape}")
        r = x.rank - 2
        kernel = _ints(self, "kernel_shape", r, 0)
        strides, pads = _ints(self, "strides", r, 1), _ints(self, "pads", r, 0)
        shape = self.value_of(inputs, 2, "output_shape")
        if shape is not None:
            out = shape_from_value(self, shape)
            if len(out) != x.rank:
                raise self.error(f"output_shape {out} must have rank {x.rank}")
            return [TensorType(x.dtype, out)]
        spatial = [simplify((x.shape[d + 2] - 1) * strides[d] - pads[d] - pads[d + r] + kernel[d]) for d in range(r)]
        return [TensorType(x.dtype, (*x.shape[:2], *spatial))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, indices = values[0], values[1].reshape(-1)
        (out,) = self.infer([TensorType(v.dtype, v.shape, v) if v is not None else None for v in values])
        y = np.zeros(math.prod(out.shape), dtype=x.dtype)
        if np.any((indices < 0) | (indices >= y.size)):
            raise self.error(f"indices must lie in [0, {y.size})")
        y[indices] = x.reshape(-1)
        return [y.reshape(out.shape)]
