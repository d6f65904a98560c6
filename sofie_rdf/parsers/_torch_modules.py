"""torch.nn modules given a ``forward`` of our own while the model is exported (set on the instance by
``_torch_lstm.forwards_swapped``, and removed after): an equivalent one of traceable operators where torch.export
cannot trace theirs, or one that checks, naming the module, what our translation of theirs needs.

* ``nn.CrossMapLRN2d(size, alpha, beta, k)``: its forward is a legacy autograd ``Function`` that resizes storages
  in place, which torch.export refuses.  :func:`cross_map_lrn2d` computes what that Function computes (torch 2.13,
  ``torch/nn/modules/_functions.py``), which is not ``nn.LocalResponseNorm``: with ``pre_pad = int((size - 1) / 2
  + 1)``, channel ``c`` sums the squares of channels ``[c - pre_pad + 1, c + pre_pad - 1]`` (cut to the channels
  there are: ``size`` of them for an odd size, ``size - 1`` for an even one), plus channel 0's from channel
  ``pre_pad`` on (the Function's running sum never takes channel 0 out again), then ``x * (k + alpha / size *
  sum) ** -beta``.
* ``nn.FractionalMaxPool2d`` and ``nn.FractionalMaxPool3d`` with ``_random_samples``: the pooling regions are
  fixed per batch row and channel by the samples.  :func:`fractional_max_pool` checks them and runs the module's
  own forward, whose ``aten.fractional_max_pool2d/3d`` ``_torch_decomp`` translates (as it does
  ``F.fractional_max_pool2d/3d`` called with fixed samples in a forward): a gather from constant indices that
  :func:`fixed_windows` computes from the samples' initializer as torch's kernel cuts the regions
  (``generate_intervals`` of ``aten/src/ATen/native/FractionalMaxPool2d.cpp``, in the input's floating type).
  Without samples the module draws new regions at every call, in eval mode too: it is refused, saying how to fix
  them.
"""

from __future__ import annotations

import contextlib
import math
import types
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..errors import ModelFormatError
from ._torch_lstm import forwards_swapped

nn = torch.nn
F = torch.nn.functional


class ModuleRefused(ModelFormatError):
    """Raised from a substituted ``forward`` while exporting; the front end gives its message as the reason."""


def modules_swapped(module: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Each module of ``module`` that torch.export cannot trace computed by its substitute while exporting."""
    refusals: list[ModuleRefused] = []
    substitutes = ((m, _substitute(name, m)) for name, m in module.named_modules())
    return forwards_swapped((m, _refusing_again(forward, refusals)) for m, forward in substitutes if forward is not None)


def _refusing_again(forward: Callable, refusals: list[ModuleRefused]) -> Callable:
    """``forward``, which raises the first refusal again at once once there is one: torch.onnx.export retries a
    failed export with strict torch.export, whose tracer would otherwise print the graph it traced up to there."""

    def refusing(self: nn.Module, x: torch.Tensor) -> Any:
        if refusals:
            raise refusals[0]
        try:
            return forward(x)
        except ModuleRefused as exc:
            refusals.append(exc)
            raise

    return refusing


def _substitute(name: str, m: nn.Module) -> Optional[types.MethodType]:
    """``m``'s substitute forward, or None; ``name`` is its path in the model ("" for the model itself)."""
    if type(m) is nn.CrossMapLRN2d:
        return types.MethodType(lambda self, x: cross_map_lrn2d(x, self.size, self.alpha, self.beta, self.k), m)
    if type(m) in (nn.FractionalMaxPool2d, nn.FractionalMaxPool3d):
        samples = m._random_samples
        # read now: torch.export replaces buffers by fake tensors while it traces
        fixed = None if samples is None else samples.detach().cpu().numpy().copy()
        return types.MethodType(lambda self, x: fractional_max_pool(self, name, x, fixed), m)
    return None


# ---- CrossMapLRN2d --------------------------------------------------------------------------------------------


def cross_map_lrn2d(x: torch.Tensor, size: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    """``nn.CrossMapLRN2d``'s output (see the module docstring for its window), from traceable operators."""
    if x.dim() != 4:
        raise ModuleRefused(f"CrossMapLRN2d: expected input to be 4D, got {x.dim()}D instead")
    pre_pad = int((size - 1) / 2 + 1)
    width = 2 * pre_pad - 1  # channels c - pre_pad + 1 ... c + pre_pad - 1
    squares = x * x
    # the window's sum as nn.LocalResponseNorm takes it: a mean over channels of the zero-padded squares
    padded = F.pad(squares.unsqueeze(1), (0, 0, 0, 0, pre_pad - 1, pre_pad - 1))
    window = F.avg_pool3d(padded, (width, 1, 1), stride=1).squeeze(1) * width
    # channel 0's square, which the Function's running sum keeps from channel pre_pad on
    kept = (torch.arange(x.shape[1], device=x.device) >= pre_pad).to(x.dtype).view(1, -1, 1, 1)
    total = window + squares[:, :1] * kept
    return x * (total * (alpha / size) + k).pow(-beta)


# ---- FractionalMaxPool2d / 3d ---------------------------------------------------------------------------------


def fractional_max_pool(m: nn.Module, name: str, x: torch.Tensor, samples: Optional[np.ndarray]) -> Any:
    """``m``'s own forward, once its samples are there and fit ``x``: its ``aten.fractional_max_pool2d/3d`` is
    translated by ``_torch_decomp.fractional_max_pool``, the regions cut by :func:`fixed_windows` from the samples'
    initializer after the export.  The checks run here too so that a refusal names the module."""
    who = f"{type(m).__name__} {name!r}" if name else type(m).__name__
    pooled = len(m.kernel_size)
    if samples is None:
        raise ModuleRefused(
            f"{who} draws random pooling regions at every call, in eval mode too; to make it deterministic,"
            f" construct it with _random_samples=torch.rand(N, C, {pooled}) (N at least the model's batch size, C its"
            " channels), or set that buffer, and its regions are fixed"
        )
    if x.dim() not in (pooled + 1, pooled + 2):
        raise ModuleRefused(f"{who}: expected a {pooled + 1}-D or {pooled + 2}-D input, got {x.dim()}-D")
    shape = [1] * (x.dim() == pooled + 1) + list(x.shape)
    check_static(who, shape, samples.shape)
    if m.output_size is not None:
        out = [int(s) for s in m.output_size]
    else:
        out = [int(size * ratio) for size, ratio in zip(shape[2:], m.output_ratio)]
    check_samples(who, samples, shape, out, [int(k) for k in m.kernel_size])
    return type(m).forward(m, x)


def check_static(who: str, shape: Sequence[Any], samples_shape: Sequence[Any]) -> None:
    """The regions are computed when exporting, for the input (batched) ``shape``: its dims must be known."""
    if not all(isinstance(d, int) for d in shape):
        raise ModuleRefused(
            f"{who}: the pooling regions are fixed per batch row and channel by _random_samples of shape"
            f" {tuple(samples_shape)}, for input sizes known when exporting; its input {tuple(shape)} has symbolic"
            " dims (export it without dynamic axes on this input)"
        )


def check_samples(who: str, samples: np.ndarray, shape: Sequence[int], out: Sequence[int], kernel: Sequence[int]) -> None:
    """torch's requirements on the samples, the input (batched) ``shape`` and the windows, and samples in [0, 1)."""
    pooled = len(kernel)
    rows, channels = shape[0], shape[1]
    if samples.ndim != 3 or samples.shape[0] < rows or samples.shape[1] != channels or samples.shape[2] != pooled:
        raise ModuleRefused(
            f"{who}: _random_samples of shape {tuple(samples.shape)} do not fit the input of shape {tuple(shape)}:"
            f" torch needs (N, C, {pooled}) with N at least the batch size ({rows}) and C the channels ({channels})"
        )
    if not ((samples >= 0) & (samples < 1)).all():
        raise ModuleRefused(f"{who}: _random_samples must lie in [0, 1), as torch.rand draws them (windows outside the"
                            " input otherwise)")
    _check_fits(who, shape[2:], out, kernel)


def fixed_windows(who: str, samples: np.ndarray, shape: Sequence[int], out: Sequence[int], kernel: Sequence[int]) -> np.ndarray:
    """(N, C, cells * windows): each output cell's window, flat in the plane, for an input of (batched) ``shape``
    after :func:`check_samples`; cut in the samples' floating type, the input's (torch requires them equal)."""
    check_samples(who, samples, shape, out, kernel)
    real = np.float64 if samples.dtype == np.float64 else np.float32
    return _window_indices(samples[:shape[0]], shape[2:], out, kernel, real)


def _check_fits(who: str, plane: Sequence[int], out: Sequence[int], kernel: Sequence[int]) -> None:
    """torch's own checks: 2-D needs ``out + kernel - 1 <= input`` along each axis, 3-D ``< input``."""
    axes = ("height", "width") if len(plane) == 2 else ("time", "height", "width")
    for axis, size, o, k in zip(axes, plane, out, kernel):
        fits = o + k - 1 <= size if len(plane) == 2 else o + k - 1 < size
        if o < 1 or not fits:
            raise ModuleRefused(f"{who}: pool {axis} {k} and output {axis} {o} do not fit input {axis} {size}")


def _intervals(sample: np.ndarray, size: int, out: int, kernel: int, real: type) -> np.ndarray:
    """Window starts along one axis for each plane's sample (any shape (...,)), as ``generate_intervals`` cuts them:
    ``int((i + sample) * alpha) - int(sample * alpha)`` in the input's floating type, the last at ``size - kernel``."""
    sample = sample.astype(real)
    starts = np.empty(sample.shape + (out,), np.int64)
    if out > 1:
        alpha = real(size - kernel) / real(out - 1)
        steps = np.arange(out - 1).astype(real)
        scaled = ((steps + sample[..., None]).astype(real) * alpha).astype(real)
        starts[..., :-1] = scaled.astype(np.int64) - (sample * alpha).astype(real).astype(np.int64)[..., None]
    starts[..., -1] = size - kernel
    return starts


def _window_indices(samples: np.ndarray, plane: Sequence[int], out: Sequence[int], kernel: Sequence[int],
                    real: type) -> np.ndarray:
    """(N, C, prod(out) * prod(kernel)): for each output cell (row-major) the flat plane index of each window element
    (row-major, the kernel's scan order).  The 2-D kernel reads sample 0 for the width and 1 for the height, the 3-D
    one 0, 1, 2 for time, height and width."""
    pooled = len(plane)
    order = (1, 0) if pooled == 2 else (0, 1, 2)
    rows, channels = samples.shape[:2]
    strides = [math.prod(plane[a + 1:]) for a in range(pooled)]
    flat = np.zeros((rows, channels) + tuple(out) + tuple(kernel), np.int64)
    for a in range(pooled):
        starts = _intervals(samples[..., order[a]], plane[a], out[a], kernel[a], real)  # (N, C, out[a])
        along = starts[..., :, None] + np.arange(kernel[a])  # (N, C, out[a], kernel[a])
        shape = [rows, channels] + [1] * (2 * pooled)
        shape[2 + a], shape[2 + pooled + a] = out[a], kernel[a]
        flat += along.reshape(shape) * strides[a]  # the cells' axes first, then the window's
    return flat.reshape(rows, channels, -1)
