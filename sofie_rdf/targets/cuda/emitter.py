"""Emitters: how the CUDA target computes each operator.

As on the CPU, an emitter is bound to one node and found along its operator class's bases (:func:`emits`).  An
operator with no CUDA emitter (or a form its emitter does not handle, :meth:`Emitter.supports`) is bound to
:class:`Unsupported`, so that planning succeeds and the session writer reports every such node at once
(:func:`unsupported`), never running it elsewhere.  User operators (``sofie_rdf.custom``) bring CPU C++ and
are unsupported here.

Code written here runs on the host inside ``Session::nodes`` with these locals: ``stream_`` (the Session's
stream), ``blas_`` (its cuBLAS handle, bound to that stream), ``blas_lt_`` and ``blas_workspace_`` (its cuBLASLt
handle and the workspace it shares with cuBLAS, ``kBlasWorkspace`` bytes) and ``status_`` (see
:attr:`CudaEmitter.reports`); tensor pointers are device pointers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .._cxx.emitter import Emitter

if TYPE_CHECKING:
    from ...ops.base import Op
    from . import CudaTarget


class CudaEmitter(Emitter):
    """The CUDA code of one bound operator."""

    # Whether the code checks values on the device (indices) and reports the node through ``status_`` (an
    # ``int *``): the Session then raises after the call, naming the node.
    reports: ClassVar[bool] = False

    @classmethod
    def supports(cls, op: Op) -> bool:
        """Whether this emitter computes ``op`` (its class may be registered for a family it covers in part)."""
        return True


class Unsupported(CudaEmitter):
    """An operator the CUDA target cannot compute: the session writer refuses the model, naming it."""

    def emit(self, ctx: Any) -> str:
        raise self.error("the CUDA target has no kernel for this operator")


_EMITTERS: dict[type, type[CudaEmitter]] = {}


def emits(*op_classes: type) -> Any:
    """Class decorator registering a CUDA emitter for operator classes (and, through their bases, subclasses)."""

    def register(cls: type[CudaEmitter]) -> type[CudaEmitter]:
        for op_class in op_classes:
            _EMITTERS[op_class] = cls
        return cls

    return register


def emitter_class(op: Op) -> type[CudaEmitter]:
    """The emitter class of ``op``: the first of its classes (itself, then its bases) with a CUDA emitter
    registered, :class:`Unsupported` if that emitter does not handle it, if none is, or if the class writes its
    own (CPU) C++."""
    from . import emitters  # noqa: F401  (registration)

    for cls in type(op).__mro__:
        if "emit" in vars(cls):
            break
        if cls in _EMITTERS:
            return _EMITTERS[cls] if _EMITTERS[cls].supports(op) else Unsupported
    return Unsupported


def emitter_for(op: Op, target: CudaTarget) -> CudaEmitter:
    """The emitter of ``op`` bound to ``target`` (:func:`emitter_class`)."""
    return emitter_class(op)(op, target)


def has_code(op: Op) -> bool:
    """Whether the CUDA target computes ``op`` (a fused step or activation must, for its fused node to)."""
    return emitter_class(op) is not Unsupported


def unsupported(emitters: Any) -> dict[str, list[str]]:
    """Op type -> node names of every node bound to :class:`Unsupported` (what ``UnsupportedOperatorError`` lists)."""
    found: dict[str, list[str]] = {}
    for e in emitters:
        if isinstance(e, Unsupported):
            found.setdefault(e.op.node.qualified_type, []).append(e.op.node.name)
    return found
