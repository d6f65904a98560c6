"""Pooling against onnxruntime: MaxPool (with Indices), AveragePool, LpPool and the Global pools.

Every geometry attribute (kernel_shape, strides, pads, auto_pad, ceil_mode,
dilations) in 1-D, 2-D and 3-D, the per-op ones (count_include_pad,
storage_order, p), the opsets whose attribute sets differ, and a symbolic batch.
"""

import numpy as np
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.targets.cpu import CpuTarget

SHAPES = {1: (2, 3, 11), 2: (2, 3, 9, 8), 3: (1, 2, 6, 7, 5)}


def _pool(check, op, x_shape, opset=19, indices=False, dtype=np.float32, batch=None, seed=0, **attrs):
    """One-node model of ``op`` on a random input of ``x_shape``, checked with ``check``."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        x = rng.standard_normal(x_shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, x_shape, endpoint=True).astype(dtype)
    outputs = [("y", dtype, None)] + ([("i", np.int64, None)] if indices else [])
    in_shape = [batch, *x_shape[1:]] if batch else list(x_shape)
    node = helper.make_node(op, ["x"], [o[0] for o in outputs], **attrs)
    check(make_model([node], [("x", dtype, in_shape)], outputs, opset=opset), {"x": x})


# ---- geometry, shared by every windowed pool ------------------------------------

@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
def test_auto_pad(check_model, op, rank, auto_pad):
    kernel = [3, 2, 3][:rank]
    strides = [2, 1, 2][:rank]
    pads = {"pads": [1, 0, 1, 1, 1, 0][:rank] + [0, 1, 1, 0, 1, 1][:rank]} if auto_pad == "NOTSET" else {}
    _pool(check_model, op, SHAPES[rank], opset=18, kernel_shape=kernel, strides=strides, auto_pad=auto_pad, **pads)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_asymmetric_pads(check_model, op, rank):
    pads = [2, 0, 1][:rank] + [0, 1, 2][:rank]
    _pool(check_model, op, SHAPES[rank], kernel_shape=[3] * rank, pads=pads, strides=[1, 2, 1][:rank])


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("x_shape, kernel, strides, pads", [
    ((1, 2, 7, 6), [3, 2], [2, 2], [1, 0, 1, 1]),
    ((1, 2, 6, 6), [3, 2], [2, 2], [1, 0, 1, 1]),       # along W the last window would start in the right padding
    ((1, 2, 5, 5), [2, 2], [3, 3], [0, 0, 0, 0]),
    ((2, 1, 10), [4], [3], [2, 2]),                     # so would it here
    ((1, 1, 5, 6, 7), [2, 3, 2], [2, 2, 3], [1, 0, 1, 0, 1, 1]),
])
def test_ceil_mode(check_model, op, x_shape, kernel, strides, pads):
    _pool(check_model, op, x_shape, opset=19 if op != "LpPool" else 18, kernel_shape=kernel, strides=strides,
          pads=pads, ceil_mode=1)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_dilations(check_model, op, rank, ceil_mode):
    _pool(check_model, op, SHAPES[rank], opset=19 if op != "LpPool" else 18, kernel_shape=[2, 3, 2][:rank],
          dilations=[2, 1, 2][:rank], strides=[1, 2, 2][:rank], pads=[1, 1, 0][:rank] * 2, ceil_mode=ceil_mode)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("auto_pad, shape, dilations, pads", [
    ("SAME_UPPER", (2, 3, 9, 8), [2, 2], [2, 1, 2, 1]), ("SAME_LOWER", (2, 3, 9, 8), [2, 2], [2, 1, 2, 1]),
    ("SAME_UPPER", (2, 3, 10, 7), [1, 2], [0, 1, 1, 1]), ("SAME_LOWER", (2, 3, 10, 7), [1, 2], [1, 1, 0, 1]),
])
def test_same_with_dilations(op, auto_pad, shape, dilations, pads):
    """SAME with dilations, as the spec writes it: ceil(in / stride) outputs, padding for the dilated window.

    onnxruntime sizes SAME padding with the undilated kernel (fewer outputs), so the
    reference is onnxruntime given the spec's padding explicitly.
    """
    attrs = {"op": op, "kernel_shape": [3, 2], "dilations": dilations, "strides": [2, 1]}
    _against_equivalent(shape, dict(attrs, auto_pad=auto_pad), dict(attrs, pads=pads))


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("shape, kernel, strides", [((1, 2, 10), [3], [2]), ((1, 2, 10, 9), [3, 2], [2, 4])])
def test_valid_ignores_ceil_mode(op, shape, kernel, strides):
    """VALID has ceil((in - dilated kernel + 1) / stride) outputs with or without ceil_mode (the spec).

    onnxruntime applies ceil_mode to VALID too and adds a window hanging past the
    input, so the reference is onnxruntime without ceil_mode.
    """
    attrs = {"op": op, "kernel_shape": kernel, "strides": strides, "auto_pad": "VALID"}
    _against_equivalent(shape, dict(attrs, ceil_mode=1), attrs)


def _against_equivalent(shape: tuple, ours: dict, reference: dict) -> None:
    """sofie-rdf running a node with attributes ``ours`` equals onnxruntime running the spec-equivalent ``reference``."""
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)

    def model(attrs):
        node = helper.make_node(attrs.pop("op"), ["x"], ["y"], **attrs)
        return make_model([node], [("x", np.float32, list(shape))], [("y", np.float32, None)], opset=19)

    (got,) = sofie_run(model(dict(ours)), {"x": x})
    (ref,) = ort_run(model(dict(reference)), {"x": x})
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


# ---- AveragePool ------------------------------------------------------------------

@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_average_count_include_pad(check_model, rank, count_include_pad, ceil_mode):
    _pool(check_model, "AveragePool", SHAPES[rank], kernel_shape=[3] * rank, strides=[2] * rank,
          pads=[1, 2, 0][:rank] + [2, 0, 1][:rank], count_include_pad=count_include_pad, ceil_mode=ceil_mode)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_average_same_count_include_pad(check_model, auto_pad):
    _pool(check_model, "AveragePool", SHAPES[2], kernel_shape=[4, 3], auto_pad=auto_pad, count_include_pad=1)


@pytest.mark.parametrize("opset", [7, 10, 11, 19])
def test_average_opsets(check_model, opset):
    extra = {"ceil_mode": 1} if opset >= 10 else {}
    _pool(check_model, "AveragePool", SHAPES[2], opset=opset, kernel_shape=[3, 3], strides=[2, 2],
          pads=[1, 0, 0, 1], count_include_pad=1, **extra)


# ---- MaxPool: Indices, storage order, types, opsets ----------------------------------

@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_indices(check_model, rank, storage_order):
    _pool(check_model, "MaxPool", SHAPES[rank], opset=12, indices=True, kernel_shape=[3, 2, 2][:rank],
          strides=[2, 2, 1][:rank], pads=[1, 0, 1][:rank] * 2, storage_order=storage_order)


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_indices_ceil_dilations(check_model, storage_order):
    _pool(check_model, "MaxPool", (2, 2, 8, 7), opset=12, indices=True, kernel_shape=[2, 3], strides=[2, 2],
          dilations=[2, 1], pads=[0, 1, 1, 0], ceil_mode=1, storage_order=storage_order)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.float64])
@pytest.mark.parametrize("rank", [1, 2])
def test_max_types(check_model, dtype, rank):
    _pool(check_model, "MaxPool", SHAPES[rank], opset=12, kernel_shape=[3] * rank, strides=[2] * rank,
          pads=[1] * (2 * rank), dtype=dtype)


@pytest.mark.parametrize("opset", [8, 10, 11, 12])
def test_max_opsets(check_model, opset):
    extra = {"ceil_mode": 1, "dilations": [1, 2]} if opset >= 10 else {}
    _pool(check_model, "MaxPool", SHAPES[2], opset=opset, indices=True, kernel_shape=[2, 2], strides=[2, 1],
          pads=[0, 1, 1, 0], **extra)


# ---- LpPool --------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_lp_p(check_model, p, rank):
    _pool(check_model, "LpPool", SHAPES[rank], opset=18, p=p, kernel_shape=[2] * rank, strides=[1, 2, 1][:rank],
          pads=[1, 0, 0][:rank] * 2)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_global_lp(check_model, p):
    _pool(check_model, "GlobalLpPool", SHAPES[2], opset=18, p=p)


# ---- Global pools --------------------------------------------------------------------

@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_global(check_model, op, rank):
    _pool(check_model, op, SHAPES[rank])


# ---- symbolic batch, constant folding, refusals --------------------------------------

@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("op, attrs", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ("AveragePool", {"kernel_shape": [2, 3], "auto_pad": "SAME_UPPER", "count_include_pad": 1}),
    ("LpPool", {"kernel_shape": [2, 2], "p": 3}),
    ("GlobalAveragePool", {}),
])
def test_symbolic_batch(check_model, op, attrs, n):
    _pool(check_model, op, (n, 3, 9, 8), opset=18, batch="N", **attrs)


def test_symbolic_batch_indices(check_model):
    for n in (2, 3):
        _pool(check_model, "MaxPool", (n, 2, 7, 6), opset=12, indices=True, batch="N", kernel_shape=[2, 2],
              strides=[2, 2], storage_order=1)


@pytest.mark.parametrize("op, attrs, indices", [
    ("MaxPool", {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 0, 1], "storage_order": 1}, True),
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1, "ceil_mode": 1}, False),
    ("LpPool", {"kernel_shape": [2, 2], "p": 3, "dilations": [2, 1]}, False),
    ("GlobalMaxPool", {}, False),
])
def test_constant_folding(check_folded, op, attrs, indices):
    _pool(check_folded, op, SHAPES[2], opset=18 if not indices else 12, indices=indices, **attrs)


# ---- the line kernel (kernels::pool_lines: MaxPool without Indices, AveragePool) -------------------

@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("x_shape, kernel, strides, pads, dilations", [
    ((1, 3, 16, 16), [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]),           # calorimeter images: stride 2
    ((2, 8, 24, 20), [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]),           # stride 1 (the other constant stride)
    ((1, 4, 17, 19), [3, 5], [3, 3], [1, 2, 2, 1], [1, 2]),           # a run-time stride, dilated columns
    ((1, 2, 8, 8, 8), [2, 2, 2], [2, 2, 2], [0] * 6, [1, 1, 1]),      # 3-D
    ((1, 3, 9, 10, 11), [3, 2, 3], [2, 1, 2], [1, 0, 1, 1, 1, 0], [2, 1, 1]),
    ((2, 5, 40), [4], [3], [2, 3], [1]),                              # 1-D: the line is the whole input
])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_line_kernel_geometries(check_model, op, x_shape, kernel, strides, pads, dilations, ceil_mode):
    extra = {"count_include_pad": 1} if op == "AveragePool" and sum(pads) else {}
    _pool(check_model, op, x_shape, kernel_shape=kernel, strides=strides, pads=pads, dilations=dilations,
          ceil_mode=ceil_mode, seed=len(x_shape), **extra)


@pytest.mark.parametrize("op", ["GlobalMaxPool", "GlobalAveragePool"])
@pytest.mark.parametrize("x_shape", [(2, 16, 7, 7), (1, 4, 3, 5, 6), (3, 8, 33)])
def test_line_kernel_global(check_model, op, x_shape):
    _pool(check_model, op, x_shape, opset=13, batch="n")


# kernels::pool_global: one unpadded window over each whole plane, reduced in vector lanes (planes of fewer values
# than the lanes, a whole number of lanes, lanes and a remainder), from the Global ops or a window sized so
@pytest.mark.parametrize("op", ["GlobalMaxPool", "GlobalAveragePool"])
@pytest.mark.parametrize("x_shape", [(2, 5, 1, 1), (3, 7, 3, 4), (2, 32, 8, 8), (1, 3, 4, 4, 4)])
def test_global_kernel(check_model, op, x_shape):
    _pool(check_model, op, x_shape, opset=13)


@pytest.mark.parametrize("op, reference", [("GlobalMaxPool", np.max), ("GlobalAveragePool", np.mean)])
def test_global_kernel_double(op, reference):
    """In double (onnxruntime has no double GlobalMaxPool: numpy is the reference)."""
    x = np.random.default_rng(5).standard_normal((2, 3, 37))
    node = helper.make_node(op, ["x"], ["y"])
    model = make_model([node], [("x", np.float64, x.shape)], [("y", np.float64, None)], opset=13)
    np.testing.assert_allclose(sofie_run(model, {"x": x}, backend="native")[0], reference(x, axis=2, keepdims=True),
                               rtol=1e-12)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_global_kernel_from_window(check_model, op):
    _pool(check_model, op, (2, 6, 5, 9), kernel_shape=[5, 9])


def test_global_kernel_is_used():
    """The kernel decides at run time: a window over the whole plane takes pool_global, one over the plane and
    its padding (a single output as well) the line walk, whose maximum never takes the padding."""
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 6)).astype(np.float32) - 5
    for attrs in ({"kernel_shape": [6, 6]}, {"kernel_shape": [8, 8], "pads": [1, 1, 1, 1]}):
        for op in ("MaxPool", "AveragePool"):
            node = helper.make_node(op, ["x"], ["y"], count_include_pad=1, **attrs) if op == "AveragePool" else \
                helper.make_node(op, ["x"], ["y"], **attrs)
            model = make_model([node], [("x", np.float32, x.shape)], [("y", np.float32, None)], opset=19)
            np.testing.assert_allclose(sofie_run(model, {"x": x}, backend="native")[0], ort_run(model, {"x": x})[0],
                                       rtol=1e-5, atol=1e-6)


def test_global_max_skips_nan(check_model):
    """pool's rule for the maximum holds lane by lane: a NaN never wins, so a NaN among the first values of a
    lane does not hide the values after it."""
    x = np.random.default_rng(4).standard_normal((1, 2, 8, 8)).astype(np.float32)
    x[0, 0, 0, :3] = np.nan
    x[0, 1, 0, 0] = np.nan
    node = helper.make_node("GlobalMaxPool", ["x"], ["y"])
    model = make_model([node], [("x", np.float32, x.shape)], [("y", np.float32, None)], opset=13)
    expected = np.nanmax(x, axis=(2, 3), keepdims=True)
    np.testing.assert_array_equal(sofie_run(model, {"x": x}, backend="native")[0], expected)


# kernels::pool_lines_stride2: stride 2 along the last axis, windows of 1 to 5 taps along it: output lines shorter
# than a vector, a vector and a remainder; padding along the leading axes and along the lines (divisors counting it
# or not), ceil_mode's windows past the input's end; the first and last vectors of the tensor read from a copy;
# 1-D to 3-D.  A batch known only when the code runs where it is 2.
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("x_shape, kernel, strides, pads", [
    ((2, 32, 24, 24), [3, 3], [2, 2], [0, 0, 0, 0]),               # the HEP family's MaxPool: 11 outputs a line
    ((1, 3, 13, 37), [3, 3], [2, 2], [1, 0, 1, 0]),                # 18 a line, padding above and below
    ((1, 3, 9, 10, 45), [3, 2, 5], [2, 1, 2], [0, 1, 0, 1, 0, 0]),
    ((2, 3, 40), [4], [2], [0, 0]),
    ((1, 2, 5, 9), [1, 1], [2, 2], [0, 0, 0, 0]),
    ((2, 4, 23, 56), [3, 3], [2, 2], [1, 1, 1, 1]),                # ResNet's first pooling: 28 a line
    ((1, 3, 11, 30), [3, 5], [2, 2], [1, 2, 0, 1]),
    ((1, 2, 6, 7, 9), [2, 2, 4], [2, 2, 2], [0, 1, 3, 1, 0, 2]),   # a line's first window all padding
    ((3, 2, 17), [3], [2], [1, 1]),
])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_stride2_kernel_geometries(check_model, op, x_shape, kernel, strides, pads, ceil_mode):
    extra = {"count_include_pad": 1} if op == "AveragePool" and sum(pads) else {}
    _pool(check_model, op, x_shape, kernel_shape=kernel, strides=strides, pads=pads, ceil_mode=ceil_mode,
          seed=len(x_shape), batch="n" if x_shape[0] > 1 else None, **extra)


def _random_stride2_nodes(rng: np.random.Generator, count: int) -> list[tuple]:
    """(op, input shape, attributes) of poolings with stride 2 and 1 to 5 taps along the lines, every other
    geometry attribute drawn at random (pads below the window, as onnxruntime wants them)."""
    cases = []
    for _ in range(count):
        rank = int(rng.integers(1, 4))
        kernel = [int(rng.integers(1, 4)) for _ in range(rank - 1)] + [int(rng.integers(1, 6))]
        strides = [int(rng.integers(1, 3)) for _ in range(rank - 1)] + [2]
        dilations = [int(rng.integers(1, 3)) for _ in range(rank - 1)] + [1]
        pads = [int(rng.integers(0, k)) for k in kernel] + [int(rng.integers(0, k)) for k in kernel]
        spatial = [int(rng.integers(max(k * d, 3), 40 if i == rank - 1 else 12))
                   for i, (k, d) in enumerate(zip(kernel, dilations))]
        op = "MaxPool" if rng.random() < 0.5 else "AveragePool"
        attrs = {"kernel_shape": kernel, "strides": strides, "dilations": dilations, "pads": pads,
                 "ceil_mode": int(rng.integers(0, 2))}
        if op == "AveragePool":
            attrs["count_include_pad"] = int(rng.integers(0, 2))
        cases.append((op, (int(rng.integers(1, 3)), int(rng.integers(1, 4)), *spatial), attrs))
    return cases


def test_stride2_kernel_random_geometries():
    """24 random geometries in one model, native code against onnxruntime: whichever of pool_lines_stride2 and
    pool_lines the emitter picks for each, the numbers agree."""
    rng = np.random.default_rng(21)
    cases = _random_stride2_nodes(rng, 24)
    nodes = [helper.make_node(op, [f"x{i}"], [f"y{i}"], **attrs) for i, (op, _, attrs) in enumerate(cases)]
    inputs = [(f"x{i}", np.float32, shape) for i, (_, shape, _) in enumerate(cases)]
    model = make_model(nodes, inputs, [(f"y{i}", np.float32, None) for i in range(len(cases))], opset=19)
    feeds = {f"x{i}": rng.standard_normal(shape).astype(np.float32) for i, (_, shape, _) in enumerate(cases)}
    assert "pool_lines_stride2<" in sr.load(model).code(target=CpuTarget("native", "avx512")).header
    for case, ours, ref in zip(cases, sofie_run(model, feeds, backend="native"), ort_run(model, feeds)):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6, err_msg=str(case))


def test_stride2_kernel_is_chosen():
    """The emitter names pool_lines_stride2 where the geometry is known and fits it; pool_pairs' windows (2 x 2 on
    lines of whole vectors), double, unknown lengths and long lines of one-line windows take pool_lines."""
    def header(shape, dtype=np.float32, isa="avx512", **attrs):
        node = helper.make_node("MaxPool", ["x"], ["y"], **attrs)
        model = sr.load(make_model([node], [("x", dtype, shape)], [("y", dtype, None)], opset=19))
        return model.code(target=CpuTarget("native", isa)).header
    assert "kernels::pool_lines_stride2<true, 3>" in header((1, 32, 24, 24), kernel_shape=[3, 3], strides=[2, 2])
    assert "kernels::pool_lines_stride2<true, 2>" in header((1, 8, 30, 30), kernel_shape=[2, 2], strides=[2, 2])
    # narrower vectors: not for 2 taps, nor for lines of more than two vectors (of 8 floats with AVX2)
    assert "kernels::pool_lines_stride2<" not in header((1, 8, 30, 30), isa="avx2", kernel_shape=[2, 2], strides=[2, 2])
    assert "kernels::pool_lines_stride2<true, 3>" in header((1, 8, 33, 33), isa="avx2", kernel_shape=[3, 3],
                                                            strides=[2, 2])
    assert "kernels::pool_lines_stride2<" not in header((1, 8, 35, 35), isa="avx2", kernel_shape=[3, 3], strides=[2, 2])
    assert "kernels::pool_lines_stride2<true, 3>" in header((1, 8, 24, 24), kernel_shape=[3, 3], strides=[2, 2],
                                                            pads=[1, 1, 1, 1])
    for shape, dtype, attrs in [
        ((1, 8, 32, 32), np.float32, {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ((1, 8, 24, 24), np.float32, {"kernel_shape": [3, 3], "strides": [2, 1]}),
        ((1, 8, 24, 24), np.float32, {"kernel_shape": [3, 6], "strides": [2, 2]}),
        ((1, 8, 24, 24), np.float64, {"kernel_shape": [3, 3], "strides": [2, 2]}),
        ((1, 8, "h", "w"), np.float32, {"kernel_shape": [3, 3], "strides": [2, 2]}),
        ((1, 8, 1000), np.float32, {"kernel_shape": [3], "strides": [2]}),  # one line a window, long lines
    ]:
        code = header(shape, dtype, **attrs)
        assert "kernels::pool_lines<" in code and "pool_lines_stride2<" not in code, (shape, attrs)


def test_stride2_kernel_max_skips_nan():
    """The maximum's rule holds in the stride-2 kernel's lanes: a NaN never wins a window that has a number."""
    x = np.random.default_rng(6).standard_normal((1, 2, 7, 36)).astype(np.float32)
    x[0, 0, 0, :5] = np.nan
    x[0, 1, 3, 17] = np.nan
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2])
    model = make_model([node], [("x", np.float32, x.shape)], [("y", np.float32, None)], opset=19)
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    expected = np.nanmax(windows, axis=(4, 5))
    np.testing.assert_array_equal(sofie_run(model, {"x": x}, backend="native")[0], expected)


def test_line_kernel_is_used():
    """MaxPool without Indices (in float and in the 8-bit integers of quantized models) and AveragePool in float
    take the line kernel; Indices the walk."""
    def header(op, outputs, dtype=np.float32, **attrs):
        node = helper.make_node(op, ["x"], [o[0] for o in outputs], kernel_shape=[2, 2], **attrs)
        return sr.load(make_model([node], [("x", dtype, (1, 2, 6, 6))], outputs, opset=19)).code().header
    assert "kernels::pool_lines<float, true>" in header("MaxPool", [("y", np.float32, None)])
    assert "kernels::pool_lines<float, false>" in header("AveragePool", [("y", np.float32, None)])
    assert "kernels::pool_lines<" not in header("MaxPool", [("y", np.float32, None), ("i", np.int64, None)])
    assert "kernels::pool_lines<int8_t, true>" in header("MaxPool", [("y", np.int8, None)], dtype=np.int8)
