"""Graph fusions (passes/fusion.py): MatMul + Add into Gemm (a MatMul by a constant alone too), activations into the
Gemm before them.

Each model is checked twice: the rewritten graph has (or, where the rewrite
would change the meaning, has not) the fused nodes, and its outputs match
onnxruntime's on seeded inputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import make_model, random_array
from onnx import helper

import sofie_rdf as sr

F32 = np.float32
M, K, N = 3, 5, 4


def _op_types(model: onnx.ModelProto) -> list[str]:
    planned = sr.load(model).planned().model
    return [n.op_type for n in planned.nodes]


def _inits(seed: int = 0) -> dict[str, np.ndarray]:
    return {"w": random_array((K, N), F32, seed + 1), "bias": random_array((N,), F32, seed + 2),
            "w2": random_array((N, N), F32, seed + 3), "row": random_array((1, N), F32, seed + 4)}


def _check(check_model, model: onnx.ModelProto, expected: list[str], shape: tuple = (M, K)) -> None:
    assert _op_types(model) == expected
    check_model(model, {"x": random_array(shape, F32, 9)})


def test_matmul_add_relu_becomes_one_fused_gemm(check_model):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "bias"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    model = make_model(nodes, [("x", F32, ["n", K])], [("y", F32, ["n", N])], _inits())
    _check(check_model, model, ["FusedGemm"])


def test_bias_first_and_row_shaped_bias(check_model):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["row", "p"], ["y"])]
    model = make_model(nodes, [("x", F32, [M, K])], [("y", F32, [M, N])], _inits())
    _check(check_model, model, ["Gemm"])


def test_interleaved_branches_and_sum_read_twice(check_model):
    """Two MatMul+Add pairs listed interleaved; each sum is a graph output and read by a later node."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p1"]), helper.make_node("MatMul", ["x", "w"], ["p2"]),
             helper.make_node("Add", ["p2", "row"], ["s2"]), helper.make_node("Add", ["p1", "bias"], ["s1"]),
             helper.make_node("MatMul", ["s1", "w2"], ["q"]), helper.make_node("Add", ["q", "bias"], ["t"]),
             helper.make_node("Mul", ["t", "s2"], ["y"])]
    outputs = [("y", F32, [M, N]), ("s1", F32, [M, N]), ("s2", F32, [M, N])]
    model = make_model(nodes, [("x", F32, [M, K])], outputs, _inits())
    _check(check_model, model, ["Gemm", "Gemm", "Gemm", "Mul"])


@pytest.mark.parametrize("case", ["product_is_output", "product_read_twice", "full_bias", "two_open_dims"])
def test_pairs_that_must_stay_apart(check_model, case):
    """The rewrite would drop a tensor someone reads, or change the broadcast: the graph is left as it is."""
    inits = _inits()
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "bias"], ["y"])]
    outputs, shape = [("y", F32, [M, N])], (M, K)
    if case == "product_is_output":
        outputs.append(("p", F32, [M, N]))
    elif case == "product_read_twice":
        nodes.append(helper.make_node("Neg", ["p"], ["z"]))
        outputs.append(("z", F32, [M, N]))
    elif case == "full_bias":
        inits["bias"] = random_array((M, N), F32, 5)
    model = make_model(nodes, [("x", F32, list(shape))], outputs, inits)
    if case == "two_open_dims":  # the Reshapes to rows and back could spell one open dim only (as -1)
        model = make_model(nodes, [("x", F32, ["b", "n", K])], [("y", F32, ["b", "n", N])], inits)
        shape = (2, M, K)
    product = "MatMul" if case == "two_open_dims" else "Gemm"  # the product alone is still a Gemm (no C)
    expected = [product, "Add"] + (["Neg"] if case == "product_read_twice" else [])
    _check(check_model, model, expected, shape)


@pytest.mark.parametrize("rank", [2, 3])
def test_a_product_without_bias_becomes_a_gemm_and_takes_its_activation(check_model, rank):
    """Linear(bias=False) and attention's projections: MatMul by a constant, then an activation."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Tanh", ["p"], ["y"])]
    shape = ["n", K] if rank == 2 else ["n", M, K]
    model = make_model(nodes, [("x", F32, shape)], [("y", F32, shape[:-1] + [N])], _inits())
    expected = ["FusedGemm"] if rank == 2 else ["Reshape", "FusedGemm", "Reshape"]
    _check(check_model, model, expected, (2, K) if rank == 2 else (2, M, K))


@pytest.mark.parametrize("dims", [[2, M], ["events", M], [2, "particles", 3]], ids=["static", "open", "rank4"])
def test_batched_matmul_add_relu_is_a_gemm_of_rows(check_model, dims):
    """Linear + ReLU on (events, particles, features) as torch exports it: the product of all leading dims'
    rows as one FusedGemm between two Reshapes (views), bias and activation inside."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["bias", "p"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    model = make_model(nodes, [("x", F32, dims + [K])], [("y", F32, dims + [N])], _inits())
    shape = tuple(d if isinstance(d, int) else 4 for d in dims) + (K,)
    _check(check_model, model, ["Reshape", "FusedGemm", "Reshape"], shape)


@pytest.mark.parametrize("act, attrs", [("Sigmoid", {}), ("LeakyRelu", {"alpha": 0.1}), ("Tanh", {})])
def test_gemm_activation_fused(check_model, act, attrs):
    inits = {"w": random_array((N, K), F32, 1), "bias": random_array((N,), F32, 2)}
    nodes = [helper.make_node("Gemm", ["x", "w", "bias"], ["g"], transB=1), helper.make_node(act, ["g"], ["y"], **attrs)]
    model = make_model(nodes, [("x", F32, [M, K])], [("y", F32, [M, N])], inits)
    _check(check_model, model, ["FusedGemm"])
