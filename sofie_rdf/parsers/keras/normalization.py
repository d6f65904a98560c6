"""Keras normalization layers: BatchNormalization, LayerNormalization, GroupNormalization, RMSNormalization,
UnitNormalization.

Inference BatchNormalization is a per-channel affine map.  When its channel
axis is axis 1 of the tensor it really acts on (a Dense output, or the
channels-first tensor behind a convolution's transpose back to channels-last)
it becomes ONNX ``BatchNormalization``, which the code generator folds into
the Conv or Gemm before it; elsewhere it is a ``Mul`` and an ``Add`` on
broadcast constants.  Either way it runs in the layout its input already has,
so a Conv / BatchNormalization / Conv chain keeps no transposes between them.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .builder import GraphBuilder, Tensor, axis_of, untransposed, weight
from .registry import converts


def _axes(axis: Any, rank: int) -> list[int]:
    """A Keras ``axis`` option (int or list) as sorted non-negative axes."""
    return sorted(axis_of(a, rank) for a in (axis if isinstance(axis, (list, tuple)) else [axis]))


def _optional(variable: Any) -> Optional[np.ndarray]:
    return None if variable is None else weight(variable)


@converts("BatchNormalization", masks=True)
def _batch_norm(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """``(x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta`` (a mask only weighs the batch
    statistics of training, so it changes nothing here)."""
    x = inputs[0]
    mean, variance = weight(layer.moving_mean), weight(layer.moving_variance)
    gamma = weight(layer.gamma) if layer.scale else np.ones_like(mean)
    beta = weight(layer.beta) if layer.center else np.zeros_like(mean)
    source, perm = untransposed(b, x.name, x.rank)
    channel = perm[axis_of(layer.axis, x.rank)]
    if channel == 1:
        params = [b.const(v, hint) for v, hint in ((gamma, "gamma"), (beta, "beta"), (mean, "mean"), (variance, "var"))]
        y = b.add("BatchNormalization", [source, *params], {"epsilon": float(layer.epsilon)})
    else:
        factor = gamma / np.sqrt(variance + np.float32(layer.epsilon))
        shape = [1] * x.rank
        shape[channel] = -1
        scaled = b.add("Mul", [source, b.const(factor.reshape(shape), "factor")])
        y = b.add("Add", [scaled, b.const((beta - mean * factor).reshape(shape), "shift")])
    return b.transpose(y, perm)


def _affine(b: GraphBuilder, y: str, x: Tensor, axes: list[int], gamma: Optional[np.ndarray],
            beta: Optional[np.ndarray]) -> str:
    """``y * gamma + beta``, the parameters (shaped like ``axes``) broadcast over the other axes."""
    shape = [x.shape[a] if a in axes else 1 for a in range(x.rank)]
    if gamma is not None:
        y = b.add("Mul", [y, b.const(gamma.reshape(shape), "gamma")])
    if beta is not None:
        y = b.add("Add", [y, b.const(beta.reshape(shape), "beta")])
    return y


def _inverse_root(b: GraphBuilder, mean_square: str, epsilon: float) -> str:
    return b.add("Reciprocal", [b.add("Sqrt", [b.add("Add", [mean_square, b.const(epsilon, "epsilon")])])])


def _mean(b: GraphBuilder, x: str, axes: str) -> str:
    return b.add("ReduceMean", [x, axes], {"keepdims": 1})


@converts("LayerNormalization")
def _layer_norm(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """ONNX ``LayerNormalization`` over trailing axes; mean and variance spelled out otherwise.

    Keras's deprecated ``rms_scaling=True`` divides the input (not centred) by
    its standard deviation, and has no beta.
    """
    x = inputs[0]
    axes = _axes(layer.axis, x.rank)
    gamma, beta, epsilon = _optional(layer.gamma), _optional(layer.beta), float(layer.epsilon)
    if axes == list(range(axes[0], x.rank)) and gamma is not None and not layer.rms_scaling:
        params = [b.const(gamma, "gamma")] + ([b.const(beta, "beta")] if beta is not None else [])
        return b.add("LayerNormalization", [x.name, *params], {"axis": axes[0], "epsilon": epsilon})
    axes_name = b.ints(axes, "axes")
    centred = b.add("Sub", [x.name, _mean(b, x.name, axes_name)])
    inverse = _inverse_root(b, _mean(b, b.add("Mul", [centred, centred]), axes_name), epsilon)
    y = b.add("Mul", [x.name if layer.rms_scaling else centred, inverse])
    return _affine(b, y, x, axes, gamma, beta)


@converts("RMSNormalization")
def _rms_norm(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """``x / sqrt(mean(x^2) + epsilon) * scale``."""
    x = inputs[0]
    axes = _axes(layer.axis, x.rank)
    mean_square = _mean(b, b.add("Mul", [x.name, x.name]), b.ints(axes, "axes"))
    y = b.add("Mul", [x.name, _inverse_root(b, mean_square, float(layer.epsilon))])
    return _affine(b, y, x, axes, weight(layer.scale), None)


@converts("GroupNormalization")
def _group_norm(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """ONNX ``GroupNormalization`` (opset 21: per-channel scale and bias) with the channel axis moved to 1."""
    x = inputs[0]
    axis = axis_of(layer.axis, x.rank)
    perm = [0, axis, *(a for a in range(1, x.rank) if a != axis)]
    channels = x.shape[axis]
    gamma = weight(layer.gamma) if layer.scale else np.ones(channels, dtype=np.float32)
    beta = weight(layer.beta) if layer.center else np.zeros(channels, dtype=np.float32)
    y = b.add("GroupNormalization", [b.transpose(x.name, perm), b.const(gamma, "gamma"), b.const(beta, "beta")],
              {"num_groups": int(layer.groups), "epsilon": float(layer.epsilon)})
    return b.transpose(y, np.argsort(perm).tolist())


@converts("UnitNormalization")
def _unit_norm(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """``x / max(||x||, 1e-12)``, Keras's ``x * min(rsqrt(sum(x^2)), 1e12)`` without an infinity."""
    x = inputs[0]
    squares = b.add("ReduceSum", [b.add("Mul", [x.name, x.name]), b.ints(_axes(layer.axis, x.rank), "axes")],
                    {"keepdims": 1})
    return b.add("Div", [x.name, b.add("Max", [b.add("Sqrt", [squares]), b.const(1e-12, "epsilon")])])
