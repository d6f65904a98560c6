"""Which function converts which Keras layer class.

A converter is ``fn(builder, layer, inputs, call) -> name | [names]``: it
reads the layer's configuration and weights, emits ONNX nodes through the
:class:`~.builder.GraphBuilder` and returns the IR names of the layer's
outputs, in the order Keras lists them.  ``inputs`` are the layer's input
tensors in call order; ``call`` is the Keras graph node (its ``arguments``
hold keyword inputs such as an attention layer's ``value``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

from .builder import GraphBuilder, Tensor

Converter = Callable[[GraphBuilder, Any, list[Tensor], Any], Union[str, Sequence[str]]]

CONVERTERS: dict[str, Converter] = {}


def converts(*class_names: str) -> Callable[[Converter], Converter]:
    """Register the decorated function for the Keras layer classes named."""
    def register(fn: Converter) -> Converter:
        for name in class_names:
            CONVERTERS[name] = fn
        return fn
    return register


def layer_key(layer: Any) -> str:
    """Registry key of a layer: its class name (``ops.<Name>`` for bare Keras operations, which are not layers)."""
    from keras.layers import Layer

    name = type(layer).__name__
    return name if isinstance(layer, Layer) else f"ops.{name}"
