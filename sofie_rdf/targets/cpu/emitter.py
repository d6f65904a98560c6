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

from typing import TYPE_CHECKING, Any

from ...errors import SofieError
from .._cxx.emitter import Emitter

if TYPE_CHECKING:
    from ...ops.base import Op
    from .._cxx.context import NodeContext
    from . import CpuTarget


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
