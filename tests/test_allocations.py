"""The allocation-free ``infer`` allocates nothing once warmed up.

A dozen models across the operator families are generated into one C++
program that replaces the global ``operator new``/``delete`` and interposes
``malloc``/``calloc``/``realloc`` (glibc's ``__libc_*`` underneath), calls each
Session's allocation-free ``infer`` a few times to warm up (arenas sized by
symbolic or run-time dims grow on first use) and then counts the heap
allocations of further calls, which must be zero.  The program also prints the
outputs of its last call, compared with onnxruntime, so the counted calls are
known to have done the work.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run, random_array
from onnx import helper

import sofie_rdf as sr
from sofie_rdf import _root
from sofie_rdf.targets._cxx.cpp import cpp_type

# One xdist worker runs this module (make test's --dist loadgroup): its fixture builds one program.
pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="interposes glibc's malloc"),
              pytest.mark.xdist_group("allocations")]

WARMUP_CALLS, COUNTED_CALLS = 3, 20
F32 = np.float32


@dataclass
class Case:
    """One model of the program: its ONNX graph, input values and the dim values infer takes."""

    name: str
    model: onnx.ModelProto
    feeds: dict[str, np.ndarray]
    dims: tuple[int, ...] = ()


def _weights(seed: int, *shapes: tuple) -> list[np.ndarray]:
    return [random_array(s, F32, seed + k) * 0.5 for k, s in enumerate(shapes)]


def _mlp() -> Case:
    w1, b1, w2, b2 = _weights(1, (16, 8), (16,), (3, 16), (3,))
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["g"], transB=1), helper.make_node("Sigmoid", ["g"], ["y"])]
    model = make_model(nodes, [("x", F32, ["N", 8])], [("y", F32, ["N", 3])], dict(w1=w1, b1=b1, w2=w2, b2=b2))
    return Case("mlp", model, {"x": random_array((5, 8), F32, 2)}, dims=(5,))


def _conv_pool() -> Case:
    (w,) = _weights(3, (4, 3, 3, 3))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["m"], ["y"])]
    # 16 columns: whole vectors on every instruction set, so MaxPool takes pool_pairs
    model = make_model(nodes, [("x", F32, [1, 3, 16, 16])], [("y", F32, [1, 4, 1, 1])], dict(w=w))
    return Case("conv_pool", model, {"x": random_array((1, 3, 16, 16), F32, 4)})


def _register_tiles() -> Case:
    """The register-tile kernels of native code: conv_rows (a small image, 48 output channels), conv_pointwise
    (a 1x1 layer, its positions one partial tile) and gemm_panels (a Gemm + Sigmoid with 16 x 16400 outputs),
    whose tiles live on the stack."""
    w, wp, wg, bg = _weights(5, (48, 8, 3, 3), (48, 48, 1, 1), (48, 16400), (16400,))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["m", "wp"], ["p"]),
             helper.make_node("Reshape", ["p", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "wg", "bg"], ["g"]), helper.make_node("Sigmoid", ["g"], ["y"])]
    model = make_model(nodes, [("x", F32, [1, 8, 8, 8])], [("y", F32, [16, 16400])],
                       dict(w=w, wp=wp * 0.2, wg=wg * 0.2, bg=bg, shape=np.array([16, 48], np.int64)))
    return Case("register_tiles", model, {"x": random_array((1, 8, 8, 8), F32, 6)})


def _strided_convs() -> Case:
    """A stride-2 3x3 layer (conv_rows, its sums transposed out) and a stride-2 1x1 shortcut (conv_pointwise_strided,
    its positions gathered in the workspace) in native code, as in a ResNet's downsampling block."""
    w, ws = _weights(11, (32, 16, 3, 3), (32, 16, 1, 1))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Conv", ["x", "ws"], ["s"], strides=[2, 2]), helper.make_node("Add", ["c", "s"], ["y"])]
    model = make_model(nodes, [("x", F32, [1, 16, 18, 18])], [("y", F32, [1, 32, 9, 9])], dict(w=w * 0.3, ws=ws * 0.3))
    return Case("strided_convs", model, {"x": random_array((1, 16, 18, 18), F32, 12)})


def _winograd_tiles() -> Case:
    """conv_winograd_tiles (native code): F(2, 3) on 16 x 17 pixels, 20 features, and its planes in the workspace."""
    (w,) = _weights(8, (20, 16, 3, 3))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, [("x", F32, [2, 16, 16, 17])], [("y", F32, [2, 20, 16, 17])], dict(w=w * 0.3))
    return Case("winograd_tiles", model, {"x": random_array((2, 16, 16, 17), F32, 9)})


def _winograd_tiles_compact() -> Case:
    """conv_winograd_tiles on 11 x 8 pixels: tile rows without their extra column, read whole vectors past them."""
    (w,) = _weights(10, (50, 48, 3, 3))
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    model = make_model(nodes, [("x", F32, [2, 48, 11, 8])], [("y", F32, [2, 50, 11, 8])], dict(w=w * 0.2))
    return Case("winograd_tiles_compact", model, {"x": random_array((2, 48, 11, 8), F32, 10)})


def _winograd_tiles_pooled() -> Case:
    """conv_winograd_tiles with a 2 x 2 MaxPool fused (winograd_pool): F(4, 3) on 16 x 20 pixels, 24 features."""
    (w,) = _weights(11, (24, 16, 3, 3))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    model = make_model(nodes, [("x", F32, [2, 16, 16, 20])], [("y", F32, [2, 24, 8, 10])], dict(w=w * 0.3))
    return Case("winograd_tiles_pooled", model, {"x": random_array((2, 16, 16, 20), F32, 11)})


def _recurrent(op: str, gates: int) -> Case:
    w, r, b = _weights(5, (1, gates * 6, 4), (1, gates * 6, 6), (1, 2 * gates * 6))
    node = helper.make_node(op, ["x", "w", "r", "b"], ["y", "h"], hidden_size=6)
    model = make_model([node], [("x", F32, [5, 2, 4])], [("y", F32, [5, 1, 2, 6]), ("h", F32, [1, 2, 6])],
                       dict(w=w, r=r, b=b))
    return Case(op.lower(), model, {"x": random_array((5, 2, 4), F32, 6)})


def _attention() -> Case:
    wq, wk, scale, bias = _weights(7, (8, 8), (8, 8), (8,), (8,))
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"]), helper.make_node("MatMul", ["x", "wk"], ["k"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "x"], ["a"]), helper.make_node("Add", ["a", "x"], ["res"]),
             helper.make_node("LayerNormalization", ["res", "scale", "bias"], ["y"], axis=-1)]
    model = make_model(nodes, [("x", F32, [2, 5, 8])], [("y", F32, [2, 5, 8])],
                       dict(wq=wq, wk=wk, scale=scale + 1, bias=bias))
    return Case("attention", model, {"x": random_array((2, 5, 8), F32, 8)})


def _fused_attention() -> Case:
    """The exported attention chain fused into one Attention node (passes/fuse_attention.py), 4-D heads."""
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), helper.make_node("MatMul", ["q", "kt"], ["s"]),
             helper.make_node("Mul", ["s", "scale"], ["t"]), helper.make_node("Softmax", ["t"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    shape = [2, 3, 6, 4]
    model = make_model(nodes, [(n, F32, shape) for n in "qkv"], [("y", F32, shape)], dict(scale=np.array(0.5, F32)))
    return Case("fused_attention", model, {n: random_array(tuple(shape), F32, 10 + i) for i, n in enumerate("qkv")})


def _reductions() -> Case:
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("Sub", ["x", "m"], ["d"]), helper.make_node("ReduceSumSquare", ["d", "axes"], ["s"]),
             helper.make_node("ReduceMax", ["x", "axes2"], ["y2"], keepdims=0)]
    model = make_model(nodes, [("x", F32, [3, 4, 5])], [("s", F32, [3, 4, 1]), ("y2", F32, [4])],
                       dict(axes=np.array([2], np.int64), axes2=np.array([0, 2], np.int64)), opset=18)
    return Case("reductions", model, {"x": random_array((3, 4, 5), F32, 9)})


def _pooled_rows() -> Case:
    """A per-particle layer averaged over the particles (a pooled gemm_panels on AVX-512: runs of 20 rows cut by the
    tiles, a partial last panel), one kept per particle (gemm_shallow: 8 terms, 24 columns) and the input summed
    over the particles (reduce_sum, in runs of float terms)."""
    w, b, w2, b2 = _weights(31, (8, 40), (40,), (8, 24), (24,))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]), helper.make_node("ReduceMean", ["r", "axes"], ["y"], keepdims=0),
             helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
             helper.make_node("MatMul", ["x", "w2"], ["p2"]), helper.make_node("Add", ["p2", "b2"], ["z"])]
    model = make_model(nodes, [("x", F32, [3, 20, 8])], [("y", F32, [3, 40]), ("s", F32, [3, 8]), ("z", F32, [3, 20, 24])],
                       dict(w=w, b=b, w2=w2, b2=b2, axes=np.array([1], np.int64)), opset=18)
    return Case("pooled_rows", model, {"x": random_array((3, 20, 8), F32, 32)})


def _movement() -> Case:
    nodes = [helper.make_node("Concat", ["x", "x"], ["c"], axis=1),
             helper.make_node("Slice", ["c", "starts", "ends", "axes"], ["s"]),
             helper.make_node("Reshape", ["s", "shape"], ["r"]), helper.make_node("Transpose", ["r"], ["y"])]
    inits = dict(starts=np.array([1], np.int64), ends=np.array([7], np.int64), axes=np.array([1], np.int64),
                 shape=np.array([2, -1], np.int64))
    model = make_model(nodes, [("x", F32, [2, 4, 3])], [("y", F32, [18, 2])], inits)
    return Case("movement", model, {"x": random_array((2, 4, 3), F32, 10)})


def _resize() -> Case:
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")
    model = make_model([node], [("x", F32, [1, 2, 4, 4])], [("y", F32, [1, 2, 8, 8])],
                       dict(scales=np.array([1, 1, 2, 2], F32)))
    return Case("resize", model, {"x": random_array((1, 2, 4, 4), F32, 11)})


def _gather() -> Case:
    (table,) = _weights(12, (10, 6))
    nodes = [helper.make_node("Gather", ["table", "i"], ["g"], axis=0), helper.make_node("Tanh", ["g"], ["y"])]
    model = make_model(nodes, [("i", np.int64, [2, 3])], [("y", F32, [2, 3, 6])], dict(table=table))
    return Case("gather", model, {"i": np.array([[0, 9, 3], [-1, 4, 4]], np.int64)})


def _grid_scatter() -> Case:
    """data[:, i, j] = v as torch exports it (Expand, Unsqueeze, Concat, ScatterND): one GridScatterND."""
    nodes = [helper.make_node("Expand", ["b", "bshape"], ["be"])]
    nodes += [helper.make_node("Unsqueeze", [c, "last"], [f"{c}u"]) for c in ("be", "i", "j")]
    nodes += [helper.make_node("Concat", ["beu", "iu", "ju"], ["idx"], axis=-1),
              helper.make_node("ScatterND", ["x", "idx", "v"], ["y"])]
    model = make_model(nodes, [("x", F32, [2, 4, 4]), ("v", F32, [2, 3]), ("i", np.int64, [2, 3]),
                               ("j", np.int64, [2, 3])], [("y", F32, [2, 4, 4])],
                       dict(b=np.array([[0], [1]], np.int64), bshape=np.array([2, 3], np.int64),
                            last=np.array([-1], np.int64)))
    pairs = np.array([[1, 2, -1], [0, 3, 2]], np.int64)
    feeds = {"x": random_array((2, 4, 4), F32, 16), "v": random_array((2, 3), F32, 17), "i": pairs, "j": pairs[::-1]}
    return Case("grid_scatter", model, feeds)


def _topk() -> Case:
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1)
    model = make_model([node], [("x", F32, [3, 10])], [("v", F32, [3, 4]), ("i", np.int64, [3, 4])],
                       dict(k=np.array([4], np.int64)))
    return Case("topk", model, {"x": random_array((3, 10), F32, 13)})


def _nonzero() -> Case:
    nodes = [helper.make_node("Greater", ["x", "zero"], ["b"]), helper.make_node("NonZero", ["b"], ["nz"]),
             helper.make_node("Transpose", ["nz"], ["y"])]
    model = make_model(nodes, [("x", F32, [4, 5])], [("y", np.int64, ["n", 2])], dict(zero=np.array(0, F32)))
    return Case("nonzero", model, {"x": random_array((4, 5), F32, 14)})


def _upsample() -> Case:
    w, mean, var, gamma, beta = _weights(15, (2, 3, 4, 4), (3,), (3,), (3,), (3,))
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
             helper.make_node("ConvTranspose", ["p", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["y"])]
    inits = dict(pads=np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), w=w, mean=mean, var=np.abs(var) + 0.5,
                 gamma=gamma, beta=beta)
    model = make_model(nodes, [("x", F32, [1, 2, 5, 5])], [("y", F32, [1, 3, 14, 14])], inits)
    return Case("upsample", model, {"x": random_array((1, 2, 5, 5), F32, 16)})


def _pool3d_gelu() -> Case:
    """Pooling by lines in 3-D (AveragePool with padding counted: pool_lines_stride2, unpadded along the lines; a
    stride-3 MaxPool: pool_lines) and GELU's exported Erf chain."""
    nodes = [helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[2, 3, 3], strides=[1, 2, 2],
                              pads=[0, 1, 0, 1, 1, 0], count_include_pad=1),
             helper.make_node("MaxPool", ["a"], ["m"], kernel_shape=[1, 2, 2], strides=[1, 3, 3], ceil_mode=1),
             helper.make_node("Div", ["m", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["p"]), helper.make_node("Mul", ["m", "p"], ["g"]),
             helper.make_node("Mul", ["g", "half"], ["y"])]
    inits = dict(sqrt2=np.array(np.sqrt(2), F32), one=np.array(1, F32), half=np.array(0.5, F32))
    model = make_model(nodes, [("x", F32, ["N", 2, 5, 8, 8])], [("y", F32, ["N", 2, 5, 2, 2])], inits)
    return Case("pool3d_gelu", model, {"x": random_array((2, 2, 5, 8, 8), F32, 17)}, dims=(2,))


def _pair_bias() -> Case:
    """ParT's pair-bias heads: a Gemm of 4 terms per output with a bias, row by row (gemm_loop_row), then the
    heads moved to the front (transpose_phases, 8 channels)."""
    w, b = _weights(22, (4, 8), (8,))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["p"]),
             helper.make_node("Transpose", ["p"], ["y"], perm=[0, 3, 1, 2])]
    model = make_model(nodes, [("x", F32, [1, 48, 48, 4])], [("y", F32, [1, 8, 48, 48])], dict(w=w, b=b))
    return Case("pair_bias", model, {"x": random_array((1, 48, 48, 4), F32, 23)})


def _symbolic_length() -> Case:
    """A Conv1d network over a length known when the code runs: im2col scratch and every tensor sized by it."""
    w1, w2 = _weights(18, (6, 3, 3), (4, 6, 3))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], auto_pad="SAME_UPPER", strides=[2]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2]),
             helper.make_node("ConvTranspose", ["m", "w2t"], ["t"], strides=[2]),
             helper.make_node("GlobalAveragePool", ["t"], ["y"])]
    model = make_model(nodes, [("x", F32, [1, 3, "L"])], [("y", F32, [1, 4, 1])], dict(w1=w1, w2t=w2.transpose(1, 0, 2)))
    return Case("symbolic_length", model, {"x": random_array((1, 3, 19), F32, 19)}, dims=(19,))


def _run_time_axes() -> Case:
    """Reductions and a running sum whose axes are inputs: masks and output dims computed by the code."""
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
             helper.make_node("ReduceMax", ["x", "axes"], ["m"], keepdims=0),
             helper.make_node("CumSum", ["x", "axis"], ["c"])]
    inputs = [("x", F32, [3, 4, 5]), ("axes", np.int64, [2]), ("axis", np.int64, [])]
    model = make_model(nodes, inputs, [("s", F32, None), ("m", F32, None), ("c", F32, [3, 4, 5])], opset=18)
    feeds = {"x": random_array((3, 4, 5), F32, 20), "axes": np.array([2, 0], np.int64), "axis": np.array(1, np.int64)}
    return Case("run_time_axes", model, feeds)


def _run_time_parameters() -> Case:
    """Slice, Resize and Reshape whose parameters are inputs: output dims and interpolation tables per call."""
    i64 = np.int64
    nodes = [helper.make_node("Slice", ["x", "starts", "ends"], ["c"]),
             helper.make_node("Resize", ["c", "", "", "sizes"], ["r"], mode="linear"),
             helper.make_node("Reshape", ["r", "shape"], ["y"])]
    inputs = [("x", F32, [1, 2, 9, 9]), ("starts", i64, [4]), ("ends", i64, [4]), ("sizes", i64, [4]),
              ("shape", i64, [2])]
    model = make_model(nodes, inputs, [("y", F32, None)], opset=18)
    feeds = {"x": random_array((1, 2, 9, 9), F32, 21), "starts": np.array([0, 0, 1, 2], i64),
             "ends": np.array([1, 2, 8, 9], i64), "sizes": np.array([1, 2, 5, 4], i64), "shape": np.array([2, -1], i64)}
    return Case("run_time_parameters", model, feeds)


def _batched_rows(rows: int) -> Case:
    """A Gemm + GELU and a MatMul over an open batch (gemm_panels_rows: gemm_panels' tiles from 16 rows, tiles of one
    or two rows over eight panels below; 40 columns: a partial last panel)."""
    w1, b1, w2 = _weights(24, (24, 136), (136,), (136, 40))
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Gelu", ["h"], ["g"]),
             helper.make_node("MatMul", ["g", "w2"], ["y"])]
    model = make_model(nodes, [("x", F32, ["N", 24])], [("y", F32, ["N", 40])], dict(w1=w1, b1=b1, w2=w2), opset=20)
    return Case(f"batched_rows_{rows}", model, {"x": random_array((rows, 24), F32, 25)}, dims=(rows,))


def _edge_conv() -> Case:
    """ParticleNet's EdgeConv blocks (passes/edge_conv.py): NeighbourGather's offsets and EdgeConvChain's planes of
    gathered edges in the workspace, an open batch and particle count."""
    from test_edge_conv import _jets, _net_onnx

    return Case("edge_conv", _net_onnx(), _jets(2, 37, seed=26), dims=(2, 37))


def _selection() -> Case:
    """Products by 0/1 selection matrices (passes/selection.py): a gather and a sum of columns."""
    b = np.zeros((12, 30), F32)
    b[np.arange(30) % 12, np.arange(30)] = 1.0
    nodes = [helper.make_node("MatMul", ["x", "b"], ["e"]), helper.make_node("MatMul", ["e", "bt"], ["y"])]
    model = make_model(nodes, [("x", F32, ["N", 12])], [("y", F32, ["N", 12])], dict(b=b, bt=np.ascontiguousarray(b.T)))
    return Case("selection", model, {"x": random_array((3, 12), F32, 27)}, dims=(3,))


CASES = [_mlp(), _conv_pool(), _recurrent("LSTM", 4), _recurrent("GRU", 3), _attention(), _fused_attention(),
         _reductions(), _movement(), _resize(), _gather(), _grid_scatter(), _topk(), _nonzero(), _upsample(),
         _register_tiles(), _strided_convs(), _winograd_tiles(), _winograd_tiles_compact(), _winograd_tiles_pooled(),
         _pool3d_gelu(), _symbolic_length(), _pair_bias(), _run_time_axes(), _run_time_parameters(), _pooled_rows(),
         _batched_rows(5), _batched_rows(40), _edge_conv(), _selection()]


def _literal(a: np.ndarray) -> str:
    values = a.reshape(-1).tolist()
    return ", ".join(repr(float(v)) + "f" if a.dtype == F32 else str(int(v)) for v in values)


def _block(case: Case, gen: sr.Model, code) -> str:
    """The C++ scope running and counting one model."""
    ns = code.namespace
    lines = [f"   {{  // {case.name}", f'      {ns}::Session s("{gen.weights}");']
    args = [str(d) for d in case.dims]
    for k, (name, t) in enumerate(code.inputs):
        lines.append(f"      static const {cpp_type(t.dtype)} in{k}[] = {{{_literal(case.feeds[name])}}};")
        args.append(f"in{k}")
    for k, (_, t) in enumerate(code.outputs):
        sized_at_run_time = any(s.name in code.runtime_dims for s in getattr(t.size, "free_symbols", ()))
        size = "" if sized_at_run_time else f"({int(t.size.subs(dict(zip(t.size.free_symbols, case.dims))))})" \
            if not isinstance(t.size, int) else f"({t.size})"
        lines.append(f"      std::vector<{cpp_type(t.dtype)}> out{k}{size};")
        args.append(f"out{k}" if sized_at_run_time else f"out{k}.data()")
    call = f"s.infer({', '.join(args)})"
    lines += [f"      for (int i = 0; i < {WARMUP_CALLS}; ++i) {call};",
              "      counting::reset();",
              f"      for (int i = 0; i < {COUNTED_CALLS}; ++i) {call};",
              "      counting::stop();",
              f'      std::printf("model {case.name} new=%zu malloc=%zu\\n", counting::news, counting::mallocs);']
    if case is CASES[0]:  # control: the overload returning vectors allocates them, and the counters must see it
        vector_call = f"s.infer({', '.join(args[:len(case.dims) + len(code.inputs)])})"
        lines += ["      counting::reset();", f"      {{ auto v = {vector_call}; }}",
                  "      counting::stop();",
                  '      std::printf("model control new=%zu malloc=%zu\\n", counting::news, counting::mallocs);']
    for k in range(len(code.outputs)):
        lines.append(f'      std::printf("output {case.name} {k}"); for (auto v : out{k}) std::printf(" %.9g", double(v));'
                     ' std::printf("\\n");')
    return "\n".join(lines + ["   }"])


COUNTING = r"""
#include <cstdio>
#include <cstdlib>
#include <new>
namespace counting {
bool on = false;
size_t news = 0, mallocs = 0;
void reset() { news = mallocs = 0; on = true; }
void stop() { on = false; }
}
extern "C" void *__libc_malloc(size_t);
extern "C" void *__libc_calloc(size_t, size_t);
extern "C" void *__libc_realloc(void *, size_t);
extern "C" void *malloc(size_t n) { if (counting::on) ++counting::mallocs; return __libc_malloc(n); }
extern "C" void *calloc(size_t n, size_t m) { if (counting::on) ++counting::mallocs; return __libc_calloc(n, m); }
extern "C" void *realloc(void *p, size_t n) { if (counting::on) ++counting::mallocs; return __libc_realloc(p, n); }
static void *counted_new(size_t n) {
   if (counting::on) ++counting::news;
   if (void *p = __libc_malloc(n ? n : 1)) return p;
   throw std::bad_alloc();
}
static void *counted_new(size_t n, std::align_val_t a) {
   if (counting::on) ++counting::news;
   void *p = nullptr;
   if (posix_memalign(&p, static_cast<size_t>(a), n ? n : 1) != 0) throw std::bad_alloc();
   return p;
}
void *operator new(size_t n) { return counted_new(n); }
void *operator new[](size_t n) { return counted_new(n); }
void *operator new(size_t n, std::align_val_t a) { return counted_new(n, a); }
void *operator new[](size_t n, std::align_val_t a) { return counted_new(n, a); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }
void operator delete[](void *p, size_t) noexcept { std::free(p); }
void operator delete(void *p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void *p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void *p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void *p, size_t, std::align_val_t) noexcept { std::free(p); }
"""


@pytest.fixture(scope="module")
def counts(tmp_path_factory) -> dict[str, tuple[dict[str, int], list[np.ndarray]]]:
    """Build and run the counting program: model name -> (counts, outputs of the last call)."""
    folder = tmp_path_factory.mktemp("allocations")
    includes, blocks = [], []
    for case in CASES:
        model = sr.load(case.model)
        model.name = case.name
        gen = model.generate(folder, name=case.name)
        includes.append(f'#include "{Path(gen.header).name}"')
        blocks.append(_block(case, gen, model.code()))
    source = folder / "count_allocations.cpp"
    source.write_text("\n".join([COUNTING, *includes, "int main()", "{", *blocks, "}", ""]))
    lib, include = _root.blas_paths()
    cxx = shlex.split(os.environ.get("CXX", "c++"))
    exe = folder / "count_allocations"
    # -O0: what is counted is the code's own allocations, which optimization could only remove (new/delete pairs
    # may be elided); at -O3 (the header's `#pragma GCC optimize("O3")` with any -O) the build took 110 s, at -O0 13
    cmd = [*cxx, "-std=c++17", "-O0", "-march=native", "-I", str(folder), "-I", str(include), "-o", str(exe), str(source),
           "-L", str(lib.parent), f"-l{lib.stem[3:]}", f"-Wl,-rpath,{lib.parent}"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-4000:]
    print(run.stdout)
    result: dict[str, tuple[dict[str, int], list[np.ndarray]]] = {}
    for line in run.stdout.splitlines():
        kind, name, *rest = line.split()
        if kind == "model":
            result[name] = ({k: int(v) for k, v in (r.split("=") for r in rest)}, [])
        else:
            result[name][1].append(np.array([float(v) for v in rest[1:]]))
    return result


def test_counting_sees_allocations(counts):
    allocations, _ = counts["control"]
    assert allocations["new"] + allocations["malloc"] > 0


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_allocation_in_infer(counts, case: Case):
    allocations, outputs = counts[case.name]
    assert allocations == {"new": 0, "malloc": 0}, f"{case.name}: {COUNTED_CALLS} calls allocated {allocations}"
    reference = ort_run(case.model, case.feeds)
    assert len(outputs) == len(reference)
    for ours, ref in zip(outputs, reference):
        np.testing.assert_allclose(ours, ref.reshape(-1).astype(np.float64), rtol=1e-4, atol=1e-5)
