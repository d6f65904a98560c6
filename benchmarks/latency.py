"""Per-event latency, peak memory and compile times of sofie-rdf against onnxruntime and torch (issue 8).

Every model of :mod:`benchmarks.models` runs in six engines, each in a
fresh process so that the peak resident memory (VmHWM) is that engine's:

* ``native``: sofie-rdf's natively compiled library called from C++.  A small
  driver executable includes the library's interface header and links the
  very ``.so`` that ``sofie_rdf.compile(backend="native")`` built and loads;
  the driver is compiled with the same command (``sofie_rdf.targets.cpu.native.compiler_command``,
  default flags ``-O3 -march=native -fno-trapping-math``).  Its process holds
  no Python and no ROOT, so its peak memory is the model's own.
* ``jit``: the same C++ timing loop (``timing.hxx``) declared to Cling next to
  the JIT-compiled Session, in a Python process with ROOT.
* ``python``: ``Session.infer`` on numpy arrays (native backend); it
  allocates its output array per call, as users see it (there is no
  allocation-free Python path).
* ``ort``: ``InferenceSession.run`` with one intra-op and one inter-op thread.
* ``ort_cpp``: onnxruntime called from C++ through its C API (``ort_driver.cpp``
  over the hand-written declarations of ``ort_capi.hxx``, linked with the
  ``libonnxruntime.so`` of the onnxruntime wheel), timed with the native
  engine's loop: the same model file and thread settings as ``ort``; input and
  output tensors are OrtValues over buffers allocated once and bound once to
  an IoBinding, so a call is ``RunWithBinding`` alone (``Run`` with the same
  preallocated outputs measured the same).  This is the baseline of the C++
  comparison: ``ort`` adds Python's call overhead (about 20 us).
* ``torch``: the same seeded module, ``torch.set_num_threads(1)``, inference mode.

Timing: calls back to back on one fixed input; n calls per measurement with n
calibrated to about ``target`` seconds, the median of ``repeats`` measurements
(3 for heavy models); per event = per call / batch.  The two C++ engines are then timed
again in one process (the onnxruntime driver loads the native library), PAIRED_ROUNDS alternating
measurements of PAIRED_SECONDS each: their columns are the medians of those and their ratio the
median of the rounds' ratios (``_paired``).  Before timing, each
engine's output is compared with onnxruntime's (computed once in the parent):
it agrees when ``|y - ref| <= 1e-3 |ref| + 1e-5 max|ref|`` everywhere;
a disagreement is marked in the table.  Compile times are measured with an
empty cache: ``parse`` is ``sofie_rdf.load``, ``generate`` is
``Model.code()``, ``compile`` is ``sofie_rdf.compile`` less the code
generation it repeats (native: compiler and load; jit: Cling declaration plus
the first call, minus one steady call, since Cling emits code lazily).

Run ``python -m benchmarks.latency [--models A,B] [--quick]``; writes
``benchmarks/results/latency.{md,json}`` and ``latency*.png`` (``--quick``:
a few small models, short measurements, into ``benchmarks/results/quick/``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from . import isa, models

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ENGINES = ("native", "jit", "python", "ort", "ort_cpp", "torch")
LABELS = {"native": "sofie native (C++)", "jit": "sofie jit (C++)", "python": "sofie (Python)",
          "ort": "onnxruntime (Python)", "ort_cpp": "onnxruntime (C++)", "torch": "torch (Python)"}
SHORT = {"native": "native", "python": "python", "ort": "ORT (Python)", "ort_cpp": "ORT (C++)"}
RATIOS = (("native", "ort_cpp"), ("native", "ort"), ("python", "ort"))  # (engine, baseline) columns of the table
QUICK_MODELS = ("Overhead_Relu_B1", "Linear_event", "Linear_64", "higgs_model_dense", "LSTM_d10_L20_h8_B1",
                "Conv_d100_L1_B1", "Generator_B1")
GFLOP_MODELS = ("Linear_64", "Generator_B64", "Conv_d100_L14_B32", "resnet18")  # largest GEMM- and conv-bound
RTOL, ATOL_SCALE = 1e-3, 1e-5
WORKER_TIMEOUT = 900
# Alternating measurements of the native library and onnxruntime in one C++ process per model, after each
# engine's own run (see _paired), each of PAIRED_SECONDS: the machine's speed drifts over seconds.
PAIRED_ROUNDS = 15
PAIRED_SECONDS = 0.1
PAIRED_NOTE = (f"the C++ columns (sofie native, onnxruntime) and their ratio: the medians of {PAIRED_ROUNDS} "
               f"alternating measurements of {PAIRED_SECONDS} s each of the two in one C++ process")
THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


# ---------------------------------------------------------------- measuring (in the worker processes)


def seconds_per_call(call: Callable[[], Any], n: int) -> float:
    """Seconds per call of ``n`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def calls_for(call: Callable[[], Any], target: float) -> int:
    """Calls per measurement of about ``target`` seconds: ``calls_for`` of ``timing.hxx``, in Python."""
    n = 1
    while True:
        dt = seconds_per_call(call, n) * n
        if dt >= target / 10:
            return 1 if dt >= target else int(n * target / dt) + 1
        n *= 2


def time_calls(call: Callable[[], Any], target: float, repeats: int) -> list[float]:
    """Seconds per call: the algorithm of ``time_calls`` in ``timing.hxx``, in Python."""
    n = calls_for(call, target)
    return [seconds_per_call(call, n) for _ in range(repeats)]


def save_tables(folder: Path, stem: str, meta: dict, rows: list, markdown: Callable[[list, dict], str]) -> str:
    """``stem``.json (meta and rows) and ``stem``.md (the markdown of them) in ``folder``; the markdown returned."""
    (folder / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
    text = markdown(rows, meta)
    (folder / f"{stem}.md").write_text(text)
    return text


def interleaved_medians(calls: dict[str, Callable[[], Any]], target: float, rounds: int) -> dict[str, float]:
    """Median seconds per call of each engine, the engines timed in turn ``rounds`` times (drift falls on all)."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times[name] += time_calls(call, target, 3)
    return {k: float(np.median(v)) for k, v in times.items()}


def peak_rss_mb() -> float:
    """VmHWM of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def agreement(y: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """Whether ``y`` matches onnxruntime's ``ref`` (see the module docstring), with the largest error."""
    y = np.asarray(y, dtype=np.float32).reshape(ref.shape)
    err = np.abs(y.astype(np.float64) - ref)
    bound = RTOL * np.abs(ref) + ATOL_SCALE * float(np.abs(ref).max())
    return {"agree": bool(np.all(err <= bound)), "max_abs_err": float(err.max())}


@contextmanager
def _timing_code() -> Iterator[list[float]]:
    """Times every ``Model.code`` call inside the block (seconds in the yielded list), to subtract from compile time."""
    import sofie_rdf as sr

    original, spent = sr.Model.code, [0.0]

    def timed(model: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(model, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    sr.Model.code = timed
    try:
        yield spent
    finally:
        sr.Model.code = original


def _sofie_build(onnx: Path, backend: str) -> tuple[Any, dict[str, float]]:
    """Load, generate and compile ``onnx``; the session and the three times."""
    import sofie_rdf as sr

    start = time.perf_counter()
    model = sr.load(onnx)
    parse = time.perf_counter() - start
    start = time.perf_counter()
    model.code()
    generate = time.perf_counter() - start
    with _timing_code() as spent:
        start = time.perf_counter()
        sess = sr.compile(model, backend=backend, **({"flags": isa.native_flags()} if backend == "native" else {}))
        compile_ = time.perf_counter() - start - spent[0]
    return sess, {"parse_s": parse, "generate_s": generate, "compile_s": compile_}


def _bench_source(namespace: str, n_in: int, n_out: int) -> str:
    """C++ ``time_model(Session &, x..., y..., target, repeats)`` around ``timing.hxx``'s loop."""
    xs, ys = [f"x{k}" for k in range(n_in)], [f"y{k}" for k in range(n_out)]
    params = ", ".join([f"const float *{x}" for x in xs] + [f"float *{y}" for y in ys])
    return "\n".join([
        f'#include "{HERE / "timing.hxx"}"',
        f"namespace sofie_rdf_bench_{namespace} {{",
        f"inline std::vector<double> time_model({namespace}::Session &s, {params}, double target, int repeats)",
        f"{{ return sofie_rdf_bench::time_calls([&] {{ s.infer({', '.join(xs + ys)}); }}, target, repeats); }}",
        "}", ""])


def _driver_source(sess: Any) -> str:
    """``main`` of the native driver: read inputs, one call, write outputs, time, print JSON."""
    n_in, n_out = len(sess.inputs), len(sess.outputs)
    ns = sess.namespace
    sizes = [int(np.prod(t.shape)) for t in sess.outputs]
    lines = [f'#include "{sess.code.name}_interface.hxx"', _bench_source(ns, n_in, n_out),
             "#include <cstdio>", "#include <cstdlib>",
             "static std::vector<float> read(const char *path) {",
             "   std::ifstream f(path, std::ios::binary | std::ios::ate); std::vector<float> v(f.tellg() / sizeof(float));",
             "   f.seekg(0); f.read(reinterpret_cast<char *>(v.data()), v.size() * sizeof(float)); return v; }",
             "int main(int argc, char **argv) {",
             f"   if (argc != {4 + n_in + n_out}) return 2;  // weights target repeats inputs... outputs...",
             "   using clock = std::chrono::steady_clock;",
             "   auto t0 = clock::now();",
             f"   {ns}::Session s(argv[1]);",
             "   double construct = sofie_rdf_bench::seconds_since(t0);",
             *[f"   std::vector<float> x{k} = read(argv[{4 + k}]);" for k in range(n_in)],
             *[f"   std::vector<float> y{k}({sizes[k]});" for k in range(n_out)]]
    args = ", ".join([f"x{k}.data()" for k in range(n_in)] + [f"y{k}.data()" for k in range(n_out)])
    lines += ["   t0 = clock::now();", f"   s.infer({args});", "   double first = sofie_rdf_bench::seconds_since(t0);",
              *[f"   std::ofstream(argv[{4 + n_in + k}], std::ios::binary).write(reinterpret_cast<const char *>("
                f"y{k}.data()), y{k}.size() * sizeof(float));" for k in range(n_out)],
              f"   auto t = sofie_rdf_bench_{ns}::time_model(s, {args}, std::atof(argv[2]), std::atoi(argv[3]));",
              '   std::printf("{\\"construct_s\\": %g, \\"first_call_s\\": %g, \\"peak_rss_mb\\": %g, \\"per_call\\": [",',
              "               construct, first, sofie_rdf_bench::peak_rss_kb() / 1024.0);",
              '   for (size_t i = 0; i < t.size(); ++i) std::printf("%s%.9g", i ? ", " : "", t[i]);',
              '   std::printf("]}\\n");', "   return 0;", "}", ""]
    return "\n".join(lines)


def _static_float(sess: Any) -> None:
    """The C++ benchmarks handle float32 tensors of fixed shape: say so instead of miscompiling."""
    for t in sess.inputs + sess.outputs:
        if t.dtype != np.float32 or not all(isinstance(d, int) for d in t.shape):
            raise SystemExit(f"{sess.name}: tensor {t.name} is {t.dtype} {t.shape}: the benchmark needs static float32")


def run_native(onnx: Path, x: np.ndarray, ref: np.ndarray, work: Path, target: float, repeats: int) -> dict:
    """Build with sofie_rdf.compile, then time the library from the C++ driver in its own process."""
    from sofie_rdf.targets.cpu.native import compiler_command

    flags = isa.native_flags()
    sess, times = _sofie_build(onnx, "native")
    _static_float(sess)
    source = work / "driver.cpp"
    source.write_text(_driver_source(sess))
    exe = work / "driver"
    library = next(sess.folder.glob("lib*.so"))
    cmd = [a for a in compiler_command(source, exe, flags) if a != "-shared"]
    cmd += ["-I", str(sess.folder), str(library), f"-Wl,-rpath,{sess.folder}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    x.tofile(work / "x0.bin")
    command = [str(exe), str(sess.weights_path), str(target), str(repeats), str(work / "x0.bin"), str(work / "y0.bin")]
    result = _run_driver(command)
    y = np.fromfile(work / "y0.bin", dtype=np.float32)
    compiler = subprocess.run([*compiler_command(source, exe, ())[:1], "--version"], capture_output=True, text=True)
    return {**times, **result, **agreement(y, ref), "flags": " ".join(flags),
            "compiler": compiler.stdout.splitlines()[0] if compiler.stdout else "?",
            "library": str(library), "weights": str(sess.weights_path) if sess.weights_path else "-"}


def run_jit(onnx: Path, x: np.ndarray, ref: np.ndarray, work: Path, target: float, repeats: int) -> dict:
    """JIT-compile, then time the C++ loop declared to Cling around a fresh C++ Session."""
    import ROOT

    sess, times = _sofie_build(onnx, "jit")
    _static_float(sess)
    namespace, weights = sess.namespace, sess.weights_path
    outputs = [np.empty(t.shape, np.float32) for t in sess.outputs]
    del sess  # its C++ Session would double the weights in memory: the loop gets its own
    ROOT.gInterpreter.Declare("#pragma cling optimize(3)\n" + _bench_source(namespace, 1, len(outputs)))
    start = time.perf_counter()
    cpp = getattr(ROOT, namespace).Session(str(weights)) if weights else getattr(ROOT, namespace).Session()
    construct = time.perf_counter() - start
    start = time.perf_counter()
    cpp.infer(x, *outputs)
    first = time.perf_counter() - start
    check = agreement(outputs[0], ref)
    bench = getattr(ROOT, f"sofie_rdf_bench_{namespace}").time_model
    per_call = list(bench(cpp, x, *outputs, target, repeats))
    times["compile_s"] += first - statistics.median(per_call)  # Cling emits the code of infer on the first call
    return {**times, **check, "construct_s": construct, "first_call_s": first, "per_call": per_call,
            "root": ROOT.gROOT.GetVersion(), "peak_rss_mb": peak_rss_mb()}


def run_python(onnx: Path, x: np.ndarray, ref: np.ndarray, work: Path, target: float, repeats: int) -> dict:
    """Session.infer from Python (native backend, library from the cache the native run filled)."""
    sess, _ = _sofie_build(onnx, "native")
    check = agreement(sess.infer(x), ref)
    return {**check, "per_call": time_calls(lambda: sess.infer(x), target, repeats), "peak_rss_mb": peak_rss_mb()}


def run_ort(onnx: Path, x: np.ndarray, ref: np.ndarray, work: Path, target: float, repeats: int) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    start = time.perf_counter()
    sess = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
    create = time.perf_counter() - start
    feed = {sess.get_inputs()[0].name: x}
    check = agreement(sess.run(None, feed)[0], ref)
    return {**check, "construct_s": create, "per_call": time_calls(lambda: sess.run(None, feed), target, repeats),
            "version": ort.__version__, "peak_rss_mb": peak_rss_mb()}


def ort_library() -> Path:
    """``libonnxruntime.so.<version>`` of the installed onnxruntime wheel (found without importing onnxruntime)."""
    import importlib.util

    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ort_cpp: onnxruntime is not installed (pip install onnxruntime): no C library to link")
    capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
    found = sorted(capi.glob("libonnxruntime.so.*.*.*"))
    if not found:
        raise SystemExit(f"ort_cpp: onnxruntime's C library libonnxruntime.so.<version> is missing from {capi} "
                         "(a wheel without it cannot be called from C++)")
    return found[-1]


def _build_ort_driver(library: Path, work: Path) -> Path:
    """Compile ``ort_driver.cpp`` against ``library``; the executable.

    The wheel's library is named by its full version but its SONAME is ``libonnxruntime.so.<major>``, which the
    wheel does not provide: the loader finds it through a link of that name in ``work/lib``.
    """
    from sofie_rdf.targets.cpu.native import DEFAULT_FLAGS

    version = library.name.removeprefix("libonnxruntime.so.")
    libdir = work / "lib"
    libdir.mkdir(exist_ok=True)
    soname = libdir / f"libonnxruntime.so.{version.split('.')[0]}"
    soname.unlink(missing_ok=True)
    soname.symlink_to(library)
    exe = work / "ort_driver"
    cmd = [*shlex.split(os.environ.get("CXX", "c++")), "-std=c++17", *DEFAULT_FLAGS, "-o", str(exe),
           str(HERE / "ort_driver.cpp"), "-L", str(library.parent), f"-l:{library.name}", f"-Wl,-rpath,{libdir}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"ort_cpp: compiling the driver failed:\n{' '.join(cmd)}\n{result.stderr}")
    return exe


def _graph_shapes(onnx: Path) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """Input names and (name, static shape) of the outputs of ``onnx``, in the graph's order."""
    import onnx as onnx_lib

    graph = onnx_lib.load(str(onnx), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    outputs = []
    for out in graph.output:
        dims = out.type.tensor_type.shape.dim
        if out.type.tensor_type.elem_type != onnx_lib.TensorProto.FLOAT or any(not d.HasField("dim_value") for d in dims):
            raise SystemExit(f"{onnx.stem}: output {out.name} is not a static float32 tensor: the benchmark needs one")
        outputs.append((out.name, [d.dim_value for d in dims]))
    return [i.name for i in graph.input if i.name not in initializers], outputs


def _run_driver(command: list[str]) -> dict:
    """Run a C++ driver (the native one or onnxruntime's) with one thread; its JSON result."""
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **THREAD_ENV})
    if out.returncode != 0:
        raise SystemExit(f"{Path(command[0]).name} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ort_cpp(onnx: Path, x: np.ndarray, ref: np.ndarray, work: Path, target: float, repeats: int) -> dict:
    """onnxruntime's C API from the C++ driver (``ort_driver.cpp``) in its own process."""
    library = ort_library()
    exe = _build_ort_driver(library, work)
    inputs, outputs = _graph_shapes(onnx)
    if len(inputs) != 1:
        raise SystemExit(f"{onnx.stem}: {len(inputs)} inputs; the benchmark feeds one")
    x.tofile(work / "x0.bin")
    lines = [f"model {onnx}", f"in {inputs[0]} {work / 'x0.bin'} {x.ndim} " + " ".join(map(str, x.shape))]
    lines += [f"out {name} {work / f'y{k}.bin'} {len(shape)} " + " ".join(map(str, shape))
              for k, (name, shape) in enumerate(outputs)]
    (work / "spec.txt").write_text("\n".join(lines) + "\n")
    command = [str(exe), str(work / "spec.txt"), str(target), str(repeats)]
    result = _run_driver(command)
    expected = library.name.removeprefix("libonnxruntime.so.")
    if result["version"] != expected:
        raise SystemExit(f"ort_cpp: the driver loaded onnxruntime {result['version']}, not the linked {library}")
    y = np.fromfile(work / "y0.bin", dtype=np.float32)
    return {**result, **agreement(y, ref), "library": str(library), "command": command}


def run_torch(onnx: Path, x: np.ndarray, ref: np.ndarray, work: Path, target: float, repeats: int) -> dict:
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    net = models.module(onnx.stem)
    tx = torch.from_numpy(x)
    with torch.inference_mode():
        check = agreement(net(tx).numpy(), ref)
        per_call = time_calls(lambda: net(tx), target, repeats)
    return {**check, "per_call": per_call, "version": torch.__version__, "peak_rss_mb": peak_rss_mb()}


RUNNERS = {"native": run_native, "jit": run_jit, "python": run_python, "ort": run_ort, "ort_cpp": run_ort_cpp,
           "torch": run_torch}


def worker(engine: str, work: Path, target: float, repeats: int) -> None:
    """One (model, engine) measurement in this process; the result goes to ``work/<engine>.json``."""
    onnx = Path((work / "model.txt").read_text())
    x, ref = np.load(work / "x.npy"), np.load(work / "ref.npy")
    folder = work / engine
    folder.mkdir(exist_ok=True)
    result = RUNNERS[engine](onnx, x, ref, folder, target, repeats)
    result["median_s"] = statistics.median(result["per_call"])
    (work / f"{engine}.json").write_text(json.dumps(result))


# ---------------------------------------------------------------- orchestration (parent process)


def flops(onnx: Path) -> float:
    """Floating-point operations of one call: 2 x multiply-adds of Gemm, MatMul, Conv, ConvTranspose and RNNs."""
    import onnx as onnx_lib

    graph = onnx_lib.shape_inference.infer_shapes(onnx_lib.load(str(onnx))).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*graph.input, *graph.value_info, *graph.output]}
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    macs = 0
    for node in graph.node:
        ins, outs = [shapes.get(n, []) for n in node.input], [shapes.get(n, []) for n in node.output]
        if node.op_type in ("Gemm", "MatMul"):
            macs += int(np.prod(outs[0])) * ins[0][-1]
        elif node.op_type == "Conv":
            macs += int(np.prod(outs[0])) * int(np.prod(ins[1][1:]))
        elif node.op_type == "ConvTranspose":
            macs += int(np.prod(ins[0])) * int(np.prod(ins[1][1:]))
        elif node.op_type in ("RNN", "GRU", "LSTM"):
            seq, batch, _ = ins[0]
            macs += seq * batch * int(np.prod(ins[1][1:])) + seq * batch * int(np.prod(ins[2][1:]))
    return 2.0 * macs


def _child(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.latency", *args], capture_output=True, text=True,
                          env={**os.environ, **THREAD_ENV, **env}, cwd=HERE.parent, timeout=WORKER_TIMEOUT)


def run_model(name: str, root: Path, target: float, repeats: int, engines: tuple[str, ...] = ENGINES) -> dict:
    """Every engine on model ``name`` (of either family), each in a fresh process; the per-engine results and
    the model's facts."""
    import onnxruntime as ort

    spec = models.spec(name)
    onnx = models.onnx_path(name, root)
    work = root / "runs" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "model.txt").write_text(str(onnx))
    x = models.inputs(name)
    np.save(work / "x.npy", x)
    ref = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.save(work / "ref.npy", ref.astype(np.float64))
    reps = min(repeats, 3) if spec.heavy else repeats
    row: dict[str, Any] = {"model": name, "batch": spec.batch, "flops": flops(onnx), "repeats": reps, "engines": {},
                           "group": spec.group}
    for engine in engines:  # native first: the python engine reuses its compiled library from the cache
        try:
            proc = _child(["--worker", engine, "--work", str(work), "--target", str(target), "--repeats", str(reps)],
                          {"SOFIE_RDF_CACHE": str(work / "cache")})
        except subprocess.TimeoutExpired:
            proc = subprocess.CompletedProcess([], 1, "", f"timed out after {WORKER_TIMEOUT} s")
        result_file = work / f"{engine}.json"
        if proc.returncode != 0 or not result_file.exists():
            row["engines"][engine] = {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
        else:
            row["engines"][engine] = json.loads(result_file.read_text())
        print(f"  {name:22s} {engine:7s} {_describe(row['engines'][engine], spec.batch)}", flush=True)
    if _paired(row, PAIRED_ROUNDS, min(target, PAIRED_SECONDS)):
        print(f"  {name:22s} native / ort_cpp over {PAIRED_ROUNDS} paired rounds: {row['paired_ratio']:.2f}x "
              f"({_fmt_time(row['engines']['native']['median_s'] / spec.batch)} vs "
              f"{_fmt_time(row['engines']['ort_cpp']['median_s'] / spec.batch)} per event)", flush=True)
    shutil.rmtree(work / "cache", ignore_errors=True)
    ratios = {_ratio_name(e, b): _ratio(row, e, b) for e, b in RATIOS if e in engines and b in engines}
    row["ratios"] = {k: None if r != r else r for k, r in ratios.items()}
    return row


def _paired(row: dict, rounds: int, target: float) -> bool:
    """Time the native library and onnxruntime again, in one process, in ``rounds`` alternating measurements each
    (``ort_driver.cpp`` loads the library next to onnxruntime): the machines this runs on drift by 10 to 25% over
    seconds (a VM's clock and neighbours), so the engines' own runs, a minute apart, compare two moments.  Each
    engine's ``median_s`` becomes the median of its paired measurements (its own run is kept as
    ``process_median_s``) and ``row["paired_ratio"]`` the median of the rounds' native / ort_cpp ratios, the number
    the goals are judged by.  False where either engine failed."""
    native, ort = row["engines"].get("native", {}), row["engines"].get("ort_cpp", {})
    if "library" not in native or "command" not in ort:
        return False
    command = ort["command"]  # (driver, spec, target seconds, repeats)
    result = _run_driver([*command[:2], str(target), str(rounds), native["library"], native["weights"]])
    times = {"native": result["paired_native"], "ort_cpp": result["per_call"]}
    for engine, values in times.items():
        res = row["engines"][engine]
        res.update(process_median_s=res["median_s"], paired_s=values, median_s=statistics.median(values))
    row["paired_ratio"] = statistics.median(a / b for a, b in zip(times["native"], times["ort_cpp"]))
    return True


def _describe(result: dict, batch: int) -> str:
    if "error" in result:
        return f"FAILED: {result['error']}"
    agree = "" if result["agree"] else f"  DISAGREES (max abs err {result['max_abs_err']:.3g})"
    return f"{_fmt_time(result['median_s'] / batch)}/event, {result['peak_rss_mb']:.0f} MB{agree}"


def python_baseline_mb() -> float:
    """Peak memory of a Python process that imports numpy and nothing else: the floor of the Python engines."""
    out = subprocess.run([sys.executable, "-c", "import numpy, pathlib; print([l for l in pathlib.Path("
                          "'/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')][0].split()[1])"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout) / 1024


# ---------------------------------------------------------------- machine


# Independent fp32 multiply-adds on the vectors of the instruction set found (VB bytes), 12 chains: two FMA units
# of 4 cycles' latency need 8 in flight, and 12 vectors plus two operands fit AVX2's 16 registers.
_PEAK_SOURCE = r"""#include <chrono>
#include <cstdio>
typedef float vec __attribute__((vector_size(VB)));
int main()
{
   vec acc[12], b = vec{} + 1.0000001f, c = vec{} + 1e-7f;
   for (int i = 0; i < 12; ++i)
      acc[i] = vec{} + float(i);
   const long steps = 50000000;
   const auto start = std::chrono::steady_clock::now();
   for (long k = 0; k < steps; ++k) {
#pragma GCC unroll 12
      for (int i = 0; i < 12; ++i)
         acc[i] = acc[i] * b + c;
   }
   const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
   float sum = 0;
   for (int i = 0; i < 12; ++i)
      sum += acc[i][0];
   std::printf("%g %g\n", 2.0 * steps * 12 * (VB / 4) / seconds / 1e9, sum);
}
"""


def measured_core_gflops(simd: str) -> float:
    """One core's fp32 peak as measured by a loop of multiply-adds built with ``-march=native``: the clock it
    runs at, turbo included (these VMs report only their base clock). NaN where it cannot be built."""
    vector_bytes = {"AVX-512 FMA": 64, "AVX2 FMA": 32, "SSE": 16}[simd]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "peak.cpp").write_text(_PEAK_SOURCE)
        try:
            subprocess.run(["c++", "-O2", "-march=native", f"-DVB={vector_bytes}", "peak.cpp", "-o", "peak"], cwd=work,
                           check=True, capture_output=True)
            runs = [float(subprocess.run(["./peak"], cwd=work, check=True, capture_output=True, text=True).stdout.split()[0])
                    for _ in range(3)]
        except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
            return float("nan")
    return max(runs)


def remeasure_peak(m: dict) -> None:
    """Measure the core's peak again (after a run's rows) and keep the larger of the two: these VMs change their
    clock from minute to minute, and a peak measured in a slow minute (67 GFLOP/s for AVX2 on a Xeon whose fast
    minutes reach 95) put a layer running at 69% of the core's peak at 98%."""
    values = [v for v in (m.get("measured_core_gflops", float("nan")), measured_core_gflops(m["simd"])) if v == v]
    m["measured_core_gflops"] = max(values) if values else float("nan")


def core_peak(m: dict) -> float:
    """The per-core peak the "% of core peak" columns divide by: measured where it could be, else estimated."""
    measured = m.get("measured_core_gflops", float("nan"))
    return measured if measured == measured else m["peak_core_gflops"]


def _cpuinfo() -> dict[str, Any]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none), "cpu MHz" the largest."""
    info: dict[str, Any] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "cpu MHz":
            info[key] = max(info.get(key, 0.0), float(value))
        else:
            info.setdefault(key, value)
    return info


def cpu_vendor() -> str:
    """``amd``, ``intel`` or ``other``: result files are named by it and the instruction set, because the same
    instructions run at different widths (AMD's Zen 4 splits each AVX-512 operation into two 256-bit halves)."""
    return {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(_cpuinfo().get("vendor_id", ""), "other")


def results_stem(kind: str) -> str:
    """``<kind>_<isa>_<vendor>``: one set of result files per kind of machine, so that every kind's is kept
    (``<kind>_<isa>_<vendor>_as_<narrower isa>`` for a run restricted by :mod:`benchmarks.isa`)."""
    from sofie_rdf.targets.cpu import host_isa

    narrowed = isa.restricted()
    return f"{kind}_{host_isa()}_{cpu_vendor()}" + (f"_as_{narrowed}" if narrowed else "")


def _fma_width(simd: str, vendor: str, family: int) -> int:
    """Bits of one FMA unit: AVX-512's 512, except on Zen 4 (AMD family 25: two 256-bit units; Zen 5 has 512)."""
    if simd == "AVX-512 FMA":
        return 256 if vendor == "amd" and family == 25 else 512
    return {"AVX2 FMA": 256, "SSE": 128}[simd]


def machine() -> dict[str, Any]:
    """CPU model, cores, clock, SIMD and the fp32 peak, estimated and measured (see ``peak_note``)."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    if isa.restricted() == "avx2":
        flags.discard("avx512f")
    simd = "AVX-512 FMA" if "avx512f" in flags else "AVX2 FMA" if {"avx2", "fma"} <= flags else "SSE"
    vendor = cpu_vendor()
    family = int(info.get("cpu family", "0") or 0)
    fma_bits = _fma_width(simd, vendor, family)
    # two units x lanes x 2 (the multiply and the add of an FMA; SSE: one multiply and one add unit)
    per_cycle = 8 if simd == "SSE" else 2 * (fma_bits // 32) * 2
    cores = os.cpu_count() or 1
    ghz = info.get("cpu MHz", 0.0) / 1000
    return {"cpu": info.get("model name", platform.machine()), "vendor": vendor, "family": family, "cores": cores,
            "ghz": ghz, "simd": simd, "fma_bits": fma_bits, "flops_per_cycle": per_cycle,
            "peak_core_gflops": ghz * per_cycle, "peak_gflops": cores * ghz * per_cycle,
            "measured_core_gflops": measured_core_gflops(simd), "system": f"{platform.system()} {platform.release()}",
            "restriction": isa.NOTE if isa.restricted() else ""}


def peak_note(m: dict) -> str:
    units = m.get("fma_bits", 512 if m["flops_per_cycle"] == 64 else 256)
    estimate = (f"peak estimated as cores x clock x fp32 FLOPs/cycle = {m['cores']} x {m['ghz']:.2f} GHz x "
                f"{m['flops_per_cycle']} ({m['simd']}: two {units}-bit FMA "
                f"units x {units // 32} lanes x 2) = {m['peak_gflops']:.0f} GFLOP/s, "
                f"{m['peak_core_gflops']:.0f} per core, with /proc/cpuinfo's clock (the VM reports no boost clock)")
    measured = m.get("measured_core_gflops", float("nan"))
    if measured != measured:
        return estimate + "; the % column divides by that estimate"
    return (estimate + f"; measured, a loop of independent multiply-adds on one core reaches {measured:.0f} GFLOP/s "
            f"(turbo: {measured / m['flops_per_cycle']:.2f} GHz), and the % column divides by that")


# ---------------------------------------------------------------- report


def _fmt_time(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale or unit == "us":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    raise AssertionError


def _per_event(result: dict, batch: int) -> float:
    return result["median_s"] / batch if "median_s" in result else float("nan")


def _cell(result: dict, batch: int) -> str:
    if "error" in result:
        return "failed"
    return _fmt_time(_per_event(result, batch)) + ("" if result["agree"] else " (**wrong**)")


def _ratio(row: dict, engine: str, base: str) -> float:
    """Per-call time of ``engine`` over that of ``base`` on this row (nan where either failed); native over
    ort_cpp from their paired rounds where the row has them (see ``_paired``)."""
    if (engine, base) == ("native", "ort_cpp") and "paired_ratio" in row:
        return row["paired_ratio"]
    return _per_event(row["engines"][engine], 1) / _per_event(row["engines"][base], 1)


def _ratio_name(engine: str, base: str) -> str:
    return f"{SHORT[engine]} / {SHORT[base]}"


def _ratio_cell(ratio: float) -> str:
    return "-" if ratio != ratio else f"{ratio:.2f}x"


def _versions(rows: list[dict]) -> str:
    found: dict[str, str] = {}
    for row in rows:
        e = row["engines"]
        found.setdefault("ROOT", e.get("jit", {}).get("root", ""))
        found.setdefault("compiler", e.get("native", {}).get("compiler", ""))
        found.setdefault("onnxruntime", e.get("ort", {}).get("version", ""))
        found.setdefault("torch", e.get("torch", {}).get("version", ""))
    import sofie_rdf

    root = f", ROOT {found['ROOT']}" if found["ROOT"] else ""
    return (f"sofie-rdf {getattr(sofie_rdf, '__version__', '?')}{root}, onnxruntime {found['onnxruntime']}, "
            f"torch {found['torch']}, numpy {np.__version__}, Python {platform.python_version()}, {found['compiler']}")


def markdown(rows: list[dict], meta: dict) -> str:
    m = meta["machine"]
    lines = [
        "# Latency per event: sofie-rdf against onnxruntime and torch",
        "",
        f"{meta['date']}. Machine: {m['cpu']}, {m['cores']} cores at {m['ghz']:.2f} GHz ({m['simd']}), {m['system']}. "
        f"{meta['versions']}. One thread everywhere; median of {meta['repeats']} measurements (3 for heavy models) of "
        f"about {meta['target']} s each after warm-up{'; QUICK run' if meta['quick'] else ''}; {PAIRED_NOTE}.",
        "",
        "| model | batch | " + " | ".join([LABELS[e] for e in ENGINES] + [_ratio_name(e, b) for e, b in RATIOS]) + " |",
        "|---|---:|" + "---:|" * (len(ENGINES) + len(RATIOS)),
    ]
    for row in rows:
        cells = [_cell(row["engines"][e], row["batch"]) for e in ENGINES]
        cells += [_ratio_cell(_ratio(row, e, b)) for e, b in RATIOS]
        lines.append(f"| {row['model']} | {row['batch']} | " + " | ".join(cells) + " |")
    lines += ["", "Peak resident memory (MB, VmHWM of the process) and sofie-rdf build times (s, empty cache):", "",
              "| model | " + " | ".join(LABELS[e] for e in ENGINES) + " | parse | generate | compile native | compile jit |",
              "|---|" + "---:|" * (len(ENGINES) + 4)]
    for row in rows:
        e = row["engines"]
        mem = [f"{e[k]['peak_rss_mb']:.0f}" if "peak_rss_mb" in e[k] else "-" for k in ENGINES]
        nat, jit = e["native"], e["jit"]
        build = [f"{nat[k]:.2f}" if k in nat else "-" for k in ("parse_s", "generate_s", "compile_s")]
        build.append(f"{jit['compile_s']:.2f}" if "compile_s" in jit else "-")
        lines.append(f"| {row['model']} | " + " | ".join(mem + build) + " |")
    rated = ("native", "ort_cpp", "ort", "torch")
    lines += ["", f"A Python process that imports numpy alone peaks at {meta['python_baseline_mb']:.0f} MB; the native "
              "driver is a plain C++ process (the model's library, its weights and OpenBLAS), and so is the "
              "onnxruntime C++ driver (the model and libonnxruntime); the jit and Python sofie-rdf processes also "
              "hold ROOT and Cling.", "", "Achieved throughput (" + peak_note(m) + "). The FLOPs are the direct "
              "computation's (2 x multiply-adds of each Gemm and convolution); sofie-rdf runs the 3x3 and 5x5 "
              "stride-1 convolutions of Conv_d100_L14 and resnet18 as Winograd transforms, which do a quarter to "
              "half of those multiplications, so its rates there are effective ones and may pass the peak:", "",
              "| model | GFLOP per call | " + " | ".join(f"{LABELS[e]} GFLOP/s" for e in rated)
              + " | native % of one core's peak |", "|---|---:|" + "---:|" * (len(rated) + 1)]
    for row in rows:
        if row["model"] not in GFLOP_MODELS:
            continue
        rates = [row["flops"] / row["engines"][e].get("median_s", float("nan")) / 1e9 for e in rated]
        lines.append(f"| {row['model']} | {row['flops'] / 1e9:.3g} | " + " | ".join(f"{r:.1f}" for r in rates)
                     + f" | {100 * rates[0] / core_peak(m):.0f}% |")
    lines += ["", "Engines: see `benchmarks/latency.py`. *native/jit (C++)*: sofie-rdf's Session::infer called in a "
              "C++ loop (native: a driver compiled with sofie-rdf's own compiler command and flags, linking the library "
              "`sofie_rdf.compile` built; jit: the same loop declared to Cling). *onnxruntime (C++)*: onnxruntime's C API "
              "called in the same C++ loop (`benchmarks/ort_driver.cpp`: one session with one intra-op and one "
              "inter-op thread, inputs and outputs preallocated and bound once, one `RunWithBinding` per call), so "
              "native / ORT (C++) compares C++ calls with C++ calls. The Python engines include the Python call "
              "overhead: native / ORT (Python) compares C++ calls with `InferenceSession.run` calls. Every output "
              "is checked against onnxruntime (rtol 1e-3) before timing; **wrong** marks a disagreement.", ""]
    return "\n".join(lines)


def plots(rows: list[dict], out: Path) -> list[Path]:
    """Latency per model and engine (log scale) and the ratio of each engine to onnxruntime.

    The ratio's baseline is onnxruntime called from C++ where every plotted row has it (the comparison of
    issue 8), onnxruntime from Python otherwise.
    """
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib)")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["model"] for r in rows]
    pos = np.arange(len(rows))
    width = 0.8 / len(ENGINES)
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.8), 5))
    for k, e in enumerate(ENGINES):
        ax.bar(pos + (k - len(ENGINES) / 2 + 0.5) * width,
               [_per_event(r["engines"][e], r["batch"]) * 1e6 for r in rows], width, label=LABELS[e])
    ax.set_yscale("log")
    ax.set_ylabel("latency per event (us, log scale)")
    ax.set_xticks(pos, names, rotation=45, ha="right")
    ax.legend(fontsize=8, ncol=5, loc="upper left")
    ax.set_title("Per-event latency, one thread")
    fig.tight_layout()
    latency_png = out / "latency.png"
    fig.savefig(latency_png, dpi=120)
    plt.close(fig)

    rows = [r for r in rows if not r["model"].startswith("Overhead")]  # a call floor, not a model with a goal
    names, pos = [r["model"] for r in rows], np.arange(len(rows))
    base = "ort_cpp" if all("median_s" in r["engines"]["ort_cpp"] for r in rows) else "ort"
    others = [e for e in ENGINES if e != base]
    width = 0.8 / len(others)
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.8), 5))
    for k, e in enumerate(others):
        ax.bar(pos + (k - len(others) / 2 + 0.5) * width, [_ratio(r, e, base) for r in rows], width, label=LABELS[e])
    for goal, style in ((0.5, ":"), (1.0, "--")):
        ax.axhline(goal, color="black", linestyle=style, linewidth=1, label=f"goal {goal}x")
    ax.set_yscale("log")
    ax.set_ylabel(f"latency / {LABELS[base]} latency (log scale)")
    ax.set_xticks(pos, names, rotation=45, ha="right")
    ax.legend(fontsize=8, ncol=3, loc="upper left")
    ax.set_title(f"Ratio to {LABELS[base]} (below 1 = faster); goals: 0.5x dense/recurrent, 1.0x conv")
    fig.tight_layout()
    ratio_png = out / "latency_ratio.png"
    fig.savefig(ratio_png, dpi=120)
    plt.close(fig)
    return [latency_png, ratio_png]


def write_tables(rows: list[dict], meta: dict, out: Path) -> str:
    """latency.md and latency.json in ``out``; returns the markdown."""
    text = markdown(rows, meta)
    (out / "latency.md").write_text(text)
    (out / "latency.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return text


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="comma-separated model names (default: all; see benchmarks/models.py)")
    parser.add_argument("--quick", action="store_true", help="a few small models, short measurements")
    parser.add_argument("--target", type=float, help="seconds per measurement (default 0.5; quick 0.1)")
    parser.add_argument("--repeats", type=int, help="measurements per engine (default 5; quick 3)")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    target = args.target or (0.1 if args.quick else 0.5)
    repeats = args.repeats or (3 if args.quick else 5)
    if args.worker:
        worker(args.worker, args.work, target, repeats)
        return ""

    from .rdf_throughput import bench_dir

    names = args.models.split(",") if args.models else list(QUICK_MODELS if args.quick else models.SPECS)
    unknown = sorted(set(names) - set(models.SPECS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(models.SPECS)}")
    root = bench_dir() / "latency"
    out = RESULTS / "quick" if args.quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    meta = {"machine": machine(), "target": target, "repeats": repeats, "quick": args.quick,
            "python_baseline_mb": python_baseline_mb()}
    rows: list[dict] = []
    for name in names:  # the tables are rewritten after each model: an interrupted run keeps what it measured
        rows.append(run_model(name, root, target, repeats))
        meta.update(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), versions=_versions(rows),
                    wall_s=time.perf_counter() - start)
        write_tables(rows, meta, out)
    remeasure_peak(meta["machine"])
    text = write_tables(rows, meta, out)
    plots(rows, out)
    print(text)
    return text


if __name__ == "__main__":
    main()
