"""Which function converts which Keras layer class.

A converter is ``fn(builder, layer, inputs, call) -> name | [names]``: it
reads the layer's configuration and weights, emits ONNX nodes through the
:class:`~.builder.GraphBuilder` and returns the IR names of the layer's
outputs, in the order Keras lists them.  ``inputs`` are the layer's input
tensors in call order; ``call`` is the Keras graph node (its ``arguments``
hold keyword inputs such as an attention layer's ``value``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

from ...errors import SofieError
from .builder import GraphBuilder, Tensor

Converter = Callable[[GraphBuilder, Any, list[Tensor], Any], Union[str, Sequence[str]]]

CONVERTERS: dict[str, Converter] = {}
# Classes whose converters read the Keras mask of their inputs (``Tensor.mask``); a layer whose ``call`` takes a
# mask is refused with a masked input unless its class is here, so that no mask is silently ignored.
MASK_AWARE: set[str] = set()
# Class name -> the converters user registrations (add_converter) replaced, most recent last (None: there was none).
_SHADOWED: dict[str, list[Optional[Converter]]] = {}


def converts(*class_names: str, masks: bool = False) -> Callable[[Converter], Converter]:
    """Register the decorated function for the Keras layer classes named (``masks``: it reads input masks)."""
    def register(fn: Converter) -> Converter:
        for name in class_names:
            CONVERTERS[name] = fn
            if masks:
                MASK_AWARE.add(name)
        return fn
    return register


def add_converter(class_name: str, fn: Converter, override: bool = False) -> None:
    """Register a user converter (``sofie_rdf.keras_layer``); replacing one already there needs ``override``."""
    previous = CONVERTERS.get(class_name)
    if previous is not None and not override:
        raise SofieError(f"Keras layer class {class_name!r} already has a converter ({previous.__module__}."
                         f"{previous.__qualname__}); pass override=True to replace it")
    _SHADOWED.setdefault(class_name, []).append(previous)
    CONVERTERS[class_name] = fn


def remove_converter(class_name: str) -> None:
    """Undo the latest :func:`add_converter` for ``class_name``."""
    stack = _SHADOWED.get(class_name)
    if not stack:
        raise SofieError(f"no user converter is registered for Keras layer class {class_name!r}")
    previous = stack.pop()
    if previous is None:
        del CONVERTERS[class_name]
    else:
        CONVERTERS[class_name] = previous


def layer_key(layer: Any) -> str:
    """Registry key of a layer: its class name (``ops.<Name>`` for bare Keras operations, which are not layers)."""
    from keras.layers import Layer

    name = type(layer).__name__
    return name if isinstance(layer, Layer) else f"ops.{name}"
