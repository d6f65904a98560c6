"""Distributed RDataFrame (``ROOT.RDF.Distributed``, Dask or Spark): models on every worker.

A distributed dataframe runs its graph in fresh worker processes that know
nothing of this one: no BLAS loaded, no model declared, no weights file, and
no C++ objects from the client.  So everything goes through ROOT's own
distribution helpers, and the column is a string ``Define``:

* ``DistributeFiles``: the model header, its weights, ``SofieFunctor.hxx``
  and the scipy-openblas32 library;
* ``DistributeHeaders``: a small wrapper header that loads that BLAS, includes
  the model and finds the weights next to itself (``__FILE__``), wherever the
  backend put it;
* ``DistributeCppCode``: per column layout, the functor and a free function
  ``sofie_rdf_dist::Eval_<key>(columns...)`` that the ``Define`` string calls.

Every shipped file is named after a hash of the model, so two models (or two
versions of one) never overwrite each other in a worker's directory.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import _root
from ._cache import cache_dir
from ._functor import FunctorWriter, functor_header, layout_of
from .session import Session
from .targets.cpu.weights import atomic_write


@dataclass(frozen=True)
class Distributed:
    """What ``distribute`` shipped for one session: its key and the wrapper header."""

    key: str
    wrapper: Path


_DISTRIBUTED: dict[str, Distributed] = {}
_CODE: set[str] = set()
_PREPARED: weakref.WeakSet = weakref.WeakSet()  # Dask clients whose workers are ready


def is_distributed(df: Any) -> bool:
    """True for nodes of ``ROOT.RDF.Distributed`` dataframes (Python proxies, not C++ RNodes)."""
    return type(df).__module__.startswith("ROOT._distrdf")


def distribute(sess: Session) -> Distributed:
    """Register ``sess``'s files with ROOT's distribution helpers, once per session content."""
    key = hashlib.sha256(f"{sess.namespace}:{sess.code.namespace}:{sess.code.digest}".encode()).hexdigest()[:16]
    if key in _DISTRIBUTED:
        return _DISTRIBUTED[key]
    ROOT = _root.root()
    _root.load_blas()
    folder = cache_dir() / "distributed" / key
    base = f"sofie_rdf_{key}"
    model = atomic_write(folder / f"{base}_model.hxx", sess.code.header)
    files = [model, atomic_write(folder / "SofieFunctor.hxx", functor_header().read_text())]
    # Custom operators' user headers: the model header includes them by file name, from its own folder.
    files += [atomic_write(folder / name, text) for name, text in sess.code.includes.items()]
    if sess.weights_path is not None:
        files.append(_copy(Path(sess.weights_path), folder / f"{base}.dat"))
    wrapper = atomic_write(folder / f"{base}.hxx", _wrapper(sess, key))
    dist = ROOT.RDF.Distributed
    dist.DistributeFiles([str(f) for f in files] + [str(_root.blas_paths()[0])])
    # The client has the model already (jit: the same text; native: its library), so the wrapper must not
    # declare it again here; DistributeHeaders declares the wrapper on the client too.
    _root.declare(f"rdf-dist-local:{key}", f"#define SOFIE_RDF_DIST_LOCAL_{key}")
    dist.DistributeHeaders([str(wrapper)])
    _DISTRIBUTED[key] = Distributed(key, wrapper)
    return _DISTRIBUTED[key]


def _copy(src: Path, dst: Path) -> Path:
    """``dst`` with the bytes of ``src`` (a hard link when possible: weights may be large)."""
    if not dst.exists():
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        try:
            os.link(src, tmp)
        except OSError:
            tmp.write_bytes(src.read_bytes())
        os.replace(tmp, dst)
    return dst


def _wrapper(sess: Session, key: str) -> str:
    """The header each worker includes: BLAS, the model, the functor helpers and the weights path."""
    alias = []
    if sess.code.namespace != sess.namespace:  # native: the client calls the library through an interface
        alias = [f"namespace {sess.namespace} = {sess.code.namespace};"]
    return "\n".join([
        f"// sofie-rdf: model {sess.name} on the workers of a distributed RDataFrame.",
        f"#ifndef SOFIE_RDF_DIST_{key}",
        f"#define SOFIE_RDF_DIST_{key}",
        "#pragma cling optimize(3)",
        _BLAS_LOADER,
        "namespace sofie_rdf_dist {",
        "// This header's folder: the client's cache here, the backend's upload directory on a worker.",
        f"inline std::string Dir_{key}()",
        "{",
        "   const std::string here = __FILE__;",
        '   return here.substr(0, here.find_last_of("/") + 1);',
        "}",
        f'inline std::string Weights_{key}() {{ return Dir_{key}() + "sofie_rdf_{key}.dat"; }}',
        "} // namespace sofie_rdf_dist",
        f"#ifndef SOFIE_RDF_DIST_LOCAL_{key}",  # a worker: the client has BLAS and the model already
        f"static const bool sofie_rdf_blas_{key} = sofie_rdf_dist::LoadBlas(sofie_rdf_dist::Dir_{key}());",
        f'#include "sofie_rdf_{key}_model.hxx"',
        *alias,
        "#endif",
        '#include "SofieFunctor.hxx"',
        "#endif",
        "",
    ])


# Loads scipy-openblas32 where it is not loaded yet (a worker), from the copy shipped as a plain file.
# Not DistributeSharedLibs: every computation uploads its files again, and rewriting a loaded library in
# place corrupts it (the second computation crashes); renaming the file first keeps the loaded one intact.
_BLAS_LOADER = r"""#ifndef SOFIE_RDF_DIST_BLAS
#define SOFIE_RDF_DIST_BLAS
#include <TError.h>
#include <TSystem.h>
#include <dlfcn.h>
#include <unistd.h>
#include <cstdio>
#include <string>
namespace sofie_rdf_dist {
inline bool LoadBlas(const std::string &dir)
{
   if (!dlsym(RTLD_DEFAULT, "scipy_sgemm_")) {
      const std::string shipped = dir + "libscipy_openblas.so";
      const std::string loaded = dir + "libscipy_openblas." + std::to_string(getpid()) + ".so";
      std::rename(shipped.c_str(), loaded.c_str());
      if (gSystem->Load(loaded.c_str()) < 0) {
         Error("sofie_rdf", "cannot load BLAS from %s", loaded.c_str());
         return false;
      }
   }
   // Each thread runs its own Session: OpenBLAS must not start threads of its own on top.
   if (auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "scipy_openblas_set_num_threads")))
      set_threads(1);
   return true;
}
} // namespace sofie_rdf_dist
#endif"""


def _thread_safe_workers(df: Any) -> None:
    """Enable ROOT's thread safety on the Dask workers of ``df``, once per client.

    ROOT's Dask mapper declares the distributed headers before it enables
    thread safety, so the first tasks of a worker with several threads can
    declare at once and corrupt Cling's parser; enabling it up front avoids that.
    """
    try:
        client = df.proxied_node.get_head().backend.client
    except AttributeError:
        return  # not Dask: other backends (Spark) are left as ROOT sets them up
    if client not in _PREPARED:
        client.run(exec, "import ROOT; ROOT.EnableThreadSafety()", {})
        _PREPARED.add(client)


def define(df: Any, name: str, sess: Session, columns: Any, output: Optional[int]) -> Any:
    """``df.Define(name, "sofie_rdf_dist::Eval_<key>(cols...)")`` on a distributed dataframe.

    The functor lives in a ``thread_local`` rather than one per ``rdfslot_``:
    a worker may run several tasks at once in threads of one process, each an
    RDataFrame numbering its slots from 0, so slots are not unique there.
    """
    shipped = distribute(sess)
    _thread_safe_workers(df)
    layout = layout_of(df, sess, columns)
    fkey = hashlib.sha256(repr((shipped.key, layout, output)).encode()).hexdigest()[:16]
    weights = f"sofie_rdf_dist::Weights_{shipped.key}()" if sess.weights_path is not None else ""
    writer = FunctorWriter(sess, layout, output, f"Functor_{fkey}", weights=weights)
    params = ", ".join(f"const {t} &c{i}_{j}" for i, types in enumerate(layout.types) for j, t in enumerate(types))
    args = ", ".join(f"c{i}_{j}" for i, types in enumerate(layout.types) for j in range(len(types)))
    if fkey not in _CODE:
        _root.root().RDF.Distributed.DistributeCppCode("\n".join([
            "#pragma cling optimize(3)",
            "namespace sofie_rdf_dist {",
            writer.write(),
            f"inline {writer.return_type()} Eval_{fkey}({params})",
            "{",
            f"   thread_local Functor_{fkey} functor(1);",
            f"   return functor(0, {args});",
            "}",
            "} // namespace sofie_rdf_dist",
        ]))
        _CODE.add(fkey)
    flat = [c for group in layout.groups for c in group]
    return df.Define(name, f"sofie_rdf_dist::Eval_{fkey}({', '.join(flat)})")
