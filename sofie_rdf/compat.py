"""SOFIE's own scripts on a ROOT without TMVA (``pip install root``): add one line, ``import sofie_rdf.compat``.

Importing this module (or calling ``sofie_rdf.sofie_compat()``) makes the names SOFIE's Python scripts and C++
macros use resolve, backed by sofie-rdf's parsers and code generator:

- in Python, ``ROOT.TMVA.Experimental.SOFIE``: ``RModelParser_ONNX().Parse(file)``, ``PyKeras.Parse(file)``,
  ``PyTorch.Parse(file, shapes)``, the :class:`RModel` they return (``Generate``, ``OutputGenerated``,
  ``PrintGenerated``, ``PrintInitializedTensors``, ``GetTensorData['float'](name)``, ...), :class:`Options`,
  :class:`ETensorType` and the type helpers;
- in Cling, for C++ macros run from this process (``ROOT.gROOT.ProcessLine(".x macro.C")``): SOFIE's C++
  ``RModelParser_ONNX``, ``PyKeras::Parse``, ``PyTorch::Parse``, ``RModel``, ``ETensorType``, ``Options`` and
  type helpers (``cling/compat/TMVA/RModel.hxx``, calling this Python), ``TMVA::Experimental::RSofieReader``
  with ``Compute<N, T>`` for ``Define``, and ``TMVA::Experimental::SofieFunctor<N, TMVA_SOFIE_<Name>::Session>``
  for RDataFrame, also through ``#include "TMVA/SOFIEHelpers.hxx"``;
- at the ``root`` prompt, after :func:`write_rootlogon` wrote a ``rootlogon.C`` that starts this Python in
  ROOT (pip's ROOT has no ``TPython``).

The headers keep SOFIE's interface (``TMVA_SOFIE_<Name>::Session``, ``infer``, ``.dat`` or ``.root`` weights,
several models appended to one header) and are sofie-rdf's code inside.  A SOFIE call with no counterpart raises
:class:`SofieCompatError` naming it.  In a ROOT built with TMVA nothing is replaced: the import warns that ROOT's
own SOFIE stays.

    import ROOT
    import sofie_rdf.compat  # the one added line

    model = ROOT.TMVA.Experimental.SOFIE.RModelParser_ONNX().Parse("Higgs.onnx")
    model.Generate()
    model.OutputGenerated()                         # Higgs.hxx, Higgs.dat
    ROOT.gInterpreter.Declare('#include "Higgs.hxx"')
    session = ROOT.TMVA_SOFIE_Higgs.Session()
"""

from __future__ import annotations

from ._compat.common import (
    ConvertShapeToLength,
    ConvertShapeToString,
    ConvertStringToType,
    ConvertTypeToString,
    ETensorType,
    Options,
    SofieCompatError,
)
from ._compat.environment import adapt_environment
from ._compat.install import root_has_tmva, sofie_compat, write_rootlogon
from ._compat.parsers import PyKeras, PyTorch, RModelParser_ONNX
from ._compat.rmodel import NOT_PROVIDED, RModel

adapt_environment()  # Keras on torch where pip has no TensorFlow, before the script's own `import keras`
sofie_compat()

__all__ = [
    "NOT_PROVIDED",
    "ConvertShapeToLength",
    "ConvertShapeToString",
    "ConvertStringToType",
    "ConvertTypeToString",
    "ETensorType",
    "Options",
    "PyKeras",
    "PyTorch",
    "RModel",
    "RModelParser_ONNX",
    "SofieCompatError",
    "root_has_tmva",
    "sofie_compat",
    "write_rootlogon",
]
