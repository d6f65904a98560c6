"""The CUDA target without a GPU: planning and emitter binding, launch configurations, the generated source, the
refusals, the device-array checks of the Python binding, and nvcc compiling one model per family (skipped where
the ``[cuda]`` extra is not installed).  Numerical checks (on a GPU, or the same code in a host emulation of
CUDA) are in ``tests/test_cuda_numerics.py``."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import resources

import cuda_models
import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import helper

import sofie_rdf as sr
from sofie_rdf._cuda import check_device_arrays, cuda_library, is_device_array
from sofie_rdf.targets.cuda import CudaTarget, cuda_target
from sofie_rdf.targets.cuda.emitter import Unsupported
from sofie_rdf.targets.cuda.emitters.conv import ConvEmitter
from sofie_rdf.targets.cuda.emitters.gemm import GemmEmitter
from sofie_rdf.targets.cuda.emitters.pool import PoolEmitter
from sofie_rdf.targets.cuda.emitters.shape import ViewEmitter
from sofie_rdf.targets.cuda.emitters.softmax import SoftmaxEmitter
from sofie_rdf.targets.cuda.toolchain import (
    NVCC_FLAGS,
    build_library,
    compile_check,
    device_archs,
    toolchain,
)


def _nvcc() -> None:
    """Skip unless nvcc and the CUDA headers are installed (``pip install -e ".[cuda]"`` or CUDA_HOME)."""
    try:
        toolchain()
    except sr.SofieError as exc:
        pytest.skip(f"no CUDA toolchain: {exc}")


def _planned(proto):
    return sr.load(proto).planned(cuda_target())


# ---- target, planning, emitters ---------------------------------------------------------------------------

def test_target_architectures():
    assert cuda_target().archs == ("sm_80", "sm_90")
    assert cuda_target(archs=["sm_90"]).key == "cuda-sm_90"
    assert cuda_target(CudaTarget(("sm_120",))).archs == ("sm_120",)
    with pytest.raises(sr.SofieError, match="names like 'sm_80'"):
        CudaTarget(("compute_80",))
    with pytest.raises(sr.SofieError, match="named 'cuda'"):
        cuda_target("native")


def test_emitters_bound_per_family():
    mlp, cnn = _planned(cuda_models.mlp()), _planned(cuda_models.cnn())
    assert [type(e) for e in mlp.emitters] == [GemmEmitter, GemmEmitter, SoftmaxEmitter]
    assert mlp.emitters[0].activation is not None  # Relu fused into the first Gemm
    kinds = {n.op_type: type(e) for n, e in zip(cnn.model.nodes, cnn.emitters)}
    assert kinds["FusedConv"] is ConvEmitter and kinds["MaxPool"] is PoolEmitter and kinds["Flatten"] is ViewEmitter
    assert "BatchNormalization" not in kinds  # folded into the convolution by the passes, as for the CPU


def test_the_planner_lays_out_the_device_arena():
    """Every intermediate in one arena at the planner's offsets; the CPU target's plan places the same tensors."""
    model = sr.load(cuda_models.attention())
    planned = model.planned(cuda_target())
    code = model.code(target="cuda")
    size = re.search(r"char \*arena_ = fArena\.reserve\((.*), grew_\);", code.source)
    assert size is not None and size.group(1).startswith("detail::aligned(static_cast<size_t>(")
    arena = [n for n, s in planned.memory.storage.items() if s.kind == "arena"]
    assert arena and set(arena) == {n for n, s in model.planned("native").memory.storage.items() if s.kind == "arena"}
    for name in arena:
        assert re.search(rf"\*const tensor_{name} = arena_float32_ \+ ", code.source), name
    assert code.source.count("cudaMalloc(") == 1  # every device allocation is a DeviceBuffer growing
    reserve = code.source[code.source.index("   void reserve(size_t N, size_t P)"):]
    assert f"fArena.reserve({size.group(1)}, grew);" in reserve  # reserve sizes the arena as a call does
    with pytest.raises(sr.SofieError, match="reserve= is for backend='cuda'"):
        sr.compile(cuda_models.mlp(), backend="native", reserve={"N": 64})


def test_source_names_nodes_and_stays_safe():
    """A comment per node naming the ONNX node, made safe; model names become identifiers (the library built
    from this source compiles: test_library_builds_and_describes_itself)."""
    code = sr.load(cuda_models.mlp(hostile=True)).code(target="cuda")
    src = code.source
    nodes = [line.strip() for line in src.splitlines() if line.lstrip().startswith("// node")]
    assert nodes == ['// node 0: FusedGemm fc1 *_/+relu"1', "// node 1: Gemm fc2", "// node 2: Softmax softmax"]
    assert "void infer(size_t N, const float *tensor_in_put_q, float *tensor_out_n)" in src
    assert "*/" not in src and "??" not in src  # nothing closes a comment; no trigraph
    assert code.weights_file.startswith(f"sofie-rdf cuda weights 1 {len(code.weights)} ".encode())


def test_unsupported_operators_all_at_once():
    with pytest.raises(sr.UnsupportedOperatorError) as info:
        sr.load(cuda_models.unsupported()).code(target="cuda")
    err = info.value
    assert err.target == "cuda" and "the cuda target does not support" in str(err)
    assert err.unsupported == {"CumSum": ["cumsum"], "Trilu": ["trilu"], "Einsum": ["einsum"]}
    planned = _planned(cuda_models.unsupported())  # planning succeeds: the nodes are bound to Unsupported
    assert sum(isinstance(e, Unsupported) for e in planned.emitters) == 3


def test_indices_are_checked_on_the_device():
    """Nodes that address with indices report a bad one through status_; the Session raises it naming the node
    (check_status, run by host calls and by the Python binding after device calls)."""
    src = sr.load(cuda_models.message_passing()).code(target="cuda").source
    assert "kernels::gather(tensor_h, tensor_senders, tensor_hs, 1, 6, E, 4, status_, 0, stream_);" in src
    assert "case 0: throw std::invalid_argument(\"sofie-rdf: model 'message_passing': Gather node 'gather_senders': an " \
           "index is out of range of its axis\");" in src
    host = src[src.index("   void infer(size_t E, const float *tensor_h"):]
    assert host.index("cudaStreamSynchronize") < host.index("check_status();")


def test_refusals_name_the_model_and_node():
    half = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", np.float16, ["N", 4])],
                      [("y", np.float16, ["N", 4])], name="half")
    with pytest.raises(sr.SofieError, match="model 'half': the CUDA target has no 16-bit float kernels"):
        sr.load(half).code(target="cuda")
    gather = make_model([helper.make_node("Gather", ["x", "i"], ["y"], name="pick", axis=1)], [("x", np.float32, ["N", 4])],
                        [("y", np.float32, ["N", 2])], {"i": np.array([1, -1], np.int64)}, name="gather")
    assert "kernels::gather(" in sr.load(gather).code(target="cuda").source
    with pytest.raises(sr.SofieError, match="Gather node 'pick': .*constant index 4 .*out of range"):  # at load
        sr.load(make_model([helper.make_node("Gather", ["x", "i"], ["y"], name="pick", axis=1)],
                           [("x", np.float32, ["N", 4])], [("y", np.float32, ["N", 1])], {"i": np.array([4], np.int64)},
                           name="bad_index")).code(target="cuda")
    wide = make_model([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="top")], [("x", np.float32, ["N", 100])],
                      [("v", np.float32, ["N", 80]), ("i", np.int64, ["N", 80])], {"k": np.array([80], np.int64)},
                      name="wide")
    with pytest.raises(sr.SofieError, match="TopK node 'top': the CUDA target takes a K .* at most 64; got 80"):
        sr.load(wide).code(target="cuda")
    with pytest.raises(sr.SofieError, match="weights, weights_file and profile keep their defaults"):
        sr.load(gather).code(target="cuda", weights="embed")


def test_generate_and_emit_write_source_and_weights(tmp_path):
    from sofie_rdf.cli import main

    files = sr.load(cuda_models.mlp()).generate(tmp_path / "api", target="cuda")
    assert files.header.name == "mlp.cu" and files.weights.name == "mlp.cuda.bin"
    assert files.header.read_text().startswith("// mlp.cu: CUDA inference code generated by sofie-rdf")
    path = tmp_path / "mlp.onnx"
    path.write_bytes(cuda_models.mlp().SerializeToString())
    assert main(["emit", str(path), "-o", str(tmp_path / "cli"), "--target", "cuda"]) == 0
    assert (tmp_path / "cli" / "mlp.cu").read_text() == files.header.read_text()


def test_compile_without_a_gpu_raises_after_generating():
    if device_archs():
        pytest.skip("this machine has a GPU")
    with pytest.raises(sr.SofieError, match="no CUDA device or driver found"):
        sr.compile(cuda_models.mlp(), backend="cuda")
    with pytest.raises(sr.UnsupportedOperatorError):  # unsupported operators are reported first, GPU or not
        sr.compile(cuda_models.unsupported(), backend="cuda")


# ---- launch configurations (host code: compiled by the C++ compiler, no GPU) ------------------------------

LAUNCH_CHECK = r"""
#include <cstddef>
#include <cstdio>
#include "launch.cuh"
int main()
{
   const size_t huge = size_t(1) << 40;
   std::printf("%u %u %u %u %u\n", blocks_for(0), blocks_for(1), blocks_for(256), blocks_for(257), blocks_for(huge));
   std::printf("%u %u %u\n", row_blocks(0), row_blocks(5), row_blocks(huge));
   std::printf("%u %u %u %u %u\n", row_threads(0), row_threads(1), row_threads(33), row_threads(256), row_threads(huge));
   return 0;
}
"""


def test_launch_configurations(tmp_path):
    """Grids are never empty nor larger than kMaxBlocks (kernels loop with a grid stride), row blocks are whole
    warps up to 256 threads, for tiny and huge sizes alike."""
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    kernels = resources.files("sofie_rdf.targets.cuda").joinpath("kernels")
    (tmp_path / "launch.cuh").write_text(kernels.joinpath("launch.cuh").read_text())
    (tmp_path / "main.cpp").write_text(LAUNCH_CHECK)
    subprocess.run([cxx, "-std=c++17", "-Wall", "-Werror", "-o", str(tmp_path / "main"), str(tmp_path / "main.cpp")],
                   check=True)
    lines = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout.split("\n")
    assert lines[0].split() == ["1", "1", "1", "2", str(1 << 16)]
    assert lines[1].split() == ["1", "5", str(1 << 16)]
    assert lines[2].split() == ["32", "32", "64", "256", "256"]


# ---- the row-major products over cuBLAS, checked on the host (cuBLAS replaced by its column-major definition) --

GEMM_CHECK = r"""
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

// cuBLAS's strided batched product as its documentation defines it (column-major), on host memory.
template <typename T>
static cublasStatus_t column_major(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                   const T *alpha, const T *a, int64_t lda, long long sa, const T *b, int64_t ldb,
                                   long long sb, const T *beta, T *c, int64_t ldc, long long sc, int64_t batch)
{
   for (int64_t p = 0; p < batch; ++p)
      for (int64_t i = 0; i < m; ++i)
         for (int64_t j = 0; j < n; ++j) {
            T sum = 0;
            for (int64_t l = 0; l < k; ++l)
               sum += (ta == CUBLAS_OP_N ? a[p * sa + i + l * lda] : a[p * sa + l + i * lda]) *
                      (tb == CUBLAS_OP_N ? b[p * sb + l + j * ldb] : b[p * sb + j + l * ldb]);
            T &out = c[p * sc + i + j * ldc];
            out = *alpha * sum + (*beta == T(0) ? T(0) : *beta * out);
         }
   return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched_64(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int64_t m,
                                            int64_t n, int64_t k, const float *alpha, const float *a, int64_t lda,
                                            long long sa, const float *b, int64_t ldb, long long sb, const float *beta,
                                            float *c, int64_t ldc, long long sc, int64_t batch)
{
   return column_major(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

cublasStatus_t cublasDgemmStridedBatched_64(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int64_t m,
                                            int64_t n, int64_t k, const double *alpha, const double *a, int64_t lda,
                                            long long sa, const double *b, int64_t ldb, long long sb,
                                            const double *beta, double *c, int64_t ldc, long long sc, int64_t batch)
{
   return column_major(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

const char *cublasGetStatusString(cublasStatus_t) { return "a cuBLAS error"; }

namespace detail {
@RUNTIME@
}
namespace kernels {
@LAUNCH@
@GEMM@
}

int main()
{
   const size_t m = 3, n = 5, k = 4, batch = 2;
   double worst = 0;
   for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
         for (int shared_b = 0; shared_b < 2; ++shared_b) {
            std::vector<float> a(batch * m * k), b(batch * k * n), y(batch * m * n, 7.0f);
            for (size_t i = 0; i < a.size(); ++i)
               a[i] = float(i % 7) - 3.0f + 0.25f * float(i);
            for (size_t i = 0; i < b.size(); ++i)
               b[i] = float(i % 5) - 2.0f - 0.5f * float(i % 3);
            // row-major: A is m x k (k x m when transposed), B is k x n (n x k when transposed)
            kernels::gemm_batched(nullptr, ta != 0, tb != 0, m, n, k, 2.0f, a.data(), m * k, b.data(),
                                  shared_b ? 0 : k * n, 0.0f, y.data(), m * n, batch);
            for (size_t p = 0; p < batch; ++p)
               for (size_t i = 0; i < m; ++i)
                  for (size_t j = 0; j < n; ++j) {
                     double want = 0;
                     for (size_t l = 0; l < k; ++l) {
                        const float av = ta ? a[p * m * k + l * m + i] : a[p * m * k + i * k + l];
                        const size_t bp = shared_b ? 0 : p * k * n;
                        const float bv = tb ? b[bp + j * k + l] : b[bp + l * n + j];
                        want += double(av) * bv;
                     }
                     worst = std::fmax(worst, std::fabs(2.0 * want - y[p * m * n + i * n + j]));
                  }
         }
   std::printf("%g\n", worst);
   return worst < 1e-3 ? 0 : 1;
}
"""


def test_row_major_products_drive_cublas_right(tmp_path):
    """kernels::gemm_batched (A and B row-major, either transposed, B shared across the batch or not) asks
    cuBLAS, column-major, for exactly the row-major product: checked against cuBLAS's documented definition
    on the host (no GPU), so that every Gemm, MatMul and recurrence computes what it means."""
    _nvcc()
    from sofie_rdf.targets.cuda.library import kernel_source

    source = GEMM_CHECK.replace("@RUNTIME@", kernel_source("runtime")).replace("@LAUNCH@", kernel_source("launch"))
    (tmp_path / "gemm.cu").write_text(source.replace("@GEMM@", kernel_source("gemm")))
    tools = toolchain()
    cmd = [str(tools.nvcc), "-std=c++17", "--extended-lambda", "-arch=sm_80", *[f"-I{p}" for p in tools.include],
           str(tmp_path / "gemm.cu"), "-o", str(tmp_path / "gemm")]
    subprocess.run(cmd, check=True, capture_output=True)
    result = subprocess.run([str(tmp_path / "gemm")], capture_output=True, text=True)
    assert result.returncode == 0, f"largest error {result.stdout}"


# ---- the Python binding's device-array checks (no GPU: objects that only describe device memory) ----------

class FakeDeviceArray:
    """An object exposing ``__cuda_array_interface__`` over memory nobody reads here."""

    def __init__(self, shape, typestr="<f4", strides=None, address=0x7F0000000000):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (address, False), "version": 3,
                                         "strides": strides}


@pytest.fixture(scope="module")
def mlp_interface():
    from sofie_rdf.ir.info import Interface

    model = sr.load(cuda_models.mlp())
    return Interface("mlp", "ns", tuple(model.inputs), tuple(model.outputs), ("N",), (), (), "cuda", 3, False)


def test_device_arrays_checked_like_numpy(mlp_interface):
    dims, arrays = check_device_arrays(mlp_interface, [FakeDeviceArray((5, 8), address=0x1000)])
    assert dims == [5] and arrays[0].pointer == 0x1000 and arrays[0].library == "test_cuda"
    with pytest.raises(sr.ShapeError, match="expected dtype float32, got float64"):
        check_device_arrays(mlp_interface, [FakeDeviceArray((5, 8), "<f8")])
    with pytest.raises(sr.ShapeError, match=r"expected shape \('N', 8\), got \(5, 7\)"):
        check_device_arrays(mlp_interface, [FakeDeviceArray((5, 7))])
    with pytest.raises(sr.ShapeError, match="C-contiguous"):
        check_device_arrays(mlp_interface, [FakeDeviceArray((5, 8), strides=(4, 20))])
    with pytest.raises(sr.ShapeError, match="takes 1 input"):
        check_device_arrays(mlp_interface, [])
    with pytest.raises(sr.ShapeError, match="all device arrays or all host arrays"):
        check_device_arrays(mlp_interface, [np.zeros((5, 8), np.float32)])
    assert not is_device_array(np.zeros(3)) and is_device_array(FakeDeviceArray((1,)))


# ---- nvcc: one model per family, and a library built and loaded -------------------------------------------

def test_values_of_dims_reach_the_device():
    """A value the dims give (P, read off a shape) that a kernel reads is written to the end of the arena by
    one kernel whose argument holds it, so a captured graph keeps the value of its dims."""
    code = sr.load(cuda_models.dims_in_arithmetic()).code(target="cuda")
    assert "kernels::set_values(tensor_p, kernels::Values<int64_t, 1>{{static_cast<int64_t>(P)}}, stream_);" in code.source
    # the planned slot (16 floats: the planner aligns slots), then the value
    assert "fArena.reserve(detail::aligned(static_cast<size_t>(16) * sizeof(float)) + 256, grew_)" in code.source


FAMILIES = ["cnn", "conv1d3d", "attention", "dims_in_arithmetic", "movement_and_reductions", "message_passing",
            "recurrent", "normalization_and_heads", "batched_matmul", "fused_attention", "attention_op",
            "conv_gemm"]


def test_families_compile_for_sm80_and_sm90(tmp_path):
    """The source of every family's model compiles for A100 and H100 without a warning: one nvcc run over all
    of them (each model is a namespace of its own; the C ABI is compiled with the library below)."""
    _nvcc()
    source = "\n".join(sr.load(getattr(cuda_models, f)()).code(target="cuda").source for f in FAMILIES)
    (tmp_path / "families.cu").write_text(source)
    cmd = toolchain().compile_command(tmp_path / "families.cu", tmp_path / "families.o", ["sm_80", "sm_90"])
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-4000:]


def test_library_builds_and_describes_itself():
    """The MLP with hostile names builds into a library whose C ABI describes the model; without a GPU, making
    its Session fails cleanly in the CUDA runtime (with one, it runs: tests/test_cuda_numerics.py)."""
    _nvcc()
    model = sr.load(cuda_models.mlp(hostile=True))
    code = model.code(target="cuda")
    library = build_library(code, ["sm_80"])
    assert build_library(code, ["sm_80"]) == library  # cached
    lib = cuda_library(library)
    assert all(hasattr(lib.cdll, f) for f in ("sofie_infer_device", "sofie_reserve", "sofie_check_status"))
    assert [t.name for t in lib.interface.inputs] == [t.name for t in model.inputs]
    assert lib.interface.symbols == ("N",)
    if device_archs():
        return
    assert lib.cdll.sofie_device_count() == 0
    assert lib.cdll.sofie_create(None) is None
    assert "cudaStreamCreate failed" in lib.error() or "cuda" in lib.error().lower()


def test_the_source_says_how_to_build_it(tmp_path):
    """The opening comment of a generated .cu names the nvcc command line it needs (a plain ``nvcc -c`` fails on
    its device lambdas): that exact command, nvcc aside, compiles it for both architectures without a warning."""
    _nvcc()
    import shlex

    files = sr.load(cuda_models.attention()).generate(tmp_path, target="cuda")
    lines = files.header.read_text().splitlines()
    build = next(line for line in lines[:12] if line.startswith("// Build: "))
    command = shlex.split(build[len("// Build: "):])
    assert command[0] == "nvcc" and "--extended-lambda" in command and "--expt-relaxed-constexpr" in command
    assert "arch=compute_80,code=sm_80" in command and "arch=compute_90,code=sm_90" in command
    result = subprocess.run([str(toolchain().nvcc), *command[1:]], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-4000:]
    assert (tmp_path / "attention.o").stat().st_size > 0
    assert any(line.startswith("// and link the object with -lcublas") for line in lines[:12])


def test_nvcc_flags_keep_ieee_math():
    assert "--use_fast_math" not in NVCC_FLAGS and "--extended-lambda" in NVCC_FLAGS


# ---- the sweep of every test model family (make test-full) ------------------------------------------------

def _exported_models():
    """(name, ONNX model) of the exported CNNs (tests/test_torch_cnn.py), a transformer encoder and the GNN of
    tests/test_gnn.py, beside the hand-built ones."""
    torch = pytest.importorskip("torch")
    from test_torch_cnn import MODELS, export

    models = [(name, export(name)[1]) for name in MODELS]
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True, dropout=0.0)
    encoder = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False).eval()
    n, p = torch.export.Dim("N"), torch.export.Dim("P")
    program = torch.onnx.export(encoder, (torch.randn(2, 10, 32),), dynamo=True, dynamic_shapes=({0: n, 1: p},),
                                opset_version=18, verbose=False)
    models.append(("encoder", program.model_proto))
    from benchmarks.gpu import export as bench_export
    from benchmarks.gpu import models as bench_models

    models += [(f"bench_{name}", onnx.load_from_string(bench_export(torch, module, shape)))
               for name, (module, shape) in bench_models(torch).items()]
    return models


@pytest.mark.slow
def test_every_family_compiles_or_is_refused_by_name():
    """Each model compiles for sm_80 and sm_90 without a warning, or is refused listing what the CUDA target
    lacks: never anything else."""
    _nvcc()
    models = [(f.__name__, f()) for f in (cuda_models.mlp, cuda_models.cnn, cuda_models.conv1d3d, cuda_models.attention,
                                          cuda_models.dims_in_arithmetic, cuda_models.movement_and_reductions,
                                          cuda_models.message_passing, cuda_models.recurrent,
                                          cuda_models.normalization_and_heads, cuda_models.rms_norm,
                                          cuda_models.unsupported)]
    refused = {}
    for name, proto in models + _exported_models():
        try:
            code = sr.load(proto, name=name).code(target="cuda")
        except sr.UnsupportedOperatorError as exc:
            assert exc.target == "cuda"
            refused[name] = sorted(exc.unsupported)
            continue
        assert compile_check(code, ["sm_80", "sm_90"]) == "", name
    assert refused == {"unsupported": ["CumSum", "Einsum", "Trilu"]}


def test_kernel_library_is_complete():
    """Every kernel an emitter or a dependency names is a file of the package, and every file is used."""
    import sofie_rdf.targets.cuda.emitters  # noqa: F401  (registers the emitters)
    from sofie_rdf.targets.cuda.emitter import _EMITTERS
    from sofie_rdf.targets.cuda.library import ALWAYS, DEPENDENCIES, kernel_source

    named = {"runtime"} | ALWAYS | set(DEPENDENCIES) | {d for deps in DEPENDENCIES.values() for d in deps}
    for cls in set(_EMITTERS.values()):
        own = cls.kernels if isinstance(cls.kernels, tuple) else cls.own_kernels  # a property where fused
        named |= set(own)
    files = {p.name[:-4] for p in resources.files("sofie_rdf.targets.cuda").joinpath("kernels").iterdir()
             if p.name.endswith(".cuh")}
    assert named == files
    for name in files:
        assert kernel_source(name).startswith("//"), name  # each file says what it holds


@pytest.mark.slow
def test_exported_models_match_onnxruntime_in_the_emulation(tmp_path):
    """Every exported test model (CNNs 1-3D, transposed convolutions, a ResNet, a transformer encoder, the GPU
    benchmark's models) run in the host emulation of CUDA (tests/cuda_emulation.py) matches onnxruntime."""
    from conftest import ATOL, RTOL, ort_run
    from cuda_emulation import emulated_session

    rng = np.random.default_rng(0)
    for name, proto in _exported_models():
        sess = emulated_session(proto, tmp_path)
        feeds = {}
        for i in proto.graph.input:
            shape = [d.dim_value if d.HasField("dim_value") else 3 for d in i.type.tensor_type.shape.dim]
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
        want = ort_run(proto, feeds)
        got = sess.infer(*feeds.values())
        for g, w in zip(got if isinstance(got, tuple) else [got], want):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=name)
