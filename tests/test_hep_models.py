"""Constructions from the models LHC experiments publish, as their files come (issue: real HEP models).

* ParticleNet-style EdgeConv exported with the TorchScript exporter (what most released files used):
  kernel-1 ``Conv2d``/``Conv1d`` with BatchNorm over ``(n_particles, k)`` and ``(n_particles,)``, k nearest
  neighbours by TopK on masked coordinates, neighbour features gathered through a flattened index built
  from ``arange(batch)`` -- batch and particle count both free at run time;
* a ParT-style pair embedding: pairwise features of the four-vectors (ln kT, ln z, ln delta, ln m^2) of
  the pairs below the diagonal (``Trilu`` + ``NonZero``), embedded by kernel-1 convolutions and scattered
  into a symmetric ``(N, C, P, P)`` attention bias (``ScatterND``);
* input dims with neither a value nor a name (MXNet and some tf2onnx exports), unified as onnxruntime
  unifies them while running;
* a TorchScript file saved on a GPU, read on a CPU-only machine.

References: onnxruntime on the same ONNX file (rtol 1e-4, atol 1e-5), torch for the TorchScript file.
"""

from __future__ import annotations

import io
import pickletools
import struct
import zipfile

import numpy as np
import onnx
import pytest
from conftest import ort_run
from onnx import TensorProto, helper

import sofie_rdf as sr

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::torch.jit.TracerWarning")
nn = torch.nn

RTOL, ATOL = 1e-4, 1e-5


def torchscript_export(module: nn.Module, examples: tuple, names: list[str], dynamic: dict) -> onnx.ModelProto:
    """``torch.onnx.export(dynamo=False)``, as the released files were written."""
    buffer = io.BytesIO()
    torch.onnx.export(module.eval(), examples, buffer, dynamo=False, opset_version=17, input_names=names,
                      output_names=["y"], dynamic_axes=dynamic)
    return onnx.load_from_string(buffer.getvalue())


def check_against_ort(session: sr.Session, model: onnx.ModelProto, feeds: dict) -> None:
    got = session.infer(*[feeds[i.name] for i in session.inputs])
    np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=RTOL, atol=ATOL)


class EdgeConvBlock(nn.Module):
    """ParticleNet's EdgeConv as in its reference implementation (weaver), with a shortcut."""

    def __init__(self, k: int, cin: int, cout: int):
        super().__init__()
        self.k = k
        self.edge = nn.Sequential(nn.Conv2d(2 * cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
        self.shortcut = nn.Sequential(nn.Conv1d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout))

    def forward(self, points, features, mask):  # (N, 2, P), (N, C, P), (N, 1, P)
        shifted = points + (1.0 - mask) * 1e9  # padded particles are nobody's neighbours
        inner = -2 * torch.matmul(shifted.transpose(2, 1), shifted)
        square = (shifted ** 2).sum(dim=1, keepdim=True)
        idx = (-square - inner - square.transpose(2, 1)).topk(self.k + 1, dim=-1)[1][:, :, 1:]  # (N, P, k)
        n, c, p = features.shape
        flat = (idx + torch.arange(0, n).view(-1, 1, 1) * p).reshape(-1)
        neighbours = features.transpose(2, 1).reshape(-1, c)[flat, :].view(n, p, self.k, c).permute(0, 3, 1, 2)
        centre = features.unsqueeze(-1).repeat(1, 1, 1, self.k)
        edges = self.edge(torch.cat((centre, neighbours - centre), dim=1)).mean(dim=-1)
        return torch.relu(self.shortcut(features) + edges) * mask


def _randomize_batchnorm(module: nn.Module, seed: int) -> nn.Module:
    """Trained-looking BatchNorm statistics (fresh ones are the identity and would hide a folding bug)."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return module.eval()


def jets(n: int, p: int, c: int, seed: int) -> dict:
    """Points, features and a mask with the last particles of each jet padded."""
    rng = np.random.default_rng(seed)
    mask = np.ones((n, 1, p), np.float32)
    for j in range(n):
        mask[j, 0, rng.integers(p // 2 + 1, p + 1):] = 0
    return {"points": rng.standard_normal((n, 2, p)).astype(np.float32) * mask,
            "features": rng.standard_normal((n, c, p)).astype(np.float32) * mask, "mask": mask}


@pytest.fixture(scope="module")
def edgeconv() -> onnx.ModelProto:
    torch.manual_seed(0)
    block = _randomize_batchnorm(EdgeConvBlock(k=4, cin=6, cout=16), seed=1)
    ex = jets(2, 10, 6, seed=0)
    dyn = {name: {0: "N", 2: "P"} for name in ex} | {"y": {0: "N", 2: "P"}}
    return torchscript_export(block, tuple(torch.from_numpy(v) for v in ex.values()), list(ex), dyn)


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_particlenet_edgeconv_particle_count_free(edgeconv, backend):
    """Kernel-1 convolutions over a symbolic particle axis: one compiled model, every jet size."""
    model = sr.load(edgeconv, name=f"edgeconv_{backend}")
    assert [str(d) for d in model.inputs[1].shape] == ["N", "6", "P"]
    assert {"Conv", "TopK"} <= {n.op_type for n in edgeconv.graph.node}
    session = sr.compile(model, backend=backend)
    for n, p in ((2, 10), (1, 37), (3, 5)):
        check_against_ort(session, edgeconv, jets(n, p, 6, seed=p))
    with pytest.raises(sr.ShapeError):  # TopK needs k + 1 = 5 particles
        session.infer(*jets(1, 4, 6, seed=4).values())


def pairwise_lv(xi, xj, eps: float = 1e-8):
    """ParT's pair features of two four-vector sets (px, py, pz, E) along axis 1: ln kT, ln z, ln delta, ln m^2."""
    pti, ptj = torch.sqrt(xi[:, 0] ** 2 + xi[:, 1] ** 2), torch.sqrt(xj[:, 0] ** 2 + xj[:, 1] ** 2)
    rapi = 0.5 * torch.log(1 + 2 * xi[:, 2] / (xi[:, 3] - xi[:, 2]).clamp(min=1e-20))
    rapj = 0.5 * torch.log(1 + 2 * xj[:, 2] / (xj[:, 3] - xj[:, 2]).clamp(min=1e-20))
    dphi = (torch.atan2(xi[:, 1], xi[:, 0]) - torch.atan2(xj[:, 1], xj[:, 0]) + torch.pi) % (2 * torch.pi) - torch.pi
    delta = torch.sqrt((rapi - rapj) ** 2 + dphi ** 2)
    ptmin = torch.minimum(pti, ptj)
    pair = xi + xj
    m2 = (pair[:, 3] ** 2 - (pair[:, :3] ** 2).sum(1)).clamp(min=eps)
    return torch.stack([torch.log((ptmin * delta).clamp(min=eps)), torch.log((ptmin / (pti + ptj)).clamp(min=eps)),
                        torch.log(delta.clamp(min=eps)), torch.log(m2)], dim=1)


class PairEmbed(nn.Module):
    """ParT's pair embedding: features of the pairs i > j, embedded, scattered into a symmetric bias."""

    def __init__(self, dims: tuple = (16, 8)):
        super().__init__()
        layers, cin = [nn.BatchNorm1d(4)], 4
        for cout in dims:
            layers += [nn.Conv1d(cin, cout, 1), nn.BatchNorm1d(cout), nn.GELU()]
            cin = cout
        self.embed = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, v):  # (N, 4, P) four-vectors
        n, _, p = v.shape
        below = torch.ones(p, p, dtype=torch.bool).tril(diagonal=-1)  # Trilu
        i, j = below.nonzero(as_tuple=True)                            # NonZero
        pairs = self.embed(pairwise_lv(v[:, :, i], v[:, :, j]))       # (N, C, P(P-1)/2)
        bias = torch.zeros(n, self.out_dim, p, p, dtype=v.dtype)
        bias[:, :, i, j] = pairs                                       # ScatterND
        bias[:, :, j, i] = pairs
        return bias


def four_vectors(n: int, p: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    momentum = rng.standard_normal((n, 3, p)) * 20
    mass = rng.random((n, 1, p))
    energy = np.sqrt((momentum ** 2).sum(1, keepdims=True) + mass ** 2)
    return np.concatenate([momentum, energy], 1).astype(np.float32)


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_part_pair_embedding_particle_count_free(backend):
    torch.manual_seed(3)
    module = _randomize_batchnorm(PairEmbed(), seed=4)
    model = torchscript_export(module, (torch.from_numpy(four_vectors(2, 7, 0)),), ["v"],
                               {"v": {0: "N", 2: "P"}, "y": {0: "N", 2: "P", 3: "P"}})
    assert {"Trilu", "NonZero", "ScatterND"} <= {n.op_type for n in model.graph.node}
    session = sr.compile(sr.load(model, name=f"pair_embed_{backend}"), backend=backend)
    for n, p in ((2, 7), (1, 16), (3, 2)):
        check_against_ort(session, model, {"v": four_vectors(n, p, seed=p)})


def unnamed_model() -> onnx.ModelProto:
    """Two inputs whose batch dims the file leaves unnamed, concatenated, then a product whose inner dim is
    also unnamed (as an MXNet export writes them)."""
    def info(name: str, dims: list) -> onnx.ValueInfoProto:
        value = helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)
        for d, v in zip(value.type.tensor_type.shape.dim, dims):
            if v is None:
                d.Clear()
        return value

    rng = np.random.default_rng(0)
    weight = helper.make_tensor("w", TensorProto.FLOAT, (24, 3), rng.standard_normal((24, 3)).astype(np.float32))
    nodes = [helper.make_node("Concat", ["pf", "sv"], ["both"], axis=1),
             helper.make_node("MatMul", ["both", "w"], ["y"])]
    graph = helper.make_graph(nodes, "unnamed", [info("pf", [None, 16]), info("sv", [None, None])],
                              [info("y", [None, 3])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_unnamed_dims_are_unified(backend):
    """``(pf_dim0, 16)`` and ``(sv_dim0, sv_dim1)`` concatenate: the batch dims become one, and the second
    input's feature dim is bound by the MatMul to 8; both are checked on every call."""
    model = unnamed_model()
    loaded = sr.load(model, name=f"unnamed_{backend}")
    (batch, features), (batch_sv, features_sv) = [[str(d) for d in i.shape] for i in loaded.inputs]
    assert batch == batch_sv and batch in ("pf_dim0", "sv_dim0") and (features, features_sv) == ("16", "8")
    session = sr.compile(loaded, backend=backend)
    rng = np.random.default_rng(1)
    for n in (1, 5):
        feeds = {"pf": rng.standard_normal((n, 16)).astype(np.float32),
                 "sv": rng.standard_normal((n, 8)).astype(np.float32)}
        check_against_ort(session, model, feeds)
    with pytest.raises(sr.ShapeError, match=rf"input 'sv': expected shape \({batch}, 8\), got \(4, 8\)"):
        session.infer(np.zeros((5, 16), np.float32), np.zeros((4, 8), np.float32))


def test_tf2onnx_unknown_dim_names_are_unnamed():
    """tf2onnx writes ``unk__<n>`` for a dim it does not know: as good as no name."""
    model = unnamed_model()
    for k, value in enumerate(model.graph.input):
        value.type.tensor_type.shape.dim[0].dim_param = f"unk__{k}"
    assert [str(d) for d in sr.load(model).inputs[1].shape][1] == "8"


def saved_on_gpu(cpu_file, gpu_file) -> None:
    """Rewrite a TorchScript archive's storage locations from cpu to cuda:0, as torch.jit.save writes a model
    whose weights were on a GPU (no GPU is needed to make or read it)."""
    with zipfile.ZipFile(cpu_file) as source, zipfile.ZipFile(gpu_file, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith(".pkl"):
                out, last = bytearray(), 0
                for op, arg, pos in pickletools.genops(data):
                    if arg == "cpu" and op.name in ("BINUNICODE", "SHORT_BINUNICODE"):
                        out += data[last:pos] + b"X" + struct.pack("<I", 6) + b"cuda:0"  # BINUNICODE
                        last = pos + (5 if op.name == "BINUNICODE" else 2) + 3
                data = bytes(out + data[last:])
            target.writestr(item, data)


def test_torchscript_saved_on_gpu(tmp_path):
    torch.manual_seed(5)
    module = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 2)).eval()
    example = torch.randn(3, 6)
    torch.jit.save(torch.jit.trace(module, example), str(tmp_path / "cpu.pt"))
    saved_on_gpu(tmp_path / "cpu.pt", tmp_path / "gpu.pt")
    with pytest.raises(Exception, match="CUDA"):
        torch.jit.load(str(tmp_path / "gpu.pt"))  # what users met before
    session = sr.compile(sr.load(tmp_path / "gpu.pt", example_inputs=example), backend="native")
    with torch.no_grad():
        np.testing.assert_allclose(session.infer(example.numpy()), module(example).numpy(), rtol=RTOL, atol=ATOL)
