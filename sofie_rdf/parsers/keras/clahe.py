"""Keras's ``ContrastLimitedAdaptiveHistogramEqualization`` (CLAHE) as ONNX operators, as its torch backend computes it.

Keras (``keras/src/layers/preprocessing/image_preprocessing/clahe.py``) brings the images to the value range
0..255, pads them at the bottom and the right to a whole number of tiles of ``tile_grid_size``, counts a 256-bin
histogram per tile and channel, clips it at ``clip_limit * tile area / 256`` and spreads what it cut off evenly
over the bins, turns the running sum into a table from 0..255 to 0..255, and maps each pixel through the tables of
the four tiles around it, interpolated bilinearly, before going back to the value range.  On the torch backend its
``pad(mode="symmetric")`` is torch's "replicate" (the last row and column repeated) and its histograms are int64
(torch's ``one_hot``), so the clip limit is cast to an integer, truncated: below one pixel per bin it is 0, every
count is spread evenly and the table is the identity.

Which tile a pixel counts in, which four tables it reads and with which weights depend on the image size only:
they are computed here, with Keras's float32 arithmetic, and become constants, one per element of an image in the
input's own layout (so channels-first images need no transpose).  The graph keeps what depends on the values: each
pixel's bin, the histograms as a ``ScatterElements`` adding ones at ``table offset + bin`` (Keras sums a one-hot
tensor of pixels x 256 instead: the same counts), the clipping, ``CumSum`` and normalisation of the tables, and
four ``GatherElements`` reading them at ``table offset + bin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .builder import ONNX_TYPES, GraphBuilder, Tensor, cast
from .preprocessing import to_value_range
from .registry import converts

BINS = 256  # Keras counts the integer values 0..255 of the 0..255 range
FULL = 255.0


@dataclass(frozen=True)
class _Tiles:
    """The constants of one image size, indexed by the elements of one image in the input's layout (flattened).

    ``counted``: for each element of the padded image, the element of the image it copies; ``tables``: the offset
    of its tile's and channel's histogram; ``corners``: for each element of the image, the offsets of the tables
    of the tiles above-left, above-right, below-left and below-right of it; ``right`` and ``below`` the weights of
    the right and the lower tiles (float32, as Keras computes them)."""

    counted: np.ndarray
    tables: np.ndarray
    corners: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    right: np.ndarray
    below: np.ndarray
    count: int  # tables per image: tiles x channels
    area: int  # pixels per tile


def _neighbours(size: int, tile: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis of ``size`` pixels: the tiles before and after each pixel's position among the tile centres
    and the weight of the one after, in Keras's float32 arithmetic (``(i - tile / 2) / tile + 1``)."""
    position = (np.arange(tile * grid, dtype=np.float32) - np.float32(tile / 2.0)) / np.float32(tile) + np.float32(1.0)
    first = np.floor(position)
    weight = position - first

    # Keras reads tables padded with a copy of the edge tiles on each side: its padded index p is tile p - 1, clamped.
    def tile_of(padded: np.ndarray) -> np.ndarray:
        return np.clip(np.clip(padded, 0, grid + 1).astype(np.int64) - 1, 0, grid - 1)

    return tile_of(first)[:size], tile_of(first + 1)[:size], weight[:size]


def _tiles(height: int, width: int, channels: int, grid: tuple[int, int], channels_first: bool) -> _Tiles:
    """The constants of CLAHE on ``height x width x channels`` images, whose last row and column fill the last tiles."""
    grid_h, grid_w = grid
    tile_h, tile_w = -(-height // grid_h), -(-width // grid_w)

    def flat(hwc: np.ndarray) -> np.ndarray:
        """An array indexed (row, column, channel) as the input lays those out, flattened."""
        return np.ascontiguousarray(hwc.transpose(2, 0, 1) if channels_first else hwc).reshape(-1)

    layout = (channels, height, width) if channels_first else (height, width, channels)
    element = np.arange(height * width * channels).reshape(layout)
    element = element.transpose(1, 2, 0) if channels_first else element  # indexed (row, column, channel)
    rows = np.pad(np.arange(height), (0, tile_h * grid_h - height), mode="edge")
    columns = np.pad(np.arange(width), (0, tile_w * grid_w - width), mode="edge")
    counted = element[rows][:, columns]

    def table(tile_row: np.ndarray, tile_column: np.ndarray) -> np.ndarray:
        """Offsets of the tables of tiles (tile_row[row], tile_column[column]) per (row, column, channel)."""
        tile = tile_row[:, None, None] * grid_w + tile_column[None, :, None]
        return flat((tile * channels + np.arange(channels)[None, None, :]) * BINS)

    above, below, weight_y = _neighbours(height, tile_h, grid_h)
    left, right, weight_x = _neighbours(width, tile_w, grid_w)
    ones = np.ones((height, width, channels), dtype=np.float32)
    return _Tiles(
        counted=flat(counted),
        tables=table(np.arange(tile_h * grid_h) // tile_h, np.arange(tile_w * grid_w) // tile_w),
        corners=(table(above, left), table(above, right), table(below, left), table(below, right)),
        right=flat(ones * weight_x[None, :, None]),
        below=flat(ones * weight_y[:, None, None]),
        count=grid_h * grid_w * channels,
        area=tile_h * tile_w,
    )


def _torch_backend() -> None:
    """Refuse the other backends: their padding (symmetric) and histograms (float) are not reproduced."""
    import keras

    if keras.backend.backend() != "torch":
        raise ValueError(f"ContrastLimitedAdaptiveHistogramEqualization on the {keras.backend.backend()} backend: only "
                         "the torch backend's arithmetic (replicated edges, integer histograms) is reproduced")


@converts("ContrastLimitedAdaptiveHistogramEqualization")
def _clahe(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Contrast limited adaptive histogram equalization of a batch of images (see the module's docstring).

    Keras computes in the images' dtype (floats in the compute dtype) and casts the result back to it, so integer
    images come out truncated to integers; it declares its output in the compute dtype all the same, which is what
    the layers after it read: the result is a tensor of that dtype holding the integer values."""
    x = inputs[0]
    _torch_backend()
    if x.rank != 4:
        raise ValueError(f"ContrastLimitedAdaptiveHistogramEqualization needs batches of images (rank 4), got shape {x.shape}")
    if None in x.shape[1:]:
        raise ValueError(f"ContrastLimitedAdaptiveHistogramEqualization needs fixed image sizes, got shape {x.shape}")
    grid = tuple(int(g) for g in layer.tile_grid_size)
    if len(grid) != 2 or min(grid) < 1:
        raise ValueError(f"ContrastLimitedAdaptiveHistogramEqualization with tile_grid_size={layer.tile_grid_size!r}: "
                         "two positive numbers of tiles are needed")
    channels_first = layer.data_format == "channels_first"
    channels, height, width = x.shape[1:] if channels_first else (x.shape[3], *x.shape[1:3])
    tiles = _tiles(height, width, channels, grid, channels_first)
    size = height * width * channels

    source = str(call.input_tensors[0].dtype)
    kept = str(layer.compute_dtype) if source.startswith(("float", "bfloat")) else source
    images = cast(b, cast(b, x.name, source, kept), kept, "float32")
    value_range = tuple(layer.value_range)
    pixels = b.reshape(to_value_range(b, images, value_range, (0, FULL)), [-1, size])
    # Keras truncates and then clips for the histograms, clips and then truncates for the tables' indices: the same
    # bins wherever the value is finite, and clipping first keeps the cast defined.
    bins = b.add("Cast", [b.add("Clip", [pixels, b.const(0.0, "zero"), b.const(FULL, "full")])], {"to": ONNX_TYPES["int64"]})

    counted = bins if np.array_equal(tiles.counted, np.arange(size)) else \
        b.add("Gather", [bins, b.const(tiles.counted, "padded", np.int64)], {"axis": 1})
    places = b.add("Add", [counted, b.const(tiles.tables, "tables", np.int64)])
    zeros_shape = b.add("Concat", [b.add("Shape", [bins], {"end": 1}), b.ints([tiles.count * BINS], "tables_size")],
                        {"axis": 0})
    zeros = b.add("ConstantOfShape", [zeros_shape], {"value": np.zeros(1, dtype=np.float32)})
    ones = b.add("ConstantOfShape", [b.add("Shape", [places])], {"value": np.ones(1, dtype=np.float32)})
    counts = b.add("ScatterElements", [zeros, places, ones], {"axis": 1, "reduction": "add"}, hint="histograms")
    tables = _tables(b, b.reshape(counts, [-1, tiles.count, BINS]), layer.clip_limit, tiles.area)
    tables = b.reshape(tables, [-1, tiles.count * BINS])

    nw, ne, sw, se = (b.add("GatherElements", [tables, b.add("Add", [bins, b.const(c, "corner", np.int64)])], {"axis": 1})
                      for c in tiles.corners)
    right, below = b.const(tiles.right, "right"), b.const(tiles.below, "below")
    left, above = b.const(np.float32(1.0) - tiles.right, "left"), b.const(np.float32(1.0) - tiles.below, "above")
    top = b.add("Add", [b.add("Mul", [nw, left]), b.add("Mul", [ne, right])])
    bottom = b.add("Add", [b.add("Mul", [sw, left]), b.add("Mul", [se, right])])
    y = b.add("Add", [b.add("Mul", [top, above]), b.add("Mul", [bottom, below])])
    y = b.reshape(to_value_range(b, y, (0, FULL), value_range), [-1, *x.shape[1:]])
    return cast(b, cast(b, y, "float32", kept), kept, call.output_tensors[0].dtype)


def _tables(b: GraphBuilder, counts: str, clip_limit: float, area: int) -> str:
    """Keras's mapping of 0..255 per histogram ``counts`` (..., 256): clipped at ``clip_limit * area / 256``, truncated
    as the torch backend casts it to the counts' int64, with the excess spread evenly (where ``clip_limit > 0``), the
    running sum less its first value times 255 over ``area`` less that value (1 where that is 0), clipped to 0..255."""
    if clip_limit > 0:
        limit = np.float32(int(clip_limit * area / 256.0))
        clipped = b.add("Clip", [counts, b.const(0.0, "zero"), b.const(limit, "clip_limit")])
        excess = b.add("ReduceSum", [b.add("Sub", [counts, clipped]), b.ints([-1], "axes")], {"keepdims": 1})
        counts = b.add("Add", [clipped, b.add("Div", [excess, b.const(float(BINS), "bins")])])
    cdf = b.add("CumSum", [counts, b.const(-1, "axis", np.int64)])
    first = b.add("ReduceMin", [cdf, b.ints([-1], "axes")], {"keepdims": 1})
    numerator = b.add("Mul", [b.add("Sub", [cdf, first]), b.const(FULL, "full")])
    denominator = b.add("Sub", [b.const(float(area), "area"), first])
    one = b.const(1.0, "one")
    denominator = b.add("Where", [b.add("Equal", [denominator, b.const(0.0, "zero")]), one, denominator])
    return b.add("Clip", [b.add("Div", [numerator, denominator]), b.const(0.0, "zero"), b.const(FULL, "full")])
