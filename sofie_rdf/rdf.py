"""RDataFrame integration: a column of network outputs, filled on every thread.

``define(df, "dnn", model, columns=[...])`` compiles the model if needed,
generates a small C++ functor typed for the model and the columns (one
Session and reusable buffers per slot, so per-event inference allocates
nothing), and calls ``DefineSlot`` with it.  ``declare`` makes a functor
usable by name in C++ ``Define`` strings.
"""

from __future__ import annotations

import hashlib
from typing import Any, Optional

from . import _rdf_distributed as rdf_distributed
from . import _root
from ._functor import Columns, FunctorWriter, Layout, functor_header, include_functor_header, layout_of, weights_arg
from .compile import cling_session_of as session_of
from .session import Session
from .targets._cxx.names import identifier

__all__ = ["declare", "define", "distribute", "functor_header", "include_functor_header", "session_of"]

def _declare_functor(sess: Session, layout: Layout, output: Optional[int]) -> str:
    """Declare (once) the functor class for this model and layout; returns its C++ name."""
    include_functor_header()
    key = hashlib.sha256(repr((sess.namespace, sess.folder, layout, output)).encode()).hexdigest()[:16]
    class_name = f"Functor_{key}"
    code = f"namespace sofie_rdf_gen {{\n{FunctorWriter(sess, layout, output, class_name).write()}\n}}\n"
    _root.declare(f"rdf-functor:{key}", code)
    return f"sofie_rdf_gen::{class_name}"


def define(df: Any, name: str, session_or_model: Any, columns: Columns, output: Optional[int] = 0,
           backend: str = "auto") -> Any:
    """``df.DefineSlot(name, ...)`` with the model evaluated on ``columns``, one Session per slot.

    ``columns``: for a one-input model, the columns whose values (scalars of any
    arithmetic type, or RVec arrays) are concatenated into the input of one event;
    for several inputs, one column or column list per input.  ``output``: index of
    the output to return (a scalar when it has one value per event, else an RVec),
    or None for all outputs concatenated as ``RVec<float>``.

    On a ``ROOT.RDF.Distributed`` dataframe (Dask, Spark) it ships the model to
    the workers (see ``distribute``) and adds a string ``Define`` instead.
    """
    ROOT = _root.root()
    sess = session_of(session_or_model, backend)
    if rdf_distributed.is_distributed(df):
        return rdf_distributed.define(df, name, sess, columns, output)
    layout = layout_of(df, sess, columns)
    functor = _declare_functor(sess, layout, output)
    key = functor.split("_")[-1]
    _root.declare(f"rdf-define:{key}", "\n".join([
        "#pragma clang diagnostic push",  # RDefine's virtuals are defined in ROOT's module, not here
        '#pragma clang diagnostic ignored "-Wundefined-inline"',
        "namespace sofie_rdf_gen {",
        f"inline ROOT::RDF::RNode Define_{key}(ROOT::RDF::RNode df, const std::string &name,",
        "                                     const std::vector<std::string> &columns, unsigned int nslots)",
        f"{{ return df.DefineSlot(name, {functor}(nslots), columns); }}",
        "}",
        "#pragma clang diagnostic pop",
    ]))
    flat = [c for group in layout.groups for c in group]
    node = getattr(ROOT.sofie_rdf_gen, f"Define_{key}")(ROOT.RDF.AsRNode(df), name, flat, df.GetNSlots())
    return node


def distribute(session_or_model: Any, backend: str = "auto") -> Session:
    """Make the model available on every worker of ``ROOT.RDF.Distributed`` dataframes; returns the Session.

    Workers are fresh processes: this registers the header, the weights and
    BLAS with ROOT's ``DistributeFiles``, and a wrapper that loads them with
    ``DistributeHeaders`` (once per model), so that ``define`` works on
    distributed dataframes; ``define`` calls it itself.
    """
    sess = session_of(session_or_model, backend)
    rdf_distributed.distribute(sess)
    return sess


def declare(session_or_model: Any, name: str, n_columns: int, nslots: Optional[int] = None,
            all_outputs: bool = False, backend: str = "auto") -> str:
    """Declare a global ``sofie_rdf::SofieFunctor`` named ``name`` for C++ ``Define`` strings.

    Returns the C++ name; call it as ``name(rdfslot_, col1, ..., colN)``, e.g.
    ``df.Define("dnn", "sofie_rdf::higgs(rdfslot_, m_jj, m_jjj)")``.  ``nslots``
    defaults to ROOT's thread-pool size (at least 1).
    """
    ROOT = _root.root()
    sess = session_of(session_or_model, backend)
    include_functor_header()
    ident = identifier(name)
    slots = nslots if nslots is not None else max(1, ROOT.GetThreadPoolSize())
    # The untyped forms: a template operator() takes any column types, RVec sequences included.
    maker = "SofieFunctorAllHelper" if all_outputs else "SofieFunctorFirst"
    weights = weights_arg(sess) or '""'
    _root.declare(f"rdf-global:{ident}", (
        f"namespace sofie_rdf {{ inline auto {ident} = "
        f"{maker}<{int(n_columns)}, {sess.namespace}::Session>({int(slots)}, {weights}); }}"))
    return f"sofie_rdf::{ident}"
