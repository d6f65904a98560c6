"""A/B two source trees of sofie-rdf on benchmark models, interleaved in one process.

A kernel change is worth keeping when it is faster on the machine at hand, and this project's machines are
noisy (10-25% between runs of the same code).  Timing each version in its own process compares two noisy
moments; this tool builds each model's native library from both trees (each in a subprocess importing that
tree's ``sofie_rdf``, with its own compile cache), loads both libraries into one process next to
onnxruntime, checks that they agree, and times them in alternating rounds, so that a slow moment of the
machine falls on both.

``python -m benchmarks.ab --base /path/to/other/checkout --models ResNetSmall_4ch_32px,DeepSets_64p``
(or paths of ONNX files of one float input) prints, per model, the median and the fastest round of each engine
(per call from Python, through the ``_fastcall`` path: about half a microsecond of overhead) and the ratios
``this tree / base`` and ``this tree / onnxruntime`` (onnxruntime from Python adds some 10 to 20 us a call: the C++ comparison is
:mod:`benchmarks.hep_latency`'s).  ``--flags`` builds both for another instruction set (``-O3 -march=native
-mno-avx512f``: the AVX2 kernels on an AVX-512 machine).  Model names are those of :mod:`benchmarks.models`
and :mod:`benchmarks.hep`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import latency, models

HERE = Path(__file__).resolve().parent
_BUILD = """
import json, sys
import sofie_rdf as sr
flags = json.loads(sys.argv[2])
sess = sr.compile(sys.argv[1], backend="native", flags=flags)
print(json.dumps({"library": str(sess.library), "weights": str(sess.weights_path) if sess.weights_path else None}))
"""


def build(tree: Path, onnx: Path, work: Path, flags: Optional[list[str]]) -> dict[str, Any]:
    """Compile ``onnx`` with the ``sofie_rdf`` of ``tree`` into ``work``'s cache: the library and its weights."""
    env = {**os.environ, "PYTHONPATH": str(tree), "SOFIE_RDF_CACHE": str(work)}
    result = subprocess.run([sys.executable, "-c", _BUILD, str(onnx), json.dumps(flags)], env=env, cwd=tree,
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"building {onnx.name} with {tree} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def interleaved(calls: dict[str, Callable[[], Any]], rounds: int, seconds: float) -> dict[str, list[float]]:
    """Seconds per call of each engine, one measurement of each per round, the order rotated every round."""
    sizes = {name: latency.calls_for(call, seconds) for name, call in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(latency.seconds_per_call(calls[name], sizes[name]))
    return times


def _model(name: str, work: Path) -> tuple[Path, np.ndarray]:
    """A benchmark model's file and input, or an ONNX file's (``name`` ending in .onnx) and a normal random input of
    its first input's shape (symbolic dims 1)."""
    if not name.endswith(".onnx"):
        return models.onnx_path(name, work), models.inputs(name)
    import onnx

    dims = onnx.load(name, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value or 1 for d in dims)
    return Path(name), np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def compare(name: str, base: Path, flags: Optional[list[str]], work: Path, rounds: int, seconds: float) -> dict:
    """One model: build from both trees, check both against onnxruntime, time the three interleaved."""
    import onnxruntime as ort

    from sofie_rdf._native import native_session

    onnx, x = _model(name, work)
    sessions = {}
    for label, tree in (("base", base), ("this", HERE.parent)):
        built = build(tree, onnx, work / f"cache-{label}", flags)
        sessions[label] = native_session(Path(built["library"]), Path(built["weights"]) if built["weights"] else None)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    rt = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
    feed = {rt.get_inputs()[0].name: x}
    refs = rt.run(None, feed)
    for label, sess in sessions.items():
        got = sess.infer(x)
        for k, (y, ref) in enumerate(zip(got if isinstance(got, (list, tuple)) else [got], refs)):
            y = np.asarray(y)
            if not np.allclose(y, ref, rtol=1e-3, atol=1e-5 * float(np.abs(ref).max())):
                raise SystemExit(f"{name}: output {k} of the {label} tree disagrees with onnxruntime (max |diff| "
                                 f"{np.abs(y - ref).max():.3g})")
    calls = {label: (lambda s=sess: s.infer(x)) for label, sess in sessions.items()}
    calls["ort"] = lambda: rt.run(None, feed)
    return interleaved(calls, rounds, seconds)


def report(name: str, times: dict[str, list[float]]) -> str:
    med = {k: float(np.median(v)) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    paired = np.median(np.array(times["this"]) / np.array(times["base"]))
    name = Path(name).stem if name.endswith(".onnx") else name
    return (f"{name:32s} base {med['base'] * 1e6:9.1f} us (min {best['base'] * 1e6:8.1f})  "
            f"this {med['this'] * 1e6:9.1f} us (min {best['this'] * 1e6:8.1f})  "
            f"this/base {med['this'] / med['base']:.3f} (paired {paired:.3f}, min {best['this'] / best['base']:.3f})  "
            f"this/ort(py) {med['this'] / med['ort']:.3f}")


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (a git worktree)")
    parser.add_argument("--models", required=True, help="comma-separated model names")
    parser.add_argument("--flags", help="compiler flags for both builds (default: sofie-rdf's native flags)")
    parser.add_argument("--rounds", type=int, default=21, help="timed batches per engine (default 21)")
    parser.add_argument("--seconds", type=float, default=0.05, help="length of one batch (default 0.05 s)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sofie-rdf-ab"), help="models and caches")
    args = parser.parse_args(argv)
    flags = args.flags.split() if args.flags else None
    for name in args.models.split(","):
        times = compare(name, args.base.resolve(), flags, args.work, args.rounds, args.seconds)
        print(report(name, times), flush=True)


if __name__ == "__main__":
    main()
