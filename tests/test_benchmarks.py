"""Smoke test of the latency benchmark: one small rootbench model through every engine's runner.

Times are not checked (they depend on the machine and its load); what is
checked is that each engine's runner builds, runs and reproduces
onnxruntime's output, which is the check the benchmark itself makes before
timing, and that the FLOP count follows the graph.
"""

from __future__ import annotations

import importlib.util
import types

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

pytest.importorskip("torch")

from benchmarks import latency, models  # noqa: E402

MODEL = "LSTM_d10_L20_h8_B1"  # small, and its export goes through the most unusual operator


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    onnx = models.onnx_path(MODEL, root)
    x = models.inputs(MODEL)
    ref = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    return onnx, x, ref.astype(np.float64), root


@pytest.mark.parametrize("engine", latency.ENGINES)
def test_engine_agrees_with_onnxruntime(setup, engine):
    onnx, x, ref, root = setup
    work = root / engine
    work.mkdir()
    result = latency.RUNNERS[engine](onnx, x, ref, work, target=0.001, repeats=1)
    assert result["agree"], f"{engine}: max abs error {result['max_abs_err']}"
    assert len(result["per_call"]) == 1 and result["per_call"][0] > 0
    assert result["peak_rss_mb"] > 0


def test_flops_of_linear_stack(tmp_path):
    """Linear_64: 64 events x (100x50 + 8 x 50x50 + 50x10) multiply-adds, twice."""
    onnx = models.onnx_path("Linear_64", tmp_path)
    assert latency.flops(onnx) == 2 * 64 * (100 * 50 + 8 * 50 * 50 + 50 * 10)


def test_ort_cpp_writes_every_output(tmp_path):
    """The C API driver binds all outputs of a two-output graph and reports the library's version."""
    x = np.random.default_rng(7).standard_normal((2, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["z"])], "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("y", "z")])
    path = tmp_path / "two_outputs.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    result = latency.run_ort_cpp(path, x, np.maximum(x, 0).astype(np.float64), tmp_path, target=0.001, repeats=1)
    assert result["agree"] and result["version"] == ort.__version__
    np.testing.assert_array_equal(np.fromfile(tmp_path / "y1.bin", dtype=np.float32).reshape(x.shape), -x)


def test_ort_cpp_without_library_says_so(tmp_path, monkeypatch):
    fake = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: fake)
    with pytest.raises(SystemExit, match="libonnxruntime.so.<version> is missing"):
        latency.ort_library()
