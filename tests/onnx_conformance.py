"""ONNX backend node conformance over every case of the installed onnx (``make conformance``).

The pytest module ``test_onnx_backend`` runs the cases of the operators sofie-rdf
implements; this report runs *all* of them and writes
``docs/onnx_conformance.md``: the pass rate, a table by operator and every
failure with its reason.

Excluded, as the conformance goal defines "numeric": cases with string,
sequence, optional or map values, complex numbers, float8/float4/int4/int2
element types, and quantized operators.  float16 and bfloat16 cases count
(sofie-rdf has no type for them yet, so they fail).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Optional

import onnx
from onnx import TensorProto

sys.path.insert(0, str(Path(__file__).parent))
from test_onnx_backend import (  # noqa: E402  (the pytest module is the case machinery)
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    KNOWN_FAILURES,
    MIN_RTOL,
    UNSUPPORTED_ELEM_TYPES,
    Case,
    _all_testcases,
    _as_array,
    _elem_types,
    _tested_op,
    run_case,
)

from sofie_rdf.ops import lookup  # noqa: E402

EXCLUDED_TYPES = {TensorProto.STRING: "string", TensorProto.COMPLEX64: "complex", TensorProto.COMPLEX128: "complex",
                  **{getattr(TensorProto, n): "float8/float4/int4/int2" for n in (
                      "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT8E8M0", "FLOAT4E2M1",
                      "UINT4", "INT4", "UINT2", "INT2") if hasattr(TensorProto, n)}}
QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
                 "ConvInteger", "MatMulInteger"}
REPORT = Path(__file__).parent.parent / "docs" / "onnx_conformance.md"


def exclusion(model: onnx.ModelProto) -> Optional[str]:
    """Why a case is outside the numeric conformance set, else None."""
    g = model.graph
    if any(not v.type.HasField("tensor_type") for v in [*g.input, *g.output]):
        return "sequence, optional or map values"
    kinds = sorted({EXCLUDED_TYPES[t] for t in _elem_types(model) if t in EXCLUDED_TYPES})
    if kinds:
        return f"{kinds[0]} tensors"
    if any(n.op_type in QUANTIZED_OPS for n in g.node):
        return "quantized operator"
    return None


def run(tc) -> tuple[str, str]:
    """(op, failure reason or "") of one case."""
    ops = [n.op_type for n in tc.model.graph.node]
    op = _tested_op(tc.name, ops)
    opset = {o.domain or "": o.version for o in tc.model.opset_import}.get("", 0)
    missing = sorted({n.op_type for n in tc.model.graph.node if lookup(n.op_type, n.domain, opset) is None})
    if missing:
        return op, f"not implemented: {', '.join(missing)}"
    for t in sorted(_elem_types(tc.model)):
        if t in UNSUPPORTED_ELEM_TYPES:
            return op, UNSUPPORTED_ELEM_TYPES[t].split(" has ")[0] + " tensors are not supported yet"
    inputs, outputs = tc.data_sets[0]
    case = Case(tc.name, op, tc.model, [_as_array(v) for v in inputs], [_as_array(v) for v in outputs],
                max(getattr(tc, "rtol", None) or DEFAULT_RTOL, MIN_RTOL), getattr(tc, "atol", None) or DEFAULT_ATOL, None)
    try:
        run_case(case)
    except Exception as exc:  # noqa: BLE001  (a case's failure, whatever it is)
        first = str(exc).strip().splitlines()
        return op, KNOWN_FAILURES.get(tc.name) or (first[0][:200] if first else type(exc).__name__)
    return op, ""


def main() -> int:
    os.environ.setdefault("SOFIE_RDF_CACHE", tempfile.mkdtemp(prefix="sofie-conformance-"))
    start = time.time()
    excluded: Counter = Counter()
    by_op: dict[str, Counter] = defaultdict(Counter)
    failures: dict[str, list[str]] = defaultdict(list)
    cases = [tc for tc in _all_testcases() if tc.model is not None and tc.data_sets]
    for tc in cases:
        reason = exclusion(tc.model)
        if reason:
            excluded[reason] += 1
            continue
        op, failure = run(tc)
        by_op[op]["pass" if not failure else "fail"] += 1
        if failure:
            failures[failure].append(tc.name)
    write_report(len(cases), excluded, by_op, failures, time.time() - start)
    total = sum(sum(c.values()) for c in by_op.values())
    passed = sum(c["pass"] for c in by_op.values())
    print(f"{passed} of {total} numeric cases pass ({100 * passed / total:.1f}%); {sum(excluded.values())} excluded;"
          f" report: {REPORT}")
    return 0


def write_report(n_cases: int, excluded: Counter, by_op: dict, failures: dict, seconds: float) -> None:
    total = sum(sum(c.values()) for c in by_op.values())
    passed = sum(c["pass"] for c in by_op.values())
    lines = ["# ONNX backend node conformance", "",
             f"Every node test case of onnx {onnx.__version__} (`onnx.backend.test.case.node.collect_testcases()`,"
             f" {n_cases} cases), run through `sr.load` -> `sr.compile(backend=\"jit\")` -> `infer` and compared with"
             " the expected outputs as onnx's backend runner does. Written by `make conformance`"
             f" ({seconds / 60:.0f} min).", "",
             f"**{passed} of {total} numeric cases pass ({100 * passed / total:.1f}%).**", "",
             f"Excluded ({sum(excluded.values())} cases): " + ", ".join(f"{k} {v}" for k, v in excluded.most_common()) + ".",
             "", "## By operator", "", "| operator | pass | total |", "|---|---:|---:|"]
    lines += [f"| {op} | {c['pass']} | {sum(c.values())} |" for op, c in sorted(by_op.items())]
    lines += ["", "## Failures by reason", ""]
    for reason, names in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"* **{reason}** ({len(names)}): {', '.join(names)}")
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
