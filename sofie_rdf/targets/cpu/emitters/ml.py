"""CPU emitters of the operators in :mod:`sofie_rdf.ops.ml`."""

from __future__ import annotations

import numpy as np

from ....ir.dims import num_elements
from ....ops import ml as ml_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits
from .trees import CPP_TRANSFORMS


@emits(ml_ops.ArrayFeatureExtractor)
class ArrayFeatureExtractorEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.ml.ArrayFeatureExtractor`."""

    kernels = ("ml",)

    def emit(self, ctx: NodeContext) -> str:
        x, y = ctx.inputs[0], ctx.outputs[0]
        rows, n, k = num_elements(x.shape[:-1]), x.shape[-1], y.shape[-1]
        return (f"kernels::array_feature_extractor({ctx.x(0)}, {ctx.x(1)}, {ctx.dim(rows)}, {ctx.dim(n)}, {ctx.dim(k)}, "
                f"{ctx.y(0)});")


def _rows_columns(ctx: NodeContext) -> tuple[str, str]:
    x = ctx.inputs[0]
    rows, columns = (1, x.shape[0]) if x.rank == 1 else x.shape
    return ctx.dim(rows), ctx.dim(columns)


def _floats(ctx: NodeContext, label: str, values: np.ndarray) -> str:
    """A static float array (one 0 when empty: C++ has no empty arrays)."""
    name = f"{label}_"
    items = ", ".join(ctx.literal(v, np.float32) for v in values) or "0.0f"
    ctx.declarations.append(f"static const float {name}[] = {{{items}}};")
    return name


@emits(ml_ops.Scaler)
class ScalerEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.ml.Scaler`."""

    kernels = ("trees",)

    def emit(self, ctx: NodeContext) -> str:
        rows, columns = _rows_columns(ctx)
        offset, scale = self.op.params(ctx.inputs[0].shape[-1])
        off, sc = _floats(ctx, "offset", offset), _floats(ctx, "scale", scale)
        return f"kernels::scaler({ctx.x(0)}, {off}, {offset.size}, {sc}, {scale.size}, {rows}, {columns}, {ctx.y(0)});"


@emits(ml_ops.Normalizer)
class NormalizerEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.ml.Normalizer`."""

    kernels = ("trees",)

    def emit(self, ctx: NodeContext) -> str:
        rows, columns = _rows_columns(ctx)
        return f"kernels::normalizer({ctx.x(0)}, {rows}, {columns}, {self.op.norm()}, {ctx.y(0)});"


class _LinearEmitter(Emitter):
    """Scores and post transforms (the tree ensembles' onnxruntime ones) with ``trees.hxx``."""

    kernels = ("trees",)

    def scores(self, ctx: NodeContext, z: str) -> list[str]:
        rows, columns = _rows_columns(ctx)
        coef, intercepts = self.op.weights(ctx.inputs[0].shape[-1])
        c, b = _floats(ctx, "coefficients", coef), _floats(ctx, "intercepts", intercepts)
        return [f"kernels::linear_scores({ctx.x(0)}, {c}, {b}, {intercepts.size}, {rows}, {columns}, "
                f"{self.op.n_scores()}, {z});"]

    def transform(self, ctx: NodeContext, z: str) -> list[str]:
        """The post transform in place: one column takes only PROBIT (onnxruntime)."""
        name, n = self.op.attrs.get("post_transform", "NONE"), self.op.n_scores()
        if name == "NONE" or (n == 1 and name != "PROBIT"):
            return []
        rows, _ = _rows_columns(ctx)
        cpp = f"kernels::TreeTransform::{CPP_TRANSFORMS[name]}"
        return [f"for (size_t r_ = 0; r_ < {rows}; ++r_) kernels::tree_transform({cpp}, {z} + r_ * {n}, {n}, {z} + r_ * {n});"]


@emits(ml_ops.LinearRegressor)
class LinearRegressorEmitter(_LinearEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.ml.LinearRegressor`."""

    def emit(self, ctx: NodeContext) -> str:
        return "\n".join(self.scores(ctx, ctx.y(0)) + self.transform(ctx, ctx.y(0)))


@emits(ml_ops.LinearClassifier)
class LinearClassifierEmitter(_LinearEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.ml.LinearClassifier`."""

    def emit(self, ctx: NodeContext) -> str:
        rows, _ = _rows_columns(ctx)
        labels = self.op.labels()
        ctx.declarations.append(f"static const int64_t labels_[] = {{{', '.join(f'INT64_C({v})' for v in labels) or '0'}}};")
        z = ctx.y(1)
        lines = self.scores(ctx, z)
        lines.append(f"kernels::linear_labels({z}, {rows}, {self.op.n_scores()}, labels_, {len(labels)}, {ctx.y(0)});")
        if self.op.binary():
            return "\n".join(lines + [f"kernels::linear_second_class({z}, {rows});"])
        return "\n".join(lines + self.transform(ctx, z))
