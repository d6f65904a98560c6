"""Native compilation: the generated header built by the system compiler.

The full header is compiled (``-O3 -march=native -fno-trapping-math`` by default) into a shared
library together with thin out-of-line wrappers; Cling only sees the
wrappers' declarations, so the hot code is the compiler's, not the JIT's.
Libraries are cached on disk by content hash and never rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Optional, Sequence

from ... import _root
from ..._cache import cache_dir
from ...errors import CompilationError
from .._cxx.c_abi import c_abi_source
from .files import write_files
from .header import GeneratedCode, storage_types_source
from .weights import atomic_write, write_binary

DEFAULT_FLAGS = ("-O3", "-march=native", "-fno-trapping-math")  # no -ffast-math: IEEE results kept
# Session members a header has only sometimes (GeneratedCode.signatures key -> the forwarding call).
_OPTIONAL_MEMBERS = {"runtime_dim": "runtime_dim(k)", "profile_ns": "profile_ns()", "profile_reset": "profile_reset()"}


def interface_header(code: GeneratedCode, namespace: str) -> str:
    """Declarations of ``namespace::Session`` forwarding to the compiled implementation."""
    sig = code.signatures
    ctor = sig["constructor"].replace("explicit ", "")
    return "\n".join([
        f"// Interface of the natively compiled model {code.name}; the code is in its shared library.",
        "#include <memory>", "#include <string>", "#include <tuple>", "#include <vector>", "#include <cstdint>",
        *([storage_types_source()] if code.storage_types else []),  # storage types are part of the interface
        f"namespace {code.namespace} {{ struct Session; }}",
        f"namespace {namespace} {{",
        "struct Session {",
        f"   {'explicit ' if code.weights_mode != 'embed' else ''}{ctor};",  # a weights file: Session(filename)
        "   ~Session();",
        "   Session(const Session &);",
        "   Session &operator=(const Session &);",
        "   Session(Session &&) noexcept;",
        "   Session &operator=(Session &&) noexcept;",
        f"   {sig['infer']};",
        f"   {sig['infer_vectors']};",
        *[f"   {sig[key]};" for key in _OPTIONAL_MEMBERS if key in sig],
        "private:",
        f"   std::unique_ptr<{code.namespace}::Session> fImpl;",
        "};",
        f"}} // namespace {namespace}",
        "",
    ])


def _definitions(code: GeneratedCode, namespace: str) -> str:
    sig = code.signatures
    impl = f"{code.namespace}::Session"
    ctor = sig["constructor"].replace("explicit ", "")
    has_file = code.weights_mode != "embed"
    ctor_def = ctor.split(" = ")[0] + (")" if has_file else "")
    return "\n".join([
        f"namespace {namespace} {{",
        f"{ctor_def.replace('Session(', 'Session::Session(', 1)} : fImpl(new {impl}({'filename' if has_file else ''})) {{}}",
        "Session::~Session() = default;",
        f"Session::Session(const Session &other) : fImpl(new {impl}(*other.fImpl)) {{}}",
        "Session &Session::operator=(const Session &other) { *fImpl = *other.fImpl; return *this; }",
        "Session::Session(Session &&) noexcept = default;",
        "Session &Session::operator=(Session &&) noexcept = default;",
        f"{sig['infer'].replace(' infer(', ' Session::infer(', 1)} {{ fImpl->infer({sig['infer_args']}); }}",
        f"{sig['infer_vectors'].replace(' infer(', ' Session::infer(', 1)} "
        f"{{ return fImpl->infer({sig['infer_vectors_args']}); }}",
        *[f"{sig[key].replace(f' {key}(', f' Session::{key}(', 1)} {{ return fImpl->{call}; }}"
          for key, call in _OPTIONAL_MEMBERS.items() if key in sig],
        f"}} // namespace {namespace}",
        "",
    ])


# Flags after which GCC (before 13) links crtfastmath.o into a shared library: loading it turns on
# flush-to-zero for the whole process (numpy, ROOT and every other model), so they stay off the link line.
_FAST_MATH_LINK_FLAGS = ("-ffast-math", "-Ofast", "-funsafe-math-optimizations")


def _toolchain(with_root: bool) -> tuple[list[str], list[str], list[str]]:
    """(compiler, include flags, library flags); ``with_root`` adds ROOT's headers and I/O libraries."""
    lib, include = _root.blas_paths()
    includes = ["-I", str(include)]
    libraries = ["-L", str(lib.parent), f"-l{lib.stem[3:]}", f"-Wl,-rpath,{lib.parent}"]
    if with_root:
        root_dirs = _root.root().gROOT
        includes += ["-I", str(root_dirs.GetIncludeDir())]
        libraries += ["-L", str(root_dirs.GetLibDir()), "-lCore", "-lRIO", f"-Wl,-rpath,{root_dirs.GetLibDir()}"]
    return _toolchain_compiler(), includes, libraries


@cache
def compiler_found() -> bool:
    """Whether the C++ compiler native builds use (``$CXX``, else ``c++``) is on this machine."""
    return shutil.which(_toolchain_compiler()[0]) is not None


def _toolchain_compiler() -> list[str]:
    return shlex.split(os.environ.get("CXX", "c++")) or ["c++"]


def compiler_command(source: Path, output: Path, flags: Sequence[str], with_root: bool = False) -> list[str]:
    """The compile-and-link line in one command (the benchmarks' driver programs)."""
    cxx, includes, libraries = _toolchain(with_root)
    return [*cxx, "-std=c++17", *flags, "-fPIC", "-shared", *includes, "-o", str(output), str(source), *libraries]


def library_commands(source: Path, output: Path, flags: Sequence[str], with_root: bool = False) -> list[list[str]]:
    """Compile ``source`` to an object with ``flags``, then link the shared library without fast-math flags."""
    cxx, includes, libraries = _toolchain(with_root)
    obj = output.with_suffix(".o")
    link_flags = [f for f in flags if f not in _FAST_MATH_LINK_FLAGS]
    return [[*cxx, "-std=c++17", *flags, "-fPIC", "-c", *includes, "-o", str(obj), str(source)],
            [*cxx, *link_flags, "-shared", "-o", str(output), str(obj), *libraries]]


def build_native(code: GeneratedCode, namespace: str, flags: Optional[Sequence[str]] = None) -> Path:
    """Compile (or find in the cache) the library of ``code``; returns its path.

    The library holds the C++ ``namespace::Session`` that ROOT declares (``load_native``) and the C ABI
    that Python calls without ROOT (``c_abi.py``): one library for RDataFrame and for numpy.
    """
    flags = tuple(DEFAULT_FLAGS if flags is None else flags)
    key = hashlib.sha256(f"{code.digest}|{namespace}|{' '.join(flags)}".encode()).hexdigest()[:24]
    folder = cache_dir() / f"{code.name}-{key}"
    library = folder / _library_name(folder)
    if library.exists():
        return library
    write_files(code, folder)
    if code.weights_mode == "dat":
        write_binary(folder / binary_weights_name(code.name), code.weights)
    atomic_write(folder / f"{code.name}_interface.hxx", interface_header(code, namespace))
    source = atomic_write(folder / f"{code.name}_session.cpp",
                          f'#include "{code.name}.hxx"\n#include "{code.name}_interface.hxx"\n\n'
                          + _definitions(code, namespace) + "\n" + c_abi_source(code, namespace))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".lib{code.name}.", suffix=".so")
    os.close(fd)
    try:
        for cmd in library_commands(source, Path(tmp), flags, with_root=code.weights_mode == "root"):
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                Path(tmp).unlink(missing_ok=True)
                raise CompilationError(f"compiling model {code.name!r} failed:\n{shlex.join(cmd)}\n"
                                       f"{result.stderr[-4000:]}")
    finally:
        Path(tmp).with_suffix(".o").unlink(missing_ok=True)
    os.replace(tmp, library)
    return library


def binary_weights_name(name: str) -> str:
    """The weights file of a ``weights="dat"`` library that its Sessions read: the ``.dat`` text's binary twin
    (``weights.write_binary``), next to the text file (which stays for people and other programs)."""
    return f"{name}.weights.bin"


def _library_name(folder: Path) -> str:
    """Unique per build: ROOT loads a library name only once per process."""
    return f"lib{folder.name}.so"


def load_native(name: str, namespace: str, library: Path) -> None:
    """Load the built library of model ``name`` into ROOT and declare its C++ interface, once."""
    key = f"native:{namespace}:{library.parent.name}"
    if _root.is_declared(key):
        return
    ROOT = _root.root()
    _root.load_blas()
    if ROOT.gSystem.Load(str(library)) < 0:
        raise CompilationError(f"cannot load {library}")
    _root.declare(key, (library.parent / f"{name}_interface.hxx").read_text())
