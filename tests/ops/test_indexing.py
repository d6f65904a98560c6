"""Run-time indexing operators against onnxruntime: Gather, GatherElements, GatherND, ScatterElements,
Scatter, ScatterND, OneHot, and the index-pattern generators Trilu and EyeLike.

Each op runs per attribute, data type and opset; indices include negative ones,
duplicates (scatters apply updates in index order) and symbolic batch dims; the
folded runs test the numpy references, and out-of-range run-time indices must
raise the C++ kernels' std::out_of_range through :class:`sofie_rdf.errors.SofieError`.
"""

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run, sofie_run
from conftest import random_array as _data
from onnx import helper
from onnx.reference import ReferenceEvaluator

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError, SofieError

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_, np.uint8, np.int8]
INDEX_DTYPES = [np.int32, np.int64]
REDUCTIONS = ["none", "add", "mul", "max", "min"]
ORT_MAX_OPSET = 26  # the newest opset onnxruntime 1.31 loads
LATEST = onnx.defs.onnx_opset_version()
# onnxruntime's messages for type/reduction combinations the spec allows and it has no kernel for.
ORT_LACKS = ("NOT_IMPLEMENTED", "data type is not supported with")


def _indices(shape, n, dtype=np.int64, seed=1) -> np.ndarray:
    """Indices into an axis of size n, negative ones included."""
    return np.random.default_rng(seed).integers(-n, n, shape).astype(dtype)


def _model(op, inputs, opset=17, consts=None, **attrs):
    """One-node model over (name, value) inputs and initializers; onnx's shape inference types the output."""
    consts = consts or {}
    node = helper.make_node(op, [n for n, _ in inputs] + list(consts), ["y"], **attrs)
    model = make_model([node], [(n, v.dtype, list(v.shape)) for n, v in inputs], [("y", np.float32, None)], consts,
                       opset=opset)
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.UNDEFINED
    return onnx.shape_inference.infer_shapes(model)


def check(model, feeds):
    """Compare sofie-rdf with onnxruntime, or with onnx's reference where onnxruntime lacks the opset or type."""
    ours = sofie_run(model, feeds)
    opset = model.opset_import[0].version
    try:
        if opset > ORT_MAX_OPSET:
            raise NotImplementedError
        ref = ort_run(model, feeds)
    except Exception as exc:  # noqa: BLE001  (onnxruntime has no kernel for this type or reduction)
        if not isinstance(exc, NotImplementedError) and not any(s in str(exc) for s in ORT_LACKS):
            raise
        ref = ReferenceEvaluator(model).run(None, feeds)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        b = np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, f"{a.dtype}{a.shape} != {b.dtype}{b.shape}"
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b)
    return ours


def _run(model_inputs, **kw):
    model = _model(inputs=model_inputs, **kw)
    return check(model, dict(model_inputs))


# ---- Gather ------------------------------------------------------------------------------

GATHER = {  # data shape, indices shape, axis
    "axis0": ((5, 4), (3,), 0),
    "axis1_2d_indices": ((3, 6), (2, 4), 1),
    "negative_axis": ((2, 3, 5), (4,), -1),
    "scalar_index": ((4, 3), (), 0),
}


@pytest.mark.parametrize("case", list(GATHER))
@pytest.mark.parametrize("idx_dtype", INDEX_DTYPES)
def test_gather(case, idx_dtype):
    shape, ishape, axis = GATHER[case]
    _run([("x", _data(shape, np.float32)), ("i", _indices(ishape, shape[axis], idx_dtype))], op="Gather", axis=axis)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_dtypes(dtype):
    _run([("x", _data((4, 3), dtype)), ("i", _indices((5,), 4))], op="Gather", axis=0)


@pytest.mark.parametrize("opset", [7, 11, 13, ORT_MAX_OPSET])
def test_gather_opsets(opset):
    i = np.array([0, 3, 1], np.int64) if opset < 11 else _indices((3,), 4)
    _run([("x", _data((4, 3), np.float32)), ("i", i)], op="Gather", opset=opset, axis=0)


@pytest.mark.parametrize("batch", [1, 3])
def test_gather_symbolic(batch):
    model = make_model([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
                       [("x", np.float32, ["N", 5]), ("i", np.int64, [3])], [("y", np.float32, ["N", 3])])
    check(model, {"x": _data((batch, 5), np.float32), "i": _indices((3,), 5)})


def test_gather_folded(check_folded):
    check_folded(_model("Gather", [("x", _data((4, 3), np.int64)), ("i", _indices((2, 2), 4))], axis=0),
                 {"x": _data((4, 3), np.int64), "i": _indices((2, 2), 4)})


# ---- GatherElements ----------------------------------------------------------------------

ELEMENTS = {  # data shape, indices shape, axis
    "axis0": ((3, 4), (5, 4), 0),
    "axis1": ((3, 4), (3, 2), 1),
    "negative_axis": ((2, 3, 4), (2, 3, 6), -1),
    "smaller_indices": ((4, 5, 6), (2, 3, 4), 1),
    "rank1": ((6,), (9,), 0),
}


@pytest.mark.parametrize("case", list(ELEMENTS))
@pytest.mark.parametrize("idx_dtype", INDEX_DTYPES)
def test_gather_elements(case, idx_dtype):
    shape, ishape, axis = ELEMENTS[case]
    _run([("x", _data(shape, np.float32)), ("i", _indices(ishape, shape[axis], idx_dtype))],
         op="GatherElements", axis=axis)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opset", [11, 13, ORT_MAX_OPSET])
def test_gather_elements_dtypes_opsets(dtype, opset):
    _run([("x", _data((3, 4), dtype)), ("i", _indices((3, 5), 4))], op="GatherElements", opset=opset, axis=1)


@pytest.mark.parametrize("batch", [1, 3])
def test_gather_elements_symbolic(batch):
    model = make_model([helper.make_node("GatherElements", ["x", "i"], ["y"], axis=1)],
                       [("x", np.float32, ["N", 5]), ("i", np.int64, ["N", 2])], [("y", np.float32, ["N", 2])])
    check(model, {"x": _data((batch, 5), np.float32), "i": _indices((batch, 2), 5)})


def test_gather_elements_folded(check_folded):
    check_folded(_model("GatherElements", [("x", _data((3, 4), np.float64)), ("i", _indices((2, 4), 3))], axis=0),
                 {"x": _data((3, 4), np.float64), "i": _indices((2, 4), 3)})


# ---- GatherND ----------------------------------------------------------------------------

ND = {  # data shape, indices shape (last dim = k), batch_dims
    "k1": ((4, 5), (3, 1), 0),
    "k_full": ((4, 5), (3, 2), 0),
    "k2_of_3": ((3, 4, 5), (2, 2, 2), 0),
    "single_tuple": ((4, 5), (2,), 0),
    "batch1": ((2, 3, 4), (2, 5, 1), 1),
    "batch1_full": ((2, 3, 4), (2, 2), 1),
    "batch2": ((2, 3, 4, 5), (2, 3, 2, 1), 2),
}


def _nd_indices(shape, ishape, batch_dims, dtype=np.int64, seed=1):
    """k-tuples whose j-th entry indexes data dim batch_dims + j (negatives included)."""
    cols = [_indices(ishape[:-1], shape[batch_dims + j], dtype, seed + j) for j in range(ishape[-1])]
    return np.stack(cols, axis=-1).astype(dtype)


@pytest.mark.parametrize("case", list(ND))
@pytest.mark.parametrize("idx_dtype", [np.int64])
def test_gather_nd(case, idx_dtype):
    shape, ishape, b = ND[case]
    _run([("x", _data(shape, np.float32)), ("i", _nd_indices(shape, ishape, b, idx_dtype))], op="GatherND",
         batch_dims=b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opset", [11, 12, 13, ORT_MAX_OPSET])
def test_gather_nd_dtypes_opsets(dtype, opset):
    shape, ishape, b = ((2, 3, 4), (2, 2, 1), 1) if opset >= 12 else ((3, 4, 2), (2, 2), 0)
    attrs = {"batch_dims": b} if opset >= 12 else {}
    _run([("x", _data(shape, dtype)), ("i", _nd_indices(shape, ishape, b))], op="GatherND", opset=opset, **attrs)


@pytest.mark.parametrize("batch", [1, 3])
def test_gather_nd_symbolic(batch):
    model = make_model([helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=1)],
                       [("x", np.float32, ["N", 4, 5]), ("i", np.int64, ["N", 3, 1])], [("y", np.float32, ["N", 3, 5])])
    check(model, {"x": _data((batch, 4, 5), np.float32), "i": _nd_indices((batch, 4, 5), (batch, 3, 1), 1)})


def test_gather_nd_folded(check_folded):
    x, i = _data((2, 3, 4), np.int32), _nd_indices((2, 3, 4), (2, 2), 1)
    check_folded(_model("GatherND", [("x", x), ("i", i)], batch_dims=1), {"x": x, "i": i})


# ---- ScatterElements / Scatter --------------------------------------------------------------------

def _scatter_elements_inputs(dtype, shape=(3, 5), ishape=(3, 4), axis=1, idx_dtype=np.int64):
    """Indices drawn from a small range, so that most rows hold duplicates."""
    n = shape[axis]
    return [("x", _data(shape, dtype)), ("i", _indices(ishape, n, idx_dtype)), ("u", _data(ishape, dtype, 2))]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_elements_reductions(reduction, dtype):
    _run(_scatter_elements_inputs(dtype), op="ScatterElements", opset=18, axis=1, reduction=reduction)


SCATTER_ELEMENTS = {  # data shape, indices shape, axis
    "axis0": ((4, 3), (2, 3), 0),
    "negative_axis": ((2, 3, 4), (2, 3, 2), -1),
    "smaller_indices": ((4, 5, 6), (2, 7, 3), 1),
    "rank1": ((6,), (3,), 0),
}


@pytest.mark.parametrize("case", list(SCATTER_ELEMENTS))
@pytest.mark.parametrize("idx_dtype", INDEX_DTYPES)
def test_scatter_elements_shapes(case, idx_dtype):
    shape, ishape, axis = SCATTER_ELEMENTS[case]
    _run(_scatter_elements_inputs(np.float32, shape, ishape, axis, idx_dtype), op="ScatterElements", axis=axis,
         reduction="add", opset=18)


@pytest.mark.parametrize("opset,reduction", [(11, None), (13, None), (16, "add"), (16, "mul"), (18, "max"),
                                             (ORT_MAX_OPSET, "min")])
def test_scatter_elements_opsets(opset, reduction):
    attrs = {"reduction": reduction} if reduction else {}
    _run(_scatter_elements_inputs(np.float32), op="ScatterElements", opset=opset, axis=1, **attrs)


@pytest.mark.parametrize("opset", [9, 10])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_scatter_opset9(opset, dtype):
    _run(_scatter_elements_inputs(dtype, (4, 3), (2, 3), 0), op="Scatter", opset=opset, axis=0)


@pytest.mark.parametrize("batch", [1, 3])
def test_scatter_elements_symbolic(batch):
    model = make_model([helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], axis=1, reduction="add")],
                       [("x", np.float32, ["N", 5]), ("i", np.int64, ["N", 2]), ("u", np.float32, ["N", 2])],
                       [("y", np.float32, ["N", 5])], opset=18)
    feeds = dict(_scatter_elements_inputs(np.float32, (batch, 5), (batch, 2)))
    check(model, feeds)


@pytest.mark.parametrize("reduction", ["none", "mul"])
def test_scatter_elements_folded(check_folded, reduction):
    inputs = _scatter_elements_inputs(np.int64)
    check_folded(_model("ScatterElements", inputs, opset=18, axis=1, reduction=reduction), dict(inputs))


# ---- ScatterND --------------------------------------------------------------------------------

def _scatter_nd_inputs(dtype, shape, ishape, unique=False):
    """Indices with duplicates unless ``unique``; updates shaped indices[:-1] + data[k:]."""
    if unique:
        flat = np.random.default_rng(3).permutation(int(np.prod(shape[:ishape[-1]])))[:int(np.prod(ishape[:-1]))]
        i = np.stack(np.unravel_index(flat, shape[:ishape[-1]]), axis=-1).reshape(ishape).astype(np.int64)
        i[..., 0] -= shape[0] * (i[..., 0] % 2)  # negatives too
    else:
        i = _nd_indices(shape, ishape, 0)
    u = _data(tuple(ishape[:-1]) + tuple(shape[ishape[-1]:]), dtype, 2)
    return [("x", _data(shape, dtype)), ("i", i), ("u", u)]


ND_SCATTER = {  # data shape, indices shape
    "elements": ((4, 5), (6, 2)),
    "rows": ((4, 5), (3, 1)),
    "slices_3d": ((3, 4, 5), (2, 2, 2)),
    "single": ((3, 4), (2,)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_nd_reductions(reduction, dtype):
    inputs = _scatter_nd_inputs(dtype, (4, 3, 2), (5, 2), unique=reduction == "none")
    _run(inputs, op="ScatterND", opset=18, reduction=reduction)


@pytest.mark.parametrize("case", list(ND_SCATTER))
@pytest.mark.parametrize("reduction", ["none", "add"])
def test_scatter_nd_shapes(case, reduction):
    shape, ishape = ND_SCATTER[case]
    _run(_scatter_nd_inputs(np.float32, shape, ishape, unique=reduction == "none"), op="ScatterND", opset=18,
         reduction=reduction)


def test_scatter_nd_duplicates_last_wins():
    x = np.zeros((4,), np.float32)
    i = np.array([[1], [2], [1], [-3]], np.int64)
    u = np.array([1, 2, 3, 4], np.float32)
    out = _run([("x", x), ("i", i), ("u", u)], op="ScatterND", opset=18)
    np.testing.assert_array_equal(out[0], [0, 4, 2, 0])


@pytest.mark.parametrize("opset,reduction", [(11, None), (13, None), (16, "mul"), (18, "max"), (ORT_MAX_OPSET, "min")])
def test_scatter_nd_opsets(opset, reduction):
    attrs = {"reduction": reduction} if reduction else {}
    _run(_scatter_nd_inputs(np.float32, (4, 5), (3, 1), unique=not reduction), op="ScatterND", opset=opset, **attrs)


@pytest.mark.parametrize("batch", [2, 5])
def test_scatter_nd_symbolic(batch):
    model = make_model([helper.make_node("ScatterND", ["x", "i", "u"], ["y"], reduction="add")],
                       [("x", np.float32, ["N", 3]), ("i", np.int64, [4, 1]), ("u", np.float32, [4, 3])],
                       [("y", np.float32, ["N", 3])], opset=18)
    feeds = {"x": _data((batch, 3), np.float32), "i": _indices((4, 1), batch), "u": _data((4, 3), np.float32, 2)}
    check(model, feeds)


def test_scatter_nd_folded(check_folded):
    inputs = _scatter_nd_inputs(np.int32, (4, 5), (3, 2))
    check_folded(_model("ScatterND", inputs, opset=18, reduction="add"), dict(inputs))


# ---- OneHot -------------------------------------------------------------------------------

def _one_hot(indices, depth, values, axis=-1, opset=11, depth_dtype=np.int64):
    return _model("OneHot", [("i", indices)], opset=opset, axis=axis,
                  consts={"depth": np.array(depth, depth_dtype), "values": values})


@pytest.mark.parametrize("axis", [-1, 0, 1, -2, -3])
@pytest.mark.parametrize("idx_dtype", [np.int32, np.int64, np.float32, np.float64])
def test_one_hot_axis(axis, idx_dtype):
    i = _indices((3, 4), 5, idx_dtype)
    check(_one_hot(i, 5, np.array([0, 1], np.float32), axis), {"i": i})


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # onnx's reference on uint8 values
@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != np.bool_])
def test_one_hot_value_dtypes(dtype):
    i = _indices((2, 3), 4)
    check(_one_hot(i, 4, _data((2,), dtype, 7)), {"i": i})


def test_one_hot_bool_values():
    """Neither onnxruntime nor onnx's reference has bool values: compare with the spec's definition."""
    i = _indices((2, 3), 4)
    out = sofie_run(_one_hot(i, 4, np.array([True, False])), {"i": i})[0]
    np.testing.assert_array_equal(out, np.eye(4, dtype=bool)[i] == 0)


@pytest.mark.parametrize("opset", [9, 11, ORT_MAX_OPSET, LATEST])
@pytest.mark.parametrize("depth_dtype", [np.int64, np.float32])
def test_one_hot_opsets(opset, depth_dtype):
    i = np.array([[0, 2], [1, 3]], np.int64) if opset < 11 else _indices((2, 2), 4)
    check(_one_hot(i, 4, np.array([2, 5], np.int64), 1, opset, depth_dtype), {"i": i})


def test_one_hot_out_of_range_is_all_off():
    i = np.array([0, 4, -5, 7, -1], np.int64)
    out = check(_one_hot(i, 4, np.array([0, 1], np.float32)), {"i": i})
    np.testing.assert_array_equal(out[0].sum(axis=1), [1, 0, 0, 0, 1])


def test_one_hot_non_finite_indices_are_all_off():
    """NaN and infinite indices are outside every range (checked before the C++ cast, undefined for them)."""
    i = np.array([np.nan, np.inf, -np.inf, 1e30, 2.7, -0.5], np.float32)
    out = sofie_run(_one_hot(i, 3, np.array([0, 1], np.int64)), {"i": i})[0]
    np.testing.assert_array_equal(out, [[0, 0, 0]] * 4 + [[0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize("batch", [1, 3])
def test_one_hot_symbolic(batch):
    node = helper.make_node("OneHot", ["i", "depth", "values"], ["y"], axis=1)
    model = make_model([node], [("i", np.int64, ["N", 2])], [("y", np.float32, ["N", 3, 2])],
                       {"depth": np.array([3], np.int64), "values": np.array([-1, 1], np.float32)}, opset=11)
    check(model, {"i": _indices((batch, 2), 3)})


def test_one_hot_values_at_run_time():
    node = helper.make_node("OneHot", ["i", "depth", "values"], ["y"])
    model = make_model([node], [("i", np.int64, [4]), ("values", np.int32, [2])], [("y", np.int32, [4, 3])],
                       {"depth": np.array(3, np.int64)}, opset=11)
    check(model, {"i": _indices((4,), 3), "values": np.array([7, -2], np.int32)})


def test_one_hot_folded(check_folded):
    i = _indices((3,), 4)
    check_folded(_one_hot(i, 4, np.array([0, 3], np.int64), 0), {"i": i})


# ---- Trilu -----------------------------------------------------------------------------------

@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 0, 2, -1, 9, -9])
@pytest.mark.parametrize("shape", [(4, 5), (2, 5, 3)])
def test_trilu(upper, k, shape):
    x = _data(shape, np.float32)
    inputs = [("x", x)] + ([] if k is None else [("k", np.array(k, np.int64))])
    _run(inputs, op="Trilu", opset=14, upper=upper)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opset", [14, ORT_MAX_OPSET])
def test_trilu_dtypes(dtype, opset):
    _run([("x", _data((3, 4), dtype)), ("k", np.array(1, np.int64))], op="Trilu", opset=opset, upper=0)


@pytest.mark.parametrize("batch", [1, 3])
def test_trilu_symbolic(batch):
    model = make_model([helper.make_node("Trilu", ["x"], ["y"])], [("x", np.float32, ["N", 3, 3])],
                       [("y", np.float32, ["N", 3, 3])], opset=14)
    check(model, {"x": _data((batch, 3, 3), np.float32)})


def test_trilu_folded(check_folded):
    x, k = _data((3, 4), np.int64), np.array(-1, np.int64)
    check_folded(_model("Trilu", [("x", x), ("k", k)], opset=14, upper=1), {"x": x, "k": k})


# ---- EyeLike ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
@pytest.mark.parametrize("k", [0, 1, -2, 7])
def test_eye_like(shape, k):
    _run([("x", _data(shape, np.float32))], op="EyeLike", opset=9, k=k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opset", [9, ORT_MAX_OPSET])
def test_eye_like_dtype_attr(dtype, opset):
    _run([("x", _data((3, 4), np.int32))], op="EyeLike", opset=opset, k=1,
         dtype=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_eye_like_input_dtype(dtype):
    _run([("x", _data((4, 3), dtype))], op="EyeLike", opset=9, k=-1)


@pytest.mark.parametrize("batch", [2, 4])
def test_eye_like_symbolic(batch):
    model = make_model([helper.make_node("EyeLike", ["x"], ["y"])], [("x", np.float32, ["N", 3])],
                       [("y", np.float32, ["N", 3])], opset=9)
    check(model, {"x": _data((batch, 3), np.float32)})


def test_eye_like_folded(check_folded):
    x = _data((3, 3), np.float64)
    check_folded(_model("EyeLike", [("x", x)], opset=9, k=1), {"x": x})


# ---- errors ------------------------------------------------------------------------------------

RUNTIME_ERRORS = {  # op, inputs, attrs, C++ message (the addressing operators' name the model and node)
    "Gather": ("Gather", [("x", np.zeros((3, 2), np.float32)), ("i", np.array([0, 3], np.int64))], {},
               "Gather index 3 is out of range for an axis of size 3"),
    "Gather_negative": ("Gather", [("x", np.zeros((3, 2), np.float32)), ("i", np.array([-4], np.int32))], {},
                        "Gather index -4 is out of range for an axis of size 3"),
    "GatherElements": ("GatherElements", [("x", np.zeros((3, 2), np.float32)), ("i", np.array([[0, 2]], np.int64))],
                       {"axis": 1}, r"model '[^']+': GatherElements node '[^']+' index 2 is out of range for an axis of size 2"),
    "GatherND": ("GatherND", [("x", np.zeros((3, 2), np.float32)), ("i", np.array([[1, -3]], np.int64))], {},
                 r"model '[^']+': GatherND node '[^']+' index -3 is out of range for an axis of size 2"),
    "ScatterElements": ("ScatterElements", [("x", np.zeros((3, 2), np.float32)), ("i", np.array([[5]], np.int64)),
                                            ("u", np.ones((1, 1), np.float32))], {},
                        r"model '[^']+': ScatterElements node '[^']+' index 5 is out of range for an axis of size 3"),
    "Scatter": ("Scatter", [("x", np.zeros((3, 2), np.float32)), ("i", np.array([[-4]], np.int64)),
                            ("u", np.ones((1, 1), np.float32))], {"opset": 10},
                r"model '[^']+': Scatter node '[^']+' index -4 is out of range for an axis of size 3"),
    "ScatterND": ("ScatterND", [("x", np.zeros((3, 2), np.float32)), ("i", np.array([[0], [3]], np.int64)),
                                ("u", np.ones((2, 2), np.float32))], {},
                  r"model '[^']+': ScatterND node '[^']+' index 3 is out of range for an axis of size 3"),
}


@pytest.mark.parametrize("case", list(RUNTIME_ERRORS))
def test_out_of_range_index_at_run_time(case):
    op, inputs, attrs, message = RUNTIME_ERRORS[case]
    model = _model(op, inputs, **attrs)
    with pytest.raises(SofieError, match=message):
        sofie_run(model, dict(inputs))


CONSTANT_INDEX_ERRORS = {  # op, data shape, constant indices, updates shape (scatters), attrs, message
    "ScatterElements": ("ScatterElements", ["N", 3], np.array([[0, 1, 2], [3, 1, -4]], np.int64), [2, 3], {"axis": 1},
                        r"indices along axis 1: the constant index 3 at \(1, 0\) is out of range for an axis of size 3 "
                        r"\(valid: -3 to 2\)"),
    "ScatterND": ("ScatterND", ["N", 3], np.array([[0, 1], [2, 3]], np.int64), [2], {},
                  r"index component 1: the constant index 3 at \(1,\) is out of range for an axis of size 3"),
    "GatherElements": ("GatherElements", ["N", 2], np.array([[0, -3]], np.int32), None, {"axis": 1},
                       r"indices along axis 1: the constant index -3 at \(0, 1\) is out of range for an axis of size 2"),
    "Gather": ("Gather", ["N", 4], np.array([1, 4], np.int64), None, {"axis": 1},
               r"indices along axis 1: the constant index 4 at \(1,\) is out of range for an axis of size 4"),
}


@pytest.mark.parametrize("case", list(CONSTANT_INDEX_ERRORS))
def test_constant_index_out_of_range_refused_at_load(case):
    """Indices known when the model is loaded (initializers) that fall outside an axis of fixed size: the code
    would throw on every call, so the model is refused then, naming the model, the node and the index."""
    op, shape, indices, updates, attrs, message = CONSTANT_INDEX_ERRORS[case]
    inputs = [("x", np.float32, shape)] + ([("u", np.float32, updates)] if updates else [])
    node = helper.make_node(op, ["x", "i"] + (["u"] if updates else []), ["y"], name=f"my_{op}", **attrs)
    model = make_model([node], inputs, [("y", np.float32, None)], {"i": indices}, opset=17)
    with pytest.raises(ShapeError, match=rf"model '[^']+': {op} node 'my_{op}': {message}"):
        sr.load(model)


@pytest.mark.parametrize("backend", ["native", "jit"])
def test_constant_index_on_a_symbolic_axis_checked_at_run_time(backend):
    """A constant index along an axis whose size is a symbol is right for some sizes: the code checks it on each
    call and names the node."""
    node = helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], name="put_rows", axis=0)
    model = make_model([node], [("x", np.float32, ["N", 2]), ("u", np.float32, [1, 2])], [("y", np.float32, None)],
                       {"i": np.array([[4, 4]], np.int64)}, opset=17)
    session = sr.compile(sr.load(model, name="rows"), backend=backend)
    np.testing.assert_array_equal(session.infer(np.zeros((5, 2), np.float32), np.ones((1, 2), np.float32))[4], [1, 1])
    with pytest.raises(SofieError, match=r"model 'rows': ScatterElements node 'put_rows' index 4 is out of range for "
                                         r"an axis of size 4"):
        session.infer(np.zeros((4, 2), np.float32), np.ones((1, 2), np.float32))


def test_gather_elements_indices_larger_than_data_at_run_time():
    model = make_model([helper.make_node("GatherElements", ["x", "i"], ["y"], axis=1)],
                       [("x", np.float32, ["N", 3]), ("i", np.int64, ["M", 3])], [("y", np.float32, ["M", 3])])
    with pytest.raises(SofieError, match=r"GatherElements node '[^']+' indices dim 0 \(4\) exceeds the data dim \(2\)"):
        sofie_run(model, {"x": np.zeros((2, 3), np.float32), "i": np.zeros((4, 3), np.int64)})


GENERATION_ERRORS = {  # op, inputs, attrs, message
    "folded_index": ("Gather", [], {"consts": {"x": np.zeros((3,), np.float32), "i": np.array([3], np.int64)}},
                     r"the constant index 3 at \(0,\) is out of range for an axis of size 3"),
    "float_indices": ("GatherElements", [("x", np.zeros((3,), np.float32)), ("i", np.zeros((3,), np.float32))], {},
                      "indices must be int32 or int64"),
    "rank_mismatch": ("GatherElements", [("x", np.zeros((3, 2), np.float32)), ("i", np.zeros((3,), np.int64))], {},
                      "must have the rank of data"),
    "indices_too_large": ("ScatterElements", [("x", np.zeros((3, 2), np.float32)), ("i", np.zeros((3, 3), np.int64)),
                                              ("u", np.zeros((3, 3), np.float32))], {"axis": 0},
                          r"indices dim 1 \(3\) exceeds the data dim \(2\)"),
    "nd_k_too_large": ("GatherND", [("x", np.zeros((3, 2), np.float32)), ("i", np.zeros((1, 3), np.int64))], {},
                       r"the last indices dim \(3\) must be fixed, in \[1, 2\]"),
    "nd_batch_dims": ("GatherND", [("x", np.zeros((3, 2), np.float32)), ("i", np.zeros((3, 1), np.int64))],
                      {"batch_dims": 2}, "batch_dims 2 must be in"),
    "nd_batch_mismatch": ("GatherND", [("x", np.zeros((3, 2), np.float32)), ("i", np.zeros((2, 1), np.int64))],
                          {"batch_dims": 1}, r"batch dim 0 of indices and data: 2 != 3"),
    "updates_shape": ("ScatterND", [("x", np.zeros((3, 2), np.float32)), ("i", np.zeros((2, 1), np.int64)),
                                    ("u", np.zeros((2, 3), np.float32))], {}, "updates shape"),
    "updates_dtype": ("ScatterND", [("x", np.zeros((3, 2), np.float32)), ("i", np.zeros((2, 1), np.int64)),
                                    ("u", np.zeros((2, 2), np.float64))], {}, "updates .float64. must have the type"),
    "trilu_rank": ("Trilu", [("x", np.zeros((3,), np.float32))], {"opset": 14}, "rank >= 2"),
    "eye_rank": ("EyeLike", [("x", np.zeros((3, 2, 1), np.float32))], {}, "rank 2"),
    "one_hot_depth": ("OneHot", [("i", np.zeros((3,), np.int64))],
                      {"consts": {"depth": np.array(0, np.int64), "values": np.array([0, 1], np.float32)}},
                      "depth must be one value >= 1"),
}


@pytest.mark.parametrize("case", list(GENERATION_ERRORS))
def test_generation_time_errors(case):
    op, inputs, attrs, message = GENERATION_ERRORS[case]
    with pytest.raises(ShapeError, match=message):
        sofie_run(_model(op, inputs, **attrs), dict(inputs))


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_onehot_run_time_depth(backend):
    """The depth is a graph input: the output's depth dim is sized while running; a negative one is refused."""
    node = helper.make_node("OneHot", ["indices", "depth", "values"], ["y"], axis=1)
    model = make_model([node], [("indices", np.int64, ["n", 3]), ("depth", np.int64, [1]), ("values", np.float32, [2])],
                       [("y", np.float32, None)], opset=11)
    sess = sr.compile(sr.load(model), backend=backend)
    values = np.array([-1.0, 2.0], np.float32)
    for n, depth in [(2, 4), (1, 7), (3, 1), (2, 3)]:
        feeds = {"indices": _indices((n, 3), depth), "depth": np.array([depth], np.int64), "values": values}
        ours, (ref,) = sess.infer(*feeds.values()), ort_run(model, feeds)
        assert ours.shape == ref.shape
        np.testing.assert_array_equal(ours, ref)
    with pytest.raises(ShapeError, match=r"OneHot node .*the depth is -2"):
        sess.infer(_indices((2, 3), 3), np.array([-2], np.int64), values)
