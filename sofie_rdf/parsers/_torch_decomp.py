"""Translations of our own for aten operators that torch's ONNX exporter (torch 2.13, onnxscript 0.7) cannot
translate or translates into what the IR cannot run.

Each is an onnxscript trace-only function, given to ``torch.onnx.export(..., custom_translation_table=...)``:

* ``aten._cdist_forward`` (``torch.cdist``, the kNN of point-cloud and graph networks): the exporter has no
  translation at all.  Pairwise differences reduced over the feature axis, as torch's own direct path computes
  them (torch switches to a matrix-product form for p = 2 and more than 25 points, ``aten._euclidean_dist``,
  which the exporter translates itself).
* ``aten.rrelu_with_noise_functional`` (``nn.RReLU``, ``F.rrelu``): in eval mode a LeakyReLU with the mean slope
  ``(lower + upper) / 2``; the random slopes of training mode are refused.
* ``aten.embedding_bag`` and ``aten._embedding_bag`` (``nn.EmbeddingBag``, ``F.embedding_bag``): onnxscript's
  translation loops over the bags with ONNX sequence operators, which the IR does not have.  Ours is loop-free:
  each index's bag number from the offsets, then a (bags x indices) membership matrix that sums (a MatMul) or
  masks for the maximum.
* ``aten.adaptive_max_pool2d``, ``aten.adaptive_max_pool3d`` (``nn.AdaptiveMaxPool1d/2d/3d``) and
  ``aten._adaptive_avg_pool3d`` (``nn.AdaptiveAvgPool3d``): the exporter has no translation.  Each output cell
  reduces its own window, ``[floor(i * L / out), ceil((i + 1) * L / out))`` along each pooled axis as torch
  cuts them, so the pooled sizes must be fixed; the maximum's index (the first of equal values, flat over
  the pooled axes) as torch returns it.
* ``aten.scatter_reduce.two`` with ``reduce="mean"`` (``Tensor.scatter_reduce_(..., "mean")``, the mean
  aggregation of graph networks): onnxscript writes a ``ScatterElements`` without reduction, so each place keeps
  one of the elements sent to it, silently.  Ours divides a scattered sum by a scattered count (data's element
  counted as one more where ``include_self``), an integer mean rounded toward minus infinity as torch's is
  (``_torchscript_fixes.mean_divided``); the other reductions are onnxscript's.
* ``aten.fractional_max_pool2d`` and ``aten.fractional_max_pool3d`` (``nn.FractionalMaxPool2d/3d``, and
  ``F.fractional_max_pool2d/3d`` called in a forward, with fixed ``_random_samples``): the exporter has no
  translation.  The regions are fixed by the samples, a constant of the model, but the translation sees them as a
  symbolic value (initializers get their values after it): it gathers at the indices of a placeholder node,
  ``FractionalMaxPoolWindows`` of our own domain, which :func:`fold_fractional_windows` replaces once the export is
  done by a ``Constant`` of the windows cut from the samples' values (``_torch_modules.fixed_windows``); samples
  computed from constants are folded into one by the exporter's optimizer first.  ``torch.rand``'s samples (the
  functional draws new ones at every call without ``_random_samples``), and samples that are no constant (an
  input, or computed from one), are refused.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Iterator, Optional, Sequence

import onnx
from onnx import defs, numpy_helper
from onnxscript import opset18 as op
from onnxscript import values

from ._torch_modules import ModuleRefused, check_static, fixed_windows

# aten::_embedding_bag's ``mode``
EMBEDDING_BAG_SUM, EMBEDDING_BAG_MEAN, EMBEDDING_BAG_MAX = 0, 1, 2

# the placeholder of fractional_max_pool's window indices, replaced by fold_fractional_windows
DOMAIN, WINDOWS, WINDOWS_ATTRIBUTES = "sofie_rdf.torch", "FractionalMaxPoolWindows", ("input_shape", "output_size", "kernel_size")
_windows = values.Op(values.Opset(DOMAIN, 1), WINDOWS, defs.OpSchema(
    WINDOWS, DOMAIN, 1,
    inputs=[defs.OpSchema.FormalParameter("samples", "T")],
    outputs=[defs.OpSchema.FormalParameter("indices", "tensor(int64)")],
    type_constraints=[("T", ["tensor(float16)", "tensor(bfloat16)", "tensor(float)", "tensor(double)"], "")],
    attributes=[defs.OpSchema.Attribute(a, defs.OpSchema.AttrType.INTS, "") for a in WINDOWS_ATTRIBUTES],
))


def translation_table(torch: Any) -> dict[Callable, Callable]:
    """The aten overloads translated here, for ``custom_translation_table``."""
    aten = torch.ops.aten
    return {
        aten._cdist_forward.default: cdist_forward,
        aten.rrelu_with_noise_functional.default: rrelu_with_noise_functional,
        aten._embedding_bag.default: embedding_bag,
        aten.embedding_bag.default: embedding_bag,
        aten.embedding_bag.padding_idx: embedding_bag,
        aten.adaptive_max_pool2d.default: adaptive_max_pool,
        aten.adaptive_max_pool3d.default: adaptive_max_pool,
        aten._adaptive_avg_pool3d.default: adaptive_avg_pool,
        aten.scatter_reduce.two: scatter_reduce,
        aten.fractional_max_pool2d.default: fractional_max_pool,
        aten.fractional_max_pool3d.default: fractional_max_pool,
    }


def cdist_forward(x1: Any, x2: Any, p: float, compute_mode: Optional[int] = None) -> Any:
    """``cdist(x1 (..., P, M), x2 (..., R, M), p) -> (..., P, R)``: the p-norm of every pairwise difference."""
    diff = op.Sub(op.Unsqueeze(x1, [-2]), op.Unsqueeze(x2, [-3]))  # (..., P, R, M)
    axis = op.Constant(value_ints=[-1])
    if p == 0:  # the number of differing coordinates
        nonzero = op.CastLike(op.Not(op.Equal(diff, op.CastLike(0.0, diff))), diff)
        return op.ReduceSum(nonzero, axis, keepdims=0)
    magnitude = op.Abs(diff)
    if p == float("inf"):
        return op.ReduceMax(magnitude, axis, keepdims=0)
    if p == 1:
        return op.ReduceSum(magnitude, axis, keepdims=0)
    if p == 2:
        return op.Sqrt(op.ReduceSum(op.Mul(diff, diff), axis, keepdims=0))
    total = op.ReduceSum(op.Pow(magnitude, op.CastLike(p, diff)), axis, keepdims=0)
    return op.Pow(total, op.CastLike(1.0 / p, diff))


def rrelu_with_noise_functional(
    x: Any, noise: Any, lower: float = 0.125, upper: float = 1.0 / 3.0, training: bool = False, generator: Any = None
) -> tuple[Any, Any]:
    """Eval-mode RReLU: the slope of negative inputs is the mean of the uniform range it is drawn from in training."""
    if training:
        raise NotImplementedError("RReLU in training mode draws random slopes; only eval mode is translated")
    return op.LeakyRelu(x, alpha=(float(lower) + float(upper)) / 2.0), noise


def embedding_bag(
    weight: Any,
    indices: Any,
    offsets: Any,
    scale_grad_by_freq: bool = False,
    mode: int = 0,
    sparse: bool = False,
    per_sample_weights: Any = None,
    include_last_offset: bool = False,
    padding_idx: Optional[int] = -1,
) -> tuple[Any, Any, Any, Any]:
    """(result, offset2bag, bag_size, max_indices) as ``aten::_embedding_bag`` on the CPU.

    ``indices`` arrive flat (``F.embedding_bag`` flattens a 2-D batch and makes its offsets); ``offsets`` are the
    bags' start positions, with ``len(indices)`` appended when ``include_last_offset`` (CSR style).  Indices equal to
    ``padding_idx`` belong to no bag; an empty bag gives zeros in every mode, as torch does.
    """
    starts = op.Slice(offsets, [0], [-1], [0]) if include_last_offset else offsets
    positions = op.Range(op.Constant(value_int=0), op.Size(indices), op.Constant(value_int=1))
    # bag of each index: how many bag starts lie at or before its position, less one
    after_start = op.LessOrEqual(op.Unsqueeze(starts, [1]), op.Unsqueeze(positions, [0]))  # (B, L)
    offset2bag = op.Sub(op.ReduceSum(op.Cast(after_start, to=7), [0], keepdims=0), op.Constant(value_int=1))
    bags = op.Range(op.Constant(value_int=0), op.Size(starts), op.Constant(value_int=1))
    member = op.Equal(op.Unsqueeze(bags, [1]), op.Unsqueeze(offset2bag, [0]))  # (B, L)
    if padding_idx is not None and padding_idx >= 0:
        member = op.And(member, op.Unsqueeze(op.Not(op.Equal(indices, op.Constant(value_int=padding_idx))), [0]))
    rows = op.Gather(weight, indices, axis=0)  # (L, D)
    if per_sample_weights is not None:
        rows = op.Mul(rows, op.Unsqueeze(per_sample_weights, [1]))
    bag_size = op.ReduceSum(op.Cast(member, to=7), [1], keepdims=0)
    if mode == EMBEDDING_BAG_MAX:
        result, max_indices = _bag_max(rows, indices, member, bag_size)
        return result, offset2bag, bag_size, max_indices
    result = op.MatMul(op.CastLike(member, weight), rows)
    if mode == EMBEDDING_BAG_MEAN:
        count = op.CastLike(op.Max(bag_size, op.Constant(value_int=1)), weight)
        result = op.Div(result, op.Unsqueeze(count, [1]))
    return result, offset2bag, bag_size, bag_size


def _bag_max(rows: Any, indices: Any, member: Any, bag_size: Any) -> tuple[Any, Any]:
    """Per bag and feature, the largest member row and the index it came from (zeros and -1 for an empty bag)."""
    lowest = op.CastLike(float("-inf"), rows)
    masked = op.Where(op.Unsqueeze(member, [2]), op.Unsqueeze(rows, [0]), lowest)  # (B, L, D)
    empty = op.Unsqueeze(op.Equal(bag_size, op.Constant(value_int=0)), [1])  # (B, 1)
    result = op.Where(empty, op.CastLike(0.0, rows), op.ReduceMax(masked, [1], keepdims=0))
    where = op.Gather(indices, op.ArgMax(masked, axis=1, keepdims=0), axis=0)  # (B, D)
    return result, op.Where(empty, op.Constant(value_int=-1), where)


def adaptive_max_pool(x: Any, output_size: Sequence[int]) -> tuple[Any, Any]:
    """(values, indices) of ``aten.adaptive_max_pool2d/3d``: each cell's maximum and its flat index in the plane."""
    values, indices = [], []
    for window, starts, lengths, plane in _adaptive_windows(x, output_size):
        first = op.ArgMax(window, axis=-1, keepdims=1)  # the first of equal values, as torch's scan keeps it
        values.append(op.GatherElements(window, first, axis=-1))
        index = op.Constant(value_int=0)
        for d, (start, length) in enumerate(zip(starts, lengths)):  # window coordinates to plane coordinates
            inner = math.prod(lengths[d + 1:])
            coordinate = op.Add(op.Mod(op.Div(first, op.Constant(value_int=inner)), op.Constant(value_int=length)),
                                op.Constant(value_int=start))
            index = op.Add(index, op.Mul(coordinate, op.Constant(value_int=math.prod(plane[d + 1:]))))
        indices.append(index)
    return _cells(values, x, output_size), _cells(indices, x, output_size)


def adaptive_avg_pool(x: Any, output_size: Sequence[int]) -> Any:
    """``aten._adaptive_avg_pool3d``: each cell's mean."""
    axis = op.Constant(value_ints=[-1])
    return _cells([op.ReduceMean(window, axis, keepdims=1) for window, *_ in _adaptive_windows(x, output_size)],
                  x, output_size)


def _adaptive_windows(x: Any, output_size: Sequence[int]) -> Iterator[tuple[Any, list[int], list[int], list[int]]]:
    """Per output cell (row-major): its window flattened to the last axis, its starts and lengths, the plane's sizes."""
    pooled = len(output_size)
    plane = [int(s) if isinstance(s, int) else None for s in list(x.shape)[-pooled:]]
    if None in plane:
        raise NotImplementedError(f"adaptive pooling needs fixed sizes of the pooled axes, got {list(x.shape)}")
    flat = op.Constant(value_ints=[0] * (len(x.shape) - pooled) + [-1])
    axes = op.Constant(value_ints=list(range(-pooled, 0)))
    for cell in itertools.product(*(range(int(o)) for o in output_size)):
        starts = [i * size // out for i, size, out in zip(cell, plane, output_size)]
        ends = [-(-(i + 1) * size // out) for i, size, out in zip(cell, plane, output_size)]
        window = op.Slice(x, op.Constant(value_ints=starts), op.Constant(value_ints=ends), axes)
        yield op.Reshape(window, flat), starts, [e - s for s, e in zip(starts, ends)], plane


def _cells(cells: list, x: Any, output_size: Sequence[int]) -> Any:
    """The cells' values (each with a last axis of 1) as the pooled output: leading axes, then ``output_size``."""
    shape = op.Constant(value_ints=[0] * (len(x.shape) - len(output_size)) + [int(o) for o in output_size])
    return op.Reshape(op.Concat(*cells, axis=-1), shape)


def scatter_reduce(self: Any, dim: int, index: Any, src: Any, reduce: str, include_self: bool = True) -> Any:
    """``aten.scatter_reduce.two``: "mean" as a scattered sum over a scattered count, the rest onnxscript's."""
    from onnxscript import ir
    from onnxscript.function_libs.torch_lib.ops.core import aten_scatter_reduce

    from ._torchscript_fixes import mean_divided

    if reduce != "mean":
        return aten_scatter_reduce(self, dim, index, src, reduce, include_self)
    dtype = self.dtype or src.dtype
    if dtype is None:
        raise NotImplementedError("scatter_reduce with reduce='mean' of a type unknown when exporting")
    zero, one = ir.tensor([0], dtype=dtype), ir.tensor([1], dtype=dtype)
    shape = op.Shape(index)
    src = op.Slice(src, op.Sub(shape, shape), shape)  # the part scattered, as torch reads it
    zeros = op.ConstantOfShape(op.Shape(self), value=zero)
    total = op.ScatterElements(zeros, index, src, axis=dim, reduction="add")
    count = op.ScatterElements(zeros, index, op.ConstantOfShape(shape, value=one), axis=dim, reduction="add")
    ones, floating = op.CastLike(op.Constant(value_float=1.0), count), dtype.is_floating_point()
    if include_self:
        return mean_divided(_node, op.Add(self, total), op.Add(count, ones), ones, floating)
    reached = op.Greater(count, op.CastLike(op.Constant(value_float=0.0), count))
    return op.Where(reached, mean_divided(_node, total, op.Max(count, ones), ones, floating), self)


def _node(op_type: str, *inputs: Any) -> Any:
    """The onnxscript node ``op_type`` of ``inputs``, for helpers shared with the TorchScript exporter's ``g.op``."""
    return getattr(op, op_type)(*inputs)


def fractional_max_pool(x: Any, kernel_size: Sequence[int], output_size: Sequence[int], random_samples: Any) -> tuple[Any, Any]:
    """(values, indices) of ``aten.fractional_max_pool2d/3d``: each output cell's maximum over its window and its
    flat index in the plane (the first of equal values, as the kernel's scan keeps it), gathered at the windows'
    indices, which :func:`fold_fractional_windows` computes from the samples after the export."""
    who = f"fractional_max_pool{len(kernel_size)}d"
    drawn = random_samples.producer()
    if drawn is not None and drawn.op_type.startswith("RandomUniform"):
        raise ModuleRefused(
            f"F.{who} without _random_samples draws random pooling regions at every call, in eval mode too; to make"
            f" it deterministic, pass _random_samples=, a fixed tensor (a buffer of the module) holding"
            f" torch.rand(N, C, {len(kernel_size)}) (N at least the batch size, C the channels)"
        )
    shape = [1] * (len(x.shape) == len(kernel_size) + 1) + [d if isinstance(d, int) else str(d) for d in x.shape]
    check_static(who, shape, random_samples.shape)
    cells = op.Constant(value_ints=[*shape[:2], *output_size, math.prod(kernel_size)])
    index = _windows(random_samples, input_shape=shape, output_size=list(output_size), kernel_size=list(kernel_size))
    windows = op.Reshape(op.GatherElements(op.Reshape(x, op.Constant(value_ints=[*shape[:2], -1])), index, axis=2), cells)
    first = op.ArgMax(windows, axis=-1, keepdims=1)
    where = op.GatherElements(op.Reshape(index, cells), first, axis=-1)
    result_shape = op.Constant(value_ints=list(x.shape[:-len(kernel_size)]) + list(output_size))
    return (op.Reshape(op.ReduceMax(windows, op.Constant(value_ints=[-1]), keepdims=0), result_shape),
            op.Reshape(where, result_shape))


def fold_fractional_windows(model: onnx.ModelProto) -> None:
    """Each ``FractionalMaxPoolWindows`` placeholder of :func:`fractional_max_pool` replaced by a ``Constant`` of the
    windows cut from its samples' initializer, its domain's import dropped."""
    weights = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.domain == DOMAIN and node.op_type == WINDOWS:
            node.CopyFrom(_windows_constant(node, weights))
    kept = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def _windows_constant(node: onnx.NodeProto, weights: dict[str, onnx.TensorProto]) -> onnx.NodeProto:
    """The ``Constant`` of ``node``'s window indices (checked as torch checks them)."""
    attributes = {a.name: [int(i) for i in a.ints] for a in node.attribute}
    shape, out, kernel = (attributes[a] for a in WINDOWS_ATTRIBUTES)
    who = f"fractional_max_pool{len(kernel)}d"
    if node.input[0] not in weights:
        raise ModuleRefused(f"{who}: its _random_samples ({node.input[0]!r}) are not a constant of the model (an input,"
                            " or computed from one); the pooling regions are cut when exporting: make them a fixed tensor,"
                            " a buffer of the module")
    index = fixed_windows(who, numpy_helper.to_array(weights[node.input[0]]), shape, out, kernel)
    return onnx.helper.make_node("Constant", [], list(node.output), name=node.name, value=numpy_helper.from_array(index))
