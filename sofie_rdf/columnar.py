"""Columnar inference for uproot/awkward analyses: awkward arrays in and out, file sets, dask-awkward.

Three ways in, one engine underneath (the compiled :class:`~sofie_rdf.Session`):

* ``sess.infer(array)`` (or :func:`infer`) on awkward arrays.  A record array
  gives its fields as the features of the last axis (``features=`` picks and
  orders them), or, where its fields are the model's input names, one input
  per field.  A jagged axis (particles per jet, hits per event) is padded or
  truncated to the model's size where the model has a fixed size there
  (``fill=`` chooses the value), and kept at its real per-event length where
  the model has a symbolic dim there: events are grouped by length and each
  group runs as one batch, so the outputs are exact and come back jagged.
* :func:`evaluate` over a file set: ``uproot.iterate`` chunk by chunk with a
  progress bar, returning (or writing with uproot) the output columns next to
  the file index and entry number of every event.
* The same on Dask: :func:`infer` on dask-awkward arrays (``uproot.dask``)
  maps the model over partitions, and ``evaluate(..., dask=True)`` builds one
  partition per chunk.  Each worker compiles the model once (the model travels
  pickled; the compiled Session is cached per process).

Contiguous buffers of the model's dtype reach the Session without a copy;
record fields are stacked (one copy) and other dtypes converted.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from ._native import native_session
from .compile import compile as compile_model
from .compile import session_of
from .errors import ShapeError, SofieError
from .ir.info import TensorInfo
from .session import register_columnar

Features = Union[None, Sequence[str], Mapping[str, Sequence[str]]]


# ---------------------------------------------------------------------------------------------------------------------
# Padding


def pad(array: Any, length: int, fill: float = 0.0, clip: bool = True, mask: bool = False,
        features: Optional[Sequence[str]] = None, dtype: Any = np.float32) -> Union[np.ndarray, tuple]:
    """A jagged awkward array (events, var, ...) as a numpy array (events, ``length``, ...) of ``dtype``.

    Shorter lists are filled with ``fill``; longer ones are truncated when ``clip`` (else a ShapeError says
    which event is too long).  A record array has its fields (``features``, default all, in order) stacked
    as a last axis.  With ``mask=True`` also returns a boolean array (events, length) that is True at the
    real entries, for models that take a padding mask.
    """
    import awkward as ak

    array = _stack_fields(ak.Array(array), features, np.dtype(dtype))
    counts = np.asarray(ak.num(array, axis=1))
    if not clip and counts.size and counts.max() > length:
        event = int(np.argmax(counts > length))
        raise ShapeError(f"event {event} has {int(counts[event])} entries, more than {length}")
    out = _numpy(_padded(array, 1, length, fill, np.dtype(dtype)), np.dtype(dtype), "pad")
    if not mask:
        return out
    return out, np.arange(length) < np.minimum(counts, length)[:, np.newaxis]


def _padded(array: Any, axis: int, length: int, fill: float, dtype: np.dtype) -> Any:
    """``array`` with its jagged ``axis`` cut or filled to ``length``.

    Axis 1 is filled in numpy (its entries may be feature vectors); deeper axes through awkward, which
    fills scalars only.
    """
    import awkward as ak

    if axis != 1:
        return ak.fill_none(ak.pad_none(array, length, axis=axis, clip=True), fill, axis=axis)
    kept = np.minimum(np.asarray(ak.num(array, axis=1)), length)
    flat = _numpy(ak.flatten(array[:, :length], axis=1), dtype, "padding")
    out = np.full((len(kept), length, *flat.shape[1:]), fill, dtype=dtype)
    out[np.arange(length) < kept[:, np.newaxis]] = flat
    return ak.from_numpy(out)


def unpad(output: Any, like: Any) -> Any:
    """``output`` (events, length, ...) cut back to the per-event lengths of the jagged array ``like``:
    per-entry results of a padded model aligned with the entries again."""
    import awkward as ak

    output = np.asarray(output)
    counts = np.minimum(np.asarray(ak.num(like, axis=1)), output.shape[1])
    return ak.unflatten(output[np.arange(output.shape[1]) < counts[:, np.newaxis]], counts)


# ---------------------------------------------------------------------------------------------------------------------
# Awkward arrays into a Session


def is_awkward(value: Any) -> bool:
    """True for awkward and dask-awkward arrays (without importing either)."""
    return type(value).__module__.split(".")[0] in ("awkward", "dask_awkward")


def infer(session_or_model: Any, *arrays: Any, features: Features = None, fill: float = 0.0,
          backend: str = "auto") -> Any:
    """Run a model on awkward arrays (eagerly) or dask-awkward arrays (lazily); see the module doc.

    Returns one awkward array per model output (a tuple for several), aligned with the input events.
    On dask-awkward arrays the result is lazy, and a model with several outputs gives one record array
    with a field per output.
    """
    sess = session_of(session_or_model, backend)
    if any(type(a).__module__.startswith("dask_awkward") for a in arrays):
        return _infer_dask(sess, arrays, features, fill)
    return infer_awkward(sess, arrays, features=features, fill=fill)


def infer_awkward(sess: Any, arrays: Sequence[Any], features: Features = None, fill: float = 0.0) -> Any:
    """``Session.infer`` on awkward arrays (it calls this for them)."""
    import awkward as ak

    if len(arrays) == 1 and len(sess.inputs) > 1:
        arrays = _split_inputs(sess, ak.Array(arrays[0]))
    if len(arrays) != len(sess.inputs):
        raise ShapeError(f"model {sess.name!r} takes {len(sess.inputs)} input(s) "
                         f"({', '.join(t.name for t in sess.inputs)}), got {len(arrays)}")
    prepared = [_Input.of(sess, t, a, _features_for(features, t.name, len(arrays)), fill)
                for t, a in zip(sess.inputs, arrays)]
    events = {len(p.array) for p in prepared}
    if len(events) > 1:
        raise ShapeError(f"model {sess.name!r}: inputs have different numbers of events {sorted(events)}")
    outputs = _run_grouped(sess, prepared) if any(p.lengths for p in prepared) else _run_flat(sess, prepared)
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _split_inputs(sess: Any, record: Any) -> list:
    """One record array whose fields are the model's input names: one array per input."""
    names = [t.name for t in sess.inputs]
    missing = [n for n in names if n not in record.fields]
    if missing:
        raise ShapeError(f"model {sess.name!r} takes {len(names)} inputs {names}; a single record array "
                         f"must have them as fields, missing {missing} (fields: {record.fields})")
    return [record[n] for n in names]


def _features_for(features: Features, name: str, n_inputs: int) -> Optional[Sequence[str]]:
    if isinstance(features, Mapping):
        return features.get(name)
    if features is not None and n_inputs > 1:
        raise SofieError("for a model with several inputs give features as {input name: [fields]}")
    return features


@dataclass
class _Input:
    """One model input as awkward data: rectangular except along axis 1 where the model's dim is symbolic."""

    name: str
    type: TensorInfo
    array: Any                       # awkward array, padded where the model has fixed sizes
    lengths: dict = field(default_factory=dict)   # dim name -> per-event lengths (numpy), for jagged axis 1

    @classmethod
    def of(cls, sess: Any, t: TensorInfo, array: Any, features: Optional[Sequence[str]], fill: float) -> _Input:
        import awkward as ak

        name, rank = t.name, len(t.shape)
        where = f"model {sess.name!r}, input {name!r}"
        array = _stack_fields(ak.Array(array), features, t.dtype)
        if array.ndim != rank:
            raise ShapeError(f"{where}: expected {rank} axes {tuple(map(str, t.shape))}, got {array.ndim} ({array.type})")
        lengths = {}
        for axis in range(1, rank):
            if not _is_jagged(array, axis):
                continue
            dim = t.shape[axis]
            if isinstance(dim, int):
                array = _padded(array, axis, dim, fill, t.dtype)
            elif axis == 1 and dim.isidentifier():  # a dim of its own, not an expression of others
                lengths[dim] = np.asarray(ak.num(array, axis=1), dtype=np.int64)
            else:
                raise ShapeError(f"{where}: axis {axis} is jagged and the model's size there is {dim}; "
                                 "only axis 1 can keep per-event lengths: pad it (sr.columnar.pad)")
        return cls(name, t, array, lengths)

    def numpy(self, sess: Any, events: Optional[np.ndarray] = None) -> np.ndarray:
        """The input (or the ``events`` of it) as the numpy array the Session takes."""
        array = self.array if events is None else self.array[events]
        return _numpy(array, self.type.dtype, f"model {sess.name!r}, input {self.name!r}")


def _stack_fields(array: Any, features: Optional[Sequence[str]], dtype: np.dtype) -> Any:
    """A record array's fields (``features``, default all) stacked as a new last axis.

    Rectangular fields (flat branches) are written straight into one numpy array of the model's dtype,
    converting on the way; jagged ones are stacked by awkward.
    """
    import awkward as ak

    if not array.fields:
        if features:
            raise ShapeError(f"features {list(features)} given for an array without fields ({array.type})")
        return array
    names = list(features) if features is not None else array.fields
    missing = [f for f in names if _column(array, f) is None]
    if missing:
        raise ShapeError(f"fields {missing} not in the array (fields: {array.fields})")
    fields = [_column(array, f) for f in names]
    try:
        columns = [ak.to_numpy(f, allow_missing=False) for f in fields]
    except (ValueError, TypeError):  # jagged fields
        return ak.concatenate([f[..., np.newaxis] for f in fields], axis=-1)
    if len({c.shape for c in columns}) != 1 or any(c.dtype.kind not in "biuf" for c in columns):
        return ak.concatenate([f[..., np.newaxis] for f in fields], axis=-1)
    out = np.empty((*columns[0].shape, len(columns)), dtype=dtype)
    for k, column in enumerate(columns):
        out[..., k] = column
    return ak.from_numpy(out)


def _column(array: Any, name: str) -> Any:
    """Field ``name`` of a record array, where ``a.b`` names field b of record field a (uproot's branch
    names of split records); None when there is none."""
    if name in array.fields:
        return array[name]
    head, _, rest = name.partition(".")
    return _column(array[head], rest) if rest and head in array.fields else None


def _is_jagged(array: Any, axis: int) -> bool:
    """Whether ``axis`` of the array is a variable-length list (read off its type, whatever the layout)."""
    import awkward as ak

    t = array.type.content
    for depth in range(axis + 1):
        while isinstance(t, ak.types.OptionType):
            t = t.content
        if depth == axis - 1:
            return isinstance(t, ak.types.ListType)
        t = t.content
    return False


def _numpy(array: Any, dtype: np.dtype, where: str) -> np.ndarray:
    """A rectangular awkward array as numpy of ``dtype``: a view when the buffer already is one."""
    import awkward as ak

    try:
        out = ak.to_numpy(array, allow_missing=False)
    except ValueError as exc:
        raise ShapeError(f"{where}: cannot make a rectangular array of {array.type}: {exc}") from None
    if out.dtype != dtype:
        if out.dtype.kind not in "biuf":
            raise ShapeError(f"{where}: values of type {out.dtype} cannot feed a {dtype} input")
        out = out.astype(dtype)
    return np.ascontiguousarray(out)


def _run_flat(sess: Any, prepared: list[_Input]) -> list:
    """Every input rectangular: one call, outputs wrapped without a copy."""
    import awkward as ak

    arrays = [p.numpy(sess) for p in prepared]
    if not len(arrays[0]):
        return _empty_outputs(sess, set())
    return [ak.from_numpy(o) for o in _call(sess, arrays)]


def _run_grouped(sess: Any, prepared: list[_Input]) -> list:
    """Inputs with per-event lengths: one call per group of events of equal lengths, reassembled in order.

    Output axes sized by a length symbol come back jagged; a model whose batch dim is fixed to 1 runs
    event by event.
    """
    import awkward as ak

    lengths = _common_lengths(sess, prepared)
    symbols = list(lengths)
    keys = np.stack([lengths[s] for s in symbols], axis=1)
    if not len(keys):
        return _empty_outputs(sess, set(symbols))
    unique, group_of = np.unique(keys, axis=0, return_inverse=True)
    group_of = group_of.reshape(-1)
    per_group, order = [], []
    for g in range(len(unique)):
        events = np.flatnonzero(group_of == g)
        per_group.append(_run_events(sess, prepared, events, set(symbols)))
        order.append(events)
    inverse = np.argsort(np.concatenate(order), kind="stable")
    n_out = len(sess.outputs)
    return [ak.concatenate([group[k] for group in per_group])[inverse] for k in range(n_out)]


def _common_lengths(sess: Any, prepared: list[_Input]) -> dict:
    """Per symbol, the per-event lengths; inputs sharing a symbol must agree event by event."""
    lengths: dict = {}
    for p in prepared:
        for sym, counts in p.lengths.items():
            if sym in lengths and not np.array_equal(lengths[sym], counts):
                event = int(np.argmax(lengths[sym] != counts))
                raise ShapeError(f"model {sess.name!r}: input {p.name!r} has {counts[event]} entries in event "
                                 f"{event} where another input has {lengths[sym][event]} (both are {sym})")
            lengths[sym] = counts
    return lengths


def _run_events(sess: Any, prepared: list[_Input], events: np.ndarray, jagged: set) -> list:
    """Outputs (awkward, jagged along length-sized axes) of the events of one group."""
    import awkward as ak

    results = _call(sess, [p.numpy(sess, events) for p in prepared])
    return [_jagged_axes(ak.from_numpy(r), t.shape, jagged) for r, t in zip(results, sess.outputs)]


def _call(sess: Any, arrays: list[np.ndarray]) -> tuple:
    """The outputs of the events in ``arrays``: one call with a symbolic batch dim, else one per event."""
    if _batch_is_symbolic(sess):
        return _as_tuple(sess.infer(*arrays))
    calls = [_as_tuple(sess.infer(*(a[i:i + 1] for a in arrays))) for i in range(len(arrays[0]))]
    return tuple(np.concatenate([c[k] for c in calls]) for k in range(len(sess.outputs)))


def _batch_is_symbolic(sess: Any) -> bool:
    """True for a symbolic leading dim shared by the inputs, False for a leading 1 (one event per call)."""
    first = {t.shape[0] for t in sess.inputs if t.shape}
    if len(first) == 1 and not isinstance(next(iter(first)), int):
        return True
    if first == {1}:
        return False
    raise ShapeError(f"model {sess.name!r}: its inputs' first axes {sorted(map(str, first))} are not one batch dim "
                     "(symbolic, or 1 for one event per call), so events cannot be batched")


def _jagged_axes(array: Any, shape: tuple, jagged: set) -> Any:
    """Axes whose size depends on a per-event length made var, so every group has one type."""
    import awkward as ak

    for axis in range(1, len(shape)):
        if not isinstance(shape[axis], int) and set(re.findall(r"[A-Za-z_]\w*", shape[axis])) & jagged:
            array = ak.from_regular(array, axis=axis)
    return array


def _empty_outputs(sess: Any, jagged: set) -> list:
    """Zero-event outputs of the right types, without calling the model."""
    import awkward as ak

    outs = []
    for t in sess.outputs:
        shape = tuple(0 if i == 0 else (d if isinstance(d, int) else 0) for i, d in enumerate(t.shape))
        outs.append(_jagged_axes(ak.from_numpy(np.empty(shape, t.dtype)), t.shape, jagged))
    return outs


def _as_tuple(out: Any) -> tuple:
    return out if isinstance(out, tuple) else (out,)


# ---------------------------------------------------------------------------------------------------------------------
# Dask: the model travels pickled; a worker opens its native library where it can, else compiles it once


_WORKER_SESSIONS: dict[tuple[str, ...], Any] = {}


@dataclass
class _Remote:
    """A picklable handle on a compiled model: the model, its backend and the inference options, and for the
    native backend its library, which a worker on the same machine (or a shared disk) opens without ROOT or
    compiling anything."""

    model: Any
    backend: str
    key: tuple[str, ...]
    features: Features = None
    fill: float = 0.0
    library: Optional[str] = None
    weights: Optional[str] = None

    @classmethod
    def of(cls, sess: Any, features: Features, fill: float) -> _Remote:
        if getattr(sess, "model", None) is None:
            raise SofieError(f"model {sess.name!r}: this Session does not know its model; give the model itself")
        library = str(sess.library) if sess.library is not None else None
        weights = str(sess.weights_path) if sess.weights_path is not None else None
        return cls(sess.model, sess.backend, (sess.backend, sess.namespace, str(sess.folder)), features, fill,
                   library, weights)

    def session(self) -> Any:
        if self.key not in _WORKER_SESSIONS:
            if self.library is not None and Path(self.library).is_file():
                _WORKER_SESSIONS[self.key] = native_session(Path(self.library), self.weights and Path(self.weights))
            else:
                _WORKER_SESSIONS[self.key] = compile_model(self.model, backend=self.backend)
        return _WORKER_SESSIONS[self.key]

    def records(self, *arrays: Any) -> Any:
        """The outputs of one partition, as one array (a record of the outputs when there are several)."""
        import awkward as ak

        if ak.backend(*arrays) == "typetracer":  # dask-awkward's column optimisation: types only
            return self._typetracer(arrays)
        sess = self.session()
        outputs = _as_tuple(infer_awkward(sess, arrays, features=self.features, fill=self.fill))
        if len(outputs) == 1:
            return outputs[0]
        return ak.zip({t.name: o for t, o in zip(sess.outputs, outputs)}, depth_limit=1)

    def __call__(self, *arrays: Any) -> Any:
        return self.records(*arrays)

    def _typetracer(self, arrays: Sequence[Any]) -> Any:
        """The output type, having marked the input columns the model reads (so only those are read)."""
        import awkward as ak

        for a in arrays:
            names = self.features if isinstance(self.features, Sequence) and a.fields else None
            for part in ([a[f] for f in names] if names else [a]):
                ak.typetracer.touch_data(part)
        empty = [ak.Array(a.layout.form.length_zero_array()) for a in arrays]
        return ak.Array(self.records(*empty).layout.to_typetracer(forget_length=True))


def _infer_dask(sess: Any, arrays: Sequence[Any], features: Features, fill: float) -> Any:
    import dask_awkward as dak

    remote = _Remote.of(sess, features, fill)
    return dak.map_partitions(remote, *arrays, meta=remote.records(*(a._meta for a in arrays)),
                              label=f"sofie-{sess.name}")


# ---------------------------------------------------------------------------------------------------------------------
# File sets


@dataclass(frozen=True)
class _Chunk:
    """Entries [start, stop) of one file of the set."""

    file_index: int
    path: str
    start: int
    stop: int


@dataclass
class _ChunkReader:
    """Reads a chunk's feature branches with uproot and runs the model: one dask partition."""

    remote: _Remote
    tree: str
    branches: list[str]

    def __call__(self, chunk: _Chunk) -> Any:
        with _open_tree(chunk.path, self.tree, self.branches) as t:
            data = t.arrays(self.branches, entry_start=chunk.start, entry_stop=chunk.stop)
        sess = self.remote.session()
        outputs = _as_tuple(infer_awkward(sess, _model_arrays(sess, data, self.remote.features),
                                          fill=self.remote.fill))
        return _with_index(sess, chunk.file_index, chunk.start, outputs)


def evaluate(files: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]], tree: str, model: Any,
             features: Union[Sequence[str], Mapping[str, Sequence[str]]], step_size: Union[int, str] = "100 MB",
             output: Optional[Union[str, os.PathLike]] = None, output_tree: str = "sofie", fill: float = 0.0,
             backend: str = "native", progress: bool = True, dask: bool = False) -> Any:
    """Run a model over the ``tree`` of every file, chunk by chunk.

    ``features``: the branches of the model's input, in order (or ``{input name: [branches]}`` for several
    inputs), with uproot's full names (``part.pt`` for field ``pt`` of a split record branch ``part``);
    jagged branches are padded or kept at their length as in :func:`infer`.  A branch the tree lacks is an
    error naming the branches it has (uproot itself would read an empty record).  Returns an awkward
    record array with ``file`` (index into ``files``), ``entry`` (entry number in that file) and one field
    per model output, or, with ``output``, writes those columns to ``output_tree`` in that ROOT file and
    returns its path.  ``dask=True`` returns the same as a lazy dask-awkward array, one partition per chunk,
    which a Dask cluster computes with the model compiled once per worker.
    """
    paths = [str(files)] if isinstance(files, (str, os.PathLike)) else [str(f) for f in files]
    sess = session_of(model, backend)
    branches = _branches(features)
    if dask:
        if output is not None:
            raise SofieError("evaluate(dask=True) returns a lazy array; write it with uproot.dask_write")
        return _evaluate_dask(sess, paths, tree, branches, features, step_size, fill)
    chunks = _iterate(sess, paths, tree, branches, features, step_size, fill, progress)
    if output is None:
        import awkward as ak

        parts = list(chunks)
        return ak.concatenate(parts) if parts else _with_index(sess, 0, 0, _empty_outputs(sess, set()))
    return _write(chunks, Path(output), output_tree)


def _branches(features: Union[Sequence[str], Mapping[str, Sequence[str]]]) -> list[str]:
    if isinstance(features, str):
        raise SofieError("features must be a list of branch names, not one string")
    names = [b for group in features.values() for b in group] if isinstance(features, Mapping) else list(features)
    return list(dict.fromkeys(names))


def _model_arrays(sess: Any, data: Any, features: Union[Sequence[str], Mapping[str, Sequence[str]]]) -> list:
    """The chunk's branches as the model's inputs: stacked per input in the order given."""
    if isinstance(features, Mapping):
        missing = [t.name for t in sess.inputs if t.name not in features]
        if missing:
            raise SofieError(f"model {sess.name!r}: no features given for inputs {missing}")
        return [_stack_fields(data, list(features[t.name]), t.dtype) for t in sess.inputs]
    return [_stack_fields(data, list(features), sess.inputs[0].dtype)]


def _with_index(sess: Any, file_index: int, start: int, outputs: Sequence[Any]) -> Any:
    import awkward as ak

    n = len(outputs[0])
    columns = {"file": np.full(n, file_index, dtype=np.int32), "entry": np.arange(start, start + n, dtype=np.int64)}
    columns.update({t.name: o for t, o in zip(sess.outputs, outputs)})
    return ak.zip(columns, depth_limit=1)


def _iterate(sess: Any, paths: list[str], tree: str, branches: list[str], features: Any, step_size: Any,
             fill: float, progress: bool) -> Iterable[Any]:
    """Per uproot chunk, the indexed outputs; a progress bar counts events."""
    bar = _progress(sum(_num_entries(p, tree, branches) for p in paths) if progress else 0, progress, sess.name)
    try:
        for file_index, path in enumerate(paths):
            for data, report in _chunks_of(path, tree, branches, step_size):
                outputs = _as_tuple(infer_awkward(sess, _model_arrays(sess, data, features), fill=fill))
                yield _with_index(sess, file_index, report.tree_entry_start, outputs)
                bar.update(len(data))
    finally:
        bar.close()


def _chunks_of(path: str, tree: str, branches: list[str], step_size: Any) -> Iterable[Any]:
    """The chunks of one file's tree, as ``(arrays, report)`` of ``TTree.iterate``."""
    with _open_tree(path, tree, branches) as t:
        yield from t.iterate(branches, step_size=step_size, report=True)


def _num_entries(path: str, tree: str, branches: list[str]) -> int:
    with _open_tree(path, tree, branches) as t:
        return int(t.num_entries)


@contextmanager
def _open_tree(path: str, tree: str, branches: list[str]) -> Iterator[Any]:
    """The TTree ``tree`` of ``path``, checked to have every branch asked for.

    uproot returns an empty record for branch names it does not know; this says which are missing instead.
    """
    import uproot

    try:
        f = uproot.open(path)
    except (OSError, ValueError) as exc:
        raise SofieError(f"cannot open {path!r}: {exc}") from None
    with f:
        try:
            t = f[tree]
        except (KeyError, ValueError) as exc:
            raise SofieError(f"cannot read tree {tree!r} of {path!r}: {exc}") from None
        known = set(t.keys())
        missing = [b for b in branches if b not in known]
        if missing:
            raise SofieError(f"tree {tree!r} of {path!r} has no branch {', '.join(map(repr, missing))}; "
                             f"it has {', '.join(sorted(known))}")
        yield t


class _NoBar:
    def update(self, _n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, name: str) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="ev", unit_scale=True, desc=f"sofie {name}")


def _write(chunks: Iterable[Any], path: Path, tree: str) -> Path:
    """The indexed outputs as branches of ``tree`` in a new ROOT file (uproot), chunk by chunk."""
    import uproot

    with uproot.recreate(path) as f:
        for part in chunks:
            columns = {name: part[name] for name in part.fields}
            if tree in f:
                f[tree].extend(columns)
            else:
                f[tree] = columns
    return path


def _evaluate_dask(sess: Any, paths: list[str], tree: str, branches: list[str], features: Any, step_size: Any,
                   fill: float) -> Any:
    import awkward as ak
    import dask_awkward as dak

    chunks = _chunks(paths, tree, branches, step_size)
    reader = _ChunkReader(_Remote.of(sess, features, fill), tree, branches)
    meta = _with_index(sess, 0, 0, _empty_outputs(sess, set()))
    divisions = tuple(np.cumsum([0] + [c.stop - c.start for c in chunks]).tolist())
    return dak.from_map(reader, chunks, label=f"sofie-{sess.name}", divisions=divisions,
                        meta=ak.Array(meta.layout.to_typetracer(forget_length=True)))


def _chunks(paths: list[str], tree: str, branches: list[str], step_size: Any) -> list[_Chunk]:
    """Entry ranges of ``step_size`` entries (or bytes of the branches read, as uproot counts them)."""
    chunks = []
    for file_index, path in enumerate(paths):
        with _open_tree(path, tree, branches) as t:
            step = step_size if isinstance(step_size, int) else t.num_entries_for(step_size, branches)
            step = max(int(step), 1)
            chunks += [_Chunk(file_index, path, s, min(s + step, t.num_entries)) for s in range(0, t.num_entries, step)]
    return chunks


register_columnar(is_awkward, infer)
