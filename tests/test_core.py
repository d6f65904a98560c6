"""End-to-end: a small MLP through both backends, symbolic batch, errors at infer."""

import numpy as np
import pytest
from conftest import make_model
from onnx import helper

import sofie_rdf as sr


def mlp(rng):
    w1, b1 = rng.standard_normal((7, 16)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    w2, b2 = rng.standard_normal((16, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("MatMul", ["hr", "W2"], ["m"]),
             helper.make_node("Add", ["m", "b2"], ["z"]),
             helper.make_node("Softmax", ["z"], ["y"], axis=-1)]
    return make_model(nodes, [("x", np.float32, ["N", 7])], [("y", np.float32, ["N", 2])],
                      {"W1": w1, "b1": b1, "W2": w2, "b2": b2}, name="mlp")


@pytest.mark.parametrize("backend", ["jit", "native"])
@pytest.mark.parametrize("batch", [1, 3, 64])
def test_mlp_matches_onnxruntime(check_model, backend, batch):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 7)).astype(np.float32)
    check_model(mlp(rng), {"x": x}, backend=backend)


def test_model_info():
    model = sr.load(mlp(np.random.default_rng(0)))
    assert [i.name for i in model.inputs] == ["x"]
    assert model.inputs[0].shape == ("N", 7)
    assert model.outputs[0].shape == ("N", 2)
    assert model.outputs[0].dtype == np.float32


def test_infer_rejects_bad_arrays():
    sess = sr.compile(sr.load(mlp(np.random.default_rng(1))))
    with pytest.raises(sr.ShapeError, match="takes 1 input"):
        sess.infer()
    with pytest.raises(sr.ShapeError, match="dtype"):
        sess.infer(np.zeros((2, 7)))
    with pytest.raises(sr.ShapeError, match="shape"):
        sess.infer(np.zeros((2, 6), np.float32))
    with pytest.raises(sr.ShapeError, match="shape"):
        sess.infer(np.zeros(7, np.float32))


def test_non_contiguous_input_is_copied():
    rng = np.random.default_rng(2)
    sess = sr.compile(sr.load(mlp(rng)))
    x = np.asfortranarray(rng.standard_normal((5, 7)).astype(np.float32))
    np.testing.assert_array_equal(sess.infer(x), sess.infer(np.ascontiguousarray(x)))
    big = rng.standard_normal((10, 14)).astype(np.float32)
    np.testing.assert_array_equal(sess.infer(big[::2, ::2]), sess.infer(np.ascontiguousarray(big[::2, ::2])))
