"""The CUDA target: a ``.cu`` source over a CUDA kernel library and cuBLAS, built by nvcc into a shared library.

:class:`CudaTarget` is parameterised by the GPU architectures the code is compiled for (``sm_80`` and
``sm_90`` by default: A100 and H100; the local GPU's where one is present).  The folder holds everything
machine-specific: the emitters per operator family (``emitters/``), the kernels they call
(``kernels/*.cuh``, copied into the generated source as the CPU target copies its ``.hxx``), the session
writer (``source.py``: weights uploaded once, one planned device arena, a stream and a cuBLAS handle per
Session, ``infer`` replayed from a CUDA graph) and the toolchain (``toolchain.py``: nvcc and the libraries
from NVIDIA's wheels, the ``[cuda]`` extra, or ``$CUDA_HOME``).  The memory plan is the planner's, as for the
CPU: only the emitters and the session writer differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Sequence, Union

from ...errors import SofieError
from .. import Target
from .source import WEIGHTS_SUFFIX, CudaCode, write_files, write_source

# The public spelling of the target (``Model.generate(target=...)``, ``sofie-rdf emit --target``, ``backend=``).
TARGET_NAME = "cuda"
# Architectures compiled for when none is given: A100 (sm_80) and H100 (sm_90).
DEFAULT_ARCHS = ("sm_80", "sm_90")
_ARCH = re.compile(r"sm_[0-9]{2,3}[af]?")


@dataclass(frozen=True)
class CudaTarget(Target):
    """NVIDIA GPUs of the architectures ``archs`` (``sm_80``, ``sm_90``, ...), code built by nvcc."""

    archs: tuple[str, ...] = DEFAULT_ARCHS
    name: ClassVar[str] = "cuda"
    attention_op: ClassVar[bool] = True  # the exported chain runs as one Attention kernel (emitters/attention.py)
    grid_scatter_op: ClassVar[bool] = False  # nor a grid walker: ScatterND reads the stacked index tensor
    pooled_gemm: ClassVar[bool] = False  # nor a pooling epilogue: the reduction runs as a node of its own
    neighbour_gather: ClassVar[bool] = False  # nor NeighbourGather: EdgeConv runs as exported
    selection_products: ClassVar[bool] = False  # nor SelectionGemm: selections run as cuBLAS products

    def __post_init__(self) -> None:
        if not self.archs or not all(isinstance(a, str) and _ARCH.fullmatch(a) for a in self.archs):
            raise SofieError(f"CUDA architectures must be names like 'sm_80', got {self.archs!r}")

    @property
    def key(self) -> str:
        return f"cuda-{'-'.join(self.archs)}"

    def bind(self, op: Any) -> Any:
        from .emitter import emitter_for

        return emitter_for(op, self)


def cuda_target(spec: Union[str, CudaTarget, None] = None, archs: Optional[Sequence[str]] = None) -> CudaTarget:
    """The CUDA target from its public name ``"cuda"`` (or a :class:`CudaTarget` as it is), for ``archs``
    (default :data:`DEFAULT_ARCHS`)."""
    if isinstance(spec, CudaTarget):
        return spec
    if spec not in (None, TARGET_NAME):
        raise SofieError(f"the CUDA target is named {TARGET_NAME!r}, got {spec!r}")
    return CudaTarget(tuple(archs) if archs else DEFAULT_ARCHS)


__all__ = ["DEFAULT_ARCHS", "TARGET_NAME", "WEIGHTS_SUFFIX", "CudaCode", "CudaTarget", "cuda_target", "write_files",
           "write_source"]
