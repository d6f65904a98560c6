"""In-place element-wise operators in the memory plan (planning/memory.py).

An element-wise node writes over an input that dies at it, so a chain of them
runs in one arena slot; it must never write over a tensor still read later,
a caller's buffer (graph inputs and outputs), a weight or a view.  Each case
checks which tensors share a slot and compares the outputs with onnxruntime,
and that the caller's input arrays are left untouched.
"""

from __future__ import annotations

import numpy as np
import onnx
from conftest import make_model, random_array
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.ops import op_for
from sofie_rdf.passes import prepare
from sofie_rdf.passes.constant_folding import fold_constants
from sofie_rdf.planning import plan_memory

F32 = np.float32
SHAPE = [3, 4]


def _slots(model: onnx.ModelProto) -> dict[str, object]:
    """Tensor -> its arena slot (or its storage kind when not in the arena), planned without the fusions.

    The full pipeline fuses these chains into one loop (tests/test_fusion_elementwise.py); the planner's
    in-place rule still places every element-wise node the fusions leave, which is what is checked here.
    """
    graph = fold_constants(prepare(sr.load(model).ir))
    plan = plan_memory(graph, [op_for(n) for n in graph.nodes], [()] * len(graph.nodes))
    return {n: s.slot if s.kind == "arena" else s.kind for n, s in plan.storage.items()}


def _run(check_model, model: onnx.ModelProto) -> None:
    """Compare with onnxruntime, and check the caller's input was only read."""
    x = random_array(SHAPE, F32, 1)
    before = x.copy()
    check_model(model, {"x": x})
    np.testing.assert_array_equal(x, before)


def test_chain_runs_in_one_slot(check_model):
    nodes = [helper.make_node("Neg", ["x"], ["a"]), helper.make_node("Exp", ["a"], ["b"]),
             helper.make_node("Sigmoid", ["b"], ["c"]), helper.make_node("Mul", ["c", "c2"], ["d"]),
             helper.make_node("Tanh", ["d"], ["y"])]
    model = make_model(nodes, [("x", F32, SHAPE)], [("y", F32, SHAPE)], {"c2": np.full(SHAPE, 0.5, F32)})
    slots = _slots(model)
    assert slots["x"] == "input" and slots["y"] == "output"
    assert slots["a"] == slots["b"] == slots["c"] == slots["d"]
    _run(check_model, model)


def test_tensors_still_read_keep_their_slot(check_model):
    """a is read after b is computed, and Sum(a, b, a) reads a as its third input: neither may be overwritten."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
             helper.make_node("Sum", ["b", "a", "a"], ["s"]), helper.make_node("Abs", ["s"], ["y"])]
    model = make_model(nodes, [("x", F32, SHAPE)], [("y", F32, SHAPE)])
    slots = _slots(model)
    assert slots["a"] != slots["b"] and slots["s"] == slots["b"]
    _run(check_model, model)


def test_graph_outputs_views_and_broadcasts_are_not_overwritten(check_model):
    """r is a graph output, v a view (Reshape) of it, and the Add's first operand is smaller than its result."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "shape"], ["v"]),
             helper.make_node("Neg", ["v"], ["n"]), helper.make_node("Sigmoid", ["z"], ["row"]),
             helper.make_node("Add", ["row", "n"], ["s"]), helper.make_node("Abs", ["s"], ["y"])]
    inits = {"shape": np.array([4, 3], np.int64)}
    model = make_model(nodes, [("x", F32, SHAPE), ("z", F32, [1, 3])], [("y", F32, [4, 3]), ("r", F32, SHAPE)], inits)
    slots = _slots(model)
    assert (slots["r"], slots["v"], slots["y"]) == ("output", "view", "output")
    assert isinstance(slots["n"], int) and slots["s"] == slots["n"] != slots["row"]
    feeds = {"x": random_array(SHAPE, F32, 1), "z": random_array([1, 3], F32, 2)}
    before = {k: v.copy() for k, v in feeds.items()}
    check_model(model, feeds)
    for k in feeds:
        np.testing.assert_array_equal(feeds[k], before[k])
