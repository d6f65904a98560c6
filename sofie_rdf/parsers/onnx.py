"""ONNX front end: ModelProto -> IR.

Reads a path, bytes or a ``ModelProto``; fills attribute defaults from the
schema of each node's opset (through :func:`sofie_rdf.ops.make_node`); keeps
named dims symbolic; loads external-data weights only from inside the
model's own folder.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import onnx
import onnx.defs
import onnx.version_converter
from onnx import AttributeProto, numpy_helper

from ..errors import LegacyModelWarning, ModelFormatError
from ..ir import Graph, Model, Node, TensorType, model_name_from
from ..ir.dims import symbol
from ..ir.dtypes import from_onnx as dtype_from_onnx
from ..ir.limits import max_tensor_bytes, too_large
from ..ops import lookup, make_node


def attribute_value(proto: AttributeProto) -> Any:
    """Python value of an ONNX attribute (tensors become numpy arrays)."""
    t = proto.type
    if t == AttributeProto.FLOAT:
        return float(proto.f)
    if t == AttributeProto.INT:
        return int(proto.i)
    if t == AttributeProto.STRING:
        return proto.s.decode("utf-8", errors="replace")
    if t == AttributeProto.TENSOR:
        try:
            return numpy_helper.to_array(proto.t)
        except Exception as exc:  # onnx raises TypeError, ValueError, ... for malformed tensors
            raise ModelFormatError(f"attribute {proto.name!r} holds a malformed tensor: {exc}") from None
    if t == AttributeProto.FLOATS:
        return [float(v) for v in proto.floats]
    if t == AttributeProto.INTS:
        return [int(v) for v in proto.ints]
    if t == AttributeProto.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in proto.strings]
    if t in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        return proto  # kept opaque; ops that accept subgraphs (``takes_subgraphs``) get them parsed by _node
    raise ModelFormatError(f"attribute {proto.name!r} has unsupported type {AttributeProto.AttributeType.Name(t)}")


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graphs ``node``'s attributes hold (a Loop's body, an If's branches)."""
    return [g for a in node.attribute for g in ([a.g] if a.HasField("g") else list(a.graphs))]


OnnxSource = Union[str, os.PathLike, bytes, onnx.ModelProto]

MIN_OPSET = 7


def from_onnx(source: OnnxSource, name: Optional[str] = None) -> Model:
    """Parse an ONNX model into the IR (no validation beyond the format)."""
    proto, base_dir, default_name = _read(source)
    label = name or default_name
    _check_text(proto, label)
    _warn_weights_as_inputs(proto, label)
    proto, opsets = _opsets(proto, label)
    graph = proto.graph  # the converted one where the opset was older than MIN_OPSET
    initializers = {}
    for t in graph.initializer:
        initializers[t.name] = _tensor(t, base_dir, label)
    inputs = [v for v in graph.input if v.name not in initializers]
    model = Model(
        name=model_name_from(name or default_name),
        inputs=[v.name for v in inputs],
        outputs=[v.name for v in graph.output],
        nodes=[],
        initializers=initializers,
        opsets=opsets,
        source=f"ONNX, opset {opsets.get('', 0)}, producer {proto.producer_name or 'unknown'}",
        doc=proto.doc_string,
    )
    for v in inputs:
        model.tensors[v.name] = _value_type(v, label)
        model.unnamed_dims |= _unnamed_dims(v)
    for i, node in enumerate(graph.node):
        model.nodes.append(_node(node, i, model, base_dir, label))
    return model


def _node(node: onnx.NodeProto, index: int, model: Model, base_dir: Optional[Path], label: str, top: bool = True) -> Node:
    """The IR node of ``node`` (of the main graph when ``top``, else of a subgraph), its subgraph attributes
    parsed and the enclosing-scope tensors they read appended to its inputs (see :class:`ir.Graph`)."""
    domain = node.domain if node.domain != "ai.onnx" else ""
    name = node.name or f"{node.op_type}_{index}"
    try:
        attrs = {a.name: attribute_value(a) for a in node.attribute}
    except ModelFormatError as exc:
        raise ModelFormatError(f"model {label!r}: node {name!r} ({node.op_type}): {exc}") from None
    takes = getattr(lookup(node.op_type, domain, model.opsets.get(domain, 0)), "takes_subgraphs", False)
    graphs = {
        k: _graph(v.g, model, base_dir, label)
        for k, v in attrs.items()
        if takes and isinstance(v, AttributeProto) and v.type == AttributeProto.GRAPH
    }
    outer = list(dict.fromkeys(n for g in graphs.values() for n in g.outer))
    for g in graphs.values():
        g.outer = outer
    attrs.update(graphs)
    inputs = _legacy_recurrent(model, node, name, attrs, label) if top else list(node.input)
    return make_node(node.op_type, inputs + outer, node.output, attrs, name, domain, model.opsets.get(domain, 0), model=label)


def _graph(proto: onnx.GraphProto, model: Model, base_dir: Optional[Path], label: str) -> Graph:
    """A subgraph, its ``outer`` the names it reads that it does not define, in order of first use."""
    initializers = {t.name: _tensor(t, base_dir, label) for t in proto.initializer}
    nodes = [_node(n, i, model, base_dir, label, top=False) for i, n in enumerate(proto.node)]
    inputs = [v.name for v in proto.input]
    defined = set(inputs) | set(initializers) | {o for n in nodes for o in n.outputs if o}
    read = [i for n in nodes for i in n.inputs if i] + [v.name for v in proto.output]
    outer = [n for n in dict.fromkeys(read) if n not in defined]
    return Graph(proto.name, inputs, [v.name for v in proto.output], nodes, initializers, outer)


RECURRENT = ("RNN", "GRU", "LSTM")


def _legacy_recurrent(model: Model, node: onnx.NodeProto, name: str, attrs: dict, label: str) -> list[str]:
    """The node's inputs, read as TMVA SOFIE reads recurrent nodes of older converters' files (with a
    warning naming the node): ``clip = 0`` meant no clipping (the spec wants it positive), and
    ``sequence_lens`` stored as float is cast to int32 (a Cast node in front, folded when it is a weight)."""
    inputs = list(node.input)
    if node.op_type not in RECURRENT or node.domain not in ("", "ai.onnx"):
        return inputs
    where = f"model {label!r}: {node.op_type} node {name!r}"
    if attrs.get("clip") == 0:
        del attrs["clip"]
        warnings.warn(
            f"{where}: clip = 0, as older converters write for no clipping: read as no clipping", LegacyModelWarning, stacklevel=4
        )
    lens = inputs[4] if len(inputs) > 4 else ""
    dtype = _dtype_of(model, lens)
    if dtype is not None and dtype.kind == "f":
        cast = f"{lens}/sofie_rdf_as_int32_{name}"
        model.nodes.append(
            make_node(
                "Cast",
                [lens],
                [cast],
                {"to": onnx.TensorProto.INT32},
                f"{name}/lens_as_int32",
                "",
                model.opsets.get("", 0),
                model=label,
            )
        )
        inputs[4] = cast
        warnings.warn(
            f"{where}: sequence_lens is {dtype}, as older converters write it: cast to int32", LegacyModelWarning, stacklevel=4
        )
    return inputs


def _dtype_of(model: Model, name: str) -> Optional[np.dtype]:
    """Element type of a graph input or weight (None for a node's output or an omitted input)."""
    if name in model.initializers:
        return model.initializers[name].dtype
    t = model.tensors.get(name)
    return t.dtype if t is not None else None


def _check_text(proto: onnx.ModelProto, label: str) -> None:
    """Every name the IR keeps is text: protobuf hands invalid UTF-8 in proto2 strings through as bytes."""
    graph = proto.graph
    names = [o.domain for o in proto.opset_import]
    names += [v.name for v in (*graph.input, *graph.output, *graph.initializer)]
    names += [d.dim_param for v in graph.input for d in v.type.tensor_type.shape.dim]
    for node in graph.node:
        names += [node.op_type, node.domain, node.name, *node.input, *node.output, *(a.name for a in node.attribute)]
    bad = next((n for n in names if not isinstance(n, str)), None)
    if bad is not None:
        raise ModelFormatError(f"model {label!r}: name {bad[:40]!r} is not valid UTF-8 text")


def _read(source: OnnxSource) -> tuple[onnx.ModelProto, Optional[Path], str]:
    """(proto, folder for external data, default model name)."""
    if isinstance(source, onnx.ModelProto):
        return source, None, source.graph.name or "Model"
    if isinstance(source, (bytes, bytearray)):
        return _decode(bytes(source), "<bytes>"), None, "Model"
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read ONNX model {str(path)!r}: {exc.strerror or exc}") from None
    return _decode(data, str(path)), path.resolve().parent, path.stem


def _decode(data: bytes, label: str) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelFormatError(f"{label} is not a valid ONNX model: {exc}") from None
    if not proto.HasField("graph") or not proto.opset_import:
        raise ModelFormatError(f"{label} is not an ONNX model (no graph or no opset)")
    return proto


def _opsets(proto: onnx.ModelProto, label: str) -> tuple[onnx.ModelProto, dict[str, int]]:
    """The model's opsets; a default-domain opset below :data:`MIN_OPSET` is converted up (with a warning)."""
    opsets = {("" if o.domain == "ai.onnx" else o.domain): int(o.version) for o in proto.opset_import}
    version = opsets.get("")
    newest = onnx.defs.onnx_opset_version()
    if version is not None and version > newest:
        raise ModelFormatError(
            f"model {label!r} uses ONNX opset {version}; the installed onnx knows up to {newest} (upgrade onnx)"
        )
    if version is None or version >= MIN_OPSET or _same_as_min_opset(proto, version):
        return proto, opsets
    try:
        converted = onnx.version_converter.convert_version(_initializers_as_inputs(proto), MIN_OPSET)
    except Exception as exc:  # the converter raises RuntimeError and ConvertError for adapters it lacks
        raise ModelFormatError(
            f"model {label!r} uses ONNX opset {version}; onnx.version_converter could not "
            f"convert it to opset {MIN_OPSET}: {str(exc).splitlines()[0] if str(exc) else exc}"
        ) from None
    warnings.warn(
        f"model {label!r} uses ONNX opset {version}, older than the oldest supported ({MIN_OPSET}): "
        f"converted to opset {MIN_OPSET} with onnx.version_converter",
        LegacyModelWarning,
        stacklevel=4,
    )
    return converted, _opsets(converted, label)[1]


def _initializers_as_inputs(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto``, or a copy listing every initializer among the graph inputs as IR version 3 did: the version
    converter reads weights only from there ("Input B is undefined!" for an opset-6 Gemm without them listed)."""
    listed = {v.name for v in proto.graph.input}
    missing = [t for t in proto.graph.initializer if t.name not in listed]
    if not missing:
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    copy.graph.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in missing)
    return copy


def _warn_weights_as_inputs(proto: onnx.ModelProto, label: str) -> None:
    """Warn of graph inputs that are also initializers (from IR version 4 on, overridable defaults): onnxruntime
    lets a caller feed them, the generated code holds them as constant weights.  IR version 3 lists every
    weight among the inputs, so nothing is said there."""
    if proto.ir_version < 4:
        return
    weights = {t.name for t in proto.graph.initializer}
    both = [v.name for v in proto.graph.input if v.name in weights]
    if both:
        readers = sorted({n.name or n.op_type for n in proto.graph.node if set(n.input) & set(both)})
        warnings.warn(
            f"model {label!r}: graph input(s) {_some(both)} also initializer(s): read as constant weights (by "
            f"{_some(readers)}), not inputs; onnxruntime would let a caller feed them",
            LegacyModelWarning,
            stacklevel=3,
        )


def _some(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` names quoted, and how many there are when more: a warning stays one line."""
    text = ", ".join(map(repr, names[:shown]))
    return text if len(names) <= shown else f"{text}, ... ({len(names)} in all)"


def _same_as_min_opset(proto: onnx.ModelProto, version: int) -> bool:
    """An older opset is fine when every default-domain operator the graph uses is defined there as in MIN_OPSET."""
    if not 1 <= version < MIN_OPSET:
        return False
    try:
        return all(
            onnx.defs.get_schema(op, version).since_version == onnx.defs.get_schema(op, MIN_OPSET).since_version
            for op in {n.op_type for n in proto.graph.node if n.domain in ("", "ai.onnx")}
        )
    except onnx.defs.SchemaError:
        return False


def _value_type(value: onnx.ValueInfoProto, label: str) -> TensorType:
    if not value.type.HasField("tensor_type"):
        raise ModelFormatError(f"model {label!r}: input {value.name!r} is not a tensor")
    tt = value.type.tensor_type
    if not tt.HasField("shape"):
        raise ModelFormatError(f"model {label!r}: input {value.name!r} has no shape")
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value"):
            if d.dim_value < 0:
                raise ModelFormatError(f"model {label!r}: input {value.name!r} has negative dim {d.dim_value}")
            dims.append(int(d.dim_value))
        else:
            dims.append(symbol(f"{value.name}_dim{i}" if _is_unnamed(d) else d.dim_param))
    dtype = dtype_from_onnx(tt.elem_type)
    if too_large([d for d in dims if isinstance(d, int)], dtype):
        raise ModelFormatError(
            f"model {label!r}: input {value.name!r} of shape {tuple(dims)} is over the limit of "
            f"{max_tensor_bytes():,} bytes per tensor"
        )
    return TensorType(dtype, tuple(dims))


# tf2onnx names the dims it does not know "unk__<n>", one per input: as good as no name.
_NO_NAME = re.compile(r"(unk__\d+|\?)?")


def _is_unnamed(d: onnx.TensorShapeProto.Dimension) -> bool:
    return not d.HasField("dim_value") and _NO_NAME.fullmatch(d.dim_param) is not None


def _unnamed_dims(value: onnx.ValueInfoProto) -> set[str]:
    """Names given to the dims of an input that the file left unnamed (see :func:`_value_type`)."""
    return {f"{value.name}_dim{i}" for i, d in enumerate(value.type.tensor_type.shape.dim) if _is_unnamed(d)}


def _tensor(t: onnx.TensorProto, base_dir: Optional[Path], label: str) -> np.ndarray:
    dtype = dtype_from_onnx(t.data_type)
    count = int(np.prod(t.dims, dtype=np.float64)) if t.dims else 1
    if any(d < 0 for d in t.dims) or too_large(t.dims, dtype):
        raise ModelFormatError(
            f"model {label!r}: initializer {t.name!r} has invalid or too large dims {list(t.dims)} "
            f"(limit {max_tensor_bytes():,} bytes per tensor)"
        )
    if t.data_location == onnx.TensorProto.EXTERNAL:
        t = _load_external(t, base_dir, label, count * dtype.itemsize)
    try:
        return numpy_helper.to_array(t).astype(dtype, copy=False)
    except Exception as exc:
        raise ModelFormatError(f"model {label!r}: initializer {t.name!r} is malformed: {exc}") from None


def _load_external(t: onnx.TensorProto, base_dir: Optional[Path], label: str, nbytes: int) -> onnx.TensorProto:
    """Copy of ``t`` with its external bytes inlined, read only from inside ``base_dir``."""
    info = {e.key: e.value for e in t.external_data}
    where = f"model {label!r}: initializer {t.name!r}"
    if base_dir is None:
        raise ModelFormatError(f"{where} uses external data; load the model from its file path")
    location = info.get("location", "")
    if not location or os.path.isabs(location):
        raise ModelFormatError(f"{where}: external data location {location!r} is not a relative path")
    path = (base_dir / location).resolve()
    if base_dir not in path.parents:
        raise ModelFormatError(f"{where}: external data {location!r} lies outside the model's folder")
    offset, length = int(info.get("offset", 0)), int(info.get("length", nbytes))
    if length != nbytes:
        raise ModelFormatError(f"{where}: external data length {length} does not match {nbytes} bytes of dims")
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.read(length)
    except OSError as exc:
        raise ModelFormatError(f"{where}: cannot read external data {location!r}: {exc.strerror}") from None
    if len(raw) != length:
        raise ModelFormatError(f"{where}: external data {location!r} is shorter than declared")
    inlined = onnx.TensorProto()
    inlined.CopyFrom(t)
    inlined.data_location = onnx.TensorProto.DEFAULT
    del inlined.external_data[:]
    inlined.raw_data = raw
    return inlined
