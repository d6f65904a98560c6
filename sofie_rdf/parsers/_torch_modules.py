"""torch.nn modules whose own ``forward`` torch.export cannot trace, computed while the model is exported by an
equivalent ``forward`` of traceable operators (set on the instance, as ``_torch_lstm`` does, and removed after).

* ``nn.CrossMapLRN2d(size, alpha, beta, k)``: its forward is a legacy autograd ``Function`` that resizes storages
  in place, which torch.export refuses.  :func:`cross_map_lrn2d` computes what that Function computes (torch 2.13,
  ``torch/nn/modules/_functions.py``), which is not ``nn.LocalResponseNorm``: with ``pre_pad = int((size - 1) / 2
  + 1)``, channel ``c`` sums the squares of channels ``[c - pre_pad + 1, c + pre_pad - 1]`` (cut to the channels
  there are: ``size`` of them for an odd size, ``size - 1`` for an even one), plus channel 0's from channel
  ``pre_pad`` on (the Function's running sum never takes channel 0 out again), then ``x * (k + alpha / size *
  sum) ** -beta``.
"""

from __future__ import annotations

import contextlib
import types
from typing import Iterator, Optional

import torch

from ..errors import ModelFormatError

nn = torch.nn
F = torch.nn.functional


class ModuleRefused(ModelFormatError):
    """Raised from a substituted ``forward`` while exporting; the front end gives its message as the reason."""


@contextlib.contextmanager
def modules_swapped(module: nn.Module) -> Iterator[None]:
    """Each module of ``module`` that torch.export cannot trace computed by its substitute while exporting."""
    swapped = []
    for name, m in module.named_modules():
        forward = _substitute(name or type(m).__name__, m)
        if forward is not None:
            swapped.append((m, m.__dict__.get("forward")))
            m.forward = forward
    try:
        yield
    finally:
        for m, own in swapped:
            if own is None:
                del m.forward
            else:
                m.forward = own


def _substitute(name: str, m: nn.Module) -> Optional[types.MethodType]:
    if type(m) is nn.CrossMapLRN2d:
        return types.MethodType(lambda self, x: cross_map_lrn2d(x, self.size, self.alpha, self.beta, self.k), m)
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
