"""Pad: constant, reflect, edge and wrap padding, negative pads cropping.

Pads (and axes) are used when the code is generated where known, else read
while running (the dims padded then run-time dims); the constant may be a
run-time scalar.  Negative pads crop the input first, then the positive ones
add elements.  The CPU code is in ``targets/cpu/emitters/pad.py``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, simplify
from .base import Op, contiguous_strides, normalize_axis
from .registry import register

_MODES = ("constant", "reflect", "edge", "wrap")


def typed_values(values: list[Optional[np.ndarray]]) -> list[Optional[TensorType]]:
    """Numpy values as the TensorTypes shape inference sees, so ``evaluate`` can reuse the planning code."""
    return [None if v is None else TensorType(np.asarray(v).dtype, np.asarray(v).shape, np.asarray(v)) for v in values]


@register
class Pad(Op):
    """Pad with pads (``paddings`` in opset 1) and the constant as attributes (opset 1 to 10)."""

    op_type = "Pad"

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the pads or axes are read while running."""
        return any(i < len(inputs) and inputs[i] is not None and inputs[i].value is None for i in self.value_inputs)

    def rows_independent(self, inputs: list[Optional[TensorType]]) -> bool:
        """Rows are padded within themselves when the leading dim gets no pads (begin 1, end -1 would shift it)."""
        if self.at_run_time(inputs):
            return False
        begin, end = self.pads(inputs)
        return begin[0] == 0 and end[0] == 0

    # ---- parameters ---------------------------------------------------------
    def raw_pads(self, inputs: list[Optional[TensorType]]) -> tuple[list[int], Optional[list[int]]]:
        """The pads as given and the axes they apply to (None: all)."""
        return [int(p) for p in self.attrs.get("pads", self.attrs.get("paddings", []))], None

    def pads(self, inputs: list[Optional[TensorType]]) -> tuple[list[int], list[int]]:
        """(begin, end) pads of every axis; negative values crop."""
        rank = inputs[0].rank
        pads, axes = self.raw_pads(inputs)
        axes = list(range(rank)) if axes is None else [normalize_axis(self, a, rank) for a in axes]
        if len(pads) != 2 * len(axes):
            raise self.error(f"{len(pads)} pads for {len(axes)} axes: expected twice as many pads as axes")
        begin, end = [0] * rank, [0] * rank
        for k, a in enumerate(axes):
            begin[a], end[a] = pads[k], pads[k + len(axes)]
        return begin, end

    def crop(self, inputs: list[Optional[TensorType]]) -> tuple[Dim, list[Dim], list[int]]:
        """Negative pads crop the input first: (element offset of the kept part, its extent per axis, the
        non-negative pads before each axis), so that padding only ever adds elements."""
        x = inputs[0]
        begin, end = self.pads(inputs)
        strides = contiguous_strides(x.shape)
        offset: Dim = simplify(sum((max(-b, 0) * s for b, s in zip(begin, strides)), 0))
        extent = [simplify(d + min(b, 0) + min(e, 0)) for d, b, e in zip(x.shape, begin, end)]
        return offset, extent, [max(b, 0) for b in begin]

    def mode(self) -> str:
        mode = self.attrs.get("mode", "constant")
        if mode not in _MODES:
            raise self.error(f"unknown pad mode {mode!r}")
        return mode

    def constant(self, values: list) -> float:
        return float(self.attrs.get("value", 0.0))

    # ---- contract -------------------------------------------------------------
    def runtime_axes(self, inputs: list[Optional[TensorType]]) -> list[int]:
        """The axes whose dims the node's code computes: those named by axes known when generating, else all."""
        x = inputs[0]
        t = inputs[1]
        if t.rank != 1 or not isinstance(t.shape[0], int):
            raise self.error(f"pads must be a 1-D tensor of known length, got shape {t.shape}")
        axes = inputs[3] if len(inputs) > 3 else None
        if axes is None or axes.value is None:
            return list(range(x.rank))
        return sorted({normalize_axis(self, int(a), x.rank) for a in np.asarray(axes.value).reshape(-1)})

    def infer(self, inputs):
        x = inputs[0]
        if self.at_run_time(inputs):
            self.mode()
            padded = self.runtime_axes(inputs)
            return [TensorType(x.dtype, tuple(self.runtime_dim(f"dim{i}") if i in padded else d
                                              for i, d in enumerate(x.shape)))]
        begin, end = self.pads(inputs)
        shape = []
        for d, b, e in zip(x.shape, begin, end):
            if b < 0 or e < 0:
                self.require(sympy.Ge(d, -min(b, 0) - min(e, 0)), f"cropping {-min(b, 0) - min(e, 0)} from dim {d}")
            if self.mode() != "constant" and (b > 0 or e > 0) and isinstance(d, int) and d + min(b, 0) + min(e, 0) <= 0:
                raise self.error(f"{self.mode()} padding of an empty axis")
            shape.append(simplify(d + b + e))
        return [TensorType(x.dtype, tuple(shape))]

    def evaluate(self, values):
        x = values[0]
        begin, end = self.pads(typed_values(values))
        crop = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(zip(begin, end)))
        widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
        mode = self.mode()
        kwargs = {"constant_values": np.asarray(self.constant(values)).astype(x.dtype)} if mode == "constant" else {}
        return [np.pad(x[crop], widths, mode=mode, **kwargs).astype(x.dtype)]


@register
class Pad_11(Pad):
    """Pad with pads (and the constant) as inputs."""

    since_version = 11
    value_inputs = (1,)

    def raw_pads(self, inputs):
        pads = self.value_of(inputs, 1, "pads")
        axes = self.value_of(inputs, 3, "axes") if len(inputs) > 3 else None
        return ([int(p) for p in np.asarray(pads).reshape(-1)],
                None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)])

    def constant(self, values: list) -> float:
        v = values[2] if len(values) > 2 else None
        return 0.0 if v is None or np.asarray(v).size == 0 else np.asarray(v).reshape(-1)[0]


@register
class Pad_18(Pad_11):
    """Pad with an axes input."""

    since_version = 18
    value_inputs = (1, 3)
