"""Cling JIT: declare a generated header into the running ROOT interpreter."""

from __future__ import annotations

from . import _root
from .codegen import GeneratedCode
from .codegen.header import half_types_source

# Ask Cling for optimised code for what follows (it defaults to less).
_OPTIMIZE = "#pragma cling optimize(3)\n"


def namespace_for(name: str, digest: str) -> str:
    """``TMVA_SOFIE_<Name>``, or with the content hash when that name is taken.

    Every model version gets its own namespace, so two versions of one model
    can live in one process; the first keeps the plain, documented name.
    """
    plain = f"TMVA_SOFIE_{name}"
    owner = _NAMESPACES.setdefault(plain, digest)
    return plain if owner == digest else f"{plain}_{digest[:12]}"


_NAMESPACES: dict[str, str] = {}


def jit_declare(code: GeneratedCode) -> None:
    """Declare the header of ``code`` (already namespaced) into Cling, once."""
    _root.load_blas()
    if "SOFIE_RDF_HALF_TYPES" in code.header:
        _root.declare("half-types", half_types_source())
    _root.declare(f"jit:{code.namespace}:{code.digest}", _OPTIMIZE + code.header)
