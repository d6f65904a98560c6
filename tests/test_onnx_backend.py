"""ONNX backend node conformance: onnx's own node test cases, run through sofie-rdf.

``onnx.backend.test.case.node.collect_testcases()`` builds every node test
case of the installed onnx in memory (a one-node model plus input and
expected output arrays).  This module keeps the cases whose nodes all belong
to the operators of this milestone, runs each through ``sr.load`` ->
``sr.compile`` -> ``infer`` and compares with the expected outputs the way
onnx's backend runner does (dtype, shape, then ``assert_allclose``).

Cases run as onnx ships them: inputs that fix a shape or parameter (Reshape's
shape, Slice's starts, reduction axes, ...) stay graph inputs, read while the
code runs (``make conformance`` also reports the cases with those inputs
frozen into initializers, :func:`freeze_value_inputs`).  One adaptation to
what sofie-rdf is:

* Element types sofie-rdf has no C++ type for (float8, int4, complex,
  string, ...) are skipped with the reason from
  :data:`UNSUPPORTED_ELEM_TYPES`.

Every selected case runs under ``-m slow`` (``make test-full``); a
deterministic subset (:data:`QUICK_PER_OP` cases per operator) runs in the
normal suite.  ``python tests/test_onnx_backend.py [-v] [--ops=A,B] [--frozen]``
prints pass/fail/skip counts per operator over the full set (or those
operators), with ``-v`` the failures too, with ``--frozen`` every
generation-time input frozen.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import sys
import warnings
from collections import Counter, defaultdict
from typing import Any, Collection, NamedTuple, Optional, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

import sofie_rdf as sr
from sofie_rdf.ir.dtypes import HALF_TYPES, MINIFLOAT_TYPES
from sofie_rdf.ops import lookup

# The operators of this milestone: a case is ours when all its nodes are among them.
MILESTONE_OPS = frozenset({
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Selu", "Elu", "Identity", "Dropout", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
    "Concat", "Slice", "Constant", "Cast", "Shape", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Clip",
    "Conv", "ConvTranspose",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "Pad", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth", "LRN",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
    "RNN", "GRU", "LSTM",
    "CausalConvWithState", "TensorScatter", "RoiAlign", "DeformConv", "MelWeightMatrix", "TfIdfVectorizer",
    "Compress", "Unique", "NonMaxSuppression", "BitCast", "CenterCropPad", "Momentum", "Adagrad", "Adam", "Binarizer",
    "ArrayFeatureExtractor",
    "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss", "GridSample", "AffineGrid", "Col2Im", "MaxUnpool",
    "HannWindow", "HammingWindow", "BlackmanWindow", "DFT", "STFT",
    "CastLike", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "Shrink", "Swish", "Hardmax",
    "LpNormalization", "MeanVarianceNormalization", "CumProd", "Det", "ReverseSequence",
    "Attention", "LinearAttention", "RMSNormalization", "RotaryEmbedding", "SwiGLU",
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ArgMax", "ArgMin", "CumSum",
    "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf", "Where",
    "Erf", "Gelu", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Mish", "ThresholdedRelu", "PRelu", "Celu", "Sign",
    "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Floor", "Ceil", "Round",
    "Min", "Max", "Mean", "Mod",
    "TopK", "Size", "Range", "Einsum", "NonZero",
    "Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND", "Scatter", "OneHot", "Trilu", "EyeLike",
    "Split", "Expand", "Tile",
    "If", "Loop", "Scan",
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QLinearMatMul",
    "QLinearConv",
})

# Operator domains of the milestone's nodes (ai.onnx.ml and the training preview hold milestone operators too).
OUR_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training")

# Element types sofie-rdf does not support, and why (a case touching one is skipped).
_NO_CPP_TYPE = "has no C++17 standard type in the generated code"
UNSUPPORTED_ELEM_TYPES: dict[int, str] = {
    TensorProto.STRING: "string tensors are not numeric: out of scope for generated inference code",
    TensorProto.COMPLEX64: f"complex64 {_NO_CPP_TYPE} supported by the kernels",
    TensorProto.COMPLEX128: f"complex128 {_NO_CPP_TYPE} supported by the kernels",
    **{getattr(TensorProto, n): f"{n.lower()} {_NO_CPP_TYPE}" for n in (
        "FLOAT8E8M0", "FLOAT6E2M3", "FLOAT6E3M2") if hasattr(TensorProto, n)},
}

# Cases that fail for a reason out of this milestone's scope: {case name: reason}, xfail(strict=True).
_RANDOM_DROPOUT = ("training-mode Dropout with ratio > 0 draws a random mask (numpy's generator in the reference);"
                   " sofie-rdf generates inference code and refuses it")
_ALIGN_CORNERS_SCALES = ("the expected data uses the fractional scale * length as length_resized in align_corners;"
                         " the spec's text and onnxruntime use the integer output length, as sofie-rdf does")
_HALF_ROUNDING = ("the reference computes in float16/bfloat16, rounding every intermediate (scores, softmax,"
                  " products); sofie-rdf computes in float and rounds once per stored value, as onnxruntime does:"
                  " results differ by 1-3 ulps (bfloat16's ulp is 2^-7 relative), above the case's rtol of 1e-3")
KNOWN_FAILURES: dict[str, str] = {
    **dict.fromkeys(("test_dft_inverse", "test_dft_inverse_opset19"),
                    "the expected imaginary parts of a real result are float32 FFT round-off (1.9e-7) above the"
                    " case's atol of 1e-7; sofie-rdf accumulates in double and gives ~1e-15"),
    "test_maxunpool_export_with_output_shape": ("the expected data scatters the indices into the shape inferred"
                                                " without output_shape, then pads; the spec (indices of MaxPool's"
                                                " input, flat) and onnxruntime address output_shape, as sofie-rdf does"),
    "test_resize_downsample_scales_cubic_align_corners": _ALIGN_CORNERS_SCALES,
    "test_resize_downsample_scales_linear_align_corners": _ALIGN_CORNERS_SCALES,
    "test_training_dropout": _RANDOM_DROPOUT,
    "test_training_dropout_default": _RANDOM_DROPOUT,
    "test_training_dropout_default_mask": _RANDOM_DROPOUT,
    "test_training_dropout_mask": _RANDOM_DROPOUT,
    **dict.fromkeys(("test_batchnorm_epsilon_training_mode", "test_batchnorm_example_training_mode"),
                    "training-mode BatchNormalization normalises with batch statistics and updates running ones;"
                    " sofie-rdf generates inference code and refuses it"),
    **dict.fromkeys((
        "test_attention_3d_causal_bf16", "test_attention_4d_attn_mask_causal_bf16",
        "test_attention_4d_attn_mask_causal_bf16_expanded", "test_attention_4d_causal_bf16",
        "test_attention_4d_causal_fp16", "test_attention_4d_causal_padded_kv_bf16",
        "test_attention_4d_causal_padded_kv_bf16_expanded", "test_attention_4d_fp16",
        "test_attention_4d_gqa_with_past_and_present_fp16",
        "test_attention_4d_gqa_with_past_and_present_fp16_expanded", "test_attention_4d_padded_kv_bf16",
        "test_attention_4d_padded_kv_bf16_expanded",
    ), _HALF_ROUNDING),
    "test_loop11": ("the body's scan output is a Slice starting at the iteration number, whose length is only known"
                    " while the body runs; sofie-rdf sizes a Loop's scan outputs before it runs (from M)"),
    "test_scan_sum": ("Scan of opset 8 (batch axis, sequence_lens) is refused with a message to convert the model"
                      " to opset 9 or later"),
    "test_linear_attention_fp16": (f"{_HALF_ROUNDING}; outputs that cancel to near 0 (|y| ~ 1e-3) differ by"
                                   " up to 0.43 relative, 1e-3 absolute, one ulp of the terms"),
}

# Cases per operator in the normal (not slow) suite, chosen deterministically (evenly spaced by name).
QUICK_PER_OP = 2

# onnx's backend runner tolerances, with the relative one floored at 1e-4.
DEFAULT_RTOL, DEFAULT_ATOL, MIN_RTOL = 1e-3, 1e-7, 1e-4


class Case(NamedTuple):
    """One selected onnx node test case."""

    name: str
    op: str                 # the operator it tests (for expanded functions, the function's name)
    model: onnx.ModelProto
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    rtol: float
    atol: float
    skip: Optional[str]     # reason to skip (unsupported element type), else None


# ---- collection --------------------------------------------------------------

def _all_testcases() -> list:
    """Every node test case of the installed onnx (builds them all: ~10 s).

    onnx builds the list once per process; an earlier ``collect_testcases(op_type)``
    elsewhere would leave it filtered, so this must be the first caller.
    """
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return list(collect_testcases())


def _as_array(value: Any) -> Any:
    return numpy_helper.to_array(value) if isinstance(value, TensorProto) else value


def _elem_types(model: onnx.ModelProto) -> set[int]:
    """Element types anywhere in the model: values, Cast targets, constants."""
    g = model.graph
    types = {v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]
             if v.type.HasField("tensor_type")}
    types |= {t.data_type for t in g.initializer}
    for node in g.node:
        for a in node.attribute:
            if node.op_type == "Cast" and a.name == "to":
                types.add(a.i)
            if a.type == onnx.AttributeProto.TENSOR:
                types.add(a.t.data_type)
    return types


def _skip_reason(model: onnx.ModelProto) -> Optional[str]:
    """Why sofie-rdf cannot run the model at all (non-tensor values, element types it lacks), else None."""
    g = model.graph
    if any(not v.type.HasField("tensor_type") for v in [*g.input, *g.output]):
        return "sequence and optional values are not tensors: out of scope for generated inference code"
    for t in sorted(_elem_types(model)):
        if t in UNSUPPORTED_ELEM_TYPES:
            return UNSUPPORTED_ELEM_TYPES[t]
    return None


def _tested_op(name: str, node_types: Sequence[str]) -> str:
    """The operator a case is named after (``test_castlike_..._expanded`` -> CastLike), else its first node's.

    Names spell an operator in lower case, in snake case (``gather_elements``) or
    snake case without "or" (``greater_equal`` for GreaterOrEqual).
    """
    rest = name.removeprefix("test_")
    best = ""
    for op in _onnx_op_names():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()
        for low in {op.lower(), snake, snake.replace("_or_", "_")}:
            if rest.startswith(low) and (len(rest) == len(low) or rest[len(low)] == "_") and len(op) > len(best):
                best = op
    return best or node_types[0]


@functools.cache
def _onnx_op_names() -> list[str]:
    return sorted({s.name for s in onnx.defs.get_all_schemas() if s.domain in ("", "ai.onnx")})


def select(cases: Sequence) -> list[Case]:
    """The cases whose every node is a milestone operator, sorted by name."""
    out = []
    for tc in cases:
        if tc.model is None or not tc.data_sets:
            continue
        ops = [n.op_type for n in tc.model.graph.node]
        if not ops or not set(ops) <= MILESTONE_OPS or any(n.domain not in OUR_DOMAINS for n in tc.model.graph.node):
            continue
        inputs, outputs = tc.data_sets[0]
        rtol = max(getattr(tc, "rtol", None) or DEFAULT_RTOL, MIN_RTOL)
        atol = getattr(tc, "atol", None) or DEFAULT_ATOL
        out.append(Case(tc.name, _tested_op(tc.name, ops), tc.model, [_as_array(v) for v in inputs],
                        [_as_array(v) for v in outputs], rtol, atol, _skip_reason(tc.model)))
    return sorted(out, key=lambda c: c.name)


def quick_subset(cases: Sequence[Case], per_op: int = QUICK_PER_OP) -> list[Case]:
    """``per_op`` cases of each operator, evenly spaced through its sorted cases (skipped ones excluded)."""
    by_op: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        if c.skip is None:
            by_op[c.op].append(c)
    chosen = []
    for op in sorted(by_op):
        group = by_op[op]
        k = min(per_op, len(group))
        idx = sorted({round(i * (len(group) - 1) / max(k - 1, 1)) for i in range(k)})
        chosen += [group[i] for i in idx]
    return chosen


# ---- running ------------------------------------------------------------------

def freeze_value_inputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray],
                        ops: Optional[Collection[str]] = None) -> tuple[onnx.ModelProto, list[str]]:
    """Copy of ``model`` whose generation-time inputs are initializers; returns it and the run-time inputs.

    An input is generation-time when a node of an operator in ``ops`` (None: every operator) reads it at a
    position its operator lists in ``value_inputs`` (shape, axes, starts, ...), as if the exporter had
    folded it.
    """
    opset = {o.domain or "": o.version for o in model.opset_import}.get("", 0)
    frozen = set()
    for node in model.graph.node:
        if ops is not None and node.op_type not in ops:
            continue
        cls = lookup(node.op_type, node.domain, opset)
        for i in getattr(cls, "value_inputs", ()):
            if i < len(node.input) and node.input[i] in feeds:
                frozen.add(node.input[i])
    model = copy.deepcopy(model)
    if frozen:
        kept = [v for v in model.graph.input if v.name not in frozen]
        del model.graph.input[:]
        model.graph.input.extend(kept)
        model.graph.initializer.extend(numpy_helper.from_array(np.asarray(feeds[n]), n) for n in sorted(frozen))
    return model, [v.name for v in model.graph.input]


def run_case(case: Case, frozen_ops: Optional[Collection[str]] = ()) -> None:
    """Run one case through sofie-rdf and compare with its expected outputs (AssertionError on mismatch);
    the value inputs of ``frozen_ops`` (default none, None: all) frozen first (:func:`freeze_value_inputs`)."""
    names = [v.name for v in case.model.graph.input]
    feeds = dict(zip(names, case.inputs))
    model, runtime = freeze_value_inputs(case.model, feeds, frozen_ops)
    sess = sr.compile(sr.load(model, name=case.name), backend="jit")
    got = sess.infer(*[feeds[n] for n in runtime])
    compare(case, list(got) if isinstance(got, tuple) else [got])


def compare(case: Case, got: list[np.ndarray]) -> None:
    """Outputs against the case's expected ones as onnx's backend runner compares them (AssertionError)."""
    assert len(got) == len(case.outputs), f"{len(got)} outputs, expected {len(case.outputs)}"
    for k, (a, b) in enumerate(zip(got, case.outputs)):
        a = np.asarray(a)
        b = np.asarray(b)
        assert a.dtype == b.dtype, f"output {k}: dtype {a.dtype} != expected {b.dtype}"
        assert a.shape == b.shape, f"output {k}: shape {a.shape} != expected {b.shape}"
        if a.dtype in HALF_TYPES:  # bfloat16 is no numpy float ("V" kind): compare as float32
            a, b = a.astype(np.float32), b.astype(np.float32)
        elif a.dtype in MINIFLOAT_TYPES:  # exact values, NaN equal to NaN whatever its bits
            a, b = a.astype(np.float32), b.astype(np.float32)
            np.testing.assert_array_equal(a, b, err_msg=f"output {k}")
            continue
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=case.rtol, atol=case.atol, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"output {k}")


# ---- pytest ---------------------------------------------------------------------

_CASES: list[Case] = select(_all_testcases())
_QUICK = {c.name for c in quick_subset(_CASES)}


def _param(case: Case, slow: bool) -> Any:
    marks = [pytest.mark.slow] if slow else []
    if case.name in KNOWN_FAILURES:
        marks.append(pytest.mark.xfail(reason=KNOWN_FAILURES[case.name], strict=True))
    return pytest.param(case, id=case.name, marks=marks)


def _check(case: Case) -> None:
    if case.skip is not None:
        pytest.skip(case.skip)
    run_case(case)


@pytest.mark.parametrize("case", [_param(c, slow=False) for c in _CASES if c.name in _QUICK])
def test_node_quick(case: Case) -> None:
    _check(case)


@pytest.mark.parametrize("case", [_param(c, slow=True) for c in _CASES])
def test_node(case: Case) -> None:
    _check(case)


def test_selection_covers_every_milestone_op() -> None:
    """Every milestone operator has cases, and the quick subset runs each one."""
    ops = {c.op for c in _CASES}
    assert ops >= MILESTONE_OPS, f"no cases for {sorted(MILESTONE_OPS - ops)}"
    assert {c.op for c in _CASES if c.name in _QUICK} == {c.op for c in _CASES if c.skip is None}
    assert set(KNOWN_FAILURES) <= {c.name for c in _CASES}, "stale KNOWN_FAILURES entries"


# ---- script mode: per-operator table over the full set --------------------------

def main() -> int:
    import tempfile

    os.environ.setdefault("SOFIE_RDF_CACHE", tempfile.mkdtemp(prefix="sofie-backend-"))
    verbose = "-v" in sys.argv
    only = {op for arg in sys.argv if arg.startswith("--ops=") for op in arg[len("--ops="):].split(",")}
    frozen_ops = None if "--frozen" in sys.argv else ()
    counts: dict[str, Counter] = defaultdict(Counter)
    failures = []
    for case in (c for c in _CASES if not only or c.op in only):
        if case.skip is not None:
            status = "skip"
        else:
            try:
                run_case(case, frozen_ops)
                status = "pass"
            except Exception as exc:  # noqa: BLE001  (any error is this case's failure)
                status = "xfail" if case.name in KNOWN_FAILURES else "fail"
                first = str(exc).strip().splitlines()
                failures.append((case.name, status, first[0] if first else type(exc).__name__))
            else:
                if case.name in KNOWN_FAILURES:
                    status = "xpass"
        counts[case.op][status] += 1
    cols = ["pass", "fail", "xfail", "xpass", "skip"]
    print(f"{'operator':<12}" + "".join(f"{c:>7}" for c in cols) + f"{'total':>7}")
    total: Counter = Counter()
    for op in sorted(counts):
        total.update(counts[op])
        print(f"{op:<12}" + "".join(f"{counts[op][c]:>7}" for c in cols) + f"{sum(counts[op].values()):>7}")
    print(f"{'TOTAL':<12}" + "".join(f"{total[c]:>7}" for c in cols) + f"{sum(total.values()):>7}")
    if failures and verbose:
        print()
        for name, status, msg in failures:
            print(f"{status:5} {name}: {msg[:300]}")
    return 1 if total["fail"] or total["xpass"] else 0


if __name__ == "__main__":
    sys.exit(main())
