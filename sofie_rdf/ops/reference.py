"""Long numpy references of operators: what a layer computes, written plainly, for constant folding and checks.

The operators' ``evaluate`` methods call these for convolutions (direct, transposed and deformable) and
pooling windows; the Winograd transforms are here too: they are the arithmetic of F(m x m, r x r), which the
CPU emitter (``targets/cpu/emitters/conv.py``) applies to constant weights and the tests invert.
Everything is computed in float64 and left to the caller to round.
"""

from __future__ import annotations

import itertools
from typing import Iterator, Optional

import numpy as np

from .geometry import Geometry, PoolGeometry

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


# ---- convolutions ------------------------------------------------------------

def _taps(geom: Geometry, count: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
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
    full = tuple(max((n - 1) * s + (k - 1) * d + 1, p + i)  # the last tap's reach, or the cropped output's end
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


def _bilinear(image: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bilinear reads of ``image`` (..., H, W) at positions (py, px); corners outside count as 0."""
    h, w = image.shape[-2:]
    y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    out = np.zeros(image.shape[:-2] + py.shape, dtype=np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            weight = (py - y0 if dy else 1 - (py - y0)) * (px - x0 if dx else 1 - (px - x0))
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            out += np.where(inside, weight * image[..., np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0)
    return out


def deform_conv_reference(x: np.ndarray, w: np.ndarray, offset: np.ndarray, b: Optional[np.ndarray],
                          mask: Optional[np.ndarray], geom: Geometry, group: int, offset_group: int) -> np.ndarray:
    """DeformConv by building the deformable im2col matrix with numpy (constant folding)."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = geom.kernel, geom.grid
    off = offset.reshape(n, offset_group, kh, kw, 2, oh, ow).astype(np.float64)
    msk = np.ones((n, offset_group, kh, kw, oh, ow)) if mask is None else mask.reshape(n, offset_group, kh, kw, oh, ow)
    ky = np.arange(kh)[:, None, None, None] * geom.dilations[0] - geom.pads_begin[0]
    kx = np.arange(kw)[None, :, None, None] * geom.dilations[1] - geom.pads_begin[1]
    oy = (np.arange(oh) * geom.strides[0])[None, None, :, None]
    ox = (np.arange(ow) * geom.strides[1])[None, None, None, :]
    per = c // offset_group
    cols = np.empty((n, c, kh, kw, oh, ow))
    for i in range(n):
        for g in range(offset_group):
            py, px = oy + ky + off[i, g, :, :, 0], ox + kx + off[i, g, :, :, 1]
            cols[i, g * per:(g + 1) * per] = _bilinear(x[i, g * per:(g + 1) * per].astype(np.float64), py, px) * msk[i, g]
    cg, mg = c // group, w.shape[0] // group
    y = np.concatenate([np.einsum("mckl,nckl...->nm...", w[g * mg:(g + 1) * mg], cols[:, g * cg:(g + 1) * cg])
                        for g in range(group)], axis=1)
    if b is not None:
        y = y + b[None, :, None, None]
    return y.astype(x.dtype)


# ---- pooling -----------------------------------------------------------------

def pool_windows(x: np.ndarray, g: PoolGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """Window taps of every output position, stacked on a last axis.

    Returns the tap values (N, C, *out, K) (0 outside the input), masks of
    the taps inside the input and inside input plus padding (*out, K), and the
    taps' spatial offsets in row-major and column-major order (*out, K).
    """
    rank = len(g.spatial)
    grids = np.meshgrid(*[np.arange(o) for o in g.out], indexing="ij")
    values, inside, padded, rows, cols = [], [], [], [], []
    for tap in itertools.product(*[range(k) for k in g.kernel]):
        coords = [grids[d] * g.strides[d] - g.pads_begin[d] + tap[d] * g.dilations[d] for d in range(rank)]
        ok = np.logical_and.reduce([(c >= 0) & (c < n) for c, n in zip(coords, g.spatial)])
        pad_ok = np.logical_and.reduce([(c >= -b) & (c < n + e)
                                        for c, n, b, e in zip(coords, g.spatial, g.pads_begin, g.pads_end)])
        clipped = [np.clip(c, 0, n - 1) for c, n in zip(coords, g.spatial)]
        values.append(np.where(ok, x[(Ellipsis, *clipped)], 0))
        inside.append(ok)
        padded.append(pad_ok)
        rows.append(np.ravel_multi_index(clipped, g.spatial))
        cols.append(np.ravel_multi_index(clipped, g.spatial, order="F"))
    stack = lambda parts: np.stack(parts, axis=-1)  # noqa: E731
    return stack(values), stack(inside), stack(padded), (stack(rows), stack(cols))
