"""The CUDA target against torch on the same GPU (``make bench-gpu``): an MLP, a CNN, a small transformer encoder
and the shapes of issue 61 (a particle transformer on 128 particles x 17 features, d128, 8 heads, 4 layers; a 3-D
calorimeter CNN on 1 x 16 x 16 x 16; a ResNet of 16 channels on 4 x 24 x 24) at batch 1, 64, 1024 and 16384,
each timed as sofie-rdf on torch CUDA tensors (device pointers, no copy, outputs into ``out=`` tensors), torch
eager, and torch's forward replayed from a CUDA graph; with the device memory each holds.  Writes
``benchmarks/results/gpu.md`` (the table of the GPU page in docs/benchmarks/) and ``gpu.png``; ``--profile``
adds each model's per-kernel CUDA time (torch.profiler's CUDA activity, which records the generated library's
kernels and cuBLAS calls too) for sofie-rdf and torch eager at ``--profile-batch``, into ``gpu_profile.md``;
the call overhead of the Python device path against the C call is in ``gpu_calls.md``.

Timing: median wall time of ``--repeat`` calls after ``--warmup`` calls, each call synchronised (the GPU time
a caller waits for).  Memory: for torch, the allocator's peak above what the inputs and weights take
(``torch.cuda.max_memory_allocated``); for sofie-rdf, what the Session holds after the runs
(``Session.device_bytes()``: weights, arena, staging buffers and the cuBLAS workspace), never torch's cached
blocks.  TF32 is off on both sides (fp32 products).

Run on an NVIDIA H200 on 2026-11-28 (docs/benchmarks/gpu_h200.md).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

RESULTS = Path(__file__).parent / "results"
BATCHES = (1, 64, 1024, 16384)


def models(torch: Any) -> dict[str, tuple[Any, tuple[int, ...]]]:
    """name -> (eval-mode torch module, per-event input shape)."""
    from benchmarks.hep import calo_cnn_3d, encoder, resnet_small

    nn = torch.nn
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10),
                        nn.Softmax(dim=-1))
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(32, 5))
    layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, batch_first=True, dropout=0.0)
    small = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    return {"mlp": (mlp.eval(), (64,)), "cnn": (cnn.eval(), (1, 32, 32)), "transformer": (small.eval(), (16, 64)),
            "particle_transformer": (encoder(128, 8, 4, 512, inputs=17).eval(), (128, 17)),
            "cnn3d": (calo_cnn_3d().eval(), (1, 16, 16, 16)), "resnet": (resnet_small().eval(), (4, 24, 24))}


def export(torch: Any, module: Any, shape: tuple[int, ...]) -> bytes:
    """The legacy exporter (no onnxscript needed), with torch's fused attention fast path off so that the
    encoder exports as its operators."""
    torch.backends.mha.set_fastpath_enabled(False)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, (torch.zeros(2, *shape),), buf, dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return buf.getvalue()


def _time(call: Callable[[], Any], sync: Callable[[], None], warmup: int, repeat: int) -> float:
    for _ in range(warmup):
        call()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _graphed(torch: Any, module: Any, x: Any) -> Callable[[], Any]:
    """torch's forward captured once in a CUDA graph, replayed per call (static input and output)."""
    static = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):
            module(static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        module(static)
    return graph.replay


def run(batches: tuple[int, ...], warmup: int, repeat: int, only: Optional[list[str]] = None,
        written: Callable[[list[dict]], None] = lambda rows: None) -> list[dict]:
    """Time every model at every batch; a model whose build or run fails is reported as a row with its error and
    the others still run (a GPU session is too short to lose the rest to one failure). ``written`` gets the rows
    after each model, so that a run cut short keeps what it measured."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    _clock_up(torch)
    rows: list[dict] = []
    for name, (module, shape) in models(torch).items():
        if only and name not in only:
            continue
        try:
            rows += _model_rows(torch, name, module, shape, batches, warmup, repeat)
        except Exception as error:  # noqa: BLE001 - reported in the table, the next model still runs
            rows.append({"model": name, "error": f"{type(error).__name__}: {error}"[:300]})
            print(rows[-1], flush=True)
        written(rows)
    return rows


def _clock_up(torch: Any, seconds: float = 1.0) -> None:
    """Keep the GPU busy for ``seconds`` before the first timing: an idle GPU runs at a fraction of its clock
    (345 MHz against 1980 on the H200 seen here), and the first model's batch-1 row would time the ramp."""
    a = torch.randn(4096, 4096, device="cuda")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a @ a
        torch.cuda.synchronize()


def _model_rows(torch: Any, name: str, module: Any, shape: tuple[int, ...], batches: tuple[int, ...], warmup: int,
                repeat: int) -> list[dict]:
    import sofie_rdf as sr

    sync = torch.cuda.synchronize
    proto = export(torch, module, shape)
    module = module.cuda()
    sess = sr.compile(sr.load(proto, name=f"gpu_{name}"), backend="cuda")
    rows = []
    for batch in batches:
        x = torch.randn(batch, *shape, device="cuda")
        with torch.no_grad():
            want = module(x)
        got = sess.infer(x)
        deviation = float((got - want).abs().max())
        t_sofie = _time(lambda s=sess, x=x, y=got: s.infer(x, out=y), sync, warmup, repeat)
        sofie_bytes = sess.device_bytes()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad():
            t_eager = _time(lambda m=module, x=x: m(x), sync, warmup, repeat)
        torch_bytes = torch.cuda.max_memory_allocated() - base
        t_graph = _time(_graphed(torch, module, x), sync, warmup, repeat)
        rows.append({"model": name, "batch": batch, "sofie_ms": t_sofie * 1e3, "eager_ms": t_eager * 1e3,
                     "graph_ms": t_graph * 1e3, "sofie_mib": sofie_bytes / 2**20, "torch_mib": torch_bytes / 2**20,
                     "deviation": deviation})
        print(rows[-1], flush=True)
    return rows


def _kernel_table(call: Callable[[], Any], calls: int) -> str:
    """torch.profiler's table of the CUDA time of ``calls`` calls of ``call``, by kernel, largest first."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    with torch.no_grad():
        for _ in range(3):
            call()
        torch.cuda.synchronize()
        with profiler(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(calls):
                call()
            torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=70)


def profile(chosen: list[str], batch: int, calls: int = 20) -> list[str]:
    """Markdown: per model, the kernels (and library calls) taking the most CUDA time over ``calls`` calls of
    sofie-rdf and of torch eager at ``batch`` (torch.profiler's CUDA activity); a model that fails is named with
    its error."""
    import torch

    import sofie_rdf as sr

    lines = [f"Per-kernel CUDA time over {calls} calls at batch {batch} (torch.profiler, CUDA activity).", ""]
    for name, (module, shape) in models(torch).items():
        if name not in chosen:
            continue
        try:
            sess = sr.compile(sr.load(export(torch, module, shape), name=f"gpu_{name}"), backend="cuda")
            module = module.cuda()
            x = torch.randn(batch, *shape, device="cuda")
            y = sess.infer(x)
            calls_of = {"sofie-rdf": lambda s=sess, x=x, y=y: s.infer(x, out=y),
                        "torch eager": lambda m=module, x=x: m(x)}
            for label, call in calls_of.items():
                lines += [f"## {name}: {label}", "", "```", _kernel_table(call, calls), "```", ""]
        except Exception as error:  # noqa: BLE001 - named in the profile, the next model still runs
            lines += [f"## {name}: failed", "", f"{type(error).__name__}: {error}", ""]
    return lines


def call_overhead(repeat: int = 2000) -> list[str]:
    """Markdown: the time of one synchronised batch-1 MLP call through the C function (ctypes, buffers ready),
    through ``Session.infer(x, out=y)`` and through ``Session.infer(x)`` (a new output each call)."""
    import ctypes

    import torch

    import sofie_rdf as sr

    module, shape = models(torch)["mlp"]
    sess = sr.compile(sr.load(export(torch, module, shape), name="gpu_mlp"), backend="cuda")
    x = torch.randn(1, *shape, device="cuda")
    y = sess.infer(x)
    binding = sess._binding
    stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    values = (ctypes.c_size_t * 1)(1)
    buffers = (ctypes.c_void_p * 2)(x.data_ptr(), y.data_ptr())
    c_call = binding.lib.cdll.sofie_infer_device
    calls = {"C call (ctypes)": lambda: c_call(binding.handle, values, buffers, stream),
             "Session.infer(x, out=y)": lambda: sess.infer(x, out=y), "Session.infer(x)": lambda: sess.infer(x)}
    sync = torch.cuda.synchronize
    times = {label: _time(call, sync, 50, repeat) * 1e6 for label, call in calls.items()}
    base = times["C call (ctypes)"]
    return ["Batch-1 MLP call, synchronised, median of calls (us).", "", "| call | us | above the C call |",
            "|---|---:|---:|"] + [f"| {label} | {t:.1f} | {t - base:+.1f} |" for label, t in times.items()]


def warm(jobs: int) -> int:
    """Build, ``jobs`` nvcc runs at a time, every CUDA library that ``make test-gpu`` (tests/cuda_models.py) and
    this benchmark compile, into the compile cache where ``sr.compile(backend="cuda")`` finds them; returns how
    many were built or found."""
    import inspect
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import torch

    import sofie_rdf as sr
    from sofie_rdf.targets.cuda import cuda_target
    from sofie_rdf.targets.cuda.toolchain import build_library, device_archs

    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    import cuda_models

    archs = tuple(dict.fromkeys(device_archs()))
    target = cuda_target(archs=archs or None)
    protos = [f() for name, f in inspect.getmembers(cuda_models, inspect.isfunction)
              if f.__module__ == cuda_models.__name__ and not name.startswith("_")]
    protos.append(cuda_models.mlp(hostile=True))
    codes = []
    for proto in protos:
        try:
            codes.append(sr.load(proto).code(target=target))
        except sr.UnsupportedOperatorError:
            continue
    for name, (module, shape) in models(torch).items():
        codes.append(sr.load(export(torch, module, shape), name=f"gpu_{name}").code(target=target))
    with ThreadPoolExecutor(jobs) as pool:  # each build is an nvcc process: threads suffice
        return len(list(pool.map(lambda code: build_library(code, target.archs), codes)))


def write(rows: list[dict], folder: Path, device: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"GPU: {device}. Median ms per call (synchronised), device memory in MiB (sofie-rdf: the Session's own "
             "bytes; torch: the allocator's peak above inputs and weights).", "",
             "| model | batch | sofie-rdf ms | torch eager ms | torch graph ms | sofie-rdf / graph | sofie-rdf MiB "
             "| torch peak MiB | deviation |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | | failed: {r['error']} | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['batch']} | {r['sofie_ms']:.3f} | {r['eager_ms']:.3f} | {r['graph_ms']:.3f} | "
                     f"{r['sofie_ms'] / r['graph_ms']:.2f}x | {r['sofie_mib']:.1f} | {r['torch_mib']:.1f} | "
                     f"{r['deviation']:.1e} |")
    lines.append("")
    lines.append("Deviation: the largest absolute difference from torch's output (fp32, TF32 off).")
    (folder / "gpu.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        part = [r for r in rows if r["model"] == model and "error" not in r]
        for key, label in (("sofie_ms", "sofie-rdf"), ("eager_ms", "torch eager"), ("graph_ms", "torch CUDA graph")):
            ax.plot([r["batch"] for r in part], [r[key] for r in part], marker="o", label=label)
        ax.set(xscale="log", yscale="log", xlabel="batch", ylabel="ms per call", title=model)
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "gpu.png", dpi=120)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--models", nargs="+", help="mlp, cnn, transformer, particle_transformer, cnn3d, resnet "
                        "(default: all)")
    parser.add_argument("--profile", action="store_true", help="per-kernel CUDA time of each model (gpu_profile.md)")
    parser.add_argument("--profile-batch", type=int, default=256)
    parser.add_argument("--warm", type=int, metavar="JOBS", help="only build every CUDA library of make test-gpu and "
                        "of this benchmark into the compile cache, JOBS nvcc runs at a time")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.warm:
        print(f"{warm(args.warm)} CUDA libraries in the compile cache", flush=True)
        return
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench-gpu needs a CUDA GPU")
    device = torch.cuda.get_device_name()
    run(tuple(args.batches), args.warmup, args.repeat, args.models,
        written=lambda rows: write(rows, args.results, device))
    (args.results / "gpu_calls.md").write_text(f"GPU: {device}.\n\n" + "\n".join(call_overhead()) + "\n")
    if args.profile:
        chosen = args.models or list(models(torch))
        (args.results / "gpu_profile.md").write_text(f"GPU: {device}.\n\n" +
                                                     "\n".join(profile(chosen, args.profile_batch)) + "\n")


if __name__ == "__main__":
    main()
