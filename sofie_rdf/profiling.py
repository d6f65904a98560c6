"""Per-node profiles of a compiled model, ours and onnxruntime's, for ``Session.profile`` and ``sofie-rdf bench``.

A profiled Session is a twin of the Session built with a timer around every
node (``write_header(profile=True)``; the plain build has none, so profiling
costs nothing when not asked for).  The twin and the plain Session run the same
inputs in turn, call after call: the plain calls measure what the model costs
from Python, the twin's timers how that time splits over the nodes, and their
interleaving keeps both under the same machine conditions.  Medians, not means:
on a shared machine one preempted call can weigh more than a hundred others.

onnxruntime is a rival, not a dependency: :class:`OrtRunner` imports it only
when made.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import sympy

from .errors import SofieError


@dataclass
class NodeTime:
    """One node's median time per call."""

    index: int
    op_type: str
    name: str
    shapes: str                 # "input shapes -> output shapes", with the call's dims
    seconds: float
    share: float                # of the sum of the nodes' medians
    gflops: Optional[float]     # achieved GFLOP/s, where the operator has a FLOP count


@dataclass
class Profile:
    """Where the time of one call goes, node by node (see :meth:`Session.profile`)."""

    model: str
    backend: str
    repeat: int
    call: float                 # median seconds of a call of the plain Session from Python
    total: float                # median over calls of the per-node times' sum (the twin's)
    nodes: list[NodeTime]

    def by_op_type(self) -> list[tuple[str, int, float, float]]:
        """(op type, nodes, seconds, share) per operator type, most time first."""
        return _grouped([(n.op_type, n.seconds) for n in self.nodes], self.total)

    def table(self, top: Optional[int] = None) -> str:
        """The nodes as a text table, most time first (``top``: only that many)."""
        rows = sorted(self.nodes, key=lambda n: -n.seconds)[:top]
        lines = [f"model {self.model} ({self.backend}), median of {self.repeat} calls: "
                 f"{_us(self.call)} us per call from Python, {_us(self.total)} us in the nodes",
                 f"{'#':>4}  {'op type':<18} {'name':<28} {'us':>10} {'share':>6} {'GFLOP/s':>8}  shapes"]
        for n in rows:
            rate = f"{n.gflops:8.2f}" if n.gflops is not None else f"{'':8}"
            lines.append(f"{n.index:>4}  {n.op_type[:18]:<18} {n.name[:28]:<28} {_us(n.seconds):>10} "
                         f"{100 * n.share:5.1f}% {rate}  {n.shapes}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def profile_session(session: Any, twin: Any, arrays: Sequence[np.ndarray], repeat: int, warmup: int) -> Profile:
    """Run ``session`` and its profiled ``twin`` in turn ``repeat`` times on ``arrays``; see the module doc."""
    if repeat < 1:
        raise SofieError(f"model {session.name!r}: repeat must be at least 1, got {repeat}")
    for _ in range(warmup):
        session.infer(*arrays)
        twin.infer(*arrays)
    infos = twin.code.nodes
    calls = np.empty(repeat)
    per_node = np.empty((repeat, len(infos)))
    for r in range(repeat):
        start = time.perf_counter()
        session.infer(*arrays)
        calls[r] = time.perf_counter() - start
        twin.profile_reset()
        twin.infer(*arrays)
        per_node[r] = twin.profile_ns()
    per_node *= 1e-9
    medians = np.median(per_node, axis=0)
    total = float(np.median(per_node.sum(axis=1)))
    summed = float(medians.sum())
    dims = {sympy.Symbol(name, integer=True, nonnegative=True): v for name, v in twin.call_dims(arrays).items()}
    nodes = [NodeTime(k, info.op_type, info.name, _shapes(info, dims), float(medians[k]),
                      float(medians[k]) / summed if summed > 0 else 0.0, _gflops(info.flops, dims, medians[k]))
             for k, info in enumerate(infos) if info.code]
    return Profile(session.name, session.backend, repeat, float(np.median(calls)), total, nodes)


def example_inputs(model: Any, batch: int = 1, dims: Optional[dict[str, int]] = None,
                   seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs of ``model`` (its ``inputs``: TensorInfo): normal floats, integers 0 and 1, booleans.

    A named dim leading an input takes ``batch``; any other takes its value from ``dims``.
    """
    dims = dict(dims or {})
    rng = np.random.default_rng(seed)
    arrays = []
    for info in model.inputs:
        shape = []
        for axis, d in enumerate(info.shape):
            if isinstance(d, int):
                shape.append(d)
            elif str(d) in dims:
                shape.append(int(dims[str(d)]))
            elif axis == 0:
                shape.append(batch)
            else:
                raise SofieError(f"model {model.name!r}: input {info.name!r} has dim {str(d)!r} on axis {axis}: "
                                 f"give its value (--dims {d}=N)")
        dtype = np.dtype(info.dtype)
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind in "iu":
            arrays.append(rng.integers(0, 2, shape).astype(dtype))
        elif dtype == np.bool_:
            arrays.append(rng.integers(0, 2, shape).astype(np.bool_))
        else:
            raise SofieError(f"model {model.name!r}: no example values for input {info.name!r} of type {dtype}")
    return arrays


def _shapes(info: Any, dims: dict) -> str:
    def spell(types: list) -> str:
        return ", ".join("x".join(str(sympy.sympify(d).subs(dims)) for d in t.shape) or "scalar"
                         for t in types if t is not None)
    return f"{spell(info.inputs)} -> {spell(info.outputs)}"


def _gflops(flops: Optional[sympy.Expr], dims: dict, seconds: float) -> Optional[float]:
    if flops is None or seconds <= 0:
        return None
    value = flops.subs(dims)
    return float(value) / seconds * 1e-9 if value.is_number else None


def _grouped(items: list[tuple[str, float]], total: float) -> list[tuple[str, int, float, float]]:
    count: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    for key, s in items:
        count[key] += 1
        seconds[key] += s
    return sorted(((k, count[k], seconds[k], seconds[k] / total if total > 0 else 0.0) for k in count),
                  key=lambda row: -row[2])


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def interleaved(calls: Sequence[Callable[[], Any]], repeat: int, warmup: int) -> list[float]:
    """Median seconds of each of ``calls``, run in turn ``repeat`` times (after ``warmup`` rounds) so that all
    see the same machine conditions: ratios of the medians are what to compare.  Each round starts one call
    further on: a call that always followed the same other one would always find the caches as that one
    left them (measured: identical code 10-40% slower when always run right after onnxruntime)."""
    for _ in range(warmup):
        for call in calls:
            call()
    times = np.empty((repeat, len(calls)))
    for r in range(repeat):
        for i in range(len(calls)):
            k = (r + i) % len(calls)
            start = time.perf_counter()
            calls[k]()
            times[r, k] = time.perf_counter() - start
    return [float(t) for t in np.median(times, axis=0)]


@dataclass
class OrtProfile:
    """onnxruntime's per-node profile of one model (its graph after its own optimizations and fusions)."""

    nodes: list[tuple[str, str, float]]         # (node name, op type, median seconds per call)

    @property
    def total(self) -> float:
        return sum(s for _, _, s in self.nodes)

    def by_op_type(self) -> list[tuple[str, int, float, float]]:
        return _grouped([(op, s) for _, op, s in self.nodes], self.total)


class OrtRunner:
    """``model`` (a path or serialized ONNX) in onnxruntime on the CPU with ``threads`` threads, fed ``arrays``."""

    def __init__(self, model: Any, arrays: Sequence[np.ndarray], threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:
            raise SofieError("onnxruntime is not installed (pip install onnxruntime) to compare with") from None
        self._ort = ort
        self.source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else model
        self.threads = threads
        self.session = ort.InferenceSession(self.source, self._options(), providers=["CPUExecutionProvider"])
        self.feeds = {i.name: a for i, a in zip(self.session.get_inputs(), arrays)}

    def _options(self) -> Any:
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = self.threads
        return opts

    def run(self) -> list[np.ndarray]:
        return self.session.run(None, self.feeds)

    def profile(self, repeat: int, warmup: int) -> OrtProfile:
        """Per-node kernel times from a profiling session's JSON trace (medians over ``repeat`` runs)."""
        with tempfile.TemporaryDirectory() as folder:
            opts = self._options()
            opts.enable_profiling = True
            opts.profile_file_prefix = os.path.join(folder, "ort")
            profiled = self._ort.InferenceSession(self.source, opts, providers=["CPUExecutionProvider"])
            for _ in range(warmup + repeat):
                profiled.run(None, self.feeds)
            with open(profiled.end_profiling()) as f:
                events = json.load(f)
        return OrtProfile(_ort_nodes(events, warmup))


def _ort_nodes(events: list[dict], warmup: int) -> list[tuple[str, str, float]]:
    """Median kernel time per node from onnxruntime's trace, its first ``warmup`` runs dropped."""
    times: dict[str, list[float]] = defaultdict(list)
    op_types: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            name = e["name"][:-len("_kernel_time")]
            times[name].append(e["dur"] * 1e-6)
            op_types[name] = e.get("args", {}).get("op_name", "?")
    return [(name, op_types[name], float(np.median(ts[warmup:] or ts))) for name, ts in times.items()]


def comparison_table(ours: Profile, theirs: OrtProfile) -> str:
    """Time per operator type, ours next to onnxruntime's (their types after their fusions, so a row may
    be empty on one side: FusedConv here, Conv there)."""
    mine = {k: (n, s) for k, n, s, _ in ours.by_op_type()}
    other = {k: (n, s) for k, n, s, _ in theirs.by_op_type()}
    keys = sorted(mine.keys() | other.keys(), key=lambda k: -max(mine.get(k, (0, 0))[1], other.get(k, (0, 0))[1]))
    lines = [f"{'op type':<22} {'sofie-rdf us':>13} {'nodes':>6} {'onnxruntime us':>15} {'nodes':>6}"]
    for k in keys:
        a, b = mine.get(k), other.get(k)
        left = f"{_us(a[1]):>13} {a[0]:>6}" if a else f"{'':>13} {'':>6}"
        right = f"{_us(b[1]):>15} {b[0]:>6}" if b else f"{'':>15} {'':>6}"
        lines.append(f"{k[:22]:<22} {left} {right}")
    lines.append(f"{'in the nodes':<22} {_us(ours.total):>13} {'':>6} {_us(theirs.total):>15}")
    return "\n".join(lines)
