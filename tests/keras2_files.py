"""Keras 2 (tf.keras 2.15) model files written with h5py, for tests that have no TensorFlow to write them.

Configurations are the JSON Keras 2's ``get_config`` produces (``batch_input_shape``, ``Functional`` with
``inbound_nodes`` in list form, initializers as ``{"class_name", "config"}``); the files are laid out as
``model.save("m.h5")`` (``model_config`` attribute, weights under ``model_weights``), ``model.save_weights``
(layer groups at the root) and ``model.to_json()`` wrote them.  Weights are ``{layer: {weight: array}}`` in the
order Keras 2 saves them, weight ``w`` of layer ``l`` stored as ``l/w:0`` (a name ending in ``:0`` as it is:
a nested model's weights are named after its inner layers).
"""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

KERAS2 = {"keras_version": "2.15.0", "backend": "tensorflow"}

Weights = dict[str, dict[str, np.ndarray]]


def initializer(cls: str) -> dict:
    return {"class_name": cls, "config": {}}


def common(name: str) -> dict:
    """The keys every Keras 2 layer config has."""
    return {"name": name, "trainable": True, "dtype": "float32", "activity_regularizer": None}


def layer(cls: str, name: str, **config: Any) -> dict:
    """A ``{"class_name", "config"}`` layer spec with the common keys."""
    return {"class_name": cls, "config": {**common(name), **config}}


def dense(name: str, units: int, activation: str, **extra: Any) -> dict:
    return layer("Dense", name, units=units, activation=activation, use_bias=True,
                 kernel_initializer=initializer("GlorotUniform"), bias_initializer=initializer("Zeros"),
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None, **extra)


def input_layer(name: str, shape: list) -> dict:
    return {"class_name": "InputLayer", "config": {"batch_input_shape": [None, *shape], "dtype": "float32",
                                                   "sparse": False, "ragged": False, "name": name}}


def node(spec: dict, *sources: str, kwargs: Optional[dict] = None) -> dict:
    """A Functional model's entry for ``spec``, called once on the node-0 outputs of the layers ``sources``."""
    inbound = [[[s, 0, 0, kwargs or {}] for s in sources]] if sources else []
    return {**spec, "name": spec["config"]["name"], "inbound_nodes": inbound}


def functional(name: str, layers: list[dict], inputs: list[str], outputs: list[str]) -> dict:
    return {"class_name": "Functional", "config": {"name": name, "layers": layers,
                                                   "input_layers": [[i, 0, 0] for i in inputs],
                                                   "output_layers": [[o, 0, 0] for o in outputs]}}


def sequential(name: str, layers: list[dict]) -> dict:
    return {"class_name": "Sequential", "config": {"name": name, "layers": layers}}


def _write_weights(group: Any, weights: Weights) -> None:
    group.attrs["layer_names"] = np.array([name.encode() for name in weights])
    for layer_name, values in weights.items():
        g = group.create_group(layer_name)
        names = [w if w.endswith(":0") else f"{layer_name}/{w}:0" for w in values]
        g.attrs["weight_names"] = np.array([n.encode() for n in names])
        for n, value in zip(names, values.values()):
            g.create_dataset(n, data=value)


def _stamp(f: Any) -> None:
    f.attrs["keras_version"], f.attrs["backend"] = KERAS2["keras_version"].encode(), KERAS2["backend"].encode()


def write_model_h5(path: Any, config: dict, weights: Weights) -> None:
    """``model.save("m.h5")``: the config as an attribute, the weights under ``model_weights``."""
    import h5py

    with h5py.File(path, "w") as f:
        _stamp(f)
        f.attrs["model_config"] = json.dumps({**config, **KERAS2}).encode()
        _write_weights(f.create_group("model_weights"), weights)


def write_json_and_weights(json_path: Any, weights_path: Any, config: dict, weights: Weights) -> None:
    """``model.to_json()`` and ``model.save_weights("w.h5")``: layer groups at the root of the weights file."""
    import h5py

    json_path.write_text(json.dumps({**config, **KERAS2}))
    with h5py.File(weights_path, "w") as f:
        _stamp(f)
        _write_weights(f, weights)


def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)
