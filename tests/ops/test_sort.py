"""TopK against onnxruntime: axes, largest/smallest, ties (lower index first), K as attribute, as a
constant input and as a symbolic value computed from a shape, K = 0 and K = n, dtypes, NaN ranking."""

import numpy as np
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError, SofieError


def _topk_model(shape, k, axis=-1, largest=1, dtype=np.float32, opset=17, dims=None):
    rank = len(shape)
    out = list(dims or shape)
    out[axis % rank] = k
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=axis, largest=largest)
    return make_model([node], [("x", dtype, list(dims or shape))], [("values", dtype, out), ("indices", np.int64, out)],
                      {"k": np.array([k], np.int64)}, opset=opset)


def _check(model, feeds):
    ours, ref = sofie_run(model, feeds), ort_run(model, feeds)
    for a, b in zip(ours, ref):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("largest", [1, 0])
def test_topk_axes(axis, largest):
    x = np.random.default_rng(axis + 2 + 5 * largest).standard_normal((5, 6, 7)).astype(np.float32)
    _check(_topk_model(x.shape, 3, axis, largest), {"x": x})


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_topk_dtypes_and_ties(dtype):
    x = np.random.default_rng(1).integers(-3, 3, (4, 12)).astype(dtype)  # many ties
    for largest in (1, 0):
        _check(_topk_model(x.shape, 5, largest=largest, dtype=dtype), {"x": x})


@pytest.mark.parametrize("k", [0, 1, 9])
def test_topk_k_edges(k):
    x = np.random.default_rng(k).standard_normal((3, 9)).astype(np.float32)
    _check(_topk_model(x.shape, k), {"x": x})


def test_topk_attribute_form():
    x = np.random.default_rng(2).standard_normal((4, 10)).astype(np.float32)
    node = helper.make_node("TopK", ["x"], ["v", "i"], axis=1, k=4)
    model = make_model([node], [("x", np.float32, [4, 10])], [("v", np.float32, [4, 4]), ("i", np.int64, [4, 4])],
                       opset=9)
    _check(model, {"x": x})


def test_topk_symbolic_rows_and_k_from_shape():
    """kNN style: K = number of columns - 1 computed from Shape at generation time, rows symbolic."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["n"]),
             helper.make_node("Sub", ["n", "one"], ["k"]),
             helper.make_node("TopK", ["x", "k"], ["v", "i"], largest=0)]
    model = make_model(nodes, [("x", np.float32, ["N", 6])], [("v", np.float32, ["N", 5]), ("i", np.int64, ["N", 5])],
                       {"one": np.array([1], np.int64)})
    sess = sr.compile(sr.load(model))
    for rows in (1, 7):
        x = np.random.default_rng(rows).standard_normal((rows, 6)).astype(np.float32)
        for a, b in zip(sess.infer(x), ort_run(model, {"x": x})):
            np.testing.assert_array_equal(a, b)


def test_topk_only_indices_output():
    """Values omitted (onnxruntime refuses that, so its indices come from the full node)."""
    x = np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32)
    node = helper.make_node("TopK", ["x", "k"], ["", "i"])
    model = make_model([node], [("x", np.float32, [2, 8])], [("i", np.int64, [2, 3])], {"k": np.array([3], np.int64)})
    (ours,) = sofie_run(model, {"x": x})
    np.testing.assert_array_equal(ours, ort_run(_topk_model((2, 8), 3), {"x": x})[1])


def test_topk_nan_ranks_highest():
    x = np.array([[1.0, np.nan, 3.0, -1.0, np.nan]], np.float32)
    for largest in (1, 0):
        model = _topk_model(x.shape, 3, largest=largest)
        values, indices = sofie_run(model, {"x": x})
        expected = [1, 4, 2] if largest else [3, 0, 2]
        np.testing.assert_array_equal(indices[0], expected)
    values, indices = sofie_run(_topk_model(x.shape, 5, largest=0), {"x": x})
    assert np.isnan(values[0, 3:]).all()


def test_topk_folded(check_folded):
    x = np.random.default_rng(4).standard_normal((3, 8)).astype(np.float32)
    check_folded(_topk_model(x.shape, 4, axis=1), {"x": x})


def test_topk_k_too_large():
    with pytest.raises(ShapeError, match=r"K = 9 is larger than the axis \(8 elements\)"):
        sr.load(_topk_model((2, 8), 9)).code()


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_topk_k_at_run_time(backend):
    """K fed as an input: a run-time dim; the outputs are sized per call, K checked against the axis."""
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1, largest=0)
    model = make_model([node], [("x", np.float32, ["N", 9]), ("k", np.int64, [1])],
                       [("v", np.float32, None), ("i", np.int64, None)])
    sess = sr.compile(sr.load(model), backend=backend)
    for n, k in ((3, 4), (5, 9), (2, 0), (4, 2)):
        feeds = {"x": np.random.default_rng(n).standard_normal((n, 9)).astype(np.float32), "k": np.array([k], np.int64)}
        for a, b in zip(sess.infer(feeds["x"], feeds["k"]), ort_run(model, feeds)):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    with pytest.raises(SofieError, match=r"TopK K = 10 is outside \[0, 9\]"):
        sess.infer(np.zeros((2, 9), np.float32), np.array([10], np.int64))
