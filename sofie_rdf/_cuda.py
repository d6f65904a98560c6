"""CUDA model libraries called from Python: numpy arrays through host pointers, device arrays without a copy.

A CUDA library exports the C ABI of every target (``targets/_cxx/c_abi.py``: ``sofie_infer`` takes host
pointers and copies in and out) and ``sofie_infer_device``, which takes device pointers and a stream.  numpy
arrays take the host path of :class:`~sofie_rdf._native.NativeBinding`.  Device arrays (cupy arrays, torch
CUDA tensors: anything with ``__cuda_array_interface__``, or with ``__dlpack__`` on a CUDA device, read through
cupy) are passed as they are, the call queued on the array library's current stream, and the outputs are
device arrays of the same library, allocated on that stream (or the caller's, ``out=``): nothing is copied and
nothing waits on the host, except for models whose kernels check indices (Gather, the GNN family), which wait for
the call to raise a bad index as the numpy path does.

A device call costs little more than the C call: what the checks found is kept per signature of the arrays
(pointer, shape, dtype, device: read off torch tensors through their own attributes, off others through
``__cuda_array_interface__``), so a call repeating a signature skips them, and ``out=`` arrays are written in
place of new outputs.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

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
        _types(self.cdll.sofie_device_bytes, ctypes.c_size_t, ctypes.c_void_p)
        _types(self.cdll.sofie_checks_indices, ctypes.c_int)


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


def _pointer(a: Any) -> int:
    """The address of a device array this binding made (a torch tensor's through its own attribute)."""
    return a.data_ptr() if type(a).__module__.startswith("torch") else int(a.__cuda_array_interface__["data"][0])


def _stream_reader(d: DeviceArray) -> Callable[[], int]:
    """A function giving, at each call, the stream a call on ``d`` is queued on: its library's current one, else
    the stream its ``__cuda_array_interface__`` names (0: the default stream). Made once per call signature:
    torch's ``current_stream()`` builds a Stream object each time (microseconds of the device call), its raw
    reader gives the pointer alone."""
    if d.library == "cupy":
        import cupy

        return lambda: cupy.cuda.get_current_stream().ptr
    if d.library == "torch":
        import torch

        device = d.array.device
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        if raw is not None and device.index is not None:
            return lambda: raw(device.index)
        return lambda: torch.cuda.current_stream(device).cuda_stream
    stream = int(d.array.__cuda_array_interface__.get("stream") or 0)
    return lambda: stream


def _allocator(d: DeviceArray) -> Optional[Any]:
    """A function making an empty device array of the input's library from (shape, dtype); None for libraries
    other than cupy and torch."""
    if d.library == "cupy":
        import cupy

        return lambda shape, dtype: cupy.empty(shape, dtype)
    if d.library == "torch":
        import torch

        device = d.array.device
        to_torch = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
                    np.dtype(np.int64): torch.int64, np.dtype(np.int32): torch.int32, np.dtype(np.bool_): torch.bool}

        def make(shape: tuple, dtype: np.dtype) -> Any:
            if np.dtype(dtype) not in to_torch:
                raise SofieError(f"no torch dtype for an output of {np.dtype(dtype)}: pass cupy arrays")
            return torch.empty(shape, dtype=to_torch[np.dtype(dtype)], device=device)

        return make
    return None


# Signatures of calls whose checks are kept per Session; past this many, all are dropped.
MAX_SIGNATURES = 64


def signature(a: Any) -> Optional[tuple]:
    """What a device array's checks depend on (pointer, shape, dtype, device, layout), read as cheaply as its
    library allows: a torch tensor's own attributes, else ``__cuda_array_interface__``; None for DLPack-only
    arrays (checked on every call)."""
    if type(a).__module__.startswith("torch"):
        return (a.data_ptr(), a.shape, a.dtype, a.device, a.is_contiguous())
    cai = getattr(a, "__cuda_array_interface__", None)
    if cai is None:
        return None
    return (cai["data"][0], tuple(cai["shape"]), cai["typestr"], cai.get("strides"), type(a))


@dataclass
class _Prepared:
    """A checked call signature: the dims and pointers handed to the C call, and how outputs are made."""

    values: Any                                  # ctypes size_t array of the dims
    buffers: Any                                 # ctypes pointer array: inputs, then outputs (filled per call)
    shapes: list[tuple[int, ...]]                # of the outputs
    dtypes: list[np.dtype]
    first: DeviceArray                           # the first input: its library's stream runs the call
    stream: Callable[[], int]                    # that stream, read at each call
    make: Optional[Any]                          # (shape, dtype) -> a new output of that library
    outs: dict = field(default_factory=dict)     # signatures of out= arrays checked -> their pointers


class CudaBinding(NativeBinding):
    """One C++ Session of a CUDA library: numpy arrays through the host path of the shared C ABI, device arrays
    through ``sofie_infer_device``."""

    def __init__(self, lib: CudaLibrary, weights: Optional[Path]):
        super().__init__(lib, weights, extension=False)
        self._prepared: dict[tuple, _Prepared] = {}
        self._checks_indices = bool(lib.cdll.sofie_checks_indices())

    def fast(self, *arrays: Any) -> Any:
        """Device arrays go to the device path; anything else to the Session's checked host path."""
        if not arrays or not is_device_array(arrays[0]):
            return NotImplemented
        return self.device_call(arrays)

    def device_call(self, arrays: Sequence[Any], out: Optional[Sequence[Any]] = None) -> Any:
        """The outputs of device ``arrays``: new arrays of their library, or ``out`` written in place."""
        key = tuple(signature(a) for a in arrays)
        prepared = self._prepared.get(key) if None not in key else None
        if prepared is None:
            prepared = self._prepare(arrays)
            if None not in key:
                if len(self._prepared) >= MAX_SIGNATURES:
                    self._prepared.clear()
                self._prepared[key] = prepared
        n_in = len(arrays)
        if out is None:
            if prepared.make is None:
                raise SofieError(f"outputs for device arrays of {prepared.first.library!r} cannot be made: pass cupy "
                                 "arrays or torch CUDA tensors (or numpy arrays), or out= arrays")
            outputs = [prepared.make(shape, dtype) for shape, dtype in zip(prepared.shapes, prepared.dtypes)]
            pointers = [_pointer(o) for o in outputs]
        else:
            outputs = list(out)
            out_key = tuple(signature(o) for o in outputs)
            pointers = prepared.outs.get(out_key) if None not in out_key else None
            if pointers is None:
                pointers = self._checked_out(outputs, prepared)
                if None not in out_key and len(prepared.outs) < MAX_SIGNATURES:
                    prepared.outs[out_key] = pointers
        stream = prepared.stream()
        with self._lock:  # the prepared pointers are shared by the calls of one signature
            for k, pointer in enumerate(pointers):
                prepared.buffers[n_in + k] = pointer
            status = self.lib.cdll.sofie_infer_device(self.handle, prepared.values, prepared.buffers,
                                                      ctypes.c_void_p(stream))
            # indices checked on the device: a model with such nodes waits for its stream here to raise them
            if not status and self._checks_indices:
                status = self.lib.cdll.sofie_check_status(self.handle)
        if status:
            raise self._fail(status == 1, self.lib.error())
        return outputs[0] if self._single else tuple(outputs)

    def _prepare(self, arrays: Sequence[Any]) -> _Prepared:
        """The checks of a new signature (those of the numpy path) and the output shapes its dims give."""
        dims, inputs = check_device_arrays(self.lib.interface, arrays)
        values = (ctypes.c_size_t * max(self._n_dims, 1))(*dims)
        shapes = [self._fixed[k] or self._shape(k, values) for k in range(len(self._outputs))]
        buffers = (ctypes.c_void_p * (len(inputs) + len(shapes)))(*[d.pointer for d in inputs])
        dtypes = [dtype for dtype, _, _ in self._outputs]
        first = inputs[0]
        return _Prepared(values, buffers, shapes, dtypes, first, _stream_reader(first), _allocator(first))

    def _checked_out(self, outputs: list[Any], prepared: _Prepared) -> list[int]:
        """The pointers of ``out=`` arrays, each checked against the output it receives."""
        name = self.lib.interface.name
        if len(outputs) != len(prepared.shapes):
            raise ShapeError(f"model {name!r} has {len(prepared.shapes)} output(s), got {len(outputs)} out= arrays")
        pointers = []
        for k, (o, shape, dtype) in enumerate(zip(outputs, prepared.shapes, prepared.dtypes)):
            where = f"model {name!r}, out= array {k}"
            if not is_device_array(o):
                raise ShapeError(f"{where}: expected a device array, got {type(o).__name__}")
            d = device_array(o, where)
            if d.shape != tuple(shape) or d.dtype != dtype:
                raise ShapeError(f"{where}: expected {dtype} of shape {tuple(shape)}, got {d.dtype} of shape {d.shape}")
            pointers.append(d.pointer)
        return pointers

    def device_bytes(self) -> int:
        """Device memory the C++ Session holds now (weights, arena, staging, library workspace)."""
        return int(self.lib.cdll.sofie_device_bytes(self.handle))

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


class CudaSession(Session):
    """A Session on the GPU: ``infer`` also takes device arrays (outputs on the device, or into ``out=``), and
    the Session tells the device memory it holds."""

    def infer(self, *arrays: Any, out: Optional[Sequence[Any]] = None, **columnar: Any) -> Any:
        """As :meth:`Session.infer`; with device arrays, ``out`` (a device array per output, a sequence of them
        for several outputs) receives the outputs instead of new arrays."""
        if out is None:
            return super().infer(*arrays, **columnar)
        if columnar or not arrays or not is_device_array(arrays[0]):
            raise SofieError(f"model {self.name!r}: out= is for device arrays (cupy, torch CUDA tensors)")
        return self._binding.device_call(arrays, [out] if is_device_array(out) else list(out))

    def __call__(self, *arrays: Any, out: Optional[Sequence[Any]] = None, **columnar: Any) -> Any:
        return self.infer(*arrays, out=out, **columnar)

    def device_bytes(self) -> int:
        """Bytes of device memory this Session holds now: its weights, its arena (grown to the largest call so
        far), the staging buffers of host calls and cuBLAS's workspace; none of the caller's arrays."""
        return self._binding.device_bytes()


def cuda_session(path: Path, weights: Path, code: Any = None) -> CudaSession:
    """The Session of the CUDA library at ``path`` reading ``weights``."""
    lib = cuda_library(path)
    sess = CudaSession(lib.interface, CudaBinding(lib, weights), "cuda", weights, path.parent, code)
    sess.library = path
    return sess
