"""CPU emitters of the tree ensembles in :mod:`sofie_rdf.ops.trees`.

The forest becomes static constant arrays in the node's block (compiled into the library, read in place,
never copied per call: compile time grows with the number of nodes only as a list of numbers does) and one
call of ``kernels/trees.hxx``, its node test a template argument when every branch has the same mode, and
the missing-value test compiled in only where a node routes NaN to its true child.  The kernel's layout
(see :func:`walk_layout`) appends a node per leaf that leads to itself and gives each tree its depth, so
that every walk is a fixed number of steps.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ....ir import TensorType
from ....ops import trees as tree_ops
from ..._cxx.context import NodeContext, cpp_literal
from ..emitter import Emitter, emits

# C++ spelling of the node tests (index: the mode number of ops.trees.MODES) and of the mixed case.
CPP_MODES = ("Leq", "Lt", "Gte", "Gt", "Eq", "Neq", "Member")
MIXED = "Mixed"
CPP_AGGREGATES = {"AVERAGE": "Average", "SUM": "Sum", "MIN": "Min", "MAX": "Max"}
CPP_TRANSFORMS = {"NONE": "None", "SOFTMAX": "Softmax", "LOGISTIC": "Logistic", "SOFTMAX_ZERO": "SoftmaxZero",
                  "PROBIT": "Probit"}
# Rows scored together in the batch path (the kernels' Block): every tree's nodes are read once per block,
# so more rows share each read; few enough that the block's features and scores stay in L1.
ROW_BLOCK = 64
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


def tree_depths(forest: tree_ops.Forest) -> np.ndarray:
    """Per tree, the most branches on a path from its root (0 for a tree that is a leaf), level by level."""
    depth = np.zeros(forest.roots.size, dtype=np.int64)
    nodes, trees = forest.roots, np.arange(forest.roots.size)
    level = 0
    while True:
        keep = nodes >= 0
        nodes, trees = nodes[keep], trees[keep]
        if nodes.size == 0:
            return depth
        level += 1
        depth[trees] = level
        nodes = np.concatenate([forest.true_child[nodes], forest.false_child[nodes]])
        trees = np.concatenate([trees, trees])


def walk_layout(forest: tree_ops.Forest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's node indices: (true children, false children, roots) where leaf ``l`` (``~l`` in the
    forest) is node ``n_branches + l``, the leaf nodes themselves following the branches."""
    n_branches = forest.feature.size

    def node(c: np.ndarray) -> np.ndarray:
        return np.where(c < 0, n_branches + ~c, c)

    return node(forest.true_child), node(forest.false_child), node(forest.roots)


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
        """A block of rows' scores and whether each has a weight."""
        n = ROW_BLOCK * self.op.n_targets
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
        n_branches, n_leaves = f.feature.size, f.leaf_begin.size - 1
        yes, no, roots = walk_layout(f)
        leaves = range(n_branches, n_branches + n_leaves)
        zero = _number(0.0, dtype)
        nodes = [f"{{{_number(th, dtype)}, {ft}, {y}, {n}}}" for th, ft, y, n in zip(f.threshold, f.feature, yes, no)]
        nodes += [f"{{{zero}, 0, {i}, {i}}}" for i in leaves]  # a leaf: both ways lead back to it
        lines = _array(f"kernels::TreeNode<{t}>", "tree_nodes_", nodes)
        flags = "nullptr"
        if self.missing() or f.uniform_mode is None:
            flags = "tree_flags_"
            lines += _array("uint8_t", flags, [str(int(m) | (8 if miss else 0)) for m, miss in zip(f.mode, f.missing_true)]
                            + ["0"] * n_leaves)
        member_begin, members = "nullptr", "nullptr"
        if np.any(f.mode == tree_ops.MEMBER):
            member_begin, members = "tree_member_begin_", "tree_members_"
            ends = [str(int(f.member_begin[-1]))] * n_leaves  # a leaf's set is empty
            lines += _array("int32_t", member_begin, [str(int(v)) for v in f.member_begin] + ends)
            lines += _array(t, members, [_number(v, dtype) for v in f.members])
        lines += _array("int32_t", "tree_roots_", [str(int(v)) for v in roots])
        lines += _array("int32_t", "tree_depth_", [str(int(v)) for v in tree_depths(f)])
        lines += _array("int32_t", "tree_leaf_begin_", [str(int(v)) for v in f.leaf_begin])
        lines += _array("int32_t", "tree_weight_target_", [str(int(v)) for v in f.weight_target])
        lines += _array(t, "tree_weight_value_", [_number(v, dtype) for v in f.weight_value])
        base = self.op.base_values()
        lines += _array(t, "tree_base_", [_number(v, dtype) for v in base])
        lines.append(f"static const kernels::TreeForest<{t}> forest_ = {{tree_nodes_, {n_branches}, {flags}, "
                     f"{member_begin}, {members}, tree_roots_, tree_depth_, {f.roots.size}, tree_leaf_begin_, "
                     f"tree_weight_target_, tree_weight_value_, {self.op.n_targets}}};")
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
        return (f"kernels::tree_regressor<{ROW_BLOCK}, {self.mode()}, {str(self.missing()).lower()}, {aggregate}>("
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
        lines.append(f"kernels::tree_classifier<{ROW_BLOCK}, {self.mode()}, {str(self.missing()).lower()}>({forest}, {ctx.x(0)}, "
                     f"{rows}, {features}, tree_base_, {n_base}, tree_labels_, "
                     f"{str(self.op.binary_case()).lower()}, {str(self.op.weights_all_positive()).lower()}, "
                     f"{self.transform()}, {label}, {scores}, {ctx.w(0)}, {ctx.w(1)});")
        return "\n".join(lines)
