"""Einsum against onnxruntime: matrix and batched products, transposes, traces and diagonals,
reductions, outer products, ellipsis with broadcasting, implicit outputs, three operands,
symbolic dims, integer types, and invalid equations."""

import numpy as np
import pytest
from conftest import make_model
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError

CASES = {
    "matmul": ("ij,jk->ik", [(3, 4), (4, 5)]),
    "batched": ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    "attention_scores": ("bhqd,bhkd->bhqk", [(2, 3, 4, 8), (2, 3, 5, 8)]),
    "transpose": ("ij->ji", [(3, 4)]),
    "trace": ("ii", [(4, 4)]),
    "diagonal": ("ii->i", [(4, 4)]),
    "batch_diagonal": ("...ii->...i", [(2, 3, 3)]),
    "sum_all": ("ijk->", [(2, 3, 4)]),
    "sum_axis": ("ijk->ik", [(2, 3, 4)]),
    "outer": ("i,j->ij", [(3,), (4,)]),
    "dot": ("i,i", [(5,), (5,)]),
    "implicit": ("ij,jk", [(3, 4), (4, 2)]),
    "implicit_sorted": ("ba", [(3, 4)]),
    "ellipsis_broadcast": ("...ij,...jk->...ik", [(2, 1, 3, 4), (2, 5, 4, 2)]),
    "ellipsis_middle": ("i...j->j...i", [(2, 3, 4, 5)]),
    "three_operands": ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    "bilinear": ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    "spaces": (" ij , jk -> ik ", [(3, 4), (4, 5)]),
}


def _model(equation, shapes, dtype=np.float32, dims=None):
    names = [f"x{i}" for i in range(len(shapes))]
    node = helper.make_node("Einsum", names, ["y"], equation=equation)
    out = np.einsum(equation, *[np.zeros(s) for s in shapes]).shape
    inputs = [(n, dtype, list(d)) for n, d in zip(names, dims or shapes)]
    return make_model([node], inputs, [("y", dtype, None if dims else list(out))], opset=17)


def _feeds(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "i":
        return {f"x{i}": rng.integers(-4, 5, s).astype(dtype) for i, s in enumerate(shapes)}
    return {f"x{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}


@pytest.mark.parametrize("case", CASES)
def test_einsum(check_model, case):
    equation, shapes = CASES[case]
    check_model(_model(equation, shapes), _feeds(shapes, np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_einsum_types(check_model, dtype):
    equation, shapes = CASES["bilinear"]
    check_model(_model(equation, shapes, dtype), _feeds(shapes, dtype))


def test_einsum_symbolic_dims(check_model):
    """Batch and sequence lengths symbolic: one compiled model for every size."""
    model = _model("bhqd,bhkd->bhqk", [(2, 3, 4, 8), (2, 3, 4, 8)], dims=[("N", 3, "P", 8), ("N", 3, "P", 8)])
    sess = sr.compile(sr.load(model))
    for n, p in ((1, 1), (2, 7)):
        feeds = _feeds([(n, 3, p, 8), (n, 3, p, 8)], np.float32, seed=p)
        np.testing.assert_allclose(sess.infer(*feeds.values()), np.einsum("bhqd,bhkd->bhqk", *feeds.values()),
                                   rtol=1e-5, atol=1e-5)


def test_einsum_folded(check_folded):
    equation, shapes = CASES["three_operands"]
    check_folded(_model(equation, shapes), _feeds(shapes, np.float32))


@pytest.mark.parametrize("equation,shapes,message", [
    ("ij,jk->ik", [(3, 4), (5, 6)], "letter 'j' has sizes 4 and 5"),
    ("ij->k", [(3, 4)], "uses letters no operand has"),
    ("ij->ii", [(3, 4)], "repeats letters"),
    ("i1->i", [(3, 4)], "invalid term 'i1'"),
    ("ijk->i", [(3, 4)], "has 3 letters for an operand of rank 2"),
])
def test_einsum_invalid(equation, shapes, message):
    names = [f"x{i}" for i in range(len(shapes))]
    model = make_model([helper.make_node("Einsum", names, ["y"], equation=equation)],
                       [(n, np.float32, list(s)) for n, s in zip(names, shapes)], [("y", np.float32, None)])
    with pytest.raises(ShapeError, match=message):
        sr.load(model).code()
