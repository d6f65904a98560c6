"""How far a model compiled with its weights stored smaller (``sr.compile(model, weights="bf16")``) moves from the
float32 model: both run on one sample, the largest absolute and relative deviation of every output reported.

The report travels with the Session (``sess.precision_report``) and prints as one line per output, so that the
choice of a smaller type is made knowing what it costs on the user's own inputs (or random normal ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .errors import SofieError

# Every open dim of a random sample, and the seed it is drawn with.
SAMPLE_DIM = 16
SAMPLE_SEED = 0


@dataclass(frozen=True)
class OutputDeviation:
    """One output's largest deviation from the float32 model: absolute, and relative to the output's largest
    magnitude."""

    name: str
    max_abs: float
    max_rel: float


@dataclass(frozen=True)
class PrecisionReport:
    """What storing the weights as ``dtype`` changed, on a sample of ``rows`` leading rows (random or given)."""

    dtype: str
    sample: str
    outputs: tuple[OutputDeviation, ...]

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((o.max_rel for o in self.outputs), default=0.0)

    def __str__(self) -> str:
        lines = [f"weights stored as {self.dtype}: largest deviation from float32 on {self.sample}"]
        lines += [f"  {o.name}: {o.max_abs:.3g} absolute, {o.max_rel:.3g} of the output's largest magnitude"
                  for o in self.outputs]
        return "\n".join(lines)


def random_sample(sess: Any) -> tuple[list[np.ndarray], str]:
    """Standard normal inputs of every input's shape, open dims :data:`SAMPLE_DIM` (float inputs only)."""
    rng = np.random.default_rng(SAMPLE_SEED)
    arrays = []
    for info in sess.inputs:
        if np.dtype(info.dtype).kind != "f":
            raise SofieError(f"model {sess.name!r}: input {info.name!r} is {info.dtype}: pass sample= to measure the "
                             "deviation of smaller weights")
        shape = tuple(d if isinstance(d, int) else SAMPLE_DIM for d in info.shape)
        arrays.append(rng.standard_normal(shape).astype(info.dtype))
    return arrays, f"random normal inputs (open dims {SAMPLE_DIM}, seed {SAMPLE_SEED})"


def deviation(name: str, got: np.ndarray, reference: np.ndarray) -> OutputDeviation:
    diff = np.abs(got.astype(np.float64) - reference.astype(np.float64))
    top = float(np.abs(reference).max()) if reference.size else 0.0
    worst = float(diff.max()) if diff.size else 0.0
    return OutputDeviation(name, worst, worst / top if top > 0 else worst)


def compare_precision(reduced: Any, reference: Any, dtype: str, sample: Optional[Any]) -> Any:
    """``reduced`` (the Session with smaller weights), its :class:`PrecisionReport` against ``reference``'s float32
    outputs on ``sample`` (the inputs ``infer`` takes; None: random) attached as ``precision_report``."""
    if sample is None:
        arrays, label = random_sample(reduced)
    else:
        arrays = list(sample) if isinstance(sample, (tuple, list)) else [sample]
        label = "the sample given"
    outputs = [reduced.infer(*arrays), reference.infer(*arrays)]
    got, want = ([o] if not isinstance(o, tuple) else list(o) for o in outputs)
    reduced.precision_report = PrecisionReport(dtype, label, tuple(
        deviation(info.name, g, w) for info, g, w in zip(reduced.outputs, got, want)))
    return reduced
