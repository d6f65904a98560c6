"""The network in RDataFrame ``Define`` strings (C++ expressions), like any other function.

``sr.rdf.declare(model, "higgs", 7)`` declares a global C++ functor
``sofie_rdf::higgs`` (ROOT's ``SofieFunctor`` signature: one Session per slot)
taking the slot number and 7 columns.  ``rdfslot_`` is the RDataFrame column
that holds the slot of the thread processing the event.  Declare after
``EnableImplicitMT``: the functor gets one Session per thread of the pool.
"""

from pathlib import Path

import ROOT

import sofie_rdf as sr

DATA = Path(__file__).resolve().parent.parent / "data"

ROOT.EnableImplicitMT()
higgs = sr.rdf.declare(sr.load(DATA / "higgs_model.onnx"), "higgs", n_columns=7)
print(f"declared {higgs}")

df = ROOT.RDataFrame("bkg_tree", str(DATA / "higgs_sample.root"))
df = (df.Define("score", f"{higgs}(rdfslot_, m_jj, m_jjj, m_lv, m_jlv, m_bb, m_wbb, m_wwbb)")
        .Define("signal_like", "score > 0.5"))        # further columns can use it in C++ too
passed = df.Filter("signal_like").Count()
total = df.Count()
print(f"background events passing score > 0.5: {passed.GetValue()} of {total.GetValue()}")
