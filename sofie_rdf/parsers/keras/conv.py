"""Keras convolution, pooling, upsampling, padding and cropping layers.

Keras lays images out channels-last by default; the ONNX kernels read them
channels-first.  A convolution or pooling layer transposes its input to
``(N, C, spatial...)``, runs the ONNX operator there (with an element-wise
activation, which the code generator can fuse into the convolution) and
transposes back; the builder drops each pair of transposes that cancel between
consecutive layers.  Layers that only act along some axes (padding, cropping,
upsampling, global pooling) run in whatever layout their input already has
(:func:`.builder.untransposed`), so they do not break such a chain.

Keras stores a convolution kernel as ``(spatial..., in, out)`` and ONNX as
``(out, in, spatial...)``; a transposed convolution's Keras kernel is
``(spatial..., out, in)`` and ONNX's ``(in, out, spatial...)``: the same axis
permutation (:func:`_onnx_kernel`) serves both.

Padding follows what ``model.predict`` computes on the Keras torch backend:
``"same"`` pads ``total // 2`` before and the rest after (ONNX ``SAME_UPPER``,
as TensorFlow), ``"causal"`` pads ``(k - 1) * dilation`` before.  One case
differs from TensorFlow: ``"same"`` average pooling whose padding is uneven is
computed by Keras's torch backend on edge-replicated input, the replicated
values counted in the mean; we reproduce it (TensorFlow and JAX count only the
real values, as ONNX's ``count_include_pad=0``).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .builder import GraphBuilder, Tensor, untransposed, weight
from .core import AXIS_ACTIVATIONS, activation
from .registry import converts

# Slice end meaning "to the end of the axis".
TO_END = np.iinfo(np.int64).max

# ONNX Resize attributes matching each Keras UpSampling2D interpolation (torch's F.interpolate, align_corners=False).
RESIZE_MODES = {
    "nearest": {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
    "bilinear": {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
    "bicubic": {"mode": "cubic", "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75},
}

# ---- layout ---------------------------------------------------------------------------------------------------


def _data_format(layer: Any) -> str:
    """1-D layers without a ``data_format`` option (Cropping1D, UpSampling1D) are channels-last."""
    return getattr(layer, "data_format", "channels_last")


def _spatial_axes(rank: int, data_format: str) -> list[int]:
    return list(range(1, rank - 1)) if data_format == "channels_last" else list(range(2, rank))


def _to_channels_first(b: GraphBuilder, x: Tensor, data_format: str) -> str:
    if data_format == "channels_first":
        return x.name
    return b.transpose(x.name, [0, x.rank - 1, *range(1, x.rank - 1)])


def _from_channels_first(b: GraphBuilder, y: str, rank: int, data_format: str) -> str:
    if data_format == "channels_first":
        return y
    return b.transpose(y, [0, *range(2, rank), 1])


def _finish(b: GraphBuilder, layer: Any, call: Any, y: str) -> str:
    """The layer's activation on the channels-first result ``y``, and the result in the Keras layout.

    Element-wise activations run before the transpose back, so that it can
    cancel with the next layer's; those acting along the channel axis after it.
    """
    shape = tuple(call.output_tensors[0].shape)
    fmt, fn = layer.data_format, layer.activation
    if getattr(fn, "__name__", fn) in AXIS_ACTIVATIONS:
        return activation(b, Tensor(_from_channels_first(b, y, len(shape), fmt), shape), fn)
    first = shape if fmt == "channels_first" else (shape[0], shape[-1], *shape[1:-1])
    return _from_channels_first(b, activation(b, Tensor(y, first), fn), len(shape), fmt)


def _pairs(values: Sequence) -> list[tuple[int, int]]:
    """Keras padding/cropping amounts, ``(a, b)`` for one axis or ``((a, b), ...)`` for several."""
    return [tuple(values)] if isinstance(values[0], int) else [tuple(v) for v in values]


# ---- convolutions ---------------------------------------------------------------------------------------------


def _onnx_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras ``(spatial..., a, b)`` as ONNX ``(b, a, spatial...)``."""
    n = kernel.ndim - 2
    return np.ascontiguousarray(np.transpose(kernel, (n + 1, n, *range(n))))


def _bias(layer: Any) -> Optional[np.ndarray]:
    return weight(layer.bias) if layer.use_bias else None


def _window(layer: Any) -> dict[str, Any]:
    """Strides, dilations and padding of a convolution layer as ONNX Conv attributes."""
    attrs = {"strides": list(layer.strides), "dilations": list(layer.dilation_rate)}
    if layer.padding == "same":
        return {**attrs, "auto_pad": "SAME_UPPER"}
    n = len(layer.kernel_size)
    if layer.padding == "causal":
        return {**attrs, "pads": [(k - 1) * d for k, d in zip(layer.kernel_size, layer.dilation_rate)] + [0] * n}
    return {**attrs, "pads": [0] * (2 * n)}


def _conv_node(b: GraphBuilder, x: str, w: np.ndarray, bias: Optional[np.ndarray], attrs: dict[str, Any],
               op_type: str = "Conv") -> str:
    inputs = [x, b.const(w, "kernel")] + ([b.const(bias, "bias")] if bias is not None else [])
    return b.add(op_type, inputs, {"kernel_shape": list(w.shape[2:]), **attrs})


def _depthwise_node(b: GraphBuilder, layer: Any, x: str, kernel: np.ndarray, bias: Optional[np.ndarray]) -> str:
    """Keras kernel ``(spatial..., C, m)``: output channel ``c * m + j``, a Conv with ``C`` groups of one channel."""
    flat = kernel.reshape(*kernel.shape[:-2], 1, -1)
    return _conv_node(b, x, _onnx_kernel(flat), bias, {**_window(layer), "group": kernel.shape[-2]})


@converts("Conv1D", "Conv2D", "Conv3D")
def _conv(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    x = _to_channels_first(b, inputs[0], layer.data_format)
    w = _onnx_kernel(weight(layer.kernel))
    return _finish(b, layer, call, _conv_node(b, x, w, _bias(layer), {**_window(layer), "group": layer.groups}))


@converts("DepthwiseConv1D", "DepthwiseConv2D")
def _depthwise_conv(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    x = _to_channels_first(b, inputs[0], layer.data_format)
    return _finish(b, layer, call, _depthwise_node(b, layer, x, weight(layer.kernel), _bias(layer)))


@converts("SeparableConv1D", "SeparableConv2D")
def _separable_conv(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """A depthwise convolution (no bias), then a 1x1 convolution with the bias."""
    x = _to_channels_first(b, inputs[0], layer.data_format)
    depthwise = _depthwise_node(b, layer, x, weight(layer.depthwise_kernel), None)
    y = _conv_node(b, depthwise, _onnx_kernel(weight(layer.pointwise_kernel)), _bias(layer), {})
    return _finish(b, layer, call, y)


def _transposed_crops(k: int, stride: int, dilation: int, padding: str, output_padding: Optional[int]) -> tuple[int, int]:
    """What Keras removes from each end of the full transposed convolution (negative: zeros it adds).

    The full output has ``(n - 1) * stride + span`` values; Keras (as JAX,
    whose rule its torch backend copies) pads the dilated input by
    ``left, right`` where the full output pads it by ``span - 1`` on both sides.
    """
    span = (k - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        left, right = span - 1, span - 1 + extra
    else:
        total = stride + span - 2 if output_padding is None else span + span % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, span - 1)
        right = total - left
    return span - 1 - left, span - 1 - right


@converts("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def _conv_transpose(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """ONNX ``pads`` crop the full output; a negative crop at the end becomes ``output_padding``."""
    x = _to_channels_first(b, inputs[0], layer.data_format)
    n = len(layer.kernel_size)
    output_padding = layer.output_padding or (None,) * n
    crops = [_transposed_crops(*args, layer.padding, p)
             for args, p in zip(zip(layer.kernel_size, layer.strides, layer.dilation_rate), output_padding)]
    attrs = {"strides": list(layer.strides), "dilations": list(layer.dilation_rate),
             "pads": [c for c, _ in crops] + [max(c, 0) for _, c in crops],
             "output_padding": [max(-c, 0) for _, c in crops]}
    y = _conv_node(b, x, _onnx_kernel(weight(layer.kernel)), _bias(layer), attrs, op_type="ConvTranspose")
    return _finish(b, layer, call, y)


# ---- pooling --------------------------------------------------------------------------------------------------


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: ``ceil(size / stride)`` outputs, the odd value after."""
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _replicates_uneven_padding() -> bool:
    """Keras's torch backend averages over edge-replicated values where "same" padding is uneven."""
    import keras

    return keras.backend.backend() == "torch"


@converts("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
def _pool(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    x, fmt = inputs[0], layer.data_format
    y = _to_channels_first(b, x, fmt)
    op_type = "MaxPool" if layer.pool_mode == "max" else "AveragePool"
    attrs: dict[str, Any] = {"kernel_shape": list(layer.pool_size), "strides": list(layer.strides)}
    sizes = [x.shape[a] for a in _spatial_axes(x.rank, fmt)]
    if layer.padding.lower() != "same":
        attrs["pads"] = [0] * (2 * len(sizes))
    elif op_type == "MaxPool" or None in sizes:
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        begin, end = zip(*(_same_pads(*args) for args in zip(sizes, layer.pool_size, layer.strides)))
        if begin != end and _replicates_uneven_padding():
            y = b.add("Pad", [y, b.ints([0, 0, *begin, 0, 0, *end], "pads")], {"mode": "edge"})
            begin = end = (0,) * len(sizes)
        attrs["pads"] = [*begin, *end]
    return _from_channels_first(b, b.add(op_type, [y], attrs), x.rank, fmt)


@converts("GlobalAveragePooling1D", masks=True)
def _global_average_1d(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """With a mask, Keras's mean over the unmasked steps: their sum over their count (NaN where none is)."""
    x = inputs[0]
    if x.mask is None:
        return _global_pool(b, layer, inputs, call)
    step_axis = 1 if layer.data_format == "channels_last" else 2
    mask = b.add("Unsqueeze", [x.mask, b.ints([3 - step_axis], "axes")])
    weights = b.add("Cast", [mask], {"to": 1})
    axes, keep = b.ints([step_axis], "axes"), {"keepdims": int(bool(layer.keepdims))}
    total = b.add("ReduceSum", [b.add("Where", [mask, x.name, b.const(0.0, "zero")]), axes], keep)
    return b.add("Div", [total, b.add("ReduceSum", [weights, axes], keep)])


@converts("GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
          "GlobalMaxPooling3D")
def _global_pool(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """A reduction over the spatial axes, in the layout the input already has."""
    x = inputs[0]
    axes = _spatial_axes(x.rank, layer.data_format)
    op_type = "ReduceMax" if "Max" in type(layer).__name__ else "ReduceMean"
    source, perm = untransposed(b, x.name, x.rank)
    reduced = sorted(perm[a] for a in axes)
    y = b.add(op_type, [source, b.ints(reduced, "axes")], {"keepdims": int(bool(layer.keepdims))})
    if layer.keepdims:
        return b.transpose(y, perm)
    kept = [i for i in range(x.rank) if i not in reduced]
    return b.transpose(y, [kept.index(perm[a]) for a in range(x.rank) if a not in axes])


# ---- reshaping ------------------------------------------------------------------------------------------------


@converts("UpSampling1D", "UpSampling2D", "UpSampling3D")
def _upsampling(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """ONNX ``Resize`` by the integer factors (nearest repeats values, as Keras's ``ops.repeat``)."""
    x = inputs[0]
    interpolation = getattr(layer, "interpolation", "nearest")
    if interpolation not in RESIZE_MODES:
        raise ValueError(f"interpolation {interpolation!r} is not supported (known: {', '.join(RESIZE_MODES)})")
    size = (layer.size,) if isinstance(layer.size, int) else layer.size
    source, perm = untransposed(b, x.name, x.rank)
    scales = np.ones(x.rank, dtype=np.float32)
    for axis, factor in zip(_spatial_axes(x.rank, _data_format(layer)), size):
        scales[perm[axis]] = factor
    y = b.add("Resize", [source, "", b.const(scales, "scales")], RESIZE_MODES[interpolation])
    return b.transpose(y, perm)


@converts("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def _zero_padding(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    x = inputs[0]
    source, perm = untransposed(b, x.name, x.rank)
    pads = [0] * (2 * x.rank)
    for axis, (before, after) in zip(_spatial_axes(x.rank, _data_format(layer)), _pairs(layer.padding)):
        pads[perm[axis]], pads[x.rank + perm[axis]] = before, after
    return b.transpose(b.add("Pad", [source, b.ints(pads, "pads")], {"mode": "constant"}), perm)


@converts("Cropping1D", "Cropping2D", "Cropping3D")
def _cropping(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    x = inputs[0]
    source, perm = untransposed(b, x.name, x.rank)
    axes = [perm[a] for a in _spatial_axes(x.rank, _data_format(layer))]
    crops = _pairs(layer.cropping)
    starts = b.ints([before for before, _ in crops], "starts")
    ends = b.ints([-after if after else TO_END for _, after in crops], "ends")
    return b.transpose(b.add("Slice", [source, starts, ends, b.ints(axes, "axes")]), perm)


# ---- adaptive pooling -----------------------------------------------------------------------------------------


def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows along one axis: ``[floor(i * size / out), ceil((i + 1) * size / out))``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


@converts("AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
          "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D")
def _adaptive_pool(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """One axis at a time (a mean or max over a box is the mean or max of the means or maxima over its rows,
    every row being as long): each output position reduces its window, and the positions are concatenated."""
    x = inputs[0]
    op_type = "ReduceMax" if "Max" in type(layer).__name__ else "ReduceMean"
    y = x.name
    for axis, out in zip(_spatial_axes(x.rank, layer.data_format), layer.output_size):
        size = x.shape[axis]
        if size is None:
            raise ValueError(f"adaptive pooling needs fixed spatial sizes, got shape {x.shape}")
        axes = b.ints([axis], "axes")
        parts = [b.add(op_type, [b.add("Slice", [y, b.ints([start], "starts"), b.ints([end], "ends"), axes]), axes],
                       {"keepdims": 1})
                 for start, end in _adaptive_windows(int(size), int(out))]
        y = parts[0] if len(parts) == 1 else b.add("Concat", parts, {"axis": axis})
    return y
