"""C++ spelling of the IR: element types and dim expressions, for every target that generates C++ (CPU, CUDA)."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import sympy

from ...errors import ModelFormatError, ShapeError
from ...ir.dims import Dim
from .names import string_literal

# 16-bit floats are the storage types of kernels/half.hxx, computed in float; the narrow types those of narrow.hxx.
_CPP_TYPES = {
    np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.bool_): "bool",
    np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
    np.dtype(np.int64): "int64_t", np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t",
    np.dtype(np.uint32): "uint32_t", np.dtype(np.uint64): "uint64_t",
    np.dtype(np.float16): "sofie_rdf::float16_t", np.dtype(ml_dtypes.bfloat16): "sofie_rdf::bfloat16_t",
    # quantized storage types of kernels/narrow.hxx, one element per byte
    np.dtype(ml_dtypes.int4): "sofie_rdf::int4_t", np.dtype(ml_dtypes.uint4): "sofie_rdf::uint4_t",
    np.dtype(ml_dtypes.int2): "sofie_rdf::int2_t", np.dtype(ml_dtypes.uint2): "sofie_rdf::uint2_t",
    np.dtype(ml_dtypes.float8_e4m3fn): "sofie_rdf::float8_e4m3fn_t",
    np.dtype(ml_dtypes.float8_e4m3fnuz): "sofie_rdf::float8_e4m3fnuz_t",
    np.dtype(ml_dtypes.float8_e5m2): "sofie_rdf::float8_e5m2_t",
    np.dtype(ml_dtypes.float8_e5m2fnuz): "sofie_rdf::float8_e5m2fnuz_t",
    np.dtype(ml_dtypes.float4_e2m1fn): "sofie_rdf::float4_e2m1_t",
}


def cpp_type(dtype: np.dtype) -> str:
    """C++ type name of a numpy dtype (``float``, ``int64_t``, ...)."""
    try:
        return _CPP_TYPES[np.dtype(dtype)]
    except KeyError:
        raise ModelFormatError(f"element type {np.dtype(dtype)} is not supported") from None


def to_cpp(expr: Dim, names: dict[str, str]) -> str:
    """C++ ``size_t`` expression of a dim; ``names`` maps symbol name -> identifier."""
    if isinstance(expr, int):
        return str(expr)
    return _CppDimPrinter(names).emit(sympy.expand(expr))


class _CppDimPrinter:
    """Prints the small subset of sympy that dimension arithmetic produces."""

    def __init__(self, names: dict[str, str]):
        self.names = names

    def emit(self, e: sympy.Expr) -> str:
        if e.is_Integer:
            return str(int(e))
        if e.is_Symbol:
            return self.names[e.name]
        if e.is_Add:
            return self._add(e)
        if e.is_Mul:
            return self._mul(e)
        if e.is_Pow and e.exp.is_Integer and int(e.exp) > 0:
            return "(" + " * ".join([self.emit(e.base)] * int(e.exp)) + ")"
        if isinstance(e, sympy.Max) and len(e.args) == 2 and sympy.S.Zero in e.args:
            return self._positive_part(e.args[1] if e.args[0] == 0 else e.args[0])
        if isinstance(e, (sympy.Max, sympy.Min)):
            fn = "std::max" if isinstance(e, sympy.Max) else "std::min"
            out = self.emit(e.args[0])
            for a in e.args[1:]:
                out = f"{fn}<size_t>({out}, {self.emit(a)})"
            return out
        if isinstance(e, sympy.floor):
            num, den = sympy.fraction(sympy.together(e.args[0]))
            return f"(({self.emit(num)}) / ({self.emit(den)}))"
        if isinstance(e, sympy.ceiling):
            num, den = sympy.fraction(sympy.together(e.args[0]))
            return f"(({self.emit(num)} + {self.emit(den)} - 1) / ({self.emit(den)}))"
        if isinstance(e, sympy.Mod):
            return f"(({self.emit(e.args[0])}) % ({self.emit(e.args[1])}))"
        raise ShapeError(f"dimension expression {e} cannot be expressed in C++")

    def _positive_part(self, e: sympy.Expr) -> str:
        """max(0, e) for an e with negative terms, compared before subtracting: size_t would wrap below 0."""
        terms = sympy.Add.make_args(sympy.expand(e))
        neg = [-a for a in terms if a.could_extract_minus_sign()]
        if not neg:
            return self.emit(e)
        pos, sub = self.emit(sympy.Add(*[a for a in terms if not a.could_extract_minus_sign()])), self.emit(sympy.Add(*neg))
        return f"({pos} > {sub} ? {pos} - {sub} : size_t(0))"

    def _add(self, e: sympy.Expr) -> str:
        pos = [a for a in e.args if not a.could_extract_minus_sign()]
        neg = [-a for a in e.args if a.could_extract_minus_sign()]
        out = " + ".join(self.emit(a) for a in pos) or "0"
        for a in neg:
            out += f" - {self.emit(a)}"
        return f"({out})"

    def _mul(self, e: sympy.Expr) -> str:
        coeff, rest = e.as_coeff_Mul()
        if not coeff.is_Integer:
            raise ShapeError(f"dimension expression {e} is not an integer")
        factors = [self.emit(a) for a in sympy.Mul.make_args(rest)]
        if coeff != 1:
            factors.insert(0, str(int(coeff)))
        return "(" + " * ".join(factors) + ")"


def _unsigned_sides(lhs: sympy.Expr, rhs: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """``lhs - rhs`` split into terms added on each side, so ``size_t`` arithmetic cannot wrap."""
    terms = sympy.Add.make_args(sympy.expand(lhs - rhs))
    plus = sympy.Add(*[t for t in terms if not t.could_extract_minus_sign()])
    minus = sympy.Add(*[-t for t in terms if t.could_extract_minus_sign()])
    return plus, minus


def constraint_check(constraint: Any, names: dict[str, str], model: str) -> tuple[str, str]:
    """(C++ condition, C++ string literal of the message) of a condition on dims (``ops.base.Constraint``),
    its dims spelled as ``names`` says."""
    lhs, rhs = (to_cpp(side, names) for side in _unsigned_sides(*constraint.condition.args))
    op = "==" if isinstance(constraint.condition, sympy.Eq) else ">="
    return f"{lhs} {op} {rhs}", string_literal(f"sofie-rdf: model {model}: {constraint.message}")
