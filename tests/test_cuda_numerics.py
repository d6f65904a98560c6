"""The CUDA target's numbers: each family's model against onnxruntime on the CPU (or the operators' numpy
references) at the usual tolerances (fp32, TF32 off), several batch sizes and repeated calls (the second call of
a shape is captured in a CUDA graph, later ones replay it), indices checked on the device, a columnar chunk.

Each test runs twice: on a GPU (``gpu``, ``make test-gpu``; skipped with the reason where none is present) and
in the host emulation of the CUDA runtime and cuBLAS (``emulated``: tests/cuda_emulation.py, in ``make test``),
which runs the same generated source, kernels and Session on the CPU. Device arrays (cupy, torch) are GPU-only.
When the target was written no GPU was lent: only the emulated runs had run."""

from __future__ import annotations

import cuda_models
import numpy as np
import pytest
from conftest import ATOL, RTOL, ort_run, random_array
from cuda_emulation import emulated_session, work_counts

import sofie_rdf as sr
from sofie_rdf.targets.cuda.toolchain import device_archs

GPU = pytest.mark.skipif(not device_archs(), reason="no CUDA device or driver")
RUNNERS = [pytest.param("gpu", marks=[pytest.mark.gpu, GPU]), "emulated"]

# Each family's input shapes, "N" for the batch.
FAMILIES = {"mlp": [("N", 8)], "cnn": [("N", 3, 12, 10)], "conv1d3d": [("N", 2, 17), ("N", 2, 4, 6, 5)],
            "attention": [("N", 5, 16)], "movement_and_reductions": [("N", 3, 4), (1, 3)],
            "dims_in_arithmetic": [("N", 6, 4)], "normalization_and_heads": [("N", 4, 5, 3)],
            "batched_matmul": [("N", 3, 4, 5), ("N", 3, 5, 2)], "fused_attention": [("N", 7, 16)],
            "conv_gemm": [("N", 3, 9, 7), ("N", 1, 5, 6, 4)],
            "attention_op": [("N", 4, 6, 8), ("N", 2, 7, 8), ("N", 2, 7, 8), ("N", 35, 80), ("N", 40, 80), ("N", 40, 80),
                             ("N", 5, 144), ("N", 9, 144), ("N", 9, 144)]}


@pytest.fixture(scope="module", params=RUNNERS)
def runner(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def build(runner, tmp_path_factory):
    """Model -> Session: ``sr.compile(backend="cuda")`` on the GPU, or the emulated build of the same code."""
    if runner == "gpu":
        return lambda proto: sr.compile(proto, backend="cuda")
    folder = tmp_path_factory.mktemp("emulated")
    return lambda proto: emulated_session(proto, folder)


@pytest.fixture(scope="module")
def sessions(build):
    return {name: (getattr(cuda_models, name)(), build(getattr(cuda_models, name)())) for name in FAMILIES}


def _feeds(proto, name, batch, seed):
    shapes = [tuple(batch if d == "N" else d for d in shape) for shape in FAMILIES[name]]
    return {i.name: random_array(shape, seed=seed + k) for k, (i, shape) in enumerate(zip(proto.graph.input, shapes))}


def _as_list(out):
    return list(out) if isinstance(out, tuple) else [out]


def _close(got, want) -> None:
    for g, w in zip(_as_list(got), want):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_matches_onnxruntime(sessions, name):
    """Batches 1, 7 and 64, each called three times (direct, captured, replayed), then 7 again (its graph kept)."""
    proto, sess = sessions[name]
    for k, batch in enumerate((1, 7, 64, 7)):
        feeds = _feeds(proto, name, batch, seed=k)
        want = ort_run(proto, feeds)
        for _ in range(3):
            _close(sess.infer(*feeds.values()), want)


@pytest.mark.parametrize("name", ["attention", "batched_matmul", "cnn", "conv_gemm", "fused_attention", "mlp"])
def test_launches_do_not_grow_with_the_batch(sessions, runner, name):
    """The kernels, library calls and copies of a call (run directly, captured, replayed) are the same at batch
    1, 5 and 40: every batch dim is in the launches' grids and the products' batch counts, never a host loop."""
    if runner != "emulated":
        pytest.skip("the emulation counts the work of a call")
    proto, sess = sessions[name]
    seen = {}
    for batch in (1, 5, 40):
        feeds = _feeds(proto, name, batch, seed=batch)
        work_counts(sess)
        calls = []
        for _ in range(3):
            _close(sess.infer(*feeds.values()), ort_run(proto, feeds))
            calls.append(work_counts(sess))
        seen[batch] = calls
    assert seen[1] == seen[5] == seen[40], seen
    assert all(c["kernels"] + c["library"] > 0 for c in seen[1])


def test_bias_and_relu_in_the_products_epilogue(sessions, runner):
    """The MLP's Gemm + bias + ReLU and Gemm (transposed B) + bias are one cuBLASLt call each, their epilogues adding
    the bias and applying ReLU: a call is those two library calls and the Softmax kernel."""
    if runner != "emulated":
        pytest.skip("the emulation counts the work of a call")
    proto, sess = sessions["mlp"]
    feeds = _feeds(proto, "mlp", 9, seed=4)
    work_counts(sess)
    _close(sess.infer(*feeds.values()), ort_run(proto, feeds))
    counts = work_counts(sess)
    assert (counts["library"], counts["kernels"]) == (2, 1), counts
    assert sess.code.source.count("kernels::gemm_bias(blas_lt_") == 2


def test_hostile_names_run(build):
    proto = cuda_models.mlp(hostile=True)
    x = random_array((3, 8))
    _close(build(proto).infer(x), ort_run(proto, {proto.graph.input[0].name: x}))


def test_cpu_jit_beside_the_cuda_library_of_the_same_model(build):
    """A model's CUDA library loaded first, then its CPU header declared to Cling: both are TMVA_SOFIE_<Name>,
    and the JIT bound the Session's inline functions to the library's symbols until those were hidden."""
    pytest.importorskip("ROOT")  # the JIT is ROOT's Cling (GPU machines may have no ROOT)
    proto = cuda_models.mlp()
    proto.graph.name = "twin_of_a_cuda_library"  # a name no other test declares to Cling first
    x = random_array((3, 8))
    want = ort_run(proto, {proto.graph.input[0].name: x})
    _close(build(proto).infer(x), want)
    _close(sr.compile(proto, backend="jit").infer(x), want)


def test_wrong_shape_is_a_shape_error(sessions):
    with pytest.raises(sr.ShapeError):
        sessions["mlp"][1].infer(np.zeros((2, 7), np.float32))


def test_rdataframe_stays_on_the_cpu(sessions):
    from sofie_rdf.compile import cling_session_of

    with pytest.raises(sr.SofieError, match="RDataFrame runs the CPU target"):
        cling_session_of(sessions["mlp"][1])


def test_large_batch_grows_the_arena(sessions, runner):
    """A large batch after small ones grows the arena (and drops the graphs into the old one); a small one after
    it runs in the grown arena (the emulation's threads make 16384 rows slow: 1024 there)."""
    proto, sess = sessions["mlp"]
    for batch in (16384 if runner == "gpu" else 1024, 3):
        feeds = _feeds(proto, "mlp", batch, seed=9)
        _close(sess.infer(*feeds.values()), ort_run(proto, feeds))


def _graph_feeds(edges: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    receivers = rng.integers(-6, 6, (edges, 1))  # negative indices count from the end
    return {"h": rng.standard_normal((6, 4)).astype(np.float32), "senders": rng.integers(-6, 6, edges),
            "receivers_2d": np.repeat(receivers, 4, axis=1), "receivers_nd": rng.integers(0, 6, (edges, 1)),
            "dist": rng.random((6, 6)).astype(np.float32)}


def test_message_passing_matches_onnxruntime(build):
    """Gather, ScatterElements (add), ScatterND (max), GatherElements, TopK and ConvTranspose with run-time
    indices; an index outside its axis raises naming the node, and the Session runs on afterwards."""
    proto = cuda_models.message_passing()
    sess = build(proto)
    for edges, seed in ((1, 0), (9, 1), (40, 2), (9, 3)):
        feeds = _graph_feeds(edges, seed)
        want = ort_run(proto, feeds)
        for _ in range(3):
            _close(sess.infer(*feeds.values()), want)
    bad = _graph_feeds(4, 5)
    bad["senders"][2] = 6
    with pytest.raises(sr.ShapeError, match="Gather node 'gather_senders': an index is out of range"):
        sess.infer(*bad.values())
    feeds = _graph_feeds(4, 6)
    _close(sess.infer(*feeds.values()), ort_run(proto, feeds))


def numpy_reference(proto, feeds: dict) -> list[np.ndarray]:
    """The model run node by node through the operators' numpy references (for what onnxruntime refuses: the
    recurrent layers' batch-major layout)."""
    from sofie_rdf.ops import op_for

    model = sr.load(proto).ir
    values = {**model.initializers, **feeds}
    for node in model.nodes:
        outputs = op_for(node, model.name).evaluate([values[i] if i else None for i in node.inputs])
        values.update({o: v for o, v in zip(node.outputs, outputs) if o})
    return [values[o] for o in model.outputs]


def test_recurrent_layers_match_the_reference(build):
    """Bidirectional LSTM with peepholes, initial states and sequence lengths; batch-major GRU with
    linear_before_reset and clip; GRU resetting first, reversed; RNN with LeakyRelu."""
    proto = cuda_models.recurrent()
    sess = build(proto)
    rng = np.random.default_rng(0)
    for lens in ([3, 1], [0, 2], [3, 3]):
        feeds = {"s": rng.standard_normal((3, 2, 4)).astype(np.float32),
                 "sb": rng.standard_normal((2, 3, 4)).astype(np.float32), "lens": np.array(lens, np.int32)}
        want = numpy_reference(proto, feeds)
        for _ in range(3):
            _close(sess.infer(*feeds.values()), want)


def test_rms_norm_matches_the_reference(build):
    proto = cuda_models.rms_norm()
    sess = build(proto)
    for batch in (1, 5, 5, 5):
        x = random_array((batch, 3, 4, 5), seed=batch)
        _close(sess.infer(x), numpy_reference(proto, {"x": x}))


def test_columnar_chunks(tmp_path, sessions):
    """sr.columnar.evaluate runs an uproot file's chunks through the CUDA Session (backend="cuda" compiles one
    on a GPU; here the Session is given)."""
    uproot = pytest.importorskip("uproot")
    ak = pytest.importorskip("awkward")
    proto, sess = sessions["mlp"]
    rng = np.random.default_rng(0)
    branches = {f"f{k}": rng.standard_normal(1000).astype(np.float32) for k in range(8)}
    path = tmp_path / "events.root"
    with uproot.recreate(path) as f:
        f["Events"] = branches
    got = sr.columnar.evaluate(str(path), "Events", sess, features=list(branches), step_size=300, progress=False)
    want = ort_run(proto, {"x": np.stack(list(branches.values()), axis=1)})[0]
    np.testing.assert_allclose(ak.to_numpy(got["y"]), want, rtol=RTOL, atol=ATOL)


# ---- GPU only: device arrays, compile options -------------------------------------------------------------

@pytest.mark.gpu
@GPU
def test_cupy_arrays_in_and_out():
    cupy = pytest.importorskip("cupy")
    proto = cuda_models.cnn()
    sess = sr.compile(proto, backend="cuda")
    feeds = _feeds(proto, "cnn", 16, seed=3)
    x = cupy.asarray(feeds["x"])
    for _ in range(3):
        y = sess.infer(x)
        assert isinstance(y, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(y), ort_run(proto, feeds)[0], rtol=RTOL, atol=ATOL)


@pytest.mark.gpu
@GPU
def test_torch_cuda_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    proto = cuda_models.attention()
    sess = sr.compile(proto, backend="cuda")
    feeds = _feeds(proto, "attention", 4, seed=5)
    x = torch.from_numpy(feeds["x"]).cuda()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):  # the call is queued on torch's current stream, the output made on it
        y = sess.infer(x)
    stream.synchronize()
    assert isinstance(y, torch.Tensor) and y.is_cuda
    want = ort_run(proto, feeds)[0]
    np.testing.assert_allclose(y.cpu().numpy(), want, rtol=RTOL, atol=ATOL)
    into = torch.empty_like(y)
    for _ in range(3):  # the checks of this signature kept: the outputs written into out=
        assert sess.infer(x, out=into) is into
        np.testing.assert_allclose(into.cpu().numpy(), want, rtol=RTOL, atol=ATOL)
    assert sess.device_bytes() >= 32 << 20  # weights, arena, staging and cuBLAS's workspace


@pytest.mark.gpu
@GPU
def test_columnar_compiles_for_the_gpu(tmp_path):
    uproot = pytest.importorskip("uproot")
    ak = pytest.importorskip("awkward")
    proto = cuda_models.mlp()
    branches = {f"f{k}": np.random.default_rng(k).standard_normal(500).astype(np.float32) for k in range(8)}
    with uproot.recreate(tmp_path / "events.root") as f:
        f["Events"] = branches
    got = sr.columnar.evaluate(str(tmp_path / "events.root"), "Events", proto, features=list(branches),
                               backend="cuda", progress=False)
    want = ort_run(proto, {"x": np.stack(list(branches.values()), axis=1)})[0]
    np.testing.assert_allclose(ak.to_numpy(got["y"]), want, rtol=RTOL, atol=ATOL)


@pytest.mark.gpu
@GPU
def test_reserve_up_front():
    proto = cuda_models.mlp()
    sess = sr.compile(proto, backend="cuda", reserve={"N": 20000})
    feeds = _feeds(proto, "mlp", 20000, seed=11)
    _close(sess.infer(*feeds.values()), ort_run(proto, feeds))
    with pytest.raises(sr.SofieError, match="no dim 'batch'"):
        sr.compile(proto, backend="cuda", reserve={"batch": 4})


# ---- the device path, device memory (the emulation: host memory stands for device memory) ------------------

class OnDevice:
    """A numpy array presented as a device array (``__cuda_array_interface__``): in the emulation, device
    pointers are host pointers, so the device path runs on it for real."""

    def __init__(self, array: np.ndarray):
        self.array = np.ascontiguousarray(array)
        self.__cuda_array_interface__ = {"shape": self.array.shape, "typestr": self.array.dtype.str,
                                         "data": (self.array.ctypes.data, False), "version": 3, "strides": None}


@pytest.fixture
def emulated(runner, tmp_path):
    """Model -> a Session of its own emulated library (its device memory counted for it alone)."""
    if runner != "emulated":
        pytest.skip("host memory stands for device memory in the emulation only")
    return lambda proto: emulated_session(proto, tmp_path)


def test_device_path_checks_once_per_signature(emulated, monkeypatch):
    """Device arrays with out=: the outputs are written in place, match onnxruntime, and a call repeating the
    inputs' signature (pointer, shape, dtype) skips the checks; another batch is checked once more; an out=
    array of the wrong shape is refused, and outputs of an unknown array library cannot be made."""
    import sofie_rdf._cuda as binding

    proto = cuda_models.mlp()
    sess = emulated(proto)
    checks = []
    original = binding.check_device_arrays
    monkeypatch.setattr(binding, "check_device_arrays", lambda *a: checks.append(1) or original(*a))
    for batch, calls in ((5, 3), (12, 2)):
        x = OnDevice(_feeds(proto, "mlp", batch, seed=batch)["x"])
        want = ort_run(proto, {"x": x.array})
        for _ in range(calls):
            y = OnDevice(np.zeros((batch, 4), np.float32))
            assert sess.infer(x, out=y) is y
            _close(y.array, want)
    assert len(checks) == 2  # once per signature
    with pytest.raises(sr.ShapeError, match=r"out= array 0: expected float32 of shape \(12, 4\)"):
        sess.infer(x, out=OnDevice(np.zeros((12, 5), np.float32)))
    with pytest.raises(sr.SofieError, match="cannot be made"):
        sess.infer(x)


def test_device_bytes_are_the_sessions_own(emulated):
    """device_bytes() is what the Session holds (weights, arena, staging, cuBLAS workspace): all the device
    memory its library allocated, growing with the largest batch."""
    from cuda_emulation import set_memory_cap

    proto = cuda_models.cnn()
    sess = emulated(proto)
    before = sess.device_bytes()
    others = set_memory_cap(sess, 0) - before  # earlier tests' Sessions of the same (cached) library, idle
    assert others >= 0 and before >= 32 << 20  # cuBLAS's workspace at least
    feeds = _feeds(proto, "cnn", 40, seed=2)
    sess.infer(*feeds.values())
    assert sess.device_bytes() == set_memory_cap(sess, 0) - others > before


def test_a_batch_too_large_for_memory_runs_in_halves(emulated):
    """Under a device memory cap that the batch's arena exceeds, a model whose rows are independent runs the
    batch in halves (halved again until the arena fits) and matches onnxruntime; a model whose rows mix
    (attention over the particles) fails naming the memory."""
    from cuda_emulation import set_memory_cap

    proto = cuda_models.cnn()
    sess = emulated(proto)
    small = _feeds(proto, "cnn", 2, seed=1)
    _close(sess.infer(*small.values()), ort_run(proto, small))
    work_counts(sess)
    feeds = _feeds(proto, "cnn", 300, seed=3)
    staging = sum(a.nbytes for a in feeds.values()) + 300 * 5 * 4 + 1024
    set_memory_cap(sess, sess.device_bytes() + staging + 64 * 1024)  # a few events' intermediates
    try:
        _close(sess.infer(*feeds.values()), ort_run(proto, feeds))
        halves = work_counts(sess)
    finally:
        set_memory_cap(sess, 0)
    _close(sess.infer(*small.values()), ort_run(proto, small))
    assert halves["kernels"] > 4 * work_counts(sess)["kernels"]  # the 300 events ran in several chunks
    mixing = emulated(cuda_models.fused_attention())
    set_memory_cap(mixing, mixing.device_bytes() + 64 * 1024)
    try:
        feeds = _feeds(cuda_models.fused_attention(), "fused_attention", 300, seed=4)
        with pytest.raises(sr.SofieError, match="out of device memory"):
            mixing.infer(*feeds.values())
    finally:
        set_memory_cap(mixing, 0)
