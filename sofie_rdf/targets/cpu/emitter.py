"""Emitters: how the CPU target computes each operator.

An emitter is bound to one operator instance (one node) when a model is planned for a
:class:`~sofie_rdf.targets.cpu.CpuTarget`.  It declares the kernels (``kernels/*.hxx``) its code calls,
the scratch tensors those kernels need, the layout it wants its constant weights in (:meth:`Emitter.pack`,
remembered on the emitter: the IR keeps the weights' meaning), and writes the node's C++ statements, normally
one kernel call.  Emitters are registered per operator class (:func:`emits`) and found along the class's
bases, so a family base (``UnaryOp``) serves every operator derived from it.

User operators (:mod:`sofie_rdf.custom`) carry their C++ themselves (an ``emit`` method on the class):
:class:`OwnCode` calls it.  Built-in operators never do: ``tests/test_architecture.py`` checks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Optional

import numpy as np

from ...errors import SofieError
from ...ir import TensorType

if TYPE_CHECKING:
    from ...ops.base import Op
    from .._cxx.context import NodeContext
    from . import CpuTarget


class Emitter:
    """The CPU code of one bound operator (a node)."""

    # Kernel headers (kernels/<name>.hxx) the emitted code calls; a property where the layout decides.
    kernels: ClassVar[tuple[str, ...]] = ()

    def __init__(self, op: Op, target: CpuTarget):
        self.op = op
        self.target = target
        self.attrs = op.attrs

    def error(self, message: str) -> SofieError:
        """An error naming the model and node."""
        return self.op.error(message)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """Scratch tensors the emitted code needs (``ctx.w(k)``): planned in the arena, live for this node only."""
        return self.op.workspace(inputs, outputs)

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        """Constant inputs stored in the layout the kernel reads fastest, by input index (None: as they are).

        ``constants`` maps input index -> value for the inputs that are weights, ``inputs`` are the types of all
        inputs.  An emitter that packs remembers the layout it chose for :meth:`emit`.
        """
        return None

    def emit(self, ctx: NodeContext) -> str:
        """C++ statements computing the node's outputs from its inputs."""
        raise NotImplementedError


def optional_ptr(ctx: NodeContext, i: int) -> str:
    """C++ pointer of optional input ``i``: ``nullptr`` when omitted."""
    return ctx.x(i) if len(ctx.inputs) > i and ctx.inputs[i] is not None else "nullptr"


_EMITTERS: dict[type, type[Emitter]] = {}


def emits(*op_classes: type) -> Any:
    """Class decorator registering an emitter for operator classes (and, through their bases, their subclasses)."""

    def register(cls: type[Emitter]) -> type[Emitter]:
        for op_class in op_classes:
            _EMITTERS[op_class] = cls
        return cls

    return register


class OwnCode(Emitter):
    """A user operator that writes its C++ itself (its ``emit``, and the ``kernels`` it calls)."""

    @property
    def kernels(self) -> tuple[str, ...]:
        return tuple(getattr(self.op, "kernels", ()))

    def emit(self, ctx: NodeContext) -> str:
        return self.op.emit(ctx)


def emitter_for(op: Op, target: CpuTarget) -> Emitter:
    """The emitter of ``op``: the first of its classes (itself, then its bases) that defines ``emit`` or has an
    emitter registered."""
    from . import emitters  # noqa: F401  (registration)

    for cls in type(op).__mro__:
        if "emit" in vars(cls):
            return OwnCode(op, target)
        if cls in _EMITTERS:
            return _EMITTERS[cls](op, target)
    raise SofieError(f"model {op.model!r}: {op.node}: the CPU target has no code for {op.node.op_type}")
