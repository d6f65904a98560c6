"""Cold start and Python call overhead of sofie-rdf against onnxruntime and torch (issue 24).

* **Cold start**: a fresh Python process, from the moment it is started to the first result, with the
  compile cache warm (the model was compiled before, by another process), and the process's peak resident
  memory (VmHWM) at that moment. sofie-rdf: ``sr.compile(path, backend="native").infer(x)``; onnxruntime:
  ``InferenceSession(path)`` (one thread) and ``run``; torch: ``torch.jit.load`` of the traced module and
  one call under ``inference_mode`` (one thread). The median of ``runs`` processes per engine, the engines
  taking turns.
* **Call overhead**: the time of one Python call on the smallest models, the engines interleaved in one
  process (``latency.time_calls``, median of 5): sofie-rdf native (the C ABI through ``_fastcall``), the
  same library through ctypes alone (where the extension cannot be built), sofie-rdf's JIT (PyROOT/cppyy,
  the only path before issue 24), onnxruntime and torch.

``python -m benchmarks.cold_start [--runs N] [--results DIR]`` writes ``benchmarks/results/cold_start.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import latency, models

COLD_MODELS = ("higgs_model_dense", "CaloCNN2d_32px", "resnet18")
OVERHEAD_MODELS = ("Overhead_Relu_B1", "higgs_model_dense", "SimpleNN_Alice", "Linear_event")
ENGINES = ("sofie", "ort", "torch")
LABELS = {"sofie": "sofie-rdf native", "ort": "onnxruntime", "torch": "torch (TorchScript)"}

# Each child prints when it has its first result (time.time(), comparable with the parent's) and its VmHWM.
_REPORT = ("import json, pathlib, time; print(json.dumps({'t': time.time(), 'rss': int([l for l in pathlib.Path("
           "'/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')][0].split()[1]) / 1024, "
           "'y': float(abs(np.asarray(y)).sum())}))")
CHILD = {
    "sofie": "import numpy as np\nimport sofie_rdf as sr\nx = np.load({x!r})\n"
             "y = sr.compile({onnx!r}, backend='native').infer(x)\n",
    "ort": "import numpy as np\nimport onnxruntime as ort\nx = np.load({x!r})\no = ort.SessionOptions()\n"
           "o.intra_op_num_threads = o.inter_op_num_threads = 1\n"
           "y = ort.InferenceSession({onnx!r}, o, providers=['CPUExecutionProvider']).run(None, {{'x': x}})[0]\n",
    "torch": "import numpy as np\nimport torch\ntorch.set_num_threads(1)\nx = np.load({x!r})\n"
             "m = torch.jit.load({pt!r})\nwith torch.inference_mode():\n    y = m(torch.from_numpy(x)).numpy()\n",
}


def prepare(name: str, root: Path, cache: Path) -> dict[str, str]:
    """The model's files (ONNX, TorchScript, input) and a warm compile cache for it."""
    import torch

    onnx = models.onnx_path(name, root)
    pt = onnx.with_suffix(".pt")
    x = onnx.with_suffix(".x.npy")
    if not pt.exists():
        with torch.no_grad():
            torch.jit.trace(models.module(name), torch.from_numpy(models.inputs(name))).save(str(pt))
    np.save(x, models.inputs(name))
    files = {"onnx": str(onnx), "pt": str(pt), "x": str(x)}
    first(("sofie",), files, cache)  # builds the library and the index entry
    return files


def first(engines: tuple[str, ...], files: dict[str, str], cache: Path) -> dict[str, dict[str, float]]:
    """Per engine, one fresh process: seconds from its start to its first result, its peak RSS in MB."""
    out = {}
    env = {**os.environ, "SOFIE_RDF_CACHE": str(cache)}
    for engine in engines:
        start = time.time()
        run = subprocess.run([sys.executable, "-c", CHILD[engine].format(**files) + _REPORT], env=env,
                             capture_output=True, text=True, check=True)
        report = json.loads(run.stdout.strip().splitlines()[-1])
        out[engine] = {"seconds": report["t"] - start, "rss": report["rss"], "checksum": report["y"]}
    return out


def cold_start(names: tuple[str, ...], runs: int, root: Path) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for name in names:
            files = prepare(name, root, Path(cache))
            samples = [first(ENGINES, files, Path(cache)) for _ in range(runs)]
            row = {"model": name}
            for engine in ENGINES:
                row[engine] = {"seconds": statistics.median(s[engine]["seconds"] for s in samples),
                               "rss": statistics.median(s[engine]["rss"] for s in samples)}
            sums = [samples[0][e]["checksum"] for e in ENGINES]
            row["agree"] = all(abs(s - sums[1]) <= 1e-3 * abs(sums[1]) + 1e-5 for s in sums)
            rows.append(row)
            print(name, json.dumps(row), flush=True)
    return rows


def bare_python() -> dict[str, float]:
    """A process that imports numpy and nothing else: the floor under every engine."""
    start = time.time()
    run = subprocess.run([sys.executable, "-c", "import numpy as np\ny = np.zeros(1)\n" + _REPORT],
                         capture_output=True, text=True, check=True)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    return {"seconds": report["t"] - start, "rss": report["rss"]}


def _calls(name: str, root: Path) -> dict[str, Any]:
    """One call of each engine on model ``name``'s input."""
    import onnxruntime as ort
    import torch

    import sofie_rdf as sr
    from sofie_rdf import _native

    path = models.onnx_path(name, root)
    x = models.inputs(name)
    native = sr.compile(str(path), backend="native")
    plain = _native.NativeBinding(_native.library(native.library), native.weights_path, extension=False)
    ctypes_session = sr.Session(native.interface, plain, "native", native.weights_path, native.folder)
    jit = sr.compile(str(path), backend="jit")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    onnxrt = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    module, xt = models.module(name), torch.from_numpy(x)
    return {"sofie": lambda: native.infer(x), "sofie_ctypes": lambda: ctypes_session.infer(x),
            "sofie_jit": lambda: jit.infer(x), "ort": lambda: onnxrt.run(None, {"x": x}), "torch": lambda: module(xt)}


def overhead(names: tuple[str, ...], root: Path) -> list[dict[str, Any]]:
    """Per model, seconds per Python call of each engine, interleaved in this process."""
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in names:
        calls = _calls(name, root)
        times: dict[str, list[float]] = {k: [] for k in calls}
        with torch.inference_mode():
            for _ in range(5):  # engines take turns, so drifts of the machine reach all of them
                for engine, call in calls.items():
                    times[engine].append(statistics.median(latency.time_calls(call, 0.05, 3)))
        rows.append({"model": name, **{k: statistics.median(v) for k, v in times.items()}})
        print(name, json.dumps(rows[-1]), flush=True)
    return rows


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.3g} us"


def markdown(cold: list[dict], floor: dict, calls: list[dict], meta: dict) -> str:
    lines = [
        "# Cold start and Python call overhead (issue 24)", "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores ({meta['simd']}), {meta['system']}; "
        f"{meta['date']}. Generated by `python -m benchmarks.cold_start`.", "",
        "## A fresh process to its first result (compile cache warm)", "",
        "Seconds from starting `python` to holding the first output, and the process's peak resident memory "
        f"then; the median of {meta['runs']} processes per engine, the engines taking turns. A process that "
        f"imports numpy alone takes {floor['seconds']:.2f} s and {floor['rss']:.0f} MB.", "",
        "| model | " + " | ".join(f"{LABELS[e]}: first result" for e in ENGINES) + " | "
        + " | ".join(f"{LABELS[e]}: peak RSS" for e in ENGINES) + " | sofie / ORT RSS | outputs agree |",
        "|---|" + "---:|" * (2 * len(ENGINES) + 2),
    ]
    for row in cold:
        lines.append(f"| {row['model']} | " + " | ".join(f"{row[e]['seconds']:.2f} s" for e in ENGINES) + " | "
                     + " | ".join(f"{row[e]['rss']:.0f} MB" for e in ENGINES)
                     + f" | {row['sofie']['rss'] / row['ort']['rss']:.2f}x | {'yes' if row['agree'] else 'NO'} |")
    lines += [
        "", "## Time of one Python call", "",
        "Per call, the engines interleaved in one process (median of 5 rounds). *ctypes*: the same library "
        "without the `_fastcall` extension (its fallback); *jit*: the header JIT-compiled by Cling and called "
        "through PyROOT, which was also the native backend's path before issue 24.", "",
        "| model | sofie-rdf native | sofie-rdf native, ctypes | sofie-rdf jit (PyROOT) | onnxruntime | torch | "
        "native / ORT |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in calls:
        lines.append(f"| {row['model']} | {_us(row['sofie'])} | {_us(row['sofie_ctypes'])} | {_us(row['sofie_jit'])} | "
                     f"{_us(row['ort'])} | {_us(row['torch'])} | {row['sofie'] / row['ort']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per engine and model")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "sofie-bench",
                        help="where the model files go")
    parser.add_argument("--results", type=Path, default=latency.RESULTS, help="where cold_start.md goes")
    args = parser.parse_args(argv)
    m = latency.machine()
    meta = {**m, "runs": args.runs, "date": time.strftime("%Y-%m-%d")}
    cold = cold_start(COLD_MODELS, args.runs, args.root)
    calls = overhead(OVERHEAD_MODELS, args.root)
    text = markdown(cold, bare_python(), calls, meta)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "cold_start.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
