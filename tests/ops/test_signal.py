"""HannWindow, HammingWindow, BlackmanWindow, DFT and STFT.

Reference: onnxruntime (windows for every output type, DFT opsets 17/20 and STFT for float32/float64),
except the real inverse of a one-sided spectrum (inverse=1, onesided=1), which onnxruntime does not
implement: onnx.reference.ReferenceEvaluator checks it.  Window sizes are covered known when the code is
generated and computed at run time (a run-time dim); DFT/STFT cover axis, inverse, onesided, dft_length,
window, frame_length, real and complex input, symbolic batches and folding; the values that shape the
output (DFT's axis and dft_length, STFT's frame_step and frame_length) also as graph inputs, read while
running by a model compiled once, on both backends, and refused with the node named when bad."""

import numpy as np
import pytest
from conftest import check_runs, make_model, ort_run, sofie_run
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from sofie_rdf.errors import ShapeError, SofieError

WINDOWS = ("HannWindow", "HammingWindow", "BlackmanWindow")
BACKENDS = ("jit", "native")
OUT_TYPES = {1: np.float32, 11: np.float64, 6: np.int32, 7: np.int64, 2: np.uint8}


def _check_reference(model, feeds, rtol=1e-5, atol=1e-6):
    """Compare with onnx.reference.ReferenceEvaluator (for forms onnxruntime lacks)."""
    ours = sofie_run(model, feeds)
    ref = ReferenceEvaluator(model).run(None, feeds)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _window_model(op, size_dtype=np.int64, size=None, **attrs):
    out = OUT_TYPES[attrs.get("output_datatype", 1)]
    inits = {"n": np.array(size, size_dtype)} if size is not None else {}
    inputs = [] if size is not None else [("n", size_dtype, [])]
    return make_model([helper.make_node(op, ["n"], ["y"], **attrs)], inputs, [("y", out, None)], inits)


@pytest.mark.parametrize("op", WINDOWS)
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("out_type", list(OUT_TYPES))
def test_window_known_size(check_model, op, periodic, out_type):
    check_model(_window_model(op, size=10, periodic=periodic, output_datatype=out_type), {})


@pytest.mark.parametrize("op", WINDOWS)
@pytest.mark.parametrize("size_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("periodic", [0, 1])
def test_window_size_at_run_time(check_model, op, size_dtype, periodic):
    model = _window_model(op, size_dtype, periodic=periodic, output_datatype=11)
    for n in (7, 16, 0, 3):
        check_model(model, {"n": np.array(n, size_dtype)})


def test_window_symbolic_size(check_model):
    """Size taken from a symbolic dim (Shape of an input): the output dim is that symbol, no run-time dim."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], start=1, end=2), helper.make_node("Squeeze", ["s"], ["n"]),
             helper.make_node("BlackmanWindow", ["n"], ["y"], periodic=0)]
    model = make_model(nodes, [("x", np.float32, [2, "L"])], [("y", np.float32, None)], opset=17)
    for n in (5, 12):
        check_model(model, {"x": np.zeros((2, n), np.float32)})


@pytest.mark.parametrize("op", WINDOWS)
def test_window_folded(check_folded, op):
    check_folded(_window_model(op, periodic=0), {"n": np.array(9, np.int64)})


def test_window_negative_size_at_run_time():
    with pytest.raises(SofieError, match="HannWindow got a negative dim -3"):
        sofie_run(_window_model("HannWindow"), {"n": np.array(-3, np.int64)})


def _dft_model(shape, dtype=np.float32, opset=20, length=None, axis=None, **attrs):
    """DFT with dft_length and (opset 20) axis as initializers, or axis as an attribute (opset 17)."""
    inits, names = {}, ["x", "", ""]
    if length is not None:
        inits["len"], names[1] = np.array(length, np.int64), "len"
    if axis is not None and opset >= 20:
        inits["axis"], names[2] = np.array(axis, np.int64), "axis"
    elif axis is not None:
        attrs["axis"] = axis
    while not names[-1]:
        names.pop()
    node = helper.make_node("DFT", names, ["y"], **attrs)
    return make_model([node], [("x", dtype, shape)], [("y", dtype, None)], inits, opset=opset)


def _signal(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("opset,axis", [(17, None), (17, 2), (20, None), (20, 1), (20, -3)])
@pytest.mark.parametrize("complex_in,inverse,onesided", [(False, 0, 0), (False, 1, 0), (False, 0, 1), (True, 0, 0),
                                                         (True, 1, 0)])
def test_dft_attributes(check_model, opset, axis, complex_in, inverse, onesided):
    shape = (2, 6, 5, 2 if complex_in else 1)
    model = _dft_model(list(shape), opset=opset, axis=axis, inverse=inverse, onesided=onesided)
    check_model(model, {"x": _signal(shape)}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length", [4, 8, 11])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opset", [17, 20])
def test_dft_length_and_dtype(check_model, length, dtype, opset):
    shape = (3, 8, 2)
    model = _dft_model(list(shape), dtype, opset, length=length, axis=1)
    check_model(model, {"x": _signal(shape, dtype)}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opset", [17, 20])
def test_dft_onesided_complex_reference(opset):
    """A one-sided forward transform of complex input: onnxruntime refuses it, the onnx reference keeps the bins."""
    shape = (2, 7, 3, 2)
    _check_reference(_dft_model(list(shape), np.float64, opset, axis=1, onesided=1), {"x": _signal(shape, np.float64)})


@pytest.mark.parametrize("length", [None, 6, 9])
@pytest.mark.parametrize("complex_in", [False, True])
def test_dft_real_inverse_reference(length, complex_in):
    """irfft (inverse + onesided): the onnx reference, as onnxruntime does not implement it."""
    shape = (2, 5, 2 if complex_in else 1)
    model = _dft_model(list(shape), np.float64, 20, length=length, axis=1, inverse=1, onesided=1)
    _check_reference(model, {"x": _signal(shape, np.float64)})


def test_dft_symbolic_batch(check_model):
    model = _dft_model(["N", 8, "M", 2], opset=20, axis=1, onesided=0)
    for n, m in ((1, 3), (4, 2)):
        check_model(model, {"x": _signal((n, 8, m, 2), seed=n)}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("inverse,onesided", [(0, 1), (1, 0)])
def test_dft_folded(check_folded, inverse, onesided):
    model = _dft_model([2, 6, 1], opset=17, inverse=inverse, onesided=onesided)
    check_folded(model, {"x": _signal((2, 6, 1))}, rtol=1e-4, atol=1e-4)


def test_dft_folded_real_inverse():
    model = _dft_model([2, 6, 2], np.float64, 20, axis=1, inverse=1, onesided=1)
    x = _signal((2, 6, 2), np.float64)
    folded = make_model(model.graph.node, [], [("y", np.float64, None)],
                        {"x": x, "axis": np.array(1, np.int64)}, opset=20)
    _check_reference(folded, {})


@pytest.mark.parametrize("shape,attrs,message", [
    ([2, 4, 2], {"axis": -1}, "last"), ([2, 4, 2], {"axis": 3}, "out of range"),
    ([2, 4, 2], {"axis": 1, "length": 0}, "must be positive"),
    ([2, 1, 2], {"axis": 1, "inverse": 1, "onesided": 1}, "must be positive"),
])
def test_dft_refused(shape, attrs, message):
    with pytest.raises(SofieError, match=message):
        sofie_run(_dft_model(shape, opset=20, **attrs), {"x": _signal(tuple(shape))})


def _stft_model(signal_shape, step, dtype=np.float32, window=None, frame_length=None, **attrs):
    inits, names = {"step": np.array(step, np.int64)}, ["x", "step", "", ""]
    inputs = [("x", dtype, signal_shape)]
    if window is not None:
        inputs.append(("w", dtype, [window]))
        names[2] = "w"
    if frame_length is not None:
        inits["fl"], names[3] = np.array(frame_length, np.int64), "fl"
    while not names[-1]:
        names.pop()
    node = helper.make_node("STFT", names, ["y"], **attrs)
    return make_model([node], inputs, [("y", dtype, None)], inits, opset=17)


@pytest.mark.parametrize("window,frame_length", [(8, None), (8, 8), (None, 6)])
@pytest.mark.parametrize("onesided", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stft_attributes(check_model, window, frame_length, onesided, dtype):
    shape = (2, 32, 1)
    feeds = {"x": _signal(shape, dtype)}
    if window is not None:
        feeds["w"] = np.hanning(window).astype(dtype)
    model = _stft_model(list(shape), 3, dtype, window, frame_length, onesided=onesided)
    check_model(model, feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("onesided", [0, 1])
def test_stft_whole_signal_frame_reference(onesided):
    """No window and no frame_length: one frame of the whole signal; onnxruntime needs one of them, so the
    onnx reference checks it."""
    shape = (2, 12, 1)
    _check_reference(_stft_model(list(shape), 5, onesided=onesided), {"x": _signal(shape)}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("step", [1, 4, 5])
def test_stft_complex_signal(check_model, step):
    shape = (1, 20, 2)
    model = _stft_model(list(shape), step, window=8, onesided=0)
    check_model(model, {"x": _signal(shape), "w": np.hamming(8).astype(np.float32)}, rtol=1e-4, atol=1e-4)


def test_stft_symbolic_batch_and_length(check_model):
    """A symbolic signal length gives a symbolic frame count, 1 + floor((L - 8) / 4)."""
    model = _stft_model(["B", "L", 1], 4, window=8)
    for b, length in ((1, 24), (3, 8), (2, 19)):
        feeds = {"x": _signal((b, length, 1), seed=b), "w": np.ones(8, np.float32)}
        check_model(model, feeds, rtol=1e-4, atol=1e-4)


def test_stft_folded(check_folded):
    model = _stft_model([2, 16, 1], 4, window=8)
    check_folded(model, {"x": _signal((2, 16, 1)), "w": np.hanning(8).astype(np.float32)}, rtol=1e-4, atol=1e-4)


def test_stft_window_length_mismatch():
    with pytest.raises(SofieError, match="window has 8 values for frames of 6"):
        sofie_run(_stft_model([1, 16, 1], 2, window=8, frame_length=6), {"x": _signal((1, 16, 1)),
                                                                         "w": np.ones(8, np.float32)})


def test_stft_signal_shorter_than_frame_at_run_time():
    with pytest.raises(SofieError, match="must hold a frame"):
        sofie_run(_stft_model([1, "L", 1], 2, window=8), {"x": _signal((1, 5, 1)), "w": np.ones(8, np.float32)})


# ---- axis, dft_length, frame_step and frame_length computed at run time ------------------------------------

def _run_time_model(op, names, inputs, attrs, opset):
    """One ``op`` node whose inputs ``names`` ("" for omitted) are the graph inputs ``inputs``."""
    while not names[-1]:
        names.pop()
    node = helper.make_node(op, names, ["y"], **attrs)
    return make_model([node], inputs, [("y", inputs[0][1], None)], opset=opset)


def _check_runs(model, runs, backend, reference=ort_run, tol=1e-4):
    """Compile ``model`` once, run it with each feeds of ``runs`` and compare with ``reference``."""
    check_runs(model, runs, backend, reference, rtol=tol, atol=tol, dtypes=True)


def _reference_run(model, feeds):
    return ReferenceEvaluator(model).run(None, feeds)


def _scalar_feed(value, dtype=np.int64):
    return np.array(value, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inverse,onesided,complex_in", [(0, 0, True), (1, 0, True), (0, 1, False)])
def test_dft_axis_and_length_at_run_time(backend, inverse, onesided, complex_in):
    """Both read while running (the transform in place): every dim but the last is a run-time dim."""
    shape = (2, 6, 5, 2 if complex_in else 1)
    model = _run_time_model("DFT", ["x", "len", "axis"], [("x", np.float32, list(shape)), ("len", np.int64, []),
                                                           ("axis", np.int64, [])],
                            {"inverse": inverse, "onesided": onesided}, 20)
    runs = [{"x": _signal(shape, seed=k), "len": _scalar_feed(n), "axis": _scalar_feed(a)}
            for k, (a, n) in enumerate([(1, 6), (2, 4), (-3, 9), (-2, 1), (0, 3), (1, 11)])]
    _check_runs(model, runs, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("onesided", [0, 1])
def test_dft_axis_at_run_time(backend, onesided):
    """dft_length omitted: each axis transforms its own length, in scratch planned for the longest."""
    shape = ("N", 7, 4, 1)
    model = _run_time_model("DFT", ["x", "", "axis"], [("x", np.float64, list(shape)), ("axis", np.int64, [])],
                            {"onesided": onesided}, 20)
    runs = [{"x": _signal((n, 7, 4, 1), np.float64, seed=n), "axis": _scalar_feed(a)}
            for n, a in ((3, 1), (2, 2), (5, 0), (1, -2), (9, -3), (12, 0))]
    _check_runs(model, runs, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opset", [17, 20])
def test_dft_length_at_run_time(backend, opset):
    """The axis known (attribute or constant): only the bins along it are a run-time dim."""
    shape = (3, 8, 2)
    inits = {"axis": np.array(1, np.int64)} if opset == 20 else {}
    model = _run_time_model("DFT", ["x", "len", "axis" if opset == 20 else ""],
                            [("x", np.float32, list(shape)), ("len", np.int32, [])], {} if opset == 20 else {"axis": 1},
                            opset)
    model.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items())
    runs = [{"x": _signal(shape, seed=n), "len": _scalar_feed(n, np.int32)} for n in (8, 3, 16, 5, 1)]
    _check_runs(model, runs, backend)


@pytest.mark.parametrize("with_length", [False, True])
def test_dft_real_inverse_at_run_time(with_length):
    """irfft (inverse + onesided) with the axis, and the length or its default 2 (n - 1), read while running:
    the onnx reference, as onnxruntime does not implement it."""
    names = ["x", "len" if with_length else "", "axis"]
    inputs = [("x", np.float64, [2, 5, 4, 2]), ("axis", np.int64, [])]
    if with_length:
        inputs.insert(1, ("len", np.int64, []))
    model = _run_time_model("DFT", names, inputs, {"inverse": 1, "onesided": 1}, 20)
    runs = [{"x": _signal((2, 5, 4, 2), np.float64, seed=n), "axis": _scalar_feed(a),
             **({"len": _scalar_feed(n)} if with_length else {})} for a, n in ((1, 7), (2, 6), (-4, 3))]
    _check_runs(model, runs, "jit", _reference_run, tol=1e-6)


@pytest.mark.parametrize("axis,length,message", [
    (2, 4, "DFT node .*axis 2 is the last"), (3, 4, "DFT node .*axis 3 is out of range for rank 3"),
    (-4, 4, "DFT node .*axis -4 is out of range"), (1, 0, "DFT node .*dft_length is 0, it must be positive"),
])
def test_dft_bad_value_at_run_time(axis, length, message):
    model = _run_time_model("DFT", ["x", "len", "axis"], [("x", np.float32, [2, 4, 2]), ("len", np.int64, []),
                                                          ("axis", np.int64, [])], {}, 20)
    with pytest.raises(ShapeError, match=message):
        sofie_run(model, {"x": _signal((2, 4, 2)), "len": _scalar_feed(length), "axis": _scalar_feed(axis)})


def test_dft_real_inverse_default_length_too_short_at_run_time():
    model = _run_time_model("DFT", ["x", "", "axis"], [("x", np.float64, [1, 3, 1]), ("axis", np.int64, [])],
                            {"inverse": 1, "onesided": 1}, 20)
    with pytest.raises(ShapeError, match="DFT node .*default length 2 \\(n - 1\\).* is 0"):
        sofie_run(model, {"x": _signal((1, 3, 1), np.float64), "axis": _scalar_feed(0)})


def _stft_run_time_model(signal_shape, window=None, frame_length="fl", **attrs):
    """STFT with frame_step (and frame_length unless None) as graph inputs."""
    inputs = [("x", np.float32, signal_shape), ("step", np.int64, [])]
    if window is not None:
        inputs.append(("w", np.float32, [window]))
    if frame_length:
        inputs.append((frame_length, np.int64, []))
    return _run_time_model("STFT", ["x", "step", "w" if window else "", frame_length or ""], inputs, attrs, 17)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("onesided", [0, 1])
def test_stft_step_and_length_at_run_time(backend, onesided):
    """No window: the frame count and the bins are run-time dims, the tables sized for the whole signal."""
    model = _stft_run_time_model(["B", 24, 1], onesided=onesided)
    runs = [{"x": _signal((b, 24, 1), seed=b), "step": _scalar_feed(s), "fl": _scalar_feed(n)}
            for b, s, n in ((2, 3, 8), (1, 1, 24), (3, 5, 6), (2, 7, 1))]
    _check_runs(model, runs, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_length", [False, True])
def test_stft_step_at_run_time_with_window(backend, with_length):
    """The window fixes the frame length (a frame_length read is checked against it): only the frames vary."""
    model = _stft_run_time_model([1, "L", 2], window=8, frame_length="fl" if with_length else None, onesided=0)
    runs = [{"x": _signal((1, n, 2), seed=s), "w": np.hanning(8).astype(np.float32), "step": _scalar_feed(s),
             **({"fl": _scalar_feed(8)} if with_length else {})} for s, n in ((1, 8), (3, 20), (4, 31))]
    _check_runs(model, runs, backend)


@pytest.mark.parametrize("step,length,window,message", [
    (0, 4, None, "STFT node .*frame_step is 0, it must be positive"),
    (2, -1, None, "STFT node .*frame_length is -1, it must be positive"),
    (2, 17, None, "STFT node .*frame_length is 17, longer than the signal \\(16\\)"),
    (2, 6, 8, "STFT node .*frame_length is 6, but the window has 8 values"),
])
def test_stft_bad_value_at_run_time(step, length, window, message):
    model = _stft_run_time_model([1, 16, 1], window=window)
    feeds = {"x": _signal((1, 16, 1)), "step": _scalar_feed(step), "fl": _scalar_feed(length)}
    if window:
        feeds["w"] = np.ones(window, np.float32)
    with pytest.raises(ShapeError, match=message):
        sofie_run(model, feeds)
