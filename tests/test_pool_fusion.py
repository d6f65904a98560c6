"""A sum or mean over a product's rows fused into the product (passes/pool_fusion.py, gemm_panels' RowPool).

Each model is checked twice: the graph planned for AVX-512 code has one pooled FusedGemm where the rewrite keeps
the meaning and the reduction where it would not, and the outputs of the native build (register tiles pooling as
they go; tests/test_isa.py builds them for AVX2 too) and of the JIT build (the product, then reduce_sum) match
onnxruntime's or torch's on seeded inputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from conftest import ATOL, RTOL, check_runs, make_model, ort_run, random_array
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.targets.cpu import CpuTarget

F32 = np.float32


AVX512 = CpuTarget(isa="avx512")


def planned(model, target: CpuTarget = AVX512) -> list:
    model = model if isinstance(model, sr.Model) else sr.load(model)
    return model.planned(target).model.nodes


def pooled(nodes: list) -> list:
    return [n for n in nodes if n.op_type == "FusedGemm" and n.attrs.get("pool_rows")]


def per_particle(shape: tuple, features: int, reduce: str = "ReduceSum", axes: tuple = (1,), keepdims: int = 0,
                 act: str = "Relu", extra_output: bool = False) -> onnx.ModelProto:
    """MatMul + bias (+ activation) on the last axis of ``shape``, then ``reduce`` over ``axes``."""
    rng = np.random.default_rng(features)
    inits = {"w": rng.standard_normal((shape[-1], features)).astype(F32),
             "b": rng.standard_normal(features).astype(F32), "axes": np.array(axes, np.int64)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["h"])]
    last = "h"
    if act:
        nodes.append(helper.make_node(act, ["h"], ["a"]))
        last = "a"
    nodes.append(helper.make_node(reduce, [last, "axes"], ["y"], keepdims=keepdims))
    outputs = [("y", F32, None)] + ([(last, F32, None)] if extra_output else [])
    return make_model(nodes, [("x", F32, shape)], outputs, inits, opset=18)


def check(model: onnx.ModelProto, x: np.ndarray) -> None:
    """Both builds against onnxruntime, the absolute tolerance scaled by the outputs' largest value (sums)."""
    scale = max(1.0, *(float(np.abs(e).max()) for e in ort_run(model, {"x": x})))
    for backend in ("native", "jit"):
        check_runs(model, [{"x": x}], backend=backend, rtol=RTOL, atol=ATOL * scale)


@pytest.mark.parametrize("shape, features, reduce, axes, keepdims, act", [
    ((4, 64, 8), 64, "ReduceSum", (1,), 0, "Relu"),        # Deep Sets: runs of 64 rows, whole tiles
    ((3, 37, 12), 40, "ReduceMean", (1,), 1, "Relu"),      # runs cut by tiles; a partial last panel; keepdims
    ((2, 5, 7, 9), 48, "ReduceMean", (2,), 0, "Sigmoid"),  # EdgeConv: the mean over 7 neighbours
    ((2, 3, 4, 6), 32, "ReduceSum", (1, 2), 0, ""),        # two axes (12 rows a run), no activation
    ((50, 10), 16, "ReduceSum", (0,), 0, "Tanh"),          # a matrix: all rows into one
    ((1, 10, 5), 24, "ReduceSum", (1,), 0, "Relu"),        # 10 rows: no panels, the product then reduce_sum
    ((5, 50, 20), 64, "ReduceSum", (1,), 0, "Relu"),       # runs of 48 rows across runs of 50; a last run of 58
])
def test_pooled_products_match(shape, features, reduce, axes, keepdims, act):
    model = per_particle(shape, features, reduce, axes, keepdims, act)
    nodes = planned(model)
    (fused,) = pooled(nodes)
    assert fused.attrs["pool"] == ("mean" if reduce == "ReduceMean" else "sum")
    assert not [n for n in nodes if n.op_type.startswith("Reduce")]
    check(model, random_array(shape, F32, seed=len(shape)) * 3)


@pytest.mark.parametrize("build", [
    lambda: per_particle((4, 16, 8), 32, axes=(2,)),                   # the features: not rows
    lambda: per_particle((4, 16, 8), 32, axes=(0,)),                   # the batch, features kept: rows not in runs
    lambda: per_particle((4, 16, 8), 32, axes=(0, 1, 2)),              # everything
    lambda: per_particle((4, 16, 8), 32, reduce="ReduceMax"),          # not a sum
    lambda: per_particle((4, 16, 8), 32, extra_output=True),           # the rows are an output too
])
def test_other_reductions_stay(build):
    model = build()
    nodes = planned(model)
    assert not pooled(nodes)
    assert [n for n in nodes if n.op_type.startswith("Reduce")]
    check(model, random_array((4, 16, 8), F32, seed=3))


def test_deep_sets_from_torch():
    """A Deep Sets network as torch exports it: the last per-particle layer pools, the numbers are torch's."""
    torch.manual_seed(0)
    phi = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU())
    rho = torch.nn.Linear(32, 3)

    class DeepSets(torch.nn.Module):
        def forward(self, x):
            return rho(phi(x).sum(dim=1))

    net = DeepSets().eval()
    x = torch.randn(16, 30, 6)
    model = sr.from_pytorch(net, x)
    assert len(pooled(planned(model))) == 1
    with torch.no_grad():
        expected = net(x).numpy()
    for backend in ("native", "jit"):
        np.testing.assert_allclose(sr.compile(model, backend=backend).infer(x.numpy()), expected, rtol=RTOL, atol=1e-4)


def test_targets_without_the_epilogue_keep_the_reduction():
    """The CUDA target (rewrite(row_pooling=False)) keeps the reduction as a node of its own; CPU code of every
    instruction set pools (without register tiles: the product, then reduce_sum)."""
    from sofie_rdf.passes import prepare, rewrite

    model = sr.load(per_particle((4, 64, 8), 64))
    nodes = rewrite(prepare(model.ir), row_pooling=False).nodes
    assert not pooled(nodes) and [n for n in nodes if n.op_type == "ReduceSum"]
    for target in (CpuTarget(isa="avx2"), CpuTarget(isa="generic"), CpuTarget(compiler="cling")):
        assert pooled(planned(model, target))
