"""torch modules and functions that torch's ONNX exporters cannot translate, or mistranslate, loaded through our
own translations (``parsers/_torch_decomp.py``, ``_torch_lstm.py``, ``_torchscript_fixes.py``) and compared
with torch.

``torch.cdist`` for p = 0, 1, 2, 3 and infinity, batched and not, and a kNN (top-k of the distances) on both
sides of torch's switch to a matrix product (more than 25 points) with symbolic batch and point counts;
``nn.RReLU`` in eval mode; ``nn.EmbeddingBag`` in its three modes with offsets, per-sample weights, a padding
index, an empty bag, CSR-style offsets and 2-D input; ``nn.LSTM(proj_size=...)``, bidirectional with one layer, and
(in make test-full) forward with two layers, initial states and a symbolic batch and sequence length.  A scripted graph
network aggregating with torch_scatter's ``scatter_add`` (as published, plain TorchScript), ``index_add_``,
``index_select`` and ``scatter_reduce_``, through the TorchScript exporter with symbolic node and edge counts; its
``scatter_add`` along every dim, negative and positive, of 2-D and 3-D sources (``broadcast``'s loops then run 0, 1
or 2 times), and ``scatter_add_`` of an index unsqueezed and expanded by hand, at rtol 1e-5.  ``nn.CrossMapLRN2d``
(``parsers/_torch_modules.py``) of odd and even sizes, some above the channel count, at rtol 1e-5 / atol 1e-6;
``nn.FractionalMaxPool2d/3d`` with fixed ``_random_samples`` (output_size and output_ratio, indices, batch of 3,
unbatched), exactly, and its refusals (no samples, a symbolic batch, samples that do not fit); the same pooling
called as ``F.fractional_max_pool2d/3d`` with samples that are a buffer, a tensor attribute or a slice of a buffer,
as a module and as an ExportedProgram, exactly, and its refusals (no samples, samples given as an input, a symbolic
batch, samples outside [0, 1)).  torch_scatter's
``scatter_max`` written in plain TorchScript (``scatter_reduce_(..., "amax", include_self=False)`` and the
argmax), and scatter_reduce's other reductions without the original elements and "mean", scripted, at
rtol 1e-4 / atol 1e-5 (positions exactly).  scatter_reduce's "mean" through torch.export (onnxscript kept one
element per place), at rtol 1e-4 / atol 1e-5.  An integer "mean" (floored by torch) of int32 and int64 with and
without the original elements, scripted and through torch.export, exactly.
Each model is exported and compiled once and run on two seeded inputs; outputs must match torch at rtol 1e-4 /
atol 1e-5 (sums of a few products in another order; integer outputs exactly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pytest
from conftest import assert_matches_torch

import sofie_rdf as sr
from sofie_rdf.errors import ModelFormatError

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")  # the dynamo exporter's dependency
nn = torch.nn

RTOL, ATOL = 1e-4, 1e-5


# ---- models --------------------------------------------------------------------------------------


class Distances(nn.Module):
    """Every p torch.cdist treats apart, batched (points x points) and unbatched."""

    def forward(self, a, b):
        norms = (0.0, 1.0, 2.0, 3.0, float("inf"))
        batched = tuple(torch.cdist(a, b, p=p) for p in norms)
        return batched + (torch.cdist(a[0], b[0], p=2.0),)


class KNN(nn.Module):
    """The kNN of a point-cloud network: distances of more than 25 points (torch's matrix-product form), top-k."""

    def forward(self, points):
        dist = torch.cdist(points, points)
        return dist, torch.topk(dist, 3, dim=-1, largest=False).values


class Bags(nn.Module):
    """nn.EmbeddingBag's modes over one shared set of bags, one of them empty."""

    def __init__(self):
        super().__init__()
        self.sum = nn.EmbeddingBag(10, 4, mode="sum")
        self.mean = nn.EmbeddingBag(10, 4, mode="mean")
        self.max = nn.EmbeddingBag(10, 4, mode="max", padding_idx=2)
        self.csr = nn.EmbeddingBag(10, 4, mode="mean", include_last_offset=True)

    def forward(self, indices, offsets, weights, grid):
        ends = torch.cat([offsets, indices.new_full((1,), indices.shape[0])])
        return (
            self.sum(indices, offsets, per_sample_weights=weights),
            self.mean(indices, offsets),
            self.max(indices, offsets),
            self.csr(indices, ends),
            self.max(grid),
        )


class ProjectedLSTM(nn.Module):
    def __init__(self, bidirectional: bool, layers: int, initial_states: bool):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, num_layers=layers, proj_size=3, batch_first=True, bidirectional=bidirectional)
        self.initial_states = initial_states

    def forward(self, x):
        if not self.initial_states:
            y, (h, c) = self.lstm(x)
            return y, h, c
        states = self.lstm.num_layers * (2 if self.lstm.bidirectional else 1), x.shape[0]
        h0 = torch.linspace(-1, 1, 3).expand(*states, 3)
        c0 = torch.linspace(1, -1, 6).expand(*states, 6)
        y, (h, c) = self.lstm(x, (h0, c0))
        return y, h, c


def _points(*shape: int) -> Callable[[torch.Generator], torch.Tensor]:
    return lambda gen: torch.randn(*shape, generator=gen)


def _bags(gen: torch.Generator) -> tuple:
    indices = torch.randint(0, 10, (9,), generator=gen)
    offsets = torch.tensor([0, 4, 4, 7])  # bag 1 is empty
    grid = torch.randint(0, 10, (3, 4), generator=gen)
    return indices, offsets, torch.rand(9, generator=gen), grid


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    example: Callable[[torch.Generator], tuple]
    axes: dict = field(default_factory=dict)
    atol: float = ATOL


def _pair(gen: torch.Generator) -> tuple:
    # whole numbers, so that p = 0 (count of differing coordinates) has ties to find
    return (torch.randn(2, 5, 3, generator=gen) * 2).round(), (torch.randn(2, 4, 3, generator=gen) * 2).round()


CASES = {
    "cdist": Case(Distances, _pair),
    # Exported with more than 25 points, the graph holds torch's matrix-product form (aten._euclidean_dist,
    # decomposed by torch.export); torch itself computes 7 points directly.  The product form's sqrt of a
    # cancellation leaves up to sqrt(eps) * |x| where torch has an exact 0: hence the absolute tolerance.
    "cdist_knn": Case(KNN, lambda gen: (torch.randn(2, 30, 3, generator=gen),), axes={0: {0: "N", 1: "P"}}, atol=2e-3),
    "rrelu": Case(lambda: nn.RReLU(0.1, 0.4), lambda gen: (torch.randn(3, 8, generator=gen),)),
    "embedding_bag": Case(Bags, _bags),
    "lstm_proj_bidirectional": Case(lambda: ProjectedLSTM(True, 1, False), lambda gen: (torch.randn(2, 5, 4, generator=gen),)),
    "lstm_proj_2_layers_initial_states": Case(
        lambda: ProjectedLSTM(False, 2, True), lambda gen: (torch.randn(2, 5, 4, generator=gen),), axes={0: {0: "N", 1: "S"}}
    ),
}


def _inputs(case: Case, seed: int, resize: bool) -> tuple:
    """Seeded inputs; with ``resize`` (a case with symbolic axes) the batch and sequence lengths change."""
    gen = torch.Generator().manual_seed(seed)
    inputs = case.example(gen)
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    if resize and case.axes:
        inputs = tuple(torch.randn(3, 7, *x.shape[2:], generator=gen) for x in inputs)
    return inputs


# half a minute of export and compilation (while-loops with symbolic lengths): in make test-full
SLOW = {"lstm_proj_2_layers_initial_states"}


@pytest.mark.parametrize("key", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k for k in CASES])
def test_matches_torch(key):
    case = CASES[key]
    torch.manual_seed(0)
    module = case.build().eval()
    model = sr.from_pytorch(module, _inputs(case, 0, False), dynamic_axes=case.axes)
    assert all("forward" not in m.__dict__ for m in module.modules())  # a projected LSTM's own forward is back
    session = sr.compile(model)
    for seed, resize in ((1, False), (2, True)):
        assert_matches_torch(session, module, _inputs(case, seed, resize), RTOL, case.atol, f"seed {seed}", check_shapes=True)


def test_rrelu_in_training_mode_is_not_translated():
    """Training-mode RReLU draws random slopes; it is refused, naming the module, not run with the mean slope."""

    class Training(nn.Module):
        def forward(self, x):
            return nn.functional.rrelu(x, training=True)

    with pytest.raises(ModelFormatError, match="model 'Training': torch.export cannot export it"):
        sr.from_pytorch(Training(), torch.randn(2, 3))


# ---- TorchScript: torch_scatter-style aggregation --------------------------------------------------


def broadcast(src: torch.Tensor, other: torch.Tensor, dim: int) -> torch.Tensor:
    """torch_scatter's ``broadcast``, as published (its loop becomes an ONNX Loop whose value changes shape)."""
    if dim < 0:
        dim = other.dim() + dim
    if src.dim() == 1:
        for _ in range(0, dim):
            src = src.unsqueeze(0)
    for _ in range(src.dim(), other.dim()):
        src = src.unsqueeze(-1)
    src = src.expand(other.size())
    return src


def scatter_add(
    src: torch.Tensor, index: torch.Tensor, dim: int = -1, out: Optional[torch.Tensor] = None, dim_size: Optional[int] = None
) -> torch.Tensor:
    """torch_scatter's ``scatter_sum``, as published: plain TorchScript, no custom operator."""
    index = broadcast(index, src, dim)
    if out is None:
        size = list(src.size())
        if dim_size is not None:
            size[dim] = dim_size
        elif index.numel() == 0:
            size[dim] = 0
        else:
            size[dim] = int(index.max()) + 1
        out = torch.zeros(size, dtype=src.dtype, device=src.device)
        return out.scatter_add_(dim, index, src)
    else:
        return out.scatter_add_(dim, index, src)


class MessagePassing(nn.Module):
    """One round of a graph network: messages along edges summed at their targets (with and without
    ``dim_size``, the second sized by the largest target index), and the index_add / scatter_reduce forms."""

    def __init__(self):
        super().__init__()
        self.message = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        messages = self.message(x).index_select(0, edges[0])
        sized = scatter_add(messages, edges[1], dim=0, dim_size=x.size(0))
        by_max_index = scatter_add(messages, edges[1], dim=0)
        added = torch.zeros_like(sized).index_add_(0, edges[1], messages)
        largest = torch.zeros_like(sized).scatter_reduce_(0, edges[1].unsqueeze(-1).expand_as(messages), messages, "amax")
        return sized, by_max_index, added, largest


class ScatterAlongEveryDim(nn.Module):
    """torch_scatter's ``scatter_add`` along every dim of a square and a cube of side E (one index of E entries
    serves each dim), sized by ``dim_size`` and by the largest index; and the hand-written ``out.scatter_add_(-2,
    index.unsqueeze(-1).expand_as(src), src)``."""

    def forward(self, square: torch.Tensor, cube: torch.Tensor, index: torch.Tensor):  # a tuple of 13 (TorchScript's type)
        return (
            scatter_add(square, index, dim=-2, dim_size=9),
            scatter_add(square, index, dim=-1, dim_size=9),
            scatter_add(square, index, dim=0, dim_size=9),
            scatter_add(square, index, dim=1, dim_size=9),
            scatter_add(cube, index, dim=-3, dim_size=9),
            scatter_add(cube, index, dim=-2, dim_size=9),
            scatter_add(cube, index, dim=-1, dim_size=9),
            scatter_add(cube, index, dim=0, dim_size=9),
            scatter_add(cube, index, dim=1, dim_size=9),
            scatter_add(cube, index, dim=2, dim_size=9),
            scatter_add(square, index, dim=-2),
            scatter_add(cube, index, dim=-1),
            torch.zeros(9, square.size(1)).scatter_add_(-2, index.unsqueeze(-1).expand_as(square), square),
        )


def _scatter_inputs(side: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A square, a cube and an index into 9 places whose entries repeat (the sums a scatter must add up)."""
    gen = torch.Generator().manual_seed(seed)
    index = torch.randint(0, 4, (side,), generator=gen)
    index[0] = 6
    return torch.randn(side, side, generator=gen), torch.randn(side, side, side, generator=gen), index


def _graph(nodes: int, edges: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A graph whose targets repeat (what a scatter without reduction gets wrong) and cover the last node."""
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, nodes, (edges,), generator=gen)
    targets[0] = nodes - 1
    return torch.randn(nodes, 3, generator=gen), torch.stack([torch.randint(0, nodes, (edges,), generator=gen), targets])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::sofie_rdf.errors.LegacyModelWarning")
def test_scripted_scatter_add_matches_torch():
    """Scripted, so through torch's TorchScript exporter: its list edit and index_add are repaired, the broadcast
    Loop unrolled; symbolic node and edge counts."""
    torch.manual_seed(0)
    module = torch.jit.script(MessagePassing().eval())
    session = sr.compile(sr.from_pytorch(module, _graph(5, 8, 0), dynamic_axes={0: {0: "N"}, 1: {1: "E"}}))
    for seed, (nodes, edges) in enumerate([(5, 8), (9, 20)]):
        x, graph_edges = _graph(nodes, edges, seed + 1)
        expected = module(x, graph_edges)
        ours = session.infer(x.numpy(), graph_edges.numpy())
        for k, (a, b) in enumerate(zip(ours, expected)):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=f"output {k}, seed {seed}")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::sofie_rdf.errors.LegacyModelWarning")
def test_scripted_scatter_add_along_every_dim_matches_torch():
    """The exporter typed a Loop's output with one iteration's rank, so ``broadcast``'s index had the wrong rank
    after 0 or 2 iterations (torch's scatter_add refused it, or a wrong trip count was folded into the next loop);
    the Loops run 0, 1 or 2 times here, the side E symbolic."""
    module = torch.jit.script(ScatterAlongEveryDim().eval())
    axes = {0: {0: "E", 1: "E"}, 1: {0: "E", 1: "E", 2: "E"}, 2: {0: "E"}}
    session = sr.compile(sr.from_pytorch(module, _scatter_inputs(5, 0), dynamic_axes=axes))
    for seed, side in enumerate([5, 8]):
        inputs = _scatter_inputs(side, seed + 1)
        expected = module(*inputs)
        ours = session.infer(*(t.numpy() for t in inputs))
        assert len(ours) == len(expected)
        for k, (a, b) in enumerate(zip(ours, expected)):
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-6, err_msg=f"output {k}, side {side}")


# ---- modules torch.export cannot trace, computed by a forward of our own while exporting ----------------------

# (size, alpha, beta, k): odd and even sizes, sizes above the channel counts, a window wider than 9 channels
CROSS_MAP_LRNS = ((1, 1e-4, 0.75, 1.0), (2, 0.5, 0.6, 1.2), (3, 0.3, 0.75, 1.5), (4, 1.0, 0.5, 2.0),
                  (5, 2e-3, 0.9, 0.8), (6, 0.7, 1.3, 1.0), (11, 0.4, 0.25, 3.0))


class CrossMapLRNs(nn.Module):
    """nn.CrossMapLRN2d of every (size, alpha, beta, k) in CROSS_MAP_LRNS on 3 channels and on 9."""

    def __init__(self):
        super().__init__()
        self.lrns = nn.ModuleList(nn.CrossMapLRN2d(*args) for args in CROSS_MAP_LRNS)

    def forward(self, few: torch.Tensor, many: torch.Tensor) -> tuple:
        return tuple(lrn(few) for lrn in self.lrns) + tuple(lrn(many) for lrn in self.lrns)


def test_cross_map_lrn2d_matches_torch():
    """Its forward is a legacy autograd Function that torch.export cannot trace: ours computes the same window
    (channels c - pre_pad + 1 ... c + pre_pad - 1, pre_pad = int((size - 1) / 2 + 1), and channel 0 from channel
    pre_pad on, as torch's running sum keeps it), so it differs from LocalResponseNorm and must match torch's own
    module; batch and image sizes symbolic.  rtol 1e-5 / atol 1e-6: one sum of at most 11 squares in another
    order, then a power."""
    module = CrossMapLRNs().eval()
    gen = torch.Generator().manual_seed(0)
    example = (torch.randn(2, 3, 4, 5, generator=gen) * 2, torch.randn(2, 9, 3, 3, generator=gen) * 2)
    axes = {0: {0: "N", 2: "H", 3: "W"}, 1: {0: "N"}}
    model = sr.from_pytorch(module, example, dynamic_axes=axes)
    assert all("forward" not in m.__dict__ for m in module.modules())  # each module's own forward is back
    session = sr.compile(model)
    for seed, (rows, height, width) in enumerate([(2, 4, 5), (3, 6, 2)], start=1):
        gen = torch.Generator().manual_seed(seed)
        inputs = (torch.randn(rows, 3, height, width, generator=gen) * 2, torch.randn(rows, 9, 3, 3, generator=gen) * 2)
        assert_matches_torch(session, module, inputs, 1e-5, 1e-6, f"seed {seed}", check_shapes=True)
    with torch.no_grad():  # the quirk is real: LocalResponseNorm of the same size differs on 9 channels
        many = example[1]
        assert not torch.allclose(nn.CrossMapLRN2d(3, 0.3, 0.75, 1.5)(many), nn.LocalResponseNorm(3, 0.3, 0.75, 1.5)(many))


class FractionalPools(nn.Module):
    """nn.FractionalMaxPool2d/3d with fixed _random_samples (4 rows, for a batch of 3: torch reads the first rows):
    output_size and output_ratio, with and without indices, kernels square and not."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(5)
        pools = nn.FractionalMaxPool2d, nn.FractionalMaxPool3d

        def pool(pooled: int, *args, **kwargs) -> nn.Module:
            return pools[pooled - 2](*args, **kwargs, _random_samples=torch.rand(4, 2, pooled, generator=gen))

        self.pools = nn.ModuleList([
            pool(2, 3, output_size=(4, 5)),
            pool(2, (2, 3), output_ratio=(0.5, 0.7), return_indices=True),
            pool(3, 2, output_size=(2, 3, 3), return_indices=True),
            pool(3, (1, 2, 2), output_ratio=0.6),
        ])

    def forward(self, image: torch.Tensor, volume: torch.Tensor) -> tuple:
        outputs = []
        for pool in self.pools:
            y = pool(image if isinstance(pool, nn.FractionalMaxPool2d) else volume)
            outputs += list(y) if isinstance(y, tuple) else [y]
        return tuple(outputs)


def _fractional_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, 2, 9, 11, generator=gen), torch.randn(3, 2, 6, 7, 8, generator=gen)


def test_fractional_max_pool_with_fixed_samples_matches_torch():
    """With _random_samples the regions are fixed per batch row and channel, cut as torch's generate_intervals cuts
    them (in float32); values and indices must equal torch's exactly (each is one input element or its index)."""
    module = FractionalPools().eval()
    session = sr.compile(sr.from_pytorch(module, _fractional_inputs(0)))
    for seed in (1, 2):
        assert_matches_torch(session, module, _fractional_inputs(seed), 0, 0, f"seed {seed}", check_shapes=True)
    unbatched = nn.FractionalMaxPool2d(2, output_ratio=0.5, return_indices=True,
                                       _random_samples=torch.rand(1, 2, 2, generator=torch.Generator().manual_seed(3)))
    image = _fractional_inputs(4)[0][0]
    assert_matches_torch(sr.compile(sr.from_pytorch(unbatched, image)), unbatched, (image,), 0, 0, "unbatched", True)


class Pooled(nn.Module):
    def __init__(self, pool: nn.Module):
        super().__init__()
        self.conv, self.pool = nn.Conv2d(2, 2, 1), pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))


FRACTIONAL_REFUSALS = {
    "random regions": (None, None, r"model 'Pooled': FractionalMaxPool2d 'pool' draws random pooling regions at every"
                                   r" call.*construct it with _random_samples=torch.rand\(N, C, 2\)"),
    "symbolic batch": (torch.rand(2, 2, 2), {0: {0: "N"}}, r"fixed per batch row and channel by _random_samples of shape"
                                                           r" \(2, 2, 2\).*symbolic dims"),
    "fewer rows than the batch": (torch.rand(1, 2, 2), None, r"_random_samples of shape \(1, 2, 2\) do not fit the input"
                                                              r" of shape \(2, 2, 7, 7\)"),
    "other channels": (torch.rand(2, 3, 2), None, r"_random_samples of shape \(2, 3, 2\) do not fit"),
    "outside [0, 1)": (torch.rand(2, 2, 2) + 1, None, r"_random_samples must lie in \[0, 1\)"),
}


@pytest.mark.parametrize("key", FRACTIONAL_REFUSALS)
def test_fractional_max_pool_refusals_name_the_module(key):
    """Without samples torch draws new regions at every call: refused, saying how to fix them.  Fixed samples hold
    one row per batch row, so the batch must be static and the samples must fit the input as torch requires."""
    samples, axes, message = FRACTIONAL_REFUSALS[key]
    module = Pooled(nn.FractionalMaxPool2d(2, output_size=3, _random_samples=samples))
    with pytest.raises(ModelFormatError, match=message):
        sr.from_pytorch(module, torch.randn(2, 2, 7, 7), dynamic_axes=axes)
    assert "forward" not in module.pool.__dict__


class FunctionalFractionalPools(nn.Module):
    """F.fractional_max_pool2d/3d called in a forward with fixed samples: a buffer (4 rows, for a batch of 3) with
    output_ratio and indices, a tensor attribute (a lifted constant), and a slice of the buffer (computed from a
    constant: the exporter folds it into one) on an unbatched image."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(6)
        self.register_buffer("image_samples", torch.rand(4, 2, 2, generator=gen))
        self.volume_samples = torch.rand(3, 2, 3, generator=gen)

    def forward(self, image: torch.Tensor, volume: torch.Tensor) -> tuple:
        values, where = nn.functional.fractional_max_pool2d(image, (2, 3), output_ratio=(0.5, 0.7), return_indices=True,
                                                            _random_samples=self.image_samples)
        return (values, where,
                nn.functional.fractional_max_pool3d(volume, 2, output_size=(2, 3, 3), _random_samples=self.volume_samples),
                nn.functional.fractional_max_pool2d(image[0], 3, output_size=(4, 5), _random_samples=self.image_samples[1:2]))


@pytest.mark.parametrize("exported", [False, True], ids=["module", "exported_program"])
def test_functional_fractional_max_pool_with_fixed_samples_matches_torch(exported):
    """torch.export keeps aten.fractional_max_pool2d/3d, which ours translates (``_torch_decomp``), the windows cut
    from the samples' values once the export has given them; values and indices equal torch's exactly."""
    module = FunctionalFractionalPools().eval()
    inputs = _fractional_inputs(0)
    source = torch.export.export(module, inputs) if exported else module
    session = sr.compile(sr.from_pytorch(source, inputs))
    for seed in (1, 2):
        assert_matches_torch(session, module, _fractional_inputs(seed), 0, 0, f"seed {seed}", check_shapes=True)


class FunctionalPool(nn.Module):
    """F.fractional_max_pool2d with the module's ``samples`` (None: torch draws them at every call), or with the
    model's second input."""

    def __init__(self, samples: Optional[torch.Tensor]):
        super().__init__()
        self.samples = samples

    def forward(self, x: torch.Tensor, *given: torch.Tensor) -> torch.Tensor:
        return nn.functional.fractional_max_pool2d(x, 2, output_size=3, _random_samples=given[0] if given else self.samples)


FUNCTIONAL_REFUSALS = {
    "random regions": (None, (), None, r"model 'FunctionalPool': F\.fractional_max_pool2d without _random_samples draws"
                                       r" random pooling regions at every call.*pass _random_samples="),
    "samples as an input": (None, (torch.rand(2, 2, 2),), None, r"fractional_max_pool2d: its _random_samples \(.+\) are not"
                                                                 r" a constant of the model"),
    "symbolic batch": (torch.rand(2, 2, 2), (), {0: {0: "N"}}, r"_random_samples of shape \(2, 2, 2\).*symbolic dims"),
    "outside [0, 1)": (torch.rand(2, 2, 2) + 1, (), None, r"fractional_max_pool2d: _random_samples must lie in \[0, 1\)"),
}


@pytest.mark.parametrize("key", FUNCTIONAL_REFUSALS)
def test_functional_fractional_max_pool_refusals_say_why(key):
    """Without samples the functional draws new regions at every call: refused, saying how to fix them.  Samples
    that are no constant of the model cannot fix the regions when exporting; the batch must be static, and the
    samples fit the input as for the module."""
    samples, given, axes, message = FUNCTIONAL_REFUSALS[key]
    with pytest.raises(ModelFormatError, match=message):
        sr.from_pytorch(FunctionalPool(samples), (torch.randn(2, 2, 7, 7), *given), dynamic_axes=axes)


def scatter_max(
    src: torch.Tensor, index: torch.Tensor, dim: int = -1, dim_size: Optional[int] = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch_scatter's ``scatter_max`` (a compiled operator there) in plain TorchScript, as code without torch_scatter
    writes it: the largest element sent to each place (0 where none is) and its position along ``dim`` (the first
    of equal ones; ``src.size(dim)`` where none is), torch_scatter's results without ``out``."""
    if dim < 0:
        dim = src.dim() + dim
    index = broadcast(index, src, dim)
    size = list(src.size())
    if dim_size is not None:
        size[dim] = dim_size
    elif index.numel() == 0:
        size[dim] = 0
    else:
        size[dim] = int(index.max()) + 1
    out = src.new_zeros(size).scatter_reduce_(dim, index, src, "amax", include_self=False)
    n = src.size(dim)
    positions = broadcast(torch.arange(n, device=src.device), src, dim)
    # (dtype=: without it the exporter makes a full_like of this int64 tensor float)
    candidates = torch.where(src == out.gather(dim, index), positions, torch.full_like(positions, n, dtype=torch.long))
    arg = torch.full(size, n, dtype=torch.long, device=src.device).scatter_reduce_(dim, index, candidates, "amin")
    return out, arg


class ScatterReductions(nn.Module):
    """scatter_max over a graph's edges (sized with places no edge reaches, and by the largest target), over whole
    numbers (ties: the first position wins), along the last dim; every other reduction of scatter_reduce_ without
    the original elements, and "mean" with them."""

    def __init__(self):
        super().__init__()
        self.message = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                                       torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                                       torch.Tensor, torch.Tensor, torch.Tensor]:
        messages = self.message(x).index_select(0, edges[0])
        whole = (x * 2).round().index_select(0, edges[0])
        sized, sized_arg = scatter_max(messages, edges[1], dim=0, dim_size=x.size(0) + 2)
        ties, ties_arg = scatter_max(whole, edges[1], dim=0)
        last, last_arg = scatter_max(whole.t(), edges[1], dim=-1, dim_size=x.size(0))
        index = edges[1].unsqueeze(-1).expand_as(messages)
        base = torch.ones(x.size(0) + 2, 4)
        return (sized, sized_arg, ties, ties_arg, last, last_arg,
                base.scatter_reduce(0, index, messages, "sum", include_self=False),
                base.scatter_reduce(0, index, messages, "prod", include_self=False),
                base.scatter_reduce(0, index, messages, "amin", include_self=False),
                base.scatter_reduce(0, index, messages, "mean", include_self=False),
                base.scatter_reduce(0, index, messages, "mean"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::sofie_rdf.errors.LegacyModelWarning")
def test_scripted_scatter_max_matches_torch():
    """Scripted, so through the TorchScript exporter, whose symbolic refuses scatter_reduce with include_self=False
    (scatter_max's) and "mean": ours (``_torchscript_fixes.scatter_reduce``) runs them.  Symbolic node and edge
    counts; values at rtol 1e-4 / atol 1e-5 (a Linear before them), positions exactly."""
    torch.manual_seed(0)
    module = torch.jit.script(ScatterReductions().eval())
    session = sr.compile(sr.from_pytorch(module, _graph(5, 8, 0), dynamic_axes={0: {0: "N"}, 1: {1: "E"}}))
    for seed, (nodes, edges) in enumerate([(5, 8), (9, 20)]):
        x, graph_edges = _graph(nodes, edges, seed + 1)
        assert_matches_torch(session, module, (x, graph_edges), RTOL, ATOL, f"seed {seed}", check_shapes=True)


class IntegerMeans(nn.Module):
    """scatter_reduce "mean" of integers with and without the original elements, along dim 0 and dim 1."""

    def forward(self, data: torch.Tensor, index: torch.Tensor, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                         torch.Tensor, torch.Tensor]:
        return (data.scatter_reduce(0, index, src, "mean"), data.scatter_reduce(0, index, src, "mean", include_self=False),
                data.t().scatter_reduce(1, index.t(), src.t(), "mean"),
                data.t().scatter_reduce(1, index.t(), src.t(), "mean", include_self=False))


def _integer_scatter(dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """data (5, 3) and src (9, 3) of whole numbers of both signs; indices repeat and never reach row 4 (it keeps
    data's elements without them), so that negative sums that the count does not divide are floored."""
    gen = torch.Generator().manual_seed(seed)
    data = torch.randint(-20, 21, (5, 3), generator=gen).to(dtype)
    return data, torch.randint(0, 4, (9, 3), generator=gen), torch.randint(-20, 21, (9, 3), generator=gen).to(dtype)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("scripted", [True, False], ids=["torchscript", "torch_export"])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_scatter_mean_floors_as_torch(dtype, scripted):
    """torch's integer mean is the sum floor-divided by the count; ONNX's Div truncates toward zero, so both
    exporters' translations (``_torchscript_fixes.mean_divided``) floor it: exactly torch's, of torch's type."""
    module = IntegerMeans()
    inputs = _integer_scatter(getattr(torch, dtype), 0)
    session = sr.compile(sr.load(torch.jit.script(module) if scripted else module, example_inputs=inputs))
    for seed in (1, 2):
        inputs = _integer_scatter(getattr(torch, dtype), seed)
        expected = module(*inputs)
        ours = session.infer(*(x.numpy() for x in inputs))
        means = inputs[0].double().scatter_reduce(0, inputs[1], inputs[2].double(), "mean")
        assert ((means < 0) & (means != means.round())).any()  # places where a truncated mean would differ
        for k, (a, b) in enumerate(zip(ours, expected)):
            assert a.dtype == b.numpy().dtype, f"output {k}, seed {seed}"
            np.testing.assert_array_equal(a, b.numpy(), err_msg=f"output {k}, seed {seed}")


class MeanAggregation(nn.Module):
    """Messages averaged at their targets by scatter_reduce "mean", without and with the original elements, and
    the reductions onnxscript translates itself, without them."""

    def __init__(self):
        super().__init__()
        self.message = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> tuple:
        messages = self.message(x).index_select(0, edges[0])
        index = edges[1].unsqueeze(-1).expand_as(messages)
        base = torch.ones(x.size(0), 4) * 0.5
        return tuple(base.scatter_reduce(0, index, messages, how, include_self=False) for how in ("mean", "amax", "sum")) + (
            base.scatter_reduce(0, index, messages, "mean"),)


def test_scatter_mean_through_torch_export_matches_torch():
    """onnxscript translates scatter_reduce's "mean" as a ScatterElements without reduction (each place kept one
    element sent to it, silently); ours (``_torch_decomp.scatter_reduce``) averages.  Symbolic node and edge
    counts, rtol 1e-4 / atol 1e-5."""
    torch.manual_seed(0)
    module = MeanAggregation().eval()
    session = sr.compile(sr.from_pytorch(module, _graph(5, 8, 0), dynamic_axes={0: {0: "N"}, 1: {1: "E"}}))
    for seed, (nodes, edges) in enumerate([(5, 8), (9, 20)]):
        inputs = _graph(nodes, edges, seed + 1)
        assert_matches_torch(session, module, inputs, RTOL, ATOL, f"seed {seed}", check_shapes=True)

