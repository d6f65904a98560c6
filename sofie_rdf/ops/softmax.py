"""Softmax and LogSoftmax in both opset semantics."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import num_elements
from ..ir.dtypes import FLOAT_TYPES
from .base import Op, normalize_axis
from .registry import register


class _Softmax(Op):
    """Opset 1-12: the input is coerced to 2-D at ``axis`` and normalised per row."""

    def rows_independent(self, inputs: list[Optional[TensorType]]) -> bool:
        return normalize_axis(self, self.attrs["axis"], inputs[0].rank) >= 1  # axis 0 mixes the rows

    logarithm = False

    def view3(self, shape: tuple) -> tuple:
        """(outer, n, inner) sizes the kernel walks."""
        axis = normalize_axis(self, self.attrs["axis"], len(shape))
        return num_elements(shape[:axis]), num_elements(shape[axis:]), 1

    def infer(self, inputs):
        x = inputs[0]
        if x.dtype not in FLOAT_TYPES:
            raise self.error(f"input type {x.dtype} is not supported")
        self.view3(x.shape)
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values):
        x = values[0]
        outer, n, inner = self.view3(x.shape)
        v = x.reshape(outer, n, inner)
        shifted = v - v.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        y = shifted - logsum if self.logarithm else np.exp(shifted - logsum)
        return [y.reshape(x.shape).astype(x.dtype)]


class _Softmax13(_Softmax):
    """Opset 13+: normalised along the single axis ``axis``."""

    since_version = 13

    def view3(self, shape: tuple) -> tuple:
        axis = normalize_axis(self, self.attrs["axis"], len(shape))
        return num_elements(shape[:axis]), shape[axis], num_elements(shape[axis + 1:])


@register
class Softmax(_Softmax):
    op_type = "Softmax"


@register
class Softmax_13(_Softmax13):
    op_type = "Softmax"


@register
class LogSoftmax(_Softmax):
    op_type = "LogSoftmax"
    logarithm = True


@register
class LogSoftmax_13(_Softmax13):
    op_type = "LogSoftmax"
    logarithm = True
