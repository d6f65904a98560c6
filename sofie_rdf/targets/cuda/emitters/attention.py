"""Attention on CUDA: one flash-attention-style kernel per node (``kernels/attention.cuh``), which never writes the
scores of the batch.  ``CudaTarget.attention_op`` lets planning fuse the exported chain (MatMul, scale, Softmax,
MatMul) into this node as it does for the CPU.

The kernel covers Attention without a KV cache: 3-D packed or 4-D inputs, grouped-query heads, a bool or additive
mask, the causal frontier and the sliding window, with Y the only output.  The past and present caches,
``nonpad_kv_seqlen``, ``softcap``, the scores as an output and a softmax in another precision are refused by
name (the exported chains the planner fuses have none of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ....ir import TensorType
from ....ops.attention import Attention, _at, _Layout
from ....ops.base import broadcast_strides
from ..emitter import CudaEmitter, emits
from ._structs import values as values_of

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext


@emits(Attention)
class AttentionEmitter(CudaEmitter):
    """``kernels::attention``: a block per (batch, head, 32 queries), the keys walked in tiles."""

    kernels = ("attention",)

    @classmethod
    def supports(cls, op: Any) -> bool:
        """Y alone from Q, K, V and an optional mask, without softcap; a ``softmax_precision`` must name the
        inputs' own type (checked when the code is written, where the types are known)."""
        node = op.node
        extra_inputs = any(_at(node.inputs, i) for i in (4, 5, 6))
        extra_outputs = any(_at(node.outputs, i) for i in (1, 2, 3))
        precision = op.attrs.get("softmax_precision")
        return not extra_inputs and not extra_outputs and not op.attrs.get("softcap") and precision in (None, 1, 11)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """None: the kernel reads K and V where they are and keeps one tile's scores in shared memory."""
        return []

    def emit(self, ctx: NodeContext) -> str:
        lay = self.op.layout(ctx.inputs)
        dt = ctx.inputs[0].dtype
        if self.op.softmax_dtype(dt) != dt:
            raise self.error(f"the CUDA Attention kernel computes the softmax in {dt}, not in "
                             f"{self.op.softmax_dtype(dt)}")
        mask = _at(ctx.inputs, 3)
        t = ctx.ctype(dt)
        m = ctx.ctype(mask.dtype) if mask is not None else t
        operands = {"q": (lay.q_heads, lay.q_len, lay.head_qk), "k": (lay.kv_heads, lay.kv_len, lay.head_qk),
                    "v": (lay.kv_heads, lay.kv_len, lay.head_v), "y": (lay.q_heads, lay.q_len, lay.head_v)}
        strides = {name: self._strides(ctx, lay.packed, *sizes) for name, sizes in operands.items()}
        sizes = ", ".join(ctx.dim(getattr(lay, f)) for f in ("batch", "q_heads", "kv_heads", "q_len", "kv_len",
                                                             "head_qk", "head_v"))
        left, right = self.attrs.get("left_window_size", -1), self.attrs.get("right_window_size", -1)
        fields = [f"{ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {ctx.y(0)},  // Q, K, V, Y",
                  f"{', '.join(strides[n] for n in ('q', 'k', 'v', 'y'))},  // their (batch, head, row) strides",
                  f"{sizes},  // batch, heads of Q and of K/V, queries, keys, head sizes of Q/K and of V",
                  f"{self._scale(ctx, lay)},  // scale",
                  f"{', '.join(self._mask(ctx, lay))},  // mask, its (batch, head, query) strides, its keys",
                  f"{str(bool(self.attrs['is_causal'])).lower()}, {left}, {right}}};  // causal, sliding window"]
        return "\n".join(["{", f"   const kernels::AttentionArgs<{t}, {m}> args_{{", *(f"      {f}" for f in fields),
                          "   kernels::attention(args_, stream_);", "}"])

    @staticmethod
    def _strides(ctx: NodeContext, packed: bool, heads: Any, rows: Any, head: Any) -> str:
        """The ``kernels::HeadStrides`` of an operand of ``heads`` heads, ``rows`` rows and ``head`` columns."""
        if packed:  # (batch, rows, heads * head)
            values = (rows * heads * head, head, heads * head)
        else:  # (batch, heads, rows, head)
            values = (heads * rows * head, rows * head, head)
        return values_of(ctx, values, "size_t")

    def _scale(self, ctx: NodeContext, lay: _Layout) -> str:
        """The scale: the attribute, else 1 / sqrt(head size), computed while running for a symbolic head size."""
        dt = ctx.inputs[0].dtype
        if self.attrs.get("scale") is not None or isinstance(lay.head_qk, int):
            return ctx.literal(self.op.scale(lay.head_qk), dt)
        t = ctx.ctype(dt)
        return f"{t}(1) / std::sqrt(static_cast<{t}>({ctx.dim(lay.head_qk)}))"

    @staticmethod
    def _mask(ctx: NodeContext, lay: _Layout) -> list[str]:
        """The mask's pointer, its (batch, head, query) strides and the keys it covers (null and zeros: none)."""
        mask = _at(ctx.inputs, 3)
        if mask is None:
            return ["nullptr", "{0, 0, 0}", "0"]
        rows = (lay.batch, lay.q_heads, lay.q_len)
        strides = broadcast_strides(mask.shape, rows + (mask.shape[-1],))[:3]
        return [ctx.x(3), values_of(ctx, strides, "size_t"), ctx.dim(mask.shape[-1])]
