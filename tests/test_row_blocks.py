"""Row blocks (planning/row_blocks.py): a batch of independent rows runs in cache-sized blocks.

Each case compares with onnxruntime on a batch of several blocks plus a ragged last block, and checks from
the generated code whether blocks were chosen: only where no operator mixes the rows.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import make_model
from onnx import helper, numpy_helper

import sofie_rdf as sr


def _block(model) -> int | None:
    """Rows per block in the generated code, None when infer runs the batch whole."""
    found = re.search(r"const size_t block_ = (\d+);", sr.load(model).code().header)
    return int(found.group(1)) if found else None


def _mlp(last: helper.NodeProto | None = None) -> tuple:
    rng = np.random.default_rng(1)
    inits = {"w1": rng.standard_normal((7, 64)).astype(np.float32), "b1": rng.standard_normal(64).astype(np.float32),
             "w2": rng.standard_normal((64, 5)).astype(np.float32), "b2": rng.standard_normal(5).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["m"]), helper.make_node("Add", ["m", "b2"], ["z"])]
    nodes.append(last or helper.make_node("Softmax", ["z"], ["y"], axis=1))
    return nodes, inits


def _check(model, x: np.ndarray, backend: str) -> None:
    from conftest import ort_run

    ours = sr.compile(sr.load(model), backend=backend)(x)
    np.testing.assert_allclose(ours, ort_run(model, {"x": x})[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_mlp_in_blocks(backend):
    """Gemm, Relu, MatMul + Add, Softmax over the features: blocks of rows; a batch of 3 blocks and a part,
    and a batch smaller than one block, match onnxruntime."""
    nodes, inits = _mlp()
    model = make_model(nodes, [("x", np.float32, ["N", 7])], [("y", np.float32, ["N", 5])], inits)
    block = _block(model)
    assert block is not None and block > 1
    rng = np.random.default_rng(2)
    for rows in (3 * block + 7, block - 1, 1):
        _check(model, rng.standard_normal((rows, 7)).astype(np.float32), backend)


def _cnn(batch) -> tuple:
    """A per-sample CNN (Conv + BatchNorm + Relu, MaxPool, Flatten, Gemm) on 3 x 16 x 16 images."""
    rng = np.random.default_rng(3)
    inits = {"w": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
             "scale": rng.random(8).astype(np.float32) + 0.5, "bias": rng.standard_normal(8).astype(np.float32),
             "mean": rng.standard_normal(8).astype(np.float32), "var": rng.random(8).astype(np.float32) + 0.5,
             "fc": rng.standard_normal((8 * 8 * 8, 10)).astype(np.float32) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["y"])]
    return make_model(nodes, [("x", np.float32, [batch, 3, 16, 16])], [("y", np.float32, [batch, 10])], inits), rng


def test_cnn_in_blocks():
    """The CNN with an open batch: blocks of a few images."""
    model, rng = _cnn("N")
    block = _block(model)
    assert block is not None
    x = rng.standard_normal((2 * block + 3, 3, 16, 16)).astype(np.float32)
    _check(model, x, "native")


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_static_batch_in_blocks(backend):
    """The CNN exported with a fixed batch of 96 images: the graph is planned for a block of images that
    divides 96, infer (same interface: pointers to 96 images) runs the blocks, and the Python Session, the
    profile and the vector-returning infer see the whole batch."""
    model, rng = _cnn(96)
    m = sr.load(model)
    code = m.code()
    block = _block(model)
    assert block is not None and block < 96 and 96 % block == 0
    assert "void infer(const float *tensor_x, float *tensor_y)" in code.header
    assert "row_ < 96; row_ += block_" in code.header and f"std::vector<float> output0_({96 * 10});" in code.header
    assert m.planned().model.tensors["x"].shape == (block, 3, 16, 16)
    assert code.inputs[0][1].shape == (96, 3, 16, 16) and code.outputs[0][1].shape == (96, 10)
    assert m.planned("cuda").memory.row_block is None  # a GPU kernel runs the whole batch at once
    x = rng.standard_normal((96, 3, 16, 16)).astype(np.float32)
    _check(model, x, backend)
    if backend == "native":
        prof = sr.compile(m, backend=backend).profile(x, repeat=2, warmup=1)
        assert all(n.shapes.startswith("96x") for n in prof.nodes)


def test_static_batch_held_by_the_graph_runs_whole():
    """A fixed batch written into the graph (a Reshape to (96, -1), as some exporters write Flatten) cannot be
    run in blocks: the open-batch graph does not lead with its batch, so infer runs the 96 images whole."""
    model, rng = _cnn(96)
    flatten = next(n for n in model.graph.node if n.op_type == "Flatten")
    reshape = helper.make_node("Reshape", ["p", "shape"], ["f"])
    model.graph.node.insert(list(model.graph.node).index(flatten), reshape)
    model.graph.node.remove(flatten)
    model.graph.initializer.append(numpy_helper.from_array(np.array([96, -1], np.int64), "shape"))
    assert _block(model) is None
    _check(model, rng.standard_normal((96, 3, 16, 16)).astype(np.float32), "native")


@pytest.mark.parametrize(("batch", "blocked"), [(1000, True), (1009, False)])
def test_static_batch_of_a_dense_model(batch, blocked):
    """A static batch runs in blocks of a divisor of it; for a prime batch that divisor would be one row, and
    the dense layers' products would lose more than the cache gains: it runs whole."""
    nodes, inits = _mlp()
    model = make_model(nodes, [("x", np.float32, [batch, 7])], [("y", np.float32, [batch, 5])], inits)
    block = _block(model)
    assert (block is not None and batch % block == 0) if blocked else block is None
    _check(model, np.random.default_rng(8).standard_normal((batch, 7)).astype(np.float32), "native")


def test_particles_flattened_into_rows_in_blocks():
    """A per-particle layer run on (N x 30) rows, as exporters write it (Reshape of N x 30 x 4 to (-1, 4),
    MatMul, Reshape back to (-1, 30, 16)), then a sum over the particles: the intermediates lead with 30 N,
    a whole number of rows per event, and the batch runs in blocks of events."""
    rng = np.random.default_rng(9)
    inits = {"flat": np.array([-1, 4], np.int64), "back": np.array([-1, 30, 16], np.int64),
             "w1": rng.standard_normal((4, 16)).astype(np.float32), "axes": np.array([1], np.int64),
             "w2": rng.standard_normal((16, 3)).astype(np.float32)}
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["rows"]), helper.make_node("MatMul", ["rows", "w1"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]), helper.make_node("Reshape", ["r", "back"], ["p"]),
             helper.make_node("ReduceSum", ["p", "axes"], ["s"], keepdims=0),
             helper.make_node("MatMul", ["s", "w2"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 30, 4])], [("y", np.float32, ["N", 3])], inits, opset=13)
    block = _block(model)
    assert block is not None
    _check(model, rng.standard_normal((3 * block + 5, 30, 4)).astype(np.float32), "native")


def test_rows_stacked_along_the_batch_are_not_blocked():
    """Concat of two (N, 4) tensors along the rows gives (2 N, 4) whose rows a Reshape to (-1, 8) pairs up
    across events (row i of the output is rows 2i and 2i + 1 of the stack): leading with a multiple of N is
    not enough when a node other than a view changes the multiple, so the batch runs whole."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Concat", ["r", "x"], ["c"], axis=0),
             helper.make_node("Reshape", ["c", "pairs"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 4])], [("y", np.float32, ["N", 8])],
                       {"pairs": np.array([-1, 8], np.int64)}, opset=13)
    assert _block(model) is None
    _check(model, np.random.default_rng(10).standard_normal((5000, 4)).astype(np.float32), "native")


@pytest.mark.parametrize("case", ["softmax_over_batch", "reduce_over_batch", "cumsum_over_batch", "divide_by_batch_size",
                                  "two_dims"])
def test_rows_that_mix_are_not_blocked(case):
    """Operators that mix rows (Softmax over axis 0, a reduction or a running sum over the batch,
    arithmetic on the batch size from Shape) or a second symbolic dim: infer runs the batch whole, and
    matches onnxruntime on a batch larger than a block would be."""
    x_shape = ["N", 7]
    if case == "softmax_over_batch":
        nodes, inits = _mlp(helper.make_node("Softmax", ["z"], ["y"], axis=0))
    elif case == "reduce_over_batch":
        nodes, inits = _mlp(helper.make_node("ReduceMean", ["z"], ["y"], axes=[0], keepdims=1))
    elif case == "cumsum_over_batch":
        nodes, inits = _mlp(helper.make_node("CumSum", ["z", "axis"], ["y"]))
        inits["axis"] = np.array(0, np.int64)
    elif case == "divide_by_batch_size":
        nodes, inits = _mlp(helper.make_node("Div", ["z", "n"], ["y"]))
        nodes += [helper.make_node("Shape", ["x"], ["s"], end=1), helper.make_node("Cast", ["s"], ["n"], to=1)]
    else:
        nodes, inits = _mlp(helper.make_node("Add", ["z", "z2"], ["y"]))
        nodes += [helper.make_node("ReduceMean", ["x2"], ["z2"], axes=[0], keepdims=1)]
    inputs = [("x", np.float32, x_shape)] + ([("x2", np.float32, ["M", 5])] if case == "two_dims" else [])
    out_shape = [1, 5] if case == "reduce_over_batch" else ["N", 5]
    model = make_model(nodes, inputs, [("y", np.float32, out_shape)], inits, opset=15)
    assert _block(model) is None
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 7)).astype(np.float32)
    if case == "two_dims":
        from conftest import ort_run

        x2 = rng.standard_normal((4, 5)).astype(np.float32)
        ours = sr.compile(sr.load(model), backend="native")(x, x2)
        np.testing.assert_allclose(ours, ort_run(model, {"x": x, "x2": x2})[0], rtol=1e-4, atol=1e-5)
    else:
        _check(model, x, "native")


def test_pytorch_flatten_is_blocked():
    """A PyTorch CNN exported with a dynamic batch (x.flatten(1): Shape/Gather/Concat/Reshape in the graph)
    still runs in blocks: the shape arithmetic is folded at generation time."""
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3), nn.Sigmoid()).eval()
    x = torch.randn(5, 2, 8, 8)
    model = sr.load(net, example_inputs=x, dynamic_axes={0: {0: "N"}})
    assert re.search(r"const size_t block_ = \d+;", model.code().header)
    big = torch.randn(300, 2, 8, 8)
    with torch.no_grad():
        ref = net(big).numpy()
    np.testing.assert_allclose(sr.compile(model, backend="native")(big.numpy()), ref, rtol=1e-4, atol=1e-5)


def test_deep_sets_in_blocks():
    """A per-particle network summed over the particles (ReduceSum over axis 1), then Split, Concat,
    Gemm, Slice, Where and ArgMax over the features: each works within a row, so the batch runs in
    blocks; two outputs of different widths and types."""
    from conftest import ort_run

    rng = np.random.default_rng(5)
    inits = {"w1": rng.standard_normal((4, 16)).astype(np.float32), "axes": np.array([1], np.int64),
             "split": np.array([8, 8], np.int64), "w2": rng.standard_normal((16, 4)).astype(np.float32),
             "b2": rng.standard_normal(4).astype(np.float32), "starts": np.array([0], np.int64),
             "ends": np.array([3], np.int64), "sl_axes": np.array([1], np.int64),
             "zero": np.zeros(1, np.float32), "slope": np.full(1, 0.1, np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("ReduceSum", ["r", "axes"], ["s"], keepdims=0),
             helper.make_node("Split", ["s", "split"], ["a", "b"], axis=1),
             helper.make_node("Concat", ["b", "a"], ["c"], axis=1),
             helper.make_node("Gemm", ["c", "w2", "b2"], ["g"]),
             helper.make_node("Slice", ["g", "starts", "ends", "sl_axes"], ["sl"]),
             helper.make_node("Greater", ["sl", "zero"], ["pos"]), helper.make_node("Mul", ["sl", "slope"], ["neg"]),
             helper.make_node("Where", ["pos", "sl", "neg"], ["y"]),
             helper.make_node("ArgMax", ["g"], ["k"], axis=1, keepdims=1)]
    model = make_model(nodes, [("x", np.float32, ["N", 8, 4])], [("y", np.float32, ["N", 3]), ("k", np.int64, ["N", 1])],
                       inits, opset=13)
    block = _block(model)
    assert block is not None
    x = rng.standard_normal((2 * block + 5, 8, 4)).astype(np.float32)
    y, k = sr.compile(sr.load(model), backend="native")(x)
    ref_y, ref_k = ort_run(model, {"x": x})
    np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(k, ref_k)


def test_embedding_and_pad_in_blocks():
    """Particle ids looked up in an embedding table (Gather on a constant), averaged, padded along the
    features (Pad with none on the batch dim): blocks; int64 input."""
    from conftest import ort_run

    rng = np.random.default_rng(6)
    inits = {"table": rng.standard_normal((20, 6)).astype(np.float32), "axes": np.array([1], np.int64),
             "pads": np.array([0, 1, 0, 2], np.int64), "w": rng.standard_normal((9, 2)).astype(np.float32)}
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], axis=0),
             helper.make_node("ReduceMean", ["e"], ["m"], axes=[1], keepdims=0),
             helper.make_node("Pad", ["m", "pads"], ["p"]), helper.make_node("MatMul", ["p", "w"], ["y"])]
    model = make_model(nodes, [("ids", np.int64, ["N", 5])], [("y", np.float32, ["N", 2])], inits, opset=15)
    block = _block(model)
    assert block is not None
    ids = rng.integers(0, 20, (3 * block + 1, 5)).astype(np.int64)
    ours = sr.compile(sr.load(model), backend="native")(ids)
    np.testing.assert_allclose(ours, ort_run(model, {"ids": ids})[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["gather_rows", "pad_shifts_rows"])
def test_row_moves_are_not_blocked(case):
    """Gather picking rows of a batch tensor along the batch dim (Gather.rows_independent refuses it), and
    Pad that adds a row in front and crops one at the end (the shape stays N; the crop's run-time
    condition on N keeps the batch whole before Pad's own refusal of pads on the batch dim is asked):
    both move rows, so the batch runs whole."""
    from conftest import ort_run

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2000, 4)).astype(np.float32)
    feeds = {"x": x}
    if case == "gather_rows":
        nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gather", ["r", "idx"], ["y"], axis=0)]
        inputs, inits = [("x", np.float32, ["N", 4]), ("idx", np.int64, ["N"])], {}
        feeds["idx"] = rng.permutation(len(x)).astype(np.int64)
    else:
        nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Pad", ["r", "pads"], ["y"])]
        inputs, inits = [("x", np.float32, ["N", 4])], {"pads": np.array([1, 0, -1, 0], np.int64)}
    model = make_model(nodes, inputs, [("y", np.float32, ["N", 4])], inits, opset=15)
    assert _block(model) is None
    ours = sr.compile(sr.load(model), backend="native")(*feeds.values())
    np.testing.assert_array_equal(ours, ort_run(model, feeds)[0])
