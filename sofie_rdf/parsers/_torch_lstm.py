"""``nn.LSTM(proj_size=...)`` for torch's ONNX exporter.

torch.export keeps ``aten.lstm`` whole and onnxscript (0.7) translates it into an ONNX ``LSTM`` node, dropping
the projection weights ``weight_hr``: the node it writes has hidden states of the projected size and cell states
of the full size, which no ONNX LSTM has (we stopped there with a ShapeError; onnxruntime would compute without
the projection).  ONNX's LSTM has no projection, so while the model is exported every projected LSTM computes
with :func:`projected_forward`, the same recurrence written as a ``while_loop`` over time steps (one per layer and
direction) that the exporter turns into an ONNX ``Loop``, keeping a symbolic sequence length.  The reverse
direction reads and writes step ``T - 1 - i`` instead of flipping the sequence.
"""

from __future__ import annotations

import contextlib
import types
from typing import Callable, Iterable, Iterator, Optional

import torch
from torch._higher_order_ops.while_loop import while_loop

nn = torch.nn
F = torch.nn.functional


@contextlib.contextmanager
def forwards_swapped(pairs: Iterable[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Each module of ``pairs`` computed by its new forward (a function of the module and its inputs) inside the
    block, its own ``forward`` back on exit.

    The method is replaced on the instance, not the module in its parent, so that the model still finds every
    attribute of the module where it looks for it; on exit the instance attribute is removed again, or the one it
    had put back.
    """
    swapped = []
    try:
        for m, forward in pairs:  # inside the try: if making a pair raises, the ones swapped before it go back
            bound = types.MethodType(forward, m)
            swapped.append((m, m.__dict__.get("forward")))
            m.forward = bound
        yield
    finally:
        for m, own in swapped:
            if own is None:
                del m.forward
            else:
                m.forward = own


def projected_lstms_swapped(module: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Each projected LSTM in ``module`` computed by :func:`projected_forward` (its own ``forward`` back on exit)."""
    return forwards_swapped((m, projected_forward) for m in module.modules() if isinstance(m, nn.LSTM) and m.proj_size > 0)


def projected_forward(lstm: nn.LSTM, x: torch.Tensor, hx: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> tuple:
    """``nn.LSTM.forward`` of an LSTM with ``proj_size`` in eval mode, step by step in a ``while_loop``."""
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise NotImplementedError("a PackedSequence into an LSTM with proj_size")
    unbatched = x.dim() == 2
    seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if lstm.batch_first else x)  # (T, B, I)
    directions = 2 if lstm.bidirectional else 1
    if hx is None:
        states = lstm.num_layers * directions, seq.shape[1]
        h0, c0 = seq.new_zeros(*states, lstm.proj_size), seq.new_zeros(*states, lstm.hidden_size)
    else:
        h0, c0 = (s.unsqueeze(1) for s in hx) if unbatched else hx
    weights = iter(lstm._flat_weights)
    per_direction = len(lstm._flat_weights) // (lstm.num_layers * directions)
    finals_h, finals_c = [], []
    for layer in range(lstm.num_layers):
        outputs = []
        for d in range(directions):
            k = layer * directions + d
            params = [next(weights) for _ in range(per_direction)]
            out, h, c = _one_direction(seq, h0[k], c0[k], params, lstm.bias, reverse=d == 1)
            outputs.append(out)
            finals_h.append(h)
            finals_c.append(c)
        seq = torch.cat(outputs, dim=2) if directions == 2 else outputs[0]
    out = seq.squeeze(1) if unbatched else (seq.transpose(0, 1) if lstm.batch_first else seq)
    h_n, c_n = torch.stack(finals_h), torch.stack(finals_c)
    return out, ((h_n.squeeze(1), c_n.squeeze(1)) if unbatched else (h_n, c_n))


def _one_direction(
    seq: torch.Tensor, h: torch.Tensor, c: torch.Tensor, params: list, has_bias: bool, reverse: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(outputs (T, B, P), last h (B, P), last c (B, H)) of one layer in one direction."""
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = (params[2], params[3]) if has_bias else (None, None)
    w_hr = params[-1]
    inputs = F.linear(seq, w_ih, b_ih)  # (T, B, 4H): the input part of every gate, all steps at once
    steps = inputs.shape[0]
    # while_loop refuses closures over one storage; the weights are only read in the loop
    w_hh, w_hr = w_hh.clone(), w_hr.clone()
    b_hh = b_hh.clone() if b_hh is not None else None

    def more(i: torch.Tensor, out: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return i < steps

    def step(i: torch.Tensor, out: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple:
        t = steps - 1 - i.item() if reverse else i.item()
        torch._check_is_size(t, max=steps - 1)
        gates = inputs[t] + F.linear(h, w_hh, b_hh)
        in_gate, forget, cell, out_gate = gates.chunk(4, dim=-1)
        c = torch.sigmoid(forget) * c + torch.sigmoid(in_gate) * torch.tanh(cell)
        h = F.linear(torch.sigmoid(out_gate) * torch.tanh(c), w_hr)
        out = out.clone()
        out[t] = h
        return i + 1, out, h, c

    start = torch.tensor(0, dtype=torch.int64)
    empty = inputs.new_zeros(steps, *h.shape)
    # the carried states must keep their layout through the loop (an expanded h0 has stride 0)
    _, out, h, c = while_loop(more, step, [start, empty, h.contiguous(), c.contiguous()])
    return out, h, c
