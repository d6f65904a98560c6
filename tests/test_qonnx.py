"""QONNX models against qonnx's own execution (``qonnx.core.onnx_exec.execute_onnx``): every quantizer of the
``qonnx.custom_op.general`` domain (and Brevitas' and FINN's older names for it) built with onnx.helper over its
attributes, the channels-last domain, and an MLP and a CNN quantized with Brevitas and exported to QONNX, the CNN
also after qonnx's own channels-last conversion (the form hls4ml reads).

The quantizers are computed in float32 step by step as qonnx computes them, so the outputs must be equal, bit for
bit; the Brevitas models' float products (Gemm, Conv on quantized values) may differ in their summation order.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr

pytest.importorskip("qonnx")
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.transformation.infer_shapes import InferShapes  # noqa: E402

GENERAL = "qonnx.custom_op.general"
CHANNELS_LAST = "qonnx.custom_op.channels_last"
ROUNDING = ["ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN"]


def _model(node: onnx.NodeProto, x_shape: tuple, params: dict, domain_version: int = 1) -> onnx.ModelProto:
    """One QONNX node reading x (float32) and constant parameters."""
    graph = helper.make_graph(
        [node], "qonnx_node", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, x_shape)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in params.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid(node.domain, domain_version)])


def _check(model: onnx.ModelProto, x: np.ndarray, exact: bool = True, backend: str = "jit") -> np.ndarray:
    """Run ``model`` on x with sofie-rdf and with qonnx; equal where ``exact``, else within float rounding."""
    wrapper = ModelWrapper(model).transform(InferShapes())
    name = wrapper.graph.input[0].name
    expected = execute_onnx(wrapper, {name: x})[wrapper.graph.output[0].name]
    ours = sr.compile(sr.load(model), backend=backend).infer(x)
    if exact:
        np.testing.assert_array_equal(ours, expected)
    else:
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    return expected


def _x(shape: tuple, spread: float = 3.0, seed: int = 0) -> np.ndarray:
    """Values well past the quantizers' ranges, with exact halves among them (where rounding modes differ)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * spread).astype(np.float32)
    x.reshape(-1)[::7] = np.round(x.reshape(-1)[::7] * 2) / 2
    return x


@pytest.mark.parametrize("rounding", ROUNDING)
@pytest.mark.parametrize("bits, signed, narrow", [(8, 1, 0), (4, 1, 1), (3, 0, 0), (6, 0, 1), (1, 1, 0), (2, 1, 0),
                                                  (16, 1, 0), (24, 0, 0)])
def test_quant(bits, signed, narrow, rounding):
    """Integer quantization of any bit width (1 bit signed: bipolar), per-channel scales and zero points."""
    shape = (3, 4, 5)
    params = {"scale": np.array([0.25, 0.1, 0.5, 1.5], np.float32).reshape(4, 1),
              "zeropt": np.array([0.0, 1.0, -2.0, 0.0], np.float32).reshape(4, 1) if bits > 1 else [0.0],
              "bitwidth": float(bits)}
    node = helper.make_node("Quant", ["x", *params], ["y"], domain=GENERAL, signed=signed, narrow=narrow,
                            rounding_mode=rounding)
    _check(_model(node, shape, params), _x(shape, spread=2.0 ** min(bits, 8) / 4))


@pytest.mark.parametrize("domain", ["onnx.brevitas", "finn.custom_op.general"])
def test_older_domains(domain):
    """Brevitas' and FINN's names for the QONNX domain: the same Quant as qonnx's."""
    params = {"scale": 0.125, "zeropt": 0.0, "bitwidth": 5.0}
    x = _x((2, 8))
    expected = {}
    for name in (GENERAL, domain):
        node = helper.make_node("Quant", ["x", *params], ["y"], domain=name, signed=1, narrow=0,
                                rounding_mode="ROUND")
        model = _model(node, (2, 8), params)
        expected[name] = _check(model, x) if name == GENERAL else sr.compile(sr.load(model)).infer(x)
    np.testing.assert_array_equal(expected[domain], expected[GENERAL])


def test_bipolar_quant():
    params = {"scale": np.array([0.5, 2.0, 1.0], np.float32)}
    node = helper.make_node("BipolarQuant", ["x", "scale"], ["y"], domain=GENERAL)
    x = _x((4, 3))
    x[0] = 0.0
    _check(_model(node, (4, 3), params), x)


@pytest.mark.parametrize("rounding", ["FLOOR", "ROUND", "CEIL", "HALF_UP"])
@pytest.mark.parametrize("version", [1, 2])
def test_trunc(version, rounding):
    """Dropping low bits of quantized values: opset 1 by the bit widths, opset 2 by the scales (clamped)."""
    shape = (2, 3, 6)
    params = {"scale": np.array([0.25, 0.5, 0.125], np.float32).reshape(3, 1), "zeropt": 2.0,
              "input_bit_width": 8.0}
    params.update({"output_bit_width": 5.0} if version == 1 else {"output_scale": 1.0, "output_bit_width": 4.0})
    attrs = {"rounding_mode": rounding}
    if version == 2:
        attrs.update(signed=1, narrow=1)
    node = helper.make_node("Trunc", ["x", *params], ["y"], domain=GENERAL, **attrs)
    _check(_model(node, shape, params, domain_version=version), _x(shape, spread=12.0))


@pytest.mark.parametrize("rounding", ["ROUND", "FLOOR", "CEIL"])
@pytest.mark.parametrize("exponent, mantissa, bias, max_val, overflow", [
    (4, 3, 7, 448.0, {}),  # e4m3 as OCP's fp8, saturating
    (5, 2, 15, 57344.0, {}),  # e5m2
    (2, 1, 1, 3.0, {}),  # fp4 (e2m1 without its 6: a max_val below the format's largest)
    (3, 2, 3, 28.0, {"saturation": 0, "has_inf": 1}),
    (4, 3, 7, 240.0, {"saturation": 0, "has_nan": 1}),
])
def test_float_quant(exponent, mantissa, bias, max_val, overflow, rounding):
    """Minifloats: subnormals below the smallest exponent, saturation or infinity / NaN beyond max_val."""
    shape = (3, 16)
    params = {"scale": np.array([0.5, 1.0, 4.0], np.float32).reshape(3, 1), "exponent_bitwidth": float(exponent),
              "mantissa_bitwidth": float(mantissa), "exponent_bias": float(bias), "max_val": max_val}
    attrs = {"has_inf": 0, "has_nan": 0, "has_subnormal": 1, "saturation": 1, **overflow}
    node = helper.make_node("FloatQuant", ["x", *params], ["y"], domain=GENERAL, rounding_mode=rounding, **attrs)
    x = _x(shape, spread=max_val / 3)
    x[0, :4] = [0.0, 2.0**-12, -(2.0**-9), max_val * 8]
    _check(_model(node, shape, params), x)


def _channels_last_chain() -> onnx.ModelProto:
    """Conv -> BatchNormalization -> Quant -> MaxPool -> Conv, all channels-last (NHWC), as hls4ml's exports."""
    rng = np.random.default_rng(1)
    init = {"w1": rng.standard_normal((4, 3, 3, 2)), "b1": rng.standard_normal(4),
            "gamma": rng.uniform(0.5, 2, 4), "beta": rng.standard_normal(4), "mean": rng.standard_normal(4),
            "var": rng.uniform(0.5, 2, 4), "scale": [0.25], "zeropt": [0.0], "bits": 4.0,
            "w2": rng.standard_normal((3, 1, 1, 4))}
    conv = {"strides": [1, 1], "dilations": [1, 1], "group": 1}  # qonnx requires every attribute
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], domain=CHANNELS_LAST, kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], **conv),
             helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn"],
                              domain=CHANNELS_LAST, epsilon=1e-3, momentum=0.9),
             helper.make_node("Quant", ["bn", "scale", "zeropt", "bits"], ["q"], domain=GENERAL, signed=1, narrow=0,
                              rounding_mode="ROUND"),
             helper.make_node("MaxPool", ["q"], ["p"], domain=CHANNELS_LAST, kernel_shape=[2, 2], strides=[2, 2],
                              pads=[0, 0, 0, 0]),
             helper.make_node("Conv", ["p", "w2"], ["y"], domain=CHANNELS_LAST, kernel_shape=[1, 1],
                              pads=[0, 0, 0, 0], **conv)]
    graph = helper.make_graph(nodes, "channels_last", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                     (2, 8, 8, 2))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 4, 4, 3))],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in init.items()],
                              # qonnx's shape inference of the channels-last operators needs their inputs' shapes
                              value_info=[helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
                                          for name, shape in (("c1", (2, 8, 8, 4)), ("bn", (2, 8, 8, 4)),
                                                              ("q", (2, 8, 8, 4)), ("p", (2, 4, 4, 4)))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(GENERAL, 1),
                                                   helper.make_opsetid(CHANNELS_LAST, 13)])


def test_channels_last():
    model = _channels_last_chain()
    _check(model, _x((2, 8, 8, 2), spread=1.0), exact=False)
    header = sr.compile(sr.load(model)).code.header
    # one transposition in, one out: those between the channels-last operators cancel (the header holds infer's
    # body once per instruction set: the nodes counted once)
    assert len({line.strip() for line in header.splitlines() if "// node" in line and ": Transpose" in line}) == 2


# ---- Brevitas ----------------------------------------------------------------------------------------------------


def _brevitas_networks():
    torch = pytest.importorskip("torch")
    qnn = pytest.importorskip("brevitas.nn")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
                              qnn.QuantLinear(16, 32, bias=True, weight_bit_width=4),
                              qnn.QuantReLU(bit_width=6, return_quant_tensor=True),
                              qnn.QuantLinear(32, 5, bias=True, weight_bit_width=3))
    cnn = torch.nn.Sequential(qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
                              qnn.QuantConv2d(2, 8, 3, padding=1, weight_bit_width=4, bias=True),
                              torch.nn.BatchNorm2d(8), qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
                              torch.nn.MaxPool2d(2), qnn.QuantConv2d(8, 4, 3, weight_bit_width=5, bias=False),
                              qnn.QuantReLU(bit_width=5))
    with torch.no_grad():
        for module in cnn.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2)
    return {"mlp": (mlp.eval(), (1, 16)), "cnn": (cnn.eval(), (1, 2, 8, 8))}


@pytest.fixture(scope="module")
def brevitas_models(tmp_path_factory) -> dict:
    """name -> (QONNX file cleaned as qonnx's tools leave it, input shape); the CNN also channels-last."""
    torch = pytest.importorskip("torch")
    export = pytest.importorskip("brevitas.export")
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.util.cleanup import cleanup_model

    folder = tmp_path_factory.mktemp("brevitas")
    models = {}
    for name, (module, shape) in _brevitas_networks().items():
        path = folder / f"{name}.onnx"
        export.export_qonnx(module, torch.randn(*shape), export_path=str(path))
        models[name] = (cleanup_model(ModelWrapper(str(path))).model, shape)
    channels_last = ModelWrapper(models["cnn"][0]).transform(ConvertToChannelsLastAndClean())
    models["cnn_channels_last"] = (channels_last.model, models["cnn"][1])
    return models


@pytest.mark.parametrize("name", ["mlp", "cnn", "cnn_channels_last"])
def test_brevitas(brevitas_models, name):
    model, shape = brevitas_models[name]
    if name == "cnn_channels_last":
        assert {n.domain for n in model.graph.node} >= {CHANNELS_LAST}
    for seed in range(3):
        _check(model, _x(shape, spread=2.0, seed=seed), exact=False, backend="native")


# ---- bad input ---------------------------------------------------------------------------------------------------


def test_errors():
    params = {"scale": 0.5, "zeropt": 0.0}
    node = helper.make_node("Quant", ["x", "scale", "zeropt", "bits"], ["y"], domain=GENERAL, signed=1, narrow=0,
                            rounding_mode="ROUND")
    graph = helper.make_graph([node], "runtime_bits", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (4,)),
                                                       helper.make_tensor_value_info("bits", TensorProto.FLOAT, ())],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (4,))],
                              [numpy_helper.from_array(np.float32(v), k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(GENERAL, 1)])
    with pytest.raises(Exception, match=r"Quant node 'Quant_0': bitwidth \(input 3\) must be known when the code is generated"):
        sr.compile(sr.load(model))
    bad = {"scale": 0.5, "zeropt": 0.0, "bitwidth": 4.0}
    for attrs, problem in (({"rounding_mode": "NEAREST"}, "rounding_mode 'NEAREST' is not one of"),
                           ({"rounding_mode": "ROUND", "signed": 1, "narrow": 0, "wide": 1}, "wide")):
        node = helper.make_node("Quant", ["x", *bad], ["y"], domain=GENERAL, **attrs)
        with pytest.raises(Exception, match=problem):
            sr.compile(sr.load(_model(node, (4,), bad)))
    node = helper.make_node("Quant", ["x", *bad], ["y"], domain=GENERAL, rounding_mode="ROUND")
    params = dict(bad, bitwidth=2.5)
    with pytest.raises(Exception, match="bitwidth must be a positive integer, got 2.5"):
        sr.compile(sr.load(_model(node, (4,), params)))
