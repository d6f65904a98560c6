"""Native libraries called from Python without ROOT: the C ABI through ctypes, each call through ``_fastcall``.

A native model's shared library describes itself (``sofie_interface()``, see
``targets/_cxx/c_abi.py``), so a :class:`~sofie_rdf.session.Session` is made from the library alone: no
model, no sympy, no ROOT. The per-call path is the ``_fastcall`` extension (``_fastcall.c``), compiled once
per machine, Python and numpy into the compile cache by the compiler that builds the models; where that
fails the same C ABI is called through ctypes, a few microseconds slower per call.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import threading
import weakref
from functools import cache
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ._cache import cache_dir
from .errors import SofieError
from .ir.info import Interface
from .session import Session, failure, input_spec

_SOURCE = Path(__file__).with_name("_fastcall.c")
_lock = threading.Lock()


class Library:
    """A loaded native model library: its :class:`Interface` and its C ABI, typed for ctypes."""

    def __init__(self, path: Path):
        try:
            self.cdll = ctypes.CDLL(str(path))
            abi = self.cdll.sofie_interface
        except (OSError, AttributeError) as exc:
            raise SofieError(f"cannot load the native library {path}: {exc}") from None
        self.path = path
        abi.restype = ctypes.c_char_p
        self.interface = Interface.from_json(abi().decode())
        lib = self.cdll
        _types(lib.sofie_last_error, ctypes.c_char_p)
        _types(lib.sofie_create, ctypes.c_void_p, ctypes.c_char_p)
        _types(lib.sofie_destroy, None, ctypes.c_void_p)
        _types(lib.sofie_infer, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
        _types(lib.sofie_output_shape, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
               ctypes.c_void_p)
        _types(lib.sofie_output_data, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        _types(lib.sofie_runtime_dim, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t)
        _types(lib.sofie_profile_ns, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        _types(lib.sofie_profile_reset, None, ctypes.c_void_p)
        # Each Session runs on the thread that calls it (one per RDataFrame slot, Dask thread, ...): BLAS
        # starting threads of its own on top would oversubscribe the cores.
        blas_threads = getattr(lib, "scipy_openblas_set_num_threads", None)
        if blas_threads is not None:
            blas_threads(1)

    def error(self) -> str:
        return self.cdll.sofie_last_error().decode(errors="replace")

    def addresses(self) -> tuple[int, ...]:
        """The functions ``_fastcall.Caller`` calls: infer, output_shape, output_data, last_error, destroy."""
        return tuple(ctypes.cast(getattr(self.cdll, f), ctypes.c_void_p).value for f in
                     ("sofie_infer", "sofie_output_shape", "sofie_output_data", "sofie_last_error", "sofie_destroy"))


def _types(function: Any, restype: Any, *argtypes: Any) -> None:
    function.restype, function.argtypes = restype, list(argtypes)


_LIBRARIES: dict[Path, Library] = {}


def library(path: Path) -> Library:
    """The library at ``path``, loaded once per process."""
    with _lock:
        if path not in _LIBRARIES:
            _LIBRARIES[path] = Library(path)
        return _LIBRARIES[path]


class NativeBinding:
    """One C++ Session of a native library, called with numpy arrays (see :class:`Session`); ``extension``
    False calls it through ctypes alone (what happens where ``_fastcall`` cannot be built)."""

    def __init__(self, lib: Library, weights: Optional[Path], extension: bool = True):
        self.lib = lib
        name = lib.interface.name
        handle = lib.cdll.sofie_create(os.fsencode(weights) if weights is not None else None)
        if not handle:
            raise SofieError(f"model {name!r}: creating the C++ Session failed: {lib.error()}")
        self.handle = handle
        self._finalizer = weakref.finalize(self, lib.cdll.sofie_destroy, handle)
        itf = lib.interface
        self._n_dims = len(itf.symbols)
        self._inputs = tuple(input_spec(t, itf.symbols) for t in itf.inputs)
        self._outputs = tuple((np.dtype(t.dtype), len(t.shape), k in itf.runtime_sized) for k, t in enumerate(itf.outputs))
        self._single = len(itf.outputs) == 1
        # shapes of outputs that no dim changes (the ctypes path asks the library for the others)
        self._fixed = [t.shape if all(isinstance(d, int) for d in t.shape) else None for t in itf.outputs]
        self._fail = functools.partial(failure, name)
        self._extension = extension
        self._run = self._run_ctypes
        self._lock = threading.Lock()  # ctypes lets go of the GIL: one call at a time, as the extension does

    def direct(self, checked_infer: Callable[..., Any]) -> Optional[Callable[..., Any]]:
        """The extension's caller, which a Session calls as its ``infer``: arrays that fit go straight to the
        library, anything else to ``checked_infer``. None without the extension."""
        module = fastcall() if self._extension else None
        if module is None:
            return None
        self._finalizer.detach()  # the caller owns the C++ Session from here: it lives as long as any reference
        caller = module.Caller(self.lib.addresses(), self.handle, self._inputs, self._outputs, self._n_dims,
                               self._single, checked_infer, self._fail)
        self._run = caller.run
        return caller

    def fast(self, *arrays: Any) -> Any:
        """Without the extension, every call goes through the checked path (:meth:`run`)."""
        return NotImplemented

    def run(self, dims: list[int], arrays: list[np.ndarray]) -> Any:
        """The outputs of checked, contiguous arrays and the dims' values."""
        return self._run(tuple(dims), tuple(arrays))

    def _run_ctypes(self, dims: tuple, arrays: tuple) -> Any:
        with self._lock:
            return self._call_ctypes(dims, arrays)

    def _call_ctypes(self, dims: tuple, arrays: tuple) -> Any:
        lib = self.lib.cdll
        values = (ctypes.c_size_t * max(self._n_dims, 1))(*dims)
        outputs = [None if sized else np.empty(self._fixed[k] or self._shape(k, values), dtype)
                   for k, (dtype, _, sized) in enumerate(self._outputs)]
        buffers = (ctypes.c_void_p * (len(arrays) + len(outputs)))(
            *[_address(a) for a in arrays], *[_address(o) if o is not None else None for o in outputs])
        status = lib.sofie_infer(self.handle, values, buffers)
        if status:
            raise self._fail(status == 1, self.lib.error())
        for k, (dtype, _, sized) in enumerate(self._outputs):
            if sized:
                out = np.empty(self._shape(k, values), dtype)
                if out.nbytes:
                    ctypes.memmove(out.ctypes.data, lib.sofie_output_data(self.handle, k), out.nbytes)
                outputs[k] = out
        return outputs[0] if self._single else tuple(outputs)

    def _shape(self, k: int, values: Any) -> tuple[int, ...]:
        shape = (ctypes.c_size_t * max(self._outputs[k][1], 1))()
        status = self.lib.cdll.sofie_output_shape(self.handle, k, values, shape)
        if status:
            raise self._fail(status == 1, self.lib.error())
        return tuple(shape[: self._outputs[k][1]])

    def runtime_dim(self, k: int) -> int:
        return int(self.lib.cdll.sofie_runtime_dim(self.handle, k))

    def profile_ns(self) -> list[float]:
        ns = (ctypes.c_double * max(self.lib.interface.nodes, 1))()
        count = self.lib.cdll.sofie_profile_ns(self.handle, ns)
        return list(ns[:count])

    def profile_reset(self) -> None:
        self.lib.cdll.sofie_profile_reset(self.handle)


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def native_session(path: Path, weights: Optional[Path], code: Any = None) -> Session:
    """The Session of the native library at ``path`` reading ``weights`` (None: embedded or none)."""
    lib = library(path)
    sess = Session(lib.interface, NativeBinding(lib, weights), "native", weights, path.parent, code)
    sess.library = path
    return sess


@cache
def fastcall() -> Optional[Any]:
    """The ``_fastcall`` extension, built into the cache on first use; None where it cannot be built."""
    if os.environ.get("SOFIE_RDF_NO_FASTCALL"):
        return None
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    key = hashlib.sha256(_SOURCE.read_bytes() + f"{sys.version}|{np.__version__}|{np.get_include()}".encode())
    path = cache_dir() / "python" / f"_fastcall_{key.hexdigest()[:16]}{suffix}"
    try:
        if not path.exists():
            _build(path)
        spec = importlib.util.spec_from_file_location("_fastcall", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except (OSError, ImportError, subprocess.SubprocessError) as exc:
        import warnings

        warnings.warn(f"sofie-rdf: calling native models through ctypes ({exc})", RuntimeWarning, stacklevel=3)
        return None


def _build(path: Path) -> None:
    """Compile ``_fastcall.c`` with the models' compiler, atomically (several processes may race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fastcall.", suffix=".so")
    os.close(fd)
    cxx = shlex.split(os.environ.get("CC", "cc"))
    cmd = [*cxx, "-O2", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"], "-I", np.get_include(),
           "-o", tmp, str(_SOURCE)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise OSError(f"{shlex.join(cmd)} failed: {result.stderr[-2000:]}")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
