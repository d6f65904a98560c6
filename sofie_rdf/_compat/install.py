"""Making SOFIE's names resolve in a ROOT without TMVA: the C++ ones in Cling, the Python ones in PyROOT.

PyROOT finds ``ROOT.TMVA`` by asking Cling for a namespace ``TMVA``; the PyPI build has none.  Declaring the
package's ``cling/compat/TMVA`` headers (``SofieFunctor``; SOFIE's C++ ``RModel``, parsers, ``ETensorType`` and
``Options``; ``RSofieReader``) makes ``ROOT.TMVA.Experimental.SOFIE`` a namespace proxy, to which the Python
classes are attached (they shadow the C++ ones in Python, as ROOT attaches its own ``PyKeras``), and gives
C++ macros SOFIE's names.  The C++ classes call back into Python through one function registered here
(``_compat/bridge.py``).  A ROOT built with TMVA has its own SOFIE: nothing is declared or attached there.
"""

from __future__ import annotations

import json
import sys
import sysconfig
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from .. import _root
from . import bridge, common, parsers, rmodel

# Declared once per process; the key says so to _root.declare.
_HELPERS_KEY = "compat:TMVA/SOFIEHelpers.hxx"
# SOFIE's C++ headers a macro finds without an #include (ROOT loads them for its own SOFIE from its modules).
HEADERS = ("TMVA/SOFIEHelpers.hxx", "TMVA/RModel.hxx", "TMVA/RModelParser_ONNX.hxx", "TMVA/RSofieReader.hxx")

# What ROOT.TMVA.Experimental.SOFIE holds for a SOFIE script.
PYTHON_NAMES: dict[str, Any] = {
    "RModel": rmodel.RModel,
    "RModelParser_ONNX": parsers.RModelParser_ONNX,
    "PyKeras": parsers.PyKeras,
    "PyTorch": parsers.PyTorch,
    "RModel_GNN": parsers.RModel_GNN,
    "RModel_GraphIndependent": parsers.RModel_GraphIndependent,
    "Options": common.Options,
    "ETensorType": common.ETensorType,
    "ConvertTypeToString": common.ConvertTypeToString,
    "ConvertStringToType": common.ConvertStringToType,
    "ConvertShapeToLength": common.ConvertShapeToLength,
    "ConvertShapeToString": common.ConvertShapeToString,
}


_TRAINING = (
    "is TMVA's training and evaluation of its own methods (BDT, MLP, DNN, PyKeras/PyTorch methods), which "
    "pip's ROOT does not build; train with Keras, torch or xgboost and run the model with sofie-rdf "
    "(sr.load, or SOFIE's parsers here)"
)
# TMVA's non-SOFIE names a script may reach for, each raising SofieCompatError with _TRAINING.
TMVA_TRAINING_NAMES = ("Factory", "DataLoader", "Reader", "CrossValidation", "Tools", "PyMethodBase")


class _NotInPip:
    """A TMVA name pip's ROOT lacks: calling it, or any attribute of it, raises one line saying so."""

    def __init__(self, name: str):
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise common.SofieCompatError(f"TMVA.{self._name} {_TRAINING}")

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):  # Python's and tools' own probes (copy, pickle, IPython) find nothing here
            raise AttributeError(attribute)
        raise common.SofieCompatError(f"TMVA.{self._name}.{attribute} {_TRAINING}")


def include_dir() -> Path:
    """The folder holding ``TMVA/SOFIEHelpers.hxx`` (inside the package), for Cling's include path."""
    return Path(str(resources.files("sofie_rdf").joinpath("cling", "compat")))


def root_has_tmva(ROOT: Any) -> bool:
    """Whether this ROOT was built with TMVA (and so has SOFIE's own classes)."""
    return "tmva" in str(ROOT.gROOT.GetConfigFeatures()).split()


def sofie_compat() -> bool:
    """Make ``ROOT.TMVA.Experimental.SOFIE`` and SOFIE's C++ names (``TMVA::Experimental::SofieFunctor``,
    ``RSofieReader``, ``SOFIE::RModel`` and the parsers) available, backed by sofie-rdf (what
    ``import sofie_rdf.compat`` does); True once they are.

    Loads the BLAS the generated headers call, so that a header ``gInterpreter.Declare``-d by the script links.
    In a ROOT built with TMVA it warns that ROOT's own SOFIE stays in place and returns False.
    """
    ROOT = _root.root()
    if root_has_tmva(ROOT):
        warnings.warn(
            f"ROOT {ROOT.gROOT.GetVersion()} is built with TMVA: sofie_rdf.compat leaves ROOT's own SOFIE "
            "in place (use sofie_rdf's API, sr.load and sr.compile, for sofie-rdf's code)",
            stacklevel=2,
        )
        return False
    if _root.is_declared(_HELPERS_KEY):
        return True
    _root.load_blas()
    ROOT.gInterpreter.AddIncludePath(str(include_dir()))
    _root.declare(_HELPERS_KEY, "".join(f'#include "{h}"\n' for h in HEADERS))
    ROOT.sofie_rdf_compat.SetBridge(bridge.answer)
    namespace = ROOT.TMVA.Experimental.SOFIE
    for name, value in PYTHON_NAMES.items():
        setattr(namespace, name, value)
    for name in TMVA_TRAINING_NAMES:
        setattr(ROOT.TMVA, name, _NotInPip(name))
    return True


def write_rootlogon(path: str = "rootlogon.C") -> Path:
    """Write a ``rootlogon.C`` that gives the ``root`` prompt SOFIE's C++ API (and ``RSofieReader``), backed by
    sofie-rdf; returns its path.

    pip's ROOT has no ``TPython`` and ``root.exe`` no Python: the file loads this interpreter's shared
    ``libpython`` into ROOT, starts it with this interpreter's ``sys.path`` (a virtual environment's packages
    included) and runs ``import sofie_rdf.compat`` there, which declares the C++ classes and registers the
    Python side they call.  ``root`` runs ``./rootlogon.C`` when started in its folder; elsewhere name it first:
    ``root -l rootlogon.C TMVA_SOFIE_ONNX.C``.
    """
    from ..errors import SofieError

    library = Path(str(sysconfig.get_config_var("LIBDIR") or "")) / str(sysconfig.get_config_var("LDLIBRARY") or "")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or not library.is_file():
        raise SofieError(
            f"write_rootlogon: this Python ({sys.executable}) has no shared libpython for root.exe to "
            "load; run macros from Python instead (ROOT.gROOT.ProcessLine('.x macro.C') after "
            "import sofie_rdf.compat)"
        )
    setup = f"import sys; sys.argv = ['root']; sys.path[:0] = {[p for p in sys.path if p]!r}; import sofie_rdf.compat"
    text = "\n".join(
        [
            "// rootlogon.C written by sofie_rdf.compat.write_rootlogon(): SOFIE's C++ API at the root prompt, backed by",
            "// sofie-rdf, whose Python this starts inside ROOT (pip's ROOT has no TPython).",
            "{",
            f"   if (gSystem->Load({json.dumps(str(library))}) < 0) {{",
            f'      Error("rootlogon", "cannot load %s", {json.dumps(str(library))});',
            "   } else {",
            '      gInterpreter->Declare("extern \\"C\\" { void Py_Initialize(); int Py_IsInitialized(); "',
            '                            "int PyRun_SimpleString(const char *); }");',
            '      gInterpreter->ProcessLine("if (!Py_IsInitialized()) Py_Initialize();");',
            f"      const char *setup = {json.dumps(setup)};",
            '      if (gInterpreter->ProcessLine(TString::Format("PyRun_SimpleString(\\"%s\\");", setup)) != 0)',
            '         Error("rootlogon", "import sofie_rdf.compat failed (the Python error is printed above)");',
            "   }",
            "}",
            "",
        ]
    )
    out = Path(path)
    out.write_text(text)
    return out
