"""onnxruntime's quantized com.microsoft operators against onnxruntime itself: QGemm, MatMulIntegerToFloat,
DynamicQuantizeMatMul, QLinearAdd/Mul/Sigmoid/LeakyRelu/Concat, QLinearAveragePool, QLinearGlobalAveragePool,
DynamicQuantizeLSTM, and the domain's QuantizeLinear / DequantizeLinear.  Integer outputs must be equal (but
QLinearAveragePool's, see test_pools); float outputs agree to float32 rounding (onnxruntime adds a bias after
the scaling product, g++ may fuse the two into one multiply-add).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError

MS = "com.microsoft"


def _model(nodes, inputs, outputs, inits=None) -> onnx.ModelProto:
    model = make_model(nodes, inputs, outputs, inits, opset=17)
    model.opset_import.append(helper.make_opsetid(MS, 1))
    return model


def _check(model: onnx.ModelProto, feeds: dict, backend: str = "native", atol: float = 0.0, steps: int = 0) -> None:
    """Integer outputs within ``steps`` quantization steps (default equal), float ones within float32 rounding and
    ``atol``."""
    sess = sr.compile(sr.load(model), backend=backend)
    got = sess.infer(*[feeds[i.name] for i in sess.inputs])
    got = list(got) if isinstance(got, tuple) else [got]
    for k, (a, b) in enumerate(zip(got, ort_run(model, feeds))):
        assert a.dtype == b.dtype and a.shape == b.shape, f"output {k}: {a.dtype} {a.shape} vs {b.dtype} {b.shape}"
        if a.dtype.kind == "f":
            scale = float(np.abs(b).max()) if b.size else 1.0  # a bias cancelling a product: absolute rounding
            np.testing.assert_allclose(a, b, rtol=2e-7, atol=max(atol, 2e-7 * scale), err_msg=f"output {k}")
        else:
            np.testing.assert_allclose(a.astype(np.int32), b.astype(np.int32), rtol=0, atol=steps, err_msg=f"output {k}")


def _bytes(rng, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def _weights(rng, shape, dtype, a_type=np.uint8) -> np.ndarray:
    """int8 weights of 7 bits where they multiply uint8 activations: without VNNI (AVX2, and AVX-512 before
    Cascade Lake) onnxruntime's uint8 x int8 products sum pairs with vpmaddubsw, which saturates at 16 bits, and
    full-range weights give it wrong numbers (by up to 22 steps on an AMD EPYC Zen 3).  Its own quantizer keeps
    to 7 bits on such CPUs (reduce_range); tests/ops/test_quantized.py checks the full range against onnx's
    reference evaluator."""
    if dtype == np.int8 and a_type == np.uint8:
        return rng.integers(-64, 64, shape).astype(dtype)
    return _bytes(rng, shape, dtype)


@pytest.mark.parametrize("a_type", [np.uint8, np.int8])
@pytest.mark.parametrize("quantized", [True, False], ids=["requantized", "float"])
def test_qgemm(a_type, quantized):
    """Constant B (transposed, per-column scales and zero points) and B given while running (transA), C of
    every broadcast, alpha; onnxruntime's QGemm takes int8 A with int8 B only."""
    rng = np.random.default_rng(1)
    b_type = np.int8
    m, k, n = 5, 37, 21
    inits = {"sa": np.array(0.03, np.float32), "za": _bytes(rng, (), a_type), "b": _weights(rng, (n, k), b_type, a_type),
             "sb": rng.uniform(0.002, 0.01, n).astype(np.float32), "zb": np.zeros(n, b_type),
             "c": rng.integers(-5000, 5000, (n,)).astype(np.int32), "cm": rng.integers(-99, 99, (m, 1)).astype(np.int32),
             "sy": np.array(0.2, np.float32), "zy": _bytes(rng, (), a_type)}
    tail = ["sy", "zy"] if quantized else []
    out = a_type if quantized else np.float32
    nodes = [helper.make_node("QGemm", ["a", "sa", "za", "b", "sb", "zb", "c", *tail], ["y"], domain=MS, transB=1,
                              alpha=0.75),
             helper.make_node("QGemm", ["at", "sa", "za", "bt", "sb", "zb", "cm", *tail], ["u"], domain=MS, transA=1,
                              transB=1)]
    model = _model(nodes, [("a", a_type, [m, k]), ("at", a_type, [k, m]), ("bt", b_type, [n, k])],
                   [("y", out, [m, n]), ("u", out, [m, n])], inits)
    a = _bytes(rng, (m, k), a_type)
    _check(model, {"a": a, "at": np.ascontiguousarray(a.T), "bt": _weights(rng, (n, k), b_type, a_type)})


@pytest.mark.parametrize("b_type", [np.int8, np.uint8])
def test_matmul_integer_to_float_and_dynamic_quantize_matmul(b_type):
    """A of rank 3, B's scale per column and per tensor, biases; DynamicQuantizeMatMul quantizes A itself."""
    rng = np.random.default_rng(2)
    k, n = 24, 19
    inits = {"b": _weights(rng, (k, n), b_type), "sa": np.array(0.04, np.float32),
             "sb": rng.uniform(0.002, 0.01, n).astype(np.float32), "sb1": np.array(0.005, np.float32),
             "za": np.array(7, np.uint8), "zb": _bytes(rng, (n,), b_type),
             "bias": rng.standard_normal(n).astype(np.float32)}
    nodes = [helper.make_node("MatMulIntegerToFloat", ["q", "b", "sa", "sb", "za", "zb", "bias"], ["y"], domain=MS),
             helper.make_node("MatMulIntegerToFloat", ["q", "b", "sa", "sb1"], ["u"], domain=MS),
             helper.make_node("DynamicQuantizeMatMul", ["x", "b", "sb", "zb", "bias"], ["v"], domain=MS)]
    model = _model(nodes, [("q", np.uint8, [2, 3, k]), ("x", np.float32, ["n", k])],
                   [("y", np.float32, [2, 3, n]), ("u", np.float32, [2, 3, n]), ("v", np.float32, ["n", n])], inits)
    _check(model, {"q": _bytes(rng, (2, 3, k), np.uint8), "x": rng.standard_normal((6, k)).astype(np.float32)})


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_elementwise(dtype):
    """QLinearAdd and QLinearMul broadcasting, QLinearSigmoid, QLinearLeakyRelu, QLinearConcat."""
    rng = np.random.default_rng(3)
    s = {f"s{i}": np.array(v, np.float32) for i, v in enumerate((0.05, 0.11, 0.07, 0.02, 0.3))}
    z = {f"z{i}": _bytes(rng, (), dtype) // 4 for i in range(5)}
    nodes = [helper.make_node("QLinearAdd", ["a", "s0", "z0", "b", "s1", "z1", "s2", "z2"], ["add"], domain=MS),
             helper.make_node("QLinearMul", ["a", "s0", "z0", "b", "s1", "z1", "s3", "z3"], ["mul"], domain=MS),
             helper.make_node("QLinearSigmoid", ["a", "s0", "z0", "s3", "z3"], ["sig"], domain=MS),
             helper.make_node("QLinearLeakyRelu", ["a", "s1", "z1", "s2", "z2"], ["leaky"], domain=MS, alpha=0.2),
             helper.make_node("QLinearConcat", ["s4", "z4", "a", "s0", "z0", "c", "s2", "z2"], ["cat"], domain=MS,
                              axis=1)]
    model = _model(nodes, [("a", dtype, [2, 3, 4]), ("b", dtype, [3, 1]), ("c", dtype, [2, 5, 4])],
                   [("add", dtype, None), ("mul", dtype, None), ("sig", dtype, None), ("leaky", dtype, None),
                    ("cat", dtype, None)], {**s, **z})
    _check(model, {"a": _bytes(rng, (2, 3, 4), dtype), "b": _bytes(rng, (3, 1), dtype), "c": _bytes(rng, (2, 5, 4), dtype)})


@pytest.mark.parametrize("channels_last", [0, 1])
def test_pools(channels_last):
    """QLinearAveragePool (pads, strides, count_include_pad, ceil_mode) and QLinearGlobalAveragePool, NCHW and
    NHWC.  QLinearAveragePool is its definition (dequantize, average, quantize: round(v / y_scale) + y_zero);
    onnxruntime rounds v / y_scale + y_zero instead, one step apart where v / y_scale ends in .5 and y_zero is
    odd."""
    rng = np.random.default_rng(4)
    shape = [2, 6, 7, 3] if channels_last else [2, 3, 6, 7]
    inits = {"sx": np.array(0.05, np.float32), "zx": np.array(100, np.uint8), "sy": np.array(0.03, np.float32),
             "zy": np.array(90, np.uint8)}
    params = ["x", "sx", "zx", "sy", "zy"]
    nodes = [helper.make_node("QLinearAveragePool", params, ["p"], domain=MS, kernel_shape=[3, 2], strides=[2, 2],
                              pads=[1, 0, 1, 1], channels_last=channels_last, count_include_pad=1),
             helper.make_node("QLinearAveragePool", params, ["c"], domain=MS, kernel_shape=[2, 2], strides=[2, 2],
                              ceil_mode=1, channels_last=channels_last),
             helper.make_node("QLinearGlobalAveragePool", params, ["g"], domain=MS, channels_last=channels_last)]
    model = _model(nodes, [("x", np.uint8, shape)], [("p", np.uint8, None), ("c", np.uint8, None),
                                                     ("g", np.uint8, None)], inits)
    _check(model, {"x": _bytes(rng, tuple(shape), np.uint8)}, steps=1)


def test_ms_quantize_dequantize():
    inits = {"s": np.array([0.1, 0.2, 0.05], np.float32), "z": np.array([3, -4, 0], np.int8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], domain=MS, axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], domain=MS, axis=1)]
    model = _model(nodes, [("x", np.float32, [2, 3, 4])], [("q", np.int8, None), ("y", np.float32, None)], inits)
    _check(model, {"x": np.random.default_rng(5).standard_normal((2, 3, 4)).astype(np.float32) * 4})


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("weights", [np.int8, np.uint8])
def test_dynamic_quantize_lstm(direction, weights):
    """Scales and zero points per gate column (W) and per direction (R), biases, initial states, peepholes,
    sequence_lens; Y, Y_h and Y_c.  onnxruntime takes one zero point for all of a weight tensor (0 for int8)."""
    rng = np.random.default_rng(6)
    zero = 0 if weights == np.int8 else 128
    d = 2 if direction == "bidirectional" else 1
    seq, batch, size, hidden = 5, 3, 7, 8
    inits = {"w": _weights(rng, (d, size, 4 * hidden), weights), "r": _weights(rng, (d, hidden, 4 * hidden), weights),
             "b": (rng.standard_normal((d, 8 * hidden)) * 0.1).astype(np.float32),
             "lens": np.array([5, 2, 4], np.int32), "p": (rng.standard_normal((d, 3 * hidden)) * 0.1).astype(np.float32),
             "ws": rng.uniform(0.002, 0.01, (d, 4 * hidden)).astype(np.float32),
             "wz": np.full((d, 4 * hidden), zero, weights), "rs": np.full(d, 0.005, np.float32),
             "rz": np.full(d, zero, weights)}
    node = helper.make_node("DynamicQuantizeLSTM", ["x", "w", "r", "b", "lens", "h0", "c0", "p", "ws", "wz", "rs", "rz"],
                            ["y", "yh", "yc"], domain=MS, hidden_size=hidden, direction=direction)
    state = [d, batch, hidden]
    model = _model([node], [("x", np.float32, [seq, batch, size]), ("h0", np.float32, state), ("c0", np.float32, state)],
                   [("y", np.float32, None), ("yh", np.float32, None), ("yc", np.float32, None)], inits)
    _check(model, {"x": rng.standard_normal((seq, batch, size)).astype(np.float32),
                   "h0": rng.standard_normal(state).astype(np.float32) * 0.5,
                   "c0": rng.standard_normal(state).astype(np.float32) * 0.5}, atol=2e-6)


def test_errors_name_the_node():
    rng = np.random.default_rng(7)
    nodes = [helper.make_node("QGemm", ["a", "s", "z", "b", "s", "z", "", "s"], ["y"], domain=MS, name="half")]
    model = _model(nodes, [("a", np.uint8, [2, 3])], [("y", np.uint8, None)],
                   {"s": np.array(0.1, np.float32), "z": np.array(0, np.uint8), "b": _bytes(rng, (3, 4), np.uint8)})
    with pytest.raises(ShapeError, match="half.*y_scale and y_zero_point come together"):
        sr.load(model)
    nodes = [helper.make_node("DynamicQuantizeMatMul", ["x", "b", "s", "z", "bias"], ["y"], domain=MS, name="bias")]
    model = _model(nodes, [("x", np.float32, [2, 3])], [("y", np.float32, None)],
                   {"s": np.array(0.1, np.float32), "z": np.array(0, np.uint8), "b": _bytes(rng, (3, 4), np.uint8),
                    "bias": np.zeros(5, np.float32)})
    with pytest.raises(ShapeError, match=r"bias.*must be float32 of shape \(4,\)"):
        sr.load(model)
