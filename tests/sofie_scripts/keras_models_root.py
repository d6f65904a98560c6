"""TMVA_SOFIE_Models.py as a SOFIE user has it, plus the one added import: three Keras models (``.h5`` and
``.keras``) generated with ``Options.kRootBinaryWeightFile`` and appended to one header, their weights in one
``.root`` file, compiled by one ``gInterpreter.Declare`` and evaluated event by event.

The scores and inputs go to ``results.npz`` for tests/test_sofie_compat.py to compare with Keras.
"""

import os
import sys

import numpy as np
import ROOT

import sofie_rdf.compat  # noqa: F401  (the one line added to the SOFIE script)

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402


def CreateModel(nlayers=4, nunits=64):
    model = keras.Sequential([keras.Input(shape=(7,))])
    for _ in range(nlayers):
        model.add(keras.layers.Dense(nunits, activation="relu"))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def PrepareData(inputFile):
    df = ROOT.RDataFrame("sig_tree", inputFile)
    data = df.AsNumpy(columns=["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"])
    return np.column_stack(list(data.values()))[:200]


def SaveModel(model, fileName):
    model.save(fileName)
    return fileName


def GenerateModelCode(modelFile, generatedHeaderFile):
    model = ROOT.TMVA.Experimental.SOFIE.PyKeras.Parse(modelFile)
    print("Generating inference code for the Keras model from ", modelFile, "in the header ", generatedHeaderFile)
    # Generating inference code using a ROOT binary file
    model.Generate(ROOT.TMVA.Experimental.SOFIE.Options.kRootBinaryWeightFile)
    # add option to append to the same file the generated headers (pass True for append flag)
    model.OutputGenerated(generatedHeaderFile, True)
    return generatedHeaderFile


x_test = PrepareData(sys.argv[1])
keras.utils.set_random_seed(2)
model1 = SaveModel(CreateModel(4, 64), "Higgs_Model_4L_50.h5")
model2 = SaveModel(CreateModel(4, 32), "Higgs_Model_4L_200.keras")
model3 = SaveModel(CreateModel(2, 64), "Higgs_Model_2L_500.h5")

generatedHeaderFile = "Higgs_Model.hxx"
# need to remove existing header file since we are appending on same one
if os.path.exists(generatedHeaderFile):
    os.remove(generatedHeaderFile)
    os.remove("Higgs_Model.root")

GenerateModelCode(model1, generatedHeaderFile)
GenerateModelCode(model2, generatedHeaderFile)
GenerateModelCode(model3, generatedHeaderFile)

# compile the generated code
ROOT.gInterpreter.Declare('#include "' + generatedHeaderFile + '"')

# run the inference on the test data
session1 = ROOT.TMVA_SOFIE_Higgs_Model_4L_50.Session("Higgs_Model.root")
session2 = ROOT.TMVA_SOFIE_Higgs_Model_4L_200.Session("Higgs_Model.root")
session3 = ROOT.TMVA_SOFIE_Higgs_Model_2L_500.Session("Higgs_Model.root")


def EvalModel(session, x):
    result = session.infer(x)
    return result[0]


scores = np.zeros((x_test.shape[0], 3), dtype=np.float32)
for i in range(0, x_test.shape[0]):
    x = x_test[i, :].astype(np.float32)
    scores[i] = [EvalModel(session1, x), EvalModel(session2, x), EvalModel(session3, x)]
np.savez("results.npz", x=x_test.astype(np.float32), scores=scores)
