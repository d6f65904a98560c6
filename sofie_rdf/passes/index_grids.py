"""ScatterND over a broadcast grid of indices, as PyTorch exports ``x[:, :, i, j] = v``, rewritten into one
``sofie_rdf::GridScatterND`` node that reads the grid's components where they are.

``torch.onnx.export`` writes ``index_put`` as ``ScatterND(data, Concat(Unsqueeze(Expand(c_0, T), -1), ...,
axis=-1), updates)``: each index component (a ``Range`` over the batch, the channels, the pairs' ``NonZero``
rows) is expanded to the tuples' shape T, given a trailing axis, and the k of them stacked into a (T..., k)
int64 tensor that ScatterND then walks.  For a particle transformer's pair bias at 64 events, 8 heads and
1225 pairs that tensor is 20 MB, built by eight Expands and a Concat from a few kilobytes of components, and
building it took three times as long as the scatter.  ``GridScatterND`` takes the components themselves
(each broadcast to T by strides, 0 along the dims it does not span) and computes the same tuples in the
same order, so the result, duplicates and out-of-range checks included, is ScatterND's.

A ScatterND qualifies when its indices come from a ``Concat`` along the last axis whose every input is an
``Unsqueeze`` of a last axis or a constant (what constant folding leaves of such an Unsqueeze when the
shapes are fixed: it is shrunk to the dims along which it changes); a component that is itself an
``Expand`` (to T) is replaced by the Expand's input.  Each component must broadcast to T as its shape says
when the code is generated (dims of 1 or T's own).  The Concat, Expands and Unsqueezes stay where something
else reads them.  The dynamo exporter writes the same stack without the Expands (its index tensors already
have the tuples' shape); it qualifies too.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Model, Node, TensorType, unique_name
from ..ops import make_node, op_for
from ..ops.indexing import broadcasts_to
from ..ops.registry import INTERNAL_DOMAIN
from .constant_folding import eliminate_dead_nodes, runtime_inputs

GRID_VERSION = 1


def fuse_index_grids(model: Model) -> Model:
    """Replace every qualifying ScatterND (see the module's text) by one GridScatterND node."""
    producers = {out: node for node in model.nodes for out in node.outputs if out}
    replaced: dict[int, Node] = {}
    for node in model.nodes:
        if not _is(node, "ScatterND"):
            continue
        components = _components(model, node, producers)
        if components is not None:
            replaced[id(node)] = make_node(
                "GridScatterND", [node.inputs[0], node.inputs[2], *components], node.outputs,
                {"reduction": node.attrs.get("reduction", "none")}, name=node.name, version=GRID_VERSION,
                domain=INTERNAL_DOMAIN, model=model.name, internal=True)
    if not replaced:
        return model
    nodes = [replaced.get(id(n), n) for n in model.nodes]
    model.nodes = eliminate_dead_nodes(model, nodes)  # the Concats, Expands and Unsqueezes only the grids read
    kept = {id(n) for n in model.nodes}
    for node in nodes:
        if id(node) not in kept:
            for out in node.outputs:
                model.tensors.pop(out, None)
    read = set(model.outputs).union(*(runtime_inputs(model, n) for n in model.nodes))
    model.initializers = {k: v for k, v in model.initializers.items() if k in read}  # constant parts, stacked
    return model


def _components(model: Model, scatter: Node, producers: dict[str, Node]) -> Optional[list[str]]:
    """The index components of ``scatter``'s tuples, each broadcasting to the tuples' shape, or None."""
    indices = model.tensors[scatter.inputs[1]]
    concat = producers.get(scatter.inputs[1])
    if concat is None or not _is(concat, "Concat") or indices.rank < 1 or len(concat.inputs) != indices.shape[-1]:
        return None
    if concat.attrs.get("axis") not in (-1, indices.rank - 1):
        return None
    tuples = indices.shape[:-1]
    components: list[Optional[str]] = []  # None: a constant part, made a weight once every part qualifies
    for part in concat.inputs:
        component = None if part in model.initializers else _runtime_component(model, part, tuples, producers)
        if component is None and part not in model.initializers:
            return None
        components.append(component)
    return [c if c is not None else _constant_component(model, part) for c, part in zip(components, concat.inputs)]


def _runtime_component(model: Model, part: str, tuples: tuple, producers: dict[str, Node]) -> Optional[str]:
    """The tensor that part ``part`` of the stacked indices unsqueezes (or what that one Expands), if it
    broadcasts to the tuples' shape."""
    unsqueeze = producers.get(part)
    if unsqueeze is None or not _is(unsqueeze, "Unsqueeze") or not _appends_axis(model, unsqueeze):
        return None
    component = unsqueeze.inputs[0]
    expand = producers.get(component)
    if expand is not None and _is(expand, "Expand") and broadcasts_to(model.tensors[expand.inputs[0]].shape, tuples):
        component = expand.inputs[0]
    return component if broadcasts_to(model.tensors[component].shape, tuples) else None


def _constant_component(model: Model, part: str) -> str:
    """A new weight holding the values of constant part (T..., 1) (an Expand of a Range folded when the shapes
    are fixed) without its last axis and shrunk to a broadcast: each axis along which it does not change
    kept as a dim of 1, or dropped when it leads."""
    value = model.initializers[part][..., 0]
    for axis in range(value.ndim):
        first = value.take([0], axis=axis)
        if np.array_equal(value, np.broadcast_to(first, value.shape)):
            value = first
    while value.ndim and value.shape[0] == 1:  # leading dims of 1 are implied (broadcasts align from the right)
        value = value[0]
    name = unique_name(f"{part}_component", set(model.tensors) | set(model.initializers))
    model.initializers[name] = value
    model.tensors[name] = TensorType(value.dtype, value.shape, value)
    return name


def _appends_axis(model: Model, unsqueeze: Node) -> bool:
    """Whether ``unsqueeze`` adds exactly one axis, after its input's last."""
    rank = model.tensors[unsqueeze.inputs[0]].rank
    op, inputs = op_for(unsqueeze, model.name), [model.tensors[i] if i else None for i in unsqueeze.inputs]
    if op.at_run_time(inputs):
        return False
    axes = op.axes(inputs)
    return axes is not None and len(axes) == 1 and axes[0] in (-1, rank)


def _is(node: Node, op_type: str) -> bool:
    return node.op_type == op_type and node.domain in ("", "ai.onnx")
