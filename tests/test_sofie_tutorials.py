"""ROOT's own SOFIE tutorials, as pip's ``root`` ships them, run with the one added line.

Every ``TMVA_SOFIE_*`` tutorial of the installed ``root`` package runs here, unchanged, in ROOT's order (its
tutorials' CMakeLists: the Keras model-making script before the macros that read its outputs), one fresh
interpreter each, all in one folder as ROOT's test area is: a ``.py`` tutorial with ``import sofie_rdf.compat``
put first, a ``.C`` macro through ``ROOT.gROOT.ProcessLine(".x macro.C")`` after that import.  Only those
whose missing piece is TensorFlow or graph_nets are skipped, each skip naming it.  What a tutorial prints is
checked against what the model computes (Keras, torch, onnxruntime) or what the model file holds.

The chain takes about four minutes on a busy 2-core machine (the Keras training of
``TMVA_SOFIE_Keras_HiggsModel.py`` is the longest step, most of the rest is starting ROOT and torch in each
fresh interpreter); it runs in ``make test`` in order on one worker (``xdist_group``), beside the other tests.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT_SPEC = importlib.util.find_spec("ROOT")
if ROOT_SPEC is None or ROOT_SPEC.origin is None:
    pytest.skip("needs pip's ROOT (the 'root' package)", allow_module_level=True)
TUTORIALS = Path(ROOT_SPEC.origin).parent / "tutorials" / "machine_learning"
REPO = Path(__file__).resolve().parent.parent
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]
HIGGS_DATA = TUTORIALS / "data" / "Higgs_data.root"

# ROOT's order (tutorials/CMakeLists.txt: alphabetical, then the -depends chains: Keras_HiggsModel.py ->
# RDataFrame.C -> RDataFrame_JIT.C -> RSofieReader.C -> Inference.py; Keras_HiggsModel.py -> RDataFrame.py;
# GNN_Parser.py -> GNN_Application.C), with the arguments a macro is given where pip lacks its default input.
ORDER = [
    "TMVA_SOFIE_GNN.py",
    "TMVA_SOFIE_GNN_Parser.py",
    "TMVA_SOFIE_GNN_Application.C",
    "TMVA_SOFIE_Keras.py",
    "TMVA_SOFIE_Keras_HiggsModel.py",
    "TMVA_SOFIE_Models.py",
    "TMVA_SOFIE_ONNX.C",
    "TMVA_SOFIE_ONNX.py",
    "TMVA_SOFIE_PyTorch.C",
    "TMVA_SOFIE_RDataFrame.C",
    "TMVA_SOFIE_RDataFrame_JIT.C",
    "TMVA_SOFIE_RSofieReader.C",
    "TMVA_SOFIE_Inference.py",
    "TMVA_SOFIE_RDataFrame.py",
]
# ROOT copies Linear_16.onnx (a model of its SOFIE tests) next to TMVA_SOFIE_ONNX.C; pip ships neither the file
# nor the test models, so the macro is given the rootbench model of that name (benchmarks/models.py).
MACRO_ARGS = {"TMVA_SOFIE_ONNX.C": '("Linear_16.onnx")'}
# What a tutorial needs that pip cannot give: the module whose absence skips it.
NEEDS = {"TMVA_SOFIE_GNN_Application.C": "graph_nets"}  # its headers are TMVA_SOFIE_GNN_Parser.py's outputs
MISSING_PIECES = {"tensorflow": "TensorFlow", "graph_nets": "graph_nets"}


def _missing_piece(name: str) -> str | None:
    """TensorFlow or graph_nets where the tutorial imports (or needs the outputs of a tutorial importing) it and
    it is not installed."""
    source = (TUTORIALS / name).read_text()
    wanted = (
        [NEEDS[name]]
        if name in NEEDS
        else [m for m in MISSING_PIECES if re.search(rf"^\s*(import|from)\s+{m}\b", source, re.MULTILINE)]
    )
    for module in wanted:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # sofie_rdf.compat, imported in this process, names the missing piece
            found = False
        if not found:
            return MISSING_PIECES[module]
    return None


def _run(name: str, folder: Path) -> str:
    """Run the tutorial in ``folder`` in a fresh interpreter with the one added line; its stdout, or a failure
    with its output."""
    source = TUTORIALS / name
    if name.endswith(".py"):
        script = folder / name
        script.write_text("import sofie_rdf.compat\n" + source.read_text())
        command = [sys.executable, str(script)]
    else:
        line = f".x {source}{MACRO_ARGS.get(name, '')}"
        command = [
            sys.executable,
            "-c",
            (
                "import ctypes, sys\nimport sofie_rdf.compat\nimport ROOT\nerror = ctypes.c_int(0)\n"
                f"ROOT.gROOT.ProcessLine({line!r}, error)\nsys.exit(error.value)\n"
            ),
        ]
    path = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    # torch on one thread: the tutorials train and run it on batches of a few dozen rows, where a second thread
    # only adds synchronisation (3-4x slower Keras training beside the other test worker on a 2-core machine)
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    env = {**os.environ, "PWD": str(folder), "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": threads}
    proc = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert ": error:" not in proc.stderr and "Error in <" not in proc.stderr, f"{name}:\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The folder every tutorial runs in (later ones read what earlier ones wrote), with ``Linear_16.onnx``."""
    pytest.importorskip("torch")
    from benchmarks import models

    path = tmp_path_factory.mktemp("sofie_tutorials")
    (path / "Linear_16.onnx").write_bytes(models.onnx_path("Linear_16", path / "models").read_bytes())
    return path


def _numbers(text: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(r"[-+]?\d*\.\d+(?:[eE][-+]?\d+)?|[-+]?\d+(?:[eE][-+]?\d+)?", text)])


def _keras_higgs(folder: Path, x: np.ndarray) -> np.ndarray:
    """What HiggsModel.keras (TMVA_SOFIE_Keras_HiggsModel.py's) computes on ``x`` (events x 7)."""
    keras = pytest.importorskip("keras")
    model = keras.saving.load_model(folder / "HiggsModel.keras", compile=False)
    return np.asarray(model.predict(np.asarray(x, dtype=np.float32).reshape(-1, 7), verbose=0))


def _first_event(tree: str) -> np.ndarray:
    uproot = pytest.importorskip("uproot")
    arrays = uproot.open(HIGGS_DATA)[tree].arrays(FEATURES, entry_stop=1, library="np")
    return np.array([arrays[f][0] for f in FEATURES], dtype=np.float32)


def check_keras_higgs(out: str, folder: Path) -> None:
    found = re.search(r"input to model is\s+\[(.*?)\].*?output using SOFIE =\s+(\S+)\s+using Keras =\s+\[(.*?)\]", out, re.DOTALL)
    assert found and out.rstrip().endswith("OK"), out[-2000:]
    x, y_sofie = _numbers(found.group(1)), float(found.group(2))
    np.testing.assert_allclose(y_sofie, _keras_higgs(folder, x)[0, 0], rtol=1e-4, atol=1e-5)
    assert (folder / "HiggsModel.hxx").exists() and (folder / "HiggsModel.dat").exists()


def check_onnx_macro(out: str, folder: Path) -> None:
    import onnx
    from onnx import numpy_helper

    weights = {t.name.replace(".", ""): numpy_helper.to_array(t) for t in onnx.load(folder / "Linear_16.onnx").graph.initializer}
    w16 = weights["16weight"]
    assert 'Tensor "16weight" already exist: true' in out
    assert f'Shape of tensor "16weight": {"".join(f"{d}," for d in w16.shape)}' in out
    assert 'Data type of tensor "16weight": float' in out
    for name, w in weights.items():  # PrintInitializedTensors: every weight, its shape as the file has it
        assert f'Tensor name: "{name}"\ttype: float\tshape: [{",".join(map(str, w.shape))}]' in out
    assert "Fully Specified Tensor name: x\ttype: float\tshape: [16,100]" in out
    assert "namespace TMVA_SOFIE_Linear_16" in out  # PrintGenerated
    assert (folder / "Linear_16.hxx").exists() and (folder / "Linear_16.dat").exists()


def check_onnx_py(out: str, folder: Path) -> None:
    import onnxruntime as ort

    found = re.search(r"input to model is\s+\[\[(.*?)\]\].*?output using SOFIE =\s+\[(.*?)\]", out, re.DOTALL)
    assert found and "OK" in out.split("output using ORT")[-1], out[-2000:]
    x = _numbers(found.group(1)).astype(np.float32).reshape(1, 32)
    expected = ort.InferenceSession(str(folder / "LinearModel.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(_numbers(found.group(2)), expected.reshape(-1), rtol=1e-4, atol=1e-5)


def check_pytorch_macro(out: str, folder: Path) -> None:
    torch = pytest.importorskip("torch")
    weight = torch.jit.load(str(folder / "PyTorchModel.pt")).state_dict()["0.weight"]
    assert 'Tensor "0weight" already exist: true' in out
    assert f'Shape of tensor "0weight": {"".join(f"{d}," for d in weight.shape)}' in out
    assert 'Data type of tensor "0weight": float' in out
    assert "Fully Specified Tensor name: input_0\ttype: float\tshape: [2,32]" in out
    assert "namespace TMVA_SOFIE_PyTorchModel" in out and (folder / "PyTorchModel.hxx").exists()


def check_rdataframe_macro(out: str, folder: Path) -> None:
    assert "Running using 2 threads" in out


def check_rdataframe_jit(out: str, folder: Path) -> None:
    assert 'compiled : #include "HiggsModel.hxx"' in out and "Model is ready to be evaluated" in out


def check_rsofiereader(out: str, folder: Path) -> None:
    found = re.search(r"Event prediction = (\S+)", out)
    assert found, out[-2000:]
    expected = _keras_higgs(folder, np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]))[0, 0]
    np.testing.assert_allclose(float(found.group(1)), expected, rtol=1e-4, atol=1e-5)


def check_inference(out: str, folder: Path) -> None:
    for kind, tree in (("signal", "sig_tree"), ("background", "bkg_tree")):
        found = re.search(rf"result for {kind} event\s+0\s+(\S+)", out)
        assert found, out[-2000:]
        np.testing.assert_allclose(
            float(found.group(1)), _keras_higgs(folder, _first_event(tree))[0, 0], rtol=1e-4, atol=1e-5, err_msg=kind
        )
        assert f"Number of {kind} entries 10000.0" in out


def check_rdataframe_py(out: str, folder: Path) -> None:
    assert "Number of signal entries 10000.0" in out and "Number of background entries 10000.0" in out
    assert (folder / "Higgs_trained_model_generated.hxx").exists()


CHECKS = {
    "TMVA_SOFIE_Keras_HiggsModel.py": check_keras_higgs,
    "TMVA_SOFIE_ONNX.C": check_onnx_macro,
    "TMVA_SOFIE_ONNX.py": check_onnx_py,
    "TMVA_SOFIE_PyTorch.C": check_pytorch_macro,
    "TMVA_SOFIE_RDataFrame.C": check_rdataframe_macro,
    "TMVA_SOFIE_RDataFrame_JIT.C": check_rdataframe_jit,
    "TMVA_SOFIE_RSofieReader.C": check_rsofiereader,
    "TMVA_SOFIE_Inference.py": check_inference,
    "TMVA_SOFIE_RDataFrame.py": check_rdataframe_py,
}


def test_every_shipped_tutorial_is_listed():
    shipped = {p.name for p in TUTORIALS.glob("TMVA_SOFIE_*") if p.suffix in (".py", ".C")}
    assert shipped == set(ORDER), f"tutorials to add to ORDER (and a check): {sorted(shipped - set(ORDER))}"


@pytest.mark.xdist_group("sofie_tutorials")
@pytest.mark.parametrize("name", ORDER)
def test_tutorial(name, folder):
    if not (TUTORIALS / name).exists():
        pytest.skip(f"{name} is not shipped with this ROOT")
    missing = _missing_piece(name)
    if missing is not None:
        pytest.skip(f"{name} needs {missing}, which pip's ROOT environment does not have")
    out = _run(name, folder)
    CHECKS[name](out, folder)
