"""Run a ROOT C++ macro that uses the generated header directly (no Python in the event loop).

Shows what a C++ analysis needs: the header and weights written by
``sofie-rdf emit`` (here into a temporary folder), ``SofieFunctor.hxx`` from
sofie-rdf's ``cling/`` folder, and the BLAS library the header calls.  The
macro, ``higgs_macro.C`` next to this script, then does
``df.DefineSlot("score", sofie_rdf::SofieFunctor<7, TMVA_SOFIE_higgs_model::Session>(nslots, weights), columns)``.
"""

import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

import sofie_rdf as sr
from sofie_rdf import _root

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"

with tempfile.TemporaryDirectory() as tmp:
    # 1. The header and weights, as a user would make them from a shell.
    subprocess.run([sys.executable, "-m", "sofie_rdf.cli", "emit", str(DATA / "higgs_model.onnx"), "-o", tmp],
                   check=True)

    # 2. ROOT with BLAS loaded and both folders on the include path.
    ROOT = _root.root()            # PyROOT in batch mode
    _root.load_blas()              # the header's sgemm comes from scipy-openblas32
    ROOT.gInterpreter.AddIncludePath(tmp)
    ROOT.gInterpreter.AddIncludePath(str(sr.rdf.functor_header().parent))

    # 3. The macro, as `.x` would run it at the ROOT prompt; its return value is the status.
    error = ctypes.c_int(0)
    weights = Path(tmp) / "higgs_model.dat"
    status = ROOT.gROOT.ProcessLine(f'.x {HERE / "higgs_macro.C"}("{DATA / "higgs_sample.root"}", "{weights}")',
                                    error)
    if error.value != 0 or status != 0:
        sys.exit(f"higgs_macro.C failed (interpreter error {error.value}, status {status})")
