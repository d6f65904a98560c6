"""Pooling: MaxPool, AveragePool, LpPool and their Global forms.

Every operator here is one reducer over the same window walk (``kernels::pool``
in ``kernels/pool.hxx``); what this module owns is the window geometry: output
shape and padding from ``kernel_shape``, ``strides``, ``dilations``, ``pads``,
``auto_pad`` and ``ceil_mode``, exactly as the ONNX spec writes them.  The
numpy reference (constant folding) walks the same geometry with array slices.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import num_elements
from ..ir.dtypes import FLOAT_TYPES
from .base import EmitContext, Op
from .registry import register

MAX_POOL_RANK = 8  # kMaxPoolRank in kernels/pool.hxx
INT8_TYPES = (np.dtype(np.int8), np.dtype(np.uint8))


@dataclass(frozen=True)
class PoolGeometry:
    """Per spatial dim: input and output sizes, window, step, tap spacing and padding."""

    spatial: tuple[int, ...]
    out: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]


def _output_size(n: int, k: int, s: int, d: int, begin: int, end: int, ceil_mode: bool) -> int:
    """Explicit padding: floor/ceil((n + pads - dilated kernel) / s) + 1.

    With ceil_mode the last window must start inside the input or the left
    padding; one starting in the right padding is dropped.
    """
    span = n + begin + end - ((k - 1) * d + 1)
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + begin:
        out -= 1
    return out


def _same_padding(n: int, k: int, s: int, d: int, upper: bool) -> tuple[int, int, int]:
    """SAME_UPPER/SAME_LOWER: ceil(n / s) outputs, padding split with the odd one at the end (upper) or start."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    small = total // 2
    return (out, small, total - small) if upper else (out, total - small, small)


class _Pool(Op):
    """Window geometry and emission shared by every pooling operator."""

    kernels = ("pool",)
    row_wise = True  # over the batch dim N
    global_pool: ClassVar[bool] = False
    dtypes: ClassVar[tuple[np.dtype, ...]] = FLOAT_TYPES

    # ---- geometry ----------------------------------------------------------
    def spatial_shape(self, x: TensorType) -> tuple[int, ...]:
        if x.rank < 3:
            raise self.error(f"input must be (N, C, D1, ...), got shape {x.shape}")
        if x.rank - 2 > MAX_POOL_RANK:
            raise self.error(f"at most {MAX_POOL_RANK} spatial dims are supported, got {x.rank - 2}")
        spatial = x.shape[2:]
        if not all(isinstance(d, int) for d in spatial):
            raise self.error(f"spatial dims must be known when the code is generated, got shape {x.shape}"
                             " (only the batch and channel dims may be symbolic)")
        return tuple(spatial)

    def geometry(self, x: TensorType) -> PoolGeometry:
        spatial = self.spatial_shape(x)
        rank = len(spatial)
        if self.global_pool:
            ones, zeros = (1,) * rank, (0,) * rank
            return PoolGeometry(spatial, ones, spatial, ones, ones, zeros, zeros)
        kernel = tuple(self._ints("kernel_shape", None, rank))
        strides = tuple(self._ints("strides", 1, rank))
        dilations = tuple(self._ints("dilations", 1, rank))
        pads = self._ints("pads", 0, 2 * rank)
        if any(v < 1 for v in kernel + strides + dilations) or any(p < 0 for p in pads):
            raise self.error(f"kernel_shape {kernel}, strides {strides} and dilations {dilations} must be positive"
                             f" and pads {pads} non-negative")
        auto_pad = self.attr("auto_pad", "NOTSET")
        ceil_mode = bool(self.attr("ceil_mode", 0))
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            rows = [_same_padding(n, k, s, d, auto_pad == "SAME_UPPER")
                    for n, k, s, d in zip(spatial, kernel, strides, dilations)]
            out, begin, end = (tuple(col) for col in zip(*rows))
        else:
            if auto_pad == "VALID":  # the spec's VALID size is the same with and without ceil_mode
                pads, ceil_mode = [0] * (2 * rank), False
            elif auto_pad != "NOTSET":
                raise self.error(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
            begin, end = tuple(pads[:rank]), tuple(pads[rank:])
            out = tuple(_output_size(*args, ceil_mode) for args in zip(spatial, kernel, strides, dilations, begin, end))
        if any(o < 1 for o in out):
            raise self.error(f"the window {kernel} (dilations {dilations}) does not fit the padded input {spatial}")
        return PoolGeometry(spatial, out, kernel, strides, dilations, begin, end)

    def _ints(self, name: str, default: Optional[int], length: int) -> list[int]:
        """An ints attribute of the given length; ``default`` fills it when absent (None: required)."""
        value = self.attr(name)
        if value is None or (len(value) == 0 and default is not None):
            if default is None:
                raise self.error(f"attribute {name!r} is required")
            return [default] * length
        if len(value) != length:
            raise self.error(f"attribute {name!r} has {len(value)} values, expected {length}")
        return [int(v) for v in value]

    # ---- the operator contract ---------------------------------------------
    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.dtype not in self.dtypes:
            raise self.error(f"input type {x.dtype} is not supported")
        g = self.geometry(x)
        return [TensorType(x.dtype, tuple(x.shape[:2]) + g.out)]

    def emit(self, ctx: EmitContext) -> str:
        x = ctx.inputs[0]
        g = self.geometry(x)
        names = [ctx.array(label, values) for label, values in (
            ("in_shape", g.spatial), ("out_shape", g.out), ("kernel", g.kernel), ("strides", g.strides),
            ("dilations", g.dilations), ("pads_begin", g.pads_begin), ("pads_end", g.pads_end))]
        shape = f"kernels::PoolShape{{{len(g.spatial)}, {', '.join(names)}}}"
        planes = ctx.dim(num_elements(x.shape[:2]))
        return f"kernels::pool({ctx.x(0)}, {planes}, {shape}, {self.reducer(ctx)});"

    def reducer(self, ctx: EmitContext) -> str:
        """C++ expression constructing the kernel's reducer."""
        raise NotImplementedError

    def evaluate(self, values):
        x = values[0]
        g = self.geometry(TensorType(x.dtype, x.shape))
        taps, inside, padded, flat = _windows(x, g)
        return self.reduce(x, taps, inside, padded, flat)

    def reduce(self, x: np.ndarray, taps: np.ndarray, inside: np.ndarray, padded: np.ndarray,
               flat: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
        """Numpy reduction over the last axis of the window taps (see :func:`_windows`)."""
        raise NotImplementedError


def _windows(x: np.ndarray, g: PoolGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """Window taps of every output position, stacked on a last axis.

    Returns the tap values (N, C, *out, K) (0 outside the input), masks of
    the taps inside the input and inside input plus padding (*out, K), and the
    taps' spatial offsets in row-major and column-major order (*out, K).
    """
    rank = len(g.spatial)
    grids = np.meshgrid(*[np.arange(o) for o in g.out], indexing="ij")
    values, inside, padded, rows, cols = [], [], [], [], []
    for tap in itertools.product(*[range(k) for k in g.kernel]):
        coords = [grids[d] * g.strides[d] - g.pads_begin[d] + tap[d] * g.dilations[d] for d in range(rank)]
        ok = np.logical_and.reduce([(c >= 0) & (c < n) for c, n in zip(coords, g.spatial)])
        pad_ok = np.logical_and.reduce([(c >= -b) & (c < n + e)
                                        for c, n, b, e in zip(coords, g.spatial, g.pads_begin, g.pads_end)])
        clipped = [np.clip(c, 0, n - 1) for c, n in zip(coords, g.spatial)]
        values.append(np.where(ok, x[(Ellipsis, *clipped)], 0))
        inside.append(ok)
        padded.append(pad_ok)
        rows.append(np.ravel_multi_index(clipped, g.spatial))
        cols.append(np.ravel_multi_index(clipped, g.spatial, order="F"))
    stack = lambda parts: np.stack(parts, axis=-1)  # noqa: E731
    return stack(values), stack(inside), stack(padded), (stack(rows), stack(cols))


class _MaxPool(_Pool):
    """Maximum over each window, optionally with the flat index of the maximum (Indices, int64)."""

    dtypes = FLOAT_TYPES + INT8_TYPES

    def infer(self, inputs):
        (y,) = super().infer(inputs)
        if len(self.node.outputs) > 1 and self.node.outputs[1]:
            return [y, TensorType(np.dtype(np.int64), y.shape)]
        return [y]

    def reducer(self, ctx: EmitContext) -> str:
        indices = ctx.y(1) if len(ctx.outputs) > 1 and ctx.outputs[1] is not None else "nullptr"
        column_major = "true" if self.attr("storage_order", 0) else "false"
        t = ctx.ctype(ctx.inputs[0].dtype)
        return f"kernels::MaxPoolReducer<{t}>({ctx.y(0)}, {indices}, {column_major})"

    def reduce(self, x, taps, inside, padded, flat):
        lowest = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        masked = np.where(inside, taps, lowest)
        arg = np.argmax(masked, axis=-1)
        y = np.take_along_axis(masked, arg[..., None], axis=-1)[..., 0].astype(x.dtype)
        outs = [y]
        if len(self.node.outputs) > 1 and self.node.outputs[1]:
            spatial = flat[1] if self.attr("storage_order", 0) else flat[0]
            offset = np.take_along_axis(np.broadcast_to(spatial, taps.shape), arg[..., None], axis=-1)[..., 0]
            plane = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1,) * (x.ndim - 2))
            outs.append((plane * math.prod(x.shape[2:]) + offset).astype(np.int64))
        return outs


class _AveragePool(_Pool):
    """Mean over each window; padding counts in the divisor when ``count_include_pad``."""

    def reducer(self, ctx: EmitContext) -> str:
        include = "true" if self.attr("count_include_pad", 0) else "false"
        return f"kernels::AveragePoolReducer<{ctx.ctype(ctx.inputs[0].dtype)}>({ctx.y(0)}, {include})"

    def reduce(self, x, taps, inside, padded, flat):
        count = (padded if self.attr("count_include_pad", 0) else inside).sum(axis=-1)
        return [(taps.sum(axis=-1) / np.maximum(count, 1)).astype(x.dtype)]


class _LpPool(_Pool):
    """p-norm over each window."""

    def p(self) -> int:
        p = self.attr("p", 2)
        if p <= 0:
            raise self.error(f"p must be positive, got {p}")
        return p

    def reducer(self, ctx: EmitContext) -> str:
        dt = ctx.inputs[0].dtype
        return f"kernels::LpPoolReducer<{ctx.ctype(dt)}>({ctx.y(0)}, {ctx.literal(float(self.p()), dt)})"

    def reduce(self, x, taps, inside, padded, flat):
        p = float(self.p())
        return [((np.abs(taps) ** p).sum(axis=-1) ** (1.0 / p)).astype(x.dtype)]


@register
class MaxPool(_MaxPool):
    op_type = "MaxPool"


@register
class AveragePool(_AveragePool):
    op_type = "AveragePool"


@register
class LpPool(_LpPool):
    op_type = "LpPool"


@register
class GlobalMaxPool(_MaxPool):
    op_type = "GlobalMaxPool"
    global_pool = True


@register
class GlobalAveragePool(_AveragePool):
    op_type = "GlobalAveragePool"
    global_pool = True


@register
class GlobalLpPool(_LpPool):
    op_type = "GlobalLpPool"
    global_pool = True
