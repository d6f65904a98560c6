"""A 2 x 2 MaxPool fused into the convolution before it (passes/conv_pool_fusion.py, winograd_pool).

Each model is checked twice: the graph planned for native AVX-512 and AVX2 code has one pooled FusedConv where
conv_winograd_tiles runs the layer and the rewrite keeps the meaning, the MaxPool where either does not; the
outputs of the native build (pooling as the output tiles are stored) and of the JIT build (no register tiles:
the two nodes) match onnxruntime's on seeded inputs.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import onnx
import pytest
import torch
from conftest import ATOL, RTOL, check_runs, make_model, ort_run, random_array
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.ops import op_for
from sofie_rdf.targets.cpu import CpuTarget

F32 = np.float32
TARGETS = (CpuTarget(isa="avx512"), CpuTarget(isa="avx2"))


def conv_pool(channels: int, features: int, image: tuple, act: Optional[str] = "Relu", batch: int = 2,
              extra_output: bool = False, **pool) -> onnx.ModelProto:
    """3 x 3 Conv (pads 1) with bias, ``act``, then MaxPool (2 x 2, stride 2 unless ``pool`` says otherwise)."""
    rng = np.random.default_rng(channels * 100 + features)
    w = rng.standard_normal((features, channels, 3, 3)) / np.sqrt(9 * channels)
    inits = {"w": w.astype(F32), "b": rng.standard_normal(features).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])]
    last = "c"
    if act:
        nodes.append(helper.make_node(act, ["c"], ["a"]))
        last = "a"
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2], **pool}
    nodes.append(helper.make_node("MaxPool", [last], ["y"], **attrs))
    outputs = [("y", F32, None)] + ([(last, F32, None)] if extra_output else [])
    return make_model(nodes, [("x", F32, (batch, channels) + image)], outputs, inits)


def pooled(model: onnx.ModelProto, target: CpuTarget) -> list:
    nodes = sr.load(model).planned(target).model.nodes
    return [n for n in nodes if n.op_type == "FusedConv" and n.attrs.get("pool_window")]


def pools(model: onnx.ModelProto, target: CpuTarget) -> list:
    return [n for n in sr.load(model).planned(target).model.nodes if n.op_type == "MaxPool"]


def check(model: onnx.ModelProto) -> None:
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = random_array(tuple(shape), F32, seed=len(shape)) * 3
    for backend in ("native", "jit"):  # F(4, 3) rounds its products to about 1e-5 of the output's scale
        check_runs(model, [{"x": x}], backend=backend, rtol=RTOL, atol=1e-4)


@pytest.mark.parametrize("channels, features, image, act", [
    (16, 16, (32, 32), "Relu"),   # F(4, 3), rows of 8 tiles: 16 pooled values, two phases a row
    (16, 32, (16, 16), "Relu"),   # F(4, 3) on rows of 4 tiles (stored without the column past them)
    (24, 20, (24, 24), "Relu"),   # rows of 6 tiles: through the line
    (32, 32, (8, 8), "Relu"),     # F(2, 3): one pooled value a tile
    (16, 18, (17, 19), None),     # odd sides: the last row and column dropped; no activation (a bare Conv)
    (16, 24, (24, 16), "Sigmoid"),  # another activation, applied before the maximum
])
def test_pooled_convolutions_match(channels, features, image, act):
    model = conv_pool(channels, features, image, act)
    for target in TARGETS:
        (fused,) = pooled(model, target)
        assert fused.attrs["pool_window"] == 2 and not pools(model, target)
    check(model)


@pytest.mark.parametrize("build", [
    lambda: conv_pool(16, 16, (16, 16), kernel_shape=[3, 3], strides=[2, 2]),     # 3 x 3 windows
    lambda: conv_pool(16, 16, (16, 16), strides=[1, 1]),                          # overlapping windows
    lambda: conv_pool(16, 16, (16, 16), pads=[1, 1, 1, 1]),                       # padded
    lambda: conv_pool(16, 16, (17, 17), ceil_mode=1),                             # a last window cut short
    lambda: conv_pool(16, 16, (16, 16), extra_output=True),                       # the activation also an output
    lambda: conv_pool(2, 16, (16, 16)),                                           # too few channels for Winograd
])
def test_other_pools_stay(build):
    model = build()
    for target in TARGETS:
        assert not pooled(model, target) and pools(model, target)
    check(model)


def test_targets_without_register_tiles_keep_the_pool():
    """Generic x86-64 code, Cling's and the CUDA target (no Target.pools_conv) keep the MaxPool a node."""
    from sofie_rdf.passes import prepare, rewrite

    model = conv_pool(16, 16, (16, 16))
    for target in (CpuTarget(isa="generic"), CpuTarget(compiler="cling")):
        assert not pooled(model, target) and pools(model, target)
    assert [n for n in rewrite(prepare(sr.load(model).ir)).nodes if n.op_type == "MaxPool"]


def test_fused_node_computes_the_pair():
    """The pooled FusedConv's own meaning (ops/fused.py, as constant folding would evaluate it) is the pair's."""
    model = conv_pool(16, 16, (17, 19), "Relu", batch=1)
    (fused,) = pooled(model, TARGETS[0])
    x = random_array((1, 16, 17, 19), F32, seed=5)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    (y,) = op_for(fused).evaluate([x, inits["w"], inits["b"]])
    np.testing.assert_allclose(y, ort_run(model, {"x": x})[0], rtol=RTOL, atol=ATOL)


def test_calorimeter_cnn_from_torch():
    """Conv, BatchNorm, ReLU, MaxPool twice as torch exports them: both pools fuse, the numbers are torch's."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)).eval()
    x = torch.randn(3, 16, 32, 32)
    model = sr.from_pytorch(net, x)
    assert len([n for n in model.planned(TARGETS[0]).model.nodes if n.attrs.get("pool_window")]) == 2
    with torch.no_grad():
        expected = net(x).numpy()
    for backend in ("native", "jit"):
        np.testing.assert_allclose(sr.compile(model, backend=backend).infer(x.numpy()), expected, rtol=RTOL, atol=1e-4)
