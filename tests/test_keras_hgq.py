"""HGQ's proxy models (``FixedPointQuantizer`` layers, calad0i/HGQ ``HGQ/proxy/fixed_point_quantizer.py``) read
from Keras 2 files (``sofie_rdf.parsers.keras.hgq``), against a numpy transcription of HGQ's quantizer.

HGQ needs TensorFlow, so the files are written with h5py (``tests/keras2_files.py``) as tf.keras 2 saves a proxy
model (the quantizer's get_config keys, its int8 ``keep_negative``, ``bits`` and ``integers`` weights).  Every
step of HGQ's quantizer is exact in float32 at these widths, and the networks' weights and inputs are on their
grids, so the outputs must be equal, not close.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import sofie_rdf as sr
from tests.keras2_files import common, dense, functional, input_layer, layer, node, write_model_h5

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

F32 = np.float32


# ---- HGQ's gfixed_quantizer in numpy (float32, as its tf.function computes it) ---------------------------------

RND_MAP = {
    "TRN": np.floor,
    "RND": lambda x: np.floor(x + F32(0.5)),
    "RND_CONV": np.round,  # tf.round: half to even
    "TRN_ZERO": lambda x: np.floor(np.abs(x)) * np.sign(x),
    "RND_ZERO": lambda x: -np.floor(-np.abs(x) + F32(0.5)) * np.sign(x),
    "RND_MIN_INF": lambda x: -np.floor(-x + F32(0.5)),
    "RND_INF": lambda x: np.floor(np.abs(x) + F32(0.5)) * np.sign(x),
}


def _sat(x, k, b):
    high = F32(2) ** (b - k) - F32(1)
    return np.clip(x, -(high + F32(1)) * k, high)


def _sat_zero(x, k, b):
    high = F32(2) ** (b - k) - F32(1)
    low = (-high - F32(1)) * k
    return x * ((x <= high) & (x >= low)).astype(F32)


def _sat_sym(x, k, b):
    high = F32(2) ** (b - k) - F32(1)
    return np.clip(x, -high * k, high)


def _wrap(x, k, b):
    high = F32(2) ** (b - k) - F32(1)
    low = -(high + F32(1)) * k
    return np.mod(x - low, high - low + F32(1)) + low  # np.mod of floats: tf.math.floormod


def _wrap_sm(x, k, b):
    high = F32(2) ** (b - k) - F32(1)
    low = -(high + F32(1)) * k
    interval = (high - low + F32(1)) * F32(2)
    mapped = np.mod(x - high - F32(1), interval)
    return np.abs(mapped - interval / F32(2) + F32(0.5)) - F32(0.5) + low


SAT_MAP = {"SAT": _sat, "SAT_ZERO": _sat_zero, "SAT_SYM": _sat_sym, "WRAP": _wrap, "WRAP_SM": _wrap_sm}


def gfixed_quantizer(x, keep_negative, bits, integer_bits, rnd="TRN", sat="WRAP"):
    k, b, i = (np.asarray(v, F32) for v in (keep_negative, bits, integer_bits))
    scale = F32(2) ** (b - i)
    quantized = SAT_MAP[sat](RND_MAP[rnd](np.asarray(x, F32) * scale), k, b)
    return quantized / scale * (b != 0).astype(F32)


def test_quantizer_values_by_hand():
    """fixed<4,2> (steps of 1/4 in [-2, 1.75]) truncating and wrapping (2.1 -> 8 steps -> -8), rounding and
    saturating; ufixed<3,1>; 0 bits."""
    x = np.array([0.3, 0.375, -0.3, 1.9, 2.1, -2.3], F32)
    np.testing.assert_array_equal(gfixed_quantizer(x, 1, 4, 2), [0.25, 0.25, -0.5, 1.75, -2.0, 1.5])
    np.testing.assert_array_equal(gfixed_quantizer(x, 1, 4, 2, "RND", "SAT"), [0.25, 0.5, -0.25, 1.75, 1.75, -2.0])
    np.testing.assert_array_equal(gfixed_quantizer(x, 0, 3, 1, "TRN", "SAT"), [0.25, 0.25, 0.0, 1.75, 1.75, 0.0])
    np.testing.assert_array_equal(gfixed_quantizer(x, 1, 0, 0), np.zeros(6, F32))


# ---- Keras 2 files of HGQ proxy models --------------------------------------------------------------------------


def quantizer(name: str, shape: list, rnd: str = "TRN", sat: str = "WRAP") -> dict:
    """A FixedPointQuantizer's config as HGQ's get_config writes it (overrides: what hls4ml reads)."""
    config = {**common(name), "trainable": False, "RND": rnd, "SAT": sat, "shape": shape,
              "overrides": {"layers": {name: {"result_t": "fixed<8,4,TRN,WRAP>"}}}, "fusible": False}
    config.pop("activity_regularizer")
    return {"class_name": "FixedPointQuantizer", "config": config}


def widths(keep_negative, bits, integers) -> dict:
    """The quantizer's weights, int8, in HGQ's order."""
    return {name: np.asarray(v, np.int8) for name, v in
            (("keep_negative", keep_negative), ("bits", bits), ("integers", integers))}


WIDTH = 8
# Per element: signed and unsigned, 0 bits, integers above the bits and below zero, wide and narrow.
KEEP = [[1, 1, 0, 0, 1, 0, 1, 1]]
BITS = [[6, 4, 5, 0, 12, 3, 8, 2]]
INTS = [[3, 2, 1, 0, 5, 4, -1, 3]]


def test_every_mode_against_hgq_numpy(tmp_path):
    """Every rounding and overflow mode of HGQ, on per-element widths, on values that fall on ties, in range and
    far out of it."""
    modes = [(r, s) for r in RND_MAP for s in SAT_MAP]
    names = [f"q_{r}_{s}".lower() for r, s in modes]
    layers = [node(input_layer("x", [WIDTH]))] + [node(quantizer(n, [1, WIDTH], r, s), "x")
                                                  for n, (r, s) in zip(names, modes)]
    path = tmp_path / "modes.h5"
    write_model_h5(path, functional("hgq_modes", layers, ["x"], names),
                   {n: widths(KEEP, BITS, INTS) for n in names})
    rng = np.random.default_rng(0)
    ties = (rng.integers(-600, 600, (40, WIDTH)) / 64).astype(F32)  # multiples of 1/64: ties at most widths
    x = np.concatenate([ties, (rng.standard_normal((40, WIDTH)) * 20).astype(F32)])
    got = sr.compile(sr.load(path), backend="native").infer(x)
    assert len(got) == len(modes)
    for (r, s), out in zip(modes, got):
        np.testing.assert_array_equal(out, gfixed_quantizer(x, KEEP, BITS, INTS, r, s), err_msg=f"RND={r}, SAT={s}")


def _network(rng) -> tuple[dict, dict, callable]:
    """input quantizer -> Dense -> quantizer (one type) -> relu -> quantizer (per unit) -> Dense -> quantizer,
    as HGQ's to_proxy_model lays a network out; kernels and biases on their grids."""
    config = functional("hgq_net", [
        node(input_layer("x", [6])), node(quantizer("inp_q", [1, 6]), "x"),
        node(dense("dense_1", 5, "linear"), "inp_q"), node(quantizer("dense_1_q", [1], "RND", "SAT"), "dense_1"),
        node(layer("Activation", "relu_1", activation="relu"), "dense_1_q"),
        node(quantizer("relu_1_q", [1, 5]), "relu_1"), node(dense("dense_2", 3, "linear"), "relu_1_q"),
        node(quantizer("dense_2_q", [1, 3], "TRN", "SAT_SYM"), "dense_2")], ["x"], ["dense_2_q"])
    w1 = (rng.integers(-32, 32, (6, 5)) / 16).astype(F32)
    b1 = (rng.integers(-16, 16, 5) / 8).astype(F32)
    w2 = (rng.integers(-64, 64, (5, 3)) / 32).astype(F32)
    b2 = (rng.integers(-16, 16, 3) / 8).astype(F32)
    q = {"inp_q": ([[1, 1, 1, 0, 1, 1]], [[8, 7, 6, 6, 0, 9]], [[4, 3, 3, 3, 0, 5]]),
         "dense_1_q": ([1], [10], [6]), "relu_1_q": ([[0] * 5], [[6, 5, 0, 7, 6]], [[4, 3, 0, 4, 5]]),
         "dense_2_q": ([[1, 1, 1]], [[8, 9, 7]], [[5, 5, 4]])}
    weights = {"inp_q": widths(*q["inp_q"]), "dense_1": {"kernel": w1, "bias": b1},
               "dense_1_q": widths(*q["dense_1_q"]), "relu_1_q": widths(*q["relu_1_q"]),
               "dense_2": {"kernel": w2, "bias": b2}, "dense_2_q": widths(*q["dense_2_q"])}

    def reference(x):
        h = gfixed_quantizer(x, *q["inp_q"]) @ w1 + b1
        h = np.maximum(gfixed_quantizer(h, *q["dense_1_q"], "RND", "SAT"), 0)
        h = gfixed_quantizer(h, *q["relu_1_q"]) @ w2 + b2
        return gfixed_quantizer(h, *q["dense_2_q"], "TRN", "SAT_SYM")

    return config, weights, reference


def test_hgq_network_against_numpy(tmp_path):
    rng = np.random.default_rng(1)
    config, weights, reference = _network(rng)
    path = tmp_path / "hgq_net.h5"
    write_model_h5(path, config, weights)
    model = sr.load(path)
    x = (rng.standard_normal((64, 6)) * 6).astype(F32)
    for backend in ("native", "jit"):
        np.testing.assert_array_equal(sr.compile(model, backend=backend).infer(x), reference(x), err_msg=backend)


@pytest.mark.parametrize("change, problem", [
    (dict(RND="RND_HALF"), r"RND='RND_HALF' is not one of HGQ's rounding modes"),
    (dict(SAT="CLAMP"), r"SAT='CLAMP' is not one of HGQ's overflow modes"),
    (dict(accum_bits_bias=2), r"keys \['accum_bits_bias'\] are not ones HGQ's get_config writes"),
])
def test_refused_quantizer_options_name_model_and_layer(tmp_path, change, problem):
    spec = quantizer("bad_q", [1, 4])
    spec["config"].update(change)
    path = tmp_path / "bad.h5"
    write_model_h5(path, functional("hgq_bad", [node(input_layer("x", [4])), node(spec, "x")], ["x"], ["bad_q"]),
                   {"bad_q": widths([[1] * 4], [[4] * 4], [[2] * 4])})
    with pytest.raises(sr.ModelFormatError, match=problem) as info:
        sr.load(path)
    assert "model 'bad'" in str(info.value) and "layer 'bad_q'" in str(info.value)


def test_keep_negative_outside_0_1_is_refused(tmp_path):
    path = tmp_path / "bad.h5"
    write_model_h5(path, functional("hgq_bad", [node(input_layer("x", [2])), node(quantizer("bad_q", [1, 2]), "x")],
                                    ["x"], ["bad_q"]), {"bad_q": widths([[1, 2]], [[4, 4]], [[2, 2]])})
    with pytest.raises(sr.ModelFormatError, match=r"'bad_q'.*keep_negative must be 0 or 1, got \[1.0, 2.0\]"):
        sr.load(path)


def test_public_hgq_file():
    """hls4ml's example HGQ jet classifier (example-models/keras/hgq_jet_classifier.h5), where
    ``benchmarks.public --fetch`` put it, against a numpy forward pass of its layers."""
    from benchmarks.public import models_dir

    path = models_dir() / "fastmachinelearning+example-models" / "keras" / "hgq_jet_classifier.h5"
    if not path.is_file():
        pytest.skip("hls4ml's hgq_jet_classifier is not fetched (python -m benchmarks.public --fetch ...)")
    with h5py.File(path) as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"][1:]
        group = f["model_weights"]
        values = {name: [np.asarray(group[name][w]) for w in group[name].attrs["weight_names"]]
                  for name in (spec["config"]["name"] for spec in layers)}
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((500, 16)) * 8).astype(F32)
    expected = x
    for spec in layers:  # a chain: each layer reads the one before
        c, w = spec["config"], values[spec["config"]["name"]]
        if spec["class_name"] == "FixedPointQuantizer":
            expected = gfixed_quantizer(expected, *w, c["RND"], c["SAT"])
        elif spec["class_name"] == "Dense":
            assert c["activation"] == "linear"
            expected = expected @ w[0] + w[1]
        else:
            assert c["activation"] == "relu"
            expected = np.maximum(expected, F32(0))
    np.testing.assert_array_equal(sr.compile(sr.load(path), backend="native").infer(x), expected)
