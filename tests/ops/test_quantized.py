"""Quantized ONNX operators against onnxruntime: QuantizeLinear / DequantizeLinear (per tensor, per axis,
blocked; 8-, 16-, 4- and 2-bit integers, float8), DynamicQuantizeLinear, and the integer products
MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv with constant weights (the packed VNNI tiles) and
weights given while running (the plain loop), in every combination of signedness and zero points.

Integer outputs must equal onnxruntime's exactly; so must the float outputs of DequantizeLinear (one product
each).  Several products share one model where they can, to compile less.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run
from onnx import helper
from test_isa import ISA_FLAGS, RUNNABLE

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError
from sofie_rdf.targets.cpu import host_isa

BACKENDS = ["native", pytest.param("jit", marks=pytest.mark.slow)]


def _model(nodes, inputs, outputs, inits=None, opset=21) -> onnx.ModelProto:
    """make_model at an opset onnxruntime reads the quantized types of (IR version 10 from opset 21, 12 from 25)."""
    model = make_model(nodes, inputs, outputs, inits, opset=opset)
    model.ir_version = 12 if opset >= 25 else 10 if opset >= 21 else model.ir_version
    return model


def onnx_reference(model: onnx.ModelProto, feeds: dict) -> list:
    """onnx's reference evaluator: for the 4-bit types, which onnxruntime's Python API cannot return."""
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)


def exact_reference(ta, tb):
    """onnxruntime where its products are exact, else onnx's reference evaluator.  Without VNNI (AVX2, and
    AVX-512 before Cascade Lake) onnxruntime multiplies uint8 by int8 with vpmaddubsw, whose 16-bit pair sums
    saturate: full-range weights give it wrong numbers (by up to 22 steps on an AMD EPYC Zen 3), so those pairs
    are checked against the evaluator on every machine; onnxruntime has no int8 x uint8 product at all."""
    return ort_run if (ta, tb) in ((np.uint8, np.uint8), (np.int8, np.int8)) else onnx_reference


def _check(model: onnx.ModelProto, feeds: dict, backend: str = "native", atol: float = 0.0, reference=ort_run) -> None:
    sess = sr.compile(sr.load(model), backend=backend)
    got = sess.infer(*[feeds[i.name] for i in sess.inputs])
    got = list(got) if isinstance(got, tuple) else [got]
    for k, (a, b) in enumerate(zip(got, reference(model, feeds))):
        assert a.shape == b.shape, f"output {k}: shape {a.shape} vs {b.shape}"
        if a.dtype.kind == "V":  # onnxruntime gives the bytes of ml_dtypes' types as uint8
            a, b = a.view(np.uint8), np.asarray(b).view(np.uint8)
        assert a.dtype == b.dtype, f"output {k}: {a.dtype} vs {b.dtype}"
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"output {k}")


def _random_bytes(rng: np.random.Generator, shape: tuple, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


# ---- QuantizeLinear / DequantizeLinear -----------------------------------------------------------------------

LAYOUTS = {  # name -> (scale shape over x of shape (4, 6, 5), attributes)
    "tensor": ((), {}),
    "axis1": ((6,), {"axis": 1}),
    "axis_last": ((5,), {"axis": -1}),
    "blocked": ((4, 3, 5), {"axis": 1, "block_size": 2}),
    "blocked_tail": ((4, 6, 2), {"axis": 2, "block_size": 3}),
}
TYPES = [np.uint8, np.int8, np.int16, np.uint16, ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.float8_e4m3fn,
         ml_dtypes.float8_e5m2]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", TYPES, ids=lambda t: np.dtype(t).name)
def test_quantize_dequantize(layout, dtype):
    """x -> QuantizeLinear -> (q, DequantizeLinear(q)), both outputs compared (the 4-bit and float8 types with
    onnx's reference evaluator: onnxruntime's Python API returns no such arrays)."""
    shape, attrs = LAYOUTS[layout]
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.01, 0.2, shape).astype(np.float32)
    minifloat = np.dtype(dtype).name.startswith("float")
    zero = np.zeros(shape, dtype) if minifloat else rng.integers(-2, 3, shape).astype(np.int64).clip(
        0 if np.dtype(dtype).name.startswith("u") else -8, 7).astype(dtype)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], **attrs),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **attrs)]
    narrow = np.dtype(dtype).itemsize == 1 and np.dtype(dtype) not in (np.dtype(np.int8), np.dtype(np.uint8))
    opset = 25 if narrow and not minifloat else 21
    model = _model(nodes, [("x", np.float32, [4, 6, 5])], [("q", dtype, [4, 6, 5]), ("y", np.float32, [4, 6, 5])],
                   {"s": scale, "z": zero}, opset=opset)
    x = (rng.standard_normal((4, 6, 5)) * 4).astype(np.float32)
    x[0, 0, :3] = [1e5, -1e5, 20 if narrow else np.inf]  # saturation (the reference evaluator turns inf into int32's lowest)
    _check(model, {"x": x}, reference=onnx_reference if narrow else ort_run)


def test_quantize_runtime_scale_and_float16():
    """Scale and zero point given while running; a float16 input quantized by a float16 scale, dividing in
    float16 (the spec's precision: the scale's type; onnxruntime divides in float32) and dequantized to float16."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    model = _model(nodes, [("x", np.float16, [3, 7]), ("s", np.float16, []), ("z", np.int8, [])],
                   [("q", np.int8, [3, 7]), ("y", np.float16, [3, 7])], opset=21)
    rng = np.random.default_rng(4)
    _check(model, {"x": rng.standard_normal((3, 7)).astype(np.float16), "s": np.array(0.037, np.float16),
                   "z": np.array(-3, np.int8)}, reference=onnx_reference)


def test_dequantize_int32_and_output_dtype():
    """DequantizeLinear of int32 (a bias) per axis, and output_dtype float16 of a float scale (opset 23)."""
    nodes = [helper.make_node("DequantizeLinear", ["b", "s"], ["y"], axis=0),
             helper.make_node("DequantizeLinear", ["q", "t"], ["h"], output_dtype=onnx.TensorProto.FLOAT16)]
    model = _model(nodes, [("b", np.int32, [4]), ("q", np.uint8, [2, 3])], [("y", np.float32, [4]), ("h", np.float16, [2, 3])],
                   {"s": np.array([0.5, 0.25, 1e-3, 3.0], np.float32), "t": np.array(0.1, np.float32)}, opset=23)
    _check(model, {"b": np.array([7, -1 << 20, 123456, -5], np.int32), "q": np.arange(6, dtype=np.uint8).reshape(2, 3) * 40})


def test_dynamic_quantize_linear():
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])]
    model = _model(nodes, [("x", np.float32, ["n", 9])], [("y", np.uint8, ["n", 9]), ("s", np.float32, []),
                                                           ("z", np.uint8, [])], opset=11)
    rng = np.random.default_rng(5)
    for x in (rng.standard_normal((4, 9)) * 3, rng.uniform(0.5, 2, (2, 9)), -rng.uniform(0.5, 2, (3, 9))):
        _check(model, {"x": x.astype(np.float32)})


# ---- integer products ------------------------------------------------------------------------------------------

SIGNS = [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8), (np.int8, np.uint8)]


def _ids(pair) -> str:
    return "".join("u8" if t == np.uint8 else "s8" for t in pair)


@pytest.mark.parametrize("types", SIGNS, ids=_ids)
@pytest.mark.parametrize("backend", BACKENDS)
def test_matmul_integer_packed(types, backend):
    """Constant B: rows 1 to 70 (the tiles, AMX's blocks of 32 and their remainders), columns 1 to 70 (panel
    tails), depths 3 to 67 (group and tile tails), zero points none, per tensor and per column, A of rank 3."""
    ta, tb = types
    rng = np.random.default_rng(6)
    nodes, inputs, outputs, inits, feeds = [], [], [], {}, {}
    for i, (m, k, n, zeros) in enumerate([(1, 3, 1, "none"), (5, 9, 17, "tensor"), (70, 67, 70, "column"),
                                          ((2, 3), 16, 33, "tensor")]):
        shape_a = list(m) if isinstance(m, tuple) else [m]
        inits[f"b{i}"] = _random_bytes(rng, (k, n), tb)
        names = [f"a{i}", f"b{i}"]
        if zeros != "none":
            inits[f"za{i}"] = _random_bytes(rng, (), ta)
            inits[f"zb{i}"] = _random_bytes(rng, (n,) if zeros == "column" else (), tb)
            names += [f"za{i}", f"zb{i}"]
        nodes.append(helper.make_node("MatMulInteger", names, [f"y{i}"]))
        inputs.append((f"a{i}", ta, shape_a + [k]))
        outputs.append((f"y{i}", np.int32, shape_a + [n]))
        feeds[f"a{i}"] = _random_bytes(rng, tuple(shape_a) + (k,), ta)
    _check(_model(nodes, inputs, outputs, inits, opset=10), feeds, backend, reference=exact_reference(ta, tb))


@pytest.mark.parametrize("types", SIGNS, ids=_ids)
def test_matmul_integer_plain(types):
    """B and the zero points given while running, per row of A and per column of B (which onnxruntime refuses,
    and onnx's reference evaluator reads as per column of A: numpy); batched B broadcast."""
    ta, tb = types
    rng = np.random.default_rng(7)
    nodes = [helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"]),
             helper.make_node("MatMulInteger", ["c", "d"], ["e"])]
    model = _model(nodes, [("a", ta, [5, 6]), ("b", tb, [6, 19]), ("za", ta, [5]), ("zb", tb, [19]),
                           ("c", ta, [2, 1, 4, 6]), ("d", tb, [3, 6, 2])],
                   [("y", np.int32, [5, 19]), ("e", np.int32, [2, 3, 4, 2])], opset=10)
    feeds = {"a": (5, 6), "b": (6, 19), "za": (5,), "zb": (19,), "c": (2, 1, 4, 6), "d": (3, 6, 2)}
    def numpy_reference(model, f):
        a, b = f["a"].astype(np.int32) - f["za"].astype(np.int32)[:, None], f["b"].astype(np.int32) - f["zb"].astype(np.int32)
        return [a @ b, f["c"].astype(np.int32) @ f["d"].astype(np.int32)]

    _check(model, {k: _random_bytes(rng, s, ta if k in ("a", "za", "c") else tb) for k, s in feeds.items()},
           reference=numpy_reference)


@pytest.mark.parametrize("types", SIGNS, ids=_ids)
@pytest.mark.parametrize("backend", BACKENDS)
def test_qlinear_matmul(types, backend):
    """Constant B with scales and zero points per column, and per tensor; y of A's type (onnxruntime has no
    other, nor int8 A with uint8 B: the reference evaluator)."""
    ta, tb = types
    rng = np.random.default_rng(8)
    n, k = 40, 50
    inits = {"sa": np.array(0.02, np.float32), "za": _random_bytes(rng, (), ta),
             "b": _random_bytes(rng, (k, n), tb), "sb": rng.uniform(0.005, 0.02, n).astype(np.float32),
             "zb": _random_bytes(rng, (n,), tb), "sy": np.array(0.5, np.float32), "zy": np.array(3, ta),
             "sb1": np.array(0.01, np.float32), "zb1": _random_bytes(rng, (), tb)}
    nodes = [helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"]),
             helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb1", "zb1", "sy", "zy"], ["u"])]
    model = _model(nodes, [("a", ta, ["m", k])], [("y", ta, ["m", n]), ("u", ta, ["m", n])], inits, opset=10)
    for m in (1, 6):
        _check(model, {"a": _random_bytes(rng, (m, k), ta)}, backend,
               reference=exact_reference(ta, tb))


def _conv_model(tx, tw, quantized: bool, channels: int, features: int, image: tuple, kernel: int, group: int = 1,
                stride: int = 1, dilation: int = 1, pads: int = 0, per_channel: bool = True, seed: int = 0,
                symmetric: bool = False):
    rng = np.random.default_rng(seed)
    rank = len(image)
    w = _random_bytes(rng, (features, channels // group) + (kernel,) * rank, tw)
    attrs = dict(group=group, strides=[stride] * rank, dilations=[dilation] * rank, pads=[pads] * 2 * rank)
    zw = _random_bytes(rng, (features,) if per_channel else (), tw)
    if symmetric:  # weights of zero point 0: those qconv_amx takes
        zw = np.zeros_like(zw)
    zx = _random_bytes(rng, (), tx)
    if quantized:
        inits = {"sx": np.array(0.05, np.float32), "zx": zx, "w": w,
                 "sw": rng.uniform(0.002, 0.01, features if per_channel else ()).astype(np.float32), "zw": zw,
                 "sy": np.array(0.8, np.float32), "zy": np.array(5, tx),
                 "bias": rng.integers(-3000, 3000, features).astype(np.int32)}
        node = helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "bias"], ["y"], **attrs)
        out = tx
    else:
        inits = {"w": w, "zx": zx, "zw": zw}
        node = helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["y"], **attrs)
        out = np.int32
    model = _model([node], [("x", tx, [2, channels, *image])], [("y", out, None)], inits, opset=10)
    return model, {"x": _random_bytes(rng, (2, channels, *image), tx)}


CONVS = {  # name -> (channels, features, image, kernel, group, stride, dilation, pads)
    "3x3_pad": (3, 20, (9, 11), 3, 1, 1, 1, 1),
    "strided_dilated": (4, 16, (13, 12), 3, 1, 2, 2, 2),
    "grouped": (6, 9, (7, 7), 3, 3, 1, 1, 1),
    "1x1": (32, 17, (5, 6), 1, 1, 1, 1, 0),
    "1d": (5, 7, (23,), 4, 1, 1, 1, 1),
    "3d": (2, 5, (4, 5, 6), 2, 1, 1, 1, 1),
    "wide": (8, 40, (6, 7), 3, 1, 1, 1, 1),  # 32 rows and more: AMX blocks where the compiler targets AMX
}


@pytest.mark.parametrize("conv", list(CONVS))
@pytest.mark.parametrize("types", SIGNS, ids=_ids)
@pytest.mark.parametrize("quantized", [False, True], ids=["ConvInteger", "QLinearConv"])
def test_integer_conv(conv, types, quantized):
    channels, features, image, kernel, group, stride, dilation, pads = CONVS[conv]
    per_channel = conv in ("3x3_pad", "strided_dilated", "grouped")  # the reference evaluator's are 2-D
    model, feeds = _conv_model(*types, quantized, channels, features, image, kernel, group, stride, dilation, pads,
                               per_channel=per_channel)
    # onnxruntime takes one weight zero point alone: the reference evaluator (and see exact_reference)
    _check(model, feeds, reference=onnx_reference if per_channel else exact_reference(*types))


# Convolutions of symmetric weights that qconv_amx computes where the native compiler targets AMX (one group,
# features in sixteens, a stride of 1 along the lines): ragged lines, one input channel (one position block of
# 32 a line), dilations, 1-D and 3-D, channels in two chunks of quads with 48 features (32, then 16).
AMX_CONVS = {
    "ragged_lines": (16, 32, (5, 40), 3, 1, 1, 1, 1),
    "one_channel": (1, 16, (6, 32), 3, 1, 1, 1, 1),
    "dilated": (20, 16, (9, 12), 3, 1, 1, 2, 2),
    "1d": (8, 32, (37,), 4, 1, 1, 1, 1),
    "3d": (8, 16, (3, 4, 5), 2, 1, 1, 1, 1),
    "two_chunks": (72, 48, (4, 6), 3, 1, 1, 1, 1),
}


@pytest.mark.parametrize("conv", list(AMX_CONVS))
@pytest.mark.parametrize("types", SIGNS[:3], ids=_ids)
@pytest.mark.parametrize("quantized", [False, True], ids=["ConvInteger", "QLinearConv"])
def test_integer_conv_amx_tiles(conv, types, quantized):
    model, feeds = _conv_model(*types, quantized, *AMX_CONVS[conv], per_channel=False, symmetric=True)
    if host_isa() == "avx512":  # the tiles where the compiler may target AMX (qconv where the CPU has none)
        assert "kernels::qconv_amx<" in sr.load(model).code(target="native").header
    _check(model, feeds, reference=exact_reference(*types))


# Layers that the header also computes with the float Conv's kernels, run where the CPU lacks VNNI or the compiler
# targets no AMX (emitters/quantized.py: FLOAT_LAYOUTS; kernels/qgemm.hxx: kQFloatConv says why): Winograd on the
# tiles of whole images and on blocks of tile rows (a larger image), conv_shifted (a first layer of one channel),
# conv_pointwise (1x1), with weight zero points per channel and a bias.  Both ways are built into every header; the
# instruction sets this CPU runs are each built alone (without AMX flags, every one takes the float way).
# The float sums are those of the integers up to the Winograd transforms' rounding, so a byte may move by one where
# the exact value lies on a rounding boundary.
FLOAT_CONVS = {  # name -> (channels, features, image, kernel, pads, the float kernel)
    "winograd_tiles": (16, 24, (20, 18), 3, 1, "conv_winograd_tiles<"),
    "winograd": (16, 48, (64, 62), 3, 1, "conv_winograd<"),  # AVX-512: Winograd from 33 features (conv.py)
    "shifted": (1, 16, (32, 30), 3, 1, "conv_shifted("),
    "pointwise": (40, 24, (9, 7), 1, 0, "conv_pointwise("),
}


@pytest.mark.parametrize("conv", list(FLOAT_CONVS))
@pytest.mark.parametrize("types", SIGNS, ids=_ids)
@pytest.mark.parametrize("isa", RUNNABLE)
def test_requantized_conv_in_float(conv, types, isa):
    channels, features, image, kernel, pads, code = FLOAT_CONVS[conv]
    model, feeds = _conv_model(*types, True, channels, features, image, kernel, pads=pads, seed=3)
    sess = sr.compile(sr.load(model), backend="native", flags=ISA_FLAGS[isa])
    # the generic build has no register tiles: its Winograd layers run on blocks of tile rows, the others as integers
    header = sess.code.header
    assert ("kernels::kQFloatConv) {" in header) == (isa != "generic" or conv.startswith("winograd"))
    assert isa == "generic" or f"kernels::{code}" in header, sorted(set(re.findall(r"kernels::(conv_\w+)", header)))
    got, want = sess.infer(feeds["x"]), onnx_reference(model, feeds)[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    moved = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert moved.max() <= 1 and np.count_nonzero(moved) <= moved.size // 1000, f"{np.count_nonzero(moved)} moved"


# ---- errors -----------------------------------------------------------------------------------------------------


def test_errors_name_the_node():
    """Bad quantization parameters are refused when the model loads, naming the model, node and problem."""
    def load(node, inputs, outputs, inits, opset=21):
        return sr.load(_model([node], inputs, outputs, inits, opset=opset), name="bad")

    x = [("x", np.float32, [2, 3])]
    with pytest.raises(ShapeError, match=r"'bad'.*q_axis.*axis 2 is out of range"):
        load(helper.make_node("QuantizeLinear", ["x", "s"], ["q"], axis=2, name="q_axis"), x, [("q", np.uint8, None)],
             {"s": np.ones(3, np.float32)})
    with pytest.raises(ShapeError, match=r"q_shape.*scale of shape \(4,\)"):
        load(helper.make_node("QuantizeLinear", ["x", "s"], ["q"], name="q_shape"), x, [("q", np.uint8, None)],
             {"s": np.ones(4, np.float32)})
    with pytest.raises(ShapeError, match=r"dq_zero.*zero point's type int8 differs from x's uint8"):
        load(helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq_zero"), [("q", np.uint8, [3])],
             [("y", np.float32, None)], {"s": np.array(1, np.float32), "z": np.array(0, np.int8)}, opset=10)
    with pytest.raises(ShapeError, match=r"mm_zero.*B's zero point of shape \(3,\) is neither a scalar nor one value per column"):
        load(helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"], name="mm_zero"), [("a", np.uint8, [2, 4])],
             [("y", np.int32, None)], {"b": np.ones((4, 5), np.int8), "za": np.array(0, np.uint8),
                                       "zb": np.zeros(3, np.int8)}, opset=10)
    with pytest.raises(ShapeError, match=r"conv_bias.*bias must be int32 of shape \(2,\)"):
        load(helper.make_node("QLinearConv", ["x", "s", "z", "w", "s", "zw", "s", "z", "b"], ["y"], name="conv_bias"),
             [("x", np.uint8, [1, 1, 3, 3])], [("y", np.uint8, None)],
             {"s": np.array(1, np.float32), "z": np.array(0, np.uint8), "w": np.ones((2, 1, 2, 2), np.int8),
              "zw": np.array(0, np.int8), "b": np.zeros(2, np.float32)}, opset=10)
