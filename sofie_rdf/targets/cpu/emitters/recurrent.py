"""RNN, GRU and LSTM on the CPU: one ``kernels::Recurrence`` filled per node, one cell call per direction.

Constant W and R are stored transposed per direction (R also per block of gates: the products that
run before and after GRU's reset), the layout ``kernels/rnn.hxx``'s small products stream row by row; in native
register-tile code (float) R's blocks go in gemm_panels' panels instead, for the recurrence's products of a few
rows.  The emitter remembers which it packed, the IR keeps the ONNX layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from ....ir import TensorType
from ....ops import recurrent
from ..emitter import Emitter, emits
from .gemm import PANEL_COLUMNS

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


def functor(act: recurrent.Act, ctx: NodeContext) -> str:
    """The C++ functor of an activation, e.g. ``kernels::rnn_act::LeakyRelu{0.01f}`` (float parameters)."""
    params = [v for v, d in ((act.alpha, act.kind.alpha), (act.beta, act.kind.beta)) if d is not None]
    return f"kernels::rnn_act::{act.kind.name}{{{', '.join(ctx.literal(v, np.float32) for v in params)}}}"


def panels(block: np.ndarray) -> np.ndarray:
    """Each direction's (H, N) block of R in gemm_panels' panels (kernels/gemm.hxx: N in blocks of PANEL_COLUMNS
    columns, each H x PANEL_COLUMNS, the last zero-padded), flattened per direction."""
    directions, k, n = block.shape
    padded = np.zeros((directions, k, -(-n // PANEL_COLUMNS) * PANEL_COLUMNS), block.dtype)
    padded[:, :, :n] = block
    return padded.reshape(directions, k, -1, PANEL_COLUMNS).transpose(0, 2, 1, 3).reshape(directions, -1)


@emits(recurrent.Recurrent)
class RecurrentEmitter(Emitter):
    """The shared part: sizes, pointers, flags and scratch of ``Recurrence``; subclasses call their cell."""

    kernels = ("gemm", "rnn")

    def __init__(self, op: recurrent.Recurrent, target) -> None:
        super().__init__(op, target)
        self.packed_w = self.packed_r = self.panels_w = self.panels_r = False

    def block_gates(self) -> tuple[int, ...]:
        """Gates per recurrence product, in order (the blocks of a packed R)."""
        return (self.op.gates,)

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        """Constant W and R transposed per direction (R per block of gates) for the small-product kernel; float ones
        in gemm_panels' panels where the target has register tiles."""
        packed = {}
        if 1 in constants:
            w = constants[1].transpose(0, 2, 1)  # (directions, input, gates * H)
            self.panels_w = self.target.register_tiles and w.dtype == np.float32
            packed[1] = np.ascontiguousarray(panels(w) if self.panels_w else w).reshape(-1)
            self.packed_w = True
        if 2 in constants:
            r = constants[2]
            hidden = r.shape[2]
            self.panels_r = self.target.register_tiles and r.dtype == np.float32
            blocks, start = [], 0
            for g in self.block_gates():
                block = r[:, start * hidden:(start + g) * hidden, :].transpose(0, 2, 1)  # (directions, H, g * H)
                blocks.append(panels(block) if self.panels_r else block.reshape(r.shape[0], -1))
                start += g
            packed[2] = np.ascontiguousarray(np.concatenate(blocks, axis=1).reshape(-1))
            self.packed_r = True
        return packed or None

    def cell_call(self, ctx: NodeContext, d: int, reverse: bool, acts: list) -> str:
        return f"kernels::rnn(rec, {d}, {str(reverse).lower()}, {functor(acts[0], ctx)})"

    def weights(self, ctx: NodeContext) -> list[str]:
        """The statements that hand the kernel W and R."""
        return [f"rec.W = {ctx.x(1)}; rec.R = {ctx.x(2)};"]

    def emit(self, ctx: NodeContext) -> str:
        op = self.op
        s = op.sizes(ctx.inputs)
        x = ctx.inputs[0]
        t = ctx.ctype(x.dtype)
        shape = ", ".join([ctx.dim(s.seq), ctx.dim(s.batch), ctx.dim(s.input), ctx.dim(s.hidden), str(s.directions),
                           str(op.batch_major()).lower()])
        lines = [f"kernels::Recurrence<{t}> rec;", f"rec.shape = {{{shape}}};", f"rec.X = {ctx.x(0)};", *self.weights(ctx)]
        optional = {3: "B", 4: "lens", 5: "h0", 6: "c0", 7: "P"}
        present = [f"rec.{field} = {ctx.x(i)};" for i, field in optional.items()
                   if i < len(ctx.inputs) and ctx.inputs[i] is not None]
        lines += [" ".join(present)] if present else []
        flags = [f"rec.{k} = true;" for k, packed in (("packed_w", self.packed_w), ("packed_r", self.packed_r),
                                                          ("panels_w", self.panels_w), ("panels_r", self.panels_r))
                 if packed]
        if op.clip() is not None:
            flags.append(f"rec.clip = {ctx.literal(op.clip(), x.dtype)};")
        lines += [" ".join(flags)] if flags else []
        outs = [f"rec.{field} = {ctx.y(i)};" for i, field in enumerate(("Y", "Yh", "Yc"))
                if i < len(ctx.outputs) and ctx.outputs[i] is not None]
        lines += [" ".join(outs)] if outs else []
        lines.append(" ".join(f"rec.{name} = {ctx.w(k)};" for k, name in enumerate(op.scratch(s))))
        acts = op.activations()
        per_dir = len(op.default_activations)
        for d, reverse in enumerate(op.reverse_flags()):
            lines.append(self.cell_call(ctx, d, reverse, acts[d * per_dir:(d + 1) * per_dir]) + ";")
        return "{\n" + "\n".join(f"   {line}" for line in lines) + "\n}"


@emits(recurrent.GRU)
class GruEmitter(RecurrentEmitter):
    def block_gates(self) -> tuple[int, ...]:
        """Without linear_before_reset, the candidate's product runs after the reset: a block of its own."""
        return (3,) if self.op.linear_before_reset() else (2, 1)

    def cell_call(self, ctx: NodeContext, d: int, reverse: bool, acts: list) -> str:
        lbr = str(self.op.linear_before_reset()).lower()
        return f"kernels::gru(rec, {d}, {str(reverse).lower()}, {lbr}, {functor(acts[0], ctx)}, {functor(acts[1], ctx)})"


@emits(recurrent.LSTM)
class LstmEmitter(RecurrentEmitter):
    def cell_call(self, ctx: NodeContext, d: int, reverse: bool, acts: list) -> str:
        forget = str(bool(self.attrs.get("input_forget"))).lower()
        calls = ", ".join(functor(a, ctx) for a in acts)
        return f"kernels::lstm(rec, {d}, {str(reverse).lower()}, {forget}, {calls})"
