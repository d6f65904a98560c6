"""Recurrent Keras layers (SimpleRNN, GRU, LSTM, RNN of one such cell, Bidirectional) and Embedding.

Each recurrent layer becomes one ONNX ``RNN``/``GRU``/``LSTM`` node with
``layout=1``, the batch-first (N, T, F) layout Keras uses, so no transposes
are needed.  Keras stores its kernels input-major, (F, gates*units), with the
gates in the order LSTM i, f, c, o and GRU z, r, h; ONNX wants W and R
gate-major, (gates*units, F), with LSTM gates i, o, f, c.  Keras's GRU with
``reset_after=True`` is ONNX's ``linear_before_reset=1`` (its bias holds the
input and recurrent biases as two rows), ``reset_after=False`` the ONNX
default.

A Bidirectional layer whose two halves fit one ONNX node (same operator,
units and reset rule, forward half reading forwards) becomes one
``direction="bidirectional"`` node; otherwise one node per half.  ONNX stacks
the directions on an axis of their own, so Keras's merge modes are one
reduction (or reshape) over that axis.

Keras masks (``Masking``, ``Embedding(mask_zero=True)``) change what an RNN
computes step by step; they are refused rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ...errors import UnsupportedOperatorError
from .builder import GraphBuilder, Tensor, call_arguments, weight
from .registry import converts

# Keras activation name -> (ONNX recurrent activation, alpha, beta); None where the ONNX activation takes none.
_ACTIVATIONS: dict[str, tuple[str, Optional[float], Optional[float]]] = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),  # Keras 3: relu6(x + 3) / 6
    "hard_sigmoid_keras2": ("HardSigmoid", 0.2, 0.5),  # Keras 2 files (legacy.hard_sigmoid_keras2)
    "sparse_sigmoid": ("HardSigmoid", 0.5, 0.5),
    "linear": ("Affine", 1.0, 0.0),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "elu": ("Elu", 1.0, None),
    "leaky_relu": ("LeakyRelu", 0.2, None),
}

# Per cell class: ONNX operator, and the Keras gate blocks in ONNX gate order.
_CELLS: dict[str, tuple[str, tuple[int, ...]]] = {
    "SimpleRNNCell": ("RNN", (0,)),
    "GRUCell": ("GRU", (0, 1, 2)),
    "LSTMCell": ("LSTM", (0, 3, 1, 2)),  # Keras i, f, c, o -> ONNX i, o, f, c
}

@dataclass(frozen=True)
class _Direction:
    """One Keras recurrent layer as one direction of an ONNX node: weights in ONNX order, activations, states."""

    op_type: str
    units: int
    w: np.ndarray  # (gates*units, F)
    r: np.ndarray  # (gates*units, units)
    b: Optional[np.ndarray]  # (2*gates*units,): input bias then recurrent bias
    activations: tuple[tuple[str, Optional[float], Optional[float]], ...]
    attrs: tuple[tuple[str, Any], ...]  # operator attributes that must agree between directions
    reverse: bool
    initial: tuple[str, ...]  # IR names of Keras initial states, (N, units) each, or ()


@dataclass(frozen=True)
class _Result:
    """One direction's results: y (N, T, units) and the final states (N, units) each (h, and c for LSTM)."""

    y: str
    states: list[str]


def _activation(fn: Any, layer: Any) -> tuple[str, Optional[float], Optional[float]]:
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation {name!r} of recurrent layer {layer.name!r} has no ONNX recurrent equivalent "
                         f"(supported: {', '.join(sorted(_ACTIVATIONS))})")
    return _ACTIVATIONS[name]


def _gates(matrix: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Keras (rows, gates*units) with gate blocks in Keras order -> ONNX (gates*units, rows) in ONNX order."""
    blocks = np.split(matrix, len(order), axis=-1)
    return np.ascontiguousarray(np.concatenate([blocks[g] for g in order], axis=-1).T)


def _direction(b: GraphBuilder, layer: Any, initial: tuple[str, ...]) -> _Direction:
    """The ONNX view of one SimpleRNN/GRU/LSTM (or RNN of one such cell)."""
    cell = layer.cell
    kind = type(cell).__name__
    if kind not in _CELLS:
        raise UnsupportedOperatorError(b.model_name, {f"keras.layers.{type(layer).__name__} of a {kind}": [layer.name]})
    if layer.stateful:
        raise ValueError("stateful recurrent layers are not supported (the state would outlive one inference)")
    op_type, order = _CELLS[kind]
    units = int(cell.units)
    w, r = _gates(weight(cell.kernel), order), _gates(weight(cell.recurrent_kernel), order)
    bias = None
    attrs: tuple[tuple[str, Any], ...] = ()
    if op_type == "GRU":
        attrs = (("linear_before_reset", int(cell.reset_after)),)
    if cell.use_bias:
        rows = weight(cell.bias).reshape(-1, len(order) * units)  # GRU reset_after: (input, recurrent) rows
        rows = np.concatenate([rows, np.zeros_like(rows)]) if rows.shape[0] == 1 else rows
        bias = np.concatenate([_gates(row[None, :], order).reshape(-1) for row in rows])
    acts = [cell.recurrent_activation, cell.activation] if op_type != "RNN" else [cell.activation]
    acts += [cell.activation] if op_type == "LSTM" else []
    return _Direction(op_type, units, w, r, bias, tuple(_activation(a, layer) for a in acts), attrs,
                      bool(layer.go_backwards), initial)


def _node(b: GraphBuilder, directions: list[_Direction], x: str) -> tuple[list[_Result], _Result]:
    """One ONNX node running ``directions`` (one, or forward then reverse) over ``x``: the results of each
    direction, and all of them side by side on the feature axis (what a concatenating merge wants)."""
    first = directions[0]
    rows = first.w.shape[0]  # gates * units
    inputs = [x, b.const(np.stack([d.w for d in directions]), "W"), b.const(np.stack([d.r for d in directions]), "R")]
    if any(d.b is not None for d in directions):
        inputs.append(b.const(np.stack([d.b if d.b is not None else np.zeros(2 * rows, np.float32)
                                        for d in directions]), "B"))
    else:
        inputs.append("")
    state_count = 2 if first.op_type == "LSTM" else 1
    if any(d.initial for d in directions):
        inputs.append("")  # sequence_lens
        for k in range(state_count):
            initial = [b.add("Unsqueeze", [d.initial[k], b.ints([1], "axes")]) for d in directions]
            inputs.append(initial[0] if len(initial) == 1 else b.add("Concat", initial, {"axis": 1}))
    while inputs[-1] == "":
        inputs.pop()
    acts = [a for d in directions for a in d.activations]
    attrs = {"hidden_size": first.units, "layout": 1, "activations": [a[0] for a in acts], **dict(first.attrs),
             "direction": "bidirectional" if len(directions) == 2 else ("reverse" if first.reverse else "forward")}
    alphas, betas = [a[1] for a in acts if a[1] is not None], [a[2] for a in acts if a[2] is not None]
    attrs.update({"activation_alpha": alphas} if alphas else {})
    attrs.update({"activation_beta": betas} if betas else {})
    y, *finals = b.add(first.op_type, inputs, attrs, outputs=1 + state_count, hint=first.op_type)
    # layout=1: Y is (N, T, D, units), the final states (N, D, units).
    joined = _Result(b.reshape(y, [0, 0, -1]), [b.reshape(h, [0, -1]) for h in finals])
    count = len(directions)
    if count == 1:
        return [joined], joined
    ys = b.add("Split", [joined.y], {"axis": -1, "num_outputs": count}, outputs=count)
    states = [b.add("Split", [h], {"axis": -1, "num_outputs": count}, outputs=count) for h in joined.states]
    return [_Result(ys[d], [h[d] for h in states]) for d in range(count)], joined


def _run(b: GraphBuilder, directions: list[_Direction], x: str) -> tuple[list[_Result], Optional[_Result]]:
    """Every direction over ``x``: one ONNX node when they fit one (the joined results then come with them),
    else one node each."""
    fused = len(directions) == 1 or (
        not directions[0].reverse and directions[1].reverse
        and len({(d.op_type, d.units, d.attrs) for d in directions}) == 1
        and len({bool(d.initial) for d in directions}) == 1)
    if fused:
        return _node(b, directions, x)
    return [_node(b, [d], x)[0][0] for d in directions], None


def _flip_time(b: GraphBuilder, y: str, steps: Optional[int]) -> str:
    """Reverse axis 1: Keras returns a ``go_backwards`` sequence in the order it was read."""
    if steps is None:
        raise ValueError("go_backwards with return_sequences needs a fixed sequence length")
    return b.add("Slice", [y, b.ints([-1], "starts"), b.ints([-steps - 1], "ends"), b.ints([1], "axes"),
                           b.ints([-1], "steps")])


def _refuse_masks(b: GraphBuilder, layer: Any, call: Any, arguments: dict) -> None:
    """Masked steps keep the previous state in Keras; ONNX sequence_lens only cuts trailing steps (and zeroes them)."""
    masked = arguments.get("mask") is not None or any(
        getattr(t, "_keras_mask", None) is not None for t in call.input_tensors)
    if masked:
        raise UnsupportedOperatorError(b.model_name, {
            f"keras.layers.{type(layer).__name__} with a mask (Masking or Embedding(mask_zero=True))": [layer.name]})


def _sequence(inputs: list[Tensor], call: Any, arguments: dict) -> tuple[Tensor, list[str]]:
    """The input sequence and the IR names of the initial states passed with it (Keras order)."""
    names = {id(t): i.name for t, i in zip(call.input_tensors, inputs)}
    initial = arguments.get("initial_state")
    initial = [] if initial is None else ([initial] if not isinstance(initial, (list, tuple)) else list(initial))
    return inputs[0], [names[id(t)] for t in initial]


@converts("SimpleRNN", "GRU", "LSTM", "RNN")
def _recurrent(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> list[str]:
    arguments = call_arguments(layer, call)
    _refuse_masks(b, layer, call, arguments)
    x, initial = _sequence(inputs, call, arguments)
    (result,), _ = _run(b, [_direction(b, layer, tuple(initial))], x.name)
    y = _output(b, layer, result, x, layer.go_backwards)
    return [y] + (result.states if layer.return_state else [])


def _output(b: GraphBuilder, layer: Any, result: _Result, x: Tensor, flip: bool) -> str:
    """The sequence (in reversed time order when ``flip``) or the last output."""
    if not layer.return_sequences:
        return result.states[0]
    return _flip_time(b, result.y, x.shape[1]) if flip else result.y


@converts("Bidirectional")
def _bidirectional(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> list[str]:
    """Keras flips the backward half's sequence back into time order, which is how ONNX returns it already;
    a forward half that reads backwards (and so a backward half reading forwards) leaves both reversed."""
    arguments = call_arguments(layer, call)
    _refuse_masks(b, layer, call, arguments)
    x, initial = _sequence(inputs, call, arguments)
    half = len(initial) // 2
    halves = [_direction(b, layer.forward_layer, tuple(initial[:half])),
              _direction(b, layer.backward_layer, tuple(initial[half:]))]
    results, joined = _run(b, halves, x.name)
    flip = layer.forward_layer.go_backwards
    if layer.merge_mode == "concat" and joined is not None:
        merged = [_output(b, layer, joined, x, flip)]
    else:
        merged = _MERGES[layer.merge_mode](b, *(_output(b, layer, r, x, flip) for r in results))
    states = [s for r in results for s in r.states] if layer.return_state else []
    return merged + states


def _average(b: GraphBuilder, y: str, y_rev: str) -> list[str]:
    return [b.add("Mul", [b.add("Add", [y, y_rev]), b.const(0.5, "half")])]


_MERGES: dict[Any, Callable[[GraphBuilder, str, str], list[str]]] = {
    "concat": lambda b, y, y_rev: [b.add("Concat", [y, y_rev], {"axis": -1})],
    "sum": lambda b, y, y_rev: [b.add("Add", [y, y_rev])],
    "mul": lambda b, y, y_rev: [b.add("Mul", [y, y_rev])],
    "ave": _average,
    None: lambda b, y, y_rev: [y, y_rev],
}


# ---- Embedding -----------------------------------------------------------------------------------------------


@converts("Embedding")
def _embedding(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Rows of the embedding matrix; Keras casts non-integer indices to int32 first."""
    if getattr(layer, "quantization_mode", None):
        raise ValueError(f"quantized Embedding ({layer.quantization_mode}) is not supported")
    indices = inputs[0].name
    if not np.issubdtype(np.dtype(call.input_tensors[0].dtype), np.integer):
        indices = b.add("Cast", [indices], {"to": 7})  # int64
    return b.add("Gather", [b.const(weight(layer.embeddings), "embeddings"), indices], {"axis": 0})
