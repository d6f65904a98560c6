"""Cling JIT: declare a generated header into the running ROOT interpreter."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ... import _root
from ...errors import SofieError
from . import host_isa
from .header import GeneratedCode, storage_types_source
from .isa import LEVELS


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
    # This process runs the header: compile the kernels of its CPU's widest instruction set alone (isa.py).
    level = LEVELS[host_isa()]
    _root.declare(f"jit:{code.namespace}:{code.digest}",
                  f"#define SOFIE_RDF_ISA {level}\n{source}\n#undef SOFIE_RDF_ISA\n")
