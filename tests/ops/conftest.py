"""Operator test fixtures.

Every header a test module generated must also compile warning-free: Cling accepts
code a strict compiler warns about (unused variables, signed/unsigned comparisons,
...), so after each module the headers it wrote to the compile cache are checked in
one translation unit with ``-Wall -Wextra -Werror``.  ``check_folded`` runs a model
with its inputs made constants, testing the numpy references constant folding uses.

(tests/ops is a package so that this conftest does not shadow tests/conftest.py,
which the test modules import as ``conftest``.)
"""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

STRICT_FLAGS = ("-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only")


def _headers() -> set[Path]:
    return set((Path(os.environ["SOFIE_RDF_CACHE"]) / "jit").glob("*/*.hxx"))


@pytest.fixture(autouse=True, scope="module")
def strict_headers(_private_cache, tmp_path_factory):
    """Compile the module's generated headers with warnings as errors once its tests ran."""
    before = _headers()
    yield
    new = sorted(_headers() - before)
    cxx = shlex.split(os.environ.get("CXX", "c++"))
    if not new or shutil.which(cxx[0]) is None:
        return
    source = tmp_path_factory.mktemp("strict") / "all_headers.cpp"
    source.write_text("".join(f'#include "{h}"\n' for h in new))
    result = subprocess.run([*cxx, *STRICT_FLAGS, str(source)], capture_output=True, text=True)
    assert result.returncode == 0, f"generated headers do not compile warning-free:\n{result.stderr[-6000:]}"


@pytest.fixture
def check_folded(check_model):
    """``check_folded(model, feeds)``: ``check_model`` with the feeds made initializers.

    The whole graph is then computed at generation time by the operators' numpy
    references (constant folding), which this compares with onnxruntime too.
    """

    def check(model: onnx.ModelProto, feeds: dict, **options) -> list:
        folded = onnx.ModelProto()
        folded.CopyFrom(model)
        kept = [i for i in folded.graph.input if i.name not in feeds]
        del folded.graph.input[:]
        folded.graph.input.extend(kept)
        folded.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in feeds.items())
        return check_model(folded, {}, **options)

    return check
