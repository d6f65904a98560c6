"""Where a declared header's time goes under ROOT's Cling, instruction by instruction.

ROOT's Cling (pip's ``root``) writes no perf map for the code it JITs, and under Cling every kernel is
always_inline into ``infer``, so ``perf report`` shows one anonymous address range.  This script declares a model's
header into a ROOT started first (as SOFIE's users and ``benchmarks/build_paths.py``'s ``declared`` do), calls
``infer`` in a C++ loop, and meanwhile samples itself with ``perf record``; it copies every anonymous executable
mapping out of its own memory, disassembles the one holding most samples with ``objdump`` and writes the
disassembly with each instruction's sample count, plus the hottest 1 KB windows.  A register tile's sums stored
and reloaded at every turn of its loop (ROOT's ``-optimize-regalloc=0``) show as ``vmovaps`` to and from
``(%rsp)`` between the multiply-adds.  Needs ``perf`` and ``objdump`` (binutils) on the PATH and permission to
sample (``perf_event_paranoid`` <= 1, or root).

``python -m benchmarks.cling_profile MODEL [--seconds 5] [--out DIR]`` (MODEL: a name of the HEP family or a
published tagger, as ``benchmarks.build_paths --models`` takes); writes ``DIR/MODEL.annotated`` and prints the
windows.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

from sofie_rdf import _root

from . import build_paths


def executable_mappings() -> list[tuple[int, int]]:
    """This process's anonymous executable mappings (Cling's JIT code among them)."""
    spans = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if "x" in fields[1] and len(fields) < 6:
            lo, hi = (int(v, 16) for v in fields[0].split("-"))
            spans.append((lo, hi))
    return spans


def sample_self(seconds: float, data: Path) -> subprocess.Popen:
    """perf record of this process for ``seconds``, started now."""
    return subprocess.Popen(["perf", "record", "-q", "-F", "4999", "-p", str(os.getpid()), "-o", str(data), "--",
                             "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sampled_addresses(data: Path) -> collections.Counter:
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip"], capture_output=True, text=True, check=True)
    return collections.Counter(int(v, 16) for v in out.stdout.split())


def annotate(code: bytes, base: int, samples: collections.Counter) -> list[str]:
    """objdump's disassembly of ``code`` (loaded at ``base``), each instruction led by its sample count."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(code)
        f.flush()
        text = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f"--adjust-vma={base:#x}",
                               f.name], capture_output=True, text=True, check=True).stdout
    lines = []
    for line in text.splitlines():
        m = re.match(r"\s*([0-9a-f]+):", line)
        n = samples.get(int(m.group(1), 16), 0) if m else 0
        lines.append(f"{n:7d} {line}" if n else f"{'':7} {line}")
    return lines


def hot_windows(samples: collections.Counter, lo: int, hi: int, count: int = 20) -> list[tuple[int, int]]:
    """The ``count`` 1 KB windows of [lo, hi) with most samples: (address, samples)."""
    windows: collections.Counter = collections.Counter()
    for ip, n in samples.items():
        if lo <= ip < hi:
            windows[ip // 1024 * 1024] += n
    return windows.most_common(count)


def profile(name: str, seconds: float, out: Path) -> None:
    ROOT = build_paths.start_root("")
    _root.load_blas()  # as a build_paths run has by then: headers whose kernels call BLAS link against it
    model, xs = build_paths.load(name, Path(tempfile.gettempdir()) / "sofie-rdf-bench")  # as build_paths' runs
    with tempfile.TemporaryDirectory() as tmp:
        session, _ = build_paths._declared(ROOT, model, Path(tmp), "declared", "")
        sizes = [int(np.prod(t.shape)) for t in model.outputs]
        ys = [np.empty(size, np.float32) for size in sizes]
        timer = build_paths._timer(ROOT, build_paths._namespace_of(session), len(xs), len(sizes))
        timer(session, *xs, *ys, 0.2)  # Cling emits the code on the first call
        data = Path(tmp) / "perf.data"
        recorder = sample_self(seconds, data)
        time.sleep(0.5)  # perf attaches
        per_call, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end:
            per_call.append(timer(session, *xs, *ys, 0.5))
        recorder.wait()
        spans = executable_mappings()
        samples = sampled_addresses(data)
    total = sum(samples.values())
    lo, hi = max(spans, key=lambda s: sum(n for ip, n in samples.items() if s[0] <= ip < s[1]))
    inside = sum(n for ip, n in samples.items() if lo <= ip < hi)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.annotated"
    path.write_text("\n".join(annotate(ctypes.string_at(lo, hi - lo), lo, samples)) + "\n")
    print(f"{name}: {np.median(per_call) * 1e6:.1f} us per call while sampled; {inside} of {total} samples in "
          f"{lo:#x}-{hi:#x}; annotated disassembly: {path}")
    for address, n in hot_windows(samples, lo, hi):
        print(f"  {address:#x}  {n:6d}  {100 * n / total:5.1f}%")


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "sofie_rdf_cling_profile")
    args = parser.parse_args(argv)
    profile(args.model, args.seconds, args.out)


if __name__ == "__main__":
    main()
