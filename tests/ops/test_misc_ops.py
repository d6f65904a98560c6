"""CastLike, BitShift, Bitwise*, Shrink, Swish, Hardmax, LpNormalization, MeanVarianceNormalization, CumProd
(and CumSum's unsigned types), Det and ReverseSequence against onnxruntime.

Where onnxruntime has no kernel the expected values come from numpy, and the
test says so: BitShift on uint16 and from opset 28 (signed types, shift counts
outside [0, bits)), Hardmax and Det on float64, MeanVarianceNormalization on
float64 (onnxruntime's function body mixes float and double), CumSum on
uint32/uint64, CastLike with ``saturate`` (onnxruntime refuses the attribute
for non-float8 targets) and ReverseSequence at opset 28.
"""

import numpy as np
import pytest
from conftest import make_model, sofie_run
from onnx import helper

from sofie_rdf.errors import ShapeError

FLOATS = [np.float32, np.float64]
SIGNED = [np.int8, np.int16, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]
INTEGERS = SIGNED + UNSIGNED
ALL = FLOATS + INTEGERS + [np.bool_]


def _name(dtype) -> str:
    return np.dtype(dtype).name


def _data(shape, dtype, seed=0, low=-50, high=50):
    """Random values of the type: floats with fractions, integers in [low, high) (clipped to the type)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind == "f":
        return rng.uniform(low, high, shape).astype(dtype)
    if dtype.kind == "u":
        low = max(low, 0)
    return rng.integers(low, high, shape).astype(dtype)


def _unary(op, dtype, shape, opset, out_dtype=None, **attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    return make_model([node], [("x", dtype, shape)], [("y", out_dtype or dtype, shape)], opset=opset)


def _check_numpy(model, feeds, expected, rtol=1e-5, atol=1e-6):
    """sofie-rdf against numpy expectations (where onnxruntime lacks a kernel)."""
    out = sofie_run(model, feeds)
    for a, b in zip(out, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ---- CastLike -----------------------------------------------------------------

def _castlike_model(src, targets, opset, shape=(2, 5), **attrs):
    """One CastLike per target type, all from input x: every target of one source type in one model."""
    nodes = [helper.make_node("CastLike", ["x", f"like{k}"], [f"y{k}"], **attrs) for k in range(len(targets))]
    inputs = [("x", src, list(shape))] + [(f"like{k}", t, [1]) for k, t in enumerate(targets)]
    outputs = [(f"y{k}", t, list(shape)) for k, t in enumerate(targets)]
    return make_model(nodes, inputs, outputs, opset=opset)


def _castlike_feeds(src, targets, shape=(2, 5)):
    # non-negative values below 100 convert exactly (or defined: modular, truncation) into every type
    x = _data(shape, src, 1, low=-100 if np.dtype(src).kind == "i" else 0, high=100)
    return {"x": x, **{f"like{k}": np.zeros(1, t) for k, t in enumerate(targets)}}


@pytest.mark.parametrize("opset", [15, 19, 21, 24])
@pytest.mark.parametrize("src", ALL, ids=_name)
def test_castlike(check_model, src, opset):
    check_model(_castlike_model(src, ALL, opset), _castlike_feeds(src, ALL))


@pytest.mark.parametrize("saturate", [0, 1])
def test_castlike_saturate_ignored(saturate):
    """saturate only concerns float8 targets; onnxruntime refuses it on others, numpy is the reference."""
    feeds = _castlike_feeds(np.float32, [np.int32, np.float64])
    model = _castlike_model(np.float32, [np.int32, np.float64], 19, saturate=saturate)
    _check_numpy(model, feeds, [feeds["x"].astype(np.int32), feeds["x"].astype(np.float64)])


def test_castlike_folded(check_folded):
    check_folded(_castlike_model(np.float64, [np.int16, np.bool_], 21), _castlike_feeds(np.float64, [np.int16, np.bool_]))


def test_castlike_symbolic(check_model):
    nodes = [helper.make_node("CastLike", ["x", "like"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3]), ("like", np.int64, ["M"])], [("y", np.int64, ["N", 3])],
                       opset=15)
    check_model(model, {"x": _data((4, 3), np.float32, 2, 0, 9), "like": np.zeros(2, np.int64)})


# ---- BitShift and Bitwise* ----------------------------------------------------

def _binary(op, dtype, a_shape, b_shape, opset, out_shape=None, **attrs):
    node = helper.make_node(op, ["a", "b"], ["y"], **attrs)
    out = out_shape or a_shape
    return make_model([node], [("a", dtype, a_shape), ("b", dtype, b_shape)], [("y", dtype, out)], opset=opset)


def _shift_expected(a, b, left):
    """ONNX opset 28: counts outside [0, bits) give the sign fill alone."""
    bits = a.dtype.itemsize * 8
    out = []
    for x, n in zip(a.reshape(-1).tolist(), np.broadcast_to(b, a.shape).reshape(-1).tolist()):
        if not 0 <= n < bits:
            out.append(-1 if (not left and x < 0) else 0)
        else:
            out.append((x << n) if left else (x >> n))
    wrapped = [v % (1 << bits) for v in out]
    return np.array(wrapped, dtype=f"uint{bits}").view(a.dtype).reshape(a.shape)


@pytest.mark.parametrize("b_shape", [[2, 3], [3], [1]], ids=str)
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64], ids=_name)
def test_bitshift(check_model, dtype, direction, b_shape):
    bits = np.dtype(dtype).itemsize * 8
    a = _data((2, 3), dtype, 3, 0, 250)
    b = np.random.default_rng(4).integers(0, bits, b_shape).astype(dtype)
    check_model(_binary("BitShift", dtype, [2, 3], b_shape, 11, direction=direction), {"a": a, "b": b})


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift_uint16(direction):
    """onnxruntime has no uint16 BitShift kernel: numpy is the reference."""
    a, b = _data((2, 3), np.uint16, 5, 0, 60000), np.array([0, 1, 15], np.uint16)
    _check_numpy(_binary("BitShift", np.uint16, [2, 3], [3], 11, direction=direction), {"a": a, "b": b},
                 [_shift_expected(a, b, direction == "LEFT")])


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", INTEGERS, ids=_name)
def test_bitshift_opset28(dtype, direction):
    """Signed types and counts outside [0, bits) (opset 28; onnxruntime does not load it): numpy from the spec."""
    bits = np.dtype(dtype).itemsize * 8
    a = _data((4, 6), dtype, 6, -120, 120)
    counts = [0, 1, bits - 1, bits, bits + 3, 2] + ([-1] if np.dtype(dtype).kind == "i" else [])
    b = np.resize(np.array(counts, dtype), (6,))
    model = _binary("BitShift", dtype, [4, 6], [6], 28, direction=direction)
    _check_numpy(model, {"a": a, "b": b}, [_shift_expected(a, b, direction == "LEFT")])


def test_bitshift_folded(check_folded):
    a, b = _data((2, 3), np.uint32, 7, 0, 1000), np.array([1, 2, 3], np.uint32)
    check_folded(_binary("BitShift", np.uint32, [2, 3], [3], 11, direction="LEFT"), {"a": a, "b": b})


def test_bitshift_opset28_folded():
    """Constant inputs fold through the numpy reference (opset 28: against the spec's values)."""
    node = helper.make_node("BitShift", ["a", "b"], ["y"], direction="RIGHT")
    inits = {"a": np.array([-8, 8, -1, 5], np.int8), "b": np.array([1, 9, -2, 8], np.int8)}
    model = make_model([node], [], [("y", np.int8, [4])], inits, opset=28)
    _check_numpy(model, {}, [np.array([-4, 0, -1, 0], np.int8)])


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", INTEGERS, ids=_name)
def test_bitwise_binary(check_model, op, dtype):
    a, b = _data((2, 3, 4), dtype, 8, -100, 100), _data((3, 1), dtype, 9, -100, 100)
    check_model(_binary(op, dtype, [2, 3, 4], [3, 1], 18), {"a": a, "b": b})


@pytest.mark.parametrize("dtype", INTEGERS, ids=_name)
def test_bitwise_not(check_model, dtype):
    check_model(_unary("BitwiseNot", dtype, [3, 4], 18), {"x": _data((3, 4), dtype, 10, -100, 100)})


def test_bitwise_symbolic_and_folded(check_model, check_folded):
    model = _binary("BitwiseXor", np.int16, ["N", 3], [3], 18, out_shape=["N", 3])
    feeds = {"a": _data((5, 3), np.int16, 11), "b": _data((3,), np.int16, 12)}
    check_model(model, feeds)
    check_folded(_binary("BitwiseOr", np.uint8, [5, 3], [3], 18), {"a": feeds["a"].astype(np.uint8),
                                                                     "b": feeds["b"].astype(np.uint8)})
    check_folded(_unary("BitwiseNot", np.int64, [4], 18), {"x": np.array([0, -1, 7, 2**40], np.int64)})


@pytest.mark.parametrize("op, dtype, opset, attrs, match", [
    ("BitShift", np.int32, 11, {"direction": "LEFT"}, "not supported"),
    ("BitShift", np.uint8, 11, {"direction": "UP"}, "direction must be LEFT or RIGHT"),
    ("BitShift", np.float32, 28, {"direction": "LEFT"}, "not supported"),
    ("BitwiseAnd", np.float32, 18, {}, "not supported"),
    ("BitwiseOr", np.bool_, 18, {}, "not supported"),
])
def test_bitwise_errors(op, dtype, opset, attrs, match):
    with pytest.raises(ShapeError, match=match):
        sofie_run(_binary(op, dtype, [3], [3], opset, **attrs), {"a": np.zeros(3, dtype), "b": np.zeros(3, dtype)})


def test_bitwise_not_float_error():
    with pytest.raises(ShapeError, match="not supported"):
        sofie_run(_unary("BitwiseNot", np.float64, [3], 18), {"x": np.zeros(3)})


# ---- Shrink and Swish ---------------------------------------------------------

@pytest.mark.parametrize("attrs", [{}, {"lambd": 1.5, "bias": 1.25}, {"lambd": 0.0, "bias": 0.5},
                                   {"lambd": -1.0, "bias": -2.0}], ids=str)
@pytest.mark.parametrize("dtype", FLOATS + INTEGERS, ids=_name)
def test_shrink(check_model, dtype, attrs):
    # lambd = -1, bias = -2 takes unsigned 0 to -2: it wraps, as onnxruntime's results do
    check_model(_unary("Shrink", dtype, [3, 7], 9, **attrs), {"x": _data((3, 7), dtype, 13, -9, 9)})


def test_shrink_folded(check_folded):
    check_folded(_unary("Shrink", np.int32, [8], 9, lambd=1.5, bias=0.7), {"x": _data((8,), np.int32, 14, -9, 9)})
    check_folded(_unary("Shrink", np.float64, [8], 9, lambd=0.25, bias=0.1), {"x": _data((8,), np.float64, 15, -1, 1)})


def test_shrink_bool_error():
    with pytest.raises(ShapeError, match="not supported"):
        sofie_run(_unary("Shrink", np.bool_, [3], 9), {"x": np.zeros(3, bool)})


@pytest.mark.parametrize("alpha", [None, 0.5, -2.0])
@pytest.mark.parametrize("dtype", FLOATS, ids=_name)
def test_swish(check_model, check_folded, dtype, alpha):
    attrs = {} if alpha is None else {"alpha": alpha}
    model = _unary("Swish", dtype, ["N", 5], 24, **attrs)
    x = _data((4, 5), dtype, 16, -6, 6)
    check_model(model, {"x": x})
    check_folded(_unary("Swish", dtype, [4, 5], 24, **attrs), {"x": x})


def test_swish_int_error():
    with pytest.raises(ShapeError, match="not supported"):
        sofie_run(_unary("Swish", np.int32, [3], 24), {"x": np.zeros(3, np.int32)})


# ---- Hardmax ------------------------------------------------------------------

def _hardmax_expected(x, axis, coerced):
    shape = x.shape
    axis %= x.ndim
    if coerced:
        v = x.reshape(int(np.prod(shape[:axis])), -1, 1)
    else:
        v = x.reshape(int(np.prod(shape[:axis])), shape[axis], -1)
    y = np.zeros_like(v)
    np.put_along_axis(y, np.argmax(v, axis=1)[:, None], 1, axis=1)
    return y.reshape(shape)


@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -3])
@pytest.mark.parametrize("opset", [7, 11, 13])
def test_hardmax(check_model, opset, axis):
    attrs = {} if axis is None else {"axis": axis}
    model = _unary("Hardmax", np.float32, [2, 3, 4], opset, **attrs)
    x = _data((2, 3, 4), np.float32, 17)
    x[1, 1, :2] = x[1, 1, 2:].max() + 1  # a tie: the first wins
    if opset < 11:  # onnxruntime registers Hardmax from opset 11 (the same coerced form as 1-10)
        default = 1
        _check_numpy(model, {"x": x}, [_hardmax_expected(x, default if axis is None else axis, True)])
    else:
        check_model(model, {"x": x})


@pytest.mark.parametrize("opset", [11, 13])
def test_hardmax_float64_and_folded(check_folded, opset):
    """onnxruntime has float32 Hardmax only: float64 against numpy."""
    x = _data((3, 2, 5), np.float64, 18)
    coerced = opset < 13
    _check_numpy(_unary("Hardmax", np.float64, [3, 2, 5], opset, axis=1), {"x": x},
                 [_hardmax_expected(x, 1, coerced)])
    check_folded(_unary("Hardmax", np.float32, [3, 2, 5], opset, axis=-2), {"x": x.astype(np.float32)})


def test_hardmax_symbolic(check_model):
    check_model(_unary("Hardmax", np.float32, ["N", 6], 13), {"x": _data((3, 6), np.float32, 19)})


def test_hardmax_errors():
    with pytest.raises(ShapeError, match="not supported"):
        sofie_run(_unary("Hardmax", np.int32, [3], 13), {"x": np.zeros(3, np.int32)})
    with pytest.raises(ShapeError, match="out of range"):
        sofie_run(_unary("Hardmax", np.float32, [3], 13, axis=1), {"x": np.zeros(3, np.float32)})


# ---- LpNormalization ----------------------------------------------------------

@pytest.mark.parametrize("axis", [None, 0, 1, -2])
@pytest.mark.parametrize("p", [None, 1, 2])
@pytest.mark.parametrize("dtype", FLOATS, ids=_name)
@pytest.mark.parametrize("opset", [7, 22])
def test_lp_normalization(check_model, opset, dtype, p, axis):
    attrs = {k: v for k, v in (("p", p), ("axis", axis)) if v is not None}
    x = _data((3, 4, 2), dtype, 20, -5, 5)
    x[1, :, 0] = 0  # a zero vector along axis 1 stays zero
    x[:, 2, 1] = 0
    check_model(_unary("LpNormalization", dtype, [3, 4, 2], opset, **attrs), {"x": x})


def test_lp_normalization_folded_and_symbolic(check_model, check_folded):
    x = _data((3, 4), np.float32, 21)
    check_folded(_unary("LpNormalization", np.float32, [3, 4], 22, p=1, axis=0), {"x": x})
    check_model(_unary("LpNormalization", np.float32, ["N", 4], 22), {"x": x})


def test_lp_normalization_errors():
    with pytest.raises(ShapeError, match="p must be 1 or 2"):
        sofie_run(_unary("LpNormalization", np.float32, [3], 22, p=3), {"x": np.ones(3, np.float32)})
    with pytest.raises(ShapeError, match="not supported"):
        sofie_run(_unary("LpNormalization", np.int64, [3], 22), {"x": np.ones(3, np.int64)})


# ---- MeanVarianceNormalization ------------------------------------------------

def _mvn_expected(x, axes):
    v = x.astype(np.float64)
    mean = v.mean(axis=axes, keepdims=True)
    return ((v - mean) / (np.sqrt(((v - mean) ** 2).mean(axis=axes, keepdims=True)) + 1e-9)).astype(x.dtype)


@pytest.mark.parametrize("axes", [None, [0, 2, 3], [1], [2, 3], [0, 1], [-1, 1], [0, 1, 2, 3]], ids=str)
@pytest.mark.parametrize("opset", [9, 13])
def test_mvn(check_model, opset, axes):
    attrs = {} if axes is None else {"axes": axes}
    x = _data((2, 3, 4, 5), np.float32, 22, -3, 3)
    check_model(_unary("MeanVarianceNormalization", np.float32, [2, 3, 4, 5], opset, **attrs), {"x": x})


@pytest.mark.parametrize("axes", [[0, 2, 3], [1, 3]], ids=str)
def test_mvn_float64(axes):
    """onnxruntime fails float64 MVN (its function body adds a float epsilon to a double): numpy is the reference."""
    x = _data((2, 3, 4, 5), np.float64, 23, -3, 3)
    _check_numpy(_unary("MeanVarianceNormalization", np.float64, [2, 3, 4, 5], 13, axes=axes), {"x": x},
                 [_mvn_expected(x, tuple(axes))])


def test_mvn_constant_slice_and_folded(check_folded):
    """A constant slice is 0 through the spec's 1e-9 epsilon (onnxruntime's kernel, without one, gives NaN)."""
    x = np.ones((2, 3, 2, 2), np.float32)
    _check_numpy(_unary("MeanVarianceNormalization", np.float32, [2, 3, 2, 2], 13), {"x": x}, [np.zeros_like(x)])
    check_folded(_unary("MeanVarianceNormalization", np.float32, [2, 3, 4, 5], 13, axes=[1, 3]),
                 {"x": _data((2, 3, 4, 5), np.float32, 24, -3, 3)})


def test_mvn_symbolic(check_model):
    check_model(_unary("MeanVarianceNormalization", np.float32, ["N", 3, 4, 5], 13),
                {"x": _data((2, 3, 4, 5), np.float32, 25, -3, 3)})


def test_mvn_errors():
    with pytest.raises(ShapeError, match="repeat an axis"):
        sofie_run(_unary("MeanVarianceNormalization", np.float32, [2, 3], 13, axes=[1, -1]), {"x": np.ones((2, 3), np.float32)})
    with pytest.raises(ShapeError, match="out of range"):
        sofie_run(_unary("MeanVarianceNormalization", np.float32, [2, 3], 13), {"x": np.ones((2, 3), np.float32)})


# ---- CumProd (and CumSum's unsigned types) ------------------------------------

def _cumulative_model(op, dtype, shape, axis, opset, **attrs):
    node = helper.make_node(op, ["x", "axis"], ["y"], **attrs)
    return make_model([node], [("x", dtype, shape)], [("y", dtype, shape)], {"axis": np.array(axis, np.int64)},
                      opset=opset)


def _cumulative_data(dtype, shape, seed):
    if np.dtype(dtype).kind == "f":
        return _data(shape, dtype, seed, -2, 2)
    return _data(shape, dtype, seed, -3, 4)


@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint32, np.uint64], ids=_name)
def test_cumprod(check_model, dtype, axis, exclusive, reverse):
    model = _cumulative_model("CumProd", dtype, [3, 4, 5], axis, 26, exclusive=exclusive, reverse=reverse)
    check_model(model, {"x": _cumulative_data(dtype, (3, 4, 5), 26)})


def test_cumprod_wraps_and_folds(check_model, check_folded):
    """Integer products wrap in the element type, as onnxruntime's do."""
    x = np.array([[1000, 1000, 1000, -1000, 7]], np.int32)
    model = _cumulative_model("CumProd", np.int32, [1, 5], 1, 26)
    check_model(model, {"x": x})
    check_folded(model, {"x": x})
    check_folded(_cumulative_model("CumProd", np.float64, [3, 4], 0, 26, exclusive=1, reverse=1),
                 {"x": _cumulative_data(np.float64, (3, 4), 27)})


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("dtype", [np.uint32, np.uint64], ids=_name)
def test_cumsum_unsigned(dtype, exclusive):
    """CumSum's unsigned types (onnxruntime has no kernel for them): numpy is the reference."""
    x = _data((3, 4), dtype, 28, 0, 1000)
    y = np.cumsum(x, axis=1, dtype=dtype)
    if exclusive:
        y = np.concatenate([np.zeros_like(y[:, :1]), y[:, :-1]], axis=1)
    _check_numpy(_cumulative_model("CumSum", dtype, [3, 4], 1, 14, exclusive=exclusive), {"x": x}, [y])


def test_cumprod_symbolic(check_model):
    node = helper.make_node("CumProd", ["x", "axis"], ["y"], reverse=1)
    model = make_model([node], [("x", np.float32, ["N", 4])], [("y", np.float32, ["N", 4])],
                       {"axis": np.array(0, np.int32)}, opset=26)
    check_model(model, {"x": _cumulative_data(np.float32, (3, 4), 29)})


def test_cumprod_errors():
    with pytest.raises(ShapeError, match="not supported"):
        sofie_run(_cumulative_model("CumProd", np.int8, [3], 0, 26), {"x": np.ones(3, np.int8)})
    with pytest.raises(ShapeError, match="out of range"):
        sofie_run(_cumulative_model("CumProd", np.float32, [3], 1, 26), {"x": np.ones(3, np.float32)})


# ---- Det ----------------------------------------------------------------------

def _det_model(dtype, shape, opset=22):
    out = list(shape[:-2])
    return make_model([helper.make_node("Det", ["x"], ["y"])], [("x", dtype, list(shape))], [("y", dtype, out)],
                      opset=opset)


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (5, 5), (4, 3, 3), (2, 3, 4, 4), (1, 1), (0, 0), (0, 2, 2)],
                         ids=str)
@pytest.mark.parametrize("opset", [11, 22])
def test_det(check_model, opset, shape):
    check_model(_det_model(np.float32, shape, opset), {"x": _data(shape, np.float32, 30, -2, 2)}, rtol=1e-4, atol=1e-5)


def test_det_singular_and_pivoting(check_model):
    """A zero leading pivot needs a row swap; a rank-deficient matrix has determinant 0."""
    x = np.array([[[0, 1, 2], [3, 4, 5], [6, 7, 9]], [[1, 2, 3], [2, 4, 6], [1, 1, 1]]], np.float32)
    check_model(_det_model(np.float32, (2, 3, 3)), {"x": x})


def test_det_float64_folded_symbolic(check_model, check_folded):
    """onnxruntime has float32 Det only: float64 against numpy."""
    x = _data((3, 4, 4), np.float64, 31, -2, 2)
    _check_numpy(_det_model(np.float64, (3, 4, 4)), {"x": x}, [np.linalg.det(x)], rtol=1e-10, atol=1e-12)
    check_folded(_det_model(np.float32, (3, 4, 4)), {"x": x.astype(np.float32)})
    model = make_model([helper.make_node("Det", ["x"], ["y"])], [("x", np.float32, ["N", 3, 3])],
                       [("y", np.float32, ["N"])], opset=22)
    check_model(model, {"x": _data((5, 3, 3), np.float32, 32)}, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape, dtype, match", [
    ((2, 3), np.float32, "must be square"),
    ((3,), np.float32, "rank >= 2"),
    ((2, 2), np.int32, "not supported"),
])
def test_det_errors(shape, dtype, match):
    with pytest.raises(ShapeError, match=match):
        sofie_run(_det_model(dtype, shape), {"x": np.zeros(shape, dtype)})


# ---- ReverseSequence ----------------------------------------------------------

def _reverse_model(dtype, shape, batch_axis, time_axis, opset=10):
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], batch_axis=batch_axis, time_axis=time_axis)
    batch = shape[batch_axis]
    return make_model([node], [("x", dtype, shape), ("lens", np.int64, [batch])], [("y", dtype, shape)], opset=opset)


def _reverse_expected(x, lens, batch_axis, time_axis):
    y = x.copy()
    for b, n in enumerate(lens):
        at = [slice(None)] * x.ndim
        at[batch_axis], at[time_axis] = b, slice(0, n)
        y[tuple(at)] = np.flip(x[tuple(at)], axis=0)
    return y


@pytest.mark.parametrize("axes", [(0, 1), (1, 0)], ids=["batch0", "batch1"])
@pytest.mark.parametrize("dtype", ALL, ids=_name)
def test_reverse_sequence(check_model, dtype, axes):
    shape = [4, 4, 3] if axes == (0, 1) else [4, 4]
    lens = np.array([4, 0, 1, 3], np.int64)
    check_model(_reverse_model(dtype, shape, *axes), {"x": _data(shape, dtype, 33), "lens": lens})


@pytest.mark.parametrize("axes", [(0, 1), (1, 0)], ids=["batch0", "batch1"])
def test_reverse_sequence_rank4_symbolic(check_model, axes):
    shape = [3, 5, 2, 2] if axes == (0, 1) else [5, 3, 2, 2]
    sym = ["B" if i == axes[0] else d for i, d in enumerate(shape)]
    sym[2] = "C"
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], batch_axis=axes[0], time_axis=axes[1])
    model = make_model([node], [("x", np.float32, sym), ("lens", np.int64, ["B"])], [("y", np.float32, sym)], opset=10)
    check_model(model, {"x": _data(shape, np.float32, 34), "lens": np.array([5, 2, 1], np.int64)})


def test_reverse_sequence_opset28_and_folded(check_folded):
    """onnxruntime does not load opset 28: numpy is the reference there."""
    x, lens = _data((3, 4), np.int16, 35), np.array([2, 4, 3], np.int64)
    _check_numpy(_reverse_model(np.int16, [3, 4], 0, 1, 28), {"x": x, "lens": lens}, [_reverse_expected(x, lens, 0, 1)])
    check_folded(_reverse_model(np.float32, [4, 3], 1, 0), {"x": x.T.astype(np.float32), "lens": lens})


@pytest.mark.parametrize("lens", [[1, 5, 2], [1, -1, 2]], ids=["too_long", "negative"])
def test_reverse_sequence_runtime_range(lens):
    model = _reverse_model(np.float32, [3, 4], 0, 1)
    with pytest.raises(Exception, match=r"sequence_lens\[1\] = -?\d+ is outside \[0, 4\]"):
        sofie_run(model, {"x": np.zeros((3, 4), np.float32), "lens": np.array(lens, np.int64)})


def test_reverse_sequence_errors():
    x, lens = np.zeros((3, 4), np.float32), np.zeros(3, np.int64)
    with pytest.raises(ShapeError, match="batch_axis and time_axis must be 0 and 1"):
        sofie_run(_reverse_model(np.float32, [3, 4], 0, 0), {"x": x, "lens": lens})
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], batch_axis=0, time_axis=1)
    bad = make_model([node], [("x", np.float32, [3, 4]), ("lens", np.int64, [4])], [("y", np.float32, [3, 4])], opset=10)
    with pytest.raises(ShapeError, match="sequence_lens must be int64 of shape"):
        sofie_run(bad, {"x": x, "lens": np.zeros(4, np.int64)})
    with pytest.raises(ShapeError, match="rank >= 2"):
        rank1 = make_model([node], [("x", np.float32, [3]), ("lens", np.int64, [3])], [("y", np.float32, [3])], opset=10)
        sofie_run(rank1, {"x": np.zeros(3, np.float32), "lens": lens})
