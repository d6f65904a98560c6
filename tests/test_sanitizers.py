"""Generated code of a dozen models across operator families, built with ``-fsanitize=address,undefined``.

Each model's header is compiled by g++ with AddressSanitizer and
UndefinedBehaviorSanitizer (any report aborts: ``-fno-sanitize-recover``),
run through both ``infer`` overloads, and its outputs compared with
onnxruntime's: no out-of-bounds access, no use of freed or uninitialized
arena memory that ASan sees, no signed overflow or misaligned access, no leak.
The same builds use ``-Wall -Wextra -Werror -Wshadow -Wconversion``: the
generated code has no implicit narrowing or shadowed names.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, ort_run, random_array
from onnx import helper
from test_codegen import assert_matches, blas_flags, build_and_run, needs_gxx

import sofie_rdf as sr

# With the -Wall -Wextra -Werror of build_and_run, whose -O2 the -O0 here overrides (the last -O counts): at -O2 the
# header's own `#pragma GCC optimize("O3")` made each build take 40 to 100 seconds, at -O0 it takes 4 to 9.  The
# sanitizers check the same operations unoptimized, every load and store instrumented; the optimized builds'
# warnings are test_codegen's and the native builds'.
SANITIZE = ["-O0", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
            "-Wshadow", "-Wconversion"]


def _init(*shape: int, seed: int = 0, scale: float = 0.5) -> np.ndarray:
    return random_array(shape, seed=seed) * scale


def mlp():
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["z"]), helper.make_node("Softmax", ["z"], ["y"])]
    init = {"w1": _init(16, 7), "b1": _init(16, seed=1), "w2": _init(16, 3, seed=2), "b2": _init(3, seed=3)}
    return make_model(nodes, [("x", np.float32, ["N", 7])], [("y", np.float32, ["N", 3])], init), {"N": 3}


def cnn():
    nodes = [
        helper.make_node("Conv", ["x", "k1", "c1"], ["a"], kernel_shape=[3, 3], pads=[1, 2, 1, 0], strides=[2, 1]),
        helper.make_node("Relu", ["a"], ["ar"]),
        helper.make_node("MaxPool", ["ar"], ["p"], kernel_shape=[2, 2], pads=[0, 1, 0, 1], strides=[1, 2]),
        helper.make_node("AveragePool", ["p"], ["q"], kernel_shape=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("ConvTranspose", ["q", "k2"], ["t"], kernel_shape=[3, 3], strides=[2, 2], output_padding=[1, 0]),
        helper.make_node("Conv", ["t", "k3"], ["g"], kernel_shape=[2, 2], group=2, dilations=[2, 1]),
        helper.make_node("GlobalAveragePool", ["g"], ["y"]),
    ]
    init = {"k1": _init(4, 2, 3, 3), "c1": _init(4, seed=1), "k2": _init(4, 2, 3, 3, seed=2), "k3": _init(4, 1, 2, 2, seed=3)}
    return make_model(nodes, [("x", np.float32, [2, 2, 9, 8])], [("y", np.float32, None)], init), {}


def winograd_tiles():
    """conv_winograd_tiles as the model's last nodes, whose outputs are vectors of exactly their size: rows of 6 tiles
    (12 pixels, F(2, 3)) interleaved whole vectors at a time write past each row into rows stored later, never past
    the output (batch 2: past the first image's last feature into the second's); with a fused 2 x 2 MaxPool; and
    F(4, 3) on 59 x 16 and 26 x 32 pixels, their planes packed (rows of 4 and 8 tiles), read past their rows as the
    packed transform loads them, and stored several output rows per merge (the last tile row's last rows dropped:
    past the output).  Their weights are smaller (F(4, 3) rounds to about 1e-5 of the outputs' scale, the test's
    atol)."""
    pad = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    nodes = [helper.make_node("Conv", ["x", "k1", "c1"], ["y"], **pad),
             helper.make_node("Conv", ["z", "k2", "c2"], ["a"], **pad), helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["w", "k3", "c3"], ["b"], **pad),
             helper.make_node("Conv", ["v", "k3", "c3"], ["d"], **pad)]
    init = {"k1": _init(32, 32, 3, 3, scale=0.1), "c1": _init(32, seed=1), "k2": _init(16, 16, 3, 3, seed=2, scale=0.1),
            "c2": _init(16, seed=3), "k3": _init(16, 16, 3, 3, seed=4, scale=0.05), "c3": _init(16, seed=5)}
    inputs = [("x", np.float32, [2, 32, 12, 12]), ("z", np.float32, [2, 16, 20, 22]), ("w", np.float32, [2, 16, 59, 16]),
              ("v", np.float32, [2, 16, 26, 32])]
    outputs = [("y", np.float32, None), ("p", np.float32, None), ("b", np.float32, None), ("d", np.float32, None)]
    return make_model(nodes, inputs, outputs, init), {}


def recurrent():
    h = 4
    nodes = [
        helper.make_node("LSTM", ["x", "wl", "rl", "bl", "lens"], ["yl"], hidden_size=h, direction="bidirectional"),
        helper.make_node("GRU", ["x", "wg", "rg", "", "lens"], ["", "hg"], hidden_size=h, linear_before_reset=1),
        helper.make_node("RNN", ["x", "wr", "rr"], ["", "hr"], hidden_size=h, activations=["Relu"], direction="reverse"),
    ]
    init = {"wl": _init(2, 4 * h, 3), "rl": _init(2, 4 * h, h, seed=1), "bl": _init(2, 8 * h, seed=2),
            "lens": np.array([5, 2, 0], np.int32), "wg": _init(1, 3 * h, 3, seed=3), "rg": _init(1, 3 * h, h, seed=4),
            "wr": _init(1, h, 3, seed=5), "rr": _init(1, h, h, seed=6)}
    outs = [("yl", np.float32, None), ("hg", np.float32, None), ("hr", np.float32, None)]
    return make_model(nodes, [("x", np.float32, [5, 3, 3])], outs, init), {}


def attention():
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]), helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1), helper.make_node("MatMul", ["p", "x"], ["c"]),
        helper.make_node("LayerNormalization", ["c", "gamma", "beta"], ["n"], axis=-1),
        helper.make_node("Gelu", ["n"], ["g"]), helper.make_node("Einsum", ["g", "x"], ["y"], equation="bid,bjd->bij"),
    ]
    init = {"wq": _init(6, 6), "wk": _init(6, 6, seed=1), "gamma": _init(6, seed=2) + 1, "beta": _init(6, seed=3)}
    return make_model(nodes, [("x", np.float32, ["B", 5, 6])], [("y", np.float32, None)], init, opset=20), {"B": 2}


def indexing():
    nodes = [
        helper.make_node("Gather", ["x", "idx"], ["g"], axis=1),
        helper.make_node("Slice", ["g", "starts", "ends", "axes", "steps"], ["s"]),
        helper.make_node("Pad", ["s", "pads"], ["p"], mode="reflect"),
        helper.make_node("Concat", ["p", "p"], ["c"], axis=2),
        helper.make_node("Split", ["c"], ["c1", "c2"], axis=1, num_outputs=2),
        helper.make_node("Tile", ["c1", "reps"], ["t"]),
        helper.make_node("Resize", ["t", "", "scales"], ["r"], mode="linear"),
        helper.make_node("TopK", ["s", "kk"], ["v", "i"], axis=-1),  # s has no ties along its last axis
        helper.make_node("CumSum", ["v", "ax"], ["cs"], reverse=1),
        helper.make_node("ReduceMean", ["cs"], ["m"], keepdims=1),
        helper.make_node("Where", ["cond", "cs", "m"], ["y"]),
        helper.make_node("GatherElements", ["s", "i"], ["ge"], axis=-1),
    ]
    init = {"idx": np.array([3, 0, 2, 2], np.int64), "starts": np.array([-1, 1], np.int64),
            "ends": np.array([-100, 6], np.int64), "axes": np.array([1, 2], np.int64), "steps": np.array([-1, 2], np.int64),
            "pads": np.array([0, 0, 1, 0, 0, 1], np.int64), "reps": np.array([1, 2, 1], np.int64),
            "scales": np.array([1, 1.5, 2], np.float32), "kk": np.array([3], np.int64), "ax": np.array(2, np.int64),
            "cond": np.array([True, False, True]).reshape(1, 1, 3)}
    # y: (2, 4, 3) from the TopK branch; r: the Resize branch
    outs = [("y", np.float32, None), ("ge", np.float32, None), ("i", np.int64, None), ("r", np.float32, None)]
    return make_model(nodes, [("x", np.float32, [2, 4, 7])], outs, init, opset=18), {}


def normalization():
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("InstanceNormalization", ["bn", "s", "b"], ["inn"]),
        helper.make_node("GroupNormalization", ["inn", "s", "b"], ["gn"], num_groups=2),
        helper.make_node("LpNormalization", ["gn"], ["lp"], axis=1, p=2),
        helper.make_node("LRN", ["lp"], ["y"], size=3),
    ]
    init = {"s": _init(4, seed=1) + 1, "b": _init(4, seed=2), "m": _init(4, seed=3), "v": np.abs(_init(4, seed=4)) + 0.5}
    return make_model(nodes, [("x", np.float32, [2, 4, 5, 3])], [("y", np.float32, None)], init, opset=21), {}


def pooling_and_layout():
    nodes = [
        helper.make_node("LpPool", ["x"], ["lp"], kernel_shape=[2, 2], p=3, pads=[1, 0, 0, 1]),
        helper.make_node("DepthToSpace", ["lp"], ["d2s"], blocksize=2, mode="CRD"),
        helper.make_node("SpaceToDepth", ["d2s"], ["s2d"], blocksize=2),
        helper.make_node("Resize", ["s2d", "", "scales"], ["near"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Resize", ["near", "", "scales"], ["cubic"], mode="cubic"),
        helper.make_node("GlobalMaxPool", ["cubic"], ["y"]),
    ]
    init = {"scales": np.array([1, 1, 1.5, 0.75], np.float32)}
    outs = [("y", np.float32, None), ("cubic", np.float32, None)]
    return make_model(nodes, [("x", np.float32, [1, 4, 7, 6])], outs, init, opset=18), {}


def reductions():
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["sum"], keepdims=0),
        helper.make_node("ReduceL2", ["x", "axes"], ["l2"]),
        helper.make_node("ReduceLogSumExp", ["x"], ["lse"], keepdims=1),
        helper.make_node("ArgMin", ["x"], ["amin"], axis=2, select_last_index=1),
        helper.make_node("LogSoftmax", ["x"], ["ls"], axis=1),
        helper.make_node("Hardmax", ["x"], ["hm"]),
        helper.make_node("CumSum", ["x", "ax"], ["cs"], exclusive=1),
    ]
    init = {"axes": np.array([0, 2], np.int64), "ax": np.array(1, np.int64)}
    outs = [(n, np.int64 if n == "amin" else np.float32, None) for n in ("sum", "l2", "lse", "amin", "ls", "hm", "cs")]
    return make_model(nodes, [("x", np.float32, [3, 4, 5])], outs, init, opset=18), {}


def integers_and_logic():
    nodes = [
        helper.make_node("Cast", ["x"], ["xi"], to=6),
        helper.make_node("Mul", ["xi", "three"], ["m"]), helper.make_node("Mod", ["m", "seven"], ["mod"]),
        helper.make_node("Greater", ["mod", "two"], ["g"]), helper.make_node("Not", ["g"], ["ng"]),
        helper.make_node("And", ["ng", "mask"], ["both"]),
        helper.make_node("Where", ["both", "mod", "m"], ["w"]), helper.make_node("Max", ["w", "mod", "two"], ["y"]),
        helper.make_node("Cast", ["mod"], ["u"], to=12),
        helper.make_node("BitShift", ["u", "shift"], ["bits"], direction="LEFT"),
    ]
    init = {"three": np.array(3, np.int32), "seven": np.array(7, np.int32), "two": np.array(2, np.int32),
            "mask": np.array([True, False, True, True, False, True]), "shift": np.array([1, 2, 3, 0, 1, 2], np.uint32)}
    outs = [("y", np.int32, None), ("bits", np.uint32, None)]  # (bool outputs: the test main has no vector<bool>)
    return make_model(nodes, [("x", np.float32, [4, 6])], outs, init, opset=18), {}


def matrices():
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["mm"]),
        helper.make_node("Trilu", ["mm"], ["tri"], upper=0),
        helper.make_node("Einsum", ["tri"], ["diag"], equation="bii->bi"),
        helper.make_node("DFT", ["sig", "", "axis"], ["spec"], onesided=1),
    ]
    init = {"w": _init(5, 5), "axis": np.array(1, np.int64)}
    outs = [("diag", np.float32, None), ("spec", np.float32, None)]
    return make_model(nodes, [("x", np.float32, [3, 5, 5]), ("sig", np.float32, [2, 8, 1])], outs, init, opset=20), {}


def half_precision():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Softmax", ["r"], ["y"])]
    init = {"w": _init(6, 4).astype(np.float16), "b": _init(4, seed=1).astype(np.float16)}
    return make_model(nodes, [("x", np.float16, [3, 6])], [("y", np.float16, None)], init, opset=17), {}


def scatter_and_pad():
    nodes = [
        helper.make_node("ScatterND", ["x", "idx", "upd"], ["sn"], reduction="add"),
        helper.make_node("ScatterElements", ["sn", "ei", "eu"], ["se"], axis=1, reduction="max"),
        helper.make_node("Pad", ["se", "pads", "val"], ["pc"], mode="constant"),
        helper.make_node("Pad", ["pc", "pads"], ["pe"], mode="edge"),
        helper.make_node("OneHot", ["oh_i", "depth", "oh_v"], ["oh"], axis=-1),
        helper.make_node("Expand", ["row", "eshape"], ["ex"]),
    ]
    init = {"idx": np.array([[1], [0], [1]], np.int64), "upd": _init(3, 5), "ei": np.array([[4, 0], [2, 2]], np.int64),
            "eu": _init(2, 2, seed=1), "pads": np.array([1, 0, 0, 2], np.int64), "val": np.array(9.0, np.float32),
            "oh_i": np.array([0, 3, -1], np.int64), "depth": np.array(4, np.int64),
            "oh_v": np.array([0.5, 2.0], np.float32), "row": _init(1, 5, seed=2), "eshape": np.array([3, 1], np.int64)}
    outs = [("pe", np.float32, None), ("oh", np.float32, None), ("ex", np.float32, None)]
    return make_model(nodes, [("x", np.float32, [2, 5])], outs, init, opset=18), {}


def edge_conv():
    """ParticleNet's EdgeConv blocks as the published files write them (test_edge_conv): EdgeConvChain's gathered
    blocks of 32 points x 4 neighbours (the last block partial: 5 points), its conv_pointwise layers on them, its
    pooling; the split first layers' 1-D convolutions."""
    from test_edge_conv import _net_onnx

    return _net_onnx(), {"N": 2, "P": 37}


MODELS = {"mlp": mlp, "cnn": cnn, "recurrent": recurrent, "attention": attention, "indexing": indexing,
          "normalization": normalization, "pooling_and_layout": pooling_and_layout, "reductions": reductions,
          "integers_and_logic": integers_and_logic, "matrices": matrices, "half_precision": half_precision,
          "scatter_and_pad": scatter_and_pad, "winograd_tiles": winograd_tiles, "edge_conv": edge_conv}


@needs_gxx
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_sanitizers_find_nothing(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    onnx_model, dims = MODELS[kind]()
    model = sr.load(onnx_model, name=kind)
    feeds = [random_array(tuple(dims.get(d, d) for d in t.shape), t.dtype, seed=9) for t in model.inputs]
    ref = ort_run(onnx_model, {t.name: a for t, a in zip(model.inputs, feeds)})
    vec, ptr, _, _ = build_and_run(tmp_path, model.code(), feeds, dims, link=[*blas_flags(), *SANITIZE])
    half = any(a.dtype == np.float16 for a in vec)  # rounded at every step in onnxruntime, in float in ours
    assert_matches(vec, ref, rtol=1e-2 if half else 1e-4, atol=1e-3 if half else 1e-5)
    for a, b in zip(ptr, vec):
        np.testing.assert_array_equal(a, b)
