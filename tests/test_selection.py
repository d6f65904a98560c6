"""Products by constant selection matrices (passes/selection.py) as gathers and sums of columns, against onnxruntime:
an interaction network as JEDI-net and the Higgs tagger CMS publishes write one (receiver and sender 0/1 matrices,
MatMul over a 3-D input and Gemm over its rows), infinities and NaNs as the product makes them, and what is not
taken."""

from __future__ import annotations

import io
import itertools
from collections import Counter

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run
from onnx import helper

import sofie_rdf as sr

torch = pytest.importorskip("torch")
RTOL, ATOL = 1e-5, 1e-6


class _InteractionNet(torch.nn.Module):
    """Particles (N, C, P): edges from the receiver's and sender's features (x Rr, x Rs), an edge network, the
    edges summed per receiver (E Rr^T), a node network, a classifier.  ``rows`` writes the products as the Higgs
    tagger's file has them: Gemm over (N * C, P) rows."""

    def __init__(self, particles: int = 10, channels: int = 4, rows: bool = False):
        super().__init__()
        pairs = list(itertools.permutations(range(particles), 2))
        rr, rs = torch.zeros(particles, len(pairs)), torch.zeros(particles, len(pairs))
        for e, (i, j) in enumerate(pairs):
            rr[i, e], rs[j, e] = 1.0, 1.0
        self.register_buffer("rr", rr)
        self.register_buffer("rs", rs)
        self.edge = torch.nn.Sequential(torch.nn.Linear(2 * channels, 8), torch.nn.ReLU(), torch.nn.Linear(8, 5))
        self.node = torch.nn.Sequential(torch.nn.Linear(channels + 5, 6), torch.nn.ReLU())
        self.out = torch.nn.Linear(6, 2)
        self.rows = rows

    def product(self, x, m):
        if not self.rows:
            return torch.matmul(x, m)
        n, c, p = x.shape
        return torch.mm(x.reshape(-1, p), m).reshape(n, c, -1)

    def forward(self, x):
        edges = torch.cat([self.product(x, self.rr), self.product(x, self.rs)], dim=1)  # (N, 2C, E)
        e = self.edge(edges.transpose(1, 2)).transpose(1, 2)  # (N, 5, E)
        received = self.product(e, self.rr.t().contiguous())  # (N, 5, P)
        h = self.node(torch.cat([x, received], dim=1).transpose(1, 2))  # (N, P, 6)
        return torch.softmax(self.out(h.sum(dim=1)), dim=-1)


def _onnx(rows: bool) -> onnx.ModelProto:
    torch.manual_seed(0)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(_InteractionNet(rows=rows).eval(), (torch.randn(2, 4, 10),), buffer, dynamo=False,
                          opset_version=13, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("rows", [False, True], ids=["matmul", "gemm_rows"])
@pytest.mark.parametrize("backend", ["native", "jit"])
def test_interaction_network_matches_onnxruntime(rows, backend):
    model = _onnx(rows)
    ops = Counter(n.op_type for n in sr.load(model).planned(backend).model.nodes)
    assert ops["SelectionGemm"] == 3 and not ops["MatMul"]  # two gathers and a sum of columns
    sess = sr.compile(sr.load(model), backend=backend)
    for n in (1, 3, 17):
        x = np.random.default_rng(n).standard_normal((n, 4, 10)).astype(np.float32)
        np.testing.assert_allclose(sess.infer(x), ort_run(model, {"x": x})[0], rtol=RTOL, atol=ATOL)


def _selection_model(b: np.ndarray) -> onnx.ModelProto:
    return make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", np.float32, ["N", b.shape[0]])],
                      [("y", np.float32, ["N", b.shape[1]])], {"b": b})


def _gather_and_sum_matrices() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    gather = np.zeros((9, 12), np.float32)
    gather[rng.integers(0, 9, 12), np.arange(12)] = rng.choice([1.0, -2.5], 12)
    target = rng.integers(0, 9, 12)
    target[target == 4], target[3] = 5, 4  # column 4 of Y the sum of one column of A; 5 of several
    columns = np.zeros((12, 9), np.float32)
    columns[np.arange(12), target] = rng.choice([1.0, 0.5], 12)
    return [gather, columns]


@pytest.mark.parametrize("which", [0, 1], ids=["gather", "sum_of_columns"])
def test_infinities_and_nans_make_what_the_product_makes(which):
    model = _selection_model(_gather_and_sum_matrices()[which])
    assert "SelectionGemm" in {n.op_type for n in sr.load(model).planned("native").model.nodes}
    sess = sr.compile(sr.load(model), backend="native")
    a = np.random.default_rng(2).standard_normal((4, model.graph.initializer[0].dims[0])).astype(np.float32)
    a[1, 2], a[2, 5], a[3, 0] = np.inf, np.nan, -np.inf
    ours, ref = sess.infer(a), ort_run(model, {"a": a})[0]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(ours), np.nan_to_num(ref), rtol=RTOL, atol=ATOL)
    a = np.nan_to_num(a, posinf=3.0, neginf=-3.0)  # finite: the gather or the sums
    np.testing.assert_allclose(sess.infer(a), ort_run(model, {"a": a})[0], rtol=RTOL, atol=ATOL)


def test_what_is_not_a_selection_stays_a_product():
    rng = np.random.default_rng(3)
    dense = rng.standard_normal((9, 12)).astype(np.float32)
    single = np.ones((100, 1), np.float32)  # a layer's single output: every row one nonzero, yet a dense product
    two = np.zeros((9, 12), np.float32)
    two[0], two[1] = 1.0, 1.0  # two nonzeros per column
    for b in (dense, single, two):
        ops = {n.op_type for n in sr.load(_selection_model(b)).planned("native").model.nodes}
        assert "SelectionGemm" not in ops, b.shape
