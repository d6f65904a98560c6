"""Convolutions: Conv and ConvTranspose (1-D to 3-D), and their fused-activation forms.

The kernels (``kernels/conv.hxx``) see every convolution as 3-D; the emitter
pads lower ranks with size-1 dims.  Conv runs as im2col + one product per
image and group (BLAS for larger matrices), skips im2col for 1x1 convolutions
with stride 1 and no pad, and uses a direct loop for depthwise layers.
Float convolutions with few output channels or large kernels run as
"shifted products" (``conv_shifted``: every (channel, tap) step is a constant
offset in a padded copy of the image, split by phase where strided, summed in register tiles), with their
constant weights stored in panels at generation time (:func:`pack_panels`):
no im2col copy, and 80-90% of the core's peak where im2col + BLAS, whose
products have few rows there, reaches 15-65%.
2-D float 3x3 and 5x5 layers with stride 1 and many channels run as Winograd F(m x m, r x r)
(``kernels/winograd.hxx``: F(4, 3) where the image has many tiles, else F(2, 3); F(2, 5)), their
transformed weights computed at generation time (:func:`winograd_weights`): 0.25 to 0.44 of the
products' multiplications, at a cost in rounding (about 1e-6 of the output's scale for F(2, 3), up to
1e-5 for the others).  Other layers with many output channels and small images run as ``conv_rows``
(tiles of output positions x 16 features, weights in feature blocks).
ConvTranspose runs as product + col2im (by output phase where the last dim is strided, so that
its adds are contiguous).  Scratch matrices come from
:meth:`Op.workspace`, so inference allocates nothing.

``FusedConv``/``FusedGemm`` (domain ``sofie_rdf``, made by
``passes/fusion.py``) carry a following activation as attributes
(``activation``, ``activation_version``, ``activation_<attr>``), like
onnxruntime's ``com.microsoft`` FusedConv; the activation's own lambda is
applied to the output in the same node's code.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dtypes import FLOAT_TYPES
from .base import EmitContext, Op, Packed
from .gemm import Gemm
from .registry import lookup, make_node, register

# Depthwise layers with at most this many outputs per input channel use the direct kernel.
DIRECT_MAX_OUTPUTS_PER_GROUP = 4
KERNEL_RANK = 3  # the kernels' fixed spatial rank
# Layers use conv_shifted when they have few output channels, or kernels of this many taps or more (im2col
# copies grow with the taps); otherwise BLAS's blocking of the im2col product is as fast or faster (measured
# on the rootbench 5x5 stacks, resnet18's 3x3 layers and its 7x7 stride-2 stem, AVX2).
SHIFTED_MAX_FEATURES = 32
SHIFTED_MIN_TAPS = 16
# In code for Cling (target "jit"), which runs its register tiles slower, only layers whose products are this
# shallow (channels x taps) use it: Conv3d_d32_L4 through the JIT, 72 ms with it on every layer, 48 ms so.
SHIFTED_MAX_DEPTH_JIT = 64
PANEL_ROWS = 6  # kConvPanelRows in kernels/conv.hxx
# Other layers (not 1x1) with output channels in multiples of ROWS_FEATURES (kPanelColumns) and at most
# ROWS_MAX_POSITIONS output positions per image run as conv_rows (positions as the register tile's rows,
# weights in feature blocks): 86-91 GFLOP/s on resnet18's 512-channel 7x7 layers and its stride-2 3x3 layers
# at 14x14 and 7x7, where im2col + BLAS reaches 64-76; on larger images and 1x1 layers BLAS does as well.
ROWS_FEATURES = 16  # kPanelColumns in kernels/gemm.hxx
ROWS_MAX_POSITIONS = 256
# Mirrors of kernels/conv.hxx constants, for the size of conv_shifted's scratch.
SHIFTED_SLACK = 48  # kConvTileSlack: floats the last tile reads past the padded image
SHIFTED_CHUNK_STEPS = 512  # kConvChunkSteps: (channel, tap) steps per pass
SHIFTED_PARTIAL_ALIGN = 96  # kConvPartialAlign
FUSED_DOMAIN = "sofie_rdf"
PACKED_ATTRS = ("packed_panels", "winograd", "packed_rows")  # a Conv's weights stored for one of its kernels
# Winograd F(m x m, r x r) serves layers with at least this many input channels (the products' depth) and, for
# the chosen m, at least this many output tiles per image: below that the alpha^2 products are too thin for BLAS
# and their transformed weights (alpha^2 / r^2 times the originals) outweigh the saving (measured on AVX2:
# resnet18's 3x3 layers, F(4, 3) 0.37-0.40x im2col's time at 56x56 and 28x28, F(2, 3) 0.61x at 14x14, no gain at
# 7x7; the rootbench 5x5 layers on 100x100, F(2, 5) 0.52-0.65x conv_shifted's time from 32 channels, even at 16).
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_TILES = 32
WINOGRAD_ORDERS = {3: (4, 2), 5: (2,)}  # kernel size -> the m of F(m x m, r x r) to try, in order
# Tiles go in blocks of whole tile rows whose transformed input and products (alpha^2 x (channels + features)
# floats per tile) take at most this many floats, so that they stay in the last-level cache.
WINOGRAD_BLOCK_FLOATS = 1 << 20


@dataclass(frozen=True)
class Geometry:
    """Spatial geometry of one (transposed) convolution; ``image`` is read by Conv, written by ConvTranspose."""

    image: tuple[int, ...]
    grid: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]

    def padded(self, values: tuple[int, ...], fill: int) -> list[int]:
        """``values`` with leading ``fill`` entries up to the kernels' rank."""
        return [fill] * (KERNEL_RANK - len(values)) + list(values)

    def arrays(self, ctx: EmitContext) -> str:
        """Declare the kernel's geometry arrays; returns them as call arguments."""
        labels = [("image", self.image), ("grid", self.grid), ("kernel", self.kernel), ("stride", self.strides)]
        names = [ctx.array(label, self.padded(v, 1)) for label, v in labels + [("dilation", self.dilations)]]
        names.append(ctx.array("pad", self.padded(self.pads_begin, 0), "std::ptrdiff_t"))
        return ", ".join(names)


def _extent(k: int, d: int) -> int:
    """Span of a dilated kernel."""
    return (k - 1) * d + 1


def _same_split(total: int, upper: bool) -> tuple[int, int]:
    """SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning."""
    small, large = total // 2, total - total // 2
    return (small, large) if upper else (large, small)


class ConvBase(Op):
    """Shared attribute handling of Conv and ConvTranspose."""

    kernels = ("conv",)
    row_wise = True  # over the batch dim N

    def _spatial(self, x: TensorType, w: TensorType) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Static spatial dims of X and the kernel shape."""
        if x.rank < 3 or x.rank > 2 + KERNEL_RANK:
            raise self.error(f"input of rank {x.rank} is not supported (1-D to 3-D convolutions: rank 3 to 5)")
        if w.rank != x.rank:
            raise self.error(f"weights of shape {w.shape} do not match input of shape {x.shape}")
        spatial = x.shape[2:]
        if not all(isinstance(d, int) for d in spatial + w.shape):
            raise self.error(f"spatial dims {spatial} and weights {w.shape} must be fixed numbers; only the batch"
                             " dim may be symbolic")
        stored = self.stored_kernel(w)
        kernel = tuple(self.attr("kernel_shape") or stored)
        if kernel != stored:
            raise self.error(f"kernel_shape {list(kernel)} differs from the weights' spatial shape {w.shape[2:]}")
        return tuple(spatial), kernel

    def stored_kernel(self, w: TensorType) -> tuple[int, ...]:
        """The kernel shape the weights hold."""
        return tuple(w.shape[2:])

    def _per_dim(self, name: str, rank: int, fill: int) -> tuple[int, ...]:
        values = self.attr(name)
        if values is None or len(values) == 0:
            return (fill,) * rank
        if len(values) != rank:
            raise self.error(f"{name} {values} should have {rank} entries")
        return tuple(int(v) for v in values)

    def _pads(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        pads = self._per_dim("pads", 2 * rank, 0)
        return pads[:rank], pads[rank:]

    def _check_types(self, x: TensorType, w: TensorType, b: Optional[TensorType], out_channels: int) -> None:
        if x.dtype not in FLOAT_TYPES or w.dtype != x.dtype:
            raise self.error(f"X and W must be float32 or float64 of one type, got {x.dtype} and {w.dtype}")
        if b is not None and (b.rank != 1 or b.shape[0] != out_channels):
            raise self.error(f"bias of shape {b.shape} should be ({out_channels},)")

    def _activation(self, ctx: EmitContext, dtype: np.dtype) -> str:
        """Lambda applied to every output: identity here, the fused activation in Fused* subclasses."""
        t = ctx.ctype(dtype)
        return f"[](const {t} v) {{ return v; }}"

    def _bias(self, ctx: EmitContext) -> str:
        return ctx.x(2) if len(ctx.inputs) > 2 and ctx.inputs[2] is not None else "nullptr"

    def _operands(self, ctx: EmitContext) -> tuple[str, str]:
        """Shared kernel arguments: (x, w, bias, y) and (batch, channels, features, group)."""
        x, y = ctx.inputs[0], ctx.outputs[0]
        data = f"{ctx.x(0)}, {ctx.x(1)}, {self._bias(ctx)}, {ctx.y(0)}"
        sizes = f"{ctx.dim(x.shape[0])}, {x.shape[1]}, {y.shape[1]}, {self.attrs['group']}"
        return data, sizes


@register
class Conv(ConvBase):
    """N-D convolution with groups, dilations, strides, pads and auto_pad."""

    op_type = "Conv"

    def geometry(self, x: TensorType, w: TensorType) -> Geometry:
        image, kernel = self._spatial(x, w)
        rank = len(image)
        strides, dilations = self._per_dim("strides", rank, 1), self._per_dim("dilations", rank, 1)
        auto_pad = self.attrs.get("auto_pad", "NOTSET")
        extents = [_extent(k, d) for k, d in zip(kernel, dilations)]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            grid = tuple(-(-i // s) for i, s in zip(image, strides))
            totals = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(grid, strides, extents, image)]
            split = [_same_split(t, auto_pad == "SAME_UPPER") for t in totals]
            begin, end = tuple(p[0] for p in split), tuple(p[1] for p in split)
        elif auto_pad in ("NOTSET", "VALID"):
            begin, end = self._pads(rank) if auto_pad == "NOTSET" else ((0,) * rank, (0,) * rank)
            grid = tuple((i + b + e - ext) // s + 1 for i, b, e, ext, s in zip(image, begin, end, extents, strides))
        else:
            raise self.error(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        if any(o < 1 for o in grid):
            raise self.error(f"kernel {kernel} (dilations {dilations}) does not fit the padded input {image}")
        return Geometry(image, grid, kernel, strides, dilations, begin, end)

    def _channels(self, x: TensorType, w: TensorType) -> None:
        group = self.attrs["group"]
        if group < 1 or x.shape[1] % group or w.shape[0] % group or w.shape[1] * group != x.shape[1]:
            raise self.error(f"input channels {x.shape[1]}, weights {w.shape} and group {group} do not agree")

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        geom = self.geometry(x, w)
        self._channels(x, w)
        self._check_types(x, w, b, w.shape[0])
        return [TensorType(x.dtype, (x.shape[0], w.shape[0]) + geom.grid)]

    @property
    def kernels(self) -> tuple[str, ...]:
        return ("conv", "winograd") if self.attrs.get("winograd") else ("conv",)

    def stored_kernel(self, w: TensorType) -> tuple[int, ...]:
        """Winograd weights are stored as alpha x alpha tiles (alpha = m + r - 1) for an r x r kernel."""
        order = self.attrs.get("winograd")
        return tuple(d - order + 1 for d in w.shape[2:]) if order else tuple(w.shape[2:])

    def _shifted_candidate(self, w: np.ndarray, target: str) -> bool:
        """Whether conv_shifted serves this layer: float32, ungrouped, few output channels or large kernels
        (and shallow products, for Cling)."""
        depth = math.prod(w.shape[1:])
        return (w.dtype == np.float32 and self.attrs["group"] == 1 and 3 <= w.ndim <= 2 + KERNEL_RANK
                and (w.shape[0] <= SHIFTED_MAX_FEATURES or math.prod(w.shape[2:]) >= SHIFTED_MIN_TAPS)
                and (target == "native" or depth <= SHIFTED_MAX_DEPTH_JIT))

    def _winograd_order(self, x: Optional[TensorType], w: np.ndarray) -> Optional[int]:
        """m of the Winograd F(m x m, r x r) serving this layer, None where it does not."""
        r = w.shape[2] if w.ndim == 4 else 0
        if (x is None or w.dtype != np.float32 or r not in WINOGRAD_ORDERS or w.shape[3] != r
                or self.attrs["group"] != 1 or w.shape[1] < WINOGRAD_MIN_CHANNELS
                or any(v != 1 for v in self._per_dim("strides", 2, 1))
                or any(v != 1 for v in self._per_dim("dilations", 2, 1))):
            return None
        geom = self.geometry(x, TensorType(w.dtype, w.shape))
        for m in WINOGRAD_ORDERS[r]:
            if math.prod(-(-g // m) for g in geom.grid) >= WINOGRAD_MIN_TILES:
                return m
        return None

    def _winograd_block(self, x: TensorType, w: TensorType, geom: Geometry) -> tuple[int, int]:
        """Tile rows per block (see WINOGRAD_BLOCK_FLOATS) and tiles per row of a Winograd layer."""
        m = self.attrs["winograd"]
        tiles_y, tiles_x = (-(-g // m) for g in geom.grid)
        per_row = w.shape[2] ** 2 * (x.shape[1] + w.shape[0]) * tiles_x
        return max(1, min(tiles_y, WINOGRAD_BLOCK_FLOATS // per_row)), tiles_x

    def _rows_candidate(self, x: Optional[TensorType], w: np.ndarray) -> bool:
        """Whether conv_rows serves this layer: float32, ungrouped, not 1x1, features in whole register tiles and
        a small image."""
        if (x is None or w.dtype != np.float32 or self.attrs["group"] != 1 or not 3 <= w.ndim <= 2 + KERNEL_RANK
                or w.shape[0] % ROWS_FEATURES or math.prod(w.shape[2:]) == 1):
            return False
        geom = self.geometry(x, TensorType(w.dtype, w.shape))
        return (self.strategy(x, TensorType(w.dtype, w.shape), geom) == "im2col"
                and math.prod(geom.grid) <= ROWS_MAX_POSITIONS)

    def pack_constants(self, constants: dict[int, np.ndarray], inputs: list[Optional[TensorType]],
                       target: str) -> Packed:
        """Constant weights stored for the kernel that serves the layer: in panels for conv_shifted (same shape,
        new order: ``packed_panels``), transformed for Winograd (``winograd``: m), in feature blocks for
        conv_rows (``packed_rows``).  conv_rows is for native compilers only, and conv_shifted for shallow
        products only in code for Cling, which runs their register tiles slower than im2col and BLAS
        (resnet18 through the JIT: 107 ms with conv_rows, 74 ms without)."""
        w = constants.get(1)
        if w is None or any(self.attrs.get(a) for a in PACKED_ATTRS):
            return None
        order = self._winograd_order(inputs[0], w)
        if order:
            return {1: winograd_weights(w, order)}, {"winograd": order}
        if self._shifted_candidate(w, target):
            return {1: pack_panels(w)}, {"packed_panels": PANEL_ROWS}
        if target == "native" and self._rows_candidate(inputs[0], w):
            return {1: pack_panels(w, ROWS_FEATURES)}, {"packed_rows": ROWS_FEATURES}
        return None

    def strategy(self, x: TensorType, w: TensorType, geom: Geometry) -> str:
        """``shifted`` (weights packed in panels), ``winograd`` (weights transformed), ``rows`` (weights
        in feature blocks), ``direct`` (depthwise), ``pointwise`` (1x1, stride 1, no pad: no im2col) or ``im2col``."""
        group = self.attrs["group"]
        if self.attrs.get("packed_panels"):
            return "shifted"
        if self.attrs.get("winograd"):
            return "winograd"
        if self.attrs.get("packed_rows"):
            return "rows"
        if w.shape[1] == 1 and w.shape[0] // group <= DIRECT_MAX_OUTPUTS_PER_GROUP:
            return "direct"
        if (all(k == 1 for k in geom.kernel) and all(s == 1 for s in geom.strides)
                and not any(geom.pads_begin + geom.pads_end)):
            return "pointwise"
        return "im2col"

    def workspace(self, inputs, outputs) -> list[TensorType]:
        x, w = inputs[0], inputs[1]
        geom = self.geometry(x, w)
        strategy = self.strategy(x, w, geom)
        if strategy == "shifted":
            return shifted_workspace(geom, x.shape[1])
        if strategy == "winograd":  # V and M: alpha^2 x (channels + features) x the block's tiles
            rows, tiles_x = self._winograd_block(x, w, geom)
            return [TensorType(x.dtype, (w.shape[2] ** 2 * (x.shape[1] + w.shape[0]) * rows * tiles_x,))]
        if strategy == "rows":  # padded image and slack (conv_shifted_pad), partial sums; step offsets
            padded = [(g - 1) * s + (k - 1) * d + 1
                      for g, k, d, s in zip(geom.grid, geom.kernel, geom.dilations, geom.strides)]
            floats = x.shape[1] * math.prod(padded) + SHIFTED_SLACK + w.shape[0] * math.prod(geom.grid)
            return [TensorType(x.dtype, (floats,)), TensorType(np.dtype(np.int64), (w.shape[1] * math.prod(geom.kernel),))]
        if strategy != "im2col":
            return []
        rows = w.shape[1] * math.prod(geom.kernel)
        return [TensorType(x.dtype, (rows, math.prod(geom.grid)))]

    def evaluate(self, values):
        x, w = values[0], values[1]
        b = values[2] if len(values) > 2 else None
        if self.attrs.get("packed_panels") or self.attrs.get("packed_rows"):
            w = unpack_panels(w, self.attrs.get("packed_panels") or self.attrs["packed_rows"])
        if self.attrs.get("winograd"):
            w = winograd_kernel(w, self.attrs["winograd"])
        geom = self.geometry(TensorType(x.dtype, x.shape), TensorType(w.dtype, w.shape))
        return [conv_reference(x, w, b, geom, self.attrs["group"]).astype(x.dtype)]

    def emit(self, ctx: EmitContext) -> str:
        x, w = ctx.inputs[0], ctx.inputs[1]
        geom = self.geometry(x, w)
        strategy = self.strategy(x, w, geom)
        data, sizes = self._operands(ctx)
        act = self._activation(ctx, x.dtype)
        counts = f"{ctx.dim(x.shape[0])}, {x.shape[1]}, {ctx.outputs[0].shape[1]}"  # ungrouped
        if strategy in ("shifted", "rows"):
            return f"kernels::conv_{strategy}({data}, {ctx.w(0)}, {ctx.w(1)}, {counts}, {geom.arrays(ctx)}, {act});"
        if strategy == "winograd":  # stride 1
            image, grid = (ctx.array(label, geom.padded(v, 1)) for label, v in (("image", geom.image), ("grid", geom.grid)))
            pad = ctx.array("pad", geom.padded(geom.pads_begin, 0), "std::ptrdiff_t")
            order = f"{self.attrs['winograd']}, {geom.kernel[-1]}"
            rows = self._winograd_block(x, w, geom)[0]
            return (f"kernels::conv_winograd<{order}>({data}, {ctx.w(0)}, {counts}, {image}, {grid}, {pad}, {rows}, "
                    f"{act});")
        shape = geom.arrays(ctx)
        if strategy == "direct":
            return f"kernels::conv_direct({data}, {sizes}, {shape}, {act});"
        col = ctx.w(0) if strategy == "im2col" else "nullptr"
        note = "" if strategy == "im2col" else "  // 1x1: the input is the product's matrix"
        return f"kernels::conv_gemm({data}, {col}, {sizes}, {shape}, {act});{note}"


@register
class ConvTranspose(ConvBase):
    """N-D transposed convolution with groups, dilations, strides, pads, output_padding and output_shape."""

    op_type = "ConvTranspose"

    def geometry(self, x: TensorType, w: TensorType) -> Geometry:
        grid, kernel = self._spatial(x, w)
        rank = len(grid)
        strides, dilations = self._per_dim("strides", rank, 1), self._per_dim("dilations", rank, 1)
        out_pad = self._per_dim("output_padding", rank, 0)
        auto_pad = self.attrs.get("auto_pad", "NOTSET")
        if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
            raise self.error(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        full = [s * (i - 1) + p + _extent(k, d) for s, i, p, k, d in zip(strides, grid, out_pad, kernel, dilations)]
        shape = self.attr("output_shape")
        if shape:
            shape = tuple(int(v) for v in shape)[-rank:]
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            shape = tuple(i * s for i, s in zip(grid, strides))
        if shape:
            # The spec's total padding; SAME_UPPER puts the odd pad at the end, anything else at the beginning.
            # An output larger than the full result gets zeros at the end (no negative pad), as in onnxruntime.
            totals = [max(0, f - o) for f, o in zip(full, shape)]
            split = [_same_split(t, auto_pad == "SAME_UPPER") for t in totals]
            begin, end = tuple(p[0] for p in split), tuple(p[1] for p in split)
            image = shape
        else:
            begin, end = self._pads(rank) if auto_pad == "NOTSET" else ((0,) * rank, (0,) * rank)
            image = tuple(f - b - e for f, b, e in zip(full, begin, end))
        if any(o < 1 for o in image):
            raise self.error(f"output spatial shape {image} is empty")
        return Geometry(tuple(image), grid, kernel, strides, dilations, begin, end)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        geom = self.geometry(x, w)
        group = self.attrs["group"]
        if group < 1 or x.shape[1] % group or w.shape[0] != x.shape[1]:
            raise self.error(f"input channels {x.shape[1]}, weights {w.shape} and group {group} do not agree")
        features = w.shape[1] * group
        self._check_types(x, w, b, features)
        return [TensorType(x.dtype, (x.shape[0], features) + geom.image)]

    def workspace(self, inputs, outputs) -> list[TensorType]:
        """The product's matrix, and col2im_phased's scratch (one channel's output rows by phase) when the last
        dim is strided."""
        x, w = inputs[0], inputs[1]
        geom = self.geometry(x, w)
        col = TensorType(x.dtype, (w.shape[1] * math.prod(geom.kernel), math.prod(geom.grid)))
        stride = geom.strides[-1]
        if stride == 1:
            return [col]
        columns = -(-max((geom.grid[-1] - 1) * stride + _extent(geom.kernel[-1], geom.dilations[-1]),
                         geom.image[-1] + geom.pads_begin[-1]) // stride)  # col2im_phase_columns in kernels/conv.hxx
        return [col, TensorType(x.dtype, (math.prod(geom.image[:-1]), stride * columns))]

    def evaluate(self, values):
        x, w = values[0], values[1]
        b = values[2] if len(values) > 2 else None
        geom = self.geometry(TensorType(x.dtype, x.shape), TensorType(w.dtype, w.shape))
        return [conv_transpose_reference(x, w, b, geom, self.attrs["group"]).astype(x.dtype)]

    def emit(self, ctx: EmitContext) -> str:
        x, w = ctx.inputs[0], ctx.inputs[1]
        geom = self.geometry(x, w)
        data, sizes = self._operands(ctx)
        phased = ctx.w(1) if geom.strides[-1] > 1 else "nullptr"
        return (f"kernels::conv_transpose_gemm({data}, {ctx.w(0)}, {phased}, {sizes}, {geom.arrays(ctx)}, "
                f"{self._activation(ctx, x.dtype)});")


# ---- conv_shifted: scratch and weight panels ---------------------------------

def shifted_workspace(geom: Geometry, channels: int) -> list[TensorType]:
    """conv_shifted's float scratch (padded image split by stride phase, slack, partial sums; see kernels/conv.hxx)
    and its step offsets."""
    padded = [g + (k - 1) * d // s for g, k, d, s in zip(geom.grid, geom.kernel, geom.dilations, geom.strides)]
    steps = channels * math.prod(geom.kernel)
    scratch = channels * math.prod(geom.strides) * math.prod(padded) + SHIFTED_SLACK
    if steps > SHIFTED_CHUNK_STEPS:  # partial sums of one panel between passes
        grid = geom.padded(geom.grid, 1)
        full = geom.padded(tuple(padded), 1)
        positions = ((grid[0] - 1) * full[1] + grid[1] - 1) * full[2] + grid[2]
        scratch += PANEL_ROWS * -(-positions // SHIFTED_PARTIAL_ALIGN) * SHIFTED_PARTIAL_ALIGN
    return [TensorType(np.dtype(np.float32), (scratch,)), TensorType(np.dtype(np.int64), (steps,))]


def pack_panels(w: np.ndarray, rows: int = PANEL_ROWS) -> np.ndarray:
    """Weights (M, C, k...) reordered in blocks of ``rows`` output channels (the last block the rest), each
    stored K x rows so that one step over (c, tap) reads the block's weights side by side: conv_shifted's panels
    (PANEL_ROWS), conv_rows' feature blocks (ROWS_FEATURES)."""
    flat = w.reshape(w.shape[0], -1)
    blocks = [flat[m:m + rows].T.ravel() for m in range(0, w.shape[0], rows)]
    return np.concatenate(blocks).reshape(w.shape)


def unpack_panels(w: np.ndarray, rows: int = PANEL_ROWS) -> np.ndarray:
    """The inverse of :func:`pack_panels`."""
    m, depth = w.shape[0], w[0].size
    panels = w.ravel()
    blocks = [panels[s * depth:(s + r) * depth].reshape(depth, r).T
              for s, r in ((s, min(rows, m - s)) for s in range(0, m, rows))]
    return np.concatenate(blocks).reshape(w.shape)


# ---- Winograd F(m x m, r x r): weight transform --------------------------------

# Interpolation points and their scales per tile size alpha (besides the point at infinity), as in
# kernels/winograd.hxx, whose B^T and A^T are written out there.
WINOGRAD_POINTS = {4: ((0, 1), (1, 1 / 2), (-1, 1 / 2)),
                   6: ((0, 1 / 4), (1, -1 / 6), (-1, -1 / 6), (2, 1 / 24), (-2, 1 / 24))}


def winograd_g(m: int, r: int) -> np.ndarray:
    """G of F(m, r): the kernel polynomial's values at the points, scaled, then its leading coefficient."""
    rows = [[scale * point ** k for k in range(r)] for point, scale in WINOGRAD_POINTS[m + r - 1]]
    return np.array(rows + [[0] * (r - 1) + [1]], dtype=np.float64)


def winograd_weights(w: np.ndarray, m: int) -> np.ndarray:
    """U = G g G^T for every (feature, channel) of r x r weights (F, C, r, r), computed in float64 and stored as
    alpha^2 matrices F x C (the products' left operands), declared with shape (F, C, alpha, alpha)."""
    r = w.shape[2]
    g = winograd_g(m, r)
    u = np.einsum("ka,fcab,ib->kifc", g, w.astype(np.float64), g)
    alpha = m + r - 1
    return np.ascontiguousarray(u.astype(w.dtype)).reshape(w.shape[0], w.shape[1], alpha, alpha)


def winograd_kernel(u: np.ndarray, m: int) -> np.ndarray:
    """The r x r weights back from :func:`winograd_weights` (G has full column rank: its pseudo-inverse undoes it)."""
    alpha, features, channels = u.shape[2], u.shape[0], u.shape[1]
    gp = np.linalg.pinv(winograd_g(m, alpha - m + 1))
    tiles = u.reshape(alpha, alpha, features, channels).astype(np.float64)
    return np.einsum("ak,kifc,bi->fcab", gp, tiles, gp).astype(u.dtype)


# ---- numpy references (constant folding) -----------------------------------

def _taps(geom: Geometry, count: tuple[int, ...]):
    """Per kernel offset: its index and the strided slices of the padded image it touches."""
    for offs in itertools.product(*[range(k) for k in geom.kernel]):
        yield offs, tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                          for o, d, n, s in zip(offs, geom.dilations, count, geom.strides))


def conv_reference(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], geom: Geometry, group: int) -> np.ndarray:
    """Conv by summing one strided slice of the padded input per kernel tap."""
    rank = len(geom.image)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(geom.pads_begin, geom.pads_end)))
    big = tuple(max(p, g) for p, g in zip(xp.shape[2:], geom.grid))  # room for the tail slices of large strides
    xp = np.pad(xp, [(0, 0), (0, 0)] + [(0, n - p) for n, p in zip(big, xp.shape[2:])])
    m, cg = w.shape[0], w.shape[1]
    mg = m // group
    y = np.zeros((x.shape[0], m) + geom.grid, dtype=np.float64)
    for offs, sl in _taps(geom, geom.grid):
        patch = xp[(slice(None), slice(None)) + sl]
        for g in range(group):
            wk = w[(slice(g * mg, (g + 1) * mg), slice(None)) + offs]
            y[:, g * mg:(g + 1) * mg] += np.einsum("nc...,mc->nm...", patch[:, g * cg:(g + 1) * cg], wk)
    if b is not None:
        y += b.reshape((-1,) + (1,) * rank)
    return y


def conv_transpose_reference(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], geom: Geometry,
                             group: int) -> np.ndarray:
    """ConvTranspose by scattering every kernel tap into the uncropped output, then cropping the pads."""
    rank = len(geom.grid)
    cg, mg = x.shape[1] // group, w.shape[1]
    full = tuple(max((n - 1) * s + _extent(k, d), p + i)
                 for n, s, k, d, p, i in zip(geom.grid, geom.strides, geom.kernel, geom.dilations,
                                             geom.pads_begin, geom.image))
    y = np.zeros((x.shape[0], mg * group) + full, dtype=np.float64)
    for offs, sl in _taps(geom, geom.grid):
        for g in range(group):
            wk = w[(slice(g * cg, (g + 1) * cg), slice(None)) + offs]
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + sl] += np.einsum(
                "nc...,cm->nm...", x[:, g * cg:(g + 1) * cg], wk)
    y = y[(slice(None), slice(None)) + tuple(slice(p, p + i) for p, i in zip(geom.pads_begin, geom.image))]
    if b is not None:
        y = y + b.reshape((-1,) + (1,) * rank)
    return y


# ---- fused activations (passes/fusion.py) ----------------------------------

ACTIVATION_PREFIX = "activation_"


def activation_attrs(node_attrs: dict[str, Any]) -> dict[str, Any]:
    """The fused activation's own attributes (prefix removed)."""
    skip = {"activation", "activation_version"}
    return {k[len(ACTIVATION_PREFIX):]: v for k, v in node_attrs.items()
            if k.startswith(ACTIVATION_PREFIX) and k not in skip}


class FusedActivation:
    """Mixin: the activation named by the node's attributes, applied by the base op's emitted code."""

    attr_defaults = {"activation": "Identity", "activation_version": 0}

    @property
    def kernels(self) -> tuple[str, ...]:
        """The base op's kernels and those the activation's code calls (e.g. fastmath for Sigmoid)."""
        return tuple(dict.fromkeys(super().kernels + tuple(self.activation_op().kernels)))

    def activation_op(self) -> Op:
        attrs = self.attrs
        node = make_node(attrs["activation"], ["x"], ["y"], activation_attrs(attrs),
                         version=int(attrs["activation_version"]), model=self.model)
        return lookup(node.op_type, node.domain, node.version)(node, self.model)

    def activation_function(self, ctx: EmitContext) -> str:
        return self.activation_op().function(ctx)

    def activation_reference(self, y: np.ndarray) -> np.ndarray:
        return self.activation_op().evaluate([y])[0]


@register
class FusedConv(FusedActivation, Conv):
    """Conv followed by an element-wise activation, computed in one pass."""

    op_type = "FusedConv"
    domain = FUSED_DOMAIN
    attr_defaults = {**Conv.attr_defaults, **FusedActivation.attr_defaults, "auto_pad": "NOTSET", "group": 1}

    def _activation(self, ctx: EmitContext, dtype: np.dtype) -> str:
        return self.activation_function(ctx)

    def evaluate(self, values):
        return [self.activation_reference(super().evaluate(values)[0])]


@register
class FusedConvTranspose(FusedActivation, ConvTranspose):
    """ConvTranspose followed by an element-wise activation."""

    op_type = "FusedConvTranspose"
    domain = FUSED_DOMAIN
    attr_defaults = {**ConvTranspose.attr_defaults, **FusedActivation.attr_defaults, "auto_pad": "NOTSET",
                     "group": 1}

    def _activation(self, ctx: EmitContext, dtype: np.dtype) -> str:
        return self.activation_function(ctx)

    def evaluate(self, values):
        return [self.activation_reference(super().evaluate(values)[0])]


@register
class FusedGemm(FusedActivation, Gemm):
    """Gemm followed by an element-wise activation, applied with the bias while each row of Y is in cache."""

    op_type = "FusedGemm"
    domain = FUSED_DOMAIN
    since_version = 1  # fused nodes are made at version 1 (Gemm's own since_version is 7)
    attr_defaults = {**FusedActivation.attr_defaults, "alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}

    def evaluate(self, values):
        return [self.activation_reference(super().evaluate(values)[0])]

    def _activation(self, ctx: EmitContext) -> str:
        return self.activation_function(ctx)
