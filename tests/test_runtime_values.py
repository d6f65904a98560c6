"""A model whose Reshape, Resize and Slice parameters are graph inputs, compiled once and run at several sizes.

The values arrive with the data, as in a preprocessing graph that crops and rescales calorimeter images to a
size chosen per call: Slice's starts/ends crop the image, Resize's sizes rescale it, Reshape's shape
flattens it, and a reduction over run-time axes sums it.  Every call must equal onnxruntime's, on both
backends, and a bad value must be a ShapeError naming the node.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ATOL, RTOL, make_model, ort_run, random_array
from onnx import helper

import sofie_rdf as sr

I64 = np.int64


def _model():
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["crop"], name="crop"),
             helper.make_node("Resize", ["crop", "", "", "sizes"], ["scaled"], mode="linear", axes=[2, 3],
                              name="rescale"),
             helper.make_node("Reshape", ["scaled", "shape"], ["flat"], name="flatten"),
             helper.make_node("Relu", ["flat"], ["y"]),
             helper.make_node("ReduceSum", ["scaled", "sum_axes"], ["total"], keepdims=0, name="total")]
    inputs = [("x", np.float32, ["N", 2, "H", "W"]), ("starts", I64, [2]), ("ends", I64, [2]), ("axes", I64, [2]),
              ("sizes", I64, [2]), ("shape", I64, [2]), ("sum_axes", I64, [2])]
    return make_model(nodes, inputs, [("y", np.float32, None), ("total", np.float32, None)], opset=18)


def _feeds(n: int, h: int, w: int, crop: tuple, size: tuple) -> dict:
    return {"x": random_array((n, 2, h, w), seed=h * w), "starts": np.array(crop[:2], I64),
            "ends": np.array(crop[2:], I64), "axes": np.array([2, 3], I64), "sizes": np.array(size, I64),
            "shape": np.array([n, -1], I64), "sum_axes": np.array([2, 3], I64)}


CALLS = [(1, 12, 12, (2, 2, 10, 10), (4, 4)), (3, 9, 16, (0, 4, -1, 12), (6, 3)), (2, 20, 8, (5, 0, 15, 8), (10, 16))]


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_parameters_as_graph_inputs(backend):
    model = _model()
    sess = sr.compile(sr.load(model), backend=backend)
    for call in CALLS:
        feeds = _feeds(*call)
        got = sess.infer(*(feeds[i.name] for i in sess.inputs))
        for a, b in zip(got, ort_run(model, feeds)):
            assert a.shape == b.shape, call
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=str(call))


@pytest.mark.parametrize("change, message", [
    ({"sizes": np.array([-1, 4], I64)}, r"Resize node 'rescale'.*sizes\[0\] is -1"),
    ({"shape": np.array([5, -1], I64)}, r"Reshape node 'flatten'"),
    ({"sum_axes": np.array([2, 2], I64)}, r"ReduceSum node 'total'.*axis 2 is given twice"),
])
def test_bad_values_name_the_node(change, message):
    sess = sr.compile(sr.load(_model()), backend="jit")
    feeds = _feeds(*CALLS[0]) | change
    with pytest.raises(sr.ShapeError, match=message):
        sess.infer(*(feeds[i.name] for i in sess.inputs))
