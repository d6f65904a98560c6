"""Graph networks (``sr.gnn``): compiled blocks against an independent numpy reference on random graphs.

The reference below is written from graph_nets' definitions, not from our
builder: per-edge features ``[edges, x[receivers], x[senders], globals]``,
per-node ``[sum/mean/max of received edges, x, globals]``, global ``[reduced
edges, reduced nodes, globals]``, with ``np.add.at`` / ``np.maximum.at``
segment reductions in float64 and 0 for an empty segment.  Graphs cover no
edges, one edge, isolated nodes, self-loops, one node, an empty graph and
10^4 nodes with 3 x 10^4 edges.  Tolerances: rtol 1e-4, atol 1e-5 (float32
against float64).  Beyond the reference: torch, Keras and ONNX update
functions against their frameworks, the whole graph run by onnxruntime, a
``.root`` round trip, RDataFrame against ``infer`` per event, refused
indices and sizes, and a count of heap allocations in C++ ``infer``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import onnx
import pytest
from conftest import ORT_IR_VERSION, make_model, ort_run
from onnx import helper, numpy_helper

import sofie_rdf as sr
from sofie_rdf import ir

RTOL, ATOL = 1e-4, 1e-5
FV, FE, FU = 4, 3, 2  # input features of nodes, edges, globals
Graph = tuple  # (nodes, edges, senders, receivers, globals)


# ---- reference ------------------------------------------------------------------------------

class Dense:
    """Weights of an MLP, usable both as ``sr.gnn.MLP`` and as a numpy function."""

    def __init__(self, rng: np.random.Generator, *sizes: int, final: Optional[str] = None):
        self.w = [rng.normal(size=(a, b)) / np.sqrt(a) for a, b in zip(sizes, sizes[1:])]
        self.b = [rng.normal(size=b) * 0.1 for b in sizes[1:]]
        self.final = final

    def mlp(self) -> sr.gnn.MLP:
        return sr.gnn.MLP(self.w, self.b, activation="relu", final_activation=self.final)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for k, (w, b) in enumerate(zip(self.w, self.b)):
            x = x @ w.astype(np.float32).astype(np.float64) + b.astype(np.float32)
            if k < len(self.w) - 1:
                x = np.maximum(x, 0)
        return np.tanh(x) if self.final == "tanh" else x


def segment(data: np.ndarray, index: np.ndarray, n: int, kind: str) -> np.ndarray:
    """Per-segment sum, mean or max of the rows of ``data``; 0 for an empty segment."""
    out = np.zeros((n, data.shape[1]))
    count = np.bincount(index, minlength=n)[:, None]
    if kind == "max":
        out[:] = -np.inf
        np.maximum.at(out, index, data)
        return np.where(count > 0, out, 0.0)
    np.add.at(out, index, data)
    return out / np.maximum(count, 1) if kind == "mean" else out


def reduce_all(data: np.ndarray, kind: str) -> np.ndarray:
    return segment(data, np.zeros(len(data), np.int64), 1, kind)[0]


def rows(u: np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(u, (n, len(u)))


def reference_gn(g: Graph, edge: Callable, node: Callable, glob: Optional[Callable], kind: str) -> Graph:
    x, e, s, r, u = (np.asarray(a, np.float64) if a.dtype.kind == "f" else a for a in g)
    e = edge(np.concatenate([e, x[r], x[s], rows(u, len(e))], axis=1))
    x = node(np.concatenate([segment(e, r, len(x), kind), x, rows(u, len(x))], axis=1))
    if glob is not None:
        u = glob(np.concatenate([reduce_all(e, kind), reduce_all(x, kind), u])[None])[0]
    return x, e, s, r, u


def random_graph(rng: np.random.Generator, n_nodes: int, n_edges: int, connected: Optional[int] = None,
                 fv: int = FV, fe: int = FE, fu: int = FU) -> Graph:
    """Random features; edges among the first ``connected`` nodes (default all: the rest are isolated)."""
    k = n_nodes if connected is None else connected
    return (rng.normal(size=(n_nodes, fv)).astype(np.float32), rng.normal(size=(n_edges, fe)).astype(np.float32),
            rng.integers(0, max(k, 1), n_edges), rng.integers(0, max(k, 1), n_edges),
            rng.normal(size=fu).astype(np.float32))


def graphs(seed: int = 0) -> dict[str, Graph]:
    rng = np.random.default_rng(seed)
    loops = random_graph(rng, 8, 6, connected=4)
    loops[3][:3] = loops[2][:3]  # three self-loops; nodes 4-7 are isolated
    return {"no-edges": random_graph(rng, 5, 0), "one-edge": random_graph(rng, 2, 1),
            "isolated-and-self-loops": loops, "one-node": random_graph(rng, 1, 3), "empty": random_graph(rng, 0, 0),
            "medium": random_graph(rng, 100, 400), "large": random_graph(rng, 10_000, 30_000)}


def assert_graph_close(got: tuple, want: tuple, label: str) -> None:
    for name, a, b in zip(("nodes", "edges", "globals"), got, want):
        assert a.shape == b.shape, f"{label}, {name}: shape {a.shape} != {b.shape}"
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{label}, {name}")


@pytest.fixture(scope="module")
def fns() -> dict[str, Dense]:
    rng = np.random.default_rng(1)
    return {"edge": Dense(rng, FE + 2 * FV + FU, 16, 5), "node": Dense(rng, 5 + FV + FU, 16, 6),
            "glob": Dense(rng, 5 + 6 + FU, 8, 3, final="tanh")}


# ---- blocks against the reference ----------------------------------------------------------

@pytest.mark.parametrize("kind", sr.gnn.AGGREGATIONS)
def test_graph_network_matches_reference(kind, fns):
    gn = sr.gnn.GraphNetwork(edge=fns["edge"].mlp(), node=fns["node"].mlp(), glob=fns["glob"].mlp(),
                             edge_to_node=kind, edge_to_global=kind, node_to_global=kind)
    model = gn.to_model(node_features=FV, edge_features=FE, global_features=FU)
    assert [t.shape for t in model.inputs] == [("n_nodes", FV), ("n_edges", FE), ("n_edges",), ("n_edges",), (FU,)]
    assert [t.shape for t in model.outputs] == [("n_nodes", 6), ("n_edges", 5), (3,)]
    sess = sr.compile(model)
    for label, g in graphs().items():
        want = reference_gn(g, fns["edge"], fns["node"], fns["glob"], kind)
        assert_graph_close(sess.infer(*g), (want[0], want[1], want[4]), f"{kind}, {label}")


def test_encode_process_decode_native(fns):
    """Encoder, 3 core steps on concat(encoded, latent) with shared weights, decoder: native build, no globals."""
    rng = np.random.default_rng(2)
    enc_e, enc_v = Dense(rng, FE, 8), Dense(rng, FV, 8)
    core_e, core_v = Dense(rng, 16 + 2 * 16, 16, 8), Dense(rng, 8 + 16, 16, 8)
    dec_e = Dense(rng, 8, 1)
    epd = sr.gnn.EncodeProcessDecode(
        encoder=sr.gnn.GraphIndependent(edge=enc_e.mlp(), node=enc_v.mlp()),
        core=sr.gnn.GraphNetwork(edge=core_e.mlp(), node=core_v.mlp(), edge_to_node="mean"),
        decoder=sr.gnn.GraphIndependent(edge=dec_e.mlp()), steps=3)
    model = epd.to_model(node_features=FV, edge_features=FE)
    assert [t.name for t in model.inputs] == ["nodes", "edges", "senders", "receivers"]
    n_weights = sum(w.size for d in (enc_e, enc_v, core_e, core_v, dec_e) for w in d.w + d.b)
    stored = sum(v.size for v in model.ir.initializers.values() if v.dtype == np.float32)
    assert n_weights <= stored < n_weights + 10  # the core's weights once, not per step (plus scalar constants)
    sess = sr.compile(model, backend="native")
    for label, g in list(graphs(3).items())[:-1]:
        x, e, s, r, _ = g
        x0, e0 = enc_v(x.astype(np.float64)), enc_e(e.astype(np.float64))
        xl, el = x0, e0
        for _ in range(3):
            xc, ec = np.concatenate([x0, xl], 1), np.concatenate([e0, el], 1)
            el = core_e(np.concatenate([ec, xc[r], xc[s]], 1))
            xl = core_v(np.concatenate([segment(el, r, len(x), "mean"), xc], 1))
        got = sess.infer(*g[:4])
        assert len(got) == 2
        assert_graph_close(got, (xl, dec_e(el)), f"epd, {label}")


def test_options_sent_edges_and_sequential():
    """graph_nets' block options, a GraphIndependent global model and two blocks in sequence."""
    rng = np.random.default_rng(4)
    glob_enc, edge, node = Dense(rng, FU, 4), Dense(rng, FE + FV + 4, 8, 5), Dense(rng, 5 + 5 + FV, 7)
    net = sr.gnn.Sequential(
        sr.gnn.GraphIndependent(glob=glob_enc.mlp()),
        sr.gnn.GraphNetwork(edge=edge.mlp(), node=node.mlp(), edge_to_node="max",
                            edge_block_opt={"use_receiver_nodes": False},
                            node_block_opt={"use_sent_edges": True, "use_globals": False}))
    sess = sr.compile(net.to_model(FV, FE, FU))
    for label, g in list(graphs(5).items())[:-1]:
        x, e, s, r, u = g
        u1 = glob_enc(u[None].astype(np.float64))[0]
        e1 = edge(np.concatenate([e, x[s], rows(u1, len(e))], 1))
        x1 = node(np.concatenate([segment(e1, r, len(x), "max"), segment(e1, s, len(x), "max"), x], 1))
        assert_graph_close(sess.infer(*g), (x1, e1, u1), f"options, {label}")


def test_torch_update_function(fns):
    """A torch module as edge function, compared with torch itself; the node and global functions are MLPs."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(FE + 2 * FV + FU, 12), torch.nn.Tanh(), torch.nn.Linear(12, 5)).eval()

    def edge(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(x.astype(np.float32))).double().numpy()

    gn = sr.gnn.GraphNetwork(edge=net, node=fns["node"].mlp(), glob=fns["glob"].mlp())
    sess = sr.compile(gn.to_model(FV, FE, FU, name="torch_edges"))
    for label, g in list(graphs(6).items())[:-1]:
        want = reference_gn(g, edge, fns["node"], fns["glob"], "sum")
        assert_graph_close(sess.infer(*g), (want[0], want[1], want[4]), f"torch, {label}")


ACTIVATION_NP = {
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "elu": lambda z: np.where(z > 0, z, np.expm1(z)),
    "tanh": np.tanh,
    "softplus": lambda z: np.log1p(np.exp(z)),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
}


@pytest.mark.parametrize("hidden,final", [("relu", "sigmoid"), ("elu", "tanh"), ("softplus", "leaky_relu")])
def test_mlp_activations(hidden, final):
    rng = np.random.default_rng(13)
    w, b = [rng.normal(size=(3, 5)), rng.normal(size=(5, 2))], [rng.normal(size=5), rng.normal(size=2)]
    x = rng.normal(size=(6, 3)).astype(np.float32)
    got = sr.compile(sr.Model(sr.gnn.MLP(w, b, activation=hidden, final_activation=final).to_ir())).infer(x)
    want = ACTIVATION_NP[final](ACTIVATION_NP[hidden](x @ w[0] + b[0]) @ w[1] + b[1])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# ---- storage, RDataFrame, errors ------------------------------------------------------------

@pytest.fixture(scope="module")
def interaction_net(fns) -> sr.Model:
    return sr.gnn.GraphNetwork(edge=fns["edge"].mlp(), node=fns["node"].mlp(), glob=fns["glob"].mlp(),
                               edge_to_node="mean").to_model(FV, FE, FU, name="interaction")


def test_root_round_trip(interaction_net, tmp_path):
    path = tmp_path / "gnn.root"
    interaction_net.save(path, key="gnn")
    loaded = sr.load(f"{path}:gnn")
    assert loaded.inputs == interaction_net.inputs and loaded.outputs == interaction_net.outputs
    g = graphs(7)["medium"]
    for a, b in zip(sr.compile(loaded).infer(*g), sr.compile(interaction_net).infer(*g)):
        np.testing.assert_array_equal(a, b)


def test_rdataframe_one_inference_per_event(interaction_net, tmp_path):
    """Events of 0 to 60 nodes as flat RVec columns (int32 indices), two threads, equal to infer per event."""
    ak = pytest.importorskip("awkward")
    uproot = pytest.importorskip("uproot")
    ROOT = sr._root.root()  # noqa: N806
    rng = np.random.default_rng(8)
    events = [random_graph(rng, n, e) for n, e in [(5, 7), (3, 0), (0, 0), (1, 1), (60, 240), (9, 30)] * 3]
    path = str(tmp_path / "graphs.root")
    with uproot.recreate(path) as f:
        f["events"] = {"x": ak.Array([g[0].ravel() for g in events]), "e": ak.Array([g[1].ravel() for g in events]),
                       "snd": ak.Array([g[2].astype(np.int32) for g in events]),
                       "rcv": ak.Array([g[3].astype(np.int32) for g in events]),
                       "u0": np.array([g[4][0] for g in events]), "u1": np.array([g[4][1] for g in events])}
    sess = sr.compile(interaction_net)
    ROOT.EnableImplicitMT(2)
    try:
        df = sr.gnn.define(ROOT.RDataFrame("events", path), "gnn", sess, nodes="x", edges="e", senders="snd",
                           receivers="rcv", globals=["u0", "u1"])
        cols = df.AsNumpy(["rdfentry_", "gnn_nodes", "gnn_edges", "gnn_globals"])
    finally:
        ROOT.DisableImplicitMT()
    for k, entry in enumerate(cols["rdfentry_"]):
        want = sess.infer(*events[int(entry)])
        for name, w in zip(("gnn_nodes", "gnn_edges", "gnn_globals"), want):
            np.testing.assert_allclose(np.asarray(cols[name][k]), w.ravel(), rtol=1e-6, atol=1e-7)


def test_define_refuses_column_lists_and_missing_globals(interaction_net):
    df = sr._root.root().RDataFrame(1)
    with pytest.raises(sr.SofieError, match="nodes= takes one RVec column"):
        sr.gnn.define(df, "gnn", interaction_net, nodes=["r", "phi"], edges="e", senders="s", receivers="r")
    with pytest.raises(sr.SofieError, match="takes global features: pass globals="):
        sr.gnn.define(df, "gnn", interaction_net, nodes="x", edges="e", senders="s", receivers="r")


def test_out_of_range_index_fails_at_inference(interaction_net):
    sess = sr.compile(interaction_net)
    x, e, s, r, u = graphs(9)["medium"]
    bad = r.copy()
    bad[17] = len(x)
    with pytest.raises(sr.SofieError, match="out of range"):
        sess.infer(x, e, s, bad, u)
    with pytest.raises(sr.SofieError, match="out of range"):
        sess.infer(x, e, np.full_like(s, 10 * len(x)), r, u)
    sess.infer(x, e, s, r, u)  # the session is still usable


def test_wrong_sizes_and_options_are_refused(fns):
    with pytest.raises(sr.SofieError, match="edge block: the update function takes 13 features, the block gives it 11"):
        sr.gnn.GraphNetwork(edge=fns["edge"].mlp(), node=fns["node"].mlp()).to_model(FV, FE)
    with pytest.raises(sr.SofieError, match="edge_to_node aggregation must be one of sum, mean, max"):
        sr.gnn.GraphNetwork(edge=fns["edge"].mlp(), edge_to_node="median")
    with pytest.raises(sr.SofieError, match="unknown option"):
        sr.gnn.GraphNetwork(node_block_opt={"use_edges": True})
    with pytest.raises(sr.SofieError, match="MLP layer 1 takes 3 features, layer 0 gives 4"):
        sr.gnn.MLP([np.zeros((2, 4)), np.zeros((3, 1))])
    with pytest.raises(sr.SofieError, match="edge block: the options leave the update function no input"):
        sr.gnn.GraphNetwork(edge=fns["edge"].mlp(), edge_block_opt=dict.fromkeys(
            ("use_edges", "use_receiver_nodes", "use_sender_nodes", "use_globals"), False)).to_model(FV, FE, FU)
    with pytest.raises(sr.SofieError, match="fixed batch size"):
        fixed = sr.gnn.MLP([np.zeros((FE, 2))]).to_ir()
        fixed.tensors["x"] = ir.TensorType(np.float32, (1, FE))
        sr.gnn.GraphIndependent(edge=sr.Model(fixed)).to_model(FV, FE)


ALLOCATION_MAIN = """
int main()
{{
   TMVA_SOFIE_{name}::Session s("{weights}");
   const std::size_t sizes[][2] = {{{{200, 600}}, {{50, 100}}, {{0, 0}}, {{1, 1}}, {{7, 0}}, {{200, 600}}}};
   std::vector<float> x(200 * {fv}), e(600 * {fe}), u({fu}), y_nodes(200 * 6), y_edges(600 * 5), y_glob(3);
   std::vector<int64_t> snd(600), rcv(600);
   for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.1f * i);
   for (std::size_t i = 0; i < e.size(); ++i) e[i] = std::cos(0.1f * i);
   for (std::size_t i = 0; i < u.size(); ++i) u[i] = 0.5f;
   for (int warm = 0; warm < 2; ++warm)
      s.infer(200, 600, x.data(), e.data(), snd.data(), rcv.data(), u.data(), y_nodes.data(), y_edges.data(), y_glob.data());
   counting::reset();
   for (auto &n : sizes) {{
      for (std::size_t k = 0; k < n[1]; ++k) {{ snd[k] = (7 * k) % n[0]; rcv[k] = (3 * k + 1) % n[0]; }}
      s.infer(n[0], n[1], x.data(), e.data(), snd.data(), rcv.data(), u.data(), y_nodes.data(), y_edges.data(),
              y_glob.data());
   }}
   counting::stop();
   std::printf("new=%zu malloc=%zu last=%g\\n", counting::news, counting::mallocs, double(y_edges[599 * 5]));
   return 0;
}}
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="interposes glibc's malloc")
def test_infer_allocates_nothing_up_to_the_largest_graph(interaction_net, tmp_path):
    """After a call on the largest graph, calls on graphs of 0 to that many nodes and edges allocate nothing."""
    from test_allocations import COUNTING

    from sofie_rdf import _root
    from sofie_rdf.targets.cpu.native import DEFAULT_FLAGS

    gen = interaction_net.generate(tmp_path)
    source = tmp_path / "gnn_allocations.cpp"
    main = ALLOCATION_MAIN.format(name=interaction_net.name, weights=gen.weights, fv=FV, fe=FE, fu=FU)
    source.write_text("\n".join([COUNTING, "#include <cmath>", f'#include "{Path(gen.header).name}"', main]))
    lib, include = _root.blas_paths()
    exe = tmp_path / "gnn_allocations"
    cmd = [*shlex.split(os.environ.get("CXX", "c++")), "-std=c++17", *DEFAULT_FLAGS, "-I", str(tmp_path), "-I",
           str(include), "-o", str(exe), str(source), "-L", str(lib.parent), f"-l{lib.stem[3:]}",
           f"-Wl,-rpath,{lib.parent}"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.startswith("new=0 malloc=0 "), run.stdout
    assert np.isfinite(float(run.stdout.split("last=")[1]))


def test_keras_and_onnx_update_functions(fns):
    """A Keras model as node function and an ONNX model (symbolic batch) as global function."""
    keras = pytest.importorskip("keras")

    keras.utils.set_random_seed(0)
    node_in = 5 + FV + FU
    kmodel = keras.Sequential([keras.Input((node_in,)), keras.layers.Dense(12, activation="tanh"), keras.layers.Dense(6)])
    glob = Dense(np.random.default_rng(10), 5 + 6 + FU, 4)
    onnx_glob = make_model([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
                           [("x", np.float32, ["N", 5 + 6 + FU])], [("y", np.float32, ["N", 4])],
                           {"w": glob.w[0].astype(np.float32), "b": glob.b[0].astype(np.float32)})

    def node(x: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(kmodel(x.astype(np.float32))).astype(np.float64)

    gn = sr.gnn.GraphNetwork(edge=fns["edge"].mlp(), node=kmodel, glob=onnx_glob)
    sess = sr.compile(gn.to_model(FV, FE, FU, name="keras_onnx"))
    for label, g in list(graphs(11).items())[:-1]:
        want = reference_gn(g, fns["edge"], node, glob, "sum")
        assert_graph_close(sess.infer(*g), (want[0], want[1], want[4]), f"keras/onnx, {label}")


def as_onnx(model: sr.Model) -> onnx.ModelProto:
    """The network's IR written out as an ONNX model (every node is a standard ONNX operator)."""
    def value(t: sr.TensorInfo) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(t.name, helper.np_dtype_to_tensor_dtype(t.dtype), list(t.shape))

    g = model.ir
    nodes = [helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, domain=n.domain,
                              **{k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v
                                 for k, v in n.attrs.items()}) for n in g.nodes]
    graph = helper.make_graph(nodes, g.name, [value(t) for t in model.inputs], [value(t) for t in model.outputs],
                              [numpy_helper.from_array(v, k) for k, v in g.initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in g.opsets.items()],
                             ir_version=ORT_IR_VERSION)


def test_onnxruntime_runs_the_same_graph(fns):
    """The generated graph is plain ONNX: onnxruntime gives the same outputs (max, mean and sum aggregations)."""
    gn = sr.gnn.GraphNetwork(edge=fns["edge"].mlp(), node=fns["node"].mlp(), glob=fns["glob"].mlp(),
                             edge_to_node="max", edge_to_global="mean", node_to_global="sum")
    model = gn.to_model(FV, FE, FU)
    proto, sess = as_onnx(model), sr.compile(model)
    for label, g in list(graphs(12).items())[:-1]:
        want = ort_run(proto, dict(zip(("nodes", "edges", "senders", "receivers", "globals"), g)))
        assert_graph_close(sess.infer(*g), want, f"onnxruntime, {label}")
