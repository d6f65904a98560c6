"""Lazy access to PyROOT and BLAS.

ROOT is imported on first use (importing sofie_rdf stays cheap), BLAS is
loaded into the interpreter once, and every piece of C++ is declared to
Cling once per process, remembered by key: Cling cannot redefine a symbol.
"""

from __future__ import annotations

import os
import threading
import warnings
from functools import cache
from pathlib import Path
from typing import Any

from .errors import CompilationError, SofieError

# Cling compiles for a generic CPU at a low optimisation level unless told
# otherwise; generated loops then run several times slower.  The flags are
# read when ROOT starts, so they are set on import of sofie_rdf, before ROOT
# (a user's own EXTRA_CLING_ARGS wins).  -fno-trapping-math changes no result
# (IEEE arithmetic is kept, unlike -ffast-math); it only lets the compiler
# vectorize loops with comparisons and float/int conversions, such as the
# exp/tanh of kernels/fastmath.hxx, by not preserving floating-point traps.
# -optimize-regalloc=1 gives back LLVM's optimizing register allocator, which ROOT turns off for Cling
# (-optimize-regalloc=0: the fast allocator, which keeps no value in a register from one basic block to the
# next, so that register tiles spill their accumulators every few terms): on an AMD EPYC Zen 3, JIT code took
# 1.3x to 2.6x the native build's time without it, 0.9x to 1.13x with it (LSTM 2.0x), for 10% to 40% more
# JIT compile time (interleaved A/B in one process each; benchmarks/results/build_paths_avx2_amd_cling_march.md
# is the table with these flags).
JIT_FLAGS = "-O3 -march=native -fno-trapping-math -mllvm -optimize-regalloc=1"
os.environ.setdefault("EXTRA_CLING_ARGS", JIT_FLAGS)

_lock = threading.RLock()
_declared: dict[str, str] = {}


@cache
def root() -> Any:
    """The ROOT module, imported once; a SofieError saying what to install where there is none.

    Only the features built on ROOT get here: the JIT (Cling), RDataFrame, ``.root`` weights read by ROOT's
    I/O and distributed RDataFrame. Native models called from Python never import ROOT.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the PyPI build warns that it is a pre-release
        try:
            import ROOT
        except ImportError as exc:
            raise SofieError(f"this needs ROOT, which cannot be imported here ({exc}): install the 'root' package "
                             "(pip install 'sofie-rdf[root]'); native models run from numpy without it") from None
    ROOT.gROOT.SetBatch(True)
    return ROOT


@cache
def blas_paths() -> tuple[Path, Path]:
    """(shared library, include directory) of scipy-openblas32."""
    import scipy_openblas32 as sob

    lib_dir = Path(sob.get_lib_dir())
    return lib_dir / f"lib{sob.get_library()}.so", Path(sob.get_include_dir())


@cache
def load_blas() -> None:
    """Load scipy-openblas32 into ROOT, single-threaded.

    Each RDataFrame slot runs its own Session, so BLAS must not start threads
    of its own on top of ROOT's.
    """
    ROOT = root()
    lib, include = blas_paths()
    if ROOT.gSystem.Load(str(lib)) < 0:
        raise CompilationError(f"cannot load BLAS from {lib}")
    ROOT.gInterpreter.AddIncludePath(str(include))
    declare("sofie_rdf_blas_threads", 'extern "C" void scipy_openblas_set_num_threads(int);')
    ROOT.scipy_openblas_set_num_threads(1)


def declare(key: str, code: str) -> bool:
    """Declare ``code`` to Cling unless ``key`` was declared already; True if it was new."""
    with _lock:
        if key in _declared:
            return False
        if not root().gInterpreter.Declare(code):
            raise CompilationError(f"Cling could not compile {key!r} (the interpreter printed the errors above)")
        _declared[key] = code
        return True


def is_declared(key: str) -> bool:
    return key in _declared


def namespace_for(name: str, digest: str) -> str:
    """``TMVA_SOFIE_<Name>``, or with the content hash when that name is taken.

    Every model version gets its own namespace, so two versions of one model
    can live in one process; the first keeps the plain, documented name.
    """
    plain = f"TMVA_SOFIE_{name}"
    owner = _NAMESPACES.setdefault(plain, digest)
    return plain if owner == digest else f"{plain}_{digest[:12]}"


def claim_namespace(namespace: str, owner: str) -> bool:
    """Give ``namespace`` to ``owner`` (a library an earlier process built) unless this process gave it to
    another; True when ``owner`` has it."""
    return _NAMESPACES.setdefault(namespace, owner) == owner


_NAMESPACES: dict[str, str] = {}
