"""Pooling: MaxPool, AveragePool, LpPool and their Global forms.

Every operator here is one reducer over the same window walk; what this module
owns is the window geometry: output shape and padding from ``kernel_shape``,
``strides``, ``dilations``, ``pads``, ``auto_pad`` and ``ceil_mode``, exactly as
the ONNX spec writes them.  The numpy reference (constant folding) walks the
same geometry with array slices (:func:`~sofie_rdf.ops.reference.pool_windows`);
the CPU code is in ``targets/cpu/emitters/pool.py``.
"""

from __future__ import annotations

import math
from typing import ClassVar, Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, as_dim
from ..ir.dtypes import FLOAT_TYPES
from .base import Op, at_least_zero, ceil_div
from .geometry import PoolGeometry
from .reference import pool_windows
from .registry import register

MAX_POOL_RANK = 8  # the most spatial dims supported (kMaxPoolRank in the CPU kernels/pool.hxx)
INT8_TYPES = (np.dtype(np.int8), np.dtype(np.uint8))


def _output_size(n: Dim, k: int, s: int, d: int, begin: int, end: int, ceil_mode: bool) -> Dim:
    """Explicit padding: floor/ceil((n + pads - dilated kernel) / s) + 1.

    With ceil_mode the last window must start inside the input or the left
    padding; one starting in the right padding is dropped (for a symbolic n:
    no more windows than start before n + begin).
    """
    span = n + begin + end - ((k - 1) * d + 1)
    if not isinstance(n, int):
        return as_dim(sympy.Min(ceil_div(span, s) + 1, ceil_div(n + begin, s)) if ceil_mode else span // s + 1)
    out = (ceil_div(span, s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + begin:
        out -= 1
    return out


def _same_padding(n: Dim, k: int, s: int, d: int, upper: bool) -> tuple[Dim, Dim, Dim]:
    """SAME_UPPER/SAME_LOWER: ceil(n / s) outputs, padding split with the odd one at the end (upper) or start."""
    out = ceil_div(n, s)
    total = at_least_zero((out - 1) * s + (k - 1) * d + 1 - n)
    small = as_dim(total // 2)
    large = as_dim(total - small)
    return (out, small, large) if upper else (out, large, small)


class _Pool(Op):
    """Window geometry shared by every pooling operator."""

    row_wise = True  # over the batch dim N
    global_pool: ClassVar[bool] = False
    dtypes: ClassVar[tuple[np.dtype, ...]] = FLOAT_TYPES

    # ---- geometry ----------------------------------------------------------
    def spatial_shape(self, x: TensorType) -> tuple[Dim, ...]:
        """The spatial dims: numbers, or symbols for lengths known when the code runs."""
        if x.rank < 3:
            raise self.error(f"input must be (N, C, D1, ...), got shape {x.shape}")
        if x.rank - 2 > MAX_POOL_RANK:
            raise self.error(f"at most {MAX_POOL_RANK} spatial dims are supported, got {x.rank - 2}")
        return tuple(x.shape[2:])

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
        return PoolGeometry(spatial, out, kernel, strides, dilations, begin, end)

    def _check_fits(self, g: PoolGeometry) -> None:
        """Refuse a window larger than the padded input; where the input's length is symbolic, check it when the
        code runs (on the lengths: the output's formula subtracts, which unsigned C++ cannot check)."""
        what = f"the window {g.kernel} (dilations {g.dilations}) does not fit the padded input {g.spatial}"
        for n, k, d, b, e in zip(g.spatial, g.kernel, g.dilations, g.pads_begin, g.pads_end):
            padded, span = n + b + e, (k - 1) * d + 1
            if isinstance(padded, int) and isinstance(span, int):
                if padded < span:
                    raise self.error(what)
            else:
                self.require(sympy.Ge(padded, span), what)

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
        self._check_fits(g)
        return [TensorType(x.dtype, tuple(x.shape[:2]) + g.out)]

    def evaluate(self, values):
        x = values[0]
        g = self.geometry(TensorType(x.dtype, x.shape))
        taps, inside, padded, flat = pool_windows(x, g)
        return self.reduce(x, taps, inside, padded, flat)

    def reduce(self, x: np.ndarray, taps: np.ndarray, inside: np.ndarray, padded: np.ndarray,
               flat: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
        """Numpy reduction over the last axis of the window taps (see :func:`.reference.pool_windows`)."""
        raise NotImplementedError


class _MaxPool(_Pool):
    """Maximum over each window, optionally with the flat index of the maximum (Indices, int64)."""

    dtypes = FLOAT_TYPES + INT8_TYPES

    def infer(self, inputs):
        (y,) = super().infer(inputs)
        if len(self.node.outputs) > 1 and self.node.outputs[1]:
            return [y, TensorType(np.dtype(np.int64), y.shape)]
        return [y]

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
