"""Columnar throughput of the Higgs model: ``sr.columnar.evaluate`` against onnxruntime on the same uproot chunks.

The question of issue 11: for an uproot/awkward analysis, is ``sr.columnar.evaluate``
(``uproot.iterate`` chunks -> compiled model -> awkward columns with the entry
index) at least as fast as the same loop written by hand around onnxruntime?

Every row reads the seven float columns of the same 10^6-event file (the one
``benchmarks.rdf_throughput`` makes) in chunks of ``STEP`` entries; one thread.
``uproot only`` times reading and stacking the features without a model.  Each
number is the median of three timed runs after a warm-up run.

Run: ``python -m benchmarks`` (all benchmarks) or ``python -m benchmarks.columnar [--events N] [--results DIR]``.
Writes ``benchmarks/results/columnar.md`` and prints it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

import sofie_rdf as sr

from .rdf_throughput import (
    MODEL,
    TREE,
    _make_higgs,
    arguments,
    input_file,
    machine,
    median_time,
    ort_predict,
    versions,
    write_table,
)

STEP = 10**5  # entries per uproot chunk, for every row


def hand_loop(path: Path, features: list[str], predict: Optional[Callable[[np.ndarray], np.ndarray]]) -> float:
    """``uproot.iterate`` chunks stacked into (n, 7) float32, through ``predict`` if given; the sum of the outputs."""
    import uproot

    total = 0.0
    for chunk in uproot.iterate(f"{path}:{TREE}", features, step_size=STEP, library="np"):
        x = np.stack([chunk[f] for f in features], axis=1)
        total += float((x if predict is None else predict(x)).sum(dtype=np.float64))
    return total


def evaluate(path: Path, features: list[str], sess: sr.Session) -> float:
    result = sr.columnar.evaluate(str(path), TREE, sess, features=features, step_size=STEP, progress=False)
    return float(np.sum(result.score.to_numpy(), dtype=np.float64))


def table(rows: list[tuple[str, float, float]], n_events: int) -> str:
    lines = [
        "# Columnar throughput: Higgs model (7 -> 64 -> 64 -> 1 MLP) over uproot chunks",
        "",
        f"{n_events:,} events, 7 float columns, chunks of {STEP:,} entries, 1 thread; median of 3 runs after a "
        f"warm-up. Machine: {machine()}. {versions()}.",
        "",
        "| method | time (s) | events/s | output sum |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {seconds:.3f} | {n_events / seconds:,.0f} | {check:.6g} |" for name, seconds, check in rows]
    lines += ["", "`sr.columnar.evaluate` returns an awkward record array (file, entry, score) for all events; "
              "the onnxruntime row is the hand-written loop (stack, `InferenceSession.run`, sum).", ""]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> str:
    args = arguments("columnar", __doc__, argv)

    features = list(_make_higgs().FEATURES)
    path = input_file(args.events)
    model = sr.load(MODEL)
    ort, native, jit = ort_predict(1), sr.compile(model, backend="native"), sr.compile(model, backend="jit")
    runs = {
        "uproot only (no model)": lambda: hand_loop(path, features, None),
        "onnxruntime on uproot chunks": lambda: hand_loop(path, features, ort),
        "sr.columnar.evaluate, native": lambda: evaluate(path, features, native),
        "sr.columnar.evaluate, jit": lambda: evaluate(path, features, jit),
    }
    rows = [(name, *median_time(run)) for name, run in runs.items()]
    return write_table(args.results / "columnar.md", table(rows, args.events))


if __name__ == "__main__":
    main()
