"""Keras 3 front end (torch backend): convolution, pooling, image reshaping and normalization layers.

Each test builds one Functional model whose outputs cover many options of a
layer family (one compiled model instead of one per option), with weights
perturbed by ``_seeded``, and compares sofie-rdf with ``model.predict`` from the
object and the ``.keras`` and ``.h5`` files, float32, rtol 1e-4 / atol 1e-5.
Channels-first variants read a second input laid out channels-first.
"""

from __future__ import annotations

import pytest

import sofie_rdf as sr
from tests.test_keras import _data, _seeded

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _model(name: str, inputs: dict, outputs: dict):
    """A Functional model with one output per entry of ``outputs`` (label: (input name, layer)), in order."""
    tensors = {key: keras.Input(shape, name=key) for key, shape in inputs.items()}
    outs = [layer(tensors[key]) for key, layer in outputs.values()]
    return _seeded(keras.Model(list(tensors.values()), outs, name=name))


def _check(check_keras, model, inputs: dict) -> None:
    check_keras(model, [_data(*shape, seed=k) for k, shape in enumerate(inputs.values())])


def test_conv1d(check_keras):
    inputs = {"x": (11, 4), "xf": (4, 11)}
    conv = layers.Conv1D
    outputs = {
        "valid": ("x", conv(5, 3)),
        "same_s2": ("x", conv(3, 3, strides=2, padding="same", activation="relu")),
        "same_k4_s3": ("x", conv(3, 4, strides=3, padding="same", use_bias=False)),
        "same_d2": ("x", conv(3, 3, dilation_rate=2, padding="same", activation="tanh")),
        "causal_d2": ("x", conv(3, 3, dilation_rate=2, padding="causal")),
        "causal_s2": ("x", conv(2, 2, strides=2, padding="causal")),
        "groups": ("x", conv(6, 3, groups=2, padding="same", activation="softmax")),
        "first": ("xf", conv(3, 3, strides=2, padding="same", data_format="channels_first", activation="sigmoid")),
        "first_groups": ("xf", conv(4, 2, groups=4, data_format="channels_first")),
    }
    _check(check_keras, _model("conv1d", inputs, outputs), inputs)


def test_conv2d(check_keras):
    inputs = {"x": (7, 8, 4), "xf": (4, 7, 8)}
    conv = layers.Conv2D
    outputs = {
        "valid": ("x", conv(3, (3, 2))),
        "same_s2": ("x", conv(3, 3, strides=2, padding="same", activation="relu")),
        "same_k4_s2x3": ("x", conv(2, 4, strides=(2, 3), padding="same", use_bias=False)),
        "same_d2": ("x", conv(3, 3, dilation_rate=(2, 3), padding="same", activation="elu")),
        "valid_d2": ("x", conv(3, 2, dilation_rate=2)),
        "groups": ("x", conv(4, 3, groups=2, padding="same", activation="softmax")),
        "first": ("xf", conv(3, 3, strides=2, padding="same", data_format="channels_first", activation="relu")),
        "first_groups": ("xf", conv(6, (2, 3), groups=2, dilation_rate=2, data_format="channels_first")),
    }
    _check(check_keras, _model("conv2d", inputs, outputs), inputs)


def test_conv3d(check_keras):
    inputs = {"x": (5, 6, 5, 2), "xf": (2, 5, 6, 5)}
    conv = layers.Conv3D
    outputs = {
        "valid": ("x", conv(3, (2, 3, 2))),
        "same_s2": ("x", conv(2, 3, strides=2, padding="same", activation="relu")),
        "same_d2": ("x", conv(2, 2, dilation_rate=2, padding="same", groups=2)),
        "first": ("xf", conv(3, 3, strides=(1, 2, 2), padding="same", data_format="channels_first")),
    }
    _check(check_keras, _model("conv3d", inputs, outputs), inputs)


def test_conv_transpose(check_keras):
    inputs = {"x1": (6, 3), "x2": (5, 4, 3), "xf": (3, 5, 4), "x3": (3, 4, 3, 2)}
    t1, t2, t3 = layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose
    outputs = {
        "t1_same_s2": ("x1", t1(2, 3, strides=2, padding="same")),
        "t1_valid_s3": ("x1", t1(3, 2, strides=3, activation="relu")),
        "t1_valid_k2_s3": ("x1", t1(2, 4, strides=3, use_bias=False)),
        "t2_same_s2": ("x2", t2(3, 3, strides=2, padding="same", activation="relu")),
        "t2_same_k4_s2": ("x2", t2(2, 4, strides=2, padding="same")),
        "t2_valid_s2x1": ("x2", t2(2, (3, 2), strides=(2, 1))),
        "t2_out_pad": ("x2", t2(2, 3, strides=3, padding="same", output_padding=(1, 2))),
        "t2_valid_out_pad": ("x2", t2(2, 3, strides=2, output_padding=1)),
        "t2_d2": ("x2", t2(2, 3, dilation_rate=2, padding="same")),
        "t2_d2_valid": ("x2", t2(2, 2, dilation_rate=(2, 1))),
        "t2_first": ("xf", t2(2, 3, strides=2, padding="same", data_format="channels_first")),
        "t3_same_s2": ("x3", t3(2, 3, strides=2, padding="same")),
        "t3_valid": ("x3", t3(2, 2, strides=(1, 2, 1))),
    }
    _check(check_keras, _model("conv_transpose", inputs, outputs), inputs)


def test_depthwise_separable(check_keras):
    inputs = {"x1": (9, 3), "x2": (7, 6, 3), "xf": (3, 7, 6)}
    outputs = {
        "dw1": ("x1", layers.DepthwiseConv1D(3, depth_multiplier=2, padding="same", strides=2)),
        "dw1_d2": ("x1", layers.DepthwiseConv1D(2, dilation_rate=2, activation="relu")),
        "dw2": ("x2", layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu")),
        "dw2_same_s2": ("x2", layers.DepthwiseConv2D((3, 2), strides=2, padding="same", use_bias=False)),
        "dw2_first": ("xf", layers.DepthwiseConv2D(2, depth_multiplier=3, data_format="channels_first")),
        "sep1": ("x1", layers.SeparableConv1D(4, 3, depth_multiplier=2, padding="same", activation="tanh")),
        "sep2": ("x2", layers.SeparableConv2D(4, 3, strides=2, padding="same")),
        "sep2_d2": ("x2", layers.SeparableConv2D(2, 2, dilation_rate=2, depth_multiplier=2, use_bias=False)),
        "sep2_first": ("xf", layers.SeparableConv2D(3, 3, data_format="channels_first", activation="relu")),
    }
    _check(check_keras, _model("depthwise_separable", inputs, outputs), inputs)


def test_pooling(check_keras):
    """Pool 3 / stride 2 on 8 values pads unevenly: Keras's torch backend averages edge-replicated values there."""
    inputs = {"x1": (8, 3), "x2": (8, 7, 3), "xf": (3, 8, 7), "x3": (4, 6, 5, 2)}
    outputs = {}
    for kind in ("Max", "Average"):
        for rank, key, size in ((1, "x1", 3), (2, "x2", (3, 2)), (3, "x3", 2)):
            pool = getattr(layers, f"{kind}Pooling{rank}D")
            outputs[f"{kind}{rank}_valid"] = (key, pool(size))
            outputs[f"{kind}{rank}_same_s2"] = (key, pool(size, strides=2, padding="same"))
            outputs[f"{kind}{rank}_same_s1"] = (key, pool(size, strides=1, padding="same"))
        outputs[f"{kind}2_valid_s1"] = ("x2", getattr(layers, f"{kind}Pooling2D")(2, strides=1))
        outputs[f"{kind}2_first"] = ("xf", getattr(layers, f"{kind}Pooling2D")(3, 2, "same", "channels_first"))
    _check(check_keras, _model("pooling", inputs, outputs), inputs)


def test_global_pooling(check_keras):
    inputs = {"x1": (5, 3), "x2": (4, 5, 3), "xf": (3, 4, 5), "x3": (3, 4, 2, 3)}
    outputs = {}
    for kind in ("Max", "Average"):
        for rank, key in ((1, "x1"), (2, "x2"), (3, "x3")):
            pool = getattr(layers, f"Global{kind}Pooling{rank}D")
            outputs[f"{kind}{rank}"] = (key, pool())
            outputs[f"{kind}{rank}_keep"] = (key, pool(keepdims=True))
        outputs[f"{kind}2_first"] = ("xf", getattr(layers, f"Global{kind}Pooling2D")(data_format="channels_first"))
        outputs[f"{kind}2_first_keep"] = ("xf", getattr(layers, f"Global{kind}Pooling2D")("channels_first", True))
    _check(check_keras, _model("global_pooling", inputs, outputs), inputs)


def test_upsampling_padding_cropping(check_keras):
    inputs = {"x1": (5, 3), "x2": (4, 5, 3), "xf": (3, 4, 5), "x3": (3, 4, 2, 3)}
    outputs = {
        "up1": ("x1", layers.UpSampling1D(3)),
        "up2_nearest": ("x2", layers.UpSampling2D((2, 3))),
        "up2_bilinear": ("x2", layers.UpSampling2D((3, 2), interpolation="bilinear")),
        "up2_bicubic": ("x2", layers.UpSampling2D(2, interpolation="bicubic")),
        "up2_first": ("xf", layers.UpSampling2D(2, data_format="channels_first", interpolation="bilinear")),
        "up3": ("x3", layers.UpSampling3D((1, 2, 3))),
        "pad1": ("x1", layers.ZeroPadding1D((1, 2))),
        "pad2": ("x2", layers.ZeroPadding2D(((2, 0), (1, 3)))),
        "pad2_first": ("xf", layers.ZeroPadding2D(1, data_format="channels_first")),
        "pad3": ("x3", layers.ZeroPadding3D(((1, 0), (0, 1), (2, 1)))),
        "crop1": ("x1", layers.Cropping1D((1, 2))),
        "crop2": ("x2", layers.Cropping2D(((1, 0), (1, 2)))),
        "crop2_first": ("xf", layers.Cropping2D(((0, 2), (2, 0)), data_format="channels_first")),
        "crop3": ("x3", layers.Cropping3D(((1, 1), (0, 2), (1, 0)))),
    }
    _check(check_keras, _model("upsampling_padding_cropping", inputs, outputs), inputs)


NORM_INPUTS = {"x1": (6,), "x2": (4, 6), "x3": (3, 4, 6), "xf": (6, 3, 4)}


def test_normalization(check_keras):
    outputs = {
        "bn_dense": ("x1", layers.BatchNormalization()),
        "bn_seq": ("x2", layers.BatchNormalization(center=False)),
        "bn_image": ("x3", layers.BatchNormalization(scale=False, epsilon=0.01)),
        "bn_axis1": ("x3", layers.BatchNormalization(axis=1)),
        "bn_first": ("xf", layers.BatchNormalization(axis=1)),
        "ln": ("x2", layers.LayerNormalization()),
        "ln_eps": ("x3", layers.LayerNormalization(epsilon=0.1)),  # a single inner axis fails in Keras (torch layer_norm)
        "ln_no_scale": ("x2", layers.LayerNormalization(scale=False)),
        "ln_no_center": ("x3", layers.LayerNormalization(center=False)),
        "rms": ("x2", layers.RMSNormalization()),
        "gn": ("x3", layers.GroupNormalization(groups=3)),
        "gn_first": ("xf", layers.GroupNormalization(groups=2, axis=1, center=False)),
        "unit": ("x2", layers.UnitNormalization()),
        "unit_axes": ("x3", layers.UnitNormalization(axis=[1, 2])),
    }
    _check(check_keras, _model("normalization", NORM_INPUTS, outputs), NORM_INPUTS)


def test_normalization_axis_lists(check_keras):
    """Not from .h5: Keras cannot read back the weights of Layer/RMSNormalization with a list of axes from .h5."""
    outputs = {
        "ln_trailing": ("x3", layers.LayerNormalization(axis=[-2, -1], epsilon=0.1)),
        "ln_inner": ("x3", layers.LayerNormalization(axis=[1, 3], center=False)),
        "ln_rms": ("x3", layers.LayerNormalization(axis=[2, 3], rms_scaling=True)),
        "rms_axes": ("x3", layers.RMSNormalization(axis=[2, 3])),  # inner axes fail in Keras itself (torch rms_norm)
    }
    inputs = {"x3": NORM_INPUTS["x3"]}
    check_keras(_model("normalization_axis_lists", inputs, outputs), _data(*inputs["x3"]), sources=("object", "keras"))


def test_small_cnn_keeps_channels_first(check_keras):
    """Conv / BatchNorm / activation layers / MaxPool / image reshaping / Conv / GlobalAveragePooling / Dense:
    one Transpose, at the input."""
    model = _seeded(keras.Sequential([
        keras.Input((8, 8, 3), name="image"),
        layers.Conv2D(4, 3, padding="same"),
        layers.BatchNormalization(),
        layers.ReLU(max_value=4.0),
        layers.Activation("swish"),
        layers.LeakyReLU(0.1),
        layers.Dropout(0.2),
        layers.MaxPooling2D(2),
        layers.UpSampling2D(2, interpolation="bilinear"),
        layers.Cropping2D(((1, 0), (0, 1))),
        layers.ZeroPadding2D(1),
        layers.Conv2D(6, 3, activation="relu"),
        layers.BatchNormalization(),
        layers.GlobalAveragePooling2D(),
        layers.Dense(3, activation="softmax"),
    ], name="small_cnn"))
    check_keras(model, _data(8, 8, 3))
    ops = [n.op_type for n in sr.load(model).ir.nodes]
    assert ops.count("Transpose") == 1, ops
