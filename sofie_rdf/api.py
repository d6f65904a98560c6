"""``sofie_rdf.load`` and the per-format entry points."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from .errors import ModelFormatError
from .model import Model


def from_onnx(source: Any, name: Optional[str] = None) -> Model:
    """Model from an ONNX path, serialized bytes or ``onnx.ModelProto``."""
    from .parsers.onnx import from_onnx as parse

    return Model(parse(source, name=name))


def load(source: Any, name: Optional[str] = None, **options: Any) -> Model:
    """Parse any supported model source into a :class:`Model`.

    Dispatches on the source: an ``.onnx`` path, ``bytes`` or an
    ``onnx.ModelProto``.  ``name`` overrides the model name (a C++ identifier
    is derived from the file name otherwise).
    """
    if options:
        raise TypeError(f"unexpected options for this source: {', '.join(options)}")
    if isinstance(source, Model):
        return source
    if isinstance(source, (bytes, bytearray)):
        return from_onnx(source, name)
    if isinstance(source, (str, os.PathLike)):
        suffix = Path(source).suffix.lower()
        if suffix == ".onnx":
            return from_onnx(source, name)
        raise ModelFormatError(f"cannot tell the format of {str(source)!r} from its suffix (supported: .onnx)")
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        onnx = None
    if onnx is not None and isinstance(source, onnx.ModelProto):
        return from_onnx(source, name)
    raise ModelFormatError(f"cannot load a model from an object of type {type(source).__name__}")
