"""Shape operators against onnxruntime: Reshape, Flatten, Squeeze, Unsqueeze, Identity,
Dropout, Shape and Constant.  Most are views, so each model also runs an op on the
result to check the data is read through the view correctly."""

from functools import partial

import numpy as np
import pytest
from conftest import check_runs, make_model, ort_run, sofie_run
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _single(check_model, nodes, x_shape, y_shape, inits=None, opset=17, dtype=np.float32, seed=0):
    x = _x(x_shape, seed, dtype)
    model = make_model(nodes, [("x", dtype, list(x_shape))], [("y", dtype, list(y_shape))], inits, opset=opset)
    return check_model(model, {"x": x})


# ---- Reshape -----------------------------------------------------------------

RESHAPE = {
    "plain": ((2, 3, 4), [4, 6], (4, 6)),
    "minus_one_first": ((2, 3, 4), [-1, 4], (6, 4)),
    "minus_one_last": ((2, 3, 4), [2, -1], (2, 12)),
    "zero_copies": ((2, 3, 4), [0, -1], (2, 12)),
    "zero_middle": ((2, 3, 4), [2, 0, 2, 2], (2, 3, 2, 2)),
    "flat": ((2, 3, 4), [-1], (24,)),
    "add_rank": ((6, 4), [2, 3, 2, 2], (2, 3, 2, 2)),
    "to_scalar": ((1, 1), [], ()),
    "from_scalar": ((), [1, 1, 1], (1, 1, 1)),
}


@pytest.mark.parametrize("case", list(RESHAPE))
def test_reshape(check_model, case):
    x_shape, target, y_shape = RESHAPE[case]
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    _single(check_model, nodes, x_shape, y_shape, {"s": np.array(target, np.int64)})


@pytest.mark.parametrize("case", ["zero_dim_kept", "zero_and_minus_one_copy"])
def test_reshape_allowzero(check_model, case):
    """allowzero=1 (opset 14): a 0 entry is a real zero-sized dim, not "copy the input dim"."""
    if case == "zero_dim_kept":
        x_shape, target, y_shape = (0, 3), [3, 0], (3, 0)
    else:
        x_shape, target, y_shape = (2, 3, 4), [2, 3, 4], (2, 3, 4)
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"], allowzero=1), helper.make_node("Abs", ["r"], ["y"])]
    _single(check_model, nodes, x_shape, y_shape, {"s": np.array(target, np.int64)}, opset=14)


def test_reshape_allowzero_default_at_opset14(check_model):
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"], allowzero=0), helper.make_node("Abs", ["r"], ["y"])]
    _single(check_model, nodes, (2, 3, 4), (2, 3, 4), {"s": np.array([0, 0, -1], np.int64)}, opset=14)


def test_reshape_opset5_int64_data(check_model):
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    _single(check_model, nodes, (4, 3), (3, 4), {"s": np.array([3, 4], np.int64)}, opset=7, dtype=np.int64)


def test_reshape_output_is_graph_output(check_model):
    """A view that is itself the graph output (it must be copied or written in place)."""
    _single(check_model, [helper.make_node("Reshape", ["x", "s"], ["y"])], (2, 6), (3, 4),
            {"s": np.array([3, 4], np.int64)})


def test_view_and_its_source_both_outputs(check_model):
    """Two graph outputs sharing memory: one is written in place, the other copied."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "s"], ["y"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=0)]
    model = make_model(nodes, [("x", np.float32, [2, 6])],
                       [("r", np.float32, [2, 6]), ("y", np.float32, [3, 4]), ("f", np.float32, [1, 12])],
                       {"s": np.array([3, 4], np.int64)})
    check_model(model, {"x": _x((2, 6))})


def test_reshape_of_intermediate_to_output(check_model):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "s"], ["y"])]
    _single(check_model, nodes, (2, 6), (12,), {"s": np.array([-1], np.int64)})


@pytest.mark.parametrize("batch", [2, 5])
def test_reshape_symbolic_batch(check_model, batch):
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Sigmoid", ["r"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3, 4])], [("y", np.float32, ["N", 12])],
                       {"s": np.array([0, -1], np.int64)})
    check_model(model, {"x": _x((batch, 3, 4), batch)})


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("start, end", [(None, None), (1, None), (0, 1), (-2, None), (1, -1)])
def test_shape_feeds_reshape(check_model, batch, start, end):
    """Shape (with start/end at opset 15) -> Concat -> Reshape folds at generation time."""
    attrs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    nodes = [helper.make_node("Shape", ["x"], ["s"], **attrs),
             helper.make_node("Concat", ["s", "rest"], ["t"], axis=0),
             helper.make_node("Reshape", ["z", "t"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    dims = [batch, 3, 4][slice(start, end)]
    y_shape = (*dims, batch * 12 // int(np.prod(dims)))
    model = make_model(nodes, [("x", np.float32, ["N", 3, 4]), ("z", np.float32, ["N", 12])],
                       [("y", np.float32, [None] * len(y_shape))], {"rest": np.array([-1], np.int64)}, opset=15)
    out = check_model(model, {"x": _x((batch, 3, 4), 1), "z": _x((batch, 12), 2)})[0]
    assert out.shape == y_shape
    header = sr.load(model).code().header
    assert ": Shape " not in header and ": Concat " not in header  # folded: no run-time node left


def test_shape_output_values(check_model):
    """Shape as a graph output: a constant known from the input shape."""
    nodes = [helper.make_node("Shape", ["x"], ["y"], start=1)]
    model = make_model(nodes, [("x", np.float32, [2, 3, 4])], [("y", np.int64, [2])], opset=15)
    check_model(model, {"x": _x((2, 3, 4))})


@pytest.mark.parametrize("batch", [3, 8])
def test_shape_symbolic_output(check_model, batch):
    nodes = [helper.make_node("Shape", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["z"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3])], [("y", np.int64, [2]), ("z", np.float32, ["N", 3])])
    check_model(model, {"x": _x((batch, 3))})


# ---- Flatten -------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, 2, 3, 4, -1, -2, -4])
def test_flatten(check_model, axis):
    shape = (2, 3, 4, 5)
    a = axis % 5 if axis >= 0 else axis + 4
    y_shape = (int(np.prod(shape[:a])), int(np.prod(shape[a:])))
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=axis), helper.make_node("Exp", ["f"], ["y"])]
    _single(check_model, nodes, shape, y_shape)


def test_flatten_default_axis(check_model):
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Exp", ["f"], ["y"])]
    _single(check_model, nodes, (3, 2, 2), (3, 4), opset=9)


@pytest.mark.parametrize("batch", [1, 6])
def test_flatten_symbolic_batch(check_model, batch):
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 2, 3])], [("y", np.float32, ["N", 4])],
                       {"w": _x((6, 4), 9)})
    check_model(model, {"x": _x((batch, 2, 3), batch)})


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("axis", [0, 2, -1])
def test_flatten_symbolic_axes(check_model, batch, axis):
    """Flatten with the open dim on either side of the axis."""
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=axis), helper.make_node("Exp", ["f"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 2, 3])], [("y", np.float32, [None, None])])
    check_model(model, {"x": _x((batch, 2, 3), batch)})


# ---- Squeeze / Unsqueeze ---------------------------------------------------------

SQUEEZE = {
    "all": ((1, 3, 1, 4), None, (3, 4)),
    "one": ((1, 3, 1, 4), [0], (3, 1, 4)),
    "two": ((1, 3, 1, 4), [0, 2], (3, 4)),
    "negative": ((1, 3, 1, 4), [-2], (1, 3, 4)),
    "mixed_sign": ((1, 3, 1, 4, 1), [0, -1], (3, 1, 4)),
    "to_scalar": ((1, 1), None, ()),
}


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("case", list(SQUEEZE))
def test_squeeze(check_model, case, opset):
    x_shape, axes, y_shape = SQUEEZE[case]
    inits = {}
    if axes is None:
        node = helper.make_node("Squeeze", ["x"], ["s"])
    elif opset >= 13:
        node = helper.make_node("Squeeze", ["x", "axes"], ["s"])
        inits["axes"] = np.array(axes, np.int64)
    else:
        node = helper.make_node("Squeeze", ["x"], ["s"], axes=axes)
    _single(check_model, [node, helper.make_node("Tanh", ["s"], ["y"])], x_shape, y_shape, inits, opset=opset)


UNSQUEEZE = {
    "front": ((3, 4), [0], (1, 3, 4)),
    "back": ((3, 4), [2], (3, 4, 1)),
    "negative": ((3, 4), [-1], (3, 4, 1)),
    "middle_neg": ((3, 4), [-2], (3, 1, 4)),
    "several": ((3, 4), [0, 2, 4], (1, 3, 1, 4, 1)),
    "unsorted": ((3, 4), [3, 0], (1, 3, 4, 1)),
    "scalar": ((), [0], (1,)),
}


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("case", list(UNSQUEEZE))
def test_unsqueeze(check_model, case, opset):
    x_shape, axes, y_shape = UNSQUEEZE[case]
    inits = {}
    if opset >= 13:
        node = helper.make_node("Unsqueeze", ["x", "axes"], ["u"])
        inits["axes"] = np.array(axes, np.int64)
    else:
        node = helper.make_node("Unsqueeze", ["x"], ["u"], axes=axes)
    _single(check_model, [node, helper.make_node("Tanh", ["u"], ["y"])], x_shape, y_shape, inits, opset=opset)


@pytest.mark.parametrize("batch", [1, 3])
def test_squeeze_unsqueeze_symbolic(check_model, batch):
    nodes = [helper.make_node("Unsqueeze", ["x", "a1"], ["u"]), helper.make_node("Relu", ["u"], ["r"]),
             helper.make_node("Squeeze", ["r", "a1"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 4])], [("y", np.float32, ["N", 4])],
                       {"a1": np.array([1], np.int64)}, opset=13)
    check_model(model, {"x": _x((batch, 4), batch)})


# ---- Identity / Dropout ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_identity(check_model, dtype):
    x = np.random.default_rng(0).integers(0, 2, (3, 4)).astype(dtype)
    model = make_model([helper.make_node("Identity", ["x"], ["y"])], [("x", dtype, [3, 4])], [("y", dtype, [3, 4])])
    check_model(model, {"x": x})


def test_identity_chain(check_model):
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Identity", ["a"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["y"])]
    _single(check_model, nodes, (5,), (5,))


def test_identity_of_initializer(check_model):
    nodes = [helper.make_node("Identity", ["w"], ["i"]), helper.make_node("Mul", ["x", "i"], ["y"])]
    _single(check_model, nodes, (2, 3), (2, 3), {"w": _x((2, 3), 4)})


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("opset", [10, 13])
def test_dropout(check_model, opset, mask):
    outputs = ["d", "m"] if mask else ["d"]
    attrs = {"ratio": 0.3} if opset < 12 else {}
    nodes = [helper.make_node("Dropout", ["x"], outputs, **attrs), helper.make_node("Relu", ["d"], ["y"])]
    graph_out = [("y", np.float32, [3, 4])] + ([("m", np.bool_, [3, 4])] if mask else [])
    model = make_model(nodes, [("x", np.float32, [3, 4])], graph_out, opset=opset)
    if mask and opset < 12:
        # onnxruntime's Dropout-10 kernel returns an all-false mask in inference; the ONNX
        # reference evaluator (and Dropout-12+ everywhere) says every element is kept.
        x = _x((3, 4))
        y, m = sofie_run(model, {"x": x})
        np.testing.assert_allclose(y, ort_run(model, {"x": x})[0])
        np.testing.assert_array_equal(m, ReferenceEvaluator(model).run(None, {"x": x})[1])
        assert m.dtype == np.bool_ and m.all()
        return
    check_model(model, {"x": _x((3, 4))})


def test_dropout_ratio_and_training_inputs(check_model):
    """Opset 13 Dropout with ratio and training_mode=false given as inputs."""
    nodes = [helper.make_node("Dropout", ["x", "r", "t"], ["y", "m"])]
    model = make_model(nodes, [("x", np.float32, [2, 5])], [("y", np.float32, [2, 5]), ("m", np.bool_, [2, 5])],
                       {"r": np.array(0.5, np.float32), "t": np.array(False)}, opset=13)
    check_model(model, {"x": _x((2, 5))})


@pytest.mark.parametrize("batch", [2, 4])
def test_dropout_mask_symbolic(check_model, batch):
    nodes = [helper.make_node("Dropout", ["x"], ["y", "m"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3])], [("y", np.float32, ["N", 3]), ("m", np.bool_, ["N", 3])],
                       opset=13)
    check_model(model, {"x": _x((batch, 3))})


# ---- Constant ------------------------------------------------------------------------

CONSTANTS = {
    "value": {"value": numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) / 7, "c")},
    "value_scalar": {"value": numpy_helper.from_array(np.array(2.5, np.float32), "c")},
    "value_float": {"value_float": -1.25},
    "value_floats": {"value_floats": [0.5, -2.0, 3.0, 4.5]},
}


@pytest.mark.parametrize("case", list(CONSTANTS))
def test_constant_float(check_model, case):
    nodes = [helper.make_node("Constant", [], ["c"], **CONSTANTS[case]), helper.make_node("Add", ["x", "c"], ["y"])]
    _single(check_model, nodes, (3, 4), (3, 4), opset=13)


@pytest.mark.parametrize("attr, value", [("value_int", 3), ("value_ints", [1, -2, 3, 4])])
def test_constant_int(check_model, attr, value):
    nodes = [helper.make_node("Constant", [], ["c"], **{attr: value}), helper.make_node("Mul", ["x", "c"], ["y"])]
    x = np.arange(8, dtype=np.int64).reshape(2, 4) - 3
    model = make_model(nodes, [("x", np.int64, [2, 4])], [("y", np.int64, [2, 4])], opset=13)
    check_model(model, {"x": x})


def test_constant_as_graph_output(check_model):
    nodes = [helper.make_node("Constant", [], ["y"], value_floats=[1.0, 2.0]), helper.make_node("Neg", ["x"], ["z"])]
    model = make_model(nodes, [("x", np.float32, [2])], [("y", np.float32, [2]), ("z", np.float32, [2])], opset=13)
    check_model(model, {"x": _x((2,))})


def test_constant_reshape_target(check_model):
    """A Constant shape fed to Reshape (the usual exporter pattern)."""
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    nodes = [helper.make_node("Constant", [], ["s"], value=shape), helper.make_node("Reshape", ["x", "s"], ["r"]),
             helper.make_node("Softmax", ["r"], ["y"], axis=1)]
    _single(check_model, nodes, (2, 3, 4), (2, 12), opset=13)


def test_constant_subgraph_folds(check_model):
    """Constant -> Cast -> Mul -> Unsqueeze on constants only becomes one weight."""
    nodes = [helper.make_node("Constant", [], ["c"], value_ints=[1, 2, 3]),
             helper.make_node("Cast", ["c"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["f", "w"], ["m"]),
             helper.make_node("Unsqueeze", ["m", "ax"], ["u"]),
             helper.make_node("Add", ["x", "u"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [2, 3])], [("y", np.float32, [2, 3])],
                       {"w": _x((3,), 5), "ax": np.array([0], np.int64)}, opset=13)
    check_model(model, {"x": _x((2, 3))})
    planned = sr.load(model).code()
    assert len(planned.weights) == 1


@pytest.mark.parametrize("start, end", [(-10, 10), (2, 1), (3, None)])
def test_shape_start_end_clamped(check_model, start, end):
    """start/end beyond the rank are clamped; an empty range gives an empty shape."""
    attrs = {"start": start} if end is None else {"start": start, "end": end}
    nodes = [helper.make_node("Shape", ["x"], ["s"], **attrs), helper.make_node("Relu", ["x"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [2, 3, 4])], [("y", np.float32, [2, 3, 4]), ("s", np.int64, [None])],
                       opset=15)
    check_model(model, {"x": _x((2, 3, 4))})


@pytest.mark.parametrize("batch", [2, 6])
def test_shape_value_read_at_run_time(check_model, batch):
    """Shape of a symbolic input is no number at generation time: the run-time code reads it from the dims."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "zero", "one"], ["n"]),
             helper.make_node("Cast", ["n"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["x", "f"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 3])], [("y", np.float32, ["N", 3])],
                       {"zero": np.array([0], np.int64), "one": np.array([1], np.int64)}, opset=13)
    check_model(model, {"x": _x((batch, 3))})


# ---- folded at generation time ---------------------------------------------------------

@pytest.mark.parametrize("case", ["zero_middle", "minus_one_first", "to_scalar"])
def test_reshape_folded(check_folded, case):
    test_reshape(check_folded, case)


@pytest.mark.parametrize("axis", [0, -2])
def test_flatten_folded(check_folded, axis):
    test_flatten(check_folded, axis)


@pytest.mark.parametrize("case", ["all", "negative"])
def test_squeeze_folded(check_folded, case):
    test_squeeze(check_folded, case, 13)


@pytest.mark.parametrize("case", ["unsorted", "scalar"])
def test_unsqueeze_folded(check_folded, case):
    test_unsqueeze(check_folded, case, 11)


def test_dropout_folded(check_folded):
    test_dropout(check_folded, 13, True)


# ---- values computed at run time ---------------------------------------------------------

_check_runs = partial(check_runs, rtol=1e-6)


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_reshape_run_time_shape(backend):
    """The target shape is a graph input: 0 copies a dim, -1 is inferred, any size of input; the view feeds
    an op whose memory is reserved at run time."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["n", 6]), ("shape", np.int64, [3])], [("y", np.float32, None)])
    feeds = [{"x": _x((n, 6), n), "shape": np.array(s, np.int64)}
             for n, s in [(4, [2, -1, 3]), (2, [0, 3, 2]), (6, [3, 3, 4]), (1, [1, 1, -1]), (8, [-1, 2, 2])]]
    sess = _check_runs(model, feeds, backend)
    with pytest.raises(ShapeError, match=r"Reshape node .*cannot view .* \(4, 6\) as the target shape \(5, -1, 1\)"):
        sess.infer(_x((4, 6)), np.array([5, -1, 1], np.int64))
    with pytest.raises(ShapeError, match=r"Reshape node .*has more than one -1"):
        sess.infer(_x((4, 6)), np.array([-1, -1, 1], np.int64))


def test_reshape_run_time_allowzero():
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1)
    model = make_model([node], [("x", np.float32, ["n", 3]), ("shape", np.int64, [2])], [("y", np.float32, None)],
                       opset=14)
    _check_runs(model, [{"x": _x((0, 3)), "shape": np.array(s, np.int64)} for s in ([0, 3], [3, 0], [0, 7])], "jit")


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_reshape_traced_length_checked(backend):
    """A legacy export viewing (n, 64) as (12, 4, 16): compiled with a check that n is 12, not refused."""
    model = make_model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [("x", np.float32, ["n", 64])],
                       [("y", np.float32, None)], {"shape": np.array([12, 4, 16], np.int64)})
    sess = sr.compile(sr.load(model), backend=backend)
    x = _x((12, 64))
    np.testing.assert_array_equal(sess.infer(x), x.reshape(12, 4, 16))
    with pytest.raises(ShapeError, match=r"Reshape node .*cannot view a tensor of shape \(n, 64\) as \(12, 4, 16\)"):
        sess.infer(_x((5, 64)))


def test_reshape_provably_unequal_refused():
    model = make_model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [("x", np.float32, ["n", 64])],
                       [("y", np.float32, None)], {"shape": np.array([12, 5, 3], np.int64)})
    with pytest.raises(ShapeError, match="cannot view a tensor of shape"):
        sr.load(model).code()


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_squeeze_unsqueeze_run_time_axes(backend):
    nodes = [helper.make_node("Squeeze", ["x", "sq"], ["s"]), helper.make_node("Unsqueeze", ["s", "un"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [2, 1, 3, 1]), ("sq", np.int64, [1]), ("un", np.int64, [2])],
                       [("y", np.float32, None)], opset=13)
    feeds = [{"x": _x((2, 1, 3, 1)), "sq": np.array(sq, np.int64), "un": np.array(un, np.int64)}
             for sq, un in [([1], [0, 4]), ([-1], [1, 2]), ([3], [-1, 0])]]
    sess = _check_runs(model, feeds, backend)
    with pytest.raises(ShapeError, match=r"Squeeze node .*cannot squeeze axis 0 of size 2"):
        sess.infer(_x((2, 1, 3, 1)), np.array([0], np.int64), np.array([0, 1], np.int64))
    with pytest.raises(ShapeError, match=r"Unsqueeze node .*axis 1 is given twice"):
        sess.infer(_x((2, 1, 3, 1)), np.array([1], np.int64), np.array([1, 1], np.int64))


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_dropout_run_time_training_mode(backend):
    """Identity with an all-true mask when training_mode is false or the ratio 0; an error otherwise."""
    node = helper.make_node("Dropout", ["x", "ratio", "training"], ["y", "mask"])
    model = make_model([node], [("x", np.float32, ["n", 3]), ("ratio", np.float32, []), ("training", np.bool_, [])],
                       [("y", np.float32, None), ("mask", np.bool_, None)], opset=13)
    sess = sr.compile(sr.load(model), backend=backend)
    for n, ratio, training in [(2, 0.5, False), (3, 0.0, True), (1, 0.9, False)]:
        x = _x((n, 3), n)
        y, mask = sess.infer(x, np.array(ratio, np.float32), np.array(training))
        np.testing.assert_array_equal(y, x)
        assert mask.shape == x.shape and mask.all()
    with pytest.raises(ShapeError, match=r"Dropout node .*training_mode is true with ratio 0.5"):
        sess.infer(_x((2, 3)), np.array(0.5, np.float32), np.array(True))


def test_shape_of_run_time_dims():
    """Shape of a tensor whose dims a node computes while running is written by the code, not folded
    (a value folded would be read before the dims are known)."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Size", ["r"], ["z"])]
    model = make_model(nodes, [("x", np.float32, [4, 6]), ("shape", np.int64, [2])],
                       [("s", np.int64, None), ("z", np.int64, None)])
    _check_runs(model, [{"x": _x((4, 6)), "shape": np.array(s, np.int64)} for s in ([3, -1], [-1, 12], [24, 1])], "jit")
