"""sofie-rdf: fast ML inference code for ROOT analyses, from Python.

Parse a model (ONNX, Keras, PyTorch or a stored .root IR), generate a standalone C++ header in TMVA SOFIE's
format, compile it with Cling or the system compiler, and call it on numpy
arrays or from RDataFrame.

    import sofie_rdf as sr
    model = sr.load("higgs.onnx")
    sess = sr.compile(model)            # or backend="native"
    y = sess.infer(x)
"""

from . import columnar, gnn, rdf  # noqa: E402
from ._version import __version__
from .api import from_keras, from_onnx, from_pytorch, from_root, load  # noqa: E402
from .compile import compile  # noqa: E402,A004
from .custom import (  # noqa: E402
    Op,
    OperatorRegistrationError,
    TensorType,
    custom_op,
    keras_layer,
    register_op,
    unregister_keras_layer,
    unregister_op,
)
from .errors import (  # noqa: E402
    CompilationError,
    LegacyModelWarning,
    ModelFormatError,
    ShapeError,
    SofieError,
    UnsupportedOperatorError,
)
from .ir import TensorInfo  # noqa: E402
from .model import Model  # noqa: E402
from .reader import Reader  # noqa: E402
from .session import Session  # noqa: E402

__all__ = [
    "CompilationError", "LegacyModelWarning", "Model", "ModelFormatError", "Op", "OperatorRegistrationError", "Reader",
    "Session", "ShapeError", "SofieError", "TensorInfo", "TensorType", "UnsupportedOperatorError", "__version__",
    "columnar", "compile", "custom_op",
    "from_keras", "from_onnx", "from_pytorch", "from_root", "gnn", "keras_layer", "load", "rdf", "register_op",
    "unregister_keras_layer", "unregister_op",
]
