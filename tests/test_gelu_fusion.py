"""GELU as exported into one Gelu node (passes/gelu_fusion.py), fused into the Gemm before it (passes/fusion.py).

Each model is checked twice: the planned graph has the Gelu (or FusedGemm with activation Gelu) where the
rewrite keeps the meaning and the element-wise chain where it would not, and its outputs match onnxruntime's
(or torch's) on seeded inputs.  Inputs are scaled by 3 so that the tails of erf and tanh are reached.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import make_model, random_array
from onnx import helper

import sofie_rdf as sr

F32 = np.float32
SHAPE = ["n", 6, 5]
SQRT2, HALF, ONE = float(np.float32(np.sqrt(2))), 0.5, 1.0
TANH_SCALE, CUBIC = float(np.float32(np.sqrt(2 / np.pi))), 0.044715


def planned(model: onnx.ModelProto) -> list:
    return sr.load(model).planned().model.nodes


def consts(**values: float) -> dict[str, np.ndarray]:
    return {k: np.array(v, F32) for k, v in values.items()}


def erf_gelu(tail: str = "torch", scale: str = "div") -> tuple[list, dict]:
    """GELU's exact form on x: x / sqrt 2 (or x * (1 / sqrt 2)), Erf, + 1, then the products by x and 0.5 as
    torch writes them ((x * a) * 0.5), as 0.5 first ((0.5 * a) * x), or on 0.5 x ((0.5 x) * a)."""
    head = (helper.make_node("Div", ["x", "s"], ["d"]) if scale == "div" else helper.make_node("Mul", ["r", "x"], ["d"]))
    nodes = [head, helper.make_node("Erf", ["d"], ["e"]), helper.make_node("Add", ["e", "one"], ["a"])]
    if tail == "torch":
        nodes += [helper.make_node("Mul", ["x", "a"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
    elif tail == "half_first":
        nodes += [helper.make_node("Mul", ["half", "a"], ["m"]), helper.make_node("Mul", ["m", "x"], ["y"])]
    else:
        nodes += [helper.make_node("Mul", ["x", "half"], ["h"]), helper.make_node("Mul", ["h", "a"], ["y"])]
    return nodes, consts(s=SQRT2, r=1 / SQRT2, one=ONE, half=HALF)


def tanh_gelu(cube: str = "muls") -> tuple[list, dict]:
    """GELU's tanh approximation as torch exports it (x * (x * x) or Pow(x, 3))."""
    if cube == "muls":
        nodes = [helper.make_node("Mul", ["x", "x"], ["sq"]), helper.make_node("Mul", ["x", "sq"], ["cu"])]
    else:
        nodes = [helper.make_node("Pow", ["x", "three"], ["cu"])]
    nodes += [helper.make_node("Mul", ["c", "cu"], ["k"]), helper.make_node("Add", ["x", "k"], ["u"]),
              helper.make_node("Mul", ["t", "u"], ["v"]), helper.make_node("Tanh", ["v"], ["th"]),
              helper.make_node("Add", ["one", "th"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
              helper.make_node("Mul", ["half", "m"], ["y"])]
    return nodes, consts(c=CUBIC, t=TANH_SCALE, one=ONE, half=HALF, three=3.0)


@pytest.mark.parametrize("build, approximate", [
    (lambda: erf_gelu(), "none"), (lambda: erf_gelu("half_first"), "none"), (lambda: erf_gelu("half_x"), "none"),
    (lambda: erf_gelu(scale="mul"), "none"), (lambda: tanh_gelu(), "tanh"), (lambda: tanh_gelu("pow"), "tanh")])
def test_exported_forms_become_one_gelu(check_model, build, approximate):
    nodes, inits = build()
    model = make_model(nodes, [("x", F32, SHAPE)], [("y", F32, SHAPE)], inits)
    (node,) = planned(model)
    assert node.op_type == "Gelu" and node.attrs["approximate"] == approximate and node.inputs == ["x"]
    check_model(model, {"x": 3 * random_array((3, 6, 5), F32, 1)}, backend="native")


def test_linear_gelu_from_torch_is_one_fused_gemm(tmp_path):
    """nn.Linear + nn.GELU as torch exports them (opset 17, both forms), on tokens x features: one FusedGemm
    whose activation is Gelu (between the views of the rows), against torch."""
    torch = pytest.importorskip("torch")
    from torch import nn

    for approximate in ("none", "tanh"):
        torch.manual_seed(0)
        module = nn.Sequential(nn.Linear(24, 40), nn.GELU(approximate=approximate)).eval()
        x = 3 * torch.randn(2, 7, 24)
        path = tmp_path / f"gelu_{approximate}.onnx"
        torch.onnx.export(module, x, str(path), opset_version=17, dynamo=False)
        ops = [(n.op_type, n.attrs.get("activation"), n.attrs.get("activation_approximate")) for n in planned(onnx.load(path))]
        assert ("FusedGemm", "Gelu", approximate) in ops and not any(op == "Erf" or op == "Tanh" for op, *_ in ops)
        with torch.no_grad():
            expected = module(x).numpy()
        ours = sr.compile(str(path), backend="native")(x.numpy())
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change", ["constant", "shared", "output", "two_x", "broadcast"])
def test_chains_that_are_not_gelu_stay(check_model, change):
    """Not GELU, or not only GELU: another constant, an intermediate read elsewhere or a graph output, both
    products by x (x^2 (1 + erf)), a constant that broadcasts the shape: no Gelu node."""
    nodes, inits = erf_gelu()
    outputs = [("y", F32, None)]
    if change == "constant":
        inits["half"] = np.array(0.25, F32)
    elif change == "shared":
        nodes.append(helper.make_node("Neg", ["e"], ["z"]))
        outputs.append(("z", F32, None))
    elif change == "output":
        outputs.append(("a", F32, None))
    elif change == "two_x":
        nodes[-1] = helper.make_node("Mul", ["m", "x"], ["y"])
    else:
        inits["half"] = np.full((1, 1, 1, 1), 0.5, F32)
    model = make_model(nodes, [("x", F32, SHAPE)], outputs, inits)
    assert all(n.op_type != "Gelu" for n in planned(model))
    check_model(model, {"x": 3 * random_array((3, 6, 5), F32, 2)})
