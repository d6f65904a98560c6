"""Keras preprocessing layers that are arithmetic at inference, and the augmentation layers that are identities there.

``Rescaling`` and ``Normalization`` are an affine map on broadcast constants,
``CenterCrop`` a ``Slice``.  The random augmentation layers (``RandomFlip``,
``RandomRotation``, ``MixUp``, ...) transform images only when called with
``training=True``; ``model.predict`` calls them with ``training=False`` and
gets the input back, cast to the layer's compute dtype.  ``MaxNumBoundingBoxes``
pads or cuts bounding boxes only and returns images unchanged.  ``AutoContrast``
computes at inference too and is converted, as is
``ContrastLimitedAdaptiveHistogramEqualization`` (in :mod:`.clahe`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .builder import GraphBuilder, Tensor, call_arguments, cast, weight
from .registry import converts

# keras.backend.epsilon(): the floor Normalization puts under the standard deviation.
_EPSILON = 1e-7

# Augmentation layers whose transform applies only in training (checked with model.predict, Keras 3.15).
TRAINING_ONLY = (
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomCrop",
    "RandomContrast",
    "RandomBrightness",
    "RandomHue",
    "RandomSaturation",
    "RandomSharpness",
    "RandomPosterization",
    "RandomShear",
    "RandomColorDegeneration",
    "RandomColorJitter",
    "RandomGaussianBlur",
    "RandomPerspective",
    "RandomInvert",
    "RandomGrayscale",
    "RandomErasing",
    "RandomElasticTransform",
    "RandAugment",
    "AugMix",
    "CutMix",
    "MixUp",
    "Solarization",
)


def to_compute_dtype(b: GraphBuilder, x: str, call: Any, layer: Any) -> str:
    """``x`` cast to the layer's compute dtype where its input has another (Keras casts integer images first)."""
    return cast(b, x, call.input_tensors[0].dtype, layer.compute_dtype)


@converts(*TRAINING_ONLY)
def _training_only(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """The input, cast to the compute dtype: what these layers return with ``training=False``."""
    return to_compute_dtype(b, inputs[0].name, call, layer)


@converts("Identity", "MaxNumBoundingBoxes")
def _identity(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """The input: MaxNumBoundingBoxes pads or cuts bounding boxes only, and returns images as they came."""
    return inputs[0].name


@converts("Rescaling")
def _rescaling(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """``cast(x) * scale + offset``; Keras reshapes a per-channel scale (not the offset) to (C, 1, 1) when the
    global image data format is channels-first."""
    import keras

    scale = np.asarray(layer.scale, dtype=np.float32)
    if scale.ndim and keras.backend.image_data_format() == "channels_first":
        scale = scale.reshape(scale.shape + (1,) * (3 - scale.ndim))
    x = to_compute_dtype(b, inputs[0].name, call, layer)
    y = b.add("Mul", [x, b.const(scale, "scale")])
    return b.add("Add", [y, b.const(np.asarray(layer.offset, dtype=np.float32), "offset")])


@converts("Normalization")
def _normalization(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """``(x - mean) / max(sqrt(variance), epsilon)``, or with ``invert=True`` ``mean + x * max(...)``.

    ``layer.mean`` and ``layer.variance`` hold the statistics (adapted or
    given) already shaped to broadcast against the input, for any ``axis``.
    """
    mean, variance = weight(layer.mean), weight(layer.variance)
    spread = np.maximum(np.sqrt(variance), np.float32(_EPSILON)).astype(np.float32)
    x = to_compute_dtype(b, inputs[0].name, call, layer)
    if layer.invert:
        return b.add("Add", [b.const(mean, "mean"), b.add("Mul", [x, b.const(spread, "std")])])
    return b.add("Div", [b.add("Sub", [x, b.const(mean, "mean")]), b.const(spread, "std")])


@converts("CenterCrop")
def _center_crop(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """The central ``height x width`` window; Keras resizes images smaller than that instead (refused here)."""
    x = inputs[0]
    first = 1 if x.rank == 4 else 0  # Keras also accepts unbatched (rank-3) images
    axes = [first, first + 1] if layer.data_format == "channels_last" else [first + 1, first + 2]
    sizes = [x.shape[a] for a in axes]
    if None in sizes:
        raise ValueError(f"CenterCrop needs fixed image sizes, got shape {x.shape}")
    wanted = [int(layer.height), int(layer.width)]
    if any(s < w for s, w in zip(sizes, wanted)):
        raise ValueError(
            f"CenterCrop to {wanted} of images {sizes}: Keras resizes images smaller than the crop, which is not supported"
        )
    starts = [(s - w) // 2 for s, w in zip(sizes, wanted)]
    ends = [start + w for start, w in zip(starts, wanted)]
    return b.add(
        "Slice", [to_compute_dtype(b, x.name, call, layer), b.ints(starts, "starts"), b.ints(ends, "ends"), b.ints(axes, "axes")]
    )


@converts("Discretization")
def _discretization(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """The bin index of each value (``output_mode="int"``): how many boundaries are at or below it, as
    ``torch.bucketize(right=True)`` counts them."""
    if layer.output_mode != "int":
        raise ValueError(f"Discretization with output_mode={layer.output_mode!r} is not supported (only 'int')")
    boundaries = np.asarray(layer.bin_boundaries, dtype=str(call.input_tensors[0].dtype))
    x = b.add("Unsqueeze", [inputs[0].name, b.ints([-1], "axes")])
    above = b.add("Cast", [b.add("GreaterOrEqual", [x, b.const(boundaries, "bin_boundaries")])], {"to": 7})
    index = b.add("ReduceSum", [above, b.ints([-1], "axes")], {"keepdims": 0})
    return cast(b, index, "int64", call.output_tensors[0].dtype)


@converts("CategoryEncoding")
def _category_encoding(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """One-hot rows (a trailing axis of 1 dropped first), or their maximum (``multi_hot``) or sum (``count``)
    over axis 1 (axis 0 for 1-D input); indices outside ``[0, num_tokens)`` match no class."""
    if call_arguments(layer, call).get("count_weights") is not None:
        raise ValueError("CategoryEncoding with count_weights is not supported")
    x, mode = inputs[0], layer.output_mode
    ids = cast(b, x.name, call.input_tensors[0].dtype, "int64")
    if mode == "one_hot" and x.rank > 1 and x.shape[-1] == 1:
        ids = b.add("Squeeze", [ids, b.ints([-1], "axes")])
    classes = b.const(np.arange(int(layer.num_tokens), dtype=np.int64), "classes")
    hot = b.add("Cast", [b.add("Equal", [b.add("Unsqueeze", [ids, b.ints([-1], "axes")]), classes])], {"to": 1})
    if mode == "one_hot":
        y = hot
    elif mode in ("multi_hot", "count"):
        op_type = "ReduceMax" if mode == "multi_hot" else "ReduceSum"
        y = b.add(op_type, [hot, b.ints([1 if x.rank > 1 else 0], "axes")], {"keepdims": 0})
    else:
        raise ValueError(f"CategoryEncoding with output_mode={mode!r} is not supported")
    return cast(b, y, "float32", call.output_tensors[0].dtype)


def to_value_range(b: GraphBuilder, x: str, source: tuple, target: tuple) -> str:
    """Keras's ``_transform_value_range``: ``(x - lo) / (hi - lo) * (hi' - lo') + lo'``, nothing for equal ranges."""
    if tuple(source) == tuple(target):
        return x
    low, high = (np.float32(v) for v in source)
    unit = b.add("Div", [b.add("Sub", [x, b.const(low, "low")]), b.const(high - low, "width")])
    new_low, new_high = (np.float32(v) for v in target)
    return b.add("Add", [b.add("Mul", [unit, b.const(new_high - new_low, "new_width")]), b.const(new_low, "new_low")])


@converts("AutoContrast")
def _auto_contrast(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Each image channel stretched to the value range: in 0..255, ``clip((x - min) * 255 / (max - min), 0, 255)``
    with min and max over axes 1 and 2; channels where that is NaN (constant ones) keep their values."""
    if str(call.input_tensors[0].dtype) != "float32" or inputs[0].rank != 4:
        raise ValueError("AutoContrast is supported for batches of float32 images")
    original, value_range = inputs[0].name, tuple(layer.value_range)
    x = to_value_range(b, original, value_range, (0, 255))
    axes = b.ints([1, 2], "axes")
    low = b.add("ReduceMin", [x, axes], {"keepdims": 1})
    high = b.add("ReduceMax", [x, axes], {"keepdims": 1})
    scale = b.add("Div", [b.const(255.0, "full"), b.add("Sub", [high, low])])
    stretched = b.add("Sub", [b.add("Mul", [x, scale]), b.add("Mul", [low, scale])])
    clipped = b.add("Clip", [stretched, b.const(0.0, "zero"), b.const(255.0, "full")])
    y = to_value_range(b, clipped, (0, 255), value_range)
    return b.add("Where", [b.add("IsNaN", [y]), original, y])


# ONNX Resize attributes reproducing torch's F.interpolate(size=..., align_corners=False), which Keras's torch
# backend resizes with ("nearest" is torch's "nearest-exact": source index floor((i + 0.5) * in / out)).
_RESIZE_MODES = {
    "bilinear": {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
    "nearest": {"mode": "nearest", "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_ceil"},
    "bicubic": {"mode": "cubic", "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75},
}


@converts("Resizing")
def _resizing(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """ONNX ``Resize`` of the two image axes to ``(height, width)``, after the central crop of the target's
    aspect ratio where ``crop_to_aspect_ratio`` asks for one."""
    x = inputs[0]
    if layer.interpolation not in _RESIZE_MODES:
        raise ValueError(f"interpolation {layer.interpolation!r} is not supported (known: {', '.join(_RESIZE_MODES)})")
    if layer.antialias or layer.pad_to_aspect_ratio:
        raise ValueError("Resizing with antialias=True or pad_to_aspect_ratio=True is not supported")
    if x.rank != 4:
        raise ValueError(f"Resizing is supported for batches of images (rank 4), got shape {x.shape}")
    axes = [1, 2] if layer.data_format == "channels_last" else [2, 3]
    sizes = [x.shape[a] for a in axes]
    if None in sizes:
        raise ValueError(f"Resizing needs fixed image sizes, got shape {x.shape}")
    y = cast(b, x.name, call.input_tensors[0].dtype, "float32")
    target = [int(layer.height), int(layer.width)]
    if layer.crop_to_aspect_ratio:
        starts, ends = _aspect_crop(sizes, target)
        y = b.add("Slice", [y, b.ints(starts, "starts"), b.ints(ends, "ends"), b.ints(axes, "axes")])
    y = b.add("Resize", [y, "", "", b.ints(target, "sizes")], {"axes": axes, **_RESIZE_MODES[layer.interpolation]})
    return cast(b, y, "float32", call.output_tensors[0].dtype)


def _aspect_crop(sizes: list[int], target: list[int]) -> tuple[list[int], list[int]]:
    """The central box with the target's aspect ratio (Keras's torch backend's arithmetic)."""
    (height, width), (target_height, target_width) = sizes, target
    crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
    starts = [int(float(height - crop_height) / 2), int(float(width - crop_width) / 2)]
    return starts, [starts[0] + crop_height, starts[1] + crop_width]
