"""Matrix products against onnxruntime: Gemm (every attribute, every C broadcast) and MatMul."""

import re

import numpy as np
import pytest
from conftest import make_model
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.targets.cpu import CpuTarget

M, N, K = 5, 6, 4

C_SHAPES = {"none": None, "scalar": (), "one": (1,), "one2d": (1, 1), "row": (N,), "row2d": (1, N), "column": (M, 1),
            "full": (M, N)}


def _gemm(check_model, c_shape, trans_a=0, trans_b=0, alpha=None, beta=None, c_is_input=False, dtype=np.float32,
          seed=0, opset=17):
    rng = np.random.default_rng(seed)
    a_shape = (K, M) if trans_a else (M, K)
    b_shape = (N, K) if trans_b else (K, N)
    attrs = {"transA": trans_a, "transB": trans_b}
    if alpha is not None:
        attrs["alpha"] = alpha
    if beta is not None:
        attrs["beta"] = beta
    inputs, feeds, inits = [("a", dtype, list(a_shape))], {"a": rng.standard_normal(a_shape).astype(dtype)}, {}
    b = rng.standard_normal(b_shape).astype(dtype)
    inits["b"] = b
    names = ["a", "b"]
    if c_shape is not None:
        c = np.asarray(rng.standard_normal(c_shape)).astype(dtype)
        if c_is_input:
            inputs.append(("c", dtype, list(c_shape)))
            feeds["c"] = c
        else:
            inits["c"] = c
        names.append("c")
    model = make_model([helper.make_node("Gemm", names, ["y"], **attrs)], inputs, [("y", dtype, [M, N])], inits,
                       opset=opset)
    check_model(model, feeds)


@pytest.mark.parametrize("c", list(C_SHAPES))
def test_gemm_c_broadcast(check_model, c):
    _gemm(check_model, C_SHAPES[c], alpha=0.7, beta=1.3)


@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c", ["none", "row", "full"])
def test_gemm_transpose(check_model, trans_a, trans_b, c):
    _gemm(check_model, C_SHAPES[c], trans_a, trans_b)


@pytest.mark.parametrize("alpha, beta", [(None, None), (2.0, None), (None, -0.5), (0.0, 1.0), (1.5, 0.0)])
def test_gemm_alpha_beta(check_model, alpha, beta):
    _gemm(check_model, C_SHAPES["column"], alpha=alpha, beta=beta)


@pytest.mark.parametrize("c", ["scalar", "row", "column", "full"])
def test_gemm_c_runtime_input(check_model, c):
    _gemm(check_model, C_SHAPES[c], 1, 0, beta=0.5, c_is_input=True)


def test_gemm_float64(check_model):
    _gemm(check_model, C_SHAPES["row"], 0, 1, alpha=0.3, beta=2.0, dtype=np.float64)


@pytest.mark.parametrize("opset", [7, 9, 11])
def test_gemm_old_opsets(check_model, opset):
    _gemm(check_model, C_SHAPES["row"], 1, 1, alpha=1.2, beta=0.8, opset=opset)


def test_gemm_both_runtime(check_model):
    rng = np.random.default_rng(11)
    model = make_model([helper.make_node("Gemm", ["a", "b"], ["y"], transB=1)],
                       [("a", np.float32, [3, 7]), ("b", np.float32, [2, 7])], [("y", np.float32, [3, 2])])
    check_model(model, {"a": rng.standard_normal((3, 7)).astype(np.float32),
                        "b": rng.standard_normal((2, 7)).astype(np.float32)})


@pytest.mark.parametrize("batch", [1, 9])
@pytest.mark.parametrize("trans_a", [0, 1])
def test_gemm_symbolic_batch(check_model, batch, trans_a):
    rng = np.random.default_rng(batch)
    w, c = rng.standard_normal((K, N)).astype(np.float32), rng.standard_normal((N,)).astype(np.float32)
    a_shape = [K, "batch"] if trans_a else ["batch", K]
    model = make_model([helper.make_node("Gemm", ["a", "w", "c"], ["y"], transA=trans_a, alpha=0.5)],
                       [("a", np.float32, a_shape)], [("y", np.float32, ["batch", N])], {"w": w, "c": c})
    shape = (K, batch) if trans_a else (batch, K)
    check_model(model, {"a": rng.standard_normal(shape).astype(np.float32)})


@pytest.mark.parametrize("batch", [1, 4])
def test_gemm_symbolic_column_c(check_model, batch):
    """C of shape (M, 1) with M the open batch dim."""
    rng = np.random.default_rng(batch)
    w = rng.standard_normal((K, N)).astype(np.float32)
    model = make_model([helper.make_node("Gemm", ["a", "w", "c"], ["y"], beta=2.0)],
                       [("a", np.float32, ["B", K]), ("c", np.float32, ["B", 1])], [("y", np.float32, ["B", N])],
                       {"w": w})
    check_model(model, {"a": rng.standard_normal((batch, K)).astype(np.float32),
                        "c": rng.standard_normal((batch, 1)).astype(np.float32)})


# ---- gemm_panels: large outputs, constant B in panels (native code) ---------------------------------

PANEL_CASES = {  # (M, N, K): N not a multiple of the 16-column panels, M not of the 6-row tiles
    "generator": (13, 20170, 37),
    "wide_rows": (7, 40003, 12),
}


@pytest.mark.parametrize("case", list(PANEL_CASES))
@pytest.mark.parametrize("trans_a, trans_b, c, act", [
    (0, 1, (None, 1.0), "Sigmoid"),  # a PyTorch Linear + Sigmoid: FusedGemm
    (1, 0, ("row", 0.5), "Relu"),
    (0, 0, ("row2d", -2.0), None),
    (0, 1, (None, 1.0), None),
])
def test_gemm_panels(check_model, case, trans_a, trans_b, c, act):
    """Products with outputs beyond L2 and a constant B: gemm_panels (or gemm_shallow) in native code (bias and
    activation applied per register tile), BLAS in code for Cling; alpha, beta, transA/transB, C as a row of N."""
    m, n, k = PANEL_CASES[case]
    rng = np.random.default_rng(m)
    c_shape, beta = c
    a_shape, b_shape = ((k, m) if trans_a else (m, k)), ((n, k) if trans_b else (k, n))
    inits = {"b": rng.standard_normal(b_shape).astype(np.float32) * 0.3}
    names = ["a", "b"]
    if c_shape is not None:
        inits["c"] = rng.standard_normal((n,) if c_shape == "row" else (1, n)).astype(np.float32)
        names.append("c")
    nodes = [helper.make_node("Gemm", names, ["g" if act else "y"], transA=trans_a, transB=trans_b, alpha=0.8,
                              beta=beta)]
    if act:
        nodes.append(helper.make_node(act, ["g"], ["y"]))
    model = make_model(nodes, [("a", np.float32, list(a_shape))], [("y", np.float32, [m, n])], inits)
    # gemm_shallow where K <= 12 (the panels held in registers), else gemm_panels
    assert re.search(r"kernels::gemm_(panels\(|shallow<)", sr.load(model).code().header)
    planned = sr.load(model).planned()
    gemm = next(e for e in planned.emitters if e.op.node.op_type in ("Gemm", "FusedGemm"))
    assert (gemm.panel_columns, gemm.b_transposed) == (n, False)  # the emitter's layout; the IR keeps B's meaning
    assert planned.model.tensors[gemm.op.node.inputs[1]].shape == b_shape and gemm.op.attrs["transB"] == trans_b
    assert not re.search(r"kernels::gemm_(panels\(|shallow<)", sr.load(model).code(target=CpuTarget(isa="generic")).header)
    feeds = {"a": rng.standard_normal(a_shape).astype(np.float32)}
    check_model(model, feeds, rtol=1e-4, atol=1e-5, backend="native")


# ---- MatMul ------------------------------------------------------------------

MATMUL = {
    "1d_1d": ((4,), (4,)),
    "1d_2d": ((4,), (4, 3)),
    "2d_1d": ((5, 4), (4,)),
    "2d_2d": ((5, 4), (4, 3)),
    "3d_2d": ((2, 5, 4), (4, 3)),
    "2d_3d": ((5, 4), (2, 4, 3)),
    "3d_3d": ((2, 5, 4), (2, 4, 3)),
    "3d_1d": ((2, 5, 4), (4,)),
    "1d_3d": ((4,), (2, 4, 3)),
    "batch_broadcast": ((2, 1, 3, 4), (5, 4, 6)),
    "batch_broadcast_a": ((1, 5, 3, 4), (2, 1, 4, 6)),
    "4d_4d": ((2, 3, 2, 4), (2, 3, 4, 2)),
    "4d_2d": ((2, 3, 5, 4), (4, 6)),
    "b_batched_a_matrix_1": ((1, 3, 4), (2, 4, 5)),
    "vector_rows": ((3, 1, 4), (4, 1)),
}


@pytest.mark.parametrize("case", list(MATMUL))
def test_matmul_shapes(check_model, case):
    sa, sb = MATMUL[case]
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    out = np.matmul(a, b).shape
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                       [("a", np.float32, list(sa)), ("b", np.float32, list(sb))], [("y", np.float32, list(out))])
    check_model(model, {"a": a, "b": b})


@pytest.mark.parametrize("case", ["2d_2d", "3d_2d", "batch_broadcast", "2d_1d"])
def test_matmul_weight(check_model, case):
    sa, sb = MATMUL[case]
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", np.float32, list(sa))],
                       [("y", np.float32, list(np.matmul(a, b).shape))], {"b": b})
    check_model(model, {"a": a})


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32])
def test_matmul_dtypes(check_model, dtype):
    rng = np.random.default_rng(14)
    sa, sb = (2, 3, 4), (4, 5)
    cast = (lambda s: rng.integers(-5, 5, s)) if np.dtype(dtype).kind == "i" else rng.standard_normal
    a, b = cast(sa).astype(dtype), cast(sb).astype(dtype)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                       [("a", dtype, list(sa)), ("b", dtype, list(sb))], [("y", dtype, [2, 3, 5])])
    check_model(model, {"a": a, "b": b})


@pytest.mark.parametrize("batch", [1, 3])
def test_matmul_symbolic_batch(check_model, batch):
    rng = np.random.default_rng(batch)
    w = rng.standard_normal((4, 6)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("MatMul", ["h", "v"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 2, 4]), ("v", np.float32, ["N", 6, 3])],
                       [("y", np.float32, ["N", 2, 3])], {"w": w})
    check_model(model, {"x": rng.standard_normal((batch, 2, 4)).astype(np.float32),
                        "v": rng.standard_normal((batch, 6, 3)).astype(np.float32)})


def test_matmul_constant_folded(check_model):
    rng = np.random.default_rng(15)
    w1, w2 = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["w1", "w2"], ["w"]),
             helper.make_node("Gemm", ["x", "w", "w"], ["y"], transB=0, alpha=0.5, beta=0.0)]
    model = make_model(nodes, [("x", np.float32, [2, 3])], [("y", np.float32, [2, 2])], {"w1": w1, "w2": w2})
    model.graph.node[1].input[2] = ""
    check_model(model, {"x": rng.standard_normal((2, 3)).astype(np.float32)})


def test_gemm_constant_a_runtime_b(check_model):
    """A is the weight and B the run-time input (the transpose of the usual layout)."""
    rng = np.random.default_rng(16)
    a = rng.standard_normal((M, K)).astype(np.float32)
    model = make_model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=0, transB=1, alpha=2.0)],
                       [("b", np.float32, [N, K])], [("y", np.float32, [M, N])],
                       {"a": a, "c": rng.standard_normal((M, 1)).astype(np.float32)})
    check_model(model, {"b": rng.standard_normal((N, K)).astype(np.float32)})


@pytest.mark.parametrize("rows", [1, 3, 40])
def test_gemm_row_counts(check_model, rows):
    """Few rows (plain loop) and many rows (BLAS) give the same products."""
    rng = np.random.default_rng(rows)
    w = rng.standard_normal((24, 10)).astype(np.float32)
    model = make_model([helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, beta=0.5)],
                       [("x", np.float32, [rows, 10])], [("y", np.float32, [rows, 24])],
                       {"w": w, "c": rng.standard_normal(24).astype(np.float32)})
    check_model(model, {"x": rng.standard_normal((rows, 10)).astype(np.float32)})


def test_transposed_constant_b_stored_untransposed():
    """A constant B of a transB=1 Gemm (a PyTorch Linear) is stored untransposed for the small-product kernel
    (three rows: too few for packed panels): the emitter remembers it, the IR keeps the model's B and transB."""
    w = np.random.default_rng(2).standard_normal((24, 10)).astype(np.float32)
    model = make_model([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], [("x", np.float32, [3, 10])],
                       [("y", np.float32, [3, 24])], {"w": w})
    for target in ("native", "jit"):
        planned = sr.load(model).planned(target)
        (node,), (emitter,) = planned.model.nodes, planned.emitters
        assert (emitter.b_transposed, emitter.panel_columns) == (False, None) and node.attrs["transB"] == 1
        assert planned.model.tensors[node.inputs[1]].shape == (24, 10)
        np.testing.assert_array_equal(planned.model.initializers[node.inputs[1]], w.T)
        assert "kernels::gemm(false, false, 3, 24, 10" in sr.load(model).code(target=target).header


def test_mlp_chain_reuses_memory(check_model):
    """Several products and activations in a row: the arena slots are reused between them."""
    rng = np.random.default_rng(17)
    nodes, inits, prev = [], {}, "x"
    for k, (i, o) in enumerate([(8, 16), (16, 32), (32, 16), (16, 4)]):
        inits[f"w{k}"] = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)
        inits[f"b{k}"] = rng.standard_normal(o).astype(np.float32)
        nodes += [helper.make_node("MatMul", [prev, f"w{k}"], [f"m{k}"]),
                  helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"]),
                  helper.make_node("Tanh" if k % 2 else "Relu", [f"a{k}"], [f"h{k}"])]
        prev = f"h{k}"
    nodes.append(helper.make_node("Concat", ["h3", "a3"], ["y"], axis=1))
    model = make_model(nodes, [("x", np.float32, ["N", 8])], [("y", np.float32, ["N", 8])], inits)
    check_model(model, {"x": rng.standard_normal((7, 8)).astype(np.float32)})


# ---- folded at generation time (numpy references) -----------------------------------

@pytest.mark.parametrize("trans_a, trans_b, c", [(0, 0, "full"), (1, 0, "row"), (0, 1, "column"), (1, 1, "scalar"),
                                                 (1, 1, "none")])
def test_gemm_folded(check_folded, trans_a, trans_b, c):
    _gemm(check_folded, C_SHAPES[c], trans_a, trans_b, alpha=0.6, beta=1.7)


@pytest.mark.parametrize("case", ["1d_1d", "2d_1d", "1d_3d", "batch_broadcast", "4d_4d"])
def test_matmul_folded(check_folded, case):
    test_matmul_shapes(check_folded, case)


def test_matmul_symbolic_batch_broadcast_against_fixed(check_model):
    """A symbolic batch dim facing a fixed one can only be 1 at run time, so A is reused for every batch."""
    rng = np.random.default_rng(19)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                       [("a", np.float32, ["B", 3, 4]), ("b", np.float32, [2, 4, 5])], [("y", np.float32, [2, 3, 5])])
    check_model(model, {"a": rng.standard_normal((1, 3, 4)).astype(np.float32),
                        "b": rng.standard_normal((2, 4, 5)).astype(np.float32)})


@pytest.mark.parametrize("rows, depth", [(2, 10), (7, 10), (7, 3)])
def test_gemm_bias_activation_paths(check_model, rows, depth):
    """Gemm + Sigmoid (fused) with every C broadcast, in one model: few rows start from the bias and accumulate,
    more rows add it after the product (BLAS, or the loop for a product of depth <= 4)."""
    rng = np.random.default_rng(rows * depth)
    shapes = {"scalar": (), "row": (N,), "column": (rows, 1), "full": (rows, N)}
    nodes, inits, outputs = [], {"w": rng.standard_normal((N, depth)).astype(np.float32)}, []
    for name, shape in shapes.items():
        inits[f"c_{name}"] = np.asarray(rng.standard_normal(shape)).astype(np.float32)
        nodes += [helper.make_node("Gemm", ["x", "w", f"c_{name}"], [f"t_{name}"], transB=1, alpha=0.8, beta=1.5),
                  helper.make_node("Sigmoid", [f"t_{name}"], [f"y_{name}"])]
        outputs.append((f"y_{name}", np.float32, [rows, N]))
    model = make_model(nodes, [("x", np.float32, [rows, depth])], outputs, inits)
    check_model(model, {"x": 3 * rng.standard_normal((rows, depth)).astype(np.float32)})
