"""Weights stored smaller, computed in float (``sr.compile(model, weights="bf16" | "fp16" | "int8")``, ``sofie-rdf
emit --weights-dtype``): the products must compute exactly what float arithmetic on the rounded weights gives
(bfloat16 and float16 rounded to nearest even; int8 symmetric with one scale per output column), through every
form of Gemm (transA, transB, alpha, beta, C broadcast, a fused activation) and MatMul, with the precision report
measuring the deviation from the float32 model; the default stays float32.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import helper
from test_isa import ISA_FLAGS, RUNNABLE

import sofie_rdf as sr
from sofie_rdf.cli import main
from sofie_rdf.errors import SofieError

DTYPES = ["bf16", "fp16", "int8"]


def rounded(w: np.ndarray, dtype: str) -> np.ndarray:
    """The float values a K x N weight matrix is stored as."""
    if dtype == "int8":
        top = np.abs(w).max(axis=0)
        scale = np.where(top > 0, top / 127, 1).astype(np.float32)
        return (np.clip(np.rint(w / scale), -127, 127) * scale).astype(np.float32)
    return w.astype(ml_dtypes.bfloat16 if dtype == "bf16" else np.float16).astype(np.float32)


def _products(seed: int = 0) -> tuple[onnx.ModelProto, dict]:
    """Gemm with transB, alpha, beta and a bias row then Sigmoid fused; Gemm with transA and C per row; MatMul of
    a rank-3 A; 70 and 130 columns (partial panels), rows 1 to 9 from the batch."""
    rng = np.random.default_rng(seed)
    w = {"w1": rng.standard_normal((130, 24)), "w2": rng.standard_normal((24, 70)), "w3": rng.standard_normal((24, 37))}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    inits = {**w, "b1": rng.standard_normal(130).astype(np.float32), "c2": rng.standard_normal((24, 1)).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["g"], transB=1, alpha=0.5, beta=2.0),
             helper.make_node("Sigmoid", ["g"], ["y1"]),
             helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
             helper.make_node("Gemm", ["xt", "w2", "c2"], ["y2"], transA=1),
             helper.make_node("MatMul", ["x3", "w3"], ["y3"])]
    model = make_model(nodes, [("x", np.float32, [24, 24]), ("x3", np.float32, ["n", 3, 24])],
                       [("y1", np.float32, None), ("y2", np.float32, None), ("y3", np.float32, None)], inits)
    return model, inits


def _expected(inits: dict, x: np.ndarray, x3: np.ndarray, dtype: str) -> list[np.ndarray]:
    w1, w2, w3 = (rounded(inits[k].T if k == "w1" else inits[k], dtype) for k in ("w1", "w2", "w3"))
    g = 0.5 * (x @ w1) + 2.0 * inits["b1"]
    return [1 / (1 + np.exp(-g)), x.T.T @ w2 + inits["c2"], x3 @ w3]


# The kernels built for every instruction set this CPU runs (their register tiles differ: 4 x 4 vectors on AVX-512,
# 2 x 2 on AVX2, one row on SSE2), and through Cling.
@pytest.mark.parametrize("backend", [*(f"native-{isa}" for isa in RUNNABLE), pytest.param("jit", marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_products_compute_the_rounded_weights(dtype, backend):
    model, inits = _products()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((24, 24)).astype(np.float32)
    engine, _, isa = backend.partition("-")
    options = {"flags": ISA_FLAGS[isa]} if isa else {}
    sess = sr.compile(sr.load(model), backend=engine, weights=dtype, **options)
    assert "gemm_stored" in sess.code.header
    for rows in (1, 9):
        x3 = rng.standard_normal((rows, 3, 24)).astype(np.float32)
        for got, want in zip(sess.infer(x, x3), _expected(inits, x, x3, dtype)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_precision_report():
    """Random inputs by default, the user's sample when given; the deviation is the one measured by hand."""
    model, _ = _products(2)
    reference = sr.compile(sr.load(model), backend="native")
    assert reference.precision_report is None and "gemm_stored" not in reference.code.header  # never the default
    rng = np.random.default_rng(3)
    sample = (rng.standard_normal((24, 24)).astype(np.float32), rng.standard_normal((4, 3, 24)).astype(np.float32))
    sess = sr.compile(sr.load(model), backend="native", weights="bf16", sample=sample)
    report = sess.precision_report
    assert report.dtype == "bf16" and report.sample == "the sample given" and len(report.outputs) == 3
    deviations = [np.abs(a - b).max() for a, b in zip(sess.infer(*sample), reference.infer(*sample))]
    assert [o.max_abs for o in report.outputs] == pytest.approx(deviations)
    assert 0 < report.max_rel < 1e-2
    assert "weights stored as bf16" in str(report) and "y3" in str(report)
    random = sr.compile(sr.load(model), backend="native", weights="int8").precision_report
    assert random.sample.startswith("random normal inputs") and random.max_abs > 0


def test_refusals():
    model, _ = _products()
    with pytest.raises(SofieError, match="weights='bf16' is for the CPU backends"):
        sr.compile(sr.load(model), backend="cuda", weights="bf16")
    with pytest.raises(SofieError, match="sample= goes with weights="):
        sr.compile(sr.load(model), backend="native", sample=np.zeros((24, 24), np.float32))
    with pytest.raises(SofieError, match="weights must be a mode .* or how the products' weights are stored"):
        sr.compile(sr.load(model), backend="native", weights="int4")
    with pytest.raises(SofieError, match="weights_dtype='fp16' is for the CPU targets"):
        sr.load(model).generate("unused", target="cuda", weights_dtype="fp16")


def test_cli_emit(tmp_path, capsys):
    model, _ = _products()
    path = tmp_path / "products.onnx"
    onnx.save(model, path)
    assert main(["emit", str(path), "-o", str(tmp_path / "out"), "--weights-dtype", "fp16"]) == 0
    header = (tmp_path / "out" / "products.hxx").read_text()
    assert "gemm_stored<kernels::Fp16Weights>" in header
