"""The ai.onnx.preview.training optimizers Momentum, Adagrad and Adam: one update step.

Inputs are the learning rate R and step count T (scalars, read at run time),
then, for n tensors, the n values X, the n gradients G and the n of each
optimizer state; outputs are the n new X then the n of each new state.  The
formulas are the spec's (``onnx.reference``), applied tensor by tensor.
"""

from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from ..ir.dtypes import FLOAT_TYPES
from .base import Op
from .registry import register

TRAINING_DOMAIN = "ai.onnx.preview.training"


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(dims_equal(p, q) for p, q in zip(a, b))


class _Optimizer(Op):
    """Shared input layout and checks; subclasses name their states, attributes and formula."""

    domain = TRAINING_DOMAIN
    states: ClassVar[int] = 1        # optimizer states per tensor (V, H, ...)
    params: ClassVar[tuple[str, ...]] = ()  # the formula's float attributes, in the order ``reference`` reads them

    def tensors(self, count: int) -> int:
        """How many tensors the node updates (inputs: R, T, then X, G and the states per tensor)."""
        n, rest = divmod(count - 2, 2 + self.states)
        if rest or n < 1:
            raise self.error(f"{count} inputs do not split into R, T and {2 + self.states} groups of tensors")
        return n

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        n = self.tensors(len(inputs))
        r, t = inputs[0], inputs[1]
        if r.dtype not in FLOAT_TYPES[:2] or r.size != 1 or t.dtype != np.int64 or t.size != 1:
            raise self.error(f"R must be a float or double scalar and T an int64 scalar, got {r} and {t}")
        out = []
        for group in range(2 + self.states):
            for k in range(n):
                x, other = inputs[2 + k], inputs[2 + group * n + k]
                if other.dtype != x.dtype or x.dtype not in FLOAT_TYPES[:2] or not _same_shape(other.shape, x.shape):
                    raise self.error(f"tensor {k}: {other} does not match X {x} (float or double, same shape)")
                if group != 1:  # outputs: X and the states, not the gradients
                    out.append(TensorType(x.dtype, x.shape))
        if len(self.node.outputs) > len(out):
            raise self.error(f"{len(self.node.outputs)} outputs, at most {len(out)} expected")
        return out[:len(self.node.outputs)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        n = self.tensors(len(values))
        r, t = float(np.asarray(values[0]).reshape(-1)[0]), int(np.asarray(values[1]).reshape(-1)[0])
        updated = [self.reference(r, t, *values[2 + k::n][:2 + self.states]) for k in range(n)]
        out = [updated[k][j].astype(values[2 + k].dtype) for j in range(1 + self.states) for k in range(n)]
        return out[:len(self.node.outputs)]

    def reference(self, r: float, t: int, x: np.ndarray, g: np.ndarray, *states: np.ndarray) -> list[np.ndarray]:
        """The new X and states of one tensor."""
        raise NotImplementedError


@register
class Momentum(_Optimizer):
    """SGD with momentum, ``mode`` "standard" or "nesterov"; ``norm_coefficient`` adds L2 regularization."""

    op_type = "Momentum"
    params = ("alpha", "beta", "norm_coefficient")

    def nesterov(self) -> bool:
        mode = self.attrs["mode"]
        if mode not in ("standard", "nesterov"):
            raise self.error(f"mode must be 'standard' or 'nesterov', got {mode!r}")
        return mode == "nesterov"

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        self.nesterov()
        return super().infer(inputs)

    def reference(self, r, t, x, g, v):
        alpha, beta, norm = (self.attrs[p] for p in self.params)
        grad = norm * x + g
        v_new = alpha * v + (beta if t > 0 else 1) * grad
        return [x - r * (grad + alpha * v_new if self.nesterov() else v_new), v_new]


@register
class Adagrad(_Optimizer):
    """Adagrad with a learning rate decaying as ``r / (1 + t * decay_factor)``."""

    op_type = "Adagrad"
    params = ("decay_factor", "epsilon", "norm_coefficient")

    def reference(self, r, t, x, g, h):
        decay, epsilon, norm = (self.attrs[p] for p in self.params)
        grad = norm * x + g
        h_new = h + grad * grad
        return [x - r / (1 + t * decay) * grad / (np.sqrt(h_new) + epsilon), h_new]


@register
class Adam(_Optimizer):
    """Adam with bias correction after the first step and an optional final decay (``norm_coefficient_post``)."""

    op_type = "Adam"
    states = 2
    params = ("alpha", "beta", "epsilon", "norm_coefficient", "norm_coefficient_post")

    def reference(self, r, t, x, g, v, h):
        alpha, beta, epsilon, norm, norm_post = (self.attrs[p] for p in self.params)
        grad = norm * x + g
        v_new = alpha * v + (1 - alpha) * grad
        h_new = beta * h + (1 - beta) * grad * grad
        rate = r * np.sqrt(1 - beta**t) / (1 - alpha**t) if t > 0 else r
        return [(1 - norm_post) * (x - rate * (v_new / (np.sqrt(h_new) + epsilon))), v_new, h_new]
