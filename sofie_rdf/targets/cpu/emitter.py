"""Emitters: how the CPU target computes each operator.

An emitter is bound to one operator instance (one node) when a model is planned for a
:class:`~sofie_rdf.targets.cpu.CpuTarget`.  It declares the kernels (``kernels/*.hxx``) its code calls,
the scratch tensors those kernels need, the layout it wants its constant weights in (:meth:`Emitter.pack`,
remembered on the emitter: the IR keeps the weights' meaning), and writes the node's C++ statements, normally
one kernel call.  Emitters are registered per operator class (:func:`emits`) and found along the class's
bases, so a family base (``UnaryOp``) serves every operator derived from it.

User operators (:mod:`sofie_rdf.custom`) carry their C++ themselves (an ``emit`` method on the class):
:class:`OwnCode` calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Optional

import numpy as np

from ...errors import SofieError
from ...ir import TensorType

if TYPE_CHECKING:
    from ...ops.base import Op
    from . import CpuTarget
    from .context import NodeContext


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
    """An operator that writes its C++ itself (a user operator's ``emit``, ``kernels`` and ``workspace``)."""

    @property
    def kernels(self) -> tuple[str, ...]:
        return tuple(getattr(self.op, "kernels", ()))

    def pack(self, constants, inputs):
        packed = self.op.pack_constants(constants, inputs, "native" if self.target.register_tiles else "jit") \
            if hasattr(self.op, "pack_constants") else None
        if packed is None:
            return None
        values, attrs = packed
        self.op.node.attrs = {**self.op.node.attrs, **attrs}
        self.op.attrs = self.op.node.attrs
        return values

    # Packed values keep their own shapes (the operator reads them as such).
    stored_shapes = True

    def emit(self, ctx: NodeContext) -> str:
        return self.op.emit(ctx)

    def __getattr__(self, name: str) -> Any:
        # Transition: an operator whose code has not moved to an emitter yet answers for it (e.g. the
        # lambda of an activation another emitter fuses).
        return getattr(self.op, name)


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
