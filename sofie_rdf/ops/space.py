"""DepthToSpace and SpaceToDepth: a reshape and a transpose, so one strided copy.

Both view the NCHW input as a 6-D tensor, permute it, and copy it out in the
new order with :func:`~sofie_rdf.ops.movement.emit_strided_copy`.
"""

from __future__ import annotations

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import simplify
from .base import Op
from .registry import register


class _BlockRearrange(Op):
    """Shared shape checks and copy; subclasses give the 6-D view and permutation."""

    def block(self) -> int:
        b = int(self.attrs["blocksize"])
        if b < 1:
            raise self.error(f"blocksize must be positive, got {b}")
        return b

    def layout(self, shape: tuple) -> tuple[tuple, tuple[int, ...]]:
        """The 6-D shape the input is read as, and the permutation giving the output."""
        raise NotImplementedError

    @staticmethod
    def quotient(d, k: int):
        """d / k for a d divisible by k.  A symbolic d (an image height H) gives floor(H/k), an integer
        expression the code can compute; :meth:`divisible` makes the code check that nothing is dropped."""
        return d // k if isinstance(d, int) else simplify(sympy.floor(d / k))

    def divisible(self, d, k: int, what: str) -> None:
        if isinstance(d, int):
            if d % k:
                raise self.error(f"{what} {d} is not divisible by {k}")
        else:
            self.require(sympy.Eq(sympy.Mod(d, k), 0), f"{what} {d} must be divisible by {k}")

    def out_shape(self, shape: tuple) -> tuple:
        raise NotImplementedError

    def infer(self, inputs):
        x = inputs[0]
        if x.rank != 4:
            raise self.error(f"expects a 4-D (N, C, H, W) input, got shape {x.shape}")
        return [TensorType(x.dtype, self.out_shape(x.shape))]

    def evaluate(self, values):
        x = values[0]
        shape, perm = self.layout(x.shape)
        return [np.transpose(x.reshape(shape), perm).reshape(self.out_shape(x.shape))]


@register
class DepthToSpace(_BlockRearrange):
    """Channels to spatial blocks, depth-column-row (DCR, default) or column-row-depth (CRD) order."""

    op_type = "DepthToSpace"

    def layout(self, shape):
        n, c, h, w = shape
        b = self.block()
        depth = self.quotient(c, b * b)
        if self.attrs.get("mode", "DCR") == "CRD":
            return (n, depth, b, b, h, w), (0, 1, 4, 2, 5, 3)
        return (n, b, b, depth, h, w), (0, 3, 4, 1, 5, 2)

    def out_shape(self, shape):
        n, c, h, w = shape
        b = self.block()
        self.divisible(c, b * b, "channels")
        depth = self.quotient(c, b * b)
        return (n, depth, simplify(h * b), simplify(w * b))


@register
class SpaceToDepth(_BlockRearrange):
    """Spatial blocks to channels, DCR order (CRD with the ``mode`` attribute of opset 28)."""

    op_type = "SpaceToDepth"

    def layout(self, shape):
        n, c, h, w = shape
        b = self.block()
        perm = (0, 1, 3, 5, 2, 4) if self.attrs.get("mode", "DCR") == "CRD" else (0, 3, 5, 1, 2, 4)
        return (n, c, self.quotient(h, b), b, self.quotient(w, b), b), perm

    def out_shape(self, shape):
        n, c, h, w = shape
        b = self.block()
        self.divisible(h, b, "height")
        self.divisible(w, b, "width")
        return (n, simplify(c * b * b), self.quotient(h, b), self.quotient(w, b))
