"""SOFIE's C++ API in Cling after ``import sofie_rdf.compat``: ``RModel`` and the parsers, ``RSofieReader``,
and the ``root`` prompt through ``write_rootlogon``.

The C++ classes (``cling/compat/TMVA/``) call the compat layer's Python; here they are called as a macro calls
them, and what they return is compared with the ONNX file and onnxruntime.  ROOT's tutorials run them too
(``tests/test_sofie_tutorials.py``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ort_run
from onnx import numpy_helper

DATA = Path(__file__).resolve().parent.parent / "data"
HIGGS = DATA / "higgs_model.onnx"
SAMPLE = DATA / "higgs_sample.root"
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]
_names = itertools.count()


@pytest.fixture
def ROOT():
    """ROOT with the compat layer installed in this process."""
    root = pytest.importorskip("ROOT")
    import sofie_rdf.compat  # noqa: F401

    return root


def _declare(ROOT, body: str, signature: str) -> object:
    """Declare a C++ function with a fresh name (Cling cannot redefine one) and return it."""
    name = f"compat_cpp_{next(_names)}"
    assert ROOT.gInterpreter.Declare(f"{signature.replace('NAME', name)}\n{{\n{body}\n}}")
    return getattr(ROOT, name)


@pytest.fixture
def higgs(tmp_path) -> Path:
    path = tmp_path / "compat_cpp_higgs.onnx"
    shutil.copy(HIGGS, path)
    return path


def test_rmodel_in_cpp_reads_the_onnx_file(ROOT, higgs):
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(HIGGS).graph.initializer}
    data = _declare(
        ROOT,
        """
       TMVA::Experimental::SOFIE::RModelParser_ONNX parser;
       TMVA::Experimental::SOFIE::RModel model = parser.Parse(file);
       return model.GetTensorData<float>(name);""",
        "std::vector<float> NAME(std::string file, std::string name)",
    )
    np.testing.assert_array_equal(np.asarray(data(str(higgs), "0weight")), weights["0.weight"].reshape(-1))
    facts = _declare(
        ROOT,
        """
       using namespace TMVA::Experimental::SOFIE;
       RModel model = RModelParser_ONNX().Parse(file);
       std::vector<std::string> out{ConvertShapeToString(model.GetTensorShape("2weight")),
                                    ConvertTypeToString(model.GetTensorType("2weight")),
                                    std::to_string(model.CheckIfTensorAlreadyExist("2weight")),
                                    std::to_string(model.CheckIfTensorAlreadyExist("no_such_tensor"))};
       for (auto &n : model.GetInputTensorNames()) out.push_back(n);
       return out;""",
        "std::vector<std::string> NAME(std::string file)",
    )
    assert list(map(str, facts(str(higgs)))) == ["{ 64 , 64 }", "float", "1", "0", "features"]


def test_generate_options_from_cpp(ROOT, higgs, tmp_path):
    header = tmp_path / "embedded.hxx"
    generate = _declare(
        ROOT,
        """
       using namespace TMVA::Experimental::SOFIE;
       RModel model = RModelParser_ONNX().Parse(file);
       model.Generate(Options::kNoWeightFile, 4);
       model.OutputGenerated(header);""",
        "void NAME(std::string file, std::string header)",
    )
    generate(str(higgs), str(header))
    text = header.read_text()
    assert "namespace TMVA_SOFIE_compat_cpp_higgs" in text and not (tmp_path / "embedded.dat").exists()
    combined = _declare(
        ROOT,
        """
       using namespace TMVA::Experimental::SOFIE;
       return Options::kNoSession | Options::kNoWeightFile;""",
        "int NAME()",
    )
    assert combined() == 3


def test_cpp_errors_name_the_problem(ROOT, higgs):
    empty = _declare(ROOT, "TMVA::Experimental::SOFIE::RModel model; model.PrintGenerated();", "void NAME()")
    with pytest.raises(Exception, match="holds no model"):
        empty()
    by_operator = _declare(ROOT, 'TMVA::Experimental::SOFIE::RModel model("m", "now");', "void NAME()")
    with pytest.raises(Exception, match="SofieCompatError.*added one by one"):
        by_operator()
    missing = _declare(ROOT, "TMVA::Experimental::SOFIE::RModelParser_ONNX().Parse(file);", "void NAME(std::string file)")
    with pytest.raises(Exception, match="ModelFormatError.*not found"):
        missing(str(higgs.with_name("absent.onnx")))
    shape = _declare(
        ROOT, 'TMVA::Experimental::SOFIE::RModelParser_ONNX().Parse(file).GetTensorShape("nope");', "void NAME(std::string file)"
    )
    with pytest.raises(Exception, match="no tensor 'nope'"):
        shape(str(higgs))


def test_rsofiereader_matches_onnxruntime_event_by_event_and_in_rdataframe(ROOT, higgs):
    uproot = pytest.importorskip("uproot")
    events = uproot.open(SAMPLE)["sig_tree"].arrays(FEATURES, library="np")
    x = np.column_stack([events[f] for f in FEATURES]).astype(np.float32)
    expected = ort_run(onnx.load(HIGGS), {"features": x})[0][:, 0]
    reader = ROOT.TMVA.Experimental.RSofieReader(str(higgs))
    np.testing.assert_allclose(list(reader.Compute(x[0].tolist())), [expected[0]], rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="takes 7 values, 2 given"):
        reader.Compute([1.0, 2.0])
    column = _declare(
        ROOT,
        """
       TMVA::Experimental::RSofieReader model(file);
       ROOT::RDataFrame df("sig_tree", sample);
       auto y = df.Define("DNN", TMVA::Experimental::Compute<7, float>(model),
                          {"m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"})
                   .Define("y", "DNN[0]").Take<float>("y");
       return *y;""",
        "std::vector<float> NAME(std::string file, std::string sample)",
    )
    np.testing.assert_allclose(np.asarray(column(str(higgs), str(SAMPLE))), expected, rtol=1e-5, atol=1e-6)


def test_root_prompt_through_rootlogon(ROOT, higgs, tmp_path):
    from sofie_rdf.compat import write_rootlogon

    root_exe = Path(ROOT.__file__).parent / "bin" / "root.exe"
    if not root_exe.exists():
        pytest.skip("no root.exe next to the ROOT module")
    write_rootlogon(str(tmp_path / "rootlogon.C"))  # the higgs fixture put compat_cpp_higgs.onnx there
    (tmp_path / "macro.C").write_text("""
void macro() {
   using namespace TMVA::Experimental;
   SOFIE::RModel model = SOFIE::RModelParser_ONNX().Parse("compat_cpp_higgs.onnx");
   std::cout << "shape " << SOFIE::ConvertShapeToString(model.GetTensorShape("0weight")) << std::endl;
   RSofieReader reader("compat_cpp_higgs.onnx");
   std::cout << "prediction " << reader.Compute({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7})[0] << std::endl;
}
""")
    proc = subprocess.run(
        [str(root_exe), "-b", "-l", "-q", "macro.C"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "shape { 64 , 7 }" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    x = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]], dtype=np.float32)
    value = float(proc.stdout.split("prediction ")[1].split()[0])
    np.testing.assert_allclose(value, ort_run(onnx.load(HIGGS), {"features": x})[0][0, 0], rtol=1e-5, atol=1e-6)
