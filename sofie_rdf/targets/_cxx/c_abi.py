"""The C ABI of a compiled model library (any target): plain functions over an opaque handle, callable without C++ or ROOT.

The Python Session binds them with ctypes (``sofie_rdf._native``); C, Julia or Rust callers can too. Every
function catches what the C++ throws: a call returns 0, 1 for a value the model cannot accept
(``std::invalid_argument``: a shape, axis or size, naming the node) or 2 for any other failure, and
``sofie_last_error()`` gives the text (per thread).

    const char *sofie_interface(void);          JSON: name, inputs, outputs, dims (ir/info.Interface)
    const char *sofie_last_error(void);
    void *sofie_create(const char *weights);     NULL weights: the default file (or the embedded weights)
    void sofie_destroy(void *session);
    int sofie_infer(void *session, const size_t *dims, void *const *buffers);
                                                 dims: the symbolic dims' values; buffers: inputs, then
                                                 outputs (NULL for those sized while running)
    int sofie_output_shape(const void *session, size_t k, const size_t *dims, size_t *shape);
                                                 1 when the dims break a condition infer relies on
    const void *sofie_output_data(const void *session, size_t k);   outputs sized while running
    size_t sofie_runtime_dim(const void *session, size_t k);
    int sofie_profile_ns(const void *session, double *ns);  void sofie_profile_reset(void *session);
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...ir.info import Interface
from .cpp import constraint_check, cpp_type, to_cpp
from .names import string_literal

# The generated code of any target (``targets/cpu.GeneratedCode``, ``targets/cuda.CudaCode``): its name,
# namespace, inputs, outputs, symbols, runtime_dims, constraints, weights_mode, nodes and profile.
GeneratedCode = Any


def runtime_sized(code: GeneratedCode) -> list[int]:
    """The outputs whose size depends on a dim computed while ``infer`` runs."""
    runtime = set(code.runtime_dims)
    return [k for k, (_, t) in enumerate(code.outputs)
            if not isinstance(t.size, int) and {s.name for s in t.size.free_symbols} & runtime]


def interface_of(code: GeneratedCode, namespace: str) -> Interface:
    """The :class:`Interface` a library built from ``code`` exports, its C++ Session in ``namespace``."""
    return Interface(
        name=code.name, namespace=namespace,
        inputs=tuple(t.info(n) for n, t in code.inputs), outputs=tuple(t.info(n) for n, t in code.outputs),
        symbols=tuple(orig for orig, _ in code.symbols), runtime_dims=tuple(code.runtime_dims),
        runtime_sized=tuple(runtime_sized(code)), weights_mode=code.weights_mode, nodes=len(code.nodes),
        profile=code.profile)


def c_abi_source(code: GeneratedCode, namespace: str, extra: Sequence[str] = ()) -> str:
    """The ``extern "C"`` functions of a library built from ``code`` (its Session in ``code.namespace``);
    ``extra``: lines of a target's own functions, which may use ``Handle`` and ``sofie_fail_``."""
    sized = runtime_sized(code)
    dims = {orig: f"dims[{k}]" for k, (orig, _) in enumerate(code.symbols)}
    dims.update({d: f"h.session.runtime_dim({k})" for k, d in enumerate(code.runtime_dims)})
    interface = interface_of(code, namespace).to_json()
    return "\n".join([
        f"// C ABI of the model {code.name} (see sofie_rdf/targets/_cxx/c_abi.py): plain functions over a handle.",
        "#include <cstddef>", "#include <exception>", "#include <stdexcept>", "#include <string>",
        "#include <vector>", "",
        "namespace {",
        "thread_local std::string sofie_error_;",
        "",
        "// The Session and the outputs it sizes while running, which the caller copies out after the call.",
        "struct Handle {",
        f"   {code.namespace}::Session session;",
        *[f"   std::vector<{cpp_type(code.outputs[k][1].dtype)}> out{k};" for k in sized],
        *_bool_copies(code, sized),
        _session_init(code),
        "};",
        "",
        "int sofie_fail_(int status, const char *what)",
        "{",
        "   sofie_error_ = what;",
        "   return status;",
        "}",
        "} // namespace",
        "",
        "#pragma GCC visibility push(default)  // exported from a library built with -fvisibility=hidden",
        'extern "C" {',
        "",
        f"const char *sofie_interface() {{ return {string_literal(interface)}; }}",
        "",
        "const char *sofie_last_error() { return sofie_error_.c_str(); }",
        "",
        "void *sofie_create(const char *weights)",
        "{",
        "   try {",
        "      return new Handle(weights);",
        "   } catch (const std::exception &e) {",
        "      sofie_fail_(2, e.what());",
        "   } catch (...) {",
        '      sofie_fail_(2, "unknown C++ exception");',
        "   }",
        "   return nullptr;",
        "}",
        "",
        "void sofie_destroy(void *session) { delete static_cast<Handle *>(session); }",
        "",
        "int sofie_infer(void *session, const size_t *dims, void *const *buffers)",
        "{",
        "   Handle &h = *static_cast<Handle *>(session);",
        *(["   (void)dims;"] if not code.symbols else []),
        *(["   (void)buffers;"] if not code.inputs and not code.outputs else []),
        "   try {",
        f"      h.session.infer({', '.join(infer_args(code, sized))});",
        *_bool_conversions(code, sized),
        "   } catch (const std::invalid_argument &e) {",
        "      return sofie_fail_(1, e.what());",
        "   } catch (const std::exception &e) {",
        "      return sofie_fail_(2, e.what());",
        "   } catch (...) {",
        '      return sofie_fail_(2, "unknown C++ exception");',
        "   }",
        "   return 0;",
        "}",
        "",
        "int sofie_output_shape(const void *session, size_t k, const size_t *dims, size_t *shape)",
        "{",
        "   const Handle &h = *static_cast<const Handle *>(session);",
        "   (void)h;",
        *(["   (void)dims;"] if not code.symbols else []),
        *_dim_checks(code, dims),
        "   switch (k) {",
        *_shape_cases(code, dims),
        "   }",
        '   return sofie_fail_(2, "no such output");',
        "}",
        "",
        "const void *sofie_output_data(const void *session, size_t k)",
        "{",
        "   const Handle &h = *static_cast<const Handle *>(session);",
        "   (void)h;",
        "   switch (k) {",
        *[f"   case {k}: return h.{'bytes' if _is_bool(code, k) else 'out'}{k}.data();" for k in sized],
        "   }",
        "   return nullptr;",
        "}",
        "",
        "size_t sofie_runtime_dim(const void *session, size_t k)",
        "{",
        *([f"   return k < {len(code.runtime_dims)} ? static_cast<const Handle *>(session)->session.runtime_dim(k) : 0;"]
          if code.runtime_dims else ["   (void)session;", "   (void)k;", "   return 0;"]),
        "}",
        "",
        *_profile_functions(code),
        *extra,
        '} // extern "C"',
        "#pragma GCC visibility pop",
        "",
    ])


def _session_init(code: GeneratedCode) -> str:
    """The Handle constructor: the Session reads ``weights``, or its default file when that is NULL."""
    if code.weights_mode == "embed":
        return "   explicit Handle(const char *weights) { (void)weights; }  // the weights are in the library"
    session = f"{code.namespace}::Session"
    return f"   explicit Handle(const char *weights) : session(weights ? {session}(weights) : {session}()) {{}}"


def infer_args(code: GeneratedCode, sized: list[int]) -> list[str]:
    """The arguments of ``Session::infer`` from ``dims`` and ``buffers`` (outputs ``sized`` go to the Handle)."""
    args = [f"dims[{k}]" for k in range(len(code.symbols))]
    args += [f"static_cast<const {cpp_type(t.dtype)} *>(buffers[{k}])" for k, (_, t) in enumerate(code.inputs)]
    n_in = len(code.inputs)
    args += [f"h.out{k}" if k in sized else f"static_cast<{cpp_type(t.dtype)} *>(buffers[{n_in + k}])"
             for k, (_, t) in enumerate(code.outputs)]
    return args


def _is_bool(code: GeneratedCode, k: int) -> bool:
    return np.dtype(code.outputs[k][1].dtype) == np.bool_


def _bool_copies(code: GeneratedCode, sized: list[int]) -> list[str]:
    """Byte copies of bool outputs sized while running: ``std::vector<bool>`` has no buffer to hand out."""
    return [f"   std::vector<unsigned char> bytes{k};" for k in sized if _is_bool(code, k)]


def _bool_conversions(code: GeneratedCode, sized: list[int]) -> list[str]:
    return [f"      h.bytes{k}.assign(h.out{k}.begin(), h.out{k}.end());" for k in sized if _is_bool(code, k)]


def _dim_checks(code: GeneratedCode, dims: dict[str, str]) -> list[str]:
    """The conditions on the dims that ``infer`` checks first, checked before a shape is computed from them
    (a shape of dims that break them would wrap around in ``size_t``)."""
    out = []
    runtime = set(code.runtime_dims)
    for c in code.constraints:
        if not {s.name for s in c.condition.free_symbols} & runtime:
            condition, message = constraint_check(c, dims, code.name)
            out += [f"   if (!({condition}))", f"      return sofie_fail_(1, {message});"]
    return out


def _shape_cases(code: GeneratedCode, dims: dict[str, str]) -> list[str]:
    out = []
    for k, (_, t) in enumerate(code.outputs):
        sets = " ".join(f"shape[{a}] = {to_cpp(d, dims)};" for a, d in enumerate(t.shape))
        out.append(f"   case {k}: {sets}{' ' if sets else ''}return 0;" if t.shape else f"   case {k}: (void)shape; return 0;")
    return out


def _profile_functions(code: GeneratedCode) -> list[str]:
    """Node timers of a profiling build; a plain build reports none."""
    if not code.profile:
        return ["int sofie_profile_ns(const void *session, double *ns) { (void)session; (void)ns; return 0; }",
                "void sofie_profile_reset(void *session) { (void)session; }", ""]
    return ["int sofie_profile_ns(const void *session, double *ns)", "{",
            "   const std::vector<double> t = static_cast<const Handle *>(session)->session.profile_ns();",
            "   for (size_t k = 0; k < t.size(); ++k)", "      ns[k] = t[k];",
            "   return static_cast<int>(t.size());", "}",
            "void sofie_profile_reset(void *session) { static_cast<Handle *>(session)->session.profile_reset(); }", ""]
