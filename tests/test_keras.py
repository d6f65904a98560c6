"""Keras 3 front end (torch backend): core layers and activations against ``model.predict``.

Every model is checked from the in-memory object and from the ``.keras`` and
``.h5`` files Keras writes (``check_keras`` in conftest), float32, at
rtol 1e-4 / atol 1e-5, on seeded random inputs with a batch of 3.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.conftest import random_array

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BATCH = 3


def _data(*shape: int, seed: int = 0) -> np.ndarray:
    return random_array((BATCH, *shape), seed=seed) * 2.0


def _seeded(model):
    """Keras initializes weights from a global seed; bias and BatchNorm statistics are set non-trivially."""
    rng = np.random.default_rng(7)
    for w in model.weights:
        value = keras.ops.convert_to_numpy(w)
        w.assign((value + 0.1 * rng.standard_normal(value.shape)).astype(value.dtype))
    return model


def test_activations(check_keras):
    names = ["relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax", "softplus", "softsign", "selu", "elu",
             "celu", "exponential", "leaky_relu", "silu", "swish", "gelu", "hard_sigmoid", "hard_silu", "hard_swish",
             "mish", "glu", "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "log_sigmoid", "squareplus",
             "sparse_plus", "sparse_sigmoid", "linear"]
    x = keras.Input((6,), name="x")
    model = keras.Model(x, [layers.Activation(n, name=n)(x) for n in names], name="activations")
    check_keras(model, _data(6))


def test_sparsemax_against_numpy():
    """keras.activations.sparsemax is wrong on the torch backend (rows need not sum to 1), so numpy is the reference."""
    x_in = keras.Input((6,), name="x")
    model = sr.load(keras.Model(x_in, layers.Activation("sparsemax")(x_in), name="sparsemax"))
    x = _data(6)
    z = -np.sort(-x, axis=-1)
    k = np.arange(1, 7)
    support = 1 + k * z > np.cumsum(z, axis=-1)
    tau = ((z * support).sum(-1, keepdims=True) - 1) / support.sum(-1, keepdims=True)
    got = sr.compile(model).infer(x)
    np.testing.assert_allclose(got, np.maximum(x - tau, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-5)


def test_dense_mlp_sequential(check_keras):
    model = _seeded(keras.Sequential([
        keras.Input((7,)), layers.Dense(16, activation="relu"), layers.Dropout(0.5), layers.GaussianNoise(0.3),
        layers.Dense(8, activation="tanh", use_bias=False), layers.Dense(2, activation="softmax"),
    ], name="mlp"))
    check_keras(model, _data(7))


def test_dense_on_sequences(check_keras):
    """Dense on rank-3 input acts on the last axis (MatMul + Add)."""
    x = keras.Input((5, 4), name="x")
    model = _seeded(keras.Model(x, layers.Dense(3, activation="sigmoid")(x), name="dense3d"))
    check_keras(model, _data(5, 4))


def test_activation_layers(check_keras):
    x = keras.Input((4, 6), name="x")
    outs = [
        layers.ReLU()(x), layers.ReLU(max_value=0.5)(x), layers.ReLU(negative_slope=0.1, threshold=0.3)(x),
        layers.ReLU(max_value=1.0, negative_slope=0.2)(x), layers.LeakyReLU(negative_slope=0.05)(x),
        layers.ELU(alpha=0.7)(x), layers.PReLU()(x), layers.PReLU(shared_axes=[1])(x), layers.Softmax()(x),
        layers.Softmax(axis=1)(x), layers.Softmax(axis=(1, 2))(x),
    ]
    model = _seeded(keras.Model(x, outs, name="activation_layers"))
    check_keras(model, _data(4, 6))


def test_shape_layers(check_keras):
    x = keras.Input((2, 3, 4), name="x")
    v = keras.Input((5,), name="v")
    outs = [
        layers.Flatten()(x), layers.Reshape((6, 4))(x), layers.Reshape((-1, 2))(x), layers.Permute((3, 1, 2))(x),
        layers.RepeatVector(3)(v),
    ]
    check_keras(keras.Model([x, v], outs, name="shapes"), [_data(2, 3, 4), _data(5, seed=1)])


def test_merge_layers(check_keras):
    a, b, c = (keras.Input((4, 5), name=n) for n in "abc")
    outs = [
        layers.Add()([a, b, c]), layers.Subtract()([a, b]), layers.Multiply()([a, b, c]), layers.Average()([a, b]),
        layers.Maximum()([a, b, c]), layers.Minimum()([a, c]), layers.Concatenate()([a, b]),
        layers.Concatenate(axis=1)([a, b, c]), layers.Dot(axes=(2, 2))([a, b]), layers.Dot(axes=1)([a, c]),
        layers.Dot(axes=2, normalize=True)([b, c]),
    ]
    check_keras(keras.Model([a, b, c], outs, name="merges"), [_data(4, 5, seed=s) for s in range(3)])


def test_dot_of_vectors(check_keras):
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    outs = [layers.Dot(axes=1)([a, b]), layers.Dot(axes=-1, normalize=True)([a, b])]
    check_keras(keras.Model([a, b], outs, name="dots"), [_data(6), _data(6, seed=1)])


def test_nested_model_and_shared_layer(check_keras):
    """A model used as a layer is inlined; a layer called twice is converted per call."""
    inner = _seeded(keras.Sequential([keras.Input((4,)), layers.Dense(6, activation="relu"), layers.Dense(3)],
                                     name="inner"))
    shared = layers.Dense(3, name="shared")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    y = layers.Add()([inner(a), inner(b), shared(inner(a)), shared(inner(b))])
    check_keras(_seeded(keras.Model([a, b], y, name="nested")), [_data(4), _data(4, seed=1)])


def test_names_and_shapes():
    x = keras.Input((7,), name="features")
    y = layers.Dense(2, name="score")(layers.Dense(5, name="hidden")(x))
    model = sr.load(keras.Model(x, [y, layers.Activation("linear", name="copy")(x)], name="my model"))
    assert model.name == "my_model"
    assert [(i.name, i.shape) for i in model.inputs] == [("features", ("N", 7))]
    assert [(o.name, o.shape) for o in model.outputs] == [("score", ("N", 2)), ("copy", ("N", 7))]
    assert "Keras" in model.ir.source


def test_unsupported_operations_are_listed():
    """keras.ops operations without a converter are refused, each listed with its nodes (every class of keras.layers
    that a model on the torch backend can hold converts)."""
    x = keras.Input((8, 8, 1), name="x")
    y = layers.Dense(3)(x)
    with pytest.raises(sr.UnsupportedOperatorError, match=r"(?s)keras\.ops\.Cumsum: 1 node.*keras\.ops\.Sort: 1 node"):
        sr.load(keras.Model(x, [keras.ops.sort(y), keras.ops.cumsum(y, axis=1)], name="ordered"))


def test_unconvertible_models(tmp_path):
    with pytest.raises(sr.ModelFormatError, match="no such file"):
        sr.load(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(sr.ModelFormatError, match="bad.keras"):
        sr.load(bad)
    with pytest.raises(sr.ModelFormatError, match="without an input shape"):
        sr.load(keras.Sequential([layers.Dense(2)]))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(sr.ModelFormatError, match="subclassed"):
        sr.load(Subclassed())


def test_lambda_layers_in_files_are_refused(tmp_path):
    """Safe mode: a file cannot make the loader run Python code."""
    x = keras.Input((3,), name="x")
    path = tmp_path / "lam.keras"
    keras.Model(x, layers.Lambda(lambda t: t * 2)(x)).save(path)
    with pytest.raises(sr.ModelFormatError, match="lam.keras"):
        sr.load(path)


def test_one_tensor_as_several_outputs(check_keras):
    """A GRU's last output and its state are one tensor in Keras; a Dropout output is its input: each output is named."""
    x = keras.Input((5, 3), name="x")
    y, state = layers.GRU(3, return_state=True, name="gru")(x)
    d = layers.Dense(2, name="head")(y)
    model = _seeded(keras.Model(x, [y, state, d, layers.Dropout(0.1, name="drop")(d)], name="shared_outputs"))
    assert [o.name for o in sr.load(model).outputs] == ["gru", "gru_2", "head", "drop"]
    check_keras(model, _data(5, 3), sources=("object",))


def test_masks_into_nested_models_are_refused():
    """Keras hands a nested model the mask of its input at run time, which its own graph does not show."""
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    inner = keras.Sequential([keras.Input((5, 4)), layers.LSTM(2)], name="inner")
    y = inner(layers.Embedding(10, 4, mask_zero=True, name="embed")(tokens))
    with pytest.raises(sr.UnsupportedOperatorError, match="with a mask.*'inner'"):
        sr.load(keras.Model(tokens, y, name="masked"))


def test_hostile_layer_names(check_keras):
    """Names reach the generated C++ only through its name table: quotes, newlines and code stay inert."""
    x = keras.Input((4,), name='in"put*\n#include <evil>')
    y = layers.Dense(3, name='dense"); system("rm -rf ~"); \\')(x)
    model = _seeded(keras.Model(x, y, name="model * int main"))
    assert sr.load(model).name == "model_int_main"
    check_keras(model, _data(4), sources=("object", "keras"))
