"""``sr.Reader``: ROOT's ``RSofieReader`` in one line, for a quick look at a model.

``Reader(path)`` parses, generates and compiles the model; ``Compute`` runs it
on the input values of one event (no batch dim) and returns the output values;
``declare`` gives a C++ functor for RDataFrame ``Define`` strings.
"""

from pathlib import Path

import ROOT

import sofie_rdf as sr

DATA = Path(__file__).resolve().parent.parent / "data"

reader = sr.Reader(DATA / "higgs_model.onnx")
event = [0.8, 1.7, 0.8, 1.7, 1.25, 2.1, 4.0]  # m_jj, m_jjj, m_lv, m_jlv, m_bb, m_wbb, m_wwbb of one event
print(f"score of one event: {reader.Compute(event)[0]:.4f}")   # a numpy array: the output's values

name = reader.declare("higgs_reader", n_columns=7)  # -> "sofie_rdf::higgs_reader"
df = ROOT.RDataFrame("sig_tree", str(DATA / "higgs_sample.root"))
df = df.Define("score", f"{name}(rdfslot_, m_jj, m_jjj, m_lv, m_jlv, m_bb, m_wbb, m_wwbb)")
print(f"mean score of the signal sample: {df.Mean('score').GetValue():.3f}")
