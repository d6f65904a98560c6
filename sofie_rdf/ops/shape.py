"""Operators that only reinterpret or describe a tensor: Reshape, Flatten,
Squeeze, Unsqueeze, Identity, Dropout (inference), Shape, Size, Constant and
ConstantOfShape.

The reinterpreting ones are views (no copy, no memory).  A shape or axes
known when the code is generated is used then; one computed at run time is
read by the node's code, which computes the output's dims (run-time dims)
and checks them.  Shape, Size and Constant have values known at generation
time and are folded away, except Shape and Size of a tensor whose dims a
node computes while running.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, as_dim, dims_equal, num_elements, simplify
from ..ir.limits import too_large
from .base import Op, normalize_axis, shape_from_value, sym_array
from .registry import INTERNAL_DOMAIN, register


def never_equal(a: Dim, b: Dim) -> bool:
    """Whether two element counts differ for every size: always for two numbers, and for counts of one
    symbol when no size (a non-negative integer) makes them equal; otherwise the code checks it."""
    difference = sympy.sympify(a - b)
    symbols = difference.free_symbols
    if not symbols:
        return difference != 0
    if len(symbols) > 1:
        return False
    (s,) = symbols
    try:
        sizes = sympy.solveset(difference, s, domain=sympy.S.Reals).intersect(sympy.S.Naturals0)
    except (NotImplementedError, TypeError, ValueError):  # sympy cannot tell: the code checks
        return False
    return sizes is sympy.S.EmptySet


class ViewOp(Op):
    """Output 0 shares input 0's data; subclasses only compute the shape."""

    view = True
    row_wise = True

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the node's code reads a value input while running (it then computes and checks the shape)."""
        return False

    def out_shape(self, inputs: list[Optional[TensorType]]) -> tuple:
        return inputs[0].shape

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        shape = self.out_shape(inputs)
        if not self.at_run_time(inputs) and not dims_equal(num_elements(shape), x.size):  # (run-time dims: the code checks)
            # With symbols the counts may agree only for some sizes (a legacy export baking the traced
            # length into the target): checked when the code runs, refused only when they never agree.
            if never_equal(num_elements(shape), x.size):
                raise self.error(f"cannot view a tensor of shape {x.shape} as {shape}")
            self.require(sympy.Eq(num_elements(shape), x.size), f"cannot view a tensor of shape {x.shape} as {shape}")
        value = None
        if x.value is not None and all(isinstance(d, int) for d in shape):
            value = x.value.reshape([int(d) for d in shape])  # folding a view is a reshape
        return [TensorType(x.dtype, shape, value)]


@register
class Identity(ViewOp):
    op_type = "Identity"


@register
class EquatedDims(ViewOp):
    """Input 0 viewed with some of its dims spelled as the expressions shape inference bound them to.

    An exporter names the particle counts of inputs apart (``n_input_1`` for the charged particles' features,
    ``n_input_4`` for their 4-vectors) where the graph needs them equal (weaver's ParT adds the features' mask
    to the 4-vectors' pair embedding); shape inference then binds one named dim to an expression of the others
    (:func:`~sofie_rdf.ir.dims.equate`) and puts this node (internal domain) between the input and its
    readers.  The input keeps its own dim, so the interface and its fast path are unchanged, and the code
    checks on every call that the two agree.  ``dims`` is a JSON list with, per axis, the ``sympy.srepr`` of
    its new expression; ``reason`` names the node that needed it.
    """

    op_type = "EquatedDims"
    domain = INTERNAL_DOMAIN
    attr_defaults = {"dims": "[]", "reason": ""}

    def infer(self, inputs):
        x = inputs[0]
        dims = tuple(as_dim(sympy.sympify(d)) for d in json.loads(self.attrs["dims"]))
        if len(dims) != x.rank:
            raise self.error(f"{len(dims)} dims given for an input of rank {x.rank}")
        for axis, (declared, bound) in enumerate(zip(x.shape, dims)):
            self.require(sympy.Eq(declared, bound), f"input {self.node.inputs[0]!r} axis {axis} ({declared}) must "
                                                    f"equal {bound}, because {self.attrs['reason']}")
        return [TensorType(x.dtype, dims, x.value)]


@register
class Dropout(ViewOp):
    """Inference dropout: the identity; the optional mask output is all true.

    Training mode (opset 12+ input 2) drops elements at random, which
    inference code cannot reproduce; it is accepted only with ratio 0, where
    it is the identity too.
    """

    op_type = "Dropout"
    # ratio and training_mode decide what the node computes, so they are needed when generating.
    value_inputs = (1, 2)

    def ratio(self, inputs) -> float:
        """The ratio when known (0.5 when omitted)."""
        ratio = self.value_of(inputs, 1, "ratio") if len(inputs) > 1 else None
        return 0.5 if ratio is None else float(np.asarray(ratio).reshape(-1)[0])

    def at_run_time(self, inputs) -> bool:
        """Whether the node's code checks that it is the identity (training_mode or the ratio read while
        running; a training_mode known false needs no check)."""
        if len(inputs) < 3 or inputs[2] is None:
            return False
        training = inputs[2].value
        if training is not None and not bool(np.asarray(training).reshape(-1)[0]):
            return False
        return training is None or (inputs[1] is not None and inputs[1].value is None)

    def infer(self, inputs):
        if len(inputs) > 2 and inputs[2] is not None and not self.at_run_time(inputs):
            training = self.value_of(inputs, 2, "training_mode")
            ratio = self.ratio(inputs)
            if bool(np.asarray(training).reshape(-1)[0]) and ratio != 0:
                raise self.error(f"training_mode=true with ratio {ratio} is not supported: "
                                 "sofie-rdf generates inference code")
        out = super().infer(inputs[:1])
        if len(self.node.outputs) > 1 and self.node.outputs[1]:
            out.append(TensorType(np.bool_, inputs[0].shape))
        return out


@register
class Reshape(ViewOp):
    """Reshape with the target shape as an attribute (opset < 5)."""

    op_type = "Reshape"

    def target(self, inputs) -> tuple:
        return tuple(as_dim(d) for d in self.attrs["shape"])

    def out_shape(self, inputs):
        x = inputs[0]
        target = list(self.target(inputs))
        allow_zero = self.attrs.get("allowzero", 0)
        for i, d in enumerate(target):
            if isinstance(d, int) and d == 0 and not allow_zero:
                if i >= x.rank:
                    raise self.error(f"shape entry {i} is 0 but the input has rank {x.rank}")
                target[i] = x.shape[i]
        holes = [i for i, d in enumerate(target) if isinstance(d, int) and d == -1]
        if len(holes) > 1:
            raise self.error("at most one shape entry may be -1")
        if any(isinstance(d, int) and d < -1 for d in target):
            raise self.error(f"invalid target shape {tuple(target)}")
        if holes:
            known = num_elements([d for i, d in enumerate(target) if i != holes[0]])
            if isinstance(known, int) and known == 0:
                raise self.error("cannot infer -1 when other entries multiply to 0")
            missing = simplify(x.size / known) if not isinstance(x.size, int) or not isinstance(known, int) \
                else (x.size // known if x.size % known == 0 else None)
            if missing is None or (not isinstance(missing, int) and not missing.is_polynomial()):
                raise self.error(f"cannot reshape {x.shape} to {tuple(target)}")
            target[holes[0]] = as_dim(missing)
        return tuple(target)


def value_length(op: Op, t: TensorType, what: str) -> int:
    """Length of a 1-D value computed at run time (a shape, axes): it must be known when generating, as it
    fixes the rank of the output."""
    if t.rank != 1 or not isinstance(t.shape[0], int):
        raise op.error(f"{what} must be a 1-D tensor of known length, got shape {t.shape}")
    return t.shape[0]


def runtime_shape(op: Op, rank: int) -> tuple:
    """``rank`` dims that the node's code computes while running."""
    return tuple(op.runtime_dim(f"dim{i}") for i in range(rank))


@register
class Reshape_5(Reshape):
    """Reshape with the target shape as input 1: read when generating if known, else while running (every
    output dim then a run-time dim, computed and checked by the node's code)."""

    since_version = 5
    value_inputs = (1,)

    def at_run_time(self, inputs) -> bool:
        return inputs[1].value is None

    def target(self, inputs) -> tuple:
        return shape_from_value(self, self.value_of(inputs, 1, "the target shape"))

    def out_shape(self, inputs):
        if self.at_run_time(inputs):
            return runtime_shape(self, value_length(self, inputs[1], "the target shape"))
        return super().out_shape(inputs)


@register
class Flatten(ViewOp):
    op_type = "Flatten"

    def out_shape(self, inputs):
        x = inputs[0]
        axis = self.attrs["axis"]
        axis = axis + x.rank if axis < 0 else axis
        if not 0 <= axis <= x.rank:
            raise self.error(f"axis {self.attrs['axis']} is out of range for rank {x.rank}")
        return (num_elements(x.shape[:axis]), num_elements(x.shape[axis:]))


class _AxesViewOp(ViewOp):
    """Squeeze/Unsqueeze: axes as an attribute (opset < 13) or input 1, read while running when computed at
    run time (every output dim then a run-time dim: which dims are 1 the axes decide)."""

    def at_run_time(self, inputs) -> bool:
        return self.since_version >= 13 and len(inputs) > 1 and inputs[1] is not None and inputs[1].value is None

    def out_rank(self, rank: int, axes: int) -> int:
        """The output rank for ``axes`` axes on an input of rank ``rank``."""
        raise NotImplementedError

    def out_shape(self, inputs):
        if not self.at_run_time(inputs):
            return self.known_shape(inputs)
        n = value_length(self, inputs[1], "axes")
        rank = self.out_rank(inputs[0].rank, n)
        if rank < 0:
            raise self.error(f"{n} axes do not fit an input of rank {inputs[0].rank}")
        return runtime_shape(self, rank)

    def axes(self, inputs) -> Optional[list[int]]:
        if self.since_version >= 13:
            v = self.value_of(inputs, 1, "axes") if len(inputs) > 1 else None
            return None if v is None else [int(a) for a in np.asarray(v).reshape(-1)]
        return self.attrs.get("axes")


@register
class Squeeze(_AxesViewOp):
    op_type = "Squeeze"

    def out_rank(self, rank: int, axes: int) -> int:
        return rank - axes

    def known_shape(self, inputs) -> tuple:
        x = inputs[0]
        axes = self.axes(inputs)
        if axes is None:
            return tuple(d for d in x.shape if not (isinstance(d, int) and d == 1))
        axes = {normalize_axis(self, a, x.rank) for a in axes}
        for a in axes:
            if isinstance(x.shape[a], int) and x.shape[a] != 1:
                raise self.error(f"cannot squeeze axis {a} of size {x.shape[a]}")
        return tuple(d for i, d in enumerate(x.shape) if i not in axes)


@register
class Squeeze_13(Squeeze):
    since_version = 13
    value_inputs = (1,)


@register
class Unsqueeze(_AxesViewOp):
    op_type = "Unsqueeze"

    def out_rank(self, rank: int, axes: int) -> int:
        return rank + axes

    def known_shape(self, inputs) -> tuple:
        x = inputs[0]
        axes = self.axes(inputs)
        if not axes:
            raise self.error("axes must be given")
        rank = x.rank + len(axes)
        axes = sorted(normalize_axis(self, a, rank) for a in axes)
        if len(set(axes)) != len(axes):
            raise self.error(f"repeated axes {axes}")
        dims = list(x.shape)
        for a in axes:
            dims.insert(a, 1)
        return tuple(dims)


@register
class Unsqueeze_13(Unsqueeze):
    since_version = 13
    value_inputs = (1,)


@register
class Shape(Op):
    """The shape as an int64 tensor: known when the code is generated (symbolic with the dims). With a dim
    computed while running, the value (see :attr:`TensorType.value_at_run_time`) still gives later shapes,
    but the node's code writes it wherever it is read as data."""

    op_type = "Shape"

    def dims(self, inputs) -> tuple:
        return inputs[0].shape[slice(self.attrs.get("start", 0), self.attrs.get("end"))]

    def infer(self, inputs):
        dims = self.dims(inputs)
        return [TensorType(np.int64, (len(dims),), sym_array(dims))]

    def evaluate(self, values):
        return [np.array(values[0].shape, dtype=np.int64)[slice(self.attrs.get("start", 0), self.attrs.get("end"))]]


@register
class Constant(Op):
    """A constant tensor given by exactly one ``value*`` attribute."""

    op_type = "Constant"

    def value(self) -> np.ndarray:
        given = {k: v for k, v in self.attrs.items() if k.startswith("value") or k == "sparse_value"}
        if len(given) != 1:
            raise self.error(f"exactly one value attribute is required, got {sorted(given) or 'none'}")
        (key, v), = given.items()
        if key == "value":
            return np.asarray(v)
        if key in ("value_float", "value_floats"):
            return np.asarray(v, dtype=np.float32)
        if key in ("value_int", "value_ints"):
            return np.asarray(v, dtype=np.int64)
        raise self.error(f"attribute {key!r} is not supported (string and sparse constants)")

    def infer(self, inputs):
        v = self.value()
        return [TensorType(v.dtype, v.shape, v)]

    def evaluate(self, values):
        return [self.value()]


@register
class ConstantOfShape(Op):
    """A tensor of the shape given as input filled with ``value`` (float32 0 by default).

    Folded to a constant when the shape is static (the light model zoo builds
    every weight this way); filled at run time when the shape has symbols, or
    when it is computed at run time (each dim then a run-time dim).
    """

    op_type = "ConstantOfShape"
    since_version = 9
    value_inputs = (0,)

    def fill(self) -> np.ndarray:
        v = self.attrs.get("value")
        return np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(1)

    def infer(self, inputs):
        if inputs[0].value is None:
            if inputs[0].rank != 1 or not isinstance(inputs[0].shape[0], int):
                raise self.error(f"shape must be a 1-D tensor of known length, got shape {inputs[0].shape}")
            dims = tuple(self.runtime_dim(f"dim{i}") for i in range(inputs[0].shape[0]))
            return [TensorType(self.fill().dtype, dims)]
        shape = shape_from_value(self, self.value_of(inputs, 0, "shape"))
        v = self.fill()
        static = all(isinstance(d, int) for d in shape)
        # Over the size limit shape inference refuses the node: allocate nothing before that.
        value = np.full(shape, v[0], v.dtype) if static and not too_large(shape, v.dtype) else None
        return [TensorType(v.dtype, shape, value)]

    def evaluate(self, values):
        v = self.fill()
        return [np.full(tuple(int(d) for d in np.asarray(values[0]).reshape(-1)), v[0], v.dtype)]


@register
class Size(Op):
    """The number of elements as an int64 scalar: known when the code is generated (symbolic with the dims;
    with a dim computed while running, written by the node's code as :class:`Shape`'s value is)."""

    op_type = "Size"

    def infer(self, inputs):
        size = inputs[0].size
        return [TensorType(np.int64, (), sym_array([size]).reshape(()))]

    def evaluate(self, values):
        return [np.array(np.asarray(values[0]).size, dtype=np.int64)]
