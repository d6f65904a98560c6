"""Small ONNX models of each family the CUDA target covers, built by hand (no exporter: fast), for the CUDA
tests: compile checks without a GPU (tests/test_cuda.py) and numerical checks on one or in the host emulation
(tests/test_cuda_numerics.py)."""

from __future__ import annotations

import numpy as np
import onnx
from conftest import make_model
from onnx import helper

# Names no C++ identifier may take as they are: the generated code must stay safe and compile.
HOSTILE = {"x": "in put*/ \"q\"", "h": "class", "r": "??=#define", "y": "out\\n"}


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def mlp(hostile: bool = False) -> onnx.ModelProto:
    """Gemm + Relu (fused), Gemm with transB and a bias, Softmax; batch N. ``hostile``: tensor and node names
    that are C++ keywords, comment closers, trigraphs and quotes."""
    rng = _rng(0)
    n = HOSTILE if hostile else {k: k for k in HOSTILE}
    nodes = [helper.make_node("Gemm", [n["x"], "W1", "B1"], [n["h"]], name="fc1 */"),
             helper.make_node("Relu", [n["h"]], [n["r"]], name="relu\"1"),
             helper.make_node("Gemm", [n["r"], "W2", "B2"], ["z"], name="fc2", transB=1),
             helper.make_node("Softmax", ["z"], [n["y"]], name="softmax", axis=-1)]
    weights = {"W1": rng.standard_normal((8, 16)).astype(np.float32), "B1": rng.standard_normal(16).astype(np.float32),
               "W2": rng.standard_normal((4, 16)).astype(np.float32), "B2": rng.standard_normal(4).astype(np.float32)}
    return make_model(nodes, [(n["x"], np.float32, ["N", 8])], [(n["y"], np.float32, ["N", 4])], weights, name="mlp")


def cnn() -> onnx.ModelProto:
    """Conv 2-D + BatchNorm (folded) + Relu (fused), MaxPool with padding, a grouped strided Conv, AveragePool with
    count_include_pad, a Conv 1-D view through Reshape, GlobalAveragePool, Flatten, Gemm."""
    rng = _rng(1)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["bn"], name="bn1"),
        helper.make_node("Relu", ["bn"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", group=2, strides=[2, 1], dilations=[1, 2],
                         pads=[1, 2, 1, 2]),
        helper.make_node("AveragePool", ["c2"], ["p2"], name="pool2", kernel_shape=[2, 2], pads=[0, 0, 1, 1],
                         count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["p2"], ["gp"], name="global"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="head", transB=1),
    ]
    weights = {
        "w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "b1": rng.standard_normal(8).astype(np.float32),
        "g": rng.random(8).astype(np.float32) + 0.5, "beta": rng.standard_normal(8).astype(np.float32),
        "mean": rng.standard_normal(8).astype(np.float32), "var": rng.random(8).astype(np.float32) + 0.5,
        "w2": rng.standard_normal((6, 4, 3, 3)).astype(np.float32) * 0.3,
        "w3": rng.standard_normal((5, 6)).astype(np.float32), "b3": rng.standard_normal(5).astype(np.float32),
    }
    return make_model(nodes, [("x", np.float32, ["N", 3, 12, 10])], [("y", np.float32, ["N", 5])], weights, name="cnn")


def conv1d3d() -> onnx.ModelProto:
    """Conv 1-D with MaxPool 1-D, and Conv 3-D with AveragePool 3-D and GlobalMaxPool, on two inputs."""
    rng = _rng(2)
    nodes = [
        helper.make_node("Conv", ["a", "wa"], ["ca"], name="conv1d", pads=[2, 2], strides=[2]),
        helper.make_node("MaxPool", ["ca"], ["ya"], name="pool1d", kernel_shape=[2], ceil_mode=1),
        helper.make_node("Conv", ["b", "wb", "bb"], ["cb"], name="conv3d", pads=[1, 1, 1, 1, 1, 1]),
        helper.make_node("Tanh", ["cb"], ["tb"], name="tanh3d"),
        helper.make_node("AveragePool", ["tb"], ["pb"], name="pool3d", kernel_shape=[2, 2, 2]),
        helper.make_node("GlobalMaxPool", ["pb"], ["yb"], name="global3d"),
    ]
    weights = {"wa": rng.standard_normal((4, 2, 5)).astype(np.float32), "wb": rng.standard_normal((3, 2, 3, 3, 3)).astype(
        np.float32) * 0.2, "bb": rng.standard_normal(3).astype(np.float32)}
    return make_model(nodes, [("a", np.float32, ["N", 2, 17]), ("b", np.float32, ["N", 2, 4, 6, 5])],
                      [("ya", np.float32, ["N", 4, 8]), ("yb", np.float32, ["N", 3, 1, 1, 1])], weights, name="conv1d3d")


def attention() -> onnx.ModelProto:
    """A transformer block over (N, P, 16) with 2 heads: LayerNorm, Q/K/V products, head split by Reshape and
    Transpose, batched MatMul, scale and Softmax, GELU in its Erf form, a residual Add."""
    rng = _rng(3)
    d, heads = 16, 2
    w = {k: rng.standard_normal((d, d)).astype(np.float32) * 0.3 for k in ("wq", "wk", "wv", "wo", "w1")}
    w.update({"ln_s": rng.random(d).astype(np.float32) + 0.5, "ln_b": rng.standard_normal(d).astype(np.float32),
              "heads": np.array([0, 0, heads, d // heads], np.int64), "merge": np.array([0, 0, d], np.int64),
              "scale": np.array(1 / np.sqrt(d // heads), np.float32), "sqrt2": np.array(np.sqrt(2), np.float32),
              "one": np.array(1, np.float32), "half": np.array(0.5, np.float32)})
    nodes = [helper.make_node("LayerNormalization", ["x", "ln_s", "ln_b"], ["ln"], name="ln", axis=-1, epsilon=1e-5)]
    for k in "qkv":
        nodes += [helper.make_node("MatMul", ["ln", f"w{k}"], [f"{k}0"], name=f"proj_{k}"),
                  helper.make_node("Reshape", [f"{k}0", "heads"], [f"{k}1"], name=f"split_{k}"),
                  helper.make_node("Transpose", [f"{k}1"], [f"{k}h"], name=f"heads_{k}",
                                   perm=[0, 2, 3, 1] if k == "k" else [0, 2, 1, 3])]
    nodes += [
        helper.make_node("MatMul", ["qh", "kh"], ["s0"], name="scores"),
        helper.make_node("Mul", ["s0", "scale"], ["s1"], name="scale"),
        helper.make_node("Softmax", ["s1"], ["pr"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["pr", "vh"], ["o0"], name="mix"),
        helper.make_node("Transpose", ["o0"], ["o1"], name="merge_heads", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["o1", "merge"], ["o2"], name="merge"),
        helper.make_node("MatMul", ["o2", "wo"], ["o3"], name="out_proj"),
        helper.make_node("Add", ["o3", "x"], ["res"], name="residual"),
        helper.make_node("MatMul", ["res", "w1"], ["f0"], name="ffn"),
        helper.make_node("Div", ["f0", "sqrt2"], ["g0"], name="gelu_div"),
        helper.make_node("Erf", ["g0"], ["g1"], name="gelu_erf"),
        helper.make_node("Add", ["g1", "one"], ["g2"], name="gelu_add"),
        helper.make_node("Mul", ["f0", "g2"], ["g3"], name="gelu_mul"),
        helper.make_node("Mul", ["g3", "half"], ["y"], name="gelu_half"),
    ]
    return make_model(nodes, [("x", np.float32, ["N", "P", d])], [("y", np.float32, ["N", "P", d])], w,
                      name="attention")


def recurrent() -> onnx.ModelProto:
    """A bidirectional LSTM with biases, peepholes, initial states and sequence lengths (Y, Y_h, Y_c); a
    batch-major GRU with linear_before_reset and clip; a GRU resetting before its product; an RNN with LeakyRelu."""
    rng = _rng(4)
    h = 5

    def w(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    nodes = [
        helper.make_node("LSTM", ["s", "lw", "lr", "lb", "lens", "h0", "c0", "lp"], ["yl", "yl_h", "yl_c"], name="lstm",
                         hidden_size=h, direction="bidirectional"),
        helper.make_node("GRU", ["sb", "gw", "gr", "gb"], ["yg", "yg_h"], name="gru", hidden_size=h, layout=1,
                         linear_before_reset=1, clip=2.5),
        helper.make_node("GRU", ["s", "gw", "gr", "gb", "lens"], ["yg2"], name="gru_reset_first", hidden_size=h,
                         direction="reverse"),
        helper.make_node("RNN", ["s", "rw", "rr", "rb"], ["yr"], name="rnn", hidden_size=h, activations=["LeakyRelu"],
                         activation_alpha=[0.1]),
    ]
    weights = {"lw": w(2, 4 * h, 4), "lr": w(2, 4 * h, h), "lb": w(2, 8 * h), "lp": w(2, 3 * h), "h0": w(2, 2, h),
               "c0": w(2, 2, h), "gw": w(1, 3 * h, 4), "gr": w(1, 3 * h, h), "gb": w(1, 6 * h),
               "rw": w(1, h, 4), "rr": w(1, h, h), "rb": w(1, 2 * h)}
    return make_model(nodes, [("s", np.float32, [3, 2, 4]), ("sb", np.float32, [2, 3, 4]), ("lens", np.int32, [2])],
                      [("yl", np.float32, [3, 2, 2, h]), ("yl_h", np.float32, [2, 2, h]), ("yl_c", np.float32, [2, 2, h]),
                       ("yg", np.float32, [2, 3, 1, h]), ("yg_h", np.float32, [2, 1, h]), ("yg2", np.float32, [3, 1, 2, h]),
                       ("yr", np.float32, [3, 1, 2, h])], weights, opset=14, name="recurrent")


def unsupported() -> onnx.ModelProto:
    """Operators the CPU target runs and the CUDA target has no kernels for yet (refused by name, all at once)."""
    nodes = [helper.make_node("CumSum", ["x", "axis"], ["c"], name="cumsum"),
             helper.make_node("Trilu", ["c"], ["a"], name="trilu"),
             helper.make_node("Einsum", ["x", "x"], ["e"], name="einsum", equation="ij,ij->i")]
    return make_model(nodes, [("x", np.float32, [2, 3])], [("a", np.float32, [2, 3]), ("e", np.float32, [2])],
                      {"axis": np.array(1, np.int64)}, name="unsupported")


def dims_in_arithmetic() -> onnx.ModelProto:
    """x / P with P read off x's shape (Shape, Gather, Cast): a value the dims give, fed to a kernel, as exporters
    write scales and means."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "one"], ["p"], name="length", axis=0),
             helper.make_node("Cast", ["p"], ["pf"], name="to_float", to=onnx.TensorProto.FLOAT),
             helper.make_node("Div", ["x", "pf"], ["y"], name="mean_scale")]
    return make_model(nodes, [("x", np.float32, ["N", "P", 4])], [("y", np.float32, ["N", "P", 4])],
                      {"one": np.array(1, np.int64)}, name="dims_in_arithmetic")


def movement_and_reductions() -> onnx.ModelProto:
    """Slice (a negative step: 2 of 4 columns), Concat, Split, Expand, Where, and reductions over adjacent and
    non-adjacent axes."""
    nodes = [
        helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["sl"], name="reverse_slice"),
        helper.make_node("Concat", ["x", "sl"], ["cat"], name="concat", axis=2),
        helper.make_node("Split", ["cat", "parts"], ["s0", "s1"], name="split", axis=2),
        helper.make_node("Expand", ["r", "shape"], ["ex"], name="expand"),
        helper.make_node("Greater", ["s0", "ex"], ["mask"], name="greater"),
        helper.make_node("Where", ["mask", "s0", "s1"], ["w"], name="where"),
        helper.make_node("ReduceMean", ["w", "ax1"], ["mean"], name="mean", keepdims=1),
        helper.make_node("ReduceMax", ["w", "ax02"], ["top"], name="max", keepdims=0),
        helper.make_node("ReduceLogSumExp", ["w", "ax2"], ["lse"], name="logsumexp", keepdims=0),
    ]
    weights = {"starts": np.array([-1], np.int64), "ends": np.array([-100], np.int64), "axes": np.array([2], np.int64),
               "steps": np.array([-2], np.int64), "parts": np.array([3, 3], np.int64),
               "shape": np.array([3, 3], np.int64),
               "ax1": np.array([1], np.int64), "ax02": np.array([0, 2], np.int64), "ax2": np.array([2], np.int64)}
    return make_model(nodes, [("x", np.float32, ["N", 3, 4]), ("r", np.float32, [1, 3])],
                      [("mean", np.float32, ["N", 1, 3]), ("top", np.float32, [3]), ("lse", np.float32, ["N", 3])],
                      weights, opset=18, name="movement")


def message_passing() -> onnx.ModelProto:
    """One round of a graph network's message passing, edges and the k nearest neighbours given while running:
    features of each edge's ends (Gather), a message (MatMul, Relu), summed onto the receivers (ScatterElements
    add) and maximised (ScatterND max), GatherElements, TopK over distances, ConvTranspose on the node grid."""
    rng = _rng(6)
    nodes = [
        helper.make_node("Gather", ["h", "senders"], ["hs"], name="gather_senders", axis=0),
        helper.make_node("MatMul", ["hs", "w"], ["m0"], name="message"),
        helper.make_node("Relu", ["m0"], ["m"], name="message_relu"),
        helper.make_node("ScatterElements", ["h", "receivers_2d", "m"], ["agg"], name="aggregate", axis=0,
                         reduction="add"),
        helper.make_node("ScatterND", ["agg", "receivers_nd", "m"], ["agg_max"], name="aggregate_max", reduction="max"),
        helper.make_node("GatherElements", ["agg_max", "receivers_2d"], ["back"], name="gather_elements", axis=0),
        helper.make_node("TopK", ["dist", "k"], ["near", "near_idx"], name="knn", axis=-1, largest=0),
        helper.make_node("Unsqueeze", ["agg_max", "axes01"], ["grid"], name="as_image"),
        helper.make_node("ConvTranspose", ["grid", "wt"], ["up"], name="upsample", strides=[2, 1], pads=[0, 1, 1, 1],
                         output_padding=[1, 0]),
    ]
    weights = {"w": rng.standard_normal((4, 4)).astype(np.float32), "k": np.array([3], np.int64),
               "axes01": np.array([0, 1], np.int64), "wt": rng.standard_normal((1, 2, 3, 3)).astype(np.float32)}
    return make_model(nodes, [("h", np.float32, [6, 4]), ("senders", np.int64, ["E"]),
                              ("receivers_2d", np.int64, ["E", 4]), ("receivers_nd", np.int64, ["E", 1]),
                              ("dist", np.float32, [6, 6])],
                      [("back", np.float32, ["E", 4]), ("near", np.float32, [6, 3]), ("near_idx", np.int64, [6, 3]),
                       ("up", np.float32, [1, 2, 13, 4])], weights, opset=18, name="message_passing")


def normalization_and_heads() -> onnx.ModelProto:
    """InstanceNormalization, GroupNormalization (per-channel parameters), Pad (reflect; edge with a crop;
    constant), ArgMax (last index of ties) and ArgMin."""
    rng = _rng(7)
    nodes = [
        helper.make_node("InstanceNormalization", ["x", "s4", "b4"], ["inorm"], name="instance_norm", epsilon=1e-3),
        helper.make_node("GroupNormalization", ["inorm", "s4", "b4"], ["gnorm"], name="group_norm", num_groups=2),
        helper.make_node("Pad", ["gnorm", "pads_reflect"], ["pr"], name="pad_reflect", mode="reflect"),
        helper.make_node("Pad", ["pr", "pads_crop"], ["pe"], name="pad_edge", mode="edge"),
        helper.make_node("Pad", ["pe", "pads_constant", "fill"], ["pc"], name="pad_constant"),
        helper.make_node("Round", ["pc"], ["rounded"], name="ties"),
        helper.make_node("ArgMax", ["rounded"], ["amax"], name="argmax", axis=1, keepdims=0, select_last_index=1),
        helper.make_node("ArgMin", ["pc"], ["amin"], name="argmin", axis=-1),
    ]
    weights = {"s4": rng.random(4).astype(np.float32) + 0.5, "b4": rng.standard_normal(4).astype(np.float32),
               "pads_reflect": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64),
               "pads_crop": np.array([0, 0, -1, 1, 0, 0, 1, -2], np.int64),
               "pads_constant": np.array([0, 1, 0, 0, 0, 0, 1, 1], np.int64), "fill": np.array(0.5, np.float32)}
    return make_model(nodes, [("x", np.float32, ["N", 4, 5, 3])],
                      [("pc", np.float32, ["N", 5, 9, 6]), ("amax", np.int64, ["N", 9, 6]),
                       ("amin", np.int64, ["N", 5, 9, 1])], weights, opset=21, name="normalization_and_heads")


def rms_norm() -> onnx.ModelProto:
    """RMSNormalization over the last two axes, scale broadcast over them (opset 23)."""
    rng = _rng(8)
    nodes = [helper.make_node("RMSNormalization", ["x", "scale"], ["y"], name="rms", axis=-2, epsilon=1e-5)]
    return make_model(nodes, [("x", np.float32, ["N", 3, 4, 5])], [("y", np.float32, ["N", 3, 4, 5])],
                      {"scale": rng.random((4, 1)).astype(np.float32) + 0.5}, opset=23, name="rms_norm")


def batched_matmul() -> onnx.ModelProto:
    """MatMuls over a symbolic batch: (N, 3, 4, 5) x (N, 3, 5, 2), both operands per event (the batch dims
    merge into one strided product), and (N, 3, 4, 5) x a (1, 3, 5, 2) weight broadcast over N (they cannot)."""
    rng = _rng(7)
    nodes = [helper.make_node("MatMul", ["a", "b"], ["ab"], name="per_event"),
             helper.make_node("MatMul", ["a", "w"], ["aw"], name="broadcast_weight"),
             helper.make_node("Concat", ["ab", "aw"], ["y"], name="both", axis=-1)]
    return make_model(nodes, [("a", np.float32, ["N", 3, 4, 5]), ("b", np.float32, ["N", 3, 5, 2])],
                      [("y", np.float32, ["N", 3, 4, 4])], {"w": rng.standard_normal((1, 3, 5, 2)).astype(np.float32)},
                      name="batched_matmul")


def fused_attention() -> onnx.ModelProto:
    """Self-attention as PyTorch exports it, which planning fuses into one Attention node: Q, K, V projections
    split into 2 heads (Reshape, Transpose), MatMul(Q, Transpose(K)), the scale, Softmax, MatMul with V."""
    rng = _rng(8)
    d, heads = 16, 2
    w = {k: rng.standard_normal((d, d)).astype(np.float32) * 0.3 for k in ("wq", "wk", "wv")}
    w.update({"heads": np.array([0, 0, heads, d // heads], np.int64), "merge": np.array([0, 0, d], np.int64),
              "scale": np.array(1 / np.sqrt(d // heads), np.float32)})
    nodes = []
    for k in "qkv":
        nodes += [helper.make_node("MatMul", ["x", f"w{k}"], [f"{k}0"], name=f"proj_{k}"),
                  helper.make_node("Reshape", [f"{k}0", "heads"], [f"{k}1"], name=f"split_{k}"),
                  helper.make_node("Transpose", [f"{k}1"], [f"{k}h"], name=f"heads_{k}", perm=[0, 2, 1, 3])]
    nodes += [helper.make_node("Transpose", ["kh"], ["kt"], name="keys_t", perm=[0, 1, 3, 2]),
              helper.make_node("MatMul", ["qh", "kt"], ["s0"], name="scores"),
              helper.make_node("Mul", ["s0", "scale"], ["s1"], name="scale"),
              helper.make_node("Softmax", ["s1"], ["pr"], name="softmax", axis=-1),
              helper.make_node("MatMul", ["pr", "vh"], ["o0"], name="mix"),
              helper.make_node("Transpose", ["o0"], ["o1"], name="merge_heads", perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["o1", "merge"], ["y"], name="merge")]
    return make_model(nodes, [("x", np.float32, ["N", "P", d])], [("y", np.float32, ["N", "P", d])], w,
                      name="fused_attention")


def attention_op() -> onnx.ModelProto:
    """ONNX Attention (opset 23) nodes the CUDA kernel covers beyond the fused chains: 4-D grouped-query heads
    (4 query heads on 2 kv heads) with a bool mask broadcast over the batch and the causal frontier; 3-D packed
    heads of 40 (more than a chunk of the head) with an additive mask, an explicit scale, 35 queries and 40 keys
    (more than a tile of each); one head of 144 (wider than the output columns a tile holds in shared memory)."""
    rng = _rng(9)
    keep = rng.random((4, 6, 7)) > 0.3
    keep[..., 0] = True  # every query attends a key: onnxruntime gives NaN rows where the operator gives zeros
    nodes = [helper.make_node("Attention", ["q", "k", "v", "keep"], ["y"], name="grouped", is_causal=1),
             helper.make_node("Attention", ["q3", "k3", "v3", "bias"], ["y3"], name="packed", q_num_heads=2,
                              kv_num_heads=2, scale=0.2),
             helper.make_node("Attention", ["q4", "k4", "v4"], ["y4"], name="wide", q_num_heads=1, kv_num_heads=1)]
    weights = {"keep": keep, "bias": rng.standard_normal((35, 40)).astype(np.float32)}
    inputs = [("q", np.float32, ["N", 4, 6, 8]), ("k", np.float32, ["N", 2, 7, 8]), ("v", np.float32, ["N", 2, 7, 8]),
              ("q3", np.float32, ["N", 35, 80]), ("k3", np.float32, ["N", 40, 80]), ("v3", np.float32, ["N", 40, 80]),
              ("q4", np.float32, ["N", 5, 144]), ("k4", np.float32, ["N", 9, 144]), ("v4", np.float32, ["N", 9, 144])]
    outputs = [("y", np.float32, ["N", 4, 6, 8]), ("y3", np.float32, ["N", 35, 80]), ("y4", np.float32, ["N", 5, 144])]
    return make_model(nodes, inputs, outputs, weights, opset=23, name="attention_op")


def conv_gemm() -> onnx.ModelProto:
    """Convolutions of every implicit-GEMM tile: 3 -> 40 channels (64-feature tiles; 27 taps: two chunks of the
    reduction) with a bias and Relu fused, 40 -> 24 (32-feature tiles, strided, dilated), two groups of 12 -> 6
    (16-feature tiles), and a 3-D 1 -> 16 convolution as the calorimeter CNNs' first layer."""
    rng = _rng(10)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="wide", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="strided", strides=[2, 1], dilations=[1, 2],
                              pads=[0, 1, 0, 1]),
             helper.make_node("Conv", ["c2", "w3", "b3"], ["y"], name="grouped", group=2, kernel_shape=[1, 3]),
             helper.make_node("Conv", ["v", "w4", "b4"], ["y3"], name="volume", pads=[1, 1, 1, 1, 1, 1])]
    weights = {"w1": rng.standard_normal((40, 3, 3, 3)).astype(np.float32) * 0.3,
               "b1": rng.standard_normal(40).astype(np.float32),
               "w2": rng.standard_normal((24, 40, 3, 2)).astype(np.float32) * 0.1,
               "w3": rng.standard_normal((12, 12, 1, 3)).astype(np.float32) * 0.2,
               "b3": rng.standard_normal(12).astype(np.float32),
               "w4": rng.standard_normal((16, 1, 3, 3, 3)).astype(np.float32) * 0.3,
               "b4": rng.standard_normal(16).astype(np.float32)}
    return make_model(nodes, [("x", np.float32, ["N", 3, 9, 7]), ("v", np.float32, ["N", 1, 5, 6, 4])],
                      [("y", np.float32, ["N", 12, 4, 5]), ("y3", np.float32, ["N", 16, 5, 6, 4])], weights,
                      name="conv_gemm")
