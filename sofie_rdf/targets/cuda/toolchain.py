"""The CUDA toolchain: nvcc, headers and libraries from NVIDIA's CUDA 13 wheels (``pip install sofie-rdf[cuda]``)
or from ``$CUDA_HOME``, building a model's source into a cached shared library with the C ABI of every target
(``targets/_cxx/c_abi.py``) plus ``sofie_infer_device`` and ``sofie_device_count``.

Code is compiled to machine code (SASS) for each architecture of the target, never left as PTX for the driver
to compile: a CUDA 13.x compiler's PTX needs a driver at least that new, its SASS runs on any CUDA 13 driver.
Whether a GPU is present is asked of the driver (``libcuda``) directly, so that a machine without one can
still generate and compile-check code.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Optional, Sequence

from ..._cache import atomic_write, cache_dir
from ...errors import CompilationError, SofieError
from .._cxx.c_abi import c_abi_source, infer_args
from .source import LANGUAGE_FLAGS, WEIGHTS_SUFFIX, CudaCode

# nvcc options of every build: what the source needs (LANGUAGE_FLAGS, named in its opening comment), IEEE math
# (no --use_fast_math), host warnings on, and only the C ABI exported: the library's Session is TMVA_SOFIE_<Name>
# like a CPU model's, and Cling binds a JIT-declared Session's inline functions to a loaded library's symbols of
# the same name, even of a library loaded RTLD_LOCAL.
NVCC_FLAGS = (*LANGUAGE_FLAGS, "-O3", "-Xcompiler", "-fPIC,-Wall,-Wextra,-fvisibility=hidden")
INSTALL_HINT = "install the CUDA toolchain with `pip install 'sofie-rdf[cuda]'` or set CUDA_HOME"


@dataclass(frozen=True)
class Toolchain:
    """Where nvcc, the CUDA headers and the runtime and cuBLAS libraries are."""

    nvcc: Path
    include: tuple[Path, ...]
    lib: tuple[Path, ...]

    def arch_flags(self, archs: Sequence[str]) -> list[str]:
        """Machine code for each architecture (``sm_90`` -> ``-gencode arch=compute_90,code=sm_90``)."""
        return [f for a in archs for f in ("-gencode", f"arch=compute_{a[3:]},code={a}")]

    def compile_command(self, source: Path, output: Path, archs: Sequence[str]) -> list[str]:
        """Compile ``source`` to an object file (what the compile checks run)."""
        includes = [f"-I{p}" for p in self.include]
        return [str(self.nvcc), *NVCC_FLAGS, *self.arch_flags(archs), *includes, "-c", str(source), "-o", str(output)]

    def link_command(self, obj: Path, output: Path, libraries: Sequence[str] = ("cublas",)) -> list[str]:
        """Link an object into a shared library: the runtime statically, ``libraries`` (cuBLAS, cuBLASLt) from
        their wheel (found by rpath)."""
        libs = [f for p in self.lib for f in (f"-L{p}", "-Xlinker", f"-rpath,{p}")]
        return [str(self.nvcc), "-shared", "-cudart", "static", str(obj), "-o", str(output), *libs,
                *(f"-l:{self._library_name(name)}" for name in libraries)]

    def _library_name(self, name: str) -> str:
        """``lib<name>.so`` where it exists (CUDA_HOME), else the wheel's ``lib<name>.so.13``."""
        for p in self.lib:
            for file in (f"lib{name}.so", f"lib{name}.so.13"):
                if (p / file).exists():
                    return file
        return f"lib{name}.so"


@cache
def toolchain() -> Toolchain:
    """The toolchain of the ``[cuda]`` extra's wheels, else of ``$CUDA_HOME`` (or nvcc on the PATH)."""
    wheel = _wheel_root()
    if wheel is not None and (wheel / "bin" / "nvcc").exists():
        return Toolchain(wheel / "bin" / "nvcc", (wheel / "include",), (wheel / "lib",))
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    nvcc = Path(home) / "bin" / "nvcc" if home else (Path(shutil.which("nvcc")) if shutil.which("nvcc") else None)
    if nvcc is None or not nvcc.exists():
        raise SofieError(f"no CUDA compiler (nvcc) found: {INSTALL_HINT}")
    root = nvcc.parent.parent
    return Toolchain(nvcc, (root / "include",), tuple(p for p in (root / "lib64", root / "lib") if p.exists()))


def _wheel_root() -> Optional[Path]:
    """``site-packages/nvidia/cu13`` where NVIDIA's CUDA 13 wheels put nvcc, the headers and the libraries."""
    try:
        import nvidia
    except ImportError:
        return None
    for base in getattr(nvidia, "__path__", []):
        if (Path(base) / "cu13").is_dir():
            return Path(base) / "cu13"
    return None


def _run(cmd: list[str], name: str) -> str:
    """Run a toolchain command; its warnings (stderr) on success, a CompilationError naming the model on failure."""
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise CompilationError(f"compiling model {name!r} for CUDA failed:\n{shlex.join(cmd)}\n{result.stderr[-4000:]}")
    return result.stderr


def compile_check(code: CudaCode, archs: Sequence[str], folder: Optional[Path] = None) -> str:
    """Compile the model's source and C ABI to an object for ``archs`` (no GPU needed); returns nvcc's
    warnings (empty when there are none)."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        source = atomic_write(Path(tmp) / f"{code.name}_lib.cu", library_source(code))
        return _run(toolchain().compile_command(source, Path(tmp) / f"{code.name}.o", archs), code.name)


def library_source(code: CudaCode) -> str:
    """The model's source followed by its C ABI (one translation unit)."""
    return code.source + "\n" + c_abi_source(code, code.namespace, extra=_device_functions(code))


def _device_functions(code: CudaCode) -> list[str]:
    """The C functions of the CUDA target beside the shared ones: ``infer`` on device pointers, ``reserve`` (device
    memory for given dims, up front), the check of the indices its kernels met (``check_status``), the device
    memory the Session holds (``device_bytes``), and the count of devices the runtime sees (0 without a driver)."""
    args = infer_args(code, []) + ["static_cast<cudaStream_t>(stream)"]
    return ["int sofie_infer_device(void *session, const size_t *dims, void *const *buffers, void *stream)",
            "{",
            "   Handle &h = *static_cast<Handle *>(session);",
            *(["   (void)dims;"] if not code.symbols else []),
            "   try {",
            f"      h.session.infer({', '.join(args)});",
            "   } catch (const std::invalid_argument &e) {",
            "      return sofie_fail_(1, e.what());",
            "   } catch (const std::exception &e) {",
            "      return sofie_fail_(2, e.what());",
            "   }",
            "   return 0;",
            "}",
            "",
            "int sofie_reserve(void *session, const size_t *dims)",
            "{",
            *(["   (void)dims;"] if not code.symbols else []),
            "   try {",
            f"      static_cast<Handle *>(session)->session.reserve({', '.join(args[:len(code.symbols)])});",
            "   } catch (const std::exception &e) {",
            "      return sofie_fail_(2, e.what());",
            "   }",
            "   return 0;",
            "}",
            "",
            "int sofie_check_status(void *session)",
            "{",
            "   try {",
            "      static_cast<Handle *>(session)->session.check_status();",
            "   } catch (const std::invalid_argument &e) {",
            "      return sofie_fail_(1, e.what());",
            "   } catch (const std::exception &e) {",
            "      return sofie_fail_(2, e.what());",
            "   }",
            "   return 0;",
            "}",
            "",
            "size_t sofie_device_bytes(void *session)",
            "{",
            "   return static_cast<Handle *>(session)->session.device_bytes();",
            "}",
            "",
            "int sofie_checks_indices()",
            "{",
            f"   return {int(code.checks_indices)};",
            "}",
            "",
            "int sofie_device_count()",
            "{",
            "   int count = 0;",
            "   return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;",
            "}",
            ""]


def build_library(code: CudaCode, archs: Sequence[str]) -> Path:
    """Compile (or find in the cache) the shared library of ``code`` for ``archs``, its weights file beside it."""
    key = hashlib.sha256(f"{code.digest}|{' '.join(archs)}|{' '.join(NVCC_FLAGS)}".encode()).hexdigest()[:24]
    folder = cache_dir() / "cuda" / f"{code.name}-{key}"
    library = folder / f"lib{code.name}.so"
    if library.exists():
        return library
    atomic_write(folder / f"{code.name}{WEIGHTS_SUFFIX}", code.weights_file)
    source = atomic_write(folder / f"{code.name}_lib.cu", library_source(code))
    obj = folder / f"{code.name}.o"
    tools = toolchain()
    _run(tools.compile_command(source, obj, archs), code.name)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".lib{code.name}.", suffix=".so")
    os.close(fd)
    try:
        _run(tools.link_command(obj, Path(tmp), code.libraries), code.name)
        os.replace(tmp, library)
    finally:
        Path(tmp).unlink(missing_ok=True)
        obj.unlink(missing_ok=True)
    return library


def device_archs() -> list[str]:
    """The architecture of each GPU the driver sees (``sm_90`` for an H100), asked of ``libcuda`` itself: empty
    where there is no driver or no GPU."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return []
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    archs = []
    for k in range(count.value):
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        driver.cuDeviceGetAttribute(ctypes.byref(major), _COMPUTE_CAPABILITY_MAJOR, k)
        driver.cuDeviceGetAttribute(ctypes.byref(minor), _COMPUTE_CAPABILITY_MINOR, k)
        archs.append(f"sm_{major.value}{minor.value}")
    return archs


# CUdevice_attribute values of the driver API.
_COMPUTE_CAPABILITY_MAJOR = 75
_COMPUTE_CAPABILITY_MINOR = 76


def require_device(model: str) -> None:
    """Raise a SofieError naming the model where no CUDA device can run it."""
    if not device_archs():
        raise SofieError(f"model {model!r}: no CUDA device or driver found (libcuda.so.1 is missing or sees no GPU); "
                         "the CUDA code can still be generated with `sofie-rdf emit --target cuda` or "
                         "Model.generate(target='cuda')")
