"""Writing the standalone CUDA source of a planned model: a pure function of the plan and names.

Layout of a generated ``.cu``: includes (the C++ standard library, the CUDA runtime, cuBLAS), then one
namespace ``TMVA_SOFIE_<Name>`` holding the kernels the model uses (``kernels::``, copied from
``kernels/*.cuh``), the Session support (``detail::``) and ``struct Session``:

- the constructor creates the Session's stream, its cuBLAS handle (bound to that stream, with a workspace of
  its own so that it can be captured in a graph) and uploads every weight once, from one binary file;
- ``infer(dims..., inputs..., outputs..., stream)`` takes device pointers, ordered after the work queued on
  ``stream`` (events, no synchronisation); ``infer(dims..., inputs..., outputs...)`` takes host pointers and
  copies in and out; ``infer(dims..., inputs...)`` returns vectors, like the CPU header;
- every intermediate tensor lives in one device arena laid out by the planner's ``MemoryPlan`` (the CPU
  target's plan), grown to the largest dims seen;
- the first call with given dims (and buffers) runs the nodes directly; the second captures them in a CUDA
  graph, which later calls replay, so small models are not bound by launch overhead.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..._cache import atomic_write
from ..._version import __version__
from ...errors import SofieError, UnsupportedOperatorError
from ...ir import TensorType
from ...ir.dims import free_symbols, simplify
from ...ir.dtypes import HALF_TYPES, NARROW_TYPES
from ...planning import Planned
from .._cxx.context import NodeContext, node_operands
from .._cxx.cpp import constraint_check, cpp_type, to_cpp
from .._cxx.files import GeneratedFiles
from .._cxx.names import NameTable, comment, string_literal
from .emitter import unsupported
from .library import kernel_source, kernels_for

# Suffix of the weights file a Session reads (one header line, then every weight's bytes, aligned).
WEIGHTS_SUFFIX = ".cuda.bin"
# Weights and arena regions start on multiples of this many bytes (cudaMalloc's alignment).
ALIGN_BYTES = 256
# nvcc options the source needs (named in its opening comment): C++17, device lambdas (the element-wise kernels
# take them), constexpr std:: functions (std::numeric_limits) in device code.
LANGUAGE_FLAGS = ("-std=c++17", "--extended-lambda", "--expt-relaxed-constexpr")
# NVIDIA libraries a Session calls, linked beside the CUDA runtime (callers first).
LIBRARIES = ("cublasLt", "cublas")
# Values computed from the dims that a kernel reads are written by one kernel argument: at most this many.
MAX_VALUES = 64
_RESERVED = {"Session", "kernels", "detail", "infer", "run", "nodes", "release", "forget_graphs", "filename", "stream",
             "run_in_halves", "device_bytes",
             "fWeights", "fArena", "fStaging", "fBlasWorkspace", "fStream", "fBlas", "fBlasLt", "fCallerReady", "fDone",
             "fGraphs", "fSeen", "kBlasWorkspace", "kMaxGraphs"}
_INCLUDES = ("cmath", "cstddef", "cstdint", "fstream", "limits", "map", "set", "stdexcept", "string", "type_traits", "vector")


@dataclass
class CudaCode:
    """A CUDA source and the weights it reads, plus what callers (the C ABI, the Python Session) need."""

    name: str
    namespace: str
    source: str
    weights: bytes                       # the weights file's contents after its header line
    weights_tag: str                     # digest of ``weights``, checked by the Session's constructor
    symbols: list[tuple[str, str]]       # (model dim name, C++ argument)
    inputs: list[tuple[str, TensorType]] = field(default_factory=list)
    outputs: list[tuple[str, TensorType]] = field(default_factory=list)
    constraints: list = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)   # "OpType name" in the order the nodes run
    # What the shared C ABI reads of every target's code (targets/_cxx/c_abi.py).
    runtime_dims: list[str] = field(default_factory=list)
    weights_mode: str = "cuda"
    profile: bool = False
    libraries: tuple[str, ...] = LIBRARIES
    checks_indices: bool = False  # whether kernels check indices (check_status must follow a device call)

    @property
    def header(self) -> str:
        """The source (the name every target's code has for its text)."""
        return self.source

    @property
    def weights_file(self) -> bytes:
        """The bytes of the weights file the Session's constructor reads."""
        return f"sofie-rdf cuda weights 1 {len(self.weights)} {self.weights_tag}\n".encode() + self.weights

    @property
    def digest(self) -> str:
        """Hash of the source and weights: the compile-cache key."""
        return hashlib.sha256(self.source.encode() + b"\0" + self.weights).hexdigest()


def write_source(planned: Planned, name: str, namespace: Optional[str] = None) -> CudaCode:
    """The CUDA source of ``planned`` as class ``<namespace>::Session`` (default ``TMVA_SOFIE_<name>``).

    Raises :class:`UnsupportedOperatorError` naming every node with no CUDA kernel, all at once, and
    :class:`SofieError` for what the target cannot run yet (16-bit floats, dims computed while running).
    """
    missing = unsupported(planned.emitters)
    if missing:
        raise UnsupportedOperatorError(planned.model.name, missing, target="cuda")
    return _SourceWriter(planned, name, namespace or f"TMVA_SOFIE_{name}").write()


class _SourceWriter:
    """Generates one model's ``.cu`` from its plan."""

    def __init__(self, planned: Planned, name: str, namespace: str):
        self.model, self.plan, self.emitters = planned.model, planned.memory, planned.emitters
        self.archs: tuple[str, ...] = tuple(planned.target.archs)
        self.name, self.namespace = name, namespace
        self._refuse_unsupported_forms()
        self.names = NameTable(_RESERVED, ("fTensor_",))
        symbols = free_symbols([self.model.tensors[n].shape for n in self.model.inputs])
        self.dims = {s.name: self.names.get(s.name, kind="dim") for s in symbols}
        self.tensor = {t: self.names.get(t, "tensor_") for t in self._all_tensors()}
        self.weights, self.offsets = self._weights_blob()
        self.reporting = [i for i, e in enumerate(self.emitters) if e.reports]

    def _refuse_unsupported_forms(self) -> None:
        m = self.model
        for types, what in ((HALF_TYPES, "16-bit float"), (NARROW_TYPES, "4-bit integer or 8- and 4-bit float")):
            found = sorted(n for n, t in m.tensors.items() if t.dtype in types)
            if found:
                raise SofieError(f"model {m.name!r}: the CUDA target has no {what} kernels yet "
                                 f"(tensor {found[0]!r} is {m.tensors[found[0]].dtype})")
        if m.runtime_dims:
            raise SofieError(f"model {m.name!r}: the CUDA target cannot run dims computed while the model runs "
                             f"({', '.join(m.runtime_dims)})")
        for n, t in m.tensors.items():
            missing = {s.name for s in free_symbols([t.shape])} - {s.name for s in free_symbols(
                [m.tensors[i].shape for i in m.inputs])}
            if missing:
                raise SofieError(f"model {m.name!r}: the size of tensor {n!r} depends on "
                                 f"{', '.join(sorted(missing))}, which no input shape determines")

    def _all_tensors(self) -> list[str]:
        names = list(self.model.inputs) + list(self.model.initializers)
        names += [o for n in self.model.nodes for o in n.outputs if o] + list(self.model.outputs)
        names += [n for n, s in self.plan.storage.items() if s.kind == "symbolic"]
        names += [w for ws in self.plan.workspaces.values() for w in ws]
        return list(dict.fromkeys(names))

    def _weights_blob(self) -> tuple[bytes, dict[str, int]]:
        """Every weight's bytes at an aligned offset, in one blob uploaded once."""
        blob, offsets = bytearray(), {}
        for n, v in self.model.initializers.items():
            blob += bytes(-len(blob) % ALIGN_BYTES)
            offsets[n] = len(blob)
            blob += np.ascontiguousarray(v).tobytes()
        return bytes(blob), offsets

    # ---- pointers ----------------------------------------------------------------
    def ptr(self, name: str) -> str:
        """C++ device pointer expression of a tensor inside ``nodes``."""
        s = self.plan.storage[name]
        if s.kind == "view":
            return self.ptr(s.root)
        if s.kind == "output":
            return self.tensor[s.root]
        if s.kind == "dynamic":
            raise SofieError(f"model {self.model.name!r}: tensor {name!r} is sized while the model runs, which the "
                             "CUDA target cannot do yet")
        return self.tensor[name]

    # ---- the source ----------------------------------------------------------------
    def write(self) -> CudaCode:
        nodes = self._nodes()
        used = {k for e in self.emitters for k in e.kernels} | ({"elementwise"} if self.values_bytes else set())
        parts = [self._banner(), f"#ifndef {self.namespace}_CU", f"#define {self.namespace}_CU", ""]
        parts += ["#include <cublasLt.h>", "#include <cublas_v2.h>", "#include <cuda_runtime.h>", ""]
        parts += [f"#include <{h}>" for h in _INCLUDES] + [""]
        parts += [f"namespace {self.namespace} {{", ""]
        parts += ["namespace detail {", kernel_source("runtime"), "} // namespace detail", ""]
        parts += ["namespace kernels {"] + [kernel_source(k) for k in kernels_for(used)] + ["} // namespace kernels", ""]
        parts += self._session(nodes)
        parts += [f"}} // namespace {self.namespace}", "", f"#endif // {self.namespace}_CU", ""]
        m = self.model
        return CudaCode(
            name=self.name, namespace=self.namespace, source="\n".join(parts), weights=self.weights,
            weights_tag=hashlib.sha256(self.weights).hexdigest()[:16],
            symbols=list(self.dims.items()),
            inputs=[(n, m.tensors[n]) for n in m.inputs], outputs=[(n, m.tensors[n]) for n in m.outputs],
            constraints=list(m.constraints), nodes=[f"{n.op_type} {n.name}" for n in m.nodes],
            checks_indices=bool(self.reporting))

    def _banner(self) -> str:
        m = self.model
        links = " ".join(f"-l{lib}" for lib in LIBRARIES)
        lines = [f"// {self.name}.cu: CUDA inference code generated by sofie-rdf {__version__}",
                 f"// from model {comment(m.name)} ({comment(m.source) or 'IR'}).",
                 f"// Needs the CUDA runtime, cuBLAS and cuBLASLt; the Session reads its weights from "
                 f"{comment(self.name + WEIGHTS_SUFFIX)}.",
                 f"// Build: {build_command(self.name, self.archs)}",
                 f"// and link the object with {links} (nvcc links the CUDA runtime itself).", "//"]
        for label, names in (("input", m.inputs), ("output", m.outputs)):
            for n in names:
                t = m.tensors[n]
                lines.append(f"// {label} {comment(n)}: {t.dtype} {comment(tuple(str(d) for d in t.shape))}")
        return "\n".join(lines)

    def _size(self, name: str) -> str:
        """Bytes of a tensor, as C++."""
        t = self.model.tensors[name]
        return f"static_cast<size_t>({to_cpp(t.size, self.dims)}) * sizeof({cpp_type(t.dtype)})"

    def _params(self, device: bool, with_outputs: bool = True) -> str:
        m = self.model
        params = [f"size_t {d}" for d in self.dims.values()]
        params += [f"const {cpp_type(m.tensors[n].dtype)} *{self.tensor[n]}" for n in m.inputs]
        if with_outputs:
            params += [f"{cpp_type(m.tensors[n].dtype)} *{p}" for n, p in self._output_params()]
        return ", ".join(params + (["cudaStream_t stream"] if device else []))

    def _output_params(self) -> list[tuple[str, str]]:
        """(output, parameter name); outputs the plan could not bind are copied at the end."""
        return [(n, f"out{k}_{self.tensor[n]}_" if k in self.plan.copies else self.tensor[n])
                for k, n in enumerate(self.model.outputs)]

    def _args(self, inputs: list[str], outputs: list[str]) -> str:
        return ", ".join(list(self.dims.values()) + inputs + outputs)

    def _constraint_checks(self) -> list[str]:
        out = []
        for c in self.model.constraints:
            condition, message = constraint_check(c, self.dims, self.model.name)
            out += [f"      if (!({condition}))", f"         throw std::invalid_argument({message});"]
        return out

    def _session(self, nodes: list[str]) -> list[str]:
        out = ["// One model on one GPU: its weights, arena, stream, cuBLAS handle and CUDA graphs. Not shared between",
               "// threads; the GPU current when it is made is the one it runs on.",
               "struct Session {"]
        out += self._constructor() + [""] + self._infer_device() + [""] + self._infer_host() + [""]
        out += self._infer_vectors() + [""] + self._check_status() + [""] + self._reserve() + [""]
        out += self._device_bytes() + [""] + self._run()
        out += [""] + nodes
        out += ["", "private:",
                "   // cuBLAS workspace of the Session's own (cuBLAS may not allocate while a graph is captured).",
                "   static constexpr size_t kBlasWorkspace = size_t(32) << 20;",
                "   // Graphs kept (one per dims and buffers); past this many, all are dropped and captured again.",
                "   static constexpr size_t kMaxGraphs = 16;",
                "   detail::DeviceBuffer fWeights;        // every weight, uploaded once",
                "   detail::DeviceBuffer fArena;          // every intermediate tensor, planned from their lifetimes",
                "   detail::DeviceBuffer fStaging;        // host calls: inputs and outputs on the device",
                "   detail::DeviceBuffer fBlasWorkspace;",
                *(["   detail::DeviceBuffer fStatus;         // one int: the first node that met a bad index, plus one"]
                  if self.reporting else []),
                "   cudaStream_t fStream = nullptr;",
                "   cublasHandle_t fBlas = nullptr;",
                "   cublasLtHandle_t fBlasLt = nullptr;    // products with a bias epilogue (same stream and workspace)",
                "   cudaEvent_t fCallerReady = nullptr;   // the caller's stream reached the call",
                "   cudaEvent_t fDone = nullptr;          // the Session's stream finished the call",
                "   std::map<std::vector<size_t>, cudaGraphExec_t> fGraphs;  // (dims, buffers) -> captured infer",
                "   std::set<std::vector<size_t>> fSeen;  // (dims, buffers) run once: the next call captures",
                "",
                *self._run_in_halves(),
                "",
                "   void forget_graphs() noexcept",
                "   {",
                "      for (auto &graph : fGraphs)",
                "         cudaGraphExecDestroy(graph.second);",
                "      fGraphs.clear();",
                "      fSeen.clear();",
                "   }",
                "",
                "   void release() noexcept",
                "   {",
                "      forget_graphs();",
                "      if (fBlasLt)",
                "         cublasLtDestroy(fBlasLt);",
                "      if (fBlas)",
                "         cublasDestroy(fBlas);",
                "      if (fCallerReady)",
                "         cudaEventDestroy(fCallerReady);",
                "      if (fDone)",
                "         cudaEventDestroy(fDone);",
                "      if (fStream)",
                "         cudaStreamDestroy(fStream);",
                "   }",
                "};", ""]
        return out

    def _constructor(self) -> list[str]:
        upload = (f'         detail::upload_weights(filename, "{hashlib.sha256(self.weights).hexdigest()[:16]}", '
                  f"{len(self.weights)}, fWeights);") if self.model.initializers else \
            "         (void)filename;  // this model has no weights"
        return [f"   explicit Session(const std::string &filename = {string_literal(self.name + WEIGHTS_SUFFIX)})",
                "   {",
                "      try {",
                '         detail::check(cudaStreamCreateWithFlags(&fStream, cudaStreamNonBlocking), "cudaStreamCreate");',
                "         detail::check(cudaEventCreateWithFlags(&fCallerReady, cudaEventDisableTiming), "
                '"cudaEventCreate");',
                '         detail::check(cudaEventCreateWithFlags(&fDone, cudaEventDisableTiming), "cudaEventCreate");',
                '         detail::check(cublasCreate(&fBlas), "cublasCreate");',
                '         detail::check(cublasSetStream(fBlas, fStream), "cublasSetStream");',
                '         detail::check(cublasLtCreate(&fBlasLt), "cublasLtCreate");',
                "#ifdef SOFIE_CUDA_ALLOW_TF32  // opt in (-DSOFIE_CUDA_ALLOW_TF32): fp32 products in TF32 on tensor cores",
                '         detail::check(cublasSetMathMode(fBlas, CUBLAS_TF32_TENSOR_OP_MATH), "cublasSetMathMode");',
                "#endif",
                "         bool grew = false;",
                "         detail::check(cublasSetWorkspace(fBlas, fBlasWorkspace.reserve(kBlasWorkspace, grew), "
                'kBlasWorkspace), "cublasSetWorkspace");',
                upload,
                *(["         detail::check(cudaMemset(fStatus.reserve(sizeof(int), grew), 0, sizeof(int)), \"cudaMemset\");"]
                  if self.reporting else []),
                "      } catch (...) {",
                "         release();",
                "         throw;",
                "      }",
                "   }",
                "   Session(const Session &) = delete;",
                "   Session &operator=(const Session &) = delete;",
                "   ~Session() { release(); }"]

    def _infer_device(self) -> list[str]:
        m = self.model
        args = self._args([self.tensor[n] for n in m.inputs], [p for _, p in self._output_params()])
        checks = ["   // Indices are checked on the device: check_status() raises a bad one (it waits for the stream)."] \
            if self.reporting else []
        return ["   // Inference on device pointers: runs after the work queued on `stream` so far; work queued on",
                "   // `stream` after the call sees the outputs. Nothing waits on the host.", *checks,
                f"   void infer({self._params(True)})", "   {", *self._constraint_checks(),
                "      if (stream != fStream) {",
                '         detail::check(cudaEventRecord(fCallerReady, stream), "cudaEventRecord");',
                '         detail::check(cudaStreamWaitEvent(fStream, fCallerReady, 0), "cudaStreamWaitEvent");',
                "      }",
                f"      run({args});",
                "      if (stream != fStream) {",
                '         detail::check(cudaEventRecord(fDone, fStream), "cudaEventRecord");',
                '         detail::check(cudaStreamWaitEvent(stream, fDone, 0), "cudaStreamWaitEvent");',
                "      }", "   }"]

    def _infer_host(self) -> list[str]:
        m = self.model
        tensors = list(m.inputs) + [n for n, _ in self._output_params()]
        params = [self.tensor[n] for n in m.inputs] + [p for _, p in self._output_params()]
        out = ["   // Inference on host pointers: inputs copied to the device, outputs back; returns when they are written.",
               f"   void infer({self._params(False)})", "   {", *self._constraint_checks()]
        total = []
        for k, n in enumerate(tensors):
            out.append(f"      const size_t bytes{k}_ = {self._size(n)};")
            total.append(f"detail::aligned(bytes{k}_)")
        out += ["      bool grew_ = false;",
                f"      char *staging_ = fStaging.reserve({' + '.join(total) or '0'}, grew_);",
                "      size_t at_ = 0;"]
        device = []
        for k, (n, p) in enumerate(zip(tensors, params)):
            t = cpp_type(m.tensors[n].dtype)
            out += [f"      {t} *device{k}_ = reinterpret_cast<{t} *>(staging_ + at_);",
                    f"      at_ += detail::aligned(bytes{k}_);"]
            device.append(f"device{k}_")
            if k < len(m.inputs):
                out.append(f"      detail::check(cudaMemcpyAsync(device{k}_, {p}, bytes{k}_, cudaMemcpyHostToDevice, "
                           'fStream), "cudaMemcpyAsync (input)");')
        out.append(f"      run({self._args(device[:len(m.inputs)], device[len(m.inputs):])});")
        for k in range(len(m.inputs), len(tensors)):
            out.append(f"      detail::check(cudaMemcpyAsync({params[k]}, device{k}_, bytes{k}_, cudaMemcpyDeviceToHost, "
                       'fStream), "cudaMemcpyAsync (output)");')
        out += ['      detail::check(cudaStreamSynchronize(fStream), "cudaStreamSynchronize");']
        out += ["      check_status();"] if self.reporting else []
        return out + ["   }"]

    def _check_status(self) -> list[str]:
        """``check_status``: raises the bad index a node met (host calls run it; device calls leave it to the
        caller, as it waits for the stream)."""
        out = ["   // Raises std::invalid_argument naming the first node that met an index outside its axis since the",
               "   // last check (and clears it); waits for the Session's stream. A no-op for models without such nodes.",
               "   void check_status()", "   {"]
        if not self.reporting:
            return out + ["   }"]
        out += ["      int status = 0;",
                "      detail::check(cudaMemcpyAsync(&status, fStatus.data(), sizeof(int), cudaMemcpyDeviceToHost, fStream),",
                '                    "cudaMemcpyAsync (status)");',
                '      detail::check(cudaStreamSynchronize(fStream), "cudaStreamSynchronize");',
                "      if (status == 0)",
                "         return;",
                '      detail::check(cudaMemset(fStatus.data(), 0, sizeof(int)), "cudaMemset (status)");',
                "      switch (status - 1) {"]
        for i in self.reporting:
            message = string_literal(f"sofie-rdf: model {self.model.name!r}: {self.model.nodes[i]}: "
                                     "an index is out of range of its axis")
            out.append(f"      case {i}: throw std::invalid_argument({message});")
        return out + ["      }", '      throw std::invalid_argument("sofie-rdf: an index is out of range");', "   }"]

    def _infer_vectors(self) -> list[str]:
        m = self.model
        types = [cpp_type(m.tensors[n].dtype) for n in m.outputs]
        if np.bool_ in [m.tensors[n].dtype for n in m.outputs]:
            return []  # std::vector<bool> has no buffer: bool outputs only through the pointer forms
        ret = f"std::vector<{types[0]}>" if len(types) == 1 else f"std::tuple<{', '.join(f'std::vector<{t}>' for t in types)}>"
        out = ["   // Inference on host pointers returning the outputs as vectors.",
               f"   {ret} infer({self._params(False, with_outputs=False)})", "   {"]
        for k, n in enumerate(m.outputs):
            out.append(f"      std::vector<{types[k]}> output{k}_({to_cpp(m.tensors[n].size, self.dims)});")
        outs = [f"output{k}_.data()" for k in range(len(m.outputs))]
        out.append(f"      infer({self._args([self.tensor[n] for n in m.inputs], outs)});")
        names = [f"output{k}_" for k in range(len(m.outputs))]
        out.append(f"      return {names[0]};" if len(names) == 1 else f"      return {{{', '.join(names)}}};")
        return out + ["   }"]

    def _run(self) -> list[str]:
        m = self.model
        inputs = [self.tensor[n] for n in m.inputs]
        outputs = [p for _, p in self._output_params()]
        out = ["   // The nodes on device buffers: run directly the first time, captured in a CUDA graph the second",
               "   // (same dims and buffers), replayed from it after that. The arena grows to the largest dims seen.",
               f"   void run({self._params(False)})", "   {"]
        out += ["      bool grew_ = false;", *self._reserve_arena(), "      if (grew_)",
                "         forget_graphs();  // they point into the old arena"]
        key = list(self.dims.values()) + [f"reinterpret_cast<size_t>({p})" for p in inputs + outputs]
        call = f"nodes({self._args(inputs, outputs)}, arena_);"
        out += [f"      const std::vector<size_t> key_{{{', '.join(key)}}};",
                "      const auto graph_ = fGraphs.find(key_);",
                "      if (graph_ != fGraphs.end()) {",
                '         detail::check(cudaGraphLaunch(graph_->second, fStream), "cudaGraphLaunch");',
                "         return;",
                "      }",
                "      if (fSeen.insert(key_).second) {  // first call of these dims and buffers",
                f"         {call}",
                '         detail::check(cudaGetLastError(), "a kernel launch");',
                "         return;",
                "      }",
                "      if (fGraphs.size() >= kMaxGraphs)",
                "         forget_graphs();",
                "      cudaGraph_t graph = nullptr;",
                "      detail::check(cudaStreamBeginCapture(fStream, cudaStreamCaptureModeThreadLocal),",
                '                    "cudaStreamBeginCapture");',
                "      try {",
                f"         {call}",
                "      } catch (...) {",
                "         cudaStreamEndCapture(fStream, &graph);",
                "         if (graph)",
                "            cudaGraphDestroy(graph);",
                "         throw;",
                "      }",
                '      detail::check(cudaStreamEndCapture(fStream, &graph), "cudaStreamEndCapture");',
                '      detail::check(cudaGetLastError(), "a kernel launch");',
                "      cudaGraphExec_t exec = nullptr;",
                "      const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);",
                "      cudaGraphDestroy(graph);",
                '      detail::check(made, "cudaGraphInstantiate");',
                "      fGraphs[key_] = exec;",
                "      fSeen.insert(key_);",
                '      detail::check(cudaGraphLaunch(exec, fStream), "cudaGraphLaunch");',
                "   }"]
        return out

    def _chunk_dim(self) -> Optional[str]:
        """The C++ name of the dim a batch may be split along (rows independent: the planner's row blocks), else
        None."""
        block = self.plan.row_block
        return self.dims.get(block[0]) if block is not None and isinstance(block[0], str) else None

    def _reserve_arena(self) -> list[str]:
        """``run``'s arena for the call; where the rows are independent and the batch's arena does not fit in
        device memory, the batch runs in halves instead (each halved again until its arena fits)."""
        reserve = f"fArena.reserve({self._arena_bytes()}, grew_)"
        dim = self._chunk_dim()
        if dim is None:
            return [f"      char *arena_ = {reserve};"]
        m = self.model
        args = self._args([self.tensor[n] for n in m.inputs], [p for _, p in self._output_params()])
        return ["      char *arena_ = nullptr;",
                "      try {",
                f"         arena_ = {reserve};",
                "      } catch (const detail::OutOfMemory &) {",
                f"         if ({dim} < 2)",
                "            throw;",
                f"         run_in_halves({args});",
                "         return;",
                "      }"]

    def _run_in_halves(self) -> list[str]:
        """``run_in_halves``: ``run`` on the first half of the batch's rows, then on the rest (empty where the
        rows are not independent)."""
        dim = self._chunk_dim()
        if dim is None:
            return []
        m = self.model
        symbol = next(sym for sym in free_symbols([m.tensors[n].shape for n in m.inputs]) if self.dims[sym.name] == dim)
        tensors = list(m.inputs) + [n for n, _ in self._output_params()]
        pointers = [self.tensor[n] for n in m.inputs] + [p for _, p in self._output_params()]
        row = {n: to_cpp(simplify(m.tensors[n].size / symbol), self.dims) for n in tensors}
        dims = ["half_" if d == dim else d for d in self.dims.values()]
        first = ", ".join(dims + pointers)
        rest = ", ".join(["rest_" if d == dim else d for d in self.dims.values()] +
                         [f"{p} + half_ * {row[n]}" for n, p in zip(tensors, pointers)])
        return ["   // The batch as two runs of half its rows (they are independent), for an arena that fits in memory.",
                f"   void run_in_halves({self._params(False)})", "   {",
                f"      const size_t half_ = ({dim} + 1) / 2, rest_ = {dim} - half_;",
                f"      run({first});", f"      run({rest});", "   }"]

    def _arena_bytes(self) -> str:
        """C++ expression of the arena's size: each dtype's planned region, aligned, then the values the dims give."""
        regions = [f"detail::aligned(static_cast<size_t>({to_cpp(size, self.dims)}) * sizeof({cpp_type(d)}))"
                   for d, size in self.plan.arenas.items()]
        if self.values_bytes:
            regions.append(str(self.values_bytes))
        return " + ".join(regions) or "0"

    def _staging_bytes(self) -> str:
        """C++ expression of the staging buffer's size (host calls): every input and output, aligned."""
        names = list(self.model.inputs) + [n for n, _ in self._output_params()]
        return " + ".join(f"detail::aligned({self._size(n)})" for n in names) or "0"

    def _device_bytes(self) -> list[str]:
        """``device_bytes``: the device memory the Session holds now."""
        buffers = ["fWeights", "fArena", "fStaging", "fBlasWorkspace"] + (["fStatus"] if self.reporting else [])
        return ["   // Device memory this Session holds now: weights, arena, staging for host calls, library workspace.",
                "   size_t device_bytes() const",
                "   {",
                f"      return {' + '.join(f'{b}.bytes()' for b in buffers)};",
                "   }"]

    def _reserve(self) -> list[str]:
        """``reserve``: the device memory of calls up to the given dims, allocated now."""
        params = ", ".join(f"size_t {d}" for d in self.dims.values())
        body = [f"      fStaging.reserve({self._staging_bytes()}, grew);",
                f"      fArena.reserve({self._arena_bytes()}, grew);"]
        unused = [f"      (void){d};" for d in self.dims.values() if not re.search(rf"\b{d}\b", "\n".join(body))]
        return ["   // Device memory for calls up to these dims, allocated now (a larger call still grows it).",
                f"   void reserve({params})", "   {", *unused, "      bool grew = false;", body[0], body[1],
                "      if (grew)  // the arena moved: graphs point into the old one",
                "         forget_graphs();", "   }"]

    def _nodes(self) -> list[str]:
        """``nodes``: every node's code on the Session's stream (public: nvcc's device lambdas must be in a
        public member function)."""
        m, plan = self.model, self.plan
        body: list[str] = []
        for i, node in enumerate(m.nodes):
            body += self._node(i, node)
        for k, (n, param) in enumerate(self._output_params()):
            if k in plan.copies:
                body.append(f"      detail::check(cudaMemcpyAsync({param}, {self.ptr(n)}, {self._size(n)}, "
                            f'cudaMemcpyDeviceToDevice, stream_), "cudaMemcpyAsync");  // output {comment(n)}')
        text = "\n".join(body)
        locals_ = ["      const cudaStream_t stream_ = fStream;", "      const cublasHandle_t blas_ = fBlas;"]
        if re.search(r"\bblas_lt_\b", text):
            locals_ += ["      const cublasLtHandle_t blas_lt_ = fBlasLt;",
                        "      void *const blas_workspace_ = fBlasWorkspace.data();"]
        if self.reporting:
            locals_.append("      int *const status_ = reinterpret_cast<int *>(fStatus.data());")
        offset = "0"
        for d in plan.arenas:
            label, t = np.dtype(d).name, cpp_type(d)
            locals_.append(f"      {t} *const arena_{label}_ = reinterpret_cast<{t} *>(arena_ + {offset});")
            offset = f"{offset} + detail::aligned(static_cast<size_t>({to_cpp(plan.arenas[d], self.dims)}) * sizeof({t}))"
        values_at = offset
        self.values_bytes = 0
        for n, s in plan.storage.items():
            ident = self.tensor.get(n)
            if ident is None or not re.search(rf"\b{ident}\b", text):
                continue
            if s.kind == "symbolic":
                locals_ += self._values(n, ident, f"{values_at} + {self.values_bytes}")
            elif s.kind == "arena":
                t = cpp_type(s.dtype)
                locals_.append(f"      {t} *const {ident} = arena_{np.dtype(s.dtype).name}_ + {to_cpp(s.offset, self.dims)};")
            elif s.kind == "weight":
                t = cpp_type(m.tensors[n].dtype)
                locals_.append(f"      const {t} *const {ident} = reinterpret_cast<const {t} *>(fWeights.data() + "
                               f"{self.offsets[n]});")
        params = list(self.dims.values()) + [self.tensor[n] for n in m.inputs] + [p for _, p in self._output_params()]
        used = "\n".join(locals_) + "\n" + text
        unused = [f"      (void){p};  // not read by the nodes" for p in params + ["arena_"]
                  if not re.search(rf"\b{p}\b", used)]
        if not re.search(r"\bblas_\b", text):
            locals_.remove("      const cublasHandle_t blas_ = fBlas;")
        if not re.search(r"\bstream_\b", text + "\n".join(locals_[1:])):
            locals_.remove("      const cudaStream_t stream_ = fStream;")
        return ["   // Every node's code, queued on the Session's stream.",
                f"   void nodes({self._params(False)}, char *arena_)", "   {", *unused, *locals_, "", *body, "   }"]

    def _values(self, name: str, ident: str, offset: str) -> list[str]:
        """A tensor whose values the dims give (kept on the host by the plan), written to the end of the arena
        by ``set_values`` before the nodes run: it feeds a kernel."""
        t = self.model.tensors[name]
        ctype = cpp_type(t.dtype)
        items = t.value.reshape(-1).tolist()
        if not items or len(items) > MAX_VALUES:
            raise SofieError(f"model {self.model.name!r}: tensor {name!r} holds {len(items)} values computed from the "
                             f"dims; the CUDA target writes at most {MAX_VALUES} such values to the device")
        self.values_bytes += -(-len(items) * t.dtype.itemsize // ALIGN_BYTES) * ALIGN_BYTES
        values = ", ".join(f"static_cast<{ctype}>({to_cpp(v, self.dims)})" for v in items)
        return [f"      {ctype} *const {ident} = reinterpret_cast<{ctype} *>(arena_ + {offset});",
                f"      kernels::set_values({ident}, kernels::Values<{ctype}, {len(items)}>{{{{{values}}}}}, stream_);"]

    def _node(self, index: int, node: Any) -> list[str]:
        m = self.model
        emitter = self.emitters[index]
        op = emitter.op
        inputs, outputs, in_ptrs, out_ptrs = node_operands(m, node, op.value_inputs, self.plan.storage, self.ptr)
        work = [self.tensor[w] for w in self.plan.workspaces.get(index, [])]
        ctx = NodeContext(index, inputs, outputs, in_ptrs, out_ptrs, self.dims, work, where=f"model {m.name!r}: {node}")
        code = emitter.emit(ctx)
        header = f"      // node {index}: {node.op_type} {comment(node.name)}"
        if not code:
            return [header + " (view, no code)"]
        body = ctx.declarations + code.splitlines()
        if ctx.declarations:
            return [header, "      {"] + [f"         {line}" for line in body] + ["      }"]
        return [header] + [f"      {line}" for line in body]


def build_command(name: str, archs: Sequence[str]) -> str:
    """The nvcc command line compiling ``<name>.cu`` to an object for ``archs`` (what its opening comment says)."""
    gencode = " ".join(f"-gencode arch=compute_{a[3:]},code={a}" for a in archs)
    return f"nvcc {' '.join(LANGUAGE_FLAGS)} -O3 {gencode} -c {name}.cu -o {name}.o"


def write_files(code: CudaCode, outdir: str | os.PathLike) -> GeneratedFiles:
    """Write ``<Name>.cu`` and its weights file ``<Name>.cuda.bin`` into ``outdir``."""
    outdir = Path(outdir)
    source = atomic_write(outdir / f"{code.name}.cu", code.source)
    weights = atomic_write(outdir / f"{code.name}{WEIGHTS_SUFFIX}", code.weights_file)
    return GeneratedFiles(source, weights, code.namespace)
