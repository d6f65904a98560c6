"""Run the benchmarks as if this machine had a narrower instruction set: an AVX-512 machine measured as an AVX2 one.

This project's machines come with AVX2 on some days and AVX-512 on others, and issue 22's goals hold for both.
An AVX2 table needs every engine on AVX2 code, not only sofie-rdf:

* sofie-rdf builds with ``-mno-avx512f`` added to its native flags, so its target picks the AVX2 kernels
  (``sofie_rdf.targets.cpu.isa_for_flags``);
* torch runs its AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2``, read by torch when it is imported);
* onnxruntime has no such switch: MLAS picks its kernels from CPUID when it loads.  :func:`restrict` copies the
  onnxruntime package and, in both of its libraries (the C API one the C++ driver links, and the Python module),
  turns MLAS's "AVX512F in CPUID and ZMM state in XCR0" branch into a jump past it, so MLAS keeps the AVX2 (FMA3)
  kernels it would choose on an AVX2 CPU.  The installed package is never changed.  The pattern is that of the
  x86-64 wheels of onnxruntime 1.32; where it is not found exactly once, the run stops with a clear message rather
  than measure the wrong kernels.

The variable :data:`ENV` carries the restriction to the worker processes (``benchmarks.latency`` runs every engine
in a process of its own); :func:`restrict` returns the environment they need.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path
from typing import Optional

ENV = "SOFIE_RDF_BENCH_ISA"
CHOICES = ("avx2",)
NOTE = ("run as an AVX2 machine: sofie-rdf built with -mno-avx512f, torch with ATEN_CPU_CAPABILITY=avx2, "
        "onnxruntime from a copy whose MLAS skips its AVX-512 kernels (benchmarks/isa.py)")

# test $0x10000, r32 (CPUID 7 EBX bit 16: AVX512F); je past the AVX-512 block; mov r64, r64 (XCR0); not r64;
# test $0xe0, al (opmask and ZMM state enabled).  The je (group 2) becomes jmp.
_MLAS_AVX512_CHECK = re.compile(rb"(\x41?\xf7[\xc0-\xc7]\x00\x00\x01\x00)(\x74)(.)([\x48\x49\x4c\x4d]\x89[\xc0-\xff]"
                                rb"[\x48\x49]\xf7[\xd0-\xd7]\xa8\xe0)", re.DOTALL)


def restricted() -> Optional[str]:
    """The instruction set this process must run as (None: the machine's own)."""
    return os.environ.get(ENV) or None


def native_flags() -> tuple[str, ...]:
    """sofie-rdf's native compiler flags, narrowed to the restricted instruction set."""
    from sofie_rdf.targets.cpu.native import DEFAULT_FLAGS

    return (*DEFAULT_FLAGS, "-mno-avx512f") if restricted() == "avx2" else DEFAULT_FLAGS


def _patch(library: Path) -> None:
    """Turn MLAS's AVX-512 branch in ``library`` into a jump past it (see the module docstring)."""
    data = library.read_bytes()
    found = list(_MLAS_AVX512_CHECK.finditer(data))
    if len(found) != 1:
        raise SystemExit(f"--isa avx2: MLAS's AVX-512 check is found {len(found)} times in {library.name} (expected "
                         "once, as in onnxruntime 1.32): this onnxruntime cannot be run as AVX2")
    at = found[0].start(2)
    library.write_bytes(data[:at] + b"\xeb" + data[at + 1:])


def _onnxruntime_copy(work: Path) -> Path:
    """A copy of the installed onnxruntime package under ``work`` with MLAS's AVX-512 dispatch removed; the folder
    to put first on PYTHONPATH."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or spec.origin is None:
        raise SystemExit("--isa avx2: onnxruntime is not installed")
    package = Path(spec.origin).parent
    target = work / "onnxruntime"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__"))
    libraries = sorted((target / "capi").glob("libonnxruntime.so.*.*.*"))
    modules = sorted((target / "capi").glob("onnxruntime_pybind11_state*.so"))
    if len(libraries) != 1 or len(modules) != 1:
        raise SystemExit(f"--isa avx2: {package / 'capi'} does not hold one C library and one Python module")
    for library in (*libraries, *modules):
        _patch(library)
    return work


def restrict(isa: str, work: Path) -> dict[str, str]:
    """The environment that makes this process's children run as ``isa`` (one of :data:`CHOICES`)."""
    if isa not in CHOICES:
        raise SystemExit(f"--isa {isa}: one of {', '.join(CHOICES)}")
    from sofie_rdf.targets.cpu import host_isa

    if host_isa() != "avx512":
        raise SystemExit(f"--isa {isa}: this machine's widest instruction set is {host_isa()}; run without --isa")
    work.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (str(_onnxruntime_copy(work)), os.environ.get("PYTHONPATH")) if p)
    return {ENV: isa, "PYTHONPATH": path, "ATEN_CPU_CAPABILITY": isa}
