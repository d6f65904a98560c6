"""Making SOFIE's names resolve in a ROOT without TMVA: the C++ ones in Cling, the Python ones in PyROOT.

PyROOT finds ``ROOT.TMVA`` by asking Cling for a namespace ``TMVA``; the PyPI build has none.  Declaring
``TMVA::Experimental::SOFIE`` (with ``TMVA::Experimental::SofieFunctor``, through the package's
``TMVA/SOFIEHelpers.hxx``) makes ``ROOT.TMVA.Experimental.SOFIE`` a namespace proxy, to which the Python classes
are attached, as ROOT attaches its own ``PyKeras``.  A ROOT built with TMVA has its own SOFIE: nothing is
declared or attached there.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from .. import _root
from . import common, parsers, rmodel

# Declared once per process; the key says so to _root.declare.
_HELPERS_KEY = "compat:TMVA/SOFIEHelpers.hxx"

# What ROOT.TMVA.Experimental.SOFIE holds for a SOFIE script.
PYTHON_NAMES: dict[str, Any] = {
    "RModel": rmodel.RModel, "RModelParser_ONNX": parsers.RModelParser_ONNX, "PyKeras": parsers.PyKeras,
    "PyTorch": parsers.PyTorch, "RModel_GNN": parsers.RModel_GNN,
    "RModel_GraphIndependent": parsers.RModel_GraphIndependent, "Options": common.Options,
    "ETensorType": common.ETensorType, "ConvertTypeToString": common.ConvertTypeToString,
    "ConvertStringToType": common.ConvertStringToType, "ConvertShapeToLength": common.ConvertShapeToLength,
    "ConvertShapeToString": common.ConvertShapeToString,
}


def include_dir() -> Path:
    """The folder holding ``TMVA/SOFIEHelpers.hxx`` (inside the package), for Cling's include path."""
    return Path(str(resources.files("sofie_rdf").joinpath("cling", "compat")))


def root_has_tmva(ROOT: Any) -> bool:
    """Whether this ROOT was built with TMVA (and so has SOFIE's own classes)."""
    return "tmva" in str(ROOT.gROOT.GetConfigFeatures()).split()


def sofie_compat() -> bool:
    """Make ``ROOT.TMVA.Experimental.SOFIE`` and the C++ ``TMVA::Experimental::SofieFunctor`` available, backed by
    sofie-rdf (what ``import sofie_rdf.compat`` does); True once they are.

    Loads the BLAS the generated headers call, so that a header ``gInterpreter.Declare``-d by the script links.
    In a ROOT built with TMVA it warns that ROOT's own SOFIE stays in place and returns False.
    """
    ROOT = _root.root()
    if root_has_tmva(ROOT):
        warnings.warn(f"ROOT {ROOT.gROOT.GetVersion()} is built with TMVA: sofie_rdf.compat leaves ROOT's own SOFIE "
                      "in place (use sofie_rdf's API, sr.load and sr.compile, for sofie-rdf's code)", stacklevel=2)
        return False
    if _root.is_declared(_HELPERS_KEY):
        return True
    _root.load_blas()
    ROOT.gInterpreter.AddIncludePath(str(include_dir()))
    _root.declare(_HELPERS_KEY, '#include "TMVA/SOFIEHelpers.hxx"')
    namespace = ROOT.TMVA.Experimental.SOFIE
    for name, value in PYTHON_NAMES.items():
        setattr(namespace, name, value)
    return True
