"""Recurrent layers: RNN, GRU and LSTM, every ONNX option (the CPU code: ``targets/cpu/emitters/recurrent.py``).

The three share their inputs (X, W, R, B, sequence_lens, initial_h, and for
LSTM initial_c and P), their outputs (Y, Y_h, and for LSTM Y_c, any subset),
``direction``, ``layout``, ``clip`` and the activation attributes; they differ
in the number of gates and the gate arithmetic, which the numpy reference
(:meth:`Recurrent.step`) spells out per cell.

Activation parameters follow onnxruntime: ``activation_alpha`` and
``activation_beta`` are consumed in order by the activations that take them.
When a list runs out, the default is the one of the ONNX operator of the same
name, as the spec says (ThresholdedRelu 1.0, Affine 1.0/0.0, ScaledTanh
1.0/1.0 for the experimental ops that had none); onnxruntime uses 0 for the
last three, so models relying on those defaults differ between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

import numpy as np

from ..errors import UnsupportedOperatorError
from ..ir import TensorType
from ..ir.dims import Dim, dims_equal, num_elements
from ..ir.dtypes import FLOAT_TYPES
from .base import Op
from .registry import register


@dataclass(frozen=True)
class _Activation:
    """One ONNX recurrent activation: its name, defaults of alpha/beta (None: unused), numpy reference."""

    name: str
    alpha: Optional[float]
    beta: Optional[float]
    reference: Callable[[np.ndarray, float, float], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


_ACTIVATIONS = {a.name.lower(): a for a in (
    _Activation("Relu", None, None, lambda x, a, b: np.maximum(x, 0.0)),
    _Activation("Tanh", None, None, lambda x, a, b: np.tanh(x)),
    _Activation("Sigmoid", None, None, lambda x, a, b: _sigmoid(x)),
    _Activation("Affine", 1.0, 0.0, lambda x, a, b: a * x + b),
    _Activation("LeakyRelu", 0.01, None, lambda x, a, b: np.where(x >= 0, x, a * x)),
    _Activation("ThresholdedRelu", 1.0, None, lambda x, a, b: np.where(x > a, x, 0.0)),
    _Activation("ScaledTanh", 1.0, 1.0, lambda x, a, b: a * np.tanh(b * x)),
    _Activation("HardSigmoid", 0.2, 0.5, lambda x, a, b: np.clip(a * x + b, 0.0, 1.0)),
    _Activation("Elu", 1.0, None, lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0.0)))),
    _Activation("Softsign", None, None, lambda x, a, b: x / (1.0 + np.abs(x))),
    _Activation("Softplus", None, None, lambda x, a, b: np.logaddexp(0.0, x)),
)}


@dataclass(frozen=True)
class Act:
    """An activation with its parameters resolved."""

    kind: _Activation
    alpha: float
    beta: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.kind.reference(x, self.alpha, self.beta)

@dataclass(frozen=True)
class _Sizes:
    seq: Dim
    batch: Dim
    input: Dim
    hidden: Dim
    directions: int


_DIRECTIONS = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}


class Recurrent(Op):
    """What RNN, GRU and LSTM share: inputs, outputs, layout, directions, activations."""

    gates: ClassVar[int] = 1
    default_activations: ClassVar[tuple[str, ...]] = ()
    # Y_h only, or Y_h and Y_c (LSTM).
    state_outputs: ClassVar[int] = 1

    # ---- attributes ----------------------------------------------------------
    def reverse_flags(self) -> tuple[bool, ...]:
        direction = self.attrs.get("direction", "forward")
        if direction not in _DIRECTIONS:
            raise self.error(f"direction {direction!r} is not one of forward, reverse, bidirectional")
        return _DIRECTIONS[direction]

    def batch_major(self) -> bool:
        layout = self.attrs.get("layout", 0)
        if layout not in (0, 1):
            raise self.error(f"layout must be 0 or 1, got {layout}")
        return layout == 1

    def activations(self) -> list[Act]:
        """Activations of every direction, forward's first, parameters resolved."""
        per_direction = len(self.default_activations)
        directions = len(self.reverse_flags())
        names = list(self.attrs.get("activations") or self.default_activations)
        if len(names) == per_direction and directions == 2:
            names = names * 2
        elif len(names) == 2 * per_direction and directions == 1:  # RNN's schema default is (Tanh, Tanh)
            names = names[:per_direction]
        if len(names) != per_direction * directions:
            raise self.error(f"{len(names)} activations given, expected {per_direction} per direction "
                             f"({per_direction * directions})")
        alphas = iter(self.attrs.get("activation_alpha") or [])
        betas = iter(self.attrs.get("activation_beta") or [])
        acts = []
        for name in names:
            kind = _ACTIVATIONS.get(str(name).lower())
            if kind is None:
                raise UnsupportedOperatorError(self.model, {f"{self.node.op_type} activation {name!r}": [self.node.name]})
            alpha = next(alphas, kind.alpha) if kind.alpha is not None else 0.0
            beta = next(betas, kind.beta) if kind.beta is not None else 0.0
            acts.append(Act(kind, float(alpha), float(beta)))
        return acts

    def clip(self) -> Optional[float]:
        clip = self.attrs.get("clip")
        if clip is not None and not clip > 0:
            raise self.error(f"clip must be positive, got {clip}")
        return clip

    # ---- shapes ----------------------------------------------------------------
    def sizes(self, inputs: list[Optional[TensorType]]) -> _Sizes:
        """Sizes from X, W and R."""
        x, w, r = inputs[0], inputs[1], inputs[2]
        if x.rank != 3:
            raise self.error(f"X must have rank 3, got shape {x.shape}")
        seq, batch, size = x.shape
        if self.batch_major():
            seq, batch = batch, seq
        d = len(self.reverse_flags())
        if w.rank != 3 or r.rank != 3:
            raise self.error(f"W and R must have rank 3, got shapes {w.shape} and {r.shape}")
        hidden = r.shape[2]
        gh = self.gates * hidden if isinstance(hidden, int) else None
        expect_w, expect_r = (d, gh, size), (d, gh, hidden)
        for t, expect, what in ((w, expect_w, "W"), (r, expect_r, "R")):
            if not all(e is None or dims_equal(a, e) for a, e in zip(t.shape, expect)):
                raise self.error(f"{what} has shape {t.shape}, expected {expect} "
                                 f"({d} direction(s), {self.gates} gate(s), hidden {hidden}, input {size})")
        declared = self.attrs.get("hidden_size")
        if declared is not None and declared != hidden:
            raise self.error(f"hidden_size is {declared} but R has hidden size {hidden}")
        return _Sizes(seq, batch, size, hidden, d)

    def state_shape(self, s: _Sizes) -> tuple:
        return (s.batch, s.directions, s.hidden) if self.batch_major() else (s.directions, s.batch, s.hidden)

    def check_optional(self, inputs: list[Optional[TensorType]], s: _Sizes) -> None:
        expected = {3: ((s.directions, 2 * self.gates * s.hidden), "B"), 4: ((s.batch,), "sequence_lens"),
                    5: (self.state_shape(s), "initial_h"), 6: (self.state_shape(s), "initial_c"),
                    7: ((s.directions, 3 * s.hidden), "P")}
        for i, (shape, what) in expected.items():
            t = inputs[i] if i < len(inputs) else None
            if t is None:
                continue
            if t.rank != len(shape) or not all(dims_equal(a, b) for a, b in zip(t.shape, shape)):
                raise self.error(f"{what} has shape {t.shape}, expected {shape}")
            dtype = np.dtype(np.int32) if i == 4 else inputs[0].dtype
            if t.dtype != dtype:
                raise self.error(f"{what} has type {t.dtype}, expected {dtype}")

    def flops(self, inputs, outputs):
        """Every step multiplies its input by W and the previous state by R (per direction and gate)."""
        x, w, r = inputs[0], inputs[1], inputs[2]
        return 2 * num_elements(x.shape[:-1]) * (w.size + r.size)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.dtype not in FLOAT_TYPES:
            raise self.error(f"input type {x.dtype} is not supported (float32 or float64 expected)")
        if inputs[1].dtype != x.dtype or inputs[2].dtype != x.dtype:
            raise self.error(f"X, W and R types differ ({x.dtype}, {inputs[1].dtype}, {inputs[2].dtype})")
        s = self.sizes(inputs)
        self.check_optional(inputs, s)
        self.activations()
        self.clip()
        y = (s.batch, s.seq, s.directions, s.hidden) if self.batch_major() else (s.seq, s.directions, s.batch, s.hidden)
        return [TensorType(x.dtype, y)] + [TensorType(x.dtype, self.state_shape(s)) for _ in range(self.state_outputs)]

    # ---- numpy reference ---------------------------------------------------------
    def step(self, gates_x: np.ndarray, h: np.ndarray, c: np.ndarray, r: np.ndarray, b_r: np.ndarray,
             p: Optional[np.ndarray], acts: list[Act], clip: Callable) -> tuple[np.ndarray, np.ndarray]:
        """One time step of one row: (new h, new c) from X W^T + Wb and the recurrence weights."""
        raise NotImplementedError

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        """Row by row, step by step, in float64: the reference the kernel is tested against."""
        values = list(values) + [None] * (8 - len(values))
        s = self.sizes([TensorType(np.asarray(v).dtype, np.shape(v)) if v is not None else None for v in values])
        x, w, r = (np.asarray(v, np.float64) for v in values[:3])
        if self.batch_major():
            x = x.transpose(1, 0, 2)
        gh = self.gates * s.hidden
        bias = np.zeros((s.directions, 2 * gh)) if values[3] is None else np.asarray(values[3], np.float64)
        lens = np.full(s.batch, s.seq) if values[4] is None else values[4]
        if np.any(lens < 0) or np.any(lens > s.seq):
            raise self.error(f"sequence_lens {lens.tolist()} outside [0, {s.seq}]")
        yh, yc = (self.time_major_state(values[i], s) for i in (5, 6))
        acts, per_dir = self.activations(), len(self.default_activations)
        limit = self.clip()
        clip = (lambda v: np.clip(v, -limit, limit)) if limit is not None else (lambda v: v)
        y = np.zeros((s.seq, s.directions, s.batch, s.hidden))
        for d, reverse in enumerate(self.reverse_flags()):
            p = None if values[7] is None else np.asarray(values[7], np.float64)[d]
            cell_acts = acts[d * per_dir:(d + 1) * per_dir]
            for b in range(s.batch):
                h, c = yh[d, b], yc[d, b]
                for step in range(int(lens[b])):
                    t = int(lens[b]) - 1 - step if reverse else step
                    h, c = self.step(w[d] @ x[t, b] + bias[d, :gh], h, c, r[d], bias[d, gh:], p, cell_acts, clip)
                    y[t, d, b] = h
                yh[d, b], yc[d, b] = (h, c) if lens[b] else (0.0, 0.0)  # onnxruntime's zeros for empty rows
        if self.batch_major():
            y, yh, yc = y.transpose(2, 0, 1, 3), yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)
        dtype = np.asarray(values[0]).dtype
        return [v.astype(dtype) for v in (y, yh, yc)[:1 + self.state_outputs]]

    def time_major_state(self, value: Optional[np.ndarray], s: _Sizes) -> np.ndarray:
        """An initial state as (directions, batch, hidden) float64, zeros when omitted."""
        if value is None:
            return np.zeros((s.directions, s.batch, s.hidden))
        value = np.asarray(value, np.float64)
        return value.transpose(1, 0, 2).copy() if self.batch_major() else value.copy()

    # ---- code ---------------------------------------------------------------------
    def scratch(self, s: _Sizes) -> dict[str, tuple]:
        """Scratch buffers the kernel reads from ``Recurrence`` (name -> shape): the input
        projection of all steps, the recurrence product and the hidden state."""
        gh = self.gates * s.hidden
        return {"xw": (s.seq, s.batch, gh), "hr": (s.batch, gh), "h": (s.batch, s.hidden)}

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [TensorType(inputs[0].dtype, shape) for shape in self.scratch(self.sizes(inputs)).values()]

@register
class RNN(Recurrent):
    """Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb); opset 14 adds ``layout``."""

    op_type = "RNN"
    since_version = 7
    gates = 1
    default_activations = ("Tanh",)

    def step(self, gates_x, h, c, r, b_r, p, acts, clip):
        return acts[0](clip(gates_x + r @ h + b_r)), c

@register
class GRU(Recurrent):
    """z, r = f(...); h~ = g(Xt Wh^T + (r * Ht-1) Rh^T + Rbh + Wbh), or with linear_before_reset
    g(Xt Wh^T + r * (Ht-1 Rh^T + Rbh) + Wbh); Ht = (1 - z) * h~ + z * Ht-1."""

    op_type = "GRU"
    since_version = 7
    gates = 3
    default_activations = ("Sigmoid", "Tanh")

    def linear_before_reset(self) -> bool:
        return bool(self.attrs.get("linear_before_reset", 0))

    def step(self, gates_x, h, c, r, b_r, p, acts, clip):
        n = h.size
        f, g = acts
        hr = r @ h + b_r
        z = f(clip(gates_x[:n] + hr[:n]))
        reset = f(clip(gates_x[n:2 * n] + hr[n:2 * n]))
        if self.linear_before_reset():
            cand = g(clip(gates_x[2 * n:] + reset * hr[2 * n:]))
        else:
            cand = g(clip(gates_x[2 * n:] + r[2 * n:] @ (reset * h) + b_r[2 * n:]))
        return (1 - z) * cand + z * h, c

    def scratch(self, s: _Sizes) -> dict[str, tuple]:
        """Without linear_before_reset, the reset hidden state r * H is a product's input."""
        extra = {} if self.linear_before_reset() else {"rh": (s.batch, s.hidden)}
        return {**super().scratch(s), **extra}

@register
class LSTM(Recurrent):
    """Gates i, o, f, c with optional peepholes and coupled input/forget gates (``input_forget``)."""

    op_type = "LSTM"
    since_version = 7
    gates = 4
    default_activations = ("Sigmoid", "Tanh", "Tanh")
    state_outputs = 2

    def step(self, gates_x, h, c, r, b_r, p, acts, clip):
        n = h.size
        f, g, h_act = acts
        gates = gates_x + r @ h + b_r
        gi, go, gf, gc = (gates[k * n:(k + 1) * n] for k in range(4))
        if p is not None:
            gi, gf = gi + p[:n] * c, gf + p[2 * n:] * c
        i = f(clip(gi))
        forget = 1 - i if self.attrs.get("input_forget") else f(clip(gf))
        cell = forget * c + i * g(clip(gc))
        if p is not None:
            go = go + p[n:2 * n] * cell
        return f(clip(go)) * h_act(cell), cell

    def scratch(self, s: _Sizes) -> dict[str, tuple]:
        """Plus the cell state."""
        return {**super().scratch(s), "c": (s.batch, s.hidden)}

