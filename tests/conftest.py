"""Shared test fixture: build an ONNX model, compile it, run it, compare with onnxruntime."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Optional, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr

# Keras runs on the torch backend in the tests (never TensorFlow).
os.environ.setdefault("KERAS_BACKEND", "torch")

# onnxruntime reads models up to this IR version; the onnx package writes newer ones.
ORT_IR_VERSION = 9
RTOL, ATOL = 1e-4, 1e-5


# make test runs a covering subset of each parametrized test with more than one parameter (every value of every
# parameter at least once, at least QUICK_CASES cases); make test-full (-m slow) runs the rest of the product.
QUICK_CASES = 4


def _covering(items: list) -> set[int]:
    """Indices of a few ``items`` (cases of one test) that together hold every value of every parameter: greedy
    set cover on (parameter, value), the earlier case on ties, then evenly spread cases up to QUICK_CASES.  Values
    are told apart by repr: the same in every xdist worker for what it means (the order of the cases)."""
    values = [{(name, repr(value)) for name, value in item.callspec.params.items()} for item in items]
    uncovered = set().union(*values)
    kept: set[int] = set()
    while uncovered:
        best = max(range(len(items)), key=lambda i: (len(values[i] & uncovered), -i))
        kept.add(best)
        uncovered -= values[best]
    step = max(1, len(items) // QUICK_CASES)
    kept.update(range(0, len(items), step)[:max(0, QUICK_CASES - len(kept))])
    return kept


@pytest.hookimpl(tryfirst=True)  # before -m selects by the marks
def pytest_collection_modifyitems(config, items):
    """Mark the cases of a parametrized sweep that make test leaves out as ``slow`` (see QUICK_CASES)."""
    sweeps: dict[tuple, list] = defaultdict(list)
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and len(spec.indices) > 1 and item.get_closest_marker("slow") is None:
            sweeps[(item.path, item.originalname)].append(item)
    for cases in sweeps.values():
        kept = _covering(cases)
        for i, item in enumerate(cases):
            if i not in kept:
                item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Compiled models of the test run go to a fresh cache folder."""
    os.environ["SOFIE_RDF_CACHE"] = str(tmp_path_factory.mktemp("sofie-cache"))


def make_model(nodes: Sequence[onnx.NodeProto], inputs: Sequence[tuple], outputs: Sequence[tuple],
               initializers: Optional[dict] = None, opset: int = 17, name: str = "test") -> onnx.ModelProto:
    """ONNX model from nodes; inputs/outputs are (name, numpy dtype, shape) with str dims for symbols."""

    def info(name, dtype, shape):
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return helper.make_tensor_value_info(name, elem, shape)

    graph = helper.make_graph(
        list(nodes), name, [info(*i) for i in inputs], [info(*o) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ORT_IR_VERSION)
    return model


def base_variant(header: str) -> str:
    """``header`` without its kernels and ``infer`` bodies for the instruction sets above the compiler flags'
    (``#if SOFIE_RDF_BUILD_1`` / ``_2`` blocks, targets/cpu/isa.py): the code one build runs, for tests that count
    what it does."""
    kept, depth = [], 0
    for line in header.splitlines():
        directive = line.strip()
        if depth:
            depth += directive.startswith("#if") - directive.startswith("#endif")
        elif directive in ("#if SOFIE_RDF_BUILD_1", "#if SOFIE_RDF_BUILD_2"):
            depth = 1
        else:
            kept.append(line)
    return "\n".join(kept)


def random_array(shape, dtype=np.float32, seed: int = 0) -> np.ndarray:
    """Seeded test data of any dtype: normal floats, small integers (non-negative when unsigned), random bools."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        return rng.integers(0 if dt.kind == "u" else -9, 10, shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def ort_run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check_runs(model: onnx.ModelProto, feeds_list: Sequence[dict], backend: str = "jit", reference=None,
               rtol: float = 0.0, atol: float = 0.0, dtypes: bool = False):
    """Compile ``model`` once, run it on every feed dict and compare every output with ``reference`` (default
    onnxruntime): shapes (and dtypes with ``dtypes``), then values, floats within the tolerances (exact by
    default), others exactly.  Returns the session (run-time values: one compiled model, many sizes)."""
    reference = reference or ort_run
    sess = sr.compile(sr.load(model), backend=backend)
    for feeds in feeds_list:
        out = sess.infer(*[feeds[i.name] for i in sess.inputs])
        ours = list(out) if isinstance(out, tuple) else [out]
        for k, (a, b) in enumerate(zip(ours, reference(model, feeds))):
            assert a.shape == b.shape, f"output {k} at {feeds}: shape {a.shape} != {b.shape}"
            assert not dtypes or a.dtype == b.dtype, f"output {k} at {feeds}: dtype {a.dtype} != {b.dtype}"
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"output {k} at {feeds}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"output {k} at {feeds}")
    return sess


def assert_matches_torch(session, module, inputs: Sequence, rtol: float, atol: float, label: str,
                         check_shapes: bool = False) -> None:
    """``session.infer`` on ``inputs`` (torch tensors) against ``module``'s outputs, one or a tuple, in order."""
    import torch

    with torch.no_grad():
        expected = module(*inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    ours = session.infer(*(x.numpy() for x in inputs))
    ours = ours if isinstance(ours, tuple) else (ours,)
    assert len(ours) == len(expected)
    for k, (a, b) in enumerate(zip(ours, expected)):
        if check_shapes:
            assert a.shape == tuple(b.shape), f"output {k}, {label}"
        np.testing.assert_allclose(a, b.numpy(), rtol=rtol, atol=atol, err_msg=f"output {k}, {label}")


def sofie_run(model: onnx.ModelProto, feeds: dict, backend: str = "jit") -> list[np.ndarray]:
    sess = sr.compile(sr.load(model), backend=backend)
    out = sess.infer(*[feeds[i.name] for i in sess.inputs])
    return list(out) if isinstance(out, tuple) else [out]


@pytest.fixture
def check_model():
    """``check_model(model, feeds, rtol=, atol=, backend=)``: run with sofie-rdf and onnxruntime, compare."""

    def check(model: onnx.ModelProto, feeds: dict, rtol: float = RTOL, atol: float = ATOL,
              backend: str = "jit") -> list[np.ndarray]:
        ours = sofie_run(model, feeds, backend)
        ref = ort_run(model, feeds)
        assert len(ours) == len(ref)
        for k, (a, b) in enumerate(zip(ours, ref)):
            assert a.shape == b.shape, f"output {k}: shape {a.shape} != {b.shape}"
            assert a.dtype == b.dtype, f"output {k}: dtype {a.dtype} != {b.dtype}"
            if a.dtype.kind in "f":
                np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"output {k}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"output {k}")
        return ours

    return check


def _predict(kmodel, inputs: list) -> list[np.ndarray]:
    out = kmodel.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.fixture
def check_keras(tmp_path):
    """``check_keras(kmodel, inputs, rtol=, atol=, sources=)``: compare sofie-rdf with ``kmodel.predict``.

    The model is converted from the object itself and from the ``.keras`` and
    ``.h5`` files Keras writes of it (``sources`` picks among "object",
    "keras", "h5"), each compared with the model Keras itself reads from that
    source.  Identical generated code shares its compiled session through the
    compile cache.  Returns the Keras outputs of the object.
    """

    def check(kmodel, inputs, rtol: float = RTOL, atol: float = ATOL,
              sources: Sequence[str] = ("object", "keras", "h5"), backend: str = "jit") -> list[np.ndarray]:
        import keras

        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        expected = _predict(kmodel, inputs)
        for source in sources:
            if source == "object":
                model, reference = sr.load(kmodel), expected
            else:
                path = tmp_path / f"{kmodel.name}.{source}"
                kmodel.save(path)
                model = sr.load(path, name=kmodel.name)
                # The file as Keras reads it back is the reference (legacy .h5 drops some settings).
                reference = _predict(keras.saving.load_model(path, compile=False), inputs)
            got = sr.compile(model, backend=backend).infer(*inputs)
            got = list(got) if isinstance(got, tuple) else [got]
            assert len(got) == len(reference), f"{source}: {len(got)} outputs, Keras has {len(reference)}"
            for k, (a, e) in enumerate(zip(got, reference)):
                assert a.shape == e.shape, f"{source}, output {k}: shape {a.shape} != {e.shape}"
                np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"{source}, output {k}")
        return expected

    return check


__all__ = ["TensorProto", "make_model", "ort_run", "random_array", "sofie_run"]
