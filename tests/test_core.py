"""End-to-end: a small MLP through both backends, symbolic batch, errors at infer."""

import numpy as np
import pytest
from conftest import make_model, ort_run
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


def test_symbolic_dim_broadcast_against_fixed_size_is_checked():
    m = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", np.float32, ["N", 4])],
                   [("y", np.float32, [3, 4])], {"w": np.arange(12, dtype=np.float32).reshape(3, 4)})
    sess = sr.compile(sr.load(m))
    x = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(sess.infer(x), x + np.arange(12, dtype=np.float32).reshape(3, 4))
    with pytest.raises(sr.ShapeError, match="N is broadcast against 3, so it must be 1"):
        sess.infer(np.ones((3, 4), np.float32))
    assert "throw std::invalid_argument" in sr.load(m).code().header  # C++ callers are checked too


def test_slice_bounds_on_symbolic_dim_are_checked():
    m = make_model([helper.make_node("Slice", ["x", "starts", "ends"], ["y"])], [("x", np.float32, ["N", 4])],
                   [("y", np.float32, [2, 4])], {"starts": np.array([1]), "ends": np.array([3])})
    sess = sr.compile(sr.load(m))
    x = np.arange(20, dtype=np.float32).reshape(5, 4)
    np.testing.assert_array_equal(sess.infer(x), x[1:3])
    with pytest.raises(sr.ShapeError, match=r"needs dim N >= 3"):
        sess.infer(x[:2])


def test_shape_arithmetic_of_a_scripted_scatter_add_is_symbolic():
    """torch_scatter's scatter_sum as the TorchScript exporter writes it: the source cut to the index's shape
    (``Slice(src, 0, Shape(index))``, bounds of the same symbolic size: to the end) and the output sized by
    ``size[0] = n`` (a ScatterElements on a shape, n a symbol): one build for every E and N, as onnxruntime."""
    nodes = [
        helper.make_node("Shape", ["index"], ["ends"]),
        helper.make_node("Sub", ["ends", "ends"], ["starts"]),
        helper.make_node("Slice", ["src", "starts", "ends"], ["part"]),
        helper.make_node("Shape", ["src"], ["size"]),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Gather", ["x_shape", "first"], ["n"]),
        helper.make_node("ScatterElements", ["size", "first", "n"], ["out_size"], axis=0),
        helper.make_node("ConstantOfShape", ["out_size"], ["zeros"], value=helper.make_tensor("z", 1, [1], [0.0])),
        helper.make_node("ScatterElements", ["zeros", "index", "part"], ["y"], axis=0, reduction="add"),
    ]
    m = make_model(nodes, [("src", np.float32, ["E", 4]), ("index", np.int64, ["E", 4]), ("x", np.float32, ["N", 3])],
                   [("y", np.float32, None)], {"first": np.array([0])})
    model = sr.load(m)
    assert model.needs_dims is None and [t.shape for t in model.outputs] == [("N", 4)]
    sess, rng = sr.compile(model), np.random.default_rng(0)
    for edges, nodes_count in ((6, 3), (11, 5)):
        feeds = {"src": rng.standard_normal((edges, 4)).astype(np.float32), "index": rng.integers(0, nodes_count, (edges, 4)),
                 "x": np.zeros((nodes_count, 3), np.float32)}
        np.testing.assert_allclose(sess.infer(*feeds.values()), ort_run(m, feeds)[0], rtol=1e-6, atol=1e-6)


def test_default_backend_is_native_where_a_compiler_is(monkeypatch):
    """``backend="auto"`` (sr.compile's and the RDataFrame integrations' default) builds natively wherever a C++
    compiler is found: Cling's code for the kernels is several times slower (benchmarks/build_paths.py).
    ``$SOFIE_RDF_BACKEND`` overrides it (make test runs with ``jit``)."""
    from sofie_rdf.compile import resolve_backend
    from sofie_rdf.targets.cpu.native import compiler_found

    monkeypatch.delenv("SOFIE_RDF_BACKEND", raising=False)
    assert resolve_backend("auto") == ("native" if compiler_found() else "jit")
    assert resolve_backend("jit") == "jit"
    monkeypatch.setenv("SOFIE_RDF_BACKEND", "jit")
    assert resolve_backend("auto") == "jit"
    monkeypatch.setenv("SOFIE_RDF_BACKEND", "cling")
    with pytest.raises(sr.SofieError, match="SOFIE_RDF_BACKEND must be"):
        resolve_backend("auto")
