"""Softmax and LogSoftmax against onnxruntime, in both opset semantics: before 13 the
input is coerced to 2-D at ``axis``; from 13 on it is normalised along ``axis`` alone."""

import numpy as np
import pytest
from conftest import make_model
from onnx import helper

SHAPE = (2, 3, 4, 5)
OPS = ["Softmax", "LogSoftmax"]


def _x(shape, seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)


def _model(op, shape, opset, dtype=np.float32, **attrs):
    return make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", dtype, list(shape))],
                      [("y", dtype, list(shape))], opset=opset)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -2, -3, -4])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", OPS)
def test_softmax_axes(check_model, op, opset, axis):
    check_model(_model(op, SHAPE, opset, axis=axis), {"x": _x(SHAPE, axis % 4)})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", OPS)
def test_softmax_default_axis(check_model, op, opset):
    """The default axis is 1 before opset 13 and -1 from 13 on."""
    check_model(_model(op, (3, 4, 5), opset), {"x": _x((3, 4, 5), 7)})


@pytest.mark.parametrize("op", OPS)
def test_softmax_old_opset(check_model, op):
    check_model(_model(op, (4, 6), 7, axis=1), {"x": _x((4, 6), 8)})


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_float64(check_model, op, opset):
    check_model(_model(op, (3, 4, 2), opset, np.float64, axis=1), {"x": _x((3, 4, 2), 9, np.float64)})


@pytest.mark.parametrize("shape", [(7,), (1, 1), (2, 1, 3)])
@pytest.mark.parametrize("op", OPS)
def test_softmax_small_shapes(check_model, op, shape):
    check_model(_model(op, shape, 13, axis=-1), {"x": _x(shape, 10)})


@pytest.mark.parametrize("n", [8, 15, 16, 17, 31, 33, 47, 50, 64, 65])
@pytest.mark.parametrize("op", OPS)
def test_softmax_rows_around_vector_widths(check_model, op, n):
    """Rows of the last axis shorter than, equal to and past whole vectors (AVX2's 8 floats, AVX-512's 16): the
    values past the last whole vector run as one vector ending at the row's end.  Masked logits (-inf) in the
    tail, and a row that is all -inf (NaN, as onnxruntime), check that no lane is counted twice or dropped."""
    x = _x((3, 5, n), n)
    x[0, 1, -3:] = -np.inf
    x[1, 2, :] = -np.inf
    x[2, 0, : n // 2] = -np.inf
    for backend in ("native", "jit"):
        check_model(_model(op, (3, 5, n), 13, axis=-1), {"x": x}, backend=backend)


@pytest.mark.parametrize("op", OPS)
def test_softmax_large_logits(check_model, op):
    """Logits far beyond exp's range: the maximum is subtracted first."""
    x = np.array([[1000.0, 999.0, -1000.0], [-500.0, -501.0, -499.0]], np.float32)
    check_model(_model(op, (2, 3), 13, axis=1), {"x": x})


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("opset, axis", [(11, 1), (13, 1), (13, -1), (11, -2), (13, 0)])
def test_softmax_symbolic_batch(check_model, batch, opset, axis):
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=axis), helper.make_node("LogSoftmax", ["x"], ["l"],
                                                                                       axis=axis),
             helper.make_node("Add", ["s", "l"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3, 4])], [("y", np.float32, ["N", 3, 4])], opset=opset)
    check_model(model, {"x": _x((batch, 3, 4), batch)})


@pytest.mark.parametrize("axis", [0, 2, -1])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", OPS)
def test_softmax_folded(check_folded, op, opset, axis):
    """Computed at generation time by the numpy reference."""
    check_folded(_model(op, SHAPE, opset, axis=axis), {"x": _x(SHAPE, 11)})
