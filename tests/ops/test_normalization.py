"""Normalization against onnxruntime: BatchNormalization (inference, opsets 7-15), InstanceNormalization,
LayerNormalization (axes, optional outputs, stash_type), GroupNormalization (opset 18 and 21 parameters),
and the pass folding BatchNormalization into the Conv or Gemm before it."""

import numpy as np
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import UnsupportedOperatorError
from sofie_rdf.ops import lookup

# Spatial shapes after (N, C): none (N x C input), 1-D, 2-D and 3-D.
SPATIAL = {"0d": (), "1d": (7,), "2d": (4, 5), "3d": (2, 3, 4)}


def _rand(rng, shape, dtype=np.float32, offset=0.0):
    return (rng.standard_normal(shape) + offset).astype(dtype)


# ---- BatchNormalization ----------------------------------------------------------

def _bn_params(rng, c, dtype=np.float32):
    return {"s": _rand(rng, (c,), dtype), "b": _rand(rng, (c,), dtype), "m": _rand(rng, (c,), dtype),
            "v": (rng.random(c) + 0.2).astype(dtype)}


def _batchnorm(check, spatial, opset=15, dtype=np.float32, batch=2, symbolic=False, params_are_inputs=False,
               seed=0, c=3, **attrs):
    rng = np.random.default_rng(seed)
    shape = (batch, c, *spatial)
    dims = ["N" if symbolic else batch, c, *spatial]
    params = _bn_params(rng, c, dtype)
    inputs = [("x", dtype, dims)]
    feeds = {"x": _rand(rng, shape, dtype, offset=2.0)}
    if params_are_inputs:
        inputs += [(k, dtype, [c]) for k in params]
        feeds.update(params)
        params = {}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], **attrs)
    model = make_model([node], inputs, [("y", dtype, dims)], params, opset=opset)
    check(model, feeds)


@pytest.mark.parametrize("spatial", list(SPATIAL))
def test_batchnorm_shapes(check_model, spatial):
    _batchnorm(check_model, SPATIAL[spatial])


@pytest.mark.parametrize("spatial", [(), (1,)])
def test_batchnorm_one_value_per_channel(check_model, spatial):
    """(batch, channels) and (batch, channels, 1), as PyTorch's exporter wraps a BatchNorm1d, run row by row with
    the channels' coefficients from tables of 256: 300 channels cross one table's end."""
    _batchnorm(check_model, spatial, batch=37, c=300, symbolic=True)


@pytest.mark.parametrize("opset", [7, 9, 14, 15])
def test_batchnorm_opsets(check_model, opset):
    _batchnorm(check_model, SPATIAL["2d"], opset=opset, epsilon=1e-2, momentum=0.7)


def test_batchnorm_training_mode_zero(check_model):
    _batchnorm(check_model, SPATIAL["1d"], opset=15, training_mode=0)


def test_batchnorm_float64_runtime_params(check_model):
    _batchnorm(check_model, SPATIAL["3d"], dtype=np.float64, params_are_inputs=True, epsilon=0.5)


@pytest.mark.parametrize("batch", [1, 5])
def test_batchnorm_symbolic_batch(check_model, batch):
    _batchnorm(check_model, SPATIAL["2d"], batch=batch, symbolic=True, seed=batch)


def test_batchnorm_folded(check_folded):
    _batchnorm(check_folded, SPATIAL["1d"], epsilon=1e-3)


def test_batchnorm_opset7_per_feature(check_model):
    """Opset 7 ``spatial=0``: one parameter per (channel, position)."""
    rng = np.random.default_rng(3)
    feat = (3, 4)
    params = {k: _rand(rng, feat) for k in "sbm"}
    params["v"] = (rng.random(feat) + 0.2).astype(np.float32)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=0)
    model = make_model([node], [("x", np.float32, [2, *feat])], [("y", np.float32, [2, *feat])], params, opset=7)
    check_model(model, {"x": _rand(rng, (2, *feat))})


@pytest.mark.parametrize("opset, attrs, outputs", [
    (15, {"training_mode": 1}, ["y", "rm", "rv"]),
    (14, {"training_mode": 1}, ["y"]),
    (9, {}, ["y", "mean", "var"]),
])
def test_batchnorm_training_refused(opset, attrs, outputs):
    rng = np.random.default_rng(4)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], outputs, **attrs)
    outs = [("y", np.float32, [2, 3])] + [(o, np.float32, [3]) for o in outputs[1:]]
    model = make_model([node], [("x", np.float32, [2, 3])], outs, _bn_params(rng, 3), opset=opset)
    with pytest.raises(UnsupportedOperatorError, match="training"):
        sr.compile(sr.load(model))


# ---- InstanceNormalization -------------------------------------------------------

def _instancenorm(check, spatial, dtype=np.float32, batch=2, symbolic=False, seed=5, **attrs):
    rng = np.random.default_rng(seed)
    c = 3
    dims = ["N" if symbolic else batch, c, *spatial]
    params = {"s": _rand(rng, (c,), dtype), "b": _rand(rng, (c,), dtype)}
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], **attrs)
    model = make_model([node], [("x", dtype, dims)], [("y", dtype, dims)], params, opset=17)
    check(model, {"x": _rand(rng, (batch, c, *spatial), dtype, offset=3.0)})


@pytest.mark.parametrize("spatial", ["1d", "2d", "3d"])
@pytest.mark.parametrize("epsilon", [None, 0.1])
def test_instancenorm(check_model, spatial, epsilon):
    attrs = {} if epsilon is None else {"epsilon": epsilon}
    _instancenorm(check_model, SPATIAL[spatial], **attrs)


@pytest.mark.parametrize("batch", [1, 3])
def test_instancenorm_symbolic_batch(check_model, batch):
    _instancenorm(check_model, SPATIAL["2d"], batch=batch, symbolic=True, seed=batch)


def _against_float32(build, stash_type=None, **kwargs):
    """float64 model vs onnxruntime on the float32 model (its CPU kernels have no double version)."""
    built = {}
    build(lambda m, f: built.update(ref=(m, f)), dtype=np.float32, **kwargs)
    extra = {} if stash_type is None else {"stash_type": stash_type}
    build(lambda m, f: built.update(ours=(m, f)), dtype=np.float64, **extra, **kwargs)
    ours, ref = sofie_run(*built["ours"]), ort_run(*built["ref"])
    for a, b in zip(ours, ref):
        assert a.dtype == np.float64 and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_instancenorm_float64():
    _against_float32(_instancenorm, spatial=SPATIAL["1d"], epsilon=1e-3)


def test_instancenorm_folded(check_folded):
    _instancenorm(check_folded, SPATIAL["2d"])


# ---- LayerNormalization ----------------------------------------------------------

X_SHAPE = (2, 3, 4, 5)


def _layernorm(check, axis=-1, bias=True, outputs=("y",), scale_shape=None, dtype=np.float32, stash_type=None,
               batch=2, symbolic=False, seed=6, **attrs):
    rng = np.random.default_rng(seed)
    shape = (batch, *X_SHAPE[1:])
    dims = ["N" if symbolic else batch, *X_SHAPE[1:]]
    a = axis % len(shape)
    normalized = shape[a:]
    scale_shape = normalized if scale_shape is None else scale_shape
    inits = {"s": _rand(rng, scale_shape, dtype)}
    names = ["x", "s"]
    if bias:
        inits["b"] = _rand(rng, scale_shape, dtype)
        names.append("b")
    if stash_type is not None:
        attrs["stash_type"] = stash_type
    stash = np.float64 if stash_type == 11 else np.float32
    stat_dims = dims[:a] + [1] * len(normalized)
    out_info = {"y": ("y", dtype, dims), "mean": ("mean", stash, stat_dims), "inv": ("inv", stash, stat_dims)}
    node_outputs = ["y", "mean" if "mean" in outputs else "", "inv" if "inv" in outputs else ""]
    while not node_outputs[-1]:
        node_outputs.pop()
    node = helper.make_node("LayerNormalization", names, node_outputs, axis=axis, **attrs)
    model = make_model([node], [("x", dtype, dims)], [out_info[o] for o in outputs], inits, opset=17)
    check(model, {"x": _rand(rng, shape, dtype, offset=5.0)})


@pytest.mark.parametrize("axis", [-1, -2, -3, 0, 1, 3])
def test_layernorm_axes(check_model, axis):
    _layernorm(check_model, axis=axis, outputs=("y", "mean", "inv"))


@pytest.mark.parametrize("outputs", [("y",), ("y", "mean"), ("y", "inv"), ("inv", "y")])
def test_layernorm_optional_outputs(check_model, outputs):
    _layernorm(check_model, axis=2, outputs=outputs)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("epsilon", [None, 0.25])
def test_layernorm_bias_epsilon(check_model, bias, epsilon):
    attrs = {} if epsilon is None else {"epsilon": epsilon}
    _layernorm(check_model, axis=-2, bias=bias, **attrs)


@pytest.mark.parametrize("scale_shape", [(5,), (1, 5), (1, 1, 5)])
def test_layernorm_broadcast_scale(check_model, scale_shape):
    """Scale and B may leave out (or set to 1) leading dims of the normalised shape."""
    _layernorm(check_model, axis=1, scale_shape=scale_shape)


def test_layernorm_float64_stash_double():
    _against_float32(_layernorm, stash_type=11, axis=-1, outputs=("y", "mean", "inv"))


@pytest.mark.parametrize("batch", [1, 4])
def test_layernorm_symbolic_batch(check_model, batch):
    _layernorm(check_model, axis=-2, batch=batch, symbolic=True, seed=batch, outputs=("y", "mean", "inv"))


def test_layernorm_folded(check_folded):
    _layernorm(check_folded, axis=2, outputs=("y", "mean", "inv"))


# ---- GroupNormalization ----------------------------------------------------------

def _groupnorm(check, spatial, groups, opset=21, channels=6, batch=2, symbolic=False, seed=7, **attrs):
    rng = np.random.default_rng(seed)
    dims = ["N" if symbolic else batch, channels, *spatial]
    n_params = channels if opset >= 21 else groups
    params = {"s": _rand(rng, (n_params,)), "b": _rand(rng, (n_params,))}
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=groups, **attrs)
    model = make_model([node], [("x", np.float32, dims)], [("y", np.float32, dims)], params, opset=opset)
    check(model, {"x": _rand(rng, (batch, channels, *spatial), offset=-2.0)})


@pytest.mark.parametrize("spatial", ["1d", "2d", "3d"])
@pytest.mark.parametrize("opset", [18, 21])
def test_groupnorm_shapes(check_model, spatial, opset):
    _groupnorm(check_model, SPATIAL[spatial], 3, opset=opset)


@pytest.mark.parametrize("groups", [1, 2, 6])
@pytest.mark.parametrize("opset", [18, 21])
def test_groupnorm_groups(check_model, groups, opset):
    _groupnorm(check_model, SPATIAL["1d"], groups, opset=opset, epsilon=1e-2)


@pytest.mark.parametrize("batch", [1, 3])
def test_groupnorm_symbolic_batch(check_model, batch):
    _groupnorm(check_model, SPATIAL["2d"], 2, batch=batch, symbolic=True, seed=batch)


def test_groupnorm_folded(check_folded):
    _groupnorm(check_folded, SPATIAL["2d"], 3, opset=18)


def test_groupnorm_bad_groups():
    rng = np.random.default_rng(8)
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=4)
    model = make_model([node], [("x", np.float32, [2, 6, 3])], [("y", np.float32, [2, 6, 3])],
                       {"s": _rand(rng, (6,)), "b": _rand(rng, (6,))}, opset=21)
    with pytest.raises(sr.SofieError, match="groups"):
        sr.compile(sr.load(model))


# ---- folding BatchNormalization into Conv / Gemm -----------------------------------

def _op_types(onnx_model) -> list[str]:
    model = sr.load(onnx_model).planned().model
    return [n.op_type for n in model.nodes]


def _gemm_bn(trans_b=0, c_shape=(6,), beta=1.0, m=5, k=4, n=6, symbolic=False, seed=9):
    rng = np.random.default_rng(seed)
    inits = {"w": _rand(rng, (n, k) if trans_b else (k, n)), **_bn_params(rng, n)}
    names = ["x", "w"]
    if c_shape is not None:
        inits["c"] = _rand(rng, c_shape)
        names.append("c")
    nodes = [helper.make_node("Gemm", names, ["h"], transB=trans_b, alpha=0.8, beta=beta),
             helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"], ["y"], epsilon=1e-3)]
    rows = "N" if symbolic else m
    model = make_model(nodes, [("x", np.float32, [rows, k])], [("y", np.float32, [rows, n])], inits, opset=15)
    return model, {"x": _rand(rng, (m, k))}


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape, beta", [(None, 1.0), ((6,), 1.0), ((1, 6), 0.5), ((5, 6), 2.0), ((5, 1), 1.5),
                                           ((), 0.0)])
def test_fold_batchnorm_gemm(check_model, trans_b, c_shape, beta):
    model, feeds = _gemm_bn(trans_b, c_shape, beta)
    assert _op_types(model) == ["Gemm"]
    check_model(model, feeds)


@pytest.mark.parametrize("batch", [1, 7])
def test_fold_batchnorm_gemm_symbolic_batch(check_model, batch):
    model, feeds = _gemm_bn(1, (6,), m=batch, symbolic=True, seed=batch)
    assert _op_types(model) == ["Gemm"]
    check_model(model, feeds)


def test_fold_batchnorm_keeps_shared_weight(check_model):
    """A weight read by another node keeps its value: the folded one is a new initializer."""
    model, feeds = _gemm_bn(0, (6,))
    model.graph.node.append(helper.make_node("Gemm", ["x", "w"], ["z"]))
    model.graph.output.append(helper.make_tensor_value_info("z", 1, [5, 6]))
    assert sorted(_op_types(model)) == ["Gemm", "Gemm"]
    check_model(model, feeds)


def test_fold_batchnorm_not_when_input_shared(check_model):
    """The Gemm output is also a graph output: the BatchNormalization stays."""
    model, feeds = _gemm_bn(1, (6,))
    model.graph.output.append(helper.make_tensor_value_info("h", 1, [5, 6]))
    assert "BatchNormalization" in _op_types(model)
    check_model(model, feeds)


def test_fold_batchnorm_not_with_runtime_weight(check_model):
    rng = np.random.default_rng(10)
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"]),
             helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [3, 4]), ("w", np.float32, [4, 6])], [("y", np.float32, [3, 6])],
                       _bn_params(rng, 6), opset=15)
    assert "BatchNormalization" in _op_types(model)
    check_model(model, {"x": _rand(rng, (3, 4)), "w": _rand(rng, (4, 6))})


@pytest.mark.parametrize("spatial, group, bias", [("1d", 1, True), ("2d", 1, False), ("2d", 2, True),
                                                  ("3d", 1, True)])
def test_fold_batchnorm_conv(check_model, spatial, group, bias):
    if lookup("Conv") is None:
        pytest.skip("Conv is not registered yet")
    rng = np.random.default_rng(11)
    cin, cout, sp = 4, 6, SPATIAL[spatial]
    kernel = (3,) * len(sp) if spatial != "3d" else (1, 2, 2)
    inits = {"w": _rand(rng, (cout, cin // group, *kernel)), **_bn_params(rng, cout)}
    names = ["x", "w"]
    if bias:
        inits["cb"] = _rand(rng, (cout,))
        names.append("cb")
    out_sp = [s - k + 1 for s, k in zip(sp, kernel)]
    nodes = [helper.make_node("Conv", names, ["h"], group=group),
             helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"], ["y"], epsilon=1e-4)]
    model = make_model(nodes, [("x", np.float32, ["N", cin, *sp])], [("y", np.float32, ["N", cout, *out_sp])],
                       inits, opset=15)
    assert _op_types(model) == ["Conv"]
    check_model(model, {"x": _rand(rng, (2, cin, *sp))})


@pytest.mark.parametrize("offset, spread", [(1e4, 0.05), (-3e3, 1.0), (0.0, 1e-3)])
def test_layernorm_float_rows_precision(offset, spread):
    """The float statistics (vector lanes, corrected two-pass) on rows whose mean dwarfs their spread, against
    float64 numpy on the same float32 inputs: the error stays at the inputs' own precision."""
    rng = np.random.default_rng(7)
    x = (offset + spread * rng.standard_normal((6, 301))).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, 301).astype(np.float32)
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y", "mean", "inv"], axis=-1, epsilon=1e-9)
    model = make_model([node], [("x", np.float32, x.shape)],
                       [("y", np.float32, x.shape), ("mean", np.float32, (6, 1)), ("inv", np.float32, (6, 1))],
                       {"s": scale}, opset=17)
    y, mean, inv = sr.compile(sr.load(model), backend="native").infer(x)
    xd = x.astype(np.float64)
    ref_mean = xd.mean(axis=1, keepdims=True)
    ref_inv = 1 / np.sqrt(xd.var(axis=1, keepdims=True) + 1e-9)
    ulp = np.spacing(np.float32(abs(offset) + spread))  # the inputs' resolution
    np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=float(ulp))
    np.testing.assert_allclose(inv, ref_inv, rtol=float(ulp / spread) + 1e-5)
    np.testing.assert_allclose(y, (xd - ref_mean) * ref_inv * scale, rtol=0, atol=float(ulp / spread) * 4 + 1e-5)
