"""Models as LHC experiments ship them, against onnxruntime: the third benchmark family (issue 27).

The files analyses run were written by the TorchScript exporter with dynamic axes, take several inputs
(points, features, masks, four-vectors) and leave the particle count free; many analyses run BDTs.

* ``ParticleNet_P{n}``: two EdgeConv blocks as in ParticleNet's reference implementation (kernel-1
  ``Conv2d``/``Conv1d`` with BatchNorm over ``(particles, k)``, k = 16 nearest neighbours by TopK on
  masked coordinates), masked global average, a classifier; particle count and batch free.
* ``ParT_P{n}``: a particle transformer as ParT builds one: the pair embedding (ln kT, ln z, ln delta,
  ln m^2 of the pairs below the diagonal found by ``Trilu`` + ``NonZero``, embedded and scattered
  symmetric by ``ScatterND``) as the attention bias of two particle-attention blocks, a class-token
  block whose ``squeeze(0)`` the exporter writes as ``If``, a classifier.
BDTs, the third kind, have their own table: :mod:`benchmarks.trees`.

Both engines run one thread, from Python, in this process, their calls interleaved (ratios of medians);
the outputs are compared before timing.  Goal: at most 0.8x onnxruntime.
``python -m benchmarks.shipped [--quick]`` writes ``benchmarks/results/shipped_<isa>_<vendor>.{md,json}``, one pair
per instruction set and CPU vendor of the machine (``avx2_amd``, ``avx512_intel``, ...), so that the tables of every
kind of machine are kept.
"""

from __future__ import annotations

import argparse
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .latency import RESULTS, interleaved_medians, machine, results_stem, save_tables

# ---------------------------------------------------------------- networks (torch modules)


def edgeconv_block(k: int, cin: int, cout: int) -> Any:
    """ParticleNet's EdgeConv (weaver's reference implementation) with its shortcut: inputs points (N, 2, P),
    features (N, C, P), mask (N, 1, P)."""
    import torch
    from torch import nn

    class EdgeConvBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.k = k
            self.edge = nn.Sequential(nn.Conv2d(2 * cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                      nn.Conv2d(cout, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
            self.shortcut = nn.Sequential(nn.Conv1d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout))

        def forward(self, points: Any, features: Any, mask: Any) -> Any:
            shifted = points + (1.0 - mask) * 1e9  # padded particles are nobody's neighbours
            inner = -2 * torch.matmul(shifted.transpose(2, 1), shifted)
            square = (shifted ** 2).sum(dim=1, keepdim=True)
            idx = (-square - inner - square.transpose(2, 1)).topk(self.k + 1, dim=-1)[1][:, :, 1:]
            n, c, p = features.shape
            flat = (idx + torch.arange(0, n).view(-1, 1, 1) * p).reshape(-1)
            neighbours = features.transpose(2, 1).reshape(-1, c)[flat, :].view(n, p, self.k, c).permute(0, 3, 1, 2)
            centre = features.unsqueeze(-1).repeat(1, 1, 1, self.k)
            edges = self.edge(torch.cat((centre, neighbours - centre), dim=1)).mean(dim=-1)
            return torch.relu(self.shortcut(features) + edges) * mask

    return EdgeConvBlock()


def particle_net(k: int = 16, features: int = 7, widths: tuple[int, ...] = (32, 64)) -> Any:
    """Two EdgeConv blocks (the second's neighbours in the first's output space), masked average, classifier."""
    import torch
    from torch import nn

    class ParticleNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = edgeconv_block(k, features, widths[0])
            self.second = edgeconv_block(k, widths[0], widths[1])
            self.head = nn.Sequential(nn.Linear(widths[1], 64), nn.ReLU(), nn.Linear(64, 2))

        def forward(self, points: Any, features: Any, mask: Any) -> Any:
            x = self.first(points, features, mask)
            x = self.second(x, x, mask)
            pooled = x.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)
            return torch.softmax(self.head(pooled), dim=1)

    return randomize_batchnorm(ParticleNet(), seed=7)


def pairwise_lv(xi: Any, xj: Any, eps: float = 1e-8) -> Any:
    """ParT's pair features of four-vectors (px, py, pz, E) on axis 1: ln kT, ln z, ln delta, ln m^2."""
    import torch

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


def pair_embed(dims: tuple[int, ...] = (16, 8)) -> Any:
    """ParT's pair embedding: the pairs i > j (Trilu, NonZero), embedded, scattered symmetric (ScatterND)
    into an (N, C, P, P) attention bias; input four-vectors (N, 4, P)."""
    import torch
    from torch import nn

    class PairEmbed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = [nn.BatchNorm1d(4)]
            cin = 4
            for cout in dims:
                layers += [nn.Conv1d(cin, cout, 1), nn.BatchNorm1d(cout), nn.GELU()]
                cin = cout
            self.embed = nn.Sequential(*layers)
            self.out_dim = cin

        def forward(self, v: Any) -> Any:
            n, _, p = v.shape
            below = torch.ones(p, p, dtype=torch.bool).tril(diagonal=-1)
            i, j = below.nonzero(as_tuple=True)
            pairs = self.embed(pairwise_lv(v[:, :, i], v[:, :, j]))
            bias = torch.zeros(n, self.out_dim, p, p, dtype=v.dtype)
            bias[:, :, i, j] = pairs
            bias[:, :, j, i] = pairs
            return bias

    return randomize_batchnorm(PairEmbed(), seed=5)


def particle_transformer(features: int = 7, dim: int = 64, heads: int = 8, blocks: int = 2) -> Any:
    """A ParT-style classifier: inputs features (N, C, P) and four-vectors (N, 4, P)."""
    import torch
    from torch import nn

    class Attention(nn.Module):
        """Multi-head attention with an additive bias, sequence first (ParT's layout), written out so the
        exporter keeps every size symbolic (nn.MultiheadAttention's export bakes the traced length in)."""

        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

        def forward(self, x: Any, kv: Any, bias: Any = None) -> Any:
            q = nn.functional.linear(x, self.qkv.weight[:dim], self.qkv.bias[:dim])
            k, v = nn.functional.linear(kv, self.qkv.weight[dim:], self.qkv.bias[dim:]).chunk(2, dim=-1)
            lq, n = x.shape[0], x.shape[1]
            q, k, v = (t.reshape(t.shape[0], n * heads, dim // heads).transpose(0, 1) for t in (q, k, v))
            scores = torch.matmul(q, k.transpose(1, 2)) / (dim // heads) ** 0.5
            if bias is not None:
                scores = scores + bias
            out = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(0, 1).reshape(lq, n, dim)
            return self.out(out)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attn = Attention()
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

        def forward(self, x: Any, kv: Any, bias: Any = None) -> Any:  # (P, N, dim) sequence first, as ParT
            x = x + self.attn(self.norm1(x), self.norm1(kv), bias)
            return x + self.mlp(self.norm2(x))

    class ParT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Sequential(nn.LayerNorm(features), nn.Linear(features, dim), nn.GELU())
            self.pairs = pair_embed((16, heads))
            self.blocks = nn.ModuleList(Block() for _ in range(blocks))
            self.cls_block = Block()
            self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
            self.head = nn.Linear(dim, 2)

        def forward(self, features: Any, vectors: Any) -> Any:
            n, _, p = features.shape
            x = self.embed(features.permute(2, 0, 1))                      # (P, N, dim)
            bias = self.pairs(vectors).reshape(n * heads, p, p)
            for block in self.blocks:
                x = block(x, x, bias)
            cls = self.cls_token.expand(1, n, -1)
            cls = self.cls_block(cls, torch.cat([cls, x], dim=0))
            return torch.softmax(self.head(cls.squeeze(0)), dim=-1)     # the exporter writes squeeze(0) as If

    return ParT().eval()


def randomize_batchnorm(module: Any, seed: int) -> Any:
    """Trained-looking BatchNorm statistics (fresh ones are the identity and would hide a folding bug)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return module.eval()


def torchscript_onnx(module: Any, examples: dict[str, np.ndarray], dynamic: dict[str, dict[int, str]]) -> bytes:
    """``torch.onnx.export(dynamo=False)`` with dynamic axes, as the released files were written."""
    import torch

    buffer = io.BytesIO()
    torch.manual_seed(0)
    with torch.no_grad():
        torch.onnx.export(module.eval(), tuple(torch.from_numpy(v) for v in examples.values()), buffer, dynamo=False,
                          opset_version=17, input_names=list(examples), output_names=["y"],
                          dynamic_axes={**dynamic, "y": {0: "N"}})
    return buffer.getvalue()


def jets(n: int, p: int, features: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Points (eta, phi), per-particle features, a mask padding the last particles, four-vectors."""
    rng = np.random.default_rng(seed)
    mask = np.ones((n, 1, p), np.float32)
    for j in range(n):
        mask[j, 0, rng.integers(p // 2 + 1, p + 1):] = 0
    momentum = rng.standard_normal((n, 3, p)) * 20
    energy = np.sqrt((momentum ** 2).sum(1, keepdims=True) + rng.random((n, 1, p)))
    return {"points": (rng.standard_normal((n, 2, p)) * mask).astype(np.float32),
            "features": (rng.standard_normal((n, features, p)) * mask).astype(np.float32), "mask": mask,
            "vectors": np.concatenate([momentum, energy], 1).astype(np.float32)}


# ---------------------------------------------------------------- timing


def ort_session(model: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


NETWORKS = {
    "ParticleNet": (particle_net, ("points", "features", "mask")),
    "ParT": (particle_transformer, ("features", "vectors")),
}


def bench_network(name: str, batch: int, particles: int, target: float, rounds: int) -> dict:
    """One network at one (batch, particle count): agreement with onnxruntime, then interleaved times."""
    import sofie_rdf as sr

    build, inputs = NETWORKS[name]
    example = {k: v for k, v in jets(2, 24, 7).items() if k in inputs}
    model = torchscript_onnx(build(), example, {k: {0: "N", 2: "P"} for k in inputs})
    feeds = {k: v for k, v in jets(batch, particles, 7, seed=particles).items() if k in inputs}
    session, ort = sr.compile(sr.load(model, name=name), backend="native"), ort_session(model)
    ours, theirs = session.infer(*feeds.values()), ort.run(None, feeds)[0]
    times = interleaved_medians({"sofie": lambda: session.infer(*feeds.values()), "ort": lambda: ort.run(None, feeds)},
                                target, rounds)
    return {"model": f"{name}_P{particles}_B{batch}", "kind": "network", "goal": 0.8, **times,
            "max_abs_err": float(np.abs(ours - theirs).max())}


# (network, batch, particles): jets of a typical size and of a large one, one event and a batch.
CASES = [(name, batch, particles) for name in NETWORKS for batch, particles in ((1, 50), (1, 128), (64, 50))]
QUICK = [("ParticleNet", 1, 50), ("ParT", 1, 50)]


def markdown(rows: list[dict], meta: dict) -> str:
    m = meta["machine"]
    lines = ["# Models as analyses ship them: networks from the TorchScript exporter, against onnxruntime", "",
             f"{meta['date']}. Machine: {m['cpu']}, {m['cores']} cores ({m['simd']}), {m['system']}. "
             f"{meta['versions']}. One thread; both engines called from Python in one process, interleaved "
             f"({meta['rounds']} rounds); seconds per call. Goal: at most 0.8x onnxruntime.", "",
             "| model | particles | batch | sofie-rdf | onnxruntime | sofie / ORT | goal | max abs err |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        ratio = r["sofie"] / r["ort"]
        lines.append(f"| {r['network']} | {r['particles']} | {r['batch']} | {r['sofie'] * 1e3:.3f} ms | "
                     f"{r['ort'] * 1e3:.3f} ms | {ratio:.2f} | {'meets' if ratio <= r['goal'] else '**misses**'} | "
                     f"{r['max_abs_err']:.1e} |")
    lines += ["", "Models: `benchmarks/shipped.py` (ParticleNet: two EdgeConv blocks, k = 16; ParT: pair embedding "
              "with Trilu/NonZero/ScatterND, two particle-attention blocks with the pair bias, a class-token block "
              "whose squeeze(0) is exported as If). BDTs: `benchmarks/results/trees.md`.", ""]
    return "\n".join(lines)


def _versions() -> str:
    import onnxruntime
    import torch

    import sofie_rdf

    return f"sofie-rdf {sofie_rdf.__version__}, onnxruntime {onnxruntime.__version__}, torch {torch.__version__}"


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shipped", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two rows, short; results in benchmarks/results/quick/")
    parser.add_argument("--results", type=Path, default=None, help="folder of shipped_<isa>_<vendor>.{md,json}")
    args = parser.parse_args(argv)
    folder = args.results or (RESULTS / "quick" if args.quick else RESULTS)
    target, rounds = (0.05, 3) if args.quick else (0.3, 7)
    rows = []
    for name, batch, particles in QUICK if args.quick else CASES:
        row = bench_network(name, batch, particles, target, rounds)
        rows.append({"network": name, "batch": batch, "particles": particles, **row})
        print(f"{row['model']}: sofie {row['sofie'] * 1e3:.3f} ms, ort {row['ort'] * 1e3:.3f} ms", flush=True)
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(), "versions": _versions(),
            "rounds": rounds}
    folder.mkdir(parents=True, exist_ok=True)
    stem = results_stem("shipped")
    text = save_tables(folder, stem, meta, rows, markdown)
    return text


if __name__ == "__main__":
    print(main())
