"""A SOFIE script on a ROOT without TMVA (``pip install root``): the one added line is ``import sofie_rdf.compat``.

Everything else is written as ROOT's SOFIE tutorials write it (TMVA_SOFIE_ONNX.py, TMVA_SOFIE_RDataFrame.py):
the ONNX parser, ``Generate``, ``OutputGenerated``, the header declared to Cling, the Session called from
Python, and ``TMVA::Experimental::SofieFunctor`` filling an RDataFrame column with ``rdfslot_``.  Without the
added line, the first SOFIE call fails on pip's ROOT ("Failed to get attribute TMVA from ROOT").  The
generated files go into the working directory, as SOFIE's do; the scores are checked against onnxruntime.

    python tutorials/sofie_compat.py
"""

import sys
from pathlib import Path

import numpy as np
import ROOT

import sofie_rdf.compat  # noqa: F401  (the one added line: ROOT.TMVA.Experimental.SOFIE, backed by sofie-rdf)

DATA = Path(__file__).resolve().parent.parent / "data"
modelFile = str(DATA / "higgs_model.onnx")
inputFile = str(DATA / "higgs_sample.root")
columns = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]

# Parse the ONNX model and generate the header (higgs_model.hxx) and its weights (higgs_model.dat)
parser = ROOT.TMVA.Experimental.SOFIE.RModelParser_ONNX()
model = parser.Parse(modelFile)
model.PrintRequiredInputTensors()       # features: (batch, 7), the batch left to the caller
model.PrintInitializedTensors()
model.Generate()
model.OutputGenerated()

# Compile it with Cling, as SOFIE's tutorials do
ROOT.gInterpreter.Declare('#include "higgs_model.hxx"')

# One event from Python: the batch is a symbolic dim, so infer takes it first, as in SOFIE
session = ROOT.TMVA_SOFIE_higgs_model.Session("higgs_model.dat")
event = np.array([0.8, 1.7, 0.8, 1.7, 1.25, 2.1, 4.0], dtype=np.float32)
print("score of one event:", session.infer(1, event)[0])

# Every event in RDataFrame: one Session per slot through ROOT's SofieFunctor, in a Define string
ROOT.EnableImplicitMT(2)
ROOT.gInterpreter.Declare('auto sofie_functor = TMVA::Experimental::SofieFunctor<7, TMVA_SOFIE_higgs_model::Session>'
                          '(ROOT::GetThreadPoolSize(), "higgs_model.dat");')
df = ROOT.RDataFrame("sig_tree", inputFile)
df = df.Define("DNN_Value", "sofie_functor(rdfslot_, m_jj, m_jjj, m_lv, m_jlv, m_bb, m_wbb, m_wwbb)")
h = df.Histo1D(("h_sig", "network output;score;events", 40, 0, 1), "DNN_Value")
table = df.AsNumpy(["DNN_Value"] + columns)
print(f"{int(h.GetEntries())} signal events, mean score {h.GetMean():.4f}")

# The same events through onnxruntime
try:
    import onnxruntime as ort
except ImportError:
    sys.exit(0)  # nothing to compare with
x = np.column_stack([table[c] for c in columns]).astype(np.float32)
expected = ort.InferenceSession(modelFile).run(None, {"features": x})[0][:, 0]
worst = float(np.abs(table["DNN_Value"] - expected).max())
print(f"largest difference from onnxruntime over {len(x)} events: {worst:.2e}")
if worst > 1e-5:
    sys.exit("the scores differ from onnxruntime's")
