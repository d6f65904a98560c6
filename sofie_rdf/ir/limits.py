"""Size limits that keep a hostile or mistaken model from exhausting memory.

A model file declares its tensor sizes; a weight or an intermediate tensor
of absurd size (a dim of 10^12, a ConstantOfShape of a huge shape) is refused
before anything is allocated, here at load time, instead of failing in
``std::bad_alloc`` or the OOM killer inside an analysis job.  The limit is
per tensor, 4 GiB unless the environment variable
``SOFIE_RDF_MAX_TENSOR_BYTES`` says otherwise.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

DEFAULT_MAX_TENSOR_BYTES = 4 * 2**30
ENV_VAR = "SOFIE_RDF_MAX_TENSOR_BYTES"


def max_tensor_bytes() -> int:
    """The per-tensor limit in bytes (read from the environment on each call, so tests and users can change it)."""
    text = os.environ.get(ENV_VAR, "")
    try:
        return int(text) if text else DEFAULT_MAX_TENSOR_BYTES
    except ValueError:
        raise ValueError(f"{ENV_VAR}={text!r} is not a number of bytes") from None


def tensor_bytes(shape: Iterable[int], dtype: np.dtype) -> float:
    """Bytes of a tensor of static ``shape`` (a float, so that absurd dims cannot overflow)."""
    count = 1.0
    for d in shape:
        count *= float(d)
    return count * np.dtype(dtype).itemsize


def too_large(shape: Iterable[int], dtype: np.dtype) -> bool:
    """Whether a tensor of static ``shape`` exceeds :func:`max_tensor_bytes`."""
    return tensor_bytes(shape, dtype) > max_tensor_bytes()
