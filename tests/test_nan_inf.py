"""NaN and infinities propagate as onnxruntime propagates them, through plain and fused operators.

Clamping operators written as ``x > 0 ? x : 0`` or ``max(0, min(1, v))``
silently turn NaN into a number; sofie-rdf's keep it NaN (as onnxruntime
does), also where an activation is fused into a Gemm or Conv.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, ort_run
from onnx import helper

import sofie_rdf as sr

SPECIAL = np.array([[np.nan, np.inf, -np.inf, 1.0, -2.0, 0.0, 3.5, -0.5]], np.float32)
UNARY = ["Relu", "Sigmoid", "Tanh", "Exp", "LeakyRelu", "Elu", "Celu", "Selu", "Abs", "Sqrt", "Log", "Softplus",
         "Softsign", "HardSigmoid", "HardSwish", "Gelu", "Mish", "Erf", "Neg", "Floor", "Sign", "Reciprocal"]


def _same(ours: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(ours, nan=0.0), np.nan_to_num(ref, nan=0.0), rtol=1e-5, atol=1e-6)


def test_unary_operators():
    """One model, every operator applied to the special values side by side."""
    nodes = [helper.make_node(op, ["x"], [f"y_{op}"]) for op in UNARY]
    model = make_model(nodes, [("x", np.float32, [1, 8])], [(f"y_{op}", np.float32, [1, 8]) for op in UNARY], opset=20)
    with np.errstate(all="ignore"):
        ref = ort_run(model, {"x": SPECIAL})
    ours = sr.compile(sr.load(model)).infer(SPECIAL)
    for op, a, b in zip(UNARY, ours, ref):
        try:
            _same(a, b)
        except AssertionError as exc:
            raise AssertionError(f"{op}: ours {a}, onnxruntime {b}") from exc


@pytest.mark.parametrize("activation", ["Relu", "HardSigmoid", "LeakyRelu"])
def test_fused_gemm_and_conv(activation):
    """Gemm + activation and Conv + activation run as one fused node: NaN and inf still propagate."""
    w = np.eye(8, dtype=np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w"], ["g"]), helper.make_node(activation, ["g"], ["y"]),
             helper.make_node("Reshape", ["x", "shape"], ["img"]),
             helper.make_node("Conv", ["img", "k"], ["c"], kernel_shape=[1]), helper.make_node(activation, ["c"], ["z"])]
    init = {"w": w, "shape": np.array([1, 1, 8], np.int64), "k": np.ones((1, 1, 1), np.float32)}
    model = make_model(nodes, [("x", np.float32, [1, 8])], [("y", np.float32, [1, 8]), ("z", np.float32, [1, 1, 8])],
                       init, opset=17)
    ref = ort_run(model, {"x": SPECIAL})
    for a, b in zip(sr.compile(sr.load(model)).infer(SPECIAL), ref):
        _same(a, b)


def test_reductions_and_softmax():
    nodes = [helper.make_node("ReduceMax", ["x"], ["max"], keepdims=0), helper.make_node("ReduceSum", ["x"], ["sum"]),
             helper.make_node("Softmax", ["x"], ["soft"]), helper.make_node("Max", ["x", "x"], ["pair"])]
    model = make_model(nodes, [("x", np.float32, [1, 8])], [("max", np.float32, None), ("sum", np.float32, None),
                                                            ("soft", np.float32, None), ("pair", np.float32, None)],
                       opset=13)
    ref = ort_run(model, {"x": SPECIAL})
    for a, b in zip(sr.compile(sr.load(model)).infer(SPECIAL), ref):
        _same(a, b)
