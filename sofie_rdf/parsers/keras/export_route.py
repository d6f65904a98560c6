"""The route for user code in an in-memory Keras model: torch's exporter, then the ONNX front end.

A ``Lambda``, a ``TorchModuleWrapper`` (a torch module of the user's), a user's
own ``keras.layers.Layer`` subclass or a subclassed ``keras.Model`` runs Python
that no converter of ours can know.  On the torch
backend a ``keras.Model`` is a ``torch.nn.Module``, so the framework's own
tracing can read that Python: the model is wrapped in a module taking its
inputs positionally and handed to the PyTorch front end
(:func:`sofie_rdf.parsers.pytorch.from_pytorch`: ``torch.onnx.export(dynamo=True)``
with our custom translations), every ``None`` dim of the Keras inputs made
symbolic (the batch dim named ``N`` as in the direct route), the inputs keeping
Keras's names and the outputs Keras's order.

Only objects take this route: a model read from a file stays in safe mode and
runs no code.  Built-in Keras layers without a converter stay refused by the
direct route, since the error naming them is what tells us which converter to
write next.
"""

from __future__ import annotations

import inspect
import re
import warnings
from typing import Any

import numpy as np

from ...errors import ModelFormatError, SofieError, UnsupportedOperatorError
from ...ir import Model

BATCH = "N"
BATCH_EXAMPLE = 3  # torch.export specialises sizes 0 and 1: the example batch must be neither
OTHER_EXAMPLE = 5  # plus the axis: the example size of another free dim, distinct within an input so torch keeps them apart
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ADVICE = ("The error above occurred", "Failed to export")
_CALL = "The following call raised this error:"
ROUTE = "torch.onnx.export(dynamo=True) of the Keras model on the torch backend, read as ONNX"


class KerasExportWarning(UserWarning):
    """Layers without a converter (user code) were converted through torch's exporter; the message names them."""


class KerasExportError(UnsupportedOperatorError):
    """Layers without a converter, and torch's exporter could not convert the model either: names the layers,
    the route tried and torch's root cause."""

    def __init__(self, model: str, unsupported: dict[str, list[str]], cause: str):
        super().__init__(model, unsupported)
        self.cause = cause
        self.args = (f"{self.args[0]}\nthe route for them, {ROUTE}, failed too:\n{cause}",)


def is_user_code(layer: Any) -> bool:
    """A layer whose computation is Python of the user's: a ``Lambda``, a ``TorchModuleWrapper`` (the user's torch
    module) or a class defined outside Keras."""
    module = type(layer).__module__ or ""
    return type(layer).__name__ in ("Lambda", "TorchModuleWrapper") or not (module == "keras" or module.startswith("keras."))


def export_keras(kmodel: Any, graph: Any, label: str, unsupported: dict[str, list[str]], keras: Any) -> Model:
    """``kmodel`` through torch's exporter and the ONNX front end, warning with the layers in ``unsupported``.

    ``graph`` is the model's Functional graph (its inputs and outputs), None for a subclassed model.

    Raises :class:`KerasExportError` naming them when the export or the ONNX front end fails.
    """
    names = ", ".join(f"{n!r} ({op})" for op, layers in sorted(unsupported.items()) for n in layers)
    if keras.backend.backend() != "torch":
        raise KerasExportError(label, unsupported, f"Keras runs on the {keras.backend.backend()} backend, "
                                                   "the route needs KERAS_BACKEND=torch")
    import torch

    from ..pytorch import from_pytorch

    try:
        shapes, dtypes, input_names, structured = _signature(kmodel, graph, label)
        dims = _dim_names(shapes, input_names)
        examples = [_example(torch, shape, dtype) for shape, dtype in zip(shapes, dtypes)]
        module = _positional(torch, kmodel, len(shapes), structured)
        outputs = _output_names(graph, module, examples, label)
    except SofieError as exc:
        raise KerasExportError(label, unsupported, str(exc)) from None
    try:
        model = from_pytorch(module, tuple(examples), name=label, dynamic_axes=dict(enumerate(dims)),
                             input_names=input_names, output_names=outputs)
    except SofieError as exc:
        # The PyTorch front end raises ``from None`` where torch failed; torch's exception is still its context.
        cause = str(exc) if exc.__context__ is None else f"torch's exporter failed: {root_cause(exc.__context__)}"
        raise KerasExportError(label, unsupported, cause) from None
    model.source = f"Keras {keras.__version__} (torch backend) through {model.source}"
    warnings.warn(f"Keras model {label!r}: no converter for {names}; the model went through {ROUTE}",
                  KerasExportWarning, stacklevel=3)
    return model


def root_cause(exc: BaseException) -> str:
    """The exception that says what to change, with the line of user code torch names.

    torch.export re-raises its root cause with only generic advice as the
    message (``The error above occurred when calling torch.export.export``),
    keeping the real message (``Could not guard on data-dependent expression``,
    then ``The following call raised this error:`` and the user's line) as the
    context: follow causes, and contexts where a message says nothing.
    """
    while True:
        message = _ANSI.sub("", str(exc)).strip()
        following = exc.__cause__ or (exc.__context__ if not message or message.startswith(_ADVICE) else None)
        if following is None:
            break
        exc = following
    lines = [line.rstrip() for line in message.splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    if _CALL in lines:
        text += "\n" + "\n".join(lines[lines.index(_CALL):lines.index(_CALL) + 3])
    return text


def _signature(kmodel: Any, graph: Any, label: str) -> tuple[list[tuple], list[str], list[str], bool]:
    """Input shapes (None where free), dtypes and names, and whether the model takes its inputs as one list.

    A Functional model knows its inputs; a subclassed one only the shapes it
    was built with (one per argument of ``call``), so it must have been built
    or called once; its inputs are taken to be of its compute dtype.
    """
    if graph is not None:
        inputs = graph.inputs
        return [tuple(t.shape) for t in inputs], [str(t.dtype) for t in inputs], _unique([t.name for t in inputs]), True
    built = getattr(kmodel, "_build_shapes_dict", None)
    if not built:
        raise ModelFormatError(f"Keras model {label!r} is a subclassed model that was never built: call it once "
                               "on a batch (or build(shape)) so its input shapes are known")
    shapes = list(built.values())
    if not all(isinstance(s, (tuple, list)) and all(d is None or isinstance(d, int) for d in s) for s in shapes):
        raise ModelFormatError(f"Keras model {label!r} was built with nested input shapes {built}; "
                               "only tensors as call arguments can be exported")
    # The batch dim of a model built by calling it holds that call's size: it stays free.
    shapes = [(None, *s[1:]) if s else tuple(s) for s in shapes]
    names = [k[:-len("_shape")] if k.endswith("_shape") else k for k in built]
    dtype = str(getattr(kmodel, "compute_dtype", "float32"))
    return shapes, [dtype] * len(shapes), _unique(names), False


def _unique(names: list[str]) -> list[str]:
    """The names made distinct (a repeated one gets ``_<k>``): Keras allows two inputs or outputs one name, a graph not."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}_{k}")
    return out


def _dim_names(shapes: list[tuple], input_names: list[str]) -> list[dict[int, str]]:
    """Each input's free axes: the batch axis is ``N`` (shared by every input), another ``<input>_dim<axis>``."""
    return [{a: BATCH if a == 0 else f"{name}_dim{a}" for a, d in enumerate(shape) if d is None}
            for shape, name in zip(shapes, input_names)]


def _example(torch: Any, shape: tuple, dtype: str) -> Any:
    """An example input: random values, sizes that torch cannot mistake for constants (not 0 or 1)."""
    sizes = [d if d is not None else BATCH_EXAMPLE if a == 0 else OTHER_EXAMPLE + a for a, d in enumerate(shape)]
    rng = np.random.default_rng(0)
    np_dtype = np.dtype(dtype)
    values = rng.integers(0, 2, sizes) if np_dtype.kind in "iub" else rng.standard_normal(sizes)
    return torch.from_numpy(np.ascontiguousarray(values.astype(np_dtype)))


def _positional(torch: Any, kmodel: Any, count: int, structured: bool) -> Any:
    """A module whose ``forward`` takes the model's inputs as ``count`` named positional arguments and returns
    its outputs flattened in Keras's order: torch.export binds ``dynamic_shapes`` to that signature, which
    ``keras.Model.forward(*args, **kwargs)`` does not spell out."""
    from keras import tree

    class KerasForward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = kmodel

        def forward(self, *inputs: Any) -> tuple:
            if structured:
                out = self.model(list(inputs) if count > 1 else inputs[0], training=False)
            else:
                out = self.model(*inputs, training=False)
            return tuple(tree.flatten(out))

    parameter = inspect.Parameter
    KerasForward.forward.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [parameter("self", parameter.POSITIONAL_OR_KEYWORD)]
        + [parameter(f"input_{i}", parameter.POSITIONAL_OR_KEYWORD) for i in range(count)])
    return KerasForward()


def _output_names(graph: Any, module: Any, examples: list[Any], label: str) -> list[str]:
    """Outputs named like the direct route's, after the layers producing them (``output_<i>`` for a subclassed
    model, whose outputs have no layer).  The example is run once first, so that a model failing in eager
    mode says so before torch.export wraps the failure."""
    import torch

    try:
        with torch.no_grad():
            produced = module(*examples)
    except Exception as exc:  # whatever the user's call raises
        text = str(exc).strip().splitlines()
        raise ModelFormatError(f"model {label!r} fails on an example input: {type(exc).__name__}: "
                               f"{text[0] if text else ''}") from None
    if graph is None or len(graph.outputs) != len(produced):
        return [f"output_{i}" for i in range(len(produced))]
    inputs = {t.name for t in graph.inputs}
    return [n if n not in inputs else f"{n}_output" for n in _unique([t._keras_history[0].name for t in graph.outputs])]
