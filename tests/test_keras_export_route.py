"""Keras 3 front end (torch backend): user code (Lambda, custom layers, subclassed models) through torch's exporter.

Each model is compared with ``model.predict`` (rtol 1e-4 / atol 1e-5) at two batch sizes from one compiled
session, so the batch dim stays symbolic; the warning naming the routed layers is checked, and so is the error
when torch's exporter cannot read the user's code either.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.test_keras import _seeded

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
layers = keras.layers
KerasExportWarning = pytest.importorskip("sofie_rdf.parsers.keras.export_route").KerasExportWarning

RTOL, ATOL = 1e-4, 1e-5
BATCHES = (2, 5)


def _inputs(shapes: list[tuple], batch: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + batch)
    return [rng.standard_normal((batch, *shape)).astype(np.float32) for shape in shapes]


def _check(kmodel, shapes: list[tuple], routed: str) -> sr.Model:
    """Load ``kmodel`` (warning naming ``routed``), then compare with Keras at each batch size of ``BATCHES``."""
    with pytest.warns(KerasExportWarning, match=routed):
        model = sr.load(kmodel)
    assert model.inputs[0].shape[0] == "N"
    session = sr.compile(model)
    for batch in BATCHES:
        inputs = _inputs(shapes, batch)
        expected = kmodel.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
        got = session.infer(*inputs)
        got = list(got) if isinstance(got, tuple) else [got]
        assert len(got) == len(expected)
        for k, (g, e) in enumerate(zip(got, expected)):
            assert g.shape == e.shape, f"batch {batch}, output {k}: {g.shape} != {e.shape}"
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"batch {batch}, output {k}")
    return model


class ScaledMatmul(layers.Layer):
    """A custom layer with weights: ``x @ kernel * scale + bias``."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) * self.scale + self.bias


class Gated(keras.Model):
    """A subclassed model: two Dense layers and a gate between them, in Python."""

    def __init__(self):
        super().__init__(name="gated")
        self.hidden = layers.Dense(6, name="hidden")
        self.head = layers.Dense(3, name="head")

    def call(self, x):
        h = self.hidden(x)
        return self.head(h * keras.ops.sigmoid(h))


class DataDependent(layers.Layer):
    """Python control flow on a tensor's values: torch.export cannot trace it."""

    def call(self, x):
        if float(keras.ops.sum(x)) > 0:
            return x * 2
        return x


def test_lambda_layer():
    x = keras.Input((4,), name="features")
    h = layers.Dense(5, name="dense")(x)
    y = layers.Lambda(lambda t: keras.ops.sin(t) * 2, name="wave")(h)
    model = _check(_seeded(keras.Model(x, [y, h], name="with_lambda")), [(4,)], r"'wave' \(keras.layers.Lambda\)")
    assert [i.name for i in model.inputs] == ["features"]
    assert [o.name for o in model.outputs] == ["wave", "dense"]
    assert "through" in model.ir.source and "Keras" in model.ir.source


def test_custom_layer_with_weights():
    x = keras.Input((6,), name="x")
    y = ScaledMatmul(3, name="scaled")(layers.Dense(6, activation="relu", name="dense")(x))
    _check(_seeded(keras.Model(x, y, name="custom_layer")), [(6,)], "'scaled'.*ScaledMatmul")


def test_subclassed_model():
    model = Gated()
    model(np.zeros((2, 4), np.float32))
    _seeded(model)
    loaded = _check(model, [(4,)], "subclassed keras.Model Gated")
    assert [o.name for o in loaded.outputs] == ["output_0"]


def test_converted_layers_with_custom_layer_and_lstm():
    steps = keras.Input((3, 2), name="steps")
    extra = keras.Input((4,), name="extra")
    seq = layers.LSTM(4, name="lstm")(steps)
    mixed = layers.Concatenate(name="concat")([seq, layers.Dense(4, activation="tanh", name="embed")(extra)])
    y = ScaledMatmul(2, name="custom")(mixed)
    kmodel = _seeded(keras.Model([steps, extra], [layers.Dense(1, name="score")(y), y], name="mixed"))
    model = _check(kmodel, [(3, 2), (4,)], "'custom'")
    assert [i.name for i in model.inputs] == ["steps", "extra"]
    assert [o.name for o in model.outputs] == ["score", "custom"]


def test_route_failure_names_the_layer():
    x = keras.Input((3,), name="x")
    y = DataDependent(name="branchy")(layers.Dense(3, name="dense")(x))
    with pytest.raises(sr.UnsupportedOperatorError, match=r"(?s)'branchy'.*torch.onnx.export.*failed") as info:
        sr.load(keras.Model(x, y, name="data_dependent"))
    assert info.value.unsupported == {"keras.layers.DataDependent": ["branchy"]}
    assert "data_dependent" in str(info.value)
    assert "data-dependent" in info.value.cause and "keras.ops.sum" in info.value.cause  # torch's root cause, the line


def test_built_in_layers_without_converter_stay_refused():
    """The route is for user code; a Keras layer we lack a converter for is named, as before."""
    x = keras.Input((4,), name="x")
    with pytest.raises(sr.UnsupportedOperatorError, match="keras.ops.Cumprod") as info:
        sr.load(keras.Model(x, keras.ops.cumprod(x, axis=-1)))
    assert not hasattr(info.value, "cause")


def test_lambda_in_files_stays_refused(tmp_path):
    x = keras.Input((3,), name="x")
    path = tmp_path / "lam.keras"
    keras.Model(x, layers.Lambda(lambda t: t * 2)(x)).save(path)
    with pytest.raises(sr.ModelFormatError, match="lam.keras"):
        sr.load(path)
