"""Columnar analysis with uproot and awkward: the compiled model on chunks, jagged collections and Dask.

Three steps, as a coffea-style analysis would take them:

1. ``sr.columnar.evaluate`` runs the Higgs network over the signal and
   background trees chunk by chunk (``uproot.iterate``), with a progress bar,
   and writes the score next to the entry number into a new ROOT file.
2. A jagged particle collection (particles per jet, written with uproot) goes
   through a Deep Sets network whose particle count is symbolic: every jet is
   evaluated at its real length and the per-particle weights come back jagged,
   aligned with the particles.  The same jets padded to 8 particles with a
   mask (``sr.columnar.pad``) feed a fixed-size version of the network.
3. ``evaluate(..., dask=True)`` gives a lazy dask-awkward array; a local Dask
   cluster of two worker processes computes it, each worker compiling the
   model once.
"""

from pathlib import Path
from tempfile import TemporaryDirectory

import awkward as ak
import numpy as np
import uproot
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = str(DATA / "higgs_sample.root")
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]  # the model's input order


def higgs_scores(out: Path) -> None:
    model = sr.load(DATA / "higgs_model.onnx")
    for tree in ("sig_tree", "bkg_tree"):
        path = sr.columnar.evaluate(SAMPLE, tree, model, features=FEATURES, step_size="20 kB",
                                   output=out / f"scores_{tree}.root", output_tree="dnn")
        scores = uproot.open(path)["dnn"].arrays(["entry", "score"])
        print(f"{tree}: {len(scores)} events, mean score {np.mean(scores.score):.3f} -> {path.name}")


def deep_sets(particles: str) -> sr.Model:
    """phi: per particle (pt, eta, phi) -> 16 (ReLU) -> weight; rho: weighted sum -> jet score (sigmoid)."""
    rng = np.random.default_rng(7)
    init = {"w1": rng.normal(0, 0.5, (3, 16)), "w2": rng.normal(0, 0.5, (16, 1)), "w3": rng.normal(0, 0.02, (3, 1))}
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["logit"]), helper.make_node("Sigmoid", ["logit"], ["weights"]),
        helper.make_node("Mul", ["x", "weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w3"], ["s"]), helper.make_node("Sigmoid", ["s"], ["score"]),
    ]
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in init.items()]
    initializers.append(numpy_helper.from_array(np.array([1], np.int64), "axis"))
    graph = helper.make_graph(
        nodes, "deep_sets", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["jets", particles, 3])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["jets", 1]),
         helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["jets", particles, 1])], initializers)
    return sr.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), name=f"deep_sets_{particles}")


def jagged_particles(out: Path) -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 12, 2000)
    n = int(counts.sum())
    particles = {"pt": rng.exponential(20, n), "eta": rng.normal(0, 1.5, n), "phi": rng.uniform(-np.pi, np.pi, n)}
    with uproot.recreate(out / "jets.root") as f:
        f["jets"] = {"part": ak.zip({k: ak.unflatten(v.astype(np.float32), counts) for k, v in particles.items()})}
    jets = uproot.open(out / "jets.root")["jets"].arrays().part  # a jagged record array: jets * var * {pt, eta, phi}
    order = ["pt", "eta", "phi"]  # the model's feature order (uproot may return fields in another)
    print(f"\n{len(jets)} jets with {ak.min(ak.num(jets))} to {ak.max(ak.num(jets))} particles: {jets.type}")

    sess = sr.compile(deep_sets("n_particles"))
    score, weights = sess.infer(jets, features=order)  # every jet at its own length
    print(f"per-jet score {score.type}; per-particle weights {weights.type}")
    alone = sess.infer(sr.columnar.pad(jets[:1], len(jets[0]), features=order))
    print(f"jet 0 alone: score {alone[0][0, 0]:.6f}, in the column: {score[0, 0]:.6f}")

    fixed = sr.compile(deep_sets("8"))
    padded, mask = sr.columnar.pad(jets, 8, fill=0.0, mask=True, features=order)  # zero particles add nothing
    fixed_score, fixed_weights = fixed.infer(padded)
    fit = np.flatnonzero(ak.num(jets) <= 8)
    print(f"padded to 8 particles ({mask.sum()} real of {mask.size} slots): the {len(fit)} jets that fit agree "
          f"within {np.max(np.abs(fixed_score[fit] - score.to_numpy()[fit])):.1e}; per-particle weights back on "
          f"the particles: {sr.columnar.unpad(fixed_weights, jets).type}")


def on_dask() -> None:
    from dask.distributed import Client, LocalCluster

    model = sr.load(DATA / "higgs_model.onnx")
    lazy = sr.columnar.evaluate(SAMPLE, "sig_tree", model, features=FEATURES, step_size=1000, dask=True)
    local = sr.columnar.evaluate(SAMPLE, "sig_tree", model, features=FEATURES, step_size=1000, progress=False)
    # The guard at the bottom matters: worker processes start by importing this script.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = client.compute(lazy).result()
    print(f"\nDask: {lazy.npartitions} partitions on 2 workers; {len(remote)} events; identical to the local run: "
          f"{np.array_equal(remote.score.to_numpy(), local.score.to_numpy())}")


if __name__ == "__main__":
    with TemporaryDirectory() as tmp:
        higgs_scores(Path(tmp))
        jagged_particles(Path(tmp))
    on_dask()
