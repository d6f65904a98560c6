"""Reductions: the ten Reduce* operators, ArgMax/ArgMin and CumSum.

The Reduce* operators differ only in how they fold values, so each is the
same class with another :class:`Reduction` (C++ initial value, combine and
finish expressions and a numpy reference); the kernels in
``kernels/reduce.hxx`` take those as lambdas.  The input is read as one
``(outer, reduced, inner)`` block when the reduced axes are adjacent (size-1
dims aside), else with stride arrays over the kept and the reduced dims.
Float inputs accumulate in double, integers in wrapping integer arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import Dim, num_elements
from .base import EmitContext, Op, coalesce, contiguous_strides, normalize_axis
from .registry import register

NUMERIC = tuple(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64))
# Max, Min, ArgMax and ArgMin also take 8-bit integers (as onnxruntime does).
ORDERED = NUMERIC + (np.dtype(np.int8), np.dtype(np.uint8))


def _wide(x: np.ndarray) -> np.ndarray:
    """The numpy reference's accumulation type: float64 for floats, int64 for integers (symbolic values kept)."""
    if x.dtype == object:
        return x
    return x.astype(np.float64 if x.dtype.kind == "f" else np.int64)


def _narrow(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A reference result in the element type, converted as the kernels' ``from_real`` does."""
    v = np.asarray(v)
    if v.dtype == object or dtype.kind == "f" or v.dtype.kind != "f":
        return v if v.dtype == object else v.astype(dtype)
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        fits = (v >= info.min) & (v < float(info.max) + 1)
    whole = np.trunc(np.where(fits, v, 0)).astype(np.int64)
    return np.where(fits, whole, np.where(v > 0, info.max, info.min)).astype(dtype)


def _mean(w: np.ndarray, axes: tuple) -> np.ndarray:
    n = num_elements([w.shape[a] for a in axes])
    total = w.sum(axis=axes, keepdims=True)
    if n == 0:
        return np.zeros_like(total)
    if w.dtype.kind == "i":
        return np.sign(total) * (np.abs(total) // n)
    return total / n


def _log_sum_exp(w: np.ndarray, axes: tuple) -> np.ndarray:
    w = w.astype(np.float64)
    top = w.max(axis=axes, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return shift + np.log(np.exp(w - shift).sum(axis=axes, keepdims=True))


@dataclass(frozen=True)
class Reduction:
    """How a Reduce* operator folds the values of one output.

    The strings are C++ with ``{T}`` the element type and ``{A}`` the
    accumulator type (``acc``; "wide" is double for floats and uint64_t for
    integers, whose modular arithmetic narrows back to the element type's own
    wrapping results).  ``combine`` is in ``a`` (accumulator) and ``x``
    (element), ``finish`` in ``a`` and ``n`` (count reduced).  ``init`` is the
    identity, so an empty reduction outputs ``finish(init, 0)`` as
    onnxruntime does.  ``reference(wide_input, axes)`` is numpy with kept dims.
    """

    combine: str
    reference: Callable[[np.ndarray, tuple], np.ndarray]
    init: str = "{A}(0)"
    finish: str = "static_cast<{T}>(a)"
    acc: str = "wide"

    def acc_type(self, ctx: EmitContext, dtype: np.dtype) -> str:
        if self.acc == "wide":
            return "double" if dtype.kind == "f" else "uint64_t"
        return self.acc.format(T=ctx.ctype(dtype))

    def lambdas(self, ctx: EmitContext, dtype: np.dtype) -> str:
        """The kernel's ``init, combine, finish`` arguments."""
        t = ctx.ctype(dtype)
        a = self.acc_type(ctx, dtype)
        init, combine, finish = (s.format(T=t, A=a) for s in (self.init, self.combine, self.finish))
        count = "size_t n" if re.search(r"\bn\b", finish) else "size_t"
        return (f"{init}, [](const {a} a, const {t} x) -> {a} {{ return {combine}; }}, "
                f"[](const {a} a, {count}) -> {t} {{ return {finish}; }}")


_SUM = "a + static_cast<{A}>(x)"
_SQUARES = "a + static_cast<{A}>(x) * static_cast<{A}>(x)"
_AS_REAL = "kernels::real<{T}>(a)"

SUM = Reduction(_SUM, lambda w, ax: w.sum(axis=ax, keepdims=True))
MEAN = Reduction(_SUM, _mean, finish="kernels::mean<{T}>(a, n)")
SUM_SQUARE = Reduction(_SQUARES, lambda w, ax: (w * w).sum(axis=ax, keepdims=True))
L1 = Reduction("a + kernels::magnitude<{A}>(x)", lambda w, ax: np.abs(w).sum(axis=ax, keepdims=True))
L2 = Reduction(_SQUARES, lambda w, ax: np.sqrt((w * w).sum(axis=ax, keepdims=True)),
               finish=f"kernels::from_real<{{T}}>(std::sqrt({_AS_REAL}))")
LOG_SUM = Reduction(_SUM, lambda w, ax: np.log(w.sum(axis=ax, keepdims=True).astype(np.float64)),
                    finish=f"kernels::from_real<{{T}}>(std::log({_AS_REAL}))")
LOG_SUM_EXP = Reduction("a.add(static_cast<double>(x))", _log_sum_exp, init="{A}()",
                        finish="kernels::from_real<{T}>(a.result())", acc="kernels::LogSumExp")
PROD = Reduction("a * static_cast<{A}>(x)", lambda w, ax: w.prod(axis=ax, keepdims=True), init="{A}(1)")
MAX = Reduction("kernels::max_of(a, x)", lambda w, ax: w.max(axis=ax, keepdims=True, initial=-np.inf),
                init="kernels::lowest<{T}>()", finish="a", acc="{T}")
MIN = Reduction("kernels::min_of(a, x)", lambda w, ax: w.min(axis=ax, keepdims=True, initial=np.inf),
                init="kernels::highest<{T}>()", finish="a", acc="{T}")


def block_view(shape: tuple, axes: list[int]) -> Optional[tuple[Dim, Dim, Dim]]:
    """(outer, reduced, inner) sizes when the reduced axes are adjacent once size-1 dims are left out, else None."""
    live = [i for i, d in enumerate(shape) if not (isinstance(d, int) and d == 1)]
    reduced = [i for i in live if i in axes]
    if not reduced:
        return num_elements(shape), 1, 1
    if live.index(reduced[-1]) - live.index(reduced[0]) + 1 != len(reduced):
        return None
    first, last = reduced[0], reduced[-1]
    return num_elements(shape[:first]), num_elements(shape[first:last + 1]), num_elements(shape[last + 1:])


def _axis_view(shape: tuple, axis: int) -> tuple[Dim, Dim, Dim]:
    """(outer, n, inner) sizes around one axis."""
    return num_elements(shape[:axis]), shape[axis], num_elements(shape[axis + 1:])


def _check_dtype(op: Op, t: TensorType, allowed: tuple) -> None:
    if t.dtype not in allowed:
        raise op.error(f"input type {t.dtype} is not supported ({', '.join(d.name for d in allowed)} expected)")


class _Reduce(Op):
    """Reduce* with ``axes`` as an attribute (opsets before 13 for ReduceSum, 18 for the others)."""

    kernels = ("reduce",)
    reduction: ClassVar[Reduction]
    dtypes: ClassVar[tuple] = NUMERIC

    def given_axes(self, inputs: list[Optional[TensorType]]) -> Optional[list[int]]:
        return self.attrs.get("axes")

    def reduced_axes(self, inputs: list[Optional[TensorType]]) -> list[int]:
        """Sorted axes reduced: none given means all, or none with ``noop_with_empty_axes``; repeats count once."""
        rank = inputs[0].rank
        axes = self.given_axes(inputs)
        if not axes:
            return [] if self.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
        if rank == 0:
            raise self.error(f"axes {list(axes)} given for a scalar input")
        return sorted({normalize_axis(self, int(a), rank) for a in axes})

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_dtype(self, x, self.dtypes)
        axes = self.reduced_axes(inputs)
        keep = self.attrs.get("keepdims", 1)
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
        return [TensorType(x.dtype, shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        inputs = [TensorType(x.dtype if x.dtype != object else np.int64, x.shape)] + [
            None if v is None else TensorType(v.dtype, v.shape, v) for v in values[1:]]
        axes = tuple(self.reduced_axes(inputs))
        with np.errstate(all="ignore"):
            y = np.asarray(self.reduction.reference(_wide(x), axes))
        if not self.attrs.get("keepdims", 1):
            y = y.reshape([d for i, d in enumerate(y.shape) if i not in axes])
        return [_narrow(y, x.dtype)]

    def emit(self, ctx: EmitContext) -> str:
        x = ctx.inputs[0]
        axes = self.reduced_axes(ctx.inputs)
        fold = self.reduction.lambdas(ctx, x.dtype)
        view = block_view(x.shape, axes)
        if view is not None:
            sizes = ", ".join(ctx.dim(d) for d in view)
            return f"kernels::reduce({ctx.x(0)}, {ctx.y(0)}, {sizes}, {fold});"
        strides = contiguous_strides(x.shape)
        args = []
        for label, part in (("kept", [i for i in range(x.rank) if i not in axes]), ("reduced", axes)):
            shape, (st,) = coalesce([x.shape[i] for i in part], [strides[i] for i in part])
            args += [ctx.array(f"{label}_shape", shape), ctx.array(f"{label}_strides", st, "std::ptrdiff_t"), str(len(shape))]
        return f"kernels::reduce_strided({ctx.x(0)}, {ctx.y(0)}, {', '.join(args)}, {fold});"


class _ReduceAxesInput(_Reduce):
    """Reduce* with ``axes`` as optional input 1 (ReduceSum from opset 13, the others from 18)."""

    value_inputs = (1,)

    def given_axes(self, inputs: list[Optional[TensorType]]) -> Optional[list[int]]:
        axes = self.value_of(inputs, 1, "axes")
        return None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]


def _register_reduce(op_type: str, reduction: Reduction, axes_input_since: int, dtypes: tuple = NUMERIC) -> None:
    """Register both forms of one Reduce* operator (they differ only in where ``axes`` comes from)."""
    attrs = {"op_type": op_type, "reduction": reduction, "dtypes": dtypes, "__doc__": f"{op_type} (axes attribute)."}
    register(type(op_type, (_Reduce,), attrs))
    register(type(f"{op_type}_{axes_input_since}", (_ReduceAxesInput,),
                  {**attrs, "since_version": axes_input_since, "__doc__": f"{op_type} (axes input)."}))


for _op_type, _reduction, _since, _dtypes in (
    ("ReduceSum", SUM, 13, NUMERIC),
    ("ReduceMean", MEAN, 18, NUMERIC),
    ("ReduceSumSquare", SUM_SQUARE, 18, NUMERIC),
    ("ReduceL1", L1, 18, NUMERIC),
    ("ReduceL2", L2, 18, NUMERIC),
    ("ReduceLogSum", LOG_SUM, 18, NUMERIC),
    ("ReduceLogSumExp", LOG_SUM_EXP, 18, NUMERIC),
    ("ReduceProd", PROD, 18, NUMERIC),
    ("ReduceMax", MAX, 18, ORDERED),
    ("ReduceMin", MIN, 18, ORDERED),
):
    _register_reduce(_op_type, _reduction, _since, _dtypes)


class _ArgReduce(Op):
    """Index (int64) of the largest / smallest value along ``axis``; ties to the first, or the last with select_last_index."""

    kernels = ("reduce",)
    maximum: ClassVar[bool]

    def axis(self, x: TensorType) -> int:
        if x.rank == 0:
            raise self.error("input must have rank >= 1")
        axis = normalize_axis(self, self.attrs["axis"], x.rank)
        if isinstance(x.shape[axis], int) and x.shape[axis] == 0:
            raise self.error(f"axis {axis} is empty: there is no index to return")
        return axis

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_dtype(self, x, ORDERED)
        axis = self.axis(x)
        keep = self.attrs.get("keepdims", 1)
        shape = x.shape[:axis] + ((1,) if keep else ()) + x.shape[axis + 1:]
        return [TensorType(np.dtype(np.int64), shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        axis = self.axis(TensorType(x.dtype, x.shape))
        pick = np.argmax if self.maximum else np.argmin
        if self.attrs.get("select_last_index", 0):
            y = x.shape[axis] - 1 - pick(np.flip(x, axis), axis=axis, keepdims=True)
        else:
            y = pick(x, axis=axis, keepdims=True)
        if not self.attrs.get("keepdims", 1):
            y = np.squeeze(y, axis=axis)
        return [y.astype(np.int64)]

    def emit(self, ctx: EmitContext) -> str:
        x = ctx.inputs[0]
        sizes = ", ".join(ctx.dim(d) for d in _axis_view(x.shape, self.axis(x)))
        maximum = "true" if self.maximum else "false"
        last = "true" if self.attrs.get("select_last_index", 0) else "false"
        return f"kernels::arg_reduce({ctx.x(0)}, {ctx.y(0)}, {sizes}, {maximum}, {last});"


@register
class ArgMax(_ArgReduce):
    op_type = "ArgMax"
    maximum = True


@register
class ArgMin(_ArgReduce):
    op_type = "ArgMin"
    maximum = False


@register
class CumSum(Op):
    """Running sum along the axis given as input 1 (a scalar known at generation time); exclusive, reverse."""

    op_type = "CumSum"
    since_version = 11
    kernels = ("reduce",)
    value_inputs = (1,)

    def axis(self, inputs: list[Optional[TensorType]]) -> int:
        x = inputs[0]
        value = self.value_of(inputs, 1, "axis")
        if value is None or np.asarray(value).size != 1 or np.asarray(value).dtype.kind not in "iu":
            raise self.error("axis must be one int32 or int64 value")
        if x.rank == 0:
            raise self.error("input must have rank >= 1")
        return normalize_axis(self, int(np.asarray(value).reshape(-1)[0]), x.rank)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_dtype(self, x, NUMERIC)
        self.axis(inputs)
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        axis = self.axis([TensorType(x.dtype, x.shape), TensorType(values[1].dtype, values[1].shape, values[1])])
        w = np.moveaxis(_wide(x), axis, 0)
        if self.attrs["reverse"]:
            w = w[::-1]
        y = np.cumsum(w, axis=0)
        if self.attrs["exclusive"]:
            y = np.concatenate([np.zeros_like(y[:1]), y[:-1]])
        if self.attrs["reverse"]:
            y = y[::-1]
        return [np.moveaxis(y, 0, axis).astype(x.dtype)]

    def emit(self, ctx: EmitContext) -> str:
        x = ctx.inputs[0]
        sizes = ", ".join(ctx.dim(d) for d in _axis_view(x.shape, self.axis(ctx.inputs)))
        acc = "double" if x.dtype.kind == "f" else "uint64_t"
        flags = ", ".join("true" if self.attrs[k] else "false" for k in ("exclusive", "reverse"))
        return f"kernels::cumsum<{acc}>({ctx.x(0)}, {ctx.y(0)}, {sizes}, {flags});"
