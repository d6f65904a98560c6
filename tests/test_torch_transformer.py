"""Transformer and graph-network blocks from PyTorch, with sizes that change per call.

Both models are exported with torch's dynamo exporter (``torch.onnx.export(...,
dynamo=True)``) and dynamic batch and particle axes: the TorchScript exporter
bakes the traced sequence length into the attention reshapes, the dynamo one
keeps it symbolic.  One compiled model then runs every particle count and must
match torch at rtol 1e-4 / atol 1e-5:

* ``nn.TransformerEncoder``: 2 layers, d_model 64, 4 heads, batch_first;
* a ParticleNet-style EdgeConv block: k nearest neighbours in (eta, phi) by
  TopK on pairwise distances, their features gathered, an edge MLP on
  (x_i, x_j - x_i), mean over the neighbours.  TopK's K is min(k, P - 1)
  computed from the shape, so jets with fewer particles than k work too.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")  # the dynamo exporter's dependency
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")
nn = torch.nn

RTOL, ATOL = 1e-4, 1e-5


def export(module: nn.Module, examples: tuple, dynamic: tuple):
    program = torch.onnx.export(module.eval(), examples, dynamo=True, dynamic_shapes=dynamic, opset_version=18,
                                verbose=False)
    return program.model_proto


def check(session, module, *arrays):
    with torch.no_grad():
        expected = module(*(torch.from_numpy(a) for a in arrays)).numpy()
    np.testing.assert_allclose(session.infer(*arrays), expected, rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, batch_first=True, dropout=0.0)
    module = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    n, p = torch.export.Dim("N"), torch.export.Dim("P")
    model = export(module, (torch.randn(2, 10, 64),), ({0: n, 1: p},))
    return module, model


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_transformer_encoder_variable_particles(encoder, backend):
    module, model = encoder
    loaded = sr.load(model, name="encoder")
    assert [str(d) for d in loaded.inputs[0].shape] == ["N", "P", "64"]
    session = sr.compile(loaded, backend=backend)
    rng = np.random.default_rng(1)
    for n, p in ((1, 1), (1, 7), (3, 16), (2, 33)):
        check(session, module, rng.standard_normal((n, p, 64)).astype(np.float32))


class EdgeConv(nn.Module):
    """kNN in (eta, phi), then an MLP on (x_i, x_j - x_i) averaged over the k neighbours."""

    def __init__(self, k: int = 4, features: int = 5, out: int = 16):
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Linear(2 * features, out), nn.ReLU(), nn.Linear(out, out), nn.ReLU())

    def forward(self, points, features):  # (B, P, 2), (B, P, C)
        b, p, c = features.shape
        k = min(self.k, p - 1) if isinstance(p, int) else torch.clamp(p - 1, max=self.k)
        distance = ((points[:, :, None, :] - points[:, None, :, :]) ** 2).sum(-1)
        neighbours = distance.topk(k + 1, dim=-1, largest=False).indices[:, :, 1:]  # drop the particle itself
        gathered = torch.gather(features[:, None, :, :].expand(b, p, p, c), 2,
                                neighbours[..., None].expand(b, p, neighbours.shape[2], c))
        centre = features[:, :, None, :].expand_as(gathered)
        return self.mlp(torch.cat([centre, gathered - centre], -1)).mean(2)


@pytest.fixture(scope="module")
def edgeconv():
    torch.manual_seed(2)
    module = EdgeConv().eval()
    p = torch.export.Dim("P", min=2, max=256)
    model = export(module, (torch.randn(1, 12, 2), torch.randn(1, 12, 5)), ({1: p}, {1: p}))
    return module, model


def test_edgeconv_variable_particles(edgeconv):
    module, model = edgeconv
    session = sr.compile(sr.load(model, name="edgeconv"))
    rng = np.random.default_rng(3)
    for p in (12, 5, 40, 2):
        points = rng.standard_normal((1, p, 2)).astype(np.float32)
        check(session, module, points, rng.standard_normal((1, p, 5)).astype(np.float32))


def test_legacy_torchscript_export_runs_for_the_traced_length(tmp_path):
    """The TorchScript exporter (the default before torch 2.9, so most files users have) bakes the traced
    sequence length into the attention reshapes.  The model compiles once with its dynamic axes, runs for the
    traced length at any batch size, and another length is a ShapeError naming the reshape (onnxruntime fails
    there too)."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.0)
    module = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
    path = tmp_path / "legacy.onnx"
    torch.onnx.export(module, (torch.randn(12, 2, 16),), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "seq", 1: "batch"}, "y": {0: "seq", 1: "batch"}},
                      opset_version=17)
    model = sr.load(path)
    assert [str(d) for d in model.inputs[0].shape] == ["seq", "batch", "16"]
    session = sr.compile(model, backend="jit")
    for batch in (2, 5, 1):
        check(session, module, np.random.default_rng(batch).standard_normal((12, batch, 16)).astype(np.float32))
    with pytest.raises(sr.ShapeError, match=r"Reshape node .*cannot view a tensor of shape \(seq, batch, 16\)"):
        session.infer(np.zeros((7, 2, 16), np.float32))
