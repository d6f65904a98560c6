"""Generated C++ on disk: the header, the custom operator headers it includes and its weight file."""

from __future__ import annotations

import os
from pathlib import Path

from .._cxx.files import GeneratedFiles
from .header import GeneratedCode
from .weights import atomic_write, root_weights_dir, write_dat, write_root

__all__ = ["GeneratedFiles", "write_files"]


def write_files(code: GeneratedCode, outdir: str | os.PathLike) -> GeneratedFiles:
    """Write ``<Name>.hxx``, the custom operator headers it includes and, unless embedded, its weights
    (``<Name>.dat`` or ``<Name>.root``) into ``outdir``."""
    outdir = Path(outdir)
    header = atomic_write(outdir / f"{code.name}.hxx", code.header)
    for file_name, text in code.includes.items():  # custom operator headers, included by file name
        atomic_write(outdir / file_name, text)
    weights = None
    if code.weights_mode == "dat":
        weights = write_dat(outdir / f"{code.name}.dat", code.weights)
    elif code.weights_mode == "root":
        weights = write_root(outdir / f"{code.name}.root", code.weights, root_weights_dir(code.name))
    return GeneratedFiles(header, weights, code.namespace)
