"""The vectorized kernels on every instruction set this machine runs, against onnxruntime.

A native build targets the instruction set its flags name (``CpuTarget.isa``): generic x86-64 (SSE2), AVX2
with FMA, AVX-512.  The compiler vectorizes each kernel differently for each (vector width, masked tails,
fused multiply-adds change rounding; the register tiles of the convolutions and products are sized per
instruction set), so each model of the kernels added for HEP-sized layers (pooling by lines, erf, GELU in both
exported forms, softmax, LayerNorm, attention's register blocks, the register-tile convolutions and products) is
built once per instruction set the CPU has and compared with onnxruntime at the usual tolerances.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import onnx
import pytest
from conftest import ATOL, RTOL, make_model, ort_run, random_array
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.targets.cpu import CpuTarget, host_isa, isa_for_flags

# Flags per instruction set; the first always runs, the others where the CPU has them.
ISA_FLAGS = {
    "generic": ["-O3", "-march=x86-64", "-fno-trapping-math"],
    "avx2": ["-O3", "-march=x86-64-v3", "-fno-trapping-math"],
    "avx512": ["-O3", "-march=x86-64-v4", "-fno-trapping-math"],
}
_ORDER = list(ISA_FLAGS)
RUNNABLE = [isa for isa in _ORDER if _ORDER.index(isa) <= _ORDER.index(host_isa())]
# make test builds each model for the widest instruction set (what backend="native" builds here); the narrower
# ones run with make test-full (-m slow).
ISA_PARAMS = [pytest.param(isa, marks=[] if isa == host_isa() else [pytest.mark.slow]) for isa in RUNNABLE]


def _gelu_erf(shape: tuple) -> onnx.ModelProto:
    c = dict(sqrt2=np.array(np.sqrt(2), np.float32), one=np.array(1, np.float32), half=np.array(0.5, np.float32))
    nodes = [helper.make_node("Div", ["x", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["p"]), helper.make_node("Mul", ["x", "p"], ["g"]),
             helper.make_node("Mul", ["g", "half"], ["y"])]
    return make_model(nodes, [("x", np.float32, shape)], [("y", np.float32, shape)], c)


def _one_node(op: str, shape: tuple, opset: int = 20, **attrs) -> onnx.ModelProto:
    return make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", np.float32, shape)],
                      [("y", np.float32, None)], opset=opset)


def _reduce(op: str, shape: tuple, axes: list[int]) -> onnx.ModelProto:
    """One reduction over ``axes`` given as an input (opset 18)."""
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)
    return make_model([node], [("x", np.float32, shape)], [("y", np.float32, None)],
                      {"axes": np.array(axes, np.int64)}, opset=18)


def _layer_norm(shape: tuple, params: int, axis: int = -1) -> onnx.ModelProto:
    """LayerNormalization with scale and bias of ``params`` values (broadcast over the row when fewer)."""
    rng = np.random.default_rng(params)
    inits = {"scale": rng.standard_normal(params).astype(np.float32),
             "bias": rng.standard_normal(params).astype(np.float32)}
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], axis=axis)
    return make_model([node], [("x", np.float32, shape)], [("y", np.float32, shape)], inits, opset=17)


def _conv(channels: int, features: int, image: tuple, kernel: int, stride: int = 1,
          act: str = "Relu", pool: bool = False, pads: Optional[list] = None, dilation: int = 1) -> onnx.ModelProto:
    """Conv (padding kernel // 2 unless ``pads``) with bias and a fused activation (``act``), weights scaled by
    1 / sqrt(fan-in) so that the sums stay near 1 and the usual tolerances apply; ``pool``: a 2 x 2 MaxPool after
    them."""
    rng = np.random.default_rng(channels * 100 + features)
    fan_in = channels * kernel ** len(image)
    w = (rng.standard_normal((features, channels) + (kernel,) * len(image)) / np.sqrt(fan_in)).astype(np.float32)
    inits = {"w": w, "b": rng.standard_normal(features).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=pads or [kernel // 2] * 2 * len(image),
                              strides=[stride] * len(image), dilations=[dilation] * len(image)),
             helper.make_node(act, ["c"], ["a" if pool else "y"])]
    if pool:
        nodes.append(helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[2, 2], strides=[2, 2]))
    return make_model(nodes, [("x", np.float32, (2, channels) + image)], [("y", np.float32, None)], inits)


def _gemm_sigmoid(m: int | str, k: int, n: int) -> onnx.ModelProto:
    """Linear (transB, as torch exports it) + Sigmoid, large enough an output for the register-tile panels (m a
    symbol: an open batch, run with 3 rows)."""
    rng = np.random.default_rng(n)
    inits = {"w": (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32),
             "b": rng.standard_normal(n).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1), helper.make_node("Sigmoid", ["g"], ["y"])]
    return make_model(nodes, [("x", np.float32, (m, k))], [("y", np.float32, None)], inits)


def _pooled_products(shape: tuple, features: int) -> onnx.ModelProto:
    """MatMul + bias + ReLU per particle, then the sum over the particles (a FusedGemm with pool_rows)."""
    rng = np.random.default_rng(features)
    inits = {"w": (rng.standard_normal((shape[-1], features)) / np.sqrt(shape[-1])).astype(np.float32),
             "b": rng.standard_normal(features).astype(np.float32), "axes": np.array([1], np.int64)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["h"]),
             helper.make_node("Relu", ["h"], ["a"]), helper.make_node("ReduceSum", ["a", "axes"], ["y"], keepdims=0)]
    return make_model(nodes, [("x", np.float32, shape)], [("y", np.float32, None)], inits, opset=18)


# The register tiles (kernels/gemm.hxx, conv.hxx) are sized per instruction set: these layers reach each
# kernel with partial tiles of rows and of panels, and with more (channel, tap) steps than one pass takes.
TILE_MODELS = {
    # conv_rows: 7 x 9 positions, 48 features (two panels and one on AVX-512), 64 x 9 steps (two or three passes)
    "conv_rows_partial": lambda: _conv(64, 48, (7, 9), 3),
    "conv_rows_strided": lambda: _conv(16, 32, (11, 10), 3, stride=2),
    "conv_rows_3d": lambda: _conv(4, 16, (5, 6, 7), 3),
    # conv_shifted: 7 features (a block of 6 and one of 1; with AVX2, 4 and 3), 24 x 27 steps; 13 features (6, 6
    # and 1; with AVX2 6, 4 and 3); 2 features with stride 2; 5x5 taps
    "conv_shifted_passes": lambda: _conv(24, 7, (5, 6, 7), 3),
    "conv_shifted_13": lambda: _conv(3, 13, (9, 16), 3),
    "conv_shifted_strided": lambda: _conv(3, 2, (19, 23), 3, stride=2),
    "conv_shifted_5x5": lambda: _conv(4, 3, (33, 31), 5),
    # conv_shifted's copy split by phase: 5x5 with stride 2 (even pad) on an odd width, stride 3 on 3-D
    "conv_shifted_5x5_s2": lambda: _conv(4, 6, (20, 17), 5, stride=2),
    "conv_shifted_3d_s3": lambda: _conv(2, 5, (7, 9, 10), 3, stride=3),
    # ... with pads of 0 to 3 (rows and planes all padding, margins of several columns), dilation with stride,
    # and pads wider than the image
    "conv_shifted_pads_s2": lambda: _conv(3, 5, (13, 15), 5, stride=2, pads=[3, 0, 1, 2]),
    "conv_shifted_3d_pads": lambda: _conv(2, 3, (6, 7, 9), 3, pads=[2, 0, 1, 0, 3, 2]),
    "conv_shifted_dilated_s2": lambda: _conv(2, 4, (9, 12, 14), 3, stride=2, dilation=2),
    "conv_shifted_pads_beyond": lambda: _conv(2, 3, (3, 4), 3, stride=2, pads=[5, 4, 6, 7]),
    # conv_shifted_direct (output rows of whole vectors): 5 rows of 32 (a last tile past the grid's end), 7
    # features, Sigmoid (applied once per value, where tiles repeat the last vector); 3-D with stride 2 on a
    # 16-wide grid; 8- and 24-wide grids (AVX-512: vectors of 8 floats, half its own; 24: three a row, the last
    # tile past the grid's end); 8 x 8 x 8 voxels, 8 features (blocks of 6 and 2)
    "conv_shifted_direct_sigmoid": lambda: _conv(1, 7, (5, 32), 3, act="Sigmoid"),
    "conv_shifted_direct_3d_s2": lambda: _conv(3, 5, (6, 9, 32), 3, stride=2),
    "conv_shifted_direct_8": lambda: _conv(2, 4, (11, 8), 3),
    "conv_shifted_direct_24": lambda: _conv(3, 8, (5, 24), 3),
    "conv_shifted_direct_3d_8": lambda: _conv(4, 8, (8, 8, 8), 3),
    # ... on rows that are not whole vectors, each ending in a vector that overlaps the one before: 50 (AVX-512:
    # 8-float vectors, the last at 42), 31 (AVX-512: 16-float vectors at 0 and 15), 20 (with 2 channels) and 12
    # (3-D, 6 features: one block, 54 steps); Sigmoid, as the overlap is stored twice
    "conv_shifted_direct_overlap_50": lambda: _conv(1, 7, (6, 50), 3, act="Sigmoid"),
    "conv_shifted_direct_overlap_31": lambda: _conv(1, 3, (4, 31), 3),
    "conv_shifted_direct_overlap_20": lambda: _conv(2, 5, (7, 20), 3),
    "conv_shifted_direct_overlap_3d": lambda: _conv(2, 6, (5, 6, 12), 3),
    # conv_pointwise: 77 positions (a partial last tile on every instruction set; AVX-512: narrow tiles), 13
    # features (blocks of 6 and one of 1); 2 features (the wider tiles of few output channels)
    "conv_pointwise_tails": lambda: _conv(24, 13, (7, 11), 1),
    "conv_pointwise_few": lambda: _conv(5, 2, (9, 23), 1),
    # 1-D over 25 particles (AVX-512: the narrow tiles, 32 positions wide) and 50 positions (the usual tiles, a
    # partial one)
    "conv_pointwise_narrow_1d": lambda: _conv(16, 20, (25,), 1),
    "conv_pointwise_wide_tail": lambda: _conv(8, 7, (5, 10), 1),
    # conv_pointwise_strided: stride 2 on an odd image (its last column read)
    "conv_pointwise_strided_odd": lambda: _conv(12, 13, (9, 11), 1, stride=2),
    # conv_winograd_tiles: F(2, 3) on 17 x 19 pixels (partial tiles at the bottom and right), 18 features (a
    # partial block of register-tile rows); F(4, 3) on 26 x 31 pixels, 21 features; F(4, 3) on 16 x 20 pixels (whole
    # 4 x 4 tiles, rows of 4 and 5 tiles), 24 features; 11 x 8 pixels, whose rows of 4 tiles are stored without the
    # column past them, 50 features (register tiles of 4 to 16 features, output passes of 4 features and one of
    # 2); F(4, 3) on 16 x 16 pixels, 23 features (output passes of 4 features, the last of 3); a 2 x 2 MaxPool
    # after F(4, 3) on 16 x 20 pixels (rows of 5 tiles, 10 pooled values) and after F(2, 3) on 17 x 19 (odd
    # sides: the last row and column dropped)
    "conv_winograd_tiles_f23": lambda: _conv(16, 18, (17, 19), 3),
    "conv_winograd_tiles_f43": lambda: _conv(16, 21, (26, 31), 3),
    "conv_winograd_tiles_whole_f43": lambda: _conv(20, 24, (16, 20), 3),
    "conv_winograd_tiles_compact": lambda: _conv(48, 50, (11, 8), 3),
    "conv_winograd_tiles_groups_f43": lambda: _conv(16, 23, (16, 16), 3),
    "conv_winograd_tiles_pooled_f43": lambda: _conv(20, 24, (16, 20), 3, pool=True),
    "conv_winograd_tiles_pooled_f23": lambda: _conv(16, 18, (17, 19), 3, pool=True),
    # F(4, 3) on 20 x 50 pixels, whose last tile column is half outside (a calorimeter's eta x phi map), pooled;
    # F(2, 3) on 10 x 25 pixels (fewer than 16 a side, but rows of 13 tiles)
    "conv_winograd_tiles_pooled_snug_f43": lambda: _conv(16, 18, (20, 50), 3, pool=True),
    "conv_winograd_tiles_wide_f23": lambda: _conv(16, 16, (10, 25), 3),
    # F(4, 3) on 16-pixel wide images, the tiles of several tile rows interleaved into whole output rows at once:
    # 20 rows (5 tile rows: the last vector's overlap the one before on AVX-512), 63 rows (the last tile row's last
    # output row dropped)
    "conv_winograd_tiles_packed_rows_f43": lambda: _conv(16, 20, (20, 16), 3),
    "conv_winograd_tiles_packed_tall_f43": lambda: _conv(16, 17, (63, 16), 3),
    # rows of 8 tiles stored packed too: F(4, 3) on 26 x 32 pixels (7 tile rows, the last two output rows dropped),
    # F(2, 3) on 12 x 16 (24 -> 26 channels)
    "conv_winograd_tiles_packed_wide_f43": lambda: _conv(16, 18, (26, 32), 3),
    "conv_winograd_tiles_packed_wide_f23": lambda: _conv(24, 26, (12, 16), 3),
    # gemm_panels: 20 rows (two tiles; with AVX-512 each two wide tiles of 5 rows x 64 columns), 13111 columns
    # (a partial last panel); depth 600 (beyond the wide tiles' kWideMaxDepth: 12 x 2 tiles), 100 columns
    "gemm_panels": lambda: _gemm_sigmoid(20, 37, 13111),
    "gemm_panels_deep": lambda: _gemm_sigmoid(30, 600, 100),
    # runs of 48 rows (panel_run), then a run of 14 (partial tiles), 80 columns (AVX-512: a wide tile and a panel
    # in 12-row tiles); one run of 57 rows: 7 whole tiles of 6, then tiles of 5 (AVX2: 57 = 4 x 12 + 9)
    "gemm_panels_runs": lambda: _gemm_sigmoid(110, 64, 80),
    "gemm_panels_run_tail": lambda: _gemm_sigmoid(57, 33, 64),
    # a sum over runs of 50 rows pooled as the tiles go (runs across tiles and across runs of gemm_panels)
    "gemm_panels_pooled": lambda: _pooled_products((5, 50, 20), 64),
    # an open batch (gemm_panels_rows) of a few rows, an event or two through a dense layer: tiles of two rows, then
    # one, over up to 8 panels (AVX-512: a tile of 8 panels, then 2 (150 columns); AVX2: 2 panels a tile of two rows,
    # 4 of one)
    "gemm_panels_rows_open": lambda: _gemm_sigmoid("N", 45, 150),
}

def _gemm_few_terms(m: int, k: int, n: int, trans_a: int = 0, act: str = "", alpha: float = 1.0,
                    beta: float = 1.0) -> onnx.ModelProto:
    """Gemm of few terms per output with a bias (input (m, k), or (k, m) with trans_a): gemm_loop_row, which adds
    the bias as it writes each row of an output beyond L1 (k <= 4, n < 16), or gemm_shallow (AVX-512, k <= 12)."""
    rng = np.random.default_rng(k * 10 + n)
    inits = {"w": rng.standard_normal((k, n)).astype(np.float32), "b": rng.standard_normal(n).astype(np.float32)}
    out = "g" if act else "y"
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], [out], transA=trans_a, alpha=alpha, beta=beta)]
    if act:
        nodes.append(helper.make_node(act, ["g"], ["y"]))
    shape = (k, m) if trans_a else (m, k)
    return make_model(nodes, [("x", np.float32, shape)], [("y", np.float32, None)], inits)


def _where_mask(shape: tuple) -> onnx.ModelProto:
    """Where over x with a mask broadcast along the middle axes (a mask over keys) and a scalar fill:
    ternary_run with constant strides, the mask read as bytes."""
    inits = {"fill": np.array(-1e4, np.float32), "zero": np.array(0, np.float32)}
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=1),
             helper.make_node("Less", ["m", "zero"], ["c"]), helper.make_node("Where", ["c", "fill", "x"], ["y"])]
    return make_model(nodes, [("x", np.float32, shape)], [("y", np.float32, shape)], inits, opset=17)


def _self_attention(shape: tuple) -> onnx.ModelProto:
    """softmax(x x^T / 4) x over the last two axes (Q = K = V = x), fused into one Attention node whose float
    heads run in register blocks: ``shape`` (batch, heads, tokens, head size) gives partial blocks of rows,
    keys past the last whole vectors and a head size past the last whole vector."""
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["x", "xt"], ["p"]), helper.make_node("Mul", ["p", "scale"], ["s"]),
             helper.make_node("Softmax", ["s"], ["w"], axis=-1), helper.make_node("MatMul", ["w", "x"], ["y"])]
    return make_model(nodes, [("x", np.float32, shape)], [("y", np.float32, shape)],
                      {"scale": np.array(0.25, np.float32)})


def _recurrent(op: str, seq: int, batch: int, hidden: int, lens: Optional[list] = None, peepholes: bool = False,
               bias: bool = True, **attrs) -> onnx.ModelProto:
    """An LSTM or GRU over (seq, batch, 5): ``hidden`` past the last whole vectors (a float LSTM's cells run a
    vector of hidden units at a time, kernels/rnn.hxx's lstm_row: the last units in a vector overlapping the one
    before), peepholes, rows of other lengths, the activations given (their vector forms), with or without
    biases."""
    rng = np.random.default_rng(hidden)
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    gates = 4 if op == "LSTM" else 3
    inits = {"w": rng.standard_normal((dirs, gates * hidden, 5)).astype(np.float32) * 0.5,
             "r": rng.standard_normal((dirs, gates * hidden, hidden)).astype(np.float32) * 0.3,
             "b": rng.standard_normal((dirs, 2 * gates * hidden)).astype(np.float32) * 0.3}
    names = ["x", "w", "r", "b", "", "", "", ""][:8 if op == "LSTM" else 6]
    if not bias:
        del inits["b"]
        names[3] = ""
    if lens:
        inits["lens"], names[4] = np.array(lens, np.int32), "lens"
    if peepholes:
        inits["p"], names[7] = rng.standard_normal((dirs, 3 * hidden)).astype(np.float32) * 0.3, "p"
    node = helper.make_node(op, names, ["y"], hidden_size=hidden, **attrs)
    return make_model([node], [("x", np.float32, [seq, batch, 5])], [("y", np.float32, None)], inits)


def _lstm(*args, **kwargs) -> onnx.ModelProto:
    return _recurrent("LSTM", *args, **kwargs)


def _gru(*args, **kwargs) -> onnx.ModelProto:
    return _recurrent("GRU", *args, **kwargs)


MODELS = {
    "gelu_erf_chain": lambda: _gelu_erf((3, 37, 19)),
    "gelu_tanh": lambda: _one_node("Gelu", (5, 77), approximate="tanh"),
    "gelu_exact": lambda: _one_node("Gelu", (5, 77)),
    "erf": lambda: _one_node("Erf", (4, 123)),
    "maxpool2d_s2": lambda: _one_node("MaxPool", (2, 5, 17, 21), kernel_shape=[2, 2], strides=[2, 2]),
    "maxpool2d_s1_pad": lambda: _one_node("MaxPool", (2, 3, 13, 11), kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "avgpool2d_s3": lambda: _one_node("AveragePool", (1, 4, 19, 23), kernel_shape=[3, 3], strides=[3, 3],
                                      pads=[1, 1, 1, 1], ceil_mode=1),
    "maxpool3d": lambda: _one_node("MaxPool", (1, 3, 9, 10, 11), kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
    "avgpool3d": lambda: _one_node("AveragePool", (1, 3, 9, 10, 11), kernel_shape=[3, 3, 3], pads=[1] * 6,
                                   count_include_pad=1),
    "global_avg": lambda: _one_node("GlobalAveragePool", (2, 16, 7, 9)),  # pool_global: 3 x 16 lanes and 15
    "global_max_8x8": lambda: _one_node("GlobalMaxPool", (2, 16, 8, 8)),  # 4 x 16 lanes, no remainder
    # pool_pairs (2-wide windows, stride 2, lines of whole vectors): an even count of line vectors; an odd one
    # on AVX-512 (the last output vector half full) with an odd number of rows (the last row unread); 3-D and
    # 1-D; AveragePool; lines of 24 and 8 floats (8-float vectors on AVX-512, an odd count of them for 8)
    "maxpool2d_pairs": lambda: _one_node("MaxPool", (2, 5, 16, 32), kernel_shape=[2, 2], strides=[2, 2]),
    "maxpool2d_pairs_odd": lambda: _one_node("MaxPool", (1, 3, 15, 16), kernel_shape=[2, 2], strides=[2, 2]),
    "maxpool3d_pairs": lambda: _one_node("MaxPool", (1, 3, 8, 7, 32), kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
    "maxpool1d_pairs": lambda: _one_node("MaxPool", (1, 3, 16), kernel_shape=[2], strides=[2]),
    "avgpool2d_pairs": lambda: _one_node("AveragePool", (1, 1, 6, 48), kernel_shape=[2, 2], strides=[2, 2]),
    "avgpool3d_pairs": lambda: _one_node("AveragePool", (2, 2, 5, 6, 16), kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
    "maxpool2d_pairs_24": lambda: _one_node("MaxPool", (1, 4, 6, 24), kernel_shape=[2, 2], strides=[2, 2]),
    "avgpool2d_pairs_8": lambda: _one_node("AveragePool", (1, 1, 7, 8), kernel_shape=[2, 2], strides=[2, 2]),
    # pool_lines_stride2: 11 outputs a line (less than a vector of AVX-512, more than one of AVX2); 18 with
    # padding along the leading axis; 3-D with 5 taps along the line; the tensor's last vectors from a copy
    "maxpool2d_k3s2": lambda: _one_node("MaxPool", (2, 32, 24, 24), kernel_shape=[3, 3], strides=[2, 2]),
    "avgpool2d_k3s2_pad": lambda: _one_node("AveragePool", (1, 3, 13, 37), kernel_shape=[3, 3], strides=[2, 2],
                                            pads=[1, 0, 1, 0], count_include_pad=1),
    "maxpool3d_k5s2": lambda: _one_node("MaxPool", (1, 3, 9, 10, 45), kernel_shape=[3, 2, 5], strides=[2, 1, 2]),
    # padding along the lines (its columns set to the identity; the first vectors of the tensor from a copy)
    "maxpool2d_k3s2_pad": lambda: _one_node("MaxPool", (2, 5, 23, 56), kernel_shape=[3, 3], strides=[2, 2],
                                            pads=[1, 1, 1, 1]),
    "avgpool2d_k5s2_pad": lambda: _one_node("AveragePool", (1, 3, 11, 30), kernel_shape=[3, 5], strides=[2, 2],
                                            pads=[1, 2, 0, 1], ceil_mode=1),
    # transpose_phases (channels last to first, 2, 4 or 8 channels): a tail after whole vectors; two chunks
    "transpose_phases_2": lambda: _one_node("Transpose", (2, 9, 37, 2), perm=[0, 3, 1, 2]),
    "transpose_phases_4": lambda: _one_node("Transpose", (1, 300, 4), perm=[0, 2, 1]),
    "transpose_phases_8": lambda: _one_node("Transpose", (3, 16, 17, 8), perm=[0, 3, 1, 2]),
    # Gemm of 1 to 4 terms per output with a bias, row by row (K = 4 writes bias and terms at once)
    "gemm_few_terms_4": lambda: _gemm_few_terms(4000, 4, 8),
    "gemm_few_terms_3_relu": lambda: _gemm_few_terms(3000, 3, 5, act="Relu"),
    "gemm_few_terms_1_trans_a": lambda: _gemm_few_terms(9000, 1, 3, trans_a=1),
    "gemm_few_terms_4_trans_a": lambda: _gemm_few_terms(2500, 4, 16, trans_a=1),
    # reduce_sum: sums of a middle axis in runs of kSumChunk (64) terms, columns in up to four vectors: 64
    # columns (four whole vectors on AVX-512), 37 (whole vectors and a tail), 8 (less than an AVX-512 vector),
    # 150 terms (three runs); the last axis (lanes of vectors: 5000 terms in two runs on AVX-512, a tail)
    "reduce_sum_middle": lambda: _reduce("ReduceSum", (2, 150, 64), [1]),
    "reduce_mean_37": lambda: _reduce("ReduceMean", (3, 70, 37), [1]),
    "reduce_l1_8": lambda: _reduce("ReduceL1", (4, 9, 8), [1]),
    "reduce_sum_square_last": lambda: _reduce("ReduceSumSquare", (3, 5000), [1]),
    "reduce_l2_rows": lambda: _reduce("ReduceL2", (7, 29), [1]),
    # gemm_shallow (register-tile code): B in registers, 50 columns (AVX-512: a block of 32, one of 16, 2 past
    # them); A transposed with 3 terms; alpha and beta with 12 terms and a Sigmoid
    "gemm_shallow_relu": lambda: _gemm_few_terms(100, 7, 50, act="Relu"),
    "gemm_shallow_trans_a": lambda: _gemm_few_terms(64, 3, 40, trans_a=1),
    "gemm_shallow_alpha_beta": lambda: _gemm_few_terms(37, 12, 64, act="Sigmoid", alpha=0.5, beta=2.0),
    "where_mask": lambda: _where_mask((2, 3, 5, 37)),
    "softmax_rows": lambda: _one_node("Softmax", (3, 5, 131), axis=-1),
    "softmax_rows_50": lambda: _one_node("Softmax", (4, 9, 50), axis=-1),
    "softmax_columns": lambda: _one_node("Softmax", (3, 37, 21), axis=1),
    "log_softmax_rows": lambda: _one_node("LogSoftmax", (4, 67), axis=-1),
    "layer_norm": lambda: _layer_norm((3, 7, 133), 133),
    "layer_norm_broadcast_scale": lambda: _layer_norm((3, 7, 12), 12, axis=-2),
    "attention_rows": lambda: _self_attention((2, 3, 21, 20)),
    # lstm_row: 37 hidden units (whole vectors, then one overlapping the last) with peepholes, clip, both
    # directions and rows of three lengths; 16 (whole vectors on every level) with the forget gate coupled to the
    # input gate; every activation ONNX names, with Keras's HardSigmoid gates, each in its vector form (Elu and
    # Softplus lane by lane), one without biases; 3 units (fewer than a vector: a loop per gate)
    "lstm_peepholes_lens": lambda: _lstm(6, 3, 37, lens=[6, 2, 4], peepholes=True, clip=2.5,
                                         direction="bidirectional"),
    "lstm_input_forget": lambda: _lstm(4, 2, 16, input_forget=1),
    "lstm_hard_sigmoid": lambda: _lstm(5, 3, 21, activations=["HardSigmoid", "Tanh", "Tanh"],
                                       activation_alpha=[0.2], activation_beta=[0.5]),
    "lstm_relu_softsign": lambda: _lstm(4, 2, 19, bias=False, activations=["Sigmoid", "Relu", "Softsign"]),
    "lstm_leaky_scaled": lambda: _lstm(4, 2, 23, clip=1.5, activations=["LeakyRelu", "ScaledTanh", "Elu"],
                                       activation_alpha=[0.1, 0.9, 0.7], activation_beta=[1.3]),
    "lstm_thresholded_affine": lambda: _lstm(4, 2, 18, activations=["Sigmoid", "ThresholdedRelu", "Affine"],
                                             activation_alpha=[0.2, 0.6], activation_beta=[0.1]),
    "lstm_softplus": lambda: _lstm(4, 2, 17, activations=["Softplus", "Tanh", "Tanh"]),
    "lstm_few_units": lambda: _lstm(4, 2, 3, peepholes=True, activations=["HardSigmoid", "Tanh", "Tanh"]),
    # GRU (a loop per gate over each row: cells in explicit vectors as lstm_row's were no faster) with the reset
    # gate after the product of all gates (linear_before_reset, as torch and Keras's reset_after write it) on 37
    # units with clip, both directions and three lengths; before the second product with Keras's HardSigmoid on 21
    # and without biases on 16; 3 units
    "gru_after_reset_lens": lambda: _gru(6, 3, 37, lens=[6, 2, 4], clip=2.5, linear_before_reset=1,
                                         direction="bidirectional"),
    "gru_reset_first": lambda: _gru(5, 3, 21, activations=["HardSigmoid", "Tanh"], activation_alpha=[0.2],
                                    activation_beta=[0.5]),
    "gru_reset_first_softsign": lambda: _gru(4, 2, 16, bias=False, activations=["Sigmoid", "Softsign"]),
    "gru_few_units": lambda: _gru(4, 2, 3, linear_before_reset=1),
    # fewer keys than a vector and a head narrower than one (narrower vectors, overlapping); 3 keys and 3
    # values (sums in registers); 50 keys and 24 values (the last vector of each overlapping the one before
    # on AVX-512, whole vectors on AVX2 and SSE2); a head of 8 (half a vector on AVX-512)
    "attention_rows_narrow": lambda: _self_attention((1, 2, 5, 6)),
    "attention_rows_tiny": lambda: _self_attention((2, 2, 3, 3)),
    "attention_rows_head8": lambda: _self_attention((1, 3, 11, 8)),
    "attention_rows_overlap": lambda: _self_attention((1, 2, 50, 24)),
    # heads of 16 and 40: two vectors of values per pass (AVX2), then one (40: a third pass on AVX2, overlapping)
    "attention_rows_head16": lambda: _self_attention((1, 2, 13, 16)),
    "attention_rows_head40": lambda: _self_attention((1, 1, 9, 40)),
    **TILE_MODELS,
}


@pytest.mark.parametrize("name", list(TILE_MODELS))
def test_tile_models_reach_their_kernel(name):
    """Each model above is computed by the kernel it is named after (the emitters' choices may move)."""
    several_words = "winograd_tiles" in name or "pointwise_strided" in name or "panels_rows" in name
    kernel = "_".join(name.split("_")[:3]) if several_words else "_".join(name.split("_")[:2])
    header = sr.load(TILE_MODELS[name]()).code(target="native").header
    assert re.search(rf"kernels::{kernel}[(<]", header)
    if name.endswith("_f43"):
        assert "kernels::conv_winograd_tiles<4, 3," in header


@pytest.mark.parametrize("name", [n for n in MODELS if n.startswith("gemm_shallow")])
def test_shallow_products_take_gemm_shallow(name):
    """Register-tile code (AVX2, AVX-512) holds B in registers for products of a few terms; generic code has
    no register tiles."""
    model = sr.load(MODELS[name]())
    for isa in ("avx2", "avx512"):
        assert "kernels::gemm_shallow<" in model.code(target=CpuTarget(isa=isa)).header
    assert "kernels::gemm_shallow<" not in model.code(target=CpuTarget(isa="generic")).header


def test_flags_name_their_instruction_set():
    for isa, flags in ISA_FLAGS.items():
        assert isa_for_flags(flags) == isa
    # switched off after the flag that names it: what the compiler then targets
    assert isa_for_flags(["-O3", "-march=x86-64-v4", "-mno-avx512f"]) == "avx2"
    assert isa_for_flags(["-march=x86-64-v3", "-mno-avx2"]) == "generic"


@pytest.mark.parametrize("isa", [isa for isa in RUNNABLE if isa != "generic"])
def test_emitter_mirrors_conv_direct_lanes(isa, tmp_path):
    """The emitter picks conv_shifted over conv_rows for shallow layers by the path conv_shifted will take
    (emitters/conv.py: direct_lanes); built for each instruction set this machine runs, with its vendor's costs,
    the kernel's conv_direct_lanes takes the same vector width on rows of 8 to 100 pixels, shallow to deep."""
    import subprocess

    from sofie_rdf.targets.cpu.emitters.conv import direct_lanes
    from sofie_rdf.targets.cpu.header import _INCLUDES
    from sofie_rdf.targets.cpu.isa import PRELUDE, builds, kernels_variant
    from sofie_rdf.targets.cpu.library import kernel_order, kernel_source

    cases = [(width, width + pad, steps) for width in range(8, 101) for pad in (2, 4) for steps in (9, 27, 36, 108, 400)]
    table = ", ".join(f"{{{w}, {p}, {s}}}" for w, p, s in cases)
    # the kernels as a header holds them for the flags' own instruction set (their feature macros defined)
    source = "\n".join([*(f"#include <{h}>" for h in _INCLUDES), "#include <cstdio>", PRELUDE, *builds(0),
                        kernel_source("blas"), "namespace detail {", kernel_source("runtime"), "}",
                        *kernels_variant(kernel_order({"conv"}), 0),
                        f"int main() {{ const size_t cases[][3] = {{{table}}};",
                        "  for (const auto &c : cases) std::printf(\"%zu\\n\", kernels::conv_direct_lanes(c[0], c[1], c[2])); }"])
    (tmp_path / "lanes.cpp").write_text(source)
    flags = ["-march=native"] + (["-mno-avx512f"] if isa != host_isa() else [])  # the native build's, narrowed
    subprocess.run(["c++", "-std=c++17", "-O1", *flags, "lanes.cpp", "-o", "lanes"], cwd=tmp_path, check=True,
                   capture_output=True)
    built = [int(v) for v in subprocess.run(["./lanes"], cwd=tmp_path, check=True, capture_output=True,
                                            text=True).stdout.split()]
    target = CpuTarget(isa=isa)
    assert built == [direct_lanes(w, p, s, target) for w, p, s in cases]
    assert any(built) and not all(built)  # both paths occur among the cases


@pytest.mark.parametrize("isa", ISA_PARAMS)
@pytest.mark.parametrize("name", list(MODELS))
def test_kernel_on_instruction_set(name, isa):
    model = MODELS[name]()
    shape = [d.dim_value or 3 for d in model.graph.input[0].type.tensor_type.shape.dim]  # 3 rows of an open batch
    x = random_array(tuple(shape), np.float32, seed=len(name)) * 3
    expected = ort_run(model, {"x": x})[0]
    got = sr.compile(sr.load(model), backend="native", flags=ISA_FLAGS[isa]).infer(x)
    # Winograd F(4, 3) rounds its transformed products to about 1e-5 of the output's scale (a few units here);
    # pooled sums add in another order than onnxruntime's, their error grows with their size
    sums = max(1.0, float(np.abs(expected).max())) if name.endswith("_pooled") else 1.0
    atol = 1e-4 if name.endswith("_f43") else ATOL * sums
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol)


def _integer_products(ta, tb) -> tuple[onnx.ModelProto, dict]:
    """MatMulInteger (tiles and their tails) and QLinearConv of full-range bytes with zero points: where uint8
    activations meet int8 weights, an AVX2 kernel summing pairs in 16 bits (vpmaddubsw) would saturate."""
    rng = np.random.default_rng(11)
    def full(shape, dtype):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max + 1, shape).astype(dtype)

    inits = {"b": full((67, 37), tb), "za": full((), ta), "zb": full((37,), tb), "w": full((20, 3, 3, 3), tb),
             "sx": np.array(0.05, np.float32), "sw": rng.uniform(0.002, 0.01, 20).astype(np.float32),
             "zw": np.zeros(20, tb), "sy": np.array(0.8, np.float32), "zy": np.array(5, ta)}
    nodes = [helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"]),
             helper.make_node("QLinearConv", ["x", "sx", "za", "w", "sw", "zw", "sy", "zy"], ["c"], pads=[1] * 4)]
    model = make_model(nodes, [("a", ta, [9, 67]), ("x", ta, [2, 3, 9, 11])], [("y", np.int32, None), ("c", ta, None)],
                       inits, opset=10)
    return model, {"a": full((9, 67), ta), "x": full((2, 3, 9, 11), ta)}


@pytest.mark.parametrize("isa", ["avx2", "avx512"])
@pytest.mark.parametrize("name", ["gemm_panels", "gemm_panels_runs", "gemm_panels_run_tail", "gemm_panels_pooled",
                                  "gemm_panels_deep", "conv_winograd_tiles_f23", "conv_winograd_tiles_compact",
                                  "conv_winograd_tiles_f43", "conv_pointwise_strided_odd", "conv_pointwise_tails",
                                  "conv_pointwise_narrow_1d", "conv_shifted_passes", "conv_shifted_13",
                                  "conv_shifted_5x5_s2", "conv_shifted_direct_sigmoid", "conv_shifted_direct_8",
                                  "conv_shifted_direct_24", "conv_shifted_direct_3d_8", "conv_shifted_direct_overlap_3d",
                                  "attention_rows", "attention_rows_overlap",
                                  "attention_rows_head40", "gemm_panels_rows_open"])
def test_tile_assembly_gives_the_loops_numbers(name, isa):
    """The register tiles in inline assembly (kernels/gemm.hxx: SOFIE_RDF_TILE_ASM for AVX2, SOFIE_RDF_TILE_ASM512
    for AVX-512, Cling's path; products, convolutions and attention's), built by g++ with -Wall -Wextra -Werror
    where SOFIE_RDF_TILE_ASM_ALWAYS asks for it: the same multiply-adds in the same order as the loops in C++, so
    the same bits."""
    if isa not in RUNNABLE:
        pytest.skip(f"no {isa} here")
    model = MODELS[name]()
    shape = [d.dim_value or 3 for d in model.graph.input[0].type.tensor_type.shape.dim]  # 3 rows of an open batch
    x = random_array(tuple(shape), np.float32, seed=len(name)) * 3
    loops = sr.compile(sr.load(model), backend="native", flags=ISA_FLAGS[isa]).infer(x)
    flags = ISA_FLAGS[isa] + ["-Wall", "-Wextra", "-Werror", "-DSOFIE_RDF_TILE_ASM_ALWAYS"]
    assembly = sr.compile(sr.load(model), backend="native", flags=flags).infer(x)
    np.testing.assert_array_equal(assembly, loops)


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("types", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)],
                         ids=["u8s8", "s8s8", "u8u8"])
def test_integer_products_on_instruction_set(isa, types):
    """The integer products built for each instruction set (AVX2 here has no VNNI, as on AMD's Zen 2 and 3)
    against onnx's reference evaluator: exact on every one.  onnxruntime is no reference here: without VNNI its
    uint8 x int8 products saturate (tests/ops/test_quantized.py: exact_reference)."""
    from onnx.reference import ReferenceEvaluator

    model, feeds = _integer_products(*types)
    got = sr.compile(sr.load(model), backend="native", flags=ISA_FLAGS[isa]).infer(feeds["a"], feeds["x"])
    for g, e in zip(got, ReferenceEvaluator(model).run(None, feeds)):
        np.testing.assert_array_equal(g, e)


# Models whose kernels differ most between instruction sets: register tiles of products and convolutions, Winograd's
# transforms, attention's blocks, the fast exponential, and the integer products.
DISPATCH_MODELS = ["gemm_panels_deep", "conv_rows_strided", "conv_winograd_tiles_f43", "conv_shifted_direct_24",
                   "attention_rows_head16", "gelu_erf_chain", "integer_u8s8"]


def _quantized_product() -> onnx.ModelProto:
    """x quantized to uint8, times full-range int8 weights (MatMulInteger), as float: exact on every level."""
    rng = np.random.default_rng(12)
    inits = {"s": np.array(0.02, np.float32), "z": np.array(131, np.uint8),
             "w": rng.integers(-128, 128, (70, 37)).astype(np.int8), "zw": np.array(3, np.int8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("MatMulInteger", ["q", "w", "z", "zw"], ["p"]),
             helper.make_node("Cast", ["p"], ["y"], to=onnx.TensorProto.FLOAT)]
    return make_model(nodes, [("x", np.float32, [9, 70])], [("y", np.float32, [9, 37])], inits, opset=13)


def _dispatch_driver(code, outputs: int) -> str:
    """A program running ``code``'s Session on the float32 input in argv[2], printing the level it chose (fIsa) and
    writing its outputs to argv[3...]."""
    ns = code.namespace
    return "\n".join([
        f'#include "{code.name}.hxx"', "#include <cstdio>",
        "int main(int argc, char **argv) {",
        f"   if (argc != {3 + outputs}) return 2;",
        f"   {ns}::Session s(argv[1]);",
        "   std::ifstream in(argv[2], std::ios::binary | std::ios::ate);",
        "   std::vector<float> x(in.tellg() / sizeof(float));",
        "   in.seekg(0); in.read(reinterpret_cast<char *>(x.data()), x.size() * sizeof(float));",
        "   auto y = s.infer(x.data());",
        '   std::printf("%d\\n", s.fIsa);',
        "   std::ofstream(argv[3], std::ios::binary).write(reinterpret_cast<const char *>(y.data()), "
        "y.size() * sizeof(float));",
        "}", ""])


@pytest.mark.parametrize("name", DISPATCH_MODELS)
def test_one_header_every_instruction_set(name, tmp_path):
    """A header planned for this CPU and built as someone else's build system does (``g++ -O2``, no ``-march``)
    holds the kernels of each instruction set from generic x86-64 to this CPU's: the Session runs the widest
    (``fIsa``), ``SOFIE_RDF_MAX_ISA`` caps it, and each computes the model's numbers.  -Wall -Wextra -Werror."""
    import os
    import subprocess

    from onnx.reference import ReferenceEvaluator

    from sofie_rdf._root import blas_paths
    from sofie_rdf.targets.cpu import write_files

    model = _quantized_product() if name == "integer_u8s8" else MODELS[name]()
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = random_array(tuple(shape), np.float32, seed=len(name)) * 3
    # onnxruntime's uint8 x int8 products saturate without VNNI (tests/ops/test_quantized.py: exact_reference)
    reference = ReferenceEvaluator(model).run if name == "integer_u8s8" else lambda _, feeds: ort_run(model, feeds)
    expected = reference(None, {"x": x})[0]
    code = sr.load(model, name="dispatch").code(target=CpuTarget(isa=host_isa()))
    files = write_files(code, tmp_path)
    (tmp_path / "main.cpp").write_text(_dispatch_driver(code, 1))
    lib, include = blas_paths()
    subprocess.run(["c++", "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(include), "main.cpp", "-o",
                    "main", "-L", str(lib.parent), f"-l{lib.stem[3:]}", f"-Wl,-rpath,{lib.parent}"],
                   cwd=tmp_path, check=True, capture_output=True, text=True)
    x.tofile(tmp_path / "x.bin")
    vnni = _has_vnni()
    for level, isa in enumerate(RUNNABLE):
        env = {**os.environ, "SOFIE_RDF_MAX_ISA": isa}
        run = subprocess.run(["./main", str(files.weights), "x.bin", "y.bin"], cwd=tmp_path, env=env, check=True,
                             capture_output=True, text=True)
        assert int(run.stdout) == (level if level < 2 or vnni else 1), f"{isa}: ran level {run.stdout.strip()}"
        got = np.fromfile(tmp_path / "y.bin", np.float32).reshape(expected.shape)
        atol = 1e-4 if name.endswith("_f43") else ATOL
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol, err_msg=isa)


_DECLARE = """
import json, os, sys
os.environ.pop("EXTRA_CLING_ARGS", None)
import ROOT  # started before sofie_rdf: Cling compiles for baseline x86-64, as in a user's own macro
ROOT.gInterpreter.Declare("namespace sofie_rdf_test_declare {}")
import numpy as np
header, namespace, weights, levels = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
assert ROOT.gSystem.Load(sys.argv[6]) >= 0  # BLAS, as a user loads it
eager = "#define SOFIE_RDF_CLING_EAGER\\n" if os.environ.get("SOFIE_RDF_TEST_EAGER") else ""
assert ROOT.gInterpreter.Declare(eager + '#include "' + header + '"')
x = np.fromfile(sys.argv[5], np.float32)
out = {}
for isa in levels:
    os.environ["SOFIE_RDF_MAX_ISA"] = isa  # read when a Session is made
    s = getattr(ROOT, namespace).Session(weights)
    out[isa] = [s.fIsa, list(s.infer(*[int(n) for n in sys.argv[7:]], x))]  # an open batch's rows first
print(json.dumps(out))
"""


def _encoder(folder: Path) -> onnx.ModelProto:
    """The HEP family's two-layer transformer encoder (benchmarks/models.py), exported by torch."""
    pytest.importorskip("torch")
    from benchmarks import models

    return onnx.load(models.onnx_path("Encoder_50tok_64f_2L", folder))


@pytest.mark.parametrize("name", ["gemm_panels_deep", "conv_rows_strided", "conv_winograd_tiles_f43", "gelu_erf_chain",
                                  "attention_rows_head16", "encoder", "conv_shifted_passes", "gemm_panels_rows_open",
                                  "eager:conv_winograd_tiles_pooled_f43", "eager:gemm_panels_rows_open"])
def test_header_declared_to_cling_runs_every_instruction_set(name, tmp_path):
    """The road SOFIE's users take: a header ``Model.generate`` wrote, ``gInterpreter.Declare``'d into a ROOT that
    started before sofie_rdf (no -march: Cling's own flags, -O1 and ROOT's register allocator).  Its regions compile
    under Cling's Clang with every kernel always_inline (isa.CLING_INLINE; the encoder once failed there for want
    of a register; the register tiles run in inline assembly there, gemm.hxx: SOFIE_RDF_TILE_ASM), and each level
    this CPU runs computes the model's numbers; "eager:" with SOFIE_RDF_CLING_EAGER defined (isa.PRELUDE: the
    planned level's infer compiled in the header's own transaction, at -O3)."""
    import json
    import os
    import subprocess
    import sys

    from sofie_rdf._root import blas_paths

    pytest.importorskip("ROOT")
    eager, _, name = name.rpartition(":")
    model = _encoder(tmp_path) if name == "encoder" else MODELS[name]()
    shape = [d.dim_value or 3 for d in model.graph.input[0].type.tensor_type.shape.dim]  # 3 rows of an open batch
    x = random_array(tuple(shape), np.float32, seed=len(name)) * 3
    expected = ort_run(model, {"x": x})[0]
    files = sr.load(model, name=f"declared_{name}").generate(tmp_path)
    x.tofile(tmp_path / "x.bin")
    (tmp_path / "declare.py").write_text(_DECLARE)
    run = subprocess.run([sys.executable, "declare.py", str(files.header), files.namespace, str(files.weights),
                          ",".join(RUNNABLE), "x.bin", str(blas_paths()[0]), *(["3"] if name.endswith("_open") else [])],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "SOFIE_RDF_TEST_EAGER": eager})
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for level, isa in enumerate(RUNNABLE):
        chosen, y = results[isa]
        assert chosen == (level if level < 2 or _has_vnni() else 1), isa
        atol = 1e-4 if name.endswith("_f43") else ATOL
        np.testing.assert_allclose(np.array(y, np.float32).reshape(expected.shape), expected, rtol=RTOL, atol=atol,
                                   err_msg=isa)


def _has_vnni() -> bool:
    """Whether this CPU has the AVX-512 level's features (kernels/isa.hxx): F, BW, DQ, VL and VNNI."""
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE).group(1).split())
    return {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"} <= flags
