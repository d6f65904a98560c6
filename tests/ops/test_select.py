"""NonZero: output sized while infer runs (a run-time dim), against onnxruntime.

Covers dtypes, ranks, a symbolic batch, empty and full results, tensors downstream of the
run-time dim (their memory reserved once the count is known), both backends, the C++ vector
interface, folding of constant inputs, and a run-time check on the computed dim."""

import numpy as np
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import SofieError


def _nonzero_model(dims, dtype=np.float32, downstream=False):
    nodes = [helper.make_node("NonZero", ["x"], ["idx"])]
    outputs = [("idx", np.int64, None)]
    if downstream:  # the count flows into a Transpose and a Cast, and the coordinates into a Gather
        nodes += [helper.make_node("Transpose", ["idx"], ["t"]), helper.make_node("Cast", ["t"], ["tf"], to=1),
                  helper.make_node("Gather", ["x", "row0"], ["first_rows"], axis=0)]
        nodes.insert(1, helper.make_node("Gather", ["idx", "zero"], ["row0"], axis=0))
        outputs += [("tf", np.float32, None), ("first_rows", dtype, None)]
    inits = {"zero": np.array(0, np.int64)} if downstream else {}
    return make_model(nodes, [("x", dtype, dims)], outputs, inits)


def _data(shape, dtype, density=0.4, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    if dtype == np.bool_:
        return mask
    return (mask * rng.integers(1, 5, shape)).astype(dtype)


def _check(model, feeds, backend="jit"):
    ours, ref = sofie_run(model, feeds, backend), ort_run(model, feeds)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.bool_, np.uint8])
def test_nonzero_dtypes(dtype):
    _check(_nonzero_model([3, 5], dtype), {"x": _data((3, 5), dtype)})


@pytest.mark.parametrize("dtype", [np.float64, np.int8])
def test_nonzero_numpy_reference(dtype):
    """onnxruntime has no double or int8 NonZero: numpy is the reference."""
    x = _data((3, 5), dtype)
    (ours,) = sofie_run(_nonzero_model([3, 5], dtype), {"x": x})
    np.testing.assert_array_equal(ours, np.array(np.nonzero(x)))


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4), (2, 1, 3, 2)])
def test_nonzero_ranks(shape):
    _check(_nonzero_model(list(shape)), {"x": _data(shape, np.float32)})


def test_nonzero_nan_counts():
    x = np.array([0.0, np.nan, -0.0, 2.0], np.float32)
    _check(_nonzero_model([4]), {"x": x})


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_nonzero_symbolic_and_downstream(backend):
    """One compiled model, counts growing and shrinking (0 and all included), tensors sized by the count after it."""
    model = _nonzero_model(["N", 4], downstream=True)
    sess = sr.compile(sr.load(model), backend=backend)
    for n, density in ((3, 0.5), (9, 0.3), (2, 0.0), (5, 1.0), (1, 0.5)):
        x = _data((n, 4), np.float32, density, seed=n)
        if density == 0.0:  # Gather of row 0 from an empty index list is not meaningful: check NonZero alone
            x[0, 0] = 0
        ours, ref = sess.infer(x), ort_run(model, {"x": x})
        for a, b in zip(ours, ref):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_nonzero_vector_interface():
    """C++ callers get the run-time sized output as a std::vector and the count from runtime_dim(0)."""
    model = sr.load(_nonzero_model(["N", 3]))
    code = model.code().header
    assert "std::vector<int64_t> &out0_tensor_idx_" in code and "size_t runtime_dim(size_t k) const" in code
    assert "// runtime_dim(0) after infer: idx:count" in code


def test_nonzero_folded(check_folded):
    x = _data((4, 4), np.float32)
    check_folded(_nonzero_model([4, 4]), {"x": x})


def test_check_on_runtime_dim():
    """A condition on a dim computed at run time is checked right after the node computing it."""
    nodes = [helper.make_node("NonZero", ["x"], ["idx"]), helper.make_node("Add", ["idx", "c"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [6])], [("y", np.int64, None)], {"c": np.arange(3, dtype=np.int64)})
    sess = sr.compile(sr.load(model))
    ok = np.array([0, 1, 0, 0, 0, 0], np.float32)  # count 1 broadcasts against 3
    np.testing.assert_array_equal(sess.infer(ok), ort_run(model, {"x": ok})[0])
    with pytest.raises(SofieError, match=r"must be 1"):
        sess.infer(np.array([0, 1, 1, 0, 0, 0], np.float32))
