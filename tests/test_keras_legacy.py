"""``.h5`` files as Keras 2 (tf.keras 2.15) wrote them, read where Keras 3 can read them.

No TensorFlow is available to write such files, so they are written here
with h5py in Keras 2's layout: the model config (``batch_input_shape``,
``Functional`` with ``inbound_nodes``, BatchNormalization ``axis`` as a
list) as the ``model_config`` attribute, and one group per layer under
``model_weights`` naming its variables ``<layer>/<weight>:0``.  The reference
is Keras 3 reading the same file, and numpy for the MLP.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import sofie_rdf as sr

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

KERAS2 = {"keras_version": "2.15.0", "backend": "tensorflow"}


def _init(cls: str) -> dict:
    return {"class_name": cls, "config": {}}


def _common(name: str) -> dict:
    return {"name": name, "trainable": True, "dtype": "float32", "activity_regularizer": None}


def _dense(name: str, units: int, activation: str, **extra) -> dict:
    config = {**_common(name), "units": units, "activation": activation, "use_bias": True,
              "kernel_initializer": _init("GlorotUniform"), "bias_initializer": _init("Zeros"),
              "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
              **extra}
    return {"class_name": "Dense", "config": config}


def _input(name: str, shape: list) -> dict:
    return {"class_name": "InputLayer", "config": {"batch_input_shape": [None, *shape], "dtype": "float32",
                                                   "sparse": False, "ragged": False, "name": name}}


def _write_keras2_h5(path, config: dict, weights: dict[str, dict[str, np.ndarray]]) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"], f.attrs["backend"] = b"2.15.0", b"tensorflow"
        f.attrs["model_config"] = json.dumps({**config, **KERAS2}).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = np.array([name.encode() for name in weights])
        for layer, values in weights.items():
            g = group.create_group(layer)
            g.attrs["weight_names"] = np.array([f"{layer}/{w}:0".encode() for w in values])
            for w, value in values.items():
                g.create_dataset(f"{layer}/{w}:0", data=value)


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def test_keras2_sequential_mlp(tmp_path):
    rng = np.random.default_rng(0)
    w1, b1, w2, b2 = _normal(rng, 7, 16), _normal(rng, 16), _normal(rng, 16, 2), _normal(rng, 2)
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        _input("dense_input", [7]), _dense("dense", 16, "relu", batch_input_shape=[None, 7]),
        _dense("dense_1", 2, "softmax")]}}
    path = tmp_path / "keras2_mlp.h5"
    _write_keras2_h5(path, config, {"dense": {"kernel": w1, "bias": b1}, "dense_1": {"kernel": w2, "bias": b2}})
    x = _normal(rng, 3, 7)
    logits = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    got = sr.compile(sr.load(path)).infer(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, keras.saving.load_model(path, compile=False).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_keras2_functional_cnn(tmp_path):
    rng = np.random.default_rng(1)
    conv = {**_common("conv2d"), "filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
            "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu",
            "use_bias": True, "kernel_initializer": _init("GlorotUniform"), "bias_initializer": _init("Zeros"),
            "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    bn = {**_common("batch_normalization"), "axis": [3], "momentum": 0.99, "epsilon": 0.001, "center": True,
          "scale": True, "beta_initializer": _init("Zeros"), "gamma_initializer": _init("Ones"),
          "moving_mean_initializer": _init("Zeros"), "moving_variance_initializer": _init("Ones"),
          "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}
    flatten = {**_common("flatten"), "data_format": "channels_last"}

    def node(layer: dict, name: str, source: str | None) -> dict:
        return {**layer, "name": name, "inbound_nodes": [[[source, 0, 0, {}]]] if source else []}

    layer_list = [node(_input("image", [6, 6, 2]), "image", None),
                  node({"class_name": "Conv2D", "config": conv}, "conv2d", "image"),
                  node({"class_name": "BatchNormalization", "config": bn}, "batch_normalization", "conv2d"),
                  node({"class_name": "Flatten", "config": flatten}, "flatten", "batch_normalization"),
                  node(_dense("dense", 3, "sigmoid"), "dense", "flatten")]
    config = {"class_name": "Functional", "config": {"name": "model", "layers": layer_list,
                                                     "input_layers": [["image", 0, 0]],
                                                     "output_layers": [["dense", 0, 0]]}}
    path = tmp_path / "keras2_cnn.h5"
    _write_keras2_h5(path, config, {
        "conv2d": {"kernel": _normal(rng, 3, 3, 2, 4), "bias": _normal(rng, 4)},
        "batch_normalization": {"gamma": _normal(rng, 4), "beta": _normal(rng, 4), "moving_mean": _normal(rng, 4),
                                "moving_variance": np.abs(_normal(rng, 4)) + 0.5},
        "dense": {"kernel": _normal(rng, 144, 3), "bias": _normal(rng, 3)}})
    x = _normal(rng, 3, 6, 6, 2)
    expected = keras.saving.load_model(path, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(sr.compile(sr.load(path)).infer(x), expected, rtol=1e-4, atol=1e-5)
