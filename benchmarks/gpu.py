"""The CUDA target against torch on the same GPU (``make bench-gpu``): an MLP, a CNN and a transformer encoder at
batch 1, 64, 1024 and 16384, each timed as sofie-rdf on torch CUDA tensors (device pointers, no copy), torch
eager, and torch's forward replayed from a CUDA graph; with the device memory each holds.  Writes
``benchmarks/results/gpu.md`` (the table of the GPU page in docs/benchmarks/) and ``gpu.png``.

Timing: median wall time of ``--repeat`` calls after ``--warmup`` calls, each call synchronised (the GPU time
a caller waits for).  Memory: for torch, the allocator's peak above what the inputs and weights take
(``torch.cuda.max_memory_allocated``); for sofie-rdf, device memory in use (``cudaMemGetInfo``) after the runs
minus before the Session was made: weights, arena, staging buffers and the cuBLAS workspace.  TF32 is off on
both sides (fp32 products).

Not yet run on a GPU: written without one, for the session that gets one.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

RESULTS = Path(__file__).parent / "results"
BATCHES = (1, 64, 1024, 16384)


def models(torch: Any) -> dict[str, tuple[Any, tuple[int, ...]]]:
    """name -> (eval-mode torch module, per-event input shape)."""
    nn = torch.nn
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10),
                        nn.Softmax(dim=-1))
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(32, 5))
    layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, batch_first=True, dropout=0.0)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    return {"mlp": (mlp.eval(), (64,)), "cnn": (cnn.eval(), (1, 32, 32)), "transformer": (encoder.eval(), (16, 64))}


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


def _used(torch: Any) -> int:
    free, total = torch.cuda.mem_get_info()
    return total - free


def run(batches: tuple[int, ...], warmup: int, repeat: int, only: Optional[list[str]] = None) -> list[dict]:
    import torch

    import sofie_rdf as sr

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize
    rows = []
    for name, (module, shape) in models(torch).items():
        if only and name not in only:
            continue
        proto = export(torch, module, shape)
        module = module.cuda()
        before = _used(torch)
        sess = sr.compile(sr.load(proto, name=f"gpu_{name}"), backend="cuda")
        for batch in batches:
            x = torch.randn(batch, *shape, device="cuda")
            with torch.no_grad():
                want = module(x)
            got = sess.infer(x)
            np.testing.assert_allclose(got.cpu().numpy(), want.cpu().numpy(), rtol=1e-3, atol=1e-4)
            t_sofie = _time(lambda s=sess, x=x: s.infer(x), sync, warmup, repeat)
            sofie_bytes = _used(torch) - before
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            with torch.no_grad():
                t_eager = _time(lambda m=module, x=x: m(x), sync, warmup, repeat)
            torch_bytes = torch.cuda.max_memory_allocated() - base
            t_graph = _time(_graphed(torch, module, x), sync, warmup, repeat)
            rows.append({"model": name, "batch": batch, "sofie_ms": t_sofie * 1e3, "eager_ms": t_eager * 1e3,
                         "graph_ms": t_graph * 1e3, "sofie_mib": sofie_bytes / 2**20, "torch_mib": torch_bytes / 2**20})
            print(rows[-1], flush=True)
    return rows


def write(rows: list[dict], folder: Path, device: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"GPU: {device}. Median ms per call (synchronised), device memory in MiB.", "",
             "| model | batch | sofie-rdf ms | torch eager ms | torch graph ms | sofie-rdf / graph | sofie-rdf MiB "
             "| torch peak MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['batch']} | {r['sofie_ms']:.3f} | {r['eager_ms']:.3f} | {r['graph_ms']:.3f} | "
                     f"{r['sofie_ms'] / r['graph_ms']:.2f}x | {r['sofie_mib']:.1f} | {r['torch_mib']:.1f} |")
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
        part = [r for r in rows if r["model"] == model]
        for key, label in (("sofie_ms", "sofie-rdf"), ("eager_ms", "torch eager"), ("graph_ms", "torch CUDA graph")):
            ax.plot([r["batch"] for r in part], [r[key] for r in part], marker="o", label=label)
        ax.set(xscale="log", yscale="log", xlabel="batch", ylabel="ms per call", title=model)
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "gpu.png", dpi=120)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--models", nargs="+", help="mlp, cnn, transformer (default: all)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench-gpu needs a CUDA GPU")
    rows = run(tuple(args.batches), args.warmup, args.repeat, args.models)
    write(rows, args.results, torch.cuda.get_device_name())


if __name__ == "__main__":
    main()
