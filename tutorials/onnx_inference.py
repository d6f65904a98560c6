"""ONNX inference from Python with sofie-rdf, in a few lines.

The model becomes C++ (a TMVA SOFIE style header), compiled once per process
by Cling ("jit") or by the system compiler ("native", cached on disk), and is
then called on numpy arrays of any batch size.
"""

from pathlib import Path

import numpy as np

import sofie_rdf as sr

model = sr.load(Path(__file__).resolve().parent.parent / "data" / "higgs_model.onnx")
print(model.inputs, model.outputs)

x = np.random.default_rng(0).random((4, 7), dtype=np.float32)  # 4 events, 7 features
for backend in ("jit", "native"):
    sess = sr.compile(model, backend=backend)
    print(backend, sess.infer(x).ravel())
