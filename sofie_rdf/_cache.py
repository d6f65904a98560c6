"""The compile cache: where built models live, and the index that finds a model file's library unparsed.

A native library is keyed by its generated code (``targets/cpu/native.py``), which takes parsing and
planning the model to know. The index keys the same library by what ``sr.compile`` was given, a model
file's bytes and the options, together with a fingerprint of this sofie-rdf (its files' sizes and times),
so that a process that compiled the file before finds the library without parsing it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Optional

_PACKAGE = Path(__file__).parent


def cache_dir() -> Path:
    """Where compiled models live: ``$SOFIE_RDF_CACHE`` or ``~/.cache/sofie-rdf``."""
    return Path(os.environ.get("SOFIE_RDF_CACHE", Path.home() / ".cache" / "sofie-rdf"))


@cache
def fingerprint() -> str:
    """This sofie-rdf's code: any edit to a module or kernel changes the index keys."""
    h = hashlib.sha256()
    for folder, dirs, files in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            st = os.stat(os.path.join(folder, name))
            h.update(f"{folder}/{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def index_key(source: Any, options: tuple) -> Optional[str]:
    """The index key of compiling ``source`` with ``options``, or None when it has none (not a file)."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    try:
        data = path.read_bytes() if path.is_file() else None
    except OSError:
        return None
    if data is None:
        return None
    h = hashlib.sha256(data)
    h.update(repr((options, os.environ.get("CXX"), fingerprint())).encode())
    return h.hexdigest()[:32]


def index_lookup(key: str) -> Optional[dict[str, Any]]:
    """The entry of ``key`` when it names a library still in the cache."""
    try:
        entry = json.loads((cache_dir() / "index" / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return entry if Path(entry.get("library", "")).is_file() else None


def index_store(key: str, entry: dict[str, Any]) -> None:
    """Remember ``entry`` under ``key`` (written atomically: processes may race)."""
    folder = cache_dir() / "index"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, folder / f"{key}.json")


def index_remove(key: str) -> None:
    """Forget ``key`` (its library is being removed)."""
    (cache_dir() / "index" / f"{key}.json").unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, text: str | bytes) -> Path:
    """Write a file so that readers never see it half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
