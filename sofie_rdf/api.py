"""``sofie_rdf.load`` and the per-format entry points.

Each front end turns its source into the one IR (:class:`sofie_rdf.ir.Model`);
this module only decides which front end a source belongs to.  The Keras and
PyTorch front ends import their frameworks lazily, so neither is needed to
load ONNX or ``.root`` models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from . import ir
from .errors import ModelFormatError
from .model import Model

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TORCH_SUFFIXES = (".pt", ".pth", ".pt2")


Dims = Optional[Mapping[str, int]]
Shapes = Optional[Mapping[str, Sequence[Any]]]


def _model(graph: ir.Model, dims: Dims, input_shapes: Shapes) -> Model:
    """The public model of a parsed graph, its input dims fixed first (:meth:`ir.Model.fix_inputs`)."""
    if dims or input_shapes:
        graph.fix_inputs(dims, input_shapes)
    return Model(graph)


def from_onnx(source: Any, name: Optional[str] = None, dims: Dims = None, input_shapes: Shapes = None) -> Model:
    """Model from an ONNX path, serialized bytes or ``onnx.ModelProto``."""
    from .parsers.onnx import from_onnx as parse

    return _model(parse(source, name=name), dims, input_shapes)


def from_keras(source: Any, name: Optional[str] = None, dims: Dims = None, input_shapes: Shapes = None,
               weights: Optional[str | os.PathLike] = None) -> Model:
    """Model from a ``.keras``/``.h5`` file or a ``keras.Model`` object (no ONNX round trip).

    Keras 2 files are read without Keras 3's loader: an ``.h5`` whose
    ``keras_version`` attribute starts with "2", and a ``model.to_json()``
    architecture (``.json``) with the ``model.save_weights`` file as ``weights``.
    """
    from .parsers.keras import from_keras as parse

    return _model(parse(source, name=name, weights=weights), dims, input_shapes)


def from_pytorch(source: Any, example_inputs: Any, name: Optional[str] = None,
                 dynamic_axes: Optional[dict] = None, input_names: Optional[Sequence[str]] = None,
                 output_names: Optional[Sequence[str]] = None, dims: Dims = None,
                 input_shapes: Shapes = None) -> Model:
    """Model from a ``torch.nn.Module``, a TorchScript module or a ``.pt`` TorchScript file.

    ``example_inputs`` (a tensor or a tuple of tensors) fixes the input
    shapes; ``dynamic_axes`` maps input and output names (or positions) to the
    axes that stay symbolic, e.g. ``{0: {0: "N"}}`` for a free batch size.
    """
    from .parsers.pytorch import from_pytorch as parse

    return _model(parse(source, example_inputs, name=name, dynamic_axes=dynamic_axes, input_names=input_names,
                        output_names=output_names), dims, input_shapes)


def from_root(path: str | os.PathLike, key: Optional[str] = None, name: Optional[str] = None, dims: Dims = None,
              input_shapes: Shapes = None) -> Model:
    """Model stored with :meth:`Model.save` under ``key`` of a ``.root`` file (read with uproot, no ROOT)."""
    from .parsers.root import load_root

    return _model(load_root(path, key, name=name), dims, input_shapes)


def from_xgboost(path: str | os.PathLike, name: Optional[str] = None, dims: Dims = None,
                 input_shapes: Shapes = None) -> Model:
    """Model from an XGBoost ``booster.save_model("model.json")`` or ``("model.ubj")`` file, read as JSON or
    UBJSON (xgboost not needed): one tree ensemble, its input ``input`` (N, num_feature) float32 (see
    :mod:`sofie_rdf.parsers.xgboost`)."""
    from .parsers.xgboost import from_xgboost as parse

    return _model(parse(path, name=name), dims, input_shapes)


def load(source: Any, name: Optional[str] = None, dims: Dims = None, input_shapes: Shapes = None,
         **options: Any) -> Model:
    """Parse any supported model source into a :class:`Model`.

    Dispatches on the source: an ``.onnx`` path, ``bytes`` or an
    ``onnx.ModelProto``; a ``.keras``/``.h5`` path or a ``keras.Model``; a
    Keras 2 ``.json`` architecture with its weights file as ``weights=``; an
    XGBoost ``.json`` (told from Keras by its content) or ``.ubj`` model; a ``.pt``
    TorchScript path or a ``torch.nn.Module`` (pass ``example_inputs=``); ``"file.root:key"`` for a model stored with
    :meth:`Model.save`.  ``name`` overrides the model name (a C++ identifier
    is derived from the file name otherwise).  ``dims`` (``{"n": 12}``) and
    ``input_shapes`` (``{"x": (1, 12, 5)}``) fix symbolic input dims, so the
    code is specialised for them as for constants.
    """
    if isinstance(source, Model):
        _no_options({**options, **{k: v for k, v in (("dims", dims), ("input_shapes", input_shapes)) if v}}, source)
        return source
    fixed = {"dims": dims, "input_shapes": input_shapes}
    if isinstance(source, (str, os.PathLike)):
        return _load_path(os.fspath(source), name, options, fixed)
    if isinstance(source, (bytes, bytearray)) or _is_onnx_proto(source):
        _no_options(options, source)
        return from_onnx(source, name, **fixed)
    if _module_of(source, "keras"):
        _no_options(options, source)
        return from_keras(source, name, **fixed)
    if _module_of(source, "torch"):
        return _torch(source, name, {**options, **fixed})
    raise ModelFormatError(f"cannot load a model from an object of type {type(source).__name__}")


def _load_path(path: str, name: Optional[str], options: dict, fixed: dict) -> Model:
    root_path, _, key = path.partition(".root:")
    if key or path.lower().endswith(".root"):
        _no_options(options, path)
        return from_root(root_path + ".root" if key else path, key or None, name, **fixed)
    suffix = Path(path).suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return _torch(path, name, {**options, **fixed})
    if suffix == ".json":
        return _json(path, name, options, fixed)
    _no_options(options, path)
    if suffix == ".ubj":
        return from_xgboost(path, name, **fixed)
    if suffix == ".onnx":
        return from_onnx(path, name, **fixed)
    if suffix in KERAS_SUFFIXES:
        return from_keras(path, name, **fixed)
    raise ModelFormatError(
        f"cannot tell the format of {path!r} from its suffix "
        "(supported: .onnx, .keras, .h5, .json (XGBoost, or Keras 2 with weights=), .ubj (XGBoost), .pt, "
        "file.root:key)"
    )


def _json(path: str, name: Optional[str], options: dict, fixed: dict) -> Model:
    """A ``.json`` file is an XGBoost model (top-level "learner" and "version") or a Keras 2 architecture."""
    from .parsers.xgboost import is_xgboost_json

    if is_xgboost_json(path):
        _no_options(options, path)
        return from_xgboost(path, name, **fixed)
    weights = options.pop("weights", None)
    _no_options(options, path)
    return from_keras(path, name, weights=weights, **fixed)


def _torch(source: Any, name: Optional[str], options: dict) -> Model:
    if "example_inputs" not in options:
        raise TypeError("loading a PyTorch model needs example_inputs= (a tensor or a tuple of tensors)")
    return from_pytorch(source, name=name, **options)


def _no_options(options: dict, source: Any) -> None:
    if options:
        raise TypeError(f"unexpected options for {source!r}: {', '.join(options)}")


def _is_onnx_proto(source: Any) -> bool:
    import onnx

    return isinstance(source, onnx.ModelProto)


def _module_of(obj: Any, package: str) -> bool:
    """Whether ``obj``'s class (or a base) comes from ``package``, without importing the package."""
    return any(c.__module__.split(".")[0] == package for c in type(obj).__mro__)
