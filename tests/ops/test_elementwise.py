"""Element-wise operators against onnxruntime: unary math and activations,
broadcasting binary arithmetic, Cast and Clip."""

import numpy as np
import pytest
from conftest import make_model, sofie_run
from onnx import TensorProto, helper

import sofie_rdf as sr


def _data(rng, shape, dtype, positive=False):
    """Random inputs of a dtype; ``positive`` keeps them in [0.5, 2.5) (Sqrt, Log, Pow bases)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        x = rng.uniform(0.5, 2.5, shape) if positive else rng.standard_normal(shape) * 2
    elif dtype == np.bool_:
        x = rng.integers(0, 2, shape)
    else:
        x = rng.integers(1, 6, shape) if positive else rng.integers(-20, 20, shape)
    return np.asarray(x).astype(dtype)


def _unary(check_model, op, shape=(3, 4, 5), dtype=np.float32, opset=17, positive=False, seed=0, **attrs):
    rng = np.random.default_rng(seed)
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", dtype, list(shape))],
                       [("y", dtype, list(shape))], opset=opset)
    check_model(model, {"x": _data(rng, shape, dtype, positive)})


# ---- unary ---------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Reciprocal", "Identity"])
def test_unary_float(check_model, op):
    _unary(check_model, op)


@pytest.mark.parametrize("op", ["Sqrt", "Log"])
def test_unary_positive(check_model, op):
    _unary(check_model, op, positive=True)


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Sqrt"])
def test_unary_float64(check_model, op):
    _unary(check_model, op, shape=(7,), dtype=np.float64, positive=op == "Sqrt")


@pytest.mark.parametrize("op", ["Neg", "Abs"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_unary_int(check_model, op, dtype):
    _unary(check_model, op, shape=(4, 6), dtype=dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64, np.int8, np.int16])
def test_abs_small_and_unsigned(check_model, dtype):
    _unary(check_model, "Abs", shape=(10,), dtype=dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.int8])
def test_relu_int(check_model, dtype):
    _unary(check_model, "Relu", shape=(10,), dtype=dtype, opset=14)


def test_unary_scalar_tensor(check_model):
    _unary(check_model, "Exp", shape=())


@pytest.mark.parametrize("alpha", [None, 0.2, -1.5])
def test_leaky_relu(check_model, alpha):
    attrs = {} if alpha is None else {"alpha": alpha}
    _unary(check_model, "LeakyRelu", **attrs)


@pytest.mark.parametrize("attrs", [{}, {"alpha": 2.0}, {"alpha": 0.5, "gamma": 3.0}, {"gamma": 1.1}])
def test_selu(check_model, attrs):
    _unary(check_model, "Selu", **attrs)


@pytest.mark.parametrize("alpha", [None, 0.3, 2.5])
def test_elu(check_model, alpha):
    attrs = {} if alpha is None else {"alpha": alpha}
    _unary(check_model, "Elu", **attrs)


@pytest.mark.parametrize("opset", [7, 13])
def test_activation_old_and_new_opsets(check_model, opset):
    rng = np.random.default_rng(opset)
    nodes = [helper.make_node("LeakyRelu", ["x"], ["a"], alpha=0.1), helper.make_node("Elu", ["a"], ["b"]),
             helper.make_node("Selu", ["b"], ["c"]), helper.make_node("Sigmoid", ["c"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [5, 3])], [("y", np.float32, [5, 3])], opset=opset)
    check_model(model, {"x": _data(rng, (5, 3), np.float32)})


EXTREME = [(op, np.float32) for op in ("Sigmoid", "Tanh", "Exp", "Elu", "Selu", "LeakyRelu", "Reciprocal")]
EXTREME += [(op, np.float64) for op in ("Sigmoid", "Tanh", "Exp", "Reciprocal")]  # onnxruntime has no double Elu/Selu


@pytest.mark.parametrize("op, dtype", EXTREME)
def test_unary_extreme_values(check_model, op, dtype):
    """Saturation and overflow far out in both directions (exp overflows to inf, as in onnxruntime)."""
    x = np.array([-1e4, -100, -20, -1e-3, 0, 1e-3, 20, 100, 1e4], dtype)
    model = make_model([helper.make_node(op, ["x"], ["y"])], [("x", dtype, [9])], [("y", dtype, [9])])
    check_model(model, {"x": x})


FAST_MATH = {"Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Tanh": np.tanh}


@pytest.mark.parametrize("backend", ["jit", "native"])
@pytest.mark.parametrize("op", sorted(FAST_MATH))
def test_fast_math_within_three_ulp(op, backend):
    """Sigmoid and Tanh (kernels/fastmath.hxx: a polynomial e^x that vectorizes) within 3 units in the last
    place of the float64 result, on a dense sweep of the range where float results are normal, with and
    without fused multiply-adds (Cling compiles without them)."""
    x = np.concatenate([np.linspace(-87, 87, 200001), -np.geomspace(1e-7, 87, 20000),
                        np.geomspace(1e-7, 87, 20000)]).astype(np.float32)
    model = make_model([helper.make_node(op, ["x"], ["y"])], [("x", np.float32, [x.size])],
                       [("y", np.float32, [x.size])])
    y = sofie_run(model, {"x": x}, backend)[0].astype(np.float64)
    ref = FAST_MATH[op](x.astype(np.float64))
    ulps = np.abs(y - ref) / np.spacing(np.abs(ref).astype(np.float32))
    assert ulps.max() <= 3, f"{op}: {ulps.max():.2f} ulp at x = {x[ulps.argmax()]}"


@pytest.mark.parametrize("op", sorted(FAST_MATH))
def test_fast_math_under_ffast_math(op):
    """A native build with -ffast-math, which folds the rounding by 1.5 * 2^23 away, takes the nearbyint
    branch of exp_round: results stay close (reassociation may cost a few ulp), not off by powers of 2.
    Loading the library leaves the process's subnormals alone (build.py links without -ffast-math)."""
    x = np.linspace(-60, 60, 20001).astype(np.float32)
    model = make_model([helper.make_node(op, ["x"], ["y"])], [("x", np.float32, [x.size])],
                       [("y", np.float32, [x.size])])
    sess = sr.compile(sr.load(model), backend="native", flags=("-O3", "-march=native", "-ffast-math"))
    y = sess(x).astype(np.float64)
    ref = FAST_MATH[op](x.astype(np.float64))
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=0)
    tiny = np.array([1e-40], np.float32)
    assert (tiny * np.float32(0.5))[0] != 0, "flush-to-zero was turned on in this process"


def test_softmax_under_ffast_math():
    """Softmax's exponentials, taken on whole vectors elsewhere, keep the scalar nearbyint branch under
    -ffast-math (rows of 50: whole vectors and the overlapping last one)."""
    x = (np.random.default_rng(4).standard_normal((7, 50)) * 20).astype(np.float32)
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [("x", np.float32, [7, 50])],
                       [("y", np.float32, [7, 50])], opset=13)
    sess = sr.compile(sr.load(model), backend="native", flags=("-O3", "-march=native", "-ffast-math"))
    e = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(sess(x), e / e.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)


# ---- binary ---------------------------------------------------------------------

BINARY = ["Add", "Sub", "Mul", "Div", "Pow"]
SHAPES = {
    "same": ((3, 4), (3, 4)),
    "scalar_b": ((3, 4), ()),
    "scalar_a": ((), (3, 4)),
    "one_b": ((2, 3, 4), (1,)),
    "row": ((3, 4), (4,)),
    "row2d": ((3, 4), (1, 4)),
    "column": ((3, 4), (3, 1)),
    "outer": ((3, 1), (1, 4)),
    "rank_mismatch": ((2, 3, 4, 5), (4, 1)),
    "both_broadcast": ((2, 1, 4), (3, 1)),
    "a_broadcast": ((1, 5), (2, 3, 5)),
    "middle": ((2, 3, 4), (2, 1, 4)),
}


def _binary(check_model, op, sa, sb, dtype=np.float32, seed=0, dtype_b=None):
    rng = np.random.default_rng(seed)
    dtype_b = dtype_b or dtype
    out = np.broadcast_shapes(sa, sb)
    pow_base = op == "Pow"
    a = _data(rng, sa, dtype, positive=pow_base or op == "Div")
    b = _data(rng, sb, dtype_b, positive=op == "Div")
    if op == "Pow":
        b = (rng.uniform(-2, 3, sb) if np.dtype(dtype_b).kind == "f" else rng.integers(0, 4, sb)).astype(dtype_b)
    if op == "Div" and np.dtype(dtype).kind == "f":
        b = np.where(rng.random(sb) < 0.5, -b, b).astype(dtype_b)
    model = make_model([helper.make_node(op, ["a", "b"], ["y"])], [("a", dtype, list(sa)), ("b", dtype_b, list(sb))],
                       [("y", dtype, list(out))])
    check_model(model, {"a": a, "b": b})


@pytest.mark.parametrize("case", list(SHAPES))
@pytest.mark.parametrize("op", BINARY)
def test_binary_broadcast(check_model, op, case):
    _binary(check_model, op, *SHAPES[case])


@pytest.mark.parametrize("case", ["same", "scalar_b", "column", "rank_mismatch"])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_binary_int64(check_model, op, case):
    _binary(check_model, op, *SHAPES[case], dtype=np.int64)


def test_int_div_truncates_toward_zero(check_model):
    a = np.array([7, -7, 7, -7, 0, 9, -1], dtype=np.int64)
    b = np.array([2, 2, -2, -2, 3, 3, 4], dtype=np.int64)
    model = make_model([helper.make_node("Div", ["a", "b"], ["y"])], [("a", np.int64, [7]), ("b", np.int64, [7])],
                       [("y", np.int64, [7])])
    check_model(model, {"a": a, "b": b})


@pytest.mark.parametrize("case", ["same", "row", "rank_mismatch"])
@pytest.mark.parametrize("op", BINARY)
def test_binary_float64(check_model, op, case):
    _binary(check_model, op, *SHAPES[case], dtype=np.float64)


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_binary_int32(check_model, op):
    _binary(check_model, op, *SHAPES["column"], dtype=np.int32)


NARROW = [(op, t) for op in ("Add", "Sub", "Mul", "Div") for t in (np.uint8, np.int8, np.int16)]


@pytest.mark.parametrize("op, dtype", NARROW + [("Add", np.uint32), ("Div", np.uint32), ("Sub", np.uint64)])
def test_binary_small_and_unsigned(check_model, op, dtype):
    """Narrow types wrap around as in onnxruntime (C++ computes them in int, then narrows)."""
    rng = np.random.default_rng(16)
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -200), min(int(info.max), 250)
    a = rng.integers(lo, hi, (4, 5)).astype(dtype)
    b = rng.integers(1, min(hi, 100), (5,)).astype(dtype)
    model = make_model([helper.make_node(op, ["a", "b"], ["y"])], [("a", dtype, [4, 5]), ("b", dtype, [5])],
                       [("y", dtype, [4, 5])])
    check_model(model, {"a": a, "b": b})


@pytest.mark.parametrize("base, exponent", [(np.float32, np.int64), (np.float32, np.float64),
                                            (np.int64, np.int64), (np.float64, np.float32),
                                            (np.int64, np.float32), (np.int32, np.int64)])
def test_pow_mixed_types(check_model, base, exponent):
    _binary(check_model, "Pow", (3, 4), (4,), dtype=base, dtype_b=exponent)


def test_binary_with_initializer(check_model):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((1, 4)).astype(np.float32)
    model = make_model([helper.make_node("Mul", ["x", "w"], ["m"]), helper.make_node("Sub", ["w", "m"], ["y"])],
                       [("x", np.float32, [3, 4])], [("y", np.float32, [3, 4])], {"w": w})
    check_model(model, {"x": _data(rng, (3, 4), np.float32)})


def test_binary_same_input_twice(check_model):
    rng = np.random.default_rng(4)
    model = make_model([helper.make_node("Mul", ["x", "x"], ["y"])], [("x", np.float32, [6])],
                       [("y", np.float32, [6])])
    check_model(model, {"x": _data(rng, (6,), np.float32)})


# ---- symbolic batch dim ----------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 5])
def test_binary_symbolic_batch(check_model, batch):
    rng = np.random.default_rng(batch)
    b = rng.standard_normal((1, 4)).astype(np.float32)
    c = rng.standard_normal((3, 1)).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "b"], ["s"]), helper.make_node("Mul", ["s", "c"], ["m"]),
             helper.make_node("Div", ["m", "x"], ["d"]), helper.make_node("Tanh", ["d"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3, 4])], [("y", np.float32, ["N", 3, 4])], {"b": b, "c": c})
    check_model(model, {"x": _data(rng, (batch, 3, 4), np.float32, positive=True)})


@pytest.mark.parametrize("batch", [2, 7])
def test_binary_symbolic_both_inputs(check_model, batch):
    rng = np.random.default_rng(batch)
    model = make_model([helper.make_node("Sub", ["a", "b"], ["y"])],
                       [("a", np.float32, ["N", 4]), ("b", np.float32, ["N", 1])], [("y", np.float32, ["N", 4])])
    check_model(model, {"a": _data(rng, (batch, 4), np.float32), "b": _data(rng, (batch, 1), np.float32)})


# ---- Cast ----------------------------------------------------------------------

CAST = {
    "float_int64": (np.float32, TensorProto.INT64, np.int64),
    "float_int32": (np.float32, TensorProto.INT32, np.int32),
    "float_double": (np.float32, TensorProto.DOUBLE, np.float64),
    "float_bool": (np.float32, TensorProto.BOOL, np.bool_),
    "int64_float": (np.int64, TensorProto.FLOAT, np.float32),
    "int32_float": (np.int32, TensorProto.FLOAT, np.float32),
    "double_float": (np.float64, TensorProto.FLOAT, np.float32),
    "bool_float": (np.bool_, TensorProto.FLOAT, np.float32),
    "int64_int32": (np.int64, TensorProto.INT32, np.int32),
    "int64_bool": (np.int64, TensorProto.BOOL, np.bool_),
    "bool_int64": (np.bool_, TensorProto.INT64, np.int64),
    "double_int64": (np.float64, TensorProto.INT64, np.int64),
}


@pytest.mark.parametrize("case", list(CAST))
def test_cast(check_model, case):
    src, to, dst = CAST[case]
    rng = np.random.default_rng(5)
    x = _data(rng, (4, 5), src)
    if np.dtype(src).kind == "f":
        x[0, :3] = 0  # exact zeros for the bool conversion
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=to)], [("x", src, [4, 5])], [("y", dst, [4, 5])])
    check_model(model, {"x": x})


def test_cast_then_arithmetic(check_model):
    rng = np.random.default_rng(6)
    nodes = [helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT64),
             helper.make_node("Mul", ["i", "k"], ["m"]),
             helper.make_node("Cast", ["m"], ["y"], to=TensorProto.FLOAT)]
    model = make_model(nodes, [("x", np.float32, [8])], [("y", np.float32, [8])], {"k": np.array(3, np.int64)})
    check_model(model, {"x": _data(rng, (8,), np.float32) * 5})


# ---- Clip ----------------------------------------------------------------------

@pytest.mark.parametrize("opset", [7, 10])
@pytest.mark.parametrize("attrs", [{}, {"min": -0.5}, {"max": 0.7}, {"min": -1.0, "max": 1.0}])
def test_clip_opset6_attributes(check_model, attrs, opset):
    """Clip-6 (bounds as attributes) is the Clip of opsets 6 to 10; sofie-rdf reads opset 7 and later."""
    _unary(check_model, "Clip", opset=opset, **attrs)


CLIP_BOUNDS = {
    "both": (-0.5, 0.8),
    "min_only": (-0.5, None),
    "max_only": ("", 0.8),
    "none": (None, None),
}


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("case", list(CLIP_BOUNDS))
def test_clip_initializer_bounds(check_model, case, opset):
    lo, hi = CLIP_BOUNDS[case]
    inputs, inits = ["x"], {}
    if lo is not None or hi is not None:
        inputs.append("lo" if lo not in (None, "") else "")
        if lo not in (None, ""):
            inits["lo"] = np.array(lo, np.float32)
    if hi is not None:
        inputs.append("hi")
        inits["hi"] = np.array(hi, np.float32)
    rng = np.random.default_rng(7)
    model = make_model([helper.make_node("Clip", inputs, ["y"])], [("x", np.float32, [3, 5])],
                       [("y", np.float32, [3, 5])], inits, opset=opset)
    check_model(model, {"x": _data(rng, (3, 5), np.float32)})


@pytest.mark.parametrize("which", ["both", "min", "max"])
def test_clip_runtime_bounds(check_model, which):
    names = {"both": ["lo", "hi"], "min": ["lo"], "max": ["", "hi"]}[which]
    rng = np.random.default_rng(8)
    graph_inputs = [("x", np.float32, [4, 4])] + [(n, np.float32, []) for n in names if n]
    model = make_model([helper.make_node("Clip", ["x", *names], ["y"])], graph_inputs, [("y", np.float32, [4, 4])],
                       opset=13)
    feeds = {"x": _data(rng, (4, 4), np.float32), "lo": np.array(-0.3, np.float32), "hi": np.array(0.6, np.float32)}
    check_model(model, {k: v for k, v in feeds.items() if k == "x" or k in names})


def test_clip_int64(check_model):
    rng = np.random.default_rng(9)
    model = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [("x", np.int64, [10])],
                       [("y", np.int64, [10])], {"lo": np.array(-5, np.int64), "hi": np.array(7, np.int64)},
                       opset=13)
    check_model(model, {"x": _data(rng, (10,), np.int64)})


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.uint64])
def test_clip_narrow_types(check_model, dtype):
    rng = np.random.default_rng(9)
    info = np.iinfo(dtype)
    x = rng.integers(max(int(info.min), -100), min(int(info.max), 200), (12,)).astype(dtype)
    model = make_model([helper.make_node("Clip", ["x", "", "hi"], ["y"])], [("x", dtype, [12])],
                       [("y", dtype, [12])], {"hi": np.array(50, dtype)}, opset=13)
    check_model(model, {"x": x})


def test_clip_min_above_max(check_model):
    """min > max: every element becomes max (the spec's rule)."""
    model = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [("x", np.float32, [6])],
                       [("y", np.float32, [6])], {"lo": np.array(1.0, np.float32), "hi": np.array(-1.0, np.float32)},
                       opset=13)
    check_model(model, {"x": np.linspace(-3, 3, 6, dtype=np.float32)})


@pytest.mark.parametrize("batch", [1, 6])
def test_clip_symbolic_batch(check_model, batch):
    rng = np.random.default_rng(batch)
    model = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [("x", np.float32, ["N", 3])],
                       [("y", np.float32, ["N", 3])],
                       {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}, opset=13)
    check_model(model, {"x": _data(rng, (batch, 3), np.float32) * 4})


# ---- constant folding ---------------------------------------------------------------

def test_constant_chain_is_folded(check_model):
    """An op chain on initializers only folds at generation time; the result feeds a run-time op."""
    rng = np.random.default_rng(10)
    w = rng.uniform(0.5, 2, (3, 4)).astype(np.float32)
    nodes = [helper.make_node("Sqrt", ["w"], ["s"]), helper.make_node("Mul", ["s", "two"], ["m"]),
             helper.make_node("Clip", ["m", "lo", ""], ["c"]),
             helper.make_node("Cast", ["c"], ["d"], to=TensorProto.DOUBLE),
             helper.make_node("Cast", ["d"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["x", "f"], ["y"])]
    inits = {"w": w, "two": np.array(2.0, np.float32), "lo": np.array(2.2, np.float32)}
    model = make_model(nodes, [("x", np.float32, [3, 4])], [("y", np.float32, [3, 4])], inits, opset=13)
    check_model(model, {"x": _data(rng, (3, 4), np.float32)})
    header = sr.load(model).code().header
    assert all(f": {op} " not in header for op in ("Sqrt", "Mul", "Clip", "Cast"))  # only the Add runs


def test_fully_constant_output(check_model):
    nodes = [helper.make_node("Exp", ["w"], ["e"]), helper.make_node("Neg", ["e"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [2])], [("y", np.float32, [2, 2]), ("z", np.float32, [2])],
                       {"w": np.array([[0.0, 1.0], [-1.0, 0.5]], np.float32)})
    model.graph.node.append(helper.make_node("Relu", ["x"], ["z"]))
    check_model(model, {"x": np.array([-1.0, 2.0], np.float32)})


# ---- the same operators folded at generation time (numpy references) ---------------

FOLDED_UNARY = [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Exp", {}), ("Neg", {}), ("Abs", {}),
                ("Reciprocal", {}), ("Sqrt", {}), ("Log", {}), ("LeakyRelu", {"alpha": 0.3}),
                ("Selu", {"alpha": 1.5, "gamma": 0.7}), ("Elu", {"alpha": 0.4})]


@pytest.mark.parametrize("op, attrs", FOLDED_UNARY, ids=[op for op, _ in FOLDED_UNARY])
def test_unary_folded(check_folded, op, attrs):
    _unary(check_folded, op, positive=op in ("Sqrt", "Log"), **attrs)


@pytest.mark.parametrize("case", ["row", "rank_mismatch"])
@pytest.mark.parametrize("op", BINARY)
def test_binary_folded(check_folded, op, case):
    _binary(check_folded, op, *SHAPES[case])


@pytest.mark.parametrize("op", ["Div", "Sub"])
def test_binary_int64_folded(check_folded, op):
    _binary(check_folded, op, *SHAPES["column"], dtype=np.int64)


@pytest.mark.parametrize("case", list(CAST))
def test_cast_folded(check_folded, case):
    test_cast(check_folded, case)


@pytest.mark.parametrize("case", list(CLIP_BOUNDS))
def test_clip_folded(check_folded, case):
    test_clip_initializer_bounds(check_folded, case, 13)


def test_clip_opset6_folded(check_folded):
    _unary(check_folded, "Clip", opset=10, min=-0.5, max=0.5)


def test_symbolic_dim_broadcast_against_fixed(check_model):
    """A symbolic dim facing a fixed size > 1 can only be 1 at run time: it must be read with stride 0."""
    rng = np.random.default_rng(18)
    model = make_model([helper.make_node("Add", ["a", "b"], ["y"])],
                       [("a", np.float32, ["N", 4]), ("b", np.float32, [3, 4])], [("y", np.float32, [3, 4])])
    check_model(model, {"a": _data(rng, (1, 4), np.float32), "b": _data(rng, (3, 4), np.float32)})
