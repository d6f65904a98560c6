"""The CPU target: C++17 headers over a kernel library and BLAS, built by Cling or a native compiler.

:class:`CpuTarget` is parameterised by the compiler that builds the code (``native``: an optimising
compiler, ``g++ -O3 -march=native`` by default; ``cling``: ROOT's JIT, whose code for register tiles is
several times slower than BLAS) and the instruction set the kernels are planned for (``generic`` x86-64,
``avx2``, ``avx512``), so that emitters pick kernels and tiles per instruction set, not per compiler.  The
header holds its kernels for each instruction set from the compiler flags' up to that one and runs the widest
the CPU has (``isa.py``), so builds without ``-march`` run them too.  The folder holds everything
machine-specific: the emitters per operator family (``emitters/``), the kernels they call (``kernels/*.hxx``),
weight packing, the session writer (``header.py``; the C++ spelling of types and dims is shared:
``targets/_cxx/``) and the two toolchains (``jit.py``, ``native.py``) with their cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence, Union

from ...errors import SofieError
from ...ir.info import WEIGHT_DTYPES
from .. import Target
from .files import GeneratedFiles, write_files
from .header import WEIGHTS_MODES, WEIGHTS_SUFFIXES, GeneratedCode, write_header

COMPILERS = ("native", "cling")
ISAS = ("generic", "avx2", "avx512")

# The public spelling of a CPU target (``Model.generate(target=...)``, ``sofie-rdf emit --target``).
TARGET_NAMES = ("native", "jit")
# Floats per vector register and vector registers per instruction set (what register tiles are sized by).
VECTOR_FLOATS = {"generic": 4, "avx2": 8, "avx512": 16}
VECTOR_REGISTERS = {"generic": 16, "avx2": 16, "avx512": 32}


@dataclass(frozen=True)
class CpuTarget(Target):
    """A CPU: the compiler building the code and the instruction set it compiles for."""

    compiler: str = "native"
    isa: str = "generic"
    weights: str = "float32"
    name: ClassVar[str] = "cpu"
    row_blocks: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.compiler not in COMPILERS:
            raise SofieError(f"CPU compiler must be one of {', '.join(COMPILERS)}, got {self.compiler!r}")
        if self.isa not in ISAS:
            raise SofieError(f"instruction set must be one of {', '.join(ISAS)}, got {self.isa!r}")
        if self.weights not in WEIGHT_DTYPES:
            raise SofieError(f"weights dtype must be one of {', '.join(WEIGHT_DTYPES)}, got {self.weights!r}")

    @property
    def key(self) -> str:
        return f"cpu-{self.compiler}-{self.isa}" + (f"-{self.weights}" if self.weights != "float32" else "")

    @property
    def register_tiles(self) -> bool:
        """Whether kernels built on register tiles (conv_rows, gemm_panels, attention's blocks) beat BLAS here: for
        AVX2 or AVX-512, from an optimising compiler (with any flags: targets/cpu/isa.py) and from Cling alike,
        since Cling inlines the kernels (isa.CLING_INLINE) and unrolls their loops over terms
        (SOFIE_RDF_TERMS_LOOP).  Declared to a ROOT started with its own flags, on an AMD EPYC Zen 3, the register
        tiles ran a 3x3 convolution in 2.1x g++'s time where the BLAS plan took 7.5x, the Higgs MLP 1.3x where
        it took 3.7x; BLAS keeps an edge on the largest products (DeepSets at batch 64: 1.5x against 1.9x;
        benchmarks/build_paths.py).  For generic x86-64 their 8-float vectors have no register of that width
        (SSE's hold 4): 18x to 50x the time of BLAS, which picks its kernels for the CPU at run time (a stride-2
        3x3 layer, a 1x1 layer, Attention_64tok and DeepSets, on a Xeon with AVX-512)."""
        return self.isa != "generic"

    @property
    def edge_chains(self) -> bool:
        """EdgeConvChain runs its layers as conv_pointwise's register tiles: native code for AVX2 or AVX-512.  Not
        under Cling, where the chain took 4.1x g++'s time and the layers as nodes through BLAS 3.1x
        (EdgeConv_64p_k16, benchmarks/build_paths.py on an AMD EPYC Zen 3)."""
        return self.register_tiles and self.compiler == "native"

    def pools_conv(self, op: Any, x: Any, w: Any) -> bool:
        """Where conv_winograd_tiles runs the layer (native register tiles), its output tiles take the 2 x 2
        maxima as they are stored (kernels/winograd.hxx); the other convolutions leave the MaxPool a node."""
        return self.register_tiles and self.bind(op).pools_output(x, w)

    @property
    def vector_floats(self) -> int:
        return VECTOR_FLOATS[self.isa]

    @property
    def vector_registers(self) -> int:
        return VECTOR_REGISTERS[self.isa]

    @property
    def half_vector_cost(self) -> int:
        """What a multiply-add on half a vector costs, in those on a whole one (kernels/conv.hxx: kConvHalfCost):
        1 where half a vector is all there is (AVX2) or takes half the time (AMD's AVX-512 in halves), 2 on
        AVX-512 cores with full-width pipes (Intel's), where 8 floats take as long as 16."""
        return 2 if self.isa == "avx512" and not host_avx512_in_halves() else 1

    def bind(self, op: Any) -> Any:
        from .emitter import emitter_for

        emitter = emitter_for(op, self)
        if self.weights == "float32":
            return emitter
        from .emitters.reduced import stored_weights

        return stored_weights(emitter)

    def pack_weights(self, model: Any, emitters: list[Any]) -> None:
        from .packing import pack_weights

        pack_weights(model, emitters)


@cache
def host_isa() -> str:
    """The widest instruction set of this machine's CPU that the kernels know (Linux; else generic)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "generic"
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    flags = set(match.group(1).split()) if match else set()
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if {"avx2", "fma"} <= flags else "generic"


@cache
def host_avx512_in_halves() -> bool:
    """Whether this machine's CPU runs AVX-512 as two 256-bit halves: AMD's family 25 (Zen 4; GCC's -march=native
    names it znver3 or znver4, which kernels/gemm.hxx's kAvx512InHalves tests).  A build for another CPU's flags
    may differ: this only steers kernel choices, never results."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    vendor = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.MULTILINE)
    family = re.search(r"^cpu family\s*:\s*(\d+)", text, re.MULTILINE)
    return bool(vendor and family and vendor.group(1) == "AuthenticAMD" and int(family.group(1)) == 25)


def isa_for_flags(flags: Optional[Sequence[str]]) -> str:
    """The instruction set a native build with these compiler flags targets (None: the default flags)."""
    flags = list(flags) if flags is not None else ["-march=native"]
    isa = "generic"
    for flag in flags:
        if flag == "-march=native":
            isa = host_isa()
        elif flag in ("-march=x86-64-v4",) or flag.startswith("-mavx512"):
            isa = "avx512"
        elif flag in ("-march=x86-64-v3", "-mavx2") and isa != "avx512":
            isa = "avx2"
        elif flag == "-mno-avx512f" and isa == "avx512":  # AVX-512 machines have AVX2 (benchmarks/ab.py's --flags)
            isa = "avx2"
        elif flag in ("-mno-avx", "-mno-avx2", "-mno-fma"):
            isa = "generic"
    return isa


def cpu_target(spec: Union[str, CpuTarget, None] = None, flags: Optional[Sequence[str]] = None,
               weights: str = "float32") -> CpuTarget:
    """A CPU target from its public name: ``"native"`` (an optimising compiler, for this machine or
    ``flags``), ``"jit"`` (Cling, for this machine), or a :class:`CpuTarget` as it is; ``weights``, how it stores
    the float products' weights (:data:`WEIGHT_DTYPES`)."""
    if isinstance(spec, CpuTarget):
        return spec if weights == "float32" else replace(spec, weights=weights)
    if spec in (None, "native"):
        return CpuTarget("native", isa_for_flags(flags), weights)
    if spec == "jit":
        return CpuTarget("cling", host_isa(), weights)
    raise SofieError(f"target must be one of {', '.join(TARGET_NAMES)}, got {spec!r}")


__all__ = ["COMPILERS", "ISAS", "TARGET_NAMES", "WEIGHTS_MODES", "WEIGHT_DTYPES", "WEIGHTS_SUFFIXES", "CpuTarget",
           "GeneratedCode", "GeneratedFiles", "cpu_target", "host_avx512_in_halves", "host_isa", "isa_for_flags",
           "write_files", "write_header"]
