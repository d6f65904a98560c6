"""PyTorch recurrent layers exported to ONNX, against PyTorch itself and onnxruntime.

``nn.RNN``, ``nn.GRU`` and ``nn.LSTM`` (two layers, bidirectional, batch_first
both ways) are exported with the TorchScript exporter (``dynamo=False``,
opset 17) with batch and sequence length as dynamic axes, so the generated
``infer`` takes both as run-time arguments; one compiled model then runs
several batch sizes and lengths and must match torch at rtol 1e-4 / atol 1e-5.
The sequence classifiers of the rootbench suite (10 inputs, 20 steps, hidden
8, then Linear(8, 2), batch 1) must agree with onnxruntime to float rounding.
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
from conftest import ort_run

import sofie_rdf as sr

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
nn = torch.nn

LAYERS = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}
INPUT, HIDDEN = 5, 7


def export(module: nn.Module, example: torch.Tensor, dynamic: dict, outputs: list[str]) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(module.eval(), (example,), buffer, dynamo=False, opset_version=17, input_names=["x"],
                      output_names=outputs, dynamic_axes={"x": dynamic, **{o: {} for o in outputs}})
    return onnx.load_from_string(buffer.getvalue())


@pytest.fixture(scope="module", params=[(op, bf) for op in LAYERS for bf in (False, True)],
                ids=lambda p: f"{p[0]}-{'batch_first' if p[1] else 'time_major'}")
def stacked(request):
    """A 2-layer bidirectional layer, exported and compiled once per (type, batch_first)."""
    op, batch_first = request.param
    torch.manual_seed(0)
    module = LAYERS[op](INPUT, HIDDEN, num_layers=2, bidirectional=True, batch_first=batch_first)
    example = torch.randn((2, 3, INPUT))
    axes = {0: "N", 1: "S"} if batch_first else {0: "S", 1: "N"}
    outputs = ["y", "h_n", "c_n"] if op == "LSTM" else ["y", "h_n"]
    model = export(module, example, axes, outputs)
    return module, batch_first, sr.compile(sr.load(model, name=f"stacked_{op}"))


@pytest.mark.parametrize("batch,seq", [(1, 1), (1, 20), (4, 9)])
def test_stacked_bidirectional_matches_torch(stacked, batch, seq):
    module, batch_first, session = stacked
    shape = (batch, seq, INPUT) if batch_first else (seq, batch, INPUT)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(batch * 100 + seq))
    with torch.no_grad():
        y, state = module(x)
    expected = [y] + (list(state) if isinstance(state, tuple) else [state])
    ours = session.infer(x.numpy())
    assert len(ours) == len(expected)
    for name, a, b in zip(("y", "h_n", "c_n"), ours, expected):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


class SequenceClassifier(nn.Module):
    """rootbench's RNN/GRU/LSTM_d10_L20_h8_B1: a recurrent layer, then Linear(8, 2) on the last step."""

    def __init__(self, op: str):
        super().__init__()
        self.rnn = LAYERS[op](10, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1])


@pytest.mark.parametrize("op", LAYERS)
def test_sequence_classifier_batch_1(op):
    torch.manual_seed(1)
    module = SequenceClassifier(op)
    x = torch.randn((1, 20, 10))
    model = export(module, x, {}, ["score"])
    session = sr.compile(sr.load(model, name=f"classifier_{op}"), backend="native")
    rng = np.random.default_rng(2)
    for _ in range(5):
        x = rng.standard_normal((1, 20, 10)).astype(np.float32)
        ours = session.infer(x)
        (ref,) = ort_run(model, {"x": x})
        with torch.no_grad():
            expected = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
