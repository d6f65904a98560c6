"""ScatterND over broadcast index grids (``x[:, :, i, j] = v`` as PyTorch exports it) and its rewrite into
``sofie_rdf::GridScatterND`` (passes/index_grids.py).

Constructions: torch modules exported by the TorchScript exporter (``Expand``/``Unsqueeze``/``Concat``) and by
the dynamo exporter (``Unsqueeze``/``Concat``), and hand-built graphs for the forms an exporter may vary
(opset 11's ``Unsqueeze`` attribute, components broadcast over middle dims, slices of more
than one element, the stacked indices read elsewhere too).  Reference: onnxruntime on the same file, exact
(a scatter moves values; with ``accumulate`` the sums of duplicates are compared at float tolerance).
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run, random_array
from onnx import helper
from test_isa import ISA_FLAGS, RUNNABLE

import sofie_rdf as sr
from sofie_rdf.ir import Node
from sofie_rdf.ops import op_for

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::torch.jit.TracerWarning")
nn = torch.nn
F32 = np.float32


class PutPairs(nn.Module):
    """A pair bias as ParT builds it: data[:, :, i, j] = v."""

    def forward(self, data, i, j, v):
        out = data.clone()
        out[:, :, i, j] = v
        return out


class Accumulate(nn.Module):
    """data.index_put((i, j), v, accumulate=True): ScatterND with reduction "add"."""

    def forward(self, data, i, j, v):
        return data.index_put((i, j), v, accumulate=True)


def torchscript(module: nn.Module, examples: dict[str, np.ndarray], dynamic: dict) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(module, tuple(torch.from_numpy(v) for v in examples.values()), buffer, dynamo=False,
                      opset_version=17, input_names=list(examples), output_names=["y"], dynamic_axes=dynamic)
    return onnx.load_from_string(buffer.getvalue())


def planned_ops(model: onnx.ModelProto | sr.Model, target: str = "native") -> list[str]:
    model = model if isinstance(model, sr.Model) else sr.load(model)
    return [n.op_type for n in model.planned(target).model.nodes]


def check(model: onnx.ModelProto, feeds: dict, backend: str = "native", rtol: float = 0.0) -> None:
    session = sr.compile(sr.load(model), backend=backend)
    got = session.infer(*[feeds[i.name] for i in session.inputs])
    np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=rtol, atol=rtol * 1e-2)


def pair_feeds(n: int, c: int, p: int, m: int, seed: int) -> dict[str, np.ndarray]:
    """Distinct (i, j) pairs of a p x p plane, some given as negative indices."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(p * p, size=m, replace=False)
    i, j = flat // p, flat % p
    i = np.where(rng.random(m) < 0.3, i - p, i)
    return {"data": random_array((n, c, p, p), F32, seed), "i": i.astype(np.int64), "j": j.astype(np.int64),
            "v": random_array((n, c, m), F32, seed + 1)}


@pytest.fixture(scope="module")
def pairs_model() -> onnx.ModelProto:
    dynamic = {"data": {0: "N", 2: "P", 3: "P"}, "i": {0: "M"}, "j": {0: "M"}, "v": {0: "N", 2: "M"}}
    return torchscript(PutPairs(), pair_feeds(2, 3, 5, 4, 0), dynamic)


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_index_put_pairs(pairs_model, backend):
    """One GridScatterND replaces the Expands, Unsqueezes and Concat; every batch, plane and pair count."""
    assert {"Expand", "Concat", "ScatterND"} <= {n.op_type for n in pairs_model.graph.node}
    ops = planned_ops(pairs_model)
    assert "GridScatterND" in ops and not {"Expand", "Concat", "ScatterND"} & set(ops)
    for n, c, p, m in ((2, 3, 5, 4), (1, 3, 9, 40), (4, 3, 2, 1), (3, 3, 7, 0)):
        check(pairs_model, pair_feeds(n, c, p, m, seed=p + m), backend)


def test_index_put_fixed_shapes():
    """With every shape fixed, constant folding turns the Expanded ranges over batch and channels into
    constant (T..., 1) parts: they become components shrunk to (N, 1, 1) and (C, 1), no (T..., 1) weights."""
    feeds = pair_feeds(3, 4, 6, 7, seed=4)
    model = sr.load(torchscript(PutPairs(), feeds, {}))
    planned = model.planned("native").model
    assert [n.op_type for n in planned.nodes] == ["Reshape", "GridScatterND"]  # the Reshape of v: a view
    assert sorted(v.shape for v in planned.initializers.values()) == [(3, 1, 1), (4, 1)]
    check(torchscript(PutPairs(), feeds, {}), feeds)


@pytest.mark.parametrize("isa", RUNNABLE)
def test_index_put_on_instruction_set(pairs_model, isa):
    """The grid's offset loop vectorizes differently per instruction set: 300 pairs are a block of 256 and a
    tail; an index out of range in the tail is still found."""
    session = sr.compile(sr.load(pairs_model), backend="native", flags=ISA_FLAGS[isa])
    feeds = pair_feeds(2, 3, 40, 300, seed=6)
    np.testing.assert_array_equal(session.infer(*feeds.values()), ort_run(pairs_model, feeds)[0])
    feeds["i"][290] = -41
    with pytest.raises(sr.SofieError, match="index -41 is out of range for an axis of size 40"):
        session.infer(*feeds.values())


def test_index_put_out_of_range(pairs_model):
    feeds = pair_feeds(1, 3, 4, 3, seed=1)
    feeds["j"][1] = 4
    session = sr.compile(sr.load(pairs_model), backend="native")
    with pytest.raises(sr.SofieError, match=r"ScatterND node '[^']+' index 4 is out of range for an axis of size 4"):
        session.infer(*feeds.values())
    feeds["j"][1] = -5
    with pytest.raises(sr.SofieError, match="index -5 is out of range"):
        session.infer(*feeds.values())


@pytest.mark.parametrize("shapes", [((6, 5), (7,), (7,), (7,)), ((4, 5), (3, 1), (1, 4), (3, 4))],
                         ids=["duplicates", "broadcast_indices"])
def test_index_put_accumulate(shapes, backend="native"):
    """Duplicated tuples sum (reduction "add"); index tensors broadcast against each other make the grid."""
    data, i, j, v = shapes
    rng = np.random.default_rng(5)
    feeds = {"data": random_array(data, F32, 1), "i": rng.integers(-data[0], data[0], i),
             "j": rng.integers(-data[1], data[1], j), "v": random_array(v, F32, 2)}
    model = torchscript(Accumulate(), feeds, {})
    assert "GridScatterND" in planned_ops(model)
    check(model, feeds, backend, rtol=1e-6)


def test_dynamo_export():
    """The dynamo exporter stacks Unsqueezes of the index tensors without Expand: fused as well."""
    pytest.importorskip("onnxscript")
    feeds = pair_feeds(2, 3, 6, 5, seed=2)
    program = torch.onnx.export(PutPairs(), tuple(torch.from_numpy(v) for v in feeds.values()), dynamo=True,
                                verbose=False)
    model = program.model_proto
    assert "GridScatterND" in planned_ops(model)
    check(model, feeds)


# ---- hand-built graphs ------------------------------------------------------------------------------------

def grid_model(components: list[tuple[str, tuple]], data: tuple, updates: tuple, index_type=np.int64,
               opset: int = 17, expand_to: tuple | None = None, indices_out: bool = False) -> onnx.ModelProto:
    """ScatterND(data, Concat(Unsqueeze(Expand?(c_j)), axis=-1), updates) over input components."""
    nodes, consts = [], {}
    parts = []
    for name, _ in components:
        src = name
        if expand_to is not None:
            consts[f"{name}_shape"] = np.array(expand_to, np.int64)
            nodes.append(helper.make_node("Expand", [name, f"{name}_shape"], [f"{name}_x"]))
            src = f"{name}_x"
        if opset >= 13:
            consts.setdefault("last", np.array([-1], np.int64))
            nodes.append(helper.make_node("Unsqueeze", [src, "last"], [f"{name}_u"]))
        else:
            nodes.append(helper.make_node("Unsqueeze", [src], [f"{name}_u"], axes=[-1]))
        parts.append(f"{name}_u")
    nodes.append(helper.make_node("Concat", parts, ["indices"], axis=-1))
    nodes.append(helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"]))
    inputs = [("data", F32, list(data)), ("updates", F32, list(updates))]
    inputs += [(name, index_type, list(shape)) for name, shape in components]
    outputs = [("y", F32, list(data))] + ([("indices", index_type, None)] if indices_out else [])
    return make_model(nodes, inputs, outputs, consts, opset=opset)


def grid_feeds(model: onnx.ModelProto, seed: int = 0, unique: bool = True) -> dict[str, np.ndarray]:
    """Inputs of a grid_model: components drawn so that the tuples are distinct (ScatterND's "none" leaves
    the winner of duplicates unspecified)."""
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    data = shapes["data"]
    names = [i.name for i in model.graph.input if i.name not in ("data", "updates")]
    feeds = {"data": random_array(data, F32, seed), "updates": random_array(shapes["updates"], F32, seed + 1)}
    rng = np.random.default_rng(seed)
    for r, name in enumerate(names):
        size = int(np.prod(shapes[name]))
        values = rng.permutation(data[r])[:size] if unique else rng.integers(0, data[r], size)
        values = np.where(rng.random(size) < 0.3, values - data[r], values)  # negatives count from the end
        dtype = onnx.helper.tensor_dtype_to_np_dtype(
            next(i for i in model.graph.input if i.name == name).type.tensor_type.elem_type)
        feeds[name] = values.reshape(shapes[name]).astype(dtype)
    return feeds


GRIDS = {  # components (name, shape), data, updates, index type, opset, Expand target (None: no Expand)
    # tuples (3, 4) from a column and a row: each axis of data indexed by one component
    "column_row": ([("a", (3, 1)), ("b", (1, 4))], (5, 6), (3, 4), np.int64, 17, (3, 4)),
    # opset 11's Unsqueeze axes attribute, a component broadcast over the middle dim
    "opset11": ([("a", (2, 1, 1)), ("b", (1, 1, 3)), ("c", (2, 1, 3))], (4, 5, 6), (2, 2, 3), np.int64, 11,
                (2, 2, 3)),
    # two of three dims indexed: each tuple addresses a slice of 6 values
    "slices": ([("a", (4, 1)), ("b", (1, 3))], (5, 4, 6), (4, 3, 6), np.int64, 17, (4, 3)),
    # a component of fewer dims than the tuples (aligned from the right, as numpy broadcasts)
    "lower_rank": ([("a", (3, 1)), ("b", (4,))], (3, 7), (3, 4), np.int64, 17, (3, 4)),
    # no Expand: components of the tuples' shape, one per data dim
    "rows": ([("a", (5,)), ("b", (5,)), ("c", (5,))], (5, 5, 5), (5,), np.int64, 17, None),
}


@pytest.mark.parametrize("backend", ["native", "jit"])
@pytest.mark.parametrize("case", GRIDS, ids=list(GRIDS))
def test_hand_built_grids(case, backend):
    components, data, updates, index_type, opset, expand_to = GRIDS[case]
    model = grid_model(components, data, updates, index_type, opset, expand_to)
    assert "GridScatterND" in planned_ops(model)
    check(model, grid_feeds(model), backend)


def test_stacked_indices_read_elsewhere_stay():
    """The Concat stays for its other reader (a graph output); the scatter still reads the components."""
    model = grid_model([("a", (3, 1)), ("b", (1, 4))], (5, 6), (3, 4), expand_to=(3, 4), indices_out=True)
    ops = planned_ops(model)
    assert "GridScatterND" in ops and "Concat" in ops
    feeds = grid_feeds(model)
    session = sr.compile(sr.load(model), backend="native")
    got = session.infer(*[feeds[i.name] for i in session.inputs])
    for a, b in zip(got, ort_run(model, feeds)):
        np.testing.assert_array_equal(a, b)


def test_other_index_tensors_are_left_alone():
    """Parts that are not an Unsqueeze of the last axis (here tensors given as (M, 1)): ScatterND as it is."""
    nodes = [helper.make_node("Concat", ["a", "b"], ["indices"], axis=-1),
             helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"])]
    model = make_model(nodes, [("data", F32, [5, 6]), ("updates", F32, [3]), ("a", np.int64, [3, 1]),
                               ("b", np.int64, [3, 1])], [("y", F32, [5, 6])])
    ops = planned_ops(model)
    assert "ScatterND" in ops and "GridScatterND" not in ops
    feeds = {"data": random_array((5, 6), F32, 0), "updates": random_array((3,), F32, 1),
             "a": np.array([[0], [4], [-1]]), "b": np.array([[5], [0], [2]])}
    check(model, feeds)


def test_cuda_target_keeps_scatter_nd(pairs_model):
    """Planning rewrites only for a target with the kernel (``Target.grid_scatter_op``)."""
    model = sr.load(pairs_model)
    assert "GridScatterND" in planned_ops(model, "native")
    cuda = planned_ops(model, "cuda")
    assert "ScatterND" in cuda and "GridScatterND" not in cuda


@pytest.mark.parametrize("reduction", ["none", "add", "max"])
def test_reference_is_scatter_nd(reduction):
    """The operator's numpy reference (what constant folding would use) equals ScatterND on the stacked grid."""
    rng = np.random.default_rng(3)
    data, updates = rng.standard_normal((4, 5, 3)), rng.standard_normal((2, 4, 3))
    a, b = np.array([[1], [-2]]), rng.permutation(5)[:4] - 2
    grid = op_for(Node("GridScatterND", ["d", "u", "a", "b"], ["y"], {"reduction": reduction}, "g", "sofie_rdf", 1))
    plain = op_for(Node("ScatterND", ["d", "i", "u"], ["y"], {"reduction": reduction}, "s", "", 18))
    indices = np.stack(np.broadcast_arrays(a, b), axis=-1)
    np.testing.assert_array_equal(grid.evaluate([data, updates, a, b])[0], plain.evaluate([data, indices, updates])[0])
