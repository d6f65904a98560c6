"""TMVA_SOFIE_PyTorch.py as a SOFIE user has it, plus the one added import: a TorchScript ``.pt`` parsed with
the input shapes in a ``std::vector<std::vector<size_t>>``, every inspection call of the tutorial, then the
header compiled with Cling and run.

The output goes to ``results.npz`` for tests/test_sofie_compat.py to compare with torch.
"""

import sys

import numpy as np
import ROOT
import torch
import torch.nn as nn

import sofie_rdf.compat  # noqa: F401  (the one line added to the SOFIE script)

SOFIE = ROOT.TMVA.Experimental.SOFIE

# Python and C++ write to separate stdout buffers; flush both on every line
sys.stdout.reconfigure(line_buffering=True)
ROOT.gInterpreter.ProcessLine("std::cout << std::unitbuf;")

torch.manual_seed(3)
model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())
model.eval()
m = torch.jit.script(model)
torch.jit.save(m, "PyTorchModel.pt")

# Parsing a PyTorch model requires the shape and data-type of input tensor
input_shapes = ROOT.std.vector["std::vector<std::size_t>"]()
input_shapes.push_back([2, 32])

model = SOFIE.PyTorch.Parse("PyTorchModel.pt", input_shapes)
model.Generate()
model.OutputGenerated("PyTorchModel.hxx")

print("\n")
model.PrintRequiredInputTensors()
print("\n")
model.PrintInitializedTensors()
print("\n")
model.PrintIntermediateTensors()

tensor_exists = bool(model.CheckIfTensorAlreadyExist("0weight"))
print(f'\n\nTensor "0weight" already exist: {str(tensor_exists).lower()}\n')
tensor_shape = model.GetTensorShape("0weight")
print('Shape of tensor "0weight": ' + ",".join(str(dim) for dim in tensor_shape) + ",")
tensor_type = model.GetTensorType("0weight")
print(f'\nData type of tensor "0weight": {SOFIE.ConvertTypeToString(tensor_type)}')
print()
model.PrintGenerated()

ROOT.gInterpreter.Declare('#include "PyTorchModel.hxx"')
session = ROOT.TMVA_SOFIE_PyTorchModel.Session()
x = np.random.default_rng(4).standard_normal((2, 32)).astype(np.float32)
y = np.asarray(session.infer(x)).reshape(2, 8)
np.savez("results.npz", x=x, y_sofie=y)
