"""The CUDA target's code run on the CPU, for the tests without a GPU: the generated source, kernels and Session
included, built by the host compiler against an emulation of the CUDA runtime and cuBLAS (``tests/cuda_emu/``)
and called through the same C ABI and Python binding as on a GPU.

Each kernel launch ``kernel<<<grid, block, shared, stream>>>(args)`` becomes
``::emu::launch(grid, block, shared, stream, [=] { kernel(args); })``; everything else compiles as it is.
The emulation counts the work a call runs (:func:`work_counts`: kernel launches, library calls, copies) and can cap
device memory (:func:`set_memory_cap`). What it cannot show: speed, races between blocks, the real cuBLAS."""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
from pathlib import Path

import sofie_rdf as sr
from sofie_rdf._cuda import cuda_session
from sofie_rdf.targets.cuda import WEIGHTS_SUFFIX
from sofie_rdf.targets.cuda.toolchain import library_source

EMULATION = Path(__file__).parent / "cuda_emu"


def _callee_start(text: str, end: int) -> int:
    """Start of the kernel expression ending at ``end`` (a name, maybe qualified, maybe with template arguments)."""
    i, depth = end, 0
    while i > 0:
        c = text[i - 1]
        if c == ">":
            depth += 1
        elif c == "<":
            depth -= 1
        elif depth == 0 and not (c.isalnum() or c in "_:"):
            break
        i -= 1
    return i


def _closing(text: str, start: int) -> int:
    """Index of the parenthesis closing the one at ``start``."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError("unbalanced parentheses")


def rewrite_launches(source: str) -> str:
    """Every ``<<<...>>>`` launch as a call of ``::emu::launch``."""
    out, at = [], 0
    while (open_ := source.find("<<<", at)) >= 0:
        start = _callee_start(source, open_)
        close = source.index(">>>", open_)
        args_open = close + 3
        args_close = _closing(source, args_open)
        config = source[open_ + 3:close]
        out += [source[at:start], f"::emu::launch({config}, [=] {{ {source[start:open_]}{source[args_open:args_close + 1]}; }})"]
        at = args_close + 1
    return "".join(out) + source[at:]


def emulated_session(proto, folder: Path) -> sr.Session:
    """The Session of ``proto``'s CUDA code built for the host emulation (``folder``: where it is built)."""
    code = sr.load(proto).code(target="cuda")
    source = rewrite_launches(library_source(code))
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    library = folder / f"lib{code.name}_{tag}.so"
    weights = folder / f"{code.name}{WEIGHTS_SUFFIX}"
    weights.write_bytes(code.weights_file)
    cu = folder / f"{code.name}_{tag}_emulated.cpp"
    cu.write_text(source)
    cmd = ["c++", "-std=c++20", "-O1", "-fPIC", "-fvisibility=hidden", "-shared", "-pthread", f"-I{EMULATION}", str(cu),
           "-o", str(library)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"emulated build of {code.name} failed:\n{result.stderr[-4000:]}")
    return cuda_session(library, weights, code)


def _emulation(sess: sr.Session) -> ctypes.CDLL:
    """The emulated library of ``sess`` (the process loaded it once: its counters are the Session's)."""
    return ctypes.CDLL(str(sess.library))


def work_counts(sess: sr.Session) -> dict[str, int]:
    """Kernel launches, library calls (cuBLAS, cuBLASLt) and copies run since the last call of this function."""
    out = (ctypes.c_longlong * 3)()
    _emulation(sess).emu_counts(out)
    return dict(zip(("kernels", "library", "copies"), out))


def set_memory_cap(sess: sr.Session, bytes_: int) -> int:
    """Caps the device memory the emulated cudaMalloc hands out (0: no cap); returns the bytes in use."""
    function = _emulation(sess).emu_set_memory_cap
    function.restype, function.argtypes = ctypes.c_size_t, [ctypes.c_size_t]
    return int(function(bytes_))
