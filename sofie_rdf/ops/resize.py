"""Resize (opsets 10 to 19) and Upsample (opsets 7 and 9).

Interpolation is separable: along each resized axis an output position reads
a few input positions with weights.  Those per-axis tables (source indices,
weights, and for ``tf_crop_and_resize`` the positions that extrapolate) are
computed here when the code is generated, following the ONNX reference
(onnx/reference/ops/op_resize.py), so nearest, n-linear, cubic and the
antialiased filters all run through one table-driven loop and nothing
about coordinates is computed per call.  Axes that keep their size (a
symbolic batch) are copied as they are.

Scales, sizes or a roi computed while the model runs (graph inputs, or
tensors computed from them) cannot be tabled ahead: the output's resized
dims are then run-time dims (:meth:`Op.runtime_dim`) and the code builds
the same tables, by the same rules, per call before the same loop.  So
does a symbolic axis that known scales or sizes resize (an image of any
height H upsampled twice): its output size (``floor(2 * H)`` in float32)
or its scale (``sizes / H``) is only known once H is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import Dim
from .base import Op, normalize_axis
from .pad import typed_values
from .registry import register

_COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                     "tf_crop_and_resize", "tf_half_pixel_for_nn")


@dataclass
class AxisTable:
    """How one resized axis reads its input: ``index``/``weight`` are (out, taps)."""

    index: np.ndarray
    weight: np.ndarray
    outside: Optional[np.ndarray]  # (out,) bool, or None when nothing extrapolates


# ---- filter coefficients (as in the ONNX reference) ------------------------------

def _linear_coeffs(antialias: bool) -> Callable[[float, float], np.ndarray]:
    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([1 - ratio, ratio])
        scale = min(scale, 1.0)
        start = int(np.floor(-1 / scale) + 1)
        args = (np.arange(start, 2 - start) - ratio) * scale
        c = np.clip(1 - np.abs(args), 0, 1)
        return c / c.sum()
    return coeffs


def _cubic_kernel(x: float, a: float) -> float:
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def _cubic_coeffs(a: float, antialias: bool) -> Callable[[float, float], np.ndarray]:
    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([_cubic_kernel(ratio + 1, a), _cubic_kernel(ratio, a), _cubic_kernel(1 - ratio, a),
                             _cubic_kernel(2 - ratio, a)])
        scale = min(scale, 1.0)
        start = int(np.floor(-2 / scale) + 1)
        c = np.array([_cubic_kernel(scale * (i - ratio), a) for i in range(start, 2 - start)])
        return c / c.sum()
    return coeffs


def source_coordinates(mode: str, out_size: int, in_size: int, scale: float,
                       roi: tuple[float, float]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Input coordinate of every output position, and which ones extrapolate (tf_crop_and_resize).

    The formulas are the spec's, evaluated in float32 in onnxruntime's order
    (its results are what models are checked against): a position that is
    exactly on a rounding boundary in float32 (2.2 * 2.5 / 2.2) stays there.
    """
    f = np.float32
    y = np.arange(out_size, dtype=f)
    s, length_in, length_out, half = f(scale), f(in_size), f(out_size), f(0.5)
    if mode == "align_corners":
        x = np.zeros(out_size, f) if out_size == 1 else y * (length_in - f(1)) / (length_out - f(1))
    elif mode == "asymmetric":
        x = y / s
    elif mode == "tf_crop_and_resize":
        start, end = f(roi[0]), f(roi[1])
        if out_size == 1:
            x = np.full(out_size, f(0.5 * (float(start) + float(end)) * (in_size - 1)), f)
        else:
            x = start * (length_in - f(1)) + (y * (end - start) * (length_in - f(1))) / (length_out - f(1))
        return x.astype(np.float64), (x < 0) | (x > length_in - f(1))
    elif mode == "pytorch_half_pixel":
        x = np.zeros(out_size, f) if out_size == 1 else (y + half) / s - half
    elif mode == "half_pixel":
        x = (y + half) / s - half
    elif mode == "tf_half_pixel_for_nn":  # opsets 11 and 12
        x = (y + half) / s
    else:  # half_pixel_symmetric
        adjustment = length_out / (s * length_in)
        offset = length_in / f(2) * (f(1) - adjustment)
        x = (float(offset) + (y.astype(np.float64) + 0.5) / float(s) - 0.5).astype(f)
    return x.astype(np.float64), None


def nearest_index(x: np.ndarray, mode: str, scale: float) -> np.ndarray:
    """The input position each source coordinate rounds to (before clamping)."""
    if mode == "round_prefer_floor":
        return np.where(x - np.floor(x) == 0.5, np.floor(x), np.sign(x) * np.floor(np.abs(x) + 0.5))
    if mode == "round_prefer_ceil":
        return np.sign(x) * np.floor(np.abs(x) + 0.5)  # std::round: halves away from zero
    if mode == "floor" or (mode == "simple" and scale >= 1):
        return np.floor(x) if mode == "floor" else np.trunc(x)
    return np.ceil(x)  # ceil, and opset < 11 nearest when downsampling


def _any(outside: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return outside if outside is not None and outside.any() else None


def axis_table(x: np.ndarray, outside: Optional[np.ndarray], in_size: int, scale: float,
               coeffs: Callable[[float, float], np.ndarray], exclude_outside: bool) -> AxisTable:
    """Neighbours and weights of every source coordinate ``x`` (the reference's neighbour choice)."""
    base = np.floor(x)
    ratios = np.where(x == base, 1.0, x - base)
    weight = np.array([coeffs(float(r), scale) for r in ratios], dtype=np.float64).reshape(len(x), -1)
    n = weight.shape[1]
    pad = int(np.ceil(n / 2))
    padded = x + pad
    p = np.floor(padded).astype(np.int64)
    frac = padded - p
    if n % 2 == 0:
        start = p + np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        start = p + np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    index = start[:, None] + np.arange(n)[None, :] - pad
    if exclude_outside:
        weight = np.where((index < 0) | (index >= in_size), 0.0, weight)
        total = weight.sum(axis=1, keepdims=True)
        weight = weight / np.where(total == 0, 1.0, total)
    return AxisTable(np.clip(index, 0, in_size - 1), weight, _any(outside))


# ---- the operators ------------------------------------------------------------------

class _ResizeBase(Op):
    """Shared planning (scales, sizes, tables), numpy reference and emission."""

    # Subclasses: scales/sizes/roi per axis from attributes or inputs.  A scale or a size that depends on a
    # symbolic input dim (see sizes_from_scales, Resize_11._from_sizes) is None: only the code can know it.
    def params(self, inputs: list[Optional[TensorType]]
               ) -> tuple[list[Optional[float]], list[Optional[Dim]], Optional[list[float]]]:
        raise NotImplementedError

    def given(self, inputs: list[Optional[TensorType]], what: str) -> Optional[np.ndarray]:
        """The ``scales``, ``sizes`` or ``roi`` known when the code is generated, as the node gives them
        (None when not given): the run-time path writes them into the code."""
        raise NotImplementedError

    def mode(self) -> str:
        mode = self.attrs.get("mode", "nearest")
        if mode == "bilinear":
            mode = "linear"
        if mode not in ("nearest", "linear", "cubic"):
            raise self.error(f"unknown interpolation mode {mode!r}")
        return mode

    def values_at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether scales, sizes or roi are computed while running (the code then reads them, see value_slots)."""
        return False

    def runtime_axes(self, inputs: list[Optional[TensorType]]) -> list[int]:
        """The axes whose output size only the code knows: every resized axis when the values are read at
        run time, else the symbolic axes whose output size depends on the symbol's value."""
        rank = inputs[0].rank
        if self.values_at_run_time(inputs):
            return self.resized_axes(rank)
        _, sizes, _ = self.params(inputs)
        return [a for a, o in enumerate(sizes) if o is None]

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the code computes the output shape and the tables per call: the values are read at run
        time, or a resized axis has a symbolic size (the tables depend on it), or a scale is not known
        (sizes given for a symbolic axis)."""
        if self.values_at_run_time(inputs):
            return True
        scales, sizes, _ = self.params(inputs)
        return any(s is None or o is None for s, o in zip(scales, sizes))

    def value_slots(self) -> dict[str, int]:
        """Input index of the ``scales``, ``sizes`` and ``roi`` the code reads when they are known at run time."""
        return {}

    def resized_axes(self, rank: int) -> list[int]:
        """The axes scales or sizes are given for."""
        return list(range(rank))

    def policy(self) -> str:
        """keep_aspect_ratio_policy (resize by sizes only)."""
        policy = self.attrs.get("keep_aspect_ratio_policy", "stretch")
        if policy not in ("stretch", "not_larger", "not_smaller"):
            raise self.error(f"unknown keep_aspect_ratio_policy {policy!r}")
        return policy

    def runtime_shape(self, inputs: list[Optional[TensorType]]) -> tuple[Dim, ...]:
        """Output shape when the code computes it: a run-time dim on every axis of :meth:`runtime_axes`;
        the other axes keep the size known now (a copied batch N, sizes given for a symbolic axis)."""
        shape = inputs[0].shape
        axes = set(self.runtime_axes(inputs))
        known = shape if self.values_at_run_time(inputs) else self.params(inputs)[1]
        return tuple(self.runtime_dim(f"dim{a}") if a in axes else known[a] for a in range(len(shape)))

    def coordinate_mode(self) -> str:
        mode = self.attrs.get("coordinate_transformation_mode", "asymmetric")
        if mode not in _COORDINATE_MODES:
            raise self.error(f"unknown coordinate_transformation_mode {mode!r}")
        return mode

    def coeffs(self) -> Callable[[float, float], np.ndarray]:
        mode, antialias = self.mode(), bool(self.attrs.get("antialias", 0))
        if mode == "linear":
            return _linear_coeffs(antialias)
        return _cubic_coeffs(float(self.attrs.get("cubic_coeff_a", -0.75)), antialias)

    def sizes_from_scales(self, shape: tuple, scales: list[float], roi: Optional[list[float]]
                          ) -> list[Optional[Dim]]:
        """Output sizes; None on a resized symbolic axis (``floor(s * H)`` in float32 has no exact symbolic form)."""
        rank = len(shape)
        out: list[Optional[Dim]] = []
        for i, (d, s) in enumerate(zip(shape, scales)):
            if s == 1.0 and (roi is None or (roi[i] == 0 and roi[i + rank] == 1)):
                out.append(d)
            elif not isinstance(d, int):
                out.append(None)
            else:  # in float32, as onnxruntime computes it (the spec's roi factor is ignored by every runtime)
                out.append(int(np.float32(s) * np.float32(d)))
        return out

    def tables(self, inputs: list[Optional[TensorType]]) -> tuple[list[Dim], list[Optional[AxisTable]]]:
        """Output shape, and the table of every resized axis (None for axes copied as they are)."""
        shape = inputs[0].shape
        scales, sizes, roi = self.params(inputs)
        rank = len(shape)
        coord = self.coordinate_mode()
        exclude = bool(self.attrs.get("exclude_outside", 0))
        tables: list[Optional[AxisTable]] = []
        for i, (d, s, o) in enumerate(zip(shape, scales, sizes)):
            r = (0.0, 1.0) if roi is None else (float(roi[i]), float(roi[i + rank]))
            if isinstance(o, int) and o < 0:
                raise self.error(f"negative output size {o} on axis {i}")
            if not isinstance(d, int) or (d == o and s == 1.0 and r == (0.0, 1.0)):
                if not isinstance(d, int) and (s != 1.0 or o != d):  # at_run_time sends such nodes elsewhere
                    raise self.error(f"axis {i} of symbolic size {d} is resized: its tables are built at run time")
                tables.append(None)
                continue
            x, outside = source_coordinates(coord, int(o), d, s, r)
            if self.mode() == "nearest":
                index = np.clip(nearest_index(x, self.attrs.get("nearest_mode", "simple"), s), 0, d - 1)
                tables.append(AxisTable(index.astype(np.int64)[:, None], np.ones((int(o), 1)), _any(outside)))
            else:
                tables.append(axis_table(x, outside, d, s, self.coeffs(), exclude))
        return sizes, tables

    def extrapolation(self) -> float:
        return float(self.attrs.get("extrapolation_value", 0.0))

    def infer(self, inputs):
        x = inputs[0]
        if self.mode() == "nearest" and self.attrs.get("antialias", 0):
            raise self.error("antialias applies to linear and cubic modes only")
        if self.at_run_time(inputs):  # attributes are checked now, values when the code reads them
            self.coordinate_mode()
            self.policy()
            return [TensorType(x.dtype, self.runtime_shape(inputs))]
        sizes, _ = self.tables(inputs)
        return [TensorType(x.dtype, tuple(sizes))]

    def evaluate(self, values):
        x = values[0]
        _, tables = self.tables(typed_values(values))
        y = x.astype(np.float64)
        for axis, t in enumerate(tables):
            if t is None:
                continue
            taken = np.take(y, t.index, axis=axis)  # (..., out, taps, ...)
            w = t.weight.reshape((1,) * axis + t.weight.shape + (1,) * (y.ndim - axis - 1))
            y = (taken * w).sum(axis=axis + 1)
            if t.outside is not None:
                y = np.where(t.outside.reshape((1,) * axis + (-1,) + (1,) * (y.ndim - axis - 1)),
                             self.extrapolation(), y)
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            y = np.clip(np.rint(y), info.min, info.max)
        return [y.astype(x.dtype)]


def _floats(value) -> list[float]:
    return [float(v) for v in np.asarray(value, dtype=np.float32).reshape(-1)]


@register
class Upsample(_ResizeBase):
    """Upsample-7: scales attribute, asymmetric coordinates, nearest or (bi)linear."""

    op_type = "Upsample"
    since_version = 7

    def raw_scales(self, inputs) -> list[float]:
        return _floats(self.attrs["scales"])

    def params(self, inputs):
        scales = self.raw_scales(inputs)
        if len(scales) != inputs[0].rank:
            raise self.error(f"{len(scales)} scales for a rank {inputs[0].rank} input")
        return scales, self.sizes_from_scales(inputs[0].shape, scales, None), None

    def given(self, inputs, what):
        return np.asarray(self.raw_scales(inputs), np.float32) if what == "scales" else None


@register
class Upsample_9(Upsample):
    """Upsample-9: scales as an input."""

    since_version = 9
    value_inputs = (1,)

    def raw_scales(self, inputs):
        return _floats(self.value_of(inputs, 1, "scales"))

    def values_at_run_time(self, inputs):
        return inputs[1].value is None

    def value_slots(self):
        return {"scales": 1}


@register
class Resize(Upsample_9):
    """Resize-10: like Upsample-9."""

    op_type = "Resize"
    since_version = 10


@register
class Resize_11(_ResizeBase):
    """Resize-11 and later: roi, scales or sizes, axes (18), keep_aspect_ratio_policy (18)."""

    op_type = "Resize"
    since_version = 11
    value_inputs = (1, 2, 3)

    def _input(self, inputs, i: int, what: str) -> Optional[np.ndarray]:
        v = self.value_of(inputs, i, what) if len(inputs) > i else None
        return None if v is None or np.asarray(v).size == 0 else np.asarray(v)

    def value_slots(self):
        roi = {"roi": 1} if self.coordinate_mode() == "tf_crop_and_resize" else {}  # other modes ignore it
        return {**roi, "scales": 2, "sizes": 3}

    def values_at_run_time(self, inputs):
        return any(i < len(inputs) and inputs[i] is not None and inputs[i].value is None
                   for i in self.value_slots().values())

    def given(self, inputs, what):
        slot = self.value_slots().get(what)
        return None if slot is None else self._input(inputs, slot, what)

    def resized_axes(self, rank):
        return [normalize_axis(self, int(a), rank) for a in self.attrs.get("axes") or range(rank)]

    def params(self, inputs):
        shape = inputs[0].shape
        rank = len(shape)
        axes = self.resized_axes(rank)
        scales_in, sizes_in = self._input(inputs, 2, "scales"), self._input(inputs, 3, "sizes")
        roi_in = self._input(inputs, 1, "roi") if "roi" in self.value_slots() else None
        if (scales_in is None) == (sizes_in is None):
            raise self.error("exactly one of scales and sizes must be given")
        roi = None
        if roi_in is not None:
            flat = _floats(roi_in) if roi_in.dtype != np.float64 else [float(v) for v in roi_in.reshape(-1)]
            if len(flat) != 2 * len(axes):
                raise self.error(f"roi has {len(flat)} values for {len(axes)} axes")
            roi = [0.0] * rank + [1.0] * rank
            for k, a in enumerate(axes):
                roi[a], roi[a + rank] = flat[k], flat[k + len(axes)]
        if scales_in is not None:
            given = _floats(scales_in)
            if len(given) != len(axes):
                raise self.error(f"{len(given)} scales for {len(axes)} axes")
            scales = [1.0] * rank
            for a, s in zip(axes, given):
                scales[a] = s
            return scales, self.sizes_from_scales(shape, scales, roi), roi
        return self._from_sizes(shape, axes, [int(v) for v in sizes_in.reshape(-1)], roi)

    def _from_sizes(self, shape, axes, given, roi):
        if len(given) != len(axes):
            raise self.error(f"{len(given)} sizes for {len(axes)} axes")
        sizes: list[Optional[Dim]] = list(shape)
        scales: list[Optional[float]] = [1.0] * len(shape)
        for a, s in zip(axes, given):
            if isinstance(shape[a], int):
                sizes[a], scales[a] = s, float(np.float32(s) / np.float32(shape[a]))
            else:  # s / H: known once H is
                sizes[a], scales[a] = s, None
        policy = self.policy()
        if policy == "stretch":
            return scales, sizes, roi
        if any(scales[a] is None for a in axes):  # the one scale of all axes depends on a symbolic size
            for a in axes:
                sizes[a], scales[a] = None, None
            return scales, sizes, roi
        pick = min if policy == "not_larger" else max
        scale = pick(scales[a] for a in axes)
        for a in axes:
            scales[a], sizes[a] = scale, int(np.floor(np.float32(scale) * np.float32(shape[a]) + 0.5))
        return scales, sizes, roi
