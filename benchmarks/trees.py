"""BDT inference: sofie-rdf's tree ensembles against onnxruntime and treelite (issue 27).

The goals: at batch 1 at most half of onnxruntime's time, at batch 1024 at most treelite's, with outputs
within 1e-6 relative of onnxruntime's and the same predicted class on every row.

Models (seeded, trained here): XGBoost binary classifiers over a range of tree counts and depths, a
LightGBM classifier and a scikit-learn RandomForestRegressor, on ``make_classification`` data with
:data:`N_FEATURES` features; XGBoost and LightGBM are trained and evaluated with some NaN (their learnt
default directions).  Each goes to ONNX (onnxmltools at ``target_opset=15``, skl2onnx) and runs in three
engines in one process, all on one thread:

* ``sofie``: ``sofie_rdf.compile(..., backend="native")``, called through ``Session.infer`` (Python
  call overhead included, output arrays allocated per call);
* ``onnxruntime``: ``InferenceSession.run`` with one intra-op and one inter-op thread;
* ``treelite``: tl2cgen's C code of the same trained model (``-O3 -march=native``, as ours), called through
  ``tl2cgen.Predictor.predict`` on a ``DMatrix`` built once outside the timing.

Timing: :func:`benchmarks.latency.time_calls` (calls back to back on one input, the count calibrated to
a target time), the engines interleaved round by round so that a slower stretch of the shared machine
hits all of them; the median of the rounds.  ``max_rel_err`` is the largest ``|y - ref| / (|ref| + 1e-6)``
over every float output against onnxruntime (1e-6: probabilities round to 0 in float), ``labels`` whether
every predicted class matches.

Run ``python -m benchmarks.trees [--quick]``; writes ``benchmarks/results/trees.{md,json}`` (``--quick``:
fewer and smaller models, shorter measurements, into ``benchmarks/results/quick/``).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .latency import RESULTS, machine, time_calls

N_FEATURES = 24
TRAIN_ROWS = 8000
BATCHES = (1, 1024)
NAN_FRACTION = 0.05
ERR_FLOOR = 1e-6
SEED = 0


@dataclass(frozen=True)
class Spec:
    """One benchmarked model: its library, kind, number of trees and depth."""

    library: str   # "xgboost", "lightgbm" or "sklearn"
    trees: int
    depth: int

    @property
    def name(self) -> str:
        kind = "RandomForestRegressor" if self.library == "sklearn" else "classifier (binary)"
        return f"{self.library} {kind}, {self.trees} trees, depth {self.depth}"


FULL = (Spec("xgboost", 100, 3), Spec("xgboost", 300, 8), Spec("xgboost", 500, 6), Spec("xgboost", 1000, 4),
        Spec("xgboost", 2000, 6), Spec("lightgbm", 500, 6), Spec("sklearn", 300, 8))
QUICK = (Spec("xgboost", 100, 3), Spec("xgboost", 500, 6), Spec("lightgbm", 100, 5), Spec("sklearn", 50, 6))


def _data(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """Seeded features (float32, NaN sprinkled in for the libraries that learn where missing values go)
    and the binary target (the regressor learns it as a number)."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=TRAIN_ROWS + max(BATCHES), n_features=N_FEATURES, n_informative=12,
                               n_redundant=4, random_state=SEED)
    x = x.astype(np.float32)
    if spec.library != "sklearn":
        x[np.random.default_rng(SEED).random(x.shape) < NAN_FRACTION] = np.nan
    return x, y


def without_zipmap(model: Any) -> Any:
    """ZipMap's input as the output: the probabilities as a tensor (what converters' zipmap=False gives)."""
    import onnx
    from onnx import helper

    for node in list(model.graph.node):
        if node.op_type == "ZipMap":
            for out in model.graph.output:
                if out.name == node.output[0]:
                    out.CopyFrom(helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None))
            model.graph.node.remove(node)
    return model


def _train(spec: Spec, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any, Any]:
    """The fitted model, its ONNX model and its treelite model."""
    import treelite
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("x", FloatTensorType([None, N_FEATURES]))]
    if spec.library == "xgboost":
        import onnxmltools
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=spec.trees, max_depth=spec.depth, learning_rate=0.1,
                                      tree_method="hist", n_jobs=1, random_state=SEED).fit(x, y)
        onx = onnxmltools.convert_xgboost(model, initial_types=types, target_opset=15)
        return model, without_zipmap(onx), treelite.frontend.from_xgboost(model.get_booster())
    if spec.library == "lightgbm":
        import lightgbm
        import onnxmltools

        model = lightgbm.LGBMClassifier(n_estimators=spec.trees, max_depth=spec.depth, num_leaves=2 ** spec.depth,
                                        learning_rate=0.1, n_jobs=1, random_state=SEED, verbose=-1).fit(x, y)
        onx = onnxmltools.convert_lightgbm(model, initial_types=types, target_opset=15, zipmap=False)
        return model, without_zipmap(onx), treelite.frontend.from_lightgbm(model.booster_)
    import skl2onnx
    from sklearn.ensemble import RandomForestRegressor

    model = RandomForestRegressor(n_estimators=spec.trees, max_depth=spec.depth, n_jobs=1,
                                  random_state=SEED).fit(x, y.astype(np.float32))
    onx = skl2onnx.to_onnx(model, x[:1], target_opset={"": 15, "ai.onnx.ml": 3})
    return model, onx, treelite.sklearn.import_model(model)


def _max_rel_err(got: list[np.ndarray], ref: list[np.ndarray]) -> tuple[float, bool]:
    """Largest relative error over the float outputs, and whether the integer outputs (labels) agree."""
    err, same = 0.0, True
    for a, b in zip(got, ref):
        a, b = np.asarray(a), np.asarray(b)
        if b.dtype.kind == "f":
            d = np.abs(a.astype(np.float64) - b) / (np.abs(b.astype(np.float64)) + ERR_FLOOR)
            err = max(err, float(d.max()))
        else:
            same = same and a.shape == b.shape and bool(np.all(a == b))
    return err, same


def _engines(spec: Spec, onx: Any, tl_model: Any, folder: Path) -> tuple[dict[str, Callable[[np.ndarray], Any]], float]:
    """The three engines as ``x -> outputs``, and sofie's compile time (load, generate, compile)."""
    import onnxruntime as ort
    import tl2cgen

    import sofie_rdf as sr

    start = time.perf_counter()
    sess = sr.compile(sr.load(onx.SerializeToString(), name=f"bdt_{spec.library}_{spec.trees}_{spec.depth}"),
                      backend="native")
    compile_s = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # not a warning per call that the converters' label shape says {1}
    ort_sess = ort.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])
    lib = folder / f"{spec.library}_{spec.trees}_{spec.depth}.so"
    tl2cgen.export_lib(tl_model, toolchain="gcc", libpath=str(lib), params={"parallel_comp": 8},
                       options=["-march=native"])
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    x_name = ort_sess.get_inputs()[0].name

    def sofie(x: np.ndarray) -> Any:
        return sess.infer(x)

    def onnxruntime(x: np.ndarray) -> Any:
        return ort_sess.run(None, {x_name: x})

    return {"sofie": sofie, "onnxruntime": onnxruntime, "treelite": predictor}, compile_s


def bench_trees(quick: bool) -> list[dict]:
    """One row per (model, batch): seconds per call of each engine, sofie's errors against onnxruntime."""
    import tl2cgen

    rows: list[dict] = []
    target, rounds = (0.05, 3) if quick else (0.3, 5)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in QUICK if quick else FULL:
            x, y = _data(spec)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, onx, tl_model = _train(spec, x[:TRAIN_ROWS], y[:TRAIN_ROWS])
                engines, compile_s = _engines(spec, onx, tl_model, Path(tmp))
            predictor = engines.pop("treelite")
            for batch in BATCHES:
                xb = np.ascontiguousarray(x[TRAIN_ROWS:TRAIN_ROWS + batch])
                dmat = tl2cgen.DMatrix(xb)
                calls = {**{k: functools.partial(f, xb) for k, f in engines.items()},
                         "treelite": functools.partial(predictor.predict, dmat)}
                got = engines["sofie"](xb)
                err, labels = _max_rel_err(list(got) if isinstance(got, tuple) else [got], engines["onnxruntime"](xb))
                times: dict[str, list[float]] = {k: [] for k in calls}
                for _ in range(rounds):
                    for k, call in calls.items():
                        times[k] += time_calls(call, target, 1)
                row = {"model": spec.name, "library": spec.library, "trees": spec.trees, "depth": spec.depth,
                       "batch": batch, **{f"{k}_s": statistics.median(v) for k, v in times.items()},
                       "max_rel_err": err, "labels": labels, "sofie_compile_s": compile_s}
                rows.append(row)
                print(_line(row), flush=True)
    return rows


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def _line(row: dict) -> str:
    """A table row: times, the two goal ratios, errors."""
    return (f"| {row['model']} | {row['batch']} | {_us(row['sofie_s'])} | {_us(row['onnxruntime_s'])} | "
            f"{_us(row['treelite_s'])} | {row['sofie_s'] / row['onnxruntime_s']:.2f} | "
            f"{row['sofie_s'] / row['treelite_s']:.2f} | {row['max_rel_err']:.1e} | "
            f"{'yes' if row['labels'] else 'NO'} | {row['sofie_compile_s']:.1f} s |")


def _versions() -> dict[str, str]:
    """Versions of the engines and converters, by module (a wheel's distribution name can differ, as
    xgboost-cpu's)."""
    import importlib

    modules = {"sofie-rdf": "sofie_rdf", "onnxruntime": "onnxruntime", "treelite": "treelite", "tl2cgen": "tl2cgen",
               "xgboost": "xgboost", "lightgbm": "lightgbm", "scikit-learn": "sklearn", "onnxmltools": "onnxmltools",
               "skl2onnx": "skl2onnx"}
    return {name: str(getattr(importlib.import_module(module), "__version__", "-")) for name, module in modules.items()}


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trees", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run; results in benchmarks/results/quick/")
    parser.add_argument("--results", type=Path, default=None, help="folder of trees.{md,json}")
    args = parser.parse_args(argv)
    folder = args.results or (RESULTS / "quick" if args.quick else RESULTS)
    m, versions = machine(), _versions()
    rows = bench_trees(args.quick)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    header = ["| model | batch | sofie | onnxruntime | treelite | sofie / ORT | sofie / treelite | max rel err | "
              "labels | sofie compile |", "|---|---|---|---|---|---|---|---|---|---|"]
    md = ["# BDT inference: sofie-rdf, onnxruntime, treelite", "",
          f"{date}, {m['cpu']} ({m['simd']}, {m['cores']} cores), {m['system']}; one thread everywhere; "
          + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", "",
          f"{N_FEATURES} features, seeded `make_classification` data (XGBoost, LightGBM: {NAN_FRACTION:.0%} NaN). "
          "Seconds per call (median of interleaved rounds; sofie and onnxruntime through Python, treelite through "
          "tl2cgen's predictor on a prebuilt DMatrix). Goals: sofie / ORT <= 0.5 at batch 1, sofie / treelite "
          "<= 1 at batch 1024, max rel err <= 1e-6 and every label equal. `sofie compile`: load, generate "
          "and compile the ONNX model.", "", *header, *map(_line, rows), ""]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trees.md").write_text("\n".join(md))
    (folder / "trees.json").write_text(json.dumps({"date": date, "machine": m, "versions": versions, "rows": rows},
                                                  indent=1, default=str))


if __name__ == "__main__":
    main()
