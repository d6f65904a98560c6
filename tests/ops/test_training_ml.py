"""Momentum, Adagrad, Adam (ai.onnx.preview.training), Binarizer, ArrayFeatureExtractor (ai.onnx.ml), BitCast
and CenterCropPad.

onnxruntime's inference build has no training optimizers, no integer Binarizer and no BitCast (opset 26):
those compare with ``onnx.reference.ReferenceEvaluator`` (BitCast with numpy's ``view``); the rest with
onnxruntime.  Covers every attribute, several tensors per optimizer node, omitted outputs, symbolic dims,
folding of constant inputs and run-time range errors."""

import numpy as np
import pytest
from conftest import make_model, sofie_run
from onnx import helper
from onnx.reference import ReferenceEvaluator

import sofie_rdf as sr
from sofie_rdf.errors import SofieError

TRAINING, ML = "ai.onnx.preview.training", "ai.onnx.ml"


def _model(node, inputs, outputs, domain=None, opset=17, initializers=None):
    model = make_model([node], inputs, outputs, initializers, opset=opset)
    if domain:
        model.opset_import.append(helper.make_opsetid(domain, 1))
    return model


def _compare(ours, ref, rtol=1e-5, atol=1e-6):
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        b = np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _reference(model, feeds):
    """onnx's reference outputs in the declared output types (its single-tensor Adam returns float64 for float)."""
    ref = ReferenceEvaluator(model).run(None, feeds)
    types = [helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type) for o in model.graph.output]
    return [np.asarray(r).astype(t) for r, t in zip(ref, types)]


def _check_reference(model, feeds, backend="jit", **tol):
    _compare(sofie_run(model, feeds, backend), _reference(model, feeds), **tol)


# ---- optimizers ------------------------------------------------------------------

OPTIMIZERS = {  # op: (states, outputs per tensor, attribute sets)
    "Momentum": (1, 2, [dict(alpha=0.9, beta=0.1, mode="standard", norm_coefficient=0.01),
                        dict(alpha=0.5, beta=0.7, mode="nesterov", norm_coefficient=0.0)]),
    "Adagrad": (1, 2, [dict(), dict(decay_factor=0.1, epsilon=1e-3, norm_coefficient=0.02)]),
    "Adam": (2, 3, [dict(), dict(alpha=0.8, beta=0.95, epsilon=1e-4, norm_coefficient=0.05, norm_coefficient_post=0.1)]),
}


def _optimizer_model(op, attrs, n_tensors, dtype, shapes, r_dtype=np.float32, outputs=None):
    states, per, _ = OPTIMIZERS[op]
    groups = ["x", "g"] + [f"s{j}" for j in range(states)]
    ins = ["r", "t"] + [f"{grp}{k}" for grp in groups for k in range(n_tensors)]
    outs = outputs or [f"{grp}{k}_new" for grp in ["x"] + groups[2:] for k in range(n_tensors)]
    node = helper.make_node(op, ins, outs, domain=TRAINING, **attrs)
    inputs = [("r", r_dtype, []), ("t", np.int64, [])]
    inputs += [(f"{grp}{k}", dtype, shapes[k]) for grp in groups for k in range(n_tensors)]
    return _model(node, inputs, [(o, dtype, None) for o in outs if o], TRAINING, opset=12), ins


def _optimizer_feeds(ins, dtype, shapes, t, r_dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    n = len(shapes)
    feeds = {"r": np.array(0.1, r_dtype), "t": np.array(t, np.int64)}
    for j, name in enumerate(ins[2:]):
        v = rng.standard_normal(shapes[j % n])
        feeds[name] = (np.abs(v) if name.startswith("s") else v).astype(dtype)  # states (H) non-negative
    return feeds


@pytest.mark.parametrize("op", list(OPTIMIZERS))
@pytest.mark.parametrize("attr_set", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("t", [0, 3])
def test_optimizer(op, attr_set, dtype, t):
    shapes = [(3, 4)]
    model, ins = _optimizer_model(op, OPTIMIZERS[op][2][attr_set], 1, dtype, shapes)
    _check_reference(model, _optimizer_feeds(ins, dtype, shapes, t))


@pytest.mark.parametrize("op", list(OPTIMIZERS))
def test_optimizer_several_tensors_double_rate(op):
    shapes = [(2, 3), (5,), ()]
    model, ins = _optimizer_model(op, OPTIMIZERS[op][2][1], 3, np.float32, shapes, r_dtype=np.float64)
    _check_reference(model, _optimizer_feeds(ins, np.float32, shapes, 2, r_dtype=np.float64), rtol=1e-4)


@pytest.mark.parametrize("op", list(OPTIMIZERS))
def test_optimizer_only_new_x(op):
    """Trailing outputs may be omitted: only the new X."""
    model, ins = _optimizer_model(op, OPTIMIZERS[op][2][0], 1, np.float32, [(4,)], outputs=["x0_new"])
    _check_reference(model, _optimizer_feeds(ins, np.float32, [(4,)], 1))


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_optimizer_symbolic(backend):
    model, ins = _optimizer_model("Adam", OPTIMIZERS["Adam"][2][1], 1, np.float32, [("N", 3)])
    sess = sr.compile(sr.load(model), backend=backend)
    for n in (2, 5):
        feeds = _optimizer_feeds(ins, np.float32, [(n, 3)], 4, seed=n)
        _compare(list(sess.infer(*[feeds[i] for i in ins])), _reference(model, feeds))


@pytest.mark.parametrize("op", list(OPTIMIZERS))
def test_optimizer_folded(op):
    """All inputs constant: the numpy reference (constant folding) against onnx's reference."""
    model, ins = _optimizer_model(op, OPTIMIZERS[op][2][1], 1, np.float32, [(3,)])
    feeds = _optimizer_feeds(ins, np.float32, [(3,)], 2)
    ref = _reference(model, feeds)
    del model.graph.input[:]
    model.graph.initializer.extend(helper.make_tensor(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape,
                                                      v.reshape(-1).tolist()) for k, v in feeds.items())
    sess = sr.compile(sr.load(model))
    out = sess.infer()
    _compare(list(out) if isinstance(out, tuple) else [out], ref)


def test_optimizer_errors():
    model, _ = _optimizer_model("Momentum", {**OPTIMIZERS["Momentum"][2][0], "mode": "heavy"}, 1, np.float32, [(2,)])
    with pytest.raises(SofieError, match="mode must be 'standard' or 'nesterov'"):
        sr.load(model)
    node = helper.make_node("Adagrad", ["r", "t", "x", "g"], ["y"], domain=TRAINING)
    model = _model(node, [("r", np.float32, []), ("t", np.int64, []), ("x", np.float32, [2]), ("g", np.float32, [2])],
                   [("y", np.float32, None)], TRAINING)
    with pytest.raises(SofieError, match="do not split into R, T and 3 groups"):
        sr.load(model)
    node = helper.make_node("Adagrad", ["r", "t", "x", "g", "h"], ["y"], domain=TRAINING)
    model = _model(node, [("r", np.float32, []), ("t", np.int64, []), ("x", np.float32, [2]), ("g", np.float32, [3]),
                          ("h", np.float32, [2])], [("y", np.float32, None)], TRAINING)
    with pytest.raises(SofieError, match="does not match X"):
        sr.load(model)


# ---- Binarizer ------------------------------------------------------------------

def _binarizer_model(dtype, dims, **attrs):
    node = helper.make_node("Binarizer", ["x"], ["y"], domain=ML, **attrs)
    return _model(node, [("x", dtype, dims)], [("y", dtype, None)], ML)


@pytest.mark.parametrize("threshold", [None, 0.5, -1.25])
def test_binarizer_float(check_model, threshold):
    attrs = {} if threshold is None else {"threshold": threshold}
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    x[0, 0] = np.float32(0.5)  # equal to the threshold: 0
    check_model(_binarizer_model(np.float32, ["N", 5], **attrs), {"x": x})


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.5])
def test_binarizer_reference(dtype, threshold):
    """onnxruntime has Binarizer for float32 only: onnx's reference for the other types."""
    x = np.arange(-3, 3).astype(dtype)
    _check_reference(_binarizer_model(dtype, [6], threshold=threshold), {"x": x})


def test_binarizer_folded(check_folded):
    check_folded(_binarizer_model(np.float32, [4], threshold=0.1), {"x": np.array([-1, 0.1, 0.2, 3], np.float32)})


def test_binarizer_bad_type():
    with pytest.raises(SofieError, match="not supported"):
        sr.load(_binarizer_model(np.bool_, [2]))


# ---- ArrayFeatureExtractor ------------------------------------------------------------------

def _afe_model(dtype, dims, idx_dims):
    node = helper.make_node("ArrayFeatureExtractor", ["x", "idx"], ["y"], domain=ML)
    return _model(node, [("x", dtype, dims), ("idx", np.int64, idx_dims)], [("y", dtype, None)], ML)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shape,idx", [((5,), [4, 0]), ((3, 4), [1, 1, 3]), ((2, 3, 4), [[0, 2]])])
def test_array_feature_extractor(check_model, dtype, shape, idx):
    x = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    idx = np.array(idx, np.int64)
    check_model(_afe_model(dtype, list(shape), list(idx.shape)), {"x": x, "idx": idx})


def test_array_feature_extractor_symbolic(check_model):
    model = _afe_model(np.float32, ["N", 4], ["K"])
    for n, idx in ((2, [3]), (3, [0, 1, 2, 3, 3])):
        x = np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)
        check_model(model, {"x": x, "idx": np.array(idx, np.int64)})


def test_array_feature_extractor_folded(check_folded):
    check_folded(_afe_model(np.float32, [2, 3], [2]), {"x": np.ones((2, 3), np.float32), "idx": np.array([2, 0])})


@pytest.mark.parametrize("bad", [3, -1])
def test_array_feature_extractor_out_of_range(bad):
    sess = sr.compile(sr.load(_afe_model(np.float32, [2, 3], [2])))
    with pytest.raises(Exception, match="ArrayFeatureExtractor index .* out of range"):
        sess.infer(np.ones((2, 3), np.float32), np.array([0, bad], np.int64))


# ---- BitCast ------------------------------------------------------------------

PAIRS = [(np.float32, np.int32), (np.int32, np.float32), (np.float64, np.int64), (np.int64, np.float64),
         (np.uint32, np.float32), (np.int8, np.uint8), (np.uint8, np.int8), (np.int16, np.uint16),
         (np.uint64, np.int64), (np.uint8, np.bool_), (np.bool_, np.int8)]


def _bitcast_model(src, dst, dims):
    node = helper.make_node("BitCast", ["x"], ["y"], to=helper.np_dtype_to_tensor_dtype(np.dtype(dst)))
    return make_model([node], [("x", src, dims)], [("y", dst, None)], opset=26)


def _bits(shape, dtype, seed=0):
    if np.dtype(dtype) == np.bool_:
        return np.random.default_rng(seed).random(shape) < 0.5
    raw = np.random.default_rng(seed).integers(0, 2, (*shape, np.dtype(dtype).itemsize * 8)).astype(np.uint8)
    data = np.packbits(raw, axis=-1).view(dtype).reshape(shape)
    return np.where(np.isfinite(data), data, 0).astype(dtype) if np.dtype(dtype).kind == "f" else data


@pytest.mark.parametrize("src,dst", PAIRS)
def test_bitcast(src, dst):
    x = _bits((3, 4), src)
    if np.dtype(dst) == np.bool_:
        x = (x % 2).astype(src)  # bytes 0 and 1: the valid bools
    (y,) = sofie_run(_bitcast_model(src, dst, ["N", 4]), {"x": x})
    np.testing.assert_array_equal(y, x.view(dst))
    assert y.dtype == np.dtype(dst)


def test_bitcast_folded():
    x = np.array([1.0, -2.5], np.float32)
    model = _bitcast_model(np.float32, np.int32, [2])
    del model.graph.input[:]
    model.graph.initializer.append(helper.make_tensor("x", 1, [2], x.tolist()))
    np.testing.assert_array_equal(sr.compile(sr.load(model)).infer(), x.view(np.int32))


def test_bitcast_size_mismatch():
    with pytest.raises(SofieError, match="cannot reinterpret float32"):
        sr.load(_bitcast_model(np.float32, np.int64, [2]))


# ---- CenterCropPad ------------------------------------------------------------------

def _ccp_model(dtype, dims, target, axes=None, shape_dtype=np.int64):
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"], **({} if axes is None else {"axes": axes}))
    return make_model([node], [("x", dtype, dims)], [("y", dtype, None)], {"shape": np.array(target, shape_dtype)},
                      opset=18)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
@pytest.mark.parametrize("shape,target,axes", [
    ((5, 6), (3, 9), None), ((4, 7, 3), (6, 4, 3), None), ((4, 7, 3), (2, 10), [0, 1]),
    ((3, 8, 5), (3, 3), [-1, 0]), ((2, 3), (2, 3), None), ((6,), (0,), None)])
def test_center_crop_pad(check_model, dtype, shape, target, axes):
    x = (np.arange(np.prod(shape)) % 7 + 1).reshape(shape).astype(dtype)
    check_model(_ccp_model(dtype, list(shape), list(target), axes), {"x": x})


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_center_crop_pad_int32_shape_symbolic_other_axis(backend):
    """A symbolic dim on an axis left alone; the target shape as int32 (onnxruntime's function body refuses an
    int32 shape: onnx's reference)."""
    model = _ccp_model(np.float32, ["N", 5], [2], axes=[1], shape_dtype=np.int32)
    for n in (1, 3):
        _check_reference(model, {"x": np.arange(n * 5, dtype=np.float32).reshape(n, 5)}, backend)


def test_center_crop_pad_folded(check_folded):
    check_folded(_ccp_model(np.float32, [3, 4], [5, 2]), {"x": np.arange(12, dtype=np.float32).reshape(3, 4)})


@pytest.mark.parametrize("dims,target,axes,match", [
    (["N", 4], [2, 2], None, "symbolic length N"), ([3, 4], [2], None, "1 target lengths for axes"),
    ([3, 4], [2, 2], [1, 1], "distinct"), ([3, 4], [-1, 2], None, "negative")])
def test_center_crop_pad_errors(dims, target, axes, match):
    with pytest.raises(SofieError, match=match):
        sr.load(_ccp_model(np.float32, dims, target, axes))


def _ccp_runtime_model(dims, n, axes=None, name="ccp_rt"):
    """CenterCropPad whose target shape (n lengths) is a graph input."""
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"], **({} if axes is None else {"axes": axes}))
    return make_model([node], [("x", np.float32, dims), ("shape", np.int64, [n])], [("y", np.float32, None)],
                      opset=18, name=name)


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_center_crop_pad_shape_at_run_time(backend):
    """The target shape a graph input (the input's batch symbolic): compiled once, cropped and padded to several
    shapes, against the onnx reference."""
    model = _ccp_runtime_model(["N", 7, 4], 2, axes=[-1, 1], name=f"ccp_rt_{backend}")
    sess = sr.compile(sr.load(model), backend=backend)
    for k, (n, target) in enumerate([(2, (6, 3)), (1, (2, 10)), (3, (4, 7)), (2, (0, 1))]):
        feeds = {"x": (np.arange(n * 28) % 11 + k).reshape(n, 7, 4).astype(np.float32),
                 "shape": np.array(target, np.int64)}
        _compare([sess.infer(feeds["x"], feeds["shape"])], _reference(model, feeds))


def test_center_crop_pad_shape_at_run_time_negative():
    sess = sr.compile(sr.load(_ccp_runtime_model([3, 4], 2, name="ccp_bad")))
    with pytest.raises(sr.errors.ShapeError, match=r"model 'ccp_bad': CenterCropPad node .*target length -2 "
                                                   r"\(shape\[1\]\) is negative"):
        sess.infer(np.zeros((3, 4), np.float32), np.array([2, -2], np.int64))
