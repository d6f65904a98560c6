"""The ai.onnx.ml operators Binarizer and ArrayFeatureExtractor.

Binarizer is element-wise (a :class:`~sofie_rdf.ops.elementwise.UnaryOp`
expression); ArrayFeatureExtractor gathers columns of the last axis with
indices read, and range-checked, at run time.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import num_elements
from .base import Op
from .elementwise import UnaryOp, check_kinds
from .registry import register

ML_DOMAIN = "ai.onnx.ml"
FLOAT32 = np.dtype(np.float32)


@register
class Binarizer(UnaryOp):
    """1 where x is above ``threshold``, else 0, in x's type.

    The threshold is a float attribute: as in onnxruntime, integers are
    compared with it in float (an int ``threshold`` of -0.5 keeps 0 as 1).
    """

    op_type = "Binarizer"
    domain = ML_DOMAIN
    kinds = "fi"

    def reference(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > np.float32(self.attrs["threshold"]), 1, 0)


@register
class ArrayFeatureExtractor(Op):
    """``x[..., indices]`` for the flattened indices; a 1-D x gives one row (shape (1, k)), as onnxruntime."""

    op_type = "ArrayFeatureExtractor"
    domain = ML_DOMAIN

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, idx = inputs[0], inputs[1]
        check_kinds(self, x.dtype, "fi")
        if idx.dtype != np.int64:
            raise self.error(f"indices must be int64, got {idx.dtype}")
        if x.rank == 0:
            raise self.error("x must have at least one axis")
        lead = x.shape[:-1] if x.rank > 1 else (1,)
        return [TensorType(x.dtype, lead + (num_elements(idx.shape),))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, idx = values[0], values[1].reshape(-1)
        if np.any((idx < 0) | (idx >= x.shape[-1])):
            raise self.error(f"indices {idx.tolist()} out of range for a last axis of {x.shape[-1]}")
        lead = x.shape[:-1] if x.ndim > 1 else (1,)
        return [x[..., idx].reshape(lead + (idx.size,))]
