"""Element-wise operators on the CPU: the loops of ``kernels/elementwise.hxx`` around one lambda.

Each unary operator is a C++ expression in ``x``, each binary one an expression in ``a`` and ``b``
(``targets/_cxx/expressions.py``); ``{T}`` stands for the type computed in and ``{name}`` for the value of the
operator's attribute ``name``, as a literal of that type.  :meth:`UnaryEmitter.function` wraps an
expression in the lambda the loops call; Conv and Gemm apply a fused activation through it
(``emitters/gemm.py``) and ``FusedElementwise`` chains several in one loop, so fused code computes
exactly what the separate nodes compute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ....ir.dims import dims_equal
from ....ir.dtypes import MINIFLOAT_TYPES, NARROW_INT_RANGES, compute_dtype
from ....ops import activations, bitwise, elementwise, logic, misc, ml
from ....ops.base import broadcast_strides, coalesce, static_size
from ....ops.fused import FusedElementwise
from ..._cxx.expressions import expression, filled, gelu, step_inputs
from ..emitter import Emitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

_T = compute_dtype

@emits(elementwise.UnaryOp)
class UnaryEmitter(Emitter):
    """``y = f(x)``: one ``kernels::unary`` loop."""

    kernels = ("elementwise",)

    def body(self, ctx: NodeContext) -> str:
        """The C++ expression in ``x`` with attribute values filled in."""
        return filled(self.op, ctx, _T(ctx.inputs[0].dtype))

    def function(self, ctx: NodeContext) -> str:
        """The lambda applied per element (also by fused epilogues and FusedElementwise)."""
        t_in, t_out = ctx.ctype(_T(ctx.inputs[0].dtype)), ctx.ctype(ctx.outputs[0].dtype)
        return f"[](const {t_in} x) -> {t_out} {{ return {self.body(ctx)}; }}"

    def emit(self, ctx: NodeContext) -> str:
        n = ctx.dim(ctx.outputs[0].size)
        return f"kernels::unary({ctx.x(0)}, {ctx.y(0)}, {n}, {self.function(ctx)});"


@emits(elementwise.Cast)
class CastEmitter(UnaryEmitter):
    """Narrow types (4-bit integers, 8- and 4-bit floats) pass through int or float: their structs convert to
    and from those only, so a chain of two user conversions (float8 to half, say) is spelled out."""

    def body(self, ctx: NodeContext) -> str:
        src, out = ctx.inputs[0].dtype, ctx.outputs[0].dtype
        x = "x"
        if src in MINIFLOAT_TYPES:
            x = "static_cast<float>(x)"
        elif src in NARROW_INT_RANGES:
            x = "static_cast<int>(x)"
        if out == np.bool_:
            return f"{x} != 0"
        t = ctx.ctype(out)
        if out in MINIFLOAT_TYPES:  # narrow.hxx's encode: saturating or not, as the attribute says
            return f"{t}::from_bits({t}::encode(static_cast<float>({x}), {str(self.op.saturates).lower()}))"
        return f"static_cast<{t}>({x})"


@emits(elementwise.Clip)
class ClipEmitter(UnaryEmitter):
    """Bounds as captured constants."""

    def bounds(self, ctx: NodeContext) -> tuple[str, str]:
        dtype = ctx.inputs[0].dtype
        return ctx.literal(self.attrs["min"], dtype), ctx.literal(self.attrs["max"], dtype)

    def function(self, ctx: NodeContext) -> str:
        t = ctx.ctype(ctx.inputs[0].dtype)
        lo, hi = self.bounds(ctx)
        return f"[lo = {lo}, hi = {hi}](const {t} x) -> {t} {{ return detail::min_of(detail::max_of(x, lo), hi); }}"


@emits(elementwise.Clip_11)
class Clip11Emitter(ClipEmitter):
    """Bounds read from the optional min/max inputs (scalars, possibly computed at run time)."""

    def bounds(self, ctx: NodeContext) -> tuple[str, str]:
        t = ctx.ctype(ctx.inputs[0].dtype)
        lo = f"{ctx.x(1)}[0]" if ctx.inputs[1:2] and ctx.inputs[1] else f"std::numeric_limits<{t}>::lowest()"
        hi = f"{ctx.x(2)}[0]" if ctx.inputs[2:3] and ctx.inputs[2] else f"std::numeric_limits<{t}>::max()"
        return lo, hi


@emits(activations.Gelu)
class GeluEmitter(UnaryEmitter):
    def body(self, ctx: NodeContext) -> str:
        return gelu(self.attrs["approximate"], ctx, _T(ctx.inputs[0].dtype))


@emits(activations.IsInf)
class IsInfEmitter(UnaryEmitter):
    def body(self, ctx: NodeContext) -> str:
        positive, negative = (ctx.literal(self.attrs[k], np.dtype(np.bool_)) for k in ("detect_positive", "detect_negative"))
        return f"std::isinf(x) && (x > 0 ? {positive} : {negative})"


@emits(misc.Shrink)
class ShrinkEmitter(UnaryEmitter):
    """Integers compared and shifted in float and truncated back, wrapping (kernels/misc.hxx)."""

    kernels = ("elementwise", "misc")

    def body(self, ctx: NodeContext) -> str:
        dtype = ctx.inputs[0].dtype
        lambd, bias = self.attrs["lambd"], self.attrs["bias"]
        low, high, shift = (ctx.literal(v, self.op.arithmetic_dtype(dtype)) for v in (-lambd, lambd, bias))
        t = ctx.ctype(dtype)
        return (f"x < {low} ? kernels::truncate_wrapping<{t}>(x + {shift}) : "
                f"x > {high} ? kernels::truncate_wrapping<{t}>(x - {shift}) : {t}(0)")


@emits(ml.Binarizer)
class BinarizerEmitter(UnaryEmitter):
    def body(self, ctx: NodeContext) -> str:
        """The threshold is a float attribute: integers are compared with it in float, as in onnxruntime."""
        threshold = ctx.literal(self.attrs["threshold"], np.dtype(np.float32))
        t = ctx.ctype(ctx.inputs[0].dtype)
        return f"x > {threshold} ? {t}(1) : {t}(0)"


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))


@emits(elementwise.BinaryOp)
class BinaryEmitter(Emitter):
    """``y = f(a, b)``: a flat loop where the shapes allow (equal, or one side a single value), else the
    strided loop over the broadcast shape (adjacent dims merged)."""

    kernels = ("elementwise",)

    def body(self, ctx: NodeContext) -> str:
        """The C++ expression in ``a`` and ``b``."""
        return expression(type(self.op))

    def function(self, ctx: NodeContext) -> str:
        ta, tb = (ctx.ctype(_T(t.dtype)) for t in ctx.inputs[:2])
        ty = ctx.ctype(ctx.outputs[0].dtype)
        return f"[](const {ta} a, const {tb} b) -> {ty} {{ return {self.body(ctx)}; }}"

    def emit(self, ctx: NodeContext) -> str:
        return binary_loop(ctx, 0, 1, self.function(ctx))


def binary_loop(ctx: NodeContext, i: int, j: int, f: str) -> str:
    """``y = f(a, b)`` for inputs ``i`` and ``j`` broadcast together: a flat loop where the shapes allow (equal,
    or one side a single value), else the strided loop over the broadcast shape (adjacent dims merged)."""
    a, b = ctx.inputs[i], ctx.inputs[j]
    y = ctx.outputs[0]
    n = ctx.dim(y.size)
    if _same_shape(a.shape, y.shape) and _same_shape(b.shape, y.shape):
        return f"kernels::binary({ctx.x(i)}, {ctx.x(j)}, {ctx.y(0)}, {n}, {f});"
    if _same_shape(a.shape, y.shape) and static_size(b.shape) == 1:
        return f"kernels::binary_scalar_b({ctx.x(i)}, {ctx.x(j)}[0], {ctx.y(0)}, {n}, {f});"
    if _same_shape(b.shape, y.shape) and static_size(a.shape) == 1:
        return f"kernels::binary_scalar_a({ctx.x(i)}[0], {ctx.x(j)}, {ctx.y(0)}, {n}, {f});"
    shape, (sa, sb) = coalesce(y.shape, broadcast_strides(a.shape, y.shape), broadcast_strides(b.shape, y.shape))
    dims = ctx.array("shape", shape)
    sa_, sb_ = ctx.array("a_strides", sa, "std::ptrdiff_t"), ctx.array("b_strides", sb, "std::ptrdiff_t")
    return f"kernels::binary_strided({ctx.x(i)}, {sa_}, {ctx.x(j)}, {sb_}, {ctx.y(0)}, {dims}, {len(shape)}, {f});"


# Constant exponents computed without std::pow, as onnxruntime does: a library call per element costs ten
# times the product (squares of momenta, distances).  Squares and square roots are exact either way.
_POW_CONSTANT = {2.0: "a * a", 3.0: "a * a * a", 0.5: "std::sqrt(a)", 1.0: "a"}


@emits(elementwise.Pow)
class PowEmitter(BinaryEmitter):
    def function(self, ctx: NodeContext) -> str:
        """The exponent may have another type; the result is the base's."""
        ty = ctx.ctype(ctx.outputs[0].dtype)
        ta, tb = (ctx.ctype(_T(t.dtype)) for t in ctx.inputs[:2])
        exponent = ctx.inputs[1]
        known = (exponent.is_constant and exponent.value.size == 1 and ctx.outputs[0].dtype.kind == "f"
                 and float(exponent.value.reshape(-1)[0]) in _POW_CONSTANT)
        body = _POW_CONSTANT[float(exponent.value.reshape(-1)[0])] if known else "std::pow(a, b)"
        unused = "/*b*/" if known else "b"
        return f"[](const {ta} a, const {tb} {unused}) -> {ty} {{ return static_cast<{ty}>({body}); }}"


@emits(elementwise.Mod)
class ModEmitter(BinaryEmitter):
    def body(self, ctx: NodeContext) -> str:
        return f"kernels::{'mod_floor' if self.attrs['fmod'] == 0 else 'mod_trunc'}(a, b)"


@emits(bitwise.BitShift)
class BitShiftEmitter(BinaryEmitter):
    """Shifts by the type's width or more are undefined in C++: kernels/bitwise.hxx gives ONNX's result."""

    kernels = ("elementwise", "bitwise")

    def body(self, ctx: NodeContext) -> str:
        return f"kernels::shift_{'left' if self.op.left() else 'right'}(a, b)"


@emits(elementwise.NaryOp)
class NaryEmitter(BinaryEmitter):
    """The first two inputs combined into the output, each further one into the output in place (element i
    is read before it is written), then :meth:`finish`."""

    def finish(self, ctx: NodeContext) -> str:
        """Statements applied to the combined output (Mean divides it)."""
        return ""

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        if len(ctx.inputs) == 1:
            shape, (sx,) = coalesce(y.shape, broadcast_strides(ctx.inputs[0].shape, y.shape))
            return (f"kernels::unary_strided({ctx.x(0)}, {ctx.array('x_strides', sx, 'std::ptrdiff_t')}, {ctx.y(0)}, "
                    f"{ctx.array('shape', shape)}, {len(shape)}, [](const auto a) {{ return a; }});")
        lines = [super().emit(ctx)]
        f = self.function(ctx)
        for k in range(2, len(ctx.inputs)):
            shape, (sy, sx) = coalesce(y.shape, broadcast_strides(y.shape, y.shape),
                                       broadcast_strides(ctx.inputs[k].shape, y.shape))
            dims = ctx.array(f"shape{k}", shape)
            sy_, sx_ = (ctx.array(f"{n}{k}", s, "std::ptrdiff_t") for n, s in (("y_strides", sy), ("x_strides", sx)))
            lines.append(f"kernels::binary_strided({ctx.y(0)}, {sy_}, {ctx.x(k)}, {sx_}, {ctx.y(0)}, {dims}, "
                         f"{len(shape)}, {f});")
        lines.append(self.finish(ctx))
        return "\n".join(line for line in lines if line)


@emits(elementwise.Mean)
class MeanEmitter(NaryEmitter):
    def finish(self, ctx: NodeContext) -> str:
        if len(ctx.inputs) == 1:
            return ""
        y = ctx.outputs[0]
        t = ctx.ctype(y.dtype)
        count = ctx.literal(len(ctx.inputs), y.dtype)
        return f"kernels::unary({ctx.y(0)}, {ctx.y(0)}, {ctx.dim(y.size)}, [](const {t} v) -> {t} {{ return v / {count}; }});"


@emits(logic.Where)
class WhereEmitter(Emitter):
    """condition ? X : Y over the three broadcast together."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        out = ctx.outputs[0]
        shape, strides = coalesce(out.shape, *(broadcast_strides(t.shape, out.shape) for t in ctx.inputs[:3]))
        names = [ctx.array(f"{n}_strides", s, "std::ptrdiff_t") for n, s in zip(("c", "x", "y"), strides)]
        t = ctx.ctype(out.dtype)
        f = f"[](const bool c, const {t} a, const {t} b) -> {t} {{ return c ? a : b; }}"
        operands = ", ".join(f"{ctx.x(i)}, {s}" for i, s in enumerate(names))
        return f"kernels::ternary_strided({operands}, {ctx.y(0)}, {ctx.array('shape', shape)}, {len(shape)}, {f});"


@emits(FusedElementwise)
class FusedElementwiseEmitter(Emitter):
    """One loop: each element goes through every step's lambda while it is in a register."""

    def __init__(self, op: FusedElementwise, target) -> None:
        super().__init__(op, target)
        self.steps = [target.bind(step) for step in op.ops]

    @property
    def kernels(self) -> tuple[str, ...]:
        """Those the steps' code calls (fastmath for Sigmoid, Tanh, ...)."""
        return tuple(dict.fromkeys(k for step in self.steps for k in step.kernels))

    def emit(self, ctx: NodeContext) -> str:
        n = ctx.dim(ctx.outputs[0].size)
        scalar = {k for k, t in enumerate(ctx.inputs) if k and static_size(t.shape) == 1}
        lines = [f"const auto f{i} = {emitter.function(ctx.with_inputs(step_inputs(ctx.inputs, step)))};"
                 for i, (emitter, step) in enumerate(zip(self.steps, self.op.steps))]
        # single values read once: in the loop the compiler could not tell them apart from the output it writes
        lines += [f"const auto c{k} = {ctx.x(k)}[0];" for k in sorted(scalar)]
        lines.append(f"for (size_t i = 0; i < {n}; ++i) {{")
        lines.append(f"   auto v = {ctx.x(0)}[i];")
        for i, step in enumerate(self.op.steps):
            k = step["operand"]
            if k < 0:
                lines.append(f"   v = f{i}(v);")
                continue
            operand = f"c{k}" if k in scalar else f"{ctx.x(k)}[i]"
            args = f"{operand}, v" if step.get("operand_first") else f"v, {operand}"
            lines.append(f"   v = f{i}({args});")
        lines.append(f"   {ctx.y(0)}[i] = v;")
        lines.append("}")
        return "{\n" + "\n".join("   " + line for line in lines) + "\n}"
