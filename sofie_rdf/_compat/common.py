"""SOFIE's enumerations and type helpers (``SOFIEcommon.hxx``, ``RModel_Base.hxx``), as its Python users call them.

``Options`` are bit flags combined with ``|`` as in C++ (``Options.kNoSession | Options.kNoWeightFile``);
``ETensorType`` has SOFIE's numbering, so a value printed by a SOFIE script reads the same here.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Iterable, Union

import ml_dtypes
import numpy as np

from ..errors import SofieError


class SofieCompatError(SofieError, NotImplementedError):
    """A SOFIE call that has no counterpart in sofie-rdf; the message names the call and what to do instead."""


class Options(enum.IntFlag):
    """``TMVA::Experimental::SOFIE::Options``: what ``RModel.Generate`` writes.

    ``kNoWeightFile`` embeds the weights in the header, ``kRootBinaryWeightFile`` writes them to a ``.root``
    file (one directory per model, so several models share one file), the default writes SOFIE's text
    ``.dat``.  ``kNoSession`` (with ``kNoWeightFile``, as in SOFIE) adds SOFIE's free function ``infer`` next to
    the Session.  ``kProfile`` times every node (the Session's ``profile_ns()``).  ``kGNN`` and
    ``kGNNComponent`` are the flags ROOT's ``RModel_GNN`` sets on its own update functions and are refused.
    """

    kDefault = 0x0
    kNoSession = 0x1
    kNoWeightFile = 0x2
    kRootBinaryWeightFile = 0x4
    kGNN = 0x8
    kGNNComponent = 0x10
    kProfile = 0x20


class ETensorType(enum.IntEnum):
    """``TMVA::Experimental::SOFIE::ETensorType``, numbered as in SOFIE (and ONNX's TensorProto)."""

    UNDEFINED = 0
    FLOAT = 1
    UINT8 = 2
    INT8 = 3
    UINT16 = 4
    INT16 = 5
    INT32 = 6
    INT64 = 7
    STRING = 8
    BOOL = 9
    FLOAT16 = 10
    DOUBLE = 11
    UINT32 = 12
    UINT64 = 13
    BFLOAT16 = 16


# numpy dtype <-> SOFIE type, and the C++ spelling SOFIE prints (ConvertTypeToString).
_BY_DTYPE = {
    np.dtype(np.float32): ETensorType.FLOAT,
    np.dtype(np.uint8): ETensorType.UINT8,
    np.dtype(np.int8): ETensorType.INT8,
    np.dtype(np.uint16): ETensorType.UINT16,
    np.dtype(np.int16): ETensorType.INT16,
    np.dtype(np.int32): ETensorType.INT32,
    np.dtype(np.int64): ETensorType.INT64,
    np.dtype(np.bool_): ETensorType.BOOL,
    np.dtype(np.float16): ETensorType.FLOAT16,
    np.dtype(np.float64): ETensorType.DOUBLE,
    np.dtype(np.uint32): ETensorType.UINT32,
    np.dtype(np.uint64): ETensorType.UINT64,
    np.dtype(ml_dtypes.bfloat16): ETensorType.BFLOAT16,
}
_DTYPE = {t: d for d, t in _BY_DTYPE.items()}
_NAMES = {
    ETensorType.FLOAT: "float",
    ETensorType.UINT8: "uint8_t",
    ETensorType.INT8: "int8_t",
    ETensorType.UINT16: "uint16_t",
    ETensorType.INT16: "int16_t",
    ETensorType.INT32: "int32_t",
    ETensorType.INT64: "int64_t",
    ETensorType.BOOL: "bool",
    ETensorType.FLOAT16: "float16",
    ETensorType.DOUBLE: "double",
    ETensorType.UINT32: "uint32_t",
    ETensorType.UINT64: "uint64_t",
    ETensorType.BFLOAT16: "bfloat16",
}
# Spellings ConvertStringToType and GetTensorData['...'] accept: SOFIE's, numpy's and the C++ aliases cppyy knows.
_ALIASES = {
    **{name: t for t, name in _NAMES.items()},
    "Float": ETensorType.FLOAT,
    "float32": ETensorType.FLOAT,
    "Double": ETensorType.DOUBLE,
    "float64": ETensorType.DOUBLE,
    "int": ETensorType.INT32,
    "int32": ETensorType.INT32,
    "int64": ETensorType.INT64,
    "long": ETensorType.INT64,
    "Long64_t": ETensorType.INT64,
    "int8": ETensorType.INT8,
    "uint8": ETensorType.UINT8,
    "unsigned char": ETensorType.UINT8,
    "char": ETensorType.INT8,
    "short": ETensorType.INT16,
    "int16": ETensorType.INT16,
    "uint16": ETensorType.UINT16,
    "uint32": ETensorType.UINT32,
    "uint64": ETensorType.UINT64,
    "unsigned int": ETensorType.UINT32,
}


def tensor_type_of(dtype: Any) -> ETensorType:
    """The SOFIE type of a numpy dtype (``UNDEFINED`` for one SOFIE has no name for)."""
    return _BY_DTYPE.get(np.dtype(dtype), ETensorType.UNDEFINED)


def dtype_of(type_: Union[ETensorType, int, str, type, np.dtype]) -> np.dtype:
    """The numpy dtype of a SOFIE type given as ``ETensorType``, a type name (``"float"``, ``"int64_t"``) or
    a Python or numpy type; ``ValueError`` naming it for any other."""
    if isinstance(type_, str):
        if type_ not in _ALIASES:
            raise ValueError(f"{type_!r} is no tensor type SOFIE knows (float, double, int64_t, int32_t, bool, ...)")
        return _DTYPE[_ALIASES[type_]]
    if isinstance(type_, (int, np.integer)) and not isinstance(type_, bool):
        if int(type_) not in _DTYPE:
            raise ValueError(f"ETensorType {int(type_)} has no numpy type in sofie-rdf")
        return _DTYPE[ETensorType(int(type_))]
    return np.dtype(type_)


def ConvertTypeToString(type_: Union[ETensorType, int]) -> str:
    """SOFIE's spelling of a tensor type (``"float"``, ``"int64_t"``, ...)."""
    t = ETensorType(int(type_))
    return _NAMES.get(t, f"other_{int(t)}")


def ConvertStringToType(name: str) -> ETensorType:
    """The ``ETensorType`` of a type name (``"float"``, ``"int64_t"``, ``"double"``...); ``UNDEFINED`` for others."""
    return _ALIASES.get(str(name), ETensorType.UNDEFINED)


def ConvertShapeToLength(shape: Iterable[Any]) -> int:
    """The number of elements of a shape (SOFIE's ``ConvertShapeToLength``)."""
    return math.prod(int(d) for d in shape)


def ConvertShapeToString(shape: Iterable[Any]) -> str:
    """A shape as SOFIE prints it: ``{ 2 , 32 }``."""
    return "{ " + " , ".join(str(d) for d in shape) + " }"
