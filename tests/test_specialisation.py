"""Shapes the published taggers leave to run time, settled symbolically where that is possible, and the models
one build cannot serve built for the dims of each call (sofie_rdf._specialise), against onnxruntime.

The constructs are those of the files CMS ships (cms-data/RecoBTag-Combined), reproduced small:

* weaver's ParT pair embedding: ``x.unsqueeze(-1).repeat(1, 1, 1, P)`` (a Tile whose repeats are computed from
  the particle count) and the pairs below the diagonal (Trilu, NonZero), over particles of several kinds whose
  counts the exporter named apart (``n_input_1`` for the features, ``n_input_4`` for the 4-vectors of the same
  particles), which the attention then adds together: one build, the dims equated and checked per call;
* ``torch.onnx.export``'s ``x.squeeze(0)`` of a dynamic batch: an ``If`` whose branches differ in rank;
* pads computed from a dim (``(4 - L % 4) % 4``): shape arithmetic the operator cannot take symbolically.
"""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run
from onnx import TensorProto, helper

import sofie_rdf as sr
from sofie_rdf._specialise import LIMIT_VARIABLE, SpecialisingSession

RTOL, ATOL = 1e-4, 1e-5
torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- models


class _PairTagger(torch.nn.Module):
    """A ParT in miniature, as weaver writes it for ONNX: two kinds of particles (features and 4-vectors of
    each given apart), a pair embedding of the 4-vectors (repeat + the pairs below the diagonal) as the attention
    bias, the features' mask added to it."""

    def __init__(self, dim: int = 8, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.embed = torch.nn.Linear(3, dim)
        self.pair = torch.nn.Linear(1, heads)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.out = torch.nn.Linear(dim, 2)

    def pairs(self, v: torch.Tensor) -> torch.Tensor:  # v (N, 4, P) -> (N, heads, P, P)
        n, _, p = v.shape
        below = torch.ones(p, p).tril(-1).nonzero()
        i, j = below[:, 0], below[:, 1]
        x = v.unsqueeze(-1).repeat(1, 1, 1, p)  # exported as Tile with repeats [1, 1, 1, P]
        xi, xj = x[:, :, i, j], x[:, :, j, i]
        mass = ((xi + xj) ** 2).sum(1, keepdim=True).transpose(1, 2)  # (N, pairs, 1)
        fts = self.pair(torch.log1p(mass)).transpose(1, 2)  # (N, heads, pairs)
        bias = torch.zeros(n, self.heads, p, p)
        bias[:, :, i, j] = fts
        bias[:, :, j, i] = fts
        return bias

    def forward(self, fa, fb, va, vb):  # features (N, P_kind, 3), 4-vectors (N, P_kind, 4)
        x = torch.cat([fa, fb], dim=1)
        v = torch.cat([va, vb], dim=1).transpose(1, 2)
        n, p, _ = x.shape
        padded = (x.abs().sum(-1) == 0).unsqueeze(1)  # (N, 1, P): a padded particle has zero features
        h = self.embed(x)
        q, k, val = self.qkv(h).chunk(3, dim=-1)
        pv = v.shape[2]  # the 4-vectors' own count, which the exporter names apart from the features'
        bias = self.pairs(v).reshape(n * self.heads, pv, pv)
        q, k, val = (t.reshape(n, p, self.heads, -1).transpose(1, 2).reshape(n * self.heads, p, -1) for t in (q, k, val))
        scores = q @ k.transpose(1, 2) + bias
        scores = scores.masked_fill(padded.repeat_interleave(self.heads, 0), -1e4)  # the mask meets the pair bias
        att = torch.softmax(scores, -1) @ val
        pooled = att.reshape(n, self.heads, p, -1).mean(2).reshape(n, -1)
        return torch.softmax(self.out(pooled), -1)


def _pair_tagger_onnx() -> onnx.ModelProto:
    torch.manual_seed(0)
    names = ["fa", "fb", "va", "vb"]
    example = (torch.randn(2, 3, 3), torch.randn(2, 2, 3), torch.randn(2, 3, 4), torch.randn(2, 2, 4))
    axes = {"fa": {0: "N", 1: "n_fa"}, "fb": {0: "N", 1: "n_fb"}, "va": {0: "N", 1: "n_va"}, "vb": {0: "N", 1: "n_vb"}}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(_PairTagger().eval(), example, buffer, dynamo=False, opset_version=15, input_names=names,
                          output_names=["y"], dynamic_axes={**axes, "y": {0: "N"}})
    return onnx.load_from_string(buffer.getvalue())


def _jets(n: int, a: int, b: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {"fa": rng.standard_normal((n, a, 3)), "fb": rng.standard_normal((n, b, 3)),
             "va": rng.standard_normal((n, a, 4)), "vb": rng.standard_normal((n, b, 4))}
    feeds["fb"][:, b - 1:] = 0  # the last neutral particle is padding
    return {k: v.astype(np.float32) for k, v in feeds.items()}


def _squeezing_onnx() -> onnx.ModelProto:
    """torch's ``y.squeeze(0)`` of a dynamic batch: If(Shape(y)[0] == 1) then Squeeze else Identity."""

    class Squeezing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.linear(x).squeeze(0).sum(-1)

    torch.manual_seed(1)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(Squeezing().eval(), (torch.randn(2, 5, 4),), buffer, dynamo=False, opset_version=13,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N", 1: "P"}})
    return onnx.load_from_string(buffer.getvalue())


def _padding_onnx() -> onnx.ModelProto:
    """(N, L, 3) padded along L to a multiple of 4, the pads computed from L as an exporter computes them."""
    ints = {"one": np.array(1, np.int64), "four": np.array(4, np.int64), "zero": np.array([0], np.int64),
            "z4": np.zeros(4, np.int64), "z1": np.zeros(1, np.int64)}
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "one"], ["l"]),
             helper.make_node("Mod", ["l", "four"], ["r"]), helper.make_node("Sub", ["four", "r"], ["d"]),
             helper.make_node("Mod", ["d", "four"], ["p"]), helper.make_node("Unsqueeze", ["p", "zero"], ["p1"]),
             helper.make_node("Concat", ["z4", "p1", "z1"], ["pads"], axis=0),
             helper.make_node("Pad", ["x", "pads"], ["y"])]
    return make_model(nodes, [("x", np.float32, ["N", "L", 3])], [("y", np.float32, ["N", None, 3])], ints)


def _check(sess, model: onnx.ModelProto, feeds: dict) -> None:
    out = sess.infer(*feeds.values())
    ref = ort_run(model, feeds)[0]
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------- settled symbolically


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_pair_embedding_over_named_particle_counts_is_one_build(backend):
    model = _pair_tagger_onnx()
    ops = {n.op_type for n in model.graph.node}
    assert {"Tile", "Trilu", "NonZero", "ScatterND"} <= ops, ops  # the constructs of the published ParT
    with warnings.catch_warnings():
        warnings.simplefilter("error", sr.SpecialisationWarning)
        loaded = sr.load(model)
        sess = sr.compile(loaded, backend=backend)
    assert loaded.needs_dims is None and not isinstance(sess, SpecialisingSession)
    assert [t.shape for t in sess.inputs] == [("N", "n_fa", 3), ("N", "n_fb", 3), ("N", "n_va", 4), ("N", "n_vb", 4)]
    for n, a, b in [(1, 3, 2), (3, 5, 1), (2, 1, 4), (1, 1, 1)]:
        _check(sess, model, _jets(n, a, b, seed=a * 10 + b))


def test_named_counts_that_disagree_are_refused_naming_the_input():
    sess = sr.compile(sr.load(_pair_tagger_onnx()), backend="native")
    feeds = _jets(2, 3, 2, seed=0)
    feeds["vb"] = np.zeros((2, 3, 4), np.float32)  # 3 + 3 vectors for 3 + 2 particles
    with pytest.raises(sr.ShapeError, match=r"input 'vb' axis 1 \(n_vb\) must equal"):
        sess.infer(*feeds.values())


def test_equated_dims_are_remembered_with_the_node():
    prepared = sr.load(_pair_tagger_onnx())
    equated = prepared._prepared.equated_dims
    assert list(equated) == ["n_vb"] and "broadcasts n_fa + n_fb against n_va + n_vb" in equated["n_vb"]


# ---------------------------------------------------------------- built per call


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_rank_changing_if_is_built_for_each_batch_size(backend):
    model = _squeezing_onnx()
    assert "If" in {n.op_type for n in model.graph.node}
    loaded = sr.load(model)
    assert loaded.needs_dims is not None and loaded.needs_dims.dims == {"N"}
    sess = sr.compile(loaded, backend=backend)
    assert isinstance(sess, SpecialisingSession)
    with pytest.warns(sr.SpecialisationWarning, match=r"If node '/If'.*for the sizes of N") as said:
        for n in (1, 2, 3, 1, 2):
            _check(sess, model, {"x": np.random.default_rng(n).standard_normal((n, 5, 4)).astype(np.float32)})
    assert len([w for w in said if issubclass(w.category, sr.SpecialisationWarning)]) == 1  # said once
    assert sorted(sess.builds) == [(("N", 1),), (("N", 2),), (("N", 3),)]  # one build per signature
    assert [t.shape for t in sess.outputs] == [(2, "P")]  # the last call's


def test_pads_from_a_dim_fix_that_dim_only():
    model = _padding_onnx()
    sess = sr.compile(sr.load(model), backend="native")
    with pytest.warns(sr.SpecialisationWarning, match="Pad node"):
        for n, length in [(1, 5), (3, 5), (2, 8), (4, 1)]:
            _check(sess, model, {"x": np.random.default_rng(length).standard_normal((n, length, 3)).astype(np.float32)})
    assert sorted(sess.builds) == [(("L", 1),), (("L", 5),), (("L", 8),)]  # N stays symbolic in each


def test_builds_past_the_limit_drop_the_least_recently_used(monkeypatch):
    monkeypatch.setenv(LIMIT_VARIABLE, "2")
    model = _padding_onnx()
    sess = sr.compile(sr.load(model), backend="native")
    x = {length: np.ones((1, length, 3), np.float32) for length in (1, 2, 3)}
    with pytest.warns(sr.SpecialisationWarning):
        sess.infer(x[1]), sess.infer(x[2]), sess.infer(x[1]), sess.infer(x[3])
    assert list(sess.builds) == [(("L", 1),), (("L", 3),)]  # L=2 was used least recently
    # on disk, the order in which builds were made or found: L=1's library (loaded here) goes
    order = json.loads(sess._index.order.read_text())
    assert [key for key, _ in order] == [sess._index.key({"L": 2}), sess._index.key({"L": 3})]
    dropped = sess._index.key({"L": 1})
    assert not (sr._cache.cache_dir() / "index" / f"{dropped}.json").exists()
    _check(sess, model, {"x": x[1]})  # still served in this process
    _check(sess, model, {"x": x[2]})  # found on disk again


def test_a_later_session_finds_the_builds_on_disk(monkeypatch):
    model = _padding_onnx()
    x = np.ones((2, 6, 3), np.float32)
    with pytest.warns(sr.SpecialisationWarning):
        first = sr.compile(sr.load(model), backend="native").infer(x)
    import sofie_rdf.targets.cpu.native as native

    def no_build(*args, **kwargs):
        raise AssertionError("the library should come from the index")

    monkeypatch.setattr(native, "build_native", no_build)
    monkeypatch.setattr(sr.Model, "code", no_build)  # not even generated again
    with pytest.warns(sr.SpecialisationWarning):
        again = sr.compile(sr.load(model), backend="native").infer(x)
    np.testing.assert_array_equal(first, again)


def test_generating_code_needs_the_dims_given(tmp_path):
    loaded = sr.load(_squeezing_onnx())
    with pytest.raises(sr.NeedsDimsError, match=r"If node '/If'.*sr.load\(\.\.\., dims="):
        loaded.generate(tmp_path)
    with pytest.raises(sr.NeedsDimsError):
        _ = loaded.outputs
    files = loaded.specialised({"N": 1}).generate(tmp_path)
    assert files.header.exists()
    assert sr.load(_squeezing_onnx(), dims={"N": 4}).needs_dims is None


def test_a_branch_chosen_by_values_is_refused_clearly():
    """An If deciding on the input's values, its branches of different rank: no size of the dims settles it."""
    then_branch = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["t"], keepdims=0)], "then", [],
                                    [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                                    [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Greater", ["m", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch)]
    model = make_model(nodes, [("x", np.float32, ["N", 3])], [("y", np.float32, None)],
                       {"zero": np.array(0, np.float32)})
    sess = sr.compile(sr.load(model), backend="native")
    with pytest.raises(sr.ShapeError, match="depends on the inputs' values"):
        sess.infer(np.ones((2, 3), np.float32))
    fixed = make_model(nodes, [("x", np.float32, [2, 3])], [("y", np.float32, None)], {"zero": np.array(0, np.float32)})
    with pytest.raises(sr.ShapeError, match="depends on the inputs' values"):
        sr.load(fixed)


def test_rdataframe_needs_the_dims_fixed():
    pytest.importorskip("ROOT")
    from sofie_rdf.compile import cling_session_of

    with pytest.raises(sr.NeedsDimsError, match=r"If node '/If'.*RDataFrame calls one C\+\+ Session per event"):
        cling_session_of(sr.load(_squeezing_onnx()), "native")
