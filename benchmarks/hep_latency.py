"""The HEP family (:mod:`benchmarks.hep`) against onnxruntime and torch: the layer sweep and whole models.

The engines and their timing are :mod:`benchmarks.latency`'s (each in a fresh process, one thread): sofie-rdf
native called from C++ and from Python, onnxruntime from C++ and from Python, torch.  Cling's JIT is left out:
its code is the portable kind, and compiling some forty models in it takes longer than timing them.  Each row
adds the achieved GFLOP/s (2 x multiply-adds of the convolutions and matrix products) and its share of one
core's peak for the instruction set found, and the goal of its group (issue 22): a layer at most 1.0x
onnxruntime (C++), a whole model at most 0.8x.

``python -m benchmarks.hep_latency [--models A,B] [--quick]`` writes ``benchmarks/results/hep_<isa>_<vendor>.{md,json}``
and ``.png``, one set per instruction set and CPU vendor of the machine it runs on (``avx2``, ``avx512``; ``amd``,
``intel``: the kernels differ, so do onnxruntime's, and Zen 4 runs AVX-512 at half Intel's width), so that the tables
of every kind of machine are kept (``--quick``: a few rows into ``benchmarks/results/quick/``; ``--out DIR``: the
results into DIR, for a run of a few rows that must not replace the table; ``--isa avx2``: an AVX-512 machine
measured as an AVX2 one, every engine on its AVX2 kernels, into ``hep_avx512_<vendor>_as_avx2``: see
:mod:`benchmarks.isa`).  ``--offgrid`` times :data:`benchmarks.hep.OFFGRID` instead, into ``hep_offgrid_<isa>_<vendor>``:
shapes of the same kinds that the kernels were not tuned on (odd channel counts, non-square and odd images, 1-D
convolutions, heads of 12 and 24 features, batches of 4 to 16), with the same goals: the check that a kernel's
speed is not the tuned set's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from . import hep, isa, latency
from .latency import _cell, _fmt_time, _ratio

ENGINES = ("native", "ort_cpp", "python", "ort", "torch")
GOALS = {"layer": 1.0, "model": 0.8}


def _goal_cell(row: dict) -> str:
    ratio, goal = _ratio(row, "native", "ort_cpp"), GOALS[row["group"]]
    if ratio != ratio:
        return "-"
    return f"{ratio:.2f}x {'meets' if ratio <= goal else '**misses**'} {goal}x"


def markdown(rows: list[dict], meta: dict) -> str:
    m = meta["machine"]
    lines = ["# The HEP family: layers and models analyses deploy now, against onnxruntime and torch", "",
             f"{meta['date']}. Machine: {m['cpu']}, {m['cores']} cores at {m['ghz']:.2f} GHz ({m['simd']}), "
             f"{m['system']}{'; ' + m['restriction'] if m.get('restriction') else ''}. {meta['versions']}. "
             f"One thread everywhere; median of {meta['repeats']} measurements "
             f"(3 for heavy models) of about {meta['target']} s each after warm-up"
             f"{'; QUICK run' if meta['quick'] else ''}; {latency.PAIRED_NOTE}. Per-call times (the batch is in the "
             "name: B1 unless said).",
             "", "| model | group | " + " | ".join(latency.LABELS[e] for e in ENGINES)
             + " | native / ORT (C++), goal | native GFLOP/s | % of core peak |",
             "|---|---|" + "---:|" * (len(ENGINES) + 3)]
    for row in rows:
        cells = [_cell(row["engines"][e], 1) for e in ENGINES]
        native = row["engines"]["native"]
        rate = row["flops"] / native["median_s"] / 1e9 if row["flops"] and "median_s" in native else float("nan")
        share = f"{100 * rate / latency.core_peak(m):.0f}%" if rate == rate else "-"
        lines.append(f"| {row['model']} | {row['group']} | " + " | ".join(cells)
                     + f" | {_goal_cell(row)} | {'-' if rate != rate else f'{rate:.1f}'} | {share} |")
    met = [r for r in rows if _ratio(r, "native", "ort_cpp") <= GOALS[r["group"]]]
    lines += ["", f"{len(met)} of {len(rows)} rows meet their goal. Achieved throughput: {latency.peak_note(m)}.",
              "", "Engines and timing: `benchmarks/latency.py`; models: `benchmarks/hep.py`. Every output is checked "
              "against onnxruntime (rtol 1e-3) before timing; **wrong** marks a disagreement.", ""]
    return "\n".join(lines)


def plot(rows: list[dict], out: Path, stem: str) -> None:
    """native / onnxruntime (C++) per row, coloured by group, with each group's goal."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = [_ratio(r, "native", "ort_cpp") for r in rows]
    colours = ["tab:blue" if r["group"] == "layer" else "tab:orange" for r in rows]
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.35), 5))
    ax.bar(np.arange(len(rows)), ratios, color=colours)
    for group, goal in GOALS.items():
        ax.axhline(goal, color="tab:blue" if group == "layer" else "tab:orange", linestyle="--", linewidth=1,
                   label=f"goal of a {group}: {goal}x")
    ax.set_yscale("log")
    ax.set_ylabel("sofie-rdf native / onnxruntime (C++), log scale")
    ax.set_xticks(np.arange(len(rows)), [r["model"] for r in rows], rotation=60, ha="right", fontsize=7)
    ax.legend(fontsize=8)
    ax.set_title("HEP family, one thread: below 1 = faster than onnxruntime")
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=120)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hep_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="comma-separated model names (default: all; see benchmarks/hep.py)")
    parser.add_argument("--quick", action="store_true", help="a few rows, short measurements")
    parser.add_argument("--offgrid", action="store_true", help="the shapes the kernels were not tuned on "
                        "(hep.OFFGRID) instead of the family, into hep_offgrid_<isa>_<vendor>")
    parser.add_argument("--out", type=Path, help="folder of the results (default: benchmarks/results, quick/ for "
                        "--quick): a run of a few rows that must not replace the whole table")
    parser.add_argument("--isa", choices=isa.CHOICES, help="run an AVX-512 machine as an AVX2 one: every engine "
                        "on its AVX2 kernels (see benchmarks/isa.py)")
    args = parser.parse_args(argv)
    target, repeats = (0.1, 3) if args.quick else (0.5, 5)

    from .rdf_throughput import bench_dir

    known = hep.OFFGRID if args.offgrid else hep.SPECS
    names = args.models.split(",") if args.models else list(hep.QUICK if args.quick and not args.offgrid else known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    root = bench_dir() / "latency"
    if args.isa:
        os.environ.update(isa.restrict(args.isa, root / f"onnxruntime-as-{args.isa}"))
    out = args.out or (latency.RESULTS / "quick" if args.quick else latency.RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    stem = latency.results_stem("hep_offgrid" if args.offgrid else "hep")
    start = time.perf_counter()
    meta = {"machine": latency.machine(), "target": target, "repeats": repeats, "quick": args.quick,
            "python_baseline_mb": latency.python_baseline_mb()}
    rows: list[dict] = []
    for name in names:  # rewritten after each row: an interrupted run keeps what it measured
        rows.append(latency.run_model(name, root, target, repeats, ENGINES))
        meta.update(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), versions=latency._versions(rows),
                    wall_s=time.perf_counter() - start)
        text = markdown(rows, meta)
        (out / f"{stem}.md").write_text(text)
        (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(f"  {name}: native {_fmt_time(rows[-1]['engines']['native'].get('median_s', float('nan')))}, "
              f"{_goal_cell(rows[-1])}", flush=True)
    plot(rows, out, stem)
    print(text)
    return text


if __name__ == "__main__":
    main()
