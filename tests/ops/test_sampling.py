"""GridSample, AffineGrid, Col2Im and MaxUnpool.

Reference: onnxruntime where it implements the op/opset/type (GridSample opset 16 float32 and 20/22
float32/float64, AffineGrid, Col2Im float32, MaxUnpool float32), else onnx.reference.ReferenceEvaluator
(GridSample opset 16 float64, Col2Im float64/int32, MaxUnpool float64 without output_shape).  MaxUnpool
with output_shape is only checked against onnxruntime: the onnx reference addresses the inferred shape."""

import itertools

import numpy as np
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper
from onnx.reference import ReferenceEvaluator

from sofie_rdf.errors import SofieError


def _check_reference(model, feeds, rtol=1e-5, atol=1e-5):
    """Compare with onnx.reference.ReferenceEvaluator (for forms onnxruntime lacks)."""
    ours = sofie_run(model, feeds)
    ref = ReferenceEvaluator(model).run(None, feeds)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _grid_model(x_shape, grid_shape, dtype=np.float32, opset=20, **attrs):
    return make_model([helper.make_node("GridSample", ["x", "g"], ["y"], **attrs)],
                      [("x", dtype, x_shape), ("g", dtype, grid_shape)], [("y", dtype, None)], opset=opset)


def _grid_feeds(x_shape, grid_shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal(x_shape).astype(dtype),
            "g": rng.uniform(-1.4, 1.4, grid_shape).astype(dtype)}


MODES_20 = ("linear", "nearest", "cubic")
PADDINGS = ("zeros", "border", "reflection")


@pytest.mark.parametrize("mode,padding", [c for c in itertools.product(MODES_20, PADDINGS) if c != ("cubic", "border")])
@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("dtype,opset", [(np.float32, 20), (np.float64, 22)])
def test_grid_sample_4d(check_model, mode, padding, align, dtype, opset):
    x_shape, g_shape = (2, 3, 5, 4), (2, 3, 6, 2)
    model = _grid_model(x_shape, g_shape, dtype, opset, mode=mode, padding_mode=padding, align_corners=align)
    check_model(model, _grid_feeds(x_shape, g_shape, dtype), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_sample_cubic_border_reference(align, dtype):
    """cubic + border: onnxruntime and the onnx reference disagree for samples outside the image (up to 0.2 here);
    sofie-rdf follows the reference (coordinate clamped to the border, then its 4 neighbours clamped)."""
    x_shape, g_shape = (2, 3, 5, 4), (2, 3, 6, 2)
    model = _grid_model(x_shape, g_shape, dtype, mode="cubic", padding_mode="border", align_corners=align)
    _check_reference(model, _grid_feeds(x_shape, g_shape, dtype), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["linear", "nearest"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_5d(check_model, mode, padding, align):
    x_shape, g_shape = (1, 2, 3, 4, 5), (1, 2, 3, 2, 3)
    model = _grid_model(x_shape, g_shape, mode=mode, padding_mode=padding, align_corners=align)
    check_model(model, _grid_feeds(x_shape, g_shape), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("padding", PADDINGS)
def test_grid_sample_5d_cubic_reference(padding):
    x_shape, g_shape = (1, 2, 3, 4, 4), (1, 2, 2, 2, 3)
    model = _grid_model(x_shape, g_shape, np.float64, mode="cubic", padding_mode=padding)
    _check_reference(model, _grid_feeds(x_shape, g_shape, np.float64))


@pytest.mark.parametrize("mode,padding", [c for c in itertools.product(["bilinear", "nearest", "bicubic"], PADDINGS)
                                          if c != ("bicubic", "border")])
def test_grid_sample_opset16(check_model, mode, padding):
    x_shape, g_shape = (1, 2, 4, 4), (1, 3, 3, 2)
    model = _grid_model(x_shape, g_shape, opset=16, mode=mode, padding_mode=padding, align_corners=1)
    check_model(model, _grid_feeds(x_shape, g_shape), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
def test_grid_sample_opset16_float64(mode):
    """onnxruntime has no float64 kernel in opset 16 and the onnx reference does not know the opset-16 mode names:
    the reference is onnxruntime's opset-20 kernel under the renamed mode (same semantics)."""
    x_shape, g_shape = (1, 2, 4, 4), (1, 3, 3, 2)
    feeds = _grid_feeds(x_shape, g_shape, np.float64)
    (ours,) = sofie_run(_grid_model(x_shape, g_shape, np.float64, 16, mode=mode, padding_mode="reflection"), feeds)
    renamed = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    (ref,) = ort_run(_grid_model(x_shape, g_shape, np.float64, 20, mode=renamed, padding_mode="reflection"), feeds)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


def test_grid_sample_symbolic(check_model):
    model = _grid_model(["N", 2, "H", "W"], ["N", 3, 3, 2], mode="cubic", padding_mode="reflection")
    for n, h, w in ((1, 4, 6), (3, 5, 2)):
        check_model(model, _grid_feeds((n, 2, h, w), (n, 3, 3, 2), seed=n), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES_20)
def test_grid_sample_folded(check_folded, mode):
    x_shape, g_shape = (1, 2, 4, 5), (1, 3, 2, 2)
    model = _grid_model(x_shape, g_shape, mode=mode, padding_mode="reflection")
    check_folded(model, _grid_feeds(x_shape, g_shape), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opset,shape,attrs,message", [
    (16, (1, 1, 2, 2, 2), {}, "1 to 2 spatial axes"),
    (20, (1, 1, 2, 2), {"mode": "bilinear"}, "mode must be one of linear, nearest, cubic"),
    (20, (1, 1, 2, 2), {"padding_mode": "wrap"}, "padding_mode must be one of"),
])
def test_grid_sample_refused(opset, shape, attrs, message):
    g_shape = (1, *shape[2:], len(shape) - 2)
    with pytest.raises(SofieError, match=message):
        sofie_run(_grid_model(shape, g_shape, opset=opset, **attrs), _grid_feeds(shape, g_shape))


def _affine_model(size, dtype=np.float32, batch=None, **attrs):
    r = len(size) - 2
    return make_model([helper.make_node("AffineGrid", ["theta", "size"], ["grid"], **attrs)],
                      [("theta", dtype, [batch or size[0], r, r + 1])], [("grid", dtype, None)],
                      {"size": np.array(size, np.int64)}, opset=20)


@pytest.mark.parametrize("size", [(2, 3, 4, 5), (1, 1, 2, 3), (2, 1, 3, 2, 4)])
@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_grid(check_model, size, align, dtype):
    r = len(size) - 2
    theta = np.random.default_rng(r).standard_normal((size[0], r, r + 1)).astype(dtype)
    check_model(_affine_model(size, dtype, align_corners=align), {"theta": theta})


@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid_single_pixel_axis_reference(align):
    """An axis of 1 pixel with align_corners has no defined coordinate (the corners coincide): onnxruntime puts it
    at 1, the onnx reference at -1 (np.arange from -1); sofie-rdf follows the reference."""
    theta = np.random.default_rng(5).standard_normal((1, 2, 3)).astype(np.float32)
    _check_reference(_affine_model((1, 1, 1, 3), align_corners=align), {"theta": theta})


def test_affine_grid_folded(check_folded):
    theta = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    check_folded(_affine_model((2, 2, 3, 4, 2), align_corners=1), {"theta": theta})


def test_affine_grid_theta_mismatch():
    with pytest.raises(SofieError, match=r"theta must be \(2, 2, 3\)"):
        sofie_run(_affine_model((2, 1, 3, 3), batch=3), {"theta": np.zeros((3, 2, 3), np.float32)})


def _col2im_model(x_shape, image, block, dtype=np.float32, **attrs):
    return make_model([helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)],
                      [("x", dtype, x_shape)], [("y", dtype, None)],
                      {"image": np.array(image, np.int64), "block": np.array(block, np.int64)}, opset=18)


def _col2im_case(image, block, strides, pads, dilations, channels=2, batch=2):
    """(input shape, attrs) of a consistent Col2Im."""
    r = len(image)
    counts = [(image[d] + pads[d] + pads[d + r] - dilations[d] * (block[d] - 1) - 1) // strides[d] + 1 for d in range(r)]
    return (batch, channels * int(np.prod(block)), int(np.prod(counts))), {"strides": strides, "pads": pads,
                                                                           "dilations": dilations}


COL2IM_CASES = {
    "plain": ((5, 5), (2, 2), [1, 1], [0, 0, 0, 0], [1, 1]),
    "strides": ((6, 7), (3, 2), [2, 3], [0, 0, 0, 0], [1, 1]),
    "pads": ((4, 5), (3, 3), [1, 1], [1, 0, 2, 1], [1, 1]),
    "dilations": ((6, 6), (2, 3), [1, 1], [0, 1, 0, 1], [2, 2]),
    "3d": ((3, 4, 5), (2, 2, 3), [1, 2, 1], [0, 1, 1, 1, 0, 0], [1, 1, 2]),
}


@pytest.mark.parametrize("case", ["plain", "strides", "pads", "dilations"])
def test_col2im(check_model, case):
    image, block, *params = COL2IM_CASES[case]
    x_shape, attrs = _col2im_case(image, block, *params)
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    check_model(_col2im_model(x_shape, image, block, **attrs), {"x": x})


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("case", ["pads", "3d"])
def test_col2im_dtypes_reference(dtype, case):
    """The onnx reference: onnxruntime has float32 only, and its 3-D result disagrees with the reference (and the
    backend case test_col2im_5d), which sofie-rdf matches."""
    image, block, *params = COL2IM_CASES[case]
    x_shape, attrs = _col2im_case(image, block, *params)
    x = (np.random.default_rng(2).standard_normal(x_shape) * 10).astype(dtype)
    _check_reference(_col2im_model(x_shape, image, block, dtype, **attrs), {"x": x})


def test_col2im_symbolic_batch(check_model):
    image, block, *params = COL2IM_CASES["strides"]
    x_shape, attrs = _col2im_case(image, block, *params)
    model = _col2im_model(["N", *x_shape[1:]], image, block, **attrs)
    for n in (1, 3):
        check_model(model, {"x": np.random.default_rng(n).standard_normal((n, *x_shape[1:])).astype(np.float32)})


def test_col2im_folded(check_folded):
    image, block, *params = COL2IM_CASES["dilations"]
    x_shape, attrs = _col2im_case(image, block, *params)
    check_folded(_col2im_model(x_shape, image, block, **attrs),
                 {"x": np.random.default_rng(3).standard_normal(x_shape).astype(np.float32)})


def test_col2im_block_count_mismatch():
    with pytest.raises(SofieError, match="number of blocks"):
        sofie_run(_col2im_model((1, 4, 5), (3, 3), (2, 2)), {"x": np.zeros((1, 4, 5), np.float32)})


def _unpool_model(x_shape, dtype=np.float32, output_shape=None, opset=11, **attrs):
    names = ["x", "i"] + (["shape"] if output_shape is not None else [])
    inits = {"shape": np.array(output_shape, np.int64)} if output_shape is not None else {}
    return make_model([helper.make_node("MaxUnpool", names, ["y"], **attrs)],
                      [("x", dtype, x_shape), ("i", np.int64, x_shape)], [("y", dtype, None)], inits, opset=opset)


def _unpool_feeds(x_shape, out_shape, dtype=np.float32, seed=0):
    """Distinct flat indices into the output (a write order would decide between duplicates)."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(x_shape))
    indices = rng.permutation(int(np.prod(out_shape)))[:count].reshape(x_shape)
    return {"x": rng.standard_normal(x_shape).astype(dtype), "i": indices.astype(np.int64)}


UNPOOL_CASES = {  # x shape, attrs, inferred output shape
    "1d": ((2, 3, 4), {"kernel_shape": [2], "strides": [2]}, (2, 3, 8)),
    "2d": ((1, 2, 3, 3), {"kernel_shape": [2, 2], "strides": [2, 2]}, (1, 2, 6, 6)),
    "2d_pads": ((1, 2, 3, 3), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 1]}, (1, 2, 5, 6)),
    "3d": ((1, 1, 2, 2, 3), {"kernel_shape": [2, 2, 2], "strides": [1, 2, 2]}, (1, 1, 3, 4, 6)),
}


@pytest.mark.parametrize("case", list(UNPOOL_CASES))
@pytest.mark.parametrize("opset", [11, 22])
def test_max_unpool(check_model, case, opset):
    x_shape, attrs, out_shape = UNPOOL_CASES[case]
    check_model(_unpool_model(x_shape, opset=opset, **attrs), _unpool_feeds(x_shape, out_shape))


@pytest.mark.parametrize("case", ["2d", "2d_pads"])
def test_max_unpool_output_shape(check_model, case):
    x_shape, attrs, out_shape = UNPOOL_CASES[case]
    bigger = (*out_shape[:2], *(d + 1 for d in out_shape[2:]))
    check_model(_unpool_model(x_shape, output_shape=bigger, **attrs), _unpool_feeds(x_shape, bigger))


@pytest.mark.parametrize("case", list(UNPOOL_CASES))
def test_max_unpool_float64_reference(case):
    x_shape, attrs, out_shape = UNPOOL_CASES[case]
    _check_reference(_unpool_model(x_shape, np.float64, **attrs), _unpool_feeds(x_shape, out_shape, np.float64))


def test_max_unpool_of_max_pool(check_model):
    """The usual pairing: MaxPool's Indices feed MaxUnpool, output_shape restoring an odd input size."""
    nodes = [helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("MaxUnpool", ["p", "i", "shape"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    model = make_model(nodes, [("x", np.float32, ["N", 2, 5, 5])], [("y", np.float32, None)],
                       {"shape": np.array([1, 2, 5, 5], np.int64)}, opset=11)
    check_model(model, {"x": np.random.default_rng(4).standard_normal((1, 2, 5, 5)).astype(np.float32)})


def test_max_unpool_folded(check_folded):
    x_shape, attrs, out_shape = UNPOOL_CASES["2d_pads"]
    check_folded(_unpool_model(x_shape, **attrs), _unpool_feeds(x_shape, out_shape))


@pytest.mark.parametrize("bad", [-1, 72])
def test_max_unpool_index_out_of_range_at_run_time(bad):
    x_shape, attrs, out_shape = UNPOOL_CASES["2d"]
    feeds = _unpool_feeds(x_shape, out_shape)
    feeds["i"].reshape(-1)[3] = bad
    with pytest.raises(SofieError, match=rf"MaxUnpool index {bad} is outside \[0, 72\)"):
        sofie_run(_unpool_model(x_shape, **attrs), feeds)


# ---- image_shape / block_shape and size read at run time ---------------------------------------------------

def _col2im_runtime_model(name="col2im_rt", **attrs):
    """Col2Im whose image_shape and block_shape are graph inputs (x's dims 1 and 2 symbolic)."""
    return make_model([helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)],
                      [("x", np.float32, [2, "CB", "L"]), ("image", np.int64, [2]), ("block", np.int64, [2])],
                      [("y", np.float32, None)], opset=18, name=f"{name}")


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_col2im_runtime_shapes(backend):
    """Compiled once, run at several image and block shapes against onnxruntime."""
    import sofie_rdf as sr

    attrs = {"strides": [2, 1], "pads": [1, 0, 0, 1], "dilations": [1, 2]}
    model = _col2im_runtime_model(f"col2im_rt_{backend}", **attrs)
    sess = sr.compile(sr.load(model), backend=backend)
    for k, (image, block) in enumerate([((5, 6), (2, 2)), ((7, 4), (3, 1)), ((4, 9), (1, 3))]):
        x_shape, _ = _col2im_case(image, block, attrs["strides"], attrs["pads"], attrs["dilations"])
        feeds = {"x": np.random.default_rng(k).standard_normal(x_shape).astype(np.float32),
                 "image": np.array(image, np.int64), "block": np.array(block, np.int64)}
        ours = sess.infer(feeds["x"], feeds["image"], feeds["block"])
        np.testing.assert_allclose(ours, ort_run(model, feeds)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("image, block, message", [
    ((5, 5), (0, 2), r"block_shape\[0\] = 0 must be positive"),
    ((5, 5), (3, 3), r"input length 16 must equal the number of blocks \(9\)"),
])
def test_col2im_runtime_bad_values(image, block, message):
    """A bad run-time shape is refused by the node's code, naming the model and node."""
    import sofie_rdf as sr

    sess = sr.compile(sr.load(_col2im_runtime_model("col2im_bad")))
    with pytest.raises(sr.errors.ShapeError, match=f"model 'col2im_bad': Col2Im node .*{message}"):
        sess.infer(np.zeros((2, 8, 16), np.float32), np.array(image, np.int64), np.array(block, np.int64))


@pytest.mark.parametrize("backend", ["jit", "native"])
@pytest.mark.parametrize("r", [2, 3])
def test_affine_grid_runtime_size(backend, r):
    """size a graph input: compiled once, grids of several sizes against onnxruntime."""
    import sofie_rdf as sr

    model = make_model([helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=1)],
                       [("theta", np.float32, ["N", r, r + 1]), ("size", np.int64, [r + 2])],
                       [("grid", np.float32, None)], opset=20, name=f"affine_rt_{backend}_{r}")
    sess = sr.compile(sr.load(model), backend=backend)
    for k, dims in enumerate([(4, 5, 3), (2, 7, 2), (3, 2, 6)]):  # no axis of 1 (see single_pixel above)
        n = k + 1
        feeds = {"theta": np.random.default_rng(k).standard_normal((n, r, r + 1)).astype(np.float32),
                 "size": np.array([n, 3, *dims[:r]], np.int64)}
        np.testing.assert_allclose(sess.infer(feeds["theta"], feeds["size"]), ort_run(model, feeds)[0],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size, message", [((3, 1, 4, 5), "size.0. = 3 must be theta's batch 2"),
                                           ((2, 1, -4, 5), r"size\[2\] is -4, a size must not be negative")])
def test_affine_grid_runtime_bad_size(size, message):
    import sofie_rdf as sr

    model = make_model([helper.make_node("AffineGrid", ["theta", "size"], ["grid"])],
                       [("theta", np.float32, [2, 2, 3]), ("size", np.int64, [4])], [("grid", np.float32, None)],
                       opset=20, name="affine_bad")
    sess = sr.compile(sr.load(model))
    with pytest.raises(sr.errors.ShapeError, match=f"model 'affine_bad': AffineGrid node .*{message}"):
        sess.infer(np.zeros((2, 2, 3), np.float32), np.array(size, np.int64))
