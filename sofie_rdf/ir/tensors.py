"""Tensor descriptions shared by every stage of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from sympy import Basic

from .dims import Dim, dim_str, is_runtime_dim, is_static, num_elements
from .dtypes import dtype_info
from .info import TensorInfo


@dataclass
class TensorType:
    """What the IR knows about a tensor: element type, shape and maybe its value.

    ``value`` is set when shape inference could compute the contents without
    running the model (initializers, folded constants, shape arithmetic); it may
    hold sympy expressions when the value depends on a symbolic dim, as with
    ``Shape`` of a tensor whose batch dim is open.
    """

    dtype: np.dtype
    shape: tuple  # tuple[Dim, ...]
    value: Optional[np.ndarray] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.dtype = dtype_info(self.dtype).numpy
        self.shape = tuple(self.shape)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> Dim:
        """Number of elements (an int or a dim expression)."""
        return num_elements(self.shape)

    @property
    def is_static(self) -> bool:
        return is_static(self.shape)

    @property
    def value_at_run_time(self) -> bool:
        """A value that is an expression of dims a node computes while running (a Shape after NonZero):
        shape inference uses it, but only the node's code can write it, once those dims are known."""
        return (self.value is not None and self.value.dtype == object
                and any(is_runtime_dim(s) for v in self.value.flat if isinstance(v, Basic) for s in v.free_symbols))

    @property
    def is_constant(self) -> bool:
        """Known numeric value (no symbols), so it can become a weight."""
        return self.value is not None and self.value.dtype != object

    def info(self, name: str) -> TensorInfo:
        return TensorInfo(name, self.dtype, tuple(d if isinstance(d, int) else dim_str(d) for d in self.shape))
