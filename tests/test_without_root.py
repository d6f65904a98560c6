"""Native models from Python without ROOT (issue 24): fresh interpreters, the C ABI, the compile cache's index.

Each scenario runs in a new interpreter, since this test process has ROOT loaded already; the numbers are
compared with onnxruntime in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run, random_array
from onnx import helper
from test_codegen import needs_gxx

import sofie_rdf as sr

pytestmark = needs_gxx

# Modules the native path must not import; the index path imports no front end or sympy either.
HEAVY = ("ROOT", "cppyy", "torch", "keras", "onnxruntime")
PARSING = ("onnx", "sympy")


def mlp_file(folder: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["y"])]
    init = {"W1": rng.standard_normal((16, 8)).astype(np.float32), "b1": rng.standard_normal(16).astype(np.float32),
            "W2": rng.standard_normal((16, 3)).astype(np.float32), "b2": rng.standard_normal(3).astype(np.float32)}
    model = make_model(nodes, [("x", np.float32, ["N", 8])], [("y", np.float32, ["N", 3])], init, name="rootless")
    path = folder / "rootless.onnx"
    onnx.save(model, str(path))
    return path


def run_fresh(script: str, cache: Path, *args: str, env: dict | None = None) -> dict:
    """Run ``script`` in a new interpreter with its own compile cache; it prints one JSON line."""
    environment = {**os.environ, "SOFIE_RDF_CACHE": str(cache), **(env or {})}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], env=environment,
                            capture_output=True, text=True, timeout=600, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


RUN_NATIVE = """
    import json, sys
    import numpy as np
    import sofie_rdf as sr
    sess = sr.compile(sys.argv[1], backend="native")
    x = np.linspace(-2, 2, 40, dtype=np.float32).reshape(5, 8)
    y = sess.infer(x)
    print(json.dumps({"y": y.tolist(), "modules": sorted(m for m in sys.modules if m.partition(".")[0] in
                      ("ROOT", "cppyy", "torch", "keras", "onnxruntime", "onnx", "sympy"))}))
"""


def test_native_model_in_a_fresh_interpreter_imports_no_root(tmp_path):
    """Cold cache: parsed and built without ROOT. Warm cache: found in the index, not even parsed."""
    path = mlp_file(tmp_path)
    x = np.linspace(-2, 2, 40, dtype=np.float32).reshape(5, 8)
    (want,) = ort_run(onnx.load(str(path)), {"x": x})
    cold = run_fresh(RUN_NATIVE, tmp_path / "cache", str(path))
    assert not {m.partition(".")[0] for m in cold["modules"]} & set(HEAVY), cold["modules"]
    warm = run_fresh(RUN_NATIVE, tmp_path / "cache", str(path))
    assert warm["modules"] == [], warm["modules"]
    for got in (cold["y"], warm["y"]):
        np.testing.assert_allclose(np.array(got, np.float32), want, rtol=1e-5, atol=1e-5)


def test_ctypes_path_without_the_extension(tmp_path):
    """Where the call extension cannot be built the C ABI is called through ctypes: same numbers."""
    path = mlp_file(tmp_path)
    x = np.linspace(-2, 2, 40, dtype=np.float32).reshape(5, 8)
    (want,) = ort_run(onnx.load(str(path)), {"x": x})
    got = run_fresh(RUN_NATIVE, tmp_path / "cache", str(path), env={"SOFIE_RDF_NO_FASTCALL": "1"})
    np.testing.assert_allclose(np.array(got["y"], np.float32), want, rtol=1e-5, atol=1e-5)


def test_without_the_root_package(tmp_path):
    """ROOT not installed: native models run, a ROOT feature says what to install."""
    script = """
        import json, sys
        sys.modules["ROOT"] = None  # import ROOT now fails as where the package is missing
        import numpy as np
        import sofie_rdf as sr
        y = sr.compile(sys.argv[1], backend="native").infer(np.ones((2, 8), np.float32))
        try:
            sr.compile(sys.argv[1], backend="jit")
            error = None
        except sr.SofieError as exc:
            error = str(exc)
        print(json.dumps({"y": y.tolist(), "error": error}))
    """
    path = mlp_file(tmp_path)
    out = run_fresh(script, tmp_path / "cache", str(path))
    (want,) = ort_run(onnx.load(str(path)), {"x": np.ones((2, 8), np.float32)})
    np.testing.assert_allclose(np.array(out["y"], np.float32), want, rtol=1e-5, atol=1e-5)
    assert out["error"] is not None and "pip install 'sofie-rdf[root]'" in out["error"], out["error"]


def test_columnar_dask_path_imports_no_root(tmp_path):
    """uproot.dask arrays through a native Session in a fresh interpreter: the tasks open the library."""
    pytest.importorskip("dask_awkward")
    import uproot

    rng = np.random.default_rng(3)
    columns = {f"f{k}": rng.standard_normal(120).astype(np.float32) for k in range(8)}
    with uproot.recreate(tmp_path / "events.root") as f:
        f["events"] = columns
    script = """
        import json, sys
        import dask, uproot
        import numpy as np
        import sofie_rdf as sr
        sess = sr.compile(sys.argv[1], backend="native")
        lazy = uproot.dask({sys.argv[2]: "events"}, step_size=50)
        with dask.config.set(scheduler="threads"):
            y = sess.infer(lazy, features=[f"f{k}" for k in range(8)]).compute()
        print(json.dumps({"y": y.to_list(), "root": [m for m in sys.modules if m.partition(".")[0] in
                          ("ROOT", "cppyy")]}))
    """
    path = mlp_file(tmp_path)
    out = run_fresh(script, tmp_path / "cache", str(path), str(tmp_path / "events.root"))
    assert out["root"] == []
    x = np.stack([columns[f"f{k}"] for k in range(8)], axis=1)
    (want,) = ort_run(onnx.load(str(path)), {"x": x})
    np.testing.assert_allclose(np.array(out["y"], np.float32), want, rtol=1e-5, atol=1e-5)


def test_index_follows_the_file(tmp_path):
    """A model file changed in place compiles anew: the index is keyed by its bytes."""
    path = mlp_file(tmp_path, seed=1)
    x = random_array((4, 8))
    first = sr.compile(str(path), backend="native").infer(x)
    np.testing.assert_allclose(first, ort_run(onnx.load(str(path)), {"x": x})[0], rtol=1e-5, atol=1e-5)
    mlp_file(tmp_path, seed=2)
    second = sr.compile(str(path), backend="native")
    np.testing.assert_allclose(second.infer(x), ort_run(onnx.load(str(path)), {"x": x})[0], rtol=1e-5, atol=1e-5)
    assert second.model is not None and second.code.name == "rootless"  # made again on demand from the file


def test_errors_through_the_c_abi(tmp_path):
    """A run-time value the model cannot take is a ShapeError naming the node, a bad array one naming the input."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    model = make_model(nodes, [("x", np.float32, [2, 6]), ("shape", np.int64, [2])], [("y", np.float32, ["a", "b"])])
    sess = sr.compile(sr.load(model), backend="native")
    np.testing.assert_array_equal(sess.infer(random_array((2, 6)), np.array([3, 4])), random_array((2, 6)).reshape(3, 4))
    with pytest.raises(sr.ShapeError, match="Reshape"):
        sess.infer(random_array((2, 6)), np.array([5, 5]))
    with pytest.raises(sr.ShapeError, match="input 'x'"):
        sess.infer(random_array((2, 7)), np.array([2, 7]))
    with pytest.raises(sr.ShapeError, match="expected dtype float32"):
        sess.infer(random_array((2, 6), np.float64), np.array([3, 4]))


def test_outputs_sized_while_running_and_bool(tmp_path):
    """NonZero's count and a bool output sized while running are copied out of the library after the call."""
    nodes = [helper.make_node("NonZero", ["x"], ["i"]), helper.make_node("Greater", ["x", "zero"], ["g"]),
             helper.make_node("Reshape", ["g", "flat"], ["f"]), helper.make_node("Compress", ["f", "f"], ["c"])]
    model = make_model(nodes, [("x", np.float32, [3, 5])], [("i", np.int64, [2, "n"]), ("c", np.bool_, ["m"])],
                       {"zero": np.zeros(1, np.float32), "flat": np.array([-1], np.int64)})
    sess = sr.compile(sr.load(model), backend="native")
    for seed in range(3):
        x = np.where(random_array((3, 5), seed=seed) > 0.3, random_array((3, 5), seed=seed), 0).astype(np.float32)
        for got, want in zip(sess.infer(x), ort_run(model, {"x": x})):
            np.testing.assert_array_equal(got, want)


C_CALLER = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stddef.h>

int main(int argc, char **argv)
{
    (void)argc;
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    void *(*create)(const char *) = (void *(*)(const char *))dlsym(lib, "sofie_create");
    int (*infer)(void *, const size_t *, void *const *) =
        (int (*)(void *, const size_t *, void *const *))dlsym(lib, "sofie_infer");
    int (*shape)(const void *, size_t, const size_t *, size_t *) =
        (int (*)(const void *, size_t, const size_t *, size_t *))dlsym(lib, "sofie_output_shape");
    void (*destroy)(void *) = (void (*)(void *))dlsym(lib, "sofie_destroy");
    void *s = create(argv[2]);
    float x[16], y[6];
    for (int k = 0; k < 16; ++k) x[k] = (float)k / 8 - 1;
    size_t dims[1] = {2}, out_shape[2];
    void *buffers[2] = {x, y};
    if (!s || infer(s, dims, buffers) || shape(s, 0, dims, out_shape)) return 2;
    printf("%zu %zu", out_shape[0], out_shape[1]);
    for (int k = 0; k < 6; ++k) printf(" %.9g", y[k]);
    printf("\n");
    destroy(s);
    return 0;
}
"""


def test_c_abi_from_c(tmp_path):
    """The library's C ABI from a C program: no Python, no C++, no ROOT."""
    path = mlp_file(tmp_path)
    sess = sr.compile(str(path), backend="native")
    (tmp_path / "caller.c").write_text(C_CALLER)
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-o", str(tmp_path / "caller"), str(tmp_path / "caller.c"),
                    "-ldl"], check=True)
    out = subprocess.run([str(tmp_path / "caller"), str(sess.library), str(sess.weights_path)], capture_output=True,
                         text=True, check=True).stdout.split()
    x = (np.arange(16, dtype=np.float32) / 8 - 1).reshape(2, 8)
    assert [int(v) for v in out[:2]] == [2, 3]
    np.testing.assert_allclose(np.array(out[2:], np.float32).reshape(2, 3), ort_run(onnx.load(str(path)), {"x": x})[0],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("weights", ["dat", "embed"])
def test_c_abi_compiles_without_warnings(tmp_path, weights):
    """The library source (Session, its C++ interface, the C ABI) under -Wall -Wextra -Werror, for a model
    with two outputs, one sized while running, a bool one, and a profiling build."""
    nodes = [helper.make_node("NonZero", ["x"], ["i"]), helper.make_node("Greater", ["x", "w"], ["g"])]
    model = make_model(nodes, [("x", np.float32, ["N", 4])], [("i", np.int64, [2, "n"]), ("g", np.bool_, ["N", 4])],
                       {"w": np.full(4, 0.5, np.float32)})
    from sofie_rdf._root import blas_paths

    for profile in (False, True):
        sess = sr.compile(sr.load(model), backend="native", weights=weights, profile=profile)
        source = next(sess.folder.glob("*_session.cpp"))
        subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", str(sess.folder),
                        "-I", str(blas_paths()[1]), str(source)], check=True)
        x = random_array((3, 4))
        for got, want in zip(sess.infer(x), ort_run(model, {"x": x})):
            np.testing.assert_array_equal(got, want)


def test_binary_weights_of_the_cache(tmp_path):
    """A native library's Sessions read the binary twin of the .dat text (resnet18 in milliseconds, not
    seconds), with the text reader's checks: a truncated file names the tensor."""
    from sofie_rdf._native import native_session

    path = mlp_file(tmp_path)
    sess = sr.compile(str(path), backend="native")
    assert sess.weights_path.read_bytes().startswith(b"sofie-rdf binary weights 1\n")
    text = sess.folder / "rootless.dat"
    x = random_array((4, 8))
    np.testing.assert_array_equal(native_session(sess.library, text).infer(x), sess.infer(x))  # both kinds read
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(sess.weights_path.read_bytes()[:-10])
    with pytest.raises(sr.SofieError, match="truncated inside tensor"):
        native_session(sess.library, bad)
    data = sess.weights_path.read_bytes()
    first = data.split(b"\n")[1]  # "<tag> <count> <bytes>"
    tag, count, size = first.split(b" ")
    bad.write_bytes(data.replace(first, b" ".join([tag, count, size[:-1] + b"z"]), 1))
    with pytest.raises(sr.SofieError, match=f"invalid byte count '{size[:-1].decode()}z' for tensor '{tag.decode()}'"):
        native_session(sess.library, bad)
