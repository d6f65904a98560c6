"""CPU emitters of the operators in :mod:`sofie_rdf.ops.resize`."""

from __future__ import annotations

import numpy as np

from ....ops import resize as resize_ops
from ....ops.base import contiguous_strides
from ..context import NodeContext
from ..emitter import Emitter, emits


@emits(resize_ops._ResizeBase)
class ResizeBaseEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.resize._ResizeBase`."""

    kernels = ("resize",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        sizes, tables = self.op.tables(ctx.inputs)
        if any(isinstance(d, int) and d == 0 for d in sizes):
            return "// empty output: nothing to compute"
        lines, entries = [], []
        for axis, t in enumerate(tables):
            if t is None:
                entries.append("{0, nullptr, nullptr, nullptr}")
                continue
            index = ctx.array(f"index{axis}", [int(v) for v in t.index.reshape(-1)])
            weight = f"weight{axis}_"
            lines.append(f"static const double {weight}[] = {{{', '.join(repr(float(w)) for w in t.weight.reshape(-1))}}};")
            outside = "nullptr"
            if t.outside is not None:
                outside = ctx.array(f"outside{axis}", [int(v) for v in t.outside], "bool")
            entries.append(f"{{{t.index.shape[1]}, {index}, {weight}, {outside}}}")
        lines.append(f"const kernels::resize_axis axes_[] = {{{', '.join(entries)}}};")
        out_shape = ctx.array("out_shape", ctx.outputs[0].shape)
        strides = ctx.array("strides", contiguous_strides(x.shape), "std::ptrdiff_t")
        extrapolation = ctx.literal(self.op.extrapolation(), np.float64)
        lines.append(f"kernels::resize({ctx.x(0)}, {ctx.y(0)}, {out_shape}, {strides}, axes_, {x.rank}, "
                     f"{extrapolation});")
        return "\n".join(lines)
