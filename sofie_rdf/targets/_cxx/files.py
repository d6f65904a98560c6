"""Paths of generated code on disk, whichever target wrote it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class GeneratedFiles:
    """Paths of a generated model: ``header`` (the CPU's ``.hxx``, CUDA's ``.cu``) and ``weights`` (None when
    embedded)."""

    header: Path
    weights: Optional[Path]
    namespace: str
