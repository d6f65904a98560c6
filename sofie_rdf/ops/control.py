"""Control flow: operators whose attributes hold subgraphs (:class:`~sofie_rdf.ir.Graph`).

A subgraph reads the enclosing scope through its node's trailing inputs (``Graph.outer``), so the passes
and the planner see those reads as ordinary inputs.  An ``If`` whose condition is known when the code is
generated is replaced by its branch (``passes/inline_if.py``); one decided while running keeps both
branches, which planning lowers to the marker operators below around the branches' own nodes
(``planning/control_flow.py``), so the memory planner places every tensor of both branches.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np
import sympy

from ..errors import LegacyModelWarning, ModelFormatError, NeedsDimsError, UnsupportedOperatorError
from ..ir import Graph, TensorType
from ..ir.dims import dims_equal, is_static
from .base import Op, fold_values, normalize_axis
from .registry import INTERNAL_DOMAIN, lookup, register

# Shape arithmetic with symbols is evaluated inside subgraphs for tensors up to this size (as shape inference).

# A Loop whose carried values change shape is unrolled (ops Loop.iterations) when it runs at most this many times.
MAX_UNROLLED = 64


def infer_graph(
    op: Op, graph: Graph, bound: dict[str, TensorType], inner_dims: Optional[set[sympy.Symbol]] = None
) -> dict[str, TensorType]:
    """Types (and values where computable) of every tensor of ``graph``, given ``bound``: the types of its
    inputs and of the enclosing-scope tensors it reads.  ``op`` (the owning node) collects the conditions
    the subgraph's code relies on; ``inner_dims`` the dims its nodes compute while running."""
    tensors = dict(bound)
    tensors.update((n, TensorType(v.dtype, v.shape, v)) for n, v in graph.initializers.items())
    for node in graph.nodes:
        cls = lookup(node.op_type, node.domain, node.version)
        if cls is None:
            raise UnsupportedOperatorError(op.model, {node.qualified_type: [f"{node.name} (in {op.node})"]})
        missing = [i for i in node.inputs if i and i not in tensors]
        if missing:
            raise ModelFormatError(
                f"model {op.model!r}: {op.node}: subgraph {graph.name!r}: {node} reads "
                f"{missing[0]!r}, which nothing in its scope produces"
            )
        sub = cls(node, op.model)
        inputs = [tensors[i] if i else None for i in node.inputs]
        outputs = sub.infer(inputs)
        fold_values(sub, inputs, outputs)
        op.constraints.extend(c for c in sub.constraints if c not in op.constraints)
        if inner_dims is not None:
            inner_dims.update(sub.defined_dims)
        tensors.update((n, t) for n, t in zip(node.outputs, outputs) if n)
    missing = [o for o in graph.outputs if o not in tensors]
    if missing:
        raise ModelFormatError(f"model {op.model!r}: {op.node}: subgraph {graph.name!r} never produces its output {missing[0]!r}")
    return tensors


def merge_branches(
    op: Op, then_types: Sequence[TensorType], else_types: Sequence[TensorType], inner_dims: frozenset = frozenset()
) -> list[TensorType]:
    """The outputs of a choice between two branches made while running: each branch's dtype and rank, a dim
    equal in both kept, any other (or one a branch computes itself) a run-time dim the choosing code sets.
    Branches of different rank need the condition (input 0) decided when generating: :class:`NeedsDimsError`."""
    if len(then_types) != len(else_types):
        raise op.error(f"then_branch has {len(then_types)} outputs, else_branch {len(else_types)}")
    out = []
    for k, (a, b) in enumerate(zip(then_types, else_types)):
        name = op.node.outputs[k] if k < len(op.node.outputs) else str(k)
        if a.dtype != b.dtype:
            raise op.error(f"output {k} ({name!r}) is {a.dtype} in then_branch but {b.dtype} in else_branch")
        if a.rank != b.rank:
            raise NeedsDimsError(
                f"model {op.model!r}: {op.node}: output {k} ({name!r}) has shape {_shape(a)} in then_branch but "
                f"{_shape(b)} in else_branch, and the condition is only known while the code runs, so the generated "
                "code cannot have one rank for it; torch.onnx.export writes x.squeeze(d) of a dynamic dim this way.  "
                "Fix the dims the condition depends on when loading (sr.load(..., dims={'name': size}) or "
                "input_shapes={'input': shape}) so that it is known when the code is generated",
                input=0,
            )
        shape = tuple(
            x if dims_equal(x, y) and not _has_symbol(x, inner_dims) else op.runtime_dim(f"output{k}_dim{axis}")
            for axis, (x, y) in enumerate(zip(a.shape, b.shape))
        )
        out.append(TensorType(a.dtype, shape))
    return out


def _shape(t: TensorType) -> str:
    return "(" + ", ".join(str(d) for d in t.shape) + ("," if t.rank == 1 else "") + ")"


def _has_symbol(dim: object, symbols: frozenset) -> bool:
    return not isinstance(dim, int) and bool(dim.free_symbols & symbols)


def one_element(op: Op, t: TensorType, what: str) -> None:
    """Refuse a condition or count that does not hold one element."""
    if isinstance(t.size, int) and t.size != 1:
        raise op.error(f"{what} must hold one element, it has shape {_shape(t)}")


def scalar_condition(op: Op, t: TensorType, what: str) -> Optional[bool]:
    """The value of a one-element boolean condition when known, None when computed while running."""
    one_element(op, t, what)
    return bool(t.value.reshape(-1)[0]) if t.is_constant else None


@register
class If(Op):
    """ONNX If: the outputs of ``then_branch`` or ``else_branch`` as the condition (input 0) says."""

    op_type = "If"
    takes_subgraphs = True  # the front ends parse its graph attributes into ir.Graph

    def scope(self, inputs: Sequence[Optional[TensorType]]) -> dict[str, TensorType]:
        """The enclosing-scope tensors the branches read, by their names inside the branches."""
        return dict(zip(self.attrs["then_branch"].outer, inputs[1:]))

    def infer(self, inputs):
        known = scalar_condition(self, inputs[0], "the condition")
        if known is not None:
            branch = self.attrs["then_branch" if known else "else_branch"]
            tensors = infer_graph(self, branch, self.scope(inputs))
            return [TensorType(t.dtype, t.shape, t.value) for t in (tensors[o] for o in branch.outputs)]
        inner: set[sympy.Symbol] = set()
        then_branch, else_branch = self.attrs["then_branch"], self.attrs["else_branch"]
        then_types = [infer_graph(self, then_branch, self.scope(inputs), inner)[o] for o in then_branch.outputs]
        else_types = [infer_graph(self, else_branch, self.scope(inputs), inner)[o] for o in else_branch.outputs]
        return merge_branches(self, then_types, else_types, frozenset(inner))


# ---- markers of lowered control flow (planning/control_flow.py) -------------------------------------------


@register
class IfBegin(Op):
    """Starts the then-branch's nodes, run when the condition (input 0) holds."""

    op_type = "IfBegin"
    domain = INTERNAL_DOMAIN

    def infer(self, inputs):
        scalar_condition(self, inputs[0], "the condition")
        return []


@register
class Else(Op):
    """Ends the then-branch's nodes and starts the else-branch's."""

    op_type = "Else"
    domain = INTERNAL_DOMAIN

    def infer(self, inputs):
        return []


@register
class EndIf(Op):
    """Ends the else-branch's nodes; its outputs (the If's) are the taken branch's: inputs are the condition,
    then the then-branch's outputs, then the else-branch's."""

    op_type = "EndIf"
    domain = INTERNAL_DOMAIN

    def infer(self, inputs):
        n = (len(inputs) - 1) // 2
        return merge_branches(self, inputs[1 : 1 + n], inputs[1 + n :])


# ---- loops ------------------------------------------------------------------------------------------------


class _Looping(Op):
    """What Loop and Scan share: a body run once per iteration, its state carried from one to the next."""

    takes_subgraphs = True  # the front ends parse its graph attributes into ir.Graph

    def formal(self, inputs: Sequence[Optional[TensorType]]) -> int:
        """How many of the node's inputs are its own (the rest are the body's enclosing-scope tensors)."""
        return len(inputs) - len(self.attrs["body"].outer)

    def body_bound(self, inputs: Sequence[Optional[TensorType]]) -> dict[str, TensorType]:
        """Types of everything the body reads that it does not compute, by the body's names."""
        body = self.attrs["body"]
        formal = self.formal(inputs)
        params = self.body_inputs(inputs[:formal])
        if len(params) != len(body.inputs):
            raise self.error(f"the body has {len(body.inputs)} inputs, {len(params)} expected")
        return {**dict(zip(body.outer, inputs[formal:])), **dict(zip(body.inputs, params))}

    def body_inputs(self, own: Sequence[Optional[TensorType]]) -> list[TensorType]:
        """Types of the body's inputs from the node's own inputs."""
        raise NotImplementedError

    def body_outputs(self, inputs: Sequence[Optional[TensorType]], states: Sequence[TensorType], first: int) -> list[TensorType]:
        """The body's per-iteration outputs (after its ``first`` condition output and the states), the states'
        types checked to stay what they were."""
        body = self.attrs["body"]
        inner: set[sympy.Symbol] = set()
        tensors = infer_graph(self, body, self.body_bound(inputs), inner)
        outs = [tensors[o] for o in body.outputs]
        if len(outs) < first + len(states):
            raise self.error(f"the body has {len(outs)} outputs, at least {first + len(states)} expected")
        for k, (t, new) in enumerate(zip(states, outs[first:])):
            # A dim the body computes while running is checked then (planning/control_flow.py).
            if (
                t.dtype != new.dtype
                or t.rank != new.rank
                or not all(dims_equal(a, b) or _has_symbol(b, frozenset(inner)) for a, b in zip(t.shape, new.shape))
            ):
                raise self.error(
                    f"loop-carried value {k} is {t.dtype} {_shape(t)} before an iteration but "
                    f"{new.dtype} {_shape(new)} after it: its type and shape must stay the same"
                )
        elements = outs[first + len(states) :]
        if any(_has_symbol(d, frozenset(inner)) for t in elements for d in t.shape):
            raise self.error("a scan output's shape depends on a dim the body computes while running")
        return elements


def _retyped(before: Sequence[TensorType], after: Sequence[TensorType]) -> bool:
    """Whether any value's dtype or shape differs between ``before`` and ``after``."""
    return any(
        a.dtype != b.dtype or a.rank != b.rank or not all(map(dims_equal, a.shape, b.shape)) for a, b in zip(before, after)
    )


def _constant(value: np.generic) -> TensorType:
    """The type of a known scalar (an unrolled Loop's iteration number and condition)."""
    return TensorType(value.dtype, (), np.asarray(value))


def _state(t: TensorType) -> TensorType:
    """A loop-carried value's type: the initial value's, without the value (it changes)."""
    return TensorType(t.dtype, t.shape)


@register
class Loop(_Looping):
    """ONNX Loop: the body run while the iteration count is below ``M`` (input 0, optional) and the
    condition (input 1, optional; then the body's first output) holds.  Outputs: the final loop-carried
    values, then the body's scan outputs stacked along a new first axis (its length, the number of
    iterations run, is a run-time dim)."""

    op_type = "Loop"

    def body_inputs(self, own):
        return [TensorType(np.int64, ()), TensorType(np.bool_, ())] + [_state(t) for t in own[2:]]

    def infer(self, inputs):
        formal = self.formal(inputs)
        for k, what in ((0, "the trip count M"), (1, "the condition")):
            if inputs[k] is not None:
                one_element(self, inputs[k], what)
        unrolled = self.unrolled_states(inputs)
        if unrolled is not None:
            return unrolled
        states = [_state(t) for t in inputs[2:formal]]
        elements = self.body_outputs(inputs, states, 1)
        if elements and inputs[0] is None:
            raise self.error("scan outputs need a trip count M to size them before the loop runs")
        count = self.runtime_dim("iterations") if elements else 0
        return states + [TensorType(t.dtype, (count, *t.shape)) for t in elements]

    def unrolled_states(self, inputs: Sequence[Optional[TensorType]]) -> Optional[list[TensorType]]:
        """The outputs of a Loop that must be unrolled or runs no iteration (:meth:`iterations`), else None."""
        steps = self.iterations(inputs)
        if steps is None:
            return None
        if len(steps) == 1:
            return steps[0][1] + self.no_elements(inputs)
        warnings.warn(
            f"model {self.model!r}: {self.node}: its loop-carried values change shape between iterations "
            f"(the spec keeps them; onnxruntime runs it): unrolled, {len(steps) - 1} iteration(s)",
            LegacyModelWarning,
            stacklevel=2,
        )
        return steps[-1][1]

    def no_elements(self, inputs: Sequence[Optional[TensorType]]) -> list[TensorType]:
        """The scan outputs of a Loop that runs no iteration: empty along their new first axis, otherwise of the
        type the body gives its elements (inferred from the initial values, though the body never runs)."""
        body = self.attrs["body"]
        carried = self.formal(inputs) - 2
        if len(body.outputs) == 1 + carried:
            return []
        tensors = infer_graph(self, body, self.body_bound(inputs))
        return [TensorType(t.dtype, (0, *t.shape)) for t in (tensors[o] for o in body.outputs[1 + carried :])]

    def iterations(self, inputs: Sequence[Optional[TensorType]]) -> Optional[list[tuple[int, list[TensorType]]]]:
        """(iteration number, loop-carried values after it) of each iteration, starting with the initial values
        as iteration -1, for a Loop whose carried values change shape between iterations but whose iterations are
        all known when the code is generated, which onnxruntime runs (torch.onnx.export writes torch_scatter's
        ``broadcast`` loop this way: ``(E,)`` before, ``(E, 1)`` after), and for a Loop known to run no
        iteration (a trip count M of 0 or a condition false before the first), whose outputs are its initial
        values, even where its body would change their shape (the same ``broadcast`` with nothing to unsqueeze),
        and its scan outputs, when their shapes are known when the code is generated, empty.  None for any other
        Loop: one whose values keep their types, one with scan outputs, or one that runs more than
        :data:`MAX_UNROLLED` times."""
        formal = self.formal(inputs)
        body = self.attrs["body"]
        trips = int(inputs[0].value.reshape(-1)[0]) if inputs[0] is not None and inputs[0].is_constant else None
        go = True if inputs[1] is None else scalar_condition(self, inputs[1], "the condition")
        states = [_state(t) for t in inputs[2:formal]]
        if (trips is not None and trips <= 0) or go is False:
            return [(-1, states)] if all(is_static(t.shape) for t in self.no_elements(inputs)) else None
        if trips is None or len(body.outputs) != formal - 1:
            return None
        steps = [(-1, states)]
        outer = dict(zip(body.outer, inputs[formal:]))
        for i in range(min(trips, MAX_UNROLLED + 1)):
            if go is not True:
                break
            bound = {**outer, **dict(zip(body.inputs, [_constant(np.int64(i)), _constant(np.bool_(True)), *states]))}
            tensors = infer_graph(self, body, bound)
            outs = [tensors[o] for o in body.outputs]
            go = bool(outs[0].value.reshape(-1)[0]) if outs[0].is_constant else None
            states = [_state(t) for t in outs[1:]]
            steps.append((i, states))
            if i == 0 and not _retyped(steps[0][1], states):
                return None  # the next iteration starts where this one did: an ordinary Loop
        if go is None or len(steps) > MAX_UNROLLED + 1:
            return None
        return steps


@register
class Scan8(Op):
    """ONNX Scan of opsets 8 (a batch axis in front of every input, ``sequence_lens``): refused with the way out."""

    op_type = "Scan"
    since_version = 8

    def infer(self, inputs):
        raise self.error(
            "Scan of opset 8 (batch axis and sequence_lens) is not supported; convert the model to "
            "opset 9 or later (onnx.version_converter), whose Scan has neither"
        )


@register
class Scan(_Looping):
    """ONNX Scan (opset 9 on): the body run on each element along ``scan_input_axes`` of the scan inputs (the
    last ``num_scan_inputs`` of the node's own), carrying the state (the others); outputs: the final state,
    then the body's scan outputs stacked along ``scan_output_axes``."""

    op_type = "Scan"
    since_version = 9

    def layout(self, own: Sequence[TensorType]) -> tuple[int, list[int], sympy.Expr]:
        """(number of state values, axis of each scan input, the scan's length)."""
        m = self.attrs["num_scan_inputs"]
        if not 0 < m <= len(own):
            raise self.error(f"num_scan_inputs = {m} with {len(own)} inputs")
        scans = own[len(own) - m :]
        axes = [normalize_axis(self, a, t.rank) for a, t in zip(self.attr("scan_input_axes") or [0] * m, scans)]
        length = scans[0].shape[axes[0]]
        for t, a in zip(scans, axes):
            if not dims_equal(t.shape[a], length):
                self.require(sympy.Eq(t.shape[a], length), "every scan input has the same length")
        return len(own) - m, axes, length

    def body_inputs(self, own):
        n, axes, _ = self.layout(own)
        return [_state(t) for t in own[:n]] + [TensorType(t.dtype, t.shape[:a] + t.shape[a + 1 :]) for t, a in zip(own[n:], axes)]

    def output_axes(self, elements: Sequence[TensorType]) -> list[int]:
        """Where each scan output stacks its elements."""
        return [
            normalize_axis(self, a, t.rank + 1) for a, t in zip(self.attr("scan_output_axes") or [0] * len(elements), elements)
        ]

    def infer(self, inputs):
        own = inputs[: self.formal(inputs)]
        n, _, length = self.layout(own)
        states = [_state(t) for t in own[:n]]
        elements = self.body_outputs(inputs, states, 0)
        return states + [
            TensorType(t.dtype, t.shape[:a] + (length,) + t.shape[a:]) for t, a in zip(elements, self.output_axes(elements))
        ]


class _LoopMarker(Op):
    """A marker of a lowered Loop or Scan: its tensors are the Loop's or Scan's, typed when that was inferred.

    Layouts (``counts`` = [loop-carried values N, scan inputs M, scan outputs K]): ``LoopBegin`` (M, cond,
    initial values) -> (iteration, condition, values, scan outputs); ``ScanBegin`` (initial values, scan
    inputs) -> (iteration, values, scan input elements, scan outputs); the ends read everything the loop
    keeps alive: ``LoopEnd`` (iteration, condition, values, scan outputs, body condition, body values, scan
    output elements, enclosing-scope tensors); ``ScanEnd`` (iteration, values, scan inputs, scan outputs,
    body values, scan output elements, enclosing-scope tensors)."""

    domain = INTERNAL_DOMAIN
    attr_defaults = {
        "counts": [0, 0, 0],
        "scan_input_axes": [],
        "scan_input_directions": [],
        "scan_output_axes": [],
        "scan_output_directions": [],
    }

    def infer(self, inputs):
        raise self.error("made by planning from a Loop or Scan whose types are inferred; not inferred again")


@register
class LoopBegin(_LoopMarker):
    """Sets a Loop's values to their initial ones and starts its iterations."""

    op_type = "LoopBegin"


@register
class LoopEnd(_LoopMarker):
    """Ends one of a Loop's iterations: the body's values become the loop's, its elements are stored."""

    op_type = "LoopEnd"


@register
class ScanBegin(_LoopMarker):
    """Sets a Scan's state to its initial one, starts its iterations and takes each iteration's elements."""

    op_type = "ScanBegin"


@register
class ScanEnd(_LoopMarker):
    """Ends one of a Scan's iterations: the body's state becomes the scan's, its elements are stored."""

    op_type = "ScanEnd"
