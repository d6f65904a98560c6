"""Public HEP models from repositories other than ``cms-data/RecoBTag-Combined``, against their framework.

Graph networks for tracking (Exa.TrkX, ONNX and TorchScript), L1-trigger networks (hls4ml's example models:
the jet-tagging MLPs, CNNs and QONNX exports; a QKeras L1 jet tagger), BDTs exported to ONNX (ALICE's
hipe4ml converter: onnxmltools' ``TreeEnsembleClassifier`` and Hummingbird's tensor form), CMS networks of
other ``cms-data`` repositories (TICL, the NanoAOD ParticleNet muon ID) and an analysis classifier (the HH/ZZ
to 4b attention network).  They are never committed: ``--fetch`` copies each file into a cache folder
(``$SOFIE_RDF_MODELS/public``, default ``~/.cache/sofie-rdf-models/public``), from a folder of git mirrors
(``--fetch DIR``: ``DIR/<owner>+<name>/repo`` or ``DIR/<owner>+<name>``, git directories read with ``git show``)
or from GitHub (``--fetch github``, raw files).  A file some repository only had in its history is read at
the commit :attr:`Model.commit` names.

Each row loads the file as a user would (``sr.load``, symbolic dims kept; a Keras 2 architecture with its
weights; a TorchScript file with example inputs and dynamic axes), feeds random inputs of the right shapes
(symbolic dims as :attr:`Model.dims`; edge indices below the node count; masks of ones), and compares with
the file's framework: onnxruntime, qonnx's executor for QONNX files, torch for TorchScript, Keras (torch
backend) for Keras files, at rtol 1e-3 / atol 1e-5 as ``benchmarks/real.py``.  A refused file is a row too,
with the reason; :attr:`Model.note` says why a refusal is the right answer where it is.  Both engines are then
timed, one thread, interleaved, at each size the row runs (a batch of 1 and of 64 where the batch is free).

``python -m benchmarks.public [--fetch SOURCE] [--models A,B] [--no-times]`` writes
``benchmarks/results/public_<isa>_<vendor>.{md,json}``.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import time
import traceback
import urllib.request
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import isa, latency, real

RTOL, ATOL = 1e-3, 1e-5
FREE_BATCHES = (1, 64)


def models_dir() -> Path:
    """Where the fetched files live (never in this repository)."""
    return Path(os.environ.get("SOFIE_RDF_MODELS", Path.home() / ".cache" / "sofie-rdf-models")) / "public"


@dataclass(frozen=True)
class Model:
    """One published file: where it is, what it is, and how to feed it."""

    label: str
    repo: str  # owner/name on GitHub
    path: str  # the file in the repository
    family: str
    commit: str = "HEAD"  # a commit that has the file, where HEAD no longer does
    member: str = ""  # the file inside a zip archive, where the repository ships one
    weights: str = ""  # a Keras 2 architecture's weights file, in the same repository
    dims: dict = field(default_factory=dict)  # symbolic dims that are not the batch -> sizes
    batch: Optional[str] = "first"  # "first": axis 0 is a free batch; None: the sizes are all in dims
    indices: dict = field(default_factory=dict)  # integer input -> the dim its values index (edges -> nodes)
    torchscript: tuple = ()  # (input name, shape with dim names, dtype) per input of a TorchScript file
    engine: str = "onnxruntime"  # the reference: onnxruntime, onnx-reference, qonnx, torch, keras, "" (none)
    batches: tuple = FREE_BATCHES  # the batches a free first axis runs at
    inputs: str = ""  # a function of INPUTS that fills the inputs as the experiment does, where random ones do not fit
    load_dims: dict = field(default_factory=dict)  # dims the user gives sr.load (and the reference is fed)
    note: str = ""  # why a refusal is right, or what the reference is

    @property
    def file(self) -> str:
        """The cached file's path under :func:`models_dir`."""
        owner, name = self.repo.split("/")
        return f"{owner}+{name}/{self.member or self.path}"

    @property
    def sources(self) -> list[tuple[str, str]]:
        """(repository path, cache path) of what to fetch: the file, and a Keras architecture's weights."""
        out = [(self.path, self.file)]
        if self.weights:
            out.append((self.weights, f"{self.repo.replace('/', '+')}/{self.weights}"))
        return out


HLS4ML = "fastmachinelearning/example-models"
EXATRKX = "The-ExaTrkX-Project/exatrkx-service"
CTD = "exatrkx/exatrxk-cpp-ctd2022"
HIPE4ML = "hipe4ml/hipe4ml_converter"
HIPE4ML_COMMIT = "22fb38a5345805e5861bfc18a4c1e0882839740a"  # "Add minimal example"; removed later
ZZ4B = "chuyuanliu/ZZ4b"
ZZ4B_COMMIT = "bcb75c2c56746e26f3afc89b4b2bf74c9235dd32"  # "add ONNX model"; removed later
GRAPH = {"n_nodes": 300, "n_edges": 1200}
PNET_MUON = {"n_pf": 60, "n_sv": 5, "n_high": 1}  # PNetMuonId/preprocess.json: max_length, var_length
QONNX_NOTE = "no onnxruntime kernel for QONNX's domains: qonnx's executor is the reference"
KERAS2_NOTE = "Keras 3 cannot read a Keras 2 architecture: the reference is Keras running the model sofie's reader rebuilds"


def _hls4ml(label: str, path: str, family: str = "L1 jet tagger (hls4ml)", **kw: Any) -> Model:
    return Model(label, HLS4ML, path, family, **kw)


def _keras2(label: str, stem: str, family: str = "L1 jet tagger (hls4ml)", **kw: Any) -> Model:
    kw = {"engine": "keras", "note": KERAS2_NOTE, **kw}
    return _hls4ml(label, f"keras/{stem}.json", family, weights=f"keras/{stem}_weights.h5", **kw)


def _graph_ts(edges: str) -> tuple:
    return (("x", ("n_nodes", 3), "float32"), (edges, (2, "n_edges"), "int64"))


MODELS = [
    # ---- tracking graph networks: Exa.TrkX (interaction network with attention, filter MLP)
    Model("ExaTrkX_GNN", EXATRKX, "exatrkx_pipeline/datanmodels/gnn.onnx", "tracking GNN (Exa.TrkX)",
          dims={"g_nodes_dynamic_axes_1": 300, "g_edges_dynamic_axes_1": 1200}, batch=None,
          indices={"g_edges": "g_nodes_dynamic_axes_1"}),
    Model("ExaTrkX_GNN_TorchScript", EXATRKX, "exatrkx_pipeline/datanmodels/torchscript/gnn.pt",
          "tracking GNN (Exa.TrkX)", dims=GRAPH, batch=None, indices={"edge_index": "n_nodes"},
          torchscript=_graph_ts("edge_index"), engine="torch"),
    Model("TrackML_GNN", CTD, "triton_example/models_trackML/gnno/1/model.onnx", "tracking GNN (Exa.TrkX)",
          dims={"nodes_size": 300, "edges_size": 1200}, batch=None, indices={"edge_index": "nodes_size"},
          note="the export's scatter_add writes a (edges, 67) sum that is concatenated with the (nodes, 67) "
               "features: it runs only where edges = nodes (onnxruntime fails at Concat_104 otherwise)"),
    Model("TrackML_GNN_edges_eq_nodes", CTD, "triton_example/models_trackML/gnno/1/model.onnx",
          "tracking GNN (Exa.TrkX)", dims={"nodes_size": 600, "edges_size": 600}, batch=None,
          indices={"edge_index": "nodes_size"}, load_dims={"nodes_size": 600, "edges_size": 600},
          note="the same file loaded with sr.load(dims=...) at the one shape it runs at: 600 nodes, 600 edges"),
    Model("TrackML_GNN_TorchScript", CTD, "triton_example/models_trackML/gnn/1/model.pt", "tracking GNN (Exa.TrkX)",
          dims=GRAPH, batch=None, indices={"edge_index": "n_nodes"}, torchscript=_graph_ts("edge_index"),
          engine="torch"),
    Model("TrackML_Filter", CTD, "triton_example/models_trackML/filtero/1/model.onnx", "tracking edge filter (Exa.TrkX)"),
    Model("TrackML_Filter_TorchScript", CTD, "triton_example/models_trackML/filter/1/model.pt",
          "tracking edge filter (Exa.TrkX)", dims=GRAPH, batch=None, indices={"e": "n_nodes"},
          torchscript=(("x", ("n_nodes", 12), "float32"), ("e", (2, "n_edges"), "int64")), engine="torch"),
    # ---- L1 trigger: hls4ml's example models (the jet-tagging benchmark: 16 features, 5 classes)
    _hls4ml("hls4ml_three_layer_keras", "onnx/three_layer_keras.onnx"),
    _hls4ml("hls4ml_three_layer_pytorch", "onnx/three_layer_pytorch.onnx"),
    _hls4ml("hls4ml_three_layer_bn_keras", "onnx/three_layer_bn_keras.onnx",
            note="the converter left BatchNormalization on a (64, 1) transpose, its channel axis of size 1 "
                 "against 64 scales: onnxruntime refuses it too ('Invalid input scale')"),
    _hls4ml("hls4ml_three_layer_bn_pytorch", "onnx/three_layer_bn_pytorch.onnx", engine="onnx-reference",
            note="opset 6, whose Gemm onnxruntime no longer runs: onnx's reference evaluator is the reference"),
    _hls4ml("hls4ml_two_layer_pytorch", "onnx/two_layer_pytorch.onnx"),
    _hls4ml("hls4ml_dense_big_keras", "onnx/dense_big_keras.onnx"),
    _hls4ml("hls4ml_conv1d_small_keras", "onnx/conv1d_small_keras.onnx"),
    _hls4ml("hls4ml_conv2d_small_mp_keras", "onnx/conv2d_small_mp_keras.onnx", "L1 CNN (hls4ml)"),
    _hls4ml("hls4ml_bnn_fc_1layer", "onnx/bnn_model_fc_1layer.onnx", "L1 QONNX (Brevitas)", engine="qonnx",
            note=QONNX_NOTE),
    _hls4ml("hls4ml_separable_conv_ch_last", "onnx/separable_conv_model_ch_last.onnx", "L1 QONNX (Brevitas)",
            engine="qonnx", note=QONNX_NOTE),
    _hls4ml("hls4ml_tiny_unet_ch_last", "onnx/tiny_unet_ch_last.onnx", "L1 QONNX (Brevitas)", engine="qonnx",
            note="its channels-last MaxPool has ceil_mode, which MaxPool-1 (the ONNX opset of a channels-last "
                 "domain the file does not import, as qonnx reads it) lacks: qonnx's executor refuses it too"),
    _keras2("hls4ml_KERAS_3layer", "KERAS_3layer"),
    _keras2("hls4ml_KERAS_3layer_batch_norm", "KERAS_3layer_batch_norm"),
    _keras2("hls4ml_KERAS_conv1d_small", "KERAS_conv1d_small"),
    _keras2("hls4ml_jetTagger_Conv2D_Small", "jetTagger_Conv2D_Small", "L1 CNN (hls4ml)"),
    _keras2("hls4ml_garnet_1layer", "garnet_1layer", "L1 calorimeter GarNet (hls4ml)",
            indices={"input_2": "n_vertices"}, dims={"n_vertices": 129},
            note=f"{KERAS2_NOTE}; its GarNet layer is sofie's keras.ops transcription of hls4ml's call "
                 "(tests/test_keras_garnet.py checks it and the generated code against a numpy one); vertex counts "
                 "0 to 128"),
    _keras2("hls4ml_qkeras_3layer", "qkeras_3layer", engine="", note="QKeras installs only with TensorFlow: "
            "no reference here (tests/test_qkeras.py checks the quantizers against numpy)"),
    _hls4ml("hls4ml_hgq_jet_classifier", "keras/hgq_jet_classifier.h5", engine="keras",
            note="HGQ needs TensorFlow: the reference is Keras running the model sofie's reader rebuilds, whose "
                 "FixedPointQuantizer computes HGQ's gfixed_quantizer in keras.ops (tests/test_keras_hgq.py: the "
                 "generated code equals a numpy transcription of HGQ bit for bit, this file included)"),
    _hls4ml("hls4ml_qkeras_v3_3layer", "keras/qkeras-v3_3layer.keras", engine="keras",
            note="QKeras (here on Keras 3) needs TensorFlow: the reference is Keras running the model sofie's reader "
                 "rebuilds (QKeras layers as the Keras layers they quantize; tests/test_qkeras.py checks this file "
                 "against numpy)"),
    Model("L1JetTagger_QKeras", "Brainz22/L1JetTagger", "qkL1JetTagModel.h5", "L1 jet tagger (QKeras)", engine="",
          note="QKeras installs only with TensorFlow: no reference here"),
    # ---- BDTs exported to ONNX (ALICE hipe4ml_converter's example: 64 features, 2 classes)
    Model("hipe4ml_BDT_onnxmltools", HIPE4ML, "examples/model_onnx.onnx", "BDT (XGBoost -> onnxmltools)",
          commit=HIPE4ML_COMMIT),
    Model("hipe4ml_BDT_hummingbird", HIPE4ML, "examples/model_hummingbird_onnx.zip", "BDT (XGBoost -> Hummingbird)",
          commit=HIPE4ML_COMMIT, member="deploy_model.onnx"),
    # ---- CMS networks of other cms-data repositories
    Model("TICL_superclustering_v2p1", "cms-data/RecoHGCal-TICL", "superclustering/supercls_v2p1.onnx",
          "CMS HGCAL DNN (TICL)"),
    Model("TICL_energy_id_v0", "cms-data/RecoHGCal-TICL", "ticlv4/onnx_models/energy_id_v0.onnx",
          "CMS HGCAL CNN (TICL)"),
    Model("NanoAOD_PNetMuonId", "cms-data/PhysicsTools-NanoAOD", "PNetMuonId/model.onnx", "CMS ParticleNet (muon ID)",
          dims=PNET_MUON),
    # ---- an analysis classifier: CMS HH/ZZ -> 4b, hemisphere-combinatoric network with attention
    Model("ZZ4b_SvB_HCR_attention", ZZ4B, "nTupleAnalysis/pytorchModels/SvB_MA_VHH/"
          "SvB_MA_HCR+attention_8_np1052_seed0_lr0.01_epochs20_offset0_epoch20.onnx", "analysis classifier (4b)",
          commit=ZZ4B_COMMIT, inputs="4b", batches=(1,),
          note="inputs as multiClassifierONNX::loadInput fills them; batch 1 only, as the analysis runs it: the "
               "export fixed the batch in a Reshape (onnxruntime fails at Reshape_1031 for 64)"),
]


# ---------------------------------------------------------------- fetching


def _mirror(source: Path, repo: str) -> Optional[Path]:
    """The git directory of ``repo`` under a folder of mirrors, if there is one."""
    stem = repo.replace("/", "+")
    for candidate in (source / stem / "repo", source / stem, source / f"{stem}.git"):
        if (candidate / "HEAD").is_file():
            return candidate
    return None


def _read(model: Model, path: str, source: str) -> bytes:
    if source == "github":
        commit = "HEAD" if model.commit == "HEAD" else model.commit
        with urllib.request.urlopen(f"https://raw.githubusercontent.com/{model.repo}/{commit}/{path}") as response:
            return response.read()
    git = _mirror(Path(source), model.repo)
    if git is None:
        raise FileNotFoundError(f"no mirror of {model.repo} under {source}")
    return subprocess.run(["git", "--git-dir", str(git), "show", f"{model.commit}:{path}"], capture_output=True,
                          check=True).stdout


def fetch(source: str, models: list[Model]) -> Path:
    """Copy every model's files into :func:`models_dir` from ``source`` (``github`` or a folder of mirrors)."""
    out = models_dir()
    for model in models:
        for path, cached in model.sources:
            target = out / cached
            if target.is_file():
                continue
            try:
                data = _read(model, path, source)
            except (OSError, subprocess.CalledProcessError) as exc:
                print(f"not fetched: {model.repo}:{path} ({exc})", flush=True)
                continue
            if model.member and path == model.path:
                data = zipfile.ZipFile(io.BytesIO(data)).read(model.member)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            print(f"fetched {model.repo}:{path}", flush=True)
    return out


# ---------------------------------------------------------------- inputs


def _specs(model: Model, path: Path, loaded: Any) -> list[tuple[str, tuple, np.dtype]]:
    """(name, shape with symbolic dims as names, dtype) of each input."""
    if model.torchscript:
        return [(name, shape, np.dtype(dtype)) for name, shape, dtype in model.torchscript]
    if path.suffix == ".onnx":
        import onnx

        graph = onnx.load(path, load_external_data=False).graph
        weights = {t.name for t in graph.initializer}
        return [(v.name, tuple(d.dim_param or d.dim_value or f"unnamed{a}" for a, d in
                               enumerate(v.type.tensor_type.shape.dim)),
                 onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type))
                for v in graph.input if v.name not in weights]
    return [(name, tuple(str(d) if not isinstance(d, int) else d for d in t.shape), np.dtype(t.dtype))
            for name, t in ((n, loaded.ir.tensors[n]) for n in loaded.ir.inputs)]


def feeds(model: Model, specs: list, batch: Optional[int], seed: int = 0) -> dict[str, np.ndarray]:
    """One set of inputs: axis 0 ``batch`` where the batch is free, the other symbolic dims as :attr:`Model.dims`;
    integer inputs index the dim :attr:`Model.indices` names; masks are ones."""
    rng = np.random.default_rng(seed)
    if model.inputs:
        return INPUTS[model.inputs](rng, batch or 1)
    out = {}
    for name, shape, dtype in specs:
        free = model.batch == "first" and batch is not None and not isinstance(shape[0], int)
        dims = tuple(batch if axis == 0 and free else model.dims.get(d, d) for axis, d in enumerate(shape))
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            raise ValueError(f"input {name} has dims {shape}: give their sizes in Model.dims")
        if np.issubdtype(dtype, np.integer):
            high = model.dims[model.indices[name]] if name in model.indices else 2
            out[name] = rng.integers(0, high, size=dims).astype(dtype)
        elif "mask" in name:
            out[name] = np.ones(dims, dtype)
        else:
            out[name] = rng.standard_normal(dims).astype(dtype)
    return out


def sizes(model: Model, specs: list) -> list[Optional[int]]:
    """The batches a row runs: :attr:`Model.batches` where axis 0 is free, else the file's own sizes once."""
    free = model.batch == "first" and any(not isinstance(s[0], int) for _, s, _ in specs if s)
    return list(model.batches) if free else [None]


def _four_b(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    """ZZ4b's ``multiClassifierONNX::loadInput``: the 4 candidate jets' (pt, eta, phi, m) by feature, up to 8 other
    jets' (pt, eta, phi, m, selected) with -1 past the last, and (year - 2010, nSelJets, xW, xbW)."""
    def jets(n: int) -> np.ndarray:
        pt = 40 + rng.exponential(60, (batch, n))
        eta, phi = rng.uniform(-2.4, 2.4, (batch, n)), rng.uniform(-np.pi, np.pi, (batch, n))
        return np.concatenate([pt, eta, phi, rng.uniform(5, 20, (batch, n))], 1)

    others = jets(8).reshape(batch, 4, 8)
    selected = ((others[:, 0] > 40) & (np.abs(others[:, 1]) < 2.4)).astype(float)[:, None]
    others = np.concatenate([others, selected], 1)
    count = rng.integers(0, 9, batch)
    others[np.arange(8)[None, None, :] >= count[:, None, None] + np.zeros((1, 5, 1))] = -1
    n_sel = 4 + others[:, 4].clip(0).sum(1)
    ancillary = np.stack([rng.integers(6, 9, batch), n_sel, rng.uniform(0, 5, batch), rng.uniform(0, 5, batch)], 1)
    return {"J": jets(4).astype(np.float32), "O": others.reshape(batch, 40).astype(np.float32),
            "A": ancillary.astype(np.float32)}


INPUTS = {"4b": _four_b}


# ---------------------------------------------------------------- engines


def load(model: Model, path: Path) -> Any:
    """The file as a user loads it: ``sr.load`` (a TorchScript file with example inputs and dynamic axes, a Keras
    2 architecture with its weights)."""
    import sofie_rdf as sr

    if model.torchscript:
        import torch

        example = feeds(model, _specs(model, path, None), None)
        axes = {k: {a: d for a, d in enumerate(shape) if isinstance(d, str)}
                for k, (_, shape, _) in enumerate(model.torchscript)}
        return sr.load(str(path), example_inputs=tuple(torch.from_numpy(v) for v in example.values()),
                       dynamic_axes=axes, input_names=[n for n, _, _ in model.torchscript], name=model.label)
    if model.weights:
        return sr.load(str(path), weights=str(models_dir() / model.sources[1][1]), name=model.label)
    return sr.load(str(path), name=model.label, dims=model.load_dims or None)


def reference(model: Model, path: Path) -> Callable[[dict], list[np.ndarray]]:
    """The file's framework on one thread."""
    if model.engine == "torch":
        return real.torchscript_reference(path)
    if model.engine == "onnx-reference":
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(str(path))
        return lambda x: evaluator.run(None, x)
    if model.engine == "qonnx":
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.transformation.infer_shapes import InferShapes

        wrapper = ModelWrapper(str(path)).transform(InferShapes())
        names = [o.name for o in wrapper.graph.output]
        return lambda x: [execute_onnx(wrapper, dict(x))[n] for n in names]
    if model.engine == "keras":
        from sofie_rdf.parsers.keras import import_keras
        from sofie_rdf.parsers.keras.legacy import read_keras2, read_keras3_archive

        keras = import_keras()
        if path.suffix == ".keras":  # QKeras layers in a Keras 3 archive, which Keras's own loader cannot read
            kmodel = read_keras3_archive(path, keras)
        else:
            kmodel = read_keras2(path, models_dir() / model.sources[1][1] if model.weights else None, keras)
        return lambda x: [np.asarray(y) for y in _as_list(kmodel.predict_on_batch(list(x.values())))]
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, x)


def _as_list(y: Any) -> list:
    return list(y) if isinstance(y, (tuple, list)) else [y]


def agreement(y: Any, ref: list[np.ndarray]) -> dict[str, Any]:
    """Largest deviation over the outputs, and whether every output is within RTOL/ATOL (shapes included)."""
    y = [np.asarray(a) for a in _as_list(y)]
    shapes = all(a.shape == np.shape(b) for a, b in zip(y, ref)) and len(y) == len(ref)
    if not shapes:
        return {"max_abs_err": float("nan"), "max_abs_ref": float("nan"), "agrees": False,
                "shapes": [[list(a.shape) for a in y], [list(np.shape(b)) for b in ref]]}
    # a NaN where the reference has one agrees (both take the log of a negative number, say); elsewhere it does not
    diff = max(float(np.nanmax(np.abs(a.astype(np.float64) - b), initial=0.0)) for a, b in zip(y, ref))
    scale = max(float(np.nanmax(np.abs(b), initial=0.0)) for b in ref)
    ok = all(np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True) for a, b in zip(y, ref))
    entry = {"max_abs_err": diff, "max_abs_ref": scale, "agrees": bool(ok)}
    nans = sum(int(np.isnan(np.asarray(b, np.float64)).sum()) for b in ref)
    return {**entry, "nan_in_reference": nans} if nans else entry


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).replace(f"{models_dir()}/", "")
    return f"{type(exc).__name__}: {text[:400]}"


def bench(model: Model, times: bool, target: float, rounds: int) -> dict:
    """One row: load and compile, agreement at each size, then interleaved times."""
    import sofie_rdf as sr

    path = models_dir() / model.file
    row: dict[str, Any] = {"model": model.label, "repo": model.repo, "file": model.path, "family": model.family,
                           "commit": model.commit, "engine": model.engine, "note": model.note, "sizes": {}}
    start = time.perf_counter()
    try:
        loaded = load(model, path)
        session = sr.compile(loaded, backend="native", flags=isa.native_flags())
    except Exception as exc:  # the refusal is the row's result
        row.update(loads=False, error=_short(exc), build_s=time.perf_counter() - start)
        return row
    row.update(loads=True, build_s=time.perf_counter() - start)
    if not model.engine:
        return row
    specs = _specs(model, path, loaded)
    try:
        ref = reference(model, path)
    except Exception as exc:
        row["reference_error"] = _short(exc)
        return row
    for batch in sizes(model, specs):
        x = feeds(model, specs, batch, seed=batch or 0)
        key = str(batch) if batch is not None else "graph" if model.batch is None else "fixed"
        try:
            expected = [np.asarray(v) for v in ref(x)]
        except Exception as exc:
            row["sizes"][key] = {"reference_error": _short(exc)}
            continue
        try:
            entry = agreement(session.infer(*x.values()), expected)
        except Exception as exc:
            row["sizes"][key] = {"error": _short(exc), "agrees": False}
            continue
        entry["shape"] = {k: list(v.shape) for k, v in x.items()}
        if times:
            args = tuple(x.values())
            entry.update(latency.interleaved_medians({"sofie": lambda a=args: session.infer(*a),
                                                      "ref": lambda x=x: ref(x)}, target, rounds))
        row["sizes"][key] = entry
    return row


# ---------------------------------------------------------------- tables


def _result(r: dict) -> str:
    if not r["loads"]:
        return "refused"
    if not r["engine"]:
        return "loads (no reference)"
    entries = list(r["sizes"].values())
    if r.get("reference_error") or not entries or any("reference_error" in e for e in entries):
        return "loads (reference failed)"
    if all(e.get("agrees") for e in entries):
        return f"agrees ({max(e['max_abs_err'] for e in entries):.1e})"
    errors = [e for e in entries if "error" in e]
    if errors:
        return "**fails to run**"
    return f"**differs** ({max(e['max_abs_err'] for e in entries):.1e})"


def _times(r: dict) -> str:
    cells = [f"{k}: {e['sofie'] * 1e3:.3f} / {e['ref'] * 1e3:.3f}" for k, e in r["sizes"].items() if "sofie" in e]
    return "; ".join(cells) or "-"


def markdown(rows: list[dict], meta: dict) -> str:
    m = meta["machine"]
    lines = ["# Public HEP models from other repositories, against their framework", "",
             f"{meta['date']}. Machine: {m['cpu']}, {m['cores']} cores ({m['simd']}), {m['system']}. "
             f"{meta['versions']}. Each file loaded as published (`sr.load`, symbolic dims kept), compiled natively, "
             f"fed random inputs of its shapes and compared with its framework at rtol {RTOL} / atol {ATOL}; "
             "times: milliseconds per call, one thread, both engines called from Python in one process, "
             f"interleaved ({meta['rounds']} rounds), at batch 1 and 64 where the batch is free, else at the file's "
             "own sizes (`graph`: the node and edge counts of `Model.dims`, 300 and 1200 unless a note says; `fixed`: "
             "the batch the file was exported with).", *_load(meta), *_subset(meta), "",
             "| file | repository | family | loads | reference | result (max abs err) | sofie / ref (ms) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        at = "" if r["commit"] == "HEAD" else f" @{r['commit'][:7]}"
        lines.append(f"| {r['model']} | `{r['repo']}`{at} | {r['family']} | {'yes' if r['loads'] else 'no'} | "
                     f"{r['engine'] or '-'} | {_result(r)} | {_times(r)} |")
    loaded = sum(r["loads"] for r in rows)
    agreed = sum(_result(r).startswith("agrees") for r in rows)
    checked = sum(bool(r["loads"] and r["engine"]) for r in rows)
    files = len({(r["repo"], r["file"]) for r in rows})
    lines += ["", f"{len(rows)} rows, {files} files from {len({r['repo'] for r in rows})} repositories: {loaded} load, "
              f"{agreed} of the {checked} with a reference agree with it. Files: `benchmarks/public.py` (`MODELS`).",
              "", "## Notes", ""]
    for r in rows:
        why = r.get("error") or r.get("reference_error") or next(
            (e.get("error") or e.get("reference_error") for e in r["sizes"].values()
             if e.get("error") or e.get("reference_error")), "")
        if why or r["note"]:
            lines.append(f"- {r['model']}: " + "; ".join(t for t in (r["note"], f"`{why}`" if why else "") if t))
    return "\n".join(lines) + "\n"


def _load(meta: dict) -> list[str]:
    """The header's line on other work the machine ran (its load average at the start), which slows both engines."""
    load = meta.get("load")
    if load is None or load < 0.5:
        return []
    return ["", f"The machine was not idle: 1-minute load average {load:.1f} on {meta['machine']['cores']} cores at "
                "the start (other jobs), so the times are indicative; the agreement is not affected."]


def _subset(meta: dict) -> list[str]:
    """The header's line saying which rows a run chose, where ``--models`` left some of ``MODELS`` out."""
    chosen = meta.get("models")
    if not chosen or len(chosen) == len(MODELS):
        return []
    return ["", f"**A subset**: the {len(chosen)} rows named with `--models`, of the {len(MODELS)} in `MODELS`; the "
                "other rows were not run on this machine."]


def _versions() -> str:
    import onnxruntime
    import torch

    import sofie_rdf

    return f"sofie-rdf {sofie_rdf.__version__}, onnxruntime {onnxruntime.__version__}, torch {torch.__version__}"


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.public", description=__doc__.split("\n")[0])
    parser.add_argument("--fetch", metavar="SOURCE", help="copy the files first: 'github' or a folder of git mirrors "
                        "(<owner>+<name>/repo)")
    parser.add_argument("--models", help="comma-separated labels (default: all; see MODELS)")
    parser.add_argument("--no-times", action="store_true", help="agreement only")
    parser.add_argument("--results", type=Path, default=None, help="folder of public_<isa>_<vendor>.{md,json}")
    args = parser.parse_args(argv)
    known = {m.label: m for m in MODELS}
    names = args.models.split(",") if args.models else list(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[n] for n in names]
    if args.fetch:
        print(f"models in {fetch(args.fetch, chosen)}")
    missing = [m.label for m in chosen if not all((models_dir() / c).is_file() for _, c in m.sources)]
    if missing:
        raise SystemExit(f"{len(missing)} file(s) missing from {models_dir()} ({', '.join(missing)}): run with --fetch")
    folder = args.results or latency.RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    target, rounds = 0.1, 5
    meta = {"machine": latency.machine(), "versions": _versions(), "rounds": rounds, "models": names,
            "load": os.getloadavg()[0]}
    stem = latency.results_stem("public")
    rows, text = [], ""
    for model in chosen:
        try:
            rows.append(bench(model, not args.no_times, target, rounds))
        except Exception:  # a harness failure, not the model's: say so and go on
            traceback.print_exc()
            continue
        print(f"{model.label}: {_result(rows[-1])} {_times(rows[-1])}", flush=True)
        meta["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = latency.save_tables(folder, stem, meta, rows, markdown)
    return text


if __name__ == "__main__":
    print(main())
