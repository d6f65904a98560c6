"""Fuzz target for the ONNX front end: mutated valid models may only raise ``SofieError``.

Seeds are small valid models across operator families (the ONNX backend
node cases of the installed onnx, built in memory).  Each iteration applies
one to three random mutations at the protobuf level (attribute values and
types, dims, element types, tensor names, inputs dropped or swapped, op types
and domains, opsets, initializer bytes) or at the byte level (flips,
truncation), then loads the result and generates its C++ (no compilation).
Any exception other than a :class:`sofie_rdf.SofieError` is a finding.

    python -m tests.fuzz.onnx_parser --iterations 20000 --seed 1     # make fuzz
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto

import sofie_rdf as sr

INTERESTING_INTS = [0, 1, -1, 2, 3, -2, 7, 64, 2**31 - 1, -(2**31), 2**40, -(2**62), 2**63 - 1]
INTERESTING_FLOATS = [0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, float("inf"), float("-inf"), float("nan")]
ELEM_TYPES = [t for t in TensorProto.DataType.values() if t != TensorProto.UNDEFINED] + [0, 99]
MUTATIONS: list[Callable[[random.Random, onnx.ModelProto], None]] = []


def mutation(fn: Callable[[random.Random, onnx.ModelProto], None]) -> Callable:
    MUTATIONS.append(fn)
    return fn


def _pick(rng: random.Random, items):
    return rng.choice(list(items)) if len(items) else None


@mutation
def attribute_value(rng: random.Random, m: onnx.ModelProto) -> None:
    node = _pick(rng, m.graph.node)
    attr = node and _pick(rng, node.attribute)
    if attr is None:
        return
    if attr.type == AttributeProto.INT:
        attr.i = rng.choice(INTERESTING_INTS)
    elif attr.type == AttributeProto.FLOAT:
        attr.f = rng.choice(INTERESTING_FLOATS)
    elif attr.type == AttributeProto.INTS:
        values = list(attr.ints) or [1]
        values[rng.randrange(len(values))] = rng.choice(INTERESTING_INTS)
        if rng.random() < 0.3:
            values = values[: rng.randrange(len(values) + 1)] + [rng.choice(INTERESTING_INTS)] * rng.randrange(3)
        attr.ClearField("ints")
        attr.ints.extend(values)
    elif attr.type == AttributeProto.STRING:
        attr.s = rng.choice([b"", b"bogus", b"'\"*/\n#include <x>", attr.s[::-1]])
    elif attr.type == AttributeProto.FLOATS:
        attr.ClearField("floats")
        attr.floats.extend(rng.choice(INTERESTING_FLOATS) for _ in range(rng.randrange(5)))


@mutation
def attribute_type(rng: random.Random, m: onnx.ModelProto) -> None:
    node = _pick(rng, m.graph.node)
    attr = node and _pick(rng, node.attribute)
    if attr is not None:
        attr.type = rng.choice(list(AttributeProto.AttributeType.values()))


@mutation
def extra_attribute(rng: random.Random, m: onnx.ModelProto) -> None:
    node = _pick(rng, m.graph.node)
    if node is not None:
        node.attribute.append(onnx.helper.make_attribute(rng.choice(["packed_w", "axis", "zz", "activation"]),
                                                         rng.choice([1, -3, "Relu", [1, 2]])))


@mutation
def drop_attribute(rng: random.Random, m: onnx.ModelProto) -> None:
    node = _pick(rng, m.graph.node)
    if node is not None and len(node.attribute):
        del node.attribute[rng.randrange(len(node.attribute))]


@mutation
def value_dims(rng: random.Random, m: onnx.ModelProto) -> None:
    value = _pick(rng, list(m.graph.input) + list(m.graph.output))
    if value is None or not value.type.HasField("tensor_type"):
        return
    dims = value.type.tensor_type.shape.dim
    if len(dims) and rng.random() < 0.7:
        d = dims[rng.randrange(len(dims))]
        if rng.random() < 0.5:
            d.dim_value = rng.choice(INTERESTING_INTS[:9] + [10**6, 10**12])
        else:
            d.dim_param = rng.choice(["N", "", "x y", "'\"", "N*2"])
    elif rng.random() < 0.5:
        dims.add().dim_value = rng.choice([0, 1, 3])
    elif len(dims):
        del dims[rng.randrange(len(dims))]


@mutation
def elem_type(rng: random.Random, m: onnx.ModelProto) -> None:
    value = _pick(rng, list(m.graph.input) + list(m.graph.output))
    if value is not None and value.type.HasField("tensor_type"):
        value.type.tensor_type.elem_type = rng.choice(ELEM_TYPES)


@mutation
def initializer(rng: random.Random, m: onnx.ModelProto) -> None:
    t = _pick(rng, m.graph.initializer)
    if t is None:
        return
    choice = rng.randrange(4)
    if choice == 0 and len(t.dims):
        t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 5, -1, 2**40])
    elif choice == 1:
        t.data_type = rng.choice(ELEM_TYPES)
    elif choice == 2 and t.raw_data:
        t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data) + 1)]
    else:
        t.name = rng.choice(["", m.graph.node[0].output[0] if len(m.graph.node) else "x", "w\n*/"])


@mutation
def rewire(rng: random.Random, m: onnx.ModelProto) -> None:
    node = _pick(rng, m.graph.node)
    if node is None:
        return
    names = [i.name for i in m.graph.input] + [t.name for t in m.graph.initializer] + \
            [o for n in m.graph.node for o in n.output] + ["", "nowhere"]
    if len(node.input) and rng.random() < 0.6:
        node.input[rng.randrange(len(node.input))] = rng.choice(names)
    elif len(node.input) and rng.random() < 0.5:
        del node.input[rng.randrange(len(node.input))]
    elif rng.random() < 0.5:
        node.input.append(rng.choice(names))
    elif len(node.output):
        node.output[rng.randrange(len(node.output))] = rng.choice(names)


@mutation
def op_type(rng: random.Random, m: onnx.ModelProto) -> None:
    node = _pick(rng, m.graph.node)
    if node is None:
        return
    if rng.random() < 0.8:
        node.op_type = rng.choice(["Relu", "Add", "Gemm", "Conv", "Reshape", "Concat", "Gather", "Slice", "MatMul",
                                   "Transpose", "Softmax", "LSTM", "TopK", "NonZero", "Resize", "Einsum", "Nope"])
    else:
        node.domain = rng.choice(["", "ai.onnx.ml", "com.microsoft", "sofie_rdf", "bogus"])


@mutation
def opset(rng: random.Random, m: onnx.ModelProto) -> None:
    if len(m.opset_import):
        m.opset_import[0].version = rng.choice([0, 1, 6, 7, 11, 13, 17, 21, 23, 999])


@mutation
def graph_output(rng: random.Random, m: onnx.ModelProto) -> None:
    if len(m.graph.output) and rng.random() < 0.5:
        m.graph.output[0].name = rng.choice(["", "nowhere", m.graph.input[0].name if len(m.graph.input) else "x"])
    elif len(m.graph.output):
        m.graph.output.append(copy.deepcopy(m.graph.output[0]))


def _byte_mutation(rng: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    if rng.random() < 0.5 and raw:
        for _ in range(rng.randrange(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    return bytes(raw[: rng.randrange(len(raw) + 1)])


def seed_models(limit: int = 400) -> list[onnx.ModelProto]:
    """Valid, supported models: ONNX backend node cases whose operators sofie-rdf implements."""
    from onnx.backend.test.case.node import collect_testcases

    seeds = []
    for case in collect_testcases(None):
        model = case.model
        if model is None:
            continue
        try:
            sr.load(model)
        except sr.SofieError:
            continue
        seeds.append(model)
        if len(seeds) >= limit:
            break
    return seeds


@dataclass
class Report:
    iterations: int = 0
    loaded: int = 0
    refused: int = 0
    findings: list[str] = field(default_factory=list)


def fuzz_one(rng: random.Random, seed: onnx.ModelProto) -> tuple[str, bytes]:
    """(outcome, mutated bytes): outcome "loaded", "refused" or a traceback of an escaped exception."""
    model = copy.deepcopy(seed)
    for _ in range(rng.randrange(1, 4)):
        rng.choice(MUTATIONS)(rng, model)
    try:
        data = model.SerializeToString()
    except Exception:  # protobuf refuses some mutations (e.g. an invalid enum): not the parser's input
        return "refused", b""
    if rng.random() < 0.15:
        data = _byte_mutation(rng, data)
    try:
        loaded = sr.load(data)
        loaded.code()
    except sr.SofieError:
        return "refused", data
    except RecursionError:
        return traceback.format_exc(), data
    except Exception:
        return traceback.format_exc(), data
    return "loaded", data


def run(iterations: int, seed: int = 0, seeds: list[onnx.ModelProto] | None = None, verbose: bool = False) -> Report:
    rng = random.Random(seed)
    seeds = seeds if seeds is not None else seed_models()
    report = Report()
    for _ in range(iterations):
        outcome, _data = fuzz_one(rng, rng.choice(seeds))
        report.iterations += 1
        if outcome == "loaded":
            report.loaded += 1
        elif outcome == "refused":
            report.refused += 1
        else:
            report.findings.append(outcome)
            if verbose:
                print(outcome, file=sys.stderr)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    np.seterr(all="ignore")
    start = time.perf_counter()
    report = run(args.iterations, args.seed, verbose=True)
    unique = sorted({f.strip().splitlines()[-1] for f in report.findings})
    print(f"{report.iterations} iterations in {time.perf_counter() - start:.0f} s: {report.loaded} loaded, "
          f"{report.refused} refused with SofieError, {len(report.findings)} escaped ({len(unique)} distinct)")
    for line in unique:
        print("  ", line)
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
