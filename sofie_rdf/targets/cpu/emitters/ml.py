"""CPU emitters of the operators in :mod:`sofie_rdf.ops.ml`."""

from __future__ import annotations

from ....ir.dims import num_elements
from ....ops import ml as ml_ops
from ..context import NodeContext
from ..emitter import Emitter, emits


@emits(ml_ops.ArrayFeatureExtractor)
class ArrayFeatureExtractorEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.ml.ArrayFeatureExtractor`."""

    kernels = ("ml",)

    def emit(self, ctx: NodeContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        rows, n, k = num_elements(x.shape[:-1]), x.shape[-1], y.shape[-1]
        return (f"kernels::array_feature_extractor({ctx.x(0)}, {ctx.x(1)}, {ctx.dim(rows)}, {ctx.dim(n)}, {ctx.dim(k)}, "
                f"{ctx.y(0)});")
