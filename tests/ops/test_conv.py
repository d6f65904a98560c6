"""Convolutions against onnxruntime: Conv and ConvTranspose (1-D to 3-D, every attribute), the
kernel paths (im2col, 1x1, depthwise direct), constant folding, and activation fusion."""

import re

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper
from onnx.reference import ReferenceEvaluator

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError
from sofie_rdf.ops.reference import winograd_kernel, winograd_weights
from sofie_rdf.session import jit_session
from sofie_rdf.targets.cpu import CpuTarget, host_isa, write_files
from sofie_rdf.targets.cpu.jit import jit_declare

SPATIAL = {1: (9,), 2: (7, 8), 3: (5, 6, 4)}
KERNEL = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}


def _conv_model(op, x_shape, w_shape, attrs, bias=True, dtype=np.float32, seed=0, w_input=False, act=None,
                opset=17, batch_symbol=False):
    """One Conv/ConvTranspose node (optionally followed by an activation), its feeds and initializers."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    features = w_shape[0] if op == "Conv" else w_shape[1] * attrs.get("group", 1)
    inputs = [("x", dtype, ["N", *x_shape[1:]] if batch_symbol else list(x_shape))]
    feeds, inits, names = {"x": x}, {}, ["x", "w"]
    if w_input:
        inputs.append(("w", dtype, list(w_shape)))
        feeds["w"] = w
    else:
        inits["w"] = w
    if bias:
        inits["b"] = rng.standard_normal(features).astype(dtype)
        names.append("b")
    nodes = [helper.make_node(op, names, ["t" if act else "y"], **attrs)]
    if act:
        nodes.append(act)
    model = make_model(nodes, inputs, [("y", dtype, None)], inits, opset=opset)
    return model, feeds


def _conv(check_model, rank=2, channels=4, features=6, attrs=None, **options):
    attrs = dict(attrs or {})
    group = attrs.get("group", 1)
    kernel = attrs.get("kernel_shape", KERNEL[rank])
    model, feeds = _conv_model("Conv", (2, channels, *SPATIAL[rank]), (features, channels // group, *kernel),
                               attrs, **options)
    return check_model(model, feeds)


def _conv_transpose(check_model, rank=2, channels=4, features=3, attrs=None, reference=False, **options):
    attrs = dict(attrs or {})
    shape = tuple(s - 2 for s in SPATIAL[rank])
    model, feeds = _conv_model("ConvTranspose", (2, channels, *shape), (channels, features, *KERNEL[rank]), attrs,
                               **options)
    # onnxruntime splits an odd total padding the other way than the spec; the onnx reference follows the spec.
    return _check_reference(model, feeds) if reference else check_model(model, feeds)


def _check_reference(model, feeds):
    """Compare with the onnx reference evaluator, where onnxruntime differs from the spec or lacks a kernel."""
    ours = sofie_run(model, feeds)[0]
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)


# ---- Conv -------------------------------------------------------------------

@pytest.mark.parametrize("rank, bias", [(1, True), (2, True), (3, True), (2, False)])
def test_conv_basic(check_model, rank, bias):
    _conv(check_model, rank, bias=bias)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_strides_dilations_asymmetric_pads(check_model, rank):
    attrs = {"strides": [2, 1, 3][:rank], "dilations": [1, 2, 1][:rank], "pads": [1, 0, 2][:rank] + [0, 2, 1][:rank]}
    _conv(check_model, rank, attrs=attrs)


@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_auto_pad(check_model, auto_pad, rank):
    # Stride 2 over odd sizes makes the SAME total padding odd, so UPPER and LOWER differ.
    attrs = {"auto_pad": auto_pad, "strides": [2] * rank}
    _conv(check_model, rank, attrs=attrs, seed=rank)


@pytest.mark.parametrize("group, features, rank", [(2, 6, 1), (2, 6, 2), (4, 12, 3)])
def test_conv_groups(check_model, group, features, rank):
    _conv(check_model, rank, features=features, attrs={"group": group, "pads": [1] * (2 * rank)})


# multipliers 1 and 2 run the direct kernel, 8 im2col
@pytest.mark.parametrize("multiplier, rank", [(1, 1), (1, 2), (1, 3), (2, 2), (8, 2)])
def test_conv_depthwise(check_model, multiplier, rank):
    attrs = {"group": 4, "strides": [2] * rank, "dilations": [1] * (rank - 1) + [2], "pads": [1] * rank + [0] * rank}
    _conv(check_model, rank, channels=4, features=4 * multiplier, attrs=attrs)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_pointwise(check_model, rank):
    """1x1, stride 1, no pad: the input is multiplied directly, without im2col."""
    _conv(check_model, rank, channels=5, features=7, attrs={"kernel_shape": [1] * rank})


@pytest.mark.parametrize("x_shape, features, bias, symbolic", [
    ((2, 24, 7, 11), 13, True, False),    # 77 positions: whole tiles and a partial one; 13 = 6 + 6 + 1 features
    ((3, 5, 9, 23), 2, False, False),     # 2 features: the wider tiles of few output channels
    ((1, 64, 50, 16), 64, True, False),   # an EdgeConv layer: 800 positions, whole tiles only on AVX-512
    ((2, 14, 40), 32, True, True),        # Conv1d over a particle axis left free: the size arrives at run time
    ((1, 3, 4, 5, 6), 7, True, False),    # 3-D, 120 positions
    ((2, 1, 1, 1), 1, False, False),      # one position, one channel
])
def test_conv_pointwise_register_tiles(check_model, x_shape, features, bias, symbolic):
    """Native code runs 1x1 layers with conv_pointwise's register tiles straight on the input: partial tiles of
    positions (a zero-padded copy of their columns) and of output channels, symbolic image sizes, the ReLU and
    the bias applied in the tile."""
    rank = len(x_shape) - 2
    model, feeds = _conv_model("Conv", x_shape, (features, x_shape[1]) + (1,) * rank, {"kernel_shape": [1] * rank},
                               bias=bias, act=helper.make_node("Relu", ["t"], ["y"]))
    if symbolic:
        model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "P"
    header = sr.load(model).code().header
    assert "kernels::conv_pointwise(" in header and "kernels::conv_gemm(" not in header
    assert "kernels::conv_pointwise(" not in sr.load(model).code(target=CpuTarget(isa="generic")).header  # BLAS
    check_model(model, feeds, rtol=1e-4, atol=1e-4, backend="native")


@pytest.mark.parametrize("x_shape, features, strides", [
    ((2, 12, 9, 11), 13, [2, 2]),      # odd sizes: the last position of each row read, 13 = 6 + 6 + 1 features
    ((1, 16, 32, 32), 32, [2, 2]),     # a ResNet shortcut
    ((1, 5, 8, 9, 10), 7, [1, 2, 3]),  # 3-D, a different stride per dim
    ((2, 7, 31), 4, [3]),              # 1-D, stride 3
])
def test_conv_pointwise_strided(check_model, x_shape, features, strides):
    """Native code runs strided 1x1 layers (no padding) as conv_pointwise on the positions they read, gathered
    first; generic x86-64 code keeps im2col and BLAS."""
    rank = len(x_shape) - 2
    model, feeds = _conv_model("Conv", x_shape, (features, x_shape[1]) + (1,) * rank, {"strides": strides},
                               bias=True, act=helper.make_node("Relu", ["t"], ["y"]))
    assert "kernels::conv_pointwise_strided(" in sr.load(model).code().header
    assert "kernels::conv_pointwise_strided(" not in sr.load(model).code(target=CpuTarget(isa="generic")).header
    check_model(model, feeds, rtol=1e-4, atol=1e-4, backend="native")


def test_conv_kernel_shape_attribute(check_model):
    _conv(check_model, 2, attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})


def test_conv_float64():
    """onnxruntime has no double Conv on CPU: the onnx reference checks it."""
    model, feeds = _conv_model("Conv", (2, 4, 7, 8), (6, 2, 3, 2), {"strides": [2, 1], "pads": [0, 1, 1, 0], "group": 2},
                               dtype=np.float64)
    _check_reference(model, feeds)


def test_conv_runtime_weights(check_model):
    _conv(check_model, 2, attrs={"group": 2}, w_input=True)


def test_conv_large_image_uses_blas(check_model):
    model, feeds = _conv_model("Conv", (1, 16, 20, 20), (32, 16, 3, 3), {"pads": [1, 1, 1, 1]})
    check_model(model, feeds, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("x_shape, w_shape, attrs", [
    ((3, 32, 12, 13), (7, 32, 5, 5), {"pads": [2, 2, 2, 2]}),  # 800 channel x tap steps: two passes; 7 = 6 + tail
    ((2, 40, 9, 10), (13, 40, 3, 3), {"pads": [1, 0, 2, 1], "dilations": [2, 1]}),
    ((1, 70, 10, 10), (40, 70, 5, 5), {"pads": [2, 2, 2, 2]}),  # 1750 steps, 40 = 6 * 6 + 4
    ((2, 2, 6, 7, 8), (3, 2, 3, 3, 3), {"pads": [1, 1, 1, 1, 1, 1]}),
    # strided: the padded image split by phase
    ((2, 3, 23, 20), (16, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 2, 3]}),  # a stem: odd sizes, uneven pads
    ((1, 40, 15, 17), (13, 40, 5, 5), {"strides": [2, 3], "pads": [2, 1, 2, 2], "dilations": [1, 2]}),  # 2 passes
    ((2, 4, 9, 8, 11), (5, 4, 3, 3, 4), {"strides": [2, 1, 3], "pads": [1, 0, 1, 1, 1, 2]}),
    ((2, 6, 50), (8, 6, 5), {"strides": [4]}),
])
def test_conv_shifted_kernel_passes_and_tails(check_model, x_shape, w_shape, attrs):
    """The direct kernel: several accumulation passes, output channels not a multiple of its block, batch > 1,
    strides with dilations and pads."""
    model, feeds = _conv_model("Conv", x_shape, w_shape, attrs, act=helper.make_node("Relu", ["t"], ["y"]))
    assert "conv_shifted" in sr.load(model).code().header
    # Sums of up to 1750 unscaled products (outputs up to 80) round differently in any other order: against
    # float64, ours are within 2.2e-4 on the first case, and onnxruntime's order changes with the instruction
    # set it finds (its AVX-512 kernels' results differ from its AVX2 ones by as much).
    check_model(model, feeds, rtol=1e-4, atol=5e-4, backend="native")


@pytest.mark.parametrize("x_shape, w_shape, attrs", [
    ((2, 64, 7, 7), (48, 64, 3, 3), {"pads": [1, 1, 1, 1]}),  # 576 steps: two passes; 49 = 4 x 6 + 5 x 5
    ((1, 24, 13, 12), (64, 24, 3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 2], "dilations": [1, 2]}),
    ((2, 8, 30), (48, 8, 5), {"strides": [3], "pads": [2, 1]}),
    ((1, 6, 5, 6, 7), (48, 6, 2, 2, 3), {"strides": [1, 2, 1], "pads": [0, 1, 1, 1, 0, 1]}),
    ((2, 16, 12, 12), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),  # a calorimeter CNN's layer, ahead of Winograd
    ((1, 12, 14, 29), (32, 12, 3, 3), {"pads": [1, 1, 1, 1]}),  # 406 positions: shallow enough for more than 256
    ((1, 4, 9, 9), (16, 4, 3, 3), {"pads": [1, 1, 1, 1]}),  # few channels on rows conv_shifted's vectors would waste
])
def test_conv_rows_kernel(check_model, x_shape, w_shape, attrs):
    """Small images with output channels in blocks of 16: positions as the register tile's rows (native code
    only)."""
    model, feeds = _conv_model("Conv", x_shape, w_shape, attrs, act=helper.make_node("Relu", ["t"], ["y"]))
    assert "kernels::conv_rows(" in sr.load(model).code().header
    check_model(model, feeds, rtol=1e-4, atol=1e-4, backend="native")


@pytest.mark.parametrize("x_shape, w_shape, attrs, rows", [
    ((1, 42, 100, 1), (64, 42, 3, 1), {"pads": [1, 0, 1, 0]}, 100),  # DeepAK8's Conv1D, exported on a 2-D layout
    ((2, 8, 30, 1), (48, 8, 5, 1), {"strides": [3, 1], "pads": [2, 0, 1, 0]}, 30),
    ((1, 6, 20, 1, 1), (16, 6, 3, 1, 1), {"pads": [1, 0, 0, 1, 0, 0]}, 20),  # two trailing dims of one value
    ((1, 4, 9, 1), (7, 4, 3, 1), {"pads": [1, 0, 1, 0]}, 9),  # conv_shifted
    ((1, 4, 9, 2), (7, 4, 3, 1), {"pads": [1, 0, 1, 0]}, 2),  # a last dim of two: kept
    ((1, 4, 9, 1), (7, 4, 3, 1), {"pads": [1, 1, 1, 0]}, 1),  # padded along it: kept
])
@pytest.mark.parametrize("backend", ["native", "jit"])
def test_conv_trailing_unit_dims_leave_the_rows(check_model, x_shape, w_shape, attrs, rows, backend):
    """Trailing spatial dims of one value (image, output and kernel, no padding) leave the kernels' geometry, whose
    rows are then the layer's last real dim (emitters/conv.py: rows_last); the same numbers as onnxruntime's."""
    model, feeds = _conv_model("Conv", x_shape, w_shape, attrs, act=helper.make_node("Relu", ["t"], ["y"]))
    header = sr.load(model).code().header
    assert re.search(r"const size_t image_\[\] = \{[0-9, ]*, " + str(rows) + r"\};", header), rows
    check_model(model, feeds, rtol=1e-4, atol=1e-4, backend=backend)


def test_conv_rows_under_cling(check_model, tmp_path):
    """The JIT (target "jit", what compile(backend="jit") generates) plans conv_rows' register tiles for this CPU
    as the native build does; code for generic x86-64 runs the layer through im2col and BLAS instead, and under
    Cling it computes the same numbers."""
    model, feeds = _conv_model("Conv", (1, 24, 13, 12), (64, 24, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]})
    assert ("kernels::conv_rows(" in sr.load(model).code(target="jit").header) == (host_isa() != "generic")
    ours = check_model(model, feeds, rtol=1e-4, atol=1e-4, backend="jit")[0]
    generic = sr.load(model, name="GenericUnderCling").code(target=CpuTarget("cling", "generic"))
    assert "kernels::conv_rows(" not in generic.header and "kernels::conv_gemm(" in generic.header
    files = write_files(generic, tmp_path)
    jit_declare(generic, tmp_path)
    y = jit_session(generic, generic.namespace, files.weights, tmp_path).infer(feeds["x"])
    np.testing.assert_allclose(y, ours, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape, w_shape, attrs, order, backend", [
    ((1, 32, 56, 54), (64, 32, 3, 3), {"pads": [1, 1, 1, 1]}, "4, 3", "native"),  # 14 x 14 tiles, the last ones partial
    ((1, 24, 13, 11), (36, 24, 3, 3), {"pads": [2, 0, 1, 1]}, "2, 3", "generic"),  # asymmetric pads: 7 x 5 tiles
    ((1, 16, 6, 140), (33, 16, 3, 3), {}, "4, 3", "generic"),                     # no pad, 35 tiles along x: two chunks
    ((3, 20, 4, 70), (44, 20, 3, 3), {"pads": [0, 1, 0, 1]}, "2, 3", "native"),  # batch 3, 1 x 35 tiles for m = 2
    ((2, 16, 23, 70), (24, 16, 5, 5), {"pads": [2, 1, 2, 3]}, "2, 5", "generic"),    # 5x5: 12 x 36 tiles
    ((1, 32, 180, 100), (64, 32, 5, 5), {"pads": [2, 2, 2, 2]}, "2, 5", "native"),  # blocks of tile rows
])
def test_conv_winograd(check_model, tmp_path, x_shape, w_shape, attrs, order, backend):
    """Stride-1 layers with many channels run as Winograd F(m x m, r x r), natively and in code for generic x86-64
    (declared to Cling); its rounding (products of transformed values, up to 1e-5 of the output's scale for m = 4
    and r = 5) sets the tolerance."""
    model, feeds = _conv_model("Conv", x_shape, w_shape, attrs, act=helper.make_node("Relu", ["t"], ["y"]))
    scale = float(np.abs(ort_run(model, feeds)[0]).max())
    tolerance = 1e-5 if order == "2, 3" else 1e-4
    if backend == "native":
        assert f"conv_winograd<{order}>" in sr.load(model).code().header
        check_model(model, feeds, rtol=1e-4, atol=tolerance * scale, backend=backend)
        return
    code = sr.load(model, name="Winograd_" + "_".join(map(str, x_shape))).code(target=CpuTarget("cling", "generic"))
    assert f"conv_winograd<{order}>" in code.header
    files = write_files(code, tmp_path)
    jit_declare(code, tmp_path)
    y = jit_session(code, code.namespace, files.weights, tmp_path).infer(feeds["x"])
    np.testing.assert_allclose(y, ort_run(model, feeds)[0], rtol=1e-4, atol=tolerance * scale)


@pytest.mark.parametrize("x_shape, w_shape, attrs, order", [
    ((1, 32, 14, 14), (32, 32, 3, 3), {"pads": [1, 1, 1, 1]}, "2, 3"),       # 7 x 7 tiles: one plane of 7 x 8
    ((1, 32, 16, 16), (32, 32, 3, 3), {"pads": [1, 1, 1, 1]}, "4, 3"),       # whole 4 x 4 tiles: F(4, 3), compact
    ((3, 18, 17, 19), (21, 18, 3, 3), {"pads": [1, 1, 1, 1]}, "2, 3"),       # partial tiles, features 4 x 5 + 1
    ((2, 16, 18, 18), (16, 16, 3, 3), {"pads": [0, 2, 1, 0]}, "2, 3"),       # asymmetric pads: 17 x 18 outputs
    ((1, 16, 26, 18), (16, 16, 3, 3), {}, "4, 3"),                           # no pad: 24 x 16 outputs
    ((1, 16, 24, 20), (16, 16, 3, 3), {}, "2, 3"),                           # no pad: 22 x 18, partial 4 x 4 tiles
    ((2, 16, 31, 26), (33, 16, 3, 3), {"pads": [1, 1, 1, 1]}, "4, 3"),       # F(4, 3), 8 x 7 tiles, the last partial
    ((1, 64, 20, 20), (16, 64, 3, 3), {"pads": [1, 1, 1, 1]}, "4, 3"),       # deep: 64 channels, 16 features
    ((1, 64, 18, 18), (16, 64, 3, 3), {"pads": [1, 1, 1, 1]}, "2, 3"),       # the same on 18 pixels: F(2, 3)
    ((2, 64, 8, 8), (40, 64, 3, 3), {"pads": [1, 1, 1, 1]}, "2, 3"),         # 8 pixels: 4 x 4 tiles without a column
    ((1, 48, 11, 8), (50, 48, 3, 3), {"pads": [1, 1, 1, 1]}, "2, 3"),        # the same, 6 tile rows, the last partial
    ((1, 24, 12, 12), (24, 24, 3, 3), {"pads": [1, 1, 1, 1]}, "2, 3"),       # 12 pixels: few channels, still enough
])
def test_conv_winograd_tiles(check_model, x_shape, w_shape, attrs, order):
    """3x3 layers of calorimeter-sized images run as conv_winograd_tiles in native code (whole planes of tiles,
    products in register tiles), F(2, 3) or F(4, 3); their rounding sets the tolerance as for conv_winograd."""
    model, feeds = _conv_model("Conv", x_shape, w_shape, attrs, act=helper.make_node("Relu", ["t"], ["y"]))
    assert f"conv_winograd_tiles<{order}, " in sr.load(model).code(target="native").header
    scale = float(np.abs(ort_run(model, feeds)[0]).max())
    tolerance = 1e-5 if order == "2, 3" else 1e-4
    check_model(model, feeds, rtol=1e-4, atol=tolerance * scale, backend="native")


def test_conv_winograd_tiles_without_bias(check_model):
    """No bias and no activation: the plain convolution (the output planes take neither)."""
    model, feeds = _conv_model("Conv", (1, 16, 24, 24), (24, 16, 3, 3), {"pads": [1, 1, 1, 1]}, bias=False)
    assert "conv_winograd_tiles<4, 3, " in sr.load(model).code(target="native").header
    scale = float(np.abs(ort_run(model, feeds)[0]).max())
    check_model(model, feeds, rtol=1e-4, atol=1e-4 * scale, backend="native")


@pytest.mark.parametrize("m, r", [(2, 3), (4, 3), (2, 5)])
def test_winograd_weights_round_trip(m, r):
    """The numpy reference of a Winograd node reads its transformed weights back (G's pseudo-inverse)."""
    w = np.random.default_rng(1).standard_normal((5, 7, r, r)).astype(np.float32)
    u = winograd_weights(w, m)
    assert u.shape == (5, 7, m + r - 1, m + r - 1)
    np.testing.assert_allclose(winograd_kernel(u, m), w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape, w_shape, attrs, layout, avx512_layout, jit_layout", [
    ((1, 16, 30, 29), (40, 16, 3, 3), {"pads": [1, 1, 1, 1]}, "winograd_tiles", "winograd_tiles", "winograd"),
    ((1, 32, 56, 56), (64, 32, 3, 3), {"pads": [1, 1, 1, 1]}, "winograd", "winograd", "winograd"),  # out of cache
    ((2, 6, 50), (8, 6, 5), {"strides": [4]}, "shifted", "shifted", "shifted"),
    ((1, 24, 13, 12), (64, 24, 3, 3), {"strides": [2, 2]}, "rows", "rows", None),  # register tiles: native code only
    ((1, 24, 13, 12), (66, 8, 3, 3), {"group": 3}, None, None, None),  # grouped: im2col, weights as they are
    ((1, 16, 16, 16), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}, "winograd_tiles", "winograd_tiles", "winograd"),
    ((1, 16, 12, 12), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}, "rows", "rows", "winograd"),  # too few tiles: conv_rows
    ((1, 64, 8, 8), (64, 64, 3, 3), {"pads": [1, 1, 1, 1]}, "winograd_tiles", "winograd_tiles", None),  # 8 pixels
    ((1, 32, 9, 9), (32, 32, 3, 3), {"pads": [1, 1, 1, 1]}, "rows", "rows", None),  # odd and small: needs more channels
    ((1, 32, 32, 32), (32, 32, 3, 3), {"pads": [1, 1, 1, 1]}, "winograd_tiles", "winograd_tiles", "winograd"),
    ((1, 32, 48, 48), (32, 32, 3, 3), {"pads": [1, 1, 1, 1]}, "winograd", "shifted", "winograd"),
    ((1, 1, 32, 32), (16, 1, 3, 3), {"pads": [1, 1, 1, 1]}, "shifted", "shifted", "shifted"),  # one channel, 32 pixels
    ((1, 16, 20, 20), (32, 16, 1, 1), {}, "pointwise", "pointwise", None),  # 1x1: register tiles in native code
    ((1, 16, 20, 20), (32, 16, 1, 1), {"strides": [2, 2]}, "pointwise", "pointwise", None),  # gathered, then tiles
])
def test_conv_layout_is_the_emitters(x_shape, w_shape, attrs, layout, avx512_layout, jit_layout):
    """The emitter chooses how constant weights are stored, per target (compiler and instruction set), and
    remembers it; the IR keeps their meaning (the model's shape, no layout attributes), whatever the target."""
    model, _ = _conv_model("Conv", x_shape, w_shape, attrs)
    targets = ((CpuTarget("native", "avx2"), layout), (CpuTarget("native", "avx512"), avx512_layout),
               (CpuTarget("cling", "generic"), jit_layout))
    for target, expected in targets:
        planned = sr.load(model).planned(target)
        (node,), (emitter,) = planned.model.nodes, planned.emitters
        assert emitter.layout == expected, target
        assert (emitter.winograd_order is not None) == (expected in ("winograd", "winograd_tiles"))
        assert planned.model.tensors[node.inputs[1]].shape == w_shape
        assert not {"winograd", "packed_panels", "packed_rows"} & node.attrs.keys()
        assert ("_packed" in node.inputs[1]) == (expected is not None)


def test_winograd_not_for_float64_strides_or_small_images():
    """Winograd serves float32 3x3 stride-1 layers only, and only where the image has enough tiles."""
    cases = [((1, 16, 30, 30), (40, 16, 3, 3), {"pads": [1, 1, 1, 1]}, np.float64),
             ((1, 16, 30, 30), (40, 16, 3, 3), {"strides": [2, 2]}, np.float32),
             ((1, 16, 7, 7), (40, 16, 3, 3), {"pads": [1, 1, 1, 1]}, np.float32)]
    for x_shape, w_shape, attrs, dtype in cases:
        model, _ = _conv_model("Conv", x_shape, w_shape, attrs, dtype=dtype)
        assert "conv_winograd" not in sr.load(model).code().header


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
def test_symbolic_batch(check_model, op):
    w_shape = (6, 4, 3, 3) if op == "Conv" else (4, 3, 3, 3)
    attrs = {"strides": [2, 1], "pads": [1, 0, 0, 1]}
    for batch in (1, 5):
        model, feeds = _conv_model(op, (batch, 4, 7, 8), w_shape, attrs, batch_symbol=True)
        check_model(model, feeds)


def test_symbolic_channels_refused():
    """Symbolic lengths compile (tests/ops/test_symbolic_lengths.py); the channels fix the weights' use."""
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], [("x", np.float32, ["N", "C", "H", 5])],
                       [("y", np.float32, None)], {"w": np.ones((3, 2, 2, 2), np.float32)})
    with pytest.raises(ShapeError, match="input channels C must be fixed numbers"):
        sr.compile(sr.load(model))


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
def test_constant_folding(check_folded, op):
    w_shape = (6, 4, 3, 2) if op == "Conv" else (4, 3, 3, 2)
    attrs = {"strides": [2, 1], "pads": [1, 0, 0, 1], "dilations": [1, 2]}
    model, feeds = _conv_model(op, (2, 4, 7, 8), w_shape, attrs)
    check_folded(model, feeds)


# ---- ConvTranspose ------------------------------------------------------------

@pytest.mark.parametrize("rank, bias", [(1, True), (2, True), (3, True), (3, False)])
def test_conv_transpose_basic(check_model, rank, bias):
    _conv_transpose(check_model, rank, bias=bias)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_transpose_strides_dilations_pads(check_model, rank):
    attrs = {"strides": [2, 3, 1][:rank], "dilations": [1, 1, 2][:rank], "pads": [1, 0, 2][:rank] + [0, 2, 1][:rank]}
    _conv_transpose(check_model, rank, attrs=attrs)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_transpose_output_padding(check_model, rank):
    attrs = {"strides": [2, 3, 2][:rank], "output_padding": [1, 2, 0][:rank], "pads": [1] * rank + [0] * rank}
    _conv_transpose(check_model, rank, attrs=attrs)


@pytest.mark.parametrize("group, features, rank", [(2, 3, 1), (4, 1, 2), (2, 2, 3)])
def test_conv_transpose_groups(check_model, group, features, rank):
    _conv_transpose(check_model, rank, features=features, attrs={"group": group, "strides": [2] * rank})


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_transpose_auto_pad_same(check_model, auto_pad, rank):
    # Stride 2, kernel 2 or 4 (even extent): even total padding, where onnxruntime and the spec agree.
    kernel = [2, 4, 2][:rank]
    model, feeds = _conv_model("ConvTranspose", (1, 2, *SPATIAL[rank]), (2, 3, *kernel),
                               {"auto_pad": auto_pad, "strides": [2] * rank})
    check_model(model, feeds)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_transpose_auto_pad_same_odd_total(check_model, auto_pad):
    _conv_transpose(check_model, 2, attrs={"auto_pad": auto_pad, "strides": [2, 2]}, reference=True)


def test_conv_transpose_valid(check_model):
    _conv_transpose(check_model, 2, attrs={"auto_pad": "VALID", "strides": [2, 1]})


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_transpose_output_shape(check_model, rank):
    # Input spatial (s - 2), kernel k, stride 2: full size 2 * (s - 3) + k; even totals agree with onnxruntime.
    full = [2 * (s - 3) + k for s, k in zip(SPATIAL[rank], KERNEL[rank])]
    shape = [f - 2 * (i % 2) for i, f in enumerate(full)]
    _conv_transpose(check_model, rank, attrs={"strides": [2] * rank, "output_shape": shape})


def test_conv_transpose_output_shape_odd_total(check_model):
    """Odd total padding puts the extra pad at the beginning (the spec; onnxruntime puts it at the end and the
    onnx reference cannot crop), so the result must equal explicit pads split that way, checked with onnxruntime."""
    attrs = {"strides": [2, 2], "dilations": [1, 2]}
    model, feeds = _conv_model("ConvTranspose", (2, 4, 5, 6), (4, 3, 3, 2), {**attrs, "output_shape": [10, 11]})
    explicit, _ = _conv_model("ConvTranspose", (2, 4, 5, 6), (4, 3, 3, 2), {**attrs, "pads": [1, 1, 0, 1]})
    np.testing.assert_array_equal(sofie_run(model, feeds)[0], check_model(explicit, feeds)[0])


def test_conv_transpose_float64_runtime_weights(check_model):
    _conv_transpose(check_model, 2, attrs={"strides": [1, 2]}, dtype=np.float64, w_input=True, reference=True)


# ---- fusion -----------------------------------------------------------------

ACTIVATIONS = {
    "Relu": {}, "LeakyRelu": {"alpha": 0.2}, "Sigmoid": {}, "Tanh": {}, "Elu": {"alpha": 0.7},
    "Selu": {"alpha": 1.5, "gamma": 1.1}, "Clip6": {"min": -0.5, "max": 0.8},
}


def _act_node(name, out="y"):
    op = "Clip" if name == "Clip6" else name
    return helper.make_node(op, ["t"], [out], **ACTIVATIONS[name])


def _op_types(model: onnx.ModelProto) -> list:
    fused = sr.load(model).planned().model
    return [n.op_type for n in fused.nodes]


def _unfused(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with the intermediate tensor also a graph output, which blocks fusion."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    t = helper.make_tensor_value_info("t", copy.graph.output[0].type.tensor_type.elem_type, None)
    copy.graph.output.append(t)
    return copy


def _check_fusion(check_model, model, feeds, fused_type, producer):
    assert _op_types(model) == [fused_type]
    fused = check_model(model, feeds)
    unfused_model = _unfused(model)
    assert _op_types(unfused_model) == [producer, model.graph.node[1].op_type]
    unfused = check_model(unfused_model, feeds)
    np.testing.assert_allclose(fused[0], unfused[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_conv_activation_fusion(check_model, act):
    model, feeds = _conv_model("Conv", (2, 4, 7, 8), (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}, act=_act_node(act),
                               opset=17 if act != "Clip6" else 7)
    _check_fusion(check_model, model, feeds, "FusedConv", "Conv")


@pytest.mark.parametrize("bounds", [("lo", "hi"), ("lo",), ("", "hi"), ()])
def test_conv_clip11_fusion(check_model, bounds):
    """Clip's bound inputs (opset 11) become the fused node's attributes; an omitted one is infinite."""
    model, feeds = _conv_model("Conv", (2, 4, 7, 8), (6, 2, 3, 3), {"group": 2})
    model.graph.node[0].output[0] = "t"
    model.graph.node.append(helper.make_node("Clip", ["t", *bounds], ["y"]))
    model.graph.initializer.extend([onnx.numpy_helper.from_array(np.array(-0.3, np.float32), "lo"),
                                    onnx.numpy_helper.from_array(np.array(1.1, np.float32), "hi")])
    _check_fusion(check_model, model, feeds, "FusedConv", "Conv")


def test_clip_with_runtime_bound_not_fused(check_model):
    model, feeds = _conv_model("Conv", (1, 2, 5, 5), (3, 2, 3, 3), {})
    model.graph.node[0].output[0] = "t"
    model.graph.node.append(helper.make_node("Clip", ["t", "lo"], ["y"]))
    model.graph.input.append(helper.make_tensor_value_info("lo", onnx.TensorProto.FLOAT, []))
    assert _op_types(model) == ["Conv", "Clip"]
    check_model(model, {**feeds, "lo": np.array(0.1, np.float32)})


@pytest.mark.parametrize("act", ["Relu", "Sigmoid"])
def test_depthwise_and_transpose_fusion(check_model, act):
    model, feeds = _conv_model("Conv", (2, 4, 7, 8), (4, 1, 3, 3), {"group": 4}, act=_act_node(act))
    _check_fusion(check_model, model, feeds, "FusedConv", "Conv")
    model, feeds = _conv_model("ConvTranspose", (2, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2]}, act=_act_node(act))
    _check_fusion(check_model, model, feeds, "FusedConvTranspose", "ConvTranspose")


@pytest.mark.parametrize("act, batch", [("Relu", 3), ("LeakyRelu", 9), ("Tanh", 1)])
def test_gemm_activation_fusion(check_model, act, batch):
    rng = np.random.default_rng(batch)
    inits = {"b": rng.standard_normal((5, 8)).astype(np.float32), "c": rng.standard_normal(5).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["t"], transB=1, alpha=0.9), _act_node(act)]
    model = make_model(nodes, [("a", np.float32, [batch, 8])], [("y", np.float32, None)], inits)
    _check_fusion(check_model, model, {"a": rng.standard_normal((batch, 8)).astype(np.float32)}, "FusedGemm", "Gemm")


def test_no_fusion_with_two_readers(check_model):
    model, feeds = _conv_model("Conv", (1, 2, 5, 5), (3, 2, 3, 3), {}, act=_act_node("Relu"))
    model.graph.node.append(helper.make_node("Add", ["t", "y"], ["z"]))
    model.graph.output.append(helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, None))
    assert _op_types(model) == ["Conv", "Relu", "Add"]
    check_model(model, feeds)
