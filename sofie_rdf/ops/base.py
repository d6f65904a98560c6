"""Base classes operators derive from.

An operator owns its meaning: :meth:`Op.infer` computes output types and
shapes, :meth:`Op.evaluate` is the numpy reference used to fold constants, and
class traits tell the passes and the planner what they may do with a node
(``view``, ``value_inputs``, ``row_wise``, ``inplace_inputs``, :meth:`Op.workspace`).
How a machine computes it is a target's: ``targets/cpu/emitters/`` for the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Sequence

import numpy as np
import sympy

from ..errors import NeedsDimsError, ShapeError
from ..ir import Node, TensorType
from ..ir.dims import RUNTIME_DIM_MARK, Dim, as_dim, dims_equal, equate, simplify


@dataclass(frozen=True)
class Constraint:
    """A condition on symbolic dims (``N == 1``, ``L >= 4``) and what breaks without it."""

    condition: sympy.Basic
    message: str


class Op:
    """One operator implementation (a version range of one ONNX op type)."""

    op_type: ClassVar[str] = ""
    domain: ClassVar[str] = ""
    since_version: ClassVar[int] = 1
    # Extra attribute defaults for ops that have no ONNX schema.
    attr_defaults: ClassVar[dict[str, Any]] = {}
    # Output 0 is input 0 reinterpreted (Reshape, Flatten, ...): no code, no memory.
    view: ClassVar[bool] = False
    # Inputs whose values (not just shapes) shape inference needs, e.g. Reshape's shape; when such a
    # value is not known the op either refuses (value_of) or reads it at run time (runtime_dim).
    value_inputs: ClassVar[tuple[int, ...]] = ()
    # Rows of the leading dim computed independently (see rows_independent): element-wise ops, products
    # with a right-hand side read whole, convolutions and pooling over a batch, reductions and slices
    # (whose work on the leading dim itself the shapes give away).
    row_wise: ClassVar[bool] = False
    # Inputs whose memory the output may take over (planning/memory.py): element i is read before output
    # element i is written (and by no other element), so an input that dies at this node can hold the output.
    inplace_inputs: ClassVar[tuple[int, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.view, bool):  # a method named `view` would silently make the op a no-code view
            raise TypeError(f"{cls.__name__}.view must stay a bool flag")

    def __init__(self, node: Node, model: str = ""):
        self.node = node
        self.attrs = node.attrs
        self.model = model
        # Conditions on symbolic dims this node's code relies on (checked when infer is called).
        self.constraints: list[Constraint] = []
        # Dims whose value this node's code computes (see runtime_dim).
        self.defined_dims: list[sympy.Symbol] = []

    # ---- helpers -----------------------------------------------------------
    def error(self, message: str) -> ShapeError:
        """A :class:`ShapeError` naming the model and node."""
        return ShapeError(f"model {self.model!r}: {self.node}: {message}")

    def require(self, condition: sympy.Basic, what: str) -> None:
        """Record that the generated code is only right when ``condition`` holds at run time."""
        if condition is sympy.true:
            return
        if condition is sympy.false:
            raise self.error(what)
        self.constraints.append(Constraint(condition, f"{self.node}: {what}"))

    def runtime_dim(self, label: str) -> sympy.Symbol:
        """A dim only this node's code knows, when it runs (how many elements NonZero finds, ...).

        Tensors sized by it get memory when their size is known, growing only
        past the largest size seen; the emitted code must assign it
        (``ctx.dim(symbol) = ...;``) and then call ``ctx.reserve(i)`` for each
        output it sizes, before writing them.
        """
        d = sympy.Symbol(f"{self.node.outputs[0]}{RUNTIME_DIM_MARK}{label}", integer=True, nonnegative=True)
        self.defined_dims.append(d)
        return d

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def value_of(self, inputs: list[Optional[TensorType]], i: int, what: str) -> Optional[np.ndarray]:
        """Value of input ``i`` that shape inference needs; None when omitted."""
        t = inputs[i] if i < len(inputs) else None
        if t is None:
            return None
        if t.value is None:
            raise NeedsDimsError(f"model {self.model!r}: {self.node}: {what} (input {i}) must be known when the code "
                                 "is generated, but it is computed at run time", input=i)
        return t.value

    # ---- the operator contract ---------------------------------------------
    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        """Output types; ``inputs`` has None for omitted optional inputs."""
        raise NotImplementedError

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        """Numpy reference (constant folding); NotImplementedError if absent."""
        raise NotImplementedError

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """Scratch tensors the operator's algorithm needs whatever the machine (a target's emitter may add its
        own); planned in the arena, live for this node only."""
        return []

    def flops(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> Optional[sympy.Expr]:
        """Floating-point operations of one run (a multiply-add counts two), for the profiler's GFLOP/s;
        None where FLOPs say little about the work (data movement, element-wise operators)."""
        return None

    def runtime_inputs(self, tensors: dict[str, TensorType]) -> list[str]:
        """Inputs whose data the node's code reads: all but the value inputs known when generating (a value
        input an operator can also take at run time, like TopK's K, is read when it is not known)."""
        return [name for i, name in enumerate(self.node.inputs)
                if name and not (i in self.value_inputs and tensors[name].value is not None)]

    def rows_independent(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether output row i (index i of the leading dim) comes from row i of the inputs that have that
        dim and from the other inputs whole, so that any block of rows can run on its own
        (planning/row_blocks.py, which has checked that the leading dim leads every computed tensor and
        appears nowhere else in their shapes).  ``row_wise`` unless an op's attributes decide."""
        return self.row_wise


# ---- shape helpers shared by operators ------------------------------------

def normalize_axis(op: Op, axis: int, rank: int) -> int:
    """Axis in [0, rank); negative axes count from the end."""
    if not -rank <= axis < max(rank, 1):
        raise op.error(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def broadcast_shapes(op: Op, *shapes: tuple) -> tuple:
    """Numpy (multidirectional) broadcasting of shapes that may hold symbols."""
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0]
        result: Dim = 1
        for d in dims:
            if isinstance(d, int) and d == 1:
                continue
            if isinstance(result, int) and result == 1:
                result = d
            elif not dims_equal(result, d):
                if isinstance(result, int) and not isinstance(d, int):
                    op.require(sympy.Eq(d, 1), f"dim {d} is broadcast against {result}, so it must be 1")
                    continue
                if isinstance(d, int) and not isinstance(result, int):
                    op.require(sympy.Eq(result, 1), f"dim {result} is broadcast against {d}, so it must be 1")
                    result = d
                    continue
                if equate(result, d, f"{op.node} broadcasts {result} against {d}"):
                    continue  # shape inference starts again with the input dim bound
                raise op.error(f"shapes {' and '.join(str(s) for s in shapes)} cannot be broadcast")
        out.append(result)
    return tuple(out)


def contiguous_strides(shape: Sequence[Dim]) -> list[Dim]:
    """Row-major element strides."""
    strides: list[Dim] = []
    acc: Dim = 1
    for d in reversed(shape):
        strides.append(acc)
        acc = simplify(acc * d)
    return strides[::-1]


def broadcast_strides(shape: Sequence[Dim], out_shape: Sequence[Dim]) -> list[Dim]:
    """Strides reading ``shape`` as if broadcast to ``out_shape`` (0 on size-1 dims).

    A symbolic dim facing a fixed size is broadcast too: :func:`broadcast_shapes`
    only lets that pass when the symbol is 1 at run time.
    """
    pad = len(out_shape) - len(shape)
    own = contiguous_strides(shape)
    strides: list[Dim] = [0] * pad
    for d, o, s in zip(shape, out_shape[pad:], own):
        one_to_many = (isinstance(d, int) and d == 1) or (not isinstance(d, int) and isinstance(o, int))
        strides.append(0 if one_to_many and not (isinstance(o, int) and o == 1) else s)
    return strides


def coalesce(shape: Sequence[Dim], *strides: Sequence[Dim], symbolic: bool = False) -> tuple[list[Dim], list[list[Dim]]]:
    """Merge adjacent dims that every operand walks contiguously (fewer loop levels).  Known dims only by
    default; ``symbolic`` merges symbolic ones too (a batched product's batch dims, one strided call for all)."""
    if not shape:
        return [], [[] for _ in strides]
    out_shape = [shape[0]]
    out_strides = [[s[0]] for s in strides]
    for i in range(1, len(shape)):
        if symbolic:
            mergeable = all(dims_equal(s[i - 1], simplify(s[i] * shape[i])) for s in strides)
        else:
            mergeable = isinstance(out_shape[-1], int) and all(
                isinstance(s[i - 1], int) and isinstance(s[i], int) and isinstance(shape[i], int)
                and s[i - 1] == s[i] * shape[i]
                for s in strides
            )
        if mergeable:
            out_shape[-1] = simplify(out_shape[-1] * shape[i]) if symbolic else out_shape[-1] * shape[i]
            for acc, s in zip(out_strides, strides):
                acc[-1] = s[i]
        else:
            out_shape.append(shape[i])
            for acc, s in zip(out_strides, strides):
                acc.append(s[i])
    return out_shape, out_strides


def ceil_div(value: Dim, divisor: int) -> Dim:
    """ceil(value / divisor); sympy's ceiling for a symbolic value, which C++ computes without negatives
    (``-(-v // d)`` would print as a floor of a negative, wrong in unsigned arithmetic)."""
    return -(-value // divisor) if isinstance(value, int) else as_dim(sympy.ceiling(value / divisor))


def at_least_zero(value: Dim) -> Dim:
    """max(0, value) for a size that may be symbolic (a spatial length known only when the code runs)."""
    return max(0, value) if isinstance(value, int) else as_dim(sympy.Max(0, value))


def static_size(shape: Sequence[Dim]) -> Optional[int]:
    """Element count when every dim is an int, else None."""
    return math.prod(shape) if all(isinstance(d, int) for d in shape) else None


def shape_from_value(op: Op, value: np.ndarray) -> tuple:
    """A shape given as a tensor value (ints or symbolic entries)."""
    return tuple(as_dim(v) for v in np.asarray(value).reshape(-1).tolist())


def sym_array(shape: Sequence[Dim]) -> np.ndarray:
    """A 1-D int64 value holding a shape (object dtype when it has symbols)."""
    if all(isinstance(d, int) for d in shape):
        return np.array(shape, dtype=np.int64)
    return np.array([d if isinstance(d, sympy.Expr) else sympy.Integer(d) for d in shape], dtype=object)


# Symbolic values are only computed for small tensors (shape arithmetic).
MAX_SYMBOLIC_VALUE = 64


def fold_values(op: Op, inputs: list, outputs: list) -> None:
    """Set the outputs' values where every input's value is known (constant subgraphs, shape arithmetic):
    shape inference's folding, and that of the nodes inside a control-flow body."""
    if all(t.value is not None for t in outputs) or not outputs:
        return
    present = [t for t in inputs if t is not None]
    if not present or any(t.value is None for t in present):
        return
    symbolic = any(not t.is_constant for t in present)
    if symbolic and any(not isinstance(t.size, int) or t.size > MAX_SYMBOLIC_VALUE for t in outputs):
        return
    try:
        values = op.evaluate([t.value if t is not None else None for t in inputs])
    except NotImplementedError:
        return
    except (TypeError, ValueError, AttributeError):
        if symbolic:
            return
        raise
    for t, v in zip(outputs, values):
        v = np.asarray(v)
        if v.dtype != object or _only_numbers(v):  # shape arithmetic whose dims were all fixed: a constant
            v = v.astype(t.dtype, copy=False)
        if tuple(v.shape) != tuple(t.shape):
            raise op.error(f"folded value has shape {v.shape}, inferred {t.shape}")
        t.value = v


def _only_numbers(v: np.ndarray) -> bool:
    """Whether an object array (a value of shape arithmetic) holds numbers alone, no symbol: the head size a
    traced ``x.shape[-1] // heads`` computes from a fixed dim, which later nodes (Cast, Pow) then fold too."""
    return all(not e.free_symbols if hasattr(e, "free_symbols") else isinstance(e, (int, float, np.number))
               for e in v.flat)
