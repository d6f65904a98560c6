"""The PyTorch front end (``sr.from_pytorch``, ``sr.load`` on ``.pt``) against PyTorch itself.

Five models (an MLP, a CNN with BatchNorm whose running statistics are not
the identity, a 2-layer batch_first LSTM, a 2-layer TransformerEncoder and a
model with two inputs and two outputs) are loaded twice: from the module
object (torch.export route) and from a ``.pt`` file through ``sr.load``
(TorchScript files, traced or scripted; the encoder, which torch's
TorchScript ONNX exporter cannot handle, from a ``torch.export.save`` file).
Each is compiled once with a symbolic batch axis (and sequence axis where the
model has one) and run at two sizes on seeded random inputs; outputs must
match torch at rtol 1e-4 / atol 1e-5.  Unreadable files and unexportable
modules must raise a ``SofieError`` subclass that names the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from conftest import assert_matches_torch
from test_torch_cnn import _randomize_bn

import sofie_rdf as sr
from sofie_rdf.errors import ModelFormatError, UnsupportedOperatorError

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")  # the dynamo exporter's dependency
# torch.jit.trace/script/save are deprecated; the traced LSTM warns about its own shape checks
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
nn = torch.nn

RTOL, ATOL = 1e-4, 1e-5


# ---- models --------------------------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 16), nn.Tanh(),
                                 nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.BatchNorm2d(6), nn.Conv2d(6, 8, 3), nn.ReLU())
        self.head = nn.Linear(8 * 2 * 2, 4)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class LSTMTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 7, num_layers=2, batch_first=True)
        self.fc = nn.Linear(7, 2)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(x)


class TwoInTwoOut(nn.Module):
    """Jets and leptons in; a per-event score and per-event features out."""

    def __init__(self):
        super().__init__()
        self.jets = nn.Linear(4, 6)
        self.leptons = nn.Linear(3, 6)

    def forward(self, jets, leptons):
        h = torch.relu(self.jets(jets)) + torch.sigmoid(self.leptons(leptons))
        return h.sum(1, keepdim=True), h * jets.mean(1, keepdim=True)


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    shapes: tuple  # per input, without the batch axis (and sequence axis when seq)
    seq: bool = False  # axis 1 is a free sequence length
    file: str = "trace"  # how the .pt file is written: trace, script or export

    def example(self, batch: int, length: int, seed: int) -> tuple:
        gen = torch.Generator().manual_seed(seed)
        lead = (batch, length) if self.seq else (batch,)
        return tuple(torch.randn(lead + s, generator=gen) for s in self.shapes)

    def axes(self) -> dict:
        axes = {0: "N", 1: "S"} if self.seq else {0: "N"}
        return {i: axes for i in range(len(self.shapes))}


CASES = {
    "mlp": Case(MLP, ((8,),)),
    "cnn": Case(CNN, ((2, 8, 8),), file="script"),
    "lstm": Case(LSTMTagger, ((5,),), seq=True),
    "encoder": Case(Encoder, ((16,),), seq=True, file="export"),
    "two_in_two_out": Case(TwoInTwoOut, ((4,), (3,)), file="script"),
}


def build(case: Case) -> nn.Module:
    torch.manual_seed(0)
    return _randomize_bn(case.build(), seed=1).eval()


def save(case: Case, module: nn.Module, path) -> None:
    example = case.example(2, 3, seed=0)
    if case.file == "export":
        dims = {0: torch.export.Dim("N"), 1: torch.export.Dim("S")} if case.seq else {0: torch.export.Dim("N")}
        torch.export.save(torch.export.export(module, example, dynamic_shapes=(dims,) * len(example)), path)
    else:
        scripted = torch.jit.script(module) if case.file == "script" else torch.jit.trace(module, example)
        torch.jit.save(scripted, path)


# ---- against torch ------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[(c, s) for c in CASES for s in ("module", "file")], ids="-".join)
def loaded(request, tmp_path_factory):
    """(case, torch module, sofie Model, Session): exported and compiled once per model and source."""
    key, source = request.param
    case = CASES[key]
    module = build(case)
    example = case.example(2, 3, seed=0)
    if source == "module":
        model = sr.from_pytorch(module, example, dynamic_axes=case.axes())
    else:
        path = tmp_path_factory.mktemp("pt") / f"{key}_file.pt"  # not "MLP" vs "mlp": header guards ignore case
        save(case, module, path)
        model = sr.load(path, example_inputs=example, dynamic_axes=case.axes())
    return case, module, model, sr.compile(model)


def test_matches_torch(loaded):
    case, module, model, session = loaded
    expected_dims = ["N", "S"] if case.seq else ["N"]
    for tensor, shape in zip(model.inputs, case.shapes):
        assert [str(d) for d in tensor.shape] == expected_dims + [str(s) for s in shape]
    for seed, (batch, length) in enumerate([(2, 3), (5, 7)]):
        assert_matches_torch(session, module, case.example(batch, length, seed), RTOL, ATOL, f"batch {batch}")


def test_names_numpy_inputs_and_native_backend():
    """User names for inputs, outputs and a batch axis shared by both inputs; numpy example inputs."""
    case = CASES["two_in_two_out"]
    module = build(case)
    example = [x.numpy() for x in case.example(3, 0, seed=2)]
    model = sr.from_pytorch(module, example, name="tagger", input_names=["jets", "leptons"],
                            output_names=["score", "features"], dynamic_axes={"jets": {0: "B"}, "leptons": {0: "B"}})
    assert model.name == "tagger"
    assert [(t.name, [str(d) for d in t.shape]) for t in model.inputs] == [("jets", ["B", "4"]), ("leptons", ["B", "3"])]
    assert [t.name for t in model.outputs] == ["score", "features"]
    inputs = [x.numpy() for x in case.example(4, 0, seed=3)]
    with torch.no_grad():
        expected = module(*(torch.from_numpy(x) for x in inputs))
    for a, b in zip(sr.compile(model, backend="native").infer(*inputs), expected):
        np.testing.assert_allclose(a, b.numpy(), rtol=RTOL, atol=ATOL)


def test_static_by_default_and_training_flags_restored():
    module = build(CASES["mlp"]).train()
    module.net[2].eval()  # a mixed state must come back as it was
    flags = [m.training for m in module.modules()]
    model = sr.from_pytorch(module, torch.randn(2, 8))
    assert [m.training for m in module.modules()] == flags
    assert model.name == "MLP"
    assert [d for d in model.inputs[0].shape] == [2, 8]


def test_frozen_torchscript_file(tmp_path):
    """A ``torch.jit.freeze``d module (Triton model repositories ship them; Exa.TrkX's filter) has no training flag."""
    module = build(CASES["mlp"])
    frozen = torch.jit.freeze(torch.jit.script(module))
    assert not hasattr(frozen, "training")
    path = tmp_path / "frozen.pt"
    torch.jit.save(frozen, path)
    model = sr.load(path, example_inputs=(torch.randn(2, 8),), dynamic_axes={0: {0: "N"}})
    assert_matches_torch(sr.compile(model), module, (torch.randn(5, 8),), RTOL, ATOL, "batch 5")


# ---- errors -----------------------------------------------------------------------------------------------

class DataDependent(nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x - 1


class Sampler(nn.Module):
    def forward(self, x):
        return torch.bernoulli(torch.sigmoid(x))


def test_missing_and_garbage_files(tmp_path):
    example = torch.randn(2, 8)
    with pytest.raises(ModelFormatError, match="cannot read PyTorch model .*missing.pt"):
        sr.load(tmp_path / "missing.pt", example_inputs=example)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a model" * 50)
    with pytest.raises(ModelFormatError, match="garbage.pt.* not a PyTorch model file"):
        sr.load(garbage, example_inputs=example)
    pickled = tmp_path / "pickled.pt"
    torch.save(build(CASES["mlp"]), pickled)
    with pytest.raises(ModelFormatError, match="torch.save.*torch.jit.save"):
        sr.from_pytorch(pickled, example)


def test_unexportable_modules(tmp_path):
    with pytest.raises(ModelFormatError, match="model 'DataDependent': torch.export cannot export it: .*data-dependent"):
        sr.from_pytorch(DataDependent(), torch.randn(2, 3))
    with pytest.raises(UnsupportedOperatorError, match="(?s)'Sampler'.*Bernoulli"):
        sr.from_pytorch(Sampler(), torch.randn(2, 3))
    encoder = build(CASES["encoder"])
    path = tmp_path / "encoder_script.pt"
    torch.jit.save(torch.jit.script(encoder), path)
    with pytest.raises(ModelFormatError, match="model 'encoder_script': the TorchScript ONNX exporter failed"):
        sr.load(path, example_inputs=torch.randn(2, 3, 16))


def test_bad_arguments():
    module = build(CASES["mlp"])
    with pytest.raises(ModelFormatError, match="'MLP'.*'y'.*neither an input"):
        sr.from_pytorch(module, torch.randn(2, 8), dynamic_axes={"y": {0: "N"}})
    with pytest.raises(ModelFormatError, match="'MLP': 2 input names for 1 example inputs"):
        sr.from_pytorch(module, torch.randn(2, 8), input_names=["a", "b"])
    with pytest.raises(ModelFormatError, match="'MLP': example input 0 is a list"):
        sr.from_pytorch(module, ([1.0, 2.0],))
