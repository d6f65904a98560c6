"""TMVA_SOFIE_RDataFrame.py as a SOFIE user has it, plus the one added import: a Keras model saved as ``.h5``,
parsed, generated into a header of another name, and run by RDataFrame through ``SofieFunctor`` in a
``Define`` string with ``rdfslot_``.

The network's column and its inputs go to ``results.npz`` for tests/test_sofie_compat.py to compare with Keras.
"""

import os
import sys

import numpy as np
import ROOT

import sofie_rdf.compat  # noqa: F401  (the one line added to the SOFIE script)

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

inputFile = sys.argv[1]  # the tutorial reads ROOT's Higgs_data.root; the test gives data/higgs_sample.root
modelFile = "Higgs_trained_model.h5"
modelName = "Higgs_trained_model"

keras.utils.set_random_seed(1)
trained = keras.Sequential([keras.Input(shape=(7,)), keras.layers.Dense(64, activation="relu"),
                            keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
trained.save(modelFile)

# parse the input Keras model into RModel object
model = ROOT.TMVA.Experimental.SOFIE.PyKeras.Parse(modelFile)

# generating inference code
model.Generate()
model.OutputGenerated("Higgs_trained_model_generated.hxx")
model.PrintGenerated()

# compile using ROOT JIT trained model
print("compiling SOFIE model and functor....")
ROOT.gInterpreter.Declare('#include "Higgs_trained_model_generated.hxx"')
ROOT.gInterpreter.Declare("auto sofie_functor = TMVA::Experimental::SofieFunctor<7,TMVA_SOFIE_" + modelName
                          + '::Session>(0,"Higgs_trained_model_generated.dat");')

columns = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]
results = {}
for tree in ("sig_tree", "bkg_tree"):
    df = ROOT.RDataFrame(tree, inputFile)
    df = df.Define("DNN_Value", "sofie_functor(rdfslot_,m_jj, m_jjj, m_lv, m_jlv, m_bb, m_wbb, m_wwbb)")
    h = df.Histo1D(("h_" + tree, "", 100, 0, 1), "DNN_Value")
    values = df.AsNumpy(["DNN_Value"] + columns)
    print("Number of", tree, "entries", h.GetEntries())
    results[tree + "_dnn"] = values["DNN_Value"]
    results[tree + "_x"] = np.column_stack([values[c] for c in columns])
np.savez("results.npz", **results)
