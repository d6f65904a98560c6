"""Keras 2 files read without Keras 3's loader: full-model ``.h5`` and the ``model.json`` + weights ``.h5`` pair.

Keras 3 refuses many Keras 2 files (``SpatialDropout1D(noise_shape=...)``,
``time_major`` and ``implementation`` keys, dtype policy dicts, ...), and
HEP repositories often ship only ``model.to_json()`` with
``model.save_weights()``.  This module reads the architecture JSON itself,
rewrites each layer's Keras 2 configuration into the arguments the Keras 3
layer class takes, builds those layers into a Keras 3 Functional model on
symbolic inputs, and assigns the weights read with h5py.  That model then
goes through the same converters as any Keras 3 model: a Keras 2 layer is
supported exactly when its Keras 3 class is.  QKeras layers are read as the
Keras 3 layers they quantize, with their quantizers (:mod:`.qkeras`); hls4ml's
GarNet and GarNetStack, and HGQ's FixedPointQuantizer, as layers computing what
theirs do (:mod:`.garnet`, :mod:`.hgq`).

Settings that only matter for training (initializers, regularizers,
constraints, ``noise_shape``, ``implementation``, ...) are dropped; settings
whose inference meaning Keras 3 cannot express (``time_major=True``,
batch renormalization) are refused.  ``Lambda`` layers are refused: their
code is a marshalled Python function, which is never run.
"""

from __future__ import annotations

import json
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from ...errors import ModelFormatError, UnsupportedOperatorError
from . import garnet, hgq, qkeras
from .registry import CONVERTERS

# Classes a Keras 2 config uses for a model nested as a layer.
MODEL_CLASSES = ("Sequential", "Functional", "Model")

# Configuration keys with no effect on inference, absent from (or refused by) the Keras 3 layer classes.
_TRAINING_ONLY = frozenset({"batch_input_shape", "input_shape", "batch_size", "implementation",
                            "noise_shape", "input_length", "fused", "virtual_batch_size", "adjustment",
                            "renorm_clipping", "renorm_momentum", "zero_output_for_mask", "activity_regularizer",
                            "trainable"})
_TRAINING_SUFFIXES = ("_initializer", "_regularizer", "_constraint")

# Keys Keras 3 accepts only at one value (the one Keras 3 always computes with).
_REQUIRED = {"time_major": False, "renorm": False}

# Custom layer classes of HEP libraries (which need TensorFlow) -> the function building the Keras 3 layer that
# computes what theirs does.
CUSTOM = {**{cls: garnet.make_layer for cls in garnet.CLASSES}, **{cls: hgq.make_layer for cls in hgq.CLASSES}}

# Per class: Keras 2 key -> Keras 3 key.
_RENAMED = {"LeakyReLU": {"alpha": "negative_slope"}}



def is_keras2_h5(path: Path) -> bool:
    """Whether an HDF5 file was written by Keras 2 (its ``keras_version`` attribute says so)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _text(f.attrs.get("keras_version", "")).startswith("2")
    except OSError:
        return False  # not HDF5: Keras 3's loader reports what it is


def read_keras2(path: Path, weights: Optional[Path], keras: Any) -> Any:
    """The Keras 3 Functional model equivalent to a Keras 2 ``.h5`` file or ``.json`` + weights ``.h5`` pair."""
    label = path.stem
    if path.suffix.lower() == ".json":
        if weights is None:
            raise ModelFormatError(f"Keras model {label!r}: {path.name} holds the architecture only; "
                                   "pass the weights file too (sr.load('model.json', weights='weights.h5'))")
        spec, values = _json_spec(path, label), _h5_weights(weights, label)
    else:
        spec, values = _h5_spec(path, label), _h5_weights(path, label)
    _check_supported(spec, label)
    model = _build(spec, label, keras)
    _assign_model(model, values, label)
    return model


def is_qkeras_archive(path: Path) -> bool:
    """Whether ``path`` is a Keras 3 ``.keras`` archive whose config.json holds QKeras layers (saved by QKeras on
    Keras 3: Keras's loader cannot deserialize them without QKeras, which needs TensorFlow)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            spec = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False
    found: list[str] = []

    def visit(model_spec: dict) -> None:
        for layer in _layer_specs(model_spec) if isinstance(model_spec.get("config"), (dict, list)) else []:
            if layer.get("class_name") in MODEL_CLASSES:
                visit(layer)
            elif str(layer.get("module", "")).startswith("qkeras") or layer.get("class_name") in qkeras.LAYERS:
                found.append(layer["class_name"])

    visit(spec)
    return bool(found)


def read_keras3_archive(path: Path, keras: Any) -> Any:
    """The Keras 3 Functional model equivalent to a ``.keras`` archive holding QKeras layers.

    Its config.json is Keras 3's serialization (DTypePolicy dicts, ``batch_shape``, Functional inbound nodes as
    ``{"args", "kwargs"}`` of ``__keras_tensor__`` dicts), read as a Keras 2 config once those nodes are written
    in Keras 2's list form; its ``model.weights.h5`` holds each layer's variables under
    ``layers/<path>/vars/<i>``, the ``vars`` group naming the layer.  Nested models are refused.
    """
    import io
    import zipfile

    label = path.stem
    with zipfile.ZipFile(path) as archive:
        spec = json.loads(archive.read("config.json"))
        try:
            weights = archive.read("model.weights.h5")
        except KeyError:
            raise ModelFormatError(f"Keras model {label!r}: {path.name} holds no model.weights.h5") from None
    spec = _keras2_form(spec, label)
    _check_supported(spec, label)
    model = _build(spec, label, keras)
    _assign_model(model, _keras3_weights(io.BytesIO(weights), spec, label), label)
    return model


def _keras2_form(spec: dict, label: str) -> dict:
    """A Keras 3 Sequential or Functional config with its Functional inbound nodes in Keras 2's list form."""
    layers = []
    for layer in _layer_specs(spec):
        if layer.get("class_name") in MODEL_CLASSES:
            raise ModelFormatError(f"Keras model {label!r}: nested model {layer['config'].get('name')!r} in a Keras 3 "
                                   "archive of QKeras layers is not supported; save the flat model")
        nodes = layer.get("inbound_nodes", [])
        layers.append({**layer, "inbound_nodes": [_keras2_node(n, label) if isinstance(n, dict) else n for n in nodes]})
    config = spec["config"]
    return {**spec, "config": layers if isinstance(config, list) else {**config, "layers": layers}}


def _keras2_node(node: dict, label: str) -> list:
    """``{"args": [...], "kwargs": {...}}`` as Keras 2's ``[[layer, node, tensor, kwargs], ...]``."""
    def refs(value: Any) -> Any:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return list(value["config"]["keras_history"])
        if isinstance(value, dict):
            return {k: refs(v) for k, v in value.items()}
        return [refs(v) for v in value] if isinstance(value, list) else value

    args = node.get("args", [])
    tensors = [refs(t) for t in (args[0] if len(args) == 1 and isinstance(args[0], list) else args)]
    if not tensors or not all(_is_ref(t) for t in tensors):
        raise ModelFormatError(f"Keras model {label!r}: a layer call with positional arguments other than tensors "
                               f"({json.dumps(args)[:200]}) is not supported")
    kwargs = refs(node.get("kwargs", {}))
    return [[*t, kwargs if k == len(tensors) - 1 else {}] for k, t in enumerate(tensors)]


def _keras3_weights(source: Any, spec: dict, label: str) -> SavedWeights:
    """Each layer's saved variables by layer name (the ``name`` attribute of its ``vars`` group)."""
    import h5py

    found: SavedWeights = {}
    with h5py.File(source, "r") as f:
        if "layers" not in f:
            return found
        for key, group in f["layers"].items():
            variables = group.get("vars")
            if variables is None:
                continue
            if "name" not in variables.attrs:
                raise ModelFormatError(f"Keras model {label!r}: the weights of {key!r} do not name their layer (no "
                                       "'name' attribute on its vars group), so they cannot be matched to a layer")
            found[_text(variables.attrs["name"])] = [(f"{key}/vars/{i}", np.asarray(variables[str(i)]))
                                                     for i in range(len(variables))]
    return found


# ---- files ------------------------------------------------------------------------------------------------------

# Layer name -> its ``(weight name, value)`` pairs, in the order Keras 2 saved them.
SavedWeights = dict[str, list[tuple[str, np.ndarray]]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _json_spec(path: Path, label: str) -> dict:
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"cannot read Keras model {str(path)!r}: {exc}") from None
    if _text(spec.get("keras_version", "2")).startswith("3"):
        raise ModelFormatError(f"Keras model {label!r}: {path.name} is a Keras 3 architecture JSON; "
                               "save the model as a .keras file and load that")
    return spec


def _h5_spec(path: Path, label: str) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise ModelFormatError(f"Keras model {label!r}: {path.name} holds weights only (model.save_weights); "
                                   "load its architecture JSON with sr.load('model.json', weights=...)")
        return json.loads(_text(f.attrs["model_config"]))


def _h5_weights(path: Path, label: str) -> SavedWeights:
    """The weights of a full-model file (under ``model_weights``) or a ``save_weights`` file (at the root)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _layer_weights(f["model_weights"] if "model_weights" in f else f, label)
    except OSError as exc:
        raise ModelFormatError(f"Keras model {label!r}: cannot read weights file {str(path)!r}: {exc}") from None


def _layer_weights(group: Any, label: str) -> SavedWeights:
    if "layer_names" not in group.attrs:
        raise ModelFormatError(f"Keras model {label!r}: the weights group has no 'layer_names' attribute")
    found = {}
    for layer in map(_text, group.attrs["layer_names"]):
        g = group[layer]
        names = [_text(n) for n in g.attrs.get("weight_names", [])]
        found[layer] = [(n, np.asarray(g[n])) for n in names]
    return found


# ---- supported layers -------------------------------------------------------------------------------------------


def _layer_specs(spec: dict) -> list[dict]:
    """The layer specs of a Sequential (config a list, or a dict with ``layers``) or Functional config."""
    config = spec["config"]
    return list(config if isinstance(config, list) else config["layers"])


def _check_supported(spec: dict, label: str) -> None:
    """Every layer class without a converter (nested models searched), all reported at once."""
    missing: dict[str, list[str]] = {}

    def visit(model_spec: dict) -> None:
        for layer in _layer_specs(model_spec):
            cls, name = layer["class_name"], layer["config"].get("name", "?")
            if cls in MODEL_CLASSES:
                visit(layer)
            elif cls == "Lambda":
                missing.setdefault("keras.layers.Lambda (its Python code is marshalled in the file and is "
                                   "never run; replace it with built-in layers)", []).append(name)
            elif cls != "InputLayer" and cls not in CONVERTERS and cls not in qkeras.LAYERS and cls not in CUSTOM:
                missing.setdefault(f"keras.layers.{cls}", []).append(name)

    visit(spec)
    if missing:
        raise UnsupportedOperatorError(label, missing)


# ---- layer configurations ---------------------------------------------------------------------------------------


def keras3_config(cls: str, config: dict, keras: Any) -> dict:
    """A Keras 2 layer configuration as keyword arguments of the Keras 3 class (wrapped layers built)."""
    out = {}
    for key, value in config.items():
        if key in _REQUIRED:
            if value != _REQUIRED[key]:
                raise ValueError(f"{key}={value!r} is not supported (Keras 3 has only {key}={_REQUIRED[key]!r})")
        elif key not in _TRAINING_ONLY and not key.endswith(_TRAINING_SUFFIXES):
            out[_RENAMED.get(cls, {}).get(key, key)] = _value(key, value, keras)
    if cls == "BatchNormalization":
        out["axis"] = _single_axis(out.get("axis", -1))
    if cls in ("GRU", "GRUCell"):
        out.setdefault("reset_after", False)  # Keras before 2.3 had no reset_after and computed it so
    return out


def _value(key: str, value: Any, keras: Any) -> Any:
    if key == "dtype" and isinstance(value, dict):
        return value["config"]["name"]  # a mixed-precision Policy
    if key in ("layer", "backward_layer", "cell") and isinstance(value, dict):
        return make_layer(value, keras)
    if key.endswith("activation") and value == "hard_sigmoid":
        return hard_sigmoid_keras2
    return value


def _single_axis(axis: Any) -> int:
    if not isinstance(axis, (list, tuple)):
        return int(axis)
    if len(axis) != 1:
        raise ValueError(f"BatchNormalization over several axes {list(axis)} is not supported")
    return int(axis[0])


def hard_sigmoid_keras2(x: Any) -> Any:
    """Keras 2's (TensorFlow's) hard_sigmoid, which Keras 2 configs mean by "hard_sigmoid".

    Keras 3's hard_sigmoid is ``relu6(x + 3) / 6``; the converters know this one by its function name.
    """
    from keras import ops

    return ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def make_layer(spec: dict, keras: Any) -> Any:
    """A Keras 3 layer object from one Keras 2 ``{"class_name", "config"}`` spec."""
    cls, config, quantizers = spec["class_name"], spec["config"], {}
    if cls in CUSTOM:  # a layer class of hls4ml or HGQ: its computation rebuilt on Keras 3
        return CUSTOM[cls](cls, config, keras)
    if cls in qkeras.LAYERS:  # the Keras 3 layer it quantizes, with its quantizers
        cls, config, quantizers = qkeras.keras3_spec(cls, config)
    layer_class = getattr(keras.layers, cls, None)
    if layer_class is None:
        raise ValueError(f"Keras 3 has no layer class {cls!r}")
    layer = layer_class(**keras3_config(cls, config, keras))
    if quantizers:
        layer.qkeras_weights = quantizers  # applied to the saved weights (_assign_layer)
    return layer


# ---- graphs -----------------------------------------------------------------------------------------------------


def _build(spec: dict, label: str, keras: Any) -> Any:
    """A Keras 3 Functional model from a Sequential or Functional Keras 2 spec (nested models included)."""
    cls = spec["class_name"]
    if cls == "Sequential":
        return _sequential(spec, label, keras)
    if cls in ("Functional", "Model"):
        return _functional(spec, label, keras)
    raise ModelFormatError(f"Keras model {label!r}: a {cls} cannot be read from a Keras 2 file "
                           "(only Sequential and Functional models have a stored graph)")


@contextmanager
def _about(label: str, name: str, cls: str) -> Iterator[None]:
    """Errors from Keras while building or calling a layer, as a ModelFormatError naming the model and layer."""
    try:
        yield
    except (ModelFormatError, UnsupportedOperatorError):
        raise
    except Exception as exc:  # Keras raises ValueError, TypeError, ... for arguments and inputs it refuses
        raise ModelFormatError(f"Keras model {label!r}: layer {name!r} ({cls}): {type(exc).__name__}: {exc}") from exc


def _layer_or_model(spec: dict, label: str, keras: Any) -> Any:
    with _about(label, spec["config"].get("name", spec.get("name", "?")), spec["class_name"]):
        if spec["class_name"] in MODEL_CLASSES:
            return _build(spec, label, keras)
        return make_layer(spec, keras)


def _apply(layer: Any, args: list[Any], kwargs: dict, label: str) -> list[Any]:
    """Call ``layer`` on one tensor or a list of them; its outputs as a list."""
    with _about(label, layer.name, type(layer).__name__):
        out = layer(args[0] if len(args) == 1 else args, **kwargs)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _input(config: dict, name: str, label: str, keras: Any) -> Any:
    shape = config.get("batch_input_shape", config.get("batch_shape"))
    if shape is None:
        raise ModelFormatError(f"Keras model {label!r}: input {name!r} has no batch_input_shape")
    dtype = config.get("dtype") or "float32"
    return keras.Input(batch_shape=tuple(shape), dtype=dtype["config"]["name"] if isinstance(dtype, dict) else dtype,
                       name=name)


def _sequential(spec: dict, label: str, keras: Any) -> Any:
    specs = _layer_specs(spec)
    name = spec["config"].get("name", label) if isinstance(spec["config"], dict) else label
    if not specs:
        raise ModelFormatError(f"Keras model {label!r}: Sequential model {name!r} has no layers")
    first = specs[0]["config"]
    if specs[0]["class_name"] == "InputLayer":
        inputs = _input(first, first["name"], label, keras)
        specs = specs[1:]
    else:  # the input shape is on the first layer, or on the model when it was built with model.build(shape)
        built = spec["config"].get("build_input_shape") if isinstance(spec["config"], dict) else None
        shape = {"batch_input_shape": first.get("batch_input_shape", built), "dtype": first.get("dtype")}
        inputs = _input(shape, f"{first.get('name', name)}_input", label, keras)
    x = [inputs]
    for layer_spec in specs:
        x = _apply(_layer_or_model(layer_spec, label, keras), x, {}, label)
    return keras.Model(inputs, x[0] if len(x) == 1 else x, name=name)


def _functional(spec: dict, label: str, keras: Any) -> Any:
    """Layers called on the tensors their ``inbound_nodes`` name, in an order where those exist.

    Keras 2 numbers a nested model's calls from 1 (its node 0 links its own
    inputs to its outputs), every other layer's from 0.
    """
    config = spec["config"]
    made: dict[tuple[str, int], list[Any]] = {}
    pending: deque = deque()
    for layer_spec in config["layers"]:
        name = layer_spec.get("name", layer_spec["config"].get("name"))
        if layer_spec["class_name"] == "InputLayer":
            made[(name, 0)] = [_input(layer_spec["config"], name, label, keras)]
            continue
        layer = _layer_or_model(layer_spec, label, keras)
        skip = int(layer_spec["class_name"] in MODEL_CLASSES)
        pending.extend((name, layer, skip + k, node) for k, node in enumerate(layer_spec.get("inbound_nodes", [])))
    _call_all(pending, made, label)
    inputs = [_tensor(made, ref, label) for ref in _refs(config["input_layers"])]
    outputs = [_tensor(made, ref, label) for ref in _refs(config["output_layers"])]
    return keras.Model(inputs, outputs, name=config.get("name", label))


def _call_all(pending: deque, made: dict[tuple[str, int], list[Any]], label: str) -> None:
    """Call each pending ``(name, layer, node index, inbound node)`` once the tensors it reads exist."""
    waited = 0
    while pending:
        name, layer, index, node = pending.popleft()
        if not all((ref[0], ref[1]) in made for ref in _node_refs(node)):
            pending.append((name, layer, index, node))
            waited += 1
            if waited > len(pending):
                names = sorted({p[0] for p in pending})
                raise ModelFormatError(f"Keras model {label!r}: layers {names} read tensors no layer makes")
            continue
        waited = 0
        made[(name, index)] = _call(layer, node, made, label)


def _node_refs(node: list) -> list[list]:
    """Every ``[layer, node, tensor]`` a Keras 2 inbound node reads, its keyword arguments' tensors included."""
    refs = [list(entry[:3]) for entry in node]
    for entry in node:
        refs += _kwarg_refs(entry[3] if len(entry) > 3 else {})
    return refs


def _kwarg_refs(value: Any) -> list[list]:
    if _is_ref(value):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [r for v in items for r in _kwarg_refs(v)]


def _is_ref(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and all(isinstance(v, int) for v in value[1:]))


def _call(layer: Any, node: list, made: dict, label: str) -> list[Any]:
    """Call ``layer`` as one Keras 2 inbound node says (keyword arguments are on its last entry)."""
    args = [_tensor(made, entry, label) for entry in node]
    kwargs = {k: _resolve(v, made, label) for k, v in (node[-1][3] if len(node[-1]) > 3 else {}).items()
              if k != "training"}
    return _apply(layer, args, kwargs, label)


def _resolve(value: Any, made: dict, label: str) -> Any:
    """Keyword arguments with tensor references replaced by the tensors."""
    if _is_ref(value):
        return _tensor(made, value, label)
    if isinstance(value, dict):
        return {k: _resolve(v, made, label) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, made, label) for v in value]
    return value


def _refs(value: list) -> list[list]:
    """``input_layers``/``output_layers``: a list of references, or one reference (single input, TF >= 2.4)."""
    return [value] if value and isinstance(value[0], str) else list(value)


def _tensor(made: dict, ref: list, label: str) -> Any:
    layer, node, index = ref[:3]
    if (layer, node) not in made:
        raise ModelFormatError(f"Keras model {label!r}: no tensor {layer}[{node}][{index}]")
    return made[(layer, node)][index]


# ---- weights ----------------------------------------------------------------------------------------------------


def _assign_model(model: Any, values: SavedWeights, label: str) -> None:
    """Assign each layer of ``model`` the weights saved under its name (a nested model's grouped by inner layer)."""
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in values:
            raise ModelFormatError(f"Keras model {label!r}: layer {layer.name!r} has no weights in the file")
        if hasattr(layer, "layers"):
            _assign_model(layer, _by_inner_layer(values[layer.name], layer, label), label)
        else:
            _assign_layer(layer, [v for _, v in values[layer.name]], label)


def _by_inner_layer(pairs: list[tuple[str, np.ndarray]], model: Any, label: str) -> SavedWeights:
    """A nested model's saved weights (named ``<inner layer>/<weight>:0``) grouped by inner layer."""
    inner = {layer.name for layer in model.layers}
    grouped: SavedWeights = {}
    for name, value in pairs:
        owner = name.split("/")[0]
        if owner not in inner:
            raise ModelFormatError(f"Keras model {label!r}: weight {name!r} of nested model {model.name!r} "
                                   "names no layer of it")
        grouped.setdefault(owner, []).append((name, value))
    return grouped


def _assign_layer(layer: Any, arrays: list[np.ndarray], label: str) -> None:
    """Keras 2's saved order is the layer's trainable then non-trainable variables, as Keras 3 lists them."""
    variables = list(layer.trainable_weights) + list(layer.non_trainable_weights)
    quantizers = getattr(layer, "qkeras_weights", {})
    if len(variables) != len(arrays):
        raise ModelFormatError(f"Keras model {label!r}: layer {layer.name!r} ({type(layer).__name__}) has "
                               f"{len(variables)} weights, the file {len(arrays)}")
    for variable, array in zip(variables, arrays):
        if tuple(variable.shape) != array.shape:
            raise ModelFormatError(f"Keras model {label!r}: layer {layer.name!r} weight {variable.name!r} has "
                                   f"shape {tuple(variable.shape)}, the file {array.shape}")
        if variable.name in quantizers:
            array = quantizers[variable.name].weights(array)
        variable.assign(array.astype(variable.dtype))
