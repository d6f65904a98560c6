"""Cling JIT: declare a generated header into the running ROOT interpreter."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ... import _root
from ...errors import SofieError
from .header import GeneratedCode, storage_types_source

# Ask Cling for optimised code for what follows (it defaults to less).
_OPTIMIZE = "#pragma cling optimize(3)\n"


def jit_declare(code: GeneratedCode, folder: Optional[Path] = None) -> None:
    """Declare the header of ``code`` (already namespaced) into Cling, once.

    A header that includes custom operator headers is included from ``folder``, where
    ``write_files`` put it next to them, so its ``#include "file.h"`` lines find them.
    """
    _root.load_blas()
    if code.storage_types:
        _root.declare("storage-types", storage_types_source())
    source = code.header
    if code.includes:
        if folder is None:
            raise ValueError("a header with custom operator includes is declared from the folder holding them")
        path = str(folder.resolve() / f"{code.name}.hxx")
        if not path.isprintable() or any(c in path for c in '"\\'):  # a header name has no escapes
            raise SofieError(f"model {code.name!r}: cannot #include {path!r}; set SOFIE_RDF_CACHE to a plainer folder")
        source = f'#include "{path}"\n'
    _root.declare(f"jit:{code.namespace}:{code.digest}", _OPTIMIZE + source)
