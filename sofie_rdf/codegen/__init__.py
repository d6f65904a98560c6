"""Code generation: standalone C++ headers and their weight files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..ir import Model
from ..passes import run_pipeline
from .header import GeneratedCode, HeaderWriter
from .weights import atomic_write, root_weights_dir, write_dat, write_root

__all__ = ["GeneratedCode", "GeneratedFiles", "generate_code", "write_files"]


@dataclass(frozen=True)
class GeneratedFiles:
    """Paths of a generated model: ``header`` and ``weights`` (None when embedded)."""

    header: Path
    weights: Optional[Path]
    namespace: str


def generate_code(model: Model, name: str, namespace: Optional[str] = None, weights: str = "dat",
                  weights_file: Optional[str] = None, target: str = "native") -> GeneratedCode:
    """Run the pass pipeline for the compiler ``target`` and write the header text (nothing touches disk)."""
    planned, plan = run_pipeline(model, target)
    return HeaderWriter(planned, plan, name, namespace or f"TMVA_SOFIE_{name}", weights, weights_file).write()


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
