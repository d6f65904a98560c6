"""CPU emitters of the operators in :mod:`sofie_rdf.ops.transformer`."""

from __future__ import annotations

from ....ir.dims import num_elements
from ....ops import transformer as transformer_ops
from ....ops.base import broadcast_strides, coalesce, contiguous_strides
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(transformer_ops.RMSNormalization)
class RMSNormalizationEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.transformer.RMSNormalization`."""

    kernels = ("transformer", "elementwise")

    def emit(self, ctx: NodeContext) -> str:
        x, scale, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        axis = self.op.axis(x)
        outer, n = num_elements(x.shape[:axis]), num_elements(x.shape[axis:])
        t, u, v = ctx.ctype(x.dtype), ctx.ctype(self.op.stash()), ctx.ctype(y.dtype)
        shape, (sy, ss) = coalesce(x.shape, contiguous_strides(x.shape), broadcast_strides(scale.shape, x.shape))
        dims = ctx.array("rms_shape", shape)
        sy_, ss_ = ctx.array("y_strides", sy, "std::ptrdiff_t"), ctx.array("scale_strides", ss, "std::ptrdiff_t")
        return "\n".join([
            f"kernels::rms_norm<{t}, {u}, {v}>({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(outer)}, {ctx.dim(n)}, "
            f"{ctx.literal(self.attrs['epsilon'], self.op.stash())});",
            f"kernels::binary_strided({ctx.y(0)}, {sy_}, {ctx.x(1)}, {ss_}, {ctx.y(0)}, {dims}, {len(shape)}, "
            f"[](const {v} a, const {v} b) {{ return a * b; }});  // * scale",
        ])


@emits(transformer_ops.RotaryEmbedding)
class RotaryEmbeddingEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.transformer.RotaryEmbedding`."""

    kernels = ("transformer",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        b, s, h, d, rot = self.op.sizes(x)
        pos = ctx.inputs[3] if len(ctx.inputs) > 3 else None
        lines = [f"kernels::Rotary<{ctx.ctype(x.dtype)}> rope;",
                 f"rope.batch = {ctx.dim(b)}; rope.seq = {ctx.dim(s)}; rope.heads = {ctx.dim(h)}; rope.head = {d}; "
                 f"rope.rot = {rot};",
                 f"rope.packed = {str(x.rank == 3).lower()}; rope.interleaved = {str(bool(self.attrs['interleaved'])).lower()};",
                 f"rope.x = {ctx.x(0)}; rope.cos = {ctx.x(1)}; rope.sin = {ctx.x(2)}; rope.y = {ctx.y(0)};"]
        if pos is not None:
            lines.append(f"rope.pos = {ctx.x(3)}; rope.max_pos = {ctx.dim(ctx.inputs[1].shape[0])};")
        lines.append("kernels::rotary_embedding(rope);")
        return "{\n" + "\n".join(f"   {line}" for line in lines) + "\n}"


@emits(transformer_ops.SwiGLU)
class SwiGLUEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.transformer.SwiGLU`."""

    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        dt = ctx.inputs[0].dtype
        t, alpha = ctx.ctype(dt), ctx.literal(self.attrs["alpha"], dt)
        f = f"[](const {t} a, const {t} b) {{ return a / ({t}(1) + std::exp(-({alpha} * a))) * b; }}"
        return f"kernels::binary({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {ctx.dim(ctx.outputs[0].size)}, {f});"
