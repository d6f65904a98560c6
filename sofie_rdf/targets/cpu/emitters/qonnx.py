"""QONNX's FloatQuant on the CPU: the broadcasting binary loop of (x, scale) around a lambda that rounds to the
minifloat format (ops/qonnx.py; the other QONNX operators are written out as ONNX ones by passes/qonnx_layout.py).

The step of a value is 2^(floor(log2 |v|) - mantissa bits), no finer than the subnormals'; frexp gives the
exponent exactly (log2 in float would misplace powers of two by one ulp).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ....ops.qonnx import FloatQuant
from ..emitter import Emitter, emits
from .elementwise import binary_loop

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

# qonnx's rounding modes as C++ expressions of a float v.
ROUNDING = {"ROUND": "std::nearbyint(v)", "HALF_EVEN": "std::nearbyint(v)", "CEIL": "std::ceil(v)",
            "FLOOR": "std::floor(v)", "DOWN": "std::trunc(v)", "UP": "std::copysign(std::ceil(std::fabs(v)), v)",
            "HALF_UP": "std::copysign(std::floor(std::fabs(v) + 0.5f), v)",
            "HALF_DOWN": "std::copysign(std::ceil(std::fabs(v) - 0.5f), v)"}


@emits(FloatQuant)
class FloatQuantEmitter(Emitter):
    kernels = ("elementwise",)
    op: FloatQuant

    def overflow(self, ctx: NodeContext) -> str:
        """What a value beyond the largest becomes: the largest (saturation), infinity, or NaN."""
        if self.attrs["saturation"]:
            return "q > top ? top : (q < -top ? -top : q)"
        beyond = ("(q > 0.0f ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity())"
                  if self.attrs["has_inf"] else "std::numeric_limits<float>::quiet_NaN()")
        return f"std::isinf(q) || std::fabs(q) > top ? {beyond} : q"

    def emit(self, ctx: NodeContext) -> str:
        _, mantissa, bias, largest = self.op.format(ctx.inputs)
        f32 = np.dtype(np.float32)
        function = (f"[top = {ctx.literal(largest, f32)}](const float a, const float s) -> float {{\n"
                    f"   const float x = a / s;\n"
                    f"   int exponent;\n"
                    f"   std::frexp(std::fabs(x) + std::numeric_limits<float>::min(), &exponent);\n"
                    f"   const float step = std::exp2(std::max(static_cast<float>(exponent - 1 - {mantissa}), "
                    f"{ctx.literal(1.0 - bias - mantissa, f32)}));\n"
                    f"   const float v = x / step;\n"
                    f"   const float q = step * {ROUNDING[str(self.attrs['rounding_mode']).upper()]};\n"
                    f"   return ({self.overflow(ctx)}) * s;\n}}")
        return binary_loop(ctx, 0, 1, function)
