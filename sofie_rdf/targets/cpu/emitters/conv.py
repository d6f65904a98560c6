"""Convolutions on the CPU: Conv, ConvTranspose (and their Fused* forms), CausalConvWithState and DeformConv.

The kernels (``kernels/conv.hxx``) see every convolution as 3-D; the emitter pads lower ranks with size-1 dims.
Conv runs as im2col + one product per image and group (BLAS for larger matrices), skips im2col for 1x1
convolutions with stride 1 and no pad, and uses a direct loop for depthwise layers.
Float convolutions with few output channels or large kernels run as "shifted products" (``conv_shifted``: every
(channel, tap) step is a constant offset in a padded copy of the image, split by phase where strided, summed in
register tiles), with their constant weights stored in panels at generation time (:func:`pack_panels`):
no im2col copy, and 80-90% of the core's peak where im2col + BLAS, whose products have few rows there,
reaches 15-65%.
2-D float 3x3 and 5x5 layers with stride 1 and many channels run as Winograd F(m x m, r x r)
(``kernels/winograd.hxx``: F(4, 3) where the image has many tiles, else F(2, 3); F(2, 5)), their transformed
weights computed at generation time (:func:`~sofie_rdf.ops.reference.winograd_weights`): 0.25 to 0.44 of the
products' multiplications, at a cost in rounding (about 1e-6 of the output's scale for F(2, 3), up to 1e-5 for
the others).  In native code, 3x3 layers of 16 or more channels on images of 16 to a few dozen pixels (8 to
15 pixels: with enough channels) run as ``conv_winograd_tiles`` instead: the transforms over whole planes of the
image's tiles and the products in register tiles (0.5-0.75x conv_rows' time from 32 channels).  Other layers
with many output channels and small images run as ``conv_rows`` (tiles of output positions x 16 features, weights
in feature blocks), as do small images with few channels whose output channels are whole blocks of 16
(calorimeter-sized layers), ahead of conv_shifted and Winograd.
ConvTranspose runs as product + col2im (by output phase where the last dim is strided, so that its adds are
contiguous).  Scratch matrices are workspaces (:meth:`Emitter.workspace`), so inference allocates nothing.

Which kernel serves a Conv, and so how its constant weights are stored, is decided when they are packed and
remembered on the emitter (:attr:`ConvEmitter.layout`); the IR keeps the weights' logical shape.
DeformConv runs as a deformable im2col followed by the same per-group product Conv uses (``kernels::gemm``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

import numpy as np
import sympy

from ....ir import TensorType
from ....ir.dims import as_dim, is_static, num_elements
from ....ops.conv import KERNEL_RANK, Conv, ConvTranspose, Geometry, extent
from ....ops.conv_extra import CausalConvWithState, DeformConv
from ....ops.fused import EdgeConvChain, FusedConv, FusedConvTranspose
from ....ops.reference import winograd_weights
from .. import VECTOR_FLOATS
from ..emitter import Emitter, emits, optional_ptr
from .gemm import PANEL_COLUMNS, ActivationCode

if TYPE_CHECKING:
    from ..._cxx.context import NodeContext
    from .. import CpuTarget

# Depthwise layers with at most this many outputs per input channel use the direct kernel.
DIRECT_MAX_OUTPUTS_PER_GROUP = 4
# Layers use conv_shifted when they have few output channels, or kernels of this many taps or more (im2col
# copies grow with the taps); otherwise BLAS's blocking of the im2col product is as fast or faster (measured
# on the rootbench 5x5 stacks, resnet18's 3x3 layers and its 7x7 stride-2 stem, AVX2).  Never 1x1 layers:
# their product needs no im2col (stride 1) or a subsampled copy, and BLAS runs it 1.6x to 4.7x faster than
# conv_shifted's padded copy (4 to 32 channels on 16 to 64 pixels, strides 1 and 2, AVX2).
# 1x1 layers with stride 1 and no padding run conv_pointwise in native code instead: conv_shifted's tiles
# straight on the input, bias and activation in the tile, where BLAS goes over the output three times.
# Measured on a Xeon (AVX-512) against BLAS + those passes, 4 to 256 channels, 8 to 128 features, 50 to 4096
# positions, batch 1 to 64: 0.40-0.98x its time (ParticleNet's 64 -> 64 layers on 50 x 16 positions: 0.77x
# at batch 1, 0.82x at 64); built for AVX2 against OpenBLAS's Haswell kernels, 0.73-1.04x, except 4 -> 32
# channels on 1023 or 1024 positions (1.1-1.6x: rows 4 KB apart alias; 0.74x on 900).  Strided 1x1 layers without
# padding (ResNet's shortcuts) gather the positions they read, then run the same tiles (conv_pointwise_strided):
# against im2col's same gather and BLAS, 0.43-0.82x its time (4 to 64 channels on 16 to 56 pixels, strides 2 and 3,
# batch 1 and 8; Xeon, AVX-512), built for AVX2 0.72-0.95x.
SHIFTED_MAX_FEATURES = 32
SHIFTED_MIN_TAPS = 16
# In code for Cling (target "jit"), which runs its register tiles slower, only layers whose products are this
# shallow (channels x taps) use it: Conv3d_d32_L4 through the JIT, 72 ms with it on every layer, 48 ms so.  Native
# builds for generic x86-64 never do: GCC's code for its 8-float tiles without AVX took 17x to 28x BLAS's time
# (1 and 4 -> 16 channels on 32 pixels, Xeon).
SHIFTED_MAX_DEPTH_JIT = 64
PANEL_ROWS = 6  # kConvPanelRows in kernels/conv.hxx
# Other layers (not 1x1) with output channels in multiples of ROWS_FEATURES (kPanelColumns) and at most
# ROWS_MAX_POSITIONS output positions per image run as conv_rows (positions as the register tile's rows,
# weights in feature blocks): 86-91 GFLOP/s on resnet18's 512-channel 7x7 layers and its stride-2 3x3 layers
# at 14x14 and 7x7, where im2col + BLAS reaches 64-76; on larger images and 1x1 layers BLAS does as well.
# conv_rows also serves small-image layers with few channels (calorimeter CNNs), ahead of conv_shifted and
# Winograd: up to ROWS_MAX_POSITIONS positions whatever the depth (channels x taps), up to ROWS_MAX_POSITIONS_SHALLOW
# where the depth is in [ROWS_MIN_DEPTH, ROWS_MAX_DEPTH].  Measured on AVX2 against the previous choice, 1 to 128
# channels on 8 to 48 pixels, batch 1 and 16 to 32: 0.55-0.85x Winograd F(2, 3)'s time below 256 channels, 0.6-0.8x
# F(4, 3)'s and F(2, 5)'s with 16 channels, 0.6-0.9x conv_shifted's from 2 channels on 16 pixels or 8 on 24;
# conv_shifted stays ahead for 1 to 4 channels on 32 pixels and more, BLAS for depths above 512 (64 -> 128 channels,
# stride 2, 56 pixels) and Winograd for F(4, 3) from 32 channels and F(2, r) from 256.  Since conv_shifted stores
# straight into the output (conv_shifted_direct), it is ahead on layers shallower than ROWS_MIN_DEPTH whose rows it
# computes with at most 1 + 8 / depth times their positions (_shifted_direct): on Zen 4 against conv_rows, 1 and 4
# -> 16 channels on 16 pixels 0.74x and 0.81x the time (0.82x at batch 8), 4 -> 32 0.86x, 6 -> 32 on 8 pixels
# 0.94x, 3 and 4 -> 16 on 32 pixels with stride 2 0.88x, 1 -> 32 on 20 x 12 0.81x; built for AVX2 0.61x to 0.94x.
# Where its rows waste more (4 -> 16 on 9 x 9, 4 -> 32 on 11 x 11: 1.3x to 1.35x conv_rows' time) conv_rows stays.
ROWS_FEATURES = PANEL_COLUMNS  # kPanelColumns in kernels/gemm.hxx
ROWS_MAX_POSITIONS = 256
ROWS_MAX_POSITIONS_SHALLOW = 1024
ROWS_MIN_DEPTH, ROWS_MAX_DEPTH = 64, 512
# AVX-512's conv_rows tile is two panels (32 features) wide: a layer whose features are not a multiple of that
# runs a one-panel tile, one broadcast per multiply-add, which is bound by its loads.  There conv_shifted (6
# features x 64 positions) is ahead from a few hundred positions, measured on a Xeon (AVX-512), 3x3, batch 1:
# 0.85x conv_rows' time for 16 -> 16 channels on 32 pixels, 0.91x on 24, 0.83x on 64, 0.84x for 64 -> 16 on 32;
# at 16 pixels (256 positions) conv_rows stays ahead (16 -> 16: 0.8x conv_shifted's time).
ROWS_AVX512_ONE_PANEL_MAX_POSITIONS = 256
# m -> (input channels, output tiles per image) from which Winograd F(m, r) beats conv_rows (F(4, 3): 32 channels
# on 32 pixels, not on 24: 1.2x conv_rows' time there)
WINOGRAD_OVER_ROWS = {4: (32, 64), 2: (256, 0)}
# Mirrors of kernels/conv.hxx constants, for the size of conv_shifted's scratch.  The tiles' widths follow the
# vectors the compiler targets, so the scratch takes the largest of any instruction set (AVX-512's), whatever
# ``target.isa`` says: flags such as -march=sapphirerapids reach AVX-512 without naming it.
SHIFTED_SLACK = 192  # kConvTileSlack: floats the last tile reads past the padded image (AVX2: 48)
SHIFTED_CHUNK_STEPS = 512  # kConvChunkSteps: (channel, tap) steps per pass
SHIFTED_PARTIAL_ALIGN = 384  # kConvPartialAlign (AVX2: 96)
POINTWISE_SCRATCH_WIDTH = 192  # kPointwiseScratchWidth: conv_pointwise's scratch floats per channel (AVX2: 48)
# Winograd F(m x m, r x r) serves layers with at least this many input channels (the products' depth) and, for
# the chosen m, at least this many output tiles per image: below that the alpha^2 products are too thin for BLAS
# and their transformed weights (alpha^2 / r^2 times the originals) outweigh the saving (measured on AVX2:
# resnet18's 3x3 layers, F(4, 3) 0.37-0.40x im2col's time at 56x56 and 28x28, F(2, 3) 0.61x at 14x14, no gain at
# 7x7; the rootbench 5x5 layers on 100x100, F(2, 5) 0.52-0.65x conv_shifted's time from 32 channels, even at 16).
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_TILES = 32
# With AVX-512 the direct tiles are twice as wide and Winograd's transforms and small products are not: layers
# of at most SHIFTED_MAX_FEATURES output channels run conv_shifted (or conv_rows) instead, measured on a Xeon
# (AVX-512), batch 1, 3x3: 0.45x F(4, 3)'s time for 32 -> 16 channels on 32 pixels, 0.7x for 16 -> 16 on 64, 0.72x
# for 32 -> 32 on 32, 0.82x on 48; from 48 output channels F(4, 3) stays ahead (64 on 56 pixels: 0.53x im2col's).
WINOGRAD_AVX512_MIN_FEATURES = SHIFTED_MAX_FEATURES + 1
WINOGRAD_ORDERS = {3: (4, 2), 5: (2,)}  # kernel size -> the m of F(m x m, r x r) to try, in order
# Tiles go in blocks of whole tile rows whose transformed input and products (alpha^2 x (channels + features)
# floats per tile) take at most this many floats, so that they stay in the last-level cache.
WINOGRAD_BLOCK_FLOATS = 1 << 20
# In native code, 3x3 layers (stride 1, ungrouped) of at least WINOGRAD_TILES_MIN_CHANNELS input and output channels
# on images of WINOGRAD_TILES_MIN_GRID to a few dozen pixels run as conv_winograd_tiles (kernels/winograd.hxx:
# whole planes of tiles, products in register tiles), F(4, 3) from WINOGRAD_TILES_F43_MIN_GRID output pixels a side
# and from WINOGRAD_TILES_F43_SNUG_GRID on grids that 4 x 4 tiles cover snugly (at most WINOGRAD_TILES_SNUG times
# their positions: 20 x 50, whose last tile column is half outside, 1.04), else F(2, 3).  Measured on a Xeon
# (AVX-512) against conv_rows, batch 1: 0.75x its time for 32 -> 32 channels on 16 pixels, 0.70x on 24, 0.50x on
# 32, 0.95x for 16 -> 16 on 16.  F(4, 3) against F(2, 3) on 16 and 20 pixels, now that rows of 4 tiles fill a
# vector (see WINOGRAD_TILES_PACKED), on a Sapphire Rapids-class Xeon: 0.78x (64 -> 64 on 16), 0.80x to 0.88x
# (32 -> 32, 48 -> 48, 64 -> 32 on 16; 24 -> 24, 32 -> 32 on 20), 0.95x (16 -> 32 on 16), 0.99x to 1.02x
# (16 -> 16 on 16); built for AVX2 0.78x to 0.97x, 16 -> 16 on 16 1.04x.  On 18 and 22 pixels, whose last tiles
# are half outside, 16 -> 16 took 1.10x to 1.12x; on Zen 4, 16 x 18 and 20 x 22 (1.11 and 1.09 times covered)
# 1.15x and 1.08x, 20 x 50 and 16 x 50 0.87x and 0.93x, 16 -> 32 on 20 x 50 0.80x.  Images of fewer than
# WINOGRAD_TILES_SMALL_POSITIONS pixels, where the transforms weigh more against the products, take it only for
# layers of at least WINOGRAD_TILES_SMALL_PRODUCTS input x output channels (four times as many where 2 x 2 tiles
# cover the grid loosely, as on odd sides): 64 -> 64 on 8 pixels 0.71x, 32 -> 32 0.94x, 24 -> 24 0.68x, 32 -> 32
# on 12 pixels 0.87x, 48 -> 48 on 9 pixels 0.90x; 16 -> 32 on 8 pixels 1.11x, 16 -> 16 on 12 pixels 1.08x,
# 32 -> 32 on 9 pixels 1.08x.  Larger images with fewer than 16 pixels a side gain whatever their channels
# (Zen 4, against conv_rows: 16 -> 16 and 16 -> 32 on 10 x 25 pixels 0.81x and 0.88x, 16 -> 16 on 8 x 32 0.76x,
# 16 -> 32 on 12 x 20 0.93x; built for AVX2 0.77x to 0.85x).
# Layers whose transformed input and products (alpha^2 x (channels + features) x tiles) take more than
# WINOGRAD_TILES_MAX_FLOATS, out of the caches, stay with conv_winograd's blocks of tile rows.
WINOGRAD_TILES_MIN_CHANNELS = 16
WINOGRAD_TILES_MIN_GRID = 8
WINOGRAD_TILES_SMALL_POSITIONS = 200
WINOGRAD_TILES_SMALL_PRODUCTS = 24 * 24
WINOGRAD_TILES_F43_MIN_GRID = 24
WINOGRAD_TILES_F43_SNUG_GRID = 16
WINOGRAD_TILES_SNUG = 1.05
WINOGRAD_TILES_MAX_FLOATS = 1 << 18
WINOGRAD_TILE_ROWS = 4  # features per register tile: a multiple of this, at least as many accumulators as this
WINOGRAD_TILE_ACCUMULATORS = 16  # (2 FMA units x 4 cycles of latency, doubled: the register tile's loads in between)
WINOGRAD_TILES_PACKED = (4, 8)  # winograd_packed: tile rows this wide are stored without the column past them
# (rows of 8: 32-pixel images in F(4, 3), 5 AVX-512 vectors of tiles to 4; CaloCNN2d 0.94x, ResNetSmall 0.94x)
WINOGRAD_TILES_SLACK = 32  # kWinogradSlack: zeros past the phase planes and past z, read by whole vectors
WINOGRAD_TILES_GROUP = 64  # kWinogradGroupFloats: the output transform takes whole features' planes this long
WINOGRAD_TILE_MAX_VECTORS = 5  # vectors of tiles per register tile (4 x 5 accumulators, 5 inputs, a weight)


# ---- shared helpers ----------------------------------------------------------


def _snug(grid: tuple[int, ...], m: int) -> bool:
    """Whether m x m Winograd tiles cover the grid with at most WINOGRAD_TILES_SNUG times its positions."""
    return math.prod(-(-g // m) * m for g in grid) <= WINOGRAD_TILES_SNUG * math.prod(grid)


def direct_lanes(width: int, padded_width: int, steps: int, target: CpuTarget) -> int:
    """The vector width conv_shifted_direct takes for grid rows of ``width`` positions (``padded_width`` in the padded
    input) over ``steps`` (channel, tap) steps, 0 where conv_shifted_block serves them: kernels/conv.hxx's
    conv_direct_lanes, mirrored for the vectors this target's compiler takes (the emitter must know which path the
    kernel takes to choose conv_shifted over conv_rows; tests/test_isa.py compares the two)."""
    lanes, half, cost = target.vector_floats, min(8, target.vector_floats), target.half_vector_cost
    if width < half:
        return 0

    def covering(v: int) -> int:
        return -(-width // v) * v

    taken = lanes if width >= lanes and covering(lanes) <= covering(half) * cost else half
    block = padded_width * (steps * (20 * width + cost * (width + 40)) + cost * 1000)
    return taken if covering(taken) * steps * width * 20 <= block else 0


def rows_last(geom: Geometry) -> Geometry:
    """``geom`` without its trailing spatial dims of one value (image, grid and kernel 1, no padding), so that the
    kernels' last dim, their rows, is the layer's: a (k, 1) kernel over (H, 1) images (Keras' Conv1D exported on a
    2-D layout) otherwise ran rows of one float, padded, copied and stored a value at a time (declared into ROOT,
    a fifth of a published 1-D tagger's time, DeepAK8's).  The taps keep their order, so the weights their layout."""
    n = len(geom.image)
    while n > 1 and all(v[n - 1] == 1 for v in (geom.image, geom.grid, geom.kernel)) and \
            geom.pads_begin[n - 1] == 0 and geom.pads_end[n - 1] == 0:
        n -= 1
    if n == len(geom.image):
        return geom
    return Geometry(*(tuple(v[:n]) for v in (geom.image, geom.grid, geom.kernel, geom.strides, geom.dilations,
                                             geom.pads_begin, geom.pads_end)))


def padded(values: tuple[int, ...], fill: int) -> list[int]:
    """``values`` with leading ``fill`` entries up to the kernels' rank."""
    return [fill] * (KERNEL_RANK - len(values)) + list(values)


def geometry_arrays(ctx: NodeContext, geom: Geometry) -> str:
    """Declare the kernel's geometry arrays; returns them as call arguments."""
    labels = [("image", geom.image), ("grid", geom.grid), ("kernel", geom.kernel), ("stride", geom.strides)]
    names = [ctx.array(label, padded(v, 1)) for label, v in labels + [("dilation", geom.dilations)]]
    names.append(ctx.array("pad", padded(geom.pads_begin, 0), "std::ptrdiff_t"))
    return ", ".join(names)



def shifted_workspace(geom: Geometry, channels: int) -> list[TensorType]:
    """conv_shifted's float scratch (padded image split by stride phase, slack, partial sums; see kernels/conv.hxx)
    and its step offsets."""
    padded_grid = [g + (k - 1) * d // s for g, k, d, s in zip(geom.grid, geom.kernel, geom.dilations, geom.strides)]
    steps = channels * math.prod(geom.kernel)
    scratch = channels * math.prod(geom.strides) * math.prod(padded_grid) + SHIFTED_SLACK
    if steps > SHIFTED_CHUNK_STEPS:  # partial sums of one panel between passes
        grid = padded(geom.grid, 1)
        full = padded(tuple(padded_grid), 1)
        positions = ((grid[0] - 1) * full[1] + grid[1] - 1) * full[2] + grid[2]
        scratch += PANEL_ROWS * -(-positions // SHIFTED_PARTIAL_ALIGN) * SHIFTED_PARTIAL_ALIGN
    return [TensorType(np.dtype(np.float32), (scratch,)), TensorType(np.dtype(np.int64), (steps,))]


def winograd_tiles_floats(m: int, alpha: int, channels: int, features: int, grid: tuple[int, ...], width: int) -> int:
    """conv_winograd_tiles' scratch in floats (kernels/winograd.hxx: WinogradTiles), for register tiles ``width``
    floats wide: the phase planes of a channel, the transform along y, V, M (first a channel's padded image), the
    output planes of a group of features and their biases."""
    def lines(n: int) -> int:
        return -(-n // 16) * 16
    e = (alpha - 1) // m
    ty, tx = (-(-g // m) for g in grid[-2:])
    compact = tx in WINOGRAD_TILES_PACKED
    qs = ty * (tx + e)
    qp = -(-(ty * tx if compact else qs) // width) * width
    padded = m * (ty + e) * m * (tx + e)
    group = max(1, min(features, WINOGRAD_TILES_GROUP // qp))  # winograd_group
    return (lines(padded) + alpha * m * lines(qs + e) + 2 * WINOGRAD_TILES_SLACK + alpha * alpha * (channels * qp + 16)
            + lines(max(alpha * alpha * (features * qp + 16), padded)) + (alpha + m) * m * group * qp
            + lines(m * -(-tx // 4) * 4) + group * qp)


def pack_winograd_tiles(u: np.ndarray, alpha: int, rows: int) -> np.ndarray:
    """Transformed weights (:func:`winograd_weights`: alpha^2 matrices features x channels) stored for
    conv_winograd_tiles: each matrix in blocks of ``rows`` features, its register tiles' (:func:`pack_panels`)."""
    mats = u.reshape(alpha * alpha, u.shape[0], u.shape[1])
    return np.concatenate([pack_panels(mat, rows).ravel() for mat in mats]).reshape(u.shape)


def panel_blocks(features: int, split_tail: bool, rows: int = PANEL_ROWS) -> list[int]:
    """conv_shifted's blocks of output channels (kernels/conv.hxx: conv_panel_block): ``rows`` each, but with
    ``split_tail``, where 1 or 2 would remain, the last ``rows`` + 1 or + 2 in two blocks of about half (8 = 4 + 4,
    13 = 6 + 4 + 3)."""
    sizes, m = [], 0
    while m < features:
        left = features - m
        halve = split_tail and rows < left <= rows + 2
        sizes.append((left + 1) // 2 if halve else min(rows, left))
        m += sizes[-1]
    return sizes


def pack_panels(w: np.ndarray, rows: int = PANEL_ROWS, blocks: Optional[list[int]] = None) -> np.ndarray:
    """Weights (M, C, k...) reordered in blocks of output channels (``blocks``, or ``rows`` each, the last block the
    rest), each stored K x rows so that one step over (c, tap) reads the block's weights side by side:
    conv_shifted's panels (:func:`panel_blocks`), conv_pointwise's (PANEL_ROWS), conv_rows' feature blocks
    (ROWS_FEATURES)."""
    flat = w.reshape(w.shape[0], -1)
    sizes = blocks or [min(rows, w.shape[0] - m) for m in range(0, w.shape[0], rows)]
    starts = np.cumsum([0] + sizes)
    return np.concatenate([flat[a:b].T.ravel() for a, b in zip(starts[:-1], starts[1:])]).reshape(w.shape)


class ConvCode(ActivationCode):
    """Shared arguments of the Conv and ConvTranspose kernels; the fused activation (or the identity) is their
    last argument."""

    own_kernels = ("conv",)

    def _bias(self, ctx: NodeContext) -> str:
        return ctx.x(2) if len(ctx.inputs) > 2 and ctx.inputs[2] is not None else "nullptr"

    def _operands(self, ctx: NodeContext) -> tuple[str, str]:
        """Shared kernel arguments: (x, w, bias, y) and (batch, channels, features, group)."""
        x, y = ctx.inputs[0], ctx.outputs[0]
        data = f"{ctx.x(0)}, {ctx.x(1)}, {self._bias(ctx)}, {ctx.y(0)}"
        sizes = f"{ctx.dim(x.shape[0])}, {x.shape[1]}, {y.shape[1]}, {self.attrs['group']}"
        return data, sizes


# ---- Conv --------------------------------------------------------------------


@emits(Conv, FusedConv)
class ConvEmitter(ConvCode):
    """Conv: one kernel call, chosen by :meth:`strategy`."""

    # Set by :meth:`pack` where constant weights are stored for one kernel: ``shifted`` (panels of PANEL_ROWS
    # features, same shape), ``winograd`` (transformed, alpha x alpha tiles, m in ``winograd_order``),
    # ``winograd_tiles`` (the same, each tile position's matrix in blocks of its register tiles' features) or
    # ``rows`` (blocks of ROWS_FEATURES features, same shape); None where they are stored as they are.
    layout: Optional[str] = None
    winograd_order: Optional[int] = None

    @property
    def own_kernels(self) -> tuple[str, ...]:
        return ("conv", "winograd") if self.layout in ("winograd", "winograd_tiles") else ("conv",)

    def _geometry(self, x: TensorType, w: TensorType) -> Geometry:
        """The layer's geometry as the kernels take it (:func:`rows_last`), for every choice and the call alike."""
        return rows_last(self.op.geometry(x, w))

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        """Constant weights stored for the kernel that serves the layer: in panels for conv_shifted, transformed
        for Winograd, in feature blocks for conv_rows.  conv_rows is for native compilers only, and
        conv_shifted for shallow products only in code for Cling, which runs their register tiles slower than
        im2col and BLAS (resnet18 through the JIT: 107 ms with conv_rows, 74 ms without)."""
        w = constants.get(1)
        if w is not None and self._pointwise_candidate(inputs[0], w):
            self.layout = "pointwise"
            return {1: pack_panels(w)}
        if w is None or inputs[0] is None or not is_static(inputs[0].shape[2:]):
            return None  # a length known when the code runs: im2col and BLAS, which take any geometry then
        order = self._winograd_tiles_order(inputs[0], w)
        if order:
            self.layout, self.winograd_order = "winograd_tiles", order
            rows = self._winograd_tiles_tile(self._geometry(inputs[0], TensorType(w.dtype, w.shape)).grid)[0]
            return {1: pack_winograd_tiles(winograd_weights(w, order), order + w.shape[2] - 1, rows)}
        rows = self.target.register_tiles and self._rows_candidate(inputs[0], w)
        order = self._winograd_order(inputs[0], w)
        if order and (not rows or self._winograd_over_rows(inputs[0], w, order)):
            self.layout, self.winograd_order = "winograd", order
            return {1: winograd_weights(w, order)}
        if rows:
            self.layout = "rows"
            return {1: pack_panels(w, ROWS_FEATURES)}
        if self._shifted_candidate(w):
            self.layout = "shifted"
            return {1: pack_panels(w, blocks=panel_blocks(w.shape[0], self._split_tail))}
        return None

    @property
    def _split_tail(self) -> bool:
        """Whether conv_shifted's last blocks of 7 or 8 output channels go in two halves (conv_panel_block):
        for 16 vector registers; AVX-512's wider tiles of 1 or 2 channels ran as fast as the halves."""
        return self.target.isa != "avx512"

    def _shifted_candidate(self, w: np.ndarray) -> bool:
        """Whether conv_shifted serves this layer: float32, ungrouped, few output channels or large kernels
        (and shallow products, for Cling)."""
        depth = math.prod(w.shape[1:])
        return (w.dtype == np.float32 and self.attrs["group"] == 1 and 3 <= w.ndim <= 2 + KERNEL_RANK
                and math.prod(w.shape[2:]) > 1
                and (w.shape[0] <= SHIFTED_MAX_FEATURES or math.prod(w.shape[2:]) >= SHIFTED_MIN_TAPS)
                and (self.target.register_tiles or (self.target.compiler == "cling" and depth <= SHIFTED_MAX_DEPTH_JIT)))

    def _pointwise_candidate(self, x: Optional[TensorType], w: np.ndarray) -> bool:
        """Whether conv_pointwise serves this layer: a 1x1 float32 layer, ungrouped, no padding, in native code;
        stride 1 (the image's size may be known only when the code runs), or strides on an image of known size
        (conv_pointwise_strided gathers the positions it reads first)."""
        if (x is None or not self.target.register_tiles or w.dtype != np.float32 or self.attrs["group"] != 1
                or not 3 <= w.ndim <= 2 + KERNEL_RANK or not isinstance(x.shape[1], int)):
            return False
        geom = self._geometry(x, TensorType(w.dtype, w.shape))
        return self._is_pointwise(geom) or (self._is_strided_pointwise(geom) and is_static(x.shape[2:]))

    @staticmethod
    def _is_pointwise(geom: Geometry) -> bool:
        """A 1x1 kernel, stride 1, no padding: the input is the product's matrix."""
        return (all(k == 1 for k in geom.kernel) and all(s == 1 for s in geom.strides)
                and not any(geom.pads_begin + geom.pads_end))

    @staticmethod
    def _is_strided_pointwise(geom: Geometry) -> bool:
        """A 1x1 kernel with strides, no padding: the product's matrix is a subsample of the input."""
        return all(k == 1 for k in geom.kernel) and not any(geom.pads_begin + geom.pads_end)

    def _winograd_shape(self, w: np.ndarray) -> bool:
        """What every Winograd kernel needs: float32 2-D r x r weights, one group, stride 1, dilation 1."""
        return (w.dtype == np.float32 and w.ndim == 4 and w.shape[2] == w.shape[3] and self.attrs["group"] == 1
                and all(v == 1 for v in self.op._per_dim("strides", 2, 1))
                and all(v == 1 for v in self.op._per_dim("dilations", 2, 1)))

    def _winograd_order(self, x: Optional[TensorType], w: np.ndarray) -> Optional[int]:
        """m of the Winograd F(m x m, r x r) serving this layer, None where it does not."""
        r = w.shape[2] if w.ndim == 4 else 0
        if (x is None or not self._winograd_shape(w) or r not in WINOGRAD_ORDERS or w.shape[1] < WINOGRAD_MIN_CHANNELS
                or (self.target.isa == "avx512" and w.shape[0] < WINOGRAD_AVX512_MIN_FEATURES)):
            return None
        geom = self._geometry(x, TensorType(w.dtype, w.shape))
        for m in WINOGRAD_ORDERS[r]:
            if math.prod(-(-g // m) for g in geom.grid) >= WINOGRAD_MIN_TILES:
                return m
        return None

    def pools_output(self, x: TensorType, w: np.ndarray) -> bool:
        """Whether this layer can take a 2 x 2 max-pooling of its output (``FusedConv``'s ``pool_window``): where
        conv_winograd_tiles runs it, whose even tiles hold whole windows (:meth:`pack` picks it first for 3 x 3)."""
        return self._winograd_tiles_order(x, w) is not None

    def _winograd_tiles_order(self, x: TensorType, w: np.ndarray) -> Optional[int]:
        """m of the Winograd F(m x m, 3 x 3) that conv_winograd_tiles runs this layer with, None where it does not
        serve it (see WINOGRAD_TILES_MIN_CHANNELS)."""
        if (not self.target.register_tiles or not self._winograd_shape(w) or w.shape[2] != 3
                or min(w.shape[:2]) < WINOGRAD_TILES_MIN_CHANNELS):
            return None
        grid = self._geometry(x, TensorType(w.dtype, w.shape)).grid
        if min(grid) < WINOGRAD_TILES_MIN_GRID:
            return None
        least = WINOGRAD_TILES_SMALL_PRODUCTS * (1 if _snug(grid, 2) else 4)
        if math.prod(grid) < WINOGRAD_TILES_SMALL_POSITIONS and w.shape[0] * w.shape[1] < least:
            return None
        snug = min(grid) >= WINOGRAD_TILES_F43_SNUG_GRID and _snug(grid, 4)
        m = 4 if snug or min(grid) >= WINOGRAD_TILES_F43_MIN_GRID else 2
        alpha, (ty, tx) = m + 2, (-(-g // m) for g in grid)
        tiles = ty * (tx + (alpha - 1) // m)
        return m if alpha * alpha * sum(w.shape[:2]) * tiles <= WINOGRAD_TILES_MAX_FLOATS else None

    def _winograd_tiles_tile(self, grid: tuple[int, ...]) -> tuple[int, int]:
        """Features and vectors of tiles per register tile.  The vectors: the fewest tiles past the plane (ties: the
        widest); a vector is 8 floats on every instruction set but AVX-512 (the generic build splits each in two).
        The features: WINOGRAD_TILE_ROWS, or more of them where few vectors would leave the FMA units waiting on
        too few accumulators (64 -> 64 channels on 8 pixels: 16 tiles, one AVX-512 vector)."""
        lanes, registers = max(8, self.target.vector_floats), self.target.vector_registers
        widest = min(WINOGRAD_TILE_MAX_VECTORS, (registers - 1) // (WINOGRAD_TILE_ROWS + 1))
        m = self.winograd_order
        ty, tx = (-(-g // m) for g in grid[-2:])
        tiles = ty * (tx if tx in WINOGRAD_TILES_PACKED else tx + 1)  # tile rows x tiles (+ the column past them)
        vectors = min(range(1, widest + 1), key=lambda v: (-(-tiles // (v * lanes)) * v, -v))
        rows = WINOGRAD_TILE_ROWS
        while (rows + WINOGRAD_TILE_ROWS) * vectors <= WINOGRAD_TILE_ACCUMULATORS and \
                (rows + WINOGRAD_TILE_ROWS + 1) * vectors + 1 <= registers:
            rows += WINOGRAD_TILE_ROWS
        return rows, vectors

    def _winograd_over_rows(self, x: TensorType, w: np.ndarray, order: int) -> bool:
        """Whether Winograd F(order, r) beats conv_rows on this layer (see WINOGRAD_OVER_ROWS)."""
        channels, tiles = WINOGRAD_OVER_ROWS[order]
        geom = self._geometry(x, TensorType(w.dtype, w.shape))
        return w.shape[1] >= channels and math.prod(-(-g // order) for g in geom.grid) >= tiles

    def _winograd_block(self, x: TensorType, w: TensorType, geom: Geometry) -> tuple[int, int]:
        """Tile rows per block (see WINOGRAD_BLOCK_FLOATS) and tiles per row of a Winograd layer."""
        m = self.winograd_order
        tiles_y, tiles_x = (-(-g // m) for g in geom.grid)
        per_row = self._winograd_alpha(w) ** 2 * (x.shape[1] + w.shape[0]) * tiles_x
        return max(1, min(tiles_y, WINOGRAD_BLOCK_FLOATS // per_row)), tiles_x

    def _winograd_alpha(self, w: TensorType) -> int:
        """The tile size alpha = m + r - 1 of the transformed weights (stored alpha x alpha for r x r)."""
        return self.winograd_order + w.shape[2] - 1

    def _rows_candidate(self, x: Optional[TensorType], w: np.ndarray) -> bool:
        """Whether conv_rows can serve this layer, and beats conv_shifted and BLAS there: float32, ungrouped, not
        1x1, features in whole register tiles and a small image (see ROWS_MAX_POSITIONS)."""
        if (x is None or w.dtype != np.float32 or self.attrs["group"] != 1 or not 3 <= w.ndim <= 2 + KERNEL_RANK
                or w.shape[0] % ROWS_FEATURES or math.prod(w.shape[2:]) == 1):
            return False
        geom = self._geometry(x, TensorType(w.dtype, w.shape))
        if self.strategy(x, TensorType(w.dtype, w.shape), geom) != "im2col":
            return False
        positions, depth = math.prod(geom.grid), math.prod(w.shape[1:])
        if (self.target.isa == "avx512" and w.shape[0] % (2 * ROWS_FEATURES)
                and positions > ROWS_AVX512_ONE_PANEL_MAX_POSITIONS and self._shifted_candidate(w)):
            return False
        if depth < ROWS_MIN_DEPTH and self._shifted_candidate(w) and self._shifted_direct(geom, depth, 8 / depth):
            return False
        return positions <= ROWS_MAX_POSITIONS or (positions <= ROWS_MAX_POSITIONS_SHALLOW
                                                   and ROWS_MIN_DEPTH <= depth <= ROWS_MAX_DEPTH)

    def _shifted_direct(self, geom: Geometry, steps: int, waste: float) -> bool:
        """Whether conv_shifted would store its tiles straight into the output (conv_shifted_direct, where
        :func:`direct_lanes` says), computing at most 1 + ``waste`` times the grid's positions."""
        if steps > SHIFTED_CHUNK_STEPS:
            return False
        width = geom.grid[-1]
        padded_width = width + (geom.kernel[-1] - 1) * geom.dilations[-1] // geom.strides[-1]
        lanes = direct_lanes(width, padded_width, steps, self.target)
        return bool(lanes) and -(-width // lanes) * lanes <= width * (1 + waste)

    def strategy(self, x: TensorType, w: TensorType, geom: Geometry) -> str:
        """The packed layout's kernel (``shifted``, ``winograd``, ``winograd_tiles``, ``rows``), else ``direct`` (depthwise),
        ``pointwise`` (1x1, stride 1, no pad: no im2col) or ``im2col``."""
        if self.layout:
            return self.layout
        group = self.attrs["group"]
        if w.shape[1] == 1 and w.shape[0] // group <= DIRECT_MAX_OUTPUTS_PER_GROUP:
            return "direct"
        if self._is_pointwise(geom):
            return "pointwise"
        return "im2col"

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w = inputs[0], inputs[1]
        geom = self._geometry(x, w)
        strategy = self.strategy(x, w, geom)
        if strategy == "shifted":
            return shifted_workspace(geom, x.shape[1])
        if strategy == "pointwise" and self.layout:  # the last tile's columns, the gathered positions when strided
            gathered = 0 if self._is_pointwise(geom) else x.shape[1] * math.prod(geom.grid)
            return [TensorType(x.dtype, (x.shape[1] * POINTWISE_SCRATCH_WIDTH + gathered,))]
        if strategy == "winograd_tiles":  # sized for the widest vectors, whatever the compiler targets
            width = self._winograd_tiles_tile(geom.grid)[1] * max(VECTOR_FLOATS.values())
            floats = winograd_tiles_floats(self.winograd_order, self._winograd_alpha(w), x.shape[1], w.shape[0],
                                           geom.grid, width)
            return [TensorType(x.dtype, (floats,))]
        if strategy == "winograd":  # V and M: alpha^2 x (channels + features) x the block's tiles
            rows, tiles_x = self._winograd_block(x, w, geom)
            return [TensorType(x.dtype, (self._winograd_alpha(w) ** 2 * (x.shape[1] + w.shape[0]) * rows * tiles_x,))]
        if strategy == "rows":  # padded image and slack (conv_shifted_pad), partial sums; step offsets, positions' bases
            padded_image = [(g - 1) * s + (k - 1) * d + 1
                            for g, k, d, s in zip(geom.grid, geom.kernel, geom.dilations, geom.strides)]
            positions = math.prod(geom.grid)
            floats = x.shape[1] * math.prod(padded_image) + SHIFTED_SLACK + w.shape[0] * positions
            steps = w.shape[1] * math.prod(geom.kernel)
            return [TensorType(x.dtype, (floats,)), TensorType(np.dtype(np.int64), (steps + positions,))]
        if strategy != "im2col":
            return []
        rows = w.shape[1] * math.prod(geom.kernel)
        return [TensorType(x.dtype, (rows, math.prod(geom.grid)))]

    def emit(self, ctx: NodeContext) -> str:
        x, w = ctx.inputs[0], ctx.inputs[1]
        geom = self._geometry(x, w)
        strategy = self.strategy(x, w, geom)
        if self.attrs.get("pool_window") and strategy != "winograd_tiles":  # Target.pools_conv promised it
            raise self.op.error(f"a pooled convolution must run as conv_winograd_tiles, not {strategy}")
        data, sizes = self._operands(ctx)
        act = self.activation_or_identity(ctx)
        counts = f"{ctx.dim(x.shape[0])}, {x.shape[1]}, {ctx.outputs[0].shape[1]}"  # ungrouped
        if strategy == "pointwise" and self.layout:
            if not self._is_pointwise(geom):
                image, grid, stride = (ctx.array(label, padded(v, 1)) for label, v in
                                       (("image", geom.image), ("grid", geom.grid), ("stride", geom.strides)))
                return f"kernels::conv_pointwise_strided({data}, {ctx.w(0)}, {counts}, {image}, {grid}, {stride}, {act});"
            positions = ctx.dim(num_elements(geom.grid))
            return f"kernels::conv_pointwise({data}, {ctx.w(0)}, {counts}, {positions}, {act});"
        if strategy in ("shifted", "rows"):
            split = f"/*split_tail=*/{str(self._split_tail).lower()}, " if strategy == "shifted" else ""
            return (f"kernels::conv_{strategy}({data}, {ctx.w(0)}, {ctx.w(1)}, {counts}, {geometry_arrays(ctx, geom)}, "
                    f"{split}{act});")
        if strategy in ("winograd", "winograd_tiles"):  # stride 1
            image, grid = (ctx.array(label, padded(v, 1)) for label, v in (("image", geom.image), ("grid", geom.grid)))
            pad = ctx.array("pad", padded(geom.pads_begin, 0), "std::ptrdiff_t")
            order = f"{self.winograd_order}, {geom.kernel[-1]}"
            if strategy == "winograd_tiles":
                rows, vectors = self._winograd_tiles_tile(geom.grid)
                pooled = "true" if self.attrs.get("pool_window") else "false"
                return (f"kernels::conv_winograd_tiles<{order}, {rows}, {vectors}>({data}, {ctx.w(0)}, {counts}, {image}, "
                        f"{grid}, {pad}, {pooled}, {act});")
            rows = self._winograd_block(x, w, geom)[0]
            return (f"kernels::conv_winograd<{order}>({data}, {ctx.w(0)}, {counts}, {image}, {grid}, {pad}, {rows}, "
                    f"{act});")
        shape = geometry_arrays(ctx, geom)
        if strategy == "direct":
            return f"kernels::conv_direct({data}, {sizes}, {shape}, {act});"
        col = ctx.w(0) if strategy == "im2col" else "nullptr"
        note = "" if strategy == "im2col" else "  // 1x1: the input is the product's matrix"
        return f"kernels::conv_gemm({data}, {col}, {sizes}, {shape}, {act});{note}"


# ---- ConvTranspose -------------------------------------------------------------


@emits(ConvTranspose, FusedConvTranspose)
class ConvTransposeEmitter(ConvCode):
    """ConvTranspose: the product, then col2im (by output phase where the last dim is strided)."""

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """The product's matrix, and col2im_phased's scratch (one channel's output rows by phase) when the last
        dim is strided."""
        x, w = inputs[0], inputs[1]
        geom = self.op.geometry(x, w)
        col = TensorType(x.dtype, (w.shape[1] * math.prod(geom.kernel), math.prod(geom.grid)))
        stride = geom.strides[-1]
        if stride == 1:
            return [col]
        reach = (geom.grid[-1] - 1) * stride + extent(geom.kernel[-1], geom.dilations[-1])
        covered = geom.image[-1] + geom.pads_begin[-1]
        widest = max(reach, covered) if is_static((reach, covered)) else sympy.Max(reach, covered)
        columns = as_dim(-(-widest // stride))  # col2im_phase_columns in kernels/conv.hxx
        return [col, TensorType(x.dtype, (math.prod(geom.image[:-1]), stride * columns))]

    def emit(self, ctx: NodeContext) -> str:
        x, w = ctx.inputs[0], ctx.inputs[1]
        geom = self.op.geometry(x, w)
        data, sizes = self._operands(ctx)
        phased = ctx.w(1) if geom.strides[-1] > 1 else "nullptr"
        return (f"kernels::conv_transpose_gemm({data}, {ctx.w(0)}, {phased}, {sizes}, {geometry_arrays(ctx, geom)}, "
                f"{self.activation_or_identity(ctx)});")


# ---- CausalConvWithState, DeformConv (kernels/conv_extra.hxx) -----------------


@emits(CausalConvWithState)
class CausalConvEmitter(Emitter):
    """CausalConvWithState: one call over [past_state, input], the SiLU fused."""

    kernels = ("conv_extra",)

    def emit(self, ctx: NodeContext) -> str:
        x, w = ctx.inputs[0], ctx.inputs[1]
        sizes = f"{ctx.dim(x.shape[0])}, {ctx.dim(x.shape[1])}, {ctx.dim(x.shape[2])}, {w.shape[2]}"
        silu = "true" if self.op._activation() else "false"
        return (f"kernels::causal_conv_with_state({ctx.x(0)}, {ctx.x(1)}, {optional_ptr(ctx, 2)}, {optional_ptr(ctx, 3)}, "
                f"{ctx.y(0)}, {ctx.y(1)}, {sizes}, {silu});")


@emits(DeformConv)
class DeformConvEmitter(Emitter):
    """DeformConv: a deformable im2col into the workspace, then the per-group products.  Its weights stay as
    they are (the Conv layouts are for Conv's kernels)."""

    kernels = ("conv_extra",)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w = inputs[0], inputs[1]
        geom, taps = self.op._deform_geometry(x, w)
        return [TensorType(x.dtype, (w.shape[1] * taps, math.prod(geom.grid)))]

    def emit(self, ctx: NodeContext) -> str:
        x, w, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        geom, _ = self.op._deform_geometry(x, w)
        sizes = f"{ctx.dim(x.shape[0])}, {x.shape[1]}, {y.shape[1]}, {self.attrs['group']}, {self.attrs['offset_group']}"
        return (f"kernels::deform_conv({ctx.x(0)}, {ctx.x(1)}, {ctx.x(2)}, {optional_ptr(ctx, 3)}, {optional_ptr(ctx, 4)}, "
                f"{ctx.y(0)}, {ctx.w(0)}, {sizes}, {geometry_arrays(ctx, geom)});")


# ---- EdgeConvChain ---------------------------------------------------------------

# Edges per block of points in edge_conv_chain: two planes of them for 256 channels take 256 kB (L2), so the
# layers' inputs and outputs stay in cache from the gather to the pooling, and each layer's weights are read from
# L2 once per 128 x 256 x 256 multiply-adds.
EDGE_BLOCK_EDGES = 128
_POOLS = {"mean": "Mean", "max": "Max", "sum": "Sum"}


@emits(EdgeConvChain)
class EdgeConvChainEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.fused.EdgeConvChain`: one ``edge_conv_chain`` call, its layers'
    weights in conv_pointwise's panels, each layer's activation a lambda of its own."""

    @property
    def activations(self) -> list[Optional[Emitter]]:
        """The gather's activation and each layer's, bound to this target (None: the identity)."""
        ops = [self.op.activation_op() if self.op.has_activation else None] + self.op.layer_ops
        return [None if op is None or op.node.op_type == "Identity" else self.target.bind(op) for op in ops]

    @property
    def kernels(self) -> tuple[str, ...]:
        own = ("edge",)
        return tuple(dict.fromkeys(own + tuple(k for e in self.activations if e is not None for k in e.kernels)))

    def pack(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]]) -> Optional[dict[int, np.ndarray]]:
        """Each layer's weights (inputs 3, 5, ...) in conv_pointwise's panels."""
        return {i: pack_panels(w) for i, w in constants.items() if i >= 3 and i % 2 == 1}

    def points_per_block(self, k: int) -> int:
        """Points per block: EDGE_BLOCK_EDGES edges, at least one point."""
        return max(1, EDGE_BLOCK_EDGES // k)

    def widest(self, inputs: list[Optional[TensorType]]) -> int:
        return max([inputs[0].shape[1]] + [w.shape[0] for w in inputs[3::2]])

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """Two planes of a block's edges and conv_pointwise's columns; an image's offsets into x."""
        points, k = inputs[1].shape[1], inputs[1].shape[2]
        widest = self.widest(inputs)
        floats = widest * (2 * self.points_per_block(k) * k + POINTWISE_SCRATCH_WIDTH)
        return [TensorType(inputs[0].dtype, (floats,)), TensorType(np.dtype(np.uint64), (points * k,))]

    def emit(self, ctx: NodeContext) -> str:
        x, idx = ctx.inputs[0], ctx.inputs[1]
        k = idx.shape[2]
        lambdas = ["[](const float v) { return v; }" if e is None else e.function(ctx) for e in self.activations]
        layers = []
        channels = x.shape[1]
        for j, act in enumerate(lambdas[1:]):
            w = ctx.inputs[3 + 2 * j]
            layers.append(f"kernels::pointwise_layer({ctx.x(3 + 2 * j)}, {optional_ptr(ctx, 4 + 2 * j)}, {channels}, "
                          f"{w.shape[0]}, {act})")
            channels = w.shape[0]
        sizes = ", ".join(ctx.dim(d) for d in (x.shape[0], x.shape[1], idx.shape[1], k))
        pool = f"kernels::EdgePool::{_POOLS[self.attrs['pool']]}"
        args = [ctx.x(0), ctx.x(1), optional_ptr(ctx, 2), ctx.y(0), ctx.w(0), ctx.w(1), sizes,
                str(self.points_per_block(k)), str(self.widest(ctx.inputs)), pool, lambdas[0], *layers]
        return f"kernels::edge_conv_chain({', '.join(args)});"
