"""Keras 3 front end: ``keras.Model`` objects, ``.keras`` and ``.h5`` files straight into the IR.

Keras 2 files (an ``.h5`` whose ``keras_version`` attribute starts with "2",
or a ``model.json`` architecture with its weights ``.h5``) are not given to
Keras 3's loader, which refuses many of them: :mod:`.legacy` reads them with
h5py into Keras 3 layers, which convert as below.

Keras is imported lazily (on the torch backend unless ``KERAS_BACKEND`` says
otherwise; TensorFlow is never needed).  Files are read with
``keras.saving.load_model(compile=False)`` in safe mode, so a model file
cannot run Python code (``Lambda`` layers from files are refused by Keras).
The graph of a Sequential or Functional model is walked from its outputs;
each layer is converted by the function registered for its class
(:mod:`.registry`), nested models are inlined, and every unsupported layer is
reported at once as :class:`~sofie_rdf.errors.UnsupportedOperatorError`.
User code in a ``keras.Model`` object (a ``Lambda``, a custom layer class, a
subclassed model) takes another route, torch's exporter and the ONNX front
end (:mod:`.export_route`), with a warning naming those layers.

Keras lays images out channels-last; the ONNX kernels are channels-first, so
convolution-like layers transpose around their kernel and the builder drops
each pair of transposes that cancel between consecutive layers.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...errors import ModelFormatError, SofieError, UnsupportedOperatorError
from ...ir import Model, TensorType, model_name_from
from ...ir.dims import symbol
from . import (  # noqa: F401
    attention,
    clahe,
    conv,
    conv_recurrent,
    core,
    normalization,
    operations,
    preprocessing,
    recurrent,
    spectrogram,
    wrappers,
)
from .builder import GraphBuilder, Tensor, call_arguments
from .export_route import export_keras, is_user_code
from .legacy import is_keras2_h5, is_qkeras_archive, read_keras2, read_keras3_archive
from .registry import CONVERTERS, MASK_AWARE, layer_key

BATCH = "N"


def from_keras(source: Any, name: Optional[str] = None, weights: Any = None) -> Model:
    """Parse a ``keras.Model``, a ``.keras``/``.h5`` file or a Keras 2 ``.json`` with its ``weights`` into the IR."""
    keras = import_keras()
    kmodel, default_name, origin = _read(source, weights, keras)
    label = name or default_name
    in_memory = isinstance(source, keras.Model)
    if in_memory and _is_subclassed(kmodel, keras):
        return export_keras(kmodel, None, label, {f"subclassed keras.Model {type(kmodel).__name__}": [kmodel.name]}, keras)
    graph = _functional(kmodel, label, keras)
    # User code has no converter to write: an object runs it through torch's exporter.  A built-in layer we lack
    # stays refused by name (a converter to add), as does everything read from a file (safe mode).
    try:
        _check_supported(graph, label, keras)
    except UnsupportedOperatorError as exc:
        if not in_memory or not any(is_user_code(layer) for layer in _layers(graph, keras) if
                                    layer_key(layer) not in CONVERTERS):
            raise
        return export_keras(kmodel, graph, label, exc.unsupported, keras)
    builder = GraphBuilder(model_name_from(label))
    names: dict[int, str] = {}
    inputs = [_graph_input(builder, t, names) for t in graph.inputs]
    outputs = _convert_graph(builder, graph, names, keras)
    renamed: dict[str, str] = {}
    outputs = [_name_output(builder, o, t, inputs, renamed) for o, t in zip(outputs, graph.outputs)]
    return builder.model(inputs, outputs, source=f"{origin}Keras {keras.__version__} ({keras.backend.backend()} backend)")


def import_keras() -> Any:
    """Import Keras, on the torch backend unless the user chose one."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as exc:
        raise SofieError(f"the Keras front end needs keras 3 (pip install keras): {exc}") from None
    return keras


def _read(source: Any, weights: Any, keras: Any) -> tuple[Any, str, str]:
    """The Keras model, its default name, and what it was read from (for the IR's ``source``)."""
    if isinstance(source, keras.Model):
        _no_weights(weights, source.name)
        return source, source.name, ""
    path = Path(source)
    if not path.is_file():
        raise ModelFormatError(f"cannot read Keras model {str(path)!r}: no such file")
    if path.suffix.lower() == ".json":
        return read_keras2(path, None if weights is None else Path(weights), keras), path.stem, "Keras 2 file read into "
    _no_weights(weights, path.name)
    if is_keras2_h5(path):
        return read_keras2(path, None, keras), path.stem, "Keras 2 file read into "
    if is_qkeras_archive(path):
        return read_keras3_archive(path, keras), path.stem, "QKeras (Keras 3) file read into "
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, OSError, TypeError, ... for bad files
        raise ModelFormatError(f"cannot read Keras model {str(path)!r}: {_first_line(exc)}") from None
    return model, path.stem, ""


def _no_weights(weights: Any, label: str) -> None:
    if weights is not None:
        raise TypeError(f"weights= is for a Keras 2 architecture .json; {label!r} holds its own weights")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _functional(model: Any, label: str, keras: Any) -> Any:
    """The Functional graph behind a Sequential or Functional model."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ModelFormatError(f"Keras model {label!r} is a Sequential model without an input shape: "
                                   "start it with keras.Input(shape) or build it")
        return graph
    if not hasattr(model, "_inbound_nodes") or not hasattr(model, "outputs") or not _is_functional(model, keras):
        raise ModelFormatError(f"Keras model {label!r} is a subclassed model with no static graph; "
                               "only Sequential and Functional models can be converted")
    return model


def _is_subclassed(model: Any, keras: Any) -> bool:
    """A built subclassed model: its ``call`` is the user's Python, with no graph to walk.  An unbuilt one
    stays for :func:`_functional` to refuse, as its input shapes are unknown."""
    return not isinstance(model, keras.Sequential) and not _is_functional(model, keras) and \
        bool(getattr(model, "_build_shapes_dict", None))


def _is_functional(model: Any, keras: Any) -> bool:
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def _layers(graph: Any, keras: Any) -> list[Any]:
    """Every operation of ``graph``, nested models expanded."""
    found = []
    for op in graph.operations:
        if isinstance(op, keras.Model):
            found += _layers(_functional(op, op.name, keras), keras)
        else:
            found.append(op)
    return found


def _check_supported(graph: Any, label: str, keras: Any) -> None:
    """Every layer of the graph, and every operation computing a mask some layer reads, has a converter."""
    missing: dict[str, list[str]] = {}
    reached = [call.operation for call in _topological(graph) if not isinstance(call.operation, keras.Model)]
    found = {id(op): op for op in _layers(graph, keras) + reached}
    for layer in found.values():
        key = layer_key(layer)
        if key != "InputLayer" and key not in CONVERTERS:
            missing.setdefault(f"keras.{key}" if key.startswith("ops.") else f"keras.layers.{key}", []).append(layer.name)
    if missing:
        raise UnsupportedOperatorError(label, missing)


def _graph_input(builder: GraphBuilder, tensor: Any, names: dict[int, str]) -> str:
    name = builder.reserve(tensor.name)
    dims = tuple(d if d is not None else symbol(BATCH if i == 0 else f"{name}_dim{i}")
                 for i, d in enumerate(tensor.shape))
    builder.tensors[name] = TensorType(np.dtype(tensor.dtype), dims)
    names[id(tensor)] = name
    return name


def _topological(graph: Any) -> list[Any]:
    """The Keras graph nodes computing ``graph.outputs`` and the masks their layers read, each after its inputs."""
    order, done = [], set()
    stack = [(_call_of(t), False) for t in reversed(graph.outputs)]
    while stack:
        call, expanded = stack.pop()
        if id(call) in done:
            continue
        if expanded:
            done.add(id(call))
            order.append(call)
            continue
        stack.append((call, True))
        needed = [*call.input_tensors, *(m for m in _masks_read(call) if m is not None)]
        stack.extend((_call_of(t), False) for t in reversed(needed) if id(_call_of(t)) not in done)
    return order


def _call_of(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        what = getattr(tensor, "name", type(tensor).__name__)
        raise ModelFormatError(f"Keras tensor {what!r} (a mask or an input of a layer) is not computed by the model's graph")
    op, node_index, _ = history
    return op._inbound_nodes[node_index]


def _convert_graph(builder: GraphBuilder, graph: Any, names: dict[int, str], keras: Any) -> list[str]:
    """Convert every layer call of ``graph`` (its inputs already in ``names``); returns the output names."""
    for call in _topological(graph):
        layer = call.operation
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = _inputs_of(builder, call, names)
        outer, builder.scope = builder.scope, f"{builder.scope}/{layer.name}" if builder.scope else layer.name
        try:
            if isinstance(layer, keras.Model):
                outs = _inline(builder, _functional(layer, layer.name, keras), inputs, keras)
            else:
                outs = CONVERTERS[layer_key(layer)](builder, layer, inputs, call)
        except SofieError:
            raise
        except Exception as exc:
            raise ModelFormatError(f"Keras model {builder.model_name!r}: layer {layer.name!r} "
                                   f"({type(layer).__name__}): {_first_line(exc)}") from exc
        finally:
            builder.scope = outer
        outs = [outs] if isinstance(outs, str) else list(outs)
        if len(outs) != len(call.output_tensors):
            raise ModelFormatError(f"Keras model {builder.model_name!r}: layer {layer.name!r} gave {len(outs)} "
                                   f"outputs, Keras has {len(call.output_tensors)}")
        for t, o in zip(call.output_tensors, outs):
            names[id(t)] = o
    return [names[id(t)] for t in graph.outputs]


def _inputs_of(builder: GraphBuilder, call: Any, names: dict[int, str]) -> list[Tensor]:
    """The layer's inputs as converters see them, each with the mask the layer reads for it
    (:func:`_masks_read`).  A mask the layer's converter would ignore is refused."""
    layer = call.operation
    masks = [None if m is None else names[id(m)] for m in _masks_read(call)]
    if any(masks) and layer_key(layer) not in MASK_AWARE:
        raise UnsupportedOperatorError(builder.model_name, {
            f"keras.layers.{layer_key(layer)} with a mask (from Masking, Embedding(mask_zero=True) or mask=)":
                [layer.name]})
    return [Tensor(names[id(t)], tuple(t.shape), m) for t, m in zip(call.input_tensors, masks)]


def _masks_read(call: Any) -> list[Any]:
    """The Keras mask a layer call reads for each of its input tensors (None where none), as Keras's
    ``Layer.__call__`` hands them to ``call``.

    With one tensor argument (a tensor or a list of them), a layer whose
    ``call`` takes ``mask`` gets the masks those tensors carry, or the
    ``mask=`` given to the call in their place.  With several, each argument
    ``x`` with a ``x_mask`` parameter (MultiHeadAttention's ``query``,
    ``value``, ``key``) gets its carried mask unless one is given; nothing else
    (an RNN given ``initial_state`` runs unmasked).  Masks given by hand as
    ``x_mask=`` are the converters' to read.
    """
    layer, none = call.operation, [None] * len(call.input_tensors)
    if not isinstance(layer, _layer_class()):
        return none
    arguments = call_arguments(layer, call)
    # The tensor arguments Keras counts before it adds masks (the node records an added mask= as an argument).
    tensors = {k: v for k, v in arguments.items() if _holds_tensors(v) and k != "mask" and not k.endswith("_mask")}
    if not tensors:
        return none
    if len(tensors) == 1 or arguments.get("mask") is not None:
        if not getattr(layer, "_call_has_mask_arg", False):
            return none
        first = next(iter(tensors.values()))  # its tensors lead call.input_tensors
        first = list(first) if isinstance(first, (list, tuple)) else [first]
        given = arguments.get("mask")
        masks = [getattr(t, "_keras_mask", None) for t in first] if given is None else \
            (list(given) if isinstance(given, (list, tuple)) else [given])
        return (masks + none)[:len(none)]
    parameters = inspect.signature(layer.call).parameters
    carried = {id(v): v._keras_mask for k, v in tensors.items()
               if f"{k}_mask" in parameters and arguments.get(f"{k}_mask") is None
               and getattr(v, "_keras_mask", None) is not None}
    return [carried.get(id(t)) for t in call.input_tensors]


def _layer_class() -> type:
    from keras.layers import Layer

    return Layer


def _holds_tensors(value: Any) -> bool:
    """A Keras tensor, or a non-empty list of them (None allowed): one tensor argument for Keras."""
    from keras import KerasTensor

    if isinstance(value, (list, tuple)):
        return bool(value) and all(v is None or isinstance(v, KerasTensor) for v in value)
    return isinstance(value, KerasTensor)


def _inline(builder: GraphBuilder, graph: Any, inputs: list[Tensor], keras: Any) -> list[str]:
    """A nested model's layers, reading the outer tensors ``inputs``."""
    if len(graph.inputs) != len(inputs):
        raise ModelFormatError(f"nested model {graph.name!r} takes {len(graph.inputs)} inputs, called with {len(inputs)}")
    names = {id(t): i.name for t, i in zip(graph.inputs, inputs)}
    return _convert_graph(builder, graph, names, keras)


def _name_output(builder: GraphBuilder, name: str, tensor: Any, inputs: list[str], renamed: dict[str, str]) -> str:
    """Graph outputs are named after the layer producing them (``dense_2``), the names users see.

    ``renamed`` remembers tensors already renamed for an earlier output, so a
    tensor that is two outputs (a layer's output and its state) gets a copy.
    """
    wanted = builder.reserve(tensor._keras_history[0].name)
    name = renamed.get(name, name)
    if name in inputs or name in renamed.values() or not builder.rename(name, wanted):
        builder.identity(name, wanted)
    else:
        renamed[name] = wanted
    return wanted
