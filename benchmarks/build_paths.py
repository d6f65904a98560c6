"""The roads a header takes to run, timed against each other in one process: the path users take is not ours.

ROOT is started first, with Cling's own flags (no ``-march``: what a user who imported ROOT before sofie_rdf,
or who runs a macro, has), and then every model of the list is run five ways, each timed by a C++ loop
declared to Cling around its ``Session::infer``, in interleaved rounds (this project's machines drift 10-30%
between runs):

* ``native``: ``sr.compile(backend="native")``, ``g++ -O3 -march=native`` (our tables' figure);
* ``O2``: the same header built with ``g++ -std=c++17 -O2`` and no ``-march``, as CMSSW or someone else's
  CMake builds it;
* ``jit``: ``sr.compile(backend="jit")`` (the default where no compiler is found): planned for this CPU as the
  native build is, its instruction set's kernels alone compiled by Cling;
* ``declared``: the header ``Model.generate()`` writes, ``gInterpreter.Declare``'d as SOFIE's users do, with no
  macro defined (every instruction set's kernels compiled, the CPU's chosen when the Session is made): the
  variants of ``infer`` are compiled when the Session is made, at ROOT's -O1;
* ``eager``: the same header declared with ``SOFIE_RDF_CLING_EAGER`` defined: its planned level's ``infer``
  compiled in the header's own transaction, at the -O3 its ``#pragma cling optimize`` asks for;
* ``jit_before``: what ``jit`` was until 2026-11-28: planned for generic x86-64 with BLAS in place of the
  register tiles, which Cling's code then ran several times slower than BLAS (before the kernels were made
  always_inline under Cling: targets/cpu/isa.py).

Also the seconds each takes to build (the JIT's: declaring plus the first call, when Cling emits the code).
``python -m benchmarks.build_paths [--models a,b] [--rounds 9] [--cling-flags "-O3 -march=native"]`` writes
``benchmarks/results/build_paths_<isa>_<vendor>[_taggers][_cling_march].md`` and ``.json``; ``--models`` takes the
HEP family's names and the published taggers' labels (benchmarks/real.py, fetched by ``python -m benchmarks.real
--fetch``: one event, dims fixed as CMSSW pads them; ``_taggers`` when all are taggers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
ENGINES = ("native", "O2", "jit", "declared", "eager", "jit_before")
# The HEP family's quick set, its batched rows, and rootbench's models of each kind (dense, recurrent, conv).
MODELS = ("higgs_model_dense", "SimpleNN_Alice", "LSTM_d10_L20_h8_B1", "Conv2d_16to16_16px_k3", "MaxPool3d_8ch_16vx",
          "GELU_erf_128x512", "LayerNorm_128tok_128f", "Attention_64tok_64f_4h", "CaloCNN2d_32px", "CaloCNN2d_32px_B32",
          "CaloCNN3d_24vx", "ResNetSmall_4ch_32px", "Encoder_50tok_64f_2L", "EdgeConv_64p_k16", "DeepSets_64p",
          "DeepSets_64p_B64", "Generator_B64")


def start_root(cling_flags: str) -> Any:
    """ROOT started before sofie_rdf is imported (which would give Cling -march=native), with ``cling_flags``
    (empty: Cling's own)."""
    os.environ.pop("EXTRA_CLING_ARGS", None)
    if cling_flags:
        os.environ["EXTRA_CLING_ARGS"] = cling_flags
    import ROOT

    ROOT.gROOT.SetBatch(True)
    ROOT.gInterpreter.Declare("namespace sofie_rdf_build_paths {}")  # Cling starts here, with its flags
    ROOT.gInterpreter.Declare(f'#include "{HERE / "timing.hxx"}"')
    return ROOT


def _timer(ROOT: Any, namespace: str, inputs: int, outputs: int) -> Callable[..., float]:
    """A C++ loop over ``namespace::Session::infer(x0, ..., y0, ...)``: seconds per call over about ``target``
    seconds, called as ``timer(session, x0, ..., y0, ..., target)``."""
    xs, ys = [f"x{k}" for k in range(inputs)], [f"y{k}" for k in range(outputs)]
    params = ", ".join([f"const float *{x}" for x in xs] + [f"float *{y}" for y in ys])
    ROOT.gInterpreter.Declare("\n".join([
        f"namespace sofie_rdf_timer_{namespace} {{",
        f"inline double time_once({namespace}::Session &s, {params}, double target)",
        f"{{ return sofie_rdf_bench::time_calls([&] {{ s.infer({', '.join(xs + ys)}); }}, target, 1)[0]; }}", "}"]))
    return getattr(ROOT, f"sofie_rdf_timer_{namespace}").time_once


def load(name: str, root: Path) -> tuple[Any, list[np.ndarray]]:
    """Model ``name`` (of the HEP family, or a published tagger of benchmarks/real.py, its dims fixed for one
    event as benchmarks/compile_cost.py fixes them) and its inputs."""
    import sofie_rdf as sr

    from . import compile_cost, models, real

    taggers = {t.label: t for t in real.TAGGERS}
    if name in taggers:
        tagger = taggers[name]
        return compile_cost._load(tagger), list(real.feeds(tagger, real.models_dir() / tagger.path, 1).values())
    return sr.load(models.onnx_path(name, root)), [models.inputs(name)]


def build(ROOT: Any, model: Any, folder: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """Each engine's C++ Session (name -> object) and its build seconds."""
    import sofie_rdf as sr
    from sofie_rdf.targets.cpu import CpuTarget, host_isa
    from sofie_rdf.targets.cpu.jit import jit_declare
    from sofie_rdf.targets.cpu.native import binary_weights_name, build_native, load_native

    name = model.name
    sessions, seconds = {}, {}

    start = time.perf_counter()
    native = sr.compile(model, backend="native")
    seconds["native"] = time.perf_counter() - start
    load_native(native.code.name, native.namespace, native.library)
    sessions["native"] = getattr(ROOT, native.namespace).Session(str(native.weights_path))

    code = model.code(namespace=f"{name}_O2", target=CpuTarget("native", host_isa()))
    start = time.perf_counter()
    library = build_native(code, f"{name}_O2_api", ["-O2"])
    seconds["O2"] = time.perf_counter() - start
    load_native(code.name, f"{name}_O2_api", library)
    sessions["O2"] = getattr(ROOT, f"{name}_O2_api").Session(str(library.parent / binary_weights_name(code.name)))

    start = time.perf_counter()
    jit = sr.compile(model, backend="jit")
    sessions["jit"] = getattr(ROOT, jit.namespace).Session(str(jit.weights_path))
    seconds["jit"] = time.perf_counter() - start

    for engine, macro in (("declared", ""), ("eager", "SOFIE_RDF_CLING_EAGER")):
        sessions[engine], seconds[engine] = _declared(ROOT, model, folder, engine, macro)

    before = model.code(namespace=f"{name}_before", target=CpuTarget("cling", "generic"))
    sr.targets.cpu.write_files(before, folder / "before")
    start = time.perf_counter()
    jit_declare(before)
    sessions["jit_before"] = getattr(ROOT, before.namespace).Session(str(folder / "before" / f"{before.name}.dat"))
    seconds["jit_before"] = time.perf_counter() - start
    return sessions, seconds


def _declared(ROOT: Any, model: Any, folder: Path, engine: str, macro: str) -> tuple[Any, float]:
    """The header ``Model.generate`` writes, declared as SOFIE's users do (``macro`` defined around it, if any), and
    the seconds to declare it and make its Session."""
    files = model.generate(folder / engine, name=f"{model.name}_{engine}")
    source = f'#include "{files.header}"'
    if macro:
        source = f"#define {macro}\n{source}\n#undef {macro}"
    start = time.perf_counter()
    if not ROOT.gInterpreter.Declare(source):
        raise SystemExit(f"{model.name}: Cling could not declare {files.header} ({engine})")
    session = getattr(ROOT, files.namespace).Session(str(files.weights))
    return session, time.perf_counter() - start


def measure(name: str, root: Path, rounds: int, target: float, cling_flags: str) -> dict[str, Any]:
    """One model: each engine's median seconds per call over interleaved rounds, and its build seconds."""
    ROOT = start_root(cling_flags)
    model, xs = load(name, root)
    sizes = [int(np.prod(t.shape)) for t in model.outputs]
    with tempfile.TemporaryDirectory() as tmp:
        sessions, build_s = build(ROOT, model, Path(tmp))
        y = {e: [np.empty(size, np.float32) for size in sizes] for e in ENGINES}
        timers = {e: _timer(ROOT, _namespace_of(s), len(xs), len(sizes)) for e, s in sessions.items()}
        calls = {e: (lambda e=e: timers[e](sessions[e], *xs, *y[e], target)) for e in ENGINES}
        for e in ENGINES:  # warm up: the JIT emits code on the first call
            start = time.perf_counter()
            calls[e]()
            if e in ("jit", "declared", "eager", "jit_before"):
                build_s[e] += time.perf_counter() - start
        samples: dict[str, list[float]] = {e: [] for e in ENGINES}
        for _ in range(rounds):
            for e in ENGINES:
                samples[e].append(calls[e]())
    worst = {e: max(float(np.max(np.abs(a - b))) for a, b in zip(y[e], y["native"])) for e in ENGINES}
    return {"model": name, "batch": int(xs[0].shape[0]), "seconds": {e: statistics.median(v) for e, v in samples.items()},
            "build_s": build_s, "max_abs_diff_vs_native": worst}


def _namespace_of(cpp_session: Any) -> str:
    return type(cpp_session).__cpp_name__.rsplit("::", 1)[0]


def cpu_description() -> tuple[str, str]:
    """(model name, instruction set) of this machine's CPU, for the tables."""
    from sofie_rdf.targets.cpu import host_isa

    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    extras = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return model, host_isa() + (f" ({', '.join(extras)})" if extras else " (no VNNI)")


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# Build paths: {meta['cpu']}, {meta['isa']}", "",
             f"{meta['date']}; one thread; ROOT {meta['root']} started before sofie_rdf (Cling flags: "
             f"{meta['cling_flags']}); per call "
             "from a C++ loop in Cling, medians of interleaved rounds.  `declared`: the header `Model.generate` writes, "
             "declared as SOFIE's users do (this CPU's plan, every level's kernels).  `jit`: this CPU's plan, its "
             "level alone.  `eager`: `declared` with SOFIE_RDF_CLING_EAGER defined (its planned level's infer compiled at "
             "-O3 as it is declared).  `jit_before`: the JIT's plan until 2026-11-28 (generic x86-64, BLAS in place of register "
             "tiles).  Build: seconds to compile (JIT: declare and first call).", "",
             "| model | batch | native us | O2 / native | jit / native | declared / native | eager / native | "
             "jit_before / native | build s native / O2 / jit / declared / eager |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        s, b = r["seconds"], r["build_s"]
        ratios = " | ".join(f"{s[e] / s['native']:.2f}" for e in ("O2", "jit", "declared", "eager", "jit_before"))
        builds = " / ".join(f"{b[e]:.1f}" for e in ("native", "O2", "jit", "declared", "eager"))
        lines.append(f"| {r['model']} | {r['batch']} | {s['native'] * 1e6:.1f} | {ratios} | {builds} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.05, help="per measurement")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--cling-flags", default="", help="EXTRA_CLING_ARGS (default: none, Cling's own flags)")
    args = parser.parse_args(argv)
    import subprocess
    import sys

    rows = []
    for name in args.models.split(","):  # one process each: Cling cannot forget a model, ROOT starts first
        result = subprocess.run([sys.executable, "-m", "benchmarks.build_paths", "--one", name, str(args.rounds),
                                 str(args.seconds), args.cling_flags], capture_output=True, text=True, cwd=HERE.parent)
        line = next((line for line in result.stdout.splitlines() if line.startswith("{")), None)
        if line is None:
            print(f"{name}: failed\n{result.stderr[-3000:]}")
            continue
        rows.append(json.loads(line))
        s = rows[-1]["seconds"]
        print(name, " ".join(f"{e} {s[e] / s['native']:.2f}" for e in ENGINES[1:]), flush=True)
    cpu, isa = cpu_description()
    import ROOT

    meta = {"cpu": cpu, "isa": isa, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "root": ROOT.gROOT.GetVersion(), "cling_flags": args.cling_flags or "Cling's own"}
    vendor = "amd" if "AMD" in cpu else "intel"
    from . import real

    taggers = {t.label for t in real.TAGGERS}
    stem = (f"build_paths_{isa.split()[0]}_{vendor}" + ("_taggers" if set(args.models.split(",")) <= taggers else "")
            + ("_cling_march" if args.cling_flags else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (args.out / f"{stem}.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 6 and sys.argv[1] == "--one":
        os.environ.setdefault("SOFIE_RDF_CACHE", tempfile.mkdtemp(prefix="sofie-build-paths-"))
        work = Path(tempfile.gettempdir()) / "sofie-rdf-bench"
        print(json.dumps(measure(sys.argv[2], work, int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])))
    else:
        main()
