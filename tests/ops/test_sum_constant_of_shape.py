"""Sum (variadic, broadcasting) and ConstantOfShape against onnxruntime (the light model zoo needs both)."""

import numpy as np
import pytest
from conftest import make_model, ort_run
from onnx import TensorProto, helper

import sofie_rdf as sr
from sofie_rdf.errors import SofieError

SUM_SHAPES = {
    "one": [(2, 3)],
    "two_same": [(2, 3, 4), (2, 3, 4)],
    "two_broadcast": [(2, 3, 4), (3, 1)],
    "three_same": [(4, 5), (4, 5), (4, 5)],
    "three_broadcast": [(1, 5), (4, 1), (5,)],
    "four_mixed": [(2, 1, 4), (2, 3, 4), (), (3, 1)],
}


@pytest.mark.parametrize("opset", [8, 13])
@pytest.mark.parametrize("key", sorted(SUM_SHAPES))
def test_sum(check_model, key, opset):
    shapes = SUM_SHAPES[key]
    rng = np.random.default_rng(0)
    names = [f"x{k}" for k in range(len(shapes))]
    out = np.broadcast_shapes(*shapes)
    model = make_model([helper.make_node("Sum", names, ["y"])], [(n, np.float32, list(s)) for n, s in zip(names, shapes)],
                       [("y", np.float32, list(out))], opset=opset)
    check_model(model, {n: rng.standard_normal(s).astype(np.float32) for n, s in zip(names, shapes)})


def test_sum_symbolic_batch(check_model):
    model = make_model([helper.make_node("Sum", ["a", "b", "c"], ["y"])],
                       [("a", np.float32, ["N", 3]), ("b", np.float32, ["N", 3]), ("c", np.float32, [3])],
                       [("y", np.float32, ["N", 3])])
    rng = np.random.default_rng(1)
    for n in (1, 4):
        check_model(model, {"a": rng.standard_normal((n, 3)).astype(np.float32),
                            "b": rng.standard_normal((n, 3)).astype(np.float32),
                            "c": rng.standard_normal(3).astype(np.float32)})


@pytest.mark.parametrize("value", [None, ("f", 1.5), ("i", 7)])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)])
def test_constant_of_shape(check_model, shape, value):
    attrs = {}
    dtype = np.float32
    if value is not None:
        kind, v = value
        dtype = np.float32 if kind == "f" else np.int64
        elem = TensorProto.FLOAT if kind == "f" else TensorProto.INT64
        attrs["value"] = helper.make_tensor("value", elem, [1], [v])
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["c"], **attrs), helper.make_node("Add", ["x", "c"], ["y"])]
    model = make_model(nodes, [("x", dtype, list(shape))], [("y", dtype, list(shape))],
                       {"shape": np.array(shape, dtype=np.int64)})
    check_model(model, {"x": np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)})


def test_constant_of_shape_symbolic(check_model):
    """A shape with the batch symbol: filled at run time."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [2.0])),
             helper.make_node("Mul", ["x", "c"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3])], [("y", np.float32, ["N", 3])])
    for n in (1, 4):
        check_model(model, {"x": np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)})


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_constant_of_shape_at_run_time(backend):
    """The shape is an input: every dim a run-time dim; the filled output sized per call."""
    value = helper.make_tensor("v", TensorProto.INT32, [1], [7])
    model = make_model([helper.make_node("ConstantOfShape", ["shape"], ["y"], value=value)],
                       [("shape", np.int64, [2])], [("y", np.int32, None)])
    sess = sr.compile(sr.load(model), backend=backend)
    for shape in ([2, 3], [0, 4], [5, 1]):
        s = np.array(shape, np.int64)
        np.testing.assert_array_equal(sess.infer(s), ort_run(model, {"shape": s})[0])
    with pytest.raises(SofieError, match="ConstantOfShape got a negative dim -1"):
        sess.infer(np.array([2, -1], np.int64))
