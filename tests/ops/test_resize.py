"""Resize and Upsample against onnxruntime.

Every combination of mode, coordinate transformation and nearest mode runs as
one model with a Resize node per combination (one compile per shape), on 1-D
to 4-D inputs, resized by scales and by sizes, up and down.  onnxruntime only
interpolates (bi)linearly or cubically over the innermost two axes of 2-D and
4-D inputs (trilinear over 3-D / 5-D), so those tests keep to its domain.
"""

import itertools

import numpy as np
import pytest
from conftest import make_model
from onnx import helper

COORDS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
          "tf_crop_and_resize"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]

# rank -> (input shape, scales, sizes): resized axes both grow and shrink.
NEAREST_SHAPES = {
    1: ((7,), [1.7], [3]),
    2: ((5, 6), [1.5, 0.7], [8, 4]),
    3: ((2, 5, 6), [1.0, 0.6, 2.2], [2, 3, 13]),
    4: ((2, 3, 5, 4), [1.0, 1.0, 2.5, 0.75], [2, 3, 9, 3]),
}
# linear / cubic: what onnxruntime interpolates (2-D, 4-D with N and C kept).
FILTER_SHAPES = {
    2: ((5, 6), [1.5, 0.7], [8, 4]),
    4: ((2, 3, 5, 4), [1.0, 1.0, 2.5, 0.75], [2, 3, 9, 3]),
}


def _x(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, 100, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _roi(rank):
    """A crop box that reaches outside the input on the last axis (extrapolation)."""
    starts = [0.0] * rank
    ends = [1.0] * rank
    starts[-1], ends[-1] = 0.2, 1.3
    if rank > 1:
        starts[-2], ends[-2] = -0.1, 0.8
    return np.array(starts + ends, dtype=np.float32)


def _resize_model(shape, variants, by, scales, sizes, opset=19, dtype=np.float32, in_shape=None):
    """One Resize node per attribute dict in ``variants``, all on input x; initializers hold roi/scales/sizes."""
    rank = len(shape)
    inits = {"roi": _roi(rank), "scales": np.array(scales, np.float32), "sizes": np.array(sizes, np.int64)}
    nodes, outputs = [], []
    for k, attrs in enumerate(variants):
        ins = ["x", "roi", "scales"] if by == "scales" else ["x", "roi", "", "sizes"]
        nodes.append(helper.make_node("Resize", ins, [f"y{k}"], **attrs))
        outputs.append((f"y{k}", dtype, None))
    return make_model(nodes, [("x", dtype, list(in_shape or shape))], outputs, inits, opset=opset)


@pytest.mark.parametrize("by", ["scales", "sizes"])
@pytest.mark.parametrize("rank", list(NEAREST_SHAPES))
def test_resize_nearest(check_model, rank, by):
    shape, scales, sizes = NEAREST_SHAPES[rank]
    variants = [{"mode": "nearest", "coordinate_transformation_mode": c, "nearest_mode": n, "extrapolation_value": -3.0}
                for c, n in itertools.product(COORDS, NEAREST)]
    check_model(_resize_model(shape, variants, by, scales, sizes), {"x": _x(shape)})


@pytest.mark.parametrize("by", ["scales", "sizes"])
@pytest.mark.parametrize("rank", list(FILTER_SHAPES))
def test_resize_linear(check_model, rank, by):
    shape, scales, sizes = FILTER_SHAPES[rank]
    variants = [{"mode": "linear", "coordinate_transformation_mode": c, "extrapolation_value": 2.5} for c in COORDS]
    check_model(_resize_model(shape, variants, by, scales, sizes), {"x": _x(shape)})


@pytest.mark.parametrize("by", ["scales", "sizes"])
@pytest.mark.parametrize("rank", list(FILTER_SHAPES))
def test_resize_cubic(check_model, rank, by):
    shape, scales, sizes = FILTER_SHAPES[rank]
    variants = [{"mode": "cubic", "coordinate_transformation_mode": c, "exclude_outside": e, "cubic_coeff_a": a}
                for c, e, a in itertools.product(COORDS, [0, 1], [-0.75, -0.5])]
    check_model(_resize_model(shape, variants, by, scales, sizes), {"x": _x(shape)})


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_resize_antialias(check_model, mode):
    shape, scales = (1, 2, 9, 10), [1.0, 1.0, 0.45, 0.6]
    variants = [{"mode": mode, "antialias": 1, "coordinate_transformation_mode": c}
                for c in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]]
    check_model(_resize_model(shape, variants, "scales", scales, [], opset=18), {"x": _x(shape)}, atol=1e-4)


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_axes_keep_aspect_ratio(check_model, policy, mode):
    shape = (2, 3, 6, 8)
    model = make_model(
        [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, axes=[2, 3],
                          keep_aspect_ratio_policy=policy)],
        [("x", np.float32, list(shape))], [("y", np.float32, None)], {"sizes": np.array([9, 10], np.int64)}, opset=18)
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("axes", [[3, 2], [-1], [2]])
def test_resize_axes_scales(check_model, axes):
    shape = (1, 2, 5, 6)
    scales = {3: 1.5, 2: 0.6, -1: 2.0}
    model = make_model(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear", axes=axes)],
        [("x", np.float32, list(shape))], [("y", np.float32, None)],
        {"scales": np.array([scales[a] for a in axes], np.float32)}, opset=19)
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_symbolic_batch(check_model, mode, batch):
    shape = (batch, 2, 4, 5)
    model = _resize_model(shape, [{"mode": mode}], "scales", [1.0, 1.0, 2.0, 0.8], [], in_shape=("N", 2, 4, 5))
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_resize_dtypes(check_model, dtype):
    shape = (2, 3, 4, 5)
    variants = [{"mode": "nearest"}, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}]
    check_model(_resize_model(shape, variants, "scales", [1.0, 1.0, 1.5, 0.6], [], dtype=dtype),
                {"x": _x(shape, dtype=dtype)})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_opsets_11_13(check_model, opset, mode):
    shape = (1, 2, 4, 5)
    model = make_model(
        [helper.make_node("Resize", ["x", "roi", "scales"], ["y0"], mode=mode),
         helper.make_node("Resize", ["x", "roi", "empty", "sizes"], ["y1"], mode=mode,
                          coordinate_transformation_mode="align_corners")],
        [("x", np.float32, list(shape))], [("y0", np.float32, None), ("y1", np.float32, None)],
        {"roi": np.zeros(0, np.float32), "empty": np.zeros(0, np.float32),
         "scales": np.array([1, 1, 1.75, 0.6], np.float32), "sizes": np.array([1, 2, 3, 8], np.int64)}, opset=opset)
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("scales", [[1.0, 1.0, 2.0, 3.0], [1.0, 1.0, 0.5, 0.4], [1.0, 1.0, 1.5, 0.7]])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opset10(check_model, mode, scales):
    shape = (1, 2, 4, 5)
    model = make_model([helper.make_node("Resize", ["x", "scales"], ["y"], mode=mode)],
                       [("x", np.float32, list(shape))], [("y", np.float32, None)],
                       {"scales": np.array(scales, np.float32)}, opset=10)
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("opset", [7, 9])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample(check_model, mode, opset):
    shape, scales = (1, 2, 3, 4), [1.0, 1.0, 2.0, 1.5]
    if opset == 7:
        node, inits = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=scales), {}
    else:
        node, inits = helper.make_node("Upsample", ["x", "scales"], ["y"], mode=mode), {
            "scales": np.array(scales, np.float32)}
    model = make_model([node], [("x", np.float32, list(shape))], [("y", np.float32, None)], inits, opset=opset)
    check_model(model, {"x": _x(shape)})


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_tf_half_pixel_for_nn(check_model, mode):
    shape = (1, 2, 4, 5)
    model = make_model([helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode=mode,
                                         coordinate_transformation_mode="tf_half_pixel_for_nn")],
                       [("x", np.float32, list(shape))], [("y", np.float32, None)],
                       {"roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 1.7, 0.6], np.float32)}, opset=11)
    check_model(model, {"x": _x(shape)})


def test_resize_folded(check_folded):
    shape = (1, 2, 4, 5)
    variants = [{"mode": m, "coordinate_transformation_mode": c} for m in ["nearest", "linear", "cubic"]
                for c in ["half_pixel", "tf_crop_and_resize"]]
    check_folded(_resize_model(shape, variants, "scales", [1.0, 1.0, 1.5, 0.6], []), {"x": _x(shape)})


def test_resize_symbolic_axis_refused():
    """A resized axis of symbolic size has no generation-time tables: refused with a clear error."""
    import sofie_rdf as sr

    model = _resize_model((2, 4), [{"mode": "nearest"}], "scales", [2.0, 1.0], [], in_shape=("N", 4))
    with pytest.raises(sr.SofieError, match="fixed sizes"):
        sr.compile(sr.load(model))
