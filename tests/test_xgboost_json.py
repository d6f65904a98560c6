"""XGBoost models read from their JSON and UBJSON files (``sr.load("model.json")``, ``"model.ubj"``), against
XGBoost's own predictions.

Models are trained here, small (20-30 trees, depth 3-4), on data with NaN so that the learnt default
directions are used, and saved with ``booster.save_model``.  Values must match within 1e-5 relative (XGBoost
and the generated code both sum in float32, in different orders) and labels on every row.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import sofie_rdf as sr

xgboost = pytest.importorskip("xgboost")

RTOL, ATOL = 1e-5, 1e-6
N_FEATURES = 5
PARAMS = {"max_depth": 3, "eta": 0.3, "seed": 0}


def _data() -> tuple[np.ndarray, np.ndarray]:
    """Features with NaN in two of them, and a continuous target the classes are cut from."""
    x = np.random.default_rng(0).standard_normal((300, N_FEATURES)).astype(np.float32)
    target = x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3]
    x[::4, 1] = np.nan
    x[::7, 3] = np.nan
    return x, target


def _test_rows(rows: int = 64) -> np.ndarray:
    x = np.random.default_rng(1).standard_normal((rows, N_FEATURES)).astype(np.float32)
    x[::3, 1] = np.nan
    x[::5, 3] = np.nan
    x[7] = np.nan
    return x


def _train(tmp_path: Path, params: dict, label: np.ndarray, rounds: int = 20) -> tuple[Any, Path]:
    """A booster trained on ``_data``'s features and ``label``, and the JSON file it was saved to."""
    x, _ = _data()
    booster = xgboost.train({**PARAMS, **params}, xgboost.DMatrix(x, label=label), rounds)
    path = tmp_path / "model.json"
    booster.save_model(path)
    return booster, path


def _infer(path: Path, x: np.ndarray, backend: str = "native") -> list[np.ndarray]:
    got = sr.compile(sr.load(path), backend=backend).infer(x)
    return list(got) if isinstance(got, tuple) else [got]


def _classes(target: np.ndarray, n: int) -> np.ndarray:
    return np.digitize(target, np.quantile(target, np.linspace(0, 1, n + 1)[1:-1])).astype(np.float32)


@pytest.mark.parametrize("objective", ["reg:squarederror", pytest.param("reg:pseudohubererror", marks=pytest.mark.slow),
                                       pytest.param("reg:absoluteerror", marks=pytest.mark.slow)])
def test_regressor(tmp_path: Path, objective: str) -> None:
    _, target = _data()
    booster, path = _train(tmp_path, {"objective": objective, "max_depth": 4}, target, rounds=30)
    x = _test_rows()
    (got,) = _infer(path, x)
    assert got.shape == (len(x), 1)
    np.testing.assert_allclose(got[:, 0], booster.predict(xgboost.DMatrix(x)), rtol=RTOL, atol=ATOL)


def test_multi_target_regressor(tmp_path: Path) -> None:
    """num_target 2 (one output per tree): each tree adds to the target tree_info names."""
    x, target = _data()
    booster, path = _train(tmp_path, {}, np.c_[target, x[:, 0] - x[:, 4]])
    x = _test_rows()
    (got,) = _infer(path, x)
    np.testing.assert_allclose(got, booster.predict(xgboost.DMatrix(x)), rtol=RTOL, atol=ATOL)


def test_binary_classifier(tmp_path: Path) -> None:
    """predict_proba's two columns and predict's labels of an XGBClassifier, base_score given (logit margin)."""
    x, target = _data()
    model = xgboost.XGBClassifier(n_estimators=25, max_depth=3, base_score=0.3).fit(x, target > 0)
    path = tmp_path / "binary.json"
    model.get_booster().save_model(path)
    x = _test_rows()
    labels, probabilities = _infer(path, x)
    np.testing.assert_allclose(probabilities, model.predict_proba(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(labels, model.predict(x))


@pytest.mark.parametrize("objective, classes", [("multi:softprob", 3), pytest.param("multi:softprob", 2, marks=pytest.mark.slow),
                                               pytest.param("multi:softmax", 3, marks=pytest.mark.slow)])
def test_multi_class(tmp_path: Path, objective: str, classes: int) -> None:
    """Trees round-robin over the classes; softmax gives margins, softprob probabilities (two classes: one margin)."""
    _, target = _data()
    booster, path = _train(tmp_path, {"objective": objective, "num_class": classes}, _classes(target, classes))
    x = _test_rows()
    labels, scores = _infer(path, x)
    margins = booster.predict(xgboost.DMatrix(x), output_margin=True)
    expected = margins if objective == "multi:softmax" else booster.predict(xgboost.DMatrix(x))
    np.testing.assert_allclose(scores, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(labels, np.argmax(margins, axis=1))


@pytest.mark.parametrize("objective, margin", [("reg:logistic", False), ("binary:logitraw", True)])
def test_logistic_regression_and_logitraw(tmp_path: Path, objective: str, margin: bool) -> None:
    """reg:logistic gives the probability, binary:logitraw the margin, both as one column."""
    _, target = _data()
    booster, path = _train(tmp_path, {"objective": objective, "base_score": 0.6}, (target > 0.3).astype(np.float32))
    x = _test_rows()
    (got,) = _infer(path, x)
    np.testing.assert_allclose(got[:, 0], booster.predict(xgboost.DMatrix(x), output_margin=margin),
                               rtol=RTOL, atol=ATOL)


def test_dart(tmp_path: Path) -> None:
    """A DART booster's trees are scaled by their weight_drop."""
    _, target = _data()
    booster, path = _train(tmp_path, {"booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0}, target)
    weights = json.loads(path.read_text())["learner"]["gradient_booster"]["weight_drop"]
    assert len(set(weights)) > 1, "the test needs trees of different weights"
    x = _test_rows()
    (got,) = _infer(path, x)
    np.testing.assert_allclose(got[:, 0], booster.predict(xgboost.DMatrix(x)), rtol=RTOL, atol=ATOL)


def _edited(tmp_path: Path, path: Path, change: Callable[[dict], None]) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    edited = tmp_path / f"edited_{path.name}"
    edited.write_text(json.dumps(doc))
    return edited


def _trees(doc: dict) -> list[dict]:
    return doc["learner"]["gradient_booster"]["model"]["trees"]


def _logit(p: float) -> np.float32:
    return -np.log(np.float32(1) / np.float32(p) - np.float32(1))


@pytest.mark.parametrize("version, objective, base_score, margin", [
    ([2, 1, 4], "binary:logitraw", "-4.2E-1", np.float32(-0.42)),   # 2.x's fitted intercept, written as a margin
    ([1, 7, 6], "binary:logitraw", "5E-1", np.float32(0.5)),        # 1.x's default, used as a margin as well
    pytest.param([2, 1, 4], "binary:logistic", "3.9651674E-1", _logit(0.39651674),  # a probability in every version
                 marks=pytest.mark.slow),
])
def test_base_score_of_files_before_3(tmp_path: Path, version: list, objective: str, base_score: str,
                                      margin: np.float32) -> None:
    """A file of XGBoost 1.x or 2.x: base_score one number (3.x writes a list), made here by editing a 3.2
    file as XGBoost 1.7.6 and 2.1.4 wrote theirs when run to write this test (their own files, read by this
    front end, gave their margins within 3e-7).  The logistic objectives' base_score is a probability, turned
    into its logit; binary:logitraw's is a margin (2.1.4 wrote its fitted intercept as the margin -0.42 where
    binary:logistic wrote the probability 0.3965), used as it is, as every XGBoost since 1.3.1 uses it
    (LogisticRaw::ProbToMargin is the identity since dmlc/xgboost#6517, backported to 1.3 as #6524; 1.0 to
    1.3.0 took its logit, so their logitraw files give other margins in every later XGBoost, and here)."""
    _, target = _data()
    booster, path = _train(tmp_path, {"objective": objective, "base_score": 0.6}, (target > 0.3).astype(np.float32),
                           rounds=5)
    x = _test_rows()
    raw = objective == "binary:logitraw"
    trees = booster.predict(xgboost.DMatrix(x), output_margin=True) - (np.float32(0.6) if raw else _logit(0.6))

    def written_before_3(doc: dict) -> None:
        doc["version"] = version
        doc["learner"]["learner_model_param"]["base_score"] = base_score

    edited = _edited(tmp_path, path, written_before_3)
    expected = trees + margin if raw else 1 / (1 + np.exp(-(trees + margin)))
    got = _infer(edited, x)[-1][:, -1]
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    # and XGBoost 3.2 reads such a file the same way
    np.testing.assert_allclose(got, xgboost.Booster(model_file=edited).predict(xgboost.DMatrix(x)), rtol=RTOL, atol=ATOL)


def test_binary_with_only_positive_leaves(tmp_path: Path) -> None:
    """Leaves all >= 0 still give logistic probabilities (not onnxruntime's all-positive (1 - s, s) rule)."""
    _, target = _data()
    _, path = _train(tmp_path, {"objective": "binary:logistic"}, (target > 0).astype(np.float32), rounds=3)

    def positive(doc: dict) -> None:
        for tree in _trees(doc):
            tree["split_conditions"] = [abs(v) if left == -1 else v
                                        for v, left in zip(tree["split_conditions"], tree["left_children"])]
        doc["learner"]["learner_model_param"]["base_score"] = "[1E-1]"

    edited = _edited(tmp_path, path, positive)
    booster = xgboost.Booster(model_file=edited)
    x = _test_rows()
    labels, probabilities = _infer(edited, x)
    expected = booster.predict(xgboost.DMatrix(x))
    np.testing.assert_allclose(probabilities[:, 1], expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(labels, expected > 0.5)


def test_same_as_onnxmltools(tmp_path: Path) -> None:
    """The IR is what onnxmltools makes of the model: same outputs as its conversion run by onnxruntime."""
    onnxmltools = pytest.importorskip("onnxmltools")
    pytest.importorskip("onnxruntime")
    from conftest import ORT_IR_VERSION, ort_run
    from onnxmltools.convert.common.data_types import FloatTensorType

    x, target = _data()
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(x, _classes(target, 3))
    path = tmp_path / "three.json"
    model.get_booster().save_model(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = onnxmltools.convert_xgboost(model, initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
                                          target_opset=15)
    onx.ir_version = min(onx.ir_version, ORT_IR_VERSION)
    ours = sr.load(path)
    assert [(i.name, i.shape) for i in ours.outputs] == [(o.name, (ours.inputs[0].shape[0], *(
        d.dim_value for d in o.type.tensor_type.shape.dim[1:]))) for o in onx.graph.output]
    x = _test_rows()
    labels, probabilities = sr.compile(ours, backend="native").infer(x)
    expected_labels, expected = ort_run(onx, {"input": x})
    np.testing.assert_allclose(probabilities, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(labels, expected_labels)


def test_jit(tmp_path: Path) -> None:
    pytest.importorskip("ROOT")
    _, target = _data()
    booster, path = _train(tmp_path, {"objective": "multi:softprob", "num_class": 3}, _classes(target, 3))
    x = _test_rows(16)
    labels, probabilities = _infer(path, x, backend="jit")
    np.testing.assert_allclose(probabilities, booster.predict(xgboost.DMatrix(x)), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(labels, np.argmax(probabilities, axis=1))


def test_from_xgboost_and_names(tmp_path: Path) -> None:
    """The explicit entry, a name of one's own, feature names in the documentation."""
    x, target = _data()
    booster = xgboost.train(PARAMS, xgboost.DMatrix(x, label=target, feature_names=list("abcde")), 2)
    path = tmp_path / "named.json"
    booster.save_model(path)
    model = sr.from_xgboost(path, name="bdt")
    assert model.name == "bdt"
    assert [i.name for i in model.inputs] == ["input"]
    assert model.inputs[0].shape[1] == N_FEATURES
    assert model.ir.doc == "XGBoost features: a, b, c, d, e"


def _break_child(doc: dict) -> None:
    _trees(doc)[1]["left_children"][0] = 99


def _break_lengths(doc: dict) -> None:
    _trees(doc)[2]["default_left"].pop()


def _categorical(doc: dict) -> None:
    _trees(doc)[0]["split_type"][0] = 1


def _objective(doc: dict) -> None:
    doc["learner"]["objective"]["name"] = "count:poisson"


def _linear(doc: dict) -> None:
    doc["learner"]["gradient_booster"]["name"] = "gblinear"


@pytest.mark.parametrize("change, message", [
    (_break_child, "tree 1, node 0: left child 99 is not a node"),
    (_break_lengths, "tree 2: default_left is .* entries, left_children has"),
    (_categorical, "tree 0, node 0: categorical splits are not supported"),
    (_objective, "objective 'count:poisson' is not supported"),
    (_linear, "booster 'gblinear' is not supported"),
])
def test_malformed_models_are_refused(tmp_path: Path, change: Callable[[dict], None], message: str) -> None:
    _, target = _data()
    _, path = _train(tmp_path, {}, target, rounds=3)
    edited = _edited(tmp_path, path, change)
    with pytest.raises(sr.ModelFormatError, match=f"{edited.name}.*{message}"):
        sr.load(edited)


# ---------------------------------------------------------------- UBJSON (.ubj): XGBoost >= 2.1's default format

UBJSON_LABELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "reg:squarederror": lambda target: target,
    "binary:logistic": lambda target: (target > 0).astype(np.float32),
    "multi:softprob": lambda target: _classes(target, 3),
}


def _both_files(tmp_path: Path, objective: str) -> tuple[Any, Path, Path]:
    """A booster of ``objective`` saved as model.json and model.ubj."""
    _, target = _data()
    params = {"objective": objective, **({"num_class": 3} if objective.startswith("multi:") else {})}
    booster, json_path = _train(tmp_path, params, UBJSON_LABELS[objective](target))
    booster.save_model(json_path.with_suffix(".ubj"))
    return booster, json_path, json_path.with_suffix(".ubj")


def _graph(model: sr.Model) -> tuple:
    """What the generated code is made of: inputs, outputs and every node with its attributes."""
    return (model.inputs, model.outputs,
            [(n.op_type, n.inputs, n.outputs, n.attrs) for n in model.ir.nodes])


@pytest.mark.parametrize("objective", [pytest.param("reg:squarederror", marks=pytest.mark.slow), "binary:logistic",
                                       "multi:softprob"])
def test_ubjson_file(tmp_path: Path, objective: str) -> None:
    """The .ubj file gives the JSON file's model: the same nodes, their attributes (thresholds, leaf values,
    base values) equal to the last bit, so the same C++ but for the banner naming the format (compiled once
    here); its outputs are XGBoost's predictions."""
    booster, json_path, ubj_path = _both_files(tmp_path, objective)
    assert ubj_path.read_bytes()[:2] == b"{L"  # UBJSON: an object whose first key has an int64 length
    from_ubj, from_json = sr.from_xgboost(ubj_path), sr.load(json_path)
    assert from_ubj.ir.source.endswith(f"UBJSON, objective {objective}")
    assert _graph(from_ubj) == _graph(from_json)
    x = _test_rows()
    got = _infer(ubj_path, x)
    expected = booster.predict(xgboost.DMatrix(x)).reshape(len(x), -1)
    # the last output holds the values (a binary classifier's: both classes, XGBoost gives class 1's)
    np.testing.assert_allclose(got[-1][:, -expected.shape[1]:], expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:len(data) // 2], r"model\.ubj is not valid UBJSON: truncated"),
    (lambda data: bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)),
     r"model\.ubj is not valid UBJSON: unknown or unsupported marker"),
    (lambda data: b"{Si\x01aT}", r"model\.ubj is not valid UBJSON: a length must be an integer, got marker b'S'"),
    (lambda data: b"{i\x07learnerT}", r"model\.ubj is not an XGBoost UBJSON model \(no top-level 'learner' and"),
])
def test_damaged_ubjson_is_refused(tmp_path: Path, damage: Callable[[bytes], bytes], message: str) -> None:
    _, target = _data()
    booster, _ = _train(tmp_path, {}, target, rounds=2)
    path = tmp_path / "model.ubj"
    booster.save_model(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(sr.ModelFormatError, match=message):
        sr.load(path)
