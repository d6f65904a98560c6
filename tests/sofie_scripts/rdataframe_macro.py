"""A SOFIE user's two steps, plus the one added import: the header generated from the ONNX model in Python
(as TMVA_SOFIE_PyTorch_HiggsModel.py does), then the C++ macro TMVA_SOFIE_RDataFrame.C run by ROOT with
``SofieFunctor`` from ``TMVA/SOFIEHelpers.hxx`` on two threads.
"""

import ctypes
import shutil
import sys
from pathlib import Path

import ROOT

import sofie_rdf.compat  # noqa: F401  (the one line added)

modelFile, inputFile = sys.argv[1], sys.argv[2]
shutil.copy(modelFile, "higgs_model.onnx")

# Step 2 of TMVA_SOFIE_PyTorch_HiggsModel.py: parse the ONNX model and generate the code
parser = ROOT.TMVA.Experimental.SOFIE.RModelParser_ONNX()
model = parser.Parse("higgs_model.onnx")
model.Generate()
model.OutputGenerated()

# The macro, as `root TMVA_SOFIE_RDataFrame.C` runs it
macro = Path(__file__).with_name("TMVA_SOFIE_RDataFrame.C")
error = ctypes.c_int(0)
ROOT.gROOT.ProcessLine(f'.x {macro}("{inputFile}")', error)
if error.value != 0:
    sys.exit(f"TMVA_SOFIE_RDataFrame.C failed (interpreter error {error.value})")
