"""Pad against onnxruntime: every mode, negative pads (cropping), axes, the constant as input or attribute."""

import numpy as np
import pytest
from conftest import check_runs, make_model
from onnx import helper

from sofie_rdf.errors import ShapeError

MODES = ["constant", "reflect", "edge", "wrap"]

# name -> (input shape, pads [begins..., ends...])
PADS = {
    "1d": ((6,), [2, 3]),
    "2d": ((4, 5), [1, 2, 3, 1]),
    "2d_one_side": ((4, 5), [0, 3, 0, 0]),
    "3d": ((2, 3, 4), [0, 1, 2, 1, 0, 3]),
    "4d_spatial": ((2, 3, 4, 5), [0, 0, 1, 2, 0, 0, 2, 1]),
    "4d_all": ((2, 3, 4, 5), [1, 1, 1, 1, 1, 2, 3, 4]),
    "2d_negative": ((5, 6), [-1, 2, 1, -2]),
    "3d_crop_only": ((4, 5, 6), [0, -1, -2, -1, 0, -3]),
    "2d_zero": ((3, 4), [0, 0, 0, 0]),
}


def _x(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-50, 50, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _pad_model(shape, pads, mode, constant=None, axes=None, opset=19, dtype=np.float32, in_shape=None,
               constant_input=False):
    inputs, inits, names = [("x", dtype, list(in_shape or shape))], {"pads": np.array(pads, np.int64)}, ["x", "pads"]
    if constant is not None or axes is not None:
        names.append("value" if constant is not None else "")
        if constant is not None and not constant_input:
            inits["value"] = np.array(constant, dtype)
        elif constant is not None:
            inputs.append(("value", dtype, []))
    if axes is not None:
        names.append("axes")
        inits["axes"] = np.array(axes, np.int64)
    return make_model([helper.make_node("Pad", names, ["y"], mode=mode)], inputs, [("y", dtype, None)], inits,
                      opset=opset)


@pytest.mark.parametrize("case", list(PADS))
@pytest.mark.parametrize("mode", MODES)
def test_pad_modes(check_model, mode, case):
    shape, pads = PADS[case]
    check_model(_pad_model(shape, pads, mode), {"x": _x(shape)})


@pytest.mark.parametrize("constant_input", [False, True])
def test_pad_constant_value(check_model, constant_input):
    shape = (3, 4)
    model = _pad_model(shape, [1, 0, 2, 3], "constant", constant=2.5, constant_input=constant_input)
    feeds = {"x": _x(shape)}
    if constant_input:
        feeds["value"] = np.array(-1.25, np.float32)
    check_model(model, feeds)


@pytest.mark.parametrize("axes", [[1], [-1, 1], [2, 3]])
@pytest.mark.parametrize("mode", MODES)
def test_pad_axes(check_model, mode, axes):
    shape = (2, 3, 4, 5)
    pads = {1: [1, 2], 2: [2, 1, 1, -1], 3: [1, 0, 0, 2]}[len(axes)] if axes != [2, 3] else [1, 2, -1, 3]
    check_model(_pad_model(shape, pads, mode, constant=1.5 if mode == "constant" else None, axes=axes, opset=18),
                {"x": _x(shape)})


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64, np.uint8])
def test_pad_dtypes(check_model, dtype):
    shape = (3, 4)
    check_model(_pad_model(shape, [1, 1, 0, 2], "constant", constant=7, dtype=dtype), {"x": _x(shape, dtype=dtype)})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch", [1, 4])
def test_pad_symbolic_batch(check_model, mode, batch):
    shape = (batch, 3, 5)
    model = _pad_model(shape, [0, 1, 2, 0, 2, 1], mode, in_shape=("N", 3, 5))
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_attributes(check_model, mode):
    shape = (2, 3, 4)
    model = make_model([helper.make_node("Pad", ["x"], ["y"], mode=mode, pads=[0, 1, 2, 0, 2, 1], value=3.0)],
                       [("x", np.float32, list(shape))], [("y", np.float32, None)], opset=7)
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("opset", [11, 13])
def test_pad_opset11(check_model, opset):
    shape = (3, 4)
    check_model(_pad_model(shape, [1, -1, 2, 2], "reflect", opset=opset), {"x": _x(shape)})


@pytest.mark.parametrize("mode", MODES)
def test_pad_folded(check_folded, mode):
    shape, pads = PADS["2d_negative"]
    check_folded(_pad_model(shape, pads, mode, constant=0.5 if mode == "constant" else None), {"x": _x(shape)})


# ---- pads, axes and the constant computed at run time -------------------------------------

@pytest.mark.parametrize("backend", ["jit", "native"])
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_run_time_pads_and_axes(backend, mode):
    """pads, axes and the constant are graph inputs: padding, cropping (negative pads), any batch."""
    node = helper.make_node("Pad", ["x", "pads", "value", "axes"], ["y"], mode=mode)
    model = make_model([node], [("x", np.float32, ["n", 4, 5]), ("pads", np.int64, [4]), ("value", np.float32, []),
                                ("axes", np.int64, [2])], [("y", np.float32, None)], opset=18)
    cases = [(2, [1, 2, 0, 3], [1, 2]), (3, [-1, 1, 2, -2], [-1, 1]), (2, [0, 0, 1, 1], [0, 2]), (2, [2, 0, 0, 0], [2, 0])]
    feeds = [{"x": _x((n, 4, 5), n), "pads": np.array(p, np.int64), "value": np.array(1.5, np.float32),
              "axes": np.array(a, np.int64)} for n, p, a in cases]
    sess = check_runs(model, feeds, backend)
    with pytest.raises(ShapeError, match=r"Pad node .*the pads crop 6 from axis 1 of size 4"):
        sess.infer(_x((2, 4, 5)), np.array([-3, 0, -3, 0], np.int64), np.array(0, np.float32), np.array([1, 2], np.int64))


def test_pad_run_time_pads_every_axis():
    """Opset 11: the pads alone, for every axis (their count checked)."""
    node = helper.make_node("Pad", ["x", "pads"], ["y"])
    model = make_model([node], [("x", np.float32, [3, 4]), ("pads", np.int64, [4])], [("y", np.float32, None)], opset=11)
    sess = check_runs(model, [{"x": _x((3, 4)), "pads": np.array(p, np.int64)} for p in ([0, 1, 2, 0], [1, 1, 1, 1])], "jit")
    assert sess.infer(_x((3, 4)), np.array([0, 0, 0, 0], np.int64)).shape == (3, 4)
