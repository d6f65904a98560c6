"""Shrink, Swish, Hardmax, LpNormalization, MeanVarianceNormalization and ReverseSequence.

Shrink and Swish are element-wise (:class:`~sofie_rdf.ops.elementwise.UnaryOp`
expressions); of the others, Hardmax and
LpNormalization read their input as an ``(outer, n, inner)`` view around the
axis, MeanVarianceNormalization walks any axis set with stride arrays, and
ReverseSequence copies time steps of each batch entry with range-checked
lengths.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import Dim, dims_equal, num_elements
from ..ir.dtypes import FLOAT_TYPES
from .base import Op, normalize_axis
from .elementwise import NUMERIC, UnaryOp
from .registry import register

FLOAT32 = np.dtype(np.float32)


def _check_float(op: Op, x: TensorType) -> None:
    if x.dtype not in FLOAT_TYPES:
        raise op.error(f"input type {x.dtype} is not supported (float32 or float64 expected)")


@register
class Shrink(UnaryOp):
    """x + bias below -lambd, x - bias above lambd, else 0.

    As in onnxruntime, integers are compared and shifted in float (the
    attributes' type) and the result truncated back to the element type,
    wrapping when out of range.
    """

    op_type = "Shrink"
    since_version = 9
    kinds = NUMERIC

    def arithmetic_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype if dtype.kind == "f" else FLOAT32

    def reference(self, x: np.ndarray) -> np.ndarray:
        v = x.astype(self.arithmetic_dtype(x.dtype))
        lambd, bias = (v.dtype.type(self.attrs[k]) for k in ("lambd", "bias"))
        y = np.where(v < -lambd, v + bias, np.where(v > lambd, v - bias, 0)).astype(v.dtype)
        if x.dtype.kind == "f":
            return y
        with np.errstate(invalid="ignore"):
            return np.where(y < 0, y.astype(np.int64).astype(x.dtype), y.astype(np.uint64).astype(x.dtype))


@register
class Swish(UnaryOp):
    """x * sigmoid(alpha * x)."""

    op_type = "Swish"
    since_version = 24

    def reference(self, x: np.ndarray) -> np.ndarray:
        return x / (1 + np.exp(-x.dtype.type(self.attrs["alpha"]) * x))


class _AxisView(Op):
    """An operator computed on the ``(outer, n, inner)`` view of a float input around ``axis``."""

    def view3(self, shape: tuple) -> tuple[Dim, Dim, Dim]:
        axis = normalize_axis(self, self.attrs["axis"], len(shape))
        return num_elements(shape[:axis]), shape[axis], num_elements(shape[axis + 1:])

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_float(self, x)
        self.view3(x.shape)
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        v = x.reshape(tuple(int(d) for d in self.view3(x.shape)))
        return [self.reference(v).reshape(x.shape).astype(x.dtype)]

    def reference(self, v: np.ndarray) -> np.ndarray:
        """The result on the (outer, n, inner) view."""
        raise NotImplementedError


@register
class Hardmax(_AxisView):
    """Opset 1-12: 1 at the first maximum of each row of the input coerced to 2-D at ``axis``, else 0."""

    op_type = "Hardmax"

    def view3(self, shape: tuple) -> tuple[Dim, Dim, Dim]:
        axis = normalize_axis(self, self.attrs["axis"], len(shape))
        return num_elements(shape[:axis]), num_elements(shape[axis:]), 1

    def reference(self, v: np.ndarray) -> np.ndarray:
        y = np.zeros_like(v)
        if v.shape[1]:
            best = np.argmax(np.where(np.isnan(v), -np.inf, v), axis=1)[:, None]
            np.put_along_axis(y, best, 1, axis=1)
        return y


@register
class Hardmax_13(Hardmax):
    """Opset 13+: along the single axis ``axis``."""

    since_version = 13
    view3 = _AxisView.view3


@register
class LpNormalization(_AxisView):
    """x divided by its L1 or L2 norm (``p``) along ``axis``; zero vectors stay zero, as in onnxruntime."""

    op_type = "LpNormalization"

    def p(self) -> int:
        p = self.attrs["p"]
        if p not in (1, 2):
            raise self.error(f"p must be 1 or 2, got {p}")
        return p

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.p()
        return super().infer(inputs)

    def reference(self, v: np.ndarray) -> np.ndarray:
        v = v.astype(np.float64)
        norm = np.abs(v).sum(axis=1, keepdims=True) if self.p() == 1 else np.sqrt((v * v).sum(axis=1, keepdims=True))
        return np.divide(v, norm, out=np.zeros_like(v), where=norm != 0)


@register
class MeanVarianceNormalization(Op):
    """(x - mean) / (std + 1e-9) over ``axes``, the ONNX function body's formula.

    The epsilon makes a constant slice 0 where onnxruntime's kernel (which
    has none) gives NaN.
    """

    op_type = "MeanVarianceNormalization"
    since_version = 9

    def axes(self, rank: int) -> list[int]:
        axes = [normalize_axis(self, int(a), rank) for a in self.attrs["axes"]]
        if len(set(axes)) != len(axes):
            raise self.error(f"axes {self.attrs['axes']} repeat an axis")
        return sorted(axes)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_float(self, x)
        self.axes(x.rank)
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        axes = tuple(self.axes(x.ndim))
        v = x.astype(np.float64)
        mean = v.mean(axis=axes, keepdims=True)
        std = np.sqrt(((v - mean) ** 2).mean(axis=axes, keepdims=True))
        return [((v - mean) / (std + 1e-9)).astype(x.dtype)]


@register
class ReverseSequence(Op):
    """Reverses the first ``sequence_lens[b]`` steps along ``time_axis`` of each entry ``b`` of ``batch_axis``.

    The lengths are a run-time input; the kernel throws std::out_of_range for
    one outside ``[0, time steps]``.
    """

    op_type = "ReverseSequence"
    since_version = 10

    def axes(self) -> tuple[int, int]:
        batch, time = self.attrs["batch_axis"], self.attrs["time_axis"]
        if {batch, time} != {0, 1}:
            raise self.error(f"batch_axis and time_axis must be 0 and 1 in either order, got {batch} and {time}")
        return batch, time

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, lens = inputs[0], inputs[1]
        batch, _ = self.axes()
        if x.rank < 2:
            raise self.error(f"input must have rank >= 2, got shape {x.shape}")
        if lens.dtype != np.int64 or lens.rank != 1 or not dims_equal(lens.shape[0], x.shape[batch]):
            raise self.error(f"sequence_lens must be int64 of shape ({x.shape[batch]},), got {lens.dtype} {lens.shape}")
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, lens = values[0], values[1]
        batch, time = self.axes()
        y = x.copy()
        for b, n in enumerate(lens.tolist()):
            if not 0 <= n <= x.shape[time]:
                raise self.error(f"sequence_lens[{b}] = {n} is outside [0, {x.shape[time]}]")
            at = [slice(None)] * x.ndim
            at[batch], at[time] = b, slice(0, n)
            y[tuple(at)] = np.flip(x[tuple(at)], axis=0)
        return [y]
