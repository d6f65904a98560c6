"""RDataFrame throughput of the Higgs model: sofie-rdf per event against onnxruntime in batches.

The question the issue asks: is running the network event by event inside
RDataFrame's loop (one Session per slot, no Python in the loop) at least as
fast per thread as the usual Python alternative, reading the columns with
uproot in batches of 10^4 and calling onnxruntime on each batch?

Both sides include reading the seven float columns from the same file.  For
scale, two reference rows time the reading alone: an RDataFrame loop summing
the columns (no model) and ``uproot.iterate`` alone.  Each number is the
median of three timed runs after one untimed warm-up run; for RDataFrame only
the event loop is timed (the model is compiled and the graph booked before).

The 10^6-event input file is made once with uproot from the generator of
``data/make_higgs.py`` and cached in ``$SOFIE_RDF_BENCH_DIR`` (default: a
``sofie-rdf-bench`` folder in the system temp dir); it is not committed.

Run: ``python -m benchmarks`` (all benchmarks) or ``python -m benchmarks.rdf_throughput
[--events N] [--results DIR]``.  Writes ``benchmarks/results/rdf_throughput.md`` and prints it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import sofie_rdf as sr
from sofie_rdf import _root

ROOT_DIR = Path(__file__).resolve().parent.parent
DATA = ROOT_DIR / "data"
MODEL = DATA / "higgs_model.onnx"
RESULTS = Path(__file__).resolve().parent / "results"
TREE = "events"
EVENTS = 10**6
BATCH = 10**4  # uproot batch size for the onnxruntime loop, as in the issue
CLUSTER = 10**4  # entries per basket/cluster: RDataFrame's unit of work per thread
REPEATS = 3
SEED = 12345


def _make_higgs() -> Any:
    """``data/make_higgs.py`` as a module (data/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_higgs", DATA / "make_higgs.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def bench_dir() -> Path:
    folder = Path(os.environ.get("SOFIE_RDF_BENCH_DIR", Path(tempfile.gettempdir()) / "sofie-rdf-bench"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def input_file(n_events: int) -> Path:
    """The cached ``n_events`` file: half signal, half background, shuffled, written in clusters of 10^4.

    uproot writes the events; ROOT then rewrites them with auto-flush every 10^4
    entries, because a TTree from uproot has a single cluster and RDataFrame
    splits work between threads by cluster.
    """
    path = bench_dir() / f"higgs_{n_events}.root"
    if path.exists():
        return path
    gen = _make_higgs()
    rng = np.random.default_rng(SEED)
    half = n_events // 2
    sig, bkg = gen.make_events(rng, True, half), gen.make_events(rng, False, n_events - half)
    order = rng.permutation(n_events)
    events = {k: np.concatenate([sig[k], bkg[k]])[order] for k in gen.FEATURES}

    import uproot

    tmp = path.with_suffix(".tmp.root")
    with uproot.recreate(tmp) as f:
        tree = f.mktree(TREE, {k: np.float32 for k in gen.FEATURES})
        for start in range(0, n_events, CLUSTER):
            tree.extend({k: v[start:start + CLUSTER] for k, v in events.items()})
    ROOT = _root.root()
    opts = ROOT.RDF.RSnapshotOptions()
    opts.fAutoFlush = CLUSTER
    clustered = path.with_suffix(".clustered.root")
    ROOT.RDataFrame(TREE, str(tmp)).Snapshot(TREE, str(clustered), list(gen.FEATURES), opts)
    tmp.unlink()
    clustered.replace(path)  # atomic: an interrupted run leaves no half-written cache
    return path


# ---------------------------------------------------------------- timing


def median_time(run: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls after one untimed warm-up call; also the last result."""
    result = run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


@dataclass
class Row:
    method: str
    threads: int
    seconds: float
    events: int
    check: float  # sum of the outputs (or of the inputs, for reading only): the runs did the same work

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def _cpp_helpers(features: list[str]) -> None:
    """Typed RDataFrame actions, so that no jitting happens inside a timed event loop."""
    cols = ", ".join(f'"{c}"' for c in features)
    params = ", ".join(f"float x{i}" for i in range(len(features)))
    total = " + ".join(f"x{i}" for i in range(len(features)))
    _root.declare("bench:rdf-helpers", "\n".join([
        "#pragma clang diagnostic push",  # RDataFrame's virtuals are defined in ROOT's module, not here
        '#pragma clang diagnostic ignored "-Wundefined-inline"',
        "namespace sofie_rdf_bench {",
        "inline ROOT::RDF::RResultPtr<float> SumFloat(ROOT::RDF::RNode df, const std::string &column)",
        "{ return df.Sum<float>(column); }",
        "inline ROOT::RDF::RResultPtr<float> ReadOnly(ROOT::RDF::RNode df)",
        f"{{ return df.Define(\"read_sum_\", []({params}) {{ return {total}; }}, {{{cols}}}).Sum<float>(\"read_sum_\"); }}",
        "}",
        "#pragma clang diagnostic pop",
    ]))


def _set_threads(threads: int) -> None:
    ROOT = _root.root()
    if ROOT.IsImplicitMTEnabled():
        ROOT.DisableImplicitMT()
    if threads > 1:
        ROOT.EnableImplicitMT(threads)


def time_rdf(path: Path, threads: int, sess: Optional[sr.Session], features: list[str]) -> tuple[float, float]:
    """Event-loop time of RDataFrame with the model as a column (or reading only when ``sess`` is None)."""
    ROOT = _root.root()
    _set_threads(threads)
    try:
        def run() -> tuple[float, float]:
            df = ROOT.RDataFrame(TREE, str(path))
            if df.GetNSlots() != threads:
                raise RuntimeError(f"RDataFrame has {df.GetNSlots()} slots, {threads} asked")
            if sess is None:
                result = ROOT.sofie_rdf_bench.ReadOnly(ROOT.RDF.AsRNode(df))
            else:
                node = sr.rdf.define(df, "dnn", sess, features)
                result = ROOT.sofie_rdf_bench.SumFloat(ROOT.RDF.AsRNode(node), "dnn")
            booked = time.perf_counter()
            value = result.GetValue()  # the event loop
            return time.perf_counter() - booked, value

        run()  # warm-up: file in the page cache, code paths hot
        loops, values = zip(*(run() for _ in range(REPEATS)))
        return statistics.median(loops), values[-1]
    finally:
        _set_threads(1)


def time_uproot(path: Path, features: list[str], predict: Optional[Callable[[np.ndarray], np.ndarray]] = None
                ) -> tuple[float, float]:
    """``uproot.iterate`` in batches of 10^4 into an (n, 7) float32 matrix, through ``predict`` if given."""
    import uproot

    def run() -> float:
        total = 0.0
        for batch in uproot.iterate(f"{path}:{TREE}", features, step_size=BATCH, library="np"):
            x = np.stack([batch[f] for f in features], axis=1)
            y = x if predict is None else predict(x)
            total += float(y.sum(dtype=np.float64))
        return total

    return median_time(run)


def ort_predict(intra_threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(MODEL), opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"features": x})[0]


# ---------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def versions() -> str:
    import onnxruntime
    import uproot

    ROOT = _root.root()
    return (f"ROOT {ROOT.gROOT.GetVersion()}, onnxruntime {onnxruntime.__version__}, uproot {uproot.__version__}, "
            f"numpy {np.__version__}, Python {platform.python_version()}")


def table(rows: list[Row], n_events: int) -> str:
    lines = [
        "# RDataFrame throughput: Higgs model (7 -> 64 -> 64 -> 1 MLP)",
        "",
        f"{n_events:,} events, 7 float columns from one TTree file (clusters of {CLUSTER:,}); "
        f"median of {REPEATS} runs after a warm-up run. Machine: {machine()}. {versions()}.",
        "",
        "| method | threads | time (s) | events/s | events/s per thread |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.method} | {r.threads} | {r.seconds:.3f} | {r.rate:,.0f} | {r.rate / r.threads:,.0f} |")
    lines += ["", "Times include reading the columns. sofie-rdf rows time the RDataFrame event loop only "
              "(model compiled, Sessions built and graph booked before); onnxruntime and uproot rows time "
              f"the whole `uproot.iterate` loop (batches of {BATCH:,}) in Python.", ""]
    return "\n".join(lines)


def arguments(module: str, doc: str, argv: Optional[list[str]]) -> argparse.Namespace:
    """``--events`` and ``--results``: the options of the benchmarks over the Higgs event file."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{module}", description=doc.split("\n")[0])
    parser.add_argument("--events", type=int, default=EVENTS, help="number of events (default 10^6)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the table (default benchmarks/results)")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> str:
    args = arguments("rdf_throughput", __doc__, argv)

    features = list(_make_higgs().FEATURES)
    path = input_file(args.events)
    _cpp_helpers(features)
    model = sr.load(MODEL)
    sessions = {backend: sr.compile(model, backend=backend) for backend in ("jit", "native")}

    rows: list[Row] = []
    for threads in (1, 2):
        for backend, sess in sessions.items():
            seconds, check = time_rdf(path, threads, sess, features)
            rows.append(Row(f"sofie-rdf {backend}, RDataFrame", threads, seconds, args.events, check))
    for threads in (1, 2):
        seconds, check = time_uproot(path, features, ort_predict(threads))
        rows.append(Row(f"onnxruntime, uproot batches of {BATCH:,}", threads, seconds, args.events, check))
    seconds, check = time_uproot(path, features, sessions["native"].infer)
    rows.append(Row(f"sofie-rdf native from Python, uproot batches of {BATCH:,}", 1, seconds, args.events, check))
    for threads in (1, 2):
        seconds, check = time_rdf(path, threads, None, features)
        rows.append(Row("reference: RDataFrame reading only", threads, seconds, args.events, check))
    seconds, check = time_uproot(path, features)
    rows.append(Row("reference: uproot reading only", 1, seconds, args.events, check))

    scores = [r.check for r in rows if not r.method.startswith("reference")]
    if max(scores) - min(scores) > 1e-3 * abs(max(scores)):
        raise RuntimeError(f"the methods disagree on the sum of the scores: {scores}")
    return write_table(args.results / "rdf_throughput.md", table(rows, args.events))


def write_table(path: Path, text: str) -> str:
    """Write a results table (making its folder) and print it; returns the text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
