"""The ai.onnx.ml tree ensembles (BDTs): TreeEnsembleRegressor, TreeEnsembleClassifier and TreeEnsemble.

Every version is read into one :class:`Forest`: branch nodes and leaves apart, children as indices (a leaf
as ``~leaf``), each leaf's weights as a slice of (target, weight) pairs.  The attributes are checked
while reading (lengths, ids, children, cycles, modes), so a broken model is refused when it is loaded.

The results follow onnxruntime, which differs from the spec's text in places a model can meet: a tree's
root is the first node listed for its tree id; a single-target regressor applies only PROBIT of the
post transforms; a two-class classifier turns its one or two score columns into two as
onnxruntime's ``TreeAggregatorClassifier::FinalizeScores`` does (see :class:`TreeEnsembleClassifier`).
Thresholds are float unless a ``*_as_tensor`` attribute makes them double, and a feature is compared
with its threshold as C++ compares the two types, as onnxruntime does.  There is no numpy ``evaluate``:
a tree ensemble of constant inputs is not a thing models hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Optional

import numpy as np

from ..ir import TensorType
from .base import Op
from .elementwise import check_kinds
from .registry import register

ML_DOMAIN = "ai.onnx.ml"
# Node modes, numbered as TreeEnsemble-5's ``nodes_modes``; the legacy versions spell them.
MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER")
LEAF = "LEAF"
MEMBER = MODES.index("BRANCH_MEMBER")
AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")          # TreeEnsemble-5's numbering
TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")


@dataclass(frozen=True)
class Forest:
    """Trees as flat arrays.  Node ``i`` is a branch: ``feature[i] <mode[i]> threshold[i]`` (or NaN with
    ``missing_true[i]``) goes to ``true_child[i]``, else ``false_child[i]``; a child ``c < 0`` is leaf ``~c``,
    whose weights are ``weight_value[leaf_begin[l]:leaf_begin[l + 1]]`` for targets ``weight_target``.
    ``members[member_begin[i]:member_begin[i + 1]]`` is the set of a BRANCH_MEMBER node."""

    feature: np.ndarray
    threshold: np.ndarray
    mode: np.ndarray
    missing_true: np.ndarray
    true_child: np.ndarray
    false_child: np.ndarray
    roots: np.ndarray
    leaf_begin: np.ndarray
    weight_target: np.ndarray
    weight_value: np.ndarray
    member_begin: np.ndarray
    members: np.ndarray

    @property
    def uniform_mode(self) -> Optional[int]:
        """The mode every branch has, None when they differ (or there is no branch)."""
        modes = np.unique(self.mode)
        return int(modes[0]) if modes.size == 1 else None


class _TreeOp(Op):
    """What the three tree operators share: reading the forest, checking X, the aggregation."""

    domain = ML_DOMAIN
    kinds = "fi"
    # Set by each operator: its trees (a cached property) and its number of targets or classes.
    forest: Forest
    n_targets: int

    def aggregate(self) -> str:
        return "SUM"

    def transform(self) -> str:
        name = self.attr("post_transform", "NONE")
        if name not in TRANSFORMS:
            raise self.error(f"post_transform {name!r} is not one of {', '.join(TRANSFORMS)}")
        return name

    def rows_features(self, x: TensorType) -> tuple[Any, Any]:
        """(rows, features) of X: a 1-D X is one row, as in onnxruntime."""
        check_kinds(self, x.dtype, self.kinds)
        if x.rank not in (1, 2):
            raise self.error(f"X must be 1-D or 2-D, got shape {x.shape}")
        rows, features = (1, x.shape[0]) if x.rank == 1 else x.shape
        forest = self.forest
        if isinstance(features, int) and forest.feature.size and int(forest.feature.max()) >= features:
            raise self.error(f"a node reads feature {int(forest.feature.max())}, but X has {features} features")
        return rows, features

    def check_targets(self, what: str) -> None:
        targets = self.forest.weight_target
        if targets.size and (targets.min() < 0 or targets.max() >= self.n_targets):
            raise self.error(f"{what} {int(targets.max() if targets.max() >= self.n_targets else targets.min())}"
                             f" is out of range for {self.n_targets} {'classes' if 'class' in what else 'targets'}")

    def values(self, name: str) -> Optional[np.ndarray]:
        """Attribute ``name`` or ``name_as_tensor`` (doubles), None when neither is set; both is an error."""
        plain, tensor = self.attrs.get(name), self.attrs.get(f"{name}_as_tensor")
        if plain is not None and tensor is not None:
            raise self.error(f"{name} and {name}_as_tensor are both set")
        if tensor is not None:
            return np.asarray(tensor, dtype=np.float64).reshape(-1)
        return None if plain is None else np.asarray(plain, dtype=np.float32)

    @property
    def threshold_dtype(self) -> np.dtype:
        """Double when any ``*_as_tensor`` attribute is set (onnxruntime's double trees), else float."""
        doubles = any(self.attrs.get(f"{n}_as_tensor") is not None
                      for n in ("nodes_values", "target_weights", "class_weights", "base_values"))
        return np.dtype(np.float64 if doubles else np.float32)


def _legacy_forest(op: _TreeOp, prefix: str) -> Forest:
    """The forest of the opset 1/3 attributes ``nodes_*`` and ``<prefix>_{treeids,nodeids,ids,weights}``."""
    a = op.attrs
    tree_ids = list(a.get("nodes_treeids") or [])
    n = len(tree_ids)
    thresholds = op.values("nodes_values")
    columns = {"nodes_nodeids": a.get("nodes_nodeids"), "nodes_featureids": a.get("nodes_featureids"),
               "nodes_modes": a.get("nodes_modes"), "nodes_truenodeids": a.get("nodes_truenodeids"),
               "nodes_falsenodeids": a.get("nodes_falsenodeids"), "nodes_values": thresholds}
    for name, col in columns.items():
        if col is None or len(col) != n:
            raise op.error(f"{name} has {0 if col is None else len(col)} entries, nodes_treeids {n}")
    missing = list(a.get("nodes_missing_value_tracks_true") or [])
    if missing and len(missing) != n:
        raise op.error(f"nodes_missing_value_tracks_true has {len(missing)} entries, nodes_treeids {n}")
    modes = list(a["nodes_modes"])
    bad = sorted({m for m in modes if m != LEAF and m not in MODES[:MEMBER]})
    if bad:
        raise op.error(f"unsupported node mode(s) {', '.join(bad)} (expected LEAF or one of {', '.join(MODES[:MEMBER])})")
    position: dict[tuple[int, int], int] = {}
    for i, key in enumerate(zip(tree_ids, a["nodes_nodeids"])):
        if key in position:
            raise op.error(f"node {key[1]} of tree {key[0]} appears twice")
        position[key] = i
    leaf_of = {i: k for k, i in enumerate(i for i in range(n) if modes[i] == LEAF)}
    branch_of = {i: k for k, i in enumerate(i for i in range(n) if modes[i] != LEAF)}

    def ref(i: int, child: int, which: str) -> int:
        j = position.get((tree_ids[i], child))
        if j is None:
            raise op.error(f"node {a['nodes_nodeids'][i]} of tree {tree_ids[i]}: {which} {child} is not a node of the tree")
        return ~leaf_of[j] if j in leaf_of else branch_of[j]

    branches = list(branch_of)
    roots, seen = [], set()
    for i, t in enumerate(tree_ids):
        if t not in seen:
            seen.add(t)
            roots.append(~leaf_of[i] if i in leaf_of else branch_of[i])
    leaves = _legacy_weights(op, prefix, position, leaf_of)
    return _checked(op, Forest(
        feature=np.asarray([a["nodes_featureids"][i] for i in branches], dtype=np.int64),
        threshold=thresholds[branches].astype(op.threshold_dtype),
        mode=np.asarray([MODES.index(modes[i]) for i in branches], dtype=np.uint8),
        missing_true=np.asarray([bool(missing and missing[i] == 1) for i in branches], dtype=bool),
        true_child=np.asarray([ref(i, a["nodes_truenodeids"][i], "true child") for i in branches], dtype=np.int64),
        false_child=np.asarray([ref(i, a["nodes_falsenodeids"][i], "false child") for i in branches], dtype=np.int64),
        roots=np.asarray(roots, dtype=np.int64), **leaves,
        member_begin=np.zeros(len(branches) + 1, dtype=np.int64), members=np.zeros(0, op.threshold_dtype)))


def _legacy_weights(op: _TreeOp, prefix: str, position: dict[tuple[int, int], int],
                    leaf_of: dict[int, int]) -> dict[str, np.ndarray]:
    """Leaf weights in CSR form; weights on branch nodes are ignored, as onnxruntime does (old converters)."""
    a = op.attrs
    trees, nodes, ids = (list(a.get(f"{prefix}_{s}") or []) for s in ("treeids", "nodeids", "ids"))
    weights = op.values(f"{prefix}_weights")
    weights = np.zeros(0, np.float32) if weights is None else weights
    if not len(trees) == len(nodes) == len(ids) == weights.size:
        raise op.error(f"{prefix}_treeids, {prefix}_nodeids, {prefix}_ids and {prefix}_weights have "
                       f"{len(trees)}, {len(nodes)}, {len(ids)} and {weights.size} entries")
    per_leaf: list[list[tuple[int, float]]] = [[] for _ in leaf_of]
    for t, nd, target, w in zip(trees, nodes, ids, weights):
        j = position.get((t, nd))
        if j is None:
            raise op.error(f"a weight names node {nd} of tree {t}, which does not exist")
        if j in leaf_of:
            per_leaf[leaf_of[j]].append((target, w))
    return _csr(per_leaf, op.threshold_dtype)


def _csr(per_leaf: list[list[tuple[int, float]]], dtype: np.dtype) -> dict[str, np.ndarray]:
    counts = [len(p) for p in per_leaf]
    flat = [pair for p in per_leaf for pair in p]
    return {"leaf_begin": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "weight_target": np.asarray([t for t, _ in flat], dtype=np.int64),
            "weight_value": np.asarray([w for _, w in flat], dtype=dtype)}


def _checked(op: Op, forest: Forest) -> Forest:
    """Refuse negative features and trees with a cycle (a node reached again below itself)."""
    if forest.feature.size and forest.feature.min() < 0:
        raise op.error(f"feature id {int(forest.feature.min())} is negative")
    if forest.roots.size == 0:
        raise op.error("the ensemble has no tree")
    state = np.zeros(forest.feature.size, dtype=np.uint8)  # 0 unseen, 1 on the path, 2 done
    for root in forest.roots:
        if root < 0 or state[root] == 2:
            continue
        stack = [(int(root), False)]
        while stack:
            i, leaving = stack.pop()
            if leaving:
                state[i] = 2
                continue
            if state[i] == 1:
                raise op.error(f"the tree holding branch node {i} has a cycle")
            if state[i] == 2:
                continue
            state[i] = 1
            stack.append((i, True))
            stack += [(int(c), False) for c in (forest.true_child[i], forest.false_child[i]) if c >= 0 and state[c] != 2]
    return forest


@register
class TreeEnsembleRegressor(_TreeOp):
    """Y (N, n_targets, float) = the aggregated leaf weights of every tree, plus base values, post-transformed."""

    op_type = "TreeEnsembleRegressor"
    since_version = 1

    @cached_property
    def forest(self) -> Forest:
        return _legacy_forest(self, "target")

    @property
    def n_targets(self) -> int:
        return int(self.attr("n_targets", 0) or 0)

    def aggregate(self) -> str:
        name = self.attr("aggregate_function", "SUM")
        if name not in AGGREGATES:
            raise self.error(f"aggregate_function {name!r} is not one of {', '.join(AGGREGATES)}")
        return name

    def base_values(self) -> np.ndarray:
        base = self.values("base_values")
        base = np.zeros(0, self.threshold_dtype) if base is None else base.astype(self.threshold_dtype)
        if base.size not in (0, self.n_targets):
            raise self.error(f"base_values has {base.size} entries for {self.n_targets} targets")
        return base

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        rows, _ = self.rows_features(inputs[0])
        if self.n_targets < 1:
            raise self.error(f"n_targets must be >= 1, got {self.n_targets}")
        self.check_targets("target id")
        self.aggregate(), self.transform(), self.base_values()
        return [TensorType(np.float32, (rows, self.n_targets))]


@register
class TreeEnsembleRegressor_3(TreeEnsembleRegressor):
    """Adds the ``*_as_tensor`` (double) attributes."""

    since_version = 3


@register
class TreeEnsembleClassifier(_TreeOp):
    """Label (N, int64) and scores Z (N, n_classes, float): the summed class weights of every tree.

    Two classes follow onnxruntime: when every weight is for one class (gradient boosting), that column is
    the score and the label is class 1 where it is above 0.5 (all weights positive) or 0 (any negative);
    Z is then (1 - s, s), or (-s, s), or with LOGISTIC (logistic(-s), logistic(s)).  With weights on both
    classes the label is 1 where the positive score is above 0 (onnxruntime's rule, whatever the labels).
    String labels are refused: generated code has no string tensors.
    """

    op_type = "TreeEnsembleClassifier"
    since_version = 1

    @cached_property
    def forest(self) -> Forest:
        return _legacy_forest(self, "class")

    @property
    def n_targets(self) -> int:
        return len(self.labels())

    def labels(self) -> list[int]:
        if self.attrs.get("classlabels_strings"):
            raise self.error("string class labels (classlabels_strings) are not supported: the generated code has no"
                             " string tensors; export the model with integer labels")
        labels = list(self.attrs.get("classlabels_int64s") or [])
        if len(labels) < 2:
            raise self.error(f"a classifier needs at least 2 class labels, got {len(labels)}")
        return labels

    def binary_case(self) -> bool:
        """Two classes with weights for one only: onnxruntime's one-score binary classifier."""
        return self.n_targets == 2 and np.unique(self.forest.weight_target).size == 1

    def weights_all_positive(self) -> bool:
        return bool(np.all(self.forest.weight_value >= 0))

    def base_values(self) -> np.ndarray:
        base = self.values("base_values")
        base = np.zeros(0, self.threshold_dtype) if base is None else base.astype(self.threshold_dtype)
        if base.size > self.n_targets:
            raise self.error(f"base_values has {base.size} entries for {self.n_targets} classes")
        return base

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        rows, _ = self.rows_features(inputs[0])
        self.check_targets("class id")
        self.transform(), self.base_values()
        return [TensorType(np.int64, (rows,)), TensorType(np.float32, (rows, self.n_targets))]


@register
class TreeEnsembleClassifier_3(TreeEnsembleClassifier):
    """Adds the ``*_as_tensor`` (double) attributes."""

    since_version = 3


@register
class TreeEnsemble(_TreeOp):
    """ai.onnx.ml-5's tree ensemble: Y (N, n_targets) in X's type (float or double), nodes and leaves apart,
    node modes as numbers, BRANCH_MEMBER nodes testing a set (``membership_values``, sets split by NaN)."""

    op_type = "TreeEnsemble"
    since_version = 5
    kinds = "f"

    @property
    def n_targets(self) -> int:
        return int(self.attr("n_targets", 0) or 0)

    @property
    def threshold_dtype(self) -> np.dtype:
        return np.asarray(self.attrs["nodes_splits"]).dtype

    def aggregate(self) -> str:
        code = int(self.attr("aggregate_function", 1))
        if not 0 <= code < len(AGGREGATES):
            raise self.error(f"aggregate_function {code} is not in [0, {len(AGGREGATES)})")
        return AGGREGATES[code]

    def transform(self) -> str:
        code = int(self.attr("post_transform", 0))
        if not 0 <= code < len(TRANSFORMS):
            raise self.error(f"post_transform {code} is not in [0, {len(TRANSFORMS)})")
        return TRANSFORMS[code]

    def base_values(self) -> np.ndarray:
        return np.zeros(0, self.threshold_dtype)

    @cached_property
    def forest(self) -> Forest:
        a = self.attrs
        modes = np.asarray(a["nodes_modes"]).reshape(-1).astype(np.int64)
        n = modes.size
        for name in ("nodes_featureids", "nodes_truenodeids", "nodes_falsenodeids", "nodes_trueleafs",
                     "nodes_falseleafs", "nodes_splits"):
            if np.asarray(a[name]).size != n:
                raise self.error(f"{name} has {np.asarray(a[name]).size} entries, nodes_modes {n}")
        missing = np.asarray(a.get("nodes_missing_value_tracks_true") or np.zeros(n), dtype=np.int64)
        if missing.size != n:
            raise self.error(f"nodes_missing_value_tracks_true has {missing.size} entries, nodes_modes {n}")
        if n and (modes.min() < 0 or modes.max() > MEMBER):
            raise self.error(f"node mode {int(modes.max() if modes.max() > MEMBER else modes.min())} is not in [0, {MEMBER}]")
        weights = np.asarray(a["leaf_weights"]).reshape(-1)
        targets = np.asarray(a["leaf_targetids"], dtype=np.int64)
        if weights.size != targets.size:
            raise self.error(f"leaf_weights has {weights.size} entries, leaf_targetids {targets.size}")
        true_child = self._children("true", n, weights.size)
        false_child = self._children("false", n, weights.size)
        roots = np.asarray(a["tree_roots"], dtype=np.int64)
        if roots.size and (roots.min() < 0 or roots.max() >= n):
            raise self.error(f"tree root {int(roots.max() if roots.max() >= n else roots.min())} is not a node (there are {n})")
        begin, members = self._membership(modes)
        return _checked(self, Forest(
            feature=np.asarray(a["nodes_featureids"], dtype=np.int64),
            threshold=np.asarray(a["nodes_splits"]).reshape(-1).astype(self.threshold_dtype),
            mode=modes.astype(np.uint8), missing_true=missing == 1, true_child=true_child, false_child=false_child,
            roots=roots, leaf_begin=np.arange(weights.size + 1, dtype=np.int64), weight_target=targets,
            weight_value=weights.astype(self.threshold_dtype), member_begin=begin, members=members))

    def _children(self, which: str, n_nodes: int, n_leaves: int) -> np.ndarray:
        ids = np.asarray(self.attrs[f"nodes_{which}nodeids"], dtype=np.int64)
        is_leaf = np.asarray(self.attrs[f"nodes_{which}leafs"], dtype=np.int64) != 0
        limit = np.where(is_leaf, n_leaves, n_nodes)
        bad = np.flatnonzero((ids < 0) | (ids >= limit))
        if bad.size:
            i = int(bad[0])
            raise self.error(f"node {i}: {which} child {int(ids[i])} is not a {'leaf' if is_leaf[i] else 'node'}"
                             f" (there are {int(limit[i])})")
        return np.where(is_leaf, ~ids, ids)

    def _membership(self, modes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per node, where its set starts in the concatenated sets (the NaNs dropped)."""
        values = self.attrs.get("membership_values")
        values = np.zeros(0) if values is None else np.asarray(values).reshape(-1)
        sets = np.split(values, np.flatnonzero(np.isnan(values))) if values.size else []
        sets = [s[~np.isnan(s)] for s in sets]
        n_member = int(np.count_nonzero(modes == MEMBER))
        if len(sets) < n_member:
            raise self.error(f"membership_values holds {len(sets)} sets for {n_member} BRANCH_MEMBER nodes")
        sizes, k = [], 0
        for m in modes:
            sizes.append(sets[k].size if m == MEMBER else 0)
            k += m == MEMBER
        members = np.concatenate(sets[:n_member]) if n_member else np.zeros(0)
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), members.astype(self.threshold_dtype)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        rows, _ = self.rows_features(x)
        if x.dtype not in (np.float32, np.float64):
            raise self.error(f"X must be float or double, got {x.dtype}")
        if self.threshold_dtype != x.dtype:
            raise self.error(f"nodes_splits are {self.threshold_dtype}, X is {x.dtype}: they must be the same type")
        if self.n_targets < 1:
            raise self.error(f"n_targets must be >= 1, got {self.n_targets}")
        self.check_targets("leaf target id")
        self.aggregate(), self.transform()
        return [TensorType(x.dtype, (rows, self.n_targets))]
