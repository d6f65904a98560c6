"""Writing weights in SOFIE's text format: ``<tag> <count>`` then the values.

Floats are printed with enough digits to read back bit-identical (9
significant digits for float32, 17 for float64); inf and nan are spelled so
that ``strtof`` parses them.  16-bit floats are printed as the float32 values
they are exactly, which the reader rounds back to the same bits.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..ir.dtypes import HALF_TYPES


def format_values(values: np.ndarray) -> str:
    flat = np.ascontiguousarray(values).reshape(-1)
    if flat.dtype in HALF_TYPES:
        flat = flat.astype(np.float32)
    if flat.dtype == np.float32:
        return " ".join(f"{v:.9g}" for v in flat.tolist())
    if flat.dtype == np.float64:
        return " ".join(f"{v:.17g}" for v in flat.tolist())
    return " ".join(str(int(v)) for v in flat.tolist())


def write_dat(path: str | os.PathLike, weights: dict[str, np.ndarray]) -> Path:
    """Write ``weights`` (tag -> array, in the order the Session reads them)."""
    text = "".join(f"{tag} {value.size}\n{format_values(value)}\n" for tag, value in weights.items())
    return atomic_write(path, text)


def atomic_write(path: str | os.PathLike, text: str) -> Path:
    """Write a file so that readers never see it half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
