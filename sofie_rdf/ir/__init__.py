"""Intermediate representation shared by every front end and back end.

Names are imported on first use: :mod:`sofie_rdf.ir.info` (what a Session needs) stays free of sympy,
which the rest of the IR is built on.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Dim": "dims", "as_dim": "dims", "free_symbols": "dims", "is_static": "dims", "num_elements": "dims", "symbol": "dims",
    "dtype_info": "dtypes", "Graph": "model", "Model": "model", "Node": "model", "model_name_from": "model",
    "unique_name": "model",
    "TensorInfo": "info", "TensorType": "tensors",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = sorted(_EXPORTS)
