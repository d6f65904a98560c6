"""Which kernel files a generated source copies, and in what order (a target's kernels may call others)."""

from __future__ import annotations

from typing import Mapping, Sequence


def kernel_order(names: set[str], dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """``names`` and the kernels they call (``dependencies``: kernel -> kernels it calls), callees first."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in dependencies.get(name, ()):
            visit(dep)
        order.append(name)

    for name in sorted(names):
        visit(name)
    return order
