"""Resize and Upsample against onnxruntime.

Every combination of mode, coordinate transformation and nearest mode runs as
one model with a Resize node per combination (one compile per shape), on 1-D
to 4-D inputs, resized by scales and by sizes, up and down.  onnxruntime only
interpolates (bi)linearly or cubically over the innermost two axes of 2-D and
4-D inputs (trilinear over 3-D / 5-D), so those tests keep to its domain.

Scales, sizes and roi given as graph inputs are read while running: those
models compile once and run at several values on both backends.  So are
known scales or sizes that resize a symbolic axis (an image of any size).
"""

import itertools

import numpy as np
import pytest
from conftest import ATOL, RTOL, check_runs, make_model
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


# ---- scales, sizes and roi read at run time ---------------------------------------------------------------

BACKENDS = ["jit", "native"]


def _check_runs(model, runs, backend, atol=ATOL):
    """Compile ``model`` once, then compare every feed dict of ``runs`` with onnxruntime."""
    return check_runs(model, runs, backend, rtol=RTOL, atol=atol)


def _runtime_model(variants, value, value_dtype, shape, opset=19, dtype=np.float32, roi=None, name="test",
                   length=4):
    """One Resize node per attribute dict, all reading ``value`` ("scales" or "sizes") as a graph input."""
    ins = ["x", "roi" if roi is not None else "", "scales"] if value == "scales" else \
        ["x", "roi" if roi is not None else "", "", "sizes"]
    nodes = [helper.make_node("Resize", ins, [f"y{k}"], **attrs) for k, attrs in enumerate(variants)]
    inputs = [("x", dtype, list(shape)), (value, value_dtype, [length])]
    inits = {} if roi is None else {"roi": roi}
    return make_model(nodes, inputs, [(f"y{k}", dtype, None) for k in range(len(variants))], inits, opset=opset,
                      name=name)


RUNTIME_SCALES = [[1.0, 1.0, 2.5, 0.75], [1.0, 1.0, 0.4, 1.7], [1.0, 1.0, 1.0, 3.0]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_runtime_scales(backend):
    """Every mode and coordinate transformation, compiled once, at several scales."""
    shape = (2, 3, 5, 4)
    variants = ([{"mode": "nearest", "coordinate_transformation_mode": c, "nearest_mode": n}
                 for c, n in itertools.product(COORDS[:-1], NEAREST)]
                + [{"mode": "linear", "coordinate_transformation_mode": c} for c in COORDS[:-1]]
                + [{"mode": "cubic", "coordinate_transformation_mode": c, "exclude_outside": e}
                   for c, e in itertools.product(COORDS[:-1], [0, 1])])
    model = _runtime_model(variants, "scales", np.float32, shape, name=f"rt_scales_{backend}")
    _check_runs(model, [{"x": _x(shape, k), "scales": np.array(s, np.float32)} for k, s in enumerate(RUNTIME_SCALES)],
                backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_runtime_sizes_policies(backend):
    """Sizes on two axes (``axes``), each keep_aspect_ratio_policy, nearest and linear."""
    shape = (2, 3, 6, 8)
    variants = [{"mode": m, "axes": [2, 3], "keep_aspect_ratio_policy": p}
                for m, p in itertools.product(["nearest", "linear"], ["stretch", "not_larger", "not_smaller"])]
    model = _runtime_model(variants, "sizes", np.int64, shape, opset=18, name=f"rt_sizes_{backend}", length=2)
    sizes = [[9, 10], [3, 4], [6, 8], [1, 17]]
    _check_runs(model, [{"x": _x(shape, k), "sizes": np.array(s, np.int64)} for k, s in enumerate(sizes)], backend)


def test_resize_runtime_antialias_and_crop():
    """Antialiased filters at run-time scales; tf_crop_and_resize with a constant roi and run-time sizes."""
    shape = (1, 2, 9, 10)
    variants = [{"mode": m, "antialias": 1, "coordinate_transformation_mode": c}
                for m, c in itertools.product(["linear", "cubic"], ["half_pixel", "align_corners"])]
    model = _runtime_model(variants, "scales", np.float32, shape, opset=18)
    _check_runs(model, [{"x": _x(shape, k), "scales": np.array([1, 1, a, b], np.float32)}
                        for k, (a, b) in enumerate([(0.45, 0.6), (0.3, 1.5), (2.0, 0.25)])], "jit", atol=1e-4)
    crop = [{"mode": m, "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -2.0}
            for m in ["nearest", "linear", "cubic"]]
    model = _runtime_model(crop, "sizes", np.int64, shape, roi=_roi(4))
    _check_runs(model, [{"x": _x(shape, k), "sizes": np.array([1, 2, a, b], np.int64)}
                        for k, (a, b) in enumerate([(4, 13), (1, 5), (12, 1)])], "jit")


def test_resize_runtime_roi():
    """A roi computed at run time (with constant scales or sizes) makes the node read it."""
    shape = (1, 1, 4, 5)
    nodes = [helper.make_node("Resize", ["x", "roi", *given], [f"y{k}"], mode="linear",
                              coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=7.0)
             for k, given in enumerate([["scales"], ["", "sizes"]])]
    model = make_model(nodes, [("x", np.float32, list(shape)), ("roi", np.float32, [8])],
                       [("y0", np.float32, None), ("y1", np.float32, None)],
                       {"scales": np.array([1, 1, 1.5, 0.8], np.float32), "sizes": np.array([1, 1, 3, 7], np.int64)},
                       opset=19)
    rois = [_roi(4), np.array([0, 0, 0.3, -0.2, 1, 1, 0.9, 1.4], np.float32)]
    _check_runs(model, [{"x": _x(shape, k), "roi": r} for k, r in enumerate(rois)], "jit")


def test_resize_runtime_symbolic_batch_int():
    """Run-time scales on an input of symbolic batch, integer data (nearest: onnxruntime's integer linear
    interpolation rounds in fixed point)."""
    variants = [{"mode": "nearest"}, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}]
    model = _runtime_model(variants, "scales", np.float32, ("N", 2, 4, 5),
                           opset=13, dtype=np.uint8)
    runs = [{"x": _x((n, 2, 4, 5), n, np.uint8), "scales": np.array(s, np.float32)}
            for n, s in [(1, [1, 1, 2, 0.8]), (3, [1, 1, 0.5, 1.6]), (2, [2, 1, 1, 1])]]
    _check_runs(model, runs, "jit")


@pytest.mark.parametrize("op, opset", [("Upsample", 9), ("Resize", 10)])
def test_upsample_runtime_scales(op, opset):
    shape = (1, 2, 3, 4)
    nodes = [helper.make_node(op, ["x", "scales"], [f"y{k}"], mode=m) for k, m in enumerate(["nearest", "linear"])]
    model = make_model(nodes, [("x", np.float32, list(shape)), ("scales", np.float32, [4])],
                       [("y0", np.float32, None), ("y1", np.float32, None)], opset=opset)
    _check_runs(model, [{"x": _x(shape, k), "scales": np.array(s, np.float32)}
                        for k, s in enumerate([[1, 1, 2, 1.5], [1, 1, 1, 2.5], [1, 1, 3, 1]])], "jit")


@pytest.mark.parametrize("value, bad, message", [
    ("scales", [1, 1, 0, 2], r"scales\[2\] is 0.*must be positive"),
    ("scales", [1, 1, 2], "scales has 3 values for 4 axes"),
    ("sizes", [1, 2, -3, 4], r"sizes\[2\] is -3, a size must not be negative"),
])
def test_resize_runtime_bad_values(value, bad, message):
    """A bad run-time value is refused by the node's code, naming the model, the node and the value."""
    import sofie_rdf as sr

    dtype = np.float32 if value == "scales" else np.int64
    model = _runtime_model([{"mode": "linear"}], value, dtype, (1, 2, 4, 5), name="bad", length="K")
    sess = sr.compile(sr.load(model))
    with pytest.raises(sr.errors.ShapeError, match=f"model 'bad': Resize node .*{message}"):
        sess.infer(_x((1, 2, 4, 5)), np.array(bad, dtype))


# ---- known scales or sizes over symbolic image sizes -----------------------------------------------------

IMAGE_SIZES = [(1, 5, 6), (2, 3, 8), (1, 7, 2)]  # (N, H, W) of the runs of one compiled model


def _image_runs(channels=4, **more):
    return [{"x": _x((n, channels, h, w), k), **more} for k, (n, h, w) in enumerate(IMAGE_SIZES)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_symbolic_image_scales(backend):
    """Constant scales over (N, C, H, W): H and W resized, N and C copied, every mode, compiled once."""
    variants = ([{"mode": "nearest", "coordinate_transformation_mode": c, "nearest_mode": n}
                 for c, n in [("asymmetric", "floor"), ("half_pixel", "round_prefer_ceil")]]
                + [{"mode": m, "coordinate_transformation_mode": c}
                   for m, c in itertools.product(["linear", "cubic"], ["half_pixel", "align_corners"])])
    model = _resize_model((1, 4, 5, 6), variants, "scales", [1.0, 1.0, 2.0, 1.5], [],
                          in_shape=("N", 4, "H", "W"))
    sess = _check_runs(model, _image_runs(), backend)
    assert str(sess.outputs[0].shape[0]) == "N"  # the copied batch keeps its symbol


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_symbolic_image_sizes(backend):
    """Constant sizes for symbolic H and W (``axes``): a fixed output, and an aspect-ratio policy whose one
    scale depends on H and W."""
    variants = [{"mode": m, "axes": [2, 3], "keep_aspect_ratio_policy": p}
                for m, p in [("linear", "stretch"), ("nearest", "stretch"), ("linear", "not_larger")]]
    inits = {"sizes": np.array([6, 5], np.int64)}
    nodes = [helper.make_node("Resize", ["x", "", "", "sizes"], [f"y{k}"], **attrs) for k, attrs in enumerate(variants)]
    model = make_model(nodes, [("x", np.float32, ["N", 4, "H", "W"])],
                       [(f"y{k}", np.float32, None) for k in range(len(variants))], inits, opset=18)
    sess = _check_runs(model, _image_runs(), backend)
    assert tuple(sess.outputs[0].shape[1:]) == (4, 6, 5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opset", [7, 9])
def test_upsample_symbolic_image(backend, opset):
    """Upsample's scales (attribute, or a constant input) over symbolic H and W."""
    scales = [1.0, 1.0, 2.0, 3.0]
    nodes = [helper.make_node("Upsample", ["x"] if opset == 7 else ["x", "scales"], [f"y{k}"], mode=m,
                              **({"scales": scales} if opset == 7 else {}))
             for k, m in enumerate(["nearest", "linear"])]
    inits = {} if opset == 7 else {"scales": np.array(scales, np.float32)}
    model = make_model(nodes, [("x", np.float32, ["N", 4, "H", "W"])],
                       [("y0", np.float32, None), ("y1", np.float32, None)], inits, opset=opset)
    _check_runs(model, _image_runs(), backend)


def test_resize_symbolic_batch_resized():
    """A symbolic batch resized by a known scale: its output size too is computed by the code."""
    model = _resize_model((2, 4), [{"mode": "nearest"}], "scales", [2.0, 1.0], [], in_shape=("N", 4))
    _check_runs(model, [{"x": _x((n, 4), n)} for n in (1, 3)], "jit")


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_then_conv_symbolic_image(backend):
    """An upsampling CNN over a variable image size: Resize (run-time output dims) feeding a padded Conv."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="linear"),
             helper.make_node("Conv", ["up", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    inits = {"scales": np.array([1, 1, 2, 2], np.float32), "w": rng.standard_normal((3, 4, 3, 3)).astype(np.float32),
             "b": rng.standard_normal(3).astype(np.float32)}
    model = make_model(nodes, [("x", np.float32, ["N", 4, "H", "W"])], [("y", np.float32, None)], inits, opset=13)
    _check_runs(model, _image_runs(), backend, atol=1e-4)
