"""Recurrent Keras layers (SimpleRNN, GRU, LSTM, RNN of one such cell or of StackedRNNCells of them,
Bidirectional), Embedding and ReversibleEmbedding.

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

An RNN of ``StackedRNNCells`` is one node per cell, in order (see the stacked
cells section below).  Keras masks (``Masking``, ``Embedding(mask_zero=True)``)
change what an RNN computes step by step: see the masks section below.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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


def _direction(b: GraphBuilder, layer: Any, initial: tuple[str, ...], cell: Any = None) -> _Direction:
    """The ONNX view of one SimpleRNN/GRU/LSTM (or RNN of one such cell; ``cell``: one cell of its stack)."""
    cell = layer.cell if cell is None else cell
    kind = type(cell).__name__
    if kind not in _CELLS:
        where = f"keras.layers.{type(layer).__name__} of a {kind}"
        where += "" if cell is layer.cell else f" in {type(layer.cell).__name__}"
        raise UnsupportedOperatorError(b.model_name, {where: [layer.name]})
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


def _node(b: GraphBuilder, directions: list[_Direction], x: str,
          lens: Optional[str] = None) -> tuple[list[_Result], _Result]:
    """One ONNX node running ``directions`` (one, or forward then reverse) over ``x`` (the first ``lens`` steps
    of each sequence where given): the results of each direction, and all of them side by side on the feature
    axis (what a concatenating merge wants)."""
    first = directions[0]
    rows = first.w.shape[0]  # gates * units
    inputs = [x, b.const(np.stack([d.w for d in directions]), "W"), b.const(np.stack([d.r for d in directions]), "R")]
    if any(d.b is not None for d in directions):
        inputs.append(b.const(np.stack([d.b if d.b is not None else np.zeros(2 * rows, np.float32)
                                        for d in directions]), "B"))
    else:
        inputs.append("")
    state_count = 2 if first.op_type == "LSTM" else 1
    inputs.append(lens or "")  # sequence_lens
    if any(d.initial for d in directions):
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


def _flip_time(b: GraphBuilder, y: str, steps: int) -> str:
    """Reverse axis 1 of fixed length ``steps``: Keras returns a ``go_backwards`` sequence in the order it was read."""
    return b.add("Slice", [y, b.ints([-1], "starts"), b.ints([-steps - 1], "ends"), b.ints([1], "axes"),
                           b.ints([-1], "steps")])


def _sequence(inputs: list[Tensor], call: Any, arguments: dict) -> tuple[Tensor, list[list[str]]]:
    """The input sequence and the IR names of the initial states passed with it: per entry of the
    ``initial_state`` list (a cell's states in a stack, or one state), its states in Keras order."""
    from keras import tree

    names = {id(t): i.name for t, i in zip(call.input_tensors, inputs)}
    initial = arguments.get("initial_state")
    initial = [] if initial is None else ([initial] if not isinstance(initial, (list, tuple)) else list(initial))
    return inputs[0], [[names[id(t)] for t in tree.flatten(entry)] for entry in initial]


def _flat(entries: list[list[str]]) -> tuple[str, ...]:
    return tuple(name for entry in entries for name in entry)


# ---- masks ----------------------------------------------------------------------------------------------------
#
# Keras runs a masked recurrent layer step by step: at a masked step the states keep their values and the output
# is the previous step's (0 before the first unmasked step), or 0 with zero_output_for_mask (which Bidirectional
# sets for sequences).  So the states see only the unmasked steps, in order: those are moved to the front of each
# sequence (a stable sort on "masked, then position"), one ONNX node runs over them with sequence_lens = their
# count, and step t of Keras's output is the node's output after the unmasked steps up to t.


def _reverse_time(b: GraphBuilder, y: str, steps: Optional[int]) -> str:
    """Axis 1 reversed: a Slice for a fixed length, a ReverseSequence over all steps for an open one."""
    if steps is not None:
        return _flip_time(b, y, steps)
    ones = _ones(b, b.add("Shape", [y], {"start": 0, "end": 2}), np.int64)
    lengths = b.add("ReduceSum", [ones, b.ints([1], "axes")], {"keepdims": 0})
    return b.add("ReverseSequence", [y, lengths], {"batch_axis": 0, "time_axis": 1})


def _ones(b: GraphBuilder, shape: str, dtype: Any) -> str:
    return b.add("ConstantOfShape", [shape], {"value": np.ones(1, dtype=dtype)})


def _along_time(b: GraphBuilder, y: str, index: str) -> str:
    """``y[n, index[n, t], ...]``: ``index`` (N, T) broadcast over the feature axis of ``y`` (N, T, F)."""
    expanded = b.add("Expand", [b.add("Unsqueeze", [index, b.ints([2], "axes")]), b.add("Shape", [y])])
    return b.add("GatherElements", [y, expanded], {"axis": 1})


def _unmasked_first(b: GraphBuilder, mask: str, steps: Optional[int]) -> str:
    """(N, T) int64: for each sequence, the positions of its unmasked steps in order, then the masked ones."""
    if steps is not None:
        positions, count, length = (b.const(np.arange(steps, dtype=np.float32), "positions"), b.ints([steps], "k"),
                                    b.const(float(steps), "length"))
    else:
        count = b.add("Shape", [mask], {"start": 1, "end": 2})
        length = b.add("Cast", [count], {"to": 1})
        ones = _ones(b, b.add("Shape", [mask]), np.float32)
        axis = b.const(np.asarray(1, dtype=np.int64), "axis")
        positions = b.add("Sub", [b.add("CumSum", [ones, axis]), b.const(1.0, "one")])
    masked = b.add("Cast", [b.add("Not", [mask])], {"to": 1})
    key = b.add("Add", [b.add("Mul", [masked, length]), positions])
    _, order = b.add("TopK", [key, count], {"axis": 1, "largest": 0, "sorted": 1}, outputs=2)
    return order


def _masked(b: GraphBuilder, direction: _Direction, x: Tensor, zero_output: bool) -> _Result:
    """One Keras recurrent layer over the masked ``x``: its output sequence in the order it read the steps, and
    its final states."""
    steps = x.shape[1]
    xs, mask = x.name, x.mask
    if direction.reverse:
        xs, mask = _reverse_time(b, xs, steps), _reverse_time(b, mask, steps)
    packed = _along_time(b, xs, _unmasked_first(b, mask, steps))
    lens = b.add("Cast", [b.add("ReduceSum", [b.add("Cast", [mask], {"to": 1}), b.ints([1], "axes")],
                                {"keepdims": 0})], {"to": 6})
    (result,), _ = _node(b, [replace(direction, reverse=False)], packed, lens)
    seen = b.add("CumSum", [b.add("Cast", [mask], {"to": 7}), b.const(np.asarray(1, dtype=np.int64), "axis")])
    one = b.const(np.asarray(1, dtype=np.int64), "one")
    latest = _along_time(b, result.y, b.add("Relu", [b.add("Sub", [seen, one])]))
    valid = mask if zero_output else b.add("Greater", [seen, b.const(np.asarray(0, dtype=np.int64), "zero")])
    y = b.add("Where", [b.add("Unsqueeze", [valid, b.ints([2], "axes")]), latest, b.const(0.0, "zero")])
    states = result.states
    if direction.initial:  # a sequence with no unmasked step keeps its initial states
        started = b.add("Unsqueeze", [b.add("Greater", [lens, b.const(np.asarray(0, dtype=np.int32), "zero")]),
                                      b.ints([1], "axes")])
        states = [b.add("Where", [started, s, initial]) for s, initial in zip(states, direction.initial)]
    return _Result(y, states)


def _masked_output(b: GraphBuilder, layer: Any, y: str) -> str:
    """The sequence, or Keras's ``last_output``: the output at the last step read."""
    if layer.return_sequences:
        return y
    return b.add("Gather", [y, b.const(np.asarray(-1, dtype=np.int64), "last")], {"axis": 1})


@converts("SimpleRNN", "GRU", "LSTM", "RNN", masks=True)
def _recurrent(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> list[str]:
    arguments = call_arguments(layer, call)
    x, initial = _sequence(inputs, call, arguments)
    y, states = (_stacked if _is_stacked(layer) else _single)(b, layer, x, _flat(initial))
    return [y] + (states if layer.return_state else [])


# ---- stacked cells --------------------------------------------------------------------------------------------
#
# An RNN over StackedRNNCells runs its cells one after the other at every step, each reading the output of the one
# before: the same numbers as one recurrent layer per cell, each returning its whole sequence to the next.  Reading
# backwards, every cell reads the steps backwards; ONNX returns a reverse node's sequence in time order, which is
# the order the next reverse node reads it in.  A masked step leaves every cell's states as they were and repeats
# the stack's previous output: each cell is masked alike (a cell ignores what the cell before it wrote at masked
# steps), over the sequence reversed once where the layer reads backwards.


def _is_stacked(layer: Any) -> bool:
    return type(layer.cell).__name__ == "StackedRNNCells"


def _stacked(b: GraphBuilder, layer: Any, x: Tensor, initial: tuple[str, ...]) -> tuple[str, list[str]]:
    """An RNN of StackedRNNCells over ``x``: its output as Keras returns it, and every cell's final states in Keras
    order (the cells in order, an LSTM cell's h then c)."""
    directions, used = [], 0
    for cell in layer.cell.cells:
        direction = _direction(b, layer, (), cell)
        count = 2 if direction.op_type == "LSTM" else 1
        directions.append(replace(direction, initial=initial[used:used + count]))
        used += count
    if initial and used != len(initial):
        raise ValueError(f"{len(initial)} initial states given, the cells of {layer.name!r} have {used}")
    states: list[str] = []
    if x.mask is None:
        h = x.name
        for direction in directions:
            (result,), _ = _node(b, [direction], h)
            h = result.y
            states += result.states
        return _output(b, layer, result, x, layer.go_backwards), states
    h, mask = x.name, x.mask
    if layer.go_backwards:
        h, mask = _reverse_time(b, h, x.shape[1]), _reverse_time(b, mask, x.shape[1])
    for direction in directions:
        result = _masked(b, replace(direction, reverse=False), Tensor(h, x.shape, mask), layer.zero_output_for_mask)
        h = result.y
        states += result.states
    return _masked_output(b, layer, result.y), states


def _stacked_bidirectional(b: GraphBuilder, layer: Any, x: Tensor, initial: list[list[str]]) -> list[str]:
    """A Bidirectional layer of which a half is an RNN of stacked cells: each half as that layer computes it, then
    as Keras's Bidirectional, the backward half's sequence flipped back into time order and the two merged."""
    half = len(initial) // 2
    results = [_stacked(b, part, x, _flat(init)) if _is_stacked(part) else _single(b, part, x, _flat(init))
               for part, init in ((layer.forward_layer, initial[:half]), (layer.backward_layer, initial[half:]))]
    (y, states), (y_rev, states_rev) = results
    if layer.return_sequences:
        y_rev = _reverse_time(b, y_rev, x.shape[1])
    return _MERGES[layer.merge_mode](b, y, y_rev) + (states + states_rev if layer.return_state else [])


def _single(b: GraphBuilder, layer: Any, x: Tensor, initial: tuple[str, ...]) -> tuple[str, list[str]]:
    """A recurrent layer of one cell over ``x``: its output as Keras returns it, and its final states."""
    direction = _direction(b, layer, initial)
    if x.mask is not None:
        result = _masked(b, direction, x, layer.zero_output_for_mask)
        return _masked_output(b, layer, result.y), result.states
    (result,), _ = _node(b, [direction], x.name)
    return _output(b, layer, result, x, layer.go_backwards), result.states


def _output(b: GraphBuilder, layer: Any, result: _Result, x: Tensor, flip: bool) -> str:
    """The sequence (in reversed time order when ``flip``) or the last output."""
    if not layer.return_sequences:
        return result.states[0]
    return _reverse_time(b, result.y, x.shape[1]) if flip else result.y


@converts("Bidirectional", masks=True)
def _bidirectional(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> list[str]:
    """Keras flips the backward half's sequence back into time order, which is how ONNX returns it already;
    a forward half that reads backwards (and so a backward half reading forwards) leaves both reversed."""
    arguments = call_arguments(layer, call)
    x, initial = _sequence(inputs, call, arguments)
    if _is_stacked(layer.forward_layer) or _is_stacked(layer.backward_layer):
        return _stacked_bidirectional(b, layer, x, initial)
    half = len(initial) // 2
    halves = [_direction(b, layer.forward_layer, _flat(initial[:half])),
              _direction(b, layer.backward_layer, _flat(initial[half:]))]
    if x.mask is not None:
        return _masked_bidirectional(b, layer, halves, x)
    results, joined = _run(b, halves, x.name)
    flip = layer.forward_layer.go_backwards
    if layer.merge_mode == "concat" and joined is not None:
        merged = [_output(b, layer, joined, x, flip)]
    else:
        merged = _MERGES[layer.merge_mode](b, *(_output(b, layer, r, x, flip) for r in results))
    states = [s for r in results for s in r.states] if layer.return_state else []
    return merged + states


def _masked_bidirectional(b: GraphBuilder, layer: Any, halves: list[_Direction], x: Tensor) -> list[str]:
    """Each half over the masked input as that half's own layer computes it; then, as Keras's Bidirectional,
    the backward half's sequence flipped back into time order and the two merged."""
    results = [_masked(b, d, x, half.zero_output_for_mask)
               for d, half in zip(halves, (layer.forward_layer, layer.backward_layer))]
    y, y_rev = (_masked_output(b, layer, r.y) for r in results)
    if layer.return_sequences:
        y_rev = _reverse_time(b, y_rev, x.shape[1])
    states = [s for r in results for s in r.states] if layer.return_state else []
    return _MERGES[layer.merge_mode](b, y, y_rev) + states


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


@converts("ReversibleEmbedding")
def _reversible_embedding(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """An Embedding, or called with ``reverse=True`` the logits ``x @ embeddings^T`` (or the layer's own reverse
    matrix when the weights are not tied), soft-capped as ``tanh(logits / cap) * cap`` where a cap is set."""
    if not call_arguments(layer, call).get("reverse"):
        return _embedding(b, layer, inputs, call)
    if layer.reverse_dtype is not None:
        raise ValueError(f"reverse_dtype={layer.reverse_dtype!r} is not supported")
    kernel = weight(layer.embeddings).T if layer.tie_weights else weight(layer.reverse_embeddings)
    logits = b.add("MatMul", [inputs[0].name, b.const(np.ascontiguousarray(kernel), "reverse_kernel")])
    if layer.logit_soft_cap is None:
        return logits
    cap = b.const(float(layer.logit_soft_cap), "soft_cap")
    return b.add("Mul", [b.add("Tanh", [b.add("Div", [logits, cap])]), cap])


@converts("Embedding")
def _embedding(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """Rows of the embedding matrix; Keras casts non-integer indices to int32 first."""
    if getattr(layer, "quantization_mode", None):
        raise ValueError(f"quantized Embedding ({layer.quantization_mode}) is not supported")
    indices = inputs[0].name
    if not np.issubdtype(np.dtype(call.input_tensors[0].dtype), np.integer):
        indices = b.add("Cast", [indices], {"to": 7})  # int64
    return b.add("Gather", [b.const(weight(layer.embeddings), "embeddings"), indices], {"axis": 0})
