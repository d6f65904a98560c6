"""The C++ kernel library shipped in ``ops/kernels/`` and copied into headers."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_REQUIRES = re.compile(r"^// requires: (.+)$", re.MULTILINE)


@cache
def kernel_source(name: str) -> str:
    """Text of ``ops/kernels/<name>.hxx``."""
    return resources.files("sofie_rdf.ops").joinpath("kernels", f"{name}.hxx").read_text()


def kernel_order(names: set[str]) -> list[str]:
    """The kernels to copy, dependencies (``// requires:`` lines) first."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for match in _REQUIRES.findall(kernel_source(name)):
            for dep in match.split(","):
                visit(dep.strip())
        order.append(name)

    for name in sorted(names):
        visit(name)
    return order
