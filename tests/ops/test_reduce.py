"""Reduce*, ArgMax/ArgMin and CumSum against onnxruntime.

Axes come as an attribute (opset 13, 17) or as an input (ReduceSum from 13,
the others from 18); adjacent axes take the (outer, reduced, inner) kernel,
others the strided one.  Empty axis sets reduce everything or, with
noop_with_empty_axes, nothing; zero-size reductions give the identities.
Axes (and CumSum's axis) computed at run time are read by the node's code:
one compiled model runs with several values.
"""

from functools import partial

import numpy as np
import pytest
from conftest import check_runs, make_model, ort_run, sofie_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError

OPS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1", "ReduceL2",
       "ReduceLogSum", "ReduceLogSumExp"]
DTYPES = [np.float32, np.float64, np.int32, np.int64]
SHAPE = (2, 3, 4, 5)
# None: no axes; [] an empty axes input; adjacent, split and negative sets.
AXES = [None, [1], [-1], [0, 1], [1, 2], [0, 2], [1, 3], [0, 2, 3], [-3, -1], [0, 1, 2, 3]]


def _axes_input_since(op: str) -> int:
    return 13 if op == "ReduceSum" else 18


def _x(shape, dtype, seed=0):
    """Positive values for the log reductions, small integers so products and sums stay in range."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(0.5, 2.0, shape).astype(dtype)
    return rng.integers(1, 4, shape).astype(dtype)


def _out_shape(shape, axes, keepdims, noop=False):
    if axes is None or len(axes) == 0:
        axes = [] if noop else list(range(len(shape)))
    axes = {a % len(shape) for a in axes}
    return [1 if i in axes else d for i, d in enumerate(shape) if keepdims or i not in axes]


def _reduce_model(op, shape, dtype, axes, keepdims=1, opset=18, axes_as_input=None, out_shape=None, **attrs):
    """A one-node model; axes go to an initializer input from the op's axes-input opset on."""
    if axes_as_input is None:
        axes_as_input = opset >= _axes_input_since(op)
    inputs, inits = ["x"], {}
    if axes is not None and axes_as_input:
        inputs.append("axes")
        inits["axes"] = np.array(axes, np.int64)
    elif axes is not None:
        attrs["axes"] = axes
    node = helper.make_node(op, inputs, ["y"], keepdims=keepdims, **attrs)
    out = out_shape if out_shape is not None else _out_shape(shape, axes, keepdims, attrs.get("noop_with_empty_axes", 0))
    return make_model([node], [("x", dtype, list(shape))], [("y", dtype, out)], inits, opset=opset)


@pytest.mark.parametrize("axes", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("op", OPS)
def test_reduce_axes_input(check_model, op, keepdims, axes):
    check_model(_reduce_model(op, SHAPE, np.float32, axes, keepdims, opset=18), {"x": _x(SHAPE, np.float32)})


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes", [None, [2], [0, 2], [-1, -3]], ids=str)
@pytest.mark.parametrize("op, opset", [(op, v) for op in OPS for v in (11, 13, 17) if v < _axes_input_since(op)])
def test_reduce_axes_attribute(check_model, op, opset, axes, keepdims):
    check_model(_reduce_model(op, SHAPE, np.float32, axes, keepdims, opset=opset), {"x": _x(SHAPE, np.float32, 1)})


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES[1:], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axes", [[1], [0, 2]], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_reduce_dtypes(check_model, op, axes, dtype, keepdims):
    check_model(_reduce_model(op, SHAPE, dtype, axes, keepdims), {"x": _x(SHAPE, dtype, 2)})


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_max_min_8bit(check_model, op, dtype):
    x = np.random.default_rng(3).integers(0, 100, SHAPE).astype(dtype)
    check_model(_reduce_model(op, SHAPE, dtype, [1, 3], 0), {"x": x})


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_max_min_bool(check_model, op):
    """From opset 20: any / all."""
    x = np.random.default_rng(3).integers(0, 2, SHAPE).astype(bool)
    check_model(_reduce_model(op, SHAPE, np.bool_, [1], 1, opset=20), {"x": x})


@pytest.mark.parametrize("op, identity", [("ReduceMax", False), ("ReduceMin", True)])
def test_reduce_max_min_bool_empty(op, identity):
    """An empty bool set gives the identity, as the ONNX reference does (onnxruntime refuses it)."""
    (y,) = sofie_run(_reduce_model(op, (2, 0, 3), np.bool_, [1], 0, opset=20), {"x": np.zeros((2, 0, 3), bool)})
    np.testing.assert_array_equal(y, np.full((2, 3), identity))


@pytest.mark.parametrize("op", OPS)
def test_reduce_signed_values(check_model, op):
    """Negative values: L1 takes magnitudes, LogSum of a negative sum is nan as in onnxruntime."""
    x = (np.random.default_rng(4).standard_normal(SHAPE) * 3).astype(np.float32)
    check_model(_reduce_model(op, SHAPE, np.float32, [2], 1), {"x": x})


@pytest.mark.parametrize("op", OPS)
def test_reduce_integer_saturates(check_model, op):
    """Integer results beyond the type saturate (onnxruntime computes in double); ReduceMean truncates,
    ReduceLogSum of a negative sum gives the lowest value, ReduceLogSumExp counts only the maxima."""
    x = np.array([[2**30, 2**30, 2**30 + 7], [-2**30, -2**30, -2**30 - 7], [2**31 - 1, 1, 0], [-7, 2, -2],
                  [3, 3, 2]], np.int32)
    check_model(_reduce_model(op, (5, 3), np.int32, [1], 0), {"x": x})


@pytest.mark.parametrize("op", OPS)
def test_reduce_noop_with_empty_axes(check_model, op):
    """An empty axes set with noop_with_empty_axes reduces nothing: each element is its own reduction."""
    model = _reduce_model(op, SHAPE, np.float32, None, 1, noop_with_empty_axes=1)
    check_model(model, {"x": _x(SHAPE, np.float32, 5)})


@pytest.mark.parametrize("noop", [0, 1])
@pytest.mark.parametrize("op", ["ReduceSum", "ReduceL2"])
def test_reduce_empty_axes_input(check_model, op, noop):
    """An axes input holding no values reduces all axes, or none with noop_with_empty_axes."""
    model = _reduce_model(op, SHAPE, np.float32, [], 0, noop_with_empty_axes=noop)
    check_model(model, {"x": _x(SHAPE, np.float32, 6)})


@pytest.mark.parametrize("dtype", [np.float32, np.int32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axes", [[1], [0, 1], [1, 2]], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_reduce_zero_size(check_model, op, axes, dtype):
    """Reducing a zero-size dim gives the reduction's identity (0, 1, -inf, lowest ...)."""
    shape = (2, 0, 3)
    check_model(_reduce_model(op, shape, dtype, axes, 1), {"x": np.zeros(shape, dtype)})


def test_reduce_log_sum_exp_large(check_model):
    """The maximum is factored out, so exp does not overflow."""
    x = np.array([[1000.0, 999.0, -1000.0], [-500.0, -501.0, -499.0]], np.float32)
    check_model(_reduce_model("ReduceLogSumExp", (2, 3), np.float32, [1], 0), {"x": x})


def test_reduce_sum_accurate(check_model):
    """A long float32 sum is accumulated in double: no drift against onnxruntime's."""
    x = np.random.default_rng(7).uniform(0, 1, (3, 100000)).astype(np.float32)
    check_model(_reduce_model("ReduceSum", (3, 100000), np.float32, [1], 0), {"x": x}, rtol=1e-5, atol=0)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceLogSumExp"])
def test_reduce_wide_inner(check_model, op):
    """More inner positions than one block of the kernel's accumulators."""
    x = _x((4, 3, 150), np.float32, 10)
    check_model(_reduce_model(op, (4, 3, 150), np.float32, [1], 0), {"x": x})


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("axes", [[0], [1], [0, 2], [2, 3], None], ids=str)
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceLogSumExp"])
def test_reduce_symbolic(check_model, op, axes, batch):
    shape = ("N", 3, 4, 5)
    model = _reduce_model(op, shape, np.float32, axes, 1, out_shape=_out_shape(shape, axes, 1))
    check_model(model, {"x": _x((batch,) + shape[1:], np.float32, batch)})


@pytest.mark.parametrize("axes", [[1], [0, 2], None], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_reduce_folded(check_folded, op, axes):
    check_folded(_reduce_model(op, SHAPE, np.float32, axes, 0), {"x": _x(SHAPE, np.float32, 8)})


@pytest.mark.parametrize("dtype", [np.int32, np.int64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", OPS)
def test_reduce_folded_integer(check_folded, op, dtype):
    check_folded(_reduce_model(op, (2, 0, 3), dtype, [1], 1), {"x": np.zeros((2, 0, 3), dtype)})
    check_folded(_reduce_model(op, SHAPE, dtype, [0, 2], 1), {"x": _x(SHAPE, dtype, 9)})


def test_reduce_prod_of_shape_folds_symbolically(check_model):
    """ReduceProd of a Shape with a symbolic batch (a flattened size) is computed at generation time."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ReduceProd", ["s"], ["p"], keepdims=1),
             helper.make_node("Reshape", ["x", "p"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3, 4])], [("y", np.float32, ["M"])], opset=13)
    check_model(model, {"x": _x((2, 3, 4), np.float32)})


def test_reduce_bad_axis():
    with pytest.raises(ShapeError, match="axis 4 is out of range for rank 4"):
        sr.load(_reduce_model("ReduceSum", SHAPE, np.float32, [4], 1, out_shape=[2, 3, 4, 5])).code()


_check_runs = partial(check_runs, rtol=1e-5, atol=1e-6)


def _run_time_axes_model(op, keepdims, n_axes, dtype=np.float32, **attrs):
    """A Reduce* whose axes are a graph input (``n_axes``: their length, a str when symbolic) on an (N, 3, 4, 5) input."""
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims, **attrs)
    return make_model([node], [("x", dtype, ["N", 3, 4, 5]), ("axes", np.int64, [n_axes])], [("y", dtype, None)],
                      opset=_axes_input_since(op))


def _on_backends(*native: str) -> list[tuple[str, str]]:
    """Every operator with the JIT, a few also natively (each native build takes seconds)."""
    return [(op, "jit") for op in OPS] + [(op, "native") for op in native]


def _axes_feeds(axes_list, dtype=np.float32):
    return [{"x": _x((n, 3, 4, 5), dtype, k), "axes": np.array(axes, np.int64)}
            for k, (n, axes) in enumerate(zip([2, 1, 3, 2, 4, 1], axes_list))]


@pytest.mark.parametrize("op, backend", _on_backends("ReduceSum", "ReduceMax", "ReduceLogSumExp"))
def test_reduce_run_time_axes_keepdims(op, backend):
    """Any number of axes (none: all), adjacent or not, negative, in any order: every dim may be 1 or not."""
    axes = [[1], [0, 2], [], [-1, 1], [3, 0, 2], [0, 1, 2, 3]]
    _check_runs(_run_time_axes_model(op, 1, "K"), _axes_feeds(axes), backend)


@pytest.mark.parametrize("op, backend", _on_backends("ReduceMean", "ReduceMin", "ReduceProd"))
def test_reduce_run_time_axes_dropped(op, backend):
    """keepdims=0: two axes, whichever they are, leave a rank-2 output."""
    axes = [[0, 1], [1, 3], [-1, 0], [2, 1], [0, 3], [-2, -3]]
    _check_runs(_run_time_axes_model(op, 0, 2), _axes_feeds(axes), backend)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64], ids=lambda d: np.dtype(d).name)
def test_reduce_run_time_axes_dtypes(dtype):
    _check_runs(_run_time_axes_model("ReduceSum", 1, "K", dtype), _axes_feeds([[1], [0, 3], []], dtype), "jit")


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_reduce_run_time_axes_noop(backend):
    """noop_with_empty_axes: no axes reduce nothing (each value folded alone), others as usual."""
    model = _run_time_axes_model("ReduceL2", 1, "K", noop_with_empty_axes=1)
    _check_runs(model, _axes_feeds([[], [2], [], [0, -1]]), backend)


def test_reduce_run_time_axes_empty_input():
    """An axes input of fixed length 0 is known (no axes) even though it is computed at run time."""
    model = _run_time_axes_model("ReduceMax", 0, 0)
    assert "kernels::value_axes(" not in sr.load(model).code().header
    _check_runs(model, _axes_feeds([[], []]), "jit")


@pytest.mark.parametrize("axes, message", [([4], "axis 4 is out of range for rank 4"),
                                           ([-5], "axis -5 is out of range for rank 4"),
                                           ([1, -3], "axis -3 is given twice")])
def test_reduce_run_time_axes_bad(axes, message):
    sess = sr.compile(sr.load(_run_time_axes_model("ReduceSum", 1, "K")))
    with pytest.raises(ShapeError, match=f"ReduceSum node .*: {message}"):
        sess.infer(_x((2, 3, 4, 5), np.float32), np.array(axes, np.int64))


def test_reduce_run_time_axes_refused():
    """keepdims=0 needs the number of axes (the output rank) when the code is generated."""
    with pytest.raises(ShapeError, match="ReduceSum node .*length of axes .* must be known"):
        sr.load(_run_time_axes_model("ReduceSum", 0, "K")).code()
    with pytest.raises(ShapeError, match="5 axes given for an input of rank 4"):
        sr.load(_run_time_axes_model("ReduceSum", 0, 5)).code()


def test_reduce_constant_axes_read_no_value():
    """Known axes keep the generation-time code: no run-time checks."""
    code = sr.load(_reduce_model("ReduceSum", SHAPE, np.float32, [0, 2], 0, opset=18)).code().header
    assert "kernels::reduce_strided(" in code and "kernels::value_axes(" not in code and "reduce_masked<" not in code


def test_reduce_unsupported_dtype():
    with pytest.raises(ShapeError, match="input type int8 is not supported"):
        sr.load(_reduce_model("ReduceSum", SHAPE, np.int8, [1], 1)).code()


# ---- ArgMax / ArgMin --------------------------------------------------------------

def _arg_model(op, shape, dtype, opset=13, out_shape=None, **attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    axis, keep = attrs.get("axis", 0) % len(shape), attrs.get("keepdims", 1)
    out = out_shape or [1 if i == axis else d for i, d in enumerate(shape) if keep or i != axis]
    return make_model([node], [("x", dtype, list(shape))], [("y", np.int64, out)], opset=opset)


@pytest.mark.parametrize("last", [0, 1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce(check_model, op, axis, keepdims, last):
    """Few distinct values, so ties decide select_last_index."""
    x = np.random.default_rng(axis % 3).integers(0, 3, (3, 4, 5)).astype(np.float32)
    check_model(_arg_model(op, (3, 4, 5), np.float32, axis=axis, keepdims=keepdims, select_last_index=last), {"x": x})


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.int8, np.uint8], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_dtypes(check_model, op, dtype):
    x = np.random.default_rng(1).integers(0, 5, (4, 6)).astype(dtype)
    check_model(_arg_model(op, (4, 6), dtype, axis=1, select_last_index=1), {"x": x})


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_opset11(check_model, op):
    """Before opset 12 there is no select_last_index: ties go to the first index."""
    x = np.random.default_rng(2).integers(0, 2, (3, 4)).astype(np.float32)
    check_model(_arg_model(op, (3, 4), np.float32, opset=11, axis=1, keepdims=0), {"x": x})


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("axis", [0, 1])
def test_arg_reduce_symbolic(check_model, axis, batch):
    out = [1, 5] if axis == 0 else ["N", 1]
    model = _arg_model("ArgMax", ("N", 5), np.float32, out_shape=out, axis=axis)
    check_model(model, {"x": _x((batch, 5), np.float32, batch)})


@pytest.mark.parametrize("last", [0, 1])
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_folded(check_folded, op, last):
    x = np.random.default_rng(3).integers(0, 3, (3, 4, 5)).astype(np.float32)
    check_folded(_arg_model(op, (3, 4, 5), np.float32, axis=1, select_last_index=last), {"x": x})


def test_arg_reduce_errors():
    with pytest.raises(ShapeError, match="axis 3 is out of range for rank 2"):
        sr.load(_arg_model("ArgMax", (2, 3), np.float32, out_shape=[2, 3], axis=3)).code()
    with pytest.raises(ShapeError, match="axis 1 is empty"):
        sr.load(_arg_model("ArgMin", (2, 0), np.float32, axis=1)).code()


def test_arg_reduce_empty_axis_at_run_time():
    """A symbolic axis that is 0 at run time has no answer: the generated code throws."""
    sess = sr.compile(sr.load(_arg_model("ArgMax", (2, "L"), np.float32, out_shape=[2, 1], axis=1)))
    with pytest.raises(Exception, match="empty axis"):
        sess.infer(np.zeros((2, 0), np.float32))


# ---- CumSum -------------------------------------------------------------------------

def _cumsum_model(shape, dtype, axis, axis_dtype=np.int64, **attrs):
    node = helper.make_node("CumSum", ["x", "axis"], ["y"], **attrs)
    return make_model([node], [("x", dtype, list(shape))], [("y", dtype, list(shape))],
                      {"axis": np.array(axis, axis_dtype)}, opset=14)


@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_cumsum(check_model, axis, exclusive, reverse):
    x = _x((3, 4, 5), np.float32, 1)
    check_model(_cumsum_model((3, 4, 5), np.float32, axis, exclusive=exclusive, reverse=reverse), {"x": x})


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis_dtype", [np.int32, np.int64], ids=lambda d: np.dtype(d).name)
def test_cumsum_dtypes(check_model, dtype, axis_dtype):
    x = _x((4, 70), dtype, 2)  # 70 > one block of the kernel's inner accumulators
    check_model(_cumsum_model((4, 70), dtype, 0, axis_dtype, exclusive=1), {"x": x})


def test_cumsum_integer_wraps(check_model):
    """Unlike the reductions, onnxruntime's integer CumSum wraps in the element type."""
    x = np.array([2**30, 2**30, 2**30, -5], np.int32)
    check_model(_cumsum_model((4,), np.int32, 0), {"x": x})


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("axis", [0, 1])
def test_cumsum_symbolic(check_model, axis, batch):
    node = helper.make_node("CumSum", ["x", "axis"], ["y"], reverse=1)
    model = make_model([node], [("x", np.float32, ["N", 6])], [("y", np.float32, ["N", 6])],
                       {"axis": np.array(axis, np.int64)}, opset=14)
    check_model(model, {"x": _x((batch, 6), np.float32, batch)})


@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("exclusive", [0, 1])
def test_cumsum_folded(check_folded, exclusive, reverse):
    x = _x((3, 4), np.float64, 3)
    check_folded(_cumsum_model((3, 4), np.float64, 1, exclusive=exclusive, reverse=reverse), {"x": x})


def test_cumsum_errors():
    with pytest.raises(ShapeError, match="axis 2 is out of range for rank 2"):
        sr.load(_cumsum_model((2, 3), np.float32, 2)).code()
    with pytest.raises(ShapeError, match="axis must be one int32 or int64 value"):
        sr.load(_cumsum_model((2, 3), np.float32, [0, 1])).code()
    with pytest.raises(ShapeError, match="axis must be one int32 or int64 value"):
        sr.load(_run_time_axis_model("CumSum", [2])).code()


def _run_time_axis_model(op, axis_shape=(), axis_dtype=np.int64, **attrs):
    """CumSum / CumProd whose axis is a graph input, on an (N, 3, 4) input."""
    node = helper.make_node(op, ["x", "axis"], ["y"], **attrs)
    return make_model([node], [("x", np.float32, ["N", 3, 4]), ("axis", axis_dtype, list(axis_shape))],
                      [("y", np.float32, ["N", 3, 4])], opset=14 if op == "CumSum" else 26)


@pytest.mark.parametrize("backend", ["jit", "native"])
@pytest.mark.parametrize("op, attrs", [("CumSum", {}), ("CumSum", {"exclusive": 1, "reverse": 1}),
                                       ("CumProd", {"reverse": 1})], ids=str)
def test_cumulative_run_time_axis(op, attrs, backend):
    if op == "CumProd" and not _ort_has_cumprod():
        pytest.skip("this onnxruntime has no CumProd")
    feeds = [{"x": _x((n, 3, 4), np.float32, k), "axis": np.array(axis, np.int64)}
             for k, (n, axis) in enumerate([(2, 0), (1, 1), (3, 2), (2, -1), (4, -3)])]
    _check_runs(_run_time_axis_model(op, **attrs), feeds, backend)


def test_cumsum_run_time_axis_int32():
    feeds = [{"x": _x((2, 3, 4), np.float32), "axis": np.array([axis], np.int32)} for axis in (1, -2, 0)]
    _check_runs(_run_time_axis_model("CumSum", [1], np.int32), feeds, "jit")


@pytest.mark.parametrize("axis", [3, -4])
def test_cumsum_run_time_axis_bad(axis):
    sess = sr.compile(sr.load(_run_time_axis_model("CumSum")))
    with pytest.raises(ShapeError, match=f"CumSum node .*: axis {axis} is out of range for rank 3"):
        sess.infer(_x((2, 3, 4), np.float32), np.array(axis, np.int64))


def _ort_has_cumprod() -> bool:
    """CumProd is opset 26: older onnxruntime builds cannot run it."""
    try:
        ort_run(_run_time_axis_model("CumProd"), {"x": _x((1, 3, 4), np.float32), "axis": np.array(0, np.int64)})
    except Exception:
        return False
    return True

