"""CPU emitters of the operators in :mod:`sofie_rdf.ops.indexing`."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ....ir import TensorType
from ....ir.dims import Dim, num_elements
from ....ops import indexing as indexing_ops
from ....ops.base import broadcast_strides, contiguous_strides, normalize_axis
from ....ops.fused import NeighbourGather
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits
from .gemm import ActivationCode

# An update combined with the value already there, per reduction; on bool, what onnxruntime's + and * amount to.
_REDUCE_CPP = {"none": "b", "add": "a + b", "mul": "a * b", "max": "detail::max_of(a, b)", "min": "detail::min_of(a, b)"}
_REDUCE_BOOL = {"add": "a || b", "mul": "a && b"}


@emits(indexing_ops.Gather)
class GatherEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.Gather`."""

    kernels = ("indexing",)

    def emit(self, ctx: NodeContext) -> str:
        data, indices = ctx.inputs[0], ctx.inputs[1]
        axis = normalize_axis(self, self.attrs["axis"], data.rank)
        outer, inner = num_elements(data.shape[:axis]), num_elements(data.shape[axis + 1:])
        sizes = ", ".join(ctx.dim(d) for d in (outer, data.shape[axis], indices.size, inner))
        return f"kernels::gather({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {sizes});"


@emits(indexing_ops.Addressing)
class AddressingEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.Addressing`."""

    def walker(self, ctx: NodeContext, data: TensorType, indices: TensorType, ptr: str) -> tuple[str, Dim]:
        """C++ offset walker over the indices at ``ptr`` (see indexing.hxx), and the elements each offset addresses."""
        raise NotImplementedError


@emits(indexing_ops.ElementAddressing)
class ElementAddressingEmitter(AddressingEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.ElementAddressing`."""

    def walker(self, ctx: NodeContext, data: TensorType, indices: TensorType, ptr: str) -> tuple[str, Dim]:
        ishape, dshape = ctx.array("ishape", indices.shape), ctx.array("dshape", data.shape)
        walker = (f'kernels::element_offsets<{ctx.ctype(indices.dtype)}>{{{ptr}, {ishape}, {dshape}, {data.rank}, '
                  f'{self.op.axis(data)}, {ctx.where}}}')
        return walker, 1


@emits(indexing_ops.SliceAddressing)
class SliceAddressingEmitter(AddressingEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.SliceAddressing`."""

    def walker(self, ctx: NodeContext, data: TensorType, indices: TensorType, ptr: str) -> tuple[str, Dim]:
        b, k = self.op.batch_dims(), indices.shape[-1]
        strides = contiguous_strides(data.shape)
        sizes = ", ".join(ctx.dim(d) for d in (num_elements(indices.shape[:b]), num_elements(indices.shape[b:-1]), k))
        dims, st = ctx.array("dims", data.shape[b:b + k]), ctx.array("strides", strides[b:b + k])
        walker = (f'kernels::slice_offsets<{ctx.ctype(indices.dtype)}>{{{ptr}, {sizes}, {dims}, {st}, '
                  f'{ctx.dim(num_elements(data.shape[b:]))}, {ctx.where}}}')
        return walker, num_elements(data.shape[b + k:])


@emits(indexing_ops.GatherOp)
class GatherOpEmitter(AddressingEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.GatherOp`."""

    kernels = ("indexing",)

    def emit(self, ctx: NodeContext) -> str:
        walker, piece = self.walker(ctx, ctx.inputs[0], ctx.inputs[1], ctx.x(1))
        return f"kernels::gather_by({ctx.x(0)}, {ctx.y(0)}, {ctx.dim(piece)}, {walker});"


@emits(indexing_ops.ScatterOp)
class ScatterOpEmitter(AddressingEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.ScatterOp`."""

    kernels = ("indexing",)

    def addressing(self, ctx: NodeContext) -> tuple[str, Dim, str]:
        """(offset walker, elements per offset, the updates' pointer)."""
        walker, piece = self.walker(ctx, ctx.inputs[0], ctx.inputs[1], ctx.x(1))
        return walker, piece, ctx.x(2)

    def emit(self, ctx: NodeContext) -> str:
        data = ctx.inputs[0]
        walker, piece, updates = self.addressing(ctx)
        t = ctx.ctype(data.dtype)
        reduction = self.op.reduction()
        expr = (_REDUCE_BOOL if data.dtype == np.bool_ else _REDUCE_CPP).get(reduction, _REDUCE_CPP[reduction])
        reduce = f"[]({t} &a, const {t} b) {{ a = static_cast<{t}>({expr}); }}"
        return (f"kernels::scatter({ctx.x(0)}, {updates}, {ctx.y(0)}, {ctx.dim(data.size)}, {ctx.dim(piece)}, "
                f"{walker}, {reduce});")


@emits(indexing_ops.GatherElements)
class GatherElementsEmitter(ElementAddressingEmitter, GatherOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.GatherElements`: its bases' together."""


@emits(indexing_ops.GatherND)
class GatherNDEmitter(SliceAddressingEmitter, GatherOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.GatherND`: its bases' together."""


@emits(indexing_ops.ScatterElements)
class ScatterElementsEmitter(ElementAddressingEmitter, ScatterOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.ScatterElements`: its bases' together."""


@emits(indexing_ops.ScatterND)
class ScatterNDEmitter(SliceAddressingEmitter, ScatterOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.ScatterND`: its bases' together."""


@emits(indexing_ops.GridScatterND)
class GridScatterNDEmitter(ScatterOpEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.GridScatterND`: ScatterND's scatter over a
    ``grid_offsets`` walker, each component read through its strides over the tuples' shape."""

    def addressing(self, ctx: NodeContext) -> tuple[str, Dim, str]:
        data, updates, components = ctx.inputs[0], ctx.inputs[1], ctx.inputs[2:]
        k = len(components)
        tuples = self.op.tuples_shape(data, updates, k) or (1,)  # one tuple: a grid of one row of one
        cstrides = [s for c in components for s in broadcast_strides(c.shape, tuples)]
        pointers = ctx.pointers("components", [ctx.x(2 + j) for j in range(k)], ctx.ctype(components[0].dtype))
        walker = (f'kernels::grid_offsets<{ctx.ctype(components[0].dtype)}>{{{pointers}, '
                  f'{ctx.array("cstrides", cstrides)}, {ctx.array("tuples", tuples)}, {len(tuples)}, {k}, '
                  f'{ctx.array("dims", data.shape[:k])}, {ctx.array("strides", contiguous_strides(data.shape)[:k])}, '
                  f'{ctx.where}}}')
        return walker, num_elements(data.shape[k:]), ctx.x(1)


@emits(indexing_ops.OneHot)
class OneHotEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.OneHot`; a depth read at run time is checked first."""

    kernels = ("indexing",)

    def emit(self, ctx: NodeContext) -> str:
        indices = ctx.inputs[0]
        axis = self.op.axis(indices.rank)
        depth = ctx.outputs[0].shape[axis]
        sizes = (num_elements(indices.shape[:axis]), depth, num_elements(indices.shape[axis:]))
        call = f"kernels::one_hot({ctx.x(0)}, {ctx.x(2)}, {ctx.y(0)}, {', '.join(ctx.dim(d) for d in sizes)});"
        if not self.op.at_run_time(ctx.inputs):
            return call
        read = f"{ctx.dim(depth)} = kernels::value_dim({ctx.x(1)}[0], {ctx.where}, \"the depth\");"
        return "\n".join(line for line in (read, ctx.reserve(0), call) if line)


@emits(indexing_ops.Trilu)
class TriluEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.Trilu`."""

    kernels = ("indexing",)

    def emit(self, ctx: NodeContext) -> str:
        x = ctx.inputs[0]
        k = ctx.x(1) if len(ctx.inputs) > 1 and ctx.inputs[1] is not None else "nullptr"
        sizes = ", ".join(ctx.dim(d) for d in (num_elements(x.shape[:-2]), *x.shape[-2:]))
        return f"kernels::trilu({ctx.x(0)}, {k}, {ctx.y(0)}, {sizes}, {'true' if self.attrs['upper'] else 'false'});"


@emits(indexing_ops.EyeLike)
class EyeLikeEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.indexing.EyeLike`."""

    kernels = ("indexing",)

    def emit(self, ctx: NodeContext) -> str:
        rows, cols = ctx.inputs[0].shape
        return f"kernels::eye({ctx.y(0)}, {ctx.dim(rows)}, {ctx.dim(cols)}, {self.attrs['k']});"


@emits(NeighbourGather)
class NeighbourGatherEmitter(ActivationCode):
    """The CPU code of :class:`~sofie_rdf.ops.fused.NeighbourGather`: one ``neighbour_gather`` call, a batch row's
    offsets computed once into scratch."""

    own_kernels = ("indexing",)

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        return [TensorType(np.dtype(np.uint64), (inputs[1].shape[1] * inputs[1].shape[2],))]

    def emit(self, ctx: NodeContext) -> str:
        x, idx = ctx.inputs[0], ctx.inputs[1]
        t = ctx.ctype(x.dtype)
        act = self.activation_function(ctx) or f"[](const {t} v) {{ return v; }}"
        sizes = ", ".join(ctx.dim(d) for d in (x.shape[0], x.shape[1], x.shape[2], idx.shape[1], idx.shape[2]))
        base = ctx.x(2) if len(ctx.inputs) > 2 and ctx.inputs[2] is not None else f"static_cast<const {t} *>(nullptr)"
        return (f"kernels::neighbour_gather({ctx.x(0)}, {ctx.x(1)}, {base}, {ctx.y(0)}, "
                f"{ctx.w(0)}, {sizes}, {act});")
