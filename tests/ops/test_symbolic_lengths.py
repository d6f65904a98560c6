"""Convolutions and pooling over spatial lengths known only when the code runs (named dims), against onnxruntime.

A 1-D convolution over a variable number of particles or time steps, or an image whose size varies, compiles
once: the output lengths are expressions of the input's (floors and ceilings of the geometry, SAME padding
computed while running), the layers take the im2col + BLAS path, which reads its geometry at run time, and a
length too short for the window is a ShapeError naming the node.  Each model here is compiled once per backend
and run at several lengths.
"""

import numpy as np
import pytest
from conftest import ATOL, RTOL, make_model, ort_run, random_array
from onnx import helper

import sofie_rdf as sr

LENGTHS = ((1, 7), (2, 12), (1, 5))  # (batch, length of every spatial dim)
NAMES = ("H", "W", "D")


def _run_at_lengths(model, rank: int, channels: int = 3, backends=("jit", "native")) -> None:
    for backend in backends:
        sess = sr.compile(sr.load(model), backend=backend)
        for n, size in LENGTHS:
            x = random_array((n, channels) + (size,) * rank, seed=size)
            want = ort_run(model, {"x": x})[0]
            got = sess.infer(x)
            assert got.shape == want.shape, f"{backend}, length {size}"
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{backend}, length {size}")


def _one_node(op: str, rank: int, weights: dict, **attrs):
    inputs = ["x", *weights]
    return make_model([helper.make_node(op, inputs, ["y"], **attrs)],
                      [("x", np.float32, ["N", 3, *NAMES[:rank]])], [("y", np.float32, None)], weights, opset=18)


@pytest.mark.parametrize("rank, attrs", [
    (1, {}), (1, {"pads": [1, 1]}), (1, {"strides": [2], "dilations": [2]}),
    (2, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}), (2, {"auto_pad": "SAME_LOWER"}),
    (2, {"pads": [1, 0, 2, 1], "strides": [2, 1]}), (3, {"pads": [1] * 6}),
])
def test_conv(rank, attrs):
    weights = {"w": random_array((4, 3) + (3,) * rank, seed=1), "b": random_array((4,), seed=2)}
    _run_at_lengths(_one_node("Conv", rank, weights, **attrs), rank)


@pytest.mark.parametrize("w_shape, group", [((4, 2, 3), 2),  # grouped: im2col per group
                                             ((8, 1, 3, 3), 4)])  # depthwise: the direct kernel
def test_conv_groups(w_shape, group):
    rank = len(w_shape) - 2
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=group, pads=[1] * (2 * rank))
    model = make_model([node], [("x", np.float32, ["N", 4, *NAMES[:rank]])], [("y", np.float32, None)],
                       {"w": random_array(w_shape, seed=1)})
    _run_at_lengths(model, rank, channels=4)


@pytest.mark.parametrize("rank, attrs", [
    (1, {}), (2, {"strides": [2, 2], "pads": [1, 1, 1, 1]}), (2, {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
])
def test_conv_transpose(rank, attrs):
    weights = {"w": random_array((3, 4) + (3,) * rank, seed=1), "b": random_array((4,), seed=2)}
    _run_at_lengths(_one_node("ConvTranspose", rank, weights, **attrs), rank)


@pytest.mark.parametrize("op, rank, attrs", [
    ("MaxPool", 1, {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}),
    ("MaxPool", 2, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ("MaxPool", 2, {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("MaxPool", 2, {"kernel_shape": [2, 2], "dilations": [2, 2]}),
    ("AveragePool", 2, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 0}),
    ("AveragePool", 2, {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "count_include_pad": 1}),
    ("AveragePool", 3, {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2]}),
    ("LpPool", 2, {"kernel_shape": [2, 2], "p": 2}),
    ("GlobalAveragePool", 2, {}), ("GlobalMaxPool", 2, {}), ("GlobalLpPool", 1, {"p": 3}),
])
def test_pool(op, rank, attrs):
    _run_at_lengths(_one_node(op, rank, {}, **attrs), rank)


def test_conv1d_network_over_particles():
    """Conv1d - Relu - MaxPool - Conv1d - GlobalAveragePool - Flatten - Gemm over a named number of particles."""
    w = {"w1": random_array((8, 4, 3), seed=1), "b1": random_array((8,), seed=2),
         "w2": random_array((16, 8, 3), seed=3), "b2": random_array((16,), seed=4),
         "wd": random_array((2, 16), seed=5), "bd": random_array((2,), seed=6)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2], strides=[2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], auto_pad="SAME_UPPER"),
             helper.make_node("Relu", ["c2"], ["r2"]), helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("Gemm", ["f", "wd", "bd"], ["y"], transB=1)]
    model = make_model(nodes, [("x", np.float32, ["N", 4, "particles"])], [("y", np.float32, None)], w)
    _run_at_lengths(model, 1, channels=4)


@pytest.mark.parametrize("op, weights, attrs", [
    ("MaxPool", {}, {"kernel_shape": [5]}),
    ("Conv", {"w": random_array((4, 3, 5), seed=1)}, {}),
])
def test_too_short_a_length_is_a_shape_error(op, weights, attrs):
    sess = sr.compile(sr.load(_one_node(op, 1, weights, **attrs)), backend="jit")
    assert sess.infer(random_array((1, 3, 5))).shape[-1] == 1
    with pytest.raises(sr.ShapeError, match=f"{op} node .* does not fit the padded input"):
        sess.infer(random_array((1, 3, 4)))
