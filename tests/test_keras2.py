"""Keras 2 files read by sofie-rdf's own reader (``sofie_rdf.parsers.keras.legacy``), Keras 3's loader bypassed.

The files are written with h5py in Keras 2's layouts (``tests/keras2_files.py``): full-model ``.h5`` and the
``model.json`` + ``save_weights`` pair, with the settings Keras 3 refuses or reads differently
(``SpatialDropout1D(noise_shape=...)``, ``time_major``, ``implementation``, BatchNormalization ``axis`` lists,
GRU configs without ``reset_after``, TensorFlow's ``hard_sigmoid``).  The reference is the equivalent Keras 3
model built in code with the same weights; tolerances as in the other Keras tests.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.conftest import ATOL, RTOL
from tests.keras2_files import (
    dense,
    functional,
    initializer,
    input_layer,
    layer,
    node,
    normal,
    sequential,
    write_json_and_weights,
    write_model_h5,
)

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BATCH = 3
POLICY = {"class_name": "Policy", "config": {"name": "float32"}}


def keras2_hard_sigmoid(x):
    """TensorFlow Keras 2's hard_sigmoid (Keras 3's is relu6(x + 3) / 6)."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def _reference(kmodel, weights: dict, x):
    """``kmodel.predict(x)`` with each layer given the arrays of ``weights[layer]`` (nested: ``inner/w:0`` names)."""
    for name, values in weights.items():
        target = kmodel.get_layer(name)
        if hasattr(target, "layers"):
            for inner in target.layers:
                own = [v for w, v in values.items() if w.split("/")[0] == inner.name]
                if own:
                    inner.set_weights(own)
        else:
            target.set_weights(list(values.values()))
    return kmodel.predict(x, verbose=0)


def _check(model: sr.Model, expected, *inputs, backend: str = "native") -> None:
    assert "Keras 2 file" in model.summary().splitlines()[0]
    got = sr.compile(model, backend=backend).infer(*inputs)
    for a, e in zip(got if isinstance(got, tuple) else [got], expected if isinstance(expected, list) else [expected]):
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL)


def _rnn(cls: str, name: str, units: int, **extra) -> dict:
    defaults = {"return_sequences": False}
    return layer(cls, name, units=units, activation="tanh", use_bias=True, dropout=0.0, recurrent_dropout=0.0,
                 return_state=False, go_backwards=False, stateful=False, time_major=False,
                 unroll=False, implementation=2, kernel_initializer=initializer("GlorotUniform"),
                 recurrent_initializer=initializer("Orthogonal"), bias_initializer=initializer("Zeros"),
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, **{**defaults, **extra})


def _batch_norm(name: str, axis: list) -> dict:
    return layer("BatchNormalization", name, axis=axis, momentum=0.99, epsilon=0.001, center=True, scale=True,
                 beta_initializer=initializer("Zeros"), gamma_initializer=initializer("Ones"),
                 moving_mean_initializer=initializer("Zeros"), moving_variance_initializer=initializer("Ones"))


def test_sequential_mlp_without_input_layer(tmp_path):
    """``batch_input_shape`` on the first layer (Keras before 2.4), Dropout with ``noise_shape``, TF hard_sigmoid,
    LeakyReLU ``alpha`` (Keras 3: ``negative_slope``) and a mixed-precision ``Policy`` dict as ``dtype``."""
    rng = np.random.default_rng(0)
    config = sequential("mlp", [dense("dense", 16, "linear", batch_input_shape=[None, 7]),
                                layer("LeakyReLU", "leaky_re_lu", alpha=0.1),
                                layer("Dropout", "dropout", rate=0.5, noise_shape=[None, 1], seed=None),
                                dense("dense_1", 8, "hard_sigmoid"), dense("dense_2", 3, "softmax", dtype=POLICY)])
    weights = {"dense": {"kernel": normal(rng, 7, 16), "bias": normal(rng, 16)},
               "dense_1": {"kernel": normal(rng, 16, 8), "bias": normal(rng, 8)},
               "dense_2": {"kernel": normal(rng, 8, 3), "bias": normal(rng, 3)}}
    path = tmp_path / "mlp.h5"
    write_model_h5(path, config, weights)
    x = normal(rng, BATCH, 7) * 3
    reference = keras.Sequential([keras.Input((7,)), layers.Dense(16, name="dense"), layers.LeakyReLU(0.1),
                                  layers.Dense(8, keras2_hard_sigmoid, name="dense_1"),
                                  layers.Dense(3, "softmax", name="dense_2")])
    model = sr.load(path)
    assert [i.name for i in model.inputs] == ["dense_input"]
    _check(model, _reference(reference, weights, x), x, backend="jit")


def test_functional_concatenate_two_inputs(tmp_path):
    """Two inputs, a Concatenate, and the single-output ``output_layers`` form of TensorFlow >= 2.4."""
    rng = np.random.default_rng(1)
    specs = [node(input_layer("jets", [4])), node(input_layer("leptons", [3])),
             node(dense("dense", 5, "relu"), "jets"),
             node(layer("Concatenate", "concatenate", axis=-1), "dense", "leptons"),
             node(dense("output", 2, "sigmoid"), "concatenate")]
    config = functional("two_inputs", specs, ["jets", "leptons"], [])
    config["config"]["output_layers"] = ["output", 0, 0]
    weights = {"dense": {"kernel": normal(rng, 4, 5), "bias": normal(rng, 5)},
               "output": {"kernel": normal(rng, 8, 2), "bias": normal(rng, 2)}}
    path = tmp_path / "two_inputs.h5"
    write_model_h5(path, config, weights)
    jets, leptons = keras.Input((4,), name="jets"), keras.Input((3,), name="leptons")
    merged = layers.Concatenate(name="concatenate")([layers.Dense(5, "relu", name="dense")(jets), leptons])
    reference = keras.Model([jets, leptons], layers.Dense(2, "sigmoid", name="output")(merged))
    x = [normal(rng, BATCH, 4), normal(rng, BATCH, 3)]
    _check(sr.load(path), _reference(reference, weights, x), *x)


def test_conv1d_batch_norm_pooling_spatial_dropout(tmp_path):
    """SpatialDropout1D with ``noise_shape`` (Keras 3's loader refuses the file) and BatchNormalization ``axis=[2]``."""
    rng = np.random.default_rng(2)
    conv = dict(filters=6, kernel_size=[3], strides=[1], padding="same", data_format="channels_last",
                dilation_rate=[1], groups=1, activation="relu", use_bias=True,
                kernel_initializer=initializer("GlorotUniform"), bias_initializer=initializer("Zeros"))
    config = sequential("conv1d", [
        input_layer("hits", [12, 4]), layer("Conv1D", "conv1d", **conv), _batch_norm("batch_normalization", [2]),
        layer("MaxPooling1D", "max_pooling1d", pool_size=[2], strides=[2], padding="valid",
              data_format="channels_last"),
        layer("SpatialDropout1D", "spatial_dropout1d", rate=0.2, noise_shape=None, seed=None),
        layer("GlobalAveragePooling1D", "global_average_pooling1d", data_format="channels_last", keepdims=False),
        dense("dense", 2, "linear")])
    weights = {"conv1d": {"kernel": normal(rng, 3, 4, 6), "bias": normal(rng, 6)},
               "batch_normalization": {"gamma": normal(rng, 6), "beta": normal(rng, 6),
                                       "moving_mean": normal(rng, 6), "moving_variance": np.abs(normal(rng, 6)) + 0.5},
               "dense": {"kernel": normal(rng, 6, 2), "bias": normal(rng, 2)}}
    path = tmp_path / "conv1d.h5"
    write_model_h5(path, config, weights)
    with pytest.raises(Exception, match="noise_shape"):
        keras.saving.load_model(path, compile=False)
    reference = keras.Sequential([
        keras.Input((12, 4)), layers.Conv1D(6, 3, padding="same", activation="relu", name="conv1d"),
        layers.BatchNormalization(name="batch_normalization"), layers.MaxPooling1D(2),
        layers.SpatialDropout1D(0.2), layers.GlobalAveragePooling1D(), layers.Dense(2, name="dense")])
    x = normal(rng, BATCH, 12, 4)
    _check(sr.load(path), _reference(reference, weights, x), x)


def test_lstm_and_gru(tmp_path):
    """TF hard_sigmoid gates, ``time_major``/``implementation`` keys, a Bidirectional wrapper (its layer a config),
    and a GRU from before ``reset_after``."""
    rng = np.random.default_rng(3)
    lstm = _rnn("LSTM", "lstm", 4, recurrent_activation="hard_sigmoid", unit_forget_bias=True, return_sequences=True)
    gru = _rnn("GRU", "gru", 3, recurrent_activation="sigmoid", reset_after=True, return_sequences=True)
    bidirectional = layer("Bidirectional", "bidirectional", layer=gru, merge_mode="concat")
    old_gru = _rnn("GRU", "gru_1", 2, recurrent_activation="sigmoid")
    config = sequential("rnn", [input_layer("sequence", [5, 3]), lstm, bidirectional, old_gru,
                                dense("dense", 1, "linear")])
    halves = {f"{d}_gru/gru_cell/{w}": normal(rng, *shape) for d in ("forward", "backward")
              for w, shape in (("kernel", (4, 9)), ("recurrent_kernel", (3, 9)), ("bias", (2, 9)))}
    weights = {"lstm": {"lstm_cell/kernel": normal(rng, 3, 16), "lstm_cell/recurrent_kernel": normal(rng, 4, 16),
                        "lstm_cell/bias": normal(rng, 16)},
               "bidirectional": halves,
               "gru_1": {"gru_cell_1/kernel": normal(rng, 6, 6), "gru_cell_1/recurrent_kernel": normal(rng, 2, 6),
                         "gru_cell_1/bias": normal(rng, 6)},
               "dense": {"kernel": normal(rng, 2, 1), "bias": normal(rng, 1)}}
    path = tmp_path / "rnn.h5"
    write_model_h5(path, config, weights)
    reference = keras.Sequential([
        keras.Input((5, 3)), layers.LSTM(4, recurrent_activation=keras2_hard_sigmoid, return_sequences=True,
                                          name="lstm"),
        layers.Bidirectional(layers.GRU(3, return_sequences=True), name="bidirectional"),
        layers.GRU(2, reset_after=False, name="gru_1"),
        layers.Dense(1, name="dense")])
    x = normal(rng, BATCH, 5, 3)
    _check(sr.load(path), _reference(reference, weights, x), x)


def test_json_and_weights_pair_with_nested_model(tmp_path):
    """``to_json`` + ``save_weights``; a nested Sequential (outer calls of a nested model count from node 1)."""
    rng = np.random.default_rng(4)
    encoder = sequential("encoder", [input_layer("encoder_input", [6]), dense("dense", 5, "relu"),
                                     dense("dense_1", 4, "tanh")])
    outer_dense = node(dense("head", 2, "linear"), "encoder")
    outer_dense["inbound_nodes"] = [[["encoder", 1, 0, {}]]]
    config = functional("tagger", [node(input_layer("x", [6])), node(encoder, "x"), outer_dense], ["x"], ["head"])
    weights = {"encoder": {"dense/kernel:0": normal(rng, 6, 5), "dense/bias:0": normal(rng, 5),
                           "dense_1/kernel:0": normal(rng, 5, 4), "dense_1/bias:0": normal(rng, 4)},
               "head": {"kernel": normal(rng, 4, 2), "bias": normal(rng, 2)}}
    json_path, weights_path = tmp_path / "tagger.json", tmp_path / "tagger_weights.h5"
    write_json_and_weights(json_path, weights_path, config, weights)
    inner = keras.Sequential([keras.Input((6,)), layers.Dense(5, "relu", name="dense"),
                              layers.Dense(4, "tanh", name="dense_1")], name="encoder")
    x_in = keras.Input((6,), name="x")
    reference = keras.Model(x_in, layers.Dense(2, name="head")(inner(x_in)))
    x = normal(rng, BATCH, 6)
    model = sr.load(json_path, weights=weights_path)
    assert model.name == "tagger"
    _check(model, _reference(reference, weights, x), x)


def test_lambda_refused_naming_model_and_layer(tmp_path):
    lam = layer("Lambda", "scale_by_two", function=["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAA==", None, None],
                function_type="lambda", module="__main__", output_shape=None, arguments={})
    path = tmp_path / "with_lambda.h5"
    write_model_h5(path, sequential("with_lambda", [input_layer("x", [3]), lam, dense("dense", 1, "linear")]),
                   {"dense": {"kernel": np.ones((3, 1), np.float32), "bias": np.zeros(1, np.float32)}})
    with pytest.raises(sr.UnsupportedOperatorError, match="Lambda") as info:
        sr.load(path)
    assert "'with_lambda'" in str(info.value) and "'scale_by_two'" in str(info.value)


def test_time_major_refused_naming_the_layer(tmp_path):
    path = tmp_path / "time_major.h5"
    lstm = _rnn("LSTM", "lstm", 2, recurrent_activation="sigmoid", unit_forget_bias=True)
    lstm["config"]["time_major"] = True
    write_model_h5(path, sequential("time_major", [input_layer("x", [4, 3]), lstm]), {"lstm": {}})
    with pytest.raises(sr.ModelFormatError, match=r"'time_major'.*'lstm' \(LSTM\).*time_major=True"):
        sr.load(path)


def test_weights_only_files_need_their_architecture(tmp_path):
    json_path, weights_path = tmp_path / "net.json", tmp_path / "net_weights.h5"
    write_json_and_weights(json_path, weights_path, sequential("net", [input_layer("x", [2]), dense("d", 1, "relu")]),
                           {"d": {"kernel": np.ones((2, 1), np.float32), "bias": np.zeros(1, np.float32)}})
    with pytest.raises(sr.ModelFormatError, match="weights only"):
        sr.load(weights_path)
    with pytest.raises(sr.ModelFormatError, match="architecture only"):
        sr.load(json_path)
