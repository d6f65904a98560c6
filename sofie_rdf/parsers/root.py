"""Stored IR: models saved into and loaded from ``.root`` files with uproot.

Layout (format version 1).  Each model lives in a top-level ``TDirectory``
named by its key, so one file holds any number of models next to other
objects::

    <key>/                      TDirectory
        sofie_rdf_model         TObjString: JSON description of the graph (below)
        sofie_rdf_blobs         TTree, one branch "bytes" (jagged uint8): every binary
                                payload (initializers, tensor attributes, opaque ONNX
                                attributes) concatenated, cut into entries of at most
                                CHUNK_BYTES so no basket grows past ROOT's limits

The JSON holds ``format`` ("sofie-rdf-ir") and ``version``, the writer,
model ``name``, ``source``, ``doc``, ``opsets``, the graph ``inputs`` (name,
dtype, shape: ints, or strings for symbolic dims), ``outputs``,
``initializers`` and ``nodes`` (op_type, domain, version, name, inputs,
outputs, attrs) in order, and ``blob_bytes``: the size of each payload, in
the order they follow each other in the byte stream.  A tensor names its
payload by index (``{"blob": i, "dtype": ..., "shape": [...]}``) and is
stored little-endian (bool as one byte 0/1, 16-bit floats as their bits).
Attribute values are tagged (``{"t": "int", "v": 3}``): int, bool, float,
str, lists and tuples of these, None, numpy arrays and scalars, and opaque
ONNX ``AttributeProto`` (subgraphs) serialized as a payload.

Reading trusts nothing in the file: no text is evaluated (dims are ints or
names turned into symbols as they are), dtypes come from a fixed list,
every size is checked against the declared shapes, and nodes are rebuilt
through :func:`sofie_rdf.ops.make_node`, so attribute checks and schema
defaults apply as for any front end.

Saving under a key that exists replaces that model in place (``uproot.update``
deletes the old directory): other keys are untouched.  uproot does not
reclaim the old model's weight baskets, so a file grows by the old model's
size on each replacement (ROOT's ``hadd`` or ``rootcp`` write a compact copy).
"""

from __future__ import annotations

import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import ml_dtypes
import numpy as np
import sympy

from .._version import __version__
from ..errors import ModelFormatError
from ..ir import Graph, Model, TensorType, model_name_from
from ..ir.dims import symbol
from ..ir.dtypes import dtype_info
from ..ops import make_node

FORMAT = "sofie-rdf-ir"
VERSION = 1
MODEL_OBJECT = "sofie_rdf_model"
BLOB_TREE = "sofie_rdf_blobs"
BLOB_BRANCH = "bytes"
CHUNK_BYTES = 16 * 2**20
MAX_DIM_NAME = 256

_DTYPES = {dtype_info(d).name: dtype_info(d).numpy for d in (
    np.float32, np.float64, np.float16, ml_dtypes.bfloat16, np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)}
_LITTLE_ENDIAN = sys.byteorder == "little"  # payloads are little-endian
_SCALARS = {"int": int, "bool": bool, "float": float, "str": str}


# ---- saving -----------------------------------------------------------------

def save_root(model: Model, path: str | os.PathLike, key: str) -> None:
    """Store ``model`` (the raw IR, before passes) under ``key`` of the ``.root`` file ``path``."""
    import awkward as ak
    import uproot

    _check_key(key, path)
    encoder = _Encoder(model.name)
    text = json.dumps(encoder.describe(model), separators=(",", ":"))
    stream = np.frombuffer(b"".join(encoder.blobs), dtype=np.uint8)
    path = Path(path)
    exists = path.exists()
    if exists:
        _check_ours_or_absent(path, key)
    with (uproot.update(path) if exists else uproot.recreate(path)) as f:
        f.compression = uproot.ZLIB(4)
        if exists and key in f.keys(recursive=False, cycle=False):
            _delete(f, key)
        f[f"{key}/{MODEL_OBJECT}"] = text
        tree = f.mktree(f"{key}/{BLOB_TREE}", {BLOB_BRANCH: "var * uint8"})
        for start in range(0, stream.size, CHUNK_BYTES):  # one entry, one basket each
            chunk = stream[start:start + CHUNK_BYTES]
            tree.extend({BLOB_BRANCH: ak.unflatten(chunk, [chunk.size])})


def _check_key(key: str, path: Any) -> None:
    if not isinstance(key, str) or not key or any(c in key for c in "/;:") or not key.isprintable():
        raise ModelFormatError(f"{os.fspath(path)!r}: invalid model key {key!r} (no '/', ';' or ':', not empty)")


def _check_ours_or_absent(path: Path, key: str) -> None:
    """Refuse to overwrite an object that is not a stored model, or a file that is not ROOT."""
    with _open(path, key) as f:
        if key in f.keys(recursive=False, cycle=False) and key not in _model_keys(f):
            raise ModelFormatError(f"{str(path)!r}: key {key!r} holds a {f.classname_of(key)}, not a sofie-rdf model; "
                                   "refusing to replace it")


def _delete(f: Any, key: str) -> None:
    """Remove directory ``key`` (its objects first, then the directory's own key)."""
    folder = f[key]
    for name in folder.keys(recursive=False, cycle=True):
        del folder[name]
    for cycle in [k for k in f.keys(recursive=False, cycle=True) if k.split(";")[0] == key]:
        del f[cycle]


class _Encoder:
    """Turns the IR into JSON-ready values, collecting binary payloads in ``blobs``."""

    def __init__(self, label: str):
        self.label = label
        self.blobs: list[bytes] = []

    def describe(self, m: Model) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "writer": f"sofie-rdf {__version__}",
            "name": m.name, "source": m.source, "doc": m.doc, "opsets": dict(m.opsets),
            "inputs": [self._input(m, n) for n in m.inputs],
            "outputs": list(m.outputs),
            "initializers": [{"name": n, **self._tensor(v, f"initializer {n!r}")} for n, v in m.initializers.items()],
            "nodes": [self._node(node) for node in m.nodes],
            "blob_bytes": [len(b) for b in self.blobs],
        }

    def _input(self, m: Model, name: str) -> dict:
        t = m.tensors[name]
        return {"name": name, "dtype": dtype_info(t.dtype).name, "shape": [self._dim(d, name) for d in t.shape]}

    def _dim(self, d: Any, name: str) -> int | str:
        if isinstance(d, int):
            return d
        if isinstance(d, sympy.Symbol):
            return d.name
        raise ModelFormatError(f"model {self.label!r}: input {name!r} has dim {d}, which is neither a number nor a name")

    def _node(self, node: Any) -> dict:
        return {"op_type": node.op_type, "domain": node.domain, "version": node.version, "name": node.name,
                "inputs": list(node.inputs), "outputs": list(node.outputs),
                "attrs": {k: self._value(v, f"{node}, attribute {k!r}") for k, v in node.attrs.items()}}

    def _tensor(self, value: np.ndarray, where: str) -> dict:
        if value.dtype not in _DTYPES.values():
            raise ModelFormatError(f"model {self.label!r}: {where} has element type {value.dtype}, which cannot be stored")
        data = np.ascontiguousarray(value)
        self.blobs.append((data if _LITTLE_ENDIAN else data.byteswap()).tobytes())
        return {"blob": len(self.blobs) - 1, "dtype": dtype_info(value.dtype).name, "shape": list(value.shape)}

    def _value(self, v: Any, where: str) -> dict:
        import onnx

        for tag, cls in _SCALARS.items():
            if type(v) is cls:
                return {"t": tag, "v": v}
        if isinstance(v, (list, tuple)):
            return {"t": type(v).__name__, "v": [self._value(x, where) for x in v]}
        if v is None:
            return {"t": "none"}
        if isinstance(v, np.ndarray):
            return {"t": "tensor", **self._tensor(v, where)}
        if isinstance(v, np.generic):
            return {"t": "scalar", **self._tensor(np.asarray(v), where)}
        if isinstance(v, Graph):  # a control-flow node's subgraph, nested nodes and all
            return {"t": "graph", "name": v.name, "inputs": list(v.inputs), "outputs": list(v.outputs),
                    "outer": list(v.outer), "nodes": [self._node(n) for n in v.nodes],
                    "initializers": [{"name": n, **self._tensor(t, f"{where}, weight {n!r}")}
                                     for n, t in v.initializers.items()]}
        if isinstance(v, onnx.AttributeProto):
            self.blobs.append(v.SerializeToString())
            return {"t": "onnx_attribute", "blob": len(self.blobs) - 1}
        raise ModelFormatError(f"model {self.label!r}: {where}: values of type {type(v).__name__} cannot be stored")


# ---- loading ----------------------------------------------------------------

def list_models(path: str | os.PathLike) -> list[str]:
    """Keys of the sofie-rdf models stored in ``path``, in file order."""
    with _open(Path(path), None) as f:
        return _model_keys(f)


def load_root(path: str | os.PathLike, key: Optional[str], name: Optional[str] = None) -> Model:
    """The IR stored under ``key`` of ``path`` (``key`` None: the file's only model), read with uproot alone."""
    path = Path(path)
    with _open(path, key) as f:
        keys = _model_keys(f)
        if key is None:
            if len(keys) != 1:
                raise ModelFormatError(f"{str(path)!r} holds {len(keys)} sofie-rdf models "
                                       f"({', '.join(keys) or 'none'}); name one as 'file.root:key'")
            key = keys[0]
        where = f"{str(path)!r}, key {key!r}"
        if key not in keys:
            what = f"a {f.classname_of(key)}, not a sofie-rdf model" if key in f.keys(recursive=False, cycle=False) \
                else "no such key"
            raise ModelFormatError(f"{where}: {what} (models in the file: {', '.join(keys) or 'none'})")
        text = str(f[f"{key}/{MODEL_OBJECT}"])
        branch = f[f"{key}/{BLOB_TREE}"].get(BLOB_BRANCH)
        if branch is None or branch.typename != "uint8_t[]":
            raise ModelFormatError(f"{where}: the payload tree has no branch {BLOB_BRANCH!r} of bytes")
        chunks = branch.array(library="np")
    try:
        description = json.loads(text)
    except ValueError as exc:
        raise ModelFormatError(f"{where}: the model description is not valid JSON: {exc}") from None
    stream = np.concatenate([np.asarray(c, dtype=np.uint8) for c in chunks]) if len(chunks) else np.empty(0, np.uint8)
    return _Decoder(where, description, stream.tobytes()).model(name)


@contextmanager
def _open(path: Path, key: Optional[str]) -> Iterator[Any]:
    """``uproot.open`` with every failure on a damaged or foreign file turned into :class:`ModelFormatError`."""
    import uproot

    where = f"{str(path)!r}{'' if key is None else f' (key {key!r})'}"
    try:
        f = uproot.open(path)
    except Exception as exc:  # uproot and the OS raise many kinds on missing, foreign or damaged files
        raise ModelFormatError(f"cannot read {where} as a ROOT file: {exc}") from None
    try:
        with f:
            size = os.path.getsize(path)
            if size < f.file.fEND:  # as ROOT checks: the header says where the file ends
                raise ModelFormatError(f"cannot read {where}: the file is truncated ({size} of {f.file.fEND} bytes)")
            yield f
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"cannot read {where}: the file is damaged ({type(exc).__name__}: {exc})") from None


def _model_keys(f: Any) -> list[str]:
    """Top-level directories holding a model description and its payload tree."""
    classes = f.classnames(recursive=True, cycle=False)
    return [k for k in f.keys(recursive=False, cycle=False) if classes.get(k) == "TDirectory"
            and classes.get(f"{k}/{MODEL_OBJECT}") == "TObjString" and classes.get(f"{k}/{BLOB_TREE}") == "TTree"]


class _Decoder:
    """Rebuilds the IR from a parsed description, checking every field before using it."""

    def __init__(self, where: str, description: Any, stream: bytes):
        self.where = where
        self.d = self._dict(description, "the description")
        if self.d.get("format") != FORMAT:
            self.fail("the description is not a sofie-rdf model")
        version = self.d.get("version")
        if type(version) is not int or not 1 <= version <= VERSION:
            self.fail(f"format version {version!r} is not supported (this sofie-rdf reads up to {VERSION})")
        sizes = self._list(self.field(self.d, "blob_bytes", list), "blob_bytes", int)
        if any(s < 0 for s in sizes) or sum(sizes) != len(stream):
            self.fail(f"the payload holds {len(stream)} bytes, the description declares {sum(sizes)}: truncated or damaged")
        offsets = np.cumsum([0, *sizes]).tolist()
        self.blobs = [stream[a:b] for a, b in zip(offsets[:-1], offsets[1:])]

    def fail(self, what: str) -> None:
        raise ModelFormatError(f"{self.where}: {what}")

    def field(self, obj: dict, name: str, kind: type) -> Any:
        value = obj.get(name)
        if type(value) is not kind:
            self.fail(f"field {name!r} is missing or not a {kind.__name__}")
        return value

    def _dict(self, obj: Any, what: str) -> dict:
        if type(obj) is not dict:
            self.fail(f"{what} is not an object")
        return obj

    def _list(self, items: list, what: str, kind: type) -> list:
        if any(type(x) is not kind for x in items):
            self.fail(f"{what} should hold only {kind.__name__} values")
        return items

    def model(self, name: Optional[str]) -> Model:
        d = self.d
        stored = self.field(d, "name", str)
        label = name or stored
        opsets = self._dict(d.get("opsets"), "field 'opsets'")
        if any(type(k) is not str or type(v) is not int for k, v in opsets.items()):
            self.fail("field 'opsets' should map domain names to versions")
        model = Model(
            name=model_name_from(label), inputs=[], outputs=self._list(self.field(d, "outputs", list), "outputs", str),
            nodes=[], initializers={}, opsets=opsets, source=self.field(d, "source", str), doc=self.field(d, "doc", str))
        for spec in self.field(d, "inputs", list):
            spec = self._dict(spec, "an input")
            n = self.field(spec, "name", str)
            model.inputs.append(n)
            shape = tuple(self._dim(x, n) for x in self.field(spec, "shape", list))
            model.tensors[n] = TensorType(self._dtype(spec.get("dtype")), shape)
        for spec in self.field(d, "initializers", list):
            spec = self._dict(spec, "an initializer")
            model.initializers[self.field(spec, "name", str)] = self._tensor(spec)
        for spec in self.field(d, "nodes", list):
            model.nodes.append(self._node(self._dict(spec, "a node"), label))
        return model

    def _dim(self, value: Any, tensor: str) -> Any:
        if type(value) is int and value >= 0:
            return value
        if type(value) is str and 0 < len(value) <= MAX_DIM_NAME and value.isprintable():
            return symbol(value)
        self.fail(f"input {tensor!r} has the invalid dim {value!r}")

    def _dtype(self, name: Any) -> np.dtype:
        if name not in _DTYPES:
            self.fail(f"element type {name!r} is not supported")
        return _DTYPES[name]

    def _blob(self, index: Any) -> bytes:
        if type(index) is not int or not 0 <= index < len(self.blobs):
            self.fail(f"payload index {index!r} is out of range")
        return self.blobs[index]

    def _tensor(self, spec: dict) -> np.ndarray:
        dtype = self._dtype(spec.get("dtype"))
        shape = self._list(self.field(spec, "shape", list), "a tensor shape", int)
        raw = self._blob(spec.get("blob"))
        if any(s < 0 for s in shape) or math.prod(shape) * dtype.itemsize != len(raw):
            self.fail(f"a tensor of shape {shape} and type {dtype} has {len(raw)} bytes")
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        array = array.copy() if _LITTLE_ENDIAN else array.byteswap()
        if dtype == np.bool_ and array.view(np.uint8).max(initial=0) > 1:
            self.fail("a bool tensor holds bytes other than 0 and 1")
        return array

    def _node(self, spec: dict, label: str) -> Any:
        f = self.field
        inputs = self._list(f(spec, "inputs", list), "node inputs", str)
        outputs = self._list(f(spec, "outputs", list), "node outputs", str)
        attrs = {k: self._value(v) for k, v in self._dict(spec.get("attrs"), "node attributes").items()}
        return make_node(f(spec, "op_type", str), inputs, outputs, attrs, f(spec, "name", str), f(spec, "domain", str),
                         f(spec, "version", int), model=label)

    def _graph(self, spec: dict) -> Graph:
        f = self.field
        names = {k: self._list(f(spec, k, list), f"subgraph {k}", str) for k in ("inputs", "outputs", "outer")}
        weights = {f(self._dict(w, "a weight"), "name", str): self._tensor(w) for w in f(spec, "initializers", list)}
        nodes = [self._node(self._dict(n, "a node"), self.where) for n in f(spec, "nodes", list)]
        return Graph(f(spec, "name", str), names["inputs"], names["outputs"], nodes, weights, names["outer"])

    def _value(self, tagged: Any) -> Any:
        import onnx

        tagged = self._dict(tagged, "an attribute value")
        tag = tagged.get("t")
        if tag in _SCALARS:
            value = tagged.get("v")
            if type(value) is not _SCALARS[tag]:
                self.fail(f"an attribute tagged {tag!r} holds {value!r}")
            return value
        if tag in ("list", "tuple"):
            items = [self._value(x) for x in self.field(tagged, "v", list)]
            return items if tag == "list" else tuple(items)
        if tag == "none":
            return None
        if tag == "tensor":
            return self._tensor(tagged)
        if tag == "scalar":
            return self._tensor(tagged)[()]
        if tag == "graph":
            return self._graph(tagged)
        if tag == "onnx_attribute":
            proto = onnx.AttributeProto()
            try:
                proto.ParseFromString(self._blob(tagged.get("blob")))
            except Exception as exc:  # protobuf's DecodeError and friends
                self.fail(f"an ONNX attribute does not decode: {exc}")
            return proto
        self.fail(f"unknown attribute tag {tag!r}")


__all__ = ["list_models", "load_root", "save_root"]
