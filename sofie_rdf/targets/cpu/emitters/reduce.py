"""CPU emitters of the operators in :mod:`sofie_rdf.ops.reduce`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ....ir.dtypes import kind
from ....ops import reduce as reduce_ops
from ....ops.base import coalesce, contiguous_strides
from ....ops.reduce import _axis_view, block_view
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@dataclass(frozen=True)
class Fold:
    """A reduction as the kernels of ``kernels/reduce.hxx`` take it: C++ with ``{T}`` the element type and
    ``{A}`` the accumulator type ``acc`` (double for sums and products, the type itself for max and min).
    ``combine`` is in ``a`` (accumulator) and ``x`` (element), ``finish`` in ``a`` and ``n`` (count
    reduced); ``init`` is the identity.  ``term``, for folds that add a function of each element (in ``x``),
    lets floating inputs take ``kernels::reduce_sum``, which adds runs of terms in their own type: C++ for a
    value or a vector of floats (simd.hxx) alike."""

    combine: str
    init: str = "0.0"
    finish: str = "kernels::from_real<{T}>(a)"
    acc: str = "double"
    term: Optional[str] = None

    def lambdas(self, ctx: NodeContext, dtype: np.dtype) -> str:
        """The kernel's ``init, combine, finish`` arguments, one a line."""
        t = ctx.ctype(dtype)
        a = self.acc.format(T=t)
        init, combine, finish = (s.format(T=t, A=a) for s in (self.init, self.combine, self.finish))
        count = "size_t n" if re.search(r"\bn\b", finish) else "size_t"
        return ",\n   ".join([init, f"[](const {a} a, const {t} x) -> {a} {{ return {combine}; }}",
                                 f"[](const {a} a, {count}) -> {t} {{ return {finish}; }}"])

    def sum_lambdas(self, ctx: NodeContext, dtype: np.dtype) -> str:
        """``kernels::reduce_sum``'s ``term, finish`` arguments, one a line."""
        t = ctx.ctype(dtype)
        finish = self.finish.format(T=t)
        count = "size_t n" if re.search(r"\bn\b", finish) else "size_t"
        return ",\n   ".join([f"[](const auto x) {{ return {self.term}; }}",
                                 f"[](const double a, {count}) -> {t} {{ return {finish}; }}"])


_SUM = "a + static_cast<double>(x)"
_SQUARES = "a + static_cast<double>(x) * static_cast<double>(x)"
_REAL_RESULT = "kernels::from_real<{{T}}>({})"

# Reduction name (ops/reduce.py) -> its fold.
FOLDS = {
    "sum": Fold(_SUM, term="x"),
    "mean": Fold(_SUM, finish=_REAL_RESULT.format("n == 0 ? 0.0 : a / static_cast<double>(n)"), term="x"),
    "sum_square": Fold(_SQUARES, term="x * x"),
    "l1": Fold("a + std::abs(static_cast<double>(x))", term="x < 0 ? -x : x"),
    "l2": Fold(_SQUARES, finish=_REAL_RESULT.format("std::sqrt(a)"), term="x * x"),
    "log_sum": Fold(_SUM, finish=_REAL_RESULT.format("std::log(a)"), term="x"),
    "log_sum_exp": Fold("a.add(static_cast<double>(x))", init="{A}()", finish=_REAL_RESULT.format("a.result()"),
                        acc="kernels::LogSumExp<{T}>"),
    "prod": Fold("a * static_cast<double>(x)", init="1.0"),
    "max": Fold("kernels::max_of(a, x)", init="kernels::lowest<{T}>()", finish="a", acc="{T}"),
    "min": Fold("kernels::min_of(a, x)", init="kernels::highest<{T}>()", finish="a", acc="{T}"),
}


@emits(reduce_ops._Reduce)
class ReduceEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.reduce._Reduce`."""

    kernels = ("reduce",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        if self.op.axes_at_run_time(ctx.inputs):
            return self.emit_run_time_axes(ctx)
        axes = self.op.reduced_axes(x.rank, self.op.axes_value(ctx.inputs))
        fold = FOLDS[self.op.reduction.name]
        view = block_view(x.shape, axes)
        if view is not None:
            sizes = ", ".join(ctx.dim(d) for d in view)
            if fold.term and x.dtype in (np.float32, np.float64):
                return f"kernels::reduce_sum({ctx.x(0)}, {ctx.y(0)}, {sizes},\n   {fold.sum_lambdas(ctx, x.dtype)});"
            return f"kernels::reduce({ctx.x(0)}, {ctx.y(0)}, {sizes},\n   {fold.lambdas(ctx, x.dtype)});"
        fold_args = fold.lambdas(ctx, x.dtype)
        strides = contiguous_strides(x.shape)
        args = []
        for label, part in (("kept", [i for i in range(x.rank) if i not in axes]), ("reduced", axes)):
            shape, (st,) = coalesce([x.shape[i] for i in part], [strides[i] for i in part])
            args += [ctx.array(f"{label}_shape", shape), ctx.array(f"{label}_strides", st, "std::ptrdiff_t"), str(len(shape))]
        return f"kernels::reduce_strided({ctx.x(0)}, {ctx.y(0)}, {', '.join(args)},\n   {fold_args});"

    def emit_run_time_axes(self, ctx: NodeContext) -> str:
        """Axes read while running: checked into a mask (none: all, or none with noop_with_empty_axes), which
        sets the output's run-time dims and drives the generic masked kernel."""
        x, y, axes = ctx.inputs[0], ctx.outputs[0], ctx.inputs[1]
        rank, room = x.rank, max(x.rank, 1)
        shape, count = ctx.array("x_shape", x.shape), ctx.dim(axes.shape[0])
        lines = [f"bool reduced_[{room}];", f"kernels::value_axes({ctx.x(1)}, {count}, {rank}, reduced_, {ctx.where});"]
        if not isinstance(axes.shape[0], int) and not self.attrs.get("noop_with_empty_axes", 0):
            lines += [f"if ({count} == 0)  // no axes: all of them", f"   std::fill_n(reduced_, {rank}, true);"]
        runtime = [(j, d) for j, d in enumerate(y.shape) if not isinstance(d, int)]
        if runtime:
            keep = "true" if self.attrs.get("keepdims", 1) else "false"
            lines += [f"size_t y_shape_[{room}];", f"kernels::reduced_shape({shape}, {rank}, reduced_, {keep}, y_shape_);"]
            lines += [f"{ctx.dim(d)} = y_shape_[{j}];" for j, d in runtime]
        fold = FOLDS[self.op.reduction.name].lambdas(ctx, x.dtype)
        call = f"kernels::reduce_masked<{room}>({ctx.x(0)}, {ctx.y(0)}, {shape}, {rank}, reduced_,\n   {fold});"
        return "\n".join(line for line in [*lines, ctx.reserve(0), call] if line)


@emits(reduce_ops._ArgReduce)
class ArgReduceEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.reduce._ArgReduce`."""

    kernels = ("reduce",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        sizes = ", ".join(ctx.dim(d) for d in _axis_view(x.shape, self.op.axis(x.shape)))
        maximum = "true" if self.op.maximum else "false"
        last = "true" if self.attrs.get("select_last_index", 0) else "false"
        return f"kernels::arg_reduce({ctx.x(0)}, {ctx.y(0)}, {sizes}, {maximum}, {last});"


@emits(reduce_ops._Cumulative)
class CumulativeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.reduce._Cumulative`."""

    kernels = ("reduce",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        acc = "double" if kind(x.dtype) == "f" else "uint64_t"
        flags = ", ".join("true" if self.attrs[k] else "false" for k in ("exclusive", "reverse"))
        combine = f"[](const {acc} a, const {acc} b) -> {acc} {{ return {self.op.combine}; }}"
        fold = f"{flags}, {acc}({self.op.identity}), {combine}"
        if self.op.axis_at_run_time(ctx.inputs):
            axis = f"kernels::value_axis({ctx.x(1)}[0], {x.rank}, {ctx.where})"
            return (f"kernels::cumulate_along<{acc}>({ctx.x(0)}, {ctx.y(0)}, {ctx.array('x_shape', x.shape)}, {x.rank},"
                    f"\n   {axis},\n   {fold});")
        sizes = ", ".join(ctx.dim(d) for d in _axis_view(x.shape, self.op.axis(x.rank, self.op.value_of(ctx.inputs, 1, "axis"))))
        return f"kernels::cumulate<{acc}>({ctx.x(0)}, {ctx.y(0)}, {sizes}, {fold});"
