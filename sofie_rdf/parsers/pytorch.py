"""PyTorch front end: module or file -> torch's own ONNX exporter, in memory -> the ONNX front end -> IR.

Route.  PyTorch's operator set is large and moving; its ONNX exporters are
maintained next to it and map it onto the ONNX operators our IR already
implements, so we reuse them instead of translating FX/aten graphs ourselves.
Which exporter depends on the source, chosen from trials on an MLP, a CNN
with BatchNorm, a 2-layer LSTM, a TransformerEncoder and a two-in/two-out
model (torch 2.13):

* ``torch.nn.Module``: the dynamo exporter (``torch.onnx.export(...,
  dynamo=True)``: torch.export, non-strict then strict, then the ONNX
  translation; it also patches the RNN decompositions so an LSTM keeps a
  symbolic sequence length, which plain ``torch.export.export`` refuses).  It
  covered all five, and unlike the TorchScript exporter it keeps sequence
  lengths symbolic inside attention.  There is no fallback to the
  TorchScript tracer: what torch.export refuses is typically data-dependent
  control flow, which a trace would silently freeze to the branch the
  example inputs took.
* ``torch.jit.ScriptModule`` (or a TorchScript ``.pt`` file): torch.export
  cannot read TorchScript, so the TorchScript ONNX exporter
  (``dynamo=False``, deprecated but present in torch 2.13).  It covered the
  MLP, CNN, LSTM and two-in/two-out models, traced or scripted, but no
  TransformerEncoder (traced: "transpose for tensor of unknown rank";
  scripted: ``aten::is_autocast_enabled``).  Save such models with
  ``torch.export.save`` instead, which this front end also reads.
* ``torch.export.ExportedProgram`` (or a file written by
  ``torch.export.save``): the dynamo ONNX exporter directly; its dynamic
  dimensions are those it was exported with.

Where an exporter lacks a translation or writes one wrong, ours is used: ``_torch_decomp`` (``torch.cdist``,
eval-mode ``nn.RReLU``, ``nn.EmbeddingBag``, adaptive pooling, ``scatter_reduce``'s "mean", fractional max pooling
with fixed ``_random_samples``, its windows folded in after the export), ``_torch_lstm`` (``nn.LSTM(proj_size=...)``)
and ``_torch_modules`` (``nn.CrossMapLRN2d``, whose forward torch.export cannot trace, and the checks of
``nn.FractionalMaxPool2d/3d``'s samples) for the dynamo exporter,
``_torchscript_fixes`` (``index_add``, ``scatter_reduce`` without the original elements or with "mean", list item
assignment) for the TorchScript one.

A pickled module (``torch.save(model)``) is refused without unpickling it.
Inputs are named ``input_0``... and outputs ``output_0``... unless given; the
axes in ``dynamic_axes`` become symbolic dims with the user's names, every
other input axis stays static.  Any exporter failure becomes a
:class:`ModelFormatError` with the first lines of torch's message.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import onnx

from ..errors import ModelFormatError
from ..ir import Model
from .onnx import from_onnx, subgraphs

TORCHSCRIPT_OPSET = 17
MESSAGE_LINES = 4
MESSAGE_CHARS = 600
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# {input position: {axis: dim name}}
Axes = dict[int, dict[int, str]]


def from_pytorch(
    source: Any,
    example_inputs: Any,
    name: Optional[str] = None,
    dynamic_axes: Optional[dict] = None,
    input_names: Optional[Sequence[str]] = None,
    output_names: Optional[Sequence[str]] = None,
) -> Model:
    """Parse a ``torch.nn.Module``, TorchScript module, ``ExportedProgram`` or a file holding one into the IR."""
    torch = _import_torch()
    program, default_name = _open(torch, source)
    label = name or default_name
    args = _example_tuple(torch, example_inputs, label)
    inputs = list(input_names) if input_names is not None else [f"input_{i}" for i in range(len(args))]
    if len(inputs) != len(args):
        raise ModelFormatError(f"model {label!r}: {len(inputs)} input names for {len(args)} example inputs")
    axes, output_axes = _split_axes(dynamic_axes or {}, inputs, label)
    with _quiet_torch():
        if isinstance(program, torch.jit.ScriptModule):
            proto, how = _export_torchscript(torch, program, args, inputs, axes, label), "TorchScript"
        elif isinstance(program, torch.nn.Module):
            proto, how = _export_module(torch, program, args, axes, label), "dynamo"
        else:
            proto, how = _export_program(torch, program, label), "dynamo"
    outputs = list(output_names) if output_names is not None else [f"output_{i}" for i in range(len(proto.graph.output))]
    _check_output_axes(output_axes, inputs, outputs, label)
    _rename(proto, inputs, outputs, label)
    _name_dims(proto, axes, label)
    model = from_onnx(proto, name=label)
    model.source = f"PyTorch {torch.__version__}, {how} ONNX exporter, opset {model.opsets.get('', 0)}"
    return model


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelFormatError("loading PyTorch models needs torch: pip install torch==2.13.0") from None
    return torch


# ---- sources ------------------------------------------------------------------------------------


def _open(torch: Any, source: Any) -> tuple[Any, str]:
    """(module or ExportedProgram, default model name) for an object or a file path."""
    if isinstance(source, (str, os.PathLike)):
        return _load_file(torch, Path(source)), Path(source).stem
    if isinstance(source, torch.jit.ScriptModule):
        return source, getattr(source, "original_name", None) or type(source).__name__
    if isinstance(source, torch.nn.Module):
        return source, type(source).__name__
    if isinstance(source, torch.export.ExportedProgram):
        return source, "Model"
    raise ModelFormatError(
        f"cannot load a PyTorch model from an object of type {type(source).__name__} "
        "(pass a torch.nn.Module, a TorchScript module or a .pt file)"
    )


def _load_file(torch: Any, path: Path) -> Any:
    """TorchScript or ``torch.export`` archive, told apart by their members so nothing is ever unpickled."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {m.split("/", 1)[-1] for m in archive.namelist()}
    except OSError as exc:
        raise ModelFormatError(f"cannot read PyTorch model {str(path)!r}: {exc.strerror or exc}") from None
    except zipfile.BadZipFile:
        raise ModelFormatError(f"{str(path)!r} is not a PyTorch model file (not a zip archive)") from None
    if "constants.pkl" in members:
        # Files saved on a GPU name cuda storages; inference here runs on the CPU, so map them there.
        return _load_with(lambda p: torch.jit.load(p, map_location="cpu"), path, "TorchScript")
    if "archive_format" in members and any(m.startswith("models/") for m in members):
        return _load_with(torch.export.load, path, "torch.export")
    if "data.pkl" in members:
        raise ModelFormatError(
            f"{str(path)!r} is a pickled object saved with torch.save, which is not loaded (unpickling runs "
            "arbitrary code and needs the model's Python class); save it with torch.jit.save(torch.jit.script(model)) "
            "or torch.export.save(torch.export.export(model, inputs)), or pass the module object"
        )
    raise ModelFormatError(f"{str(path)!r} is not a TorchScript or torch.export file")


def _load_with(loader: Any, path: Path, kind: str) -> Any:
    try:
        with _quiet_torch():
            return loader(str(path))
    except Exception as exc:  # torch raises RuntimeError and friends for corrupt archives
        raise ModelFormatError(f"cannot load {kind} file {str(path)!r}: {_condense(exc)}") from None


def _example_tuple(torch: Any, example_inputs: Any, label: str) -> tuple:
    items = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    args = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            item = torch.from_numpy(np.ascontiguousarray(item))
        if not isinstance(item, torch.Tensor):
            raise ModelFormatError(
                f"model {label!r}: example input {i} is a {type(item).__name__}, expected a torch.Tensor or numpy array"
            )
        args.append(item)
    if not args:
        raise ModelFormatError(f"model {label!r}: example_inputs is empty")
    return tuple(args)


# ---- dynamic axes ----------------------------------------------------------------------------------


def _split_axes(dynamic_axes: dict, inputs: list[str], label: str) -> tuple[Axes, dict[str, dict[int, str]]]:
    """Input axes by position, and output axes by name (checked once the outputs are known).

    Keys are input positions, input names or output names, as in
    ``torch.onnx.export``; values map axis -> name, or list the axes (named
    ``<tensor>_dim<axis>`` then).
    """
    axes: Axes = {}
    output_axes = {}
    for key, value in dynamic_axes.items():
        if isinstance(key, int) and not 0 <= key < len(inputs):
            raise ModelFormatError(f"model {label!r}: dynamic_axes names input {key}, the model has {len(inputs)}")
        tensor = inputs[key] if isinstance(key, int) else str(key)
        named = value if isinstance(value, dict) else {a: f"{tensor}_dim{a}" for a in value}
        for dim in named.values():
            if not str(dim).isidentifier():
                raise ModelFormatError(f"model {label!r}: dynamic axis name {dim!r} of {tensor!r} is not an identifier")
        if tensor in inputs:
            axes[inputs.index(tensor)] = {int(a): str(d) for a, d in named.items()}
        else:
            output_axes[tensor] = named
    return axes, output_axes


def _check_output_axes(output_axes: dict, inputs: list[str], outputs: list[str], label: str) -> None:
    """Output axes follow from the inputs' during shape inference; only their keys are checked."""
    unknown = sorted(set(output_axes) - set(outputs))
    if unknown:
        raise ModelFormatError(
            f"model {label!r}: dynamic_axes names {', '.join(map(repr, unknown))}, neither an input "
            f"({', '.join(inputs)}) nor an output ({', '.join(outputs)})"
        )


# ---- exporters ---------------------------------------------------------------------------------------


def _export_module(torch: Any, module: Any, args: tuple, axes: Axes, label: str) -> onnx.ModelProto:
    """torch.export through ``torch.onnx.export``, which also patches the RNN decompositions for dynamic lengths."""
    dims: dict[str, Any] = {}
    shapes = tuple({a: dims.setdefault(d, torch.export.Dim(d)) for a, d in axes.get(i, {}).items()} for i in range(len(args)))
    from ._torch_lstm import projected_lstms_swapped
    from ._torch_modules import ModuleRefused, modules_swapped

    with _eval_mode(module), projected_lstms_swapped(module), modules_swapped(module):
        try:
            return _folded(torch.onnx.export(
                module,
                args,
                dynamo=True,
                dynamic_shapes=shapes if axes else None,
                custom_translation_table=_translations(torch),
                verbose=False,
            ))
        except Exception as exc:  # TorchExportError, ConversionError, ...
            refusal = _cause_of_type(exc, ModuleRefused)
            if refusal is not None:
                raise ModelFormatError(f"model {label!r}: {refusal}") from None
            raise ModelFormatError(f"model {label!r}: torch.export cannot export it: {_condense(exc)}") from None


def _export_program(torch: Any, program: Any, label: str) -> onnx.ModelProto:
    try:
        return _folded(torch.onnx.export(program, dynamo=True, custom_translation_table=_translations(torch), verbose=False))
    except Exception as exc:
        raise ModelFormatError(f"model {label!r}: the ONNX exporter failed: {_condense(exc)}") from None


def _folded(program: Any) -> onnx.ModelProto:
    """The ONNX model of an ``ONNXProgram``, finished where our translations need the initializers' values, which
    the exporter sets only after translating (``_torch_decomp.fold_fractional_windows``)."""
    from ._torch_decomp import fold_fractional_windows

    proto = program.model_proto
    fold_fractional_windows(proto)
    return proto


def _translations(torch: Any) -> dict:
    """Our translations of the aten operators the exporter lacks or mistranslates (see ``_torch_decomp``)."""
    from ._torch_decomp import translation_table

    return translation_table(torch)


def _export_torchscript(torch: Any, module: Any, args: tuple, inputs: list[str], axes: Axes, label: str) -> onnx.ModelProto:
    from . import _torchscript_fixes

    buffer = io.BytesIO()
    with _eval_mode(module), _torchscript_fixes.registered(torch, TORCHSCRIPT_OPSET):
        try:
            torch.onnx.export(
                module,
                args,
                buffer,
                dynamo=False,
                opset_version=TORCHSCRIPT_OPSET,
                input_names=inputs,
                dynamic_axes={inputs[i]: a for i, a in axes.items()},
            )
        except Exception as exc:
            raise ModelFormatError(
                f"model {label!r}: the TorchScript ONNX exporter failed: {_condense(exc)}\n"
                "(pass the nn.Module, or a file saved with torch.export.save, which take the "
                "torch.export route)"
            ) from None
    proto = onnx.load_from_string(buffer.getvalue())
    _torchscript_fixes.repair_list_edits(proto.graph)
    return proto


@contextlib.contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """Export in inference mode, then give every submodule back its own training flag.

    A frozen TorchScript module (``torch.jit.freeze``, as Triton model repositories ship them) has no training
    flag left: it is in inference mode already, and is left as it is."""
    if not hasattr(module, "training"):
        yield
        return
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """The exporters' deprecation notices, own warnings and registry chatter ("torchvision is not installed")."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx\.")
            yield
    finally:
        logger.setLevel(level)


def _cause_of_type(exc: BaseException, kind: type) -> Optional[BaseException]:
    """The first exception of ``kind`` among ``exc``'s causes and contexts (torch.export wraps what a forward raises)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _condense(exc: BaseException) -> str:
    """The first lines of the root cause's message, without colour codes: the gist, not the traceback.

    The dynamo exporter wraps the cause in a page of generic advice; the
    cause (``GuardOnDataDependentSymNode``, a constraint violation, ...) is
    what tells the user what to change.
    """
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.rstrip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    text = "\n".join(lines[:MESSAGE_LINES]) or type(exc).__name__
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + " ..."


# ---- names -----------------------------------------------------------------------------------------------


def _rename(proto: onnx.ModelProto, inputs: list[str], outputs: list[str], label: str) -> None:
    """Give the graph's inputs and outputs the user's names (or ``input_i``/``output_j``)."""
    graph = proto.graph
    weights = {t.name for t in graph.initializer}
    old_inputs = [v.name for v in graph.input if v.name not in weights]
    if len(old_inputs) != len(inputs):
        raise ModelFormatError(
            f"model {label!r}: the exported graph has {len(old_inputs)} inputs, {len(inputs)} example inputs were given"
        )
    if len(graph.output) != len(outputs):
        raise ModelFormatError(f"model {label!r}: {len(outputs)} output names for {len(graph.output)} outputs")
    if len(set(inputs + outputs)) != len(inputs) + len(outputs):
        raise ModelFormatError(f"model {label!r}: input and output names must be distinct: {inputs + outputs}")
    mapping = dict(zip(old_inputs, inputs))
    copies = []  # an input passed through, or a tensor returned twice, is copied to its output name
    for j, (value, new) in enumerate(zip(graph.output, outputs)):
        if value.name in mapping:
            copies.append((j, value.name, new))
        else:
            mapping[value.name] = new
    taken = _all_names(graph) - set(mapping)
    for new in set(mapping.values()) & taken:  # an internal tensor already has a wanted name: move it aside
        mapping[new] = _fresh(new, taken | set(mapping.values()))
    _apply(graph, mapping)
    for j, old, new in copies:
        graph.node.append(onnx.helper.make_node("Identity", [mapping[old]], [new], name=f"output_copy_{j}"))
        graph.output[j].name = new


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in list(graph.input) + list(graph.output) + list(graph.value_info)}
    names |= {t.name for t in graph.initializer}
    for node in graph.node:
        names |= set(node.input) | set(node.output)
        for sub in subgraphs(node):
            names |= _all_names(sub)
    return names - {""}


def _fresh(name: str, taken: set[str]) -> str:
    k = 1
    while f"{name}_{k}" in taken:
        k += 1
    return f"{name}_{k}"


def _apply(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    for value in list(graph.input) + list(graph.output) + list(graph.value_info) + list(graph.initializer):
        value.name = mapping.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
        for sub in subgraphs(node):
            _apply(sub, mapping)


def _name_dims(proto: onnx.ModelProto, axes: Axes, label: str) -> None:
    """Rename the exporter's symbols (``s77``, ``input_0_dynamic_axes_1``) to the user's dim names, on every input."""
    graph = proto.graph
    weights = {t.name for t in graph.initializer}
    values = [v for v in graph.input if v.name not in weights]
    renames: dict[str, str] = {}
    for i, named in axes.items():
        dims = values[i].type.tensor_type.shape.dim
        for axis, dim in named.items():
            if not -len(dims) <= axis < len(dims):
                raise ModelFormatError(f"model {label!r}: input {values[i].name!r} has no axis {axis} (rank {len(dims)})")
            d = dims[axis]
            if not d.HasField("dim_param"):
                raise ModelFormatError(
                    f"model {label!r}: axis {axis} of input {values[i].name!r} is static "
                    f"({d.dim_value}) in the exported program and cannot be named {dim!r}"
                )
            if renames.setdefault(d.dim_param, dim) != dim:
                raise ModelFormatError(
                    f"model {label!r}: torch found axes named {renames[d.dim_param]!r} and {dim!r} "
                    "to be the same dimension; give them one name"
                )
    for value in values:
        for d in value.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in renames:
                d.dim_param = renames[d.dim_param]
