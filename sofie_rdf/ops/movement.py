"""Data-movement operators: Transpose, Slice, Concat, Split, Expand and Tile.

Transpose, Slice, Split, Expand and Tile are strided copies: each Split output is a Slice of its input, Expand reads
broadcast dims with stride 0, Tile reads each dim as (repeats, size) with strides
(0, stride).  Concat copies each input's blocks into place.  Slice's, Split's, Expand's and Tile's parameters
are used when the code is generated where known, else read by the node's code, which sizes the outputs
(run-time dims) and runs the same strided copy.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, dims_equal, simplify
from .base import (
    Op,
    broadcast_shapes,
    normalize_axis,
    shape_from_value,
)
from .registry import register

# Slice ends at or beyond this mean "to the end" (exporters write INT64_MAX or INT32_MAX).
_TO_END = 2**31 - 1


@register
class Transpose(Op):
    op_type = "Transpose"
    row_wise = True

    def perm(self, rank: int) -> list[int]:
        perm = self.attrs.get("perm") or list(range(rank))[::-1]
        if sorted(perm) != list(range(rank)):
            raise self.error(f"perm {perm} is not a permutation of {rank} axes")
        return list(perm)

    def infer(self, inputs):
        x = inputs[0]
        return [TensorType(x.dtype, tuple(x.shape[p] for p in self.perm(x.rank)))]

    def evaluate(self, values):
        return [np.transpose(values[0], self.perm(values[0].ndim))]


@register
class Concat(Op):
    op_type = "Concat"
    row_wise = True

    def infer(self, inputs):
        xs = [x for x in inputs if x is not None]
        rank = xs[0].rank
        axis = normalize_axis(self, self.attrs["axis"], rank)
        for x in xs:
            if x.dtype != xs[0].dtype or x.rank != rank:
                raise self.error("inputs must share dtype and rank")
            for i in range(rank):
                if i != axis and not dims_equal(x.shape[i], xs[0].shape[i]):
                    raise self.error(f"input shapes {[x.shape for x in xs]} differ outside axis {axis}")
        total = simplify(sum((x.shape[axis] for x in xs), 0))
        shape = xs[0].shape[:axis] + (total,) + xs[0].shape[axis + 1:]
        value = None
        if all(x.value is not None for x in xs):
            value = np.concatenate([x.value for x in xs], axis=axis)
        return [TensorType(xs[0].dtype, shape, value)]

    def evaluate(self, values):
        return [np.concatenate([v for v in values if v is not None], axis=self.attrs["axis"])]


@register
class Slice(Op):
    """Slice with starts/ends/axes as attributes (opset < 10)."""

    op_type = "Slice"
    row_wise = True  # a leading dim still whole is read forwards from 0 (rows_independent: backwards, not)

    def params(self, inputs) -> tuple[list, list, list, list]:
        starts, ends = list(self.attrs["starts"]), list(self.attrs["ends"])
        axes = list(self.attrs.get("axes") or range(len(starts)))
        return starts, ends, axes, [1] * len(starts)

    def at_run_time(self, inputs) -> bool:
        """Whether a parameter is read while running (none before opset 10, where they are attributes)."""
        return any(i < len(inputs) and inputs[i] is not None and inputs[i].value is None for i in self.value_inputs)

    def ranges(self, inputs) -> list[tuple[Dim, Dim, int]]:
        """(start, length, step) per axis of the input."""
        x = inputs[0]
        starts, ends, axes, steps = self.params(inputs)
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise self.error("starts, ends, axes and steps must have the same length")
        out: list[tuple[Dim, Dim, int]] = [(0, d, 1) for d in x.shape]
        seen = set()
        for s, e, a, st in zip(starts, ends, axes, steps):
            a = normalize_axis(self, int(a), x.rank)
            if a in seen:
                raise self.error(f"axis {a} is sliced twice")
            seen.add(a)
            if st == 0:
                raise self.error("slice step cannot be 0")
            out[a] = self._range(x.shape[a], int(s), int(e), int(st))
        return out

    def _range(self, d: Dim, s: int, e: int, step: int) -> tuple[Dim, Dim, int]:
        if isinstance(d, int):
            r = range(d)[slice(s, e, step)]
            return (r.start if len(r) else 0), len(r), step
        if step < 0:
            return self._backwards(d, s, e, step)
        if step != 1:
            raise self.error(f"a step of {step} along the symbolic dim {d} is not supported")
        start = s if s >= 0 else simplify(d + s)
        end = d if e >= _TO_END else (e if e >= 0 else simplify(d + e))
        for bound in (s, e):  # the slice bounds are not clamped to the run-time size
            if bound < _TO_END:
                self.require(sympy.Ge(d, abs(bound)), f"slicing [{s}:{e}] needs dim {d} >= {abs(bound)}")
        self.require(sympy.Ge(end, start), f"slicing [{s}:{e}] needs its start before its end in dim {d}")
        return start, simplify(end - start), 1

    def _backwards(self, d: Dim, s: int, e: int, step: int) -> tuple[Dim, Dim, int]:
        """A negative step along the symbolic dim ``d``: a start at or beyond INT32_MAX is the last index and an end
        at or below INT32_MIN is before the first (what exporters write for "reversed to the end"); other bounds
        count from the end when negative and must lie inside the dim, as ONNX would clamp them to its run-time size
        (as for step 1, they are not clamped)."""
        if s >= _TO_END:
            start = simplify(d - 1)
        else:
            start = s if s >= 0 else simplify(d + s)
            self.require(sympy.Ge(d, s + 1 if s >= 0 else -s), f"slicing [{s}:{e}:{step}] needs dim {d} > {start}")
        if e <= -_TO_END - 1:
            end: Dim = -1
        else:
            end = e if e >= 0 else simplify(d + e)
            self.require(sympy.Ge(d, e + 1 if e >= 0 else -e - 1), f"slicing [{s}:{e}:{step}] needs dim {d} > {end}")
        self.require(sympy.Ge(start, end), f"slicing [{s}:{e}:{step}] needs its start after its end in dim {d}")
        span = simplify(start - end)
        return start, span if step == -1 else simplify(sympy.floor((span - step - 1) / -step)), step

    def rows_independent(self, inputs):
        """Not where the leading dim is read backwards: row i of the output is another row of the input."""
        if inputs[0] is None or inputs[0].rank == 0 or self.at_run_time(inputs):
            return self.row_wise
        return self.ranges(inputs)[0][2] > 0

    def infer(self, inputs):
        x = inputs[0]
        shape = tuple(length for _, length, _ in self.ranges(inputs))
        value = None
        if x.value is not None:
            value = x.value[tuple(slice(s, s + n * st if s + n * st >= 0 else None, st)
                                  for s, n, st in self.ranges(inputs))]
        return [TensorType(x.dtype, shape, value)]


@register
class Slice_10(Slice):
    """Slice with starts/ends/axes/steps as inputs 1-4: each read when generating if known, else while running.

    With a parameter read at run time, the dims sliced become run-time dims (every dim when the axes are
    read at run time); the node's code clamps the ranges as onnxruntime does.
    """

    since_version = 10
    value_inputs = (1, 2, 3, 4)

    def runtime_axes(self, inputs) -> list[int]:
        """The axes whose dims the node's code computes: those sliced, or all when the axes are not known."""
        x = inputs[0]
        if len(inputs) > 3 and inputs[3] is not None:
            if inputs[3].value is None:
                return list(range(x.rank))
            axes = [normalize_axis(self, int(a), x.rank) for a in np.asarray(inputs[3].value).reshape(-1)]
            if len(set(axes)) != len(axes):
                raise self.error(f"axes {axes} name an axis twice")
            return sorted(axes)
        count = inputs[1].shape[0] if inputs[1].rank == 1 else None
        if not isinstance(count, int) or count > x.rank:
            raise self.error(f"starts must be a 1-D tensor of at most {x.rank} values, got shape {inputs[1].shape}")
        return list(range(count))

    def infer(self, inputs):
        if not self.at_run_time(inputs):
            return super().infer(inputs)
        x = inputs[0]
        sliced = self.runtime_axes(inputs)
        return [TensorType(x.dtype, tuple(self.runtime_dim(f"dim{i}") if i in sliced else d
                                          for i, d in enumerate(x.shape)))]

    def params(self, inputs):
        starts = [int(v) for v in self.value_of(inputs, 1, "starts").reshape(-1)]
        ends = list(self.value_of(inputs, 2, "ends").reshape(-1))
        axes = self.value_of(inputs, 3, "axes") if len(inputs) > 3 else None
        steps = self.value_of(inputs, 4, "steps") if len(inputs) > 4 else None
        axes = list(range(len(starts))) if axes is None else [int(v) for v in axes.reshape(-1)]
        steps = [1] * len(starts) if steps is None else [int(v) for v in steps.reshape(-1)]
        x = inputs[0]
        if len(ends) == len(axes) == len(steps):
            ends = [
                _TO_END if step > 0 and -x.rank <= a < x.rank and _is_dim(e, x.shape[a]) else e
                for e, a, step in zip(ends, axes, steps)
            ]
        return starts, [int(e) for e in ends], axes, steps


def _is_dim(bound: object, dim: Dim) -> bool:
    """Whether a symbolic slice bound is the dim it slices: a Slice up to another tensor's shape of the same
    symbolic size (torch's ``scatter_add`` cuts its source to the index's shape so), to the end."""
    return not isinstance(bound, (int, np.integer)) and dims_equal(bound, dim)


@register
class Split(Op):
    """Input 0 cut along ``axis`` into consecutive parts, one per output.

    The part sizes come from the ``split`` attribute (opset < 13) or input 1
    (opset 1 and 13+); without them the parts are equal, or, with
    ``num_outputs`` (opset 18+), ceil(size / num_outputs) each and a smaller last one.
    """

    op_type = "Split"
    row_wise = True  # split along the leading dim, a part is not the whole dim
    value_inputs = (1,)

    def sizes(self, dim: Dim, split: Optional[np.ndarray]) -> list[Dim]:
        """Part sizes of an axis of size ``dim``; ``split`` is input 1's value, if given."""
        count = len(self.node.outputs)
        split = self.attrs.get("split") if split is None else [int(v) for v in np.asarray(split).reshape(-1)]
        if split is not None:
            if self.attrs.get("num_outputs") is not None:
                raise self.error("give either the split sizes or num_outputs, not both")
            if len(split) != count or any(s < 0 for s in split):
                raise self.error(f"split {list(split)} must be {count} non-negative sizes (one per output)")
            self.require(sympy.Eq(dim, sum(split)), f"split {list(split)} must add up to the axis size {dim}")
            return list(split)
        parts = self.attrs.get("num_outputs") or count
        if parts != count:
            raise self.error(f"num_outputs {parts} differs from the {count} outputs")
        if parts == 1:
            return [dim]
        if not isinstance(dim, int):
            raise self.error(f"splitting the symbolic dim {dim} into {parts} parts needs explicit split sizes")
        chunk = -(-dim // parts) if self.attrs.get("num_outputs") else dim // parts
        last = dim - chunk * (parts - 1)
        if last < 0 or (not self.attrs.get("num_outputs") and last != chunk):
            raise self.error(f"an axis of size {dim} cannot be split into {parts} parts")
        return [chunk] * (parts - 1) + [last]

    def at_run_time(self, inputs) -> bool:
        """Whether the split sizes are read while running (each part's dim then a run-time dim)."""
        return len(inputs) > 1 and inputs[1] is not None and inputs[1].value is None

    def parts(self, inputs: list[Optional[TensorType]]) -> tuple[int, list[Dim]]:
        """The normalized axis and the part sizes."""
        x = inputs[0]
        axis = normalize_axis(self, self.attrs["axis"], x.rank)
        if self.at_run_time(inputs):
            count = len(self.node.outputs)
            if inputs[1].shape != (count,):
                raise self.error(f"split must be {count} sizes (one per output), got shape {inputs[1].shape}")
            return axis, [self.runtime_dim(f"part{k}") for k in range(count)]
        return axis, self.sizes(x.shape[axis], self.value_of(inputs, 1, "split") if len(inputs) > 1 else None)

    def infer(self, inputs):
        x = inputs[0]
        axis, sizes = self.parts(inputs)
        return [TensorType(x.dtype, x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in sizes]

    def evaluate(self, values):
        x = values[0]
        axis = normalize_axis(self, self.attrs["axis"], x.ndim)
        sizes = self.sizes(x.shape[axis], values[1] if len(values) > 1 else None)
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@register
class Expand(Op):
    """Input 0 broadcast with the shape given as input 1 (numpy rules: either side may be 1).

    A shape computed at run time makes each output dim where the input has a 1
    (or no dim) a run-time dim; the other dims keep the input's, which the code
    checks the target agrees with.
    """

    op_type = "Expand"
    since_version = 8
    value_inputs = (1,)
    row_wise = True  # numpy broadcasting, as the element-wise ops'

    def at_run_time(self, inputs) -> bool:
        return inputs[1].value is None

    def padded_input_dims(self, inputs) -> tuple:
        x, target = inputs[0], inputs[1]
        if target.rank != 1 or not isinstance(target.shape[0], int):
            raise self.error(f"shape must be a 1-D tensor of known length, got shape {target.shape}")
        return (1,) * max(target.shape[0] - x.rank, 0) + x.shape

    def infer(self, inputs):
        x = inputs[0]
        if self.at_run_time(inputs):
            dims = self.padded_input_dims(inputs)
            return [TensorType(x.dtype, tuple(self.runtime_dim(f"dim{i}") if isinstance(d, int) and d == 1 else d
                                              for i, d in enumerate(dims)))]
        shape = shape_from_value(self, self.value_of(inputs, 1, "shape"))
        return [TensorType(x.dtype, broadcast_shapes(self, x.shape, shape))]

    def evaluate(self, values):
        x = values[0]
        shape = [int(d) for d in np.asarray(values[1]).reshape(-1)]
        return [np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(shape))).copy()]


@register
class Tile(Op):
    """Input 0 repeated ``repeats[i]`` times along each axis i."""

    op_type = "Tile"
    since_version = 6
    row_wise = True  # repeating the leading dim changes it
    value_inputs = (1,)

    def at_run_time(self, inputs) -> bool:
        """Whether the repeats are read while running (every output dim then a run-time dim)."""
        return inputs[1].value is None

    def repeats(self, inputs) -> list[Dim]:
        """The repeat counts, symbolic where shape arithmetic computed them from open dims (weaver's pair
        embedding tiles by the particle count), so that one build serves every count."""
        x = inputs[0]
        repeats = list(shape_from_value(self, self.value_of(inputs, 1, "repeats")))
        if len(repeats) != x.rank or any(isinstance(r, int) and r < 0 for r in repeats):
            raise self.error(f"repeats {repeats} must be {x.rank} non-negative values (one per axis)")
        for r in repeats:
            if not isinstance(r, int):
                self.require(sympy.Ge(r, 0), f"repeat count {r} must not be negative")
        return repeats

    def infer(self, inputs):
        x = inputs[0]
        if self.at_run_time(inputs):
            if inputs[1].shape != (x.rank,):
                raise self.error(f"repeats must be {x.rank} values (one per axis), got shape {inputs[1].shape}")
            return [TensorType(x.dtype, tuple(self.runtime_dim(f"dim{i}") for i in range(x.rank)))]
        return [TensorType(x.dtype, tuple(simplify(d * r) for d, r in zip(x.shape, self.repeats(inputs))))]

    def evaluate(self, values):
        return [np.tile(values[0], [int(r) for r in np.asarray(values[1]).reshape(-1)])]
