"""CPU emitters of the operators in :mod:`sofie_rdf.ops.einsum`."""

from __future__ import annotations

from ....ops import einsum as einsum_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(einsum_ops.Einsum)
class EinsumEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.einsum.Einsum`."""

    kernels = ("einsum",)

    def emit(self, ctx: NodeContext) -> str:
        plan = self.op.plan(ctx.inputs)
        t = ctx.ctype(ctx.outputs[0].dtype)
        operands = [ctx.x(i) for i, x in enumerate(ctx.inputs) if x is not None]
        sizes = ctx.array("letter_sizes", plan.sizes)
        strides = ctx.array("letter_strides", [s for row in plan.strides for s in row], "std::ptrdiff_t")
        equation = self.attrs["equation"]  # validated by plan(): letters, '.', ',', '->' and spaces only
        return (f"const {t} *const operands_[] = {{{', '.join(operands)}}};  // {equation}\n"
                f"kernels::einsum(operands_, {len(operands)}, {strides}, {sizes}, {plan.n_out}, {len(plan.letters)}, "
                f"{ctx.y(0)});")
