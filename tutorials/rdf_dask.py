"""The network output on a Dask cluster: distributed RDataFrame with ``sr.rdf.define``.

``ROOT.RDataFrame(tree, files, executor=client)`` runs the event loop on Dask
workers, fresh processes that have none of this process's compiled code.
``sr.rdf.define`` notices the distributed dataframe and ships the model with
ROOT's own helpers (``DistributeFiles``/``DistributeHeaders``: generated
header, weights, BLAS), then adds the column as a ``Define`` string that every
worker compiles.  ``sr.rdf.distribute(model)`` does the shipping on its own.

Here a local cluster of two worker processes stands in for a real one (for a
batch system, build the ``Client`` from dask-jobqueue instead); the distributed
column is compared with the same column computed in this process.
"""

from pathlib import Path

import numpy as np
import ROOT

import sofie_rdf as sr

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = str(DATA / "higgs_sample.root")
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]  # the model's input order


def score(df, sess: sr.Session) -> dict:
    """Entry number and network output of every event, sorted by entry (workers return them in any order)."""
    df = sr.rdf.define(df.Define("entry", "rdfentry_"), "score", sess, FEATURES)
    cols = df.AsNumpy(["entry", "score"])
    order = np.argsort(cols["entry"])
    return {k: np.asarray(v)[order] for k, v in cols.items()}


def main() -> None:
    from dask.distributed import Client, LocalCluster

    sess = sr.compile(str(DATA / "higgs_model.onnx"))  # compiled once here; the workers get the header
    local = score(ROOT.RDataFrame("sig_tree", SAMPLE), sess)

    # The guard below matters: worker processes start by importing this script.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        df = ROOT.RDataFrame("sig_tree", SAMPLE, executor=client, npartitions=4)
        dist = score(df, sess)

    same = np.array_equal(dist["entry"], local["entry"])
    diff = float(np.max(np.abs(dist["score"] - local["score"])))
    print(f"\n{len(dist['score'])} events on 2 Dask workers; entries match: {same}; "
          f"largest difference from the local result: {diff:.1e}")
    if not same or diff > 1e-6:
        raise SystemExit("distributed and local results differ")


if __name__ == "__main__":
    main()
