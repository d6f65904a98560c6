"""CPU emitters of the operators in :mod:`sofie_rdf.ops.attention`."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ....ir import TensorType
from ....ops import attention as attention_ops
from ....ops.attention import _at, _Layout
from ....ops.base import broadcast_strides
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(attention_ops.Attention)
class AttentionEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.attention.Attention`."""

    kernels = ("attention",)

    def _rows_in_registers(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether float heads run in register blocks (kernels/attention.hxx: attention_head_rows): float32 with
        float softmax, in code from an optimising compiler (Cling's register code is slower than BLAS)."""
        dt = inputs[0].dtype
        return dt == np.float32 and self.op.softmax_dtype(dt) == dt and self.target.register_tiles

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """The operator's scratch, and one head's K transposed for the register blocks."""
        own = self.op.workspace(inputs, outputs)
        if not self._rows_in_registers(inputs):
            return own
        lay = self.op.layout(inputs)
        return own + [TensorType(inputs[0].dtype, (lay.head_qk, lay.kv_len))]

    def mask_fields(self, ctx: NodeContext, lay: _Layout) -> list[str]:
        mask = _at(ctx.inputs, 3)
        if mask is None:
            return []
        rows = (lay.batch, lay.q_heads, lay.q_len)
        strides = broadcast_strides(mask.shape, rows + (mask.shape[-1],))[:3]
        return [f"att.mask = {ctx.x(3)}; att.mask_len = {ctx.dim(mask.shape[-1])};",
                " ".join(f"att.mask_strides[{k}] = static_cast<std::ptrdiff_t>({ctx.dim(st)});" for k, st in enumerate(strides))]

    def scale_expr(self, ctx: NodeContext, lay: _Layout, dt: np.dtype) -> str:
        """C++ scale: the attribute, else 1 / sqrt(head size), computed at run time for a symbolic head size."""
        if self.attrs.get("scale") is not None or isinstance(lay.head_qk, int):
            return ctx.literal(self.op.scale(lay.head_qk), dt)
        t = ctx.ctype(dt)
        return f"{t}(1) / std::sqrt(static_cast<{t}>({ctx.dim(lay.head_qk)}))"

    def emit(self, ctx: NodeContext) -> str:
        lay = self.op.layout(ctx.inputs)
        dt = ctx.inputs[0].dtype
        mask = _at(ctx.inputs, 3)
        m = ctx.ctype(mask.dtype) if mask is not None else ctx.ctype(dt)
        sizes = " ".join(f"att.{f} = {ctx.dim(getattr(lay, f))};" for f in
                         ("batch", "q_heads", "kv_heads", "q_len", "past_len", "new_len", "head_qk", "head_v"))
        lines = [f"kernels::Attention<{ctx.ctype(dt)}, {m}, {ctx.ctype(self.op.softmax_dtype(dt))}> att;",
                 sizes,
                 f"att.packed = {str(lay.packed).lower()}; att.causal = {str(bool(self.attrs['is_causal'])).lower()};",
                 f"att.Q = {ctx.x(0)}; att.K = {ctx.x(1)}; att.V = {ctx.x(2)};"]
        if _at(ctx.inputs, 4) is not None:
            lines.append(f"att.past_key = {ctx.x(4)}; att.past_value = {ctx.x(5)};")
        lines += self.mask_fields(ctx, lay)
        if _at(ctx.inputs, 6) is not None:
            lines.append(f"att.nonpad = {ctx.x(6)};")
        left, right = self.attrs.get("left_window_size", -1), self.attrs.get("right_window_size", -1)
        lines.append(f"att.left = {left}; att.right = {right}; att.qk_mode = {self.attrs['qk_matmul_output_mode']};")
        lines.append(f"att.scale = {self.scale_expr(ctx, lay, dt)}; att.softcap = {ctx.literal(self.attrs['softcap'], dt)};")
        outs = [f"att.{f} = {ctx.y(i)};" for i, f in enumerate(("Y", "present_key", "present_value", "qk_out"))
                if _at(ctx.outputs, i) is not None]
        lines.append(" ".join(outs))
        scratch = self.op.scratch(ctx.inputs, ctx.outputs)
        lines.append(" ".join(f"att.{name} = {ctx.w(k)};" for k, name in enumerate(scratch)))
        if "present_key" in scratch and "present_value" in scratch:
            lines.append("att.presents_scratch = true;")
        if self._rows_in_registers(ctx.inputs):
            lines.append(f"att.key_t = {ctx.w(len(scratch))};")
        lines.append("kernels::attention(att);")
        return "{\n" + "\n".join(f"   {line}" for line in lines) + "\n}"


@emits(attention_ops.LinearAttention)
class LinearAttentionEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.attention.LinearAttention`."""

    kernels = ("attention",)

    def emit(self, ctx: NodeContext) -> str:
        b, steps, qh, kvh, dk, dv = self.op.sizes(ctx.inputs)
        dt = ctx.inputs[0].dtype
        lines = [f"kernels::LinearAttention<{ctx.ctype(dt)}> la;",
                 f"la.batch = {ctx.dim(b)}; la.steps = {ctx.dim(steps)}; la.q_heads = {qh}; la.kv_heads = {kvh}; "
                 f"la.dk = {dk}; la.dv = {dv};",
                 f"la.q = {ctx.x(0)}; la.k = {ctx.x(1)}; la.v = {ctx.x(2)}; la.scale = {ctx.literal(self.op.scale(dk), dt)};"]
        for i, name in ((3, "past"), (4, "decay"), (5, "beta")):
            if _at(ctx.inputs, i) is not None:
                width = f" la.{name}_width = {ctx.inputs[i].shape[2]};" if i > 3 else ""
                lines.append(f"la.{name} = {ctx.x(i)};{width}")
        state = ctx.y(1) if _at(ctx.outputs, 1) is not None else ctx.w(1)
        lines.append(f"la.y = {ctx.y(0)}; la.state = {state}; la.v_buf = {ctx.w(0)};")
        lines.append("kernels::linear_attention(la);")
        return "{\n" + "\n".join(f"   {line}" for line in lines) + "\n}"
