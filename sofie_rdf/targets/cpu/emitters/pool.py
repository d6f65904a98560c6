"""Pooling on the CPU: every pooling operator is one reducer over the same window walk (``kernels::pool``).

The window geometry (``ops/pool.py``) goes to the kernel as a ``PoolShape`` of local arrays; each family
(max, average, Lp) constructs its reducer, which writes the outputs.  MaxPool without Indices and
AveragePool in float or double take ``kernels::pool_lines`` instead, vectorized along the last axis: it
needs a line of the padded input and the divisor of each output column as scratch.  It hands the 2 x 2 (or
2 x 2 x 2) stride-2 windows of CNNs on lines of whole vectors to ``kernels::pool_pairs``, which decides when
the code runs (the line width and vector width are known there).  Other float windows with stride 2 along
the lines, such as 3 x 3 ones, take ``kernels::pool_lines_stride2`` where the geometry is known here: the
call site then holds that kernel's code only, which the compiler inlines with the shapes as constants (one
call site holding every kernel was not inlined, and ran 1.7x slower).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from ....ir import TensorType
from ....ir.dims import num_elements
from ....ops.pool import PoolGeometry, _AveragePool, _LpPool, _MaxPool
from ..emitter import Emitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


# Element types pool_lines takes (the 16-bit floats go through the generic walk).
_LINE_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
# MaxPool's also the 8-bit integers of quantized models.
_MAX_LINE_TYPES = (*_LINE_TYPES, np.dtype(np.int8), np.dtype(np.uint8))
# Taps along the lines pool_lines_stride2 takes: three vectors of a line hold those of a vector of outputs.
_STRIDE2_TAPS = 5


def _is_global(g: PoolGeometry) -> bool:
    """pool.hxx's pool_global_fits: one unpadded window over each whole plane."""
    return all(o == 1 and k == n and d == 1 and b == 0 and e == 0
               for n, o, k, d, b, e in zip(g.spatial, g.out, g.kernel, g.dilations, g.pads_begin, g.pads_end))


def _is_pairs(g: PoolGeometry, lanes: int) -> bool:
    """pool.hxx's pool_pairs_fit, with the vectors it tries (``lanes`` floats, then 8)."""
    return len(g.spatial) <= 3 and g.spatial[-1] % min(lanes, 8) == 0 and all(
        k == 2 and s == 2 and d == 1 and b == 0 and e == 0 and o == n // 2
        for n, o, k, s, d, b, e in zip(g.spatial, g.out, g.kernel, g.strides, g.dilations, g.pads_begin, g.pads_end))


def stride2_taps(g: PoolGeometry, lanes: int) -> Optional[int]:
    """The taps along the lines where ``kernels::pool_lines_stride2`` computes a float pooling of geometry ``g``
    (known lengths, stride 2 along the lines, up to _STRIDE2_TAPS undilated taps), else None; where
    ``pool_lines`` would take ``pool_global`` or ``pool_pairs``, those.  Its gain is on short lines, whose loops
    in pool_lines end in scalar code: not where a window has one input line (1-D, or one tap along the leading
    axes) and the output lines are longer than two vectors (pool_lines only copies each line then: 1-D, 100
    values to 49 with 4 taps, 0.7x the time), nor on output lines longer than four vectors of AVX-512 or two of
    narrower ones (Zen 4, built for AVX2: 1.16x pool_lines' time on 64 x 112 x 112, 3x3/2 with padding, 1.23x
    with 17 outputs a line; built for AVX-512, 0.61x on the first), nor for 2-tap windows with vectors narrower
    than AVX-512's, where pool_lines' loop over pairs does as well (AVX2: 1.2x its time on 8 x 30 x 30)."""
    values = (*g.spatial, *g.out, *g.kernel, *g.pads_begin, *g.pads_end)
    if not all(isinstance(v, int) for v in values) or len(g.spatial) > 3 or _is_global(g) or _is_pairs(g, lanes):
        return None
    out, kernel = g.out[-1], g.kernel[-1]
    if g.strides[-1] != 2 or g.dilations[-1] != 1 or kernel > _STRIDE2_TAPS or (kernel == 2 and lanes < 16):
        return None
    longest = (4 if lanes >= 16 else 2) * lanes if num_elements(g.kernel[:-1]) > 1 else 2 * lanes
    return kernel if out <= longest else None


class PoolEmitter(Emitter):
    """The window walk shared by every pooling operator; subclasses name the reducer."""

    kernels = ("pool",)

    def by_lines(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> bool:
        """Whether ``kernels::pool_lines`` computes the node (MaxPool without Indices, AveragePool)."""
        return False

    def stride2_taps(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> Optional[int]:
        """The taps along the lines where ``kernels::pool_lines_stride2`` computes the node, else None."""
        if not self.by_lines(inputs, outputs) or inputs[0].dtype != np.float32:
            return None
        return stride2_taps(self.op.geometry(inputs[0]), self.target.vector_floats)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        if not self.by_lines(inputs, outputs) or self.stride2_taps(inputs, outputs):
            return []
        g = self.op.geometry(inputs[0])
        span = (g.out[-1] - 1) * g.strides[-1] + (g.kernel[-1] - 1) * g.dilations[-1] + 1  # pool_lines_span
        return [TensorType(inputs[0].dtype, (span + g.out[-1],))]

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        g = self.op.geometry(x)
        names = [ctx.array(label, values) for label, values in (
            ("in_shape", g.spatial), ("out_shape", g.out), ("kernel", g.kernel), ("strides", g.strides),
            ("dilations", g.dilations), ("pads_begin", g.pads_begin), ("pads_end", g.pads_end))]
        shape = f"kernels::PoolShape{{{len(g.spatial)}, {', '.join(names)}}}"
        planes = ctx.dim(num_elements(x.shape[:2]))
        if self.by_lines(ctx.inputs, ctx.outputs):
            t, include = ctx.ctype(x.dtype), "true" if self.op.attr("count_include_pad", 0) else "false"
            is_max = "true" if isinstance(self.op, _MaxPool) else "false"
            taps = self.stride2_taps(ctx.inputs, ctx.outputs)
            if taps:
                return (f"kernels::pool_lines_stride2<{is_max}, {taps}>({ctx.x(0)}, {ctx.y(0)}, {planes}, {shape}, "
                        f"{include});")
            return (f"kernels::pool_lines<{t}, {is_max}>({ctx.x(0)}, {ctx.y(0)}, {planes}, {shape}, {include}, "
                    f"{ctx.w(0)});")
        return f"kernels::pool({ctx.x(0)}, {planes}, {shape}, {self.reducer(ctx)});"

    def reducer(self, ctx: NodeContext) -> str:
        """C++ expression constructing the kernel's reducer."""
        raise NotImplementedError


@emits(_MaxPool)
class MaxPoolEmitter(PoolEmitter):
    """MaxPool and GlobalMaxPool: the maximum, and its flat index where Indices is wanted."""

    def by_lines(self, inputs, outputs):
        return inputs[0].dtype in _MAX_LINE_TYPES and (len(outputs) < 2 or outputs[1] is None)

    def reducer(self, ctx: NodeContext) -> str:
        indices = ctx.y(1) if len(ctx.outputs) > 1 and ctx.outputs[1] is not None else "nullptr"
        column_major = "true" if self.op.attr("storage_order", 0) else "false"
        t = ctx.ctype(ctx.inputs[0].dtype)
        return f"kernels::MaxPoolReducer<{t}>({ctx.y(0)}, {indices}, {column_major})"


@emits(_AveragePool)
class AveragePoolEmitter(PoolEmitter):
    """AveragePool and GlobalAveragePool."""

    def by_lines(self, inputs, outputs):
        return inputs[0].dtype in _LINE_TYPES

    def reducer(self, ctx: NodeContext) -> str:
        include = "true" if self.op.attr("count_include_pad", 0) else "false"
        return f"kernels::AveragePoolReducer<{ctx.ctype(ctx.inputs[0].dtype)}>({ctx.y(0)}, {include})"


@emits(_LpPool)
class LpPoolEmitter(PoolEmitter):
    """LpPool and GlobalLpPool."""

    def reducer(self, ctx: NodeContext) -> str:
        dt = ctx.inputs[0].dtype
        return f"kernels::LpPoolReducer<{ctx.ctype(dt)}>({ctx.y(0)}, {ctx.literal(float(self.op.p()), dt)})"
