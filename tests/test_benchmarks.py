"""Smoke test of the latency benchmark: one small rootbench model through every engine's runner.

Times are not checked (they depend on the machine and its load); what is
checked is that each engine's runner builds, runs and reproduces
onnxruntime's output, which is the check the benchmark itself makes before
timing, and that the FLOP count follows the graph.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

pytest.importorskip("torch")

from benchmarks import isa, latency, models  # noqa: E402
from sofie_rdf.targets.cpu import host_isa  # noqa: E402

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


# ---- benchmarks.isa: an AVX-512 machine measured as an AVX2 one

_MLAS_BRANCH = bytes.fromhex("41f7c200000100" "740e" "4c89c0" "48f7d0" "a8e0")  # onnxruntime 1.32's, see isa.py


def test_isa_patch_jumps_over_mlas_avx512_branch(tmp_path):
    library = tmp_path / "libfake.so"
    original = b"\x90" * 100 + _MLAS_BRANCH + b"\xc3" * 20
    library.write_bytes(original)
    isa._patch(library)
    je = 100 + 7  # the conditional jump's opcode, and nothing else, changes
    assert library.read_bytes() == original[:je] + b"\xeb" + original[je + 1:]


@pytest.mark.parametrize("copies", [0, 2])
def test_isa_patch_refuses_unknown_code(tmp_path, copies):
    library = tmp_path / "libfake.so"
    library.write_bytes(b"\x90" * 64 + _MLAS_BRANCH * copies)
    with pytest.raises(SystemExit, match=f"found {copies} times in libfake.so"):
        isa._patch(library)


def test_isa_restriction_reaches_flags_names_and_peak(monkeypatch):
    monkeypatch.setenv(isa.ENV, "avx2")
    assert isa.native_flags()[-1] == "-mno-avx512f"
    assert latency.results_stem("hep").endswith("_as_avx2")
    m = latency.machine()
    assert m["simd"] in ("AVX2 FMA", "SSE") and m["restriction"] == isa.NOTE
    monkeypatch.delenv(isa.ENV)
    assert "-mno-avx512f" not in isa.native_flags() and not latency.machine()["restriction"]


@pytest.mark.skipif(host_isa() != "avx512" or not ort.__version__.startswith("1.32."),
                    reason="the MLAS pattern is known for onnxruntime 1.32 on AVX-512 machines")
def test_onnxruntime_run_as_avx2_computes_right(tmp_path):
    """The patched copy loads, is the one imported, and multiplies correctly on MLAS's AVX2 kernels."""
    env = isa.restrict("avx2", tmp_path)
    script = ("import numpy as np, onnxruntime as ort\n"
              "from onnx import helper, numpy_helper, TensorProto as T\n"
              "w = np.random.default_rng(1).standard_normal((96, 80)).astype(np.float32)\n"
              "g = helper.make_graph([helper.make_node('MatMul', ['a', 'w'], ['c'])], 'g',\n"
              "    [helper.make_tensor_value_info('a', T.FLOAT, [70, 96])],\n"
              "    [helper.make_tensor_value_info('c', T.FLOAT, [70, 80])], [numpy_helper.from_array(w, 'w')])\n"
              "m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)\n"
              "a = np.random.default_rng(2).standard_normal((70, 96)).astype(np.float32)\n"
              "c = ort.InferenceSession(m.SerializeToString()).run(None, {'a': a})[0]\n"
              "np.testing.assert_allclose(c, a.astype(np.float64) @ w, rtol=1e-4, atol=1e-4)\n"
              "print(ort.__file__)\n")
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(tmp_path))


def test_batch_is_in_the_names():
    """The HEP tables give per-call times with "the batch in the name": B<n> where it is not 1."""
    from benchmarks import hep

    for name, spec in {**hep.SPECS, **hep.OFFGRID}.items():
        suffix = name.rsplit("_", 1)[-1]
        assert (suffix == f"B{spec.batch}") == (spec.batch > 1), name
    assert not set(hep.SPECS) & set(hep.OFFGRID)


@pytest.mark.parametrize("name", ["CaloCNN2d_20x50", "Conv2d_3to24_33px_k3", "Conv1d_32to32_100_k3"])
def test_offgrid_models_agree_with_onnxruntime(tmp_path, name):
    """Shapes off the tuned grid reach the kernels' other paths (rows that are not whole vectors, Winograd tiles
    on a 20 x 50 image with pooling, 1-D convolutions): the native build agrees with onnxruntime."""
    import sofie_rdf as sr

    onnx = models.onnx_path(name, tmp_path)
    x = models.inputs(name)
    ref = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(sr.compile(str(onnx), backend="native")(x), ref, rtol=1e-4, atol=1e-5)


def test_side_by_side_rows_land_in_their_own_table(tmp_path, monkeypatch):
    """``--jobs``: rows measured at once on CPUs of their own come back in the family's order, in a
    ``_side_by_side`` table that names how they were measured, and leave the one-at-a-time table alone."""
    from benchmarks import hep_latency

    cpus = hep_latency.physical_cpus()
    assert cpus and set(cpus) <= os.sched_getaffinity(0)
    monkeypatch.setenv("SOFIE_RDF_BENCH_DIR", str(tmp_path / "bench"))
    names = ["MaxPool2d_16ch_32px", "GELU_tanh_128x512"]
    hep_latency.main(["--quick", "--jobs", "2", "--models", ",".join(names), "--out", str(tmp_path)])
    stem = latency.results_stem("hep") + "_side_by_side"
    assert not (tmp_path / f"{latency.results_stem('hep')}.md").exists()
    result = json.loads((tmp_path / f"{stem}.json").read_text())
    assert [row["model"] for row in result["rows"]] == names and result["meta"]["unfinished"] == []
    assert all("median_s" in row["engines"]["native"] for row in result["rows"])
    text = (tmp_path / f"{stem}.md").read_text()
    assert (f"{min(2, len(cpus))} rows at a time" in text) == (len(cpus) > 1)


def test_build_paths_agree(tmp_path):
    """benchmarks/build_paths.py's five roads (native, g++ -O2, the JIT, a header declared to a ROOT started first,
    the JIT's generic plan) run one model to the same numbers, and its table names the CPU."""
    pytest.importorskip("ROOT")
    run = subprocess.run([sys.executable, "-m", "benchmarks.build_paths", "--models", "higgs_model_dense", "--rounds", "1",
                          "--seconds", "0.001", "--out", str(tmp_path)], capture_output=True, text=True, timeout=900,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert run.returncode == 0, run.stderr[-3000:]
    (table,) = tmp_path.glob("build_paths_*.json")
    (row,) = json.loads(table.read_text())["rows"]
    assert max(row["max_abs_diff_vs_native"].values()) < 1e-5, row["max_abs_diff_vs_native"]
    assert all(row["seconds"][e] > 0 for e in ("native", "O2", "jit", "declared", "jit_before"))


def test_cling_profile_places_samples_on_instructions():
    """benchmarks/cling_profile.py's reading of perf's samples: each disassembled instruction of a code copy led by
    the samples at its address, and the hottest 1 KB windows of the range counted."""
    import collections
    import shutil

    from benchmarks import cling_profile

    if shutil.which("objdump") is None:
        pytest.skip("no objdump")
    base = 0x7F0000001000
    code = bytes([0x90, 0xC5, 0xFC, 0x58, 0xC1, 0xC3])  # nop; vaddps %ymm1, %ymm0, %ymm0; ret
    samples = collections.Counter({base + 1: 7, base + 5: 2, base + 4096: 30})
    lines = [line for line in cling_profile.annotate(code, base, samples) if line.count("\t") == 2]
    counts = {line.split("\t")[-1].split()[0]: int(line[:7].strip() or 0) for line in lines}
    assert counts == {"nop": 0, "vaddps": 7, "ret": 2}
    assert cling_profile.hot_windows(samples, base, base + 4096) == [(base, 9)]


def test_public_inputs_and_agreement():
    """benchmarks/public.py without its files: edge indices below the node count, masks of ones, a free batch,
    the 4b classifier's padded jets, and a NaN agreeing only with a NaN."""
    from benchmarks import public

    gnn = public.Model("g", "o/r", "g.onnx", "GNN", dims={"nodes": 7, "edges": 20}, batch=None,
                       indices={"edge_index": "nodes"})
    specs = [("x", ("nodes", 3), np.dtype(np.float32)), ("edge_index", (2, "edges"), np.dtype(np.int64)),
             ("pf_mask", ("nodes", 1), np.dtype(np.float32))]
    x = public.feeds(gnn, specs, None)
    assert x["x"].shape == (7, 3) and x["edge_index"].shape == (2, 20) and x["edge_index"].dtype == np.int64
    assert 0 <= x["edge_index"].min() and x["edge_index"].max() < 7 and (x["pf_mask"] == 1).all()
    assert public.sizes(gnn, specs) == [None]
    mlp = public.Model("m", "o/r", "m.onnx", "MLP")
    mlp_specs = [("x", ("N", 16), np.dtype(np.float32))]
    assert public.sizes(mlp, mlp_specs) == [1, 64] and public.feeds(mlp, mlp_specs, 64)["x"].shape == (64, 16)
    four_b = public.INPUTS["4b"](np.random.default_rng(0), 3)
    assert {k: v.shape for k, v in four_b.items()} == {"J": (3, 16), "O": (3, 40), "A": (3, 4)}
    assert (four_b["J"][:, :4] > 0).all()  # pt
    ref = [np.array([1.0, np.nan], np.float32)]
    assert public.agreement(np.array([1.0, np.nan], np.float32), ref)["agrees"]
    assert not public.agreement(np.array([1.0, 2.0], np.float32), ref)["agrees"]
    assert not public.agreement(np.array([1.0], np.float32), ref)["agrees"]  # a shape that differs
