"""``sofie_rdf.compile``: from a model to a callable Session, and ``session_of`` for the integrations."""

from __future__ import annotations

import hashlib
from typing import Any, Optional, Sequence

from .errors import SofieError
from .model import Model
from .session import Session
from .targets.cpu import WEIGHTS_MODES, WEIGHTS_SUFFIXES, cpu_target, write_files
from .targets.cpu.jit import jit_declare, namespace_for
from .targets.cpu.native import build_native, load_native
from .targets.cpu.native import cache_dir as _cache_dir


def compile(model: Any, backend: str = "jit", flags: Optional[Sequence[str]] = None,  # noqa: A001
            weights: str = "dat", profile: bool = False) -> Session:
    """Compile ``model`` (a :class:`Model` or anything :func:`sofie_rdf.load` takes) and return a :class:`Session`.

    ``backend="jit"`` declares the header to Cling; ``"native"`` builds it with
    the system compiler (``flags``, default ``-O3 -march=native -fno-trapping-math``) into a cached
    shared library loaded into ROOT.  Either way a model with the same content
    is planned once and compiled once per process (native: once per machine).  ``weights`` is
    the weights mode of the generated code (see :meth:`Model.generate`).  ``profile`` compiles timers
    around every node; :meth:`Session.profile` builds such a twin of a Session by itself.
    """
    if not isinstance(model, Model):
        from .api import load

        model = load(model)
    if weights not in WEIGHTS_MODES:
        raise SofieError(f"weights must be one of {', '.join(WEIGHTS_MODES)}, got {weights!r}")
    if backend == "jit":
        sess = _compile_jit(model, weights, profile)
    elif backend == "native":
        sess = _compile_native(model, flags, weights, profile)
    else:
        raise SofieError(f"backend must be 'jit' or 'native', got {backend!r}")
    sess.model = model
    sess.profiling_twin = lambda: compile(model, backend, flags, weights, profile=True)
    return sess


def session_of(session_or_model: Any, backend: str = "jit") -> Session:
    """The compiled Session of a Session, Model or anything ``sr.load`` takes (for the integrations)."""
    if isinstance(session_or_model, Session):
        return session_or_model
    return compile(session_or_model, backend=backend)


def _compile_jit(model: Model, weights: str, profile: bool) -> Session:
    target = cpu_target("jit")
    code = model.code(weights=weights, target=target, profile=profile)
    namespace = namespace_for(code.name, code.digest)
    if namespace != code.namespace:
        code = model.code(namespace=namespace, weights=weights, target=target, profile=profile)
    folder = _cache_dir() / "jit" / f"{code.name}-{code.digest[:24]}"
    files = write_files(code, folder)
    jit_declare(code, folder)
    return Session(code, namespace, "jit", files.weights, folder)


def _compile_native(model: Model, flags: Optional[Sequence[str]], weights: str, profile: bool) -> Session:
    target = cpu_target("native", flags)
    plain = model.code(weights=weights, target=target, profile=profile)
    # The flags are part of the name: one header built for two instruction sets is two libraries.
    built = f"native|{' '.join(flags) if flags is not None else ''}|{plain.digest}"
    namespace = namespace_for(plain.name, hashlib.sha256(built.encode()).hexdigest())
    code = model.code(namespace=f"{namespace}_impl", weights=weights, target=target, profile=profile)
    folder = build_native(code, namespace, flags)
    load_native(code, namespace, folder)
    suffix = WEIGHTS_SUFFIXES.get(code.weights_mode)
    return Session(code, namespace, "native", folder / f"{code.name}{suffix}" if suffix else None, folder)


__all__ = ["compile", "session_of"]
