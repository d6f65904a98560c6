"""The generated C++ itself: standalone builds, hostile names, weight files, I/O layout, memory plan, caching.

The header is a contract (DESIGN.md, "Generated C++ interface"): it must
build with a plain ``g++ -Wall -Wextra -Werror`` outside ROOT, agree with
onnxruntime, survive any string a model file may hold, read back its weights
bit for bit, and never allocate in the pointer ``infer`` once warmed up.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import onnx
import pytest
import sympy
from conftest import make_model, ort_run
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

import sofie_rdf as sr
from sofie_rdf import _root
from sofie_rdf.session import jit_session
from sofie_rdf.targets._cxx.cpp import cpp_type
from sofie_rdf.targets._cxx.names import CPP_KEYWORDS, MAX_IDENT, NameTable, comment, identifier, string_literal
from sofie_rdf.targets.cpu import GeneratedCode, write_files

GXX = shutil.which("g++")
WARNINGS = ("-Wall", "-Wextra", "-Werror")
needs_gxx = pytest.mark.skipif(GXX is None, reason="g++ not found")


# ---- models -----------------------------------------------------------------------------------------------

def mlp_model(batch, final: str = "Softmax", sizes: Sequence[int] = (6, 16, 8, 3), name: str = "mlp",
              seed: int = 0) -> onnx.ModelProto:
    """Gemm+Relu layers, a last Gemm and ``final`` (Softmax or Sigmoid); ``batch`` an int or a dim name."""
    rng = np.random.default_rng(seed)
    nodes, inits, cur = [], {}, "x"
    layers = len(sizes) - 1
    for i in range(layers):
        inits[f"W{i}"] = (rng.standard_normal((sizes[i], sizes[i + 1])) / math.sqrt(sizes[i])).astype(np.float32)
        inits[f"b{i}"] = rng.standard_normal(sizes[i + 1]).astype(np.float32)
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"b{i}"], [f"gemm{i}"], name=f"fc{i}"))
        cur = f"gemm{i}"
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [cur], [f"relu{i}"], name=f"act{i}"))
            cur = f"relu{i}"
    attrs = {"axis": -1} if final == "Softmax" else {}
    nodes.append(helper.make_node(final, [cur], ["y"], name="head", **attrs))
    return make_model(nodes, [("x", np.float32, [batch, sizes[0]])], [("y", np.float32, [batch, sizes[-1]])],
                      inits, name=name)


# ---- standalone g++ builds -----------------------------------------------------------------------------------

_MAIN = """\
#include "{header}"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <new>
#include <tuple>
#include <type_traits>
#include <vector>

// Heap allocations are counted (while g_counting is set) by the operator new of counting_new.cpp.
extern long g_allocs;
extern bool g_counting;

template <typename T>
static std::vector<T> load(const char *path, size_t n)
{{
   std::vector<T> v(n);
   std::ifstream f(path, std::ios::binary);
   if (!f.read(reinterpret_cast<char *>(v.data()), static_cast<std::streamsize>(n * sizeof(T)))) {{
      std::fprintf(stderr, "cannot read %s\\n", path);
      std::exit(2);
   }}
   return v;
}}

template <typename T>
static void save(const char *path, const std::vector<T> &v)
{{
   std::ofstream f(path, std::ios::binary);
   f.write(reinterpret_cast<const char *>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}}

int main()
{{
   try {{
      {session}
{loads}
      auto y = s.infer({vec_args});
      static_assert(std::is_same_v<decltype(y), {ret_type}>, "infer returns the documented type");
{save_vec}
{out_bufs}
      s.infer({ptr_args});
      g_counting = true;
      for (int r = 0; r < 5; ++r)
         s.infer({ptr_args});
      g_counting = false;
{save_ptr}
      std::printf("allocations %ld\\n", g_allocs);
{prints}
   }} catch (const std::exception &e) {{
      std::fprintf(stderr, "error: %s\\n", e.what());
      return 1;
   }}
   return 0;
}}
"""


# Global operator new replaced in its own translation unit: g++ 12 warns (-Wmismatched-new-delete) when it
# sees malloc/free behind new/delete inlined into the same file as their callers.
_COUNTING_NEW = """\
#include <cstdlib>
#include <new>

long g_allocs = 0;
bool g_counting = false;

void *operator new(std::size_t n)
{
   if (g_counting)
      ++g_allocs;
   if (void *p = std::malloc(n ? n : 1))
      return p;
   throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
"""


def _size(shape: tuple, dims: dict[str, int]) -> int:
    """Concrete element count of a (possibly symbolic) shape."""
    subs = {sympy.Symbol(k, integer=True, nonnegative=True): v for k, v in dims.items()}
    return int(math.prod(int(sympy.sympify(d).subs(subs)) for d in shape))


def _shape(shape: tuple, dims: dict[str, int]) -> tuple[int, ...]:
    subs = {sympy.Symbol(k, integer=True, nonnegative=True): v for k, v in dims.items()}
    return tuple(int(sympy.sympify(d).subs(subs)) for d in shape)


def write_main(folder: Path, code: GeneratedCode, feeds: Sequence[np.ndarray], dims: dict[str, int],
               default_ctor: bool = False) -> Path:
    """A main.cpp calling both ``infer`` overloads on ``feeds`` (saved next to it) and saving the outputs."""
    if code.weights_mode == "dat" and not default_ctor:
        session = f'{code.namespace}::Session s("{code.name}.dat");'
    else:
        session = f"{code.namespace}::Session s;"
    loads = []
    for k, ((_, t), a) in enumerate(zip(code.inputs, feeds)):
        np.ascontiguousarray(a, dtype=t.dtype).tofile(folder / f"in{k}.bin")
        loads.append(f'      auto x{k} = load<{cpp_type(t.dtype)}>("in{k}.bin", {a.size});')
    dim_args = [str(dims[orig]) for orig, _ in code.symbols]
    in_args = [f"x{k}.data()" for k in range(len(feeds))]
    types = [f"std::vector<{cpp_type(t.dtype)}>" for _, t in code.outputs]
    ret_type = types[0] if len(types) == 1 else f"std::tuple<{', '.join(types)}>"
    save_vec, out_bufs, save_ptr, prints = [], [], [], []
    for k, (_, t) in enumerate(code.outputs):
        got = "y" if len(types) == 1 else f"std::get<{k}>(y)"
        save_vec.append(f'      save("vec{k}.bin", {got});')
        out_bufs.append(f"      {types[k]} o{k}({_size(t.shape, dims)});")
        save_ptr.append(f'      save("ptr{k}.bin", o{k});')
        prints.append(f'      for (auto v : o{k}) std::printf("%.9g ", static_cast<double>(v));')
        prints.append('      std::printf("\\n");')
    text = _MAIN.format(
        header=f"{code.name}.hxx", session=session, loads="\n".join(loads), vec_args=", ".join(dim_args + in_args),
        ret_type=ret_type, save_vec="\n".join(save_vec), out_bufs="\n".join(out_bufs),
        ptr_args=", ".join(dim_args + in_args + [f"o{k}.data()" for k in range(len(types))]),
        save_ptr="\n".join(save_ptr), prints="\n".join(prints))
    path = folder / "main.cpp"
    path.write_text(text)
    return path


def blas_flags() -> list[str]:
    import scipy_openblas32 as sob

    lib = sob.get_lib_dir()
    return ["-I", sob.get_include_dir(), "-L", lib, "-lscipy_openblas", f"-Wl,-rpath,{lib}"]


def build_and_run(folder: Path, code: GeneratedCode, feeds: Sequence[np.ndarray], dims: Optional[dict] = None,
                  link: Optional[list[str]] = None, extra_sources: Sequence[Path] = (), default_ctor: bool = False
                  ) -> tuple[list[np.ndarray], list[np.ndarray], int, str]:
    """g++ -Werror build of ``code`` with a generated main; returns (vector outputs, pointer outputs, allocs, stdout)."""
    dims = dims or {}
    write_files(code, folder)
    main = write_main(folder, code, feeds, dims, default_ctor)
    exe = folder / "main"
    counting = folder / "counting_new.cpp"
    counting.write_text(_COUNTING_NEW)
    cmd = [GXX, "-std=c++17", "-O2", *WARNINGS, "-I", str(folder), str(main), str(counting), *map(str, extra_sources),
           "-o", str(exe), *(blas_flags() if link is None else link)]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, f"g++ failed:\n{' '.join(cmd)}\n{built.stderr[-6000:]}"
    ran = subprocess.run([str(exe)], capture_output=True, text=True, cwd=folder, timeout=60)
    assert ran.returncode == 0, f"main failed ({ran.returncode}): {ran.stderr}"
    vec, ptr = [], []
    for k, (_, t) in enumerate(code.outputs):
        shape = _shape(t.shape, dims)
        vec.append(np.fromfile(folder / f"vec{k}.bin", dtype=t.dtype).reshape(shape))
        ptr.append(np.fromfile(folder / f"ptr{k}.bin", dtype=t.dtype).reshape(shape))
    allocs = int(re.search(r"allocations (\d+)", ran.stdout).group(1))
    return vec, ptr, allocs, ran.stdout


def assert_matches(ours: Sequence[np.ndarray], ref: Sequence[np.ndarray], rtol: float = 1e-4,
                   atol: float = 1e-6) -> None:
    assert len(ours) == len(ref)
    for k, (a, b) in enumerate(zip(ours, ref)):
        assert a.shape == b.shape, f"output {k}: shape {a.shape} != {b.shape}"
        assert a.dtype == b.dtype, f"output {k}: dtype {a.dtype} != {b.dtype}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"output {k}")


@needs_gxx
@pytest.mark.parametrize("weights", ["dat", "embed"])
@pytest.mark.parametrize("batch,final", [(4, "Softmax"), ("N", "Sigmoid")])
def test_mlp_standalone_gxx(tmp_path, weights, batch, final):
    """Fixed and symbolic batch, file and embedded weights: plain g++ build matches onnxruntime, no allocation."""
    onnx_model = mlp_model(batch, final, name=f"mlp_{weights}")
    rows = 4 if isinstance(batch, int) else 7
    x = np.random.default_rng(1).standard_normal((rows, 6)).astype(np.float32)
    ref = ort_run(onnx_model, {"x": x})
    model = sr.load(onnx_model, name="Mlp")
    code = model.code(weights=weights)
    assert code.namespace == "TMVA_SOFIE_Mlp"
    if isinstance(batch, str):
        assert [orig for orig, _ in code.symbols] == ["N"]
    vec, ptr, allocs, stdout = build_and_run(tmp_path, code, [x], {"N": rows})
    assert_matches(vec, ref)
    np.testing.assert_array_equal(ptr[0], vec[0])
    assert allocs == 0, "the pointer infer allocated on repeated calls"
    printed = np.array(stdout.splitlines()[1].split(), dtype=np.float64)
    np.testing.assert_allclose(printed, ref[0].ravel(), rtol=1e-6)
    if weights == "embed":
        assert not (tmp_path / "Mlp.dat").exists()


@needs_gxx
def test_weights_start_on_cache_lines(tmp_path):
    """Every weight the Session reads starts on a 64-byte line (detail::WeightVector), whatever malloc would give:
    from malloc a large one starts 16 bytes past a page, and AVX-512 loads of packed weights then straddle two
    lines (DeepJet's LSTM at batch 1 took 1.6x the time in one process and not another).  Embedded weights are
    declared alignas(64)."""
    rng = np.random.default_rng(3)
    sizes = [(5, 3), (7, 5), (300, 7), (11, 300), (2, 11)]  # from the heap
    sizes.append((40000, 2))  # 320 kB: malloc's mmap (16 bytes past a page)
    inits, nodes, last = {}, [], "x"
    for k, (rows, cols) in enumerate(sizes):
        inits[f"w{k}"] = rng.standard_normal((cols, rows)).astype(np.float32)
        nodes.append(helper.make_node("MatMul", [last, f"w{k}"], [f"h{k}"]))
        last = f"h{k}"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    code = sr.load(make_model(nodes, [("x", np.float32, [1, 3])], [("y", np.float32, None)], inits),
                   name="Lines").code(weights="dat")
    members = re.findall(r"detail::WeightVector<float> (f\w+);", code.header)
    assert len(members) == len(sizes)
    write_files(code, tmp_path)
    checks = "\n".join(f'   std::printf("%d\\n", int(reinterpret_cast<std::uintptr_t>(s.{m}.data()) % 64));'
                       for m in members)
    (tmp_path / "main.cpp").write_text(f'#include "Lines.hxx"\n#include <cstdio>\nint main() {{\n'
                                       f'   {code.namespace}::Session s("Lines.dat");\n{checks}\n}}\n')
    subprocess.run([GXX, "-std=c++17", "-O1", "-I", str(tmp_path), str(tmp_path / "main.cpp"), "-o",
                    str(tmp_path / "main"), *blas_flags()], check=True, capture_output=True)
    ran = subprocess.run([str(tmp_path / "main")], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert ran.stdout.split() == ["0"] * len(sizes)
    embedded = sr.load(make_model(nodes, [("x", np.float32, [1, 3])], [("y", np.float32, None)], inits),
                       name="Lines").code(weights="embed").header
    assert len(re.findall(r"alignas\(64\) static const float kWeight_", embedded)) == len(sizes)


def _system_blas() -> Optional[Path]:
    """A reference-BLAS-style library (plain ``sgemm_``) registered with ldconfig, if any."""
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in listing.splitlines():
        m = re.search(r"(lib(?:blas|openblas|cblas)\S*\.so\S*) .*=> (\S+)", line)
        if m and "64_" not in m.group(1):
            return Path(m.group(2))
    return None


@needs_gxx
def test_mlp_plain_blas_prefix(tmp_path):
    """``-DSOFIE_BLAS_PREFIX=`` maps the kernels to a plain ``sgemm_`` of a system BLAS."""
    lib = _system_blas()
    if lib is None:
        pytest.skip("no system BLAS registered with ldconfig (ldconfig -p | grep blas is empty)")
    onnx_model = mlp_model(3)
    x = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    code = sr.load(onnx_model, name="MlpRef").code()
    link = ["-DSOFIE_BLAS_PREFIX=", str(lib), f"-Wl,-rpath,{lib.parent}"]
    vec, ptr, _, _ = build_and_run(tmp_path, code, [x], link=link)
    assert_matches(vec, ort_run(onnx_model, {"x": x}))


_NAIVE_BLAS = """\
// A minimal Fortran-interface BLAS (column-major), standing in for a vendor library.
template <typename T>
static void naive_gemm(const char *ta, const char *tb, const int *m, const int *n, const int *k, const T *alpha,
                       const T *a, const int *lda, const T *b, const int *ldb, const T *beta, T *c, const int *ldc)
{
   for (int j = 0; j < *n; ++j)
      for (int i = 0; i < *m; ++i) {
         T sum = 0;
         for (int p = 0; p < *k; ++p) {
            const T av = *ta == 'N' ? a[i + p * *lda] : a[p + i * *lda];
            const T bv = *tb == 'N' ? b[p + j * *ldb] : b[j + p * *ldb];
            sum += av * bv;
         }
         c[i + j * *ldc] = *alpha * sum + (*beta == T(0) ? T(0) : *beta * c[i + j * *ldc]);
      }
}
extern "C" void sgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const float *alpha,
                       const float *a, const int *lda, const float *b, const int *ldb, const float *beta, float *c,
                       const int *ldc)
{
   naive_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
extern "C" void dgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const double *alpha,
                       const double *a, const int *lda, const double *b, const int *ldb, const double *beta,
                       double *c, const int *ldc)
{
   naive_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
"""


@needs_gxx
def test_mlp_blas_prefix_macro_with_own_sgemm(tmp_path):
    """Without a system BLAS the prefix macro is still exercised: an empty prefix binds to a plain ``sgemm_``."""
    onnx_model = mlp_model("batch", "Sigmoid", sizes=(5, 9, 4, 2))
    x = np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32)
    code = sr.load(onnx_model, name="MlpOwnBlas").code(weights="embed")
    blas = tmp_path / "naive_blas.cpp"
    blas.write_text(_NAIVE_BLAS)
    vec, _, _, _ = build_and_run(tmp_path, code, [x], {"batch": 6}, link=["-DSOFIE_BLAS_PREFIX="],
                                 extra_sources=[blas])
    assert_matches(vec, ort_run(onnx_model, {"x": x}))


# ---- hostile names ------------------------------------------------------------------------------------------

LONG = "L" + "ong_name." * 400
HOSTILE_GRAPH = 'graph "*/ /* \n#include <x>\r\n??/\\'
HOSTILE = {
    "ab_dot": "a.b", "ab_under": "a_b", "ab_dash": "a-b",
    "s1": '1st"*/\\\n??/', "s2": "namespace", "cls": "class", "uni": "é∂ unicode ✓",
    "W": 'W"*/ /*\\', "B": "#include <x>", "out0": "out\n#include <cstdio>\\", "out1": LONG,
    "out2": "??=??/", "delete": "delete", "dup_a": "dup.", "dup_b": "dup-",
}
# Dim names: with spaces, a keyword, and names of locals the generated code declares.
HOSTILE_DIMS = ("c_shape", "batch size", "int", "output0", "arena_float32", "shape", "fArena_float32")


def hostile_model() -> onnx.ModelProto:
    """Every name a C++ emitter could trip on, in tensors, nodes, dims, weights and the graph name."""
    h = HOSTILE
    rng = np.random.default_rng(7)
    node_names = ['node "*/ /*\n#include <x>', "int\r\n\\", "??/", "delete", "", "class", "a.b", "a_b", "a-b"]
    nodes = [
        helper.make_node("Add", [h["ab_dot"], h["ab_under"]], [h["s1"]], name=node_names[0]),
        helper.make_node("Sub", [h["s1"], h["ab_dash"]], [h["s2"]], name=node_names[1]),
        helper.make_node("Mul", [h["s1"], h["ab_dash"]], [h["cls"]], name=node_names[2]),
        helper.make_node("Gemm", [h["s2"], h["W"], h["B"]], [h["uni"]], name=node_names[3], transB=1),
        helper.make_node("Relu", [h["uni"]], [h["out0"]], name=node_names[4]),
        helper.make_node("Neg", [h["delete"]], [h["out1"]], name=node_names[5]),
        helper.make_node("Add", [h["cls"], h["s2"]], [h["dup_a"]], name=node_names[6]),
        helper.make_node("Mul", [h["dup_a"], h["dup_a"]], [h["dup_b"]], name=node_names[7]),
        helper.make_node("Sub", [h["dup_b"], h["s1"]], [h["out2"]], name=node_names[8]),
    ]
    d0, rest = HOSTILE_DIMS[0], list(HOSTILE_DIMS[1:])
    inputs = [(h["ab_dot"], np.float32, [d0, 4]), (h["ab_under"], np.float32, [d0, 4]),
              (h["ab_dash"], np.float32, [d0, 4]), (h["delete"], np.float32, rest)]
    outputs = [(h["out0"], np.float32, [d0, 3]), (h["out1"], np.float32, rest), (h["out2"], np.float32, [d0, 4])]
    inits = {h["W"]: rng.standard_normal((3, 4)).astype(np.float32), h["B"]: rng.standard_normal(3).astype(np.float32)}
    model = make_model(nodes, inputs, outputs, inits, name=HOSTILE_GRAPH)
    model.producer_name = 'producer */ "\n#define int float\\'
    return model


def hostile_feeds() -> tuple[list[np.ndarray], dict[str, int]]:
    rng = np.random.default_rng(8)
    dims = {"c_shape": 3, "batch size": 2, "int": 3, "output0": 1, "arena_float32": 2, "shape": 5, "fArena_float32": 2}
    feeds = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3)]
    feeds.append(rng.standard_normal([dims[d] for d in HOSTILE_DIMS[1:]]).astype(np.float32))
    return feeds, dims


def _strip_comments(header: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in header.splitlines())


def check_header_is_clean(header: str) -> None:
    """No model string reaches the header except through sanitised ``//`` comments."""
    assert header.isascii()
    assert "\r" not in header
    assert "*/" not in header and "/*" not in header
    assert "??" not in header, "trigraph-like sequence"
    for line in header.splitlines():
        assert not line.endswith("\\"), f"line continuation: {line!r}"
        if line.lstrip().startswith("#"):
            directive = (r"#(include <[a-z_]+>|(ifndef|define|undef|endif //) (TMVA_)?SOFIE_\w+.*|endif|if\w* .*"
                         r"|elif (defined\(__\w+__\)( && defined\(__\w+__\))*|SOFIE_\w+)|else|pragma GCC unroll \d+"
                         r"|pragma GCC (push|pop)_options|pragma GCC optimize\(\"O3\"\)"
                         r"|pragma GCC target\(\"[a-z0-9,]+\"\)"
                         r"|pragma clang attribute pop|pragma cling optimize\(3\)"
                         r"|pragma clang attribute push\(__attribute__\(\((target\(\"[a-z0-9,]+\"\)|always_inline)\)\), "
                         r"apply_to = function\))")
            assert re.fullmatch(directive, line.strip()), f"unexpected directive {line!r}"
        if "//" in line:
            assert "\\" not in line.split("//", 1)[1], f"backslash in comment: {line!r}"
    code = _strip_comments(header)
    for name in [*HOSTILE.values(), HOSTILE_GRAPH]:
        if not re.fullmatch(r"\w+", name):
            assert name not in code, f"raw model string {name!r} in the code"


def test_hostile_names_header_is_clean():
    model = sr.load(hostile_model())
    assert re.fullmatch(r"[A-Za-z_]\w*", model.name)
    for weights in ("dat", "embed"):
        code = model.code(weights=weights)
        check_header_is_clean(code.header)
        # Weight tags in the .dat file are identifiers too: one token each, no whitespace.
        assert all(re.fullmatch(r"[A-Za-z_]\w*", tag) for tag in code.weights)
    idents = [ident for _, ident in model.code().symbols]
    assert len(set(idents)) == len(idents) == len(HOSTILE_DIMS)
    assert [orig for orig, _ in model.code().symbols] == list(HOSTILE_DIMS)


@pytest.mark.parametrize("backend", ["jit", "native"])
def test_hostile_names_compile_matches_onnxruntime(backend):
    onnx_model = hostile_model()
    feeds, _ = hostile_feeds()
    ref = ort_run(onnx_model, {i.name: a for i, a in zip(onnx_model.graph.input, feeds)})
    sess = sr.compile(sr.load(onnx_model), backend=backend, **({"flags": ["-O1"]} if backend == "native" else {}))
    assert [i.name for i in sess.inputs] == [HOSTILE[k] for k in ("ab_dot", "ab_under", "ab_dash", "delete")]
    assert [o.name for o in sess.outputs] == [HOSTILE[k] for k in ("out0", "out1", "out2")]
    assert_matches(list(sess.infer(*feeds)), ref)


@needs_gxx
def test_hostile_names_gxx_matches_onnxruntime(tmp_path):
    onnx_model = hostile_model()
    feeds, dims = hostile_feeds()
    ref = ort_run(onnx_model, {i.name: a for i, a in zip(onnx_model.graph.input, feeds)})
    for weights in ("dat", "embed"):
        folder = tmp_path / weights
        folder.mkdir()
        code = sr.load(onnx_model).code(weights=weights)
        vec, ptr, allocs, _ = build_and_run(folder, code, feeds, dims)
        assert_matches(vec, ref)
        assert_matches(ptr, ref)
        assert allocs == 0


# ---- weight files -------------------------------------------------------------------------------------------

def _special_values(dtype) -> np.ndarray:
    """Values a text weight format gets wrong first: signed zero, inf, nan, extremes, denormals."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(11)
    if dtype.kind == "f":
        fi = np.finfo(dtype)
        tiny_sub = np.nextafter(dtype.type(0), dtype.type(1))
        special = [0.0, -0.0, np.inf, -np.inf, np.nan, fi.max, fi.min, fi.tiny, -fi.tiny, tiny_sub, -tiny_sub,
                   fi.tiny - tiny_sub, fi.eps, 1 / 3, np.pi, np.nextafter(dtype.type(1), dtype.type(2)), 1e-40]
        values = np.array(special, dtype=dtype)
        return np.concatenate([values, (rng.standard_normal(15) * 10.0 ** rng.integers(-30, 30, 15)).astype(dtype)])
    ii = np.iinfo(dtype)
    special = [0, 1, -1, ii.max, ii.min, ii.max - 1, ii.min + 1, 2**53 + 1, -(2**53) - 1]
    special = [v for v in special if ii.min <= v <= ii.max]
    return np.concatenate([np.array(special, dtype=dtype), rng.integers(ii.min, ii.max, 7, dtype=dtype)])


WEIGHT_DTYPES = (np.float32, np.float64, np.int64, np.int32, np.uint8)


def weights_model() -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """out_k = z_k + W_k (z_k all -0.0 or 0, which leaves every W value, -0.0 included, intact); last: Identity(W0)."""
    nodes, inputs, outputs, inits, expected = [], [], [], {}, []
    for k, dt in enumerate(WEIGHT_DTYPES):
        w = _special_values(dt)
        inits[f"W{k}"] = w
        inputs.append((f"z{k}", dt, [w.size]))
        outputs.append((f"out{k}", dt, [w.size]))
        nodes.append(helper.make_node("Add", [f"z{k}", f"W{k}"], [f"out{k}"]))
        expected.append(w)
    nodes.append(helper.make_node("Identity", ["W0"], ["copy0"]))
    outputs.append(("copy0", np.float32, [expected[0].size]))
    expected.append(expected[0])
    return make_model(nodes, inputs, outputs, inits, name="weights"), expected


def zero_feeds(expected: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.full(w.size, -0.0 if w.dtype.kind == "f" else 0, dtype=w.dtype) for w in expected[:len(WEIGHT_DTYPES)]]


def assert_bitwise_equal(got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> None:
    """Equal bit for bit (NaN compared as NaN: its payload is not part of the format)."""
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(got, expected)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"output {k}"
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"output {k}: nan positions")
            keep = ~np.isnan(b)
            a, b = a[keep], b[keep]
        np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"), err_msg=f"output {k}")


def test_weights_round_trip_jit():
    onnx_model, expected = weights_model()
    sess = sr.compile(sr.load(onnx_model, name="WeightsRoundTrip"), backend="jit")
    assert sess.weights_path is not None and sess.weights_path.suffix == ".dat"
    assert_bitwise_equal(list(sess.infer(*zero_feeds(expected))), expected)


@needs_gxx
@pytest.mark.parametrize("weights", ["dat", "embed"])
def test_weights_round_trip_gxx(tmp_path, weights):
    onnx_model, expected = weights_model()
    code = sr.load(onnx_model, name="WeightsGxx").code(weights=weights)
    vec, ptr, _, _ = build_and_run(tmp_path, code, zero_feeds(expected), link=[])
    assert_bitwise_equal(vec, expected)
    assert_bitwise_equal(ptr, expected)


def test_bad_weight_files_raise_naming_the_file(tmp_path):
    onnx_model, expected = weights_model()
    sess = sr.compile(sr.load(onnx_model, name="WeightsBad"), backend="jit")
    good = sess.weights_path.read_text()

    def open_with(path: Path) -> None:
        jit_session(sess.code, sess.namespace, path, None)

    missing = tmp_path / "missing.dat"
    with pytest.raises(sr.SofieError, match=re.escape(str(missing))):
        open_with(missing)
    for fraction in (0.1, 0.5, 0.9, 0.99):   # inside the first, a middle and the last tensor
        truncated = tmp_path / f"truncated{fraction}.dat"
        truncated.write_text(good[: good.rfind(" ", 0, int(len(good) * fraction))])   # cut between values
        with pytest.raises(sr.SofieError, match=re.escape(str(truncated)) + ".*truncated"):
            open_with(truncated)
    no_values = tmp_path / "no_values.dat"
    no_values.write_text(good.split("\n")[0] + "\n")
    with pytest.raises(sr.SofieError, match=re.escape(str(no_values))):
        open_with(no_values)
    other = tmp_path / "other.dat"   # same tags (W0...), other sizes
    other.write_text(sr.compile(sr.load(mlp_model(2), name="OtherModel"), backend="jit").weights_path.read_text())
    with pytest.raises(sr.SofieError, match=re.escape(str(other)) + ".*values for tensor"):
        open_with(other)
    other.write_text(write_files(sr.load(hostile_model()).code(), tmp_path / "hostile").weights.read_text())
    with pytest.raises(sr.SofieError, match=re.escape(str(other)) + ".*another model"):
        open_with(other)
    with pytest.raises(sr.SofieError) as info:
        open_with(missing)
    assert "TypeError" not in str(info.value) and "cannot open weights file" in str(info.value)
    garbage = tmp_path / "garbage.dat"
    garbage.write_text(good.replace("inf", "infinite", 1))
    with pytest.raises(sr.SofieError, match=re.escape(str(garbage)) + ".*invalid value"):
        open_with(garbage)
    last_tag = re.findall(r"^(\w+) \d+$", good, re.MULTILINE)[-1]
    wrong_count = tmp_path / "wrong_count.dat"
    wrong_count.write_text(re.sub(rf"^{last_tag} \d+$", f"{last_tag} 3", good, flags=re.MULTILINE))
    with pytest.raises(sr.SofieError, match=re.escape(str(wrong_count)) + ".*gives 3 values"):
        open_with(wrong_count)
    wrong_count.write_text(re.sub(rf"^{last_tag} \d+$", f"{last_tag} 3x", good, flags=re.MULTILINE))
    with pytest.raises(sr.SofieError, match=re.escape(str(wrong_count)) + ".*invalid count of values '3x'"):
        open_with(wrong_count)
    # The good file still works after all that.
    assert_bitwise_equal(list(open_with_ok(sess, sess.weights_path).infer(*zero_feeds(expected))), expected)


def open_with_ok(sess: sr.Session, path: Path) -> sr.Session:
    return jit_session(sess.code, sess.namespace, path, None)


# ---- several inputs and outputs ---------------------------------------------------------------------------

def multi_io_model() -> onnx.ModelProto:
    """2 inputs; outputs: an intermediate also consumed later, a Reshape view, an Identity of an input,
    a plain result, and the first output again."""
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Mul", ["s", "b"], ["t"]),
        helper.make_node("Reshape", ["t", "flat"], ["r"]),
        helper.make_node("Identity", ["a"], ["ia"]),
        helper.make_node("Sub", ["t", "a"], ["u"]),
    ]
    outs = [("s", np.float32, ["N", 4]), ("r", np.float32, ["M"]), ("ia", np.float32, ["N", 4]),
            ("u", np.float32, ["N", 4]), ("s", np.float32, ["N", 4])]
    return make_model(nodes, [("a", np.float32, ["N", 4]), ("b", np.float32, ["N", 4])], outs,
                      {"flat": np.array([-1], dtype=np.int64)}, name="multi_io")


def multi_io_reference(a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    s = a + b
    t = s * b
    return [s, t.reshape(-1), a.copy(), t - a, s]


def test_multi_io_jit():
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    sess = sr.compile(sr.load(multi_io_model(), name="MultiIO"))
    assert [o.name for o in sess.outputs] == ["s", "r", "ia", "u", "s"]
    got = sess.infer(a, b)
    assert isinstance(got, tuple) and len(got) == 5
    assert_matches(list(got), multi_io_reference(a, b))
    assert_matches(list(got), ort_run(multi_io_model(), {"a": a, "b": b}))
    assert got[0] is not got[4]
    # Another batch size through the same Session: the arena grows, results stay right.
    a2, b2 = (rng.standard_normal((9, 4)).astype(np.float32) for _ in range(2))
    assert_matches(list(sess.infer(a2, b2)), multi_io_reference(a2, b2))
    assert_matches(list(sess.infer(a, b)), multi_io_reference(a, b))


@needs_gxx
def test_multi_io_gxx_returns_tuple(tmp_path):
    """The vector overload returns std::tuple (static_assert in main.cpp), the pointer one fills 5 buffers."""
    rng = np.random.default_rng(6)
    a, b = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    code = sr.load(multi_io_model(), name="MultiIO").code()
    assert "std::tuple<std::vector<float>, std::vector<float>, std::vector<float>, std::vector<float>, " \
           "std::vector<float>> infer(" in code.header
    vec, ptr, allocs, _ = build_and_run(tmp_path, code, [a, b], {"N": 3}, link=[])
    assert_matches(vec, ort_run(multi_io_model(), {"a": a, "b": b}))
    assert_matches(ptr, multi_io_reference(a, b))
    assert allocs == 0


# ---- memory plan --------------------------------------------------------------------------------------------

def test_memory_plan_reuses_slots_deep_mlp():
    """A 12-layer MLP needs two live intermediates at a time: the arena is a fraction of their sum."""
    sizes = (10,) + (32,) * 11 + (4,)
    onnx_model = mlp_model("N", "Sigmoid", sizes=sizes, name="deep")
    model = sr.load(onnx_model, name="Deep")
    planned = model.planned().model
    plan = model.planned().memory
    f32 = np.dtype(np.float32)
    n = sympy.Symbol("N", integer=True, nonnegative=True)
    arena = [name for name, s in plan.storage.items() if s.kind == "arena"]
    assert len(arena) >= 10  # one intermediate per layer: each Gemm + Sigmoid pair is fused into one node
    total = sum((planned.tensors[name].size for name in arena), sympy.Integer(0))
    for batch in (1, 64, 1000):
        size = int(sympy.sympify(plan.arenas[f32]).subs(n, batch))
        assert size * 5 < int(sympy.sympify(total).subs(n, batch)), (size, total)
        assert size <= 2 * 32 * batch + 2 * 16  # two widest layers, plus slot alignment
    assert len({s.offset for s in plan.storage.values() if s.kind == "arena"}) <= 3
    # Same with a fixed batch: integer sizes, aligned slots.
    fixed_plan = sr.load(mlp_model(8, sizes=sizes), name="DeepFixed").planned().memory
    assert isinstance(fixed_plan.arenas[f32], int) and fixed_plan.arenas[f32] <= 2 * 32 * 8
    # And the reuse keeps the results right.
    x = np.random.default_rng(9).standard_normal((64, 10)).astype(np.float32)
    assert_matches([sr.compile(model).infer(x)], ort_run(onnx_model, {"x": x}))


# ---- namespaces and caching ---------------------------------------------------------------------------------

def test_two_models_same_name_coexist():
    a_onnx, b_onnx = mlp_model("N", seed=1), mlp_model("N", "Sigmoid", sizes=(6, 5, 3), seed=2)
    x = np.random.default_rng(10).standard_normal((4, 6)).astype(np.float32)
    sess_a = sr.compile(sr.load(a_onnx, name="Twin"))
    sess_b = sr.compile(sr.load(b_onnx, name="Twin"))
    assert sess_a.name == sess_b.name == "Twin"
    assert sess_a.namespace != sess_b.namespace
    assert sess_a.namespace.startswith("TMVA_SOFIE_Twin") and sess_b.namespace.startswith("TMVA_SOFIE_Twin")
    ref_a, ref_b = ort_run(a_onnx, {"x": x})[0], ort_run(b_onnx, {"x": x})[0]
    assert_matches([sess_b.infer(x)], [ref_b])
    assert_matches([sess_a.infer(x)], [ref_a])   # the first still works after the second was declared
    native_a = sr.compile(sr.load(a_onnx, name="Twin"), backend="native", flags=["-O1"])
    native_b = sr.compile(sr.load(b_onnx, name="Twin"), backend="native", flags=["-O1"])
    assert len({sess_a.namespace, sess_b.namespace, native_a.namespace, native_b.namespace}) == 4
    assert_matches([native_a.infer(x), native_b.infer(x)], [ref_a, ref_b])


def test_same_model_compiled_once(monkeypatch):
    onnx_model = mlp_model("N", seed=3, name="once")
    x = np.random.default_rng(12).standard_normal((2, 6)).astype(np.float32)
    first = sr.compile(sr.load(onnx_model, name="CompiledOnce"))
    new_declarations: list[str] = []
    original = _root.declare

    def counting_declare(key: str, code: str) -> bool:
        fresh = original(key, code)
        if fresh:
            new_declarations.append(key)
        return fresh

    monkeypatch.setattr(_root, "declare", counting_declare)
    declared_before = len(_root._declared)
    second = sr.compile(sr.load(onnx_model, name="CompiledOnce"))   # a fresh Model of the same file
    assert second.namespace == first.namespace == "TMVA_SOFIE_CompiledOnce"
    assert new_declarations == [] and len(_root._declared) == declared_before
    np.testing.assert_array_equal(first.infer(x), second.infer(x))

    # Native: the second compile finds the library in the cache and runs no compiler.
    native = sr.compile(sr.load(onnx_model, name="CompiledOnce"), backend="native", flags=["-O1"])

    def no_compiler(*args, **kwargs):
        raise AssertionError(f"compiler called again: {args}")

    monkeypatch.setattr("sofie_rdf.targets.cpu.native.subprocess.run", no_compiler)
    again = sr.compile(sr.load(onnx_model, name="CompiledOnce"), backend="native", flags=["-O1"])
    assert again.namespace == native.namespace != first.namespace
    np.testing.assert_allclose(again.infer(x), first.infer(x), rtol=1e-5)   # another compiler: rounding


@needs_gxx
def test_hostile_weights_file_default(tmp_path):
    """The default weights file name is a C++ string literal, escaped: quotes, backslashes, ``??=``, newline."""
    onnx_model = mlp_model(2, seed=4)
    x = np.random.default_rng(13).standard_normal((2, 6)).astype(np.float32)
    odd = 'we"ird\\ ??= ??) *\n name.dat'   # no "/": it is a file name
    code = sr.load(onnx_model, name="OddFile").code(weights_file=odd)
    check_header_is_clean(code.header)
    assert odd not in code.header
    (tmp_path / odd).write_text(write_files(code, tmp_path / "dat").weights.read_text())
    vec, _, _, _ = build_and_run(tmp_path, code, [x], default_ctor=True)   # Session s; reads `odd`
    assert_matches(vec, ort_run(onnx_model, {"x": x}))


# ---- the naming rules themselves ----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["", "tensor_"]))
def test_identifier_rules(text, prefix):
    """Identifiers: valid, no keyword or macro shape, and never ending in ``_`` (the emitter's locals do)."""
    ident = identifier(text, prefix)
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", ident)
    assert not ident.endswith("_") and "__" not in ident
    assert ident not in CPP_KEYWORDS
    assert len(ident) <= len(prefix) + MAX_IDENT + 3
    if not prefix:
        assert not re.fullmatch(r"[A-Z][A-Z0-9_]+", ident)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_comment_and_string_literal_rules(text):
    c = comment(text)
    assert c.isascii() and c.isprintable()
    assert "\\" not in c and "??" not in c and "/*" not in c and "*/" not in c
    lit = string_literal(text)
    assert lit.isascii() and lit.isprintable() and "??" not in lit and "*" not in lit
    assert lit.startswith('"') and lit.endswith('"')
    # C++ reads back the original bytes: undo the escapes the way a compiler does.
    body = re.sub(r'\\([0-7]{3}|\\|")', lambda m: m.group(1) if len(m.group(1)) == 1 else chr(int(m.group(1), 8)),
                  lit[1:-1])
    assert body.encode("latin-1") == text.encode("utf-8")


def test_name_table_keeps_punctuation_variants_apart():
    table = NameTable(reserved_prefixes=("fArena_",))
    idents = [table.get(n, "tensor_") for n in ("a.b", "a_b", "a-b", "a b", "a__b")]
    assert len(set(idents)) == 5
    assert table.get("a.b", "tensor_") == idents[0]          # stable
    assert table.get("a.b", kind="dim") not in idents        # kinds do not share identifiers
    assert table.get("fArena_float32", kind="dim").startswith("v_")
