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
speed is not the tuned set's alone.  ``--jobs N`` measures N rows at a time (see :func:`run_side_by_side`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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
    jobs = meta.get("side_by_side", 1)
    side = (f"; {jobs} rows at a time, each pinned to a CPU of its own (one per core as the system reports its "
            "cores: a VM may hide that two of them share one)") if jobs > 1 else ""
    lines = ["# The HEP family: layers and models analyses deploy now, against onnxruntime and torch", "",
             f"{meta['date']}. Machine: {m['cpu']}, {m['cores']} cores at {m['ghz']:.2f} GHz ({m['simd']}), "
             f"{m['system']}{'; ' + m['restriction'] if m.get('restriction') else ''}. {meta['versions']}. "
             f"One thread everywhere; median of {meta['repeats']} measurements "
             f"(3 for heavy models) of about {meta['target']} s each after warm-up"
             f"{'; QUICK run' if meta['quick'] else ''}{side}; {latency.PAIRED_NOTE}. Per-call times (the batch is in the "
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
    unfinished = ", ".join(meta.get("unfinished", ()))
    missing = f" Not measured (their process ended first, at a time limit or a crash): {unfinished}." if unfinished else ""
    lines += ["", f"{len(met)} of {len(rows)} rows meet their goal.{missing}"
              + f" Achieved throughput: {latency.peak_note(m)}.",
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


def physical_cpus() -> list[int]:
    """One logical CPU of each physical core this process may run on (the first of its hyper-thread siblings, as
    sysfs lists them): rows measured side by side must not share a core's units."""
    allowed = set(os.sched_getaffinity(0))
    firsts = []
    for cpu in sorted(allowed):
        siblings = {cpu}
        try:
            text = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text()
            for part in text.strip().split(","):
                low, _, high = part.partition("-")
                siblings.update(range(int(low), int(high or low) + 1))
        except (OSError, ValueError):
            pass
        if min(siblings & allowed) == cpu:
            firsts.append(cpu)
    return firsts


def run_side_by_side(names: list[str], jobs: int, flags: list[str], root: Path, stem: str) -> list[dict]:
    """The rows in ``jobs`` processes at once, each pinned to a CPU of its own with its own build folder: a
    machine of many cores lent for minutes (the GPU machines' 16) runs the family in a few.  Every row still runs
    its engines one thread each and pairs the C++ ones in one process, so the ratios compare like with like; the
    absolute times do not match a run of one row at a time (16 rows at a time on a 16-CPU Xeon ran at 2.4 to 2.7
    GHz, and onnxruntime took 1.2x to 2.5x its times on a 2-CPU VM of the same Xeon generation at 3.7), hence
    the separate ``_side_by_side`` result files."""
    cpus = physical_cpus()[:min(jobs, len(names))]
    parts = [root / f"job{i}" for i in range(len(cpus))]
    procs = []
    for i, (cpu, part) in enumerate(zip(cpus, parts)):
        chunk = names[i::len(cpus)]
        procs.append(subprocess.Popen([sys.executable, "-m", "benchmarks.hep_latency", "--models", ",".join(chunk),
                                       "--out", str(part), *flags], env={**os.environ, "SOFIE_RDF_BENCH_DIR": str(part)},
                                      preexec_fn=lambda cpu=cpu: os.sched_setaffinity(0, {cpu})))
    for proc in procs:
        proc.wait()
    rows: dict[str, dict] = {}
    for part in parts:
        found = part / f"{stem}.json"
        if found.exists():
            rows.update((row["model"], row) for row in json.loads(found.read_text())["rows"])
    return [rows[name] for name in names if name in rows]


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
    parser.add_argument("--jobs", type=int, default=1, help="rows measured at once, each pinned to a CPU of its "
                        "own, into <stem>_side_by_side (for machines of many cores lent briefly; default 1)")
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

    def write() -> str:
        meta.update(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), versions=latency._versions(rows),
                    wall_s=time.perf_counter() - start)
        text = markdown(rows, meta)
        (out / f"{stem}.md").write_text(text)
        (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        return text

    if args.jobs > 1:
        flags = [f for f, on in (("--quick", args.quick), ("--offgrid", args.offgrid)) if on]
        rows = run_side_by_side(names, args.jobs, flags + (["--isa", args.isa] if args.isa else []), root, stem)
        stem += "_side_by_side"  # never replaces the table of rows measured one at a time
        meta.update(side_by_side=min(args.jobs, len(physical_cpus()), len(names)),
                    unfinished=[n for n in names if n not in {r["model"] for r in rows}])
        text = write()
    else:
        for name in names:  # rewritten after each row: an interrupted run keeps what it measured
            rows.append(latency.run_model(name, root, target, repeats, ENGINES))
            text = write()
            print(f"  {name}: native {_fmt_time(rows[-1]['engines']['native'].get('median_s', float('nan')))}, "
                  f"{_goal_cell(rows[-1])}", flush=True)
    latency.remeasure_peak(meta["machine"])
    text = write()
    plot(rows, out, stem)
    print(text)
    return text


if __name__ == "__main__":
    main()
