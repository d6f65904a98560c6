"""A graph neural network for toy track finding, trained in torch and evaluated in RDataFrame with sofie-rdf.

Each event of a toy 5-layer barrel detector has 10 to 40 helix-like tracks
(plus 10 to 40 noise hits); hits are the nodes, with features (r, phi, z);
candidate edges join hits on adjacent layers whose direction points back to
the beam line; an edge is true when both hits come from the same track.  An
encode-process-decode graph network (DeepMind's Graph Nets style, 3
message-passing steps) scores every edge.  It is trained for a few seconds
in torch, rebuilt with ``sr.gnn`` from the trained weights, stored in a
``.root`` file, loaded back and run in RDataFrame on all cores over a ROOT
file of events, whose node and edge feature columns are computed from the
stored hits.  The scores are compared with torch's event by event.

Run: python tutorials/gnn_tracking.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import torch
import uproot

import sofie_rdf as sr

LAYERS = np.array([32.0, 72.0, 116.0, 172.0, 260.0])  # layer radii, mm
MAX_DPHI, MAX_Z0 = 0.2, 200.0  # candidate-edge cuts: azimuth difference, z at the beam line (mm)
LATENT, HIDDEN, STEPS = 16, 32, 3
N_TRAIN, N_EVENTS = 200, 500

# The features the network reads, computed in RDataFrame (C++) from the stored hits and candidate edges.
FEATURES_CPP = """
namespace gnn_tutorial {
using ROOT::RVec;
// (r, phi, z) of every hit, scaled to O(1), flat: hit after hit
RVec<float> node_features(const RVec<float> &r, const RVec<float> &phi, const RVec<float> &z)
{
   RVec<float> out(3 * r.size());
   for (std::size_t i = 0; i < r.size(); ++i) {
      out[3 * i] = r[i] / 260.f; out[3 * i + 1] = phi[i] / 3.14159265f; out[3 * i + 2] = z[i] / 1000.f;
   }
   return out;
}
// (dr, dphi, dz, z at the beam line) of every edge, flat: edge after edge
RVec<float> edge_features(const RVec<float> &r, const RVec<float> &phi, const RVec<float> &z,
                          const RVec<int> &senders, const RVec<int> &receivers)
{
   RVec<float> out(4 * senders.size());
   for (std::size_t k = 0; k < senders.size(); ++k) {
      const int a = senders[k], b = receivers[k];
      const float dr = r[b] - r[a], dz = z[b] - z[a];
      const float dphi = std::remainder(phi[b] - phi[a], 6.2831853f);
      out[4 * k] = dr / 100.f; out[4 * k + 1] = dphi * 10.f; out[4 * k + 2] = dz / 100.f;
      out[4 * k + 3] = (z[a] - r[a] * dz / dr) / 150.f;
   }
   return out;
}
}
"""


# ---- the toy dataset ---------------------------------------------------------------------------

def make_event(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Hits of helix-like tracks (95% layer efficiency) and noise, and the candidate edges between layers."""
    hits = []
    for track in range(rng.integers(10, 41)):
        phi0, curvature = rng.uniform(-np.pi, np.pi), rng.normal(0, 4e-4)
        z0, cot_theta = rng.normal(0, 40), np.sinh(rng.uniform(-1.5, 1.5))
        for layer, r in enumerate(LAYERS):
            if rng.random() < 0.95:
                hits.append((r, phi0 + curvature * r + rng.normal(0, 1e-3), z0 + cot_theta * r + rng.normal(0, 0.5),
                             layer, track))
    for _ in range(rng.integers(10, 41)):
        layer = rng.integers(0, len(LAYERS))
        hits.append((LAYERS[layer], rng.uniform(-np.pi, np.pi), rng.uniform(-500, 500), layer, -1))
    r, phi, z, layer, track = (np.array(c) for c in zip(*hits))
    phi = np.remainder(phi + np.pi, 2 * np.pi) - np.pi
    senders, receivers = candidate_edges(r, phi, z, layer)
    label = (track[senders] == track[receivers]) & (track[senders] >= 0)
    return {"hit_r": r.astype(np.float32), "hit_phi": phi.astype(np.float32), "hit_z": z.astype(np.float32),
            "edge_sender": senders.astype(np.int32), "edge_receiver": receivers.astype(np.int32),
            "edge_true": label.astype(np.int32)}


def candidate_edges(r: np.ndarray, phi: np.ndarray, z: np.ndarray, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of hits on adjacent layers, close in azimuth, whose line meets the beam line near the centre."""
    a, b = np.nonzero(layer[:, None] + 1 == layer[None, :])
    dphi = np.remainder(phi[b] - phi[a] + np.pi, 2 * np.pi) - np.pi
    z0 = z[a] - r[a] * (z[b] - z[a]) / (r[b] - r[a])
    keep = (np.abs(dphi) < MAX_DPHI) & (np.abs(z0) < MAX_Z0)
    return a[keep], b[keep]


def features(ev: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The network inputs of one event in numpy, as FEATURES_CPP computes them (for training)."""
    r, phi, z, s, t = ev["hit_r"], ev["hit_phi"], ev["hit_z"], ev["edge_sender"], ev["edge_receiver"]
    nodes = np.stack([r / 260, phi / np.pi, z / 1000], axis=1)
    dr, dz = r[t] - r[s], z[t] - z[s]
    dphi = np.remainder(phi[t] - phi[s] + np.pi, 2 * np.pi) - np.pi
    edges = np.stack([dr / 100, dphi * 10, dz / 100, (z[s] - r[s] * dz / dr) / 150], axis=1)
    return nodes.astype(np.float32), edges.astype(np.float32), s.astype(np.int64), t.astype(np.int64)


# ---- the network in torch (for training) ----------------------------------------------------------

def mlp(*sizes: int, final: torch.nn.Module | None = None) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if k < len(sizes) - 2 else [])
    return torch.nn.Sequential(*layers, *([final] if final is not None else []))


class EdgeClassifier(torch.nn.Module):
    """Encode-process-decode: the core reads [encoded, latent] per part, sums received edges per node."""

    def __init__(self):
        super().__init__()
        self.enc_v, self.enc_e = mlp(3, HIDDEN, LATENT), mlp(4, HIDDEN, LATENT)
        self.core_e, self.core_v = mlp(6 * LATENT, HIDDEN, LATENT), mlp(3 * LATENT, HIDDEN, LATENT)
        self.dec_e = mlp(LATENT, HIDDEN, 1, final=torch.nn.Sigmoid())

    def forward(self, x, e, senders, receivers):
        x0, e0 = self.enc_v(x), self.enc_e(e)
        xl, el = x0, e0
        for _ in range(STEPS):
            xc, ec = torch.cat([x0, xl], 1), torch.cat([e0, el], 1)
            el = self.core_e(torch.cat([ec, xc[receivers], xc[senders]], 1))
            xl = self.core_v(torch.cat([torch.zeros(len(x), LATENT).index_add(0, receivers, el), xc], 1))
        return self.dec_e(el)[:, 0]


def train(events: list[dict], steps: int = 30) -> EdgeClassifier:
    """A few seconds of Adam on all training events merged into one graph (node indices offset per event).

    One thread: small graphs train no faster on more, and other processes may share the cores.
    """
    torch.manual_seed(0)
    torch.set_num_threads(1)
    parts = [features(ev) for ev in events]
    offsets = np.cumsum([0] + [len(p[0]) for p in parts[:-1]])
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    e = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    s = torch.from_numpy(np.concatenate([p[2] + o for p, o in zip(parts, offsets)]))
    t = torch.from_numpy(np.concatenate([p[3] + o for p, o in zip(parts, offsets)]))
    y = torch.from_numpy(np.concatenate([ev["edge_true"] for ev in events]).astype(np.float32))
    net, start = EdgeClassifier(), time.perf_counter()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy(net(x, e, s, t), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"trained {steps} steps in {time.perf_counter() - start:.1f} s on {len(events)} events ({len(y)} edges): "
          f"loss {loss.item():.3f}")
    return net.eval()


# ---- the same network with sr.gnn -----------------------------------------------------------------

def as_mlp(seq: torch.nn.Sequential) -> sr.gnn.MLP:
    """An sr.gnn.MLP with the weights of a torch Linear/ReLU stack (W as x @ W: the transposed torch weight)."""
    linears = [m for m in seq if isinstance(m, torch.nn.Linear)]
    final = "sigmoid" if isinstance(seq[-1], torch.nn.Sigmoid) else None
    return sr.gnn.MLP([m.weight.detach().numpy().T for m in linears], [m.bias.detach().numpy() for m in linears],
                      activation="relu", final_activation=final)


def to_sofie(net: EdgeClassifier) -> sr.Model:
    return sr.gnn.EncodeProcessDecode(
        encoder=sr.gnn.GraphIndependent(edge=as_mlp(net.enc_e), node=as_mlp(net.enc_v)),
        core=sr.gnn.GraphNetwork(edge=as_mlp(net.core_e), node=as_mlp(net.core_v), edge_to_node="sum"),
        decoder=sr.gnn.GraphIndependent(edge=as_mlp(net.dec_e)),
        steps=STEPS).to_model(node_features=3, edge_features=4, name="TrackGNN")


def write_events(path: Path, events: list[dict]) -> None:
    with uproot.recreate(path) as f:
        f["events"] = {k: ak.Array([ev[k] for ev in events]) for k in events[0]}


def main() -> None:
    rng = np.random.default_rng(42)
    net = train([make_event(rng) for _ in range(N_TRAIN)])
    model = to_sofie(net)
    print(model.summary())  # inputs (n_nodes, n_edges symbolic), outputs, the ONNX operators it is made of
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "toy_tracking.root"
        write_events(path, [make_event(rng) for _ in range(N_EVENTS)])
        model.save(Path(tmp) / "models.root", key="track_gnn")  # the network travels in a .root file, like the data
        model = sr.load(f"{Path(tmp) / 'models.root'}:track_gnn")
        ROOT = sr._root.root()  # noqa: N806 (ROOT, imported the way sofie_rdf does)
        ROOT.EnableImplicitMT()
        ROOT.gInterpreter.Declare(FEATURES_CPP)
        df = (ROOT.RDataFrame("events", str(path))
              .Define("nodes", "gnn_tutorial::node_features(hit_r, hit_phi, hit_z)")
              .Define("edges", "gnn_tutorial::edge_features(hit_r, hit_phi, hit_z, edge_sender, edge_receiver)"))
        df = sr.gnn.define(df, "gnn", model, nodes="nodes", edges="edges", senders="edge_sender",
                           receivers="edge_receiver")
        df = df.Define("n_pass", "Sum(gnn_edges > 0.5f)").Define("n_true_pass", "Sum(gnn_edges > 0.5f && edge_true)")
        start = time.perf_counter()
        cols = df.AsNumpy(["nodes", "edges", "edge_sender", "edge_receiver", "edge_true", "gnn_edges", "n_pass",
                           "n_true_pass"])
        elapsed = time.perf_counter() - start
        print(f"RDataFrame: {N_EVENTS} events on {ROOT.GetThreadPoolSize()} threads in {elapsed:.2f} s "
              "(reading, features, graph network)")
        summarize(net, cols)
        ROOT.DisableImplicitMT()


def summarize(net: EdgeClassifier, cols: dict) -> None:
    """Edge efficiency and purity at score > 0.5, and the largest difference from torch on the same inputs."""
    worst = 0.0
    with torch.inference_mode():
        for x, e, s, t, score in zip(cols["nodes"], cols["edges"], cols["edge_sender"], cols["edge_receiver"],
                                     cols["gnn_edges"]):
            inputs = (np.asarray(x).reshape(-1, 3), np.asarray(e).reshape(-1, 4), np.asarray(s), np.asarray(t))
            ref = net(*(torch.from_numpy(np.asarray(a, np.int64 if k >= 2 else np.float32)) for k, a in enumerate(inputs)))
            worst = max(worst, float(np.max(np.abs(np.asarray(score) - ref.numpy()), initial=0.0)))
    n_true = sum(int(np.sum(t)) for t in cols["edge_true"])
    n_edges = sum(len(t) for t in cols["edge_true"])
    passed, true_passed = int(np.sum(cols["n_pass"])), int(np.sum(cols["n_true_pass"]))
    print(f"{n_edges} candidate edges, {n_true} true; score > 0.5: efficiency {true_passed / n_true:.3f}, "
          f"purity {true_passed / max(passed, 1):.3f}")
    print(f"largest |sofie - torch| edge score over all events: {worst:.2e}")
    assert worst < 1e-4, "sofie-rdf and torch disagree"


if __name__ == "__main__":
    main()
