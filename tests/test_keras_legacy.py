"""``.h5`` files as Keras 2 (tf.keras 2.15) wrote them, read where Keras 3 can read them.

No TensorFlow is available to write such files, so they are written here
with h5py in Keras 2's layout: the model config (``batch_input_shape``,
``Functional`` with ``inbound_nodes``, BatchNormalization ``axis`` as a
list) as the ``model_config`` attribute, and one group per layer under
``model_weights`` naming its variables ``<layer>/<weight>:0``
(``tests/keras2_files.py``).  sofie-rdf reads them with its own Keras 2
reader (``sofie_rdf.parsers.keras.legacy``); the reference is Keras 3
reading the same file, and numpy for the MLP.  More Keras 2 files, those
Keras 3 refuses among them, are in ``test_keras2.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.keras2_files import common, dense, initializer, input_layer, normal, write_model_h5

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_keras2_sequential_mlp(tmp_path):
    rng = np.random.default_rng(0)
    w1, b1, w2, b2 = normal(rng, 7, 16), normal(rng, 16), normal(rng, 16, 2), normal(rng, 2)
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        input_layer("dense_input", [7]), dense("dense", 16, "relu", batch_input_shape=[None, 7]),
        dense("dense_1", 2, "softmax")]}}
    path = tmp_path / "keras2_mlp.h5"
    write_model_h5(path, config, {"dense": {"kernel": w1, "bias": b1}, "dense_1": {"kernel": w2, "bias": b2}})
    x = normal(rng, 3, 7)
    logits = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    got = sr.compile(sr.load(path)).infer(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, keras.saving.load_model(path, compile=False).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_keras2_functional_cnn(tmp_path):
    rng = np.random.default_rng(1)
    conv = {**common("conv2d"), "filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
            "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu",
            "use_bias": True, "kernel_initializer": initializer("GlorotUniform"), "bias_initializer": initializer("Zeros"),
            "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    bn = {**common("batch_normalization"), "axis": [3], "momentum": 0.99, "epsilon": 0.001, "center": True,
          "scale": True, "beta_initializer": initializer("Zeros"), "gamma_initializer": initializer("Ones"),
          "moving_mean_initializer": initializer("Zeros"), "moving_variance_initializer": initializer("Ones"),
          "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}
    flatten = {**common("flatten"), "data_format": "channels_last"}

    def node(layer: dict, name: str, source: str | None) -> dict:
        return {**layer, "name": name, "inbound_nodes": [[[source, 0, 0, {}]]] if source else []}

    layer_list = [node(input_layer("image", [6, 6, 2]), "image", None),
                  node({"class_name": "Conv2D", "config": conv}, "conv2d", "image"),
                  node({"class_name": "BatchNormalization", "config": bn}, "batch_normalization", "conv2d"),
                  node({"class_name": "Flatten", "config": flatten}, "flatten", "batch_normalization"),
                  node(dense("dense", 3, "sigmoid"), "dense", "flatten")]
    config = {"class_name": "Functional", "config": {"name": "model", "layers": layer_list,
                                                     "input_layers": [["image", 0, 0]],
                                                     "output_layers": [["dense", 0, 0]]}}
    path = tmp_path / "keras2_cnn.h5"
    write_model_h5(path, config, {
        "conv2d": {"kernel": normal(rng, 3, 3, 2, 4), "bias": normal(rng, 4)},
        "batch_normalization": {"gamma": normal(rng, 4), "beta": normal(rng, 4), "moving_mean": normal(rng, 4),
                                "moving_variance": np.abs(normal(rng, 4)) + 0.5},
        "dense": {"kernel": normal(rng, 144, 3), "bias": normal(rng, 3)}})
    x = normal(rng, 3, 6, 6, 2)
    expected = keras.saving.load_model(path, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(sr.compile(sr.load(path)).infer(x), expected, rtol=1e-4, atol=1e-5)
