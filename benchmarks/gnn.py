"""Per-event latency of a graph network (issue 12): sofie-rdf against the same network in torch.

The network is a tracking-style encode-process-decode edge classifier without
globals: MLP encoders of nodes (3 features) and edges (4 features) to 32
latent features, 3 message-passing steps of a shared GraphNetwork core (edge
MLP 192 -> 64 -> 32 on ``[edges, receiver nodes, sender nodes]``, node MLP
96 -> 64 -> 32 on ``[sum of received edges, nodes]``, each reading the encoded
graph next to the latent one), and an edge decoder 32 -> 32 -> 1 with a
sigmoid.  Graphs have 100, 1000 and 10000 edges over a third as many nodes,
with random senders and receivers.

Engines: ``native`` and ``jit``: the C++ Session in a C++ timing loop
(``timing.hxx``, declared to Cling; the native Session's code is the
``.so`` built with ``-O3 -march=native``); ``python``: ``Session.infer`` of
the native build on numpy arrays (allocating its outputs, as users call it);
``torch``: the same weights as an ``nn.Module`` built from ``Linear`` layers,
``index_add_`` for the aggregation, ``torch.set_num_threads(1)``, inference
mode.  Every engine's output is checked against torch's first
(``|y - ref| <= 1e-3 |ref| + 1e-5``).  Timing as in ``benchmarks.latency``:
the median of 5 measurements of back-to-back calls lasting about 0.3 s each.

Run ``python -m benchmarks.gnn``; writes ``benchmarks/results/gnn.md``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any, Optional

import numpy as np

import sofie_rdf as sr

from .latency import time_calls
from .rdf_throughput import machine, write_table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EDGES = (100, 1000, 10_000)
LATENT, HIDDEN, STEPS = 32, 64, 3
TARGET_S, REPEATS = 0.3, 5


def _dense(rng: np.random.Generator, *sizes: int, final: Any = None) -> sr.gnn.MLP:
    return sr.gnn.MLP([rng.normal(size=(a, b)) / np.sqrt(a) for a, b in zip(sizes, sizes[1:])],
                      [rng.normal(size=b) * 0.1 for b in sizes[1:]], final_activation=final)


def network(seed: int = 0) -> dict[str, sr.gnn.MLP]:
    """The update functions, seeded."""
    rng = np.random.default_rng(seed)
    return {"enc_v": _dense(rng, 3, HIDDEN, LATENT), "enc_e": _dense(rng, 4, HIDDEN, LATENT),
            "core_e": _dense(rng, 6 * LATENT, HIDDEN, LATENT), "core_v": _dense(rng, 3 * LATENT, HIDDEN, LATENT),
            "dec_e": _dense(rng, LATENT, LATENT, 1, final="sigmoid")}


def sofie_model(f: dict[str, sr.gnn.MLP]) -> sr.Model:
    return sr.gnn.EncodeProcessDecode(
        encoder=sr.gnn.GraphIndependent(edge=f["enc_e"], node=f["enc_v"]),
        core=sr.gnn.GraphNetwork(edge=f["core_e"], node=f["core_v"]),
        decoder=sr.gnn.GraphIndependent(edge=f["dec_e"]), steps=STEPS).to_model(3, 4, name="gnn_bench")


def torch_model(f: dict[str, sr.gnn.MLP]) -> Any:
    """The same network in torch, from the same weights."""
    import torch

    def mlp(m: sr.gnn.MLP) -> torch.nn.Sequential:
        layers: list = []
        for k, (w, b) in enumerate(zip(m.weights, m.biases)):
            lin = torch.nn.Linear(*w.shape)
            lin.weight.data, lin.bias.data = torch.from_numpy(w.T.copy()), torch.from_numpy(b)
            layers += [lin, torch.nn.ReLU() if k < len(m.weights) - 1 else torch.nn.Identity()]
        if m.final_activation == "sigmoid":
            layers.append(torch.nn.Sigmoid())
        return torch.nn.Sequential(*layers)

    class EncodeProcessDecode(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f = torch.nn.ModuleDict({k: mlp(m) for k, m in f.items()})

        def forward(self, x, e, senders, receivers):
            x0, e0 = self.f["enc_v"](x), self.f["enc_e"](e)
            xl, el = x0, e0
            for _ in range(STEPS):
                xc, ec = torch.cat([x0, xl], 1), torch.cat([e0, el], 1)
                el = self.f["core_e"](torch.cat([ec, xc[receivers], xc[senders]], 1))
                agg = torch.zeros(x.shape[0], el.shape[1]).index_add_(0, receivers, el)
                xl = self.f["core_v"](torch.cat([agg, xc], 1))
            return xl, self.f["dec_e"](el)

    return EncodeProcessDecode().eval()


def graph(n_edges: int, seed: int = 1) -> tuple:
    rng = np.random.default_rng(seed)
    n_nodes = max(n_edges // 3, 1)
    return (rng.normal(size=(n_nodes, 3)).astype(np.float32), rng.normal(size=(n_edges, 4)).astype(np.float32),
            rng.integers(0, n_nodes, n_edges), rng.integers(0, n_nodes, n_edges))


_LOOP = """
#include "{timing}"
namespace sofie_rdf_bench_gnn {{
template <class S>
std::vector<double> time_gnn(S &s, size_t n_nodes, size_t n_edges, const float *x, const float *e, const int64_t *snd,
                             const int64_t *rcv, float *y_nodes, float *y_edges, double target, int repeats)
{{ return sofie_rdf_bench::time_calls([&] {{ s.infer(n_nodes, n_edges, x, e, snd, rcv, y_nodes, y_edges); }},
                                       target, repeats); }}
}}
"""


def time_cpp(sess: sr.Session, g: tuple, ref: tuple) -> float:
    """Seconds per call of the C++ Session's allocation-free infer, timed in C++."""
    from sofie_rdf import _root

    ROOT = _root.root()  # noqa: N806
    _root.declare("bench:gnn", "#pragma cling optimize(3)\n" + _LOOP.format(timing=HERE / "timing.hxx"))
    cls = getattr(ROOT, sess.namespace).Session
    cpp = cls(str(sess.weights_path)) if sess.weights_path else cls()
    outs = [np.empty(r.shape, np.float32) for r in ref]
    n_nodes, n_edges = len(g[0]), len(g[1])
    cpp.infer(n_nodes, n_edges, *g, *outs)
    check(outs, ref, sess.backend)
    loop = ROOT.sofie_rdf_bench_gnn.time_gnn[f"{sess.namespace}::Session"]
    per_call = loop(cpp, n_nodes, n_edges, *g, *outs, TARGET_S, REPEATS)
    return statistics.median(list(per_call))


def check(got: Any, ref: tuple, engine: str) -> None:
    for a, b in zip(got, ref):
        if not np.all(np.abs(a - b) <= 1e-3 * np.abs(b) + 1e-5):
            raise SystemExit(f"{engine}: output differs from torch by up to {np.max(np.abs(a - b)):.3g}")


def measure(n_edges: int, sessions: dict[str, sr.Session], tmodel: Any) -> tuple:
    """(edges, nodes, seconds per event of native, jit, python, torch) on one random graph."""
    import torch

    g = graph(n_edges)
    tg = [torch.from_numpy(a) for a in g]
    with torch.inference_mode():
        ref = tuple(t.numpy().copy() for t in tmodel(*tg))
        t_torch = statistics.median(time_calls(lambda: tmodel(*tg), TARGET_S, REPEATS))
    check(sessions["native"].infer(*g), ref, "python")
    t_python = statistics.median(time_calls(lambda: sessions["native"].infer(*g), TARGET_S, REPEATS))
    t_native, t_jit = time_cpp(sessions["native"], g, ref), time_cpp(sessions["jit"], g, ref)
    print(f"{n_edges} edges: native {t_native * 1e6:.1f} us, jit {t_jit * 1e6:.1f} us, "
          f"python {t_python * 1e6:.1f} us, torch {t_torch * 1e6:.1f} us", flush=True)
    return n_edges, len(g[0]), t_native, t_jit, t_python, t_torch


def main(argv: Optional[list[str]] = None) -> None:
    import torch

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gnn", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the table (default benchmarks/results)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    f = network()
    model = sofie_model(f)
    sessions = {b: sr.compile(model, backend=b) for b in ("native", "jit")}
    tmodel = torch_model(f)
    write([measure(n, sessions, tmodel) for n in EDGES], args.results)


def write(rows: list[tuple], results: Path) -> None:
    lines = ["# Graph network latency (issue 12)", "",
             f"Encode-process-decode edge classifier ({STEPS} steps, latent {LATENT}, hidden {HIDDEN}); "
             "per-event latency in microseconds, one thread; see `benchmarks/gnn.py`. "
             f"Machine: {machine()}.", "",
             "| edges | nodes | sofie native (C++) | sofie jit (C++) | sofie (Python) | torch (Python) | torch / native |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for n_edges, n_nodes, *t in rows:
        lines.append(f"| {n_edges} | {n_nodes} | " + " | ".join(f"{v * 1e6:,.1f}" for v in t) + f" | {t[3] / t[0]:.1f}x |")
    write_table(results / "gnn.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
