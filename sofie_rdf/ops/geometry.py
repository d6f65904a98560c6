"""The spatial geometry of convolutions and pooling windows, on its own so that the operators
(:mod:`~sofie_rdf.ops.conv`, :mod:`~sofie_rdf.ops.pool`), which compute it, and their numpy references
(:mod:`~sofie_rdf.ops.reference`), which walk it, both import it and neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.dims import Dim


@dataclass(frozen=True)
class Geometry:
    """Spatial geometry of one (transposed) convolution; ``image`` is read by Conv, written by ConvTranspose."""

    image: tuple[Dim, ...]  # symbols where a spatial length is known only when the code runs
    grid: tuple[Dim, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[Dim, ...]  # symbolic for auto_pad SAME over a symbolic length
    pads_end: tuple[Dim, ...]


def extent(k: int, d: int) -> int:
    """Span of a dilated kernel."""
    return (k - 1) * d + 1


@dataclass(frozen=True)
class PoolGeometry:
    """Per spatial dim: input and output sizes, window, step, tap spacing and padding."""

    spatial: tuple[Dim, ...]  # symbols where a length is known only when the code runs
    out: tuple[Dim, ...]
    kernel: tuple[Dim, ...]  # the whole input for the Global forms
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[Dim, ...]  # symbolic for auto_pad SAME over a symbolic length
    pads_end: tuple[Dim, ...]
