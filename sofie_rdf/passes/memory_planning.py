"""Memory plan: where every tensor of the generated ``infer`` lives.

Graph inputs and outputs are the caller's buffers; weights are Session
members; views (Reshape, Flatten, ...) share their source's memory; every
other tensor gets a slot in a per-type arena.  Slots are reused once the
tensors in them are dead, so the arena is far smaller than the sum of the
intermediates; an element-wise operator writes over an input that dies at it
(``inplace_inputs`` of its op), so a chain of them runs in one slot.  Sizes
may be symbolic: a slot's size is then the maximum of its tenants' size
expressions and the arena grows at run time only when
a dim exceeds every earlier value.  A tensor sized by a dim only known while
the code runs (NonZero's count) cannot have an offset computed up front: it
gets a buffer of its own (kind ``dynamic``), reserved when its size is known
and also grown only past the largest size seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import sympy

from ..ir import Model
from ..ir.dims import Dim, dims_equal, simplify
from .constant_folding import runtime_inputs
from .shape_inference import op_for

# Slots start on multiples of this many elements (64 bytes for float).
ALIGN_ELEMENTS = 16
# Size used to compare symbolic sizes when choosing a slot.
_PROBE = 64


@dataclass
class Storage:
    """Where one tensor lives.

    kind: ``input`` | ``output`` | ``weight`` | ``symbolic`` (value known from
    the dims) | ``arena`` (``slot`` set) | ``view`` (shares ``root``) |
    ``dynamic`` (own buffer, sized at run time).
    """

    kind: str
    root: str = ""
    slot: int = -1


@dataclass
class MemoryPlan:
    storage: dict[str, Storage] = field(default_factory=dict)
    # per dtype: size expression of each slot, and its offset in the arena
    slots: dict[np.dtype, list[Dim]] = field(default_factory=dict)
    slot_dtype: list[np.dtype] = field(default_factory=list)
    # positions of graph outputs copied at the end instead of written in place
    copies: list[int] = field(default_factory=list)
    # node index -> names of its scratch tensors (Op.workspace), live during that node only
    workspaces: dict[int, list[str]] = field(default_factory=dict)
    # (dim, rows): infer runs the leading dim in blocks of that many rows (passes/row_blocks.py), the
    # arena sized for one block
    row_block: Optional[tuple[str, int]] = None

    def offsets(self, dtype: np.dtype) -> list[Dim]:
        out, acc = [], 0
        for size in self.slots.get(dtype, []):
            out.append(acc)
            acc = simplify(acc + _aligned(size))
        return out

    def arena_size(self, dtype: np.dtype) -> Dim:
        return simplify(sum((_aligned(s) for s in self.slots.get(dtype, [])), 0))

    def root(self, name: str) -> str:
        """The tensor whose memory ``name`` uses (itself unless a view)."""
        s = self.storage.get(name)
        return self.root(s.root) if s is not None and s.kind == "view" else name


def _aligned(size: Dim) -> Dim:
    if isinstance(size, int):
        return -(-size // ALIGN_ELEMENTS) * ALIGN_ELEMENTS
    return size


def _probe(size: Dim) -> int:
    if isinstance(size, int):
        return size
    return int(size.subs({s: _PROBE for s in size.free_symbols}))


def plan_memory(model: Model) -> MemoryPlan:
    plan = MemoryPlan()
    views = _assign_static(model, plan)
    _bind_outputs(model, plan)
    _assign_arena(model, plan, views)
    return plan


def _assign_static(model: Model, plan: MemoryPlan) -> dict[str, str]:
    """Inputs, weights, symbolic constants and views; returns view -> source."""
    for name in model.inputs:
        plan.storage[name] = Storage("input")
    for name in model.initializers:
        plan.storage.setdefault(name, Storage("weight"))
    # Known values only need storage where the run-time code reads them; the rest (a Reshape's
    # symbolic target, say) were used up at generation time and would be unused locals.
    read = set(model.outputs).union(*(runtime_inputs(model, node) for node in model.nodes))
    for name, t in model.tensors.items():
        if name not in plan.storage and t.value is not None and name in read:
            plan.storage[name] = Storage("weight" if t.is_constant else "symbolic")
    views: dict[str, str] = {}
    for node in model.nodes:
        if op_for(model, node).view and node.outputs[0]:
            views[node.outputs[0]] = node.inputs[0]
            plan.storage[node.outputs[0]] = Storage("view", root=node.inputs[0])
    return views


def runtime_sized(model: Model, size: Dim) -> bool:
    """Whether a size depends on a dim only known while the code runs."""
    return not isinstance(size, int) and any(s.name in model.runtime_dims for s in size.free_symbols)


def _bind_outputs(model: Model, plan: MemoryPlan) -> None:
    """Let graph outputs be written in place where possible, else copied (always when sized at run time)."""
    bound: set[str] = set()
    for k, out in enumerate(model.outputs):
        root = plan.root(out)
        kind = plan.storage[root].kind if root in plan.storage else "arena"
        if root in bound or kind in ("input", "weight", "symbolic") or runtime_sized(model, model.tensors[out].size):
            plan.copies.append(k)
            continue
        bound.add(root)
        plan.storage[root] = Storage("output", root=out)


def _assign_arena(model: Model, plan: MemoryPlan, views: dict[str, str]) -> None:
    last_use: dict[str, int] = {}
    for i, node in enumerate(model.nodes):
        for name in runtime_inputs(model, node):
            last_use[plan.root(name)] = i
        for name in node.outputs:
            if name in views:
                last_use[plan.root(name)] = max(last_use.get(plan.root(name), i), i)
    for k in plan.copies:
        src = model.outputs[k]
        root = plan.root(src)
        last_use[root] = len(model.nodes)
    free: dict[np.dtype, list[int]] = {}
    for i, node in enumerate(model.nodes):
        for name in node.outputs:
            if not name or name in plan.storage:
                continue
            source = _inplace_source(model, plan, node, name, last_use, i)
            if source is not None:  # the output takes the slot over; it is freed when the output dies
                plan.storage[name] = Storage("arena", slot=plan.storage[source].slot)
                del last_use[source]
            else:
                plan.storage[name] = _place(model, plan, free, name)
            last_use.setdefault(name, i)
        for name in _workspaces(model, plan, i, node):
            plan.storage[name] = _place(model, plan, free, name)
            last_use[name] = i
        for name, end in list(last_use.items()):
            s = plan.storage.get(name)
            if end == i and s is not None and s.kind == "arena":
                free.setdefault(model.tensors[name].dtype, []).append(s.slot)
                del last_use[name]


def _inplace_source(model: Model, plan: MemoryPlan, node, output: str, last_use: dict[str, int],
                    index: int) -> Optional[str]:
    """An input of ``node`` whose arena slot ``output`` can take over, if any.

    It must be one the operator may overwrite (``inplace_inputs``), read once by this node, die here, live
    in the arena itself (not a view of another tensor, nor a caller's buffer or a weight), and have the
    output's type and shape.
    """
    out = model.tensors[output]
    for k in getattr(op_for(model, node), "inplace_inputs", ()):  # declared by the element-wise bases
        name = node.inputs[k] if k < len(node.inputs) else ""
        s = plan.storage.get(name)
        if not name or s is None or s.kind != "arena" or node.inputs.count(name) != 1 or last_use.get(name) != index:
            continue
        t = model.tensors[name]
        if t.dtype == out.dtype and len(t.shape) == len(out.shape) and all(map(dims_equal, t.shape, out.shape)):
            return name
    return None


def _place(model: Model, plan: MemoryPlan, free: dict, name: str) -> Storage:
    t = model.tensors[name]
    if runtime_sized(model, t.size):
        return Storage("dynamic")
    return Storage("arena", slot=_take_slot(plan, free, t.dtype, t.size))


def _workspaces(model: Model, plan: MemoryPlan, index: int, node) -> list[str]:
    """Register the scratch tensors ``node``'s operator asks for (im2col buffers, ...)."""
    op = op_for(model, node)
    inputs = [model.tensors[i] if i else None for i in node.inputs]
    outputs = [model.tensors[o] if o else None for o in node.outputs]
    names = []
    for k, t in enumerate(op.workspace(inputs, outputs)):
        name = f"workspace {index} {k}"  # spaces: no clash with a tensor the planner already placed
        while name in model.tensors:
            name += "'"
        model.tensors[name] = t
        names.append(name)
    if names:
        plan.workspaces[index] = names
    return names


def _take_slot(plan: MemoryPlan, free: dict, dtype: np.dtype, size: Dim) -> int:
    """Index (global) of a free slot of ``dtype`` for ``size`` elements."""
    candidates = free.get(dtype, [])
    sizes = plan.slots.setdefault(dtype, [])
    local = [plan.slot_dtype[:g].count(dtype) for g in candidates]
    if candidates:
        want = _probe(size)
        fitting = [(g, li) for g, li in zip(candidates, local) if _probe(sizes[li]) >= want]
        g, li = min(fitting, key=lambda p: _probe(sizes[p[1]])) if fitting else \
            max(zip(candidates, local), key=lambda p: _probe(sizes[p[1]]))
        candidates.remove(g)
        sizes[li] = _max(sizes[li], size)
        return g
    sizes.append(size)
    plan.slot_dtype.append(dtype)
    return len(plan.slot_dtype) - 1


def _max(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return simplify(sympy.Max(a, b))


def slot_position(plan: MemoryPlan, slot: int) -> tuple[np.dtype, int]:
    """(dtype, index within that dtype's slots) of a global slot number."""
    dtype = plan.slot_dtype[slot]
    return dtype, plan.slot_dtype[:slot].count(dtype)


