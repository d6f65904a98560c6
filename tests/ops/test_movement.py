"""Data-movement operators against onnxruntime: Transpose, Slice and Concat."""

import warnings

import numpy as np
import pytest
from conftest import check_runs, make_model, ort_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError, SofieError, SpecialisationWarning

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def _x(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "i":
        return rng.integers(-100, 100, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# ---- Transpose -------------------------------------------------------------------

TRANSPOSE = {
    "2d_default": ((3, 4), None),
    "3d_default": ((2, 3, 4), None),
    "3d_021": ((2, 3, 4), [0, 2, 1]),
    "3d_120": ((2, 3, 4), [1, 2, 0]),
    "3d_identity": ((2, 3, 4), [0, 1, 2]),
    "4d_nchw_nhwc": ((2, 3, 4, 5), [0, 2, 3, 1]),
    "4d_nhwc_nchw": ((2, 3, 4, 5), [0, 3, 1, 2]),
    "4d_default": ((2, 3, 4, 5), None),
    "4d_unit_dims": ((1, 3, 1, 5), [2, 3, 0, 1]),
    "5d_default": ((2, 3, 2, 2, 3), None),
    "5d_perm": ((2, 3, 2, 4, 3), [4, 1, 3, 0, 2]),
}


@pytest.mark.parametrize("case", list(TRANSPOSE))
def test_transpose(check_model, case):
    shape, perm = TRANSPOSE[case]
    out = np.transpose(np.empty(shape), perm).shape
    attrs = {} if perm is None else {"perm": perm}
    model = make_model([helper.make_node("Transpose", ["x"], ["y"], **attrs)], [("x", np.float32, list(shape))],
                       [("y", np.float32, list(out))])
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_transpose_dtypes(check_model, dtype):
    model = make_model([helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0, 2])], [("x", dtype, [2, 3, 4])],
                       [("y", dtype, [3, 2, 4])])
    check_model(model, {"x": _x((2, 3, 4), 1, dtype)})


@pytest.mark.parametrize("batch", [1, 4])
def test_transpose_symbolic_batch(check_model, batch):
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]), helper.make_node("Relu", ["t"], ["r"]),
             helper.make_node("Transpose", ["r"], ["y"], perm=[2, 1, 0])]
    model = make_model(nodes, [("x", np.float32, ["N", 3, 4])], [("y", np.float32, [3, 4, "N"])])
    check_model(model, {"x": _x((batch, 3, 4), batch)})


def test_transpose_of_initializer_folds(check_model):
    w = _x((4, 3), 2)
    nodes = [helper.make_node("Transpose", ["w"], ["wt"]), helper.make_node("MatMul", ["x", "wt"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [2, 4])], [("y", np.float32, [2, 3])], {"w": w.T.copy()})
    check_model(model, {"x": _x((2, 4))})


# ---- Slice ----------------------------------------------------------------------------

# (input shape, starts, ends, axes or None, steps or None)
SLICE = {
    "basic": ((6, 5), [1, 0], [4, 3], None, None),
    "axes_subset": ((6, 5, 4), [1], [3], [1], None),
    "negative_axis": ((6, 5, 4), [1], [-1], [-1], None),
    "negative_starts": ((6, 5), [-4, -3], [-1, 5], None, None),
    "ends_beyond": ((6, 5), [2, 1], [100, 1000], None, None),
    "int64_max_end": ((6, 5), [1], [INT64_MAX], [0], None),
    "step2": ((7, 5), [0, 1], [7, 5], [0, 1], [2, 2]),
    "step3_partial": ((10,), [1], [9], [0], [3]),
    "negative_step": ((6, 5), [5], [0], [0], [-1]),
    "negative_step_full": ((6, 5), [-1], [INT64_MIN], [1], [-1]),
    "negative_step2": ((7, 5), [-1, 4], [-100, 0], [0, 1], [-2, -3]),
    "reverse_all": ((3, 4, 2), [-1, -1, -1], [INT64_MIN, INT64_MIN, INT64_MIN], [0, 1, 2], [-1, -1, -1]),
    "start_clamped": ((6, 5), [-100], [3], [0], None),
    "empty": ((6, 5), [4], [2], [0], None),
    "unordered_axes": ((4, 5, 6), [1, 2], [5, 4], [2, 0], None),
    "4d_mixed": ((2, 3, 4, 5), [0, 1, -1], [1, INT64_MAX, 0], [0, 2, 3], [1, 2, -2]),
}


@pytest.mark.parametrize("case", list(SLICE))
def test_slice(check_model, case):
    shape, starts, ends, axes, steps = SLICE[case]
    inits = {"starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64)}
    names = ["x", "starts", "ends"]
    if axes is not None or steps is not None:
        inits["axes"] = np.array(axes if axes is not None else range(len(starts)), np.int64)
        names.append("axes")
    if steps is not None:
        inits["steps"] = np.array(steps, np.int64)
        names.append("steps")
    x = _x(shape)
    probe = make_model([helper.make_node("Slice", names, ["y"])], [("x", np.float32, list(shape))],
                       [("y", np.float32, [None] * len(shape))], inits, opset=13)
    out = ort_run(probe, {"x": x})[0].shape
    model = make_model([helper.make_node("Slice", names, ["y"])], [("x", np.float32, list(shape))],
                       [("y", np.float32, list(out))], inits, opset=13)
    check_model(model, {"x": x})


def test_slice_int32_params(check_model):
    inits = {"s": np.array([1, -3], np.int32), "e": np.array([5, -1], np.int32), "a": np.array([0, 1], np.int32),
             "st": np.array([2, 1], np.int32)}
    model = make_model([helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])], [("x", np.float32, [6, 5])],
                       [("y", np.float32, [2, 2])], inits, opset=10)
    check_model(model, {"x": _x((6, 5))})


@pytest.mark.parametrize("case", ["basic", "axes_subset", "negative_starts", "ends_beyond", "int64_max_end"])
def test_slice_opset9_attributes(check_model, case):
    shape, starts, ends, axes, _ = SLICE[case]
    attrs = {"starts": starts, "ends": ends}
    if axes is not None:
        attrs["axes"] = axes
    expected = np.empty(shape)[tuple(slice(s, e) for s, e in zip(starts, ends))] if axes is None else None
    if expected is None:
        index = [slice(None)] * len(shape)
        for s, e, a in zip(starts, ends, axes):
            index[a] = slice(s, e)
        expected = np.empty(shape)[tuple(index)]
    model = make_model([helper.make_node("Slice", ["x"], ["y"], **attrs)], [("x", np.float32, list(shape))],
                       [("y", np.float32, list(expected.shape))], opset=9)
    check_model(model, {"x": _x(shape)})


def test_slice_int64_data(check_model):
    inits = {"s": np.array([1], np.int64), "e": np.array([INT64_MAX], np.int64), "a": np.array([1], np.int64)}
    model = make_model([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])], [("x", np.int64, [3, 4])],
                       [("y", np.int64, [3, 3])], inits, opset=11)
    check_model(model, {"x": _x((3, 4), 3, np.int64)})


@pytest.mark.parametrize("batch", [2, 5])
@pytest.mark.parametrize("case", ["inner_axis", "batch_axis_to_end", "batch_axis_negative", "inner_step"])
def test_slice_symbolic_batch(check_model, batch, case):
    starts, ends, axes, steps = {
        "inner_axis": ([1], [3], [1], [1]),
        "batch_axis_to_end": ([1], [INT64_MAX], [0], [1]),
        "batch_axis_negative": ([0], [-1], [0], [1]),
        "inner_step": ([3, -1], [0, INT64_MIN], [1, 2], [-2, -1]),
    }[case]
    inits = {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64), "a": np.array(axes, np.int64),
             "st": np.array(steps, np.int64)}
    nodes = [helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["t"]), helper.make_node("Neg", ["t"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 4, 4])], [("y", np.float32, [None, None, None])], inits)
    check_model(model, {"x": _x((batch, 4, 4), batch)})


def test_slice_of_constant_folds(check_model):
    w = _x((6, 4), 7)
    inits = {"w": w, "s": np.array([2], np.int64), "e": np.array([5], np.int64)}
    nodes = [helper.make_node("Slice", ["w", "s", "e"], ["ws"]), helper.make_node("Add", ["x", "ws"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [3, 4])], [("y", np.float32, [3, 4])], inits)
    check_model(model, {"x": _x((3, 4))})


# ---- Concat ---------------------------------------------------------------------------

@pytest.mark.parametrize("n_inputs", [2, 3, 4])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_concat(check_model, axis, n_inputs):
    base = [2, 3, 4]
    shapes = []
    for k in range(n_inputs):
        s = list(base)
        s[axis] = k + 1
        shapes.append(s)
    out = list(base)
    out[axis] = sum(s[axis] for s in shapes)
    names = [f"x{k}" for k in range(n_inputs)]
    model = make_model([helper.make_node("Concat", names, ["y"], axis=axis)],
                       [(n, np.float32, s) for n, s in zip(names, shapes)], [("y", np.float32, out)])
    check_model(model, {n: _x(s, k) for k, (n, s) in enumerate(zip(names, shapes))})


def test_concat_with_initializer_and_repeat(check_model):
    """An input given twice and a weight between run-time tensors."""
    model = make_model([helper.make_node("Concat", ["x", "w", "x"], ["y"], axis=1)], [("x", np.float32, [2, 3])],
                       [("y", np.float32, [2, 8])], {"w": _x((2, 2), 4)})
    check_model(model, {"x": _x((2, 3))})


def test_concat_1d_int64(check_model):
    model = make_model([helper.make_node("Concat", ["a", "b"], ["y"], axis=0)],
                       [("a", np.int64, [3]), ("b", np.int64, [5])], [("y", np.int64, [8])])
    check_model(model, {"a": _x((3,), 1, np.int64), "b": _x((5,), 2, np.int64)})


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_symbolic(check_model, batch, axis):
    shapes = {0: (["N", 4], [2, 4]), 1: (["N", 2], ["N", 3]), -1: (["N", 2], ["N", 3])}[axis]
    out = {0: [None, 4], 1: ["N", 5], -1: ["N", 5]}[axis]
    nodes = [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Concat", ["r", "b"], ["y"], axis=axis)]
    model = make_model(nodes, [("a", np.float32, shapes[0]), ("b", np.float32, shapes[1])], [("y", np.float32, out)])
    feeds = {"a": _x([batch if d == "N" else d for d in shapes[0]], 1),
             "b": _x([batch if d == "N" else d for d in shapes[1]], 2)}
    check_model(model, feeds)


def test_concat_of_constants_folds(check_model):
    inits = {"a": _x((2, 2), 1), "b": _x((1, 2), 2)}
    nodes = [helper.make_node("Concat", ["a", "b"], ["c"], axis=0), helper.make_node("Mul", ["x", "c"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [3, 2])], [("y", np.float32, [3, 2])], inits)
    check_model(model, {"x": _x((3, 2))})


def test_transpose_rank1(check_model):
    model = make_model([helper.make_node("Transpose", ["x"], ["y"])], [("x", np.float32, [5])],
                       [("y", np.float32, [5])])
    check_model(model, {"x": _x((5,))})


def test_concat_empty_input(check_model):
    """A zero-sized input contributes nothing."""
    model = make_model([helper.make_node("Concat", ["a", "b", "c"], ["y"], axis=1)],
                       [("a", np.float32, [2, 3]), ("b", np.float32, [2, 0]), ("c", np.float32, [2, 1])],
                       [("y", np.float32, [2, 4])])
    check_model(model, {"a": _x((2, 3)), "b": _x((2, 0)), "c": _x((2, 1))})


# ---- folded at generation time (numpy references) -----------------------------------

@pytest.mark.parametrize("case", ["3d_120", "4d_nchw_nhwc", "5d_perm"])
def test_transpose_folded(check_folded, case):
    test_transpose(check_folded, case)


@pytest.mark.parametrize("case", list(SLICE))
def test_slice_folded(check_folded, case):
    test_slice(check_folded, case)


@pytest.mark.parametrize("axis, n_inputs", [(0, 2), (-1, 3), (1, 4)])
def test_concat_folded(check_folded, axis, n_inputs):
    test_concat(check_folded, axis, n_inputs)


# ---- Slice with parameters computed at run time ------------------------------------------

@pytest.mark.parametrize("backend", ["jit", "native"])
def test_slice_run_time_parameters(backend):
    """starts, ends, axes and steps all graph inputs: negative, clamped, reversed, on inputs of any batch."""
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])
    params = [(k, np.int64, [2]) for k in ("starts", "ends", "axes", "steps")]
    model = make_model([node], [("x", np.float32, ["n", 10, 6]), *params], [("y", np.float32, None)], opset=13)
    cases = [(3, [1, 0], [8, 5], [1, 2], [2, 1]), (2, [-1, 9], [-100, 0], [2, 1], [-1, -3]),
             (4, [0, 1], [2**62, -1], [0, -1], [1, 2]), (1, [5, 2], [5, 100], [1, 0], [1, 1]),
             (5, [-3, 4], [100, -100], [0, 2], [1, -2])]
    feeds = [{"x": _x((n, 10, 6), n), **{k: np.array(v, np.int64) for k, v in zip(("starts", "ends", "axes", "steps"), p)}}
             for n, *p in cases]
    sess = check_runs(model, feeds, backend)
    bad = [np.array(v, np.int64) for v in ([0, 0], [1, 1], [0, 0], [1, 1])]
    with pytest.raises(ShapeError, match=r"Slice node .*axis 0 is given twice"):
        sess.infer(_x((2, 10, 6)), *bad)
    bad[2], bad[3] = np.array([0, 1], np.int64), np.array([1, 0], np.int64)
    with pytest.raises(ShapeError, match=r"Slice node .*the step along axis 1 is 0"):
        sess.infer(_x((2, 10, 6)), *bad)


def test_slice_run_time_ends_known_axes():
    """Only ends computed at run time (int32), axes known: the other dims keep their sizes."""
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])
    model = make_model([node], [("x", np.float32, [4, 5, 6]), ("ends", np.int32, [1])], [("y", np.float32, None)],
                       {"starts": np.array([1], np.int32), "axes": np.array([2], np.int32)}, opset=13)
    check_runs(model, [{"x": _x((4, 5, 6)), "ends": np.array([e], np.int32)} for e in (3, -1, 100, 0)], "jit")


# ---- Slice backwards over a symbolic batch ----------------------------------------------

INT32_MAX, INT32_MIN = np.iinfo(np.int32).max, np.iinfo(np.int32).min

# output -> (starts, ends, axes, steps, index dtype, smallest batch: a bound inside the dim is not clamped)
BACKWARDS = {
    "int64_bounds": ([INT64_MAX], [INT64_MIN], [0], [-1], np.int64, 1),
    "last_to_int64_min": ([-1], [INT64_MIN], [0], [-1], np.int64, 1),
    "int32_bounds": ([INT32_MAX], [INT32_MIN], [0], [-1], np.int32, 1),
    "last_to_second": ([-1], [0], [0], [-1], np.int64, 1),
    "empty_end_last": ([INT64_MAX], [-1], [0], [-1], np.int64, 1),
    "step_minus_2": ([INT64_MAX], [INT64_MIN], [0], [-2], np.int64, 1),
    "batch_and_inner": ([INT64_MAX, 2, -1], [INT64_MIN, INT64_MIN, -4], [0, 1, -1], [-1, -1, -1], np.int64, 1),
    "second_row_on": ([1], [INT64_MIN], [0], [-1], np.int64, 2),
    "second_last_to_first": ([-2], [0], [0], [-1], np.int64, 2),
}


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_slice_backwards_over_symbolic_batch(check_model, batch):
    """Step -1 (and -2) along the symbolic batch axis with starts/ends out of range (INT64/INT32 extremes, a last
    index from the end), empty results included: one build for every batch, against onnxruntime for 1, 2 and 5
    (bounds inside the dim where the batch holds them)."""
    nodes, inits, outputs = [], {}, []
    for name, (starts, ends, axes, steps, dtype, smallest) in BACKWARDS.items():
        if batch < smallest:
            continue
        params = [f"{name}_{k}" for k in ("starts", "ends", "axes", "steps")]
        inits.update({p: np.array(v, dtype) for p, v in zip(params, (starts, ends, axes, steps))})
        nodes.append(helper.make_node("Slice", ["x", *params], [name]))
        outputs.append((name, np.float32, None))
    model = make_model(nodes, [("x", np.float32, ["N", 4, 3])], outputs, inits)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecialisationWarning)  # one build: no per-batch specialisation
        check_model(model, {"x": _x((batch, 4, 3), batch)})


@pytest.mark.parametrize("batch", [1, 5])
def test_slice_backwards_bounds_from_the_batch_size(check_model, batch):
    """starts ``N - 1`` and ends ``-N - 1`` computed from the batch size: the values depend on N, so sofie-rdf
    builds the model for each N it is called with (SpecialisationWarning); against onnxruntime."""
    nodes = [
        helper.make_node("Shape", ["x"], ["n"], start=0, end=1),
        helper.make_node("Sub", ["n", "one"], ["last"]),
        helper.make_node("Sub", ["minus_one", "n"], ["before_first"]),
        helper.make_node("Slice", ["x", "last", "before_first", "zero", "minus_one"], ["y"]),
    ]
    inits = {"one": np.array([1], np.int64), "minus_one": np.array([-1], np.int64), "zero": np.array([0], np.int64)}
    model = make_model(nodes, [("x", np.float32, ["N", 4, 3])], [("y", np.float32, None)], inits)
    with pytest.warns(SpecialisationWarning, match="Slice node"):
        check_model(model, {"x": _x((batch, 4, 3), batch)})


def test_slice_backwards_bound_inside_symbolic_dim():
    """A small bound along a symbolic dim is not clamped to the run-time size: a batch too small for it is an
    error naming the node, not a wrong result."""
    inits = {"s": np.array([3], np.int64), "e": np.array([INT64_MIN], np.int64), "a": np.array([0], np.int64),
             "st": np.array([-1], np.int64)}
    model = make_model([helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"], name="reverse")],
                       [("x", np.float32, ["N", 2])], [("y", np.float32, None)], inits)
    session = sr.compile(sr.load(model))
    np.testing.assert_array_equal(session.infer(_x((5, 2))), _x((5, 2))[3::-1])
    with pytest.raises(SofieError, match=r"reverse.*slicing \[3:.*needs dim N > 3"):
        session.infer(_x((3, 2)))
