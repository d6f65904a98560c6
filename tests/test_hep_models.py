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

import pickletools
import struct
import zipfile

import numpy as np
import onnx
import pytest
from conftest import ort_run
from onnx import TensorProto, helper

import sofie_rdf as sr
from benchmarks.shipped import edgeconv_block, pair_embed, randomize_batchnorm, torchscript_onnx
from benchmarks.shipped import jets as shipped_jets

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::torch.jit.TracerWarning")
nn = torch.nn

RTOL, ATOL = 1e-4, 1e-5


def exported(module: nn.Module, examples: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The TorchScript exporter's file, batch and particle axes (the last) dynamic."""
    return onnx.load_from_string(torchscript_onnx(module, examples, {k: {0: "N", 2: "P"} for k in examples}))


def check_against_ort(session: sr.Session, model: onnx.ModelProto, feeds: dict) -> None:
    got = session.infer(*[feeds[i.name] for i in session.inputs])
    np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=RTOL, atol=ATOL)


def jets(n: int, p: int, seed: int) -> dict[str, np.ndarray]:
    """Points, six features and a mask padding the last particles of each jet."""
    return {k: v for k, v in shipped_jets(n, p, 6, seed).items() if k in ("points", "features", "mask")}


@pytest.fixture(scope="module")
def edgeconv() -> onnx.ModelProto:
    torch.manual_seed(0)
    block = randomize_batchnorm(edgeconv_block(k=4, cin=6, cout=16), seed=1)
    return exported(block, jets(2, 10, seed=0))


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_particlenet_edgeconv_particle_count_free(edgeconv, backend):
    """Kernel-1 convolutions over a symbolic particle axis: one compiled model, every jet size."""
    model = sr.load(edgeconv, name=f"edgeconv_{backend}")
    assert [str(d) for d in model.inputs[1].shape] == ["N", "6", "P"]
    assert {"Conv", "TopK"} <= {n.op_type for n in edgeconv.graph.node}
    session = sr.compile(model, backend=backend)
    for n, p in ((2, 10), (1, 37), (3, 5)):
        check_against_ort(session, edgeconv, jets(n, p, seed=p))
    with pytest.raises(sr.ShapeError):  # TopK needs k + 1 = 5 particles
        session.infer(*jets(1, 4, seed=4).values())


def four_vectors(n: int, p: int, seed: int) -> np.ndarray:
    return shipped_jets(n, p, 6, seed)["vectors"]


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_part_pair_embedding_particle_count_free(backend):
    torch.manual_seed(3)
    module = pair_embed((16, 8))
    model = exported(module, {"v": four_vectors(2, 7, 0)})
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
