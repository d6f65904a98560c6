"""``sofie_rdf::FusedElementwise``: a chain of element-wise operators run as one loop.

Made by ``passes/elementwise_fusion.py`` out of chains like GELU's exported
form (``Mul -> Erf -> Add -> Mul -> Mul``): instead of one pass over memory per
operator, each element goes through the whole chain while it is in a
register.  Input 0 is the chain's input; the others are, in step order, the
second operands of its binary steps, each either of the output's shape or a
single (constant) value.  The attribute ``steps`` is a JSON list, one entry per
operator: ``{"op", "version", "attrs", "operand"}`` where ``operand`` is the
index of the step's other input (-1 for a unary step) and ``operand_first``
says it is the binary operator's first argument.  The CPU emitter
(``targets/cpu/emitters/elementwise.py``) runs each step as its own operator's
lambda, so the fused loop computes exactly what the separate nodes compute.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from ..ir import TensorType
from ..ir.dims import dims_equal
from .base import Op, static_size
from .registry import INTERNAL_DOMAIN, lookup, make_node, register


def step_op(step: dict[str, Any], model: str) -> Op:
    """The operator of one step, built like any node (schema defaults, checks)."""
    inputs = ["x"] if step["operand"] < 0 else ["a", "b"]
    node = make_node(step["op"], inputs, ["y"], step["attrs"], version=int(step["version"]), model=model)
    return lookup(node.op_type, node.domain, node.version)(node, model)


@register
class FusedElementwise(Op):
    """y = f_n(...f_2(f_1(x, c_1), c_2)...) element by element, in one loop."""

    op_type = "FusedElementwise"
    row_wise = True
    domain = INTERNAL_DOMAIN
    attr_defaults = {"steps": "[]"}

    @property
    def steps(self) -> list[dict[str, Any]]:
        return json.loads(self.attrs["steps"])

    @property
    def ops(self) -> list[Op]:
        return [step_op(s, self.model) for s in self.steps]

    @property
    def inplace_inputs(self) -> tuple[int, ...]:
        """Any input of the output's shape: element i of every input is read before element i is written."""
        return tuple(range(len(self.node.inputs)))

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        for k, t in enumerate(inputs[1:], 1):
            if t.dtype != x.dtype:
                raise self.error(f"operand {k} has type {t.dtype}, the chain {x.dtype}")
            if not (static_size(t.shape) == 1 or (len(t.shape) == len(x.shape) and all(map(dims_equal, t.shape, x.shape)))):
                raise self.error(f"operand {k} of shape {t.shape} is neither one value nor of shape {x.shape}")
        return [TensorType(x.dtype, x.shape)]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        v = values[0]
        for step, op in zip(self.steps, self.ops):
            k = step["operand"]
            if k < 0:
                v = op.evaluate([v])[0]
            else:
                operand = values[k]
                v = op.evaluate([operand, v] if step.get("operand_first") else [v, operand])[0]
        return [v]
