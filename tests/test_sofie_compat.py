"""SOFIE's own scripts on a ROOT without TMVA, through ``import sofie_rdf.compat``.

The scripts of ``tests/sofie_scripts/`` are written as ROOT's SOFIE tutorials are (ONNX from PyTorch, Keras
``.h5``/``.keras``, a TorchScript ``.pt``, several models in one header with ``.root`` weights, RDataFrame with
``SofieFunctor`` and ``rdfslot_``, a C++ macro), plus the one added import.  Each runs in a fresh interpreter, as
a user runs it, and its numbers are compared here with onnxruntime, Keras or torch.  The rest checks the calls
that have no counterpart (they raise, naming the call), the options, the C++ with ``-Werror``, and that the
module steps aside in a ROOT built with TMVA.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_model, ort_run
from onnx import helper, numpy_helper

from sofie_rdf import SofieError, _root
from sofie_rdf._compat.common import ETensorType, Options, SofieCompatError
from sofie_rdf._compat.rmodel import NOT_PROVIDED

SCRIPTS = Path(__file__).resolve().parent / "sofie_scripts"
DATA = Path(__file__).resolve().parent.parent / "data"
HIGGS = DATA / "higgs_model.onnx"
SAMPLE = DATA / "higgs_sample.root"
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]
RTOL, ATOL = 1e-5, 1e-6
# Keras on its torch backend (the scripts set it too, as the tests' processes do)
os.environ.setdefault("KERAS_BACKEND", "torch")


def run_script(name: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a SOFIE script of tests/sofie_scripts/ in ``cwd`` in a fresh interpreter, as from a shell there (whose
    ``$PWD`` a macro's ``R__ADD_INCLUDE_PATH($PWD)`` reads); it must exit with 0."""
    proc = subprocess.run([sys.executable, str(SCRIPTS / name), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PWD": str(cwd)})
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


# ---- SOFIE's scripts, run as users run them ---------------------------------------------------------------

def test_onnx_script_matches_onnxruntime(tmp_path):
    proc = run_script("onnx_from_pytorch.py", tmp_path)
    results = np.load(tmp_path / "results.npz")
    model = onnx.load(tmp_path / "LinearModel.onnx")
    expected = ort_run(model, {"input": results["x"]})[0]
    np.testing.assert_allclose(results["y_sofie"].reshape(expected.shape), expected, rtol=RTOL, atol=ATOL)
    # GetTensorData['float']('0weight'): the initializer "0.weight" by SOFIE's cleaned name, flat
    weight = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name.replace(".", "") == "0weight")
    np.testing.assert_array_equal(results["weight0"], weight.reshape(-1))
    assert 'Tensor name: "0weight"\ttype: float\tshape: [16,32]' in proc.stdout
    assert "namespace TMVA_SOFIE_LinearModel" in proc.stdout  # PrintGenerated
    assert (tmp_path / "LinearModel.hxx").exists() and (tmp_path / "LinearModel.dat").exists()


def test_keras_rdataframe_script_matches_keras(tmp_path):
    keras = pytest.importorskip("keras")
    run_script("keras_rdataframe.py", tmp_path, str(SAMPLE))
    results = np.load(tmp_path / "results.npz")
    trained = keras.saving.load_model(tmp_path / "Higgs_trained_model.h5", compile=False)
    for tree in ("sig_tree", "bkg_tree"):
        x = results[f"{tree}_x"].astype(np.float32)
        assert len(x) > 1000
        expected = trained.predict(x, verbose=0)[:, 0]
        np.testing.assert_allclose(results[f"{tree}_dnn"], expected, rtol=RTOL, atol=ATOL, err_msg=tree)


def test_models_in_one_header_with_root_weights_match_keras(tmp_path):
    keras = pytest.importorskip("keras")
    run_script("keras_models_root.py", tmp_path, str(SAMPLE))
    results = np.load(tmp_path / "results.npz")
    header = (tmp_path / "Higgs_Model.hxx").read_text()
    files = ["Higgs_Model_4L_50.h5", "Higgs_Model_4L_200.keras", "Higgs_Model_2L_500.h5"]
    for k, name in enumerate(files):
        assert f"namespace TMVA_SOFIE_{Path(name).stem} {{" in header
        expected = keras.saving.load_model(tmp_path / name, compile=False).predict(results["x"], verbose=0)[:, 0]
        np.testing.assert_allclose(results["scores"][:, k], expected, rtol=RTOL, atol=ATOL, err_msg=name)
    uproot = pytest.importorskip("uproot")
    with uproot.open(tmp_path / "Higgs_Model.root") as f:  # one directory per model, SOFIE's layout
        assert {k.split(";")[0] for k in f.keys(recursive=False)} == {f"{Path(n).stem}_weights" for n in files}


def test_pytorch_script_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    proc = run_script("pytorch_pt.py", tmp_path)
    results = np.load(tmp_path / "results.npz")
    module = torch.jit.load(str(tmp_path / "PyTorchModel.pt"))
    with torch.no_grad():
        expected = module(torch.from_numpy(results["x"])).numpy()
    np.testing.assert_allclose(results["y_sofie"], expected, rtol=RTOL, atol=ATOL)
    for line in ('Tensor "0weight" already exist: true', 'Shape of tensor "0weight": 16,32,',
                 'Data type of tensor "0weight": float', "Fully Specified Tensor name: input_0\ttype: float\tshape: [2,32]"):
        assert line in proc.stdout


def test_cpp_macro_with_sofie_functor_matches_onnxruntime(tmp_path):
    uproot = pytest.importorskip("uproot")
    proc = run_script("rdataframe_macro.py", tmp_path, str(HIGGS), str(SAMPLE))
    assert "Running using 2 threads" in proc.stdout
    scores = uproot.open(tmp_path / "scores.root")["scores"].arrays(library="np")
    x = np.column_stack([scores[c] for c in FEATURES]).astype(np.float32)
    expected = ort_run(onnx.load(HIGGS), {"features": x})[0][:, 0]
    assert len(x) == 5000
    np.testing.assert_allclose(scores["DNN_Value"], expected, rtol=RTOL, atol=ATOL)


# ---- the Python names, in this process ---------------------------------------------------------------------

@pytest.fixture
def compat():
    """``sofie_rdf.compat``, imported (and so installed) in this process."""
    pytest.importorskip("ROOT")
    import sofie_rdf.compat

    return sofie_rdf.compat


@pytest.fixture
def higgs(compat, tmp_path):
    """``RModelParser_ONNX().Parse`` of the Higgs model, copied under a name no other test declares to Cling."""
    path = tmp_path / "compat_higgs.onnx"
    shutil.copy(HIGGS, path)
    return compat.RModelParser_ONNX().Parse(str(path))


def test_sofie_namespace_holds_the_python_names(compat):
    ROOT = _root.root()
    from ROOT.TMVA.Experimental import SOFIE

    assert SOFIE is ROOT.TMVA.Experimental.SOFIE
    assert SOFIE.RModelParser_ONNX is compat.RModelParser_ONNX and SOFIE.PyKeras is compat.PyKeras
    assert int(SOFIE.Options.kNoSession | SOFIE.Options.kNoWeightFile) == 3
    assert SOFIE.Options.kRootBinaryWeightFile == 4 and SOFIE.ETensorType.INT64 == 7
    assert SOFIE.ConvertTypeToString(SOFIE.ConvertStringToType("int64_t")) == "int64_t"
    assert SOFIE.ConvertShapeToLength([2, 3, 4]) == 24 and SOFIE.ConvertShapeToString([2, 32]) == "{ 2 , 32 }"


def test_sofie_functor_name_resolves_in_cling(compat):
    ROOT = _root.root()
    assert ROOT.gInterpreter.Declare("namespace compat_check { using TMVA::Experimental::SofieFunctor; }")


def test_sr_sofie_compat_reports_installed(compat):
    import sofie_rdf as sr

    assert sr.sofie_compat() is True


def test_tensors_by_sofie_names(higgs):
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(HIGGS).graph.initializer}
    np.testing.assert_array_equal(higgs.GetTensorData["float"]("0weight"), weights["0.weight"].reshape(-1))
    np.testing.assert_array_equal(higgs.GetTensorData("0.weight"), weights["0.weight"].reshape(-1))
    assert higgs.GetTensorShape("2weight") == list(weights["2.weight"].shape)
    assert higgs.GetTensorType("0bias") == ETensorType.FLOAT and higgs.IsInitializedTensor("0bias")
    assert higgs.GetDynamicTensorShape("features") == ["batch", 7]
    assert higgs.CheckIfTensorAlreadyExist("score") and not higgs.CheckIfTensorAlreadyExist("nothing")
    assert higgs.GetInputTensorNames() == ["features"] and higgs.GetOutputTensorNames() == ["score"]
    with pytest.raises(SofieError, match="holds float32, not float64"):
        higgs.GetTensorData["double"]("0weight")
    with pytest.raises(SofieError, match="dynamic shape"):
        higgs.GetTensorShape("features")


def test_initialize_fixes_dims_by_name_once(higgs):
    ROOT = _root.root()
    params = ROOT.std.map["std::string", "size_t"]()
    params["batch"] = 3
    higgs.Initialize(params)
    higgs.Initialize(5)  # initialized once, as in SOFIE
    assert higgs.GetTensorShape("features") == [3, 7]


def test_keras_batch_fixed_to_one_as_sofie_does(compat, tmp_path):
    keras = pytest.importorskip("keras")
    path = tmp_path / "compat_dense.keras"
    keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(3)]).save(path)
    fixed = compat.PyKeras.Parse(str(path))
    assert fixed.GetTensorShape(fixed.GetInputTensorNames()[0]) == [1, 5]
    batch, features = compat.PyKeras.Parse(str(path), batch_size=0).GetDynamicTensorShape(fixed.GetInputTensorNames()[0])
    assert isinstance(batch, str) and features == 5


def test_no_session_free_function_matches_onnxruntime(higgs, tmp_path):
    higgs.Generate(Options.kNoSession | Options.kNoWeightFile, 4)
    assert not higgs.UseSession()
    header = tmp_path / "compat_higgs_nosession.hxx"
    higgs.OutputGenerated(str(header))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compat_higgs.onnx", header.name]  # no weights file
    ROOT = _root.root()
    assert ROOT.gInterpreter.Declare(f'#include "{header}"')
    x = np.random.default_rng(5).random((4, 7), dtype=np.float32)
    got = np.asarray(ROOT.TMVA_SOFIE_compat_higgs.infer(x)).reshape(4, 1)
    np.testing.assert_allclose(got, ort_run(onnx.load(HIGGS), {"features": x})[0], rtol=RTOL, atol=ATOL)


def _gcc_werror(tmp_path: Path, header: Path, *flags: str) -> None:
    main = tmp_path / "main.cpp"
    main.write_text(f'#include "{header.name}"\nint main() {{ return 0; }}\n')
    proc = subprocess.run(["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", *flags,
                           "-I", str(header.parent), str(main)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_headers_build_with_gcc_werror(compat, higgs, tmp_path):
    """The headers this path writes (the Cling pragma guarded, the kNoSession functions, several models appended
    with their .root weights) are C++17 that g++ takes with -Wall -Wextra -Werror."""
    if shutil.which("c++") is None:
        pytest.skip("no C++ compiler")
    _, include = _root.blas_paths()
    higgs.Generate(Options.kNoSession | Options.kNoWeightFile)
    higgs.OutputGenerated(str(tmp_path / "nosession.hxx"))
    _gcc_werror(tmp_path, tmp_path / "nosession.hxx", "-I", str(include))

    appended = tmp_path / "two_models.hxx"
    for name in ("first", "second"):
        model = compat.RModelParser_ONNX().Parse(str(HIGGS))
        model.SetFilename(f"compat_{name}")
        model.Generate(Options.kRootBinaryWeightFile)
        model.OutputGenerated(str(appended), True)
    root_include = str(_root.root().TROOT.GetIncludeDir())
    _gcc_werror(tmp_path, appended, "-I", str(include), "-isystem", root_include)
    assert appended.read_text().count("struct Session {") == 2


def test_options_pick_weights_and_profiling(higgs, tmp_path):
    higgs.Generate(Options.kProfile | Options.kNoWeightFile)
    assert "profile_ns()" in higgs.ReturnGenerated() and "kWeight_" in higgs.ReturnGenerated()
    with pytest.raises(SofieError, match="generated into the header"):
        higgs.WriteInitializedTensorsToFile(str(tmp_path / "w.dat"))


def test_inspection_prints_sofie_listings(higgs, capsys):
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(HIGGS).graph.initializer}
    higgs.HeadInitializedTensors("0weight", 3)
    higgs.PrintRequiredInputTensors()
    higgs.PrintDynamicTensors()
    out = capsys.readouterr().out
    first = " ,".join(str(v) for v in weights["0.weight"].reshape(-1)[:3].tolist())
    assert f"Tensor name: 0weight\ttype: float\tshape: [64,7]\ndata: [\n{first}, ...]" in out
    assert "Partially Specified Tensor name: features\ttype: float\tshape: [batch,7]" in out
    assert 'Model specify the following dynamic tensors:\nTensor name: "' in out  # the hidden layers' (batch, 64)


def test_check_model_names_what_is_unsupported(compat, tmp_path, capsys):
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.acme")
    model = make_model([node], [("x", np.float32, [1, 4])], [("y", np.float32, [1, 4])])
    model.opset_import.append(helper.make_opsetid("com.acme", 1))
    path = tmp_path / "frob.onnx"
    onnx.save(model, path)
    parser = compat.RModelParser_ONNX()
    assert parser.CheckModel(str(path)) is False
    assert "com.acme::Frobnicate" in capsys.readouterr().out
    assert parser.CheckModel(str(HIGGS)) is True


# ---- what raises ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", sorted(NOT_PROVIDED))
def test_calls_without_counterpart_raise_naming_them(higgs, call):
    with pytest.raises(SofieCompatError, match=f"RModel.{call} is a SOFIE call sofie-rdf does not provide"):
        getattr(higgs, call)("x")


@pytest.mark.parametrize("options, pos, message", [
    (Options.kGNN, 0, "kGNN and kGNNComponent"),
    (Options.kGNNComponent, 0, "kGNN and kGNNComponent"),
    (Options.kDefault, 100, "pos=100"),
    (Options.kNoSession, 0, "cannot use a separate weight file without generating a Session"),
    (Options.kNoSession | Options.kRootBinaryWeightFile | Options.kNoWeightFile, 0, "separate weight file"),
])
def test_generate_refuses_what_it_cannot_honour(higgs, options, pos, message):
    with pytest.raises(SofieCompatError, match=message):
        higgs.Generate(options, -1, pos)


def test_text_weights_cannot_be_appended(higgs, tmp_path):
    header = tmp_path / "models.hxx"
    higgs.Generate()
    higgs.OutputGenerated(str(header), True)  # the first model of the header: its own .dat
    assert (tmp_path / "models.dat").exists()
    with pytest.raises(SofieCompatError, match="kRootBinaryWeightFile"):
        higgs.OutputGenerated(str(header), True)


def test_other_sofie_calls_raise_naming_them(higgs):
    ROOT = _root.root()
    SOFIE = ROOT.TMVA.Experimental.SOFIE
    with pytest.raises(SofieCompatError, match="RModel_GNN.ParseFromMemory reads DeepMind graph_nets"):
        SOFIE.RModel_GNN.ParseFromMemory(None, {})
    with pytest.raises(SofieCompatError, match="RModelParser_ONNX.RegisterOperator"):
        SOFIE.RModelParser_ONNX().RegisterOperator("Foo", None)
    with pytest.raises(SofieCompatError, match="RModel\\(name, parsetime\\)"):
        SOFIE.RModel("model", "today")
    with pytest.raises(SofieError, match="call Generate\\(\\) first"):
        higgs.PrintGenerated()
    assert SOFIE.RModelParser_ONNX().IsRegisteredOperator("Gemm")


def test_steps_aside_where_root_has_tmva(compat, monkeypatch):
    """A ROOT built with TMVA keeps its own SOFIE: the module warns and declares nothing."""
    from sofie_rdf._compat import install as _install

    def refuse(*args):
        raise AssertionError("declared to a ROOT that has TMVA")

    monkeypatch.setattr(_install, "root_has_tmva", lambda ROOT: True)
    monkeypatch.setattr(_root, "is_declared", lambda key: False)
    monkeypatch.setattr(_root, "declare", refuse)
    monkeypatch.setattr(_root, "load_blas", refuse)
    with pytest.warns(UserWarning, match="built with TMVA: sofie_rdf.compat leaves ROOT's own SOFIE in place"):
        assert compat.sofie_compat() is False
