"""Writing the standalone C++ header of a planned model: a pure function of the plan, names and weights mode.

Layout of a generated header: includes, the BLAS declarations, the 16-bit
float types if the model has such tensors (``sofie_rdf::``), then one
namespace ``TMVA_SOFIE_<Name>`` holding the kernels the model uses
(``kernels::``), the Session support (``detail::``), embedded weights if
asked for, and ``struct Session`` with its constructor and ``infer``
overloads, which call the kernels node by node.

Weights: ``"dat"`` (SOFIE's text file) and ``"embed"`` (arrays in the
header) keep the header standalone; ``"root"`` reads a ROOT file with
``TFile`` like SOFIE's ``.root`` weights, so only that mode includes
``<TFile.h>`` and needs ROOT's headers and ``libRIO`` to build.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import sympy

from ..._version import __version__
from ...errors import ShapeError
from ...ir import TensorType
from ...ir.dims import free_symbols, is_static, num_elements
from ...ir.dtypes import STORAGE_TYPES
from ...planning import Planned
from ...planning.memory import runtime_sized
from .._cxx.context import NodeContext, cpp_literal, node_operands
from .._cxx.cpp import constraint_check, cpp_type, to_cpp
from .._cxx.names import NameTable, comment, string_literal
from .isa import LEVELS, PRELUDE, SUFFIXES, builds, built_flags, kernels_variant, region, undefine_builds
from .library import include_lines, kernel_order, kernel_source, user_headers
from .weights import ROOT_READER_SOURCE, ROOT_VECTOR_TYPES, root_weights_dir

_RESERVED = {"Session", "kernels", "detail", "infer", "infer_rows", "x", "y", "a", "b", "v", "lo", "hi", "filename", "reader",
             "fIsa", "fInfer", "fInferRows", "InferVariant", "InferRowsVariant", "isa", "kernels_avx2", "kernels_avx512",
             *(f"{f}_{v}" for f in ("infer", "infer_rows") for v in ("base", "avx2", "avx512", "variant"))}
# Names derived from identifiers (members, embedded weights): no model name may take these forms, since a
# dim (a parameter of infer) would shadow them.  Locals of infer end with "_", which no identifier does.
_DERIVED_PREFIXES = ("fTensor_", "fArena_", "kWeight_", "fBuffer_", "fRuntimeDims", "fProfileNs")
WEIGHTS_MODES = ("dat", "root", "embed")
# Suffix of the weights file of each mode that has one.
WEIGHTS_SUFFIXES = {"dat": ".dat", "root": ".root"}
_INCLUDES = ("algorithm", "cmath", "cstddef", "cstdint", "cstdlib", "cstring", "fstream", "limits", "memory", "new",
             "stdexcept", "string", "tuple", "type_traits", "utility", "vector")


@dataclass
class NodeInfo:
    """One node of the generated ``infer``, as the profiler reports it."""

    op_type: str
    name: str
    inputs: list[Optional[TensorType]]
    outputs: list[Optional[TensorType]]
    flops: Optional[sympy.Expr]     # per run, in the model's dims (None: not a FLOP-bound operator)
    code: bool                      # False for views (Reshape, ...): no code, nothing to time


@dataclass
class GeneratedCode:
    """A header and the weights it reads, plus what callers need to know."""

    name: str
    namespace: str
    header: str
    weights_mode: str
    weights: dict[str, np.ndarray]      # file tag -> values, in read order
    symbols: list[tuple[str, str]]     # (model dim name, C++ argument)
    inputs: list[tuple[str, TensorType]] = field(default_factory=list)
    outputs: list[tuple[str, TensorType]] = field(default_factory=list)
    # conditions on dims the code relies on (ops.base.Constraint), checked by the Python Session too
    constraints: list = field(default_factory=list)
    # dims computed while infer runs (NonZero's count, ...), read back with Session::runtime_dim(k)
    runtime_dims: list[str] = field(default_factory=list)
    # C++ declarations of the Session members (for interface-only headers)
    signatures: dict[str, str] = field(default_factory=dict)
    # user headers of custom operators: file name -> text, written next to the header (it includes them by name)
    includes: dict[str, str] = field(default_factory=dict)
    # the header defines the storage types (16-bit floats sofie_rdf::float16_t, bfloat16_t; the narrow types of
    # quantized tensors, sofie_rdf::int4_t, float8_e4m3fn_t, ...): a model has such tensors
    storage_types: bool = False
    # the nodes in the order infer runs them
    nodes: list[NodeInfo] = field(default_factory=list)
    # infer times every node into Session::fProfileNs (Session::profile_ns(), profile_reset())
    profile: bool = False

    @property
    def digest(self) -> str:
        """Hash of the source and weights: the compile-cache key."""
        h = hashlib.sha256(self.header.encode())
        for file_name, text in self.includes.items():
            h.update(f"{file_name}\0{text}\0".encode())
        for tag, value in self.weights.items():
            h.update(tag.encode())
            h.update(np.ascontiguousarray(value).tobytes())
        return h.hexdigest()


def storage_types_source() -> str:
    """The storage types (16-bit floats, narrow quantized types) with the includes they need, to declare on their
    own.

    The JIT declares them in a transaction of their own before a model's header: Cling rolls back a
    header that fails to compile, but not the include guard macro, which would then hide the types
    from every later header.
    """
    includes = "".join(f"#include <{h}>\n" for h in ("cmath", "cstdint", "cstring", "limits", "type_traits"))
    return includes + kernel_source("half") + kernel_source("narrow")


def write_header(planned: Planned, name: str, namespace: Optional[str] = None, weights: str = "dat",
                 weights_file: Optional[str] = None, profile: bool = False) -> GeneratedCode:
    """The header of ``planned`` as class ``<namespace>::Session`` (default ``TMVA_SOFIE_<name>``), reading its
    weights as ``weights`` says (from ``weights_file``, default ``<name>.dat`` or ``.root``).  ``profile``
    compiles a timer around every node (like SOFIE's ``Options::kProfile``; off, the code has none).
    Changes nothing."""
    return _HeaderWriter(planned, name, namespace or f"TMVA_SOFIE_{name}", weights, weights_file, profile).write()


class _HeaderWriter:
    """Generates one model's header from its plan."""

    def __init__(self, planned: Planned, name: str, namespace: str, weights: str, weights_file: Optional[str],
                 profile: bool):
        if weights not in WEIGHTS_MODES:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS_MODES)}, got {weights!r}")
        self.model, self.plan, self.emitters = planned.model, planned.memory, planned.emitters
        self.name, self.namespace, self.weights_mode, self.profile = name, namespace, weights, profile
        self.has_code: dict[int, bool] = {}  # node index -> whether it emitted code (views emit none)
        self.depth = 0  # blocks of control flow open where the next node's code goes
        self.weights_file = weights_file if weights_file is not None else f"{name}{WEIGHTS_SUFFIXES.get(weights, '')}"
        self.names = NameTable(_RESERVED, _DERIVED_PREFIXES)
        self.dims = {s.name: self.names.get(s.name, kind="dim") for s in self._symbols()}
        # Every dim as C++: the parameters of infer, then the dims computed while it runs.
        self.cpp_dims = {**self.dims, **{d: f"fRuntimeDims[{k}]" for k, d in enumerate(self.model.runtime_dims)}}
        self.tensor = {t: self.names.get(t, "tensor_") for t in self._all_tensors()}
        # Blocks of a static batch one call of infer runs (the graph planned for one: planning/row_blocks.py).
        block = self.plan.row_block
        self.blocks = block[0] // block[1] if block and isinstance(block[0], int) else 1
        # The widest level of kernels the header holds (isa.py): the one the plan was made for.
        self.top = LEVELS.get(getattr(planned.target, "isa", "generic"), 0)
        self.definitions: list[str] = []  # the infer variants' bodies, defined after the struct

    # ---- naming ------------------------------------------------------------
    def _symbols(self) -> list:
        input_shapes = [self.model.tensors[n].shape for n in self.model.inputs]
        symbols = free_symbols(input_shapes)
        known = set(symbols) | {sympy.Symbol(d, integer=True, nonnegative=True) for d in self.model.runtime_dims}
        for name, t in self.model.tensors.items():
            missing = {s for s in free_symbols([t.shape]) if s not in known}
            if missing:
                raise ShapeError(
                    f"model {self.model.name!r}: the size of tensor {name!r} depends on "
                    f"{', '.join(sorted(str(s) for s in missing))}, which no input shape determines"
                )
        return symbols

    def _all_tensors(self) -> list[str]:
        names = list(self.model.inputs) + list(self.model.initializers)
        names += [o for n in self.model.nodes for o in n.outputs if o]
        names += [o for o in self.model.outputs]
        names += [n for n, s in self.plan.storage.items() if s.kind == "symbolic"]
        names += [w for ws in self.plan.workspaces.values() for w in ws]
        return list(dict.fromkeys(names))

    def ptr(self, name: str) -> str:
        """C++ pointer expression of a tensor inside ``infer``."""
        s = self.plan.storage[name]
        if s.kind == "view":
            return self.ptr(s.root)
        if s.kind == "output":
            return self.tensor[s.root]
        if s.kind == "weight":
            if self.weights_mode == "embed":
                return f"kWeight_{self.tensor[name][len('tensor_'):]}"
            return f"f{self.tensor[name][0].upper()}{self.tensor[name][1:]}.data()" \
                if self.model.tensors[name].dtype != np.bool_ else f"f{self._member(name)}.get()"
        return self.tensor[name]

    def _member(self, name: str) -> str:
        ident = self.tensor[name]
        return ident[0].upper() + ident[1:]

    # ---- sections ------------------------------------------------------------
    def write(self) -> GeneratedCode:
        used = {k for e in self.emitters for k in e.kernels} | ({"values"} if self._reads_values() else set())
        includes = user_headers([e.op for e in self.emitters], self.model.name)
        uses_blas = "gemm" in kernel_order(used)  # directly or through a kernel that calls it
        storage = any(t.dtype in STORAGE_TYPES for t in self.model.tensors.values())
        parts = [self._banner(), f"#ifndef {self.namespace}_HXX", f"#define {self.namespace}_HXX", ""]
        parts += [f"#include <{h}>" for h in sorted(_INCLUDES + (("chrono",) if self.profile else ()))] + [""]
        if includes:
            parts += include_lines(includes) + [""]
        if self.weights_mode == "root":
            parts += ["#include <TFile.h>  // weights=\"root\": the Session reads its weights with ROOT", ""]
        if uses_blas:
            parts += [kernel_source("blas"), ""]
        if storage:
            parts += [kernel_source("half"), "", kernel_source("narrow"), ""]
        parts += [PRELUDE, *builds(self.top), "", f"namespace {self.namespace} {{", ""]
        parts += ["namespace detail {", kernel_source("runtime"), kernel_source("isa")]
        if self.weights_mode == "root":
            parts += [ROOT_READER_SOURCE]
        parts += ["} // namespace detail", ""]
        for level in range(self.top + 1):
            parts += kernels_variant(kernel_order(used), level) + [""]
        if self.weights_mode == "embed":
            parts += self._embedded_weights()
        parts += self._session() + self.definitions
        parts += [f"}} // namespace {self.namespace}", "", *undefine_builds(self.top), "",
                  f"#endif // {self.namespace}_HXX", ""]
        return GeneratedCode(
            name=self.name, namespace=self.namespace, header="\n".join(parts), weights_mode=self.weights_mode,
            weights={self.tensor[n]: v for n, v in self.model.initializers.items()},
            symbols=[(orig, ident) for orig, ident in self.dims.items()],
            inputs=[(n, self._whole(n)) for n in self.model.inputs],
            outputs=[(n, self._whole(n)) for n in self.model.outputs],
            constraints=list(self.model.constraints),
            runtime_dims=list(self.model.runtime_dims),
            signatures={
                "constructor": self._constructor()[0].strip(),
                "infer": f"void infer({self._params(True)})",
                "infer_vectors": f"{self._vector_return()} infer({self._params(False)})",
                "infer_args": ", ".join(self._arg_names(True)),
                "infer_vectors_args": ", ".join(self._arg_names(False)),
                **({"runtime_dim": "size_t runtime_dim(size_t k) const"} if self.model.runtime_dims else {}),
                **({"profile_ns": "std::vector<double> profile_ns() const", "profile_reset": "void profile_reset()"}
                   if self.profile else {}),
            },
            includes=includes,
            storage_types=storage,
            nodes=self._node_infos(),
            profile=self.profile,
        )

    def _reads_values(self) -> bool:
        """Whether a node reads a value input (a shape, axes, sizes, ...) while running, which its code checks
        with ``kernels/values.hxx``; where every such value is known, the code has none of it."""
        m = self.model
        return any(i and k in e.op.value_inputs and m.tensors[i].value is None
                   for node, e in zip(m.nodes, self.emitters) for k, i in enumerate(node.inputs))

    def _whole(self, name: str) -> TensorType:
        """``name``'s type in one call of infer: for a static batch planned per block of rows, the rows of all
        blocks (every tensor computed from the rows leads with a multiple of the block's rows)."""
        t = self.model.tensors[name]
        if self.blocks == 1 or name in self.model.initializers or t.value is not None or not t.shape:
            return t
        return replace(t, shape=(t.shape[0] * self.blocks,) + t.shape[1:])

    def _node_infos(self) -> list[NodeInfo]:
        m = self.model
        infos = []
        for node, emitter in zip(m.nodes, self.emitters):
            inputs = [self._whole(i) if i else None for i in node.inputs]
            outputs = [self._whole(o) if o else None for o in node.outputs]
            flops = emitter.op.flops(inputs, outputs)
            infos.append(NodeInfo(node.op_type, node.name, inputs, outputs,
                                  None if flops is None else sympy.sympify(flops), self.has_code[len(infos)]))
        return infos

    def _banner(self) -> str:
        m = self.model
        lines = [f"// {self.name}.hxx: inference code generated by sofie-rdf {__version__}",
                 f"// from model {comment(m.name)} ({comment(m.source) or 'IR'}).",
                 self._dependencies(),
                 "//"]
        for label, names in (("input", m.inputs), ("output", m.outputs)):
            for n in names:
                t = m.tensors[n]
                lines.append(f"// {label} {comment(n)}: {t.dtype} {comment(tuple(str(d) for d in t.shape))}")
        for k, d in enumerate(m.runtime_dims):
            lines.append(f"// runtime_dim({k}) after infer: {comment(d)}")
        return "\n".join(lines)

    def _dependencies(self) -> str:
        build = ("// Any C++17 compiler and flags build it (g++ -std=c++17 -O2 -c, -march=native, Cling): each Session\n"
                 "// runs the kernels of the widest instruction set its CPU has (SOFIE_RDF_ISA below).")
        if self.weights_mode == "root":
            return ("// Needs the C++17 standard library, BLAS (see SOFIE_BLAS_PREFIX) and ROOT (TFile, libRIO):\n"
                    f"// the Session reads its weights from the ROOT file {comment(self.weights_file)}, "
                    f"directory {comment(root_weights_dir(self.name))}.\n" + build)
        return "// Standalone: needs only the C++17 standard library and BLAS (see SOFIE_BLAS_PREFIX).\n" + build

    def _embedded_weights(self) -> list[str]:
        out = ["// Weights embedded in the header."]
        for n, v in self.model.initializers.items():
            t = cpp_type(v.dtype)
            values = ", ".join(cpp_literal(x, v.dtype) for x in v.reshape(-1).tolist()) or "0"
            out.append(f"alignas(64) static const {t} kWeight_{self.tensor[n][len('tensor_'):]}[{max(v.size, 1)}] = "
                       f"{{{values}}};")
        return out + [""]

    # ---- the Session struct ----------------------------------------------------
    def _session(self) -> list[str]:
        m = self.model
        out = ["struct Session {"]
        if self.weights_mode != "embed" and m.initializers:
            out.append("   // Weights, read once by the constructor.")
            for n, v in m.initializers.items():
                t = cpp_type(v.dtype)
                decl = "std::shared_ptr<bool[]>" if v.dtype == np.bool_ else f"detail::WeightVector<{t}>"  # copies share it
                out.append(f"   {decl} f{self._member(n)};")
        dtypes = list(self.plan.arenas)
        if dtypes:
            out.append("   // Memory of intermediate tensors, planned from their lifetimes.")
            out += [f"   detail::Arena<{cpp_type(d)}> fArena_{np.dtype(d).name};" for d in dtypes]
        dynamic = [n for n, s in self.plan.storage.items() if s.kind == "dynamic"]
        if dynamic:
            out.append("   // Tensors sized while infer runs, each in its own buffer grown only past the largest size seen.")
            out += [f"   detail::Arena<{cpp_type(self.plan.tensor_type(m, n).dtype)}> fBuffer_{self.tensor[n]};"
                    for n in dynamic]
        if self.profile:
            n = len(m.nodes)
            out += ["   // Profiling build: nanoseconds spent in each node (in model order), summed over calls.",
                    f"   double fProfileNs[{max(n, 1)}] = {{}};",
                    f"   std::vector<double> profile_ns() const {{ return std::vector<double>(fProfileNs, fProfileNs + {n}); }}",
                    f"   void profile_reset() {{ std::fill(fProfileNs, fProfileNs + {n}, 0.0); }}"]
        if m.runtime_dims:
            out += ["   // Dims computed by infer (see the header's first lines); valid after each call.",
                    f"   size_t fRuntimeDims[{len(m.runtime_dims)}] = {{}};",
                    "   size_t runtime_dim(size_t k) const { return fRuntimeDims[k]; }"]
        out += ["   // The instruction set whose kernels infer runs (kernels/isa.hxx), chosen for this CPU.",
                f"   int fIsa = detail::pick_isa_level({built_flags(self.top)}, {string_literal(self.model.name)});"]
        if self.plan.row_block:
            out += [""] + self._constructor() + [""] + self._infer_blocks() + [""] + self._infer_vectors()
            out += ["", "private:"] + self._infer_noalloc("infer_rows")
        else:
            out += [""] + self._constructor() + [""] + self._infer_noalloc("infer") + [""] + self._infer_vectors()
        out += ["};", ""]
        return out

    def _constructor(self) -> list[str]:
        m = self.model
        static_arenas = [d for d, size in self.plan.arenas.items() if is_static([size])]
        body = []
        if self.weights_mode != "embed":
            sig = f"   explicit Session(const std::string &filename = {string_literal(self.weights_file)})"
            if m.initializers:
                body.append(self._reader())
            for n, v in m.initializers.items():
                member = f"f{self._member(n)}"
                alloc = f"{member}.reset(new bool[{v.size}]);" if v.dtype == np.bool_ else f"{member}.resize({v.size});"
                body.append(f"      {alloc}")
                ptr = f"{member}.get()" if v.dtype == np.bool_ else f"{member}.data()"
                stored = f"<{ROOT_VECTOR_TYPES[np.dtype(v.dtype)]}>" if self.weights_mode == "root" else ""
                body.append(f"      reader.read{stored}(\"{self.tensor[n]}\", {ptr}, {v.size});")
            if not m.initializers:
                body.append("      (void)filename;  // this model has no weights")
        else:
            sig = "   Session()"
        for d in static_arenas:
            body.append(f"      fArena_{np.dtype(d).name}.reserve({self.plan.arenas[d]});")
        return [sig, "   {", *body, "   }"]

    def _reader(self) -> str:
        if self.weights_mode == "root":
            return f"      detail::RootWeightReader reader(filename, {string_literal(root_weights_dir(self.name))});"
        return "      detail::WeightReader reader(filename);"

    def _params(self, with_outputs: bool) -> str:
        params = [f"size_t {ident}" for ident in self.dims.values()]
        params += [f"const {cpp_type(self.model.tensors[n].dtype)} *{self.tensor[n]}" for n in self.model.inputs]
        if with_outputs:
            params += [f"std::vector<{cpp_type(self.model.tensors[n].dtype)}> &{p}" if self._runtime_sized(n)
                       else f"{cpp_type(self.model.tensors[n].dtype)} *{p}" for n, p in self._output_params()]
        return ", ".join(params)

    def _runtime_sized(self, name: str) -> bool:
        return runtime_sized(self.model, self.model.tensors[name].size)

    def _arg_names(self, with_outputs: bool) -> list[str]:
        names = list(self.dims.values()) + [self.tensor[n] for n in self.model.inputs]
        return names + ([p for _, p in self._output_params()] if with_outputs else [])

    def _output_params(self) -> list[tuple[str, str]]:
        """(output, parameter name); outputs the plan could not bind are copied at the end."""
        return [(n, f"out{k}_{self.tensor[n]}_" if k in self.plan.copies else self.tensor[n])
                for k, n in enumerate(self.model.outputs)]

    def _infer_blocks(self) -> list[str]:
        """``infer`` over a batch of independent rows: ``infer_rows`` on one block of rows after another (for a
        static batch, blocks of one size that divides it: the graph was planned for one of them)."""
        dim, rows = self.plan.row_block
        static = isinstance(dim, int)
        n = str(dim) if static else self.dims[dim]
        names = [self.tensor[i] for i in self.model.inputs] + [p for _, p in self._output_params()]
        tensors = list(self.model.inputs) + list(self.model.outputs)
        args = [] if static else [f"std::min(block_, {n} - row_)"]
        args += [f"{p} + row_ * {num_elements(self.model.tensors[t].shape[1:])}" for p, t in zip(names, tensors)]
        rows_of = f"the batch of {dim}" if static else comment(dim)
        return ["   // Inference without allocation: outputs are written to the caller's buffers.",
                f"   // The rows of {rows_of} are computed independently: a batch runs in blocks of rows whose",
                "   // intermediate tensors stay in cache, in an arena sized for one block.",
                f"   void infer({self._params(True)})", "   {",
                f"      const size_t block_ = {rows};",
                f"      for (size_t row_ = 0; row_ < {n}; row_ += block_)",
                f"         infer_rows({', '.join(args)});",
                "   }"]

    def _infer_noalloc(self, function: str) -> list[str]:
        """``function``: the call of its variant for the Session's instruction set (in the struct, returned), and
        each variant's definition (after it, in :attr:`definitions`)."""
        what = "One block of rows" if function != "infer" else "Inference without allocation"
        params, args = self._params(True), ", ".join(self._arg_names(True))
        body = self._infer_body()
        out = self._variant_pointer(function, params) if self.top else []
        call = f"(this->*{self._variant_member(function)})" if self.top else f"{function}_base"
        out += [f"   // {what}: outputs are written to the caller's buffers, by the kernels of fIsa's instruction set.",
                f"   void {function}({params})", "   {", f"      {call}({args});", "   }"]
        variants = ["base"] + [SUFFIXES[level] for level in range(1, self.top + 1)]
        out += [f"   void {function}_{v}({params});" for v in variants]
        for level, variant in enumerate(variants):
            alias = [f"   namespace kernels = kernels_{variant};  // this instruction set's"] if level else []
            linkage = "SOFIE_RDF_PLANNED_INLINE" if level == self.top else "inline"  # isa.PRELUDE
            definition = [f"{linkage} void Session::{function}_{variant}({params})", "{", *alias,
                          *(line[3:] if line.startswith("   ") else line for line in body), "}"]
            self.definitions += [f"#if SOFIE_RDF_BUILD_{'BASE' if level == 0 else level}",
                                 *region(level, definition), "#endif", ""]
        return out

    @staticmethod
    def _variant_member(function: str) -> str:
        return "f" + "".join(part.capitalize() for part in function.split("_"))

    def _variant_pointer(self, function: str, params: str) -> list[str]:
        """The member pointer to ``function``'s variant for fIsa, chosen once per Session.  Not a call the compiler
        resolves: under Cling every variant is always_inline (isa.region), and Cling's inliner, which checks no
        instruction set, put the AVX2 variant into ``function``, compiled for generic x86-64, where it ran as SSE
        (GELU 2.6x slower)."""
        alias, member = f"{self._variant_member(function)[1:]}Variant", self._variant_member(function)
        out = [f"   // {function} of each instruction set, through a member pointer chosen for fIsa: a call the compiler",
               "   // resolves could inline the AVX2 body into code compiled for generic x86-64 (Cling's always_inline).",
               f"   using {alias} = void (Session::*)({params});",
               f"   {alias} {member} = {function}_variant(fIsa);",
               f"   static {alias} {function}_variant([[maybe_unused]] int isa)", "   {"]
        for level in range(self.top, 0, -1):
            out += [f"#if SOFIE_RDF_BUILD_{level}", f"      if (isa == {level})",
                    f"         return &Session::{function}_{SUFFIXES[level]};", "#endif"]
        return out + ["#if SOFIE_RDF_BUILD_BASE", f"      return &Session::{function}_base;", "#else",
                      "      return nullptr; // detail::pick_isa_level chose a level built above", "#endif", "   }"]

    def _infer_body(self) -> list[str]:
        """The statements of ``infer`` (of ``infer_rows`` for blocks of rows): the kernels node by node."""
        m, plan = self.model, self.plan
        out = self._constraint_checks()
        for d, size in plan.arenas.items():
            out.append(f"      {cpp_type(d)} *arena_{np.dtype(d).name}_ = "
                       f"fArena_{np.dtype(d).name}.reserve({to_cpp(size, self.cpp_dims)});")
        for n, s in plan.storage.items():
            if s.kind == "arena":
                off = to_cpp(s.offset, self.cpp_dims)
                out.append(f"      {cpp_type(s.dtype)} *{self.tensor[n]} = arena_{np.dtype(s.dtype).name}_ + {off};")
            elif s.kind == "dynamic":
                dtype = plan.tensor_type(m, n).dtype
                out.append(f"      {cpp_type(dtype)} *{self.tensor[n]} = nullptr;  // sized while running")
            elif s.kind == "symbolic":
                t = m.tensors[n]
                ct = cpp_type(t.dtype)
                vals = ", ".join(f"static_cast<{ct}>({to_cpp(v, self.cpp_dims)})" for v in t.value.reshape(-1).tolist())
                out.append(f"      const {ct} {self.tensor[n]}[{max(t.value.size, 1)}] = {{{vals or '0'}}};")
        out.append("")
        for i, node in enumerate(m.nodes):
            out += self._node(i, node)
        for k, (n, param) in enumerate(self._output_params()):
            if k in self.plan.copies:
                size = to_cpp(m.tensors[n].size, self.cpp_dims)
                if self._runtime_sized(n):
                    out.append(f"      {param}.assign({self.ptr(n)}, {self.ptr(n)} + {size});  // output {comment(n)}")
                else:
                    out.append(f"      detail::copy_n({self.ptr(n)}, {size}, {param});  // output {comment(n)}")
        # An input only whose shape matters (Shape -> Reshape) or a dim no size uses is still a
        # parameter of the interface; mark it used so -Wunused-parameter stays quiet.
        body = "\n".join(out)
        unused = [p for p in self._arg_names(False) if not re.search(rf"\b{p}\b", body)]
        return [f"      (void){p};  // not read at run time" for p in unused] + out

    def _constraint_checks(self, after: Optional[set[str]] = None) -> list[str]:
        """Run-time checks of the conditions on dims the code relies on (cheap: a few compares).

        At the start of ``infer`` (``after`` None) those on its parameters; after a node
        (``after``: its outputs), those whose last dim computed at run time that node computes.
        """
        out = []
        for c in self.model.constraints:
            point = self._check_point(c)
            if (point is None) != (after is None) or (point is not None and point not in after):
                continue
            condition, message = constraint_check(c, self.cpp_dims, self.model.name)
            out += [f"      if (!({condition}))", f"         throw std::invalid_argument({message});"]
        return out

    def _check_point(self, constraint) -> Optional[str]:
        """The tensor after whose producer a constraint can be checked (None: at the start)."""
        order = list(self.model.runtime_dims)
        used = [s.name for s in constraint.condition.free_symbols if s.name in self.model.runtime_dims]
        return self.model.runtime_dims[max(used, key=order.index)] if used else None

    def _reservations(self, index: int, node) -> tuple[list[str], dict[int, str]]:
        """Memory for the node's tensors sized at run time: statements to run before the node, and
        (output index -> statement) for outputs sized by a dim the node computes itself (``ctx.reserve``)."""
        own = {d for d, t in self.model.runtime_dims.items() if t in node.outputs}
        before, deferred = [], {}
        names = list(enumerate(node.outputs)) + [(-1, w) for w in self.plan.workspaces.get(index, [])]
        for k, name in names:
            if not name or self.plan.storage[name].kind != "dynamic":
                continue
            size = self.plan.tensor_type(self.model, name).size
            stmt = f"{self.tensor[name]} = fBuffer_{self.tensor[name]}.reserve({to_cpp(size, self.cpp_dims)});"
            if {s.name for s in size.free_symbols} & own:
                if k < 0:
                    raise ShapeError(f"model {self.model.name!r}: {node}: scratch space cannot depend on a dim "
                                     "the node itself computes")
                deferred[k] = stmt
            else:
                before.append(f"      {stmt}")
        return before, deferred

    def _node(self, index: int, node) -> list[str]:
        m = self.model
        emitter = self.emitters[index]
        op = emitter.op
        inputs, outputs, in_ptrs, out_ptrs = node_operands(m, node, op.value_inputs, self.plan.storage, self.ptr)
        work = [self.tensor[w] for w in self.plan.workspaces.get(index, [])]
        before, deferred = self._reservations(index, node)
        ctx = NodeContext(index, inputs, outputs, in_ptrs, out_ptrs, self.cpp_dims, work, deferred,
                          where=f"model {m.name!r}: {node}")
        code = emitter.emit(ctx)
        self.has_code[index] = bool(code)
        # Control-flow markers (emitters/control.py) open and close blocks: (change before, change after).
        block = getattr(emitter, "block", (0, 0))
        header = "   " * self.depth + f"      // node {index}: {node.op_type} {comment(node.name)!s}"
        self.depth += block[0]
        pad = "   " * self.depth
        if not code:
            return [header + " (view, no code)"]
        lines = []
        timed = self.profile and block == (0, 0)  # a timer cannot span a block's brace
        if timed:
            lines.append(f"      const auto start{index}_ = std::chrono::steady_clock::now();")
        lines += before
        body = ctx.declarations + code.splitlines()
        if ctx.declarations:
            lines += ["      {"] + [f"         {line}" for line in body] + ["      }"]
        else:
            lines += [f"      {line}" for line in body]
        if timed:
            lines.append(f"      fProfileNs[{index}] += std::chrono::duration<double, std::nano>("
                         f"std::chrono::steady_clock::now() - start{index}_).count();")
        self.depth += block[1]
        return [header] + [pad + line for line in lines + self._constraint_checks(set(node.outputs))]

    def _vector_return(self) -> str:
        vec = [f"std::vector<{cpp_type(self.model.tensors[n].dtype)}>" for n in self.model.outputs]
        return vec[0] if len(vec) == 1 else f"std::tuple<{', '.join(vec)}>"

    def _infer_vectors(self) -> list[str]:
        m = self.model
        types = [cpp_type(m.tensors[n].dtype) for n in m.outputs]
        ret = self._vector_return()
        args = [ident for ident in self.dims.values()] + [self.tensor[n] for n in m.inputs]
        out = ["   // Inference returning the outputs as vectors.", f"   {ret} infer({self._params(False)})", "   {"]
        names = []
        for k, n in enumerate(m.outputs):
            size = to_cpp(self._whole(n).size, self.cpp_dims)
            var = f"output{k}_"
            if self._runtime_sized(n):  # sized by infer itself
                out.append(f"      std::vector<{types[k]}> {var};")
                args.append(var)
            elif types[k] == "bool":
                out.append(f"      std::unique_ptr<bool[]> output{k}_buffer_(new bool[std::max<size_t>({size}, 1)]);")
                args.append(f"output{k}_buffer_.get()")
            else:
                out.append(f"      std::vector<{types[k]}> {var}({size});")
                args.append(f"{var}.data()")
            names.append(var)
        out.append(f"      infer({', '.join(args)});")
        for k, n in enumerate(m.outputs):
            if types[k] == "bool" and not self._runtime_sized(n):
                size = to_cpp(self._whole(n).size, self.cpp_dims)
                out.append(f"      std::vector<bool> output{k}_(output{k}_buffer_.get(), output{k}_buffer_.get() + {size});")
        if len(names) == 1:
            out.append(f"      return {names[0]};")
        else:
            out.append(f"      return {{{', '.join(names)}}};")
        return out + ["   }"]
