"""Transformer attention: Attention (opsets 23-25) and LinearAttention (opset 27).

LinearAttention is a recurrence over tokens: each kv head keeps a d_k x d_v state,
and the query heads sharing it read it with one small product per token.

Attention is computed one (batch, query head) at a time: two matrix products around
a softmax; K and V are gathered with the past cache into the present tensors (an
output when requested, else scratch), so both products read plain row-major
matrices whatever the input layout (3-D packed or 4-D).  The CPU code is in
``targets/cpu/emitters/attention.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, dims_equal, simplify
from ..ir.dtypes import FLOAT_TYPES, kind
from .base import Op
from .registry import register

_QK_MODES = (0, 1, 2, 3)
# ONNX element types the softmax may run in (float16 and bfloat16 have no C++ type here).
_SOFTMAX_PRECISIONS = {1: np.float32, 11: np.float64}


def _at(items: list, i: int):
    """Item ``i`` of an input/output list, None when omitted or absent."""
    return items[i] if i < len(items) else None


def _split_heads(op: Op, hidden: Dim, heads: int, what: str) -> Dim:
    """Head size of a packed (batch, seq, heads * head) tensor."""
    if not isinstance(hidden, int):
        raise op.error(f"{what} has a symbolic hidden size {hidden}: 3-D inputs need a known heads * head_size")
    if heads <= 0 or hidden % heads:
        raise op.error(f"{what} hidden size {hidden} is not divisible by {heads} heads")
    return hidden // heads


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))


@dataclass(frozen=True)
class _Layout:
    """Sizes of one Attention node, as in the spec's 4-D view (batch, heads, seq, head)."""

    batch: Dim
    q_heads: Dim
    kv_heads: Dim
    q_len: Dim
    past_len: Dim
    new_len: Dim
    head_qk: Dim
    head_v: Dim
    packed: bool  # 3-D inputs (batch, seq, heads * head)

    @property
    def kv_len(self) -> Dim:
        return simplify(self.past_len + self.new_len)


def _heads_view(x: np.ndarray, heads: int, packed: bool) -> np.ndarray:
    """(batch, heads, seq, head) view of a packed 3-D or a 4-D array."""
    if not packed:
        return x
    b, s, hidden = x.shape
    return x.reshape(b, s, heads, hidden // heads).transpose(0, 2, 1, 3)


@register
class Attention(Op):
    """softmax(softcap(scale * Q K^T) + bias) V with grouped-query heads and a KV cache.

    The bias joins the attn_mask (bool: attend or not; float: added), the causal
    and sliding-window frontiers aligned to the cache offset and the padding of
    ``nonpad_kv_seqlen``; keys past the mask's last dim are masked out.
    """

    op_type = "Attention"
    since_version = 23
    # Opset 25: 4-D inputs take their heads from the shapes only, and the window attributes exist.
    heads_from_shape_only = False

    # ---- shapes ---------------------------------------------------------------
    def num_heads(self) -> tuple[Optional[int], Optional[int]]:
        return self.attrs.get("q_num_heads"), self.attrs.get("kv_num_heads")

    def layout(self, inputs: list[Optional[TensorType]]) -> _Layout:
        q, k, v = inputs[0], inputs[1], inputs[2]
        if not q.rank == k.rank == v.rank or q.rank not in (3, 4):
            raise self.error(f"Q, K and V must all be 3-D or all 4-D, got shapes {q.shape}, {k.shape}, {v.shape}")
        qh, kvh = self.num_heads()
        past = _at(inputs, 4)
        past_len = past.shape[2] if past is not None else 0
        if q.rank == 3:
            if qh is None or kvh is None:
                raise self.error("3-D inputs need the q_num_heads and kv_num_heads attributes")
            return _Layout(q.shape[0], qh, kvh, q.shape[1], past_len, k.shape[1],
                           _split_heads(self, q.shape[2], qh, "Q"), _split_heads(self, v.shape[2], kvh, "V"), True)
        if self.heads_from_shape_only and (qh is not None or kvh is not None):
            raise self.error("q_num_heads and kv_num_heads must not be set for 4-D inputs")
        for given, dim, what in ((qh, q.shape[1], "q_num_heads"), (kvh, k.shape[1], "kv_num_heads")):
            if given is not None and not dims_equal(given, dim):
                raise self.error(f"{what}={given} disagrees with the input heads dim {dim}")
        return _Layout(q.shape[0], q.shape[1], k.shape[1], q.shape[2], past_len, k.shape[2], q.shape[3], v.shape[3], False)

    def check_kv(self, inputs: list[Optional[TensorType]], lay: _Layout) -> None:
        """K matches Q's head size, V matches K's batch/heads/length, the past cache matches both."""
        q, k, v = inputs[0], inputs[1], inputs[2]
        k_head = k.shape[2] // lay.kv_heads if lay.packed else k.shape[3]
        if not dims_equal(k_head, lay.head_qk) or (lay.packed and k.shape[2] % lay.kv_heads):
            raise self.error(f"K of shape {k.shape} does not match the head size {lay.head_qk} of Q {q.shape}")
        same = (k.shape[:2] if lay.packed else k.shape[:3]) == (v.shape[:2] if lay.packed else v.shape[:3])
        if not same or not dims_equal(k.shape[0], q.shape[0]):
            raise self.error(f"Q {q.shape}, K {k.shape} and V {v.shape} disagree on batch, heads or kv length")
        if isinstance(lay.q_heads, int) and isinstance(lay.kv_heads, int) and lay.q_heads % lay.kv_heads:
            raise self.error(f"q_num_heads ({lay.q_heads}) must be a multiple of kv_num_heads ({lay.kv_heads})")
        past_k, past_v = _at(inputs, 4), _at(inputs, 5)
        if (past_k is None) != (past_v is None):
            raise self.error("past_key and past_value must be given together")
        if past_k is None:
            return
        expect = {"past_key": (past_k, lay.head_qk), "past_value": (past_v, lay.head_v)}
        for what, (t, head) in expect.items():
            want = (lay.batch, lay.kv_heads, lay.past_len, head)
            if t.dtype != q.dtype or not _same_shape(t.shape, want):
                raise self.error(f"{what} of shape {t.shape} ({t.dtype}) does not match {want} ({q.dtype})")

    def check_mask(self, inputs: list[Optional[TensorType]], lay: _Layout) -> None:
        """attn_mask (bool: attend or not; numbers: added to the scores) broadcasts to (batch, q_heads, q_len, <= kv_len)."""
        mask = _at(inputs, 3)
        if mask is None:
            return
        if mask.dtype != np.bool_ and kind(mask.dtype) not in "iuf":
            raise self.error(f"attn_mask must be bool or numeric, got {mask.dtype}")
        if not 1 <= mask.rank <= 4:
            raise self.error(f"attn_mask must have rank 1 to 4, got shape {mask.shape}")
        rows = (lay.batch, lay.q_heads, lay.q_len)
        for m, r in zip(mask.shape[-2::-1], rows[::-1]):
            if isinstance(m, int) and m == 1 or dims_equal(m, r):
                continue
            if isinstance(m, int) and isinstance(r, int):
                raise self.error(f"attn_mask of shape {mask.shape} does not broadcast to {rows + (lay.kv_len,)}")
            self.require(sympy.Eq(m, r), f"attn_mask dim {m} must match the dim {r} it is broadcast to")
        last, kv = mask.shape[-1], lay.kv_len
        if isinstance(last, int) and isinstance(kv, int) and last > kv:
            raise self.error(f"attn_mask covers {last} keys, but there are only {kv}")

    def check_nonpad(self, inputs: list[Optional[TensorType]], lay: _Layout) -> None:
        nonpad = _at(inputs, 6)
        if nonpad is None:
            return
        if _at(inputs, 4) is not None:
            raise self.error("nonpad_kv_seqlen cannot be combined with past_key / past_value")
        if nonpad.dtype != np.int64 or nonpad.rank != 1 or not dims_equal(nonpad.shape[0], lay.batch):
            raise self.error(f"nonpad_kv_seqlen must be int64 of shape ({lay.batch},), got {nonpad.dtype} {nonpad.shape}")

    def softmax_dtype(self, dtype: np.dtype) -> np.dtype:
        """Element type of the softmax (``softmax_precision``, else the input's)."""
        precision = self.attrs.get("softmax_precision")
        if precision is None:
            return dtype
        if precision not in _SOFTMAX_PRECISIONS:
            raise self.error(f"softmax_precision {precision} is not supported (1: float32 or 11: float64 expected)")
        return np.dtype(_SOFTMAX_PRECISIONS[precision])

    def check_attrs(self) -> None:
        if self.attrs["qk_matmul_output_mode"] not in _QK_MODES:
            raise self.error(f"qk_matmul_output_mode must be one of {_QK_MODES}, got {self.attrs['qk_matmul_output_mode']}")
        for name in ("left_window_size", "right_window_size"):
            if self.attrs.get(name, -1) < -1:
                raise self.error(f"{name} must be -1 or nonnegative, got {self.attrs[name]}")

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        q, k, v = inputs[0], inputs[1], inputs[2]
        if q.dtype not in FLOAT_TYPES or k.dtype != q.dtype or v.dtype != q.dtype:
            raise self.error(f"Q, K and V must share one type of float32 or float64, got {q.dtype}, {k.dtype}, {v.dtype}")
        self.check_attrs()
        self.softmax_dtype(q.dtype)
        lay = self.layout(inputs)
        self.check_kv(inputs, lay)
        self.check_mask(inputs, lay)
        self.check_nonpad(inputs, lay)
        y = (lay.batch, lay.q_len, simplify(lay.q_heads * lay.head_v)) if lay.packed else \
            (lay.batch, lay.q_heads, lay.q_len, lay.head_v)
        shapes = [y, (lay.batch, lay.kv_heads, lay.kv_len, lay.head_qk), (lay.batch, lay.kv_heads, lay.kv_len, lay.head_v),
                  (lay.batch, lay.q_heads, lay.q_len, lay.kv_len)]
        return [TensorType(q.dtype, s) for s in shapes]

    # ---- numpy reference --------------------------------------------------------
    def scale(self, head_qk: Dim) -> float:
        scale = self.attrs.get("scale")
        return float(scale) if scale is not None else 1.0 / float(sympy.sqrt(head_qk))

    def bias(self, values: list[Optional[np.ndarray]], shape: tuple, past_len: int, dtype: np.dtype) -> np.ndarray:
        """Additive bias broadcast to (batch, q_heads, q_len, kv_len): 0 or the float mask where a key is attended."""
        batch, _, q_len, kv_len = shape
        mask, nonpad = _at(values, 3), _at(values, 6)
        j = np.arange(kv_len)
        if nonpad is not None and nonpad.size and (nonpad.min() < 0 or nonpad.max() > kv_len):
            raise self.error(f"nonpad_kv_seqlen {nonpad.tolist()} is outside [0, {kv_len}]")
        offset = (nonpad.reshape(-1, 1, 1, 1) - q_len) if nonpad is not None else np.full((1, 1, 1, 1), past_len)
        p = offset + np.arange(q_len).reshape(-1, 1)
        attend = np.broadcast_to(j < (nonpad.reshape(-1, 1, 1, 1) if nonpad is not None else kv_len), shape)
        left, right = self.attrs.get("left_window_size", -1), self.attrs.get("right_window_size", -1)
        attend = attend & ((j <= p) if self.attrs["is_causal"] else True)
        attend = attend & ((p - j <= left) if left >= 0 else True) & ((j - p <= right) if right >= 0 else True)
        value = np.zeros((), dtype)
        if mask is not None:
            padded = np.zeros(mask.shape[:-1] + (kv_len,), dtype=mask.dtype)
            padded[..., :mask.shape[-1]] = mask
            attend = attend & (j < mask.shape[-1])
            if mask.dtype == np.bool_:
                attend = attend & padded
            else:
                value = padded.astype(dtype)
        return np.where(attend, value, dtype.type(-np.inf)).astype(dtype)

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        types = [TensorType(v.dtype, v.shape) if v is not None else None for v in values]
        lay = self.layout(types)
        q, dt = values[0], values[0].dtype
        q4 = _heads_view(q, lay.q_heads, lay.packed)
        keys = [_heads_view(values[i], lay.kv_heads, lay.packed) for i in (1, 2)]
        present = [np.concatenate([values[i + 4], x], axis=2) if _at(values, i + 4) is not None else x
                   for i, x in enumerate(keys)]
        k, v = (np.repeat(x, lay.q_heads // lay.kv_heads, axis=1) for x in present)
        stages = [(q4 @ k.swapaxes(-1, -2) * dt.type(self.scale(lay.head_qk))).astype(dt)]
        cap = self.attrs["softcap"]
        stages.append((cap * np.tanh(stages[0] / cap)).astype(dt) if cap > 0 else stages[0])
        bias = self.bias(values, stages[1].shape, lay.past_len, dt)
        stages.append(stages[1] + bias)
        s = stages[2].astype(self.softmax_dtype(dt))
        attended = (bias != -np.inf).any(axis=-1, keepdims=True)
        e = np.exp(s - np.where(attended, s, 0).max(axis=-1, keepdims=True), where=attended, out=np.zeros_like(s))
        stages.append((e / np.where(attended, e.sum(axis=-1, keepdims=True), 1)).astype(dt))
        y = stages[3] @ v
        if lay.packed:
            y = y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)
        return [y.astype(dt), present[0], present[1], stages[self.attrs["qk_matmul_output_mode"]]]

    # ---- code -------------------------------------------------------------------
    def scratch(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> dict[str, TensorType]:
        """Scratch buffers (kernel field -> type): present K/V not requested as outputs, one head's
        scores, the packed layout's contiguous Q and Y rows, a softmax row in another precision."""
        lay = self.layout(inputs)
        dt = inputs[0].dtype
        need = {"present_key": (lay.batch, lay.kv_heads, lay.kv_len, lay.head_qk),
                "present_value": (lay.batch, lay.kv_heads, lay.kv_len, lay.head_v)}
        out = {name: TensorType(dt, shape) for i, (name, shape) in enumerate(need.items(), 1) if _at(outputs, i) is None}
        out["scores"] = TensorType(dt, (lay.q_len, lay.kv_len))
        if lay.packed:
            out["q_buf"] = TensorType(dt, (lay.q_len, lay.head_qk))
            out["y_buf"] = TensorType(dt, (lay.q_len, lay.head_v))
        if self.softmax_dtype(dt) != dt:
            out["row"] = TensorType(self.softmax_dtype(dt), (lay.kv_len,))
        return out

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return list(self.scratch(inputs, outputs).values())


@register
class Attention_24(Attention):
    """Adds ``nonpad_kv_seqlen`` (input 6), valid keys per batch of an external cache."""

    since_version = 24


@register
class Attention_25(Attention):
    """Adds the sliding window (``left_window_size``, ``right_window_size``); 4-D inputs take heads from shapes."""

    since_version = 25
    heads_from_shape_only = True


_UPDATE_RULES = {"linear": (False, False), "gated": (True, False), "delta": (False, True), "gated_delta": (True, True)}


@register
class LinearAttention(Op):
    """Linear attention by its recurrence (``update_rule``: linear, gated, delta, gated_delta).

    ``chunk_size`` only tunes chunk-parallel implementations; the sequential
    recurrence computes the same result, so it is not used.
    """

    op_type = "LinearAttention"
    since_version = 27

    def rule(self) -> tuple[bool, bool]:
        """(gated, delta) of ``update_rule``."""
        rule = self.attrs["update_rule"]
        if rule not in _UPDATE_RULES:
            raise self.error(f"update_rule {rule!r} is not one of {sorted(_UPDATE_RULES)}")
        return _UPDATE_RULES[rule]

    def sizes(self, inputs: list[Optional[TensorType]]) -> tuple[Dim, Dim, int, int, int, int]:
        """(batch, steps, q_heads, kv_heads, d_k, d_v)."""
        q, k, v = inputs[0], inputs[1], inputs[2]
        qh, kvh = self.attrs.get("q_num_heads"), self.attrs.get("kv_num_heads")
        if not qh or not kvh or qh < 0 or kvh < 0 or qh % kvh:
            raise self.error(f"q_num_heads ({qh}) must be a positive multiple of kv_num_heads ({kvh})")
        if not q.rank == k.rank == v.rank == 3:
            raise self.error(f"query, key and value must be 3-D (B, T, H*D), got {q.shape}, {k.shape}, {v.shape}")
        dk, dv = _split_heads(self, q.shape[2], qh, "query"), _split_heads(self, v.shape[2], kvh, "value")
        if not dims_equal(k.shape[2], kvh * dk) or not all(_same_shape(t.shape[:2], q.shape[:2]) for t in (k, v)):
            raise self.error(f"query {q.shape}, key {k.shape} and value {v.shape} disagree (d_k = {dk})")
        return q.shape[0], q.shape[1], qh, kvh, dk, dv

    def check_gates(self, inputs: list[Optional[TensorType]], b: Dim, steps: Dim, kvh: int, dk: int) -> None:
        """decay and beta are given exactly when the rule uses them, with a valid last dim."""
        gated, delta = self.rule()
        for i, what, used, widths in ((4, "decay", gated, (kvh, kvh * dk)), (5, "beta", delta, (kvh, 1))):
            t = _at(inputs, i)
            if (t is not None) != used:
                raise self.error(f"update_rule {self.attrs['update_rule']!r} {'requires' if used else 'forbids'} {what}")
            if t is None:
                continue
            if t.dtype != inputs[0].dtype or t.rank != 3 or not dims_equal(t.shape[0], b) or not dims_equal(t.shape[1], steps) \
                    or t.shape[2] not in widths:
                raise self.error(f"{what} of shape {t.shape} must be ({b}, {steps}, {' or '.join(map(str, widths))})")

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        q = inputs[0]
        if q.dtype not in FLOAT_TYPES or any(t.dtype != q.dtype for t in inputs[:3]):
            types = [str(t.dtype) for t in inputs[:3]]
            raise self.error(f"query, key and value must share one type of float32 or float64, got {types}")
        b, steps, qh, kvh, dk, dv = self.sizes(inputs)
        self.check_gates(inputs, b, steps, kvh, dk)
        state = (b, kvh, dk, dv)
        past = _at(inputs, 3)
        if past is not None and (past.dtype != q.dtype or not _same_shape(past.shape, state)):
            raise self.error(f"past_state of shape {past.shape} ({past.dtype}) does not match {state} ({q.dtype})")
        return [TensorType(q.dtype, (b, steps, qh * dv)), TensorType(q.dtype, state)]

    def scale(self, dk: int) -> float:
        return self.attrs["scale"] or 1.0 / float(np.sqrt(dk))

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        q, k, v = values[0], values[1], values[2]
        past, decay, beta = _at(values, 3), _at(values, 4), _at(values, 5)
        b, steps, qh, kvh, dk, dv = self.sizes([TensorType(x.dtype, x.shape) for x in values[:3]])
        q4, k4, v4 = (_heads_view(x, h, True) for x, h in ((q, qh), (k, kvh), (v, kvh)))
        state = past.copy() if past is not None else np.zeros((b, kvh, dk, dv), q.dtype)
        y = np.zeros((b, qh, steps, dv), q.dtype)
        for t in range(steps):
            if decay is not None:
                g = decay[:, t].reshape(b, kvh, -1)  # (b, kvh, 1 or dk)
                state = state * np.exp(g)[..., None]
            vt = v4[:, :, t]
            if beta is not None:
                vt = beta[:, t].reshape(b, -1, 1) * (vt - np.einsum("bhdm,bhd->bhm", state, k4[:, :, t]))
            state = state + k4[:, :, t, :, None] * vt[:, :, None, :]
            y[:, :, t] = self.scale(dk) * np.einsum("bhd,bhdm->bhm", q4[:, :, t], np.repeat(state, qh // kvh, axis=1))
        return [y.transpose(0, 2, 1, 3).reshape(b, steps, qh * dv).astype(q.dtype), state.astype(q.dtype)]

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        b, _, _, kvh, dk, dv = self.sizes(inputs)
        state = [] if _at(outputs, 1) is not None else [TensorType(inputs[0].dtype, (b, kvh, dk, dv))]
        return [TensorType(inputs[0].dtype, (dv,))] + state
