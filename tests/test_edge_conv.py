"""EdgeConv as ParticleNet exports it (passes/edge_conv.py): the neighbours' gather as one node, each block's first
1x1 convolution per point, its layers and pooling in one node on native register tiles; against onnxruntime.

The blocks are written as weaver writes them (get_graph_feature_v2 in the files CMS publishes, v1 in older ones)
and as DGCNN writes its own (``cat([x_j - x_i, x_i])``, max pooling), exported with the TorchScript exporter and
dynamic batch and particle counts.
"""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import onnx
import pytest
from conftest import ort_run

import sofie_rdf as sr

torch = pytest.importorskip("torch")
K = 4
RTOL, ATOL = 1e-4, 1e-5


def _neighbours_v2(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """weaver's get_graph_feature_v2: x (N, C, P), idx (N, P, K) -> (N, C, P, K)."""
    n, c, p = x.shape
    flat = (idx + torch.arange(0, n).view(-1, 1, 1) * p).reshape(-1)
    fts = x.transpose(0, 1).reshape(c, -1)[:, flat].view(c, n, p, -1)
    return fts.transpose(1, 0).contiguous()


def _neighbours_v1(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """weaver's get_graph_feature_v1: the points' features as rows."""
    n, c, p = x.shape
    flat = (idx + torch.arange(0, n).view(-1, 1, 1) * p).reshape(-1)
    return x.transpose(2, 1).reshape(-1, c)[flat, :].view(n, p, -1, c).permute(0, 3, 1, 2)


class _Block(torch.nn.Module):
    """An EdgeConv block: kNN in ``points``, edges of ``features``, 1x1 Conv2d + BatchNorm + ReLU layers, pooled over
    the neighbours, a shortcut."""

    def __init__(self, cin: int, widths: tuple, gather, dgcnn: bool = False):
        super().__init__()
        layers, c = [], 2 * cin
        for w in widths:
            layers += [torch.nn.Conv2d(c, w, 1, bias=False), torch.nn.BatchNorm2d(w), torch.nn.ReLU()]
            c = w
        self.edge = torch.nn.Sequential(*layers)
        self.shortcut = torch.nn.Conv1d(cin, c, 1)
        self.gather, self.dgcnn = gather, dgcnn

    def forward(self, points, features, idx=None):
        if idx is None:
            inner = -2 * torch.matmul(points.transpose(2, 1), points)
            square = (points ** 2).sum(dim=1, keepdim=True)
            idx = (-square - inner - square.transpose(2, 1)).topk(K + 1, dim=-1)[1][:, :, 1:]
        centre = features.view(*features.shape, 1).repeat(1, 1, 1, K)
        fts = self.gather(features, idx)
        edges = torch.cat((fts - centre, centre) if self.dgcnn else (centre, fts - centre), dim=1)
        h = self.edge(edges)
        pooled = h.max(dim=-1)[0] if self.dgcnn else h.mean(dim=-1)
        return torch.relu(pooled + self.shortcut(features))


class _Net(torch.nn.Module):
    def __init__(self, gather=_neighbours_v2, dgcnn: bool = False):
        super().__init__()
        self.first = _Block(3, (8, 8, 8), gather, dgcnn)
        self.second = _Block(8, (16, 16), gather, dgcnn)

    def forward(self, points, features):
        x = self.first(points, features)
        return self.second(x, x).mean(dim=-1)


def _trained(module: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(3)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return module.eval()


def _export(module: torch.nn.Module, example: tuple, names: list[str], axes: dict) -> onnx.ModelProto:
    torch.manual_seed(0)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(_trained(module), example, buffer, dynamo=False, opset_version=13, input_names=names,
                          output_names=["y"], dynamic_axes={**axes, "y": {0: "N"}})
    return onnx.load_from_string(buffer.getvalue())


def _net_onnx(gather=_neighbours_v2, dgcnn: bool = False) -> onnx.ModelProto:
    torch.manual_seed(1)
    net = _Net(gather, dgcnn)
    return _export(net, (torch.randn(2, 2, 9), torch.randn(2, 3, 9)), ["points", "features"],
                   {"points": {0: "N", 2: "P"}, "features": {0: "N", 2: "P"}})


def _jets(n: int, p: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"points": rng.standard_normal((n, 2, p)).astype(np.float32),
            "features": rng.standard_normal((n, 3, p)).astype(np.float32)}


def _planned_ops(model: onnx.ModelProto, target: str) -> Counter:
    return Counter(n.op_type for n in sr.load(model).planned(target).model.nodes)


@pytest.mark.parametrize("form", ["v2", "v1", "dgcnn"])
@pytest.mark.parametrize("backend", ["native", "jit"])
def test_edge_conv_networks_match_onnxruntime(form, backend):
    model = _net_onnx(_neighbours_v1 if form == "v1" else _neighbours_v2, dgcnn=form == "dgcnn")
    sess = sr.compile(sr.load(model), backend=backend)
    for n, p in [(1, 9), (3, 13), (2, 5)]:
        feeds = _jets(n, p, seed=n * 100 + p)
        np.testing.assert_allclose(sess.infer(*feeds.values()), ort_run(model, feeds)[0], rtol=RTOL, atol=ATOL)


def test_native_code_runs_each_block_as_one_node():
    ops = _planned_ops(_net_onnx(), "native")
    assert ops["EdgeConvChain"] == 2 and ops["NeighbourGather"] == 0
    assert not {"Tile", "Gather", "Concat"} & set(ops)  # no edge tensor, no flattened gather
    assert ops["ReduceMean"] == 1  # the network's own mean over the particles; the blocks' are in their nodes
    assert ops["Conv"] == 2 * 2 + 2  # per block: the centre's and the neighbours' 1x1 layer; the shortcuts


def test_the_jit_splits_the_first_convolution_but_keeps_the_layers():
    ops = _planned_ops(_net_onnx(), "jit")  # under Cling the chain is slower than BLAS: the layers as nodes
    assert ops["NeighbourGather"] == 2 and ops["EdgeConvChain"] == 0 and ops["Concat"] == 0


def test_the_cuda_target_keeps_the_exported_graph():
    from sofie_rdf.targets.cuda import cuda_target

    ops = Counter(n.op_type for n in sr.load(_net_onnx()).planned(cuda_target()).model.nodes)
    assert "NeighbourGather" not in ops and "EdgeConvChain" not in ops and ops["Concat"] == 2


class _GivenNeighbours(torch.nn.Module):
    """One block whose neighbour indices are an input: any values, as the exported Gather takes them."""

    def __init__(self):
        super().__init__()
        self.block = _Block(3, (4, 4), _neighbours_v2)

    def forward(self, features, idx):
        return self.block(None, features, idx)


def _given_onnx() -> onnx.ModelProto:
    torch.manual_seed(2)
    example = (torch.randn(2, 3, 6), torch.randint(0, 6, (2, 6, K)))
    return _export(_GivenNeighbours(), example, ["features", "idx"],
                   {"features": {0: "N", 2: "P"}, "idx": {0: "N", 1: "P"}})


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_indices_outside_the_jet_read_what_the_exported_gather_reads(backend):
    """idx + n * P indexes the batch's flattened points: -1 is the last point of the batch, P the next jet's first."""
    model = _given_onnx()
    assert "EdgeConvChain" in _planned_ops(model, "native")
    sess = sr.compile(sr.load(model), backend=backend)
    rng = np.random.default_rng(4)
    feeds = {"features": rng.standard_normal((3, 3, 6)).astype(np.float32),
             "idx": rng.integers(0, 6, (3, 6, K)).astype(np.int64)}
    feeds["idx"][0, 0, 0], feeds["idx"][1, 2, 3], feeds["idx"][2, 5, 1] = -1, 6, -13
    np.testing.assert_allclose(sess.infer(*feeds.values()), ort_run(model, feeds)[0], rtol=RTOL, atol=ATOL)
    feeds["idx"][1, 1, 1] = 3 * 6  # past the batch's 18 points
    with pytest.raises(sr.SofieError, match="out of range"):
        sess.infer(*feeds.values())
