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
    # Quantized storage: one element per byte, as ml_dtypes stores them; quantizing operators compute on them.
    DType(np.dtype(ml_dtypes.float8_e4m3fn), 17, "float8_e4m3fn"),
    DType(np.dtype(ml_dtypes.float8_e4m3fnuz), 18, "float8_e4m3fnuz"),
    DType(np.dtype(ml_dtypes.float8_e5m2), 19, "float8_e5m2"),
    DType(np.dtype(ml_dtypes.float8_e5m2fnuz), 20, "float8_e5m2fnuz"),
    DType(np.dtype(ml_dtypes.uint4), 21, "uint4"),
    DType(np.dtype(ml_dtypes.int4), 22, "int4"),
    DType(np.dtype(ml_dtypes.float4_e2m1fn), 23, "float4_e2m1fn"),
    DType(np.dtype(ml_dtypes.uint2), 25, "uint2"),
    DType(np.dtype(ml_dtypes.int2), 26, "int2"),
]
_BY_NUMPY = {d.numpy: d for d in _TABLE}
_BY_ONNX = {d.onnx: d for d in _TABLE}

HALF_TYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64)) + HALF_TYPES
# Integers narrower than a byte (their range: NARROW_INT_RANGES) and floats of 8 and 4 bits: the element types
# of quantized tensors that C++ has no type for (the generated code's are in kernels/narrow.hxx).
NARROW_INT_RANGES = {np.dtype(ml_dtypes.int4): (-8, 7), np.dtype(ml_dtypes.uint4): (0, 15),
                     np.dtype(ml_dtypes.int2): (-2, 1), np.dtype(ml_dtypes.uint2): (0, 3)}
MINIFLOAT_TYPES = tuple(np.dtype(getattr(ml_dtypes, n)) for n in (
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float4_e2m1fn"))
NARROW_TYPES = tuple(NARROW_INT_RANGES) + MINIFLOAT_TYPES
# Types whose C++ spelling is a class of the generated code (sofie_rdf::float16_t, sofie_rdf::int4_t, ...).
STORAGE_TYPES = HALF_TYPES + NARROW_TYPES


def compute_dtype(dtype: np.dtype | type | str) -> np.dtype:
    """The type element-wise arithmetic on ``dtype`` runs in: float32 for the 16-bit floats, so that a
    result is rounded once, when stored (as onnxruntime computes most ops), else ``dtype`` itself."""
    dt = np.dtype(dtype)
    return np.dtype(np.float32) if dt in HALF_TYPES else dt


def kind(dtype: np.dtype | type | str) -> str:
    """numpy's kind letter, except "f" for bfloat16 too (numpy files ml_dtypes' floats under "V") and "q" for
    the narrow types, which only quantizing operators and data movement take: no arithmetic kernel is written
    for them."""
    dt = np.dtype(dtype)
    if dt in FLOAT_TYPES:
        return "f"
    return "q" if dt in NARROW_TYPES else dt.kind


def integer_range(dtype: np.dtype | type | str) -> tuple[int, int]:
    """(lowest, highest) value of an integer type, narrow ones included."""
    dt = np.dtype(dtype)
    if dt in NARROW_INT_RANGES:
        return NARROW_INT_RANGES[dt]
    info = np.iinfo(dt)
    return int(info.min), int(info.max)


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

