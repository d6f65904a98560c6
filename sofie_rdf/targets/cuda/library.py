"""The CUDA kernel library shipped in ``targets/cuda/kernels/*.cuh``, copied into every generated source."""

from __future__ import annotations

from functools import cache
from importlib import resources

from .._cxx.kernels import kernel_order

# Kernels whose code calls other kernels: those are copied first. Every source has launch and math.
DEPENDENCIES = {
    "attention": ("launch",), "conv": ("launch", "math"), "elementwise": ("launch", "math"), "gemm": ("launch",),
    "indexing": ("movement",), "movement": ("launch",), "normalization": ("reduce",), "pool": ("conv",),
    "reduce": ("launch", "movement"), "rnn": ("gemm",), "softmax": ("reduce",), "sort": ("launch",),
}
ALWAYS = {"launch", "math"}


@cache
def kernel_source(name: str) -> str:
    """Text of ``kernels/<name>.cuh``."""
    return resources.files("sofie_rdf.targets.cuda").joinpath("kernels", f"{name}.cuh").read_text()


def kernels_for(names: set[str]) -> list[str]:
    """The kernel files a source using ``names`` copies, callees first."""
    return kernel_order(set(names) | ALWAYS, DEPENDENCIES)
