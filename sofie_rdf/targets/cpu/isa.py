"""Kernels for several instruction sets in one header, the widest the CPU has chosen when a Session is made.

Cling compiles for a baseline x86-64 (SSE2) unless ROOT was started with other flags, and so does a build
system that passes no ``-march`` (CMSSW, a plain ``g++ -O2``): the kernels written for AVX2 and AVX-512 would
not run there.  So a header holds its kernels, and ``infer``'s body, once per level (0: what the compiler's
flags reach; 1: AVX2 with FMA and F16C; 2: AVX-512 with VNNI) up to the level it was planned for: the levels
above the flags' in regions whose functions are compiled for that level's instructions (GCC's
``#pragma GCC target``, Clang's and Cling's ``#pragma clang attribute``), each in a namespace of its own
(``kernels``, ``kernels_avx2``, ``kernels_avx512``).  ``detail::pick_isa_level`` (kernels/isa.hxx) reads the
CPU once per Session.  A build whose flags reach the plan's level compiles one copy, as before; defining
``SOFIE_RDF_ISA=<level>`` compiles that level's alone (the JIT does, for the CPU it runs on).  Cling compiles the
regions too, with every function in them always_inline (:data:`CLING_INLINE`): ROOT's Cling inlines nothing
else.  What ROOT's flags still cost (its register allocator) is in benchmarks/build_paths.py; what serves ROOT
users best stays the native build (``compile``'s default backend).
"""

from __future__ import annotations

import re
from functools import cache

from .library import kernel_source

LEVELS = {"generic": 0, "avx2": 1, "avx512": 2}
# The namespace and the function suffix of each variant; "base" is the one the compiler's flags build.
SUFFIXES = {1: "avx2", 2: "avx512"}
# What a level's region compiles for: x86-64-v3's vector features, and v4's with VNNI (kernels/isa.hxx checks
# the same bits at run time).
REGION_TARGETS = {1: "avx2,fma,f16c,bmi,bmi2",
                  2: "avx2,fma,f16c,bmi,bmi2,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"}
# The feature macros the kernels test (kernels/simd.hxx, gemm.hxx, qgemm.hxx, ...): per region its level's,
# for the flags' own build what the compiler defines.
FEATURES = ("SOFIE_RDF_AVX2", "SOFIE_RDF_AVX512", "SOFIE_RDF_AVX512VNNI", "SOFIE_RDF_F16C")

PRELUDE = """\
// Cling compiles at ROOT's -O1 unless told otherwise: this header's own code at -O3.  The variants of infer are
// inline functions, which Cling compiles where they are first needed (when a Session is made) at that code's
// level.  Define SOFIE_RDF_CLING_EAGER before declaring the header to compile the variant of its planned
// instruction set here, at -O3: CNNs and graph networks run 1.15x to 1.3x faster, and the declaration takes
// 1.1x to 9x as long (docs/guides/cpp.md).
#if defined(__CLING__)
#pragma cling optimize(3)
#endif
// Instruction sets: each level of kernels above the one the compiler's flags reach (SOFIE_RDF_BASE) is compiled
// for its own instructions as well, and each Session runs the widest its CPU has.  -DSOFIE_RDF_ISA=0, 1 or 2
// compiles one level alone (1: AVX2 with FMA, 2: AVX-512 with VNNI; 0: the flags').
#ifndef SOFIE_RDF_ISA_PRELUDE
#define SOFIE_RDF_ISA_PRELUDE
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define SOFIE_RDF_BASE 2
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define SOFIE_RDF_BASE 1
#else
#define SOFIE_RDF_BASE 0
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SOFIE_RDF_X86 1
#else
#define SOFIE_RDF_X86 0
#endif
#endif"""

_BASE_FEATURES = """\
#define SOFIE_RDF_AVX2 (SOFIE_RDF_BASE >= 1)
#define SOFIE_RDF_AVX512 (SOFIE_RDF_BASE >= 2)
#if defined(__AVX512VNNI__) && SOFIE_RDF_BASE >= 2
#define SOFIE_RDF_AVX512VNNI 1
#else
#define SOFIE_RDF_AVX512VNNI 0
#endif
#define SOFIE_RDF_F16C (SOFIE_RDF_BASE >= 1)"""


def builds(top: int) -> list[str]:
    """``SOFIE_RDF_BUILD_BASE`` and ``SOFIE_RDF_BUILD_<level>`` for levels 1 to ``top`` (the plan's): which
    variants this compilation makes (undefined again at the header's end, see :func:`undefine_builds`)."""
    wanted = f"(SOFIE_RDF_ISA < {top} ? SOFIE_RDF_ISA : {top})"
    lines = ["#if defined(SOFIE_RDF_ISA)",
             f"#define SOFIE_RDF_BUILD_BASE ({wanted} <= SOFIE_RDF_BASE || !SOFIE_RDF_X86)"]
    lines += [f"#define SOFIE_RDF_BUILD_{k} ({wanted} == {k} && SOFIE_RDF_BASE < {k} && SOFIE_RDF_X86)"
              for k in range(1, top + 1)]
    lines += ["#else", "#define SOFIE_RDF_BUILD_BASE 1"]
    lines += [f"#define SOFIE_RDF_BUILD_{k} (SOFIE_RDF_BASE < {k} && SOFIE_RDF_X86)" for k in range(1, top + 1)]
    # How the planned level's infer is defined (PRELUDE: SOFIE_RDF_CLING_EAGER), per header: each is declared
    # with or without it.
    eager = ["#if defined(__CLING__) && defined(SOFIE_RDF_CLING_EAGER)", "#define SOFIE_RDF_PLANNED_INLINE", "#else",
             "#define SOFIE_RDF_PLANNED_INLINE inline", "#endif"]
    return lines + ["#endif", *eager]


def undefine_builds(top: int) -> list[str]:
    return ["#undef SOFIE_RDF_BUILD_BASE"] + [f"#undef SOFIE_RDF_BUILD_{k}" for k in range(1, top + 1)] + [
        "#undef SOFIE_RDF_PLANNED_INLINE"]


def built_flags(top: int) -> str:
    """The C++ initializer of ``bool built[3]`` for ``detail::pick_isa_level``."""
    return "{" + ", ".join(["SOFIE_RDF_BUILD_BASE"] + [f"SOFIE_RDF_BUILD_{k}" if k <= top else "false"
                                                         for k in (1, 2)]) + "}"


# ROOT's Cling inlines only what is marked always_inline (it runs LLVM's always-inliner alone unless ROOT was
# started with -O2 or more), so every kernel helper and every lambda (the accessors of kernels/winograd.hxx, the
# activations passed to the GEMM and convolution kernels) stayed a call per element: the header declared as
# SOFIE's users do ran a 3x3 convolution 29x slower than g++'s build, 3.4x once all was inlined and the loops over
# terms unrolled (kernels/runtime.hxx: SOFIE_RDF_TERMS_LOOP; AMD EPYC Zen 3).  What is left is mostly ROOT's
# -optimize-regalloc=0, which keeps values in memory between basic blocks.
# (Not at -O0, as make test runs Cling: nothing is fast there, and inlining everything costs compile time.)
CLING_INLINE = "#pragma clang attribute push(__attribute__((always_inline)), apply_to = function)"
CLING_OPTIMIZING = "#if defined(__CLING__) && defined(__OPTIMIZE__)"


def region(level: int, lines: list[str]) -> list[str]:
    """``lines`` compiled for ``level``'s instructions (every function they define, lambdas and templates too;
    level 0: the flags' own), by GCC at -O3 wherever it optimizes: at -O2 (CMake's Release with GCC 12, many
    experiments' builds) it vectorizes only loops of known trip count, and the kernels' epilogues and
    elementwise loops took 4x to 5x the time (the Higgs MLP, one event).  Not -fno-trapping-math: GCC inlines
    no function compiled with trapping math (std::min, std::max) into one without, and that took 14x; the
    exponentials (kernels/fastmath.hxx) select by bit masks instead, which vectorize under trapping math.
    Under Cling every function of the region is always_inline (:data:`CLING_INLINE`): the variants of ``infer``
    are therefore called through member pointers read at run time (header.py: a call Cling resolves has its
    AVX2 variant inlined into generic code)."""
    target = REGION_TARGETS.get(level)
    clang = [f'#pragma clang attribute push(__attribute__((target("{target}"))), apply_to = function)'] if target else []
    gcc = ["#pragma GCC push_options", *([f'#pragma GCC target("{target}")'] if target else []),
           "#if defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__)", '#pragma GCC optimize("O3")', "#endif"]
    begin = [CLING_OPTIMIZING, CLING_INLINE, "#endif",
             "#if defined(__clang__)", *clang, "#elif defined(__GNUC__)", *gcc, "#endif"]
    end = ["#if defined(__clang__)", *(["#pragma clang attribute pop"] if target else []),
           "#elif defined(__GNUC__)", "#pragma GCC pop_options", "#endif",
           CLING_OPTIMIZING, "#pragma clang attribute pop", "#endif"]
    return begin + lines + end


def kernels_variant(names: list[str], level: int) -> list[str]:
    """The kernels ``names`` for ``level`` (0: the flags' own build, namespace ``kernels``), their feature macros
    defined before and every macro they define undefined after, so that the next variant defines its own."""
    if level == 0:
        features, namespace = [_BASE_FEATURES], "kernels"
    else:
        features = [f"#define {name} {int(on)}" for name, on in zip(FEATURES, (True, level >= 2, level >= 2, True))]
        namespace = f"kernels_{SUFFIXES[level]}"
    body = [f"namespace {namespace} {{", *(kernel_source(k) for k in names), f"}} // namespace {namespace}"]
    undefs = [f"#undef {m}" for m in FEATURES + defined_macros(tuple(names))]
    lines = [f"#if SOFIE_RDF_BUILD_{'BASE' if level == 0 else level}"]
    lines += features + region(level, body) + undefs
    return lines + ["#endif"]


@cache
def defined_macros(names: tuple[str, ...]) -> tuple[str, ...]:
    """Macros the kernels ``names`` define for themselves (not those a user may define first: ``#ifndef X``)."""
    found: list[str] = []
    for name in names:
        text = kernel_source(name)
        for macro in re.findall(r"^#define (\w+)", text, re.MULTILINE):
            if not re.search(rf"^#ifndef {macro}$", text, re.MULTILINE) and macro not in found:
                found.append(macro)
    return tuple(found)
