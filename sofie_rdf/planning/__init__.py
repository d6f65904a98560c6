"""Planning: what a model needs from memory and how its batch runs, decided once per model and target.

:func:`plan` is the one entry point: it rewrites a prepared model (``passes/``), binds every node to its
operator and to the target's emitter once, lets the target pack the weights, places every tensor
(:mod:`.memory`, from liveness in :mod:`.liveness`) and chooses row blocks (:mod:`.row_blocks`).  The result,
a :class:`Planned`, is cached per (IR digest, target): header writers and sessions only read it.
"""

from __future__ import annotations

from .memory import MemoryPlan, Placement, plan_memory
from .planned import Planned, plan, plan_count
from .row_blocks import plan_row_blocks

__all__ = ["MemoryPlan", "Placement", "Planned", "plan", "plan_count", "plan_memory", "plan_row_blocks"]
