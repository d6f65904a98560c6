"""DepthToSpace, SpaceToDepth and LRN against onnxruntime.

onnxruntime runs LRN on 4-D inputs with odd sizes only, DepthToSpace on
floating types only and SpaceToDepth without the opset 28 ``mode``; the
cases beyond that compare with onnx's reference evaluator instead.
"""

import numpy as np
import pytest
from conftest import make_model, ort_run, random_array
from onnx import helper
from onnx.reference import ReferenceEvaluator

import sofie_rdf as sr


def _check_reference(model, feeds):
    """Compare with onnx's reference evaluator (cases onnxruntime does not implement)."""
    ours = sr.compile(sr.load(model)).infer(*feeds.values())
    ref = ReferenceEvaluator(model).run(None, feeds)[0]
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def _x(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-50, 50, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _model(op, shape, out_dtype=np.float32, in_shape=None, opset=17, **attrs):
    return make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", out_dtype, list(in_shape or shape))],
                      [("y", out_dtype, None)], opset=opset)


@pytest.mark.parametrize("shape, block", [((1, 4, 2, 3), 2), ((2, 18, 3, 2), 3), ((2, 8, 1, 1), 2), ((1, 3, 2, 2), 1)])
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(check_model, shape, block, mode):
    check_model(_model("DepthToSpace", shape, blocksize=block, mode=mode), {"x": _x(shape)})


@pytest.mark.parametrize("shape, block", [((1, 2, 4, 6), 2), ((2, 3, 6, 3), 3), ((1, 1, 2, 2), 2), ((2, 3, 2, 2), 1)])
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_space_to_depth(check_model, shape, block, mode):
    if mode == "CRD":
        _check_reference(_model("SpaceToDepth", shape, opset=28, blocksize=block, mode=mode), {"x": _x(shape)})
        return
    check_model(_model("SpaceToDepth", shape, blocksize=block), {"x": _x(shape)})


@pytest.mark.parametrize("op", ["DepthToSpace", "SpaceToDepth"])
@pytest.mark.parametrize("batch", [1, 3])
def test_block_rearrange_symbolic_batch(check_model, op, batch):
    shape = (batch, 8, 4, 2)
    check_model(_model(op, shape, in_shape=("N", 8, 4, 2), blocksize=2), {"x": _x(shape)})


@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.uint8])
def test_depth_to_space_dtypes(check_model, dtype):
    shape = (1, 8, 2, 3)
    model, feeds = _model("DepthToSpace", shape, dtype, blocksize=2, mode="CRD"), {"x": _x(shape, dtype=dtype)}
    if dtype == np.float64:
        check_model(model, feeds)
    else:
        _check_reference(model, feeds)


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_block_rearrange_symbolic_image(backend):
    """SpaceToDepth then DepthToSpace over symbolic H and W: compiled once, run at several sizes; H/b is
    floor(H/b) in the code, which refuses sizes the blocksize does not divide."""
    model = make_model([helper.make_node("SpaceToDepth", ["x"], ["t"], blocksize=2),
                        helper.make_node("DepthToSpace", ["t"], ["y"], blocksize=2, mode="CRD")],
                       [("x", np.float32, ["N", 3, "H", "W"])], [("t", np.float32, None), ("y", np.float32, None)])
    sess = sr.compile(sr.load(model), backend=backend)
    for k, shape in enumerate([(1, 3, 4, 6), (2, 3, 8, 2), (1, 3, 2, 10)]):
        x = random_array(shape, seed=k)
        for ours, ref in zip(sess.infer(x), ort_run(model, {"x": x})):
            assert ours.shape == ref.shape
            np.testing.assert_array_equal(ours, ref)
    with pytest.raises(sr.errors.ShapeError, match="height H must be divisible by 2"):
        sess.infer(random_array((1, 3, 5, 4)))


def test_block_rearrange_roundtrip_folded(check_folded):
    shape = (2, 8, 3, 2)
    model = make_model([helper.make_node("DepthToSpace", ["x"], ["t"], blocksize=2, mode="CRD"),
                        helper.make_node("SpaceToDepth", ["t"], ["y"], blocksize=2)],
                       [("x", np.float32, list(shape))], [("y", np.float32, None)])
    check_folded(model, {"x": _x(shape)})


# ---- LRN ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_lrn_sizes(check_model, size):
    shape = (2, 6, 3, 4)
    check_model(_model("LRN", shape, size=size, alpha=0.05), {"x": _x(shape)})


def _lrn_spec(x, size, alpha, beta=0.75, bias=1.0):
    """The spec's formula, channel by channel (onnx's reference LRN loops over the batch axis instead)."""
    y = np.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - (size - 1) // 2), min(channels - 1, c + size // 2)
        square_sum = (x[:, lo:hi + 1].astype(np.float64) ** 2).sum(axis=1)
        y[:, c] = x[:, c] / (bias + alpha / size * square_sum) ** beta
    return y


@pytest.mark.parametrize("shape", [(2, 5), (2, 6, 4), (1, 4, 2, 2, 3), (1, 5, 2, 3)])
@pytest.mark.parametrize("size", [2, 3, 4])
def test_lrn_ranks_even_sizes(shape, size):
    x = _x(shape)
    ours = sr.compile(sr.load(_model("LRN", shape, size=size, alpha=0.05))).infer(x)
    np.testing.assert_allclose(ours, _lrn_spec(x, size, 0.05), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alpha, beta, bias", [(1e-4, 0.75, 1.0), (0.002, 0.5, 2.0), (0.5, 1.2, 0.8)])
def test_lrn_attributes(check_model, alpha, beta, bias):
    shape = (2, 6, 3, 3)
    check_model(_model("LRN", shape, size=3, alpha=alpha, beta=beta, bias=bias), {"x": _x(shape)})


@pytest.mark.parametrize("batch", [1, 4])
def test_lrn_symbolic_batch(check_model, batch):
    shape = (batch, 5, 3, 3)
    check_model(_model("LRN", shape, in_shape=("N", 5, 3, 3), size=3, alpha=0.01), {"x": _x(shape)})


def test_lrn_folded(check_folded):
    shape = (1, 6, 2, 3)
    check_folded(_model("LRN", shape, size=5, alpha=0.1, beta=0.6, bias=1.5), {"x": _x(shape)})
