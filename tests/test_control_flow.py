"""ONNX control flow: If folded when its condition is known while generating, If chosen while running (both
branches as blocks, dims that differ between them set at run time), Loop and Scan; each against onnxruntime.

torch.onnx.export writes ``x.squeeze(d)`` of a dim that is dynamic in the export as
``If(Shape(x)[d] == 1) then Squeeze else Identity``: fixing the dim when loading folds the If away, leaving
it open is refused with a message that says so.
"""

from __future__ import annotations

import io
import subprocess
import warnings

import numpy as np
import onnx
import pytest
from conftest import check_runs, make_model, random_array
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr
from sofie_rdf import _root

BACKENDS = ["native", "jit"]
I64 = np.int64


def _graph(name: str, nodes: list, outputs: list[str], inputs: tuple = (), initializers: dict | None = None,
           elem: int = TensorProto.FLOAT) -> onnx.GraphProto:
    """A subgraph; its inputs are (name, element type, shape) and its outputs of element type ``elem``."""
    return helper.make_graph(nodes, name, [helper.make_tensor_value_info(*i) for i in inputs],
                             [helper.make_tensor_value_info(o, elem, None) for o in outputs],
                             [numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()])


def _squeeze_if_model() -> onnx.ModelProto:
    """What torch.onnx.export writes for ``relu(x.squeeze(1))`` with dim 1 dynamic."""
    then = _graph("then", [helper.make_node("Squeeze", ["x", "axes"], ["squeezed"])], ["squeezed"],
                  initializers={"axes": np.array([1], I64)})
    other = _graph("else", [helper.make_node("Identity", ["x"], ["same"])], ["same"])
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "one"], ["dim"], axis=0),
             helper.make_node("Equal", ["dim", "one"], ["is_one"]),
             helper.make_node("If", ["is_one"], ["maybe_squeezed"], then_branch=then, else_branch=other,
                              name="squeeze_if"),
             helper.make_node("Relu", ["maybe_squeezed"], ["y"])]
    return make_model(nodes, [("x", np.float32, ["N", "D", 4])], [("y", np.float32, None)], {"one": np.array(1, I64)})


def _torch_squeeze_model() -> onnx.ModelProto:
    torch = pytest.importorskip("torch")

    class SqueezeRelu(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x.squeeze(1))

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(SqueezeRelu(), (torch.randn(3, 1, 4),), buf, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N", 1: "D"}}, dynamo=False, opset_version=17)
    model = onnx.load_from_string(buf.getvalue())
    model.ir_version = min(model.ir_version, 9)
    assert "If" in [n.op_type for n in model.graph.node]
    return model


@pytest.mark.parametrize("build", [_squeeze_if_model, _torch_squeeze_model], ids=["onnx_helper", "torch"])
@pytest.mark.parametrize("d", [1, 2])
def test_if_on_a_fixed_dim_is_folded(build, d):
    """With the dim fixed the condition is known: only the taken branch's code is generated, no If."""
    proto = build()
    model = sr.load(proto, dims={"D": d})
    header = model.code(weights="embed").header
    assert "IfBegin" not in header and "EndIf" not in header
    assert ("Squeeze" in header) == (d == 1)
    sess = sr.compile(model, backend="native")
    x = random_array((3, d, 4), seed=d)
    ort = pytest.importorskip("onnxruntime")
    expected = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = sess.infer(x)
    assert got.shape == expected[0].shape
    np.testing.assert_array_equal(got, expected[0])


def test_if_of_different_ranks_is_refused_naming_the_fix():
    with pytest.raises(sr.ShapeError) as err:
        sr.load(_squeeze_if_model()).code()
    message = str(err.value)
    for part in ("model 'test'", "If node 'squeeze_if'", "then_branch", "else_branch", "dims=", "squeeze"):
        assert part in message


def _input_condition_model() -> onnx.ModelProto:
    """The condition is an input; the branches read enclosing tensors (a computed one, a weight) and have a
    weight of their own."""
    then = _graph("then", [helper.make_node("Mul", ["hidden", "w"], ["scaled"]),
                           helper.make_node("Add", ["scaled", "bias"], ["out"])], ["out"],
                  initializers={"bias": np.linspace(-1, 1, 4, dtype=np.float32)})
    other = _graph("else", [helper.make_node("Sub", ["hidden", "w"], ["out"])], ["out"])
    nodes = [helper.make_node("Relu", ["x"], ["hidden"]),
             helper.make_node("If", ["c"], ["chosen"], then_branch=then, else_branch=other, name="choose"),
             helper.make_node("Tanh", ["chosen"], ["y"])]
    return make_model(nodes, [("c", np.bool_, []), ("x", np.float32, ["N", 4])], [("y", np.float32, None)],
                      {"w": np.arange(4, dtype=np.float32)})


@pytest.mark.parametrize("backend", BACKENDS)
def test_if_on_an_input_runs_either_branch(backend):
    x = random_array((3, 4), seed=1)
    check_runs(_input_condition_model(), [{"c": np.array(c), "x": x} for c in (True, False, True)], backend,
               rtol=1e-6, atol=1e-6)


def _data_condition_model() -> onnx.ModelProto:
    """ReduceSum(x) > 0 chooses (2N, 4) (x twice) or (N, 2) (two of its columns): both dims set while running."""
    then = _graph("then", [helper.make_node("Concat", ["x", "x"], ["out"], axis=0)], ["out"])
    other = _graph("else", [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["out"])], ["out"],
                   initializers={"starts": np.array([1], I64), "ends": np.array([3], I64), "axes": np.array([1], I64)})
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["positive"]),
             helper.make_node("If", ["positive"], ["chosen"], then_branch=then, else_branch=other, name="choose"),
             helper.make_node("Neg", ["chosen"], ["y"])]
    return make_model(nodes, [("x", np.float32, ["N", 4])], [("y", np.float32, None)],
                      {"zero": np.array(0, np.float32)})


@pytest.mark.parametrize("backend", BACKENDS)
def test_if_on_data_sets_the_dims_that_differ(backend):
    model = sr.load(_data_condition_model())
    assert model.outputs[0].shape[0] != model.outputs[0].shape[1]  # two run-time dims, no fixed size
    feeds = [{"x": np.abs(random_array((n, 4), seed=n)) * sign} for n, sign in ((3, 1), (2, -1), (5, 1))]
    check_runs(_data_condition_model(), feeds, backend)


def _loop_model() -> onnx.ModelProto:
    """A running sum of x's rows for M iterations (an input), stopping early once it exceeds a limit (the
    body's condition): the sum's final value and every iteration's (a scan output)."""
    body = _graph("body", [helper.make_node("Gather", ["x", "i"], ["row"], axis=0),
                           helper.make_node("Add", ["acc", "row"], ["acc_next"]),
                           helper.make_node("ReduceSum", ["acc_next"], ["total"], keepdims=0),
                           helper.make_node("Less", ["total", "limit"], ["go_on"]),
                           helper.make_node("Mul", ["acc_next", "two"], ["doubled"])],
                  ["go_on", "acc_next", "doubled"],
                  inputs=(("i", TensorProto.INT64, []), ("cond", TensorProto.BOOL, []), ("acc", TensorProto.FLOAT, [4])),
                  initializers={"two": np.array(2, np.float32)})
    body.output[0].type.tensor_type.elem_type = TensorProto.BOOL
    nodes = [helper.make_node("Loop", ["M", "", "start"], ["final", "history"], body=body, name="running_sum")]
    return make_model(nodes, [("M", I64, []), ("x", np.float32, [6, 4])],
                      [("final", np.float32, None), ("history", np.float32, None)],
                      {"start": np.zeros(4, np.float32), "limit": np.array(6, np.float32)}, opset=17)


@pytest.mark.parametrize("backend", BACKENDS)
def test_loop_with_a_trip_count_and_an_early_stop(backend):
    x = np.abs(random_array((6, 4), seed=3))
    check_runs(_loop_model(), [{"M": np.array(m, I64), "x": x} for m in (3, 0, 6, 1)], backend, rtol=1e-6)


def _scan_model() -> onnx.ModelProto:
    """A cumulative sum over the rows of x, from the last row (reverse direction), the running sums stacked
    along axis 1, plus a product of each row with a weight of the enclosing graph."""
    body = _graph("body", [helper.make_node("Add", ["state", "row"], ["state_next"]),
                           helper.make_node("Mul", ["row", "w"], ["weighted"])],
                  ["state_next", "state_next_copy", "weighted"],
                  inputs=(("state", TensorProto.FLOAT, [3]), ("row", TensorProto.FLOAT, [3])))
    body.node.append(helper.make_node("Identity", ["state_next"], ["state_next_copy"]))
    nodes = [helper.make_node("Scan", ["init", "x"], ["final", "sums", "weighted"], body=body, num_scan_inputs=1,
                              scan_input_directions=[1], scan_output_axes=[1, 0], name="cumulative")]
    return make_model(nodes, [("init", np.float32, [3]), ("x", np.float32, ["T", 3])],
                      [("final", np.float32, None), ("sums", np.float32, None), ("weighted", np.float32, None)],
                      {"w": np.array([1, -2, 0.5], np.float32)})


@pytest.mark.parametrize("backend", BACKENDS)
def test_scan_over_rows_in_reverse(backend):
    feeds = [{"init": random_array(3, seed=t), "x": random_array((t, 3), seed=10 + t)} for t in (4, 1, 7)]
    check_runs(_scan_model(), feeds, backend, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("profile", [False, True], ids=["plain", "profiled"])
def test_control_flow_headers_build_with_warnings_as_errors(tmp_path, profile):
    builders = [_input_condition_model, _data_condition_model, _loop_model, _scan_model]
    headers = [sr.load(b(), name=b.__name__.strip("_")).code(weights="embed", profile=profile).header
               for b in builders]
    lib, include = _root.blas_paths()
    source = tmp_path / "control.cpp"
    source.write_text("\n".join(headers) + "\nint main() { return 0; }\n")
    result = subprocess.run(["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", str(include),
                             str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]


def _nested_model() -> onnx.ModelProto:
    """A Loop whose body adds or subtracts x's row as the iteration number is even or odd (an If in the body,
    reading the body's tensors and the enclosing graph's)."""
    add = _graph("add", [helper.make_node("Add", ["acc", "row"], ["out"])], ["out"])
    sub = _graph("sub", [helper.make_node("Sub", ["acc", "row"], ["out"])], ["out"])
    body = _graph("body", [helper.make_node("Gather", ["x", "i"], ["row"], axis=0),
                           helper.make_node("Mod", ["i", "two"], ["parity"]),
                           helper.make_node("Equal", ["parity", "zero"], ["even"]),
                           helper.make_node("If", ["even"], ["acc_next"], then_branch=add, else_branch=sub),
                           helper.make_node("Identity", ["cond"], ["cond_out"])],
                  ["cond_out", "acc_next"],
                  inputs=(("i", TensorProto.INT64, []), ("cond", TensorProto.BOOL, []), ("acc", TensorProto.FLOAT, [4])))
    body.output[0].type.tensor_type.elem_type = TensorProto.BOOL
    nodes = [helper.make_node("Loop", ["M", "go", "start"], ["final"], body=body, name="alternating")]
    return make_model(nodes, [("M", I64, []), ("go", np.bool_, []), ("x", np.float32, [5, 4])],
                      [("final", np.float32, None)],
                      {"start": np.ones(4, np.float32), "two": np.array(2, I64), "zero": np.array(0, I64)})


def test_if_nested_in_a_loop():
    x = random_array((5, 4), seed=4)
    feeds = [{"M": np.array(m, I64), "go": np.array(go), "x": x} for m, go in ((5, True), (2, True), (4, False))]
    check_runs(_nested_model(), feeds, "native", rtol=1e-6, atol=1e-6)


def test_subgraphs_are_stored_in_root_files(tmp_path):
    pytest.importorskip("uproot")
    path = tmp_path / "models.root"
    for build in (_nested_model, _scan_model):
        model = sr.load(build(), name="stored")
        model.save(path, key=build.__name__.strip("_"))
        again = sr.load(f"{path}:{build.__name__.strip('_')}", name="stored")
        assert again.code(weights="embed").header == model.code(weights="embed").header
