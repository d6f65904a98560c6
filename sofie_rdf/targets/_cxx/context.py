"""What an emitter writes through: the C++ names of one node's tensors, dims and local arrays."""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...ir import TensorType
from ...ir.dims import Dim
from ...ir.dtypes import HALF_TYPES, MINIFLOAT_TYPES, NARROW_INT_RANGES
from .cpp import cpp_type, to_cpp
from .names import string_literal


def cpp_literal(value: Any, dtype: np.dtype) -> str:
    """Exact C++ literal of ``value`` converted to ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "true" if bool(value) else "false"
    if dtype in HALF_TYPES or dtype in MINIFLOAT_TYPES:  # the rounded value is a float exactly: T(float) is exact
        return f"{cpp_type(dtype)}({cpp_literal(np.asarray(value, dtype=dtype).astype(np.float32), np.float32)})"
    if dtype.kind == "f":
        v = float(np.asarray(value, dtype=dtype))
        t = cpp_type(dtype)
        if math.isnan(v):
            return f"std::numeric_limits<{t}>::quiet_NaN()"
        if math.isinf(v):
            return f"{'-' if v < 0 else ''}std::numeric_limits<{t}>::infinity()"
        text = f"{v:.9g}" if dtype == np.float32 else f"{v:.17g}"
        if not any(c in text for c in ".e"):
            text += ".0"
        return text + ("f" if dtype == np.float32 else "")
    if dtype in NARROW_INT_RANGES:
        return f"{cpp_type(dtype)}({int(np.asarray(value).astype(dtype).astype(np.int8))})"
    v = int(np.asarray(value).astype(dtype))
    if dtype.itemsize == 8:
        # Exactly int64_t/uint64_t (long on LP64, not long long), so templates deduce one T.
        if v == -(2**63):
            return "std::numeric_limits<int64_t>::min()"
        return f"INT64_C({v})" if dtype.kind == "i" else f"UINT64_C({v})"
    return str(v)


def node_operands(model: Any, node: Any, value_inputs: Sequence[int], stored: Any,
                  ptr: Callable[[str], str]) -> tuple[list, list, list[str], list[str]]:
    """A node's input and output types and the C++ pointers its code reads them through (``ptr`` of a stored
    tensor, else ``nullptr``).  Value inputs (Reshape's shape, Slice's starts, ...) known at generation time
    were used up then and are not stored at run time, so the operator gets no pointer for them."""
    inputs = [model.tensors[i] if i else None for i in node.inputs]
    outputs = [model.tensors[o] if o else None for o in node.outputs]
    known = [bool(i) and k in value_inputs and model.tensors[i].value is not None for k, i in enumerate(node.inputs)]
    in_ptrs = [ptr(i) if i and i in stored and not known[k] else "nullptr" for k, i in enumerate(node.inputs)]
    out_ptrs = [ptr(o) if o else "nullptr" for o in node.outputs]
    return inputs, outputs, in_ptrs, out_ptrs


class NodeContext:
    """Per-node view of names, dims and arrays for one emitter's ``emit``: ``x(i)``, ``y(i)`` and ``w(k)`` are
    the C++ pointer expressions of input ``i``, output ``i`` and scratch tensor ``k``."""

    def __init__(self, index: int, inputs: list[Optional[TensorType]], outputs: list[TensorType],
                 in_ptrs: list[str], out_ptrs: list[str], dim_names: dict[str, str],
                 work_ptrs: Sequence[str] = (), reservations: Optional[dict[int, str]] = None, where: str = ""):
        self.index = index
        # C++ string literal naming the model and node, for the run-time errors of the node's code
        self.where = string_literal(where)
        self.inputs = inputs
        self.outputs = outputs
        self._in = in_ptrs
        self._out = out_ptrs
        self._work = list(work_ptrs)
        self._dims = dim_names
        self._reservations = reservations or {}
        self.declarations: list[str] = []
        self._labels: set[str] = set()

    def with_inputs(self, inputs: list[Optional[TensorType]]) -> NodeContext:
        """This context seen by one step of a fused node, whose operands are ``inputs`` (same pointers)."""
        step = copy.copy(self)
        step.inputs = inputs
        return step

    def nested(self, inputs: list[Optional[TensorType]], outputs: list[TensorType], in_ptrs: Sequence[str],
               out_ptrs: Sequence[str], work_ptrs: Sequence[str]) -> NodeContext:
        """This context seen by another operator's code written into this node's (another way of computing it,
        on scratch tensors): its own operands and scratch, the same dims and local arrays."""
        inner = copy.copy(self)
        inner.inputs, inner.outputs = inputs, outputs
        inner._in, inner._out, inner._work = list(in_ptrs), list(out_ptrs), list(work_ptrs)
        return inner

    def x(self, i: int) -> str:
        return self._in[i]

    def y(self, i: int) -> str:
        return self._out[i]

    def w(self, k: int) -> str:
        return self._work[k]

    def reserve(self, i: int) -> str:
        """Memory for output ``i`` once the run-time dims sizing it are set ("" when it needs none)."""
        return self._reservations.get(i, "")

    def dim(self, d: Dim) -> str:
        return to_cpp(d, self._dims)

    def ctype(self, dtype: np.dtype) -> str:
        return cpp_type(dtype)

    def literal(self, value: Any, dtype: np.dtype) -> str:
        return cpp_literal(value, dtype)

    def array(self, label: str, values: Sequence[Any], ctype: str = "size_t") -> str:
        """Declare a local constant array; its name ends with ``_``, which no model-derived name does."""
        items = ", ".join(str(int(v)) if isinstance(v, (int, np.integer)) else f"static_cast<{ctype}>({self.dim(v)})"
                          for v in values)
        return self._declare(label, ctype, items, len(values))

    def pointers(self, label: str, pointers: Sequence[str], ctype: str) -> str:
        """Declare a local array of ``const ctype *`` (tensor pointers, e.g. ``ctx.x(i)``)."""
        return self._declare(label, f"{ctype} *const", ", ".join(pointers), len(pointers))

    def _declare(self, label: str, ctype: str, items: str, count: int) -> str:
        name, k = f"{label}_", 2
        while name in self._labels:
            name, k = f"{label}_{k}_", k + 1
        self._labels.add(name)
        self.declarations.append(f"const {ctype} {name}[{'' if count else '1'}] = {{{items or '0'}}};")
        return name
