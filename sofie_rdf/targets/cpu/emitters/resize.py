"""CPU emitters of the operators in :mod:`sofie_rdf.ops.resize`."""

from __future__ import annotations

import numpy as np

from ....ir.dims import as_dim
from ....ops import resize as resize_ops
from ....ops.base import contiguous_strides
from ..._cxx.context import NodeContext, cpp_literal
from ..emitter import Emitter, emits


@emits(resize_ops._ResizeBase)
class ResizeBaseEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.resize._ResizeBase`.

    Known scales, sizes and roi over fixed sizes give tables written into the
    code (the fast path); run-time ones, or a symbolic axis they resize, make
    the code compute the output shape and build the tables per call
    (``kernels::resize_params``, ``kernels::resize_at_run_time``), both then
    running the one interpolation loop (``kernels::resize``).
    """

    kernels = ("resize",)

    def emit(self, ctx: NodeContext) -> str:
        if self.op.at_run_time(ctx.inputs):
            return self.emit_at_run_time(ctx)
        x = ctx.inputs[0]
        sizes, tables = self.op.tables(ctx.inputs)
        if any(isinstance(d, int) and d == 0 for d in sizes):
            return "// empty output: nothing to compute"
        lines, entries = [], []
        for axis, t in enumerate(tables):
            if t is None:
                entries.append("{0, nullptr, nullptr, nullptr}")
                continue
            index = ctx.array(f"index{axis}", [int(v) for v in t.index.reshape(-1)])
            weight = f"weight{axis}_"
            lines.append(f"static const double {weight}[] = {{{', '.join(repr(float(w)) for w in t.weight.reshape(-1))}}};")
            outside = "nullptr"
            if t.outside is not None:
                outside = ctx.array(f"outside{axis}", [int(v) for v in t.outside], "bool")
            entries.append(f"{{{t.index.shape[1]}, {index}, {weight}, {outside}}}")
        lines.append(f"const kernels::resize_axis axes_[] = {{{', '.join(entries)}}};")
        out_shape = ctx.array("out_shape", ctx.outputs[0].shape)
        strides = ctx.array("strides", contiguous_strides(x.shape), "std::ptrdiff_t")
        extrapolation = ctx.literal(self.op.extrapolation(), np.float64)
        lines.append(f"kernels::resize({ctx.x(0)}, {ctx.y(0)}, {out_shape}, {strides}, axes_, {x.rank}, "
                     f"{extrapolation});")
        return "\n".join(lines)

    # ---- scales, sizes or roi read at run time, or symbolic axes resized ----------------------
    def emit_at_run_time(self, ctx: NodeContext) -> str:
        """Output dims from the values read now (or written into the code) and the input's dims, then tables
        and interpolation by the same rules; only the run-time dims of the output are set."""
        x, y = ctx.inputs[0], ctx.outputs[0]
        rank = x.rank
        axes = self.op.resized_axes(rank)
        in_shape = ctx.array("in_shape", x.shape)
        resized = ctx.array("resized_axes", axes)
        lines = [f"size_t out_shape_[{rank}] = {{}};",
                 f"double scale_[{rank}] = {{}}, roi_[{2 * rank}] = {{}};"]
        values = []
        for what, ctype, dtype in (("scales", "float", np.float32), ("sizes", "int64_t", np.int64),
                                   ("roi", "float", np.float32)):
            ptr, count = self._value(ctx, what, ctype, dtype, lines)
            values.append(f"{ptr}, {count}")
        policy = f"kernels::resize_policy::{self.op.policy()}"
        lines.append(f"kernels::resize_params({in_shape}, {rank}, {resized}, {len(axes)}, {', '.join(values)}, "
                     f"{policy}, out_shape_, scale_, roi_, {ctx.where});")
        lines += [f"{ctx.dim(y.shape[a])} = out_shape_[{a}];" for a in self.op.runtime_axes(ctx.inputs)]
        lines.append(ctx.reserve(0))
        lines.append(f"const kernels::resize_filter filter_ = {self._filter()};")
        extrapolation = ctx.literal(self.op.extrapolation(), np.float64)
        lines.append(f"kernels::resize_at_run_time({ctx.x(0)}, {ctx.y(0)}, {in_shape}, out_shape_, scale_, roi_, "
                     f"{rank}, filter_, {extrapolation}, {ctx.where});")
        return "\n".join(line for line in lines if line)

    def _value(self, ctx: NodeContext, what: str, ctype: str, dtype: np.dtype, lines: list[str]) -> tuple[str, str]:
        """Pointer and element count of the scales, sizes or roi the code reads (``nullptr, 0`` when not given).

        Values known now (inputs or attributes) are written into the code: the header passes ``nullptr``
        for value inputs known when it is generated, so only inputs computed at run time are read.
        """
        i = self.op.value_slots().get(what)
        t = ctx.inputs[i] if i is not None and i < len(ctx.inputs) else None
        if t is not None and t.value is None:  # computed at run time: the node reads it
            return ctx.x(i), ctx.dim(t.size)
        known = self.op.given(ctx.inputs, what)
        value = np.asarray(known if known is not None else []).reshape(-1)
        if value.size == 0:
            return f"static_cast<const {ctype} *>(nullptr)", "0"
        if what == "sizes":  # ints, or dims (sizes computed from shapes)
            return ctx.array("given_sizes", [as_dim(v) for v in value.tolist()], ctype), str(value.size)
        name = f"given_{what}_"
        lines.append(f"const {ctype} {name}[] = {{{', '.join(ctx.literal(v, dtype) for v in value)}}};")
        return name, str(value.size)

    def _filter(self) -> str:
        """The kernels::resize_filter initializer of the node's attributes."""
        op = self.op
        nearest = op.attrs.get("nearest_mode", "simple")
        fields = [f"kernels::resize_mode::{op.mode()}", f"kernels::resize_coord::{op.coordinate_mode()}",
                  f"kernels::resize_nearest::{nearest}", str(bool(op.attrs.get("antialias", 0))).lower(),
                  str(bool(op.attrs.get("exclude_outside", 0))).lower(),
                  cpp_literal(op.attrs.get("cubic_coeff_a", -0.75), np.float64)]
        return "{" + ", ".join(fields) + "}"

