"""Keras convolutional LSTMs: ConvLSTM1D, ConvLSTM2D, ConvLSTM3D.

ONNX has no convolutional recurrence, so the layer is unrolled over its
(fixed) number of steps.  The input convolution does not depend on the
state: it runs once on all steps, time folded into the batch.  Each step
then adds the recurrent convolution of the previous ``h`` ("same" padding,
stride 1) and applies the LSTM gates (Keras order i, f, c, o)::

    i = ra(x_i + h_i)   f = ra(x_f + h_f)   o = ra(x_o + h_o)
    c = f * c + i * a(x_c + h_c)            h = o * a(c)

Everything runs channels-first; the outputs go back to the layer's data
format.  The states start at zero (so the first step has no recurrent term)
or at the ``initial_state`` given.  Masks are refused (the layer is not
mask-aware), as is an open sequence length.
"""

from __future__ import annotations

from typing import Any, Optional

from .builder import GraphBuilder, Tensor, call_arguments, weight
from .conv import _onnx_kernel, _window
from .core import activation
from .registry import converts


def _to_first(b: GraphBuilder, x: str, rank: int, channels_last: bool) -> str:
    return b.transpose(x, [0, rank - 1, *range(1, rank - 1)]) if channels_last else x


def _to_last(b: GraphBuilder, x: str, rank: int, channels_last: bool) -> str:
    return b.transpose(x, [0, *range(2, rank), 1]) if channels_last else x


def _input_gates(b: GraphBuilder, cell: Any, x: Tensor, out_spatial: tuple, channels_last: bool) -> list[str]:
    """The input convolution of every step at once: (N, T, ...) -> one (N, 4*filters, spatial'...) per step."""
    steps, rest = x.shape[1], x.shape[2:]
    folded = b.reshape(x.name, [-1, *rest])
    inputs = [_to_first(b, folded, len(rest) + 1, channels_last), b.const(_onnx_kernel(weight(cell.kernel)), "kernel")]
    if cell.use_bias:
        inputs.append(b.const(weight(cell.bias), "bias"))
    kernel_shape = list(cell.kernel_size)
    gates = b.add("Conv", inputs, {"kernel_shape": kernel_shape, **_window(cell)})
    unfolded = b.reshape(gates, [-1, steps, 4 * cell.filters, *out_spatial])
    per_step = b.add("Split", [unfolded], {"axis": 1, "num_outputs": steps}, outputs=steps)
    per_step = [per_step] if steps == 1 else per_step
    return [b.add("Squeeze", [s, b.ints([1], "axes")]) for s in per_step]


def _step(b: GraphBuilder, cell: Any, gates: str, state: Optional[tuple[str, str]], recurrent: str, rank: int) -> tuple[str, str]:
    """One LSTM step from the input gates and the previous ``(h, c)`` (None: zero states)."""
    if state is not None:
        attrs = {"kernel_shape": list(cell.kernel_size), "auto_pad": "SAME_UPPER"}
        gates = b.add("Add", [gates, b.add("Conv", [state[0], recurrent], attrs)])
    i, f, candidate, o = b.add("Split", [gates], {"axis": 1, "num_outputs": 4}, outputs=4)
    shape = (None,) * rank

    def act(name: str, fn: Any) -> str:
        return activation(b, Tensor(name, shape), fn)

    c = b.add("Mul", [act(i, cell.recurrent_activation), act(candidate, cell.activation)])
    if state is not None:
        c = b.add("Add", [b.add("Mul", [act(f, cell.recurrent_activation), state[1]]), c])
    h = b.add("Mul", [act(o, cell.recurrent_activation), act(c, cell.activation)])
    return h, c


@converts("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
def _conv_lstm(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> list[str]:
    cell, x = layer.cell, inputs[0]
    if layer.stateful:
        raise ValueError("stateful recurrent layers are not supported (the state would outlive one inference)")
    if x.shape[1] is None or None in x.shape[2:]:
        raise ValueError(f"ConvLSTM is unrolled over its steps: it needs fixed sequence and image sizes, got {x.shape}")
    channels_last = cell.data_format == "channels_last"
    out_shape = tuple(call.output_tensors[0].shape)  # (N, [T,] spatial'..., F) or channels-first
    image = out_shape[2:] if layer.return_sequences else out_shape[1:]
    out_spatial = image[:-1] if channels_last else image[1:]
    rank = len(out_spatial) + 2
    step_gates = _input_gates(b, cell, x, out_spatial, channels_last)
    if layer.go_backwards:
        step_gates = step_gates[::-1]
    recurrent = b.const(_onnx_kernel(weight(cell.recurrent_kernel)), "recurrent_kernel")
    state = _initial_state(b, layer, inputs, call, rank, channels_last)
    outputs = []
    for gates in step_gates:
        state = _step(b, cell, gates, state, recurrent, rank)
        outputs.append(state[0])
    h, c = state
    if layer.return_sequences:
        stacked = b.add("Concat", [b.add("Unsqueeze", [o, b.ints([1], "axes")]) for o in outputs], {"axis": 1})
        y = b.transpose(stacked, [0, 1, *range(3, rank + 1), 2]) if channels_last else stacked
    else:
        y = _to_last(b, h, rank, channels_last)
    states = [_to_last(b, s, rank, channels_last) for s in (h, c)] if layer.return_state else []
    return [y, *states]


def _initial_state(
    b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any, rank: int, channels_last: bool
) -> Optional[tuple[str, str]]:
    """The ``initial_state=[h, c]`` given to the call, channels-first; None for Keras's zero states."""
    given = call_arguments(layer, call).get("initial_state")
    if given is None:
        return None
    names = {id(t): i.name for t, i in zip(call.input_tensors, inputs)}
    h, c = (_to_first(b, names[id(t)], rank, channels_last) for t in given)
    return h, c
