"""Make the demo data: a synthetic Higgs-like sample and a small MLP trained on it.

Run from anywhere: ``python data/make_higgs.py``.  It writes, next to itself,

* ``higgs_sample.root``: trees ``sig_tree`` and ``bkg_tree`` (5000 events each)
  with the seven high-level features of the classic HIGGS benchmark as float32
  branches; and
* ``higgs_model.onnx``: a 7 -> 64 -> 64 -> 1 ReLU MLP with a final Sigmoid,
  trained for a few epochs on that sample, exported with a symbolic batch dim.

The sample is synthetic (no Monte Carlo, no licence question) and small, so it
can live in the repository; the features only imitate the shapes of the real
ones (a resonance over a falling continuum) so that the classifier has
something to learn.  Everything is seeded and training runs on one thread, so
rerunning gives the same numbers (the ROOT file differs only in its metadata).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "higgs_sample.root"
MODEL = HERE / "higgs_model.onnx"

FEATURES = ("m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb")
EVENTS = 5000
SEED = 20240601
OPSET = 17
EPOCHS = 8
BATCH = 128


def _falling(rng: np.random.Generator, n: int, scale: float, shape: float) -> np.ndarray:
    """Positive, smoothly falling continuum (gamma distributed): the background-like part."""
    return rng.gamma(shape, scale / shape, n)


def _peak(rng: np.random.Generator, n: int, mean: float, width: float) -> np.ndarray:
    """A resonance peak, kept positive: the signal-like part."""
    return np.abs(rng.normal(mean, width, n))


def make_events(rng: np.random.Generator, signal: bool, n: int = EVENTS) -> dict[str, np.ndarray]:
    """One sample's seven features, in units of roughly 100 GeV like the normalised HIGGS features.

    Signal has peaks at the W (m_jj, m_lv), top (m_jjj, m_jlv, m_wbb) and Higgs
    (m_bb) masses and a harder m_wwbb; background (ttbar-like) shares the W and
    top peaks in part but has a broad m_bb and a softer m_wwbb, so m_bb and
    m_wwbb separate the classes best, as in the real data set.
    """
    w_frac, top_frac = (0.8, 0.75) if signal else (0.6, 0.5)

    def mixture(frac: float, mean: float, width: float, scale: float) -> np.ndarray:
        take = rng.random(n) < frac
        return np.where(take, _peak(rng, n, mean, width), _falling(rng, n, scale, 2.0))

    events = {
        "m_jj": mixture(w_frac, 0.80, 0.12, 1.0),
        "m_jjj": mixture(top_frac, 1.73, 0.20, 1.8),
        "m_lv": mixture(0.9, 0.80, 0.05, 0.9),
        "m_jlv": mixture(top_frac, 1.73, 0.25, 1.7),
        "m_bb": _peak(rng, n, 1.25, 0.15) if signal else _falling(rng, n, 1.1, 2.5),
        "m_wbb": mixture(top_frac * 0.8, 2.10, 0.35, 2.0),
        "m_wwbb": _falling(rng, n, 4.0, 6.0) if signal else _falling(rng, n, 3.0, 4.0),
    }
    return {k: v.astype(np.float32) for k, v in events.items()}


def write_sample(path: Path, signal: dict, background: dict) -> None:
    """Both trees into one ROOT file, float32 branches (what RDataFrame and TMVA read).

    ``mktree`` explicitly: recent uproot writes an RNTuple for ``f[name] = dict``,
    and the demo, TChain and ``sofie-rdf run`` examples mean a classic TTree.
    """
    import uproot

    with uproot.recreate(path) as f:
        for name, events in (("sig_tree", signal), ("bkg_tree", background)):
            f.mktree(name, {k: v.dtype for k, v in events.items()}).extend(events)


def as_matrix(events: dict[str, np.ndarray]) -> np.ndarray:
    """(n, 7) float32 matrix in :data:`FEATURES` order, the model's input layout."""
    return np.stack([events[k] for k in FEATURES], axis=1)


def build_model():
    """Plain ``nn.Sequential``: exports to Gemm/Relu/Sigmoid only, all supported by sofie-rdf."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(len(FEATURES), 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 1), nn.Sigmoid(),
    )


def train(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """A few epochs of Adam on binary cross-entropy; returns the trained module (eval mode)."""
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # same numbers on every machine
    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCELoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y[:, None])
    for _ in range(EPOCHS):
        order = torch.from_numpy(rng.permutation(len(x)))
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of events on the right side of 0.5."""
    import torch

    with torch.no_grad():
        p = model(torch.from_numpy(x)).numpy()[:, 0]
    return float(np.mean((p > 0.5) == (y > 0.5)))


def export(model, path: Path) -> None:
    """TorchScript-based exporter, batch dim symbolic ("batch"), opset 17."""
    import warnings

    import torch

    example = torch.zeros(1, len(FEATURES))
    with warnings.catch_warnings():  # the legacy exporter is deprecated but gives a plain Gemm graph
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(path), input_names=["features"], output_names=["score"],
                          dynamic_axes={"features": {0: "batch"}, "score": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)


def main() -> None:
    """Generate, write, train on 80 % of the events, report held-out accuracy, export."""
    rng = np.random.default_rng(SEED)
    signal, background = make_events(rng, True), make_events(rng, False)
    write_sample(SAMPLE, signal, background)
    x = np.concatenate([as_matrix(signal), as_matrix(background)])
    y = np.concatenate([np.ones(EVENTS), np.zeros(EVENTS)]).astype(np.float32)
    order = rng.permutation(len(x))
    cut = int(0.8 * len(x))
    train_idx, test_idx = order[:cut], order[cut:]
    model = train(x[train_idx], y[train_idx], rng)
    export(model, MODEL)
    print(f"wrote {SAMPLE.name} ({SAMPLE.stat().st_size:,} bytes) and {MODEL.name} ({MODEL.stat().st_size:,} bytes)")
    print(f"held-out accuracy: {accuracy(model, x[test_idx], y[test_idx]):.3f} on {len(test_idx)} events")


if __name__ == "__main__":
    main()
