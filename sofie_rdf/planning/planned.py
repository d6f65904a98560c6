"""A model planned for one target: rewritten graph, bound operators and emitters, memory plan.

Planning is the expensive part of generating code (folding, fusions, weight packing such as Winograd
transforms), so it runs once per (model content, target) and process: the cache key is a digest of the
IR and the target's key, never the model object, so two loads of one file share a plan and a model
changed in place gets a new one.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import SofieError
from ..ir import Model
from ..ops import op_for
from ..ops.base import Op
from ..ops.registry import registry_generation
from ..passes import prepare, rewrite
from .control_flow import lower_control_flow
from .memory import MemoryPlan, plan_memory
from .row_blocks import OPEN_ROWS, plan_row_blocks, static_batch, static_block, with_leading_dim

# Planned models kept per process (least recently used dropped first).
_CACHE_SIZE = 32


@dataclass(frozen=True)
class Planned:
    """Everything a session writer reads: the rewritten IR, node ``i``'s operator ``ops[i]`` and the
    target's emitter ``emitters[i]`` for it, and where every tensor lives."""

    model: Model
    target: Any
    ops: tuple[Op, ...]
    emitters: tuple[Any, ...]
    memory: MemoryPlan


_cache: OrderedDict[tuple[str, str, int], Planned] = OrderedDict()
_lock = threading.Lock()
_runs = 0


def plan(model: Model, target: Any, prepared: Optional[Model] = None, digest: Optional[str] = None) -> Planned:
    """``model`` planned for ``target`` (a :class:`~sofie_rdf.targets.Target`), computed once per content.

    ``prepared`` is ``model`` already validated and shape-inferred (:func:`~sofie_rdf.passes.prepare`), when
    the caller has it; it is copied, never changed.  ``digest`` is ``model.digest()``, when known.
    """
    key = (digest or model.digest(), target.key, registry_generation())
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    planned = _plan(prepared if prepared is not None else prepare(model), target)
    with _lock:
        _cache[key] = planned
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return planned


def plan_count() -> int:
    """How many times the pipeline ran in this process (the tests check the cache by it)."""
    return _runs


def _plan(prepared: Model, target: Any) -> Planned:
    """The plan of ``prepared``; for a static batch whose rows run independently, the plan of one block of them
    (planning/row_blocks.py), its ``memory.row_block`` (batch, rows per block)."""
    blocks = _static_blocks(prepared, target)
    if blocks is None:
        return _plan_graph(prepared, target)
    batch, block = blocks
    inner = _plan_graph(prepare(with_leading_dim(prepared, block)), target)
    return dataclasses.replace(inner, memory=dataclasses.replace(inner.memory, row_block=(batch, block)))


def _static_blocks(prepared: Model, target: Any) -> Optional[tuple[int, int]]:
    """(batch, rows per block) where the model's batch is static and the graph planned with it open runs in row
    blocks: the open graph is planned in full (the test that its rows are independent is on the rewritten graph,
    whose shape arithmetic has been folded away), a second planning paid once per model and target."""
    batch = static_batch(prepared) if target.row_blocks else None
    if batch is None:
        return None
    try:
        general = _plan_graph(prepare(with_leading_dim(prepared, OPEN_ROWS)), target)
    except SofieError:  # the graph holds its batch as a number (a Reshape to (32, -1)): it runs whole
        return None
    if general.memory.row_block is None:
        return None
    block = static_block(batch, general.memory.row_block[1])
    return None if block is None else (batch, block)


def _plan_graph(prepared: Model, target: Any) -> Planned:
    global _runs
    _runs += 1
    # control flow decided while running: marker nodes
    rewriter = functools.partial(rewrite, attention=target.attention_op, index_grids=target.grid_scatter_op,
                                 row_pooling=target.pooled_gemm, conv_pooling=target.pools_conv,
                                 edge_conv=target.neighbour_gather, edge_chains=target.edge_chains,
                                 selections=target.selection_products)
    model = lower_control_flow(rewriter(_copy(prepared)), rewriter)
    ops = tuple(op_for(node, model.name) for node in model.nodes)
    emitters = tuple(target.bind(op) for op in ops)
    target.pack_weights(model, emitters)  # may rename weight inputs of nodes: ops read node.inputs
    inputs = [[model.tensors[i] if i else None for i in n.inputs] for n in model.nodes]
    outputs = [[model.tensors[o] if o else None for o in n.outputs] for n in model.nodes]
    memory = plan_memory(model, ops, [e.workspace(i, o) for e, i, o in zip(emitters, inputs, outputs)])
    memory = dataclasses.replace(memory, row_block=plan_row_blocks(model, ops, memory))
    return Planned(model, target, ops, emitters, memory)


def _copy(model: Model) -> Model:
    """A copy the passes may rewrite (they replace nodes, tensors and weights; they never change them)."""
    out = copy.copy(model)
    out.nodes = [dataclasses.replace(n, inputs=list(n.inputs), outputs=list(n.outputs), attrs=dict(n.attrs))
                 for n in model.nodes]
    out.tensors = dict(model.tensors)
    out.initializers = dict(model.initializers)
    out.constraints = list(model.constraints)
    out.runtime_dims = dict(model.runtime_dims)
    return out
