"""Quantized models: int8 against float32, ours against onnxruntime's; weights stored smaller by choice.

``python -m benchmarks.quantized`` builds an MLP (64 -> 512 -> 512 -> 512 -> 10, ReLU) and a CNN (1 x 32 x 32;
3 x 3 convolutions of 16, 32 and 64 channels with ReLU, a 2 x 2 max pool, a global average pool, a linear
layer), quantizes both with onnxruntime's ``quantize_static`` (QDQ, weights int8 per channel; activations int8
and uint8, calibrated on random batches) and ``quantize_dynamic``, checks ours and onnxruntime's results against
onnx's reference evaluator (the exact definition: onnxruntime's own int8 products saturate without VNNI), and
times, interleaved in one process (``benchmarks/ab.py``: a slow moment of a shared machine falls on every
engine), our native library of the float32 and of the int8 models, and onnxruntime (one thread) on both, at
several batch sizes.  Then rootbench's Generator at batch 1 (16 MB of
float32 weights per call) with ``weights="bf16"``, ``"fp16"`` and ``"int8"`` against float32, with the largest
deviation each stores on the same inputs.

Times are per call from Python, medians of the rounds: ours go through the ``_fastcall`` path (about half a
microsecond), onnxruntime's ``InferenceSession.run`` adds some 10 to 20 us a call, which weighs at batch 1
(the ratio columns say "ORT (Python)").  The tables go to ``benchmarks/results/quantized_<isa>_<vendor>.md``
with the CPU, its instruction sets and onnxruntime's version.

``--isa avx2`` measures an AVX-512 machine as an AVX2 one without VNNI (:mod:`benchmarks.isa`), in a child
process: ours built with ``-mno-avx512f`` (``SOFIE_RDF_MAX_ISA=avx2`` alone would not do: a ``-march=native``
build compiles only its planned level, which the cap then falls back to; it is set as well), onnxruntime from the
copy whose MLAS skips its AVX-512 kernels, VNNI among them (it would still take AVX-VNNI where the CPU has it), into
``quantized_avx512_<vendor>_as_avx2``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import ab, isa, latency, models

# model -> batch sizes timed
BATCHES = {"mlp": (1, 64, 1024), "cnn": (1, 64)}
SHAPES = {"mlp": (64,), "cnn": (1, 32, 32)}
# The int8 models of each float one: quantize_static (QDQ) with int8 or uint8 activations, quantize_dynamic.
VARIANTS = ("QInt8", "QUInt8", "dynamic")
WEIGHTS = ("bf16", "fp16", "int8")
CALIBRATION_BATCHES = 8


def networks() -> dict[str, Any]:
    """The float torch modules, seeded as benchmarks/models.py seeds its own."""
    import torch
    from torch import nn

    torch.manual_seed(models.SEED)
    mlp = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512),
                        nn.ReLU(), nn.Linear(512, 10))
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        for net in (mlp, cnn):
            for m in net.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.uniform_(m.bias, -0.1, 0.1)
    return {"mlp": mlp.eval(), "cnn": cnn.eval()}


def export(module: Any, shape: tuple[int, ...], path: Path) -> None:
    import torch

    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, (torch.zeros(2, *shape),), buffer, dynamo=False, opset_version=models.OPSET,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    path.write_bytes(buffer.getvalue())


def quantize(float_path: Path, shape: tuple[int, ...], variant: str, path: Path) -> None:
    """quantize_static in the QDQ format (weights int8 per channel, activations of type ``variant``), or
    quantize_dynamic (weights int8, activations uint8 quantized while running: MatMulInteger, ConvInteger)."""
    from onnxruntime import quantization as q

    if variant == "dynamic":
        q.quantize_dynamic(str(float_path), str(path), weight_type=q.QuantType.QInt8)
        return

    class Calibration(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"x": np.random.default_rng(i).standard_normal((16, *shape), dtype=np.float32)}
                                 for i in range(CALIBRATION_BATCHES)])

        def get_next(self) -> Optional[dict]:
            return next(self.batches, None)

    q.quantize_static(str(float_path), str(path), Calibration(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                      activation_type=getattr(q.QuantType, variant), weight_type=q.QuantType.QInt8)


def ort_session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def median_us(times: list[float]) -> float:
    return float(np.median(times)) * 1e6


def output_step(model: Any) -> float:
    """The scale of the DequantizeLinear writing the output (one step of the int8 result), 0 where a float
    operator writes it."""
    import onnx

    producer = next(n for n in model.graph.node if model.graph.output[0].name in n.output)
    if producer.op_type != "DequantizeLinear":
        return 0.0
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    return float(weights[producer.input[1]].reshape(-1)[0])


def check(name: str, batch: int, path: Path, ours: Any, theirs: Any, x: np.ndarray) -> dict[str, float]:
    """Ours and onnxruntime's largest deviations from onnx's reference evaluator, which computes the quantized
    model exactly as the standard defines it; ours must stay within two steps of the int8 output (a rounding tie
    decided the other way in a hidden layer moves it by one).  Not onnxruntime as the reference: without VNNI its
    uint8 x int8 products saturate at 16 bits (vpmaddubsw) and its results move by several steps."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    from onnx.version_converter import convert_version

    model = onnx.load(path)
    exact = ReferenceEvaluator(convert_version(model, 21)).run(None, {"x": x})[0]
    deviation = {"ours": float(np.abs(ours.infer(x) - exact).max()),
                 "ort": float(np.abs(theirs.run(None, {"x": x})[0] - exact).max())}
    if deviation["ours"] > max(2 * output_step(model), 1e-4 * float(np.abs(exact).max())):
        raise SystemExit(f"{name} {path.stem} batch {batch}: ours deviates from onnx's reference evaluator by "
                         f"{deviation['ours']}")
    return deviation


def time_model(name: str, work: Path, rounds: int, seconds: float) -> list[dict]:
    """One row per batch size: every engine's median time per call, interleaved."""
    import sofie_rdf as sr

    float_path = work / f"{name}.onnx"
    export(networks()[name], SHAPES[name], float_path)
    paths = {"float32": float_path}
    for variant in VARIANTS:
        paths[variant] = work / f"{name}_{variant}.onnx"
        quantize(float_path, SHAPES[name], variant, paths[variant])
    ours = {k: sr.compile(str(p), backend="native", flags=isa.native_flags()) for k, p in paths.items()}
    theirs = {k: ort_session(p) for k, p in paths.items()}
    rows = []
    for batch in BATCHES[name]:
        x = np.random.default_rng(batch).standard_normal((batch, *SHAPES[name]), dtype=np.float32)
        deviation = {k: check(name, batch, paths[k], ours[k], theirs[k], x) for k in VARIANTS}
        calls: dict[str, Callable[[], Any]] = {}
        for k in paths:
            calls[f"ours {k}"] = lambda s=ours[k], x=x: s.infer(x)
            calls[f"ort {k}"] = lambda s=theirs[k], x=x: s.run(None, {"x": x})
        times = ab.interleaved(calls, rounds, seconds)
        rows.append({"model": name, "batch": batch, "us": {k: median_us(v) for k, v in times.items()},
                     "deviation": deviation})
        print(f"{name} batch {batch}: " + ", ".join(f"{k} {median_us(v):.1f} us" for k, v in times.items()),
              flush=True)
    return rows


def time_weights(work: Path, rounds: int, seconds: float) -> dict:
    """The Generator at batch 1 with its weights stored as each of WEIGHTS, against float32."""
    import sofie_rdf as sr

    path = models.onnx_path("Generator_B1", work)
    x = models.inputs("Generator_B1")
    sessions = {"float32": sr.compile(str(path), backend="native", flags=isa.native_flags())}
    reports = {}
    for dtype in WEIGHTS:
        sessions[dtype] = sr.compile(str(path), backend="native", flags=isa.native_flags(), weights=dtype, sample=[x])
        reports[dtype] = sessions[dtype].precision_report
    times = ab.interleaved({k: (lambda s=s: s.infer(x)) for k, s in sessions.items()}, rounds, seconds)
    print("Generator_B1: " + ", ".join(f"{k} {median_us(v):.1f} us" for k, v in times.items()), flush=True)
    return {"us": {k: median_us(v) for k, v in times.items()},
            "deviation": {k: {"max_abs": r.max_abs, "max_rel": r.max_rel} for k, r in reports.items()},
            "weight_bytes": {k: weight_bytes(s) for k, s in sessions.items()}}


def weight_bytes(sess: Any) -> int:
    """Bytes of the session's weight file (what each call streams through the products)."""
    return Path(sess.weights_path).stat().st_size if sess.weights_path else 0


def machine() -> dict[str, Any]:
    """The CPU, the widest instruction set the kernels know, and the integer-product extensions it has; under
    ``--isa``, the instruction set the engines were restricted to."""
    import onnxruntime as ort

    from sofie_rdf.targets.cpu import host_isa

    info = latency._cpuinfo()
    flags = set(info.get("flags", "").split())
    extensions = [label for flag, label in (("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
                                            ("amx_int8", "AMX-INT8"), ("amx_bf16", "AMX-BF16"),
                                            ("avx512_bf16", "AVX-512 BF16"), ("f16c", "F16C")) if flag in flags]
    return {"cpu": info.get("model name", "unknown"), "vendor": latency.cpu_vendor(), "isa": host_isa(),
            "extensions": extensions, "onnxruntime": ort.__version__, "restricted": isa.restricted() or "",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}


def markdown(rows: list[dict], weights: dict, m: dict, rounds: int) -> str:
    names = {"avx512": "AVX-512", "avx2": "AVX2"}
    widest = names.get(m["isa"], m["isa"])
    cpu = (f"CPU: {m['cpu']} ({m['vendor']}); kernels built for {widest} (-march=native), with "
           f"{', '.join(m['extensions']) or 'no integer-product extension'}; onnxruntime {m['onnxruntime']}, one thread.")
    if m.get("restricted"):
        cpu = (f"CPU: {m['cpu']} ({m['vendor']}), which has {widest} with "
               f"{', '.join(m['extensions']) or 'no integer-product extension'}, {isa.NOTE}; SOFIE_RDF_MAX_ISA="
               f"{m['restricted']} set as well. Neither engine uses VNNI: ours multiply int8 as 16-bit pairs "
               "(pmaddwd), onnxruntime with its AVX2 vpmaddubsw kernels, as on a CPU without AVX-512 (this one has "
               f"no AVX-VNNI either). onnxruntime {m['onnxruntime']}, one thread.")
    lines = [f"# Quantized models ({m['date']})", "", cpu, "",
             f"Median time per call from Python of {rounds} interleaved rounds (benchmarks/quantized.py). "
             "int8: onnxruntime's quantize_static, QDQ, weights int8 per channel, activations int8 (QInt8) or uint8 "
             "(QUInt8), and quantize_dynamic (weights int8, activations uint8 quantized while running); ours run "
             "them as integer operators. ORT (Python) adds some 10-20 us a call. The deviations are the largest "
             "from onnx's reference evaluator, which computes the quantized model as the standard defines it: "
             "without VNNI onnxruntime's uint8 x int8 products saturate at 16 bits.", "",
             "| model | batch | int8 | ours f32 | ours int8 | ORT f32 | ORT int8 | ours int8 / f32 | ours / ORT int8 | "
             "deviation ours | deviation ORT |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        us = r["us"]
        for k in VARIANTS:
            dev = r["deviation"][k]
            lines.append(f"| {r['model']} | {r['batch']} | {k} | {us['ours float32']:.1f} us | {us[f'ours {k}']:.1f} us | "
                         f"{us['ort float32']:.1f} us | {us[f'ort {k}']:.1f} us | "
                         f"{us[f'ours {k}'] / us['ours float32']:.2f}x | {us[f'ours {k}'] / us[f'ort {k}']:.2f}x | "
                         f"{dev['ours']:.3g} | {dev['ort']:.3g} |")
    lines += ["", "Weights stored smaller by choice (sr.compile(model, weights=...)): rootbench's Generator at "
              "batch 1 (14 -> ... -> 100 -> 40500), the deviation from the float32 model on the benchmark's input.",
              "", "| weights | weight file | time | / float32 | largest deviation (abs) | (relative) |",
              "|---|---:|---:|---:|---:|---:|"]
    base = weights["us"]["float32"]
    for k, t in weights["us"].items():
        dev = weights["deviation"].get(k)
        cells = (f"{dev['max_abs']:.3g} | {dev['max_rel']:.3g}" if dev else "0 | 0")
        lines.append(f"| {k} | {weights['weight_bytes'][k] / 1e6:.1f} MB | {t:.1f} us | {t / base:.2f}x | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quantized", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per engine (default 15)")
    parser.add_argument("--seconds", type=float, default=0.05, help="length of one measurement (default 0.05 s)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sofie-rdf-quantized"), help="models and caches")
    parser.add_argument("--quick", action="store_true", help="3 short rounds; results in benchmarks/results/quick/")
    parser.add_argument("--isa", choices=isa.CHOICES, help="run an AVX-512 machine as an AVX2 one without VNNI, ours "
                        "and onnxruntime (benchmarks/isa.py), into quantized_avx512_<vendor>_as_avx2")
    args = parser.parse_args(argv)
    if args.isa and not isa.restricted():  # onnxruntime reads its kernels when it loads: run in a child
        env = {**os.environ, **isa.restrict(args.isa, args.work / f"onnxruntime-as-{args.isa}"),
               "SOFIE_RDF_MAX_ISA": args.isa}
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--isa", args.isa)]
        subprocess.run([sys.executable, "-m", "benchmarks.quantized", *rest], env=env, check=True)
        return ""
    rounds, seconds = (3, 0.01) if args.quick else (args.rounds, args.seconds)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [row for name in BATCHES for row in time_model(name, args.work, rounds, seconds)]
    weights = time_weights(args.work, rounds, seconds)
    m = machine()
    out = latency.RESULTS / "quick" if args.quick else latency.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    stem = out / latency.results_stem("quantized")
    text = markdown(rows, weights, m, rounds)
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps({"machine": m, "rows": rows, "weights": weights}, indent=1))
    print(text)
    return text


if __name__ == "__main__":
    main()
