"""Every script in tutorials/ runs to completion (exit status 0) as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("*.py"))
TIMEOUT_S = 300  # generous: a native compile on a cold cache is a few seconds, the demo itself too


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_runs(script: Path, tmp_path):
    pytest.importorskip("onnxruntime")
    args = [sys.executable, str(script)]
    if script.name == "demo.py":
        args += ["--outdir", str(tmp_path)]  # keep the test run out of the repository's out/
    proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_tutorials_found():
    assert any(p.name == "demo.py" for p in TUTORIALS)
