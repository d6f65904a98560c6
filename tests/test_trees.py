"""Tree ensembles (BDTs) and the small ai.onnx.ml operators around them, against onnxruntime.

Models come from scikit-learn (skl2onnx), XGBoost and LightGBM (onnxmltools), small so the file stays
fast; inputs hold NaN to exercise the missing-value routes.  Outputs must match within 1e-6 relative
and the predicted labels on every row.
"""

from __future__ import annotations

import functools
import warnings
from typing import Optional

import numpy as np
import onnx
import pytest
from conftest import ORT_IR_VERSION, ort_run
from onnx import helper

import sofie_rdf as sr
from benchmarks.trees import without_zipmap

RTOL, ATOL = 1e-6, 1e-6
N_FEATURES = 6
OPSETS = {"": 17, "ai.onnx.ml": 3}


def _data(seed: int = 0, rows: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, a binary and a 3-class target."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, N_FEATURES)).astype(np.float32)
    binary = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
    three = np.digitize(x[:, 0] - 0.5 * x[:, 3], [-0.5, 0.5]).astype(np.int64)
    return x, binary, three


def _test_rows(rows: int = 64) -> np.ndarray:
    """Rows with NaN in some features (the missing-value routes)."""
    x = np.random.default_rng(1).standard_normal((rows, N_FEATURES)).astype(np.float32)
    x[::5, 1] = np.nan
    x[::7, 0] = np.nan
    return x


def _compare(model: onnx.ModelProto, x: np.ndarray, backend: str = "native") -> None:
    """sofie-rdf's outputs against onnxruntime's: values within RTOL/ATOL, labels identical."""
    model.ir_version = min(model.ir_version, ORT_IR_VERSION)
    name = model.graph.input[0].name
    expected = ort_run(model, {name: x})
    got = sr.compile(sr.load(model), backend=backend).infer(x)
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(got, expected)):
        b = np.asarray(b) if not isinstance(b, list) else np.asarray([[d[c] for c in sorted(d)] for d in b])
        assert a.shape == b.shape, f"output {k}: shape {a.shape} != {b.shape}"
        if b.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"output {k}")


def _skl(estimator, x: np.ndarray, options: Optional[dict] = None) -> onnx.ModelProto:
    skl2onnx = pytest.importorskip("skl2onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skl2onnx.to_onnx(estimator, x[:1], target_opset=OPSETS, options=options)


@functools.cache
def _sklearn_models() -> dict:
    """Fitted scikit-learn estimators by test id, with their converter options."""
    pytest.importorskip("sklearn")
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    x, binary, three = _data()
    target = x[:, 0] * 2 + np.sin(x[:, 1])
    no_zipmap = {"zipmap": False}
    return {
        "gbc-binary": (GradientBoostingClassifier(n_estimators=20, max_depth=3).fit(x, binary), no_zipmap),
        "gbc-3-classes": (GradientBoostingClassifier(n_estimators=8, max_depth=3).fit(x, three), no_zipmap),
        "gbc-zipmap": (GradientBoostingClassifier(n_estimators=5, max_depth=2).fit(x, three), {}),
        "gbr": (GradientBoostingRegressor(n_estimators=20, max_depth=4).fit(x, target), {}),
        "random-forest-regressor": (RandomForestRegressor(n_estimators=10, max_depth=6).fit(x, target), {}),
        "decision-tree-classifier": (DecisionTreeClassifier(max_depth=5).fit(x, three), no_zipmap),
        "logistic-binary": (make_pipeline(StandardScaler(), LogisticRegression()).fit(x, binary), no_zipmap),
        "logistic-3-classes": (make_pipeline(StandardScaler(), Normalizer(), LogisticRegression()).fit(x, three),
                               no_zipmap),
        "linear-regression": (make_pipeline(Normalizer("max"), LinearRegression()).fit(x, target), {}),
    }


SKLEARN_IDS = ["gbc-binary", "gbc-3-classes", "gbc-zipmap", "gbr", "random-forest-regressor",
               "decision-tree-classifier", "logistic-binary", "logistic-3-classes", "linear-regression"]


@pytest.mark.parametrize("which", SKLEARN_IDS)
def test_sklearn(which: str) -> None:
    estimator, options = _sklearn_models()[which]
    x = _test_rows()
    if "logistic" in which or "linear" in which:
        x = np.nan_to_num(x)  # NaN has no meaning for a linear model
    opts = {id(estimator[-1] if hasattr(estimator, "steps") else estimator): options} if options else {}
    _compare(_skl(estimator, x, opts or None), x)


def _mltools(model, kind: str) -> onnx.ModelProto:
    onnxmltools = pytest.importorskip("onnxmltools")
    from onnxmltools.convert.common.data_types import FloatTensorType

    convert = onnxmltools.convert_xgboost if kind == "xgboost" else onnxmltools.convert_lightgbm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = convert(model, initial_types=[("x", FloatTensorType([None, N_FEATURES]))], target_opset=15)
    return without_zipmap(onx)


@pytest.mark.parametrize("task", ["binary", pytest.param("3-classes", marks=pytest.mark.slow), "regressor"])
def test_xgboost(task: str) -> None:
    xgboost = pytest.importorskip("xgboost")
    x, binary, three = _data(2)
    x[::6, 2] = np.nan  # trained with missing values: learnt default directions
    params = {"n_estimators": 12, "max_depth": 4, "learning_rate": 0.3, "base_score": 0.4}
    if task == "regressor":
        model = xgboost.XGBRegressor(**params).fit(x, x[:, 0] - x[:, 4])
    else:
        model = xgboost.XGBClassifier(**params).fit(x, binary if task == "binary" else three)
    _compare(_mltools(model, "xgboost"), _test_rows())


@pytest.mark.parametrize("task", ["binary", pytest.param("3-classes", marks=pytest.mark.slow), "regressor"])
def test_lightgbm(task: str) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    x, binary, three = _data(3)
    x[::6, 2] = np.nan
    params = {"n_estimators": 10, "num_leaves": 8, "min_child_samples": 5, "verbose": -1}
    if task == "regressor":
        model = lightgbm.LGBMRegressor(**params).fit(x, x[:, 0] - x[:, 4])
    else:
        model = lightgbm.LGBMClassifier(**params).fit(x, binary if task == "binary" else three)
    _compare(_mltools(model, "lightgbm"), _test_rows())


@pytest.mark.parametrize("rows", [1, 7, 203])
def test_batches(rows: int) -> None:
    """Rows walked alone, in a partly filled lane group, and over several blocks with a ragged end give each
    row the same results (forests of uneven depths, NaN routes, several classes)."""
    x = _test_rows(rows)
    for which in ("gbc-3-classes", "random-forest-regressor"):
        estimator, options = _sklearn_models()[which]
        _compare(_skl(estimator, x, {id(estimator): options} if options else None), x)


def test_jit() -> None:
    """The Cling JIT gives the same results (one classifier with NaN routes, one regressor)."""
    pytest.importorskip("ROOT")
    models = _sklearn_models()
    x = _test_rows(16)
    estimator, options = models["gbc-3-classes"]
    _compare(_skl(estimator, x, {id(estimator): options}), x, backend="jit")
    estimator, _ = models["random-forest-regressor"]
    _compare(_skl(estimator, x), x, backend="jit")


def _backend_cases() -> list:
    """onnx's node test cases of TreeEnsemble (ai.onnx.ml-5), built by importing their one module.

    Importing it registers the cases as a full ``collect_testcases()`` would (and is a no-op after one),
    without building every other case (~20 s).
    """
    import importlib

    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importlib.import_module("onnx.backend.test.case.node.ai_onnx_ml.tree_ensemble")
    return [c for c in node_cases._NodeTestCases if c.name.startswith("test_ai_onnx_ml_tree_ensemble")]


def test_onnx_backend_tree_ensemble() -> None:
    """TreeEnsemble-5's cases (one tree in double, BRANCH_MEMBER sets in float) give the expected outputs."""
    cases = _backend_cases()
    assert {c.name for c in cases} >= {"test_ai_onnx_ml_tree_ensemble_single_tree",
                                       "test_ai_onnx_ml_tree_ensemble_set_membership"}
    for case in cases:
        inputs, outputs = (list(map(np.asarray, v)) for v in case.data_sets[0])
        got = sr.compile(sr.load(case.model, name=case.name), backend="native").infer(*inputs)
        assert got.dtype == outputs[0].dtype, case.name
        np.testing.assert_allclose(got, outputs[0], rtol=1e-6, atol=1e-7, err_msg=case.name)


def _regressor(**changes) -> onnx.ModelProto:
    """One tree (x0 <= 0.5 ? 1 : x1 < 2 ? 2 : 3) with ``changes`` to its attributes."""
    attrs = {
        "n_targets": 1, "nodes_treeids": [0] * 5, "nodes_nodeids": [0, 1, 2, 3, 4],
        "nodes_featureids": [0, 0, 1, 0, 0], "nodes_values": [0.5, 0.0, 2.0, 0.0, 0.0],
        "nodes_modes": ["BRANCH_LEQ", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
        "nodes_truenodeids": [1, 0, 3, 0, 0], "nodes_falsenodeids": [2, 0, 4, 0, 0],
        "target_treeids": [0, 0, 0], "target_nodeids": [1, 3, 4], "target_ids": [0, 0, 0],
        "target_weights": [1.0, 2.0, 3.0],
    }
    attrs.update(changes)
    node = helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph([node], "tree", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                             ir_version=ORT_IR_VERSION)


def test_small_regressor_modes_and_nan() -> None:
    """A hand-made tree: NaN goes to the false child unless nodes_missing_value_tracks_true says otherwise."""
    x = np.array([[0.5, 0], [0.6, 1.9], [0.7, 2], [np.nan, 0], [np.nan, np.nan]], dtype=np.float32)
    _compare(_regressor(), x)
    _compare(_regressor(nodes_missing_value_tracks_true=[1, 0, 0, 0, 0], post_transform="PROBIT",
                        base_values=[-2.5]), x)
    _compare(_regressor(nodes_modes=["BRANCH_GT", "LEAF", "BRANCH_NEQ", "LEAF", "LEAF"]), x)


@pytest.mark.parametrize("changes, message", [
    ({"nodes_values": [0.5, 0.0]}, "nodes_values has 2 entries"),
    ({"nodes_truenodeids": [1, 0, 7, 0, 0]}, "true child 7 is not a node"),
    ({"nodes_falsenodeids": [2, 0, 0, 0, 0]}, "has a cycle"),
    ({"nodes_modes": ["BRANCH_LEQ", "LEAF", "BRANCH_XX", "LEAF", "LEAF"]}, "unsupported node mode(s) BRANCH_XX"),
    ({"target_ids": [0, 3, 0]}, "target id 3 is out of range"),
])
def test_invalid_attributes_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(sr.SofieError, match=f"TreeEnsembleRegressor.*{message}".replace("(", r"\(").replace(")", r"\)")):
        sr.load(_regressor(**changes))


def test_string_labels_are_refused() -> None:
    node = helper.make_node("TreeEnsembleClassifier", ["x"], ["label", "scores"], domain="ai.onnx.ml",
                            name="bdt", classlabels_strings=["a", "b"], nodes_treeids=[0], nodes_nodeids=[0],
                            nodes_featureids=[0], nodes_values=[0.0], nodes_modes=["LEAF"], nodes_truenodeids=[0],
                            nodes_falsenodeids=[0], class_treeids=[0], class_nodeids=[0], class_ids=[0],
                            class_weights=[1.0])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])],
                              [helper.make_tensor_value_info("label", onnx.TensorProto.STRING, ["N"]),
                               helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, ["N", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)])
    with pytest.raises(sr.SofieError, match="bdt.*string class labels"):
        sr.load(model)
