"""CUDA model libraries called from Python: numpy arrays through host pointers, device arrays without a copy.

A CUDA library exports the C ABI of every target (``targets/_cxx/c_abi.py``: ``sofie_infer`` takes host
pointers and copies in and out) and ``sofie_infer_device``, which takes device pointers and a stream.  numpy
arrays take the host path of :class:`~sofie_rdf._native.NativeBinding`.  Device arrays (cupy arrays, torch
CUDA tensors: anything with ``__cuda_array_interface__``, or with ``__dlpack__`` on a CUDA device, read through
cupy) are passed as they are, the call queued on the array library's current stream, and the outputs are
device arrays of the same library, allocated on that stream: nothing is copied and nothing waits on the host,
except for models whose kernels check indices (Gather, the GNN family), which wait for the call to raise a bad
index as the numpy path does.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ._native import Library, NativeBinding, _types
from .errors import ShapeError, SofieError
from .ir.info import Interface
from .session import Session, input_spec

# DLPack's device type of CUDA memory.
_DLPACK_CUDA = 2
_lock = threading.Lock()
_LIBRARIES: dict[Path, CudaLibrary] = {}


class CudaLibrary(Library):
    """A loaded CUDA model library: the shared C ABI and the CUDA target's own functions."""

    def __init__(self, path: Path):
        super().__init__(path)
        _types(self.cdll.sofie_infer_device, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
               ctypes.c_void_p)
        _types(self.cdll.sofie_check_status, ctypes.c_int, ctypes.c_void_p)
        _types(self.cdll.sofie_reserve, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        _types(self.cdll.sofie_device_count, ctypes.c_int)


def cuda_library(path: Path) -> CudaLibrary:
    """The CUDA library at ``path``, loaded once per process."""
    with _lock:
        if path not in _LIBRARIES:
            _LIBRARIES[path] = CudaLibrary(path)
        return _LIBRARIES[path]


@dataclass(frozen=True)
class DeviceArray:
    """What a device array says of itself: its address, shape, dtype, and the library that made it."""

    array: Any
    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype
    library: str  # "cupy", "torch", or the module of an object that only exposes the interface


def is_device_array(a: Any) -> bool:
    """Whether ``a`` lives in CUDA memory (``__cuda_array_interface__``, or DLPack on a CUDA device)."""
    if hasattr(a, "__cuda_array_interface__"):
        return True
    device = getattr(a, "__dlpack_device__", None)
    return callable(device) and not isinstance(a, np.ndarray) and device()[0] == _DLPACK_CUDA


def device_array(a: Any, where: str) -> DeviceArray:
    """The :class:`DeviceArray` of a cupy array, a torch CUDA tensor or any object with
    ``__cuda_array_interface__`` (C-contiguous); a DLPack-only CUDA array is viewed through cupy."""
    if not hasattr(a, "__cuda_array_interface__"):
        try:
            import cupy
        except ImportError:
            raise SofieError(f"{where}: a DLPack CUDA array needs cupy to be read without a copy") from None
        a = cupy.from_dlpack(a)
    cai = a.__cuda_array_interface__
    shape = tuple(int(d) for d in cai["shape"])
    dtype = np.dtype(cai["typestr"])
    strides = cai.get("strides")
    if strides is not None and tuple(strides) != _contiguous_strides(shape, dtype.itemsize) and int(np.prod(shape)) > 1:
        raise ShapeError(f"{where}: the device array must be C-contiguous (strides {tuple(strides)}, shape {shape})")
    return DeviceArray(a, int(cai["data"][0]), shape, dtype, type(a).__module__.split(".")[0])


def _contiguous_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    strides, step = [], itemsize
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


def check_device_arrays(itf: Interface, arrays: Sequence[Any]) -> tuple[list[int], list[DeviceArray]]:
    """The dims' values and the device arrays of a call, or a ShapeError saying what does not fit (the checks
    of the numpy path, on what the arrays say of themselves)."""
    if len(arrays) != len(itf.inputs):
        raise ShapeError(f"model {itf.name!r} takes {len(itf.inputs)} input(s) "
                         f"({', '.join(t.name for t in itf.inputs)}), got {len(arrays)}")
    values: dict[int, int] = {}
    out = []
    for t, a in zip(itf.inputs, arrays):
        where = f"model {itf.name!r}, input {t.name!r}"
        if not is_device_array(a):
            raise ShapeError(f"{where}: inputs are all device arrays or all host arrays, got {type(a).__name__}")
        d = device_array(a, where)
        dtype, pattern = input_spec(t, itf.symbols)
        if d.dtype != dtype:
            raise ShapeError(f"{where}: expected dtype {dtype}, got {d.dtype}")
        if pattern is None:
            raise ShapeError(f"{where}: dims computed from other dims ({t.shape}) are checked for host arrays only")
        if len(d.shape) != len(pattern):
            raise ShapeError(f"{where}: expected shape {t.shape}, got {d.shape}")
        for axis, (want, got) in enumerate(zip(pattern, d.shape)):
            ok = want == got if want >= 0 else values.setdefault(~want, got) == got
            if not ok:
                raise ShapeError(f"{where}: expected shape {t.shape}, got {d.shape} (axis {axis})")
        out.append(d)
    return [values.get(k, 0) for k in range(len(itf.symbols))], out


def _allocator(d: DeviceArray) -> tuple[Any, int]:
    """(a function making an empty device array of the input's library from (shape, dtype), that library's
    current stream as a pointer)."""
    if d.library == "cupy":
        import cupy

        return (lambda shape, dtype: cupy.empty(shape, dtype)), cupy.cuda.get_current_stream().ptr
    if d.library == "torch":
        import torch

        device = d.array.device
        to_torch = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
                    np.dtype(np.int64): torch.int64, np.dtype(np.int32): torch.int32, np.dtype(np.bool_): torch.bool}

        def make(shape: tuple, dtype: np.dtype) -> Any:
            if np.dtype(dtype) not in to_torch:
                raise SofieError(f"no torch dtype for an output of {np.dtype(dtype)}: pass cupy arrays")
            return torch.empty(shape, dtype=to_torch[np.dtype(dtype)], device=device)

        return make, torch.cuda.current_stream(device).cuda_stream
    raise SofieError(f"outputs for device arrays of {d.library!r} cannot be made: pass cupy arrays or torch CUDA "
                     "tensors (or numpy arrays)")


class CudaBinding(NativeBinding):
    """One C++ Session of a CUDA library: numpy arrays through the host path of the shared C ABI, device arrays
    through ``sofie_infer_device``."""

    def __init__(self, lib: CudaLibrary, weights: Optional[Path]):
        super().__init__(lib, weights, extension=False)

    def fast(self, *arrays: Any) -> Any:
        """Device arrays go to the device path; anything else to the Session's checked host path."""
        if not arrays or not is_device_array(arrays[0]):
            return NotImplemented
        itf = self.lib.interface
        dims, inputs = check_device_arrays(itf, arrays)
        make, stream = _allocator(inputs[0])
        values = (ctypes.c_size_t * max(self._n_dims, 1))(*dims)
        outputs = [make(self._fixed[k] or self._shape(k, values), dtype) for k, (dtype, _, _) in enumerate(self._outputs)]
        pointers = [d.pointer for d in inputs] + [device_array(o, itf.name).pointer for o in outputs]
        buffers = (ctypes.c_void_p * len(pointers))(*pointers)
        with self._lock:
            status = self.lib.cdll.sofie_infer_device(self.handle, values, buffers, ctypes.c_void_p(stream))
            # indices checked on the device: a model with such nodes waits for its stream here to raise them
            status = status or self.lib.cdll.sofie_check_status(self.handle)
        if status:
            raise self._fail(status == 1, self.lib.error())
        return outputs[0] if self._single else tuple(outputs)


    def reserve(self, sizes: dict[str, int]) -> None:
        """Device memory for calls up to ``sizes`` (dim name -> value), allocated now."""
        itf = self.lib.interface
        unknown = sorted(set(sizes) - set(itf.symbols))
        if unknown:
            raise SofieError(f"model {itf.name!r} has no dim {', '.join(map(repr, unknown))} to reserve for "
                             f"(its dims: {', '.join(itf.symbols) or 'none'})")
        values = (ctypes.c_size_t * max(self._n_dims, 1))(*[int(sizes.get(s, 0)) for s in itf.symbols])
        if self.lib.cdll.sofie_reserve(self.handle, values):
            raise self._fail(False, self.lib.error())


def cuda_session(path: Path, weights: Path, code: Any = None) -> Session:
    """The Session of the CUDA library at ``path`` reading ``weights``."""
    lib = cuda_library(path)
    sess = Session(lib.interface, CudaBinding(lib, weights), "cuda", weights, path.parent, code)
    sess.library = path
    return sess
