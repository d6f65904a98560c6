"""Chunks of events through models whose batch is left open, as every export leaves it, against onnxruntime; and the
same model with its batch fixed.

Columnar analyses (uproot, awkward, coffea, ``sr.columnar``) call a model on chunks of events, and every exported
file leaves its batch symbolic (``dynamic_axes``).  Each row is a model of the HEP family (``benchmarks/hep.py``:
its layers and models) or a dense network of rootbench's (``benchmarks/models.py``), exported with the batch as
the symbol ``N`` and loaded as a user would; each cell times sofie-rdf and onnxruntime (one thread, from Python, in
this process, interleaved: ratios of medians) on a chunk of that many events, after checking the outputs against
onnxruntime's (rtol 1e-3).  Batches 1, 16 and 256 for every row, and 4096 for the dense and CNN rows whose
chunk's input stays within 64 MB (the dense networks, the small images).  The symbolic column compares the open
batch with the same file loaded with ``dims={"N": b}`` at batch 1 and 16.

Goals (issue 60): every dense and CNN row at most 0.8x onnxruntime at every batch, transformers at 1 and 16;
an open batch within 1.05x of a fixed one.

``python -m benchmarks.batches [--models A,B] [--quick] [--isa avx2]`` writes
``benchmarks/results/batches_<isa>_<vendor>.{md,json}``.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import hep, isa, latency, models

BATCHES = (1, 16, 256, 4096)
SYMBOLIC_BATCHES = (1, 16)
BIG_CHUNK_BYTES = 64 << 20
GOAL, SYMBOLIC_GOAL = 0.8, 1.05
DENSE = ("higgs_model_dense", "SimpleNN_Alice", "Linear_event")
TRANSFORMER_PREFIXES = ("Attention", "Encoder", "ParT", "FeedForward", "LayerNorm", "GELU", "Softmax")
QUICK = ("higgs_model_dense", "CaloCNN2d_32px", "Encoder_50tok_64f_2L", "DeepSets_64p")


def kind(name: str) -> str:
    """The row's family for the goals: transformer (blocks and their layers), dense or CNN (the rest)."""
    if name.startswith(TRANSFORMER_PREFIXES):
        return "transformer"
    return "dense" if name in DENSE or name.startswith("DeepSets") else "cnn"


def batches(name: str) -> tuple[int, ...]:
    """The chunk sizes of a row: 4096 for the dense and CNN rows (the ones with a goal there) whose input stays
    within BIG_CHUNK_BYTES; a transformer's scores at 4096 events would take gigabytes for no goal."""
    event = 4 * int(np.prod(models.spec(name).shape[1:]))
    big = kind(name) != "transformer" and 4096 * event <= BIG_CHUNK_BYTES
    return tuple(b for b in BATCHES if b < 4096 or big)


def exported(name: str) -> bytes:
    """The model's ONNX file with its batch the symbol N (the TorchScript exporter, as the released files)."""
    import torch

    spec = models.spec(name)
    example = torch.from_numpy(np.random.default_rng(0).standard_normal((2,) + spec.shape[1:], dtype=np.float32))
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(models.module(name), (example,), buffer, dynamo=False, opset_version=spec.opset,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return buffer.getvalue()


PRODUCTS = ("Gemm", "MatMul", "Conv", "ConvTranspose")


def event_flops(model: bytes) -> float:
    """Floating-point operations per event of the products (``latency.flops``), read from the file with N = 1;
    0 where onnx's shape inference leaves a product's shape open (a Reshape to a computed shape, kNN's TopK):
    a count of only some products would make the row's share of the peak read low for no reason."""
    import tempfile

    import onnx

    proto = onnx.load_from_string(model)
    for value in [*proto.graph.input, *proto.graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == "N":
                dim.dim_value = 1
    graph = onnx.shape_inference.infer_shapes(proto).graph
    known = {v.name for v in [*graph.input, *graph.value_info, *graph.output]
             if v.type.tensor_type.HasField("shape") and all(d.dim_value > 0 for d in v.type.tensor_type.shape.dim)}
    if any(o not in known for n in graph.node if n.op_type in PRODUCTS for o in n.output):
        return 0.0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        onnx.save(proto, str(path))
        return latency.flops(path)


def ort_session(model: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def bench(name: str, target: float, rounds: int) -> dict:
    """One row: every chunk size against onnxruntime, and the open batch against a fixed one at 1 and 16."""
    import sofie_rdf as sr

    model = exported(name)
    flags = isa.native_flags()
    open_batch = sr.compile(sr.load(model, name=name), backend="native", flags=flags)
    ort = ort_session(model)
    row: dict[str, Any] = {"model": name, "kind": kind(name), "event_flops": event_flops(model), "batches": {}}
    for b in batches(name):
        x = np.random.default_rng(b).standard_normal((b,) + models.spec(name).shape[1:], dtype=np.float32)
        ours, ref = open_batch.infer(x), ort.run(None, {"x": x})[0]
        if not np.allclose(ours, ref, rtol=1e-3, atol=1e-4):
            raise SystemExit(f"{name} at batch {b}: max abs deviation {np.abs(ours - ref).max():.3g} from onnxruntime")
        calls = {"sofie": lambda x=x: open_batch.infer(x), "ort": lambda x=x: ort.run(None, {"x": x})}
        if b in SYMBOLIC_BATCHES:
            fixed = sr.compile(sr.load(model, name=f"{name}_N{b}", dims={"N": b}), backend="native", flags=flags)
            calls["fixed"] = lambda x=x, s=fixed: s.infer(x)
        t = latency.interleaved_medians(calls, target, rounds)
        cell = {"sofie": t["sofie"], "ort": t["ort"], "ratio": t["sofie"] / t["ort"]}
        if "fixed" in t:
            cell.update(fixed=t["fixed"], symbolic=t["sofie"] / t["fixed"])
        row["batches"][str(b)] = cell
    return row


def _goal(row: dict, b: int) -> float:
    return GOAL if row["kind"] != "transformer" or b in SYMBOLIC_BATCHES else float("inf")


def markdown(rows: list[dict], meta: dict) -> str:
    m = meta["machine"]
    lines = ["# Chunks of events and an open batch, against onnxruntime", "",
             f"{meta['date']}. Machine: {m['cpu']}, {m['cores']} cores ({m['simd']}), {m['system']}"
             f"{'; ' + m['restriction'] if m.get('restriction') else ''}. {meta['versions']}. One thread; both engines "
             f"called from Python in one process, interleaved ({meta['rounds']} rounds). Each model exported with its "
             "batch the symbol N. Cells: sofie-rdf's time / onnxruntime's at that many events per call (goal "
             f"{GOAL}x: dense and CNN rows at every batch, transformers at 1 and 16); symbolic: the open batch's "
             f"time / the same file loaded with dims={{'N': b}} (goal {SYMBOLIC_GOAL}x).", "",
             "| model | kind | batch 1 | 16 | 256 | 4096 | symbolic / fixed at 1, 16 | largest batch: % of core peak, "
             "sofie / ORT |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    misses = cells = 0
    for r in rows:
        out = []
        for b in BATCHES:
            c = r["batches"].get(str(b))
            if c is None:
                out.append("")
                continue
            miss = c["ratio"] > _goal(r, b)
            misses, cells = misses + miss, cells + (_goal(r, b) < float("inf"))
            out.append(f"{c['ratio']:.2f}{' **misses**' if miss else ''}")
        sym = [r["batches"][str(b)]["symbolic"] for b in SYMBOLIC_BATCHES if str(b) in r["batches"]]
        sym_cell = ", ".join(f"{s:.2f}{'**' if s > SYMBOLIC_GOAL else ''}" for s in sym)
        lines.append(f"| {r['model']} | {r['kind']} | {' | '.join(out)} | {sym_cell} | {_peak_share(r, m)} |")
    over = sum(s > SYMBOLIC_GOAL for r in rows for b in SYMBOLIC_BATCHES
               if (s := r["batches"].get(str(b), {}).get("symbolic")) is not None)
    lines += ["", f"{cells - misses} of {cells} cells with a goal meet it; {over} symbolic cells over "
              f"{SYMBOLIC_GOAL}x (** marks them). Absolute times in the JSON. Peak: {latency.peak_note(m)}; the "
              "share counts the products' multiply-adds only (Gemm, MatMul, Conv), so a row whose time goes "
              "elsewhere (pooling, softmax, normalisation) reads low.", ""]
    return "\n".join(lines)


def _peak_share(row: dict, m: dict) -> str:
    """The products' rate at the row's largest batch as a share of one core's peak, for sofie-rdf and onnxruntime:
    where both are near it, the row's limit is the core's arithmetic, not either engine."""
    if not row.get("event_flops"):
        return "-"
    b = max(int(k) for k in row["batches"])
    cell, flops = row["batches"][str(b)], row["event_flops"] * b / 1e9
    return " / ".join(f"{100 * flops / cell[e] / latency.core_peak(m):.0f}%" for e in ("sofie", "ort"))


def _versions() -> str:
    import onnxruntime

    import sofie_rdf

    return f"sofie-rdf {sofie_rdf.__version__}, onnxruntime {onnxruntime.__version__}"


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batches", description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="comma-separated names (default: the HEP family and the dense models)")
    parser.add_argument("--quick", action="store_true", help="four rows, short; results in benchmarks/results/quick/")
    parser.add_argument("--isa", choices=isa.CHOICES, help="run an AVX-512 machine as an AVX2 one (benchmarks/isa.py)")
    parser.add_argument("--results", type=Path, default=None, help="folder of batches_<isa>_<vendor>.{md,json}")
    args = parser.parse_args(argv)
    if args.isa and not isa.restricted():  # onnxruntime reads its kernels when it loads: run in a child
        from .rdf_throughput import bench_dir

        env = {**os.environ, **isa.restrict(args.isa, bench_dir() / f"onnxruntime-as-{args.isa}")}
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--isa", args.isa)]
        subprocess.run([sys.executable, "-m", "benchmarks.batches", *rest], env=env, check=True)
        return ""
    known = list(hep.SPECS) + list(DENSE)
    names = args.models.split(",") if args.models else list(QUICK if args.quick else known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    folder = args.results or (latency.RESULTS / "quick" if args.quick else latency.RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    target, rounds = (0.05, 3) if args.quick else (0.2, 5)
    meta = {"machine": latency.machine(), "versions": _versions(), "rounds": rounds}
    stem, rows, text = latency.results_stem("batches"), [], ""
    for name in names:  # rewritten after each row: an interrupted run keeps what it measured
        rows.append(bench(name, target, rounds))
        print(f"{name}: " + ", ".join(f"B{b} {c['ratio']:.2f}" + (f" (sym {c['symbolic']:.2f})" if "symbolic" in c
                                                                   else "") for b, c in rows[-1]["batches"].items()),
              flush=True)
        if name == names[-1]:
            latency.remeasure_peak(meta["machine"])
        meta["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = latency.save_tables(folder, stem, meta, rows, markdown)
    return text


if __name__ == "__main__":
    print(main())
