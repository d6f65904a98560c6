"""TMVA_SOFIE_ONNX.py as a SOFIE user has it, plus the one added import: a PyTorch model exported to ONNX,
parsed, printed, generated, compiled with Cling and run on numpy.

The SOFIE results go to ``results.npz`` for tests/test_sofie_compat.py to compare with onnxruntime.
"""

import numpy as np
import ROOT
import torch
import torch.nn as nn

import sofie_rdf.compat  # noqa: F401  (the one line added to the SOFIE script)


def CreateAndTrainModel(modelName):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2), nn.Softmax(dim=1))
    criterion = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(50):
        x = torch.randn(2, 32)
        y = torch.randn(2, 2)
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    modelFile = modelName + ".onnx"
    torch.onnx.export(model, torch.randn(1, 32), modelFile, export_params=True, dynamo=True, external_data=False,
                      input_names=["input"], output_names=["output"])
    print("model exported to ONNX as", modelFile)
    return modelFile


def ParseModel(modelFile, verbose=False):
    parser = ROOT.TMVA.Experimental.SOFIE.RModelParser_ONNX()
    model = parser.Parse(modelFile, verbose)
    model.PrintInitializedTensors()
    data = model.GetTensorData["float"]("0weight")
    print("0weight", data)
    model.Generate()
    model.OutputGenerated()
    model.PrintGenerated()
    modelCode = modelFile.replace(".onnx", ".hxx")
    print("Generated model header file ", modelCode)
    return modelCode, np.asarray(data)


modelName = "LinearModel"
modelFile = CreateAndTrainModel(modelName)
modelCode, weight0 = ParseModel(modelFile, True)

ROOT.gInterpreter.Declare('#include "' + modelCode + '"')

sofie = getattr(ROOT, "TMVA_SOFIE_" + modelName)
session = sofie.Session()

x = np.random.normal(0, 1, (1, 32)).astype(np.float32)
y = session.infer(x)
y_sofie = np.asarray(y.data())
print("-> output using SOFIE = ", y_sofie)
np.savez("results.npz", x=x, y_sofie=y_sofie, weight0=weight0)
