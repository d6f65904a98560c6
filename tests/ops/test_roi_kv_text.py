"""TensorScatter, RoiAlign, TfIdfVectorizer and MelWeightMatrix.

Reference: onnxruntime for TensorScatter (opset 24), RoiAlign (opsets 10 and 16), TfIdfVectorizer and
MelWeightMatrix; RoiAlign opset 22 is not in onnxruntime 1.31, so onnx.reference.ReferenceEvaluator checks
it.  Covered: TensorScatter linear/circular, axis, with and without write_indices, every element type
family, symbolic batch, run-time index checks; RoiAlign avg/max, output size, sampling_ratio,
spatial_scale, both coordinate transformations and opset 10's implicit one, symbolic RoI count, batch
index checks; TfIdfVectorizer TF/IDF/TFIDF with and without weights, gram lengths, skips, int32/int64,
1-D and 2-D (symbolic rows) input, string pools refused; MelWeightMatrix folded and computed at run time
(run-time dims) for each output type; folding of every op."""

import numpy as np
import pytest
from conftest import make_model, sofie_run
from onnx import helper
from onnx.reference import ReferenceEvaluator

from sofie_rdf.errors import SofieError

RNG = np.random.default_rng(11)


def _rand(shape, dtype):
    if np.dtype(dtype).kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return RNG.integers(0, 2, shape).astype(dtype)
    return RNG.integers(0, 100, shape).astype(dtype)


# ---- TensorScatter ------------------------------------------------------------

def _scatter_model(dtype, past, update, indices=True, **attrs):
    names = ["past", "update"] + (["idx"] if indices else [])
    inputs = [("past", dtype, past), ("update", dtype, update)] + ([("idx", np.int64, [past[0]])] if indices else [])
    return make_model([helper.make_node("TensorScatter", names, ["y"], **attrs)], inputs, [("y", dtype, None)],
                      opset=24)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8, np.bool_])
@pytest.mark.parametrize("mode", [None, "linear", "circular"])
def test_tensor_scatter(check_model, dtype, mode):
    attrs = {} if mode is None else {"mode": mode}
    model = _scatter_model(dtype, [3, 2, 6, 4], [3, 2, 2, 4], **attrs)
    idx = np.array([0, 4, 5] if mode == "circular" else [0, 4, 2], np.int64)
    check_model(model, {"past": _rand((3, 2, 6, 4), dtype), "update": _rand((3, 2, 2, 4), dtype), "idx": idx})


@pytest.mark.parametrize("axis", [1, 2, 3, -1, -3])
@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter_axis(check_model, axis, mode):
    past, update = [2, 5, 4, 3], [2, 5, 4, 3]
    past[axis], update[axis] = 6, 2
    model = _scatter_model(np.float32, past, update, axis=axis, mode=mode)
    idx = np.array([1, 4] if mode == "linear" else [3, 5], np.int64)
    check_model(model, {"past": _rand(past, np.float32), "update": _rand(update, np.float32), "idx": idx})


def test_tensor_scatter_no_indices(check_model):
    model = _scatter_model(np.float32, [2, 3, 5, 2], [2, 3, 5, 2], indices=False)
    check_model(model, {"past": _rand((2, 3, 5, 2), np.float32), "update": _rand((2, 3, 5, 2), np.float32)})


def test_tensor_scatter_symbolic(check_model):
    model = _scatter_model(np.float32, ["B", 2, 8, 3], ["B", 2, "S", 3], mode="circular")
    for batch, seq in ((1, 1), (3, 8)):
        feeds = {"past": _rand((batch, 2, 8, 3), np.float32), "update": _rand((batch, 2, seq, 3), np.float32),
                 "idx": RNG.integers(0, 8, batch).astype(np.int64)}
        check_model(model, feeds)


def test_tensor_scatter_folded(check_folded):
    model = _scatter_model(np.int64, [2, 6, 3], [2, 3, 3], mode="circular", axis=1)
    check_folded(model, {"past": _rand((2, 6, 3), np.int64), "update": _rand((2, 3, 3), np.int64),
                         "idx": np.array([5, 1], np.int64)})


@pytest.mark.parametrize("idx", [[0, 5], [-1, 0]])
def test_tensor_scatter_index_checked(idx):
    model = _scatter_model(np.float32, [2, 6, 3], [2, 2, 3], axis=1)
    feeds = {"past": _rand((2, 6, 3), np.float32), "update": _rand((2, 2, 3), np.float32), "idx": np.array(idx, np.int64)}
    with pytest.raises(Exception, match="exceeds the cache length"):
        sofie_run(model, feeds)


@pytest.mark.parametrize("past,update,attrs,match", [
    ([2, 4, 3], [2, 4, 3], {"axis": 0}, "must not be 0"),
    ([2, 4, 3], [2, 5, 3], {"axis": 1}, "longer than the cache"),
    ([2, 4, 3], [2, 2, 2], {"axis": 1}, "differs from past_cache"),
    ([2, 4, 3], [2, 2, 3], {"axis": 1, "mode": "ring"}, "mode"),
])
def test_tensor_scatter_errors(past, update, attrs, match):
    with pytest.raises(SofieError, match=match):
        sofie_run(_scatter_model(np.float32, past, update, indices=False, **attrs), {})


# ---- RoiAlign -----------------------------------------------------------------

def _roi_case(dtype, opset=16, rois=5, batch=2, symbolic=False, **attrs):
    x = _rand((batch, 3, 7, 6), dtype)
    corners = RNG.uniform(-1, 8, (rois, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(dtype)
    boxes[0] = [2, 2, 2, 2]  # an empty RoI
    idx = RNG.integers(0, batch, rois).astype(np.int64)
    r = "R" if symbolic else rois
    node = helper.make_node("RoiAlign", ["x", "rois", "idx"], ["y"], **attrs)
    model = make_model([node], [("x", dtype, ["N", 3, 7, 6] if symbolic else list(x.shape)), ("rois", dtype, [r, 4]),
                                ("idx", np.int64, [r])], [("y", dtype, None)], opset=opset)
    return model, {"x": x, "rois": boxes, "idx": idx}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("transform", [None, "half_pixel", "output_half_pixel"])
def test_roi_align(check_model, dtype, mode, transform):
    attrs = {"mode": mode, "output_height": 3, "output_width": 2}
    if transform:
        attrs["coordinate_transformation_mode"] = transform
    check_model(*_roi_case(dtype, **attrs))


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("attrs", [{}, {"sampling_ratio": 2}, {"spatial_scale": 0.5, "output_height": 4},
                                   {"sampling_ratio": 1, "output_width": 5, "spatial_scale": 2.0}])
def test_roi_align_opset10(check_model, mode, attrs):
    """Opset 10 has no coordinate_transformation_mode: no pixel shift."""
    check_model(*_roi_case(np.float32, opset=10, mode=mode, **attrs))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["avg", "max"])
def test_roi_align_opset22(dtype, mode):
    model, feeds = _roi_case(dtype, opset=22, mode=mode, output_height=2, output_width=3, sampling_ratio=2)
    ours = sofie_run(model, feeds)[0]
    np.testing.assert_allclose(ours, ReferenceEvaluator(model).run(None, feeds)[0], rtol=1e-5, atol=1e-5)


def test_roi_align_symbolic(check_model):
    model, _ = _roi_case(np.float32, symbolic=True, output_height=2, output_width=2)
    for rois, batch in ((1, 1), (6, 3)):
        check_model(model, _roi_case(np.float32, rois=rois, batch=batch)[1])


def test_roi_align_folded(check_folded):
    check_folded(*_roi_case(np.float64, mode="max", output_height=2, output_width=3, spatial_scale=0.75))
    check_folded(*_roi_case(np.float32, output_height=2, output_width=2))


@pytest.mark.parametrize("bad", [2, -1])
def test_roi_align_batch_index_checked(bad):
    model, feeds = _roi_case(np.float32)
    feeds["idx"][1] = bad
    with pytest.raises(Exception, match="batch index"):
        sofie_run(model, feeds)


@pytest.mark.parametrize("attrs,match", [({"mode": "min"}, "mode"), ({"output_height": 0}, "output_height"),
                                         ({"coordinate_transformation_mode": "asymmetric"}, "coordinate")])
def test_roi_align_errors(attrs, match):
    with pytest.raises(SofieError, match=match):
        sofie_run(_roi_case(np.float32, **attrs)[0], {})


# ---- TfIdfVectorizer --------------------------------------------------------------

POOL = dict(ngram_counts=[0, 4, 8], pool_int64s=[2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 2, 3, 5, 4],
            ngram_indexes=list(range(8)))


def _tfidf_model(dtype, shape, **attrs):
    attrs = {**POOL, "min_gram_length": 1, "max_gram_length": 3, "max_skip_count": 0, **attrs}
    attrs = {k: v for k, v in attrs.items() if v is not None}
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs)
    return make_model([node], [("x", dtype, shape)], [("y", np.float32, None)], opset=9)


def _tokens(shape, dtype):
    return RNG.integers(2, 9, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 2.0, 0.25, 3.0, 1.5, 0.75, 4.0]])
def test_tfidf(check_model, dtype, mode, weights):
    attrs = {"mode": mode} | ({"weights": weights} if weights else {})
    check_model(_tfidf_model(dtype, [3, 12], **attrs), {"x": _tokens((3, 12), dtype)})


@pytest.mark.parametrize("lengths", [(1, 1), (2, 2), (1, 2), (2, 3), (3, 3), (1, 3)])
@pytest.mark.parametrize("skip", [0, 1, 3])
def test_tfidf_grams(check_model, lengths, skip):
    model = _tfidf_model(np.int64, [16], mode="TF", min_gram_length=lengths[0], max_gram_length=lengths[1],
                         max_skip_count=skip)
    check_model(model, {"x": _tokens((16,), np.int64)})


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
def test_tfidf_no_pooled_length(check_model, mode):
    """Lengths the pool has no n-gram of give zeros."""
    model = _tfidf_model(np.int64, [2, 6], mode=mode, min_gram_length=2, max_gram_length=2, weights=[2.0] * 6,
                         ngram_counts=[0, 4, 4], pool_int64s=[2, 3, 5, 4, 6, 7, 2, 3, 5, 4], ngram_indexes=list(range(6)))
    check_model(model, {"x": _tokens((2, 6), np.int64)})


def test_tfidf_columns_shared(check_model):
    """ngram_indexes may map n-grams to any column (a repeated column adds up)."""
    model = _tfidf_model(np.int32, [2, 9], mode="TFIDF", ngram_indexes=[6, 0, 3, 3, 1, 2, 0, 5],
                         weights=[1.0, 2.0, 0.5, 1.5, 1.0, 3.0, 0.25, 1.0],
                         max_skip_count=1)
    check_model(model, {"x": _tokens((2, 9), np.int32)})


def test_tfidf_symbolic_rows(check_model):
    model = _tfidf_model(np.int64, ["N", 10], mode="IDF", max_skip_count=2)
    for rows in (1, 4):
        check_model(model, {"x": _tokens((rows, 10), np.int64)})


def test_tfidf_folded(check_folded):
    check_folded(_tfidf_model(np.int64, [2, 10], mode="TFIDF", weights=[0.5] * 8, max_skip_count=1),
                 {"x": _tokens((2, 10), np.int64)})


@pytest.mark.parametrize("attrs,match", [
    ({"mode": "BM25"}, "mode"),
    ({"mode": "TF", "pool_strings": ["a", "b"], "pool_int64s": None}, "pool_strings is not supported"),
    ({"mode": "TF", "min_gram_length": 3, "max_gram_length": 2}, "min_gram_length"),
    ({"mode": "TF", "ngram_indexes": [0, 1]}, "ngram_indexes has 2 entries"),
])
def test_tfidf_errors(attrs, match):
    with pytest.raises(SofieError, match=match):
        sofie_run(_tfidf_model(np.int64, [4], **attrs), {})


# ---- MelWeightMatrix ------------------------------------------------------------

MEL_OUT = {1: np.float32, 11: np.float64, 6: np.int32, 7: np.int64, 2: np.uint8}


def _mel_model(out_type, known, int_type=np.int64, float_type=np.float32, values=(8, 64, 8000, 0.0, 4000.0)):
    names = ["num_mel", "dft_length", "rate", "lower", "upper"]
    types = [int_type] * 3 + [float_type] * 2
    feeds = {n: np.array(v, t) for n, v, t in zip(names, values, types)}
    inits = {n: feeds.pop(n) for n in names if n in known}
    node = helper.make_node("MelWeightMatrix", names, ["y"], output_datatype=out_type)
    inputs = [(n, t, []) for n, t in zip(names, types) if n in feeds]
    return make_model([node], inputs, [("y", MEL_OUT[out_type], None)], initializers=inits, opset=17), feeds


@pytest.mark.parametrize("out_type", list(MEL_OUT))
@pytest.mark.parametrize("known", [(), ("num_mel", "dft_length"), ("rate", "lower", "upper"), ("dft_length",)])
def test_mel_run_time(check_model, out_type, known):
    """Computed at run time; the sizes not known when generating are run-time dims."""
    check_model(*_mel_model(out_type, known))


@pytest.mark.parametrize("values", [(8, 64, 8000, 0.0, 4000.0), (5, 33, 16000, 300.0, 6000.0), (12, 512, 22050, 20.0, 11025.0),
                                    (3, 16, 100, 10.0, 40.0)])
@pytest.mark.parametrize("int_type", [np.int64, np.int32])
def test_mel_values(check_model, check_folded, values, int_type):
    model, feeds = _mel_model(1, (), int_type, values=values)
    check_model(model, feeds)
    check_folded(model, feeds)


@pytest.mark.parametrize("known", [(), ("num_mel", "dft_length", "rate", "lower", "upper")])
def test_mel_double_edges(known):
    """float64 edge frequencies: onnxruntime has no kernel for them, onnx.reference checks."""
    model, feeds = _mel_model(11, known, np.int32, np.float64, values=(6, 40, 1000, 50.0, 450.0))
    ours = sofie_run(model, feeds)[0]
    np.testing.assert_allclose(ours, ReferenceEvaluator(model).run(None, feeds)[0], rtol=1e-6, atol=1e-7)


def test_mel_repeated_run_time_sizes(check_model):
    model, _ = _mel_model(1, ())
    for values in ((4, 32, 8000, 0.0, 4000.0), (10, 128, 8000, 100.0, 3000.0)):
        feeds = {i.name: np.array(v, np.int64 if k < 3 else np.float32)
                 for k, (i, v) in enumerate(zip(model.graph.input, values))}
        check_model(model, feeds)


def test_mel_band_outside_spectrum_checked():
    model, feeds = _mel_model(1, ("num_mel", "dft_length"), values=(8, 64, 8000, 0.0, 8000.0))
    with pytest.raises(Exception, match="outside the"):
        sofie_run(model, feeds)


def test_mel_errors():
    model, _ = _mel_model(1, ())
    model.graph.input[0].type.tensor_type.elem_type = 1  # num_mel_bins as float
    with pytest.raises(SofieError, match="num_mel_bins must be a scalar"):
        sofie_run(model, {})
