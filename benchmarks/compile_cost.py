"""What building a big published tagger costs on each road: seconds and peak memory, until its first call returns.

A header must not take minutes to declare: a physicist's RDataFrame job pays this once per process (per Dask
worker).  Each (tagger, road) runs in a fresh Python process, since peak memory is a process's and Cling cannot
forget a header:

* ``native``: ``sr.compile(model, backend="native")`` into an empty cache (``g++ -O3 -march=native``: the
  default backend where a compiler is found);
* ``jit``: ``sr.compile(model, backend="jit")`` (Cling, this CPU's level alone);
* ``declared``: the header ``Model.generate()`` wrote, ``gInterpreter.Declare``'d by a process that imported
  ROOT only, as SOFIE's users do (every level up to the plan's compiled: the CPU's chosen at run time).

The clock runs from loading the file (``declared``: from the Declare) to the first call's return (Cling emits
code when a function is first called).  Reported: wall seconds, CPU seconds of the process and of its
child processes (``g++``; Cling's own start-up probes of the system compiler), and the largest resident memory
of the process, less what it held before (Python, ROOT, sofie_rdf imported), and of its children where they ran
a compiler (a second of CPU or more: a forked probe's maximum counts its parent's pages).  Inputs:
one event, shaped as CMSSW pads it (benchmarks/real.py).

``python -m benchmarks.compile_cost [--models PNet_AK8_General_V00,RobustParT_AK4]`` writes
``benchmarks/results/compile_cost_<isa>_<vendor>.{md,json}``; the files come from
``python -m benchmarks.real --fetch github``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import latency, real

ROADS = ("native", "jit", "declared")
MODELS = ("PNet_AK8_General_V00", "RobustParT_AK4", "DeepJet_Run3")


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _load(tagger: real.Tagger) -> Any:
    """The file with every dim fixed for one event (a declared header's infer then takes only the inputs)."""
    import sofie_rdf as sr

    path = real.models_dir() / tagger.path
    dims = {"N": 1, **tagger.dims}
    shapes = {name: tuple(1 if axis == 0 else dims.get(d, d) for axis, d in enumerate(shape))
              for name, shape in real._input_specs(tagger, path)}
    return sr.load(str(path), name=tagger.label, input_shapes=shapes)


def one(label: str, road: str, folder: Path) -> dict[str, Any]:
    """Build ``label`` by ``road`` in this process and call it once; what it cost."""
    tagger = {t.label: t for t in real.TAGGERS}[label]
    feeds = real.feeds(tagger, real.models_dir() / tagger.path, 1)
    if road == "declared":
        import ROOT
        import scipy_openblas32 as blas

        header = json.loads((folder / "files.json").read_text())
        # BLAS, loaded as a SOFIE user loads it (the header calls sgemm for the products it leaves to BLAS)
        if ROOT.gSystem.Load(str(Path(blas.get_lib_dir()) / f"lib{blas.get_library()}.so")) < 0:
            raise SystemExit("cannot load scipy-openblas32's library")
    else:
        import sofie_rdf as sr
    base = {"rss": _rss_mb(resource.RUSAGE_SELF), "cpu": _cpu_s(resource.RUSAGE_SELF),
            "compiler_cpu": _cpu_s(resource.RUSAGE_CHILDREN)}
    start = time.perf_counter()
    if road == "declared":
        if not ROOT.gInterpreter.Declare(f'#include "{header["header"]}"'):
            raise SystemExit(f"{label}: Cling could not declare {header['header']}")
        import numpy as np

        session = getattr(ROOT, header["namespace"]).Session(header["weights"])
        session.infer(*feeds.values(), *(np.empty(size, np.float32) for size in header["output_sizes"]))
    else:
        compiled = sr.compile(_load(tagger), backend=road)
        compiled.infer(*feeds.values())
    wall = time.perf_counter() - start
    compiler_cpu = _cpu_s(resource.RUSAGE_CHILDREN) - base["compiler_cpu"]  # children the build ran (g++), if any
    return {"model": label, "road": road, "wall_s": wall, "cpu_s": _cpu_s(resource.RUSAGE_SELF) - base["cpu"],
            "compiler_cpu_s": compiler_cpu, "rss_mb": _rss_mb(resource.RUSAGE_SELF) - base["rss"],
            "compiler_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN) if compiler_cpu >= 1.0 else 0.0}


def measure(label: str, road: str, folder: Path) -> dict[str, Any]:
    """``one`` in a fresh process with an empty model cache."""
    env = {**os.environ, "SOFIE_RDF_CACHE": str(folder / f"cache-{road}")}
    result = subprocess.run([sys.executable, "-m", "benchmarks.compile_cost", "--one", label, road, str(folder)],
                            capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    line = next((line for line in result.stdout.splitlines() if line.startswith("{")), None)
    if line is None:
        raise SystemExit(f"{label} {road}: failed\n{result.stderr[-3000:]}")
    return json.loads(line)


def generate(label: str, folder: Path) -> None:
    """The header a SOFIE user declares, written before the clock runs (their job reads it from disk)."""
    model = _load({t.label: t for t in real.TAGGERS}[label])
    files = model.generate(folder, name=label)
    sizes = [int(np.prod(t.shape)) for t in model.outputs]  # infer's output pointers, after the inputs'
    (folder / "files.json").write_text(json.dumps({"header": str(files.header), "namespace": files.namespace,
                                                   "weights": str(files.weights), "output_sizes": sizes}))


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# Building the big taggers, road by road ({meta['date']})", "",
             f"CPU: {meta['cpu']}; {meta['versions']}. One event, from loading the file (declared: from the "
             "Declare) to the first call's return, each in a fresh process (benchmarks/compile_cost.py). Memory: the "
             "largest resident set less the process's before; children's where they compiled (g++). On a shared machine "
             "the wall seconds include waiting for a core; the CPU seconds are the work.", "",
             "| model | road | wall s | CPU s | children CPU s | memory MB | children memory MB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['road']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['compiler_cpu_s']:.1f} "
                     f"| {r['rss_mb']:.0f} | {r['compiler_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compile_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="labels of benchmarks/real.py's TAGGERS")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "ROAD", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], Path(args.one[2]))), flush=True)
        return ""
    rows = []
    for label in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            generate(label, Path(tmp))
            for road in ROADS:
                rows.append(measure(label, road, Path(tmp)))
                r = rows[-1]
                print(f"{label} {road}: {r['wall_s']:.1f} s, {r['rss_mb']:.0f} MB (+ compiler {r['compiler_rss_mb']:.0f} MB)",
                      flush=True)
    machine = latency.machine()
    meta = {"date": time.strftime("%Y-%m-%d"), "cpu": f"{machine['cpu']} ({machine['simd']}, {machine['cores']} cores)",
            "versions": real._versions()}
    text = markdown(rows, meta)
    stem = latency.RESULTS / latency.results_stem("compile_cost")
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(text)
    return text


if __name__ == "__main__":
    main()
