"""RDataFrame: the model as a column, event by event equal to Python ``infer`` on the same values.

Every RDataFrame result is compared with ``Session.infer`` on the values the
same node read (``AsNumpy``), aligned by ``rdfentry_`` because with several
threads events arrive in any order: exactly against ``infer`` at batch size 1
(the very computation the functor does per event) and within 1e-6 against one
``infer`` over the whole batch (where larger products may sum in another order).
Implicit multithreading is global to the process, so the ``threads`` fixture
switches it on for one test and always off again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import helper

import sofie_rdf as sr
from sofie_rdf import _root

DATA = Path(__file__).resolve().parent.parent / "data"
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]
BATCH_TOL = 1e-6


@pytest.fixture(scope="module")
def ROOT():  # noqa: N802 (the module's own name)
    return _root.root()


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request, ROOT) -> Iterator[int]:  # noqa: N803
    """Implicit MT with this many threads for one test (1: off), reset afterwards whatever happens."""
    if ROOT.IsImplicitMTEnabled():  # left on by an earlier in-process run (e.g. the CLI's `run`)
        ROOT.DisableImplicitMT()
    if request.param > 1:
        ROOT.EnableImplicitMT(request.param)
    try:
        yield request.param
    finally:
        if ROOT.IsImplicitMTEnabled():
            ROOT.DisableImplicitMT()


@pytest.fixture(scope="module")
def higgs() -> sr.Session:
    return sr.compile(sr.load(DATA / "higgs_model.onnx"))


@pytest.fixture(scope="module")
def higgs_file(tmp_path_factory, ROOT) -> str:  # noqa: N803
    """The signal tree rewritten in clusters of 250 events, so that two threads really share the work."""
    path = str(tmp_path_factory.mktemp("rdf") / "higgs_clusters.root")
    opts = ROOT.RDF.RSnapshotOptions()
    opts.fAutoFlush = 250
    ROOT.RDataFrame("sig_tree", str(DATA / "higgs_sample.root")).Snapshot("events", path, FEATURES, opts)
    return path


def by_entry(node, columns: list[str]) -> dict[str, np.ndarray]:
    """``AsNumpy`` of ``columns`` (plus the entry number and slot), sorted by entry."""
    cols = node.Define("slot_", "rdfslot_").AsNumpy([*columns, "rdfentry_", "slot_"])
    order = np.argsort(cols["rdfentry_"], kind="stable")
    return {k: np.asarray(v)[order] for k, v in cols.items()}


def rvecs(values: np.ndarray) -> list[np.ndarray]:
    """An object array of RVecs (what AsNumpy gives for array columns) as numpy arrays."""
    return [np.asarray(v, dtype=np.float32) for v in values]


def assert_matches_infer(sess: sr.Session, results: np.ndarray, inputs: np.ndarray) -> None:
    """Per-event results equal ``infer`` at batch 1 exactly, and ``infer`` over the whole batch to 1e-6."""
    one_by_one = np.stack([sess.infer(inputs[i:i + 1]).reshape(-1) for i in range(len(inputs))])
    np.testing.assert_array_equal(results.reshape(one_by_one.shape), one_by_one)
    whole = sess.infer(inputs).reshape(one_by_one.shape)
    np.testing.assert_allclose(results.reshape(whole.shape), whole, rtol=0, atol=BATCH_TOL)


# ---------------------------------------------------------------- models


def seq_model(length: int | str) -> onnx.ModelProto:
    """(N, L, 3) -> Tanh(x W + b), softmax over the sequence axis -> (N, L, 4): every output depends on L."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["z"]),
             helper.make_node("Tanh", ["z"], ["t"]), helper.make_node("Softmax", ["t"], ["y"], axis=1)]
    return make_model(nodes, [("x", np.float32, ["N", length, 3])], [("y", np.float32, ["N", length, 4])],
                      {"W": rng.standard_normal((3, 4)).astype(np.float32),
                       "b": rng.standard_normal(4).astype(np.float32)}, name="seq")


def seq_score_model() -> onnx.ModelProto:
    """(N, 5, 3) -> Flatten -> Gemm -> Sigmoid -> (N, 1): a fixed-length sequence classified per event."""
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("Gemm", ["f", "W", "b"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["y"])]
    return make_model(nodes, [("x", np.float32, ["N", 5, 3])], [("y", np.float32, ["N", 1])],
                      {"W": rng.standard_normal((15, 1)).astype(np.float32),
                       "b": rng.standard_normal(1).astype(np.float32)}, name="seq_score")


def two_output_model() -> onnx.ModelProto:
    """(N, 4) -> softmax(x W1 + b1) (N, 2) and sigmoid(x W2) (N, 1)."""
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["z1"]), helper.make_node("Softmax", ["z1"], ["p"], axis=-1),
             helper.make_node("MatMul", ["x", "W2"], ["z2"]), helper.make_node("Sigmoid", ["z2"], ["s"])]
    return make_model(nodes, [("x", np.float32, ["N", 4])], [("p", np.float32, ["N", 2]), ("s", np.float32, ["N", 1])],
                      {"W1": rng.standard_normal((4, 2)).astype(np.float32),
                       "b1": rng.standard_normal(2).astype(np.float32),
                       "W2": rng.standard_normal((4, 1)).astype(np.float32)}, name="two_out")


def two_input_model() -> onnx.ModelProto:
    """x (N, L, 3) and mask (N, L) sharing the symbolic L -> (x W) * mask (N, L, 4)."""
    w = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Unsqueeze", ["mask", "axes"], ["m"]),
             helper.make_node("Mul", ["h", "m"], ["y"])]
    return make_model(nodes, [("x", np.float32, ["N", "L", 3]), ("mask", np.float32, ["N", "L"])],
                      [("y", np.float32, ["N", "L", 4])], {"W": w, "axes": np.array([2], dtype=np.int64)}, name="masked")


def events(ROOT):  # noqa: N803
    """300 events: float, double, int, bool, fixed and variable length sequence columns.

    A new RDataFrame each time, since a node keeps the slot count of its creation.
    """
    return (ROOT.RDataFrame(300)
            .Define("f", "0.01f * rdfentry_")
            .Define("d", "std::sin(0.1 * rdfentry_)")
            .Define("i", "int(rdfentry_ % 7) - 3")
            .Define("b", "rdfentry_ % 3 == 0")
            .Define("seq", "ROOT::RVec<float> v(15); for (int k = 0; k < 15; ++k) v[k] = std::cos(0.3f * k + rdfentry_);"
                           " return v;")
            .Define("varseq", "ROOT::RVec<float> v(3 * (1 + rdfentry_ % 4));"
                              " for (std::size_t k = 0; k < v.size(); ++k) v[k] = std::sin(0.7f * k - rdfentry_);"
                              " return v;")
            .Define("mask", "ROOT::RVec<float> v(1 + rdfentry_ % 4); for (std::size_t k = 0; k < v.size(); ++k)"
                            " v[k] = float((k + rdfentry_) % 2); return v;"))


# ---------------------------------------------------------------- Python define


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_higgs_matches_infer(ROOT, threads, higgs_file, backend):  # noqa: N803
    sess = sr.compile(sr.load(DATA / "higgs_model.onnx"), backend=backend)
    df = ROOT.RDataFrame("events", higgs_file)
    assert df.GetNSlots() == threads
    cols = by_entry(sr.rdf.define(df, "dnn", sess, FEATURES), ["dnn", *FEATURES])
    assert cols["dnn"].dtype == np.float32 and len(cols["dnn"]) == 5000
    assert np.array_equal(cols["rdfentry_"], np.arange(5000))
    x = np.stack([cols[f] for f in FEATURES], axis=1)
    assert_matches_infer(sess, cols["dnn"], x)
    # 20 clusters for 2 workers: both slots usually take part (not asserted: TBB may hand all to one)
    assert set(cols["slot_"]) <= set(range(threads))


def test_fixed_sequence_column(ROOT, threads):  # noqa: N803
    """One RVec<float> column holds the (5, 3) sequence of an event; the output is one score per event."""
    sess = sr.compile(sr.load(seq_score_model()))
    df = events(ROOT)
    cols = by_entry(sr.rdf.define(df, "score", sess, ["seq"]), ["score", "seq"])
    x = np.stack(rvecs(cols["seq"])).reshape(-1, 5, 3)
    assert cols["score"].dtype == np.float32
    assert_matches_infer(sess, cols["score"], x)


def test_symbolic_sequence_column(ROOT, threads):  # noqa: N803
    """Sequence length read off each event's RVec (1 to 4 steps); the output is an RVec of L * 4 values."""
    sess = sr.compile(sr.load(seq_model("L")))
    df = events(ROOT)
    cols = by_entry(sr.rdf.define(df, "y", sess, ["varseq"]), ["y", "varseq"])
    seqs, ys = rvecs(cols["varseq"]), rvecs(cols["y"])
    for x, y in zip(seqs, ys):
        np.testing.assert_array_equal(y, sess.infer(x.reshape(1, -1, 3)).reshape(-1))
    for length in range(1, 5):  # whole batches of the events of one length
        pick = [k for k, x in enumerate(seqs) if len(x) == 3 * length]
        whole = sess.infer(np.stack([seqs[k] for k in pick]).reshape(-1, length, 3))
        np.testing.assert_allclose(np.stack([ys[k] for k in pick]), whole.reshape(len(pick), -1), rtol=0, atol=BATCH_TOL)


def test_mixed_scalar_types(ROOT):  # noqa: N803
    """float, double, int and bool columns feed one float input, converted like static_cast<float>."""
    sess = sr.compile(sr.load(two_output_model()))
    df = events(ROOT)
    for c, t in zip("fdib", ["float", "double", "int", "bool"]):
        assert t in str(df.GetColumnType(c)).lower()
    cols = by_entry(sr.rdf.define(df, "p", sess, ["f", "d", "i", "b"], output=0), ["p", "f", "d", "i", "b"])
    x = np.stack([cols[c].astype(np.float32) for c in "fdib"], axis=1)
    p, _ = sess.infer(x)
    np.testing.assert_allclose(np.stack(rvecs(cols["p"])), p, rtol=0, atol=BATCH_TOL)


def test_outputs_by_index_and_all(ROOT):  # noqa: N803
    """output=1 is that output alone (a scalar per event here); output=None concatenates all as RVec<float>."""
    sess = sr.compile(sr.load(two_output_model()))
    node = sr.rdf.define(events(ROOT), "s", sess, ["f", "d", "i", "b"], output=1)
    node = sr.rdf.define(node, "all", sess, ["f", "d", "i", "b"], output=None)
    node = sr.rdf.define(node, "p", sess, ["f", "d", "i", "b"], output=0)
    assert str(node.GetColumnType("s")) in ("float", "Float_t")
    assert "RVec<float>" in str(node.GetColumnType("all")) and "RVec<float>" in str(node.GetColumnType("p"))
    cols = by_entry(node, ["s", "all", "p", "f", "d", "i", "b"])
    x = np.stack([cols[c].astype(np.float32) for c in "fdib"], axis=1)
    for k in range(len(x)):
        p, s = sess.infer(x[k:k + 1])
        np.testing.assert_array_equal(cols["s"][k], s[0, 0])
        np.testing.assert_array_equal(np.asarray(cols["p"][k]), p[0])
        np.testing.assert_array_equal(np.asarray(cols["all"][k]), np.concatenate([p[0], s[0]]))
    with pytest.raises(sr.SofieError, match="2 outputs"):
        sr.rdf.define(events(ROOT), "bad", sess, ["f", "d", "i", "b"], output=2)


def test_two_inputs_sharing_a_sequence_dim(ROOT):  # noqa: N803
    """One column list per input; L is read off the first input and checked against the second."""
    sess = sr.compile(sr.load(two_input_model()))
    cols = by_entry(sr.rdf.define(events(ROOT), "y", sess, [["varseq"], ["mask"]]), ["y", "varseq", "mask"])
    for y, x, m in zip(rvecs(cols["y"]), rvecs(cols["varseq"]), rvecs(cols["mask"])):
        np.testing.assert_array_equal(y, sess.infer(x.reshape(1, -1, 3), m.reshape(1, -1)).reshape(-1))
    with pytest.raises(sr.SofieError, match="2 inputs"):
        sr.rdf.define(events(ROOT), "y", sess, ["varseq", "mask", "f"])


# ---------------------------------------------------------------- C++ paths


def test_define_string_via_declare(ROOT, higgs):  # noqa: N803
    """``sr.rdf.declare`` gives a global functor for Define strings; all_outputs gives an RVec<float>."""
    name = sr.rdf.declare(higgs, "higgs_test", len(FEATURES))
    every = sr.rdf.declare(higgs, "higgs_test_all", len(FEATURES), all_outputs=True)
    args = ", ".join(FEATURES)
    df = (ROOT.RDataFrame("sig_tree", str(DATA / "higgs_sample.root"))
          .Define("dnn", f"{name}(rdfslot_, {args})").Define("dnn_all", f"{every}(rdfslot_, {args})"))
    cols = by_entry(df, ["dnn", "dnn_all", *FEATURES])
    x = np.stack([cols[f] for f in FEATURES], axis=1)
    assert_matches_infer(higgs, cols["dnn"], x)
    np.testing.assert_array_equal(np.concatenate(rvecs(cols["dnn_all"])), cols["dnn"])


def test_sofie_functor_from_cpp(ROOT, threads, higgs, higgs_file):  # noqa: N803
    """The generic ``sofie_rdf::SofieFunctor<N, Session_t>`` called from user C++, ROOT's way."""
    sr.rdf.include_functor_header()
    weights = f'"{higgs.weights_path}"' if higgs.weights_path is not None else '""'
    names = ", ".join(f'"{c}"' for c in FEATURES)
    _root.declare("test-rdf:add_higgs", "\n".join([
        "ROOT::RDF::RNode sofie_rdf_test_add_higgs(ROOT::RDF::RNode df) {",
        f"   auto f = sofie_rdf::SofieFunctor<{len(FEATURES)}, {higgs.namespace}::Session>(df.GetNSlots(), {weights});",
        f'   return df.DefineSlot("dnn", f, {{{names}}});',
        "}",
    ]))
    df = ROOT.sofie_rdf_test_add_higgs(ROOT.RDF.AsRNode(ROOT.RDataFrame("events", higgs_file)))
    cols = by_entry(df, ["dnn", *FEATURES])
    assert_matches_infer(higgs, cols["dnn"], np.stack([cols[f] for f in FEATURES], axis=1))


def test_reader_compute_matches_infer(ROOT, higgs):  # noqa: N803
    reader = sr.Reader(DATA / "higgs_model.onnx")
    x = np.random.default_rng(7).random((20, 7), dtype=np.float32)
    for row in x:
        np.testing.assert_array_equal(reader.Compute(list(row)), higgs.infer(row[None, :]).reshape(-1))
    node = reader.define(ROOT.RDataFrame("sig_tree", str(DATA / "higgs_sample.root")), "dnn", FEATURES)
    cols = by_entry(node, ["dnn", *FEATURES])
    assert_matches_infer(higgs, cols["dnn"], np.stack([cols[f] for f in FEATURES], axis=1))
    with pytest.raises(sr.ShapeError, match="do not fit"):
        reader.Compute([1.0, 2.0])


# ---------------------------------------------------------------- errors


def test_wrong_number_of_scalar_columns(ROOT, higgs):  # noqa: N803
    """Known before the event loop: a SofieError at define time naming the counts."""
    df = ROOT.RDataFrame("sig_tree", str(DATA / "higgs_sample.root"))
    with pytest.raises(sr.SofieError, match="takes 7 values per event, got 6"):
        sr.rdf.define(df, "dnn", higgs, FEATURES[:6])


def test_wrong_length_array_column(ROOT, threads):  # noqa: N803
    """Only known per event: std::length_error from the event loop, surfaced as a Python exception."""
    sess = sr.compile(sr.load(seq_score_model()))
    df = ROOT.RDataFrame(50).Define("short", "ROOT::RVec<float>(rdfentry_ == 30 ? 14 : 15, 0.5f)")
    node = sr.rdf.define(df, "score", sess, ["short"])
    with pytest.raises(Exception, match="wrong number of values in the event") as info:
        node.Sum("score").GetValue()
    assert "length_error" in type(info.value).__name__
    # the interpreter survives: the same model runs again on good data
    ok = sr.rdf.define(ROOT.RDataFrame(50).Define("seq", "ROOT::RVec<float>(15, 0.5f)"), "score", sess, ["seq"])
    assert ok.Count().GetValue() == 50 and np.isfinite(ok.Sum("score").GetValue())


def test_typed_sofie_functor_with_rvec_column(ROOT):  # noqa: N803
    """Column types named after the session: ``SofieFunctor<1, S, ROOT::RVec<float>>`` in a typed DefineSlot."""
    sess = sr.compile(sr.load(seq_score_model()))
    sr.rdf.include_functor_header()
    weights = f'"{sess.weights_path}"' if sess.weights_path is not None else '""'
    _root.declare("test-rdf:add_seq", "\n".join([
        "ROOT::RDF::RNode sofie_rdf_test_add_seq(ROOT::RDF::RNode df) {",
        f"   auto f = sofie_rdf::SofieFunctor<1, {sess.namespace}::Session, ROOT::RVec<float>>(df.GetNSlots(), {weights});",
        f"   auto all = sofie_rdf::SofieFunctorAll<1, {sess.namespace}::Session, ROOT::RVec<float>>(1, {weights});",
        '   return df.DefineSlot("score", f, {"seq"}).DefineSlot("all", all, {"seq"});',
        "}",
    ]))
    df = ROOT.sofie_rdf_test_add_seq(ROOT.RDF.AsRNode(events(ROOT)))
    cols = by_entry(df, ["score", "all", "seq"])
    assert_matches_infer(sess, cols["score"], np.stack(rvecs(cols["seq"])).reshape(-1, 5, 3))
    np.testing.assert_array_equal(np.concatenate(rvecs(cols["all"])), cols["score"])
