"""Split, Expand and Tile against onnxruntime, per attribute, data type and opset.

The split sizes, Expand's shape and Tile's repeats are needed when the code is
generated, so they are initializers here; the data stays a run-time input
(with a symbolic batch dim where the op allows one) or is folded.
"""

import numpy as np
import pytest
from conftest import check_runs, make_model, ort_run
from conftest import random_array as _data
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError, SofieError

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_, np.uint8, np.int8]
ORT_MAX_OPSET = 26  # the newest opset onnxruntime 1.31 loads


def _split_model(shape, sizes, opset, axis=0, dtype=np.float32, num_outputs=None, outputs=None):
    """Split of x (shape may hold symbols); ``sizes`` go to the attribute before opset 13, to input 1 from 13."""
    count = outputs or (len(sizes) if sizes is not None else num_outputs)
    attrs, consts, inputs = {"axis": axis}, {}, ["x"]
    if sizes is not None and opset < 13:
        attrs["split"] = list(sizes)
    elif sizes is not None:
        consts["split"] = np.array(sizes, np.int64)
        inputs.append("split")
    if num_outputs is not None:
        attrs["num_outputs"] = num_outputs
    node = helper.make_node("Split", inputs, [f"y{k}" for k in range(count)], **attrs)
    return make_model([node], [("x", dtype, list(shape))], [(f"y{k}", dtype, None) for k in range(count)], consts,
                      opset=opset)


# ---- Split -------------------------------------------------------------------------------------

SPLIT = {  # shape, axis, sizes (None: equal parts), outputs
    "equal_axis0": ((6, 4), 0, None, 3),
    "equal_axis1": ((2, 6, 3), 1, None, 2),
    "negative_axis": ((2, 3, 8), -1, None, 4),
    "sizes": ((7, 3), 0, [2, 4, 1], 3),
    "sizes_axis2": ((2, 3, 9), 2, [1, 3, 5], 3),
    "zero_part": ((5, 2), 0, [2, 0, 3], 3),
    "one_output": ((4, 3), 1, None, 1),
}


@pytest.mark.parametrize("case", list(SPLIT))
@pytest.mark.parametrize("opset", [7, 11, 13, 18, ORT_MAX_OPSET])
def test_split(check_model, case, opset):
    shape, axis, sizes, outputs = SPLIT[case]
    if opset < 11 and axis < 0:
        axis += len(shape)
    if opset >= 18 and sizes is None:  # opset 18 needs num_outputs when the sizes are not given
        model = _split_model(shape, None, opset, axis, num_outputs=outputs)
    else:
        model = _split_model(shape, sizes, opset, axis, outputs=outputs)
    check_model(model, {"x": _data(shape)})


@pytest.mark.parametrize("shape,parts", [((7,), 3), ((5, 2), 2), ((10, 3), 4), ((6, 2), 6)])
@pytest.mark.parametrize("opset", [18, ORT_MAX_OPSET])
def test_split_num_outputs_uneven(check_model, shape, parts, opset):
    check_model(_split_model(shape, None, opset, num_outputs=parts), {"x": _data(shape)})


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_dtypes(check_model, dtype):
    check_model(_split_model((4, 5), [2, 3], 13, axis=1, dtype=dtype), {"x": _data((4, 5), dtype)})


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_symbolic_batch(check_model, batch, opset):
    sizes = [1, 3] if opset != 18 else None
    model = _split_model(["N", 4, 2], sizes, opset, axis=1, num_outputs=2 if opset == 18 else None)
    check_model(model, {"x": _data((batch, 4, 2))})


def test_split_symbolic_axis_one_output(check_model):
    check_model(_split_model(["N", 3], None, 13, outputs=1), {"x": _data((5, 3))})


@pytest.mark.parametrize("opset", [11, 18])
def test_split_folded(check_folded, opset):
    sizes = [3, 1] if opset == 11 else None
    check_folded(_split_model((4, 3), sizes, opset, num_outputs=None if sizes else 2, dtype=np.int64),
                 {"x": _data((4, 3), np.int64)})


def test_split_feeds_other_ops(check_model):
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1), helper.make_node("Add", ["a", "b"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 6])], [("y", np.float32, ["N", 3])], opset=13)
    check_model(model, {"x": _data((2, 6))})


SPLIT_ERRORS = {  # shape, sizes, opset, num_outputs, outputs, message
    "uneven": ((7, 2), None, 13, None, 2, "an axis of size 7 cannot be split into 2 parts"),
    "sizes_sum": ((6, 2), [2, 3], 13, None, 2, r"split \[2, 3\] must add up to the axis size 6"),
    "sizes_count": ((6, 2), [2, 4], 11, None, 3, "must be 3 non-negative sizes"),
    "num_outputs_mismatch": ((6, 2), None, 18, 3, 2, "num_outputs 3 differs from the 2 outputs"),
    "too_many_parts": ((5, 2), None, 18, 4, 4, "an axis of size 5 cannot be split into 4 parts"),
    "sizes_and_num_outputs": ((6, 2), [2, 4], 18, 2, 2, "either the split sizes or num_outputs, not both"),
    "symbolic_equal": (("N", 2), None, 13, None, 2, "symbolic dim N into 2 parts needs explicit split sizes"),
}


@pytest.mark.parametrize("case", list(SPLIT_ERRORS))
def test_split_errors(case):
    shape, sizes, opset, num_outputs, outputs, message = SPLIT_ERRORS[case]
    with pytest.raises(ShapeError, match=message):
        sr.compile(sr.load(_split_model(shape, sizes, opset, num_outputs=num_outputs, outputs=outputs)))


# ---- Expand --------------------------------------------------------------------------------------

EXPAND = {  # input shape, target shape
    "broadcast_ones": ((3, 1), (2, 3, 4)),
    "same_rank": ((1, 4), (3, 4)),
    "smaller_target": ((2, 3, 4), (3, 1)),
    "target_ones": ((2, 1, 4), (1, 5, 1)),
    "scalar": ((), (2, 3)),
    "unchanged": ((3, 4), (3, 4)),
}


def _expand_model(shape, target, dtype=np.float32, opset=13):
    return make_model([helper.make_node("Expand", ["x", "shape"], ["y"])], [("x", dtype, list(shape))],
                      [("y", dtype, None)], {"shape": np.array(target, np.int64)}, opset=opset)


@pytest.mark.parametrize("case", list(EXPAND))
@pytest.mark.parametrize("opset", [8, 13, ORT_MAX_OPSET])
def test_expand(check_model, case, opset):
    shape, target = EXPAND[case]
    check_model(_expand_model(shape, target, opset=opset), {"x": _data(shape)})


@pytest.mark.parametrize("dtype", DTYPES)
def test_expand_dtypes(check_model, dtype):
    check_model(_expand_model((3, 1), (2, 3, 4), dtype), {"x": _data((3, 1), dtype)})


@pytest.mark.parametrize("batch", [1, 3])
def test_expand_symbolic_batch(check_model, batch):
    check_model(_expand_model(["N", 1, 3], (1, 4, 3)), {"x": _data((batch, 1, 3))})


@pytest.mark.parametrize("dtype", [np.float32, np.bool_, np.int8])
def test_expand_folded(check_folded, dtype):
    check_folded(_expand_model((3, 1), (2, 1, 4), dtype), {"x": _data((3, 1), dtype)})


def test_expand_incompatible():
    with pytest.raises(ShapeError, match="cannot be broadcast"):
        sr.compile(sr.load(_expand_model((3, 2), (3, 4))))


# ---- Tile ----------------------------------------------------------------------------------------------

TILE = {  # input shape, repeats
    "1d": ((4,), [3]),
    "2d": ((2, 3), [2, 2]),
    "3d_mixed": ((2, 1, 3), [1, 4, 2]),
    "ones": ((2, 3), [1, 1]),
    "zero_repeat": ((2, 3), [0, 2]),
}


def _tile_model(shape, repeats, dtype=np.float32, opset=13):
    return make_model([helper.make_node("Tile", ["x", "repeats"], ["y"])], [("x", dtype, list(shape))],
                      [("y", dtype, None)], {"repeats": np.array(repeats, np.int64)}, opset=opset)


@pytest.mark.parametrize("case", list(TILE))
@pytest.mark.parametrize("opset", [7, 13, ORT_MAX_OPSET])
def test_tile(check_model, case, opset):
    shape, repeats = TILE[case]
    check_model(_tile_model(shape, repeats, opset=opset), {"x": _data(shape)})


@pytest.mark.parametrize("dtype", DTYPES)
def test_tile_dtypes(check_model, dtype):
    check_model(_tile_model((2, 3), [2, 3], dtype), {"x": _data((2, 3), dtype)})


@pytest.mark.parametrize("batch", [1, 3])
def test_tile_symbolic_batch(check_model, batch):
    check_model(_tile_model(["N", 3], [2, 2]), {"x": _data((batch, 3))})


def test_tile_folded(check_folded):
    check_folded(_tile_model((2, 3), [3, 1], np.int32), {"x": _data((2, 3), np.int32)})


def test_tile_bad_repeats():
    with pytest.raises(ShapeError, match=r"repeats \[2\] must be 2 non-negative values"):
        sr.compile(sr.load(_tile_model((2, 3), [2])))


# ---- Expand with a shape computed at run time ------------------------------------------------

@pytest.mark.parametrize("backend", ["jit", "native"])
def test_expand_shape_at_run_time(backend):
    """The target shape is an input: dims where X has 1 (or no dim) are run-time dims; the others are checked."""
    node = helper.make_node("Expand", ["x", "shape"], ["y"])
    model = make_model([node], [("x", np.float32, [3, 1]), ("shape", np.int64, [3])], [("y", np.float32, None)])
    sess = sr.compile(sr.load(model), backend=backend)
    x = np.arange(3, dtype=np.float32).reshape(3, 1)
    for target in ([2, 3, 4], [1, 3, 1], [5, 1, 2], [1, 1, 0]):
        shape = np.array(target, np.int64)
        ours, (ref,) = sess.infer(x, shape), ort_run(model, {"x": x, "shape": shape})
        assert ours.shape == ref.shape
        np.testing.assert_array_equal(ours, ref)
    with pytest.raises(SofieError, match="Expand cannot broadcast a dim of 3 to 2"):
        sess.infer(x, np.array([1, 2, 4], np.int64))


# ---- Split and Tile with parameters computed at run time ------------------------------------

@pytest.mark.parametrize("backend", ["jit", "native"])
def test_split_run_time_sizes(backend):
    """The split sizes are a graph input: any sizes adding up to the axis (0 included), any batch."""
    node = helper.make_node("Split", ["x", "split"], ["a", "b", "c"], axis=1)
    model = make_model([node], [("x", np.float32, ["n", 7, 2]), ("split", np.int64, [3])],
                       [(k, np.float32, None) for k in "abc"], opset=13)
    feeds = [{"x": _data((n, 7, 2), seed=n), "split": np.array(s, np.int64)}
             for n, s in [(2, [1, 2, 4]), (3, [7, 0, 0]), (1, [0, 3, 4]), (4, [2, 2, 3])]]
    sess = check_runs(model, feeds, backend)
    with pytest.raises(ShapeError, match=r"Split node .*the split sizes \(1, 2, 3\) add up to 6, not to the dim split, 7"):
        sess.infer(_data((2, 7, 2)), np.array([1, 2, 3], np.int64))
    with pytest.raises(ShapeError, match=r"Split node .*a split size is -1"):
        sess.infer(_data((2, 7, 2)), np.array([-1, 4, 4], np.int64))


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_tile_run_time_repeats(backend):
    node = helper.make_node("Tile", ["x", "repeats"], ["y"])
    model = make_model([node], [("x", np.float32, ["n", 3]), ("repeats", np.int64, [2])], [("y", np.float32, None)])
    feeds = [{"x": _data((n, 3), seed=n), "repeats": np.array(r, np.int64)}
             for n, r in [(2, [1, 1]), (1, [3, 2]), (3, [0, 4]), (2, [2, 0])]]
    sess = check_runs(model, feeds, backend)
    with pytest.raises(ShapeError, match=r"Tile node .*a repeat count is -2"):
        sess.infer(_data((2, 3)), np.array([1, -2], np.int64))
