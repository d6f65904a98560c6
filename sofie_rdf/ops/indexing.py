"""Operators that read or write a tensor at run-time indices, and index-pattern generators.

Gather, GatherElements, GatherND, ScatterElements (and its opset-9 name
Scatter), ScatterND and OneHot take indices that may be computed at run time (a
kNN's TopK feeding a Gather of neighbour features), so the code checks each
one against its axis and throws instead of reading or writing out of bounds;
negative indices count from the end.  Indices known when the model is loaded
(constants) are checked then, against axes of fixed size, so a model whose code
would throw on every call is refused with the node named.  Trilu and EyeLike write index patterns
(triangles, diagonals) and live here for their kinship with OneHot.

The Elements and ND gathers and scatters differ only in how an index tensor
addresses the data: an *addressing* mixin (:class:`ElementAddressing`,
:class:`SliceAddressing`) supplies that, as a numpy index tuple for the
references (the CPU emitter walks the same offsets), and :class:`GatherOp` /
:class:`ScatterOp` supply the operation.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, dims_equal, num_elements
from ..ir.dtypes import from_onnx
from .base import Op, normalize_axis
from .registry import INTERNAL_DOMAIN, register

INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))

# How ScatterElements and ScatterND combine an update with the value already there, and the numpy ufunc of each.
SCATTER_REDUCTIONS = ("none", "add", "mul", "max", "min")
_REDUCE_NP = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def wrap_indices(op: Op, indices: np.ndarray, n: int) -> np.ndarray:
    """Indices with negatives counted from the end, checked against an axis of size ``n``."""
    indices = np.asarray(indices).astype(np.int64)
    bad = (indices < -n) | (indices >= n)
    if np.any(bad):
        raise op.error(f"index {int(indices[bad].reshape(-1)[0])} is out of range for an axis of size {n}")
    return np.where(indices < 0, indices + n, indices)


def check_indices(op: Op, t: Optional[TensorType], what: str = "indices") -> None:
    if t is None or t.dtype not in INDEX_TYPES:
        raise op.error(f"{what} must be int32 or int64, got {None if t is None else t.dtype}")


def check_constant_indices(op: Op, indices: TensorType, size: Dim, what: str) -> None:
    """Refuse, when the model is loaded, index values known then (constants) that fall outside an axis of
    fixed ``size``: the code would throw on every call.  Indices computed while running, and axes whose size
    is a symbol, are checked by the code itself (``kernels/indexing.hxx``, naming the node)."""
    value = indices.value
    if value is None or not isinstance(size, int) or value.dtype.kind not in "iu" or value.size == 0:
        return
    bad = (value < -size) | (value >= size)
    if np.any(bad):
        first = np.argwhere(bad)[0]
        raise op.error(f"{what}: the constant index {int(value[tuple(first)])} at {tuple(int(i) for i in first)} is "
                       f"out of range for an axis of size {size} (valid: {-size} to {size - 1})")


def require_same_dim(op: Op, a: Dim, b: Dim, what: str) -> None:
    """``a == b``: checked now when both are fixed, else recorded as a run-time constraint."""
    if not dims_equal(a, b):
        op.require(sympy.false if isinstance(a, int) and isinstance(b, int) else sympy.Eq(a, b),
                   f"{what}: {a} != {b}")


@register
class Gather(Op):
    """y = data indexed along ``axis`` by ``indices`` (any rank): shape data[:axis] + indices + data[axis+1:]."""

    op_type = "Gather"

    def rows_independent(self, inputs: list[Optional[TensorType]]) -> bool:
        """Rows of indices pick from data read whole (an embedding table), or data's rows pick along
        another axis; data's rows picked by index along the leading dim would move rows."""
        data = inputs[0]
        return isinstance(data.shape[0], int) or normalize_axis(self, self.attrs["axis"], data.rank) != 0

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        data, indices = inputs[0], inputs[1]
        check_indices(self, indices)
        if data.rank == 0:
            raise self.error("data must have rank >= 1")
        axis = normalize_axis(self, self.attrs["axis"], data.rank)
        check_constant_indices(self, indices, data.shape[axis], f"indices along axis {axis}")
        return [TensorType(data.dtype, data.shape[:axis] + indices.shape + data.shape[axis + 1:])]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        data, indices = values[0], values[1]
        axis = normalize_axis(self, self.attrs["axis"], data.ndim)
        return [np.take(data, wrap_indices(self, indices, data.shape[axis]), axis=axis)]


# ---- addressing: how an index tensor maps to places in the data --------------------------

class Addressing(Op):
    """How an index tensor (input 1) addresses the data (input 0): what gathers and scatters share."""

    def check(self, data: TensorType, indices: TensorType) -> None:
        """Raise for indices that cannot address data (types, ranks, fixed dims)."""
        raise NotImplementedError

    def addressed_shape(self, data: TensorType, indices: TensorType) -> tuple:
        """Shape of what the indices address (data[index]): a gather's output, a scatter's updates."""
        raise NotImplementedError

    def index(self, data_shape: tuple, indices: np.ndarray) -> tuple:
        """Numpy index tuple: data[index] has :meth:`addressed_shape` (for the references)."""
        raise NotImplementedError


class ElementAddressing(Addressing):
    """Indices of the data's rank, one element each: the index value replaces the coordinate along ``axis``."""

    def axis(self, data: TensorType) -> int:
        return normalize_axis(self, self.attrs["axis"], data.rank)

    def check(self, data: TensorType, indices: TensorType) -> None:
        check_indices(self, indices)
        if data.rank == 0 or indices.rank != data.rank:
            raise self.error(f"indices (rank {indices.rank}) must have the rank of data (rank {data.rank}, >= 1)")
        axis = self.axis(data)
        for r, (i, d) in enumerate(zip(indices.shape, data.shape)):
            if isinstance(i, int) and isinstance(d, int) and i > d and r != axis:
                raise self.error(f"indices dim {r} ({i}) exceeds the data dim ({d})")
        check_constant_indices(self, indices, data.shape[axis], f"indices along axis {axis}")

    def addressed_shape(self, data: TensorType, indices: TensorType) -> tuple:
        return indices.shape

    def index(self, data_shape: tuple, indices: np.ndarray) -> tuple:
        axis = normalize_axis(self, self.attrs["axis"], len(data_shape))
        grid = list(np.indices(indices.shape, sparse=True))
        grid[axis] = wrap_indices(self, indices, data_shape[axis])
        return tuple(grid)


class SliceAddressing(Addressing):
    """Indices (batch..., tuples..., k): each k-tuple addresses the slice data[batch][i_0, ..., i_{k-1}]."""

    def batch_dims(self) -> int:
        return self.attrs.get("batch_dims", 0)

    def check(self, data: TensorType, indices: TensorType) -> None:
        check_indices(self, indices)
        b = self.batch_dims()
        if indices.rank < 1 or not 0 <= b < min(data.rank, indices.rank):
            raise self.error(f"batch_dims {b} must be in [0, min(data rank {data.rank}, indices rank {indices.rank}))")
        k = indices.shape[-1]
        if not isinstance(k, int) or not 1 <= k <= data.rank - b:
            raise self.error(f"the last indices dim ({k}) must be fixed, in [1, {data.rank - b}]")
        for r in range(b):
            require_same_dim(self, indices.shape[r], data.shape[r], f"batch dim {r} of indices and data")
        if indices.value is not None:
            for j in range(k):
                component = TensorType(indices.dtype, indices.shape[:-1], indices.value[..., j])
                check_constant_indices(self, component, data.shape[b + j], f"index component {j}")

    def addressed_shape(self, data: TensorType, indices: TensorType) -> tuple:
        return indices.shape[:-1] + data.shape[self.batch_dims() + indices.shape[-1]:]

    def index(self, data_shape: tuple, indices: np.ndarray) -> tuple:
        b = self.batch_dims()
        batch = tuple(np.indices(indices.shape[:-1], sparse=True))[:b]
        return batch + tuple(wrap_indices(self, indices[..., j], data_shape[b + j]) for j in range(indices.shape[-1]))


# ---- operations: gather and scatter over an addressing -----------------------------------

class GatherOp(Addressing):
    """y = data[index]: the addressed elements or slices, in index order."""

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        data, indices = inputs[0], inputs[1]
        self.check(data, indices)
        return [TensorType(data.dtype, self.addressed_shape(data, indices))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        data, indices = values[0], values[1]
        return [data[self.index(data.shape, indices)]]


class ScatterOp(Addressing):
    """y = data with updates written (or reduced with ``reduction``) at the addressed places, in index order.
    Data is copied whole before any update is written: the output may take over its memory."""

    inplace_inputs = (0,)

    def reduction(self) -> str:
        reduction = self.attrs.get("reduction", "none")
        if reduction not in SCATTER_REDUCTIONS:
            raise self.error(f"reduction {reduction!r} is not one of {', '.join(SCATTER_REDUCTIONS)}")
        return reduction

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        data, indices, updates = inputs[0], inputs[1], inputs[2]
        self.check(data, indices)
        self.reduction()
        if updates.dtype != data.dtype:
            raise self.error(f"updates ({updates.dtype}) must have the type of data ({data.dtype})")
        shape = self.addressed_shape(data, indices)
        if updates.rank != len(shape):
            raise self.error(f"updates have shape {updates.shape}, the indices address {shape}")
        for u, s in zip(updates.shape, shape):
            require_same_dim(self, u, s, f"updates shape {updates.shape} against the addressed {shape}")
        return [TensorType(data.dtype, data.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        data, indices, updates = values[0], values[1], values[2]
        # shape arithmetic: ``size[dim] = n`` with n a symbol writes it into an object array
        out = data.astype(object) if updates.dtype == object else data.copy()
        index = self.index(data.shape, indices)
        if self.reduction() == "none":
            out[index] = updates
        else:
            _REDUCE_NP[self.reduction()].at(out, index, updates)
        return [out]


@register
class GatherElements(ElementAddressing, GatherOp):
    op_type = "GatherElements"
    since_version = 11


@register
class GatherND(SliceAddressing, GatherOp):
    op_type = "GatherND"
    since_version = 11


@register
class ScatterElements(ElementAddressing, ScatterOp):
    op_type = "ScatterElements"
    since_version = 11


@register
class Scatter(ScatterElements):
    """Opset 9-10 name of ScatterElements (no reduction)."""

    op_type = "Scatter"
    since_version = 9


@register
class ScatterND(SliceAddressing, ScatterOp):
    op_type = "ScatterND"
    since_version = 11


@register
class GridScatterND(ScatterND):
    """ScatterND whose index tuples form a broadcast grid, as ``torch.onnx.export`` writes ``x[:, :, i, j] = v``
    (``index_put``): inputs (data, updates, c_0, ..., c_{k-1}); value j of the tuple at coordinate t of the
    tuples' shape T (the leading dims of updates) is c_j broadcast to T.  ScatterND reads the same tuples from a
    (T..., k) tensor that Unsqueeze, Expand and Concat build first (passes/index_grids.py makes this node), which
    for particle transformers' pair features is four times the size of the updates and costs more than the
    scatter."""

    op_type = "GridScatterND"
    domain = INTERNAL_DOMAIN
    since_version = 1

    def tuples_shape(self, data: TensorType, updates: TensorType, k: int) -> tuple:
        """T: updates without the slice each tuple addresses (data's dims after the k indexed ones)."""
        if not 1 <= k <= data.rank or updates.rank < data.rank - k:
            raise self.error(f"{k} index components cannot address data of rank {data.rank} with updates of rank "
                             f"{updates.rank}")
        return updates.shape[:updates.rank - (data.rank - k)]

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        data, updates, components = inputs[0], inputs[1], inputs[2:]
        tuples = self.tuples_shape(data, updates, len(components))
        for j, c in enumerate(components):
            check_indices(self, c, f"index component {j}")
            if c.dtype != components[0].dtype:
                raise self.error(f"index component {j} is {c.dtype}, component 0 {components[0].dtype}")
            if not broadcasts_to(c.shape, tuples):
                raise self.error(f"index component {j} of shape {c.shape} does not broadcast to the tuples' {tuples}")
            check_constant_indices(self, c, data.shape[j], f"index component {j}")
        indices = TensorType(components[0].dtype, tuples + (len(components),))
        return super().infer([data, indices, updates])

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        data, updates, components = values[0], values[1], values[2:]
        tuples = updates.shape[:updates.ndim - (data.ndim - len(components))]
        indices = np.stack([np.broadcast_to(c, tuples) for c in components], axis=-1)
        return super().evaluate([data, indices, updates])


def broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether ``shape`` broadcasts to ``target`` as numpy aligns them (from the right), every dim being 1 or
    the target's (symbolic dims compared as expressions)."""
    return len(shape) <= len(target) and all(
        (isinstance(d, int) and d == 1) or dims_equal(d, t) for d, t in zip(shape[::-1], target[::-1]))


# ---- index patterns ---------------------------------------------------------------------

@register
class OneHot(Op):
    """y = values[1] where the depth coordinate (inserted at ``axis``) equals the index, values[0] elsewhere."""

    op_type = "OneHot"
    since_version = 9
    value_inputs = (1,)

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the depth is read while running (the depth dim of the output then a run-time dim)."""
        return inputs[1].value is None

    def depth(self, inputs: list[Optional[TensorType]]) -> Dim:
        if self.at_run_time(inputs):
            if num_elements(inputs[1].shape) != 1:
                raise self.error(f"depth must be one value, got shape {inputs[1].shape}")
            return self.runtime_dim("depth")
        depth = self.value_of(inputs, 1, "depth").reshape(-1)
        if depth.size != 1 or int(depth[0]) < 1:
            raise self.error(f"depth must be one value >= 1, got {depth.tolist()}")
        return int(depth[0])

    def axis(self, indices_rank: int) -> int:
        return normalize_axis(self, self.attrs["axis"], indices_rank + 1)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        indices, values = inputs[0], inputs[2]
        if indices.dtype == np.bool_:
            raise self.error("indices must be numeric, got bool")
        if values.rank != 1 or (isinstance(values.shape[0], int) and values.shape[0] != 2):
            raise self.error(f"values must be [off_value, on_value], got shape {values.shape}")
        axis = self.axis(indices.rank)
        return [TensorType(values.dtype, indices.shape[:axis] + (self.depth(inputs),) + indices.shape[axis:])]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        indices, on_off = values[0].astype(np.int64), values[2]
        depth = int(np.asarray(values[1]).reshape(-1)[0])
        indices = np.where(indices < 0, indices + depth, indices)  # still outside [0, depth) when out of range
        hot = np.moveaxis(indices[..., None] == np.arange(depth), -1, self.axis(indices.ndim))
        return [np.where(hot, on_off[1], on_off[0]).astype(on_off.dtype)]


@register
class Trilu(Op):
    """The upper (``upper``=1) or lower triangle of the last two dims, above/below diagonal k (input 1, run time)."""

    op_type = "Trilu"
    since_version = 14

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x, k = inputs[0], inputs[1] if len(inputs) > 1 else None
        if x.rank < 2:
            raise self.error(f"input must have rank >= 2, got {x.rank}")
        if k is not None and (k.dtype != np.int64 or num_elements(k.shape) != 1):
            raise self.error(f"k must be one int64 value, got {k.dtype} of shape {k.shape}")
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        k = int(values[1].reshape(-1)[0]) if len(values) > 1 and values[1] is not None else 0
        return [(np.triu if self.attrs["upper"] else np.tril)(values[0], k)]


@register
class EyeLike(Op):
    """A matrix of the input's (2-D) shape with ones on diagonal ``k``, of type ``dtype`` (default: the input's)."""

    op_type = "EyeLike"
    since_version = 9

    def dtype(self, input_dtype: np.dtype) -> np.dtype:
        return from_onnx(self.attrs["dtype"]) if self.attrs.get("dtype") is not None else input_dtype

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.rank != 2:
            raise self.error(f"input must have rank 2, got {x.rank}")
        return [TensorType(self.dtype(x.dtype), x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        return [np.eye(*x.shape, k=self.attrs["k"], dtype=self.dtype(x.dtype))]
