"""Element types of tensors: numpy dtype <-> ONNX enum.

The IR stores numpy dtypes; the parsers need the ONNX enum.  How a target spells a type
(``float``, ``sofie_rdf::float16_t``) is the target's business (``targets/_cxx/cpp.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from ..errors import ModelFormatError


@dataclass(frozen=True)
class DType:
    """One element type and its spellings."""

    numpy: np.dtype
    onnx: int
    name: str


# ONNX TensorProto.DataType values (stable across onnx versions).
_TABLE = [
    DType(np.dtype(np.float32), 1, "float32"),
    DType(np.dtype(np.uint8), 2, "uint8"),
    DType(np.dtype(np.int8), 3, "int8"),
    DType(np.dtype(np.uint16), 4, "uint16"),
    DType(np.dtype(np.int16), 5, "int16"),
    DType(np.dtype(np.int32), 6, "int32"),
    DType(np.dtype(np.int64), 7, "int64"),
    DType(np.dtype(np.bool_), 9, "bool"),
    DType(np.dtype(np.float64), 11, "float64"),
    DType(np.dtype(np.uint32), 12, "uint32"),
    DType(np.dtype(np.uint64), 13, "uint64"),
    # 16-bit floats: stored as such, computed in float.
    DType(np.dtype(np.float16), 10, "float16"),
    DType(np.dtype(ml_dtypes.bfloat16), 16, "bfloat16"),
]
_BY_NUMPY = {d.numpy: d for d in _TABLE}
_BY_ONNX = {d.onnx: d for d in _TABLE}

HALF_TYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64)) + HALF_TYPES


def compute_dtype(dtype: np.dtype | type | str) -> np.dtype:
    """The type element-wise arithmetic on ``dtype`` runs in: float32 for the 16-bit floats, so that a
    result is rounded once, when stored (as onnxruntime computes most ops), else ``dtype`` itself."""
    dt = np.dtype(dtype)
    return np.dtype(np.float32) if dt in HALF_TYPES else dt


def kind(dtype: np.dtype | type | str) -> str:
    """numpy's kind letter, except "f" for bfloat16 too (numpy files ml_dtypes' floats under "V")."""
    dt = np.dtype(dtype)
    return "f" if dt in FLOAT_TYPES else dt.kind


def dtype_info(dtype: np.dtype | type | str) -> DType:
    """The :class:`DType` row of a numpy dtype; unsupported types raise."""
    dt = np.dtype(dtype)
    try:
        return _BY_NUMPY[dt]
    except KeyError:
        raise ModelFormatError(f"element type {dt} is not supported") from None


def from_onnx(elem_type: int) -> np.dtype:
    """Numpy dtype of an ONNX ``TensorProto.DataType`` value."""
    try:
        return _BY_ONNX[elem_type].numpy
    except KeyError:
        raise ModelFormatError(f"ONNX element type {elem_type} is not supported") from None

