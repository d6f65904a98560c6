"""The network output as an RDataFrame column, filled on every core: ``sr.rdf.define``.

``sr.rdf.define(df, name, model, columns)`` compiles the model (once per
process), gives each RDataFrame slot (thread) its own Session, and adds the
column with ``DefineSlot``.  The columns are the model's input values of one
event, in the order the model expects; the output is a float per event here
(an ``RVec`` for models with several values per event).
"""

from pathlib import Path

import ROOT

import sofie_rdf as sr

DATA = Path(__file__).resolve().parent.parent / "data"
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]  # the model's input order

ROOT.EnableImplicitMT()  # all cores; must come before the RDataFrame is made
df = ROOT.RDataFrame("sig_tree", str(DATA / "higgs_sample.root"))
df = sr.rdf.define(df, "score", str(DATA / "higgs_model.onnx"), FEATURES)  # a path, Model or Session

# Everything below is lazy until a result is read: one event loop fills all three.
mean = df.Mean("score")
selected = df.Filter("score > 0.5").Count()
total = df.Count()
print(f"signal events: mean score {mean.GetValue():.3f}, {selected.GetValue()} of {total.GetValue()} above 0.5")

# A few rows as numpy arrays (Display does not run multi-threaded).  With threads,
# events come in any order: rdfentry_, the entry number, says which event each is.
rows = df.AsNumpy(["rdfentry_", "m_bb", "m_wwbb", "score"])
for i in rows["rdfentry_"].argsort()[:5]:
    print(f"entry {rows['rdfentry_'][i]}: m_bb {rows['m_bb'][i]:.3f}  m_wwbb {rows['m_wwbb'][i]:.3f}  "
          f"score {rows['score'][i]:.4f}")
