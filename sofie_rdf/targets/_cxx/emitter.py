"""The base of every target's emitters: one operator instance (a node) bound to a target.

An emitter declares the kernels its code calls, the scratch tensors those kernels need (planned in the arena),
the layout it wants its constant weights in (:meth:`Emitter.pack`, remembered on the emitter: the IR keeps the
weights' meaning) and writes the node's statements (:meth:`Emitter.emit`).  Each target registers its own
emitters per operator class (``targets/<name>/emitter.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Optional

import numpy as np

from ...errors import SofieError
from ...ir import TensorType

if TYPE_CHECKING:
    from ...ops.base import Op
    from .. import Target
    from .context import NodeContext


class Emitter:
    """The code of one bound operator (a node) on one target; each target registers its subclasses."""

    # Kernel files of the target (kernels/<name>.hxx, .cuh) the emitted code calls; a property where the layout decides.
    kernels: ClassVar[tuple[str, ...]] = ()

    def __init__(self, op: Op, target: Target):
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
        """C++ statements computing the node's outputs from its inputs (empty for a view)."""
        raise NotImplementedError
