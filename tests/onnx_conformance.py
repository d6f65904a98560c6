"""ONNX backend node conformance over every case of the installed onnx (``make conformance``).

The pytest module ``test_onnx_backend`` runs the cases of the operators sofie-rdf
implements; this report runs *all* of them and writes
``docs/onnx_conformance.md``: the pass rates, a table by operator and every
failure with its reason.  Each case runs three ways: sofie-rdf as onnx ships
the case (no input frozen: the figure that counts), sofie-rdf with every
generation-time input frozen into an initializer, and onnxruntime on the case
as shipped, compared by the same code.

Excluded, as the conformance goal defines "numeric": cases with string,
sequence, optional or map values and complex numbers.  The narrow element
types (8-, 6- and 4-bit floats, 4- and 2-bit integers) count, in the quantized
operators and in Cast and the like to them: a type sofie-rdf has no kernels for
(float8e8m0, the float6 types) is a failure, not an exclusion.
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
    compare,
    run_case,
)

from sofie_rdf.ops import lookup  # noqa: E402

EXCLUDED_TYPES = {TensorProto.STRING: "string", TensorProto.COMPLEX64: "complex", TensorProto.COMPLEX128: "complex"}
REPORT = Path(__file__).parent.parent / "docs" / "onnx_conformance.md"


def exclusion(model: onnx.ModelProto) -> Optional[str]:
    """Why a case is outside the numeric conformance set, else None."""
    g = model.graph
    if any(not v.type.HasField("tensor_type") for v in [*g.input, *g.output]):
        return "sequence, optional or map values"
    kinds = sorted({EXCLUDED_TYPES[t] for t in _elem_types(model) if t in EXCLUDED_TYPES})
    return f"{kinds[0]} tensors" if kinds else None


def run(tc, frozen_ops: Optional[tuple]) -> tuple[str, str]:
    """(op, failure reason or "") of one case through sofie-rdf; ``frozen_ops`` as ``run_case`` takes them
    (``()``: nothing frozen, None: every generation-time input frozen)."""
    ops = [n.op_type for n in tc.model.graph.node]
    op = _tested_op(tc.name, ops)
    opset = {o.domain or "": o.version for o in tc.model.opset_import}.get("", 0)
    missing = sorted({n.op_type for n in tc.model.graph.node if lookup(n.op_type, n.domain, opset) is None})
    if missing:
        return op, f"not implemented: {', '.join(missing)}"
    for t in sorted(_elem_types(tc.model)):
        if t in UNSUPPORTED_ELEM_TYPES:
            return op, UNSUPPORTED_ELEM_TYPES[t].split(" has ")[0] + " tensors are not supported yet"
    return op, _failure(lambda: run_case(_case(tc, op), frozen_ops), tc.name)


def run_onnxruntime(tc) -> str:
    """Failure reason or "" of one case through onnxruntime (one thread), the case as shipped."""
    import onnxruntime as ort

    case = _case(tc, "")

    def check() -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        sess = ort.InferenceSession(tc.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        feeds = {v.name: x for v, x in zip(sess.get_inputs(), case.inputs)}
        compare(case, sess.run(None, feeds))

    return _failure(check, "")


def _case(tc, op: str) -> Case:
    inputs, outputs = tc.data_sets[0]
    return Case(tc.name, op, tc.model, [_as_array(v) for v in inputs], [_as_array(v) for v in outputs],
                max(getattr(tc, "rtol", None) or DEFAULT_RTOL, MIN_RTOL), getattr(tc, "atol", None) or DEFAULT_ATOL,
                None)


def _failure(check, name: str) -> str:
    try:
        check()
    except Exception as exc:  # noqa: BLE001  (a case's failure, whatever it is)
        first = str(exc).strip().splitlines()
        return KNOWN_FAILURES.get(name) or (first[0][:200] if first else type(exc).__name__)
    return ""


ENGINES = {"strict": lambda tc: run(tc, ()), "frozen": lambda tc: run(tc, None),
           "onnxruntime": lambda tc: (None, run_onnxruntime(tc))}


def implemented(tc) -> bool:
    """Whether sofie-rdf implements every node of a case: the cases in scope of the headline figure."""
    opset = {o.domain or "": o.version for o in tc.model.opset_import}.get("", 0)
    return all(lookup(n.op_type, n.domain, opset) is not None for n in tc.model.graph.node)


def main() -> int:
    os.environ.setdefault("SOFIE_RDF_CACHE", tempfile.mkdtemp(prefix="sofie-conformance-"))
    start = time.time()
    excluded: Counter = Counter()
    results: dict[str, dict[str, str]] = {}  # case -> {"op": its operator, engine: failure reason or ""}
    in_scope: set[str] = set()
    cases = [tc for tc in _all_testcases() if tc.model is not None and tc.data_sets]
    for tc in cases:
        reason = exclusion(tc.model)
        if reason:
            excluded[reason] += 1
            continue
        row: dict[str, str] = {}
        for engine, runner in ENGINES.items():
            got_op, row[engine] = runner(tc)
            row.setdefault("op", got_op)
        results[tc.name] = row
        if implemented(tc):
            in_scope.add(tc.name)
    write_report(len(cases), excluded, results, in_scope, time.time() - start)
    for engine in ENGINES:
        passed, total = _totals(results, engine, in_scope)
        print(f"{engine}: {passed} of {total} in-scope numeric cases pass ({100 * passed / total:.1f}%)")
    print(f"{sum(excluded.values())} excluded; report: {REPORT}")
    return 0


def _totals(results: dict, engine: str, names: Optional[set] = None) -> tuple[int, int]:
    """(passed, total) of one engine over the cases ``names`` (default all)."""
    rows = [r for name, r in results.items() if names is None or name in names]
    return sum(not r[engine] for r in rows), len(rows)


def write_report(n_cases: int, excluded: Counter, results: dict, in_scope: set, seconds: float) -> None:
    def rate(engine: str, names: Optional[set] = None) -> str:
        passed, total = _totals(results, engine, names)
        return f"{passed} of {total} ({100 * passed / max(total, 1):.1f}%)"

    lines = ["# ONNX backend node conformance", "",
             f"Every node test case of onnx {onnx.__version__} (`onnx.backend.test.case.node.collect_testcases()`,"
             f" {n_cases} cases), run through `sr.load` -> `sr.compile(backend=\"jit\")` -> `infer` and compared with"
             " the expected outputs as onnx's backend runner does; onnxruntime "
             f"{_ort_version()} (CPU, one thread) runs the same cases through the same comparison. Written by"
             f" `make conformance` ({seconds / 60:.0f} min).", "",
             "| | in scope: cases whose operators sofie-rdf implements | all numeric cases |", "|---|---:|---:|",
             f"| **sofie-rdf, cases as onnx ships them** | **{rate('strict', in_scope)}** | **{rate('strict')}** |",
             f"| sofie-rdf, generation-time inputs frozen | {rate('frozen', in_scope)} | {rate('frozen')} |",
             f"| onnxruntime, cases as onnx ships them | {rate('onnxruntime', in_scope)} | {rate('onnxruntime')} |",
             "", "*Frozen*: inputs an operator reads to fix a shape or parameter (Reshape's shape, Slice's starts,"
             " reduction axes, ...) become initializers holding the case's value, as if the exporter had folded"
             " them. Out of scope: cases with a node sofie-rdf does not implement (control flow, random"
             " operators, ...), listed under the failures.", "",
             f"Excluded ({sum(excluded.values())} cases): " + ", ".join(f"{k} {v}" for k, v in excluded.most_common()) + ".",
             "", "## By operator", "", "| operator | sofie-rdf | sofie-rdf frozen | onnxruntime | cases |",
             "|---|---:|---:|---:|---:|"]
    by_op: dict[str, list[dict]] = defaultdict(list)
    for r in results.values():
        by_op[r["op"]].append(r)
    for op, rows in sorted(by_op.items()):
        passes = [sum(not r[e] for r in rows) for e in ENGINES]
        lines.append(f"| {op} | {' | '.join(map(str, passes))} | {len(rows)} |")
    for engine, title in (("strict", "sofie-rdf failures, cases as shipped"),
                          ("frozen", "sofie-rdf failures with generation-time inputs frozen"),
                          ("onnxruntime", "onnxruntime failures")):
        failures: dict[str, list[str]] = defaultdict(list)
        for name, r in results.items():
            if r[engine]:
                failures[r[engine]].append(name)
        lines += ["", f"## {title}, by reason", ""]
        for reason, names in sorted(failures.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"* **{reason}** ({len(names)}): {', '.join(names)}")
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


if __name__ == "__main__":
    sys.exit(main())
