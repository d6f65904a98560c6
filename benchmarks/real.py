"""The taggers CMS deploys, as CMS publishes them, against onnxruntime (and torch for TorchScript files).

The networks are the files of the public ``cms-data/RecoBTag-Combined`` repository (what CMSSW's
``RecoBTag/Combined/data`` holds): Particle Transformer AK4 and its robust variant, every ParticleNet (AK4, AK8
general, mass-decorrelated and mass regression, from MiniAOD, HLT, scouting), DeepJet (10X, Run 3, HLT,
phase 2), DeepAK8, DeepDoubleX, DeepVertex and the Higgs interaction network, plus the TorchScript ParticleNets
of its Triton model repository.  They are never committed: ``--fetch`` copies them into a cache folder
(``$SOFIE_RDF_MODELS``, default ``~/.cache/sofie-rdf-models``), from a clone or mirror of that repository
(``--fetch PATH``, a work tree or a git directory) or from GitHub (``--fetch github``).

Inputs are shaped as CMSSW pads them: each file's own input names, the particle counts of its
``preprocess.json`` (ParticleNet: the maximum length), ParT AK4's clamp (25 charged, 25 neutral, 5 vertices:
``ParticleTransformerAK4ONNXJetTagsProducer``); padded particles are zero and masked, four-vectors physical.
Each row loads the file as a user would (``sr.load(path)``, nothing fixed), checks the outputs against
onnxruntime (torch for TorchScript) at rtol 1e-3 / atol 1e-5, then times both engines interleaved in this
process, one thread, at batch 1 and 64 (ratios of medians).  Goal: at most 0.8x onnxruntime's time.

``python -m benchmarks.real [--models A,B] [--quick] [--isa avx2] [--profile]`` writes
``benchmarks/results/real_<isa>_<vendor>.{md,json}``; ``--profile`` adds each row's five slowest nodes
(``Session.profile``) to the JSON, for the rows that miss.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import isa, latency

REPOSITORY = "cms-data/RecoBTag-Combined"
RAW = f"https://raw.githubusercontent.com/{REPOSITORY}/master/"
BATCHES = (1, 64)
GOAL = 0.8
RTOL, ATOL = 1e-3, 1e-5


def models_dir() -> Path:
    """Where the fetched files live (never in this repository)."""
    return Path(os.environ.get("SOFIE_RDF_MODELS", Path.home() / ".cache" / "sofie-rdf-models")) / "RecoBTag-Combined"


@dataclass(frozen=True)
class Tagger:
    """One published network: its file in the repository, its family, and the particle counts CMSSW pads to
    (the file's symbolic dims that are not the batch)."""

    label: str
    path: str
    family: str
    dims: dict = field(default_factory=dict)
    torchscript: tuple = ()  # (input name, channels, particle dim) per input of a TorchScript file


PN_AK4 = {"n_pf": 50, "n_sv": 5}
PN_AK8 = {"n_pf": 100, "n_sv": 10}
PN_MINIAOD_AK4 = {"n_pf": 50, "n_sv": 5, "n_lt": 5}
PN_HLT_AK4 = {"n_pf": 50, "n_sv": 5}
PN_HLT_AK8 = {"n_pf": 120, "n_sv": 10}
PART_AK4 = {"n_input_1": 25, "n_input_2": 25, "n_input_3": 5, "n_input_4": 25, "n_input_5": 25, "n_input_6": 5}


def _pn_torchscript(features: int) -> tuple:
    return (("pf_points", 2, "n_pf"), ("pf_features", features, "n_pf"), ("pf_mask", 1, "n_pf"),
            ("sv_points", 2, "n_sv"), ("sv_features", 11, "n_sv"), ("sv_mask", 1, "n_sv"))


TAGGERS = [
    Tagger("ParT_AK4", "models/particletransformer_AK4/1/model.onnx", "ParT", PART_AK4),
    Tagger("RobustParT_AK4", "RobustParTAK4/PUPPI/V00/nominal/RobustParTAK4.onnx", "ParT", PART_AK4),
    Tagger("PNet_AK4", "models/particlenet_AK4/1/model.onnx", "ParticleNet", PN_AK4),
    Tagger("PNet_AK8_General", "models/particlenet/1/model.onnx", "ParticleNet", PN_AK8),
    Tagger("PNet_AK8_General_V00", "ParticleNetAK8/General/V00/ParticleNet.onnx", "ParticleNet"),
    Tagger("PNet_AK8_MD", "models/particlenet_AK8_MD-2prong/1/model.onnx", "ParticleNet", PN_AK8),
    Tagger("PNet_AK8_MD_V00", "ParticleNetAK8/MD-2prong/V00/ParticleNet.onnx", "ParticleNet"),
    Tagger("PNet_AK8_MassReg", "models/particlenet_AK8_MassRegression/1/model.onnx", "ParticleNet", PN_AK8),
    Tagger("PNet_MiniAOD_AK4_Central", "models/particleNetFromMiniAODAK4CHSCentral/1/model.onnx", "ParticleNet",
           PN_MINIAOD_AK4),
    Tagger("PNet_MiniAOD_AK4_Forward", "models/particleNetFromMiniAODAK4CHSForward/1/model.onnx", "ParticleNet",
           {**PN_MINIAOD_AK4, "n_pf": 35}),
    Tagger("PNet_MiniAOD_AK8", "models/particleNetFromMiniAODAK8/1/model.onnx", "ParticleNet", PN_AK8),
    Tagger("PNet_HLT_AK4_V01", "HLT/ParticleNetAK4/V01/particle-net.onnx", "ParticleNet", PN_HLT_AK4),
    Tagger("PNet_HLT_AK4_tauh", "HLT/ParticleNetAK4/V00/particle-net-with-tauh.onnx", "ParticleNet", PN_HLT_AK4),
    Tagger("PNet_HLT_AK8_V02", "HLT/ParticleNetAK8/V02/particle-net.onnx", "ParticleNet", PN_HLT_AK8),
    Tagger("PNet_HLT_AK8_tauh", "HLT/ParticleNetAK8/V00/particle-net-with-tauh.onnx", "ParticleNet", PN_HLT_AK8),
    Tagger("PNet_Scouting_AK4", "Run3Scouting/ParticleNetAK4/V00/particle-net.onnx", "ParticleNet", {"n_pf": 100}),
    Tagger("PNet_Scouting_AK8", "Run3Scouting/ParticleNetAK8/General/V00/particle-net.onnx", "ParticleNet",
           {"n_pf": 100}),
    Tagger("PNet_Scouting_AK8_MassReg", "Run3Scouting/ParticleNetAK8/MassRegression/V00/particle-net.onnx",
           "ParticleNet", {"n_pf": 100}),
    Tagger("PNet_AK4_TorchScript", "models/particlenet_AK4_PT/1/model.pt", "ParticleNet", PN_AK4, _pn_torchscript(20)),
    Tagger("PNet_AK8_MD_TorchScript", "models/particlenet_AK8_MD-2prong_PT/1/model.pt", "ParticleNet", PN_AK8,
           _pn_torchscript(20)),
    Tagger("DeepJet_10X", "DeepFlavourV03_10X_training/model.onnx", "DeepJet"),
    Tagger("DeepJet_Run3", "DeepFlavourV04_12X_training/DeepJet_Run3_122X.onnx", "DeepJet"),
    Tagger("DeepJet_HLT", "HLT/DeepFlavourHLT_12x/DeepFlavour_220104.onnx", "DeepJet"),
    Tagger("DeepJet_PhaseII", "DeepFlavourV03_PhaseII/Deepjet_FixedSoftmaxLayer.onnx", "DeepJet"),
    Tagger("DeepJet_PhaseII_V01", "DeepFlavourV01_PhaseII/model.onnx", "DeepJet"),
    Tagger("DeepAK8", "DeepBoostedJet/V02/full/resnet.onnx", "DeepAK8"),
    Tagger("DeepAK8_MD", "DeepBoostedJet/V02/decorrelated/resnet.onnx", "DeepAK8"),
    Tagger("DeepDoubleX_BvL", "DeepDoubleX/102X/V02/BvL.onnx", "DeepDoubleX"),
    Tagger("DeepDoubleX_CvB", "DeepDoubleX/102X/V02/CvB.onnx", "DeepDoubleX"),
    Tagger("DeepDoubleX_DDB_94X", "DeepDoubleX/94X/V01/DDB.onnx", "DeepDoubleX"),
    Tagger("DeepVertex", "DeepVertex/phase1_deepvertex.onnx", "DeepVertex"),
    Tagger("DeepVertex_Combined", "DeepVertex/phase1_deepvertexcombined.onnx", "DeepVertex"),
    Tagger("InteractionNet", "models/higgsInteractionNet/1/model.onnx", "InteractionNet"),
]
QUICK = ["ParT_AK4", "PNet_AK4", "DeepJet_Run3", "InteractionNet"]


# ---------------------------------------------------------------- fetching


def fetch(source: str) -> Path:
    """Copy every tagger's file into :func:`models_dir` from ``source``: ``github`` (downloads), a git directory
    (``git show``: a mirror without a work tree) or a work tree of the repository."""
    out = models_dir()
    for tagger in TAGGERS:
        target = out / tagger.path
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        if source == "github":
            with urllib.request.urlopen(RAW + tagger.path) as response, open(tmp, "wb") as f:
                shutil.copyfileobj(response, f)
        elif (Path(source) / "HEAD").is_file() and not (Path(source) / tagger.path).exists():
            with open(tmp, "wb") as f:
                subprocess.run(["git", "--git-dir", source, "show", f"HEAD:{tagger.path}"], stdout=f, check=True)
        else:
            shutil.copyfile(Path(source) / tagger.path, tmp)
        os.replace(tmp, target)
        print(f"fetched {tagger.path}", flush=True)
    return out


# ---------------------------------------------------------------- inputs as CMSSW fills them


def _lengths(rng: np.random.Generator, batch: int, padded: int) -> np.ndarray:
    """Particles per jet: between a third of the padded count and all of it."""
    return rng.integers(max(1, padded // 3), padded + 1, size=batch)


def _masked(values: np.ndarray, lengths: np.ndarray, axis: int) -> np.ndarray:
    """``values`` with the particles past each jet's length zeroed (``axis``: the particle axis)."""
    index = np.arange(values.shape[axis]).reshape([-1 if a == axis else 1 for a in range(values.ndim)])
    keep = index < lengths.reshape([-1] + [1] * (values.ndim - 1))
    return (values * keep).astype(np.float32)


def _four_vectors(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """(px, py, pz, E) on the last axis, E above |p| (massive particles)."""
    p = rng.standard_normal(shape[:-1] + (3,)) * 20
    energy = np.sqrt((p ** 2).sum(-1, keepdims=True) + rng.random(shape[:-1] + (1,)) + 0.1)
    return np.concatenate([p, energy], -1)


def _input_specs(tagger: Tagger, path: Path) -> list[tuple[str, tuple]]:
    """(name, shape with symbolic dims as names) of each input, from the file."""
    if tagger.torchscript:
        return [(name, ("N", channels, dim)) for name, channels, dim in tagger.torchscript]
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    return [(v.name, tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim))
            for v in graph.input if v.name not in weights]


def feeds(tagger: Tagger, path: Path, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One batch of inputs: the batch (the first dim) ``batch``, the particle dims as :attr:`Tagger.dims`."""
    rng = np.random.default_rng(seed)
    specs = _input_specs(tagger, path)
    lengths: dict[Any, np.ndarray] = {}
    out = {}
    for name, shape in specs:
        dims = tuple(batch if axis == 0 else tagger.dims.get(d, d) for axis, d in enumerate(shape))
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            raise SystemExit(f"{tagger.label}: input {name} has dims {shape}; give their sizes in TAGGERS")
        particle_axis = next((a for a, d in enumerate(shape) if isinstance(d, str) and a > 0), None)
        values = _four_vectors(rng, dims) if tagger.family == "ParT" and name in ("input_4", "input_5", "input_6") \
            else rng.standard_normal(dims)
        if "mask" in name:
            values = np.ones(dims)
        if particle_axis is not None:
            # ParT's features and 4-vectors of one kind of particle (input_1 and input_4, ...) share their count
            key = int(name[-1]) % 3 if tagger.family == "ParT" else shape[particle_axis]
            lengths.setdefault(key, _lengths(rng, batch, dims[particle_axis]))
            values = _masked(values, lengths[key], particle_axis)
        out[name] = values.astype(np.float32)
    return out


# ---------------------------------------------------------------- engines


def torchscript_reference(path: Path) -> Callable[[dict], list[np.ndarray]]:
    """torch running a TorchScript file on one thread, the feeds in their order as its arguments."""
    import torch

    torch.set_num_threads(1)
    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run_torch(x: dict) -> list[np.ndarray]:
        with torch.no_grad():
            y = module(*(torch.from_numpy(v) for v in x.values()))
        return [t.numpy() for t in (y if isinstance(y, (tuple, list)) else (y,))]

    return run_torch


def reference(tagger: Tagger, path: Path) -> Callable[[dict], list[np.ndarray]]:
    """onnxruntime on one thread, or torch for a TorchScript file."""
    if tagger.torchscript:
        return torchscript_reference(path)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, x)


def ours(tagger: Tagger, path: Path) -> Any:
    """The file compiled natively as a user would (symbolic dims kept), or a TorchScript file through
    ``sr.load`` with its example inputs and dynamic axes."""
    import sofie_rdf as sr

    if tagger.torchscript:
        example = tuple(feeds(tagger, path, 2).values())
        import torch

        axes = {k: {0: "N", 2: dim} for k, (_, _, dim) in enumerate(tagger.torchscript)}
        model = sr.load(str(path), example_inputs=tuple(torch.from_numpy(v) for v in example), dynamic_axes=axes,
                        input_names=[n for n, _, _ in tagger.torchscript], name=tagger.label)
    else:
        model = sr.load(str(path), name=tagger.label)
    return sr.compile(model, backend="native", flags=isa.native_flags())


def agreement(y: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, Any]:
    """Largest deviations, and whether every output is within RTOL/ATOL."""
    y = [np.asarray(a) for a in (y if isinstance(y, tuple) else (y,))]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(y, ref))
    scale = max(float(np.abs(b).max()) for b in ref)
    ok = all(np.allclose(a, b, rtol=RTOL, atol=ATOL) for a, b in zip(y, ref))
    return {"max_abs_err": diff, "max_abs_ref": scale, "agrees": bool(ok)}


def bench(tagger: Tagger, target: float, rounds: int, profile: bool) -> dict:
    """One tagger: agreement at every batch, then interleaved times."""
    import time

    path = models_dir() / tagger.path
    start = time.perf_counter()
    session = ours(tagger, path)
    row: dict[str, Any] = {"model": tagger.label, "family": tagger.family, "file": tagger.path,
                           "build_s": time.perf_counter() - start,
                           "engine": "torch" if tagger.torchscript else "onnxruntime", "batches": {}}
    ref = reference(tagger, path)
    for batch in BATCHES:
        x = feeds(tagger, path, batch, seed=batch)
        check = agreement(session.infer(*x.values()), ref(x))
        args = tuple(x.values())
        calls = {"sofie": lambda a=args: session.infer(*a), "ref": lambda x=x: ref(x)}
        times = latency.interleaved_medians(calls, target, rounds)
        entry = {**check, **times, "ratio": times["sofie"] / times["ref"]}
        if profile:
            table = session.profile(*x.values(), repeat=20, warmup=3)
            entry["slowest_nodes"] = [{"op": n.op_type, "name": n.name, "share": n.share, "seconds": n.seconds,
                                       "gflops": n.gflops}
                                      for n in sorted(table.nodes, key=lambda n: -n.seconds)[:5]]
        row["batches"][str(batch)] = entry
    return row


# ---------------------------------------------------------------- tables


def markdown(rows: list[dict], meta: dict) -> str:
    m = meta["machine"]
    lines = ["# The taggers CMS publishes, against onnxruntime", "",
             f"{meta['date']}. Machine: {m['cpu']}, {m['cores']} cores ({m['simd']}), {m['system']}"
             f"{'; ' + m['restriction'] if m.get('restriction') else ''}. {meta['versions']}. One thread; both "
             f"engines called from Python in one process, interleaved ({meta['rounds']} rounds); milliseconds per "
             f"call. Files of `{REPOSITORY}` loaded as published (symbolic dims kept), inputs padded as CMSSW pads "
             f"them. Goal: at most {GOAL}x the reference's time (onnxruntime; torch for TorchScript).", "",
             "| model | family | batch 1: sofie / ref | ratio | batch 64: sofie / ref | ratio | agrees (max abs err) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        cells = []
        for b in BATCHES:
            e = r["batches"][str(b)]
            mark = "" if e["ratio"] <= GOAL else " **misses**"
            cells += [f"{e['sofie'] * 1e3:.3f} / {e['ref'] * 1e3:.3f}", f"{e['ratio']:.2f}{mark}"]
        ok = all(e["agrees"] for e in r["batches"].values())
        err = max(e["max_abs_err"] for e in r["batches"].values())
        ref = "" if r["engine"] == "onnxruntime" else f" (vs {r['engine']})"
        lines.append(f"| {r['model']}{ref} | {r['family']} | {' | '.join(cells)} | "
                     f"{'yes' if ok else '**no**'} ({err:.1e}) |")
    met = sum(e["ratio"] <= GOAL for r in rows for e in r["batches"].values())
    lines += ["", f"{met} of {len(rows) * len(BATCHES)} cells meet the goal. Files: `benchmarks/real.py` (`TAGGERS`).",
              "", *_profiles(rows)]
    return "\n".join(lines)


def _profiles(rows: list[dict]) -> list[str]:
    """Where the time of each missing cell goes: its slowest nodes (``--profile``), the share of the call each."""
    out = []
    for r in rows:
        for b, e in r["batches"].items():
            if e["ratio"] > GOAL and e.get("slowest_nodes"):
                nodes = ", ".join(f"{n['op']} `{n['name']}` {100 * n['share']:.0f}%"
                                  + (f" ({n['gflops']:.0f} GFLOP/s)" if n.get("gflops") else "")
                                  for n in e["slowest_nodes"])
                out.append(f"- {r['model']}, batch {b} ({e['ratio']:.2f}): {nodes}")
    return ["## Where the missing cells spend their time", "", *out, ""] if out else []


def _versions() -> str:
    import onnxruntime
    import torch

    import sofie_rdf

    return f"sofie-rdf {sofie_rdf.__version__}, onnxruntime {onnxruntime.__version__}, torch {torch.__version__}"


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real", description=__doc__.split("\n")[0])
    parser.add_argument("--fetch", metavar="SOURCE", help="copy the files first: 'github', a git directory or a work "
                        f"tree of {REPOSITORY}")
    parser.add_argument("--models", help="comma-separated labels (default: all; see TAGGERS)")
    parser.add_argument("--quick", action="store_true", help="four rows, short; results in benchmarks/results/quick/")
    parser.add_argument("--isa", choices=isa.CHOICES, help="run an AVX-512 machine as an AVX2 one (benchmarks/isa.py)")
    parser.add_argument("--profile", action="store_true", help="each row's slowest nodes into the JSON")
    parser.add_argument("--results", type=Path, default=None, help="folder of real_<isa>_<vendor>.{md,json}")
    args = parser.parse_args(argv)
    if args.fetch:
        print(f"models in {fetch(args.fetch)}")
    if args.isa and not isa.restricted():  # onnxruntime reads its kernels when it loads: run in a child
        env = {**os.environ, **isa.restrict(args.isa, models_dir().parent / f"onnxruntime-as-{args.isa}")}
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--isa", args.isa)]
        return subprocess.run([sys.executable, "-m", "benchmarks.real", *rest], env=env, check=True).stdout or ""
    known = {t.label: t for t in TAGGERS}
    names = args.models.split(",") if args.models else (QUICK if args.quick else list(known))
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    missing = [known[n].path for n in names if not (models_dir() / known[n].path).is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} file(s) missing from {models_dir()}: run with --fetch github (or a clone of "
                         f"{REPOSITORY})")
    folder = args.results or (latency.RESULTS / "quick" if args.quick else latency.RESULTS)
    target, rounds = (0.05, 3) if args.quick else (0.2, 7)
    meta = {"machine": latency.machine(), "versions": _versions(), "rounds": rounds}
    rows = []
    stem = latency.results_stem("real")
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        rows.append(bench(known[name], target, rounds, args.profile))
        b = rows[-1]["batches"]
        print(f"{name}: " + ", ".join(f"B{k} {e['sofie'] * 1e3:.3f} ms vs {e['ref'] * 1e3:.3f} ms ({e['ratio']:.2f})"
                                      for k, e in b.items()), flush=True)
        meta["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = latency.save_tables(folder, stem, meta, rows, markdown)
    return text


if __name__ == "__main__":
    print(main())
