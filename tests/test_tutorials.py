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
        # out of the repository's out/, and the sample read once instead of ten times: a small input
        args += ["--outdir", str(tmp_path), "--repeat", "1"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    if script.name == "demo.py":
        assert (tmp_path / "higgs_score.png").stat().st_size > 0
        assert "events/s" in proc.stdout and "agreement within" in proc.stdout


def test_tutorials_found():
    names = {p.name for p in TUTORIALS}
    assert {"demo.py", "rdf_defineslot.py", "rdf_define_string.py", "reader.py", "cpp_macro.py"} <= names
