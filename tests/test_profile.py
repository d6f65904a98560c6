"""Per-node profiling: ``Session.profile``, ``generate(profile=True)`` and ``sofie-rdf bench --per-node``.

The timers are compiled in only when asked for: the plain header has none.  A
profile names every node that runs code, with the shapes of the call, and its
node times add up to the time of a plain call (the Python call around them is
a few microseconds on models of a millisecond).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from test_codegen import build_and_run, mlp_model, needs_gxx

import sofie_rdf as sr
from sofie_rdf.cli import main as cli_main
from sofie_rdf.profiling import example_inputs
from tests.conftest import ATOL, RTOL, base_variant, make_model, random_array


def cnn_model() -> onnx.ModelProto:
    """Conv+Relu, MaxPool, Conv, Flatten, Gemm on (n, 4, 24, 24): about a millisecond at n = 8."""
    rng = np.random.default_rng(1)
    w = lambda *shape: rng.standard_normal(shape).astype(np.float32) * 0.2  # noqa: E731
    inits = {"w1": w(16, 4, 3, 3), "b1": w(16), "w2": w(32, 16, 3, 3), "b2": w(32), "w3": w(10, 32 * 12 * 12),
             "b3": w(10), "shape": np.array([0, -1], dtype=np.int64)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Reshape", ["c2", "shape"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1, name="dense")]
    return make_model(nodes, [("x", np.float32, ("n", 4, 24, 24))], [("y", np.float32, ("n", 10))], inits,
                      name="cnn")


@pytest.fixture(scope="module")
def cnn():
    return sr.load(cnn_model())


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_profile_names_every_node_with_its_shapes_and_rate(cnn, backend):
    x = random_array((8, 4, 24, 24))
    sess = sr.compile(cnn, backend=backend)
    prof = sess.profile(x, repeat=20, warmup=2)
    rows = {n.name: n for n in prof.nodes}
    # conv1 and relu1 are one fused node; flatten is a view with no code to time.
    assert set(rows) == {"conv1+relu1", "pool", "conv2", "dense"}
    assert [n.index for n in prof.nodes] == sorted(n.index for n in prof.nodes)
    assert rows["conv1+relu1"].op_type == "FusedConv" and rows["pool"].op_type == "MaxPool"
    assert rows["conv2"].shapes == "8x16x12x12, 32x16x3x3, 32 -> 8x32x12x12"
    assert all(n.seconds > 0 for n in prof.nodes)
    assert sum(n.share for n in prof.nodes) == pytest.approx(1.0)
    # GFLOP/s from the operator's FLOP count: 2 x taps x outputs over the median time.
    conv_flops = 2 * 16 * 9 * 8 * 32 * 12 * 12
    assert rows["conv2"].gflops == pytest.approx(conv_flops / rows["conv2"].seconds * 1e-9)
    assert rows["pool"].gflops is None
    table = str(prof)
    assert "conv2" in table and "GFLOP/s" in table and "us per call" in table
    by_type = {op: (count, seconds) for op, count, seconds, _ in prof.by_op_type()}
    assert by_type["FusedConv"][0] == 1 and by_type["Conv"][0] == 1
    assert sum(s for _, s in by_type.values()) == pytest.approx(sum(n.seconds for n in prof.nodes))
    # The profiling twin computes what the Session computes.
    np.testing.assert_array_equal(sess._twin.infer(x), sess.infer(x))


def test_profile_of_row_blocks_and_runtime_dims():
    """A dense model run in row blocks sums every block's time; a NonZero output's dim is known after the call."""
    sess = sr.compile(mlp_model("n", sizes=(32, 64, 64, 4)), backend="native")
    assert sess.code.nodes and sess.code.profile is False
    prof = sess.profile(random_array((4096, 32)), repeat=5, warmup=1)
    assert len(prof.nodes) >= 3 and all(n.seconds > 0 for n in prof.nodes)
    assert any(n.shapes.startswith("4096x32") for n in prof.nodes)

    nodes = [helper.make_node("NonZero", ["x"], ["i"], name="nz"),
             helper.make_node("Transpose", ["i"], ["y"], name="tr")]
    model = make_model(nodes, [("x", np.float32, (3, 4))], [("y", np.int64, ("k", 2))], opset=13)
    sess = sr.compile(model, backend="native")
    x = np.array([[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 0, 0]], np.float32)
    prof = sess.profile(x, repeat=3, warmup=1)
    assert {n.name: n.shapes for n in prof.nodes}["tr"] == "2x3 -> 3x2"


def test_plain_code_has_no_timers(cnn, tmp_path):
    plain, timed = cnn.code(), cnn.code(profile=True)
    assert "chrono" not in plain.header and "fProfileNs" not in plain.header and "profile_ns" not in plain.signatures
    assert "#include <chrono>" in timed.header and base_variant(timed.header).count("steady_clock::now() - start") == 4
    files = cnn.generate(tmp_path, profile=True)
    assert "profile_reset" in files.header.read_text()


@needs_gxx
def test_profiled_header_builds_with_warnings_as_errors(cnn, tmp_path):
    """The timed header is standalone C++17 like any other (g++ -Wall -Wextra -Werror) and computes the same."""
    x = random_array((2, 4, 24, 24))
    code = cnn.code(profile=True)
    vectors, pointers, _, _ = build_and_run(tmp_path, code, [x], dims={"n": 2})
    expected = sr.compile(cnn, backend="native").infer(x)  # -O3 -march=native: FMA rounding differs from -O2
    for got in (vectors[0], pointers[0]):
        np.testing.assert_allclose(np.reshape(got, expected.shape), expected, rtol=RTOL, atol=ATOL)


def test_example_inputs_bind_the_batch_and_named_dims():
    model = make_model([helper.make_node("Add", ["a", "b"], ["y"])],
                       [("a", np.float32, ("n", "t")), ("b", np.float32, ("n", "t"))], [("y", np.float32, ("n", "t"))])
    m = sr.load(model)
    a, b = example_inputs(m, batch=3, dims={"t": 5})
    assert a.shape == b.shape == (3, 5) and a.dtype == np.float32 and not np.array_equal(a, b)
    with pytest.raises(sr.SofieError, match="dim 't' on axis 1.*--dims t=N"):
        example_inputs(m, batch=3)


def test_cli_bench_per_node_next_to_onnxruntime(tmp_path, capsys):
    path = tmp_path / "cnn.onnx"
    onnx.save(cnn_model(), path)
    assert cli_main(["bench", str(path), "--batch", "2", "--per-node", "--repeat", "5"]) == 0
    out = capsys.readouterr().out
    assert "sofie-rdf (native)" in out and "sofie-rdf / onnxruntime" in out
    assert "onnxruntime per node" in out and "per operator type" in out
    assert "2x16x12x12, 32x16x3x3, 32 -> 2x32x12x12" in out
    assert cli_main(["bench", str(path), "--dims", "n"]) == 1
    assert "--dims takes NAME=N" in capsys.readouterr().err
