"""RNN, GRU and LSTM on CUDA (``kernels/rnn.cuh``): every attribute (directions, layout, sequence_lens, initial
states, peepholes, clip, input_forget, linear_before_reset, every activation with its alpha and beta).

Activations are device lambdas made from the element-wise expression table (``targets/_cxx/expressions.py``),
plus the two only recurrent layers have (Affine, ScaledTanh).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....ops import activations, elementwise, recurrent
from ..._cxx.expressions import expression
from ..emitter import CudaEmitter, emits

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext

# The operator whose expression computes each recurrent activation (ops.recurrent's names).
_ACTIVATION_OPS = {
    "Relu": elementwise.Relu, "Tanh": elementwise.Tanh, "Sigmoid": elementwise.Sigmoid,
    "LeakyRelu": elementwise.LeakyRelu, "ThresholdedRelu": activations.ThresholdedRelu,
    "HardSigmoid": activations.HardSigmoid, "Elu": elementwise.Elu, "Softsign": activations.Softsign,
    "Softplus": activations.Softplus,
}
# The activations only recurrent layers have.
_RECURRENT_ONLY = {"Affine": "{alpha} * x + {beta}", "ScaledTanh": "{alpha} * kernels::fast_tanh({beta} * x)"}


def activation(act: recurrent.Act, ctx: NodeContext, dtype) -> str:
    """The device lambda of one recurrent activation, its alpha and beta filled in."""
    name = act.kind.name
    expr = _RECURRENT_ONLY[name] if name in _RECURRENT_ONLY else expression(_ACTIVATION_OPS[name])
    t = ctx.ctype(dtype)
    body = expr.format(T=t, alpha=ctx.literal(act.alpha, dtype), beta=ctx.literal(act.beta, dtype))
    return f"[] __device__ (const {t} x) -> {t} {{ return {body}; }}"


@emits(recurrent.Recurrent)
class RecurrentEmitter(CudaEmitter):
    """``kernels::recurrence<Cell>``: the projection of every step, then the steps, per direction."""

    kernels = ("rnn",)

    def cell(self) -> str:
        """The kernel's cell: GRU's reset applied before or after its product are two cells."""
        if isinstance(self.op, recurrent.GRU):
            return "GruLinear" if self.op.linear_before_reset() else "Gru"
        return "Lstm" if isinstance(self.op, recurrent.LSTM) else "Rnn"

    def emit(self, ctx: NodeContext) -> str:
        op = self.op
        s = op.sizes(ctx.inputs)
        x = ctx.inputs[0]
        t = ctx.ctype(x.dtype)

        def given(i: int, kind: str = t) -> str:
            present = i < len(ctx.inputs) and ctx.inputs[i] is not None
            return ctx.x(i) if present else f"static_cast<const {kind} *>(nullptr)"

        def output(i: int) -> str:
            present = i < len(ctx.outputs) and ctx.outputs[i] is not None
            return ctx.y(i) if present else f"static_cast<{t} *>(nullptr)"

        scratch = dict(zip(op.scratch(s), (ctx.w(k) for k in range(len(op.scratch(s))))))
        none = f"static_cast<{t} *>(nullptr)"
        acts = [activation(a, ctx, x.dtype) for a in op.activations()]
        per_dir = len(op.default_activations)
        lambdas = (acts[:per_dir] + [f"[] __device__ (const {t} v) -> {t} {{ return v; }}"] * 3)[:3]
        reverse = ctx.array("reverse", [int(r) for r in op.reverse_flags()], "bool")
        shape = f"kernels::RnnShape{{{ctx.dim(s.seq)}, {ctx.dim(s.batch)}, {ctx.dim(s.hidden)}, {s.directions}, " \
                f"{str(op.batch_major()).lower()}}}"
        clip = ctx.literal(op.clip() or 0.0, x.dtype)
        forget = str(bool(self.attrs.get("input_forget"))).lower()
        args = [f"kernels::RnnCell::{self.cell()}", t, "decltype(f_)", "decltype(g_)", "decltype(h_)"]
        lines = [f"const auto f_ = {lambdas[0]};", f"const auto g_ = {lambdas[1]};", f"const auto h_ = {lambdas[2]};",
                 f"kernels::recurrence<{', '.join(args)}>(blas_, stream_, {shape}, {ctx.dim(s.input)}, {reverse}, "
                 f"{ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {given(3)}, {given(4, 'int32_t')}, {given(5)}, {given(6)}, "
                 f"{given(7)}, {clip}, {forget}, {output(0)}, {output(1)}, {output(2)}, {scratch['xw']}, {scratch['hr']}, "
                 f"{scratch['h']}, {scratch.get('c', none)}, {scratch.get('rh', none)}, f_, g_, h_);"]
        return "\n".join(lines)
