"""Keras wrapper layers: TimeDistributed, SpectralNormalization, Pipeline.

``TimeDistributed(layer)`` applies ``layer`` to every step of a
``(N, T, ...)`` input.  Keras loops over the steps; here time is folded into
the batch (``Reshape`` to ``(N*T, ...)``), the wrapped layer's own converter
runs once on that, and the result is unfolded back to ``(N, T, ...)``.  So
every layer that has a converter can be wrapped, and the wrapped layer's
weights appear once in the generated code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Sequence

from ...errors import UnsupportedOperatorError
from .builder import GraphBuilder, Tensor, cast
from .registry import CONVERTERS, converts, layer_key


@dataclass
class StepCall:
    """What a converter reads of a Keras graph node, for a layer applied to one step's tensors."""

    operation: Any
    input_tensors: list[Any]
    output_tensors: list[Any]
    arguments: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.arguments is None:
            self.arguments = SimpleNamespace(args=tuple(self.input_tensors), kwargs={})


def _fold(b: GraphBuilder, x: Tensor) -> str:
    """``(N, T, rest...)`` -> ``(N*T, rest...)``: a constant shape where ``rest`` is fixed, else read at run time."""
    rest = x.shape[2:]
    if None not in rest:
        return b.reshape(x.name, [-1, *rest])
    shape = b.add("Concat", [b.ints([-1], "folded"), b.add("Shape", [x.name], {"start": 2})], {"axis": 0})
    return b.add("Reshape", [x.name, shape])


def _unfold(b: GraphBuilder, y: str, x: Tensor, rest: Sequence) -> str:
    """``(N*T, rest...)`` -> ``(N, T, rest...)``, with ``N`` and ``T`` those of the wrapper's input ``x``."""
    if x.shape[1] is not None and None not in rest:
        return b.reshape(y, [-1, x.shape[1], *rest])
    outer = b.add("Shape", [x.name], {"start": 0, "end": 2})
    shape = b.add("Concat", [outer, b.add("Shape", [y], {"start": 1})], {"axis": 0})
    return b.add("Reshape", [y, shape])


@converts("TimeDistributed", masks=True)
def _time_distributed(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    import keras

    inner = layer.layer
    key = layer_key(inner)
    if key not in CONVERTERS:
        raise UnsupportedOperatorError(b.model_name, {f"keras.layers.TimeDistributed of keras.layers.{key}": [layer.name]})
    x, outer_out = inputs[0], call.output_tensors[0]
    if x.mask is not None and getattr(inner, "_call_has_mask_arg", False):
        raise UnsupportedOperatorError(
            b.model_name, {f"keras.layers.TimeDistributed of a masked keras.layers.{key} (the mask of one step)": [layer.name]}
        )
    step_in = keras.KerasTensor((None, *x.shape[2:]), dtype=call.input_tensors[0].dtype)
    step_out = keras.KerasTensor((None, *outer_out.shape[2:]), dtype=outer_out.dtype)
    folded = Tensor(_fold(b, x), step_in.shape)
    outs = CONVERTERS[key](b, inner, [folded], StepCall(inner, [step_in], [step_out]))
    outs = [outs] if isinstance(outs, str) else list(outs)
    if len(outs) != 1:
        raise ValueError(f"TimeDistributed of {inner.name!r}: the wrapped layer gives {len(outs)} outputs")
    return _unfold(b, outs[0], x, step_out.shape[1:])


@converts("SpectralNormalization")
def _spectral_normalization(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """At inference the wrapped layer runs with its (already normalized) kernel; the result is cast back to the
    input's dtype."""
    inner = layer.layer
    key = layer_key(inner)
    if key not in CONVERTERS:
        raise UnsupportedOperatorError(b.model_name, {f"keras.layers.SpectralNormalization of keras.layers.{key}": [layer.name]})
    outs = CONVERTERS[key](b, inner, inputs[:1], StepCall(inner, call.input_tensors[:1], call.output_tensors))
    y = outs if isinstance(outs, str) else outs[0]
    return cast(b, y, call.output_tensors[0].dtype, call.input_tensors[0].dtype)


@converts("Pipeline")
def _pipeline(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Its layers one after the other, each by its own converter (Keras calls them inside the pipeline's call, so
    the model's graph does not show them: their tensors are made up here from their output shapes)."""
    import keras

    x, spec = inputs[0], call.input_tensors[0]
    for inner in layer._pipeline_layers:
        key = layer_key(inner)
        if key not in CONVERTERS:
            raise UnsupportedOperatorError(b.model_name, {f"keras.layers.Pipeline of keras.layers.{key}": [layer.name]})
        out = keras.KerasTensor(inner.compute_output_shape(spec.shape), dtype=inner.compute_dtype)
        outs = CONVERTERS[key](b, inner, [x], StepCall(inner, [spec], [out]))
        x, spec = Tensor(outs if isinstance(outs, str) else outs[0], tuple(out.shape)), out
    return x.name
