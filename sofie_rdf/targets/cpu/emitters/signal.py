"""CPU emitters of the operators in :mod:`sofie_rdf.ops.signal`."""

from __future__ import annotations

import numpy as np
import sympy

from ....ir.dims import num_elements
from ....ops import signal as signal_ops
from ..context import NodeContext
from ..emitter import Emitter, emits


@emits(signal_ops._CosineWindow)
class CosineWindowEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.signal._CosineWindow`."""

    kernels = ("signal",)

    def emit(self, ctx: NodeContext) -> str:
        y = ctx.outputs[0]
        size = ctx.dim(y.shape[0])
        a0, a1, a2 = (ctx.literal(c, np.float64) for c in self.op.coefficients)
        periodic = "true" if self.attrs.get("periodic", 1) else "false"
        fill = f"kernels::cosine_window({ctx.y(0)}, {size}, {periodic}, {a0}, {a1}, {a2});"
        if not ctx.reserve(0):
            return fill
        return f'{size} = kernels::checked_dim({ctx.x(0)}[0], "{self.op.op_type}");\n{ctx.reserve(0)}\n{fill}'


@emits(signal_ops.DFT)
class DFTEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.signal.DFT`."""

    kernels = ("signal",)

    def emit(self, ctx: NodeContext) -> str:
        axis, length, bins, real_inverse = self.op.layout(ctx.inputs)
        x = ctx.inputs[0]
        kind = "inverse_real" if real_inverse else "inverse" if self.attrs.get("inverse", 0) else "forward"
        sizes = [num_elements(x.shape[:axis]), x.shape[axis], num_elements(x.shape[axis + 1:-1]), x.shape[-1], length, bins]
        return (f"kernels::dft({ctx.x(0)}, {ctx.y(0)}, {', '.join(ctx.dim(d) for d in sizes)}, "
                f"kernels::DftKind::{kind}, {ctx.w(0)});")


@emits(signal_ops.STFT)
class STFTEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.signal.STFT`."""

    kernels = ("signal",)

    def emit(self, ctx: NodeContext) -> str:
        step, length, frames, bins = self.op.layout(ctx.inputs)
        x = ctx.inputs[0]
        window = ctx.x(2) if len(ctx.inputs) > 2 and ctx.inputs[2] is not None else "nullptr"
        sizes = ", ".join(ctx.dim(d) for d in (x.shape[0], x.shape[1], x.shape[2], frames, step, length, bins))
        return f"kernels::stft<{ctx.ctype(x.dtype)}>({ctx.x(0)}, {window}, {ctx.y(0)}, {sizes}, {ctx.w(0)});"


@emits(signal_ops.MelWeightMatrix)
class MelWeightMatrixEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.signal.MelWeightMatrix`."""

    kernels = ("signal",)

    def emit(self, ctx: NodeContext) -> str:
        args = [self._scalar_cpp(ctx, i) for i in range(5)]
        call = f"kernels::mel_weight_matrix({ctx.y(0)}, {', '.join(args)});"
        if not ctx.reserve(0):
            return call
        bins, mel = ctx.outputs[0].shape
        sizes = [f'{ctx.dim(bins)} = kernels::checked_dim({args[1]}, "MelWeightMatrix") / 2 + 1;'
                 if ctx.inputs[1].value is None else "",
                 f'{ctx.dim(mel)} = kernels::checked_dim({args[0]}, "MelWeightMatrix");' if ctx.inputs[0].value is None else ""]
        return "\n".join([line for line in sizes if line] + [ctx.reserve(0), call])

    def _scalar_cpp(self, ctx: NodeContext, i: int) -> str:
        """Input ``i`` as a C++ int64_t (sizes) or double (frequencies): read at run time, or its known value."""
        t = ctx.inputs[i]
        ctype = "int64_t" if i < 3 else "double"
        if t.value is None:
            return f"static_cast<{ctype}>({ctx.x(i)}[0])"
        v = np.asarray(t.value).reshape(-1)[0]
        if isinstance(v, sympy.Expr):
            return f"static_cast<{ctype}>({ctx.dim(v)})"
        return ctx.literal(v, np.int64 if i < 3 else np.float64)
