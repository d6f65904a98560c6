"""More element-wise operators against onnxruntime: comparisons and logic (bool
outputs), Where, IsNaN/IsInf, math functions and activations, Sign, PRelu, the
n-ary Min/Max/Mean and Mod, including NaN/Inf inputs, symbolic dims and
constant folding."""

import numpy as np
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import SofieError

ALL_TYPES = [np.float32, np.float64, np.int8, np.uint8, np.int32, np.int64]
BROADCAST = {
    "same": ((3, 4), (3, 4)),
    "scalar": ((3, 4), ()),
    "row": ((2, 3, 4), (4,)),
    "outer": ((3, 1), (1, 4)),
    "middle": ((2, 3, 4), (2, 1, 4)),
}
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 3.0])


def _data(rng, shape, dtype, low=-4.0, high=4.0):
    """Random values of a dtype: floats in [low, high), integers spread around zero (unsigned from 0)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.uniform(low, high, shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    lo = 0 if dtype.kind == "u" else -6
    return rng.integers(lo, 7, shape).astype(dtype)


def _node_model(op, inputs, out_dtype, out_shape, opset=17, **attrs):
    """One-node model; ``inputs`` is [(dtype, shape)], named a, b, c, ..."""
    names = "abcdefg"[:len(inputs)]
    return make_model([helper.make_node(op, list(names), ["y"], **attrs)],
                      [(n, t, list(s)) for n, (t, s) in zip(names, inputs)], [("y", out_dtype, list(out_shape))],
                      opset=opset)


def _check_unary(check, op, x, out_dtype=None, opset=17, **attrs):
    model = _node_model(op, [(x.dtype, x.shape)], out_dtype or x.dtype, x.shape, opset=opset, **attrs)
    check(model, {"a": x})


def _check_double(op, feeds, opset=17, **attrs):
    """onnxruntime has only float kernels for many ops: ours in double is compared with its float.

    ``feeds`` maps a, b, c, ... to the inputs; the float64 ones are rounded to float32 for onnxruntime.
    """
    shape = np.broadcast_shapes(*(v.shape for v in feeds.values()))

    def model(dtype):
        inputs = [(dtype if v.dtype == np.float64 else v.dtype, v.shape) for v in feeds.values()]
        return _node_model(op, inputs, dtype, shape, opset=opset, **attrs)

    (ours,) = sofie_run(model(np.float64), feeds)
    (ref,) = ort_run(model(np.float32), {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in feeds.items()})
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


# ---- math functions ----------------------------------------------------------------------------

# op -> (low, high) of the random inputs (the function's domain)
MATH = {"Sin": (-4, 4), "Cos": (-4, 4), "Tan": (-1.4, 1.4), "Asin": (-0.99, 0.99), "Acos": (-0.99, 0.99),
        "Atan": (-5, 5), "Sinh": (-4, 4), "Cosh": (-4, 4), "Asinh": (-5, 5), "Acosh": (1, 6), "Atanh": (-0.99, 0.99),
        "Floor": (-5, 5), "Ceil": (-5, 5), "Round": (-5, 5), "Erf": (-3, 3)}


@pytest.mark.parametrize("op", list(MATH))
def test_math_float32(check_model, op):
    rng = np.random.default_rng(1)
    _check_unary(check_model, op, _data(rng, (3, 4, 5), np.float32, *MATH[op]))


@pytest.mark.parametrize("op", ["Sin", "Cos", "Floor", "Ceil", "Round"])
def test_math_float64(check_model, op):
    rng = np.random.default_rng(2)
    _check_unary(check_model, op, _data(rng, (17,), np.float64, *MATH[op]))


@pytest.mark.parametrize("op", ["Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Erf"])
def test_math_float64_no_ort_kernel(op):
    rng = np.random.default_rng(3)
    _check_double(op, {"a": _data(rng, (11,), np.float64, *MATH[op])})


@pytest.mark.parametrize("op", ["Floor", "Ceil", "Round", "Sin", "Erf", "Atan"])
def test_math_special_values(check_model, op):
    _check_unary(check_model, op, SPECIAL.astype(np.float32))


def test_round_half_to_even(check_model):
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997, -3.5000002, 1e8 + 0.5], np.float64)
    _check_unary(check_model, "Round", x)
    _check_unary(check_model, "Round", x.astype(np.float32))


@pytest.mark.parametrize("opset", [7, 9, 13])
def test_math_old_opsets(check_model, opset):
    rng = np.random.default_rng(opset)
    ops = ["Sin", "Cos", "Floor", "Ceil"] + (["Sinh", "Erf"] if opset >= 9 else [])
    nodes = [helper.make_node(op, [f"t{k}"], [f"t{k + 1}"]) for k, op in enumerate(ops)]
    model = make_model(nodes, [("t0", np.float32, [4, 3])], [(f"t{len(ops)}", np.float32, [4, 3])], opset=opset)
    check_model(model, {"t0": _data(rng, (4, 3), np.float32)})


# ---- activations -------------------------------------------------------------------------------

ACTIVATIONS = [
    ("Softplus", {}, 7), ("Softsign", {}, 7), ("HardSigmoid", {}, 7), ("HardSigmoid", {"alpha": 0.5, "beta": 0.1}, 7),
    ("HardSwish", {}, 14), ("Mish", {}, 18), ("ThresholdedRelu", {}, 10), ("ThresholdedRelu", {"alpha": -0.5}, 10),
    ("Celu", {}, 12), ("Celu", {"alpha": 2.5}, 12), ("Celu", {"alpha": 0.3}, 12),
    ("Gelu", {}, 20), ("Gelu", {"approximate": "none"}, 20), ("Gelu", {"approximate": "tanh"}, 20),
]
ACT_IDS = [f"{op}-{'-'.join(f'{k}{v}' for k, v in attrs.items()) or 'default'}" for op, attrs, _ in ACTIVATIONS]


@pytest.mark.parametrize("op, attrs, opset", ACTIVATIONS, ids=ACT_IDS)
def test_activation_float32(check_model, op, attrs, opset):
    rng = np.random.default_rng(4)
    _check_unary(check_model, op, _data(rng, (2, 3, 7), np.float32, -6, 6), opset=max(opset, 17), **attrs)


@pytest.mark.parametrize("op, attrs, opset", [a for a in ACTIVATIONS if a[0] != "Celu"],
                         ids=[i for i, a in zip(ACT_IDS, ACTIVATIONS) if a[0] != "Celu"])
def test_activation_float64(op, attrs, opset):
    """Celu is float-only before opset 28."""
    rng = np.random.default_rng(5)
    _check_double(op, {"a": _data(rng, (9,), np.float64, -6, 6)}, opset=max(opset, 17), **attrs)


@pytest.mark.parametrize("op", ["Softplus", "Softsign", "HardSigmoid", "HardSwish", "Mish", "Gelu", "Celu"])
def test_activation_extreme_values(check_model, op):
    x = np.array([-1e4, -100, -30, -1e-3, 0, 1e-3, 30, 100, 1e4], np.float32)
    _check_unary(check_model, op, x, opset=20)


@pytest.mark.parametrize("opset", [6, 7, 22])
def test_hardsigmoid_opsets(check_model, opset):
    rng = np.random.default_rng(opset)
    _check_unary(check_model, "HardSigmoid", _data(rng, (5, 4), np.float32), opset=max(opset, 7), alpha=0.3, beta=0.4)


def test_activation_fused_into_gemm(check_model):
    """A Gemm followed by one of these activations becomes one fused node."""
    rng = np.random.default_rng(6)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    model = make_model([helper.make_node("Gemm", ["x", "w"], ["g"]), helper.make_node("Gelu", ["g"], ["y"])],
                       [("x", np.float32, ["N", 4])], [("y", np.float32, ["N", 3])], {"w": w}, opset=20)
    check_model(model, {"x": _data(rng, (5, 4), np.float32)})
    assert "FusedGemm" in sr.load(model).code().header


def test_gelu_unknown_approximation():
    model = _node_model("Gelu", [(np.float32, (3,))], np.float32, (3,), opset=20, approximate="erf")
    with pytest.raises(SofieError, match="approximate must be 'none' or 'tanh'"):
        sr.load(model).code()


@pytest.mark.parametrize("op", ["Sin", "Gelu", "Softplus", "Erf"])
def test_float_only_ops_refuse_integers(op):
    model = _node_model(op, [(np.int32, (3,))], np.int32, (3,), opset=20)
    with pytest.raises(SofieError, match=r"input type int32 is not supported \(float expected\)"):
        sr.load(model).code()


# ---- Sign ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL_TYPES)
def test_sign(check_model, dtype):
    rng = np.random.default_rng(7)
    x = _data(rng, (4, 5), dtype)
    x.flat[:2] = 0
    _check_unary(check_model, "Sign", x)


def test_sign_special_values(check_model):
    _check_unary(check_model, "Sign", SPECIAL.astype(np.float64))


# ---- IsNaN / IsInf -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_isnan(check_model, dtype):
    _check_unary(check_model, "IsNaN", SPECIAL.astype(dtype).reshape(2, 4), out_dtype=np.bool_)


@pytest.mark.parametrize("attrs", [{}, {"detect_positive": 0}, {"detect_negative": 0},
                                   {"detect_positive": 0, "detect_negative": 0}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_isinf(check_model, dtype, attrs):
    _check_unary(check_model, "IsInf", SPECIAL.astype(dtype), out_dtype=np.bool_, **attrs)


# ---- PRelu ----------------------------------------------------------------------------------------

PRELU_SLOPES = {"scalar": (), "one": (1,), "channel": (3, 1, 1), "last": (5,), "full": (2, 3, 4, 5)}


@pytest.mark.parametrize("slope", list(PRELU_SLOPES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_prelu(check_model, dtype, slope):
    rng = np.random.default_rng(8)
    x, s = _data(rng, (2, 3, 4, 5), dtype), _data(rng, PRELU_SLOPES[slope], dtype)
    check_model(_node_model("PRelu", [(dtype, x.shape), (dtype, s.shape)], dtype, x.shape), {"a": x, "b": s})


def test_prelu_opset7_and_symbolic_batch(check_model):
    rng = np.random.default_rng(9)
    s = rng.uniform(0, 1, (3, 1)).astype(np.float32)
    model = make_model([helper.make_node("PRelu", ["x", "s"], ["y"])], [("x", np.float32, ["N", 3, 4])],
                       [("y", np.float32, ["N", 3, 4])], {"s": s}, opset=7)
    check_model(model, {"x": _data(rng, (2, 3, 4), np.float32)})


def test_prelu_slope_must_broadcast_to_x():
    model = _node_model("PRelu", [(np.float32, (3, 1)), (np.float32, (3, 4))], np.float32, (3, 4))
    with pytest.raises(SofieError, match="does not broadcast to X's shape"):
        sr.load(model).code()


# ---- comparisons and logic --------------------------------------------------------------------

COMPARISONS = [("Equal", 11), ("Less", 9), ("LessOrEqual", 12), ("Greater", 9), ("GreaterOrEqual", 12)]


def _check_binary(check, op, dtype, sa, sb, out_dtype, opset=17, seed=10, **attrs):
    rng = np.random.default_rng(seed)
    a, b = _data(rng, sa, dtype), _data(rng, sb, dtype)
    if np.dtype(dtype).kind == "f":  # equal elements too, for Equal and the *OrEqual forms
        a, b = np.round(a, out=a), np.round(b, out=b)
    model = _node_model(op, [(dtype, sa), (dtype, sb)], out_dtype, np.broadcast_shapes(sa, sb), opset=opset, **attrs)
    check(model, {"a": a, "b": b})


@pytest.mark.parametrize("case", list(BROADCAST))
@pytest.mark.parametrize("dtype", ALL_TYPES)
@pytest.mark.parametrize("op, opset", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparison(check_model, op, opset, dtype, case):
    _check_binary(check_model, op, dtype, *BROADCAST[case], np.bool_, opset=max(opset, 17))


@pytest.mark.parametrize("op, opset", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparison_nan_inf(check_model, op, opset):
    a = SPECIAL.astype(np.float32)
    model = _node_model(op, [(np.float32, (8,)), (np.float32, (8, 1))], np.bool_, (8, 8), opset=opset)
    check_model(model, {"a": a, "b": a.reshape(8, 1)})


@pytest.mark.parametrize("opset", [7, 9])
def test_comparison_old_opsets(check_model, opset):
    rng = np.random.default_rng(opset)
    nodes = [helper.make_node("Less", ["a", "b"], ["l"]), helper.make_node("Greater", ["a", "b"], ["g"]),
             helper.make_node("Equal", ["l", "g"], ["y"])]
    model = make_model(nodes, [("a", np.float32, [3, 4]), ("b", np.float32, [4])], [("y", np.bool_, [3, 4])],
                       opset=opset)
    check_model(model, {"a": np.round(_data(rng, (3, 4), np.float32)), "b": np.round(_data(rng, (4,), np.float32))})


@pytest.mark.parametrize("case", list(BROADCAST))
@pytest.mark.parametrize("op", ["Equal", "And", "Or", "Xor"])
def test_bool_binary(check_model, op, case):
    _check_binary(check_model, op, np.bool_, *BROADCAST[case], np.bool_, seed=11)


def test_not(check_model):
    rng = np.random.default_rng(12)
    _check_unary(check_model, "Not", _data(rng, (2, 3, 4), np.bool_))


def test_logic_chain_symbolic(check_model):
    """Comparison -> Not -> And -> Where on a symbolic batch."""
    rng = np.random.default_rng(13)
    nodes = [helper.make_node("Greater", ["x", "t"], ["g"]), helper.make_node("IsNaN", ["x"], ["n"]),
             helper.make_node("Not", ["n"], ["ok"]), helper.make_node("And", ["g", "ok"], ["c"]),
             helper.make_node("Where", ["c", "x", "t"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 4])], [("y", np.float32, ["N", 4])],
                       {"t": np.array([0.0, 0.5, -0.5, 1.0], np.float32)})
    x = _data(rng, (3, 4), np.float32)
    x[1, 2] = np.nan
    check_model(model, {"x": x})


@pytest.mark.parametrize("op, dtype", [("And", np.float32), ("Not", np.int32), ("Less", np.bool_), ("Xor", np.int8)])
def test_logic_type_errors(op, dtype):
    model = _node_model(op, [(dtype, (3,))] * (1 if op == "Not" else 2), np.bool_, (3,))
    with pytest.raises(SofieError, match=f"input type {np.dtype(dtype)} is not supported"):
        sr.load(model).code()


def test_comparison_types_must_match():
    model = _node_model("Equal", [(np.float32, (3,)), (np.float64, (3,))], np.bool_, (3,))
    with pytest.raises(SofieError, match="input types differ"):
        sr.load(model).code()


# ---- Where ---------------------------------------------------------------------------------------

WHERE_SHAPES = {
    "same": ((3, 4), (3, 4), (3, 4)),
    "scalar_xy": ((3, 4), (), ()),
    "cond_broadcast": ((4,), (3, 4), (3, 1)),
    "three_way": ((2, 1, 1), (1, 3, 1), (1, 1, 4)),
    "rank_mismatch": ((5,), (2, 3, 1), (3, 5)),
    "scalar_cond": ((), (2, 3), (2, 3)),
}


def _where(dtype, case, seed=14):
    rng = np.random.default_rng(seed)
    sc, sx, sy = WHERE_SHAPES[case]
    feeds = {"a": _data(rng, sc, np.bool_), "b": _data(rng, sx, dtype), "c": _data(rng, sy, dtype)}
    return _node_model("Where", [(np.bool_, sc), (dtype, sx), (dtype, sy)], dtype, np.broadcast_shapes(sc, sx, sy)), feeds


@pytest.mark.parametrize("case", list(WHERE_SHAPES))
@pytest.mark.parametrize("dtype", ALL_TYPES)
def test_where(check_model, dtype, case):
    check_model(*_where(dtype, case))


@pytest.mark.parametrize("case", list(WHERE_SHAPES))
def test_where_bool(case):
    """onnxruntime has no bool Where kernel: compared with numpy."""
    model, feeds = _where(np.bool_, case)
    (y,) = sofie_run(model, feeds)
    assert y.dtype == np.bool_
    np.testing.assert_array_equal(y, np.where(feeds["a"], feeds["b"], feeds["c"]))


@pytest.mark.parametrize("opset", [9, 16])
@pytest.mark.parametrize("batch", [1, 4])
def test_where_symbolic(check_model, batch, opset):
    rng = np.random.default_rng(batch)
    model = make_model([helper.make_node("Where", ["c", "x", "y"], ["z"])],
                       [("c", np.bool_, ["N", 1]), ("x", np.float32, ["N", 3]), ("y", np.float32, [3])],
                       [("z", np.float32, ["N", 3])], opset=opset)
    check_model(model, {"c": _data(rng, (batch, 1), np.bool_), "x": _data(rng, (batch, 3), np.float32),
                        "y": _data(rng, (3,), np.float32)})


def test_where_errors():
    model = _node_model("Where", [(np.int32, (3,)), (np.float32, (3,)), (np.float32, (3,))], np.float32, (3,))
    with pytest.raises(SofieError, match="input type int32 is not supported"):
        sr.load(model).code()
    model = _node_model("Where", [(np.bool_, (3,)), (np.float32, (3,)), (np.int64, (3,))], np.float32, (3,))
    with pytest.raises(SofieError, match="X and Y types differ"):
        sr.load(model).code()
    model = _node_model("Where", [(np.bool_, (3,)), (np.float32, (2, 1)), (np.float32, (4,))], np.float32, (2, 4))
    with pytest.raises(SofieError, match="cannot be broadcast"):
        sr.load(model).code()


# ---- Min / Max / Mean ---------------------------------------------------------------------------

NARY_SHAPES = {
    "one": [(3, 4)],
    "two_same": [(3, 4), (3, 4)],
    "two_broadcast": [(3, 1), (4,)],
    "three": [(2, 3, 4), (3, 1), ()],
    "four": [(4,), (2, 1, 4), (1, 3, 1), (2, 3, 4)],
}


def _check_nary(check, op, dtype, shapes, opset=13, seed=15):
    rng = np.random.default_rng(seed)
    feeds = {n: _data(rng, s, dtype) for n, s in zip("abcdefg", shapes)}
    model = _node_model(op, [(dtype, s) for s in shapes], dtype, np.broadcast_shapes(*shapes), opset=opset)
    check(model, feeds)


@pytest.mark.parametrize("case", list(NARY_SHAPES))
@pytest.mark.parametrize("dtype", ALL_TYPES)
@pytest.mark.parametrize("op", ["Min", "Max"])
def test_min_max(check_model, op, dtype, case):
    _check_nary(check_model, op, dtype, NARY_SHAPES[case])


@pytest.mark.parametrize("case", list(NARY_SHAPES))
def test_mean(check_model, case):
    _check_nary(check_model, "Mean", np.float32, NARY_SHAPES[case])


@pytest.mark.parametrize("case", list(NARY_SHAPES))
def test_mean_float64(case):
    rng = np.random.default_rng(23)
    _check_double("Mean", {n: _data(rng, s, np.float64) for n, s in zip("abcd", NARY_SHAPES[case])}, opset=13)


@pytest.mark.parametrize("op", ["Min", "Max", "Mean", "Sum"])
def test_nary_nan_inf(check_model, op):
    a = SPECIAL.astype(np.float32)
    model = _node_model(op, [(np.float32, (8,)), (np.float32, (8, 1)), (np.float32, ())], np.float32, (8, 8))
    check_model(model, {"a": a, "b": a[::-1].reshape(8, 1).copy(), "c": np.array(0.5, np.float32)})


@pytest.mark.parametrize("opset", [7, 8, 12])
@pytest.mark.parametrize("op", ["Min", "Max", "Mean"])
def test_nary_old_opsets(check_model, op, opset):
    shapes = [(3, 4)] * 3 if opset < 8 else NARY_SHAPES["three"]
    _check_nary(check_model, op, np.float32, shapes, opset=opset)


@pytest.mark.parametrize("batch", [1, 3])
def test_nary_symbolic(check_model, batch):
    rng = np.random.default_rng(batch)
    nodes = [helper.make_node("Max", ["x", "z", "w"], ["m"]), helper.make_node("Mean", ["m", "x"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 4]), ("z", np.float32, ["N", 1])], [("y", np.float32, ["N", 4])],
                       {"w": rng.standard_normal(4).astype(np.float32)})
    check_model(model, {"x": _data(rng, (batch, 4), np.float32), "z": _data(rng, (batch, 1), np.float32)})


@pytest.mark.parametrize("op", ["Mean", "Sum"])
def test_mean_sum_refuse_integers(op):
    model = _node_model(op, [(np.int32, (3,)), (np.int32, (3,))], np.int32, (3,))
    with pytest.raises(SofieError, match="input type int32 is not supported"):
        sr.load(model).code()


# ---- Mod -----------------------------------------------------------------------------------------

def _mod_operands(rng, dtype, sa, sb):
    """Mixed-sign operands with a divisor that is never zero."""
    a, b = _data(rng, sa, dtype), _data(rng, sb, dtype)
    if np.dtype(dtype).kind == "f":
        a, b = a * 3, np.where(np.abs(b) < 0.5, 1.25, b)
    else:
        b = np.where(b == 0, 3, b)
    return a, np.asarray(b).astype(dtype)


# floats need fmod=1 before opset 28 (see test_mod_float_fmod0_*)
MOD_TYPES = [(t, f) for t in (np.int8, np.uint8, np.int32, np.int64) for f in (0, 1)] + [(np.float32, 1), (np.float64, 1)]


@pytest.mark.parametrize("case", ["same", "scalar", "outer", "middle"])
@pytest.mark.parametrize("dtype, fmod", MOD_TYPES, ids=[f"{np.dtype(t)}-fmod{f}" for t, f in MOD_TYPES])
def test_mod(check_model, dtype, fmod, case):
    rng = np.random.default_rng(16)
    sa, sb = BROADCAST[case]
    a, b = _mod_operands(rng, dtype, sa, sb)
    model = _node_model("Mod", [(dtype, sa), (dtype, sb)], dtype, np.broadcast_shapes(sa, sb), opset=13, fmod=fmod)
    check_model(model, {"a": a, "b": b})


@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_sign_rules(check_model, fmod):
    a = np.array([7, -7, 7, -7, 0, 6, -6, -128, 127], np.int8)
    b = np.array([3, 3, -3, -3, 5, -3, 3, -1, -1], np.int8)
    model = _node_model("Mod", [(np.int8, (9,)), (np.int8, (9,))], np.int8, (9,), opset=10, fmod=fmod)
    check_model(model, {"a": a, "b": b})


def test_mod_float_special_values(check_model):
    a, b = np.meshgrid(SPECIAL, SPECIAL)
    model = _node_model("Mod", [(np.float64, a.shape), (np.float64, b.shape)], np.float64, a.shape, fmod=1)
    check_model(model, {"a": a, "b": b})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mod_float_fmod0_opset28(dtype):
    """Opset 28 floors float remainders (onnxruntime has no opset 28 yet): compared with numpy's %."""
    rng = np.random.default_rng(17)
    a, b = _mod_operands(rng, dtype, (3, 4), (4,))
    a.flat[:4] = [0.0, -0.0, 2.5, -2.5]
    b[:] = [3.0, -3.0, np.inf, np.inf]
    model = _node_model("Mod", [(dtype, a.shape), (dtype, b.shape)], dtype, a.shape, opset=28, fmod=0)
    (y,) = sofie_run(model, {"a": a, "b": b})
    np.testing.assert_allclose(y, np.mod(a, b), rtol=1e-6)
    np.testing.assert_array_equal(np.signbit(y[0, :2]), [False, True])


def test_mod_float_fmod0_before_opset28():
    model = _node_model("Mod", [(np.float32, (3,)), (np.float32, (3,))], np.float32, (3,), opset=13, fmod=0)
    with pytest.raises(SofieError, match="only defined from opset 28"):
        sr.load(model).code()


@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_integer_division_by_zero(fmod):
    model = _node_model("Mod", [(np.int32, (3,)), (np.int32, (3,))], np.int32, (3,), fmod=fmod)
    sess = sr.compile(sr.load(model), backend="jit")
    with pytest.raises(Exception, match="division by zero"):
        sess.infer(np.array([1, 2, 3], np.int32), np.array([1, 0, 2], np.int32))


def test_mod_folded_division_by_zero():
    model = make_model([helper.make_node("Mod", ["a", "b"], ["y"])], [], [("y", np.int64, [2])],
                       {"a": np.array([1, 2], np.int64), "b": np.array([1, 0], np.int64)})
    with pytest.raises(SofieError, match="integer division by zero"):
        sr.load(model).code()


# ---- constant folding (numpy references) ----------------------------------------------------------

FOLDED_UNARY = [(op, {}, 17) for op in MATH] + [(op, attrs, max(opset, 17)) for op, attrs, opset in ACTIVATIONS]


@pytest.mark.parametrize("op, attrs, opset", FOLDED_UNARY,
                         ids=[f"{op}-{i}" for i, (op, _, _) in enumerate(FOLDED_UNARY)])
def test_unary_folded(check_folded, op, attrs, opset):
    rng = np.random.default_rng(18)
    _check_unary(check_folded, op, _data(rng, (3, 4), np.float32, *MATH.get(op, (-4, 4))), opset=opset, **attrs)


@pytest.mark.parametrize("op, dtype, out", [("Sign", np.int32, None), ("Sign", np.float32, None),
                                            ("IsNaN", np.float32, np.bool_), ("IsInf", np.float64, np.bool_)])
def test_classification_folded(check_folded, op, dtype, out):
    x = SPECIAL.astype(dtype) if np.dtype(dtype).kind == "f" else np.array([-3, 0, 4], dtype)
    _check_unary(check_folded, op, x, out_dtype=out)


@pytest.mark.parametrize("op, dtype", [(op, t) for op, _ in COMPARISONS for t in (np.float32, np.int64)]
                         + [("And", np.bool_), ("Or", np.bool_), ("Xor", np.bool_), ("Equal", np.bool_)])
def test_binary_logic_folded(check_folded, op, dtype):
    _check_binary(check_folded, op, dtype, *BROADCAST["middle"], np.bool_)


@pytest.mark.parametrize("op, dtype", [("Min", np.int8), ("Max", np.uint8), ("Min", np.float32), ("Max", np.float64),
                                       ("Mean", np.float32), ("Sum", np.float64)])
def test_nary_folded(check_folded, op, dtype):
    _check_nary(check_folded, op, dtype, NARY_SHAPES["four"])


@pytest.mark.parametrize("fmod, dtype", [(0, np.int32), (1, np.int64), (0, np.int8), (1, np.float32)])
def test_mod_folded(check_folded, fmod, dtype):
    rng = np.random.default_rng(19)
    a, b = _mod_operands(rng, dtype, (3, 4), (4,))
    check_folded(_node_model("Mod", [(dtype, a.shape), (dtype, b.shape)], dtype, a.shape, fmod=fmod), {"a": a, "b": b})


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8])
def test_where_folded(check_folded, dtype):
    check_folded(*_where(dtype, "three_way", seed=20))


def test_prelu_folded(check_folded):
    rng = np.random.default_rng(21)
    x, s = _data(rng, (2, 3, 4), np.float32), _data(rng, (3, 1), np.float32)
    check_folded(_node_model("PRelu", [(np.float32, x.shape), (np.float32, s.shape)], np.float32, x.shape),
                 {"a": x, "b": s})


def test_shape_arithmetic_with_symbols_folds_or_runs(check_model):
    """Equal/Where/Max on a shape with a symbolic dim: folded where the entries are known, computed otherwise."""
    rng = np.random.default_rng(22)
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Equal", ["s", "one"], ["e"]),
             helper.make_node("Where", ["e", "s", "two"], ["w"]), helper.make_node("Max", ["w", "one"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 1, 5])], [("y", np.int64, [3])],
                       {"one": np.array([1], np.int64), "two": np.array([2], np.int64)})
    check_model(model, {"x": _data(rng, (3, 1, 5), np.float32)})
