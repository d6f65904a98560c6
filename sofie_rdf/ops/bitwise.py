"""Bitwise operators on integers: BitShift, BitwiseAnd/Or/Xor and BitwiseNot.

They are :class:`~sofie_rdf.ops.elementwise.BinaryOp` / ``UnaryOp``
subclasses, so they broadcast like the arithmetic; only the numpy reference
differs.  Shift counts outside ``[0, bits)`` give the result ONNX defines
(opset 28), in the reference and in the CPU's ``kernels/bitwise.hxx``.
"""

from __future__ import annotations

import numpy as np

from .elementwise import BinaryOp, UnaryOp
from .registry import register

INTEGER = "iu"


@register
class BitShift(BinaryOp):
    """x shifted by y bits, ``direction`` LEFT or RIGHT; unsigned types only before opset 28."""

    op_type = "BitShift"
    since_version = 11
    kinds = "u"

    def left(self) -> bool:
        direction = self.attrs.get("direction")
        if direction not in ("LEFT", "RIGHT"):
            raise self.error(f"direction must be LEFT or RIGHT, got {direction!r}")
        return direction == "LEFT"

    def out_dtype(self, a: np.dtype, b: np.dtype) -> np.dtype:
        self.left()
        return super().out_dtype(a, b)

    def reference(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        bits = a.dtype.itemsize * 8
        valid = (b >= 0) & (b < bits)
        count = np.where(valid, b, 0).astype(a.dtype)
        if self.left():
            return np.where(valid, np.left_shift(a, count), 0)
        fill = np.where(a < 0, -1, 0) if a.dtype.kind == "i" else 0
        return np.where(valid, np.right_shift(a, count), fill)

@register
class BitShift_28(BitShift):
    """Opset 28 adds signed types: right shifts are arithmetic, left shifts drop bits past the sign bit."""

    since_version = 28
    kinds = INTEGER


class _Bitwise(BinaryOp):
    """Bitwise binary op on one integer type (opset 18)."""

    since_version = 18
    kinds = INTEGER


@register
class BitwiseAnd(_Bitwise):
    op_type = "BitwiseAnd"
    reference = staticmethod(np.bitwise_and)


@register
class BitwiseOr(_Bitwise):
    op_type = "BitwiseOr"
    reference = staticmethod(np.bitwise_or)


@register
class BitwiseXor(_Bitwise):
    op_type = "BitwiseXor"
    reference = staticmethod(np.bitwise_xor)


@register
class BitwiseNot(UnaryOp):
    """~x; integer promotion widens 8/16-bit values first, so the result is cast back."""

    op_type = "BitwiseNot"
    since_version = 18
    kinds = INTEGER
    reference = staticmethod(np.invert)
