"""The ai.onnx.ml operators Binarizer, ArrayFeatureExtractor, Scaler, Normalizer, LinearRegressor,
LinearClassifier and ZipMap (the tree ensembles are in :mod:`sofie_rdf.ops.trees`).

Binarizer is element-wise (a :class:`~sofie_rdf.ops.elementwise.UnaryOp`
expression); ArrayFeatureExtractor gathers columns of the last axis with
indices read, and range-checked, at run time.  The others follow onnxruntime's
results, which is what converters (skl2onnx, onnxmltools) are tested against.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import num_elements
from .base import Op
from .elementwise import UnaryOp, check_kinds
from .registry import register
from .shape import ViewOp
from .trees import TRANSFORMS

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


def _rows_columns(op: Op, x: TensorType) -> tuple:
    """(rows, columns) of a 1-D (one row) or 2-D X, as onnxruntime reads the ai.onnx.ml inputs."""
    check_kinds(op, x.dtype, "fi")
    if x.rank not in (1, 2):
        raise op.error(f"X must be 1-D or 2-D, got shape {x.shape}")
    return (1, x.shape[0]) if x.rank == 1 else x.shape


def _post_transform(op: Op) -> str:
    name = op.attrs.get("post_transform", "NONE")
    if name not in TRANSFORMS:
        raise op.error(f"post_transform {name!r} is not one of {', '.join(TRANSFORMS)}")
    return name


@register
class Scaler(Op):
    """Y (float) = (X - offset) * scale, per column (``offset``/``scale`` of one value or one per column)."""

    op_type = "Scaler"
    domain = ML_DOMAIN
    row_wise = True

    def params(self, columns: Any) -> tuple[np.ndarray, np.ndarray]:
        offset = np.asarray(self.attrs.get("offset") or [0.0], dtype=np.float32)
        scale = np.asarray(self.attrs.get("scale") or [1.0], dtype=np.float32)
        for name, v in (("offset", offset), ("scale", scale)):
            if v.size != 1 and isinstance(columns, int) and v.size != columns:
                raise self.error(f"{name} has {v.size} values for {columns} columns (1 or one per column expected)")
        return offset, scale

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        _, columns = _rows_columns(self, inputs[0])
        self.params(columns)
        return [TensorType(FLOAT32, inputs[0].shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        offset, scale = self.params(x.shape[-1])
        return [((x - offset) * scale).astype(np.float32)]


@register
class Normalizer(Op):
    """Each row (as float) divided by its MAX, L1 or L2 norm; a zero norm leaves the row as it is."""

    op_type = "Normalizer"
    domain = ML_DOMAIN
    row_wise = True
    NORMS = ("MAX", "L1", "L2")

    def norm(self) -> int:
        name = self.attrs.get("norm", "MAX")
        if name not in self.NORMS:
            raise self.error(f"norm {name!r} is not one of {', '.join(self.NORMS)}")
        return self.NORMS.index(name)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        _rows_columns(self, inputs[0])
        self.norm()
        return [TensorType(FLOAT32, inputs[0].shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = np.atleast_2d(values[0].astype(np.float32))
        d = [np.max(x, axis=1), np.sum(np.abs(x), axis=1), np.sqrt(np.sum(x * x, axis=1))][self.norm()]
        d = np.where(d == 0, np.float32(1), d).astype(np.float32)
        return [(x / d[:, None]).reshape(values[0].shape)]


class _Linear(Op):
    """Scores = float(X) coefficients^T + intercepts, computed in float, ``coefficients`` (n, columns) flat."""

    domain = ML_DOMAIN
    row_wise = True

    def n_scores(self) -> int:
        raise NotImplementedError

    def weights(self, columns: Any) -> tuple[np.ndarray, np.ndarray]:
        coef = np.asarray(self.attrs.get("coefficients") or [], dtype=np.float32)
        intercepts = np.asarray(self.attrs.get("intercepts") or [], dtype=np.float32)
        n = self.n_scores()
        if n < 1:
            raise self.error(f"the model has {n} score columns")
        if isinstance(columns, int) and coef.size != n * columns:
            raise self.error(f"coefficients has {coef.size} values, expected {n} x {columns} columns")
        if intercepts.size not in (0, n):
            raise self.error(f"intercepts has {intercepts.size} values for {n} score columns")
        return coef, intercepts

    def scores(self, x: np.ndarray) -> np.ndarray:
        x2 = np.atleast_2d(x).astype(np.float32)
        coef, intercepts = self.weights(x2.shape[1])
        z = x2 @ coef.reshape(self.n_scores(), -1).T
        return (z + intercepts if intercepts.size else z).astype(np.float32)


@register
class LinearRegressor(_Linear):
    """Y (N, targets) = the scores; with one target only PROBIT of the post transforms applies (onnxruntime)."""

    op_type = "LinearRegressor"

    def n_scores(self) -> int:
        return int(self.attrs.get("targets", 1))

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        rows, columns = _rows_columns(self, inputs[0])
        self.weights(columns)
        _post_transform(self)
        return [TensorType(FLOAT32, (rows, self.n_scores()))]


@register
class LinearClassifier(_Linear):
    """Label (N, int64) and scores Z (N, classes).  One intercept (one score column) with two labels is
    onnxruntime's binary case: label 1 where the score is above 0, Z = (1 - s, s) whatever the post
    transform (PROBIT refused: onnxruntime writes half of Z then).  String labels are refused."""

    op_type = "LinearClassifier"

    def n_scores(self) -> int:
        return len(self.attrs.get("intercepts") or []) or 1

    def labels(self) -> list[int]:
        if self.attrs.get("classlabels_strings"):
            raise self.error("string class labels (classlabels_strings) are not supported: the generated code has no"
                             " string tensors; export the model with integer labels")
        return list(self.attrs.get("classlabels_ints") or [])

    def binary(self) -> bool:
        return self.n_scores() == 1 and len(self.labels()) == 2

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        rows, columns = _rows_columns(self, inputs[0])
        self.weights(columns)
        labels, n = self.labels(), self.n_scores()
        if n > 1 and len(labels) < n:
            raise self.error(f"{len(labels)} class labels for {n} score columns")
        if self.binary() and _post_transform(self) == "PROBIT":
            raise self.error("a binary LinearClassifier with PROBIT is not supported (onnxruntime fills half its scores)")
        _post_transform(self)
        return [TensorType(np.int64, (rows,)), TensorType(FLOAT32, (rows, 2 if self.binary() else n))]


@register
class ZipMap(ViewOp):
    """Passes the (N, classes) float probabilities through unchanged.

    In ONNX, ZipMap's output is a sequence of maps {label: probability}; sofie-rdf has no sequences or
    maps, so the node is taken "as a plain output": the model's output is the N x classes tensor, in
    the order of ``classlabels_*``.  Converters' ``zipmap=False`` gives the same tensor without the node.
    """

    op_type = "ZipMap"
    domain = ML_DOMAIN

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.dtype != FLOAT32 or x.rank != 2:
            raise self.error(f"X must be a 2-D float tensor, got {x.dtype} of shape {x.shape}")
        labels = self.attrs.get("classlabels_int64s") or self.attrs.get("classlabels_strings") or []
        if isinstance(x.shape[1], int) and len(labels) != x.shape[1]:
            raise self.error(f"{len(labels)} class labels for {x.shape[1]} columns")
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        return [values[0]]
