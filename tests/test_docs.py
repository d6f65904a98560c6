"""The documentation: the site builds with ``mkdocs build --strict`` (every page in the nav, every link and
anchor found, every API reference resolved), and the README stays the front door: short, opening with the two
commands, its links pointing at files that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_MAX_LINES = 300


def test_site_builds_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra (pip install -e '.[docs]') is not installed")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    # the API reference was read from the docstrings, not left empty
    compat = (site / "reference" / "compat" / "index.html").read_text()
    assert "RModelParser_ONNX" in compat and "OutputGenerated" in compat
    compiling = (site / "reference" / "compiling" / "index.html").read_text()
    assert "Session" in compiling and "infer" in compiling


def test_readme_is_the_front_door():
    text = README.read_text()
    lines = text.split("\n")
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the details belong in docs/"
    opening = "\n".join(lines[:6])
    assert lines[0] == "# sofie-rdf" and "make demo" in opening and "make test" in opening


def test_readme_links_resolve():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert local, "the README links into docs/"
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
