"""Element-wise chains fused into one loop (passes/elementwise_fusion.py, ops/fused.py).

Each model is checked twice: the planned graph has the fused node where the
rewrite keeps the meaning (and not where it would not), and its outputs match
onnxruntime's on seeded inputs (check_model's tolerances).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from conftest import base_variant, make_model, random_array
from onnx import helper

import sofie_rdf as sr

F32 = np.float32
SHAPE = ["n", 6, 5]


def planned(model: onnx.ModelProto) -> list:
    return sr.load(model).planned().model.nodes


def steps(node) -> list[str]:
    return [s["op"] for s in json.loads(node.attrs["steps"])]


def consts(**values: float) -> dict[str, np.ndarray]:
    return {k: np.array(v, F32) for k, v in values.items()}


def test_erf_chain_reading_x_twice_is_one_loop(check_model):
    """x * 0.5 * (1 + erf(x / 2)): GELU's shape with another constant (GELU itself becomes one Gelu node:
    test_gelu_fusion.py), x read twice."""
    nodes = [helper.make_node("Div", ["x", "two"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["one", "e"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["y"])]
    model = make_model(nodes, [("x", F32, SHAPE)], [("y", F32, SHAPE)], consts(two=2.0, one=1.0, half=0.5))
    (node,) = planned(model)
    assert node.op_type == "FusedElementwise" and steps(node) == ["Div", "Erf", "Add", "Mul", "Mul"]
    assert node.inputs == ["x", "two", "one", "x", "half"]
    check_model(model, {"x": random_array((3, 6, 5), F32, 1)})


def test_swish_and_operand_tensors(check_model):
    """x * sigmoid(x) (the chain continues through Mul's second operand), then - z (a full-shape input)."""
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["m"]),
             helper.make_node("Sub", ["z", "m"], ["d"]), helper.make_node("Tanh", ["d"], ["y"])]
    model = make_model(nodes, [("x", F32, SHAPE), ("z", F32, SHAPE)], [("y", F32, SHAPE)])
    (node,) = planned(model)
    assert steps(node) == ["Sigmoid", "Mul", "Sub", "Tanh"] and node.inputs == ["x", "x", "z"]
    check_model(model, {"x": random_array((4, 6, 5), F32, 2), "z": random_array((4, 6, 5), F32, 3)})


def test_chains_stop_at_shared_tensors_outputs_and_broadcasts(check_model):
    """An intermediate read twice or that is a graph output ends a chain; a broadcast row operand is not fused."""
    row = random_array((1, 1, 5), F32, 4)
    nodes = [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Neg", ["e"], ["n1"]),  # chain 1: e read twice
             helper.make_node("Abs", ["e"], ["a"]), helper.make_node("Add", ["n1", "a"], ["s"]),
             helper.make_node("Sqrt", ["s"], ["out1"]),  # out1: graph output and read on
             helper.make_node("Relu", ["out1"], ["r"]), helper.make_node("Add", ["r", "row"], ["y"])]
    outputs = [("y", F32, SHAPE), ("out1", F32, SHAPE)]
    model = make_model(nodes, [("x", F32, SHAPE)], outputs, {"row": row})
    kinds = [(n.op_type, steps(n) if n.op_type == "FusedElementwise" else None) for n in planned(model)]
    assert kinds == [("Exp", None), ("Abs", None), ("FusedElementwise", ["Neg", "Add", "Sqrt"]), ("Relu", None),
                     ("Add", None)]
    check_model(model, {"x": random_array((2, 6, 5), F32, 5)})


def test_attributes_and_interleaved_order(check_model):
    """Steps keep their attributes (LeakyRelu alpha, Elu alpha); two chains written interleaved stay apart."""
    nodes = [helper.make_node("LeakyRelu", ["x"], ["l"], alpha=0.3), helper.make_node("Neg", ["z"], ["nz"]),
             helper.make_node("Elu", ["l"], ["el"], alpha=0.7), helper.make_node("Exp", ["nz"], ["ez"]),
             helper.make_node("Mul", ["el", "ez"], ["y"])]
    model = make_model(nodes, [("x", F32, SHAPE), ("z", F32, SHAPE)], [("y", F32, SHAPE)])
    fused = [n for n in planned(model) if n.op_type == "FusedElementwise"]
    assert sorted(steps(n) for n in fused) == [["LeakyRelu", "Elu", "Mul"], ["Neg", "Exp"]]
    check_model(model, {"x": random_array((3, 6, 5), F32, 6), "z": random_array((3, 6, 5), F32, 7)})


def test_native_and_in_place(check_model):
    """The fused loop compiles natively too and takes its input's arena slot."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Sigmoid", ["p"], ["s"]),
             helper.make_node("Mul", ["p", "s"], ["q"]), helper.make_node("Mul", ["q", "half"], ["h"]),
             helper.make_node("MatMul", ["h", "w2"], ["y"])]
    inits = {"w": random_array((5, 8), F32, 8), "w2": random_array((8, 3), F32, 9), "half": np.array(0.5, F32)}
    model = make_model(nodes, [("x", F32, ["n", 5])], [("y", F32, ["n", 3])], inits)
    sess = sr.compile(sr.load(model), backend="native")
    assert "FusedElementwise" in sess.code.header
    check_model(model, {"x": random_array((7, 5), F32, 10)}, backend="native")


def test_constant_exponents_of_each_step(check_model):
    """Pow by 2, 3 and 0.5 is written without std::pow, each step with its own exponent (the fused node's
    input 1 is the scalar 2 here, which must not be taken for the later steps' exponents)."""
    nodes = [helper.make_node("Pow", ["x", "two"], ["a"]), helper.make_node("Add", ["a", "x"], ["b"]),
             helper.make_node("Pow", ["b", "three"], ["c"]), helper.make_node("Abs", ["c"], ["d"]),
             helper.make_node("Pow", ["d", "half"], ["e"]), helper.make_node("Pow", ["e", "seven"], ["y"])]
    model = make_model(nodes, [("x", F32, SHAPE)], [("y", F32, SHAPE)],
                       consts(two=2.0, three=3.0, half=0.5, seven=0.7))
    fused = [n for n in planned(model) if n.op_type == "FusedElementwise"]
    assert len(fused) == 1 and steps(fused[0]).count("Pow") == 4
    header = base_variant(sr.compile(sr.load(model), backend="native").code.header)
    assert "a * a * a" in header and "std::sqrt(a)" in header and header.count("std::pow(a, b)") == 1
    check_model(model, {"x": random_array((4, 6, 5), F32, 11)}, rtol=1e-5, atol=1e-6, backend="native")
