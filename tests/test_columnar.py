"""Columnar inference (issue 11): awkward arrays, uproot file sets and dask-awkward.

Every result is compared with the same compiled model called event by event on numpy arrays. Batched
calls may round differently from batch-1 calls (BLAS picks other kernels), hence rtol 1e-6 rather than
bit equality.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.columnar import _numpy

ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")

HIGGS = "data/higgs_model.onnx"
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]
RTOL, ATOL = 1e-6, 1e-7


def per_event(sess, *arrays) -> list:
    """Outputs of one call per event (batch 1) on numpy arrays."""
    return [sess.infer(*(a[i:i + 1] for a in arrays)) for i in range(len(arrays[0]))]


@pytest.fixture(scope="module")
def higgs():
    return sr.compile(sr.load(HIGGS))


@pytest.fixture(scope="module")
def flat_files(tmp_path_factory):
    """Two ROOT files written with uproot: the Higgs features, one branch in double precision."""
    folder = tmp_path_factory.mktemp("columnar")
    rng = np.random.default_rng(0)
    paths = []
    for k, n in enumerate((1234, 567)):
        columns = {f: rng.gamma(2.0, 0.5, n).astype(np.float32) for f in FEATURES}
        columns["m_bb"] = columns["m_bb"].astype(np.float64)
        path = folder / f"events_{k}.root"
        with uproot.recreate(path) as f:
            f["events"] = columns
        paths.append(str(path))
    return paths


def numpy_features(paths, tree="events") -> np.ndarray:
    parts = [uproot.open(p)[tree].arrays(FEATURES, library="np") for p in paths]
    return np.concatenate([np.stack([p[f] for f in FEATURES], axis=1) for p in parts]).astype(np.float32)


def test_record_array_and_zero_copy(higgs, flat_files):
    events = uproot.open(flat_files[0])["events"].arrays(FEATURES, entry_stop=50)
    x = numpy_features(flat_files)[:50]
    out = higgs.infer(events, features=FEATURES)
    assert isinstance(out, ak.Array) and str(out.type) == "50 * 1 * float32"
    np.testing.assert_allclose(out.to_numpy(), np.concatenate(per_event(higgs, x)), rtol=RTOL, atol=ATOL)
    # features= picks and orders the fields (uproot returns them in file order); without it, all in their order
    shuffled = ak.zip({f: events[f] for f in reversed(FEATURES)})
    np.testing.assert_array_equal(sr.columnar.infer(higgs, shuffled, features=FEATURES).to_numpy(), out.to_numpy())
    np.testing.assert_array_equal(higgs.infer(ak.zip({f: events[f] for f in FEATURES})).to_numpy(), out.to_numpy())
    # a contiguous float32 buffer reaches the Session as is
    assert np.shares_memory(_numpy(ak.from_numpy(x), np.dtype(np.float32), "x"), x)
    np.testing.assert_array_equal(higgs.infer(ak.from_numpy(x)).to_numpy(), out.to_numpy())


def test_evaluate_files(higgs, flat_files, tmp_path):
    x = numpy_features(flat_files)
    expected = np.concatenate(per_event(higgs, x))
    result = sr.columnar.evaluate(flat_files, "events", HIGGS, features=FEATURES, step_size=500, backend="jit",
                                  progress=False)
    assert result.fields == ["file", "entry", "score"] and len(result) == len(x)
    np.testing.assert_array_equal(result.file.to_numpy(), np.repeat([0, 1], [1234, 567]))
    np.testing.assert_array_equal(result.entry.to_numpy(), np.concatenate([np.arange(1234), np.arange(567)]))
    np.testing.assert_allclose(result.score.to_numpy(), expected, rtol=RTOL, atol=ATOL)
    written = sr.columnar.evaluate(flat_files, "events", higgs, features=FEATURES, step_size="10 kB",
                                   output=tmp_path / "scores.root", output_tree="dnn", progress=False)
    back = uproot.open(written)["dnn"].arrays(library="np")
    np.testing.assert_array_equal(back["entry"], result.entry.to_numpy())
    np.testing.assert_allclose(back["score"], result.score.to_numpy(), rtol=RTOL, atol=ATOL)  # other chunk sizes


def test_pad_and_mask():
    jagged = ak.Array([[1.0, 2.0, 3.0], [], [4.0]])
    padded, mask = sr.columnar.pad(jagged, 2, fill=-1.0, mask=True)
    np.testing.assert_array_equal(padded, [[1, 2], [-1, -1], [4, -1]])
    np.testing.assert_array_equal(mask, [[True, True], [False, False], [True, False]])
    assert padded.dtype == np.float32
    records = ak.zip({"pt": jagged, "eta": jagged * 10})
    np.testing.assert_array_equal(sr.columnar.pad(records, 2, features=["eta", "pt"])[0], [[10, 1], [20, 2]])
    with pytest.raises(sr.ShapeError, match="event 0 has 3 entries"):
        sr.columnar.pad(jagged, 2, clip=False)
    assert sr.columnar.unpad(padded, jagged).tolist() == [[1, 2], [], [4]]


def particle_jets(rng, n_events: int, low: int, high: int, features: int):
    counts = rng.integers(low, high + 1, n_events)
    flat = rng.standard_normal((int(counts.sum()), features)).astype(np.float32)
    return ak.unflatten(flat, counts), counts


def test_fixed_size_model_pads_jagged_input():
    """A model over exactly 4 particles x 3 features: jagged jets are padded with fill or truncated."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((12, 2)).astype(np.float32)
    onnx_model = make_model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                            [("x", np.float32, ["n", 4, 3])], [("y", np.float32, ["n", 2])], {"w": w})
    sess = sr.compile(sr.load(onnx_model, name="four_particles"))
    jets, _ = particle_jets(rng, 40, 0, 7, 3)
    out = sess.infer(jets, fill=0.5)
    padded = sr.columnar.pad(jets, 4, fill=0.5)
    np.testing.assert_allclose(out.to_numpy(), padded.reshape(40, 12) @ w, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def transformer():
    """A small TransformerEncoder with symbolic batch and particle count (dynamo export)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, dropout=0.0)
    module = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False).eval()
    n, p = torch.export.Dim("N"), torch.export.Dim("P")
    program = torch.onnx.export(module, (torch.randn(2, 6, 8),), dynamo=True, dynamic_shapes=({0: n, 1: p},),
                                opset_version=18, verbose=False)
    return sr.compile(sr.load(program.model_proto, name="columnar_encoder"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")
def test_jagged_particles_keep_their_length(transformer):
    """Jets of 1..9 particles: grouped by length, batched, and the per-particle outputs come back jagged."""
    rng = np.random.default_rng(2)
    jets, counts = particle_jets(rng, 60, 1, 9, 8)
    out = transformer.infer(jets)
    assert str(out.type) == "60 * var * 8 * float32"
    np.testing.assert_array_equal(ak.num(out, axis=1).to_numpy(), counts)
    for i in range(len(jets)):
        expected = transformer.infer(jets[i:i + 1].to_numpy())[0]
        np.testing.assert_allclose(out[i].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    as_records = ak.zip({f"f{k}": jets[:, :, k] for k in range(8)})  # per-particle fields, stacked
    np.testing.assert_allclose(ak.flatten(transformer.infer(as_records)).to_numpy(), ak.flatten(out).to_numpy())
    empty = transformer.infer(jets[:0])
    assert len(empty) == 0 and str(empty.type) == "0 * var * 8 * float32"


@pytest.fixture(scope="module")
def edgeconv():
    """The EdgeConv block of the transformer tests: batch fixed to 1, particle count symbolic (>= 2)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from test_torch_transformer import EdgeConv, export

    torch.manual_seed(2)
    module = EdgeConv().eval()
    p = torch.export.Dim("P", min=2, max=256)
    model = export(module, (torch.randn(1, 12, 2), torch.randn(1, 12, 5)), ({1: p}, {1: p}))
    return sr.compile(sr.load(model, name="columnar_edgeconv"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")
def test_jagged_two_inputs_event_by_event(edgeconv):
    """Two jagged inputs of one length symbol, from one record array whose fields are the input names."""
    rng = np.random.default_rng(3)
    points, counts = particle_jets(rng, 25, 2, 15, 2)
    features = ak.unflatten(rng.standard_normal((int(counts.sum()), 5)).astype(np.float32), counts)
    out = edgeconv.infer(ak.zip({"points": points, "features": features}, depth_limit=1))
    assert str(out.type) == "25 * var * 16 * float32"
    for i in range(25):
        expected = edgeconv.infer(points[i:i + 1].to_numpy(), features[i:i + 1].to_numpy())[0]
        np.testing.assert_allclose(out[i].to_numpy(), expected, rtol=RTOL, atol=ATOL)
    with pytest.raises(sr.ShapeError, match="event 0"):
        edgeconv.infer(points, features[:, 1:])


def test_errors(higgs):
    with pytest.raises(sr.ShapeError, match="expected 2 axes"):
        higgs.infer(ak.Array([[[1.0] * 7]]))
    with pytest.raises(sr.ShapeError, match=r"fields \['nope'\] not in the array"):
        higgs.infer(ak.zip({"a": np.zeros(3)}), features=["nope"])
    with pytest.raises(sr.SofieError, match="cannot open 'missing.root'"):
        sr.columnar.evaluate(["missing.root"], "events", higgs, features=FEATURES, progress=False)


def test_evaluate_jagged_records(tmp_path):
    """Particles stored as a split record branch (part.pt, ...): per-jet and per-particle outputs, written back."""
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 7, 300)
    particles = {k: ak.unflatten(rng.standard_normal(int(counts.sum())).astype(np.float32), counts)
                 for k in ("pt", "eta", "phi")}
    with uproot.recreate(tmp_path / "jets.root") as f:
        f["jets"] = {"part": ak.zip(particles)}
    w = rng.standard_normal((3, 2)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["per_particle"]),
             helper.make_node("ReduceSum", ["per_particle", "axis"], ["per_jet"], keepdims=0)]
    model = sr.load(make_model(nodes, [("x", np.float32, ["n", "p", 3])],
                               [("per_jet", np.float32, ["n", 2]), ("per_particle", np.float32, ["n", "p", 2])],
                               {"w": w, "axis": np.array([1], np.int64)}), name="particles")
    features = ["part.phi", "part.pt", "part.eta"]  # any order: the model's
    with pytest.raises(sr.SofieError, match="has no branch 'part_pt'"):
        sr.columnar.evaluate(tmp_path / "jets.root", "jets", model, features=["part_pt"], progress=False)
    out = sr.columnar.evaluate(tmp_path / "jets.root", "jets", model, features=features, step_size=70,
                               backend="jit", progress=False)
    assert str(out.type) == "300 * {file: int32, entry: int64, per_jet: 2 * float32, per_particle: var * 2 * float32}"
    x = np.stack([ak.flatten(particles[k]).to_numpy() for k in ("phi", "pt", "eta")], axis=1)
    np.testing.assert_allclose(ak.flatten(out.per_particle).to_numpy(), x @ w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.per_jet.to_numpy(), ak.sum(ak.unflatten(x @ w, counts), axis=1).to_numpy(),
                               rtol=1e-5, atol=1e-5)
    path = sr.columnar.evaluate(tmp_path / "jets.root", "jets", model, features=features, step_size=70,
                                output=tmp_path / "out.root", backend="jit", progress=False)
    back = uproot.open(path)["sofie"].arrays()
    assert back.per_particle.tolist() == out.per_particle.tolist() and back.entry.tolist() == list(range(300))


def test_dask_awkward(higgs, flat_files):
    """uproot.dask arrays through infer (lazy, synchronous scheduler) and evaluate(dask=True)."""
    pytest.importorskip("dask_awkward")
    import dask

    lazy = uproot.dask({flat_files[0]: "events"}, filter_name=FEATURES, step_size=300)
    scores = higgs.infer(lazy, features=FEATURES)
    with dask.config.set(scheduler="sync"):
        computed = scores.compute()
    eager = higgs.infer(uproot.open(flat_files[0])["events"].arrays(FEATURES), features=FEATURES)
    # Chunks of 300 rows against the whole file in blocks of rows (planning/row_blocks.py): the products'
    # summation order may differ in the last bits between two partitions of the batch, as in any BLAS.
    np.testing.assert_allclose(computed.to_numpy(), eager.to_numpy(), rtol=1e-5, atol=1e-7)
    result = sr.columnar.evaluate(flat_files, "events", higgs, features=FEATURES, step_size=400, dask=True)
    assert result.npartitions == 6
    with dask.config.set(scheduler="sync"):
        np.testing.assert_array_equal(result.score.compute().to_numpy(),
                                      sr.columnar.evaluate(flat_files, "events", higgs, features=FEATURES,
                                                           step_size=400, progress=False).score.to_numpy())


def test_dask_local_cluster(flat_files):
    """evaluate(dask=True) on a 2-worker LocalCluster (fresh processes compile the model) equals the local run."""
    pytest.importorskip("dask_awkward")
    distributed = pytest.importorskip("distributed")
    model = sr.load(HIGGS)
    local = sr.columnar.evaluate(flat_files, "events", model, features=FEATURES, step_size=300, backend="jit",
                                 progress=False)
    lazy = sr.columnar.evaluate(flat_files, "events", model, features=FEATURES, step_size=300, backend="jit",
                                dask=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = client.compute(lazy).result()
    assert remote.fields == local.fields
    for name in local.fields:
        np.testing.assert_array_equal(remote[name].to_numpy(), local[name].to_numpy())
