"""Sessions of models that one build cannot serve: a build for the dims of each call, the recent ones kept.

A model :attr:`~sofie_rdf.Model.needs_dims` when code generation cannot settle a shape while its input dims
stay symbolic: an ``If`` whose branches differ in rank (``torch.onnx.export`` writes ``x.squeeze(0)`` of a
dynamic batch as ``If(N == 1)``), a shape read from a tensor that only the dims' sizes decide.  Everything
that can be settled symbolically stays one build (see ``passes/shape_inference.py``); this module serves the
rest.  :class:`SpecialisingSession` reads the dims of each call off its arrays, fixes those the model's
unsettled nodes depend on (``NeedsDimsError.dims``; every input dim when they are not known) and runs the
build made for those sizes:

* in the process, the ``limit`` builds used last are kept (``SOFIE_RDF_SPECIALISATIONS``, default 8), the
  least recently used dropped;
* a native build is also indexed on disk by the model's content, the options and the fixed dims, so a later
  process finds its library without generating code again; at most ``limit`` per model stay in the cache
  directory, those made or found longest ago removed with their folders (a process keeps the libraries it
  loaded: a call served in the process touches no file).

A :class:`~sofie_rdf.errors.SpecialisationWarning` naming the node says so once per Session.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from . import _cache
from .errors import NeedsDimsError, ShapeError, SofieError, SpecialisationWarning
from .session import Session, _Columnar

if TYPE_CHECKING:
    from .model import Model
    from .profiling import Profile

LIMIT_VARIABLE = "SOFIE_RDF_SPECIALISATIONS"
DEFAULT_LIMIT = 8

Dims = tuple  # ((dim name, size), ...) sorted by name: the key of one build


def specialisation_limit() -> int:
    """How many builds per model are kept, in the process and on disk (``$SOFIE_RDF_SPECIALISATIONS``)."""
    text = os.environ.get(LIMIT_VARIABLE, "")
    try:
        limit = int(text) if text else DEFAULT_LIMIT
    except ValueError:
        raise SofieError(f"{LIMIT_VARIABLE} must be a whole number, got {text!r}") from None
    if limit < 1:
        raise SofieError(f"{LIMIT_VARIABLE} must be at least 1, got {limit}")
    return limit


class SpecialisingSession(Session):
    """A :class:`Session` whose every call runs the build made for its input dims.

    ``build(model, key)`` compiles a model whose dims are fixed (``sr.compile``'s options), finding or storing
    its native library in the disk index under ``key`` (None: not indexed); ``options`` (the compile's) key
    the disk index, None when the backend keeps nothing there.  ``inputs`` are the model's, with their
    symbolic dims; ``outputs`` those of the build the last call ran (their shapes may differ between builds:
    a squeezed axis).  ``builds`` lists what is kept.
    """

    def __init__(self, model: Model, backend: str, build: Callable[[Model, Optional[str]], Session],
                 options: Optional[tuple] = None):
        self.name, self.backend, self.model = model.name, backend, model
        self.namespace = self.cpp_type = ""
        self.weights_path = self.folder = self.library = None
        self._build = build
        self._all_dims = frozenset(d for t in model.inputs for d in t.shape if isinstance(d, str))
        self._dims = frozenset(model.needs_dims.dims or self._all_dims)
        self._limit = specialisation_limit()
        self._index = _Index(model, options, self._limit) if options is not None else None
        self._builds: OrderedDict[Dims, Session] = OrderedDict()
        self._last: Optional[Session] = None
        self._warned = False

    # ---- what a Session shows ----------------------------------------------------------------------------
    @property
    def inputs(self) -> list:
        return list(self.model.inputs)

    @property
    def outputs(self) -> list:
        if self._last is None:
            raise ShapeError(f"model {self.name!r}: its outputs' shapes depend on the dims of the call "
                             f"({self.model.needs_dims}); they are known after the first call")
        return self._last.outputs

    @property
    def code(self) -> Any:
        raise SofieError(f"model {self.name!r} is built for the dims of each call: see session.builds for the "
                         "Session (and code) of each")

    @property
    def builds(self) -> dict[Dims, Session]:
        """The builds kept, by the sizes of the dims they fix, least recently used first."""
        return dict(self._builds)

    # ---- calls -------------------------------------------------------------------------------------------
    def infer(self, *arrays: Any, **columnar: Any) -> Any:
        """Run the build for the dims of ``arrays`` (see :meth:`Session.infer`), made first if needed."""
        if _Columnar.infer is not None and (columnar or any(map(_Columnar.accepts, arrays))):
            return _Columnar.infer(self, *arrays, **columnar)
        return self.session_for(arrays).infer(*arrays, **columnar)

    def _checked_infer(self, *arrays: Any, **columnar: Any) -> Any:
        return self.infer(*arrays, **columnar)

    def profile(self, *arrays: Any, repeat: int = 100, warmup: int = 5) -> Profile:
        return self.session_for(arrays).profile(*arrays, repeat=repeat, warmup=warmup)

    def call_dims(self, arrays: Any) -> dict[str, int]:
        return self.session_for(tuple(arrays)).call_dims(arrays)

    def session_for(self, arrays: tuple) -> Session:
        """The build serving ``arrays``' dims: kept, found on disk, or made now."""
        sizes = self._sizes(arrays)
        key = tuple(sorted((d, sizes[d]) for d in self._dims))
        if key in self._builds:
            self._builds.move_to_end(key)
        else:
            self._keep(key, self._made(sizes))
        self._last = self._builds[key]
        return self._last

    def _sizes(self, arrays: tuple) -> dict[str, int]:
        """The size of every input dim in a call (the build checks the rest: dtypes, fixed and shared dims)."""
        inputs = self.model.inputs
        if len(arrays) != len(inputs):
            raise ShapeError(f"model {self.name!r} takes {len(inputs)} input(s) "
                             f"({', '.join(t.name for t in inputs)}), got {len(arrays)}")
        sizes: dict[str, int] = {}
        for t, a in zip(inputs, arrays):
            shape = getattr(a, "shape", None)
            if shape is None or len(shape) != len(t.shape):
                raise ShapeError(f"model {self.name!r}, input {t.name!r}: expected {len(t.shape)} axes "
                                 f"{tuple(t.shape)}, got {shape}")
            for want, got in zip(t.shape, shape):
                if isinstance(want, str) and want in self._all_dims:
                    sizes.setdefault(want, int(got))
        return sizes

    def _keep(self, key: Dims, session: Session) -> None:
        self._builds[key] = session
        while len(self._builds) > self._limit:
            self._builds.popitem(last=False)

    def _made(self, sizes: Mapping[str, int]) -> Session:
        """The Session of the model built for ``sizes`` (its library found in the disk index when there)."""
        model = self._specialised(sizes)
        fixed = {d: sizes[d] for d in self._dims}
        self._warn(fixed)
        key = self._index.key(fixed) if self._index is not None else None
        session = self._build(model, key)
        if self._index is not None and session.library is not None:
            self._index.used(key, session.library.parent)
        return session

    def _specialised(self, sizes: Mapping[str, int]) -> Model:
        """The model with the dims that decide its unsettled nodes fixed, more of them fixed while a build
        still needs some (a node settled by the first dims can reveal another)."""
        while True:
            model = self.model.specialised({d: sizes[d] for d in self._dims})
            if model.needs_dims is None:
                return model
            more = model.needs_dims.dims or self._all_dims
            if more <= self._dims:
                raise NeedsDimsError(f"{model.needs_dims} (with the dims {', '.join(sorted(self._dims))} fixed, "
                                     "it still depends on values computed while running)")
            self._dims |= more

    def _warn(self, fixed: Mapping[str, int]) -> None:
        if self._warned:
            return
        self._warned = True
        warnings.warn(SpecialisationWarning(
            f"{self.model.needs_dims}.  sofie-rdf builds model {self.name!r} for the sizes of "
            f"{', '.join(sorted(fixed))} in each call (now {', '.join(f'{k}={v}' for k, v in sorted(fixed.items()))}), "
            f"keeping the {self._limit} builds used last (${LIMIT_VARIABLE})"), stacklevel=5)


class _Index:
    """Which of one model's builds the disk index keeps: a key per set of fixed dims, and a list of them, least
    recently used first, that keeps ``limit`` (the libraries of older ones removed with their index entries)."""

    def __init__(self, model: Model, options: tuple, limit: int):
        self.base = hashlib.sha256(repr((model.ir.digest(), options, _cache.fingerprint())).encode()).hexdigest()
        self.limit = limit
        self.order = _cache.cache_dir() / "index" / f"{self.base[:32]}.builds.json"

    def key(self, fixed: Mapping[str, int]) -> str:
        """The index key of the build with ``fixed`` dims."""
        return hashlib.sha256(f"{self.base}|{sorted(fixed.items())}".encode()).hexdigest()[:32]

    def used(self, key: str, folder: Path) -> None:
        """Move ``key`` (its library in ``folder``) to the end of the list; remove the builds past the limit."""
        builds = [b for b in self._read() if b[0] != key] + [[key, str(folder)]]
        for old, old_folder in builds[:-self.limit]:
            _cache.index_remove(old)
            shutil.rmtree(old_folder, ignore_errors=True)
        _cache.atomic_write(self.order, json.dumps(builds[-self.limit:]))

    def _read(self) -> list:
        try:
            return json.loads(self.order.read_text())
        except (OSError, ValueError):
            return []
