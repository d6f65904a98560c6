"""RDataFrame with models of the kinds analyses ship (issue: real HEP models), one of each class.

Each model becomes a column through ``sr.rdf.define``; every event's value must equal ``Session.infer`` on
the values that event read, at batch size 1 (the computation the functor makes per event), and the
session is checked against the model's own framework or onnxruntime by the class's other tests:

* a BDT from an XGBoost JSON file (tree ensembles);
* a Keras 2 ``.h5`` file read without Keras 3's loader;
* an ``If`` choosing its branch from the event's data while running;
* a model whose input dims the file left unnamed;
* a ParT-style pair embedding of a variable number of particles per event (an ``RVec`` of four-vectors:
  ``Trilu``, ``NonZero``, ``ScatterND`` with the particle count free);
* a ParticleNet EdgeConv over each event's jet (``RVec`` columns of points, features and mask: kNN by ``TopK``,
  kernel-1 convolutions over (P, k), the particle count free), on both backends; a jet below the k + 1
  particles ``TopK`` needs raises out of the event loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model
from keras2_files import dense, input_layer, normal, sequential, write_model_h5
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr
from sofie_rdf import _root

FEATURES = [f"f{k}" for k in range(6)]


@pytest.fixture(scope="module")
def ROOT():  # noqa: N802 (the module's own name)
    return _root.root()


def events(ROOT):  # noqa: N803
    """200 events: six float features (one NaN now and then, for the trees) and an RVec of four-vectors
    (px, py, pz, E) of 2 to 9 particles, laid out as the model's (4, P): all px first, then py, pz, E."""
    features = {name: f"float(std::sin({k + 1} * 0.37 * rdfentry_ + {k}))" for k, name in enumerate(FEATURES)}
    features["f0"] = "rdfentry_ % 17 == 3 ? std::numeric_limits<float>::quiet_NaN() : float(std::cos(0.11 * rdfentry_))"
    df = ROOT.RDataFrame(200)
    for name, expr in features.items():
        df = df.Define(name, expr)
    return df.Define("vectors", """
        const std::size_t p = 2 + rdfentry_ % 8;
        ROOT::RVec<float> v(4 * p);
        for (std::size_t k = 0; k < p; ++k) {
           const float px = 20 * std::sin(1.3f * k + rdfentry_), py = 20 * std::cos(0.7f * k - rdfentry_);
           const float pz = 30 * std::sin(0.5f * k + 0.1f * rdfentry_);
           v[k] = px; v[p + k] = py; v[2 * p + k] = pz;
           v[3 * p + k] = std::sqrt(px * px + py * py + pz * pz + 0.3f);
        }
        return v;""")


def column(node, name: str, inputs: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    cols = node.AsNumpy([name, *inputs, "rdfentry_"])
    order = np.argsort(cols["rdfentry_"])
    return np.asarray(cols[name])[order], {k: np.asarray(cols[k])[order] for k in inputs}


def check_scalar_features(ROOT, sess: sr.Session, output: int | None = None) -> None:  # noqa: N803
    """The model on the six feature columns: each event's value is infer() of that event's row."""
    node = sr.rdf.define(events(ROOT), "score", sess, FEATURES, output=output)
    got, cols = column(node, "score", FEATURES)
    x = np.stack([cols[f] for f in FEATURES], axis=1).astype(np.float32)
    for i in range(len(x)):
        out = sess.infer(x[i:i + 1])
        expected = out[output] if isinstance(out, tuple) else out
        np.testing.assert_array_equal(np.asarray(got[i], dtype=np.float32).reshape(-1), expected.reshape(-1))


def test_xgboost_json_bdt(ROOT, tmp_path):  # noqa: N803
    xgboost = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    label = (np.nan_to_num(x[:, 1]) + np.nan_to_num(x[:, 2]) * x[:, 3] > 0).astype(int)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3}, xgboost.DMatrix(x, label=label), 20)
    booster.save_model(str(tmp_path / "bdt.json"))
    sess = sr.compile(sr.load(tmp_path / "bdt.json", name="rdf_bdt"), backend="native")
    check_scalar_features(ROOT, sess, output=1)  # (label, probabilities): the probabilities per event


def test_keras2_h5(ROOT, tmp_path):  # noqa: N803
    rng = np.random.default_rng(1)
    config = sequential("mlp", [input_layer("x", [6]), dense("hidden", 16, "relu"), dense("out", 1, "sigmoid")])
    weights = {"hidden": {"kernel": normal(rng, 6, 16), "bias": normal(rng, 16)},
               "out": {"kernel": normal(rng, 16, 1), "bias": normal(rng, 1)}}
    write_model_h5(tmp_path / "mlp.h5", config, weights)
    check_scalar_features(ROOT, sr.compile(sr.load(tmp_path / "mlp.h5", name="rdf_keras2"), backend="native"))


def _branch(name: str, node: helper.NodeProto) -> helper.GraphProto:
    return helper.make_graph([node], name, [], [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])


def test_if_decided_per_event(ROOT):  # noqa: N803
    """ReduceSum of the event's features > 0 doubles them, else negates them: the branch changes per event."""
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["positive"]),
             helper.make_node("If", ["positive"], ["y"], name="choose",
                              then_branch=_branch("then", helper.make_node("Add", ["x", "x"], ["out"])),
                              else_branch=_branch("else", helper.make_node("Neg", ["x"], ["out"])))]
    model = make_model(nodes, [("x", np.float32, ["N", 6])], [("y", np.float32, ["N", 6])],
                       {"zero": np.array(0, np.float32)})
    check_scalar_features(ROOT, sr.compile(sr.load(model, name="rdf_if"), backend="jit"))


def test_unnamed_dims(ROOT):  # noqa: N803
    """(?, 6) @ W then Add of a (?, 4) input computed from the same features: the dims are unified."""
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((6, 4)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None])
    for d in x.type.tensor_type.shape.dim:
        d.Clear()
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Tanh", ["h"], ["y"])],
                              "unnamed", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    sess = sr.compile(sr.load(model, name="rdf_unnamed"), backend="native")
    assert [str(d) for d in sess.inputs[0].shape] == ["x_dim0", "6"]  # the inner dim bound by the MatMul
    check_scalar_features(ROOT, sess)


def test_pair_embedding_of_each_jet(ROOT):  # noqa: N803
    pytest.importorskip("torch")
    from benchmarks.shipped import pair_embed, torchscript_onnx

    example = np.abs(np.random.default_rng(3).standard_normal((2, 4, 7)).astype(np.float32)) + 1
    model = torchscript_onnx(pair_embed((8, 4)), {"v": example}, {"v": {0: "N", 2: "P"}})
    sess = sr.compile(sr.load(model, name="rdf_pairs"), backend="native")
    node = sr.rdf.define(events(ROOT), "bias", sess, ["vectors"])
    got, cols = column(node, "bias", ["vectors"])
    for bias, vectors in zip(got, cols["vectors"]):
        v = np.asarray(vectors, dtype=np.float32).reshape(1, 4, -1)
        np.testing.assert_array_equal(np.asarray(bias, dtype=np.float32), sess.infer(v).reshape(-1))
    assert {len(v) // 4 for v in cols["vectors"]} == set(range(2, 10))


# ---------------------------------------------------------------- EdgeConv over each event's jet

EDGE_K, EDGE_CHANNELS = 3, 4
JET_INPUTS = ("points", "features", "mask")
JET_COLUMNS = ["jet_points", "jet_features", "jet_mask"]


@pytest.fixture(scope="module")
def edgeconv() -> bytes:
    """A small ParticleNet EdgeConv block (k = 3, 4 -> 8 channels) from the TorchScript exporter, P and N free."""
    torch = pytest.importorskip("torch")
    from benchmarks.shipped import edgeconv_block, jets, randomize_batchnorm, torchscript_onnx

    torch.manual_seed(0)
    block = randomize_batchnorm(edgeconv_block(k=EDGE_K, cin=EDGE_CHANNELS, cout=8), seed=1)
    example = {k: v for k, v in jets(2, 8, EDGE_CHANNELS).items() if k in JET_INPUTS}
    return torchscript_onnx(block, example, {k: {0: "N", 2: "P"} for k in example})


@pytest.fixture(scope="module", params=["native", "jit"])
def edgeconv_session(request, edgeconv) -> sr.Session:
    return sr.compile(sr.load(edgeconv, name=f"rdf_edgeconv_{request.param}"), backend=request.param)


def jet_events(ROOT, particles: str):  # noqa: N803
    """200 jets of ``particles`` (a C++ expression of rdfentry_) particles, the last ``rdfentry_ % 3`` of them
    padding (mask 0, points and features 0, as the exporter's users pad): RVec columns laid out (C, P)."""
    df = ROOT.RDataFrame(200).Define("jet_n", f"std::size_t({particles})")
    df = df.Define("jet_mask", """
        ROOT::RVec<float> m(jet_n, 1.f);
        for (std::size_t k = jet_n - std::min<std::size_t>(rdfentry_ % 3, jet_n - 1); k < jet_n; ++k) m[k] = 0;
        return m;""")
    cell = {"jet_points": "std::sin(1.7f * k + 0.3f * c + rdfentry_)",
            "jet_features": "std::cos(0.9f * k - 1.1f * c + 0.2f * rdfentry_) * (1 + c)"}
    for name, channels in (("jet_points", 2), ("jet_features", EDGE_CHANNELS)):
        df = df.Define(name, f"""
            ROOT::RVec<float> v({channels} * jet_n);
            for (std::size_t c = 0; c < {channels}; ++c)
               for (std::size_t k = 0; k < jet_n; ++k) v[c * jet_n + k] = {cell[name]} * jet_mask[k];
            return v;""")
    return df


def test_edgeconv_of_each_jet(ROOT, edgeconv, edgeconv_session):  # noqa: N803
    """kNN by TopK and kernel-1 convolutions over (P, k), P read off each event's RVecs: k + 1 = 4 to 12."""
    from benchmarks.shipped import ort_session

    node = sr.rdf.define(jet_events(ROOT, f"{EDGE_K + 1} + rdfentry_ % 9"), "edges", edgeconv_session, JET_COLUMNS)
    got, cols = column(node, "edges", JET_COLUMNS)
    ort = ort_session(edgeconv)
    for out, *values in zip(got, *cols.values()):
        p = len(values[-1])
        feeds = {k: np.asarray(v, dtype=np.float32).reshape(1, -1, p) for k, v in zip(JET_INPUTS, values)}
        expected = edgeconv_session.infer(*feeds.values())
        np.testing.assert_array_equal(np.asarray(out, dtype=np.float32), expected.reshape(-1))
        np.testing.assert_allclose(expected, ort.run(None, feeds)[0], rtol=1e-4, atol=1e-5)
    assert {len(m) for m in cols["jet_mask"]} == set(range(EDGE_K + 1, EDGE_K + 10))


def test_jet_below_k_plus_1_raises(ROOT, edgeconv_session):  # noqa: N803
    """A jet of k particles (TopK takes k + 1): std::invalid_argument out of the event loop naming the model
    and node, and ROOT goes on."""
    name = edgeconv_session.name
    node = sr.rdf.define(jet_events(ROOT, f"rdfentry_ == 50 ? {EDGE_K} : 8"), "edges", edgeconv_session, JET_COLUMNS)
    with pytest.raises(Exception, match=f"model {name}: TopK node '/TopK': K = {EDGE_K + 1} must not exceed the axis size P"
                       ) as info:
        node.AsNumpy(["edges"])
    assert "invalid_argument" in type(info.value).__name__
    ok = sr.rdf.define(jet_events(ROOT, str(EDGE_K + 1)), "edges", edgeconv_session, JET_COLUMNS)
    assert all(np.isfinite(v).all() and len(v) == 8 * (EDGE_K + 1) for v in ok.AsNumpy(["edges"])["edges"])
