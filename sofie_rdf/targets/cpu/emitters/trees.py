"""CPU emitters of the tree ensembles in :mod:`sofie_rdf.ops.trees`.

The forest becomes static constant arrays in the node's block (compiled into the library, read in place,
never copied per call) and one call of ``kernels/trees.hxx``, its node test a template argument when every
branch has the same mode, and the missing-value test compiled in only where a node routes NaN to its true
child.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ....ir import TensorType
from ....ops import trees as tree_ops
from ..context import NodeContext, cpp_literal
from ..emitter import Emitter, emits

# C++ spelling of the node tests (index: the mode number of ops.trees.MODES) and of the mixed case.
CPP_MODES = ("Leq", "Lt", "Gte", "Gt", "Eq", "Neq", "Member")
MIXED = "Mixed"
CPP_AGGREGATES = {"AVERAGE": "Average", "SUM": "Sum", "MIN": "Min", "MAX": "Max"}
CPP_TRANSFORMS = {"NONE": "None", "SOFTMAX": "Softmax", "LOGISTIC": "Logistic", "SOFTMAX_ZERO": "SoftmaxZero",
                  "PROBIT": "Probit"}
# Numbers per line of the emitted arrays (long lines, but not one line of a million numbers).
PER_LINE = 16


def _number(value: float, dtype: np.dtype) -> str:
    """Exact C++ literal; the plain format for finite values (thousands of them) and cpp_literal for the rest."""
    v = float(value)
    if not math.isfinite(v):
        return cpp_literal(v, dtype)
    if dtype == np.float32:
        return f"{v:.9g}f" if any(c in f"{v:.9g}" for c in ".en") else f"{v:.9g}.0f"
    return f"{v:.17g}" if any(c in f"{v:.17g}" for c in ".en") else f"{v:.17g}.0"


def _array(ctype: str, name: str, items: list[str]) -> list[str]:
    """A static constant array, PER_LINE items a line (one dummy item when empty: C++ has no empty arrays)."""
    items = items or ["{}"]
    rows = [", ".join(items[k:k + PER_LINE]) for k in range(0, len(items), PER_LINE)]
    return [f"static const {ctype} {name}[] = {{", *(f"   {row}," for row in rows), "};"]


class _TreeEmitter(Emitter):
    """The forest's arrays and the template arguments shared by the three operators."""

    kernels = ("trees",)

    @property
    def op_forest(self) -> tree_ops.Forest:
        return self.op.forest

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """A row's scores and whether each has a weight."""
        n = self.op.n_targets
        return [TensorType(self.op.threshold_dtype, (n,)), TensorType(np.uint8, (n,))]

    def mode(self) -> str:
        uniform = self.op_forest.uniform_mode
        return f"kernels::TreeMode::{MIXED if uniform is None else CPP_MODES[uniform]}"

    def missing(self) -> bool:
        return bool(self.op_forest.missing_true.any())

    def declare_forest(self, ctx: NodeContext) -> str:
        """Declare the arrays and the ``TreeForest`` over them; returns its name."""
        f, dtype = self.op_forest, self.op.threshold_dtype
        t = ctx.ctype(dtype)
        nodes = [f"{{{_number(th, dtype)}, {ft}, {yes}, {no}}}"
                 for th, ft, yes, no in zip(f.threshold, f.feature, f.true_child, f.false_child)]
        lines = _array(f"kernels::TreeNode<{t}>", "tree_nodes_", nodes)
        flags = "nullptr"
        if self.missing() or f.uniform_mode is None:
            flags = "tree_flags_"
            lines += _array("uint8_t", flags, [str(int(m) | (8 if miss else 0)) for m, miss in zip(f.mode, f.missing_true)])
        member_begin, members = "nullptr", "nullptr"
        if np.any(f.mode == tree_ops.MEMBER):
            member_begin, members = "tree_member_begin_", "tree_members_"
            lines += _array("int32_t", member_begin, [str(int(v)) for v in f.member_begin])
            lines += _array(t, members, [_number(v, dtype) for v in f.members])
        lines += _array("int32_t", "tree_roots_", [str(int(v)) for v in f.roots])
        lines += _array("int32_t", "tree_leaf_begin_", [str(int(v)) for v in f.leaf_begin])
        lines += _array("int32_t", "tree_weight_target_", [str(int(v)) for v in f.weight_target])
        lines += _array(t, "tree_weight_value_", [_number(v, dtype) for v in f.weight_value])
        base = self.op.base_values()
        lines += _array(t, "tree_base_", [_number(v, dtype) for v in base])
        lines.append(f"static const kernels::TreeForest<{t}> forest_ = {{tree_nodes_, {flags}, {member_begin}, "
                     f"{members}, tree_roots_, {f.roots.size}, tree_leaf_begin_, tree_weight_target_, "
                     f"tree_weight_value_, {self.op.n_targets}}};")
        ctx.declarations += lines
        return "forest_"

    def layout(self, ctx: NodeContext) -> tuple[str, str]:
        """(rows, features) of X in C++."""
        x = ctx.inputs[0]
        rows, features = (1, x.shape[0]) if x.rank == 1 else x.shape
        return ctx.dim(rows), ctx.dim(features)

    def transform(self) -> str:
        return f"kernels::TreeTransform::{CPP_TRANSFORMS[self.op.transform()]}"


@emits(tree_ops.TreeEnsembleRegressor, tree_ops.TreeEnsemble)
class TreeRegressorEmitter(_TreeEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.trees.TreeEnsembleRegressor` and ``TreeEnsemble``."""

    def emit(self, ctx: NodeContext) -> str:
        forest = self.declare_forest(ctx)
        rows, features = self.layout(ctx)
        aggregate = f"kernels::TreeAggregate::{CPP_AGGREGATES[self.op.aggregate()]}"
        n_base = self.op.base_values().size
        return (f"kernels::tree_regressor<{self.mode()}, {str(self.missing()).lower()}, {aggregate}>("
                f"{forest}, {ctx.x(0)}, {rows}, {features}, tree_base_, {n_base}, {self.transform()}, {ctx.y(0)}, "
                f"{ctx.w(0)}, {ctx.w(1)});")


@emits(tree_ops.TreeEnsembleClassifier)
class TreeClassifierEmitter(_TreeEmitter):
    """The CPU code of :class:`~sofie_rdf.ops.trees.TreeEnsembleClassifier`."""

    def emit(self, ctx: NodeContext) -> str:
        forest = self.declare_forest(ctx)
        ctx.declarations += _array("int64_t", "tree_labels_", [f"INT64_C({v})" for v in self.op.labels()])
        rows, features = self.layout(ctx)
        n_base = self.op.base_values().size
        label = ctx.y(0) if ctx.outputs and ctx.outputs[0] is not None else "tree_label_scratch_"
        scores = ctx.y(1) if len(ctx.outputs) > 1 and ctx.outputs[1] is not None else "tree_score_scratch_"
        lines = []
        if label.startswith("tree_") or scores.startswith("tree_"):
            lines.append(f"std::vector<int64_t> tree_label_scratch_v_({rows}); "
                         f"std::vector<float> tree_score_scratch_v_({rows} * {self.op.n_targets});")
            lines.append("int64_t *tree_label_scratch_ = tree_label_scratch_v_.data(); "
                         "float *tree_score_scratch_ = tree_score_scratch_v_.data();")
        lines.append(f"kernels::tree_classifier<{self.mode()}, {str(self.missing()).lower()}>({forest}, {ctx.x(0)}, "
                     f"{rows}, {features}, tree_base_, {n_base}, tree_labels_, "
                     f"{str(self.op.binary_case()).lower()}, {str(self.op.weights_all_positive()).lower()}, "
                     f"{self.transform()}, {label}, {scores}, {ctx.w(0)}, {ctx.w(1)});")
        return "\n".join(lines)
