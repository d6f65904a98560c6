"""Reductions: the ten Reduce* operators, ArgMax/ArgMin, CumSum and CumProd.

The Reduce* operators differ only in how they fold values, so each is the
same class with another :class:`Reduction` (a name and a numpy reference; the
CPU's folds are in ``targets/cpu/emitters/reduce.py``).  :func:`block_view`
tells when the reduced axes are adjacent (size-1 dims aside), so that the input
reads as one ``(outer, reduced, inner)`` block.  Sums and products accumulate
in double for every element type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import Dim, num_elements
from ..ir.dtypes import HALF_TYPES, kind
from .base import Op, normalize_axis, static_size
from .registry import register

NUMERIC = tuple(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64)) + HALF_TYPES
# Max, Min, ArgMax and ArgMin also take 8-bit integers (as onnxruntime does); ReduceMax/Min bool too (opset 20).
ORDERED = NUMERIC + (np.dtype(np.int8), np.dtype(np.uint8))
WITH_BOOL = ORDERED + (np.dtype(np.bool_),)


def _real(x: np.ndarray) -> np.ndarray:
    """Values as they accumulate: float64 (symbolic shape values kept as they are)."""
    return x if x.dtype == object else x.astype(np.float64)


def _narrow(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A reference result in the element type, saturating at its limits (as onnxruntime's)."""
    v = np.asarray(v)
    if v.dtype == object or kind(dtype) == "f" or v.dtype.kind != "f":
        return v if v.dtype == object else v.astype(dtype)
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        fits = (v >= info.min) & (v < float(info.max) + 1)
    whole = np.trunc(np.where(fits, v, 0)).astype(np.int64)
    return np.where(fits, whole, np.where(v > 0, info.max, info.min)).astype(dtype)


def _sum(x: np.ndarray, axes: tuple) -> np.ndarray:
    return _real(x).sum(axis=axes, keepdims=True)


def _mean(x: np.ndarray, axes: tuple) -> np.ndarray:
    n = num_elements([x.shape[a] for a in axes])
    return _sum(x, axes) / n if n else np.zeros_like(_sum(x, axes))


def _extreme(x: np.ndarray, axes: tuple, largest: bool) -> np.ndarray:
    """Max or min in the element type itself (exact for int64), the identity for empty sets."""
    fold = np.max if largest else np.min
    if x.dtype == object:
        return fold(x, axis=axes, keepdims=True)
    if x.dtype == np.bool_:
        identity = not largest
    elif kind(x.dtype) == "f":
        identity = -np.inf if largest else np.inf
    else:
        identity = np.iinfo(x.dtype).min if largest else np.iinfo(x.dtype).max
    return fold(x, axis=axes, keepdims=True, initial=identity)


def _log_sum_exp(x: np.ndarray, axes: tuple) -> np.ndarray:
    """The kernel's LogSumExp: exact terms for floats; for integers only the maxima count (see the kernel)."""
    top = _real(_extreme(x, axes, True))
    if kind(x.dtype) != "f":
        return top + np.log((_real(x) == top).sum(axis=axes, keepdims=True))
    shift = np.where(np.isfinite(top), top, 0.0)
    return shift + np.log(np.exp(_real(x) - shift).sum(axis=axes, keepdims=True))


@dataclass(frozen=True)
class Reduction:
    """How a Reduce* operator folds the values of one output: its name (the CPU emitter's key) and
    ``reference(input, axes)``, numpy with kept dims, before :func:`_narrow`.  Sums and products
    accumulate in double for every type (integer results then saturate as onnxruntime's do); an empty
    reduction gives the fold's identity, finished, as onnxruntime does."""

    name: str
    reference: Callable[[np.ndarray, tuple], np.ndarray]


SUM = Reduction("sum", _sum)
MEAN = Reduction("mean", _mean)
SUM_SQUARE = Reduction("sum_square", lambda x, ax: _sum(_real(x) ** 2, ax))
L1 = Reduction("l1", lambda x, ax: _sum(np.abs(_real(x)), ax))
L2 = Reduction("l2", lambda x, ax: np.sqrt(_sum(_real(x) ** 2, ax)))
LOG_SUM = Reduction("log_sum", lambda x, ax: np.log(_sum(x, ax)))
LOG_SUM_EXP = Reduction("log_sum_exp", _log_sum_exp)
PROD = Reduction("prod", lambda x, ax: _real(x).prod(axis=ax, keepdims=True))
MAX = Reduction("max", lambda x, ax: _extreme(x, ax, True))
MIN = Reduction("min", lambda x, ax: _extreme(x, ax, False))


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


def _empty_run_time_value(inputs: list[Optional[TensorType]], i: int) -> bool:
    """Input ``i`` is computed at run time but has no elements, so its value is known anyway."""
    t = inputs[i] if i < len(inputs) else None
    return t is not None and t.value is None and static_size(t.shape) == 0


def _check_dtype(op: Op, t: TensorType, allowed: tuple) -> None:
    if t.dtype not in allowed:
        raise op.error(f"input type {t.dtype} is not supported ({', '.join(d.name for d in allowed)} expected)")


class _Reduce(Op):
    """Reduce* with ``axes`` as an attribute (opsets before 13 for ReduceSum, 18 for the others)."""

    row_wise = True  # reducing the leading dim leaves it 1 or drops it, which the row-block check refuses
    reduction: ClassVar[Reduction]
    dtypes: ClassVar[tuple] = NUMERIC

    def axes_value(self, inputs: list[Optional[TensorType]]) -> Optional[np.ndarray]:
        """The axes input's value (only the forms that have one)."""
        return None

    def given_axes(self, axes_value: Optional[np.ndarray]) -> Optional[list[int]]:
        return self.attrs.get("axes")

    def reduced_axes(self, rank: int, axes_value: Optional[np.ndarray]) -> list[int]:
        """Sorted axes reduced: none given means all, or none with ``noop_with_empty_axes``; repeats count once."""
        axes = self.given_axes(axes_value)
        if not axes:
            return [] if self.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
        if rank == 0:
            raise self.error(f"axes {list(axes)} given for a scalar input")
        return sorted({normalize_axis(self, int(a), rank) for a in axes})

    def axes_at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the axes are a value the node's code reads while running (only the forms with an axes input)."""
        return False

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_dtype(self, x, self.dtypes)
        if self.axes_at_run_time(inputs):
            return [TensorType(x.dtype, self.runtime_shape(x, inputs[1]))]
        axes = self.reduced_axes(x.rank, self.axes_value(inputs))
        keep = self.attrs.get("keepdims", 1)
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
        return [TensorType(x.dtype, shape)]

    def runtime_shape(self, x: TensorType, axes: TensorType) -> tuple:
        """Output shape for axes known only at run time: a dim that may be reduced or not is a run-time dim.

        With keepdims every dim stays (1 or the input's: only a fixed 1 is known); without, the output rank
        is the input's less the number of axes, so that number must be known when the code is generated.
        """
        if axes.dtype != np.int64 or axes.rank != 1:
            raise self.error(f"axes must be a 1-D int64 tensor, got {axes.dtype} of shape {axes.shape}")
        if self.attrs.get("keepdims", 1):
            return tuple(d if isinstance(d, int) and d == 1 else self.runtime_dim(f"d{i}") for i, d in enumerate(x.shape))
        n = axes.shape[0]
        if not isinstance(n, int):
            raise self.error(f"with keepdims=0 the output rank depends on how many axes there are, so the length of"
                             f" axes (input 1) must be known when the code is generated; it is {n}")
        if n > x.rank:
            raise self.error(f"{n} axes given for an input of rank {x.rank}: an axis would be given twice")
        return tuple(self.runtime_dim(f"d{i}") for i in range(x.rank - n))

    def rows_independent(self, inputs: list[Optional[TensorType]]) -> bool:
        """Not when the axes come at run time: whether the leading dim is reduced is not known."""
        return self.row_wise and not self.axes_at_run_time(inputs)

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        axes = tuple(self.reduced_axes(x.ndim, values[1] if len(values) > 1 else None))
        with np.errstate(all="ignore"):
            y = np.asarray(self.reduction.reference(x, axes))
        if not self.attrs.get("keepdims", 1):
            y = y.reshape([d for i, d in enumerate(y.shape) if i not in axes])
        return [_narrow(y, x.dtype)]


class _ReduceAxesInput(_Reduce):
    """Reduce* with ``axes`` as optional input 1 (ReduceSum from opset 13, the others from 18)."""

    value_inputs = (1,)

    def axes_value(self, inputs: list[Optional[TensorType]]) -> Optional[np.ndarray]:
        """The value, also of an axes input whose fixed length is 0 (its value is known: none)."""
        if _empty_run_time_value(inputs, 1):
            return np.zeros(0, np.int64)
        return self.value_of(inputs, 1, "axes")

    def axes_at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        return len(inputs) > 1 and inputs[1] is not None and inputs[1].value is None \
            and not _empty_run_time_value(inputs, 1)

    def given_axes(self, axes_value: Optional[np.ndarray]) -> Optional[list[int]]:
        return None if axes_value is None else [int(a) for a in np.asarray(axes_value).reshape(-1)]


def _register_reduce(op_type: str, reduction: Reduction, axes_input_since: int, dtypes: tuple = NUMERIC) -> None:
    """Register both forms of one Reduce* operator (they differ only in where ``axes`` comes from)."""
    attrs = {"op_type": op_type, "reduction": reduction, "dtypes": dtypes, "__doc__": f"{op_type} (axes attribute)."}
    register(type(op_type, (_Reduce,), attrs))
    register(type(f"{op_type}_{axes_input_since}", (_ReduceAxesInput,),
                  {**attrs, "since_version": axes_input_since, "__doc__": f"{op_type} (axes input)."}))


# (op type, reduction, opset where axes became an input, element types)
_REDUCE_OPS = (
    ("ReduceSum", SUM, 13, NUMERIC),
    ("ReduceMean", MEAN, 18, NUMERIC),
    ("ReduceSumSquare", SUM_SQUARE, 18, NUMERIC),
    ("ReduceL1", L1, 18, NUMERIC),
    ("ReduceL2", L2, 18, NUMERIC),
    ("ReduceLogSum", LOG_SUM, 18, NUMERIC),
    ("ReduceLogSumExp", LOG_SUM_EXP, 18, NUMERIC),
    ("ReduceProd", PROD, 18, NUMERIC),
    ("ReduceMax", MAX, 18, WITH_BOOL),
    ("ReduceMin", MIN, 18, WITH_BOOL),
)
for _spec in _REDUCE_OPS:
    _register_reduce(*_spec)


class _ArgReduce(Op):
    """Index (int64) of the largest / smallest value along ``axis``; ties to the first, or the last with select_last_index."""

    row_wise = True  # as _Reduce's
    maximum: ClassVar[bool]

    def axis(self, shape: tuple) -> int:
        if not shape:
            raise self.error("input must have rank >= 1")
        axis = normalize_axis(self, self.attrs["axis"], len(shape))
        if isinstance(shape[axis], int) and shape[axis] == 0:
            raise self.error(f"axis {axis} is empty: there is no index to return")
        return axis

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_dtype(self, x, ORDERED)
        axis = self.axis(x.shape)
        keep = self.attrs.get("keepdims", 1)
        shape = x.shape[:axis] + ((1,) if keep else ()) + x.shape[axis + 1:]
        return [TensorType(np.dtype(np.int64), shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        axis = self.axis(x.shape)
        pick = np.argmax if self.maximum else np.argmin
        if self.attrs.get("select_last_index", 0):
            y = x.shape[axis] - 1 - pick(np.flip(x, axis), axis=axis, keepdims=True)
        else:
            y = pick(x, axis=axis, keepdims=True)
        if not self.attrs.get("keepdims", 1):
            y = np.squeeze(y, axis=axis)
        return [y.astype(np.int64)]


@register
class ArgMax(_ArgReduce):
    op_type = "ArgMax"
    maximum = True


@register
class ArgMin(_ArgReduce):
    op_type = "ArgMin"
    maximum = False


# CumSum and CumProd also take unsigned 32/64-bit integers.
CUMULATIVE = NUMERIC + (np.dtype(np.uint32), np.dtype(np.uint64))


class _Cumulative(Op):
    """Running fold along the axis given as input 1 (one value, read at run time when not known); exclusive, reverse.

    Unlike the reductions, onnxruntime's integer CumSum wraps in the element type; the kernel accumulates
    integers in uint64_t, whose modular arithmetic (sums and products alike) narrows back to exactly that.
    """

    value_inputs = (1,)
    identity: ClassVar[int]
    combine: ClassVar[str]  # C++ in accumulators a and b
    running: ClassVar[Callable[..., np.ndarray]]  # numpy's cumulative fold, e.g. np.cumsum

    def axis(self, rank: int, value: Optional[np.ndarray]) -> int:
        if value is None or np.asarray(value).size != 1 or np.asarray(value).dtype.kind not in "iu":
            raise self.error("axis must be one int32 or int64 value")
        if rank == 0:
            raise self.error("input must have rank >= 1")
        return normalize_axis(self, int(np.asarray(value).reshape(-1)[0]), rank)

    def axis_at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the node's code reads the axis while running (it is computed from the graph's inputs)."""
        return inputs[1].value is None

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        _check_dtype(self, x, CUMULATIVE)
        if not self.axis_at_run_time(inputs):
            self.axis(x.rank, self.value_of(inputs, 1, "axis"))
        elif static_size(inputs[1].shape) != 1 or inputs[1].dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
            raise self.error(f"axis must be one int32 or int64 value, got {inputs[1].dtype} of shape {inputs[1].shape}")
        elif x.rank == 0:
            raise self.error("input must have rank >= 1")
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        axis = self.axis(x.ndim, values[1])
        if x.dtype != object:  # int64 wraps as the kernel does
            x = x.astype(np.float64 if kind(x.dtype) == "f" else np.int64)
        w = np.moveaxis(x, axis, 0)
        if self.attrs["reverse"]:
            w = w[::-1]
        y = self.running(w, axis=0)
        if self.attrs["exclusive"]:
            y = np.concatenate([np.full_like(y[:1], self.identity), y[:-1]])
        if self.attrs["reverse"]:
            y = y[::-1]
        return [np.moveaxis(y, 0, axis).astype(values[0].dtype)]


@register
class CumSum(_Cumulative):
    op_type = "CumSum"
    since_version = 11
    identity = 0
    combine = "a + b"
    running = staticmethod(np.cumsum)


@register
class CumProd(_Cumulative):
    op_type = "CumProd"
    since_version = 26
    identity = 1
    combine = "a * b"
    running = staticmethod(np.cumprod)
