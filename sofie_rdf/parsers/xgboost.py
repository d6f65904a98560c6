"""XGBoost models saved as JSON or UBJSON (``booster.save_model("model.json")`` or ``"model.ubj"``, the latter
the default format from XGBoost 2.1 on), read with plain ``json`` or :mod:`._ubjson`: xgboost is not needed.
The two formats hold the same document (UBJSON's numbers are the float32 values themselves, JSON's their
shortest decimals, which read back to the same float32), so a model gives the same outputs from either file.

The model becomes the IR that ``onnxmltools.convert_xgboost`` makes of it, so the tree kernels of
:mod:`sofie_rdf.ops.trees` run it: one ai.onnx.ml ``TreeEnsembleRegressor`` or ``TreeEnsembleClassifier``
node reading ``input`` (float32, shape (N, num_feature), N symbolic; XGBoost compares in float32 too).
Every split ``x < split_condition`` goes to the left child, as ``BRANCH_LT`` goes to the true child, and a
missing value (NaN) goes left where ``default_left`` is set (``nodes_missing_value_tracks_true``).  Leaf
values are multiplied by DART's ``weight_drop``; ``base_score`` (a number before XGBoost 3, a list per
output since) is turned into margin space as XGBoost 3 does: the logit for ``reg:logistic`` and
``binary:logistic``, kept as it is for the others (``binary:logitraw``'s included: XGBoost 2.x writes its
fitted intercept as a margin, and every XGBoost since 1.3.1 reads it as one; files of 1.7.6 and 2.1.4 were
checked.  XGBoost 1.0 to 1.3.0 took the logit of logitraw's too, as later versions no longer do).

Outputs by objective, named as onnxmltools names them:

- ``reg:squarederror``, ``reg:pseudohubererror``, ``reg:absoluteerror``: ``variable`` (N, num_target),
  trees assigned to targets by ``tree_info``;
- ``reg:logistic``: ``variable`` (N, 1), the probability: a ``Sigmoid`` after the ensemble's margin, since
  a one-target regressor applies no LOGISTIC in onnxruntime (onnxmltools makes a classifier of it instead);
- ``binary:logitraw``: ``variable`` (N, 1), the margin (``booster.predict(..., output_margin=True)``);
- ``binary:logistic``: ``label`` (N, int64) and ``probabilities`` (N, 2), as ``XGBClassifier.predict`` and
  ``predict_proba``;
- ``multi:softprob``, ``multi:softmax``: ``label`` and ``probabilities`` (N, num_class), the trees assigned
  to classes by ``tree_info``; softmax leaves the scores as margins (``output_margin=True``).

Two-class scores follow onnxruntime's one-score binary classifier, so two ``multi:*`` classes are read as
one margin, class 1's minus class 0's (the same probabilities and labels; ``multi:softmax`` then scores
(-d, d)).  Every tree is used, as ``Booster.predict`` does: a ``best_iteration`` from early stopping is not
applied (slice the booster before saving to keep fewer trees).  Refused with :class:`ModelFormatError`:
categorical splits, multi-output trees, gblinear, other objectives and inconsistent trees (naming the file,
tree and node), as are files that are not valid JSON or UBJSON (naming the byte).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import ModelFormatError
from ..ir import Model, Node, TensorType, model_name_from
from ..ir.dims import symbol
from ..ops import make_node
from . import _ubjson

ML_DOMAIN, ML_OPSET, OPSET = "ai.onnx.ml", 3, 17
INPUT, BATCH = "input", "N"
FIRST_KEY = re.compile(rb'\s*\{\s*"learner"\s*:')
# What follows the opening '{' of a UBJSON object (a key's length, an optimized container's '$' or '#', or the
# '}' of an empty one); JSON has a quote or white space there.
UBJSON_OBJECT = (*_ubjson.INTEGERS, b"$", b"#", b"}")
# Objectives whose base_score is a probability, turned into a margin with the logit (binary:logitraw's is
# the margin itself, as LogisticRaw::ProbToMargin keeps it since XGBoost 1.3.1).
LOGIT_BASE = {"reg:logistic", "binary:logistic"}
REGRESSIONS = {"reg:squarederror", "reg:pseudohubererror", "reg:absoluteerror", "reg:logistic", "binary:logitraw"}
MULTI_CLASS = {"multi:softprob": "SOFTMAX", "multi:softmax": "NONE"}
OBJECTIVES = sorted(REGRESSIONS | set(MULTI_CLASS) | {"binary:logistic"})
# The negative float nearest 0: a second weight on one leaf of a binary classifier whose weights are all >= 0, it
# changes no sum but keeps onnxruntime's all-positive rule (scores (1 - s, s), label s > 0.5) from applying.
NUDGE = -float(np.nextafter(np.float32(0), np.float32(1)))


def is_xgboost_json(path: str | os.PathLike) -> bool:
    """Whether the JSON file at ``path`` starts as an XGBoost model does, without reading it all: XGBoost
    writes its keys sorted, so "learner" (then "version") comes first; a Keras architecture starts otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return FIRST_KEY.match(head) is not None


def from_xgboost(path: str | os.PathLike, name: Optional[str] = None) -> Model:
    """Parse the XGBoost JSON or UBJSON model at ``path`` into the IR (see the module's text for what it holds)."""
    label = os.fspath(path)
    doc, kind = _read(label)
    learner = _get(doc, "learner", dict, label)
    objective = _get(_get(learner, "objective", dict, label), "name", str, label)
    if objective not in OBJECTIVES:
        raise ModelFormatError(f"{label}: objective {objective!r} is not supported (supported: {', '.join(OBJECTIVES)})")
    params = _get(learner, "learner_model_param", dict, label)
    n_features = _count(params, "num_feature", label)
    n_outputs = _count(params, "num_class", label, 0) or _count(params, "num_target", label, 1)
    if objective == "binary:logistic" and n_outputs != 1:
        raise ModelFormatError(f"{label}: binary:logistic with {n_outputs} targets (multi-label) is not supported")
    trees, tree_info, weights = _booster(_get(learner, "gradient_booster", dict, label), label)
    columns = _columns(trees, tree_info, weights, n_features, n_outputs, label)
    base = _base_margin(params, objective, n_outputs, label)
    graph = Model(name=model_name_from(name or Path(label).stem), inputs=[INPUT], outputs=[], nodes=[],
                  initializers={}, opsets={"": OPSET, ML_DOMAIN: ML_OPSET},
                  source=f"XGBoost {'.'.join(map(str, doc.get('version', [])))} {kind}, objective {objective}",
                  doc=_features_doc(learner))
    graph.tensors[INPUT] = TensorType(np.float32, (symbol(BATCH), n_features))
    graph.nodes, graph.outputs = _nodes(objective, columns, base, n_outputs, graph.name)
    return graph


def _read(label: str) -> tuple[dict, str]:
    """The model's document and its format ("JSON" or "UBJSON")."""
    try:
        with open(label, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ModelFormatError(f"cannot read XGBoost model {label!r}: {exc.strerror or exc}") from None
    kind = "UBJSON" if _is_ubjson(data, label) else "JSON"
    try:
        doc = _ubjson.loads(data) if kind == "UBJSON" else json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, _ubjson.UBJSONDecodeError) as exc:
        raise ModelFormatError(f"{label} is not valid {kind}: {exc}") from None
    if not isinstance(doc, dict) or "learner" not in doc or "version" not in doc:
        raise ModelFormatError(f"{label} is not an XGBoost {kind} model (no top-level 'learner' and 'version')")
    return doc, kind


def _is_ubjson(data: bytes, label: str) -> bool:
    """A ``.ubj`` file is UBJSON, as XGBoost writes that suffix; another is told by how its object opens (from
    2.1 on, XGBoost writes UBJSON for suffixes other than ``.json`` too)."""
    return label.lower().endswith(".ubj") or (data[:1] == b"{" and data[1:2] in UBJSON_OBJECT)


def _get(obj: dict, key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise ModelFormatError(f"{where}: '{key}' is missing or not a {kind.__name__}")
    return value


def _count(params: dict, key: str, label: str, default: Optional[int] = None) -> int:
    """A count of ``learner_model_param`` (stored as a string); ``default`` when absent, else required."""
    raw = params.get(key)
    if raw is None and default is not None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ModelFormatError(f"{label}: learner_model_param {key} is {raw!r}, not a count") from None
    if value < 0 or (value == 0 and default is None):
        raise ModelFormatError(f"{label}: learner_model_param {key} is {value}")
    return value


def _booster(booster: dict, label: str) -> tuple[list[dict], list[int], np.ndarray]:
    """(trees, tree_info, per-tree weight) of a gbtree or dart booster: weights are DART's ``weight_drop``."""
    kind = booster.get("name")
    if kind == "dart":
        weights = np.asarray(booster.get("weight_drop", []), dtype=np.float32)
        booster = _get(booster, "gbtree", dict, label)
    elif kind != "gbtree":
        raise ModelFormatError(f"{label}: booster {kind!r} is not supported (only gbtree and dart; gblinear is a"
                               " linear model, not trees)")
    model = _get(booster, "model", dict, label)
    trees = _get(model, "trees", list, label)
    tree_info = _get(model, "tree_info", list, label)
    if kind != "dart":
        weights = np.ones(len(trees), dtype=np.float32)
    if not trees or len(tree_info) != len(trees) or weights.size != len(trees):
        raise ModelFormatError(f"{label}: {len(trees)} trees, tree_info has {len(tree_info)} entries"
                               f"{f', weight_drop {weights.size}' if kind == 'dart' else ''}")
    return trees, tree_info, weights


def _columns(trees: list[dict], tree_info: list[int], weights: np.ndarray, n_features: int, n_outputs: int,
             label: str) -> dict[str, list]:
    """The legacy ai.onnx.ml attributes of every tree: ``nodes_*`` and ``leaf_*`` (tree, node, output, weight)."""
    columns: dict[str, list] = {}
    for t, (tree, output, weight) in enumerate(zip(trees, tree_info, weights)):
        if not isinstance(output, int) or not 0 <= output < n_outputs:
            raise ModelFormatError(f"{label}: tree {t}: tree_info {output!r} is not an output in [0, {n_outputs})")
        nodes, values = _tree(tree, f"{label}: tree {t}", n_features)
        leaves = [i for i, mode in enumerate(nodes["nodes_modes"]) if mode == "LEAF"]
        part = {**nodes, "nodes_treeids": [t] * len(values), "leaf_treeids": [t] * len(leaves),
                "leaf_nodeids": leaves, "leaf_ids": [output] * len(leaves),
                "leaf_weights": (values[leaves] * weight).tolist()}
        for key, column in part.items():
            columns.setdefault(key, []).extend(column)
    return columns


def _tree(tree: Any, where: str, n_features: int) -> tuple[dict[str, list], np.ndarray]:
    """One tree's ``nodes_*`` columns (node i is XGBoost's node i, its root 0), checked, and its
    ``split_conditions`` (a leaf's is its value)."""
    if not isinstance(tree, dict):
        raise ModelFormatError(f"{where}: not a JSON object")
    size = str(tree.get("tree_param", {}).get("size_leaf_vector", "1"))
    if size not in ("0", "1"):
        raise ModelFormatError(f"{where}: multi-output trees (size_leaf_vector {size}) are not supported; train"
                               " with multi_strategy='one_output_per_tree'")
    left = _array(tree, "left_children", where)
    n = len(left)
    right, feature, default_left = (_array(tree, k, where, n) for k in ("right_children", "split_indices",
                                                                         "default_left"))
    try:
        values = np.asarray(_array(tree, "split_conditions", where, n), dtype=np.float32)
    except (TypeError, ValueError):
        raise ModelFormatError(f"{where}: split_conditions holds something other than numbers") from None
    split_type = tree.get("split_type") or [0] * n
    modes = [_node_mode(i, left[i], right[i], feature[i], split_type[i], n, n_features, where) for i in range(n)]
    leaf = [m == "LEAF" for m in modes]
    return {"nodes_nodeids": list(range(n)), "nodes_modes": modes,
            "nodes_featureids": [0 if lf else f for f, lf in zip(feature, leaf)],
            "nodes_values": [0.0 if lf else float(v) for v, lf in zip(values, leaf)],
            "nodes_truenodeids": [0 if lf else c for c, lf in zip(left, leaf)],
            "nodes_falsenodeids": [0 if lf else c for c, lf in zip(right, leaf)],
            "nodes_missing_value_tracks_true": [0 if lf else int(bool(d)) for d, lf in zip(default_left, leaf)]}, values


def _array(tree: dict, key: str, where: str, size: Optional[int] = None) -> list:
    values = tree.get(key)
    if not isinstance(values, list) or (size is not None and len(values) != size):
        got = f"{len(values)} entries" if isinstance(values, list) else "missing"
        raise ModelFormatError(f"{where}: {key} is {got}" + (f", left_children has {size}" if size is not None else ""))
    return values


def _node_mode(i: int, left: Any, right: Any, feature: Any, split_type: Any, n: int, n_features: int,
               where: str) -> str:
    """LEAF or BRANCH_LT for node ``i``, after checking its children, feature and split type."""
    at = f"{where}, node {i}"
    if left == -1 or right == -1:
        if left != right:
            raise ModelFormatError(f"{at}: one child is -1 (a leaf) and the other {max(left, right)}")
        return "LEAF"
    for which, child in (("left", left), ("right", right)):
        if not isinstance(child, int) or not 0 < child < n or child == i:
            raise ModelFormatError(f"{at}: {which} child {child!r} is not a node of the tree (0 to {n - 1})")
    if split_type:
        raise ModelFormatError(f"{at}: categorical splits are not supported (split_type {split_type})")
    if not isinstance(feature, int) or not 0 <= feature < n_features:
        raise ModelFormatError(f"{at}: split feature {feature!r} is not in [0, {n_features})")
    return "BRANCH_LT"


def _base_margin(params: dict, objective: str, n_outputs: int, label: str) -> np.ndarray:
    """``base_score`` per output in margin space (float32, as XGBoost computes it)."""
    raw = str(params.get("base_score", "0.5")).strip()
    try:
        values = np.asarray([float(v) for v in raw.strip("[]").split(",")], dtype=np.float32)
    except ValueError:
        raise ModelFormatError(f"{label}: base_score {raw!r} is not a number or a list of numbers") from None
    if values.size not in (1, n_outputs):
        raise ModelFormatError(f"{label}: base_score has {values.size} entries for {n_outputs} outputs")
    values = np.broadcast_to(values, (n_outputs,)).copy()
    if objective in LOGIT_BASE:
        if np.any((values <= 0) | (values >= 1)):
            raise ModelFormatError(f"{label}: base_score {raw} is not a probability in (0, 1) ({objective})")
        values = -np.log(np.float32(1) / values - np.float32(1))
    return values


def _nodes(objective: str, columns: dict[str, list], base: np.ndarray, n_outputs: int,
           model: str) -> tuple[list[Node], list[str]]:
    """The IR nodes of ``objective`` and the model's outputs."""
    leaves = {k: columns.pop(k) for k in ("leaf_treeids", "leaf_nodeids", "leaf_ids", "leaf_weights")}
    if objective in REGRESSIONS:
        margin = "margin" if objective == "reg:logistic" else "variable"
        attrs = {**columns, **_leaf_attrs("target", leaves), "n_targets": n_outputs, "base_values": base.tolist(),
                 "post_transform": "NONE"}
        nodes = [make_node("TreeEnsembleRegressor", [INPUT], [margin], attrs, "TreeEnsembleRegressor", ML_DOMAIN,
                           ML_OPSET, model=model)]
        if margin != "variable":
            nodes.append(make_node("Sigmoid", [margin], ["variable"], {}, "Sigmoid", "", OPSET, model=model))
        return nodes, ["variable"]
    transform = MULTI_CLASS.get(objective, "LOGISTIC")
    if objective == "binary:logistic" or n_outputs == 2:
        leaves, base = _one_margin(leaves, base)
        transform = "LOGISTIC" if transform == "SOFTMAX" else transform
    attrs = {**columns, **_leaf_attrs("class", leaves), "classlabels_int64s": list(range(max(n_outputs, 2))),
             "base_values": base.tolist(), "post_transform": transform}
    node = make_node("TreeEnsembleClassifier", [INPUT], ["label", "probabilities"], attrs, "TreeEnsembleClassifier",
                     ML_DOMAIN, ML_OPSET, model=model)
    return [node], ["label", "probabilities"]


def _leaf_attrs(prefix: str, leaves: dict[str, list]) -> dict[str, list]:
    return {f"{prefix}_{key[5:]}": values for key, values in leaves.items()}


def _one_margin(leaves: dict[str, list], base: np.ndarray) -> tuple[dict[str, list], np.ndarray]:
    """Two classes as onnxruntime's one-score binary classifier: every weight on class 0's column, that of a
    class-0 tree negated, and the base class 1's minus class 0's (one output: itself)."""
    sign = np.where(np.asarray(leaves["leaf_ids"]) == 0, np.float32(-1), np.float32(1)) if base.size == 2 else 1
    one = {**leaves, "leaf_ids": [0] * len(leaves["leaf_ids"]),
           "leaf_weights": (np.asarray(leaves["leaf_weights"], dtype=np.float32) * sign).tolist()}
    if min(one["leaf_weights"]) >= 0:  # a second weight on the first leaf
        one = {key: column + [column[0] if key != "leaf_weights" else NUDGE] for key, column in one.items()}
    margin = base[1] - base[0] if base.size == 2 else base
    return one, np.atleast_1d(margin)


def _features_doc(learner: dict) -> str:
    """The feature names (and types) XGBoost kept, for the model's documentation only."""
    names = learner.get("feature_names") or []
    return f"XGBoost features: {', '.join(map(str, names))}" if names else ""
