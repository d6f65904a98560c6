"""CausalConvWithState and DeformConv.

Reference: CausalConvWithState (opset 27) is not in onnxruntime 1.31, so onnx.reference.ReferenceEvaluator
checks it (float32, float16, and float64 which the reference computes alike); DeformConv (opsets 19, 22) is checked
against onnxruntime.  Covered: activation none/silu/swish, optional bias and past_state, k = 1 (empty
state), symbolic batch and length; DeformConv group, offset_group, dilations, pads, strides,
kernel_shape, optional bias and mask, symbolic batch; folding of both; errors."""

import numpy as np
import pytest
from conftest import make_model, sofie_run
from onnx import helper
from onnx.reference import ReferenceEvaluator

import sofie_rdf as sr
from sofie_rdf.errors import SofieError

RNG = np.random.default_rng(7)
FLOATS = (np.float32, np.float64)


def _rand(shape, dtype):
    return RNG.standard_normal(shape).astype(dtype)


def _check_reference(model, feeds, rtol=1e-5, atol=1e-6):
    """Compare with onnx.reference.ReferenceEvaluator (for ops onnxruntime lacks)."""
    ours = sofie_run(model, feeds)
    ref = ReferenceEvaluator(model).run(None, feeds)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _causal_model(dtype, k, bias, past, batch=2, channels=3, length=5, **attrs):
    names = ["x", "w", "b" if bias else "", "s" if past else ""]
    while names[-1] == "":
        names.pop()
    inputs = [("x", dtype, [batch, channels, length]), ("w", dtype, [channels, 1, k])]
    inputs += [("b", dtype, [channels])] if bias else []
    inputs += [("s", dtype, [batch, channels, k - 1])] if past else []
    node = helper.make_node("CausalConvWithState", names, ["y", "state"], **attrs)
    return make_model([node], inputs, [("y", dtype, None), ("state", dtype, None)], opset=27)


def _causal_feeds(dtype, k, bias, past, batch=2, channels=3, length=5):
    feeds = {"x": _rand((batch, channels, length), dtype), "w": _rand((channels, 1, k), dtype)}
    if bias:
        feeds["b"] = _rand((channels,), dtype)
    if past:
        feeds["s"] = _rand((batch, channels, k - 1), dtype)
    return feeds


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("activation", [None, "none", "silu", "swish"])
@pytest.mark.parametrize("bias,past", [(False, False), (True, False), (False, True), (True, True)])
def test_causal_conv(dtype, activation, bias, past):
    attrs = {} if activation is None else {"activation": activation}
    _check_reference(_causal_model(dtype, 4, bias, past, **attrs), _causal_feeds(dtype, 4, bias, past))


@pytest.mark.parametrize("k,length", [(1, 4), (2, 1), (6, 3)])
def test_causal_conv_kernel_sizes(k, length):
    """k = 1 has an empty state; inputs shorter than k - 1 keep part of the past in the new state."""
    model = _causal_model(np.float32, k, True, True, length=length, activation="silu")
    _check_reference(model, _causal_feeds(np.float32, k, True, True, length=length))


@pytest.mark.parametrize("activation", ["none", "silu"])
def test_causal_conv_float16(activation):
    """float16 is computed in float and rounded once, when stored."""
    model = _causal_model(np.float16, 3, True, True, activation=activation)
    _check_reference(model, _causal_feeds(np.float16, 3, True, True), rtol=1e-2, atol=1e-2)


def test_causal_conv_symbolic():
    model = _causal_model(np.float32, 3, True, True, batch="B", length="L")
    for batch, length in ((1, 1), (3, 7)):
        _check_reference(model, _causal_feeds(np.float32, 3, True, True, batch=batch, length=length))


def test_causal_conv_folded():
    feeds = _causal_feeds(np.float64, 3, True, True)
    model = _causal_model(np.float64, 3, True, True, activation="silu")
    folded = make_model(model.graph.node, [], [("y", np.float64, None), ("state", np.float64, None)],
                        initializers=feeds, opset=27)
    _check_reference(folded, {})


@pytest.mark.parametrize("change,match", [
    ({"activation": "relu"}, "activation"),
    ({"w_shape": [3, 2, 4]}, r"\(channels, 1, k\)"),
    ({"s_shape": [2, 3, 2]}, "past_state"),
])
def test_causal_conv_errors(change, match):
    node = helper.make_node("CausalConvWithState", ["x", "w", "", "s"], ["y", "state"],
                            **({"activation": change["activation"]} if "activation" in change else {}))
    inputs = [("x", np.float32, [2, 3, 5]), ("w", np.float32, change.get("w_shape", [3, 1, 4])),
              ("s", np.float32, change.get("s_shape", [2, 3, 3]))]
    model = make_model([node], inputs, [("y", np.float32, None), ("state", np.float32, None)], opset=27)
    with pytest.raises(SofieError, match=match):
        sofie_run(model, {})


# ---- DeformConv -------------------------------------------------------------

def _deform_case(dtype, batch=2, channels=4, size=(6, 5), features=4, kernel=(3, 2), group=1, offset_group=1,
                 strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), bias=True, mask=True, opset=19,
                 symbolic=False, kernel_shape=False):
    grid = tuple((s + pb + pe - (k - 1) * d - 1) // st + 1
                 for s, pb, pe, k, d, st in zip(size, pads[:2], pads[2:], kernel, dilations, strides))
    taps = kernel[0] * kernel[1]
    shapes = {"x": (batch, channels) + size, "w": (features, channels // group) + kernel,
              "offset": (batch, offset_group * taps * 2) + grid}
    if bias:
        shapes["b"] = (features,)
    if mask:
        shapes["mask"] = (batch, offset_group * taps) + grid
    feeds = {k: _rand(s, dtype) for k, s in shapes.items()}
    feeds["offset"] *= 1.5  # some taps land outside the image
    names = ["x", "w", "offset", "b" if bias else "", "mask" if mask else ""]
    while names[-1] == "":
        names.pop()
    attrs = dict(group=group, offset_group=offset_group, strides=list(strides), pads=list(pads),
                 dilations=list(dilations))
    if kernel_shape:
        attrs["kernel_shape"] = list(kernel)
    node = helper.make_node("DeformConv", names, ["y"], **attrs)
    inputs = [(k, dtype, ["N", *s[1:]] if symbolic and k in ("x", "offset", "mask") else list(s))
              for k, s in shapes.items()]
    return make_model([node], inputs, [("y", dtype, None)], opset=opset), feeds


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("opset", [19, 22])
@pytest.mark.parametrize("bias,mask", [(False, False), (True, False), (False, True), (True, True)])
def test_deform_conv(check_model, dtype, opset, bias, mask):
    model, feeds = _deform_case(dtype, bias=bias, mask=mask, opset=opset)
    check_model(model, feeds)


@pytest.mark.parametrize("options", [
    dict(group=2), dict(offset_group=2), dict(group=2, offset_group=4), dict(strides=(2, 1)),
    dict(pads=(1, 0, 2, 1)), dict(dilations=(2, 1)), dict(kernel_shape=True), dict(kernel=(1, 1)),
    dict(group=4, features=8, strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 2)),
])
def test_deform_conv_attributes(check_model, options):
    model, feeds = _deform_case(np.float32, **options)
    check_model(model, feeds)


def test_deform_conv_constant_weights(check_model):
    """Constant weights stay as the model gives them: the layouts Conv's kernels store weights in (panels,
    Winograd tiles) are not DeformConv's."""
    _, feeds = _deform_case(np.float32, channels=16, features=4, size=(9, 9), kernel=(3, 3), mask=False)
    w = feeds.pop("w")
    node = helper.make_node("DeformConv", ["x", "w", "offset", "b"], ["y"])
    const = make_model([node], [(k, np.float32, list(v.shape)) for k, v in feeds.items() if k != "b"],
                       [("y", np.float32, None)], {"w": w, "b": feeds.pop("b")}, opset=19)
    assert "_packed" not in sr.load(const).code().header
    check_model(const, feeds)


def test_deform_conv_symbolic_batch(check_model):
    model, _ = _deform_case(np.float32, symbolic=True)
    for batch in (1, 3):
        check_model(model, _deform_case(np.float32, batch=batch)[1])


def test_deform_conv_folded(check_folded):
    model, feeds = _deform_case(np.float64, group=2, offset_group=2, pads=(1, 1, 0, 0))
    check_folded(model, feeds)


@pytest.mark.parametrize("options,match", [
    (dict(offset_group=3), "not divisible by offset_group"),
    (dict(group=3, channels=6, features=4), "and group 3 do not agree"),
    (dict(mask_channels=5), "mask of shape"),
])
def test_deform_conv_errors(options, match):
    mask_channels = options.pop("mask_channels", None)
    model, feeds = _deform_case(np.float32, **options)
    if mask_channels:
        model.graph.input[-1].type.tensor_type.shape.dim[1].dim_value = mask_channels
    with pytest.raises(SofieError, match=match):
        sofie_run(model, feeds)


def test_deform_conv_3d_refused():
    node = helper.make_node("DeformConv", ["x", "w", "offset"], ["y"])
    model = make_model([node], [("x", np.float32, [1, 1, 3, 3, 3]), ("w", np.float32, [1, 1, 1, 1, 1]),
                                ("offset", np.float32, [1, 3, 3, 3, 3])], [("y", np.float32, None)], opset=19)
    with pytest.raises(SofieError, match="only 2-D"):
        sofie_run(model, {})
