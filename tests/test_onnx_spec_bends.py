"""ONNX files that bend the spec where onnxruntime lets them, run as onnxruntime runs them, with a warning.

* A ``Loop`` whose loop-carried value changes shape between iterations (``(E,)`` before, ``(E, 1)`` after: torch's
  TorchScript exporter writes torch_scatter's ``broadcast`` so), its trip count known when the code is generated:
  unrolled; against onnxruntime, exactly (integer indices, sums of the same floats in the same order).  With a trip
  count known only while running it stays refused, naming the node.  One known to run no iteration (the same
  ``broadcast`` with nothing to unsqueeze: a trip count of 0, or a condition false from the start) gives its initial
  values and empty scan outputs, without a warning; against onnxruntime.  With a scan output whose shape is known only
  while running, it is an ordinary Loop again, refused as its value changes shape.
* A graph input that is also an initializer: a constant weight; against onnxruntime fed without it.
* A ``Gemm`` of opset 6 whose weights are not listed among the inputs (the version converter wants them there):
  converted; onnxruntime has no kernel for Gemm before opset 7, so against numpy at rtol 1e-5 / atol 1e-6.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pytest
from conftest import make_model, ort_run
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr
from sofie_rdf.errors import LegacyModelWarning, ShapeError


def _unsqueeze_body(condition: Sequence = (), scans: Sequence = ()) -> object:
    """``src = src.unsqueeze(-1)``; the condition the outer tensor ``keep_going``, or what ``condition`` computes;
    ``scans``: (name, shape) of body tensors that are also scan outputs."""
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [-1])
    return helper.make_graph(
        [
            helper.make_node("Constant", [], ["axes"], value=axes),
            helper.make_node("Unsqueeze", ["src", "axes"], ["src_out"]),
            *(condition or [helper.make_node("Identity", ["keep_going"], ["cond_out"])]),
        ],
        "broadcast_body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("src", TensorProto.INT64, ["E"]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("src_out", TensorProto.INT64, None),
            *(helper.make_tensor_value_info(name, TensorProto.INT64, shape) for name, shape in scans),
        ],
    )


def _scatter_model(trip_count: list) -> object:
    """torch_scatter's scatter_sum as the TorchScript exporter writes it: the trip count ``Cast(Ceil(1.0))`` (or
    ``trip_count`` nodes), the index broadcast in the Loop, then a ScatterElements with reduction add."""
    keep_going = helper.make_tensor("k", TensorProto.BOOL, [], [True])
    nodes = [
        *trip_count,
        helper.make_node("Constant", [], ["keep_going"], value=keep_going),
        helper.make_node("Loop", ["M", "keep_going", "index"], ["index2d"], body=_unsqueeze_body(), name="broadcast_loop"),
        helper.make_node("Shape", ["src"], ["shape"]),
        helper.make_node("Expand", ["index2d", "shape"], ["index_full"]),
        helper.make_node(
            "ConstantOfShape", ["out_shape"], ["zeros"], value=helper.make_tensor("z", TensorProto.FLOAT, [1], [0.0])
        ),
        helper.make_node("ScatterElements", ["zeros", "index_full", "src"], ["out"], axis=0, reduction="add"),
    ]
    return make_model(
        nodes,
        [("src", np.float32, ["E", 4]), ("index", np.int64, ["E"])],
        [("out", np.float32, None)],
        initializers={"out_shape": np.array([5, 4], np.int64)},
    )


def test_loop_whose_value_changes_shape_is_unrolled():
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    model = _scatter_model(
        [
            helper.make_node("Constant", [], ["one"], value=one),
            helper.make_node("Ceil", ["one"], ["ceil"]),
            helper.make_node("Cast", ["ceil"], ["M"], to=TensorProto.INT64),
        ]
    )
    with pytest.warns(LegacyModelWarning, match="Loop node 'broadcast_loop'.*change shape.*unrolled, 1 iteration"):
        session = sr.compile(sr.load(model))
    rng = np.random.default_rng(0)
    for edges in (6, 11):
        feeds = {"src": rng.standard_normal((edges, 4)).astype(np.float32), "index": rng.integers(0, 5, edges)}
        np.testing.assert_array_equal(session.infer(feeds["src"], feeds["index"]), ort_run(model, feeds)[0])


def test_loop_unrolled_until_its_condition_fails():
    """Trip count 5, but the body's condition ``i < 1`` stops it after two iterations: (E,) -> (E, 1) -> (E, 1, 1)."""
    one = helper.make_tensor("one", TensorProto.INT64, [], [1])
    condition = [helper.make_node("Constant", [], ["one"], value=one), helper.make_node("Less", ["i", "one"], ["cond_out"])]
    nodes = [helper.make_node("Loop", ["M", "", "index"], ["out"], body=_unsqueeze_body(condition), name="stops_early")]
    model = make_model(nodes, [("index", np.int64, ["E"])], [("out", np.int64, None)], initializers={"M": np.array(5)})
    with pytest.warns(LegacyModelWarning, match="Loop node 'stops_early'.*unrolled, 2 iteration"):
        session = sr.compile(sr.load(model))
    index = np.arange(7)
    expected = ort_run(model, {"index": index})[0]
    assert expected.shape == (7, 1, 1)
    np.testing.assert_array_equal(session.infer(index), expected)


def test_loop_whose_value_changes_shape_with_a_running_trip_count_is_refused():
    """The trip count from the input's size: the iterations are not known when the code is generated."""
    model = _scatter_model([helper.make_node("Size", ["index"], ["M"])])
    with pytest.raises(ShapeError, match="Loop node 'broadcast_loop': loop-carried value 0 .* must stay the same"):
        sr.load(model)


def _no_iteration_model(trip_count: int, keep_going: bool, scans: Sequence = ()) -> object:
    """A Loop of ``trip_count`` iterations (none when ``keep_going`` is false) over ``_unsqueeze_body(scans=scans)``."""
    flag = helper.make_tensor("flag", TensorProto.BOOL, [], [keep_going])
    nodes = [
        helper.make_node("Constant", [], ["keep_going"], value=flag),
        helper.make_node(
            "Loop", ["M", "keep_going", "index"], ["out", *(f"{n}s" for n, _ in scans)], body=_unsqueeze_body(scans=scans),
            name="idle_loop",
        ),
    ]
    return make_model(
        nodes,
        [("index", np.int64, ["E"])],
        [("out", np.int64, None), *((f"{n}s", np.int64, None) for n, _ in scans)],
        initializers={"M": np.array(trip_count)},
    )


@pytest.mark.parametrize("trip_count, keep_going", [(0, True), (3, False)])
def test_loop_that_runs_no_iteration_gives_its_initial_values(trip_count, keep_going):
    """torch_scatter's ``broadcast`` with nothing to unsqueeze: (E,) stays (E,) though the body would make it (E, 1);
    its scan output (the iteration number, ()) is empty, (0,)."""
    model = _no_iteration_model(trip_count, keep_going, scans=[("i", [])])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LegacyModelWarning)
        loaded = sr.load(model)
    assert [t.shape for t in loaded.outputs] == [("E",), (0,)]
    session = sr.compile(loaded)
    index = np.arange(7)
    expected = ort_run(model, {"index": index})
    assert [e.shape for e in expected] == [(7,), (0,)]
    for ours, theirs in zip(session.infer(index), expected):
        np.testing.assert_array_equal(ours, theirs)


def test_loop_that_runs_no_iteration_with_a_running_scan_shape_is_refused():
    """A scan output of the carried value's shape (E,) cannot be an empty weight: an ordinary Loop, whose value
    changes shape."""
    with pytest.raises(ShapeError, match="Loop node 'idle_loop': loop-carried value 0 .* must stay the same"):
        sr.load(_no_iteration_model(0, True, scans=[("src", ["E"])]))


def test_input_that_is_also_an_initializer_is_a_weight():
    weight = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    model = make_model(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="project")],
        [("x", np.float32, ["N", 4]), ("W", np.float32, [4, 3])],
        [("y", np.float32, None)],
        initializers={"W": weight},
    )
    with pytest.warns(LegacyModelWarning, match="graph input.*'W' also initializer.*by 'project'"):
        loaded = sr.load(model)
    assert [t.name for t in loaded.inputs] == ["x"]
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(sr.compile(loaded).infer(x), ort_run(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_gemm_of_opset_6_with_unlisted_weights():
    rng = np.random.default_rng(3)
    b, c = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "B", "C"], ["y"], transB=1, broadcast=1, name="dense")],
        "old",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(b, "B"), numpy_helper.from_array(c, "C")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)], ir_version=7)
    with pytest.warns(LegacyModelWarning, match="opset 6.*converted to opset 7"):
        session = sr.compile(sr.load(model))
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(session.infer(x), x @ b.T + c, rtol=1e-5, atol=1e-6)
