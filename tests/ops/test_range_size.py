"""Range and Size against onnxruntime: constant bounds of every type (folded), symbolic bounds
from a shape (written at run time), negative steps, empty ranges; Size of static and symbolic shapes."""

import numpy as np
import pytest
from conftest import make_model, ort_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError, SofieError


@pytest.mark.parametrize("bounds", [(0, 10, 1), (10, -3, -2), (5, 5, 1), (1, 0, 1), (0.5, 3.7, 0.4), (-2.0, 1.0, 0.25)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.int16])
def test_range_constant(check_model, bounds, dtype):
    if dtype().dtype.kind == "i" and any(isinstance(b, float) for b in bounds):
        pytest.skip("fractional bounds need a float type")
    start, limit, delta = (np.array(b, dtype) for b in bounds)
    node = helper.make_node("Range", ["s", "l", "d"], ["r"])
    n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
    model = make_model([node, helper.make_node("Identity", ["x"], ["y"])], [("x", np.float32, [1])],
                       [("r", dtype, [n]), ("y", np.float32, [1])], {"s": start, "l": limit, "d": delta})
    check_model(model, {"x": np.zeros(1, np.float32)})


def test_range_symbolic_from_shape():
    """Positions 0..P-1 of a sequence of symbolic length P, plus an offset: written at run time."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["p"]),
             helper.make_node("Range", ["zero", "p", "one"], ["pos"]),
             helper.make_node("Range", ["p", "zero", "minus2"], ["down"])]
    model = make_model(nodes, [("x", np.float32, ["N", "P"])], [("pos", np.int64, ["P"]), ("down", np.int64, [None])],
                       {"one": np.array(1, np.int64), "zero": np.array(0, np.int64), "minus2": np.array(-2, np.int64)})
    sess = sr.compile(sr.load(model))
    for p in (1, 6, 9):
        x = np.zeros((2, p), np.float32)
        for a, b in zip(sess.infer(x), ort_run(model, {"x": x})):
            np.testing.assert_array_equal(a, b)


def test_range_zero_delta():
    node = helper.make_node("Range", ["s", "l", "d"], ["r"])
    model = make_model([node], [], [("r", np.int64, [None])],
                       {"s": np.array(0, np.int64), "l": np.array(3, np.int64), "d": np.array(0, np.int64)})
    with pytest.raises(ShapeError, match="delta must not be 0"):
        sr.load(model).code()


@pytest.mark.parametrize("dims", [[3, 4, 5], ["N", 4], []])
def test_size(dims):
    nodes = [helper.make_node("Size", ["x"], ["n"]), helper.make_node("Cast", ["n"], ["f"], to=1),
             helper.make_node("Add", ["x", "f"], ["y"])]
    model = make_model(nodes, [("x", np.float32, dims)], [("n", np.int64, []), ("y", np.float32, dims)])
    shape = tuple(7 if isinstance(d, str) else d for d in dims)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for a, b in zip(sr.compile(sr.load(model)).infer(x), ort_run(model, {"x": x})):
        np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
@pytest.mark.parametrize("backend", ["jit", "native"])
def test_range_at_run_time(dtype, backend):
    """Bounds fed as inputs: the length is a run-time dim, the output sized per call."""
    model = make_model([helper.make_node("Range", ["s", "l", "d"], ["r"])],
                       [("s", dtype, []), ("l", dtype, []), ("d", dtype, [])], [("r", dtype, None)])
    sess = sr.compile(sr.load(model), backend=backend)
    for bounds in ((0, 10, 3), (5, -4, -2), (2, 2, 1), (0, 40, 1), (1, 0, 1)):
        feeds = dict(zip("sld", (np.array(b, dtype) for b in bounds)))
        ours, (ref,) = sess.infer(*feeds.values()), ort_run(model, feeds)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref)
    with pytest.raises(SofieError, match="Range delta must not be 0"):
        sess.infer(*(np.array(b, dtype) for b in (0, 3, 0)))
