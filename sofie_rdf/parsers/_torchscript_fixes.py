"""Fixes of our own for torch's TorchScript ONNX exporter (torch 2.13), which scripted graph networks go through.

* ``aten::index_add`` (``Tensor.index_add_``, the aggregation of scripted graph networks): torch's symbolic writes
  a ``ScatterElements`` without reduction, so an index that repeats keeps one of its rows instead of their sum (it
  warns "does not support duplicated values in 'index'", and onnxruntime then computes the wrong sum).  Ours,
  registered only while the exporter runs, scatters with ``reduction="add"`` (opset 16 on), which is what
  ``index_add`` means.
* ``size = list(x.size()); size[dim] = n`` (torch_scatter's ``scatter_sum``): the exporter writes the item
  assignment on a shape tensor with sequence operators, an invalid model (:func:`repair_list_edits`).
* ``aten::scatter_reduce`` with ``include_self=False`` (``src.new_zeros(size).scatter_reduce_(dim, index, src,
  "amax", include_self=False)``: torch_scatter's ``scatter_max`` written in plain TorchScript, as PyG does without
  torch_scatter), and ``reduce="mean"``: torch's symbolic refuses them.  Ours scatters into the reduction's
  identity and keeps the original elements where nothing was scattered, and divides a scattered sum by a scattered
  count, an integer one rounded toward minus infinity as torch does (:func:`scatter_reduce`, :func:`mean_divided`);
  otherwise it is torch's.
* ``prim::Loop`` whose carried value changes rank (torch_scatter's ``broadcast``): the exporter gives the
  Loop's output one iteration's rank, and folds the ``dim()`` read after it; ours leaves that rank unknown
  (:func:`loop`), and ``aten::scatter_add`` needs none (:func:`scatter_add`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional

import onnx

from .onnx import subgraphs

# opset 16 gave ScatterElements its reduction
MIN_OPSET = 16


@contextlib.contextmanager
def registered(torch: Any, opset: int) -> Iterator[None]:
    """Our symbolics in force for ``opset`` (none below MIN_OPSET); torch's own back on exit."""
    if opset < MIN_OPSET:
        yield
        return
    symbolics = {"aten::index_add": index_add, "aten::scatter_add": scatter_add, "aten::scatter_reduce": scatter_reduce,
                 "prim::Loop": loop}
    for name, symbolic in symbolics.items():
        torch.onnx.register_custom_op_symbolic(name, symbolic, opset)
    try:
        yield
    finally:
        for name in symbolics:
            torch.onnx.unregister_custom_op_symbolic(name, opset)


def loop(g: Any, *inputs: Any, **attrs: Any) -> Any:
    """``prim::Loop``: torch's translation, its carried outputs that the body changes the rank of typed rank-unknown.

    The exporter types a Loop's outputs with its body's: one iteration's.  torch_scatter's ``broadcast``
    (``for _ in range(src.dim(), other.dim()): src = src.unsqueeze(-1)``) unsqueezes once per iteration, so after
    zero or several iterations that rank is wrong, and the exporter folds the ``dim()`` read downstream (the next
    loop's trip count) from it: a wrong model, or torch's ``scatter_add`` refusing an index of the wrong rank.
    Of unknown rank, the ranks are computed in the ONNX graph, where shape inference (ours, onnxruntime's) gets
    them right.
    """
    import torch
    from torch.onnx._internal.torchscript_exporter import symbolic_opset9

    outputs = symbolic_opset9.prim_loop(g, *inputs, **attrs)
    node = outputs[0].node() if outputs else None
    if node is None or node.kind() != "onnx::Loop":
        return outputs
    body_outputs = list(next(node.blocks()).outputs())[1:]  # the condition first
    for initial, after, out in zip(inputs[2:], body_outputs, outputs):
        if isinstance(out.type(), torch.TensorType) and _rank(initial) != _rank(after):
            out.setType(out.type().with_sizes(None))
    return outputs


def _rank(value: Any) -> Optional[int]:
    """The rank the exporter gives ``value``, None where unknown or not a tensor."""
    import torch

    return value.type().dim() if isinstance(value.type(), torch.TensorType) else None


def scatter_add(g: Any, data: Any, dim: Any, index: Any, source: Any) -> Any:
    """``data.scatter_add(dim, index, source)``: source's elements summed into data's at ``index`` along ``dim``.

    torch's own refuses an index whose rank the exporter gets wrong or does not know (a :func:`loop`'s output,
    or what is computed from one), though torch requires it to have source's rank; ours needs no rank: the
    axis may be negative in ONNX too, and source is cut to index's shape (the part of it that is scattered, as
    torch's does) from zeros as many as index's dims."""
    from torch.onnx._internal.torchscript_exporter import symbolic_helper

    axis = symbolic_helper._maybe_get_const(dim, "i")
    if not isinstance(axis, int):
        return symbolic_helper._unimplemented("scatter_add", "a dim unknown when exporting", data)
    shape = g.op("Shape", index)
    source = g.op("Slice", source, g.op("Sub", shape, shape), shape)
    return g.op("ScatterElements", data, index, source, axis_i=axis, reduction_s="add")


# torch's reductions but "mean": ONNX's ScatterElements reduction, and the identity the elements are scattered into
# when the original ones do not take part (include_self=False)
REDUCTIONS = {"sum": ("add", 0), "prod": ("mul", 1), "amax": ("max", "lowest"), "amin": ("min", "highest")}


def scatter_reduce(g: Any, data: Any, dim: Any, index: Any, source: Any, reduce: Any, include_self: Any) -> Any:
    """``data.scatter_reduce(dim, index, source, reduce, include_self=...)``.

    With ``include_self`` torch's own symbolic, but for "mean", which it refuses.  Without it, each place that an
    index reaches gets the reduction of the source elements sent there alone, every other place keeps data's
    element: the source is scattered into the reduction's identity (0, 1, the lowest or the highest value of data's
    type), and a second scatter of ones into zeros marks the places reached.  "mean" is the sum over the count
    (data's element counted as one more where included), floored for integer types as torch floors it."""
    import torch
    from torch.onnx._internal.torchscript_exporter import symbolic_helper, symbolic_opset16

    axis = symbolic_helper._maybe_get_const(dim, "i")
    how = symbolic_helper._maybe_get_const(reduce, "s")
    keep = symbolic_helper._maybe_get_const(include_self, "b")
    if not isinstance(axis, int) or not isinstance(how, str) or not isinstance(keep, (bool, int)):
        return symbolic_helper._unimplemented("scatter_reduce", "a dim, reduce or include_self unknown when exporting", data)
    if keep and how != "mean":
        return symbolic_opset16.scatter_reduce(g, data, dim, index, source, reduce, include_self)
    scalar = symbolic_helper._try_get_scalar_type(data, source)
    if scalar is None:
        return symbolic_helper._unimplemented("scatter_reduce", "a data type unknown when exporting", data)
    dtype = scalar.dtype()
    shape, index_shape = g.op("Shape", data), g.op("Shape", index)
    source = g.op("Slice", source, g.op("Sub", index_shape, index_shape), index_shape)  # the part scattered

    def filled(like: Any, value: Any, of: torch.dtype) -> Any:
        return g.op("ConstantOfShape", like, value_t=torch.tensor([value], dtype=of))

    if how == "mean":
        total = g.op("ScatterElements", filled(shape, 0, dtype), index, source, axis_i=axis, reduction_s="add")
        count = g.op("ScatterElements", filled(shape, 0, dtype), index, filled(index_shape, 1, dtype), axis_i=axis,
                     reduction_s="add")
        one, floating = filled(g.op("Shape", count), 1, dtype), dtype.is_floating_point
        if keep:
            return mean_divided(g.op, g.op("Add", data, total), g.op("Add", count, one), one, floating)
        reached = g.op("Greater", count, filled(g.op("Shape", count), 0, dtype))
        return g.op("Where", reached, mean_divided(g.op, total, g.op("Max", count, one), one, floating), data)
    if how not in REDUCTIONS:
        return symbolic_helper._unimplemented("scatter_reduce", f"reduce={how!r}", data)
    reduction, identity = REDUCTIONS[how]
    if isinstance(identity, str):
        if dtype.is_floating_point:
            identity = -float("inf") if identity == "lowest" else float("inf")
        else:
            identity = torch.iinfo(dtype).min if identity == "lowest" else torch.iinfo(dtype).max
    reduced = g.op("ScatterElements", filled(shape, identity, dtype), index, source, axis_i=axis, reduction_s=reduction)
    reached = g.op("ScatterElements", filled(shape, 0, torch.uint8), index, filled(index_shape, 1, torch.uint8),
                   axis_i=axis, reduction_s="max")
    return g.op("Where", g.op("Cast", reached, to_i=onnx.TensorProto.BOOL), reduced, data)


def mean_divided(node: Callable[..., Any], total: Any, count: Any, one: Any, floating: bool) -> Any:
    """A scatter mean's sum over its count (at least 1) as torch divides them; ``node(op_type, *inputs)`` adds a node.

    torch's integer mean is ``div_(count, rounding_mode="floor")``, toward minus infinity, where ONNX's Div truncates
    toward zero: the truncated quotient is one too large exactly where it times the count passes the sum (a negative
    sum that the count does not divide), a product that cannot overflow (its magnitude is at most the sum's).  Both
    exporters' "mean" (this module's and ``_torch_decomp``'s) divide here."""
    quotient = node("Div", total, count)
    if floating:
        return quotient
    return node("Where", node("Greater", node("Mul", quotient, count), total), node("Sub", quotient, one), quotient)


def index_add(g: Any, data: Any, dim: Any, index: Any, source: Any, alpha: Any = None) -> Any:
    """``data.index_add(dim, index, source, alpha=alpha)``: source's slices summed into data's at ``index``."""
    import torch
    from torch.onnx._internal.torchscript_exporter import symbolic_helper

    axis = symbolic_helper._maybe_get_const(dim, "i")
    # data and source have one rank; the exporter often knows only one of them (data made from a list of sizes)
    rank = symbolic_helper._get_tensor_rank(source)
    rank = symbolic_helper._get_tensor_rank(data) if rank is None else rank
    if not isinstance(axis, int) or rank is None:
        return symbolic_helper._unimplemented("index_add", "a dim or rank unknown when exporting", data)
    axis %= max(rank, 1)
    if alpha is not None:
        scale = symbolic_helper._scalar(symbolic_helper._maybe_get_scalar(alpha))
        if scale is None:
            return symbolic_helper._unimplemented("index_add", "an alpha unknown when exporting", data)
        if scale != 1:
            source = g.op("Mul", source, g.op("CastLike", g.op("Constant", value_f=float(scale)), source))
    along = [1] * rank
    along[axis] = -1
    positions = g.op("Reshape", index, g.op("Constant", value_t=torch.tensor(along, dtype=torch.int64)))
    positions = g.op("Expand", positions, g.op("Shape", source))
    return g.op("ScatterElements", data, positions, source, axis_i=axis, reduction_s="add")


SEQUENCES = ("SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceErase", "SplitToSequence")


def repair_list_edits(graph: onnx.GraphProto) -> None:
    """Rewrite the TorchScript exporter's invalid ``SequenceInsert(SequenceErase(t, i), v, i)`` on a tensor ``t``.

    TorchScript's ``size = list(x.size()); size[dim] = n`` (torch_scatter's ``scatter_sum``) reaches the exporter
    as a shape tensor, but the item assignment is written with sequence operators, which onnxruntime refuses
    ("Type 'tensor(int64)' ... of operator (SequenceErase) is invalid") and the IR does not have.  On a tensor the
    pair means ``t[i] = v``: one ``ScatterElements`` (whose indices may be negative, as ``dim`` may).
    """
    producers = {o: n for n in graph.node for o in n.output}
    nodes: list[onnx.NodeProto] = []
    erased: set[str] = set()
    for node in graph.node:
        for sub in subgraphs(node):
            repair_list_edits(sub)
        erase = producers.get(node.input[0]) if node.op_type == "SequenceInsert" and len(node.input) == 3 else None
        source = producers.get(erase.input[0]) if erase is not None else None
        if (
            erase is None
            or erase.op_type != "SequenceErase"
            or list(erase.input[1:]) != [node.input[2]]
            or (source is not None and source.op_type in SEQUENCES)
        ):  # a real sequence
            nodes.append(node)
            continue
        erased.add(erase.output[0])
        position, value = (
            _one_element(nodes, name, f"{node.output[0]}/{what}")
            for name, what in ((node.input[2], "position"), (node.input[1], "value"))
        )
        nodes.append(
            onnx.helper.make_node("ScatterElements", [erase.input[0], position, value], list(node.output), name=node.name, axis=0)
        )
    read = {i for n in nodes for i in n.input} | _all_names_read_below(nodes)
    kept = [n for n in nodes if not (n.op_type == "SequenceErase" and n.output[0] in erased and n.output[0] not in read)]
    del graph.node[:]
    graph.node.extend(kept)
    _tensor_outputs(graph)


def _one_element(nodes: list[onnx.NodeProto], name: str, new: str) -> str:
    """Append the nodes that reshape scalar ``name`` to shape (1,) as ``new``; returns ``new``."""
    shape = onnx.helper.make_tensor(f"{new}/shape", onnx.TensorProto.INT64, [1], [1])
    nodes.append(onnx.helper.make_node("Constant", [], [f"{new}/shape"], value=shape))
    nodes.append(onnx.helper.make_node("Reshape", [name, f"{new}/shape"], [new]))
    return new


def _all_names_read_below(nodes: list[onnx.NodeProto]) -> set[str]:
    """The names the subgraphs of ``nodes`` read, at any depth."""
    inner = [n for node in nodes for graph in subgraphs(node) for n in graph.node]
    return (
        {i for n in inner for i in n.input}
        | ({o.name for node in nodes for g in subgraphs(node) for o in g.output})
        | (_all_names_read_below(inner) if inner else set())
    )


def _tensor_outputs(graph: onnx.GraphProto) -> None:
    """Declare as tensors the (sub)graph outputs the repair above turned from sequences into tensors."""
    written = {o for n in graph.node if n.op_type not in SEQUENCES for o in n.output}
    for value in graph.output:
        if value.type.HasField("sequence_type") and value.name in written:
            elem = value.type.sequence_type.elem_type.tensor_type.elem_type
            value.type.CopyFrom(onnx.helper.make_tensor_type_proto(elem, None))
