"""Models quantized by onnxruntime's tools against onnxruntime: an MLP, a CNN and a recurrent network (LSTM then
GRU) written by PyTorch's exporter, quantized by ``quantize_dynamic`` (DynamicQuantizeLinear + MatMulInteger /
ConvInteger, com.microsoft's DynamicQuantizeLSTM) and ``quantize_static`` in both formats (QDQ: float operators
between DequantizeLinear and QuantizeLinear; QOperator: QLinearConv, QGemm, QLinearSigmoid, ...).

The outputs are floats dequantized at the end: they must be within one step of the output's quantization of
the reference's (onnx's reference evaluator where it has every operator, else onnxruntime; see _reference), and
the QDQ graphs must run as integer operators.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from conftest import base_variant, ort_run

import sofie_rdf as sr

torch = pytest.importorskip("torch")
quantization = pytest.importorskip("onnxruntime.quantization")

SHAPES = {"mlp": (7,), "cnn": (1, 16, 16), "rnn": (10, 6)}


def _networks() -> dict:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(7, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 1), torch.nn.Sigmoid())
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(16, 4))

    class Recurrent(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(6, 16, batch_first=True)
            self.gru = torch.nn.GRU(16, 12, batch_first=True)
            self.head = torch.nn.Linear(12, 3)

        def forward(self, x):
            return self.head(self.gru(self.lstm(x)[0])[0][:, -1])

    return {"mlp": mlp, "cnn": cnn, "rnn": Recurrent()}


class _Calibration(quantization.CalibrationDataReader):
    def __init__(self, shape: tuple):
        self.batches = iter([{"x": np.random.default_rng(i).standard_normal((4, *shape)).astype(np.float32)}
                             for i in range(8)])

    def get_next(self):
        return next(self.batches, None)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> dict:
    """(network, format) -> path of the quantized ONNX file."""
    folder = tmp_path_factory.mktemp("quantized")
    paths = {}
    for name, module in _networks().items():
        float_path = folder / f"{name}.onnx"
        torch.onnx.export(module.eval(), (torch.randn(2, *SHAPES[name]),), str(float_path), dynamo=False,
                          opset_version=17, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        paths[name, "dynamic"] = folder / f"{name}_dynamic.onnx"
        # The recurrent network's DynamicQuantizeLSTM (com.microsoft) has no reference but onnxruntime, whose
        # uint8 x int8 products saturate without VNNI (_reference): weights of 7 bits keep them exact, as its
        # quantizer's reduce_range is meant for such CPUs (it was off by 0.03 on an AMD EPYC Zen 3, sofie-rdf
        # within 0.001 of the float model).
        quantization.quantize_dynamic(str(float_path), str(paths[name, "dynamic"]), reduce_range=name == "rnn")
        for fmt in ("QDQ", "QOperator"):
            paths[name, fmt] = folder / f"{name}_{fmt}.onnx"
            quantization.quantize_static(str(float_path), str(paths[name, fmt]), _Calibration(SHAPES[name]),
                                         quant_format=getattr(quantization.QuantFormat, fmt))
    return paths


def _output_step(model: onnx.ModelProto) -> float:
    """The scale of the DequantizeLinear writing the output, 0 where a float operator does."""
    producer = next(n for n in model.graph.node if model.graph.output[0].name in n.output)
    if producer.op_type != "DequantizeLinear":
        return 0.0
    init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    return float(init[producer.input[1]].reshape(-1)[0])


@pytest.mark.parametrize("fmt", ["dynamic", "QDQ", "QOperator"])
@pytest.mark.parametrize("network", list(SHAPES))
def test_against_onnxruntime(quantized, network, fmt):
    path = quantized[network, fmt]
    model = onnx.load(path)
    sess = sr.compile(sr.load(path), backend="native")
    step = _output_step(model)
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, *SHAPES[network])).astype(np.float32)
        expected = _reference(model, {"x": x})[0]
        np.testing.assert_allclose(sess.infer(x), expected, rtol=1e-5, atol=max(step, 1e-6))


def _reference(model: onnx.ModelProto, feeds: dict) -> list:
    """onnx's reference evaluator for models of standard operators, onnxruntime for the others (com.microsoft's).
    Without VNNI (AVX2, AVX-512 before Cascade Lake) onnxruntime's uint8 x int8 products saturate at 16 bits
    (vpmaddubsw) and its numbers are wrong for full-range weights (the dynamic MLP and the QDQ CNN here, on an AMD
    EPYC Zen 3); the evaluator computes them as the standard defines them, on every machine."""
    if all(n.domain in ("", "ai.onnx") for n in model.graph.node):
        from onnx.reference import ReferenceEvaluator
        from onnx.version_converter import convert_version

        return ReferenceEvaluator(convert_version(model, 21)).run(None, feeds)  # its QDQ operators start at 19
    return ort_run(model, feeds)


@pytest.mark.parametrize("network, integer_ops", [("mlp", ["QuantizedGemm"] * 3 + ["QLinearSigmoid"]),
                                                  ("cnn", ["QuantizedConv", "MaxPool", "QuantizedConv",
                                                           "QLinearGlobalAveragePool", "Flatten", "QuantizedGemm"])])
def test_qdq_runs_as_integer_operators(quantized, network, integer_ops):
    """Between the input's QuantizeLinear and the output's DequantizeLinear, every layer is an integer operator."""
    code = base_variant(sr.compile(sr.load(quantized[network, "QDQ"]), backend="native").code.header)
    ops = re.findall(r"// node \d+: (\S+)", code)
    assert ops == ["QuantizeLinear", *integer_ops, "DequantizeLinear"]


def test_dynamic_products_fused(quantized):
    """quantize_dynamic's DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul -> Add chains run as one
    DynamicQuantizeMatMul each, which computes the same floats in the same order; checked on a batch of 3000,
    where an open batch whose operators all compute rows alone runs in blocks of rows: a DynamicQuantizeMatMul
    quantizes A over all of its rows, and must not be split (it was, 0.07 off at 64 events, while fused)."""
    path = quantized["mlp", "dynamic"]
    sess = sr.compile(sr.load(path), backend="native")
    ops = re.findall(r"// node \d+: (\S+)", base_variant(sess.code.header))
    assert ops.count("DynamicQuantizeMatMul") == 3 and not {"MatMulInteger", "DynamicQuantizeLinear", "Cast"} & set(ops)
    x = np.random.default_rng(3).standard_normal((3000, *SHAPES["mlp"])).astype(np.float32)
    np.testing.assert_allclose(sess.infer(x), _reference(onnx.load(path), {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_torch_fake_quantized_export(tmp_path):
    """A network trained with fake quantization (as torch.ao's QAT leaves it) exports as QuantizeLinear ->
    DequantizeLinear pairs around float operators: the same values as torch's, and within one step of the
    output's quantization of onnxruntime's (which runs the convolution on integers)."""

    class FakeQuantized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.head = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Linear(8 * 4 * 4, 5)

        def forward(self, x):
            x = torch.fake_quantize_per_tensor_affine(x, 0.05, 128, 0, 255)
            w = torch.fake_quantize_per_channel_affine(self.conv.weight, torch.full((8,), 0.01),
                                                       torch.zeros(8, dtype=torch.int32), 0, -128, 127)
            y = torch.nn.functional.conv2d(x, w, self.conv.bias, padding=1).relu()
            y = torch.fake_quantize_per_tensor_affine(y, 0.04, 0, 0, 255)
            return self.head(torch.nn.functional.max_pool2d(y, 2).flatten(1))

    torch.manual_seed(0)
    net, path = FakeQuantized().eval(), tmp_path / "fake_quantized.onnx"
    torch.onnx.export(net, (torch.randn(2, 3, 8, 8),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in onnx.load(path).graph.node}
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    got = sr.compile(sr.load(path), backend="native").infer(x)
    with torch.no_grad():
        np.testing.assert_allclose(got, net(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)
    head = np.abs(net.head.weight.detach().numpy()).sum(axis=1).max()  # one step of y moves an output this much
    np.testing.assert_allclose(got, ort_run(onnx.load(path), {"x": x})[0], rtol=0, atol=0.04 * head)
