"""Distributed RDataFrame on a local Dask cluster: the model reaches fresh worker processes.

Two worker processes know nothing of the client's Cling state, so the column
only works if ``sr.rdf.distribute`` shipped BLAS, header and weights through
ROOT's distribution helpers.  The distributed result must equal the local one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sofie_rdf as sr
from sofie_rdf import _root

pytest.importorskip("distributed")
pytest.importorskip("dask")

MODEL = Path(__file__).resolve().parent.parent / "data" / "higgs_model.onnx"
N_EVENTS = 20_000


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    _root.root()  # ROOT and sofie-rdf's Cling flags are set before the workers start (they inherit them)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> str:
    """A tree with the model's 7 features: 3 in an array branch, 4 scalars of mixed types."""
    import awkward as ak
    import uproot

    rng = np.random.default_rng(7)
    x = rng.gamma(2.0, 0.6, size=(N_EVENTS, 7)).astype(np.float32)
    path = tmp_path_factory.mktemp("dask") / "sample.root"
    with uproot.recreate(path) as f:
        f["events"] = {
            "head": ak.Array(x[:, :3].tolist()),  # a jagged branch: RVec<float> in RDataFrame
            "m_jlv": x[:, 3],
            "m_bb": x[:, 4].astype(np.float64),
            "m_wbb": x[:, 5],
            "m_wwbb": x[:, 6],
        }
    return str(path)


COLUMNS = ["head", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]


def _local(sess: sr.Session, sample: str) -> dict:
    ROOT = _root.root()
    df = ROOT.RDataFrame("events", sample).Define("index", "rdfentry_")
    df = sr.rdf.define(df, "dnn", sess, COLUMNS)
    return {k: np.asarray(v) for k, v in df.AsNumpy(["index", "dnn"]).items()}


def test_distribute_returns_the_session_once():
    sess = sr.compile(MODEL)
    assert sr.rdf.distribute(sess) is sess
    assert sr.rdf.distribute(sess) is sess


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_distributed_define_equals_local(client, sample, backend):
    ROOT = _root.root()
    sess = sr.compile(MODEL, backend=backend)
    ref = _local(sess, sample)

    df = ROOT.RDataFrame("events", sample, executor=client, npartitions=4).Define("index", "rdfentry_")
    df = sr.rdf.define(df, "dnn", sess, COLUMNS)
    out = df.AsNumpy(["index", "dnn"])
    order = np.argsort(out["index"])
    assert np.array_equal(np.asarray(out["index"])[order], np.arange(N_EVENTS))
    np.testing.assert_allclose(np.asarray(out["dnn"])[order], ref["dnn"], rtol=0, atol=1e-6)

    # A second computation uploads the files again: the workers' loaded BLAS must survive it.
    mean = df.Mean("dnn").GetValue()
    assert mean == pytest.approx(float(np.mean(ref["dnn"].astype(np.float64))), abs=1e-6)
