"""Concurrency: the compile cache under two processes at once, and one Session per thread under load.

* Two processes compile the same model natively into one empty cache at the
  same moment: both succeed with the same outputs, one library remains and no
  temporary file is left (writes are atomic renames).
* A C++ program (plain g++, the generated header) runs 2 threads x 10^5 calls,
  each thread with its own Session (constructed, or a copy of one), over a set of events; every output must be
  bit-identical to a serial run, and the resident memory must not grow after
  warm-up.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import make_model
from onnx import helper
from test_codegen import GXX, WARNINGS, blas_flags, needs_gxx

import sofie_rdf as sr

CALLS_PER_THREAD = 10**5
EVENTS = 64


def mlp():
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], transB=1), helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Gemm", ["t", "W2", "b2"], ["z"]), helper.make_node("Softmax", ["z"], ["y"])]
    init = {"W1": rng.standard_normal((32, 10)).astype(np.float32), "b1": rng.standard_normal(32).astype(np.float32),
            "W2": rng.standard_normal((32, 4)).astype(np.float32), "b2": rng.standard_normal(4).astype(np.float32)}
    return make_model(nodes, [("x", np.float32, [1, 10])], [("y", np.float32, [1, 4])], init, name="threads_mlp")


def lstm():
    rng = np.random.default_rng(6)
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["", "h"], hidden_size=6),
             helper.make_node("Reshape", ["h", "shape"], ["y"])]
    init = {"W": rng.standard_normal((1, 24, 5)).astype(np.float32) * 0.5,
            "R": rng.standard_normal((1, 24, 6)).astype(np.float32) * 0.5,
            "B": rng.standard_normal((1, 48)).astype(np.float32) * 0.1, "shape": np.array([1, 6], np.int64)}
    return make_model(nodes, [("x", np.float32, [7, 1, 5])], [("y", np.float32, [1, 6])], init, name="threads_lstm")


_COMPILE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import onnx
    import sofie_rdf as sr
    sess = sr.compile(sr.load(onnx.load(sys.argv[1])), backend="native")
    x = np.linspace(-1, 1, 10, dtype=np.float32).reshape(1, 10)
    print(json.dumps(sess.infer(x).tolist()))
""")


@needs_gxx
def test_two_processes_compile_one_model_at_once(tmp_path):
    import onnx

    path = tmp_path / "model.onnx"
    onnx.save(mlp(), str(path))
    env = {**os.environ, "SOFIE_RDF_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", _COMPILE, str(path)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert json.loads(results[0][0]) == json.loads(results[1][0])
    libraries = list((tmp_path / "cache").rglob("lib*.so"))  # the model; python/ holds the call extension
    assert len(libraries) == 1, libraries
    assert not [f for f in (tmp_path / "cache").rglob("*") if f.name.startswith(".")], "temporary files left"


_THREADS_MAIN = """
#include "{name}.hxx"
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

static long rss_kb()
{{
   std::ifstream status("/proc/self/status");
   std::string line;
   while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0)
         return std::stol(line.substr(6));
   return -1;
}}

int main()
{{
   const size_t events = {events}, in_size = {in_size}, out_size = {out_size}, calls = {calls};
   std::vector<float> x(events * in_size);
   std::ifstream("x.bin", std::ios::binary).read(reinterpret_cast<char *>(x.data()), x.size() * sizeof(float));
   std::vector<float> serial(events * out_size);
   {ns}::Session base("{name}.dat");
   for (size_t e = 0; e < events; ++e)
      base.infer(x.data() + e * in_size, serial.data() + e * out_size);
   std::vector<{ns}::Session> copies{{base, base}};  // as SOFIE's tutorials hold one per slot
   std::vector<long> mismatches(2, 0), rss(2, 0);
   auto work = [&](int t) {{
      {session}
      std::vector<float> y(out_size);
      for (size_t c = 0; c < calls; ++c) {{
         size_t e = (c * 7 + t) % events;
         s.infer(x.data() + e * in_size, y.data());
         if (std::memcmp(y.data(), serial.data() + e * out_size, out_size * sizeof(float)) != 0)
            ++mismatches[t];
         if (c == calls / 10 && t == 0)
            rss[0] = rss_kb();
      }}
   }};
   std::thread a(work, 0), b(work, 1);
   a.join();
   b.join();
   rss[1] = rss_kb();
   std::printf("mismatches %ld %ld rss %ld %ld\\n", mismatches[0], mismatches[1], rss[0], rss[1]);
   return 0;
}}
"""


@needs_gxx
@pytest.mark.parametrize("copies", [False, True], ids=["constructed", "copied"])
@pytest.mark.parametrize("make", [mlp, lstm], ids=["mlp", "lstm"])
def test_one_session_per_thread_matches_serial(make, copies, tmp_path):
    """Each thread's Session constructed from the weights file, or copied from one Session that ran before (a
    copy owns its buffers and reads no file)."""
    model = sr.load(make())
    files = model.generate(tmp_path)
    (inp,), (out,) = model.inputs, model.outputs
    in_size, out_size = int(np.prod(inp.shape)), int(np.prod(out.shape))
    np.random.default_rng(7).standard_normal((EVENTS, in_size)).astype(np.float32).tofile(tmp_path / "x.bin")
    main = tmp_path / "threads.cpp"
    main.write_text(_THREADS_MAIN.format(name=model.name, ns=files.namespace, events=EVENTS, in_size=in_size,
                                         out_size=out_size, calls=CALLS_PER_THREAD,
                                         session=f"{files.namespace}::Session &s = copies[t];" if copies else
                                         f'{files.namespace}::Session s("{model.name}.dat");'))
    exe = tmp_path / "threads"
    cmd = [GXX, "-std=c++17", "-O2", "-pthread", *WARNINGS, "-I", str(tmp_path), str(main), "-o", str(exe),
           *blas_flags()]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-4000:]
    ran = subprocess.run([str(exe)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    m = re.search(r"mismatches (\d+) (\d+) rss (\d+) (\d+)", ran.stdout)
    assert m, ran.stdout
    first, second, rss_warm, rss_end = map(int, m.groups())
    assert first == 0 and second == 0, f"outputs differ from the serial run: {first}, {second}"
    assert rss_end - rss_warm < 1024, f"resident memory grew from {rss_warm} to {rss_end} kB"
