"""``sofie_rdf.compile``: from a model to a callable Session, and ``session_of`` for the integrations.

A native model file compiled before is found in the cache's index (``_cache.py``) and called without being
parsed: that path imports neither ROOT nor sympy, nor any front end, so a fresh process gets its first result
in a fraction of a second. Everything else goes through the IR, planned once per process.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from . import _cache
from ._native import native_session
from ._root import claim_namespace, namespace_for
from .errors import NeedsDimsError, SofieError
from .session import Session, jit_session

if TYPE_CHECKING:
    from .model import Model
    from .targets.cpu import GeneratedCode


def compile(model: Any, backend: str = "auto", flags: Optional[Sequence[str]] = None,  # noqa: A001
            weights: str = "dat", profile: bool = False, reserve: Optional[Mapping[str, int]] = None,
            sample: Any = None) -> Session:
    """Compile ``model`` (a :class:`Model` or anything :func:`sofie_rdf.load` takes) and return a :class:`Session`.

    ``backend="cuda"`` generates CUDA code for the GPUs present, builds it with nvcc (the ``[cuda]`` extra) and
    calls it through its C ABI: numpy in and out, or device arrays (cupy, torch) in and out without a copy;
    without a GPU it raises a SofieError after generating (``Model.generate(target="cuda")`` needs none).
    ``reserve`` (``backend="cuda"`` only) allocates the device memory of calls up to those dims now, e.g.
    ``{"N": 16384}``; otherwise it grows to the largest dims seen.
    ``backend="auto"`` (the default) is ``$SOFIE_RDF_BACKEND`` where set, else ``"native"`` where a C++ compiler
    is found (``$CXX``, ``c++``), else ``"jit"``: Cling's code took 1.4x to 6.8x g++'s time with ``-march=native``
    (sofie_rdf imported before ROOT) and 3x to 32x with Cling's own flags (benchmarks/results/build_paths_*).
    ``backend="jit"`` declares the header to Cling; ``"native"`` builds it with
    the system compiler (``flags``, default ``-O3 -march=native -fno-trapping-math``) into a cached
    shared library called through its C ABI, without ROOT.  Either way a model with the same content
    is planned once and compiled once per process (native: once per machine; a model file compiled
    before is not even parsed again).  ``weights`` is
    the weights mode of the generated code (see :meth:`Model.generate`), or how the weights of the float
    products are stored: ``"bf16"``, ``"fp16"`` or ``"int8"`` (one scale per output column) store them smaller
    and compute in float (never the default; CPU backends only).  The Session then carries a
    :class:`~sofie_rdf.precision.PrecisionReport` (``sess.precision_report``): the largest deviation from the
    float32 model on ``sample`` (the inputs as ``infer`` takes them, a tuple for several), or on random normal
    inputs with every open dim 16.  ``profile`` compiles timers around every node;
    :meth:`Session.profile` builds such a twin of a Session by itself.
    """
    backend = resolve_backend(backend)
    if backend not in ("jit", "native", "cuda"):
        raise SofieError(f"backend must be 'auto', 'jit', 'native' or 'cuda', got {backend!r}")
    from .ir.info import WEIGHT_DTYPES

    weights = "dat" if weights == "float32" else weights
    if weights in WEIGHT_DTYPES:
        if backend == "cuda":
            raise SofieError(f"weights={weights!r} is for the CPU backends: the CUDA target computes with the float32 "
                             "weights the model gives")
        from .precision import compare_precision

        reduced = _compile_cpu(model, backend, flags, "dat", profile, weights)
        return compare_precision(reduced, compile(model, backend, flags, "dat"), weights, sample)
    if sample is not None:
        raise SofieError("sample= goes with weights='bf16', 'fp16' or 'int8' (the precision report's inputs)")
    if backend == "cuda":
        model = _as_model(model)
        options = (backend, tuple(flags) if flags is not None else None, weights, profile, "float32")
        if model.needs_dims is not None:
            return _specialising(model, options, reserve)
        return _compile_model(model, options, reserve, None)
    if reserve is not None:
        raise SofieError("reserve= is for backend='cuda' (the CPU backends allocate on the first call)")
    return _compile_cpu(model, backend, flags, weights, profile, "float32")


def _compile_cpu(model: Any, backend: str, flags: Optional[Sequence[str]], weights: str, profile: bool,
                 weights_dtype: str) -> Session:
    """The Session of a CPU backend (``jit`` or ``native``), from the index of compiled files where it is there;
    a model that :attr:`~sofie_rdf.Model.needs_dims` is built for the dims of each call (:mod:`sofie_rdf._specialise`)."""
    from .ir.info import WEIGHT_DTYPES

    options = (backend, tuple(flags) if flags is not None else None, weights, profile, weights_dtype)
    key = _index_key(model, options)
    entry = _cache.index_lookup(key) if key is not None else None
    if entry is not None and claim_namespace(entry["namespace"], entry["namespace_owner"]):
        return _from_index(entry, model, options)
    source = model
    model = _as_model(model)
    from .targets.cpu import WEIGHTS_MODES

    if weights not in WEIGHTS_MODES:
        raise SofieError(f"weights must be a mode ({', '.join(WEIGHTS_MODES)}) or how the products' weights are stored "
                         f"({', '.join(WEIGHT_DTYPES)}), got {weights!r}")
    if model.needs_dims is not None:
        return _specialising(model, options, None)
    sess = _compile_model(model, options, None, key)
    sess.profiling_twin = lambda: _compile_cpu(source if key is not None else model, backend, flags, weights, True,
                                               weights_dtype)
    return sess


def _compile_model(model: Model, options: tuple, reserve: Optional[Mapping[str, int]], key: Optional[str]) -> Session:
    """The Session of ``model`` built with ``options`` (backend, flags, weights, profile, weights dtype); a native
    library is indexed under ``key`` when given."""
    backend, flags, weights, profile, weights_dtype = options
    if backend == "cuda":
        return _compile_cuda(model, flags, weights, profile, reserve or {})
    if backend == "jit":
        sess = _compile_jit(model, weights, profile, weights_dtype)
    else:
        sess, owner = _compile_native(model, flags, weights, profile, weights_dtype)
        if key is not None:
            _cache.index_store(key, {"library": str(sess.library), "namespace": sess.namespace,
                                     "namespace_owner": owner, "weights": str(sess.weights_path or "") or None})
    sess.model = model
    return sess


def _specialising(model: Model, options: tuple, reserve: Optional[Mapping[str, int]]) -> Session:
    """The Session of a model one build cannot serve: a build per set of dims (:mod:`sofie_rdf._specialise`),
    native ones indexed on disk by their dims."""
    from ._specialise import SpecialisingSession

    def build(specialised: Model, key: Optional[str]) -> Session:
        entry = _cache.index_lookup(key) if key is not None else None
        if entry is not None and claim_namespace(entry["namespace"], entry["namespace_owner"]):
            return _from_index(entry, specialised, options)
        sess = _compile_model(specialised, options, reserve, key)
        sess.profiling_twin = lambda: _compile_model(specialised, options[:3] + (True,) + options[4:], reserve, None)
        return sess

    return SpecialisingSession(model, options[0], build, options if options[0] == "native" else None)


def resolve_backend(backend: str) -> str:
    """``"auto"`` as the backend it stands for here: ``$SOFIE_RDF_BACKEND`` where set (``jit`` or ``native``),
    else ``"native"`` where a C++ compiler is found, else ``"jit"``."""
    if backend != "auto":
        return backend
    chosen = os.environ.get("SOFIE_RDF_BACKEND", "auto")
    if chosen not in ("auto", "jit", "native"):
        raise SofieError(f"SOFIE_RDF_BACKEND must be 'auto', 'jit' or 'native', got {chosen!r}")
    if chosen != "auto":
        return chosen
    from .targets.cpu.native import compiler_found

    return "native" if compiler_found() else "jit"


def session_of(session_or_model: Any, backend: str = "auto") -> Session:
    """The compiled Session of a Session, Model or anything ``sr.load`` takes (for the integrations)."""
    if isinstance(session_or_model, Session):
        return session_or_model
    return compile(session_or_model, backend=backend)


def cling_session_of(session_or_model: Any, backend: str = "auto") -> Session:
    """:func:`session_of`, its C++ ``Session`` declared to Cling (what RDataFrame integrations call): a native
    library is loaded into ROOT here, the first time it is needed."""
    sess = session_of(session_or_model, backend)
    from ._specialise import SpecialisingSession

    if isinstance(sess, SpecialisingSession):
        raise NeedsDimsError(f"{sess.model.needs_dims}.  RDataFrame calls one C++ Session per event: load the model "
                             "with those dims fixed (sr.load(..., dims={...}))", sess.model.needs_dims.dims)
    if sess.backend == "cuda":
        raise SofieError(f"model {sess.name!r}: RDataFrame runs the CPU target (one event per call); compile the "
                         "model with backend='native' or 'jit' for it, and use sr.columnar with the CUDA Session")
    if sess.backend == "native":
        from .targets.cpu.native import load_native

        load_native(sess.name, sess.namespace, sess.library)
    return sess


def _as_model(model: Any) -> Model:
    from .model import Model

    if isinstance(model, Model):
        return model
    from .api import load

    return load(model)


def _index_key(model: Any, options: tuple) -> Optional[str]:
    """The index key of a native compile of a model file, or None: the JIT declares what it parses anyway, and
    user operators (``sofie_rdf.custom``) may change what a file compiles to without changing the file."""
    if options[0] != "native" or "sofie_rdf.custom" in sys.modules:
        return None
    return _cache.index_key(model, options)


def _from_index(entry: dict[str, Any], source: Any, options: tuple) -> Session:
    """The Session of a library found in the index; its model and code are made again only when asked for."""
    backend, flags, weights, _, weights_dtype = options
    sess = native_session(Path(entry["library"]), Path(entry["weights"]) if entry.get("weights") else None)
    sess.model_source = lambda: _as_model(source)
    sess.code_source = lambda: _native_code(sess.model, flags, weights, sess.interface.profile, weights_dtype)[2]
    sess.profiling_twin = lambda: _compile_cpu(source, backend, flags, weights, True, weights_dtype)
    return sess


def _compile_jit(model: Model, weights: str, profile: bool, weights_dtype: str) -> Session:
    from .targets.cpu import cpu_target, write_files
    from .targets.cpu.jit import jit_declare

    target = cpu_target("jit", weights=weights_dtype)
    code = model.code(weights=weights, target=target, profile=profile)
    namespace = namespace_for(code.name, code.digest)
    if namespace != code.namespace:
        code = model.code(namespace=namespace, weights=weights, target=target, profile=profile)
    folder = _cache.cache_dir() / "jit" / f"{code.name}-{code.digest[:24]}"
    files = write_files(code, folder)
    jit_declare(code, folder)
    return jit_session(code, namespace, files.weights, folder)


def _compile_cuda(model: Model, flags: Optional[Sequence[str]], weights: str, profile: bool,
                  reserve: Mapping[str, int]) -> Session:
    """The Session of the model's CUDA library, built for the local GPUs' architectures (unless cached)."""
    from ._cuda import cuda_session
    from .targets.cuda import WEIGHTS_SUFFIX, cuda_target
    from .targets.cuda.toolchain import build_library, device_archs, require_device

    if flags is not None or weights != "dat" or profile:
        raise SofieError("backend='cuda' takes no flags, weights mode or profiling build")
    archs = tuple(dict.fromkeys(device_archs()))
    code = model.code(target=cuda_target(archs=archs or None))  # refuses unsupported operators, GPU or not
    require_device(model.name)
    library = build_library(code, archs)
    sess = cuda_session(library, library.parent / f"{code.name}{WEIGHTS_SUFFIX}", code)
    if reserve:
        sess._binding.reserve(dict(reserve))
    sess.model = model
    return sess


def _native_code(model: Model, flags: Optional[Sequence[str]], weights: str, profile: bool,
                 weights_dtype: str) -> tuple[str, str, GeneratedCode]:
    """(the namespace of the library's C++ interface, who owns it, the code the library is built from, in
    ``<namespace>_impl``). The flags are part of the owner: one header built for two instruction sets is two
    libraries."""
    from .targets.cpu import cpu_target

    target = cpu_target("native", flags, weights_dtype)
    plain = model.code(weights=weights, target=target, profile=profile)
    owner = hashlib.sha256(f"native|{' '.join(flags) if flags is not None else ''}|{plain.digest}".encode()).hexdigest()
    namespace = namespace_for(plain.name, owner)
    return namespace, owner, model.code(namespace=f"{namespace}_impl", weights=weights, target=target, profile=profile)


def _compile_native(model: Model, flags: Optional[Sequence[str]], weights: str, profile: bool,
                    weights_dtype: str) -> tuple[Session, str]:
    """The Session of the model's library (built unless in the cache) and the owner of its namespace."""
    from .targets.cpu.native import binary_weights_name, build_native

    namespace, owner, code = _native_code(model, flags, weights, profile, weights_dtype)
    library = build_native(code, namespace, flags)
    files = {"dat": binary_weights_name(code.name), "root": f"{code.name}.root"}
    weights_file = library.parent / files[code.weights_mode] if code.weights_mode in files else None
    return native_session(library, weights_file, code), owner


__all__ = ["cling_session_of", "compile", "resolve_backend", "session_of"]
