"""Memory plan: where every tensor of the generated ``infer`` lives.

Graph inputs and outputs are the caller's buffers; weights are Session
members; views (Reshape, Flatten, ...) share their source's memory; every
other tensor gets a slot in a per-type arena.  Slots are reused once the
tensors in them are dead, so the arena is far smaller than the sum of the
intermediates; an element-wise operator writes over an input that dies at it
(:attr:`Op.inplace_inputs`), so a chain of them runs in one slot.  Sizes
may be symbolic: a slot's size is then the maximum of its tenants' size
expressions and the arena grows at run time only when
a dim exceeds every earlier value.  A tensor sized by a dim only known while
the code runs (NonZero's count) cannot have an offset computed up front: it
gets a buffer of its own (kind ``dynamic``), reserved when its size is known
and also grown only past the largest size seen.

The result is a frozen :class:`MemoryPlan` mapping every tensor (and every
node's scratch tensors) to a :class:`Placement`; emitters and session writers
only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import sympy

from ..ir import Model, Node, TensorType
from ..ir.dims import Dim, dims_equal, simplify
from ..ops.base import Op
from .liveness import last_uses, read_at_run_time

# Slots start on multiples of this many elements (64 bytes for float).
ALIGN_ELEMENTS = 16
# Size used to compare symbolic sizes when choosing a slot.
_PROBE = 64


@dataclass(frozen=True)
class Placement:
    """Where one tensor lives.

    kind: ``input`` | ``output`` (``root``: the graph output written there) | ``weight`` | ``symbolic``
    (value known from the dims) | ``arena`` (``dtype``'s arena at ``offset`` elements) | ``view`` (shares
    ``root``'s memory) | ``dynamic`` (own buffer, sized at run time).
    """

    kind: str
    root: str = ""
    slot: int = -1
    dtype: Optional[np.dtype] = None
    offset: Dim = 0


@dataclass(frozen=True)
class MemoryPlan:
    """Every tensor's placement, the arenas' sizes and what else the session writer needs."""

    storage: Mapping[str, Placement]
    # per dtype, in order of first use: the arena's size in elements
    arenas: Mapping[np.dtype, Dim]
    # positions of graph outputs copied at the end instead of written in place
    copies: tuple[int, ...]
    # node index -> names of its scratch tensors (the emitter's workspace), live during that node only
    workspaces: Mapping[int, tuple[str, ...]]
    # the scratch tensors' types (they are not tensors of the graph)
    scratch: Mapping[str, TensorType]
    # (dim, rows): infer runs the leading dim in blocks of that many rows (planning/row_blocks.py), the
    # arena sized for one block.  dim is the symbol's name, or for a static batch its size: the graph was then
    # planned for one block of rows, and infer takes the whole batch
    row_block: Optional[tuple[Union[str, int], int]] = None

    def root(self, name: str) -> str:
        """The tensor whose memory ``name`` uses (itself unless a view)."""
        s = self.storage.get(name)
        return self.root(s.root) if s is not None and s.kind == "view" else name

    def tensor_type(self, model: Model, name: str) -> TensorType:
        """Type of a graph tensor or a scratch tensor."""
        return self.scratch[name] if name in self.scratch else model.tensors[name]


def runtime_sized(model: Model, size: Dim) -> bool:
    """Whether a size depends on a dim only known while the code runs."""
    return not isinstance(size, int) and any(s.name in model.runtime_dims for s in size.free_symbols)


def plan_memory(model: Model, ops: Sequence[Op], workspaces: Sequence[Sequence[TensorType]]) -> MemoryPlan:
    """Place every tensor of ``model``; ``ops`` are its nodes' operators, ``workspaces`` the scratch tensors
    each node's code needs."""
    b = _Builder(model, ops)
    b.assign_static()
    b.bind_outputs()
    b.assign_arena(workspaces)
    return b.freeze()


@dataclass
class _Builder:
    model: Model
    ops: Sequence[Op]
    storage: dict[str, Placement] = field(default_factory=dict)
    slots: dict[np.dtype, list[Dim]] = field(default_factory=dict)
    # per global slot: its dtype and its index among that dtype's slots
    slot_dtype: list[np.dtype] = field(default_factory=list)
    slot_local: list[int] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)
    workspaces: dict[int, tuple[str, ...]] = field(default_factory=dict)
    scratch: dict[str, TensorType] = field(default_factory=dict)

    def root(self, name: str) -> str:
        s = self.storage.get(name)
        return self.root(s.root) if s is not None and s.kind == "view" else name

    def assign_static(self) -> None:
        """Inputs, weights, symbolic constants and views."""
        model = self.model
        for name in model.inputs:
            self.storage[name] = Placement("input")
        for name in model.initializers:
            self.storage.setdefault(name, Placement("weight"))
        # Known values only need storage where the run-time code reads them; the rest (a Reshape's
        # symbolic target, say) were used up at generation time and would be unused locals.
        read = read_at_run_time(model, self.ops)
        for name, t in model.tensors.items():
            if name not in self.storage and t.value is not None and not t.value_at_run_time and name in read:
                self.storage[name] = Placement("weight" if t.is_constant else "symbolic")
        for node, op in zip(model.nodes, self.ops):
            if op.view and node.outputs[0]:
                self.storage[node.outputs[0]] = Placement("view", root=node.inputs[0])

    def bind_outputs(self) -> None:
        """Let graph outputs be written in place where possible, else copied (always when sized at run time)."""
        model = self.model
        bound: set[str] = set()
        for k, out in enumerate(model.outputs):
            root = self.root(out)
            kind = self.storage[root].kind if root in self.storage else "arena"
            if root in bound or kind in ("input", "weight", "symbolic") or runtime_sized(model, model.tensors[out].size):
                self.copies.append(k)
                continue
            bound.add(root)
            self.storage[root] = Placement("output", root=out)

    def assign_arena(self, workspaces: Sequence[Sequence[TensorType]]) -> None:
        model = self.model
        views = {n: self.root(n) for n, s in self.storage.items() if s.kind == "view"}
        last_use = last_uses(model, self.ops, views)
        for k in self.copies:
            last_use[self.root(model.outputs[k])] = len(model.nodes)
        free: dict[np.dtype, list[int]] = {}
        for i, (node, op) in enumerate(zip(model.nodes, self.ops)):
            for name in node.outputs:
                if not name or name in self.storage:
                    continue
                source = self._inplace_source(node, op, name, last_use, i)
                if source is not None:  # the output takes the slot over; it is freed when the output dies
                    self.storage[name] = Placement("arena", slot=self.storage[source].slot)
                    del last_use[source]
                else:
                    self.storage[name] = self._place(free, model.tensors[name])
                last_use.setdefault(name, i)
            for name, t in self._scratch(i, workspaces[i]):
                self.storage[name] = self._place(free, t)
                last_use[name] = i
            for name, end in list(last_use.items()):
                s = self.storage.get(name)
                if end == i and s is not None and s.kind == "arena":
                    free.setdefault(self._type(name).dtype, []).append(s.slot)
                    del last_use[name]

    def _type(self, name: str) -> TensorType:
        return self.scratch[name] if name in self.scratch else self.model.tensors[name]

    def _scratch(self, index: int, types: Sequence[TensorType]) -> list[tuple[str, TensorType]]:
        """Name the scratch tensors node ``index``'s code asks for (im2col buffers, ...)."""
        named = []
        for k, t in enumerate(types):
            name = f"workspace {index} {k}"  # spaces: no clash with a tensor of the graph
            while name in self.model.tensors:
                name += "'"
            self.scratch[name] = t
            named.append((name, t))
        if named:
            self.workspaces[index] = tuple(n for n, _ in named)
        return named

    def _inplace_source(self, node: Node, op: Op, output: str, last_use: dict[str, int], index: int) -> Optional[str]:
        """An input of ``node`` whose arena slot ``output`` can take over, if any.

        It must be one the operator may overwrite (``inplace_inputs``), read once by this node, die here, live
        in the arena itself (not a view of another tensor, nor a caller's buffer or a weight), and have the
        output's type and shape.
        """
        out = self.model.tensors[output]
        for k in op.inplace_inputs:
            name = node.inputs[k] if k < len(node.inputs) else ""
            s = self.storage.get(name)
            if not name or s is None or s.kind != "arena" or node.inputs.count(name) != 1 or last_use.get(name) != index:
                continue
            t = self.model.tensors[name]
            if t.dtype == out.dtype and len(t.shape) == len(out.shape) and all(map(dims_equal, t.shape, out.shape)):
                return name
        return None

    def _place(self, free: dict, t: TensorType) -> Placement:
        if runtime_sized(self.model, t.size):
            return Placement("dynamic")
        return Placement("arena", slot=self._take_slot(free, t.dtype, t.size))

    def _take_slot(self, free: dict, dtype: np.dtype, size: Dim) -> int:
        """Index (global) of a free slot of ``dtype`` for ``size`` elements."""
        candidates = free.get(dtype, [])
        sizes = self.slots.setdefault(dtype, [])
        local = [self.slot_local[g] for g in candidates]
        if candidates:
            want = _probe(size)
            fitting = [(g, li) for g, li in zip(candidates, local) if _probe(sizes[li]) >= want]
            g, li = min(fitting, key=lambda p: _probe(sizes[p[1]])) if fitting else \
                max(zip(candidates, local), key=lambda p: _probe(sizes[p[1]]))
            candidates.remove(g)
            sizes[li] = _max(sizes[li], size)
            return g
        sizes.append(size)
        self.slot_dtype.append(dtype)
        self.slot_local.append(len(sizes) - 1)
        return len(self.slot_dtype) - 1

    def freeze(self) -> MemoryPlan:
        """The plan with every arena tensor's dtype and offset, each computed once."""
        offsets: dict[int, tuple[np.dtype, Dim]] = {}
        for dtype, sizes in self.slots.items():
            slots = [g for g, d in enumerate(self.slot_dtype) if d == dtype]
            acc: Dim = 0
            for slot, size in zip(slots, sizes):
                offsets[slot] = (dtype, acc)
                acc = simplify(acc + _aligned(size))
        arenas = {d: simplify(sum((_aligned(s) for s in sizes), 0)) for d, sizes in self.slots.items()}
        storage = {n: Placement(s.kind, s.root, s.slot, *offsets[s.slot]) if s.kind == "arena" else s
                   for n, s in self.storage.items()}
        return MemoryPlan(storage, arenas, tuple(self.copies), dict(self.workspaces), dict(self.scratch))


def _aligned(size: Dim) -> Dim:
    """``size`` rounded up to whole ALIGN_ELEMENTS, symbolic sizes too: the next slot's offset then is a
    multiple of it whatever the dims are when the code runs (vector loads that straddle cache lines made
    ParticleNet's pointwise layers 1.6x slower with the particle count free)."""
    if isinstance(size, int):
        return -(-size // ALIGN_ELEMENTS) * ALIGN_ELEMENTS
    return ALIGN_ELEMENTS * sympy.ceiling(size / ALIGN_ELEMENTS)


def _probe(size: Dim) -> int:
    if isinstance(size, int):
        return size
    return int(size.subs({s: _PROBE for s in size.free_symbols}))


def _max(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return simplify(sympy.Max(a, b))
