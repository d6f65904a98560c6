"""sofie-rdf: fast ML inference code for ROOT analyses, from Python.

Parse a model (ONNX, Keras, PyTorch, XGBoost JSON or a stored .root IR), generate a standalone C++ header in
TMVA SOFIE's format, compile it with Cling or the system compiler, and call it on numpy
arrays or from RDataFrame.

    import sofie_rdf as sr
    model = sr.load("higgs.onnx")
    sess = sr.compile(model)            # or backend="native"
    y = sess.infer(x)

SOFIE's own scripts (``ROOT.TMVA.Experimental.SOFIE``, ``TMVA::Experimental::SofieFunctor``) run on pip's ROOT
after ``import sofie_rdf.compat`` or ``sr.sofie_compat()``.

Names are imported on first use: ``import sofie_rdf`` loads neither ROOT nor a front end, and a native
model compiled before runs without either (``sr.compile("model.onnx", backend="native")``).
"""

from __future__ import annotations

import importlib
from typing import Any

from . import columnar  # registers Session.infer's awkward hook; imports neither awkward nor dask
from ._version import __version__
from .compile import compile  # noqa: A004  (the module sofie_rdf.compile is shadowed by its function)
from .errors import (
    CompilationError,
    LegacyModelWarning,
    ModelFormatError,
    NeedsDimsError,
    ShapeError,
    SofieError,
    SpecialisationWarning,
    UnsupportedOperatorError,
)

# public name -> the module defining it (a submodule itself when the name is the module's)
_LAZY = {
    "gnn": "gnn", "rdf": "rdf",
    "from_keras": "api", "from_onnx": "api", "from_pytorch": "api", "from_root": "api", "from_xgboost": "api",
    "load": "api",
    "Op": "custom", "OperatorRegistrationError": "custom", "TensorType": "custom", "custom_op": "custom",
    "keras_layer": "custom", "register_op": "custom", "unregister_keras_layer": "custom", "unregister_op": "custom",
    "TensorInfo": "ir.info", "Model": "model", "Reader": "reader", "Session": "session",
    "sofie_compat": "compat",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name]}", __name__)
    value = module if _LAZY[name] == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CompilationError", "LegacyModelWarning", "Model", "ModelFormatError", "NeedsDimsError", "Op",
    "OperatorRegistrationError", "Reader", "Session", "ShapeError", "SofieError", "SpecialisationWarning", "TensorInfo",
    "TensorType", "UnsupportedOperatorError", "__version__",
    "columnar", "compile", "custom_op",
    "from_keras", "from_onnx", "from_pytorch", "from_root", "from_xgboost", "gnn", "keras_layer", "load", "rdf",
    "register_op", "sofie_compat", "unregister_keras_layer", "unregister_op",
]
