"""Classification losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both read scores (N, C, d1, ..., dk) and labels (N, d1, ..., dk), seen as
(N, C, inner) so one loop covers every rank.  Labels are values only known at
run time: an implementation must range-check each one (ignore_index excepted)
instead of trusting them as offsets.
"""

from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from ..ir.dtypes import FLOAT_TYPES
from .base import Op
from .registry import register

_REDUCTIONS = ("none", "sum", "mean")
_LABEL_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


class _ClassLoss(Op):
    """Shared checks and numpy reference; ``log_softmax`` tells whether scores are raw logits."""

    log_softmax: ClassVar[bool] = False

    def reduction(self) -> str:
        r = self.attrs.get("reduction", "mean")
        if r not in _REDUCTIONS:
            raise self.error(f"reduction must be none, sum or mean, got {r!r}")
        return r

    def wants_log_prob(self) -> bool:
        return self.log_softmax and len(self.node.outputs) > 1 and bool(self.node.outputs[1])

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        scores, labels = inputs[0], inputs[1]
        weight = inputs[2] if len(inputs) > 2 else None
        if scores.dtype not in FLOAT_TYPES:
            raise self.error(f"scores must be float32 or float64, got {scores.dtype}")
        if labels.dtype not in _LABEL_TYPES:
            raise self.error(f"labels must be int32 or int64, got {labels.dtype}")
        if scores.rank < 2:
            raise self.error(f"scores must be (N, C, d1, ...), got shape {scores.shape}")
        expected = (scores.shape[0], *scores.shape[2:])
        if labels.rank != len(expected) or not all(dims_equal(a, b) for a, b in zip(labels.shape, expected)):
            raise self.error(f"labels shape {labels.shape} does not match scores {scores.shape} without the class axis")
        if weight is not None and (weight.rank != 1 or not dims_equal(weight.shape[0], scores.shape[1])
                                   or weight.dtype != scores.dtype):
            raise self.error(f"weight must be a ({scores.shape[1]},) {scores.dtype} tensor, got {weight.shape} {weight.dtype}")
        loss_shape = expected if self.reduction() == "none" else ()
        outs = [TensorType(scores.dtype, loss_shape)]
        if self.wants_log_prob():
            outs.append(TensorType(scores.dtype, scores.shape))
        return outs

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """Log-probabilities need a home when the log_prob output is not requested."""
        if self.log_softmax and not self.wants_log_prob():
            return [TensorType(inputs[0].dtype, inputs[0].shape)]
        return []

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        scores, labels = values[0], values[1].astype(np.int64)
        weight = values[2] if len(values) > 2 and values[2] is not None else np.ones(scores.shape[1])
        x = scores.astype(np.float64)
        if self.log_softmax:
            top = x.max(axis=1, keepdims=True)
            x = x - top - np.log(np.exp(x - top).sum(axis=1, keepdims=True))
        ignore = self.attrs.get("ignore_index")
        kept = labels != ignore if ignore is not None else np.ones(labels.shape, bool)
        if np.any((labels[kept] < 0) | (labels[kept] >= scores.shape[1])):
            raise self.error(f"labels must lie in [0, {scores.shape[1]}) (ignore_index {ignore} excepted)")
        safe = np.where(kept, labels, 0)
        w = np.where(kept, weight.astype(np.float64)[safe], 0.0)
        loss = -w * np.take_along_axis(x, safe[:, None], axis=1)[:, 0]
        reduced = {"none": loss, "sum": loss.sum(), "mean": loss.sum() / w.sum()}[self.reduction()]
        outs = [np.asarray(reduced).astype(scores.dtype)]
        if self.wants_log_prob():
            outs.append(x.astype(scores.dtype))
        return outs


@register
class NegativeLogLikelihoodLoss(_ClassLoss):
    """loss = -weight[label] * input[n, label, d...]; scores are already log-probabilities."""

    op_type = "NegativeLogLikelihoodLoss"
    since_version = 12


@register
class SoftmaxCrossEntropyLoss(_ClassLoss):
    """NegativeLogLikelihoodLoss of log_softmax(scores) over the class axis; log_prob is optional output 1."""

    op_type = "SoftmaxCrossEntropyLoss"
    since_version = 12
    log_softmax = True
