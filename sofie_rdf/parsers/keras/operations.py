"""Bare ``keras.ops`` calls in a functional graph (``keras.ops.exp(x)``, ``x * 2``, ``x[:, 0]``, ...).

Keras 3 records each such call as an operation node (``keras.src.ops.numpy.Exp``
and so on), registered here as ``ops.<ClassName>``.  The same nodes compute
the masks Keras attaches to tensors (``Masking``: ``any(not_equal(x, v))``,
``Embedding(mask_zero=True)``: ``not_equal(ids, 0)``), so masks are converted
by these converters too.

Operands that are not Keras tensors (Python numbers, numpy arrays) become
constants.  Arithmetic runs in the dtype Keras gives the result (an integer
tensor times ``0.5`` is float32); comparisons in the dtype Keras promotes
their operands to; logical operators on booleans.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .builder import GraphBuilder, Tensor, axis_of, cast
from .core import ACTIVATIONS
from .registry import converts

# Slice ends meaning "to the end" and, stepping backwards, "through index 0".
_TO_END, _BEFORE_START = np.iinfo(np.int64).max, np.iinfo(np.int64).min

_UNARY = {
    "Exp": "Exp",
    "Log": "Log",
    "Sqrt": "Sqrt",
    "Abs": "Abs",
    "Absolute": "Abs",
    "Negative": "Neg",
    "Tanh": "Tanh",
    "Sin": "Sin",
    "Cos": "Cos",
    "Floor": "Floor",
    "Ceil": "Ceil",
    "Sign": "Sign",
    "Reciprocal": "Reciprocal",
    "LogicalNot": "Not",
    "Sigmoid": "Sigmoid",
    "Relu": "Relu",
    "Erf": "Erf",
    "Softplus": "Softplus",
    "Round": "Round",
}
_ARITHMETIC = {
    "Add": "Add",
    "Subtract": "Sub",
    "Multiply": "Mul",
    "Divide": "Div",
    "TrueDivide": "Div",
    "Power": "Pow",
    "Maximum": "Max",
    "Minimum": "Min",
    "Matmul": "MatMul",
}
_COMPARISONS = {
    "Equal": "Equal",
    "Greater": "Greater",
    "GreaterEqual": "GreaterOrEqual",
    "Less": "Less",
    "LessEqual": "LessOrEqual",
}
_LOGICAL = {"LogicalAnd": "And", "LogicalOr": "Or", "LogicalXor": "Xor"}
_REDUCTIONS = {"Sum": "ReduceSum", "Mean": "ReduceMean", "Max": "ReduceMax", "Min": "ReduceMin", "Prod": "ReduceProd"}


class Operands:
    """The arguments of one operation call: Keras tensors by their IR names, anything else as a constant."""

    def __init__(self, b: GraphBuilder, inputs: list[Tensor], call: Any):
        self.b = b
        self.names = {id(t): i.name for t, i in zip(call.input_tensors, inputs)}
        self.dtypes = {id(t): str(t.dtype) for t in call.input_tensors}
        self.args = list(call.arguments.args)

    def is_tensor(self, value: Any) -> bool:
        return id(value) in self.names

    def dtype(self, value: Any) -> Any:
        """A Keras tensor's dtype; a Python number's type (Keras promotes them weakly); an array's dtype."""
        if self.is_tensor(value):
            return self.dtypes[id(value)]
        return type(value) if isinstance(value, (bool, int, float)) else np.asarray(value).dtype.name

    def get(self, value: Any, dtype: Any) -> str:
        """``value`` in ``dtype``: a tensor cast where needed, or a constant."""
        if self.is_tensor(value):
            return cast(self.b, self.names[id(value)], self.dtypes[id(value)], dtype)
        return self.b.const(np.asarray(value, dtype=str(dtype)), "operand")


def _output_dtype(call: Any) -> str:
    return str(call.output_tensors[0].dtype)


def _elementwise(op_type: str, operand_dtype: Callable[[Operands, Any], Any]) -> Callable:
    def convert(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
        args = Operands(b, inputs, call)
        dtype = operand_dtype(args, call)
        return b.add(op_type, [args.get(a, dtype) for a in args.args[:2]])

    return convert


def _promoted(args: Operands, call: Any) -> Any:
    import keras

    return keras.backend.result_type(*(args.dtype(a) for a in args.args[:2]))


for _name, _op in _UNARY.items():
    converts(f"ops.{_name}")(_elementwise(_op, lambda args, call: _output_dtype(call)))
for _name, _op in _ARITHMETIC.items():
    converts(f"ops.{_name}")(_elementwise(_op, lambda args, call: _output_dtype(call)))
for _name, _op in _COMPARISONS.items():
    converts(f"ops.{_name}")(_elementwise(_op, _promoted))
for _name, _op in _LOGICAL.items():
    converts(f"ops.{_name}")(_elementwise(_op, lambda args, call: "bool"))


@converts("ops.NotEqual")
def _not_equal(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    return b.add("Not", [_elementwise("Equal", _promoted)(b, op, inputs, call)])


@converts("ops.Square")
def _square(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    x = Operands(b, inputs, call).get(call.arguments.args[0], _output_dtype(call))
    return b.add("Mul", [x, x])


@converts("ops.Softmax", "ops.LogSoftmax")
def _softmax(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    op_type = "Softmax" if type(op).__name__ == "Softmax" else "LogSoftmax"
    return b.add(op_type, [inputs[0].name], {"axis": int(op.axis)})


@converts("ops.Gelu", "ops.Silu", "ops.Elu", "ops.Selu", "ops.Softsign", "ops.Mish", "ops.HardSigmoid")
def _activation(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    name = {"HardSigmoid": "hard_sigmoid"}.get(type(op).__name__, type(op).__name__.lower())
    if name == "gelu" and getattr(op, "approximate", False):
        return b.add("Gelu", [inputs[0].name], {"approximate": "tanh"})
    return ACTIVATIONS[name](b, inputs[0].name)


def _reduce_axes(axis: Any, rank: int) -> list[int]:
    if axis is None:
        return list(range(rank))
    return sorted(axis_of(a, rank) for a in (axis if isinstance(axis, (list, tuple)) else [axis]))


@converts(*(f"ops.{name}" for name in (*_REDUCTIONS, "Any", "All")))
def _reduce(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    """Sum, mean, max, min, product over ``axis`` (all axes for None); any/all as max/min of the 0/1 values."""
    if getattr(op, "initial", None) is not None:
        raise ValueError(f"{type(op).__name__} with initial= is not supported")
    x, kind = inputs[0], type(op).__name__
    axes = b.ints(_reduce_axes(op.axis, x.rank), "axes")
    keepdims = {"keepdims": int(bool(op.keepdims))}
    if kind in ("Any", "All"):
        ones = cast(b, x.name, call.input_tensors[0].dtype, "bool")
        reduced = b.add("ReduceMax" if kind == "Any" else "ReduceMin", [cast(b, ones, "bool", "float32"), axes], keepdims)
        return cast(b, reduced, "float32", "bool")
    return b.add(_REDUCTIONS[kind], [cast(b, x.name, call.input_tensors[0].dtype, _output_dtype(call)), axes], keepdims)


@converts("ops.Cast", "ops.ConvertToTensor")
def _cast(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    return cast(b, inputs[0].name, call.input_tensors[0].dtype, _output_dtype(call))


@converts("ops.OnesLike", "ops.ZerosLike")
def _filled_like(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    """A tensor shaped like the operand, all ones or zeros in the result's dtype (how Keras builds masks for
    unmasked inputs of merging layers)."""
    value = np.full(1, 1 if type(op).__name__ == "OnesLike" else 0, dtype=_output_dtype(call))
    return b.add("ConstantOfShape", [b.add("Shape", [inputs[0].name])], {"value": value})


@converts("ops.ExpandDims")
def _expand_dims(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    rank = len(call.output_tensors[0].shape)
    axes = op.axis if isinstance(op.axis, (list, tuple)) else [op.axis]
    return b.add("Unsqueeze", [inputs[0].name, b.ints(sorted(axis_of(a, rank) for a in axes), "axes")])


@converts("ops.Squeeze")
def _squeeze(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    """Keras squeezes the axes given, or every axis of static size 1."""
    x = inputs[0]
    axes = [a for a, d in enumerate(x.shape) if d == 1] if op.axis is None else _reduce_axes(op.axis, x.rank)
    return b.add("Squeeze", [x.name, b.ints(axes, "axes")])


@converts("ops.Reshape")
def _reshape(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    shape = [op.newshape] if isinstance(op.newshape, int) else list(op.newshape)
    if 0 in shape:
        raise ValueError(f"reshape to {shape}: a 0 would copy a dim in ONNX")
    return b.reshape(inputs[0].name, [-1 if d is None else int(d) for d in shape])


@converts("ops.Transpose")
def _transpose(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    rank = inputs[0].rank
    perm = list(range(rank))[::-1] if op.axes is None else [axis_of(a, rank) for a in op.axes]
    return b.transpose(inputs[0].name, perm)


@converts("ops.Concatenate", "ops.Stack")
def _concatenate(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    """``concatenate(xs, axis)``; ``stack`` concatenates the operands each given a new axis."""
    args = Operands(b, inputs, call)
    dtype = _output_dtype(call)
    names = [args.get(t, dtype) for t in args.args[0]]
    rank = len(call.output_tensors[0].shape)
    axis = axis_of(op.axis, rank)
    if type(op).__name__ == "Stack":
        names = [b.add("Unsqueeze", [n, b.ints([axis], "axes")]) for n in names]
    return b.add("Concat", names, {"axis": axis})


@converts("ops.Where")
def _where(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    args = Operands(b, inputs, call)
    condition, *values = args.args + [None] * (3 - len(args.args))
    if values[0] is None or values[1] is None:
        raise ValueError("where(condition) without x1 and x2 (the indices of true values) is not supported")
    dtype = _output_dtype(call)
    return b.add("Where", [args.get(condition, "bool"), args.get(values[0], dtype), args.get(values[1], dtype)])


@converts("ops.Clip")
def _clip(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    dtype = _output_dtype(call)
    x = cast(b, inputs[0].name, call.input_tensors[0].dtype, dtype)
    bounds = [b.const(np.asarray(v, dtype=dtype), hint) for v, hint in ((op.x_min, "min"), (op.x_max, "max"))]
    return b.add("Clip", [x, *bounds])


@converts("ops.GetItem")
def _get_item(b: GraphBuilder, op: Any, inputs: list[Tensor], call: Any) -> str:
    """``x[key]`` for keys of slices, integers, ``None`` and ``...``: Slice, then Squeeze the integer-indexed
    axes, then Unsqueeze the new ones."""
    x = inputs[0]
    key = call.arguments.args[1]
    key = list(key) if isinstance(key, (tuple, list)) else [key]  # Keras records the tuple as a list
    entries = _expand_ellipsis(key, x.rank)
    cuts, dropped, layout = [], [], []  # cuts: (start, end, axis, step) of the sliced axes
    axis = 0
    for entry in entries:
        if entry is None:
            layout.append("new")
            continue
        start, end, step = _bounds(entry)
        if (start, end, step) != (0, _TO_END, 1):
            cuts.append((start, end, axis, step))
        if isinstance(entry, slice):
            layout.append("kept")
        else:
            dropped.append(axis)
        axis += 1
    y = x.name
    if cuts:
        starts, ends, axes, steps = zip(*cuts)
        y = b.add("Slice", [y, b.ints(starts, "starts"), b.ints(ends, "ends"), b.ints(axes, "axes"), b.ints(steps, "steps")])
    if dropped:
        y = b.add("Squeeze", [y, b.ints(dropped, "axes")])
    new = [i for i, kind in enumerate(layout + ["kept"] * (x.rank - axis)) if kind == "new"]
    return b.add("Unsqueeze", [y, b.ints(new, "axes")]) if new else y


def _expand_ellipsis(key: list, rank: int) -> list:
    indexing = sum(1 for k in key if k is not None and k is not Ellipsis)
    if Ellipsis not in key:
        return key
    at = key.index(Ellipsis)
    return key[:at] + [slice(None)] * (rank - indexing) + key[at + 1 :]


def _bounds(entry: Any) -> tuple[int, int, int]:
    """ONNX Slice start, end and step of one index entry (an integer ``i`` is the slice ``i:i+1``)."""
    if isinstance(entry, slice):
        step = 1 if entry.step is None else int(entry.step)
        start = entry.start if entry.start is not None else (0 if step > 0 else -1)
        end = entry.stop if entry.stop is not None else (_TO_END if step > 0 else _BEFORE_START)
        return int(start), int(end), step
    if not isinstance(entry, (int, np.integer)):
        raise ValueError(f"index {entry!r} is not supported (slices, integers, None and ... are)")
    index = int(entry)
    return index, (_TO_END if index == -1 else index + 1), 1
