"""Compress, Unique and NonMaxSuppression: outputs sized while infer runs (run-time dims), against onnxruntime.

Covers each attribute (axis or flattened, sorted 0/1, center_point_box), every optional input and
output, the dtypes, symbolic dims with one compiled model reused for growing and shrinking counts,
both backends, folding of constant inputs, a condition known at generation time (a fixed length),
and run-time errors."""

import numpy as np
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import SofieError

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8, np.bool_]


def _data(shape, dtype, seed=0, high=4):
    rng = np.random.default_rng(seed)
    return rng.integers(0, high, shape).astype(dtype)


def _compare(ours, ref):
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
        np.testing.assert_array_equal(a, b)


def _check(model, feeds, backend="jit"):
    _compare(sofie_run(model, feeds, backend), ort_run(model, feeds))


# ---- Compress ------------------------------------------------------------------

def _compress_model(dims, cond_len, dtype=np.float32, axis=None, opset=17):
    node = helper.make_node("Compress", ["x", "c"], ["y"], **({} if axis is None else {"axis": axis}))
    return make_model([node], [("x", dtype, dims), ("c", np.bool_, [cond_len])], [("y", dtype, None)], opset=opset)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_compress(dtype, axis):
    shape = (3, 4)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    cond = _data((n,), np.bool_, seed=1, high=2)
    _check(_compress_model(list(shape), n, dtype, axis), {"x": _data(shape, dtype), "c": cond})


@pytest.mark.parametrize("axis", [None, 1])
def test_compress_short_condition(axis):
    """A condition shorter than the axis leaves the remaining slices out."""
    cond = np.array([True, False, True])
    _check(_compress_model([2, 5, 2], 3, axis=axis), {"x": _data((2, 5, 2), np.float32), "c": cond})


def test_compress_opset9():
    _check(_compress_model([4, 3], 3, axis=1, opset=9), {"x": _data((4, 3), np.float32), "c": np.array([1, 0, 1], bool)})


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_compress_symbolic(backend):
    """One compiled model, symbolic batch and condition lengths, counts from 0 to all."""
    model = _compress_model(["N", 3], "C", axis=0)
    sess = sr.compile(sr.load(model), backend=backend)
    for n, cond in ((4, [1, 0, 1, 1]), (6, [0] * 6), (2, [1, 1]), (5, [1, 0, 1])):
        feeds = {"x": _data((n, 3), np.float32, seed=n), "c": np.array(cond, bool)}
        _compare([sess.infer(feeds["x"], feeds["c"])], ort_run(model, feeds))


def test_compress_constant_condition_fixed_length():
    """A condition known when generating gives a fixed output length: no run-time dim."""
    model = make_model([helper.make_node("Compress", ["x", "c"], ["y"], axis=1)], [("x", np.float32, ["N", 4])],
                       [("y", np.float32, None)], {"c": np.array([True, False, True, True])})
    m = sr.load(model)
    assert str(m.outputs[0].shape[1]) == "3" and "runtime_dim" not in m.code().header
    x = _data((2, 4), np.float32)
    _compare(sofie_run(model, {"x": x}), ort_run(model, {"x": x}))


def test_compress_folded(check_folded):
    check_folded(_compress_model([3, 4], 4, axis=1), {"x": _data((3, 4), np.float32), "c": np.array([0, 1, 1, 0], bool)})


def test_compress_bad_condition():
    model = make_model([helper.make_node("Compress", ["x", "c"], ["y"])], [("x", np.float32, [3]), ("c", np.int64, [3])],
                       [("y", np.float32, None)])
    with pytest.raises(SofieError, match="condition must be a 1-D bool"):
        sr.load(model)


# ---- Unique ------------------------------------------------------------------

def _unique_model(dims, dtype=np.float32, axis=None, sorted_=1, outputs=("y", "indices", "inverse", "counts")):
    attrs = {"sorted": sorted_, **({} if axis is None else {"axis": axis})}
    node = helper.make_node("Unique", ["x"], list(outputs), **attrs)
    types = {"y": dtype, "indices": np.int64, "inverse": np.int64, "counts": np.int64}
    return make_model([node], [("x", dtype, dims)], [(o, types[o], None) for o in outputs if o], opset=11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int8])
@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_unique(dtype, sorted_, axis):
    x = _data((6, 3), dtype, high=2 if axis is not None else 5)
    x[3] = x[0]  # a repeated row along axis 0
    _check(_unique_model([6, 3], dtype, axis, sorted_), {"x": x})


@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.uint8])
def test_unique_numpy_reference(dtype):
    """onnxruntime has no bool, int32 or uint8 Unique: numpy's np.unique is the reference."""
    x = _data((9,), dtype, high=3)
    y, indices, inverse, counts = sofie_run(_unique_model([9], dtype), {"x": x})
    ref = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    for a, b in zip((y, indices, inverse, counts), ref):
        np.testing.assert_array_equal(a, b)


def test_unique_first_occurrence_order():
    x = np.array([2, 1, 1, 3, 4, 3], np.float32)
    y, indices, inverse, counts = sofie_run(_unique_model([6], sorted_=0), {"x": x})
    np.testing.assert_array_equal(y, [2, 1, 3, 4])
    np.testing.assert_array_equal(indices, [0, 1, 3, 4])
    np.testing.assert_array_equal(inverse, [0, 1, 1, 2, 3, 2])
    np.testing.assert_array_equal(counts, [1, 2, 2, 1])


def test_unique_axis_3d():
    x = _data((2, 5, 2), np.int64, high=2)
    _check(_unique_model([2, 5, 2], np.int64, axis=1), {"x": x})


@pytest.mark.parametrize("outputs", [("y",), ("y", "", "inverse"), ("y", "indices", "", "counts")])
def test_unique_omitted_outputs(outputs):
    _check(_unique_model([7], outputs=outputs), {"x": _data((7,), np.float32)})


@pytest.mark.parametrize("backend", ["jit", "native"])
@pytest.mark.parametrize("sorted_", [0, 1])
def test_unique_symbolic(backend, sorted_):
    model = _unique_model(["N", 2], np.int64, axis=0, sorted_=sorted_)
    sess = sr.compile(sr.load(model), backend=backend)
    for n in (5, 1, 9, 0):
        x = _data((n, 2), np.int64, seed=n, high=2)
        _compare(list(sess.infer(x)), ort_run(model, {"x": x}))


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("axis", [None, 1])
def test_unique_folded(check_folded, sorted_, axis):
    x = _data((3, 4), np.int64, high=2)
    check_folded(_unique_model([3, 4], np.int64, axis, sorted_), {"x": x})


# ---- NonMaxSuppression ------------------------------------------------------------------

def _nms_model(batches, classes, n, center=0, optional=3, opset=11, constant=False):
    names = ["boxes", "scores", "max_out", "iou", "score_threshold"][:2 + optional]
    inputs = [("boxes", np.float32, [batches, n, 4]), ("scores", np.float32, [batches, classes, n])]
    inputs += [(k, t, [1]) for k, t in zip(names[2:], (np.int64, np.float32, np.float32))]
    inits = {}
    if constant:
        inits = {k: v for k, v in _nms_scalars().items() if k in names}
        inputs = inputs[:2]
    node = helper.make_node("NonMaxSuppression", names, ["selected"], center_point_box=center)
    return make_model([node], inputs, [("selected", np.int64, None)], inits, opset=opset)


def _nms_scalars(max_out=3, iou=0.4, threshold=0.2):
    return {"max_out": np.array([max_out], np.int64), "iou": np.array([iou], np.float32),
            "score_threshold": np.array([threshold], np.float32)}


def _boxes(batches, n, center, seed=0):
    rng = np.random.default_rng(seed)
    corner = rng.random((batches, n, 2)).astype(np.float32) * 4
    size = rng.random((batches, n, 2)).astype(np.float32) * 2 + 0.5
    if center:
        return np.concatenate([corner[..., ::-1], size[..., ::-1]], axis=-1)  # [x, y, w, h]
    flip = rng.random((batches, n, 1)) < 0.3  # some boxes with their corners swapped
    first, second = corner, corner + size
    return np.where(flip, np.concatenate([second, first], -1), np.concatenate([first, second], -1)).astype(np.float32)


def _nms_feeds(batches, classes, n, center, optional=3, seed=0, **scalars):
    rng = np.random.default_rng(seed + 1)
    scores = rng.random((batches, classes, n)).astype(np.float32)
    scores[..., 1] = scores[..., 0]  # a tie
    feeds = {"boxes": _boxes(batches, n, center, seed), "scores": scores}
    names = ["max_out", "iou", "score_threshold"][:optional]
    feeds.update({k: v for k, v in _nms_scalars(**scalars).items() if k in names})
    return feeds


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("optional", [0, 1, 2, 3])
def test_nms(center, optional):
    _check(_nms_model(2, 3, 8, center, optional), _nms_feeds(2, 3, 8, center, optional))


@pytest.mark.parametrize("max_out,iou,threshold", [(0, 0.5, 0.0), (10, 0.0, 0.5), (2, 1.0, 0.9), (8, 0.7, -1.0)])
def test_nms_scalars(max_out, iou, threshold):
    _check(_nms_model(1, 2, 10), _nms_feeds(1, 2, 10, 0, max_out=max_out, iou=iou, threshold=threshold))


def test_nms_opset10():
    _check(_nms_model(1, 1, 6, opset=10), _nms_feeds(1, 1, 6, 0))


def test_nms_constant_scalars():
    """Limit and thresholds as initializers are still read at run time; boxes stay inputs."""
    model = _nms_model(1, 2, 6, constant=True)
    feeds = _nms_feeds(1, 2, 6, 0)
    feeds = {k: feeds[k] for k in ("boxes", "scores")}
    _check(model, feeds)


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_nms_symbolic(backend):
    model = make_model([helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score_threshold"],
                                         ["selected"])],
                       [("boxes", np.float32, ["B", "N", 4]), ("scores", np.float32, ["B", "C", "N"]),
                        ("max_out", np.int64, [1]), ("iou", np.float32, [1]), ("score_threshold", np.float32, [1])],
                       [("selected", np.int64, None)])
    sess = sr.compile(sr.load(model), backend=backend)
    for b, c, n in ((1, 2, 5), (2, 1, 9), (1, 1, 3)):
        feeds = _nms_feeds(b, c, n, 0, seed=n)
        _compare([sess.infer(*feeds.values())], ort_run(model, feeds))


def test_nms_folded(check_folded):
    check_folded(_nms_model(1, 2, 6, center=1), _nms_feeds(1, 2, 6, 1))


def test_nms_bad_iou():
    sess = sr.compile(sr.load(_nms_model(1, 1, 4)))
    feeds = _nms_feeds(1, 1, 4, 0, iou=1.5)
    with pytest.raises(Exception, match=r"iou_threshold must be in \[0, 1\]"):
        sess.infer(*feeds.values())


def test_nms_bad_boxes():
    model = make_model([helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["selected"])],
                       [("boxes", np.float32, [1, 4, 3]), ("scores", np.float32, [1, 1, 4])], [("selected", np.int64, None)])
    with pytest.raises(SofieError, match=r"boxes \(batches, n, 4\)"):
        sr.load(model)
