"""CPU emitters of the control-flow markers in :mod:`sofie_rdf.ops.control` (``planning/control_flow.py`` puts
them around the branches' nodes): each branch is a block of ``infer``, the session writer indents it by
``block`` (how the marker changes the depth of blocks before and after its own code)."""

from __future__ import annotations

from ....ir.dims import num_elements
from ....ops import control as control_ops
from ....ops.base import RUNTIME_DIM_MARK
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(control_ops.IfBegin)
class IfBeginEmitter(Emitter):
    """Opens the then-branch's block."""

    block = (0, 1)

    def emit(self, ctx: NodeContext) -> str:
        return f"if ({ctx.x(0)}[0]) {{"


@emits(control_ops.Else)
class ElseEmitter(Emitter):
    """Closes the then-branch's block and opens the else-branch's."""

    block = (-1, 1)

    def emit(self, ctx: NodeContext) -> str:
        return "} else {"


@emits(control_ops.EndIf)
class EndIfEmitter(Emitter):
    """Closes the else-branch's block and copies the taken branch's outputs into the If's, first setting the
    run-time dims of the outputs whose dims differ between the branches and reserving their memory."""

    block = (-1, 0)

    def emit(self, ctx: NodeContext) -> str:
        n = len(ctx.outputs)
        branches = [range(1, 1 + n), range(1 + n, 1 + 2 * n)]
        cond = f"{ctx.x(0)}[0]"
        lines = ["}"]
        dims = [self._dims(ctx, list(b)) for b in branches]
        if dims[0]:
            lines += self._choice(cond, dims)
        lines += [ctx.reserve(k) for k in range(n) if ctx.reserve(k)]
        lines += self._choice(cond, [self._copies(ctx, list(b)) for b in branches])
        return "\n".join(lines)

    @staticmethod
    def _choice(cond: str, branches: list[list[str]]) -> list[str]:
        indent = [[f"   {line}" for line in b] for b in branches]
        return [f"if ({cond}) {{", *indent[0], "} else {", *indent[1], "}"]

    def _dims(self, ctx: NodeContext, branch: list[int]) -> list[str]:
        """Assignments of the outputs' run-time dims from one branch's outputs."""
        mark = f"{self.op.node.outputs[0]}{RUNTIME_DIM_MARK}"  # the If's run-time dims are named so (Op.runtime_dim)
        return [f"{ctx.dim(d)} = {ctx.dim(ctx.inputs[i].shape[axis])};"
                for k, i in enumerate(branch) if ctx.outputs[k] is not None
                for axis, d in enumerate(ctx.outputs[k].shape) if getattr(d, "name", "").startswith(mark)]

    @staticmethod
    def _copies(ctx: NodeContext, branch: list[int]) -> list[str]:
        return [f"detail::copy_n({ctx.x(i)}, {ctx.dim(ctx.inputs[i].size)}, {ctx.y(k)});"
                for k, i in enumerate(branch) if ctx.outputs[k] is not None]


def _copy(ctx: NodeContext, src: int, dst: str, size: object, inside: bool) -> list[str]:
    """Copy of input ``src`` to ``dst`` (none when it is already there: the body passed a value through)."""
    if ctx.x(src) == dst:
        return []
    return [f"{'   ' if inside else ''}detail::copy_n({ctx.x(src)}, {ctx.dim(size)}, {dst});"]


def _position(iteration: str, length: str, reverse: bool) -> str:
    """Index along the scanned axis of an iteration (from the end when ``reverse``)."""
    i = f"static_cast<size_t>({iteration}[0])"
    return f"({length} - 1 - {i})" if reverse else i


def _times(a: str, b: str) -> str:
    """C++ product of two sizes, without a factor 1."""
    return a if b == "1" else b if a == "1" else f"{a} * {b}"


def _axis_layout(shape: tuple, axis: int) -> tuple[object, object]:
    """(elements before, elements after) the axis of a row-major shape."""
    return num_elements(shape[:axis]), num_elements(shape[axis + 1:])


@emits(control_ops.LoopBegin)
class LoopBeginEmitter(Emitter):
    """Copies the initial values into the loop's, sizes its scan outputs for ``M`` iterations (the count is set
    to those run at the end) and opens the loop."""

    block = (0, 1)

    def emit(self, ctx: NodeContext) -> str:
        n, _, k = self.attrs["counts"]
        lines = [line for j in range(n) for line in _copy(ctx, 2 + j, ctx.y(2 + j), ctx.inputs[2 + j].size, False)]
        trips = f"{ctx.x(0)}[0]" if ctx.inputs[0] is not None else ""
        if k:
            lines.append(f"{ctx.dim(ctx.outputs[2 + n].shape[0])} = static_cast<size_t>(std::max<int64_t>({trips}, 0));")
            lines += [ctx.reserve(2 + n + j) for j in range(k) if ctx.reserve(2 + n + j)]
        iteration, cond = ctx.y(0), ctx.y(1)
        lines.append(f"{cond}[0] = {f'{ctx.x(1)}[0]' if ctx.inputs[1] is not None else 'true'};")
        limit = f"{iteration}[0] < {trips} && " if trips else ""
        lines.append(f"for ({iteration}[0] = 0; {limit}{cond}[0]; ++{iteration}[0]) {{")
        return "\n".join(lines)


@emits(control_ops.LoopEnd)
class LoopEndEmitter(Emitter):
    """Stores the iteration's scan elements, makes the body's values and condition the loop's, closes the loop
    and sets the number of iterations run."""

    block = (-1, 0)

    def emit(self, ctx: NodeContext) -> str:
        n, _, k = self.attrs["counts"]
        iteration, cond, cond_out = ctx.x(0), ctx.x(1), 2 + n + k
        lines = []
        for j in range(k):
            element = ctx.inputs[cond_out + 1 + n + j]
            size = ctx.dim(element.size)
            position = _times(f"static_cast<size_t>({iteration}[0])", size)
            lines.append(f"   detail::copy_n({ctx.x(cond_out + 1 + n + j)}, {size}, {ctx.x(2 + n + j)} + {position});")
        for j in range(n):
            lines += _copy(ctx, cond_out + 1 + j, ctx.x(2 + j), ctx.inputs[2 + j].size, True)
        if ctx.x(cond_out) != cond:
            lines.append(f"   {cond}[0] = {ctx.x(cond_out)}[0];")
        lines.append("}")
        if k:
            lines.append(f"{ctx.dim(ctx.inputs[2 + n].shape[0])} = static_cast<size_t>({iteration}[0]);")
        return "\n".join(lines)


@emits(control_ops.ScanBegin)
class ScanBeginEmitter(Emitter):
    """Copies the initial state into the scan's, opens the loop over the scanned axis and takes each scan
    input's element of the iteration."""

    block = (0, 1)
    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        n, m, _ = self.attrs["counts"]
        axes = self.op.attr("scan_input_axes") or [0] * m
        reverse = self.op.attr("scan_input_directions") or [0] * m
        scans = [ctx.inputs[n + j] for j in range(m)]
        axes = [a % t.rank for a, t in zip(axes, scans)]
        length = ctx.dim(scans[0].shape[axes[0]])
        iteration = ctx.y(0)
        lines = [line for j in range(n) for line in _copy(ctx, j, ctx.y(1 + j), ctx.inputs[j].size, False)]
        lines.append(f"for ({iteration}[0] = 0; {iteration}[0] < static_cast<int64_t>({length}); ++{iteration}[0]) {{")
        for j, (t, a) in enumerate(zip(scans, axes)):
            outer, inner = (ctx.dim(d) for d in _axis_layout(t.shape, a))
            src = f"{ctx.x(n + j)} + {_times(_position(iteration, length, bool(reverse[j])), inner)}"
            element = ctx.y(1 + n + j)
            if outer == "1":
                lines.append(f"   detail::copy_n({src}, {inner}, {element});")
                continue
            lines += ["   {", f"      const size_t shape_[] = {{{outer}, {inner}}};",
                      f"      const std::ptrdiff_t strides_[] = {{static_cast<std::ptrdiff_t>({_times(length, inner)}), 1}};",
                      f"      kernels::unary_strided({src}, strides_, {element}, shape_, 2, "
                      f"[](const {ctx.ctype(t.dtype)} v) {{ return v; }});", "   }"]
        return "\n".join(lines)


@emits(control_ops.ScanEnd)
class ScanEndEmitter(Emitter):
    """Stores the iteration's scan output elements, makes the body's state the scan's and closes the loop."""

    block = (-1, 0)
    kernels = ("elementwise",)

    def emit(self, ctx: NodeContext) -> str:
        n, m, k = self.attrs["counts"]
        axes = self.op.attr("scan_output_axes") or [0] * k
        reverse = self.op.attr("scan_output_directions") or [0] * k
        iteration, outputs, body = ctx.x(0), 1 + n + m, 1 + n + m + k
        lines = []
        for j in range(k):
            t = ctx.inputs[outputs + j]
            a = axes[j] % t.rank
            outer, inner = (ctx.dim(d) for d in _axis_layout(t.shape, a))
            length = ctx.dim(t.shape[a])
            dst = f"{ctx.x(outputs + j)} + {_times(_position(iteration, length, bool(reverse[j])), inner)}"
            element = ctx.x(body + n + j)
            lines.append(f"   detail::copy_n({element}, {inner}, {dst});" if outer == "1" else
                         f"   kernels::copy_blocks({element}, {dst}, {outer}, {inner}, {_times(length, inner)});")
        for j in range(n):
            lines += _copy(ctx, body + j, ctx.x(1 + j), ctx.inputs[1 + j].size, True)
        return "\n".join(lines + ["}"])
