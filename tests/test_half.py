"""float16 and bfloat16 end to end: the C++ storage types (targets/cpu/kernels/half.hxx), literals, weights,
the Python Session's buffers, and the kernels computing on them.

Conversions are checked exhaustively against numpy / ml_dtypes.  Operators are compared with
onnxruntime where it has a kernel for the type, else with onnxruntime on the float32 twin of the model
rounded to the type: sofie-rdf computes in float and rounds each stored value, so results agree to a
few units in the last place (REL_TOL below; products and sums that store partial results in the
16-bit type, as the Gemm loop does, add one rounding per step, hence the wider tolerance for them).
"""

from __future__ import annotations

import copy
import subprocess
from typing import Optional

import ml_dtypes
import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr
from sofie_rdf import _root
from sofie_rdf.session import Session, jit_session
from sofie_rdf.targets.cpu.jit import jit_declare

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
HALF = [F16, BF16]
# Relative tolerance per type: 2 ulps of its 11 (float16) or 8 (bfloat16) significant bits.
REL_TOL = {F16: 2 * 2.0 ** -10, BF16: 2 * 2.0 ** -7}
_HALF_ELEMS = (TensorProto.FLOAT16, TensorProto.BFLOAT16)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint16)


def _all_values(dtype: np.dtype) -> np.ndarray:
    """Every one of the 65536 bit patterns of a 16-bit type."""
    return np.arange(1 << 16, dtype=np.uint16).view(dtype)


def _assert_same_values(got: np.ndarray, want: np.ndarray) -> None:
    """Bit-identical, except that any NaN matches any NaN (payloads are not specified)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(want.astype(np.float32))
    np.testing.assert_array_equal(np.isnan(got.astype(np.float32)), nan)
    np.testing.assert_array_equal(_bits(got)[~nan], _bits(want)[~nan])


def _run(model: onnx.ModelProto, feeds: dict, backend: str = "jit") -> list[np.ndarray]:
    sess = sr.compile(sr.load(model), backend=backend)
    out = sess.infer(*[feeds[i.name] for i in sess.inputs])
    return list(out) if isinstance(out, tuple) else [out]


def _float32_twin(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every 16-bit float tensor (inputs, outputs, weights, Cast targets) in float32."""
    twin = copy.deepcopy(model)
    g = twin.graph
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.type.tensor_type.elem_type in _HALF_ELEMS:
            v.type.tensor_type.elem_type = TensorProto.FLOAT
    for k, init in enumerate(g.initializer):
        if init.data_type in _HALF_ELEMS:
            g.initializer[k].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    for node in g.node:
        for a in node.attribute:
            if a.name == "to" and a.i in _HALF_ELEMS:
                a.i = TensorProto.FLOAT
    return twin


def _reference(model: onnx.ModelProto, feeds: dict, dtype: np.dtype) -> list[np.ndarray]:
    """onnxruntime's outputs: its own 16-bit kernel if it has one, else the float32 twin's, rounded."""
    try:
        return ort_run(model, feeds)
    except Exception:  # noqa: BLE001  (no kernel for the type: NOT_IMPLEMENTED, or feeds it cannot take)
        wide = {k: v.astype(np.float32) if v.dtype in HALF else v for k, v in feeds.items()}
        return [o.astype(dtype) if o.dtype == np.float32 else o for o in ort_run(_float32_twin(model), wide)]


def _check(model: onnx.ModelProto, feeds: dict, dtype: np.dtype, ulps: float = 1.0, backend: str = "jit") -> None:
    got = _run(model, feeds, backend)
    want = _reference(model, feeds, dtype)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        tol = ulps * REL_TOL[dtype]
        np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), rtol=tol, atol=tol)


def _random(shape: tuple, dtype: np.dtype, seed: int = 0, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


# ---- conversions ---------------------------------------------------------------------------------

def _cast_model(dtype: np.dtype) -> onnx.ModelProto:
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    nodes = [helper.make_node("Cast", ["h"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["x"], ["y"], to=elem)]
    return make_model(nodes, [("h", dtype, ["n"]), ("x", np.float32, ["m"])],
                      [("f", np.float32, ["n"]), ("y", dtype, ["m"])], name=f"cast_{dtype.name}")


def _hard_floats(dtype: np.dtype) -> np.ndarray:
    """float32 values that exercise rounding: every value of the type, the midpoints between neighbours
    (ties, to even), points just either side of them, overflow and underflow, and random floats."""
    values = _all_values(dtype).astype(np.float32)
    finite = np.unique(values[np.isfinite(values)].astype(np.float64))
    mids = ((finite[:-1] + finite[1:]) / 2).astype(np.float32)
    nudged = [np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf))]
    big = min(float(finite[-1]) * 1.01, float(np.finfo(np.float32).max))  # past the type's largest value
    edges = np.array([big, -big, 3.0e38, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 0.0, -0.0], np.float32)
    rand = np.random.default_rng(0).standard_normal(20000).astype(np.float32) * np.float32(1000)
    return np.concatenate([values, mids, *nudged, edges, rand])


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_conversions_exhaustive(dtype):
    """Every bit pattern widens exactly; float32 values (ties, subnormals, overflow, NaN) round as numpy does."""
    h, x = _all_values(dtype), _hard_floats(dtype)
    f, y = _run(_cast_model(dtype), {"h": h, "x": x})
    nan = np.isnan(h.astype(np.float32))
    np.testing.assert_array_equal(np.isnan(f), nan)
    np.testing.assert_array_equal(f[~nan].view(np.uint32), h[~nan].astype(np.float32).view(np.uint32))
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf and NaN are what is tested
        _assert_same_values(y, x.astype(dtype))


def test_cast_between_16_bit_and_other_types():
    """float16 <-> bfloat16 <-> double / int32: one rounding of the exact value where it fits in float."""
    x = _random((64,), np.float64, 1, -300.0, 300.0)
    nodes = [helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
             helper.make_node("Cast", ["h"], ["b"], to=TensorProto.BFLOAT16),
             helper.make_node("Cast", ["b"], ["i"], to=TensorProto.INT32)]
    model = make_model(nodes, [("x", np.float64, [64])],
                       [("h", F16, [64]), ("b", BF16, [64]), ("i", np.int32, [64])], name="cast_chain")
    h, b, i = _run(model, {"x": x})
    _assert_same_values(h, x.astype(np.float32).astype(F16))
    _assert_same_values(b, h.astype(np.float32).astype(BF16))
    np.testing.assert_array_equal(i, b.astype(np.float32).astype(np.int32))


# ---- operators ---------------------------------------------------------------------------------

_UNARY = ["Relu", "Neg", "Abs", "Exp", "Tanh", "Sigmoid", "Sqrt", "Erf", "Floor"]
_BINARY = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"]


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_elementwise(dtype):
    """One rounding of the float result: within an ulp of onnxruntime (or of its float32 result, rounded)."""
    nodes = [helper.make_node(op, ["x"], [op]) for op in _UNARY] + [helper.make_node(op, ["x", "w"], [op]) for op in _BINARY]
    model = make_model(nodes, [("x", dtype, ["n", 5])], [(op, dtype, ["n", 5]) for op in _UNARY + _BINARY],
                       initializers={"w": _random((5,), dtype, 2, 0.5, 2.0)}, name=f"elementwise_{dtype.name}")
    _check(model, {"x": _random((3, 5), dtype, 1, 0.1, 3.0) * np.array([1, -1, 1, -1, 1], dtype)}, dtype)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_comparison_and_where(dtype):
    """Comparisons see the exact values; Where selects 16-bit values without converting them."""
    x, z = _random((4, 6), dtype, 3), _random((4, 6), dtype, 4)
    nodes = [helper.make_node("Less", ["x", "z"], ["c"]), helper.make_node("Where", ["c", "x", "z"], ["y"])]
    model = make_model(nodes, [("x", dtype, [4, 6]), ("z", dtype, [4, 6])], [("c", np.bool_, [4, 6]), ("y", dtype, [4, 6])],
                       name=f"where_{dtype.name}")
    c, y = _run(model, {"x": x, "z": z})
    np.testing.assert_array_equal(c, x.astype(np.float32) < z.astype(np.float32))
    _assert_same_values(y, np.where(c, x, z))


@pytest.mark.parametrize("backend", ["jit", "native"])
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_gemm_and_matmul(dtype, backend):
    """The Gemm loop stores partial sums in the 16-bit type (one rounding per step of K = 16)."""
    a, b = _random((3, 16), dtype, 5, -1, 1), _random((16, 4), dtype, 6, -1, 1)
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["g"], alpha=0.5, beta=2.0, transB=1),
             helper.make_node("MatMul", ["a", "bt"], ["m"])]
    model = make_model(nodes, [("a", dtype, ["n", 16])], [("g", dtype, ["n", 4]), ("m", dtype, ["n", 4])],
                       initializers={"b": np.ascontiguousarray(b.T), "bt": b, "c": _random((4,), dtype, 7)},
                       name=f"gemm_{dtype.name}")
    _check(model, {"a": a}, dtype, ulps=8, backend=backend)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_conv_and_pooling(dtype):
    """Conv with bias and padding, MaxPool (its padding is the type's lowest value), AveragePool."""
    x = _random((1, 2, 6, 6), dtype, 8, -1, 1)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("AveragePool", ["c"], ["q"], kernel_shape=[2, 2])]
    model = make_model(nodes, [("x", dtype, [1, 2, 6, 6])], [("p", dtype, [1, 3, 3, 3]), ("q", dtype, [1, 3, 5, 5])],
                       initializers={"w": _random((3, 2, 3, 3), dtype, 9, -1, 1), "b": _random((3,), dtype, 10)},
                       name=f"conv_{dtype.name}")
    _check(model, {"x": x}, dtype, ulps=8)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_softmax_and_reductions(dtype):
    x = _random((3, 7), dtype, 11, -4, 4)
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=-1),
             helper.make_node("ReduceSum", ["x", "axes"], ["sum"], keepdims=0),
             helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=0),
             helper.make_node("ReduceMax", ["x", "axes"], ["max"], keepdims=0),
             helper.make_node("ReduceMin", ["x", "axes"], ["min"], keepdims=0),
             helper.make_node("ArgMax", ["x"], ["arg"], axis=1)]
    outs = [("s", dtype, [3, 7])] + [(n, dtype, [3]) for n in ("sum", "mean", "max", "min")] + [("arg", np.int64, [3, 1])]
    model = make_model(nodes, [("x", dtype, [3, 7])], outs, initializers={"axes": np.array([1], np.int64)},
                       name=f"reduce_{dtype.name}", opset=18)
    _check(model, {"x": x}, dtype, ulps=4)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_nan_and_infinity_propagate(dtype):
    """ReduceMax keeps NaN and infinities, Neg flips them exactly, a NaN or an infinity makes Softmax's row NaN."""
    x = np.array([[1.0, np.nan, -np.inf], [np.inf, -2.0, 0.5]], dtype=dtype)
    nodes = [helper.make_node("ReduceMax", ["x", "axes"], ["m"], keepdims=0),
             helper.make_node("Neg", ["x"], ["r"]),
             helper.make_node("Softmax", ["x"], ["s"], axis=-1)]
    model = make_model(nodes, [("x", dtype, [2, 3])], [("m", dtype, [2]), ("r", dtype, [2, 3]), ("s", dtype, [2, 3])],
                       initializers={"axes": np.array([1], np.int64)}, name=f"nan_{dtype.name}", opset=18)
    m, r, s = _run(model, {"x": x})
    np.testing.assert_array_equal(m.astype(np.float32), [np.nan, np.inf])
    _assert_same_values(r, -x)
    assert np.isnan(s[0].astype(np.float32)).all() and np.isnan(s[1].astype(np.float32)).all()


# ---- weights and literals ----------------------------------------------------------------------

# Bit patterns for embedded weights: every 61st (all exponents, varied mantissas) plus the special values;
# 65536 embedded class-type literals would take Cling minutes to compile, while the .dat file reads every one.
_SPECIAL_BITS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x007F, 0x0080,
                 0x7F7F, 0x7F80, 0xFF80, 0x7FC0]
_EMBED_SAMPLE = np.concatenate([np.arange(0, 1 << 16, 61), _SPECIAL_BITS]).astype(np.uint16)


def _weights_model(dtype: np.dtype, bits: Optional[np.ndarray] = None) -> onnx.ModelProto:
    """y = x * w, w holding the given bit patterns (default: all): x = 1 makes y the weights as the Session read them."""
    w = _all_values(dtype) if bits is None else bits.view(dtype)
    return make_model([helper.make_node("Mul", ["x", "w"], ["y"])], [("x", dtype, [1])], [("y", dtype, [w.size])],
                      initializers={"w": w}, name=f"weights_{dtype.name}")


def _embedded_session(model: onnx.ModelProto, tag: str) -> Session:
    code = sr.load(model).code(weights="embed", namespace=f"TMVA_SOFIE_half_embed_{tag}")
    jit_declare(code)
    return jit_session(code, code.namespace, None, None)


@pytest.mark.parametrize("mode", ["dat", "embed"])
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_weights_round_trip(dtype, mode):
    """Every bit pattern survives the .dat text file, a sample of them the embedded initializer (NaN stays NaN)."""
    one = np.ones(1, dtype)
    if mode == "dat":
        (y,) = _run(_weights_model(dtype), {"x": one})
        _assert_same_values(y, _all_values(dtype))
    else:
        y = _embedded_session(_weights_model(dtype, _EMBED_SAMPLE), dtype.name).infer(one)
        _assert_same_values(y, _EMBED_SAMPLE.view(dtype))


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_attribute_literals(dtype):
    """Clip's bounds and Elu's alpha become literals of the type (rounded once, as onnxruntime reads them)."""
    x = _random((2, 9), dtype, 12, -3, 3)
    inits = {"lo": np.array(-1.1, dtype), "hi": np.array(np.inf, dtype)}
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"]), helper.make_node("Elu", ["c"], ["y"], alpha=0.3)]
    model = make_model(nodes, [("x", dtype, [2, 9])], [("y", dtype, [2, 9])], initializers=inits,
                       name=f"literals_{dtype.name}")
    _check(model, {"x": x}, dtype)


# ---- every float operator ---------------------------------------------------------------------

def _op_cases(d: np.dtype) -> dict[str, tuple]:
    """Small models of the float operators (name -> nodes, inputs, outputs, initializers, opset)."""

    def r(shape: tuple, seed: int = 0, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
        return _random(shape, d, seed, lo, hi)

    def node(op: str, inputs: list, outputs: list, **attrs) -> onnx.NodeProto:
        return helper.make_node(op, inputs, outputs, **attrs)

    def on_x(nodes: list, outputs: list, inits: Optional[dict] = None, opset: int = 17, x: tuple = (2, 4)) -> tuple:
        return nodes, [("x", d, list(x))], outputs, inits or {}, opset

    def unary(ops: list, opset: int = 17, **attrs) -> tuple:
        outs = [(op.lower(), np.bool_ if op.startswith("Is") else d, [2, 4]) for op in ops]
        return on_x([node(op, ["x"], [op.lower()], **attrs) for op in ops], outs, opset=opset)

    img, y2 = (1, 2, 4, 4), [("y", d, [1, 2, 4, 4])]
    rnn_w = {"W": r((1, 3, 4), 1), "R": r((1, 3, 3), 2), "B": r((1, 6), 3)}
    return {
        "LayerNorm": on_x([node("LayerNormalization", ["x", "s", "b"], ["y"])], [("y", d, [2, 4])],
                          {"s": r((4,), 1), "b": r((4,), 2)}),
        "BatchNorm": on_x([node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], y2,
                          {"s": r((2,), 1), "b": r((2,), 2), "m": r((2,), 3), "v": r((2,), 4, 0.5, 1)}, 15, img),
        "InstanceNorm": on_x([node("InstanceNormalization", ["x", "s", "b"], ["y"])], y2,
                             {"s": r((2,), 1), "b": r((2,), 2)}, 17, img),
        "GroupNorm": on_x([node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)], y2,
                          {"s": r((2,), 1), "b": r((2,), 2)}, 21, img),
        "LRN": on_x([node("LRN", ["x"], ["y"], size=3)], y2, x=img),
        "MVN": on_x([node("MeanVarianceNormalization", ["x"], ["y"])], y2, x=img),
        "LpNorm_Hardmax": unary(["LpNormalization", "Hardmax"]),
        "Swish": unary(["Swish"], 24),
        "Shrink": unary(["Shrink"], lambd=0.3, bias=0.1),
        "Gelu": unary(["Gelu"], 20, approximate="tanh"),
        "Activations": unary(["Softplus", "HardSigmoid", "LeakyRelu", "Selu", "ThresholdedRelu", "Softsign"]),
        "Math": unary(["Sin", "Cos", "Atan", "Sinh", "Asinh", "Reciprocal", "Round", "Ceil", "Sign", "IsInf", "IsNaN"]),
        "RNN": on_x([node("RNN", ["x", "W", "R", "B"], ["Y", "Yh"], hidden_size=3)],
                    [("Y", d, [2, 1, 1, 3]), ("Yh", d, [1, 1, 3])], rnn_w, 17, (2, 1, 4)),
        "GRU": on_x([node("GRU", ["x", "W", "R"], ["Y"], hidden_size=3)], [("Y", d, [2, 1, 1, 3])],
                    {"W": r((1, 9, 4), 1), "R": r((1, 9, 3), 2)}, 17, (2, 1, 4)),
        "LSTM": on_x([node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=3, clip=0.5)], [("Y", d, [2, 1, 1, 3])],
                     {"W": r((1, 12, 4), 1), "R": r((1, 12, 3), 2)}, 17, (2, 1, 4)),
        "ConvTranspose": on_x([node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])], [("y", d, [1, 3, 9, 9])],
                              {"w": r((2, 3, 3, 3), 1)}, 17, img),
        "LpPool": on_x([node("LpPool", ["x"], ["y"], kernel_shape=[2, 2])], [("y", d, [1, 2, 3, 3])], {}, 18, img),
        "GlobalPools": on_x([node(op, ["x"], [op]) for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")],
                            [(op, d, [1, 2, 1, 1]) for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")],
                            x=img),
        "Resize": on_x([node("Resize", ["x", "", "sc"], [m], mode=m) for m in ("linear", "cubic", "nearest")],
                       [(m, d, [1, 2, 8, 8]) for m in ("linear", "cubic", "nearest")],
                       {"sc": np.array([1, 1, 2, 2], np.float32)}, 19, img),
        "GridSample": on_x([node("GridSample", ["x", "g"], ["y"])], [("y", d, [1, 2, 3, 3])],
                           {"g": r((1, 3, 3, 2), 1)}, 20, img),
        "Col2Im": on_x([node("Col2Im", ["x", "isz", "bsz"], ["y"])], [("y", d, [1, 1, 4, 4])],
                       {"isz": np.array([4, 4], np.int64), "bsz": np.array([2, 2], np.int64)}, 18, (1, 4, 9)),
        "Det": on_x([node("Det", ["x"], ["y"])], [("y", d, [2])], x=(2, 3, 3)),
        "CumSum": on_x([node("CumSum", ["x", "ax"], ["y"])], [("y", d, [2, 4])], {"ax": np.array(1, np.int64)}),
        "Reductions": on_x([node(op, ["x"], [op]) for op in ("ReduceLogSumExp", "ReduceProd", "ReduceL2", "ReduceSumSquare")]
                           + [node("ArgMin", ["x"], ["i"])],
                           [(op, d, [1, 1]) for op in ("ReduceLogSumExp", "ReduceProd", "ReduceL2", "ReduceSumSquare")]
                           + [("i", np.int64, [1, 4])]),
        "TopK": on_x([node("TopK", ["x", "k"], ["v", "i"])], [("v", d, [2, 2]), ("i", np.int64, [2, 2])],
                     {"k": np.array([2], np.int64)}),
        "Movement": on_x([node("Transpose", ["x"], ["t"], perm=[1, 0]), node("Concat", ["t", "t"], ["c"], axis=0),
                          node("Pad", ["c", "p"], ["y"]), node("Gather", ["y", "gi"], ["g"])], [("g", d, [2, 4])],
                         {"p": np.array([0, 1, 0, 1], np.int64), "gi": np.array([0, 3], np.int64)}),
        "Einsum": ([node("Einsum", ["a", "b"], ["y"], equation="ij,jk->ik")], [("a", d, [2, 3]), ("b", d, [3, 2])],
                   [("y", d, [2, 2])], {}, 17),
        "Variadic": on_x([node("Mean", ["x", "x", "x"], ["y"]), node("Sum", ["x", "x"], ["s"]),
                          node("Mod", ["x", "w"], ["m"], fmod=1), node("PRelu", ["x", "w"], ["p"])],
                         [(n, d, [2, 4]) for n in "ysmp"], {"w": r((4,), 1, 0.5, 1.5)}),
        "Range": ([node("Range", ["st", "lim", "dl"], ["rg"])], [], [("rg", d, [4])],
                  {"st": np.array(0, d), "lim": np.array(2, d), "dl": np.array(0.5, d)}, 17),
    }


_OP_NAMES = list(_op_cases(F16))


def _op_model(name: str, dtype: np.dtype) -> tuple[onnx.ModelProto, dict]:
    nodes, inputs, outputs, inits, opset = _op_cases(dtype)[name]
    model = make_model(nodes, inputs, outputs, initializers=inits, opset=opset, name=f"{name}_{dtype.name}")
    feeds = {n: _random(tuple(shape), t, 20 + k) for k, (n, t, shape) in enumerate(inputs)}
    return model, feeds


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("name", _OP_NAMES)
def test_float_operators(name, dtype):
    """Each operator whose ONNX schema allows the 16-bit floats runs on them (kernels in float, 16-bit storage)."""
    model, feeds = _op_model(name, dtype)
    _check(model, feeds, dtype, ulps=8)


# ---- the generated code -------------------------------------------------------------------------

def _every_kind_model(dtype: np.dtype) -> onnx.ModelProto:
    """A model using the kernels most sensitive to the element type (limits, traits, literals)."""
    nodes = [helper.make_node("Gemm", ["x", "w"], ["g"]), helper.make_node("Softmax", ["g"], ["s"]),
             helper.make_node("ReduceMax", ["s"], ["m"], keepdims=1), helper.make_node("Mod", ["s", "m"], ["r"], fmod=1),
             helper.make_node("TopK", ["r", "k"], ["v", "i"]), helper.make_node("Clip", ["v", "lo", "hi"], ["y"])]
    inits = {"w": _random((4, 5), dtype, 13), "k": np.array([2], np.int64), "lo": np.array(0.1, dtype),
             "hi": np.array(0.9, dtype)}
    return make_model(nodes, [("x", dtype, ["n", 4])], [("y", dtype, ["n", 2]), ("i", np.int64, ["n", 2])],
                      initializers=inits, name=f"every_{dtype.name}")


def _compile_strict(header: str, tmp_path, name: str) -> Optional[str]:
    lib, include = _root.blas_paths()
    source = tmp_path / f"{name}.cpp"
    source.write_text(header + "\nint main() { return 0; }\n")
    cmd = ["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", str(include), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    return None if result.returncode == 0 else result.stderr[-4000:]


@pytest.mark.parametrize("mode", ["dat", "embed"])
def test_header_compiles_warning_free(tmp_path, mode):
    """Both types in one header, and two headers in one translation unit (the types' own guard)."""
    models = [_every_kind_model(d) for d in HALF] + [_op_model(n, d)[0] for n in _OP_NAMES for d in HALF]
    headers = [sr.load(m).code(weights=mode).header for m in models]
    assert all(h.count("#define SOFIE_RDF_HALF_TYPES") == 1 for h in headers)
    error = _compile_strict("\n".join(headers), tmp_path, f"half_{mode}")
    assert error is None, f"generated header does not compile warning-free:\n{error}"


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_models_without_16_bit_tensors_do_not_carry_the_types(dtype):
    x = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", np.float32, [2])], [("y", np.float32, [2])])
    assert "Float16Storage" not in sr.load(x).code().header
    y = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", dtype, [2])], [("y", dtype, [2])])
    assert "Float16Storage" in sr.load(y).code().header


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_native_backend_and_symbolic_batch(dtype):
    model = _every_kind_model(dtype)
    x = _random((5, 4), dtype, 14)
    jit, native = _run(model, {"x": x}), _run(model, {"x": x}, backend="native")
    for a, b in zip(jit, native):
        np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), rtol=REL_TOL[dtype], atol=REL_TOL[dtype])


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_output_sized_while_running(dtype):
    """Compress's output comes back through a C++ vector of the 16-bit type."""
    model = make_model([helper.make_node("Compress", ["x", "c"], ["y"], axis=0)], [("x", dtype, [5]), ("c", np.bool_, [5])],
                       [("y", dtype, ["k"])], name=f"compress_{dtype.name}")
    x, c = _random((5,), dtype, 15), np.array([1, 0, 1, 1, 0], bool)
    (y,) = _run(model, {"x": x, "c": c})
    _assert_same_values(y, x[c])


def test_session_checks_the_16_bit_dtype():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", BF16, [2])], [("y", BF16, [2])])
    sess = sr.compile(sr.load(model))
    with pytest.raises(sr.ShapeError, match="expected dtype bfloat16"):
        sess.infer(np.zeros(2, np.float16))
