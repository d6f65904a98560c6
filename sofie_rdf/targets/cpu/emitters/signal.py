"""CPU emitters of the operators in :mod:`sofie_rdf.ops.signal`."""

from __future__ import annotations

import numpy as np
import sympy

from ....ir.dims import Dim, num_elements
from ....ops import signal as signal_ops
from ..._cxx.context import NodeContext
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


def _scalar_value(ctx: NodeContext, i: int, what: str, known: Dim) -> str:
    """C++ of a positive size: input ``i`` read and checked while running, or its value ``known`` when generating."""
    if ctx.inputs[i].value is None:
        return f'kernels::value_positive({ctx.x(i)}[0], {ctx.where}, "{what}")'
    return ctx.dim(known)


@emits(signal_ops.DFT)
class DFTEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.signal.DFT` (the header adds kernels/values.hxx, whose checks
    the code calls, where it reads a value input while running)."""

    kernels = ("signal",)

    def emit(self, ctx: NodeContext) -> str:
        kind = "inverse_real" if self.op.transform_kind()[2] else "inverse" if self.attrs.get("inverse", 0) else "forward"
        if self.op.at_run_time(ctx.inputs):
            return self.emit_run_time(ctx, kind)
        axis, length, bins, real_inverse = self.op.layout(ctx.inputs)
        x = ctx.inputs[0]
        sizes = [num_elements(x.shape[:axis]), x.shape[axis], num_elements(x.shape[axis + 1:-1]), x.shape[-1], length, bins]
        return (f"kernels::dft({ctx.x(0)}, {ctx.y(0)}, {', '.join(ctx.dim(d) for d in sizes)}, "
                f"kernels::DftKind::{kind}, {ctx.w(0)});")

    def emit_run_time(self, ctx: NodeContext, kind: str) -> str:
        """Axis or length read while running: the line view around the axis, the length (given, or the default
        from the values along the axis), then the output's run-time dims; the tables when the length has a
        bound the planner could give room for, else the transform in place."""
        x, y = ctx.inputs[0], ctx.outputs[0]
        rank, last = x.rank, x.rank - 1
        axis = self.op.known_axis(ctx.inputs)
        lines = []
        if axis is None:
            lines += [f"const size_t axis_ = kernels::value_axis({ctx.x(2)}[0], {rank}, {ctx.where});",
                      f"if (axis_ == {last})",
                      f'   kernels::value_error({ctx.where}, "axis {last} is the last (real, imaginary) axis");']
        lines.append(f"const kernels::LineView view_ = kernels::line_view({ctx.array('x_shape', x.shape)}, {rank}, "
                     f"{'axis_' if axis is None else axis});")
        if len(ctx.inputs) > 1 and ctx.inputs[1] is not None:
            length = _scalar_value(ctx, 1, "dft_length", self.op.known_length(ctx.inputs))
        elif self.op.transform_kind()[2]:
            length = (f"kernels::value_positive(2 * static_cast<int64_t>(view_.n) - 2, {ctx.where}, "
                      '"the default length 2 (n - 1) of a one-sided spectrum of n bins")')
        else:
            length = "view_.n"
        lines.append(f"const size_t length_ = {length};")
        inverse, onesided, _ = self.op.transform_kind()
        lines.append(f"const size_t bins_ = {'length_ / 2 + 1' if onesided and not inverse else 'length_'};")
        if axis is None:
            lines += [f"{ctx.dim(d)} = axis_ == {j} ? bins_ : {ctx.dim(x.shape[j])};" for j, d in enumerate(y.shape[:-1])]
        else:
            lines.append(f"{ctx.dim(y.shape[axis])} = bins_;")
        lines.append(ctx.reserve(0))
        sizes = f"view_.outer, view_.n, view_.inner, {ctx.dim(x.shape[-1])}, length_, bins_, kernels::DftKind::{kind}"
        if self.op.length_bound(ctx.inputs) is None:
            lines.append(f"kernels::dft_in_place({ctx.x(0)}, {ctx.y(0)}, {sizes});")
        else:
            lines.append(f"kernels::dft({ctx.x(0)}, {ctx.y(0)}, {sizes}, {ctx.w(0)});")
        return "\n".join(line for line in lines if line)


@emits(signal_ops.STFT)
class STFTEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.signal.STFT` (the header adds kernels/values.hxx, whose checks
    the code calls, where it reads a value input while running)."""

    kernels = ("signal",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        window = ctx.x(2) if len(ctx.inputs) > 2 and ctx.inputs[2] is not None else "nullptr"
        if self.op.at_run_time(ctx.inputs):
            return self.emit_run_time(ctx, window)
        step, length, frames, bins = self.op.layout(ctx.inputs)
        sizes = ", ".join(ctx.dim(d) for d in (x.shape[0], x.shape[1], x.shape[2], frames, step, length, bins))
        return f"kernels::stft<{ctx.ctype(x.dtype)}>({ctx.x(0)}, {window}, {ctx.y(0)}, {sizes}, {ctx.w(0)});"

    def emit_run_time(self, ctx: NodeContext, window: str) -> str:
        """frame_step or frame_length read while running: checked (a frame_length against the window and the
        signal), then the frame count and the bins, the output's run-time dims."""
        x, y = ctx.inputs[0], ctx.outputs[0]
        signal = ctx.dim(x.shape[1])
        known_step = None if ctx.inputs[1].value is None else int(np.asarray(ctx.inputs[1].value).reshape(-1)[0])
        ctx.declarations.append(f"const size_t step_ = {_scalar_value(ctx, 1, 'frame_step', known_step)};")
        known = self.op.frame_length(ctx.inputs)
        read = len(ctx.inputs) > 3 and ctx.inputs[3] is not None and ctx.inputs[3].value is None
        lines = [f"const size_t length_ = {_scalar_value(ctx, 3, 'frame_length', known) if read else ctx.dim(known)};"]
        if read and window != "nullptr":
            lines += [f"if (length_ != {ctx.dim(known)})",
                      f'   kernels::value_error({ctx.where}, "frame_length is " + std::to_string(length_) + '
                      f'", but the window has " + std::to_string({ctx.dim(known)}) + " values");']
        if read:
            lines += [f"if (length_ > {signal})",
                      f'   kernels::value_error({ctx.where}, "frame_length is " + std::to_string(length_) + '
                      f'", longer than the signal (" + std::to_string({signal}) + ")");']
        _, frames, bins, _ = y.shape
        lines.append(f"{ctx.dim(frames)} = 1 + (static_cast<size_t>({signal}) - length_) / step_;")
        if read and window == "nullptr":  # no window fixes the frame length: the bins are a run-time dim
            lines.append(f"{ctx.dim(bins)} = {'length_ / 2 + 1' if self.attrs.get('onesided', 1) else 'length_'};")
        lines.append(ctx.reserve(0))
        sizes = ", ".join([ctx.dim(x.shape[0]), signal, ctx.dim(x.shape[2]), ctx.dim(frames), "step_", "length_",
                           ctx.dim(bins)])
        lines.append(f"kernels::stft<{ctx.ctype(x.dtype)}>({ctx.x(0)}, {window}, {ctx.y(0)}, {sizes}, {ctx.w(0)});")
        return "\n".join(line for line in lines if line)


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
