"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against onnxruntime (it implements both ops for
float32/float64 scores and int32/int64 labels in every opset used here).

Covers reduction x weight x ignore_index x rank, both label types and score types, opsets 12/13/22,
SoftmaxCrossEntropyLoss's log_prob output, a symbolic batch, folding, and labels out of range at run time."""

import numpy as np
import pytest
from conftest import make_model, sofie_run
from onnx import helper

from sofie_rdf.errors import SofieError

OPS = ("NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss")
SHAPES = ((3, 5), (2, 4, 3), (2, 3, 2, 2))


def _model(op, shape, dtype=np.float32, label_dtype=np.int64, weight=False, log_prob=False, opset=13, batch=None,
           **attrs):
    labels_shape = [shape[0], *shape[2:]]
    inputs = [("x", dtype, [batch or shape[0], *shape[1:]]), ("t", label_dtype, [batch or shape[0], *labels_shape[1:]])]
    if weight:
        inputs.append(("w", dtype, [shape[1]]))
    outputs = [("y", dtype, None)] + ([("logp", dtype, None)] if log_prob else [])
    node = helper.make_node(op, [i[0] for i in inputs], [o[0] for o in outputs], **attrs)
    return make_model([node], inputs, outputs, opset=opset)


def _feeds(shape, dtype=np.float32, label_dtype=np.int64, weight=False, ignore=None, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    if ignore is not None:
        labels.reshape(-1)[::3] = ignore
    feeds = {"x": rng.standard_normal(shape).astype(dtype), "t": labels.astype(label_dtype)}
    if weight:
        feeds["w"] = rng.uniform(0.5, 2.0, shape[1]).astype(dtype)
    return feeds


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("ignore", [None, 1])
def test_attributes(check_model, op, reduction, weight, ignore):
    shape = SHAPES[(weight + 2 * (ignore is not None)) % len(SHAPES)]
    attrs = {"reduction": reduction} | ({"ignore_index": ignore} if ignore is not None else {})
    check_model(_model(op, shape, weight=weight, **attrs), _feeds(shape, weight=weight, ignore=ignore))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", SHAPES)
def test_dtypes_and_ranks(check_model, op, dtype, label_dtype, shape):
    model = _model(op, shape, dtype, label_dtype, weight=True, reduction="mean", ignore_index=0)
    check_model(model, _feeds(shape, dtype, label_dtype, weight=True, ignore=0))


@pytest.mark.parametrize("op,opset", [(OPS[0], 12), (OPS[0], 22), (OPS[1], 12)])
def test_opsets(check_model, op, opset):
    check_model(_model(op, (3, 4), opset=opset, reduction="sum"), _feeds((3, 4)))


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_log_prob(check_model, reduction, dtype):
    shape = (2, 5, 3)
    model = _model(OPS[1], shape, dtype, weight=True, log_prob=True, reduction=reduction, ignore_index=-1)
    check_model(model, _feeds(shape, dtype, weight=True, ignore=-1))


@pytest.mark.parametrize("op", OPS)
def test_symbolic_batch(check_model, op):
    for n in (1, 4):
        shape = (n, 3, 2)
        check_model(_model(op, shape, batch="N", reduction="none"), _feeds(shape, seed=n))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_folded(check_folded, op, reduction):
    shape = (2, 4, 3)
    check_folded(_model(op, shape, weight=True, reduction=reduction, ignore_index=2),
                 _feeds(shape, weight=True, ignore=2))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("bad", [5, -1])
def test_label_out_of_range_at_run_time(op, bad):
    feeds = _feeds((3, 5), label_dtype=np.int32)
    feeds["t"][1] = bad
    with pytest.raises(SofieError, match=rf"loss label {bad} is outside \[0, 5\)"):
        sofie_run(_model(op, (3, 5), label_dtype=np.int32, ignore_index=7), feeds)


def test_bad_label_shape_at_generation_time():
    model = make_model([helper.make_node(OPS[0], ["x", "t"], ["y"])],
                       [("x", np.float32, [3, 5]), ("t", np.int64, [4])], [("y", np.float32, None)], opset=13)
    with pytest.raises(SofieError, match="labels shape"):
        sofie_run(model, {"x": np.zeros((3, 5), np.float32), "t": np.zeros(4, np.int64)})
