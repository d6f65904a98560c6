"""Keras and PyTorch classifiers stored next to the data in one .root file, then run in RDataFrame.

1. Train a small Keras model (torch backend) and a small PyTorch model on the
   Higgs sample, read with uproot.
2. Store both, with the ONNX model of the demo, in ``models.root``: the IR,
   compressed, several models per file (``model.save(path, key)``).
3. Load each back with ``sr.load("models.root:key")`` (uproot only) and add it
   as a column of an RDataFrame on all cores; compare the three scores and the
   frameworks' own predictions.

Run: ``python tutorials/keras_torch_root.py`` (about half a minute; writes
``models.root`` in the current folder).
"""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # before Keras is imported; never TensorFlow

import keras  # noqa: E402
import numpy as np  # noqa: E402
import ROOT  # noqa: E402
import torch  # noqa: E402
import uproot  # noqa: E402

import sofie_rdf as sr  # noqa: E402
from sofie_rdf.parsers.root import list_models  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = str(DATA / "higgs_sample.root")
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]


def training_data() -> tuple[np.ndarray, np.ndarray]:
    """Features of signal and background events (uproot), labels 1 and 0, shuffled."""
    with uproot.open(SAMPLE) as f:
        sig, bkg = (np.stack([f[tree][b].array(library="np") for b in FEATURES], axis=1)
                    for tree in ("sig_tree", "bkg_tree"))
    x = np.concatenate([sig, bkg]).astype(np.float32)
    y = np.concatenate([np.ones(len(sig)), np.zeros(len(bkg))]).astype(np.float32)
    order = np.random.default_rng(1).permutation(len(x))
    return x[order], y[order]


def train_keras(x: np.ndarray, y: np.ndarray) -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((7,), name="features"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid", name="score"),
    ], name="keras_dnn")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=3, batch_size=128, verbose=0)
    return model


def train_torch(x: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.BatchNorm1d(7), torch.nn.Linear(7, 32), torch.nn.ReLU(),
                              torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1), torch.nn.Sigmoid())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)[:, None]
    for _ in range(3):
        for i in range(0, len(xt), 128):
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy(net(xt[i:i + 128]), yt[i:i + 128]).backward()
            opt.step()
    return net.eval()


x, y = training_data()
kmodel, tmodel = train_keras(x, y), train_torch(x, y)

# Convert and store: three front ends, one file.
store = "models.root"
sr.load(kmodel).save(store, "keras_dnn")
sr.from_pytorch(tmodel, torch.from_numpy(x[:2]), name="torch_dnn", dynamic_axes={0: {0: "N"}},
                input_names=["features"], output_names=["score"]).save(store, "torch_dnn")
sr.load(str(DATA / "higgs_model.onnx")).save(store, "onnx_dnn")
print(f"{store} holds: {', '.join(list_models(store))}")

# Back from the file (uproot only), compiled once, evaluated on every core.
ROOT.EnableImplicitMT()
df = ROOT.RDataFrame("sig_tree", SAMPLE)
for key in ("keras_dnn", "torch_dnn", "onnx_dnn"):
    df = sr.rdf.define(df, key, sr.load(f"{store}:{key}"), FEATURES)
cols = df.AsNumpy(["rdfentry_", "keras_dnn", "torch_dnn", "onnx_dnn", *FEATURES])
order = cols["rdfentry_"].argsort()
events = np.stack([cols[b][order] for b in FEATURES], axis=1)

# The same events through the frameworks themselves.
expected = {"keras_dnn": kmodel.predict(events, verbose=0)[:, 0],
            "torch_dnn": tmodel(torch.from_numpy(events)).detach().numpy()[:, 0]}
for key, ref in expected.items():
    diff = np.abs(cols[key][order] - ref).max()
    print(f"{key}: mean signal score {cols[key].mean():.3f}, max |RDataFrame - {key.split('_')[0]}| = {diff:.2e}")
    assert diff < 1e-5, key
print(f"onnx_dnn: mean signal score {cols['onnx_dnn'].mean():.3f}")
