"""Attention as exported, MatMul(Q, K^T) -> scale -> Softmax -> MatMul(V), fused into one Attention node
(passes/fuse_attention.py).

Each graph is checked twice: the rewritten graph has the Attention node (or, where fusing would change the
meaning or the chain is read elsewhere, keeps its nodes), and its outputs match onnxruntime's on seeded inputs.
"""

from __future__ import annotations

import io
from typing import Optional, Union

import numpy as np
import onnx
import pytest
from conftest import make_model, random_array
from onnx import helper

import sofie_rdf as sr

F32 = np.float32
B, H, L, D = 2, 3, 7, 5


def _attention(scale_op: Optional[str] = "Mul", scale: float = D ** -0.5, bias: bool = False,
               outputs: tuple = ("y",), length: Union[int, str] = "n") -> onnx.ModelProto:
    """Q K^T (K transposed by a Transpose), scaled by ``scale_op`` (None: not scaled), plus a bias row when
    ``bias``, Softmax, then times V."""
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["p"])]
    inits, scores = {}, "p"
    if scale_op:
        nodes.append(helper.make_node(scale_op, ["p", "scale"], ["s"]))
        inits["scale"] = np.array(scale if scale_op == "Mul" else 1 / scale, F32)
        scores = "s"
    if bias:
        nodes.append(helper.make_node("Add", [scores, "bias"], ["z"]))
        inits["bias"] = random_array((length,), F32, 5)
        scores = "z"
    nodes += [helper.make_node("Softmax", [scores], ["w"], axis=-1), helper.make_node("MatMul", ["w", "v"], ["y"])]
    qkv = [(name, F32, ["b", H, length, D]) for name in ("q", "k", "v")]
    outs = [("y", F32, ["b", H, length, D])] + [(o, F32, None) for o in outputs if o != "y"]
    return make_model(nodes, qkv, outs, inits)


def _op_types(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in sr.load(model).planned().model.nodes]


def _feeds(length: int = L) -> dict[str, np.ndarray]:
    return {name: random_array((B, H, length, D), F32, seed) * 2 for seed, name in enumerate(("q", "k", "v"))}


@pytest.mark.parametrize("scale_op", ["Mul", "Div", None])
def test_exported_attention_becomes_one_node(check_model, scale_op):
    """The chain as torch exports it (scaled by Mul, or by Div as some exports write 1 / sqrt(d), or not at
    all), with the token count free: one Attention node, the same numbers at two lengths."""
    model = _attention(scale_op)
    assert _op_types(model) == ["Attention"]
    for length in (L, 12):
        check_model(model, _feeds(length), backend="native")


def test_torch_attention_module_fuses(check_model):
    """A multi-head self-attention block written out as ParT's is (benchmarks/hep.py), exported by torch."""
    torch = pytest.importorskip("torch")
    from benchmarks.hep import attention_module

    torch.manual_seed(0)
    module = attention_module(16, 4).eval()
    x = torch.randn(2, 9, 16)
    buffer = io.BytesIO()
    torch.onnx.export(module, (x,), buffer, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False,
                      dynamic_axes={"x": {0: "b", 1: "n"}})
    model = onnx.load_from_string(buffer.getvalue())
    assert "Attention" in _op_types(model)
    ours = sr.compile(sr.load(model), backend="native").infer(x.numpy())
    np.testing.assert_allclose(ours, module(x).detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["bias", "graph_output", "not_last_two_axes"])
def test_chains_that_must_stay(check_model, case):
    """Not fused: a bias added to the scores (a row masked everywhere is NaN through Softmax, zeros through
    Attention), scores that are a graph output, a Transpose that is not K^T."""
    if case == "bias":
        model = _attention(bias=True, length=L)
        feeds = _feeds()
    elif case == "graph_output":
        model = _attention(outputs=("y", "p"))
        feeds = _feeds()
    else:  # K^T of a (b, n, heads, d) tensor: heads and length swapped too
        model = make_model(
            [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 3, 1]), helper.make_node("MatMul", ["q", "kt"], ["p"]),
             helper.make_node("Softmax", ["p"], ["w"], axis=-1), helper.make_node("MatMul", ["w", "v"], ["y"])],
            [("q", F32, [B, H, L, D]), ("k", F32, [B, L, H, D]), ("v", F32, [B, H, L, D])],
            [("y", F32, [B, H, L, D])])
        feeds = {"q": random_array((B, H, L, D), F32, 1), "k": random_array((B, L, H, D), F32, 2),
                 "v": random_array((B, H, L, D), F32, 3)}
    assert "Attention" not in _op_types(model)
    assert "Softmax" in _op_types(model)
    check_model(model, feeds, backend="native")


def test_targets_without_an_attention_kernel_keep_the_chain():
    """Planning fuses only for a target that computes Attention (``Target.attention_op``): the CPU and CUDA
    targets do; a target without the kernel runs the chain node by node."""
    from sofie_rdf.targets.cuda import CudaTarget

    class NoAttentionKernel(CudaTarget):
        attention_op = False

        @property
        def key(self) -> str:
            return "cuda-without-attention"

    model = sr.load(_attention())
    assert [n.op_type for n in model.planned("native").model.nodes] == ["Attention"]
    assert [n.op_type for n in model.planned("cuda").model.nodes] == ["Attention"]
    kept = [n.op_type for n in model.planned(NoAttentionKernel()).model.nodes]
    assert "Attention" not in kept and "Softmax" in kept
