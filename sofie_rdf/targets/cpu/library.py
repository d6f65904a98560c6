"""The C++ kernel library shipped in ``targets/cpu/kernels/`` and copied into headers, and the user headers
that custom operators include (copied next to the generated header)."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ...errors import SofieError
from .._cxx.kernels import kernel_order as ordered

# Kernels whose code calls other kernels: those are copied first.
DEPENDENCIES = {
    "attention": ("gemm", "softmax"), "broadcast": ("elementwise",), "conv": ("gemm", "simd"), "conv_extra": ("conv",),
    "edge": ("conv", "indexing"), "wgemm": ("simd",),
    "elementwise": ("fastmath", "simd"), "loss": ("softmax",), "misc": ("reduce",), "normalization": ("simd",),
    "pool": ("simd",), "reduce": ("simd",), "simd": ("fastmath",), "reinterpret": ("values",), "resize": ("values",),
    "rnn": ("gemm", "fastmath", "simd"),
    "qlinear": ("quantize",), "quantize": ("simd",), "qrnn": ("rnn", "qgemm", "quantize"), "sampling": ("values",),
    "select": ("sort",), "signal": ("select",), "softmax": ("fastmath", "simd"), "winograd": ("conv",),
}
# File names a generated header may #include "..." (no quotes, slashes or spaces to escape).
HEADER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\.(h|hh|hpp|hxx)")


@cache
def kernel_source(name: str) -> str:
    """Text of ``kernels/<name>.hxx``."""
    return resources.files("sofie_rdf.targets.cpu").joinpath("kernels", f"{name}.hxx").read_text()


def kernel_order(names: set[str]) -> list[str]:
    """The kernels to copy, dependencies (:data:`DEPENDENCIES`) first."""
    return ordered(names, DEPENDENCIES)


def user_headers(ops: Iterable[Any], model: str) -> dict[str, str]:
    """File name -> text of the C++ headers that user-defined operators include (their ``headers``).

    The generated header includes them by file name and they are copied next to it, so the text is
    read here, once, and becomes part of the code's digest: editing a header recompiles the model.
    """
    paths: dict[str, Path] = {}
    for op in ops:
        for path in map(Path, getattr(op, "headers", ())):
            if not HEADER_NAME.fullmatch(path.name):
                raise SofieError(f"model {model!r}: {op.node}: header name {path.name!r} cannot be #included safely")
            if paths.setdefault(path.name, path) != path:
                raise SofieError(f"model {model!r}: custom operators include two different headers named "
                                 f"{path.name!r} ({paths[path.name]} and {path}); rename one")
    texts = {}
    for name, path in sorted(paths.items()):
        try:
            texts[name] = path.read_text()
        except OSError as exc:
            raise SofieError(f"model {model!r}: cannot read the custom operator header {str(path)!r}: {exc}") from None
    return texts


def include_lines(includes: dict[str, str]) -> list[str]:
    """``#include "file.h"`` lines for user headers, each guarded by a hash of its text.

    Two models using the same header in one process (Cling) include it once; a header whose
    text changed is a different guard, and C++ then reports what it redefines.
    """
    lines = []
    for file_name, text in includes.items():
        guard = f"SOFIE_RDF_USER_HEADER_{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        lines += [f"#ifndef {guard}  // custom operator header, copied next to this file",
                  f"#define {guard}", f'#include "{file_name}"', "#endif"]
    return lines
