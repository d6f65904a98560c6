"""C++ braced initialisers of the small structs the CUDA kernels take by value (shapes, strides, windows)."""

from __future__ import annotations

from typing import Any, Sequence


def values(ctx: Any, items: Sequence[Any], ctype: str) -> str:
    """``{a, b, ...}`` of ``ctype`` values: int literals as they are, dims through ``ctx.dim`` and cast (braces
    refuse narrowing conversions of non-constants)."""
    return "{" + ", ".join(str(int(v)) if isinstance(v, int) else f"static_cast<{ctype}>({ctx.dim(v)})"
                           for v in items) + "}"
