"""Normalization: BatchNormalization (inference), InstanceNormalization, GroupNormalization, LayerNormalization.

Statistics are two-pass and accumulated in double (the references and the CPU
code alike), so large means or long rows do not cost accuracy.  Batch, instance and group normalization read the
input as a ``(batch, channels, spatial)`` view; layer normalization as
``(outer, n)`` rows split at ``axis``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import UnsupportedOperatorError
from ..ir import TensorType
from ..ir.dims import Dim, dims_equal, num_elements
from ..ir.dtypes import FLOAT_TYPES, from_onnx
from .base import Op, normalize_axis
from .registry import register


def _optional(items: list, i: int):
    """Item ``i`` of an input/output list, None when omitted or absent."""
    return items[i] if i < len(items) else None


class _Normalization(Op):
    """Common checks of the normalization operators."""

    def check_float(self, x: TensorType) -> None:
        if x.dtype not in FLOAT_TYPES:
            raise self.error(f"input type {x.dtype} is not supported (float32 or float64 expected)")

    def check_size(self, t: Optional[TensorType], size: Dim, what: str) -> None:
        """A parameter tensor must hold exactly ``size`` values (one per channel or group)."""
        if t is None:
            raise self.error(f"{what} is required")
        if not dims_equal(num_elements(t.shape), size):
            raise self.error(f"{what} has shape {t.shape}, expected {size} values")

    def refuse(self, why: str) -> UnsupportedOperatorError:
        """A form of the operator this inference-only code cannot run (training outputs, ...)."""
        return UnsupportedOperatorError(self.model, {f"{self.node.qualified_type} ({why})": [self.node.name]})

    def channel_view(self, x: TensorType) -> tuple[Dim, Dim, Dim]:
        """(batch, channels, spatial) sizes of an ``N x C x D1 x ...`` input."""
        if x.rank < 2:
            raise self.error(f"input must have rank >= 2 (N x C x ...), got shape {x.shape}")
        return x.shape[0], x.shape[1], num_elements(x.shape[2:])


def _moments(x: np.ndarray, axes: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance in float64 (the kernels' precision)."""
    x = x.astype(np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    return mean, ((x - mean) ** 2).mean(axis=axes, keepdims=True)


# ---- BatchNormalization --------------------------------------------------------

@register
class BatchNormalization(_Normalization):
    """Inference form: y = (x - mean) / sqrt(var + epsilon) * scale + bias per channel.

    ``momentum`` only matters when training, which is refused: the extra
    outputs (running or saved statistics) exist only in training mode.
    Opset 7's ``spatial=0`` gives the parameters one value per feature
    (``C x D1 x ...``), read here as that many channels of spatial size 1.
    """

    op_type = "BatchNormalization"
    since_version = 7
    row_wise = True  # statistics are constants (training mode is refused)

    def training(self) -> bool:
        return bool(self.attrs.get("training_mode", 0)) or any(self.node.outputs[1:])

    def per_feature(self) -> bool:
        return self.attrs.get("spatial", 1) == 0

    def channels3(self, x: TensorType) -> tuple[Dim, Dim, Dim]:
        batch, channels, spatial = self.channel_view(x)
        if self.per_feature():
            return batch, num_elements(x.shape[1:]), 1
        return batch, channels, spatial

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        if self.training():
            raise self.refuse("training mode: training_mode=1 or running/saved statistics outputs")
        x = inputs[0]
        self.check_float(x)
        _, channels, _ = self.channels3(x)
        for i, what in enumerate(("scale", "B", "input_mean", "input_var"), start=1):
            t = _optional(inputs, i)
            self.check_size(t, channels, what)
            self.check_float(t)
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, scale, bias, mean, var = values[:5]
        shape = (1, -1) + (1,) * (x.ndim - 2) if not self.per_feature() else (1,) + x.shape[1:]
        p = [np.asarray(v, np.float64).reshape(shape) for v in (scale, bias, mean, var)]
        y = (x.astype(np.float64) - p[2]) / np.sqrt(p[3] + self.attrs["epsilon"]) * p[0] + p[1]
        return [y.astype(x.dtype)]


@register
class BatchNormalization_14(BatchNormalization):
    """Opset 14 adds ``training_mode`` (refused when 1); opset 15 lets scale/bias and mean/var types differ."""

    since_version = 14


# ---- InstanceNormalization and GroupNormalization ----------------------------------

class _GroupNorm(_Normalization):
    """Statistics over groups of consecutive channels, then a per-channel (or per-group) affine map."""

    row_wise = True  # statistics per sample

    def groups(self, channels: Dim) -> Dim:
        raise NotImplementedError

    def layout(self, inputs: list[Optional[TensorType]]) -> tuple[Dim, Dim, Dim, Dim, Dim]:
        """(batch, channels, groups, spatial, channels per parameter value)."""
        x = inputs[0]
        batch, channels, spatial = self.channel_view(x)
        groups = self.groups(channels)
        if isinstance(channels, int) and isinstance(groups, int):
            if groups <= 0 or channels % groups:
                raise self.error(f"{channels} channels cannot be split into {groups} groups")
        elif not dims_equal(channels, groups):
            raise self.error(f"the channel dim must be known to split it into groups, got {channels}")
        scale = _optional(inputs, 1)
        if scale is not None and dims_equal(num_elements(scale.shape), channels):
            per_param: Dim = 1
        else:
            per_param = channels // groups if isinstance(channels, int) else 1
            self.check_size(scale, groups, "scale")
        self.check_size(_optional(inputs, 2), num_elements(scale.shape), "bias")
        return batch, channels, groups, spatial, per_param

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        self.check_float(x)
        self.layout(inputs)
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, scale, bias = values[:3]
        types = [TensorType(v.dtype, v.shape) for v in values[:3]]
        batch, channels, groups, _, per_param = self.layout(types)
        grouped = x.reshape(batch, groups, -1)
        mean, var = _moments(grouped, (2,))
        normed = ((grouped - mean) / np.sqrt(var + self.attrs["epsilon"])).reshape(x.shape)
        shape = (1, channels) + (1,) * (x.ndim - 2)
        per_channel = [np.repeat(np.asarray(p, np.float64).reshape(-1), per_param).reshape(shape) for p in (scale, bias)]
        return [(normed * per_channel[0] + per_channel[1]).astype(x.dtype)]


@register
class InstanceNormalization(_GroupNorm):
    """y = scale[c] * (x - mean) / sqrt(var + epsilon) + B[c], statistics per sample and channel."""

    op_type = "InstanceNormalization"
    since_version = 6

    def groups(self, channels: Dim) -> Dim:
        return channels


@register
class GroupNormalization(_GroupNorm):
    """Statistics per sample and group of ``C / num_groups`` channels.

    Opset 18 gives scale and bias one value per group, opset 21 one per
    channel; the parameters' size tells which, so both versions share the code.
    """

    op_type = "GroupNormalization"
    since_version = 18

    def groups(self, channels: Dim) -> Dim:
        return self.attrs["num_groups"]


@register
class GroupNormalization_21(GroupNormalization):
    """Per-channel scale and bias; ``stash_type`` (statistics precision) is met by the double accumulation."""

    since_version = 21


# ---- LayerNormalization ------------------------------------------------------------

@register
class LayerNormalization(_Normalization):
    """Rows split at ``axis`` are normalised, then ``* Scale + B`` broadcast over the normalised shape.

    ``Mean`` and ``InvStdDev`` (optional outputs) have the normalised dims set
    to 1 and the element type named by ``stash_type``, as ONNX's shape
    inference gives them.
    """

    op_type = "LayerNormalization"
    since_version = 17

    def rows_independent(self, inputs: list[Optional[TensorType]]) -> bool:
        return normalize_axis(self, self.attrs["axis"], inputs[0].rank) >= 1  # axis 0 mixes the rows

    def axis(self, x: TensorType) -> int:
        return normalize_axis(self, self.attrs["axis"], x.rank)

    def param_size(self, t: Optional[TensorType], normalized: tuple, what: str) -> Dim:
        """Values in Scale or B, which must broadcast as a suffix of the normalised shape."""
        if t is None:
            raise self.error(f"{what} is required")
        dims = list(t.shape)
        while dims and isinstance(dims[0], int) and dims[0] == 1:
            dims.pop(0)
        tail = normalized[len(normalized) - len(dims):] if dims else ()
        if len(dims) > len(normalized) or not all(dims_equal(a, b) for a, b in zip(dims, tail)):
            raise self.error(f"{what} of shape {t.shape} does not broadcast as the normalised shape {normalized}")
        return num_elements(t.shape)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        self.check_float(x)
        axis = self.axis(x)
        normalized = x.shape[axis:]
        self.param_size(_optional(inputs, 1), normalized, "Scale")
        if _optional(inputs, 2) is not None:
            self.param_size(inputs[2], normalized, "B")
        stats = TensorType(from_onnx(self.attrs["stash_type"]), x.shape[:axis] + (1,) * len(normalized))
        if stats.dtype not in FLOAT_TYPES:
            raise self.error(f"stash_type {self.attrs['stash_type']} is not supported (float32 or float64 expected)")
        return [TensorType(x.dtype, x.shape), stats, TensorType(stats.dtype, stats.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x, scale = values[0], values[1]
        bias = _optional(values, 2)
        axis = self.axis(TensorType(x.dtype, x.shape))
        mean, var = _moments(x, tuple(range(axis, x.ndim)))
        inv_std = 1.0 / np.sqrt(var + self.attrs["epsilon"])
        y = ((x - mean) * inv_std).astype(x.dtype) * scale
        if bias is not None:
            y = y + bias
        stash = from_onnx(self.attrs["stash_type"])
        return [y.astype(x.dtype), mean.astype(stash), inv_std.astype(stash)]
