"""The Python side of SOFIE's C++ classes in Cling (``cling/compat/TMVA/RModel.hxx`` and its neighbours).

A C++ ``RModel`` is a handle to a Python :class:`RModel` kept here; each of its calls, and the parsers' and
``RSofieReader``'s, arrive as one ``sofie_rdf_compat::Call`` at :func:`answer`, registered with Cling by
``sofie_compat()``.  What the Python side prints is captured and handed back, so that the C++ side writes it
to ``std::cout`` in order with the macro's own output; an exception becomes the call's ``error``, which the C++
side throws as ``std::runtime_error`` (Python exceptions cannot cross a C++ frame).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import _root
from ..errors import ModelFormatError, SofieError
from .common import ETensorType, Options
from .parsers import PyKeras, PyTorch, RModelParser_ONNX
from .rmodel import RModel, with_dims

_lock = threading.Lock()
_models: dict[int, RModel] = {}
_handles = itertools.count()
# The bytes of the last GetTensorData answer: the C++ side copies them before the next call.
_kept: list[np.ndarray] = []

# RModel methods a C++ RModel calls by name, with no arguments.
_METHODS = {
    "ReturnGenerated",
    "PrintGenerated",
    "PrintRequiredInputTensors",
    "PrintInitializedTensors",
    "PrintIntermediateTensors",
    "PrintOutputTensors",
    "PrintDynamicTensors",
    "GetFilename",
    "UseSession",
}


def answer(call: Any) -> None:
    """Run one C++ call (a ``sofie_rdf_compat::Call`` proxy) and write its results into it."""
    printed = io.StringIO()
    try:
        op = str(call.op)
        args = [str(a) for a in call.args]
        if op not in _OPS:
            raise SofieError(f"sofie_rdf.compat: unknown C++ call {op!r}")
        with contextlib.redirect_stdout(printed):
            _OPS[op](call, args)
    except Exception as exc:  # every failure goes back to C++ as the text of a std::runtime_error
        call.error = f"{type(exc).__name__}: {exc}"
    finally:
        call.text = printed.getvalue()


def _keep(model: RModel) -> int:
    with _lock:
        handle = next(_handles)
        _models[handle] = model
    return handle


def _model(call: Any) -> RModel:
    handle = int(call.handle)
    if handle not in _models:
        raise SofieError(
            "RModel: this C++ RModel holds no model (default-constructed): parse a file with "
            "RModelParser_ONNX, PyKeras::Parse or PyTorch::Parse"
        )
    return _models[handle]


def _flag(text: str) -> bool:
    return text not in ("0", "", "false")


# ---- parsers -----------------------------------------------------------------------------------------------
def _parse_onnx(call: Any, args: list[str]) -> None:
    call.result_handle = _keep(RModelParser_ONNX().Parse(args[0], _flag(args[1])))


def _parse_keras(call: Any, args: list[str]) -> None:
    call.result_handle = _keep(PyKeras.Parse(args[0], int(args[1])))


def _parse_torch(call: Any, args: list[str]) -> None:
    shapes = [[int(d) for d in shape] for shape in call.shapes]
    dtypes = [ETensorType(int(t)) for t in args[1:]] or None
    call.result_handle = _keep(PyTorch.Parse(args[0], shapes, dtypes))


def _check_onnx(call: Any, args: list[str]) -> None:
    call.numbers.push_back(int(RModelParser_ONNX().CheckModel(args[0], _flag(args[1]))))


def _is_registered(call: Any, args: list[str]) -> None:
    call.numbers.push_back(int(RModelParser_ONNX().IsRegisteredOperator(args[0])))


# ---- RModel ------------------------------------------------------------------------------------------------
def _new(call: Any, args: list[str]) -> None:
    RModel(None)  # raises SofieCompatError, which says what to do instead  # type: ignore[arg-type]


def _initialize(call: Any, args: list[str]) -> None:
    pairs = args[2:]
    dims = {pairs[k]: int(pairs[k + 1]) for k in range(0, len(pairs), 2)}
    _model(call).Initialize(dims if dims else int(args[0]), _flag(args[1]))


def _generate(call: Any, args: list[str]) -> None:
    _model(call).Generate(Options(int(args[0])), int(args[1]), int(args[2]), _flag(args[3]))


def _output(call: Any, args: list[str]) -> None:
    _model(call).OutputGenerated(args[0], _flag(args[1]))


def _method(call: Any, args: list[str]) -> None:
    if args[0] not in _METHODS:
        raise SofieError(f"RModel.{args[0]} is not callable from C++ here")
    result = getattr(_model(call), args[0])()
    if result is not None:
        call.result = str(result)


def _write_weights(call: Any, args: list[str]) -> None:
    call.numbers.push_back(int(_model(call).WriteInitializedTensorsToFile(args[0])))


def _head(call: Any, args: list[str]) -> None:
    _model(call).HeadInitializedTensors(args[0], int(args[1]))


def _exists(call: Any, args: list[str]) -> None:
    call.numbers.push_back(int(_model(call).CheckIfTensorAlreadyExist(args[0])))


def _initialized(call: Any, args: list[str]) -> None:
    call.numbers.push_back(int(_model(call).IsInitializedTensor(args[0])))


def _shape(call: Any, args: list[str]) -> None:
    for d in _model(call).GetTensorShape(args[0]):
        call.numbers.push_back(int(d))


def _type(call: Any, args: list[str]) -> None:
    call.numbers.push_back(int(_model(call).GetTensorType(args[0])))


def _tensor_data(call: Any, args: list[str]) -> None:
    values = np.ascontiguousarray(_model(call).GetTensorData[args[1]](args[0]))
    _kept[:] = [values]
    call.data = values.ctypes.data
    call.nbytes = values.nbytes


def _names(call: Any, args: list[str]) -> None:
    model = _model(call)
    for name in model.GetInputTensorNames() if args[0] == "inputs" else model.GetOutputTensorNames():
        call.strings.push_back(name)


def _rename(call: Any, args: list[str]) -> None:
    _model(call).SetFilename(args[0])


# ---- RSofieReader --------------------------------------------------------------------------------------------
def _reader_model(path: str, shapes: list[list[int]], verbose: int) -> RModel:
    """The file parsed as RSofieReader parses it: by its extension, PyTorch with the input shapes."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return RModelParser_ONNX().Parse(path, verbose > 1)
    if suffix in (".keras", ".h5"):
        return PyKeras.Parse(path, 0)  # the batch is fixed below, from the shapes
    if suffix == ".pt":
        if not shapes:
            raise ModelFormatError(f"RSofieReader({path!r}): a PyTorch model needs its input shapes")
        return PyTorch.Parse(path, shapes)
    raise ModelFormatError(f"RSofieReader({path!r}): not a model file sofie-rdf reads (.onnx, .keras, .h5, .pt)")


def _fixed_dims(model: RModel, shapes: list[list[int]]) -> dict[str, int]:
    """The open dims of the inputs, fixed as RSofieReader fixes them: each from the input's shape where one is
    given, a leading one (the batch) otherwise from the first dim of the first shape (1 without shapes)."""
    batch = max(1, shapes[0][0]) if shapes and shapes[0] else 1
    dims: dict[str, int] = {}
    missing: list[str] = []
    for k, info in enumerate(model._model.inputs):
        for i, d in enumerate(info.shape):
            if not isinstance(d, str) or d in dims:
                continue
            if k < len(shapes) and i < len(shapes[k]) and shapes[k][i] > 0:
                dims[d] = shapes[k][i]
            elif i == 0:
                dims[d] = batch
            else:
                missing.append(f"{info.name}[{i}] ({d})")
    if missing:
        raise ModelFormatError(f"RSofieReader: the input dims {', '.join(missing)} are open; give the input shapes")
    return dims


def _reader_load(call: Any, args: list[str]) -> None:
    from ..compile import cling_session_of
    from ..targets._cxx.cpp import cpp_type

    path, verbose = args[0], int(args[1])
    shapes = [[int(d) for d in shape] for shape in call.shapes]
    if verbose:
        print(f"Parsing SOFIE model {Path(path).stem} of type {Path(path).suffix.lstrip('.')}")
    parsed = _reader_model(path, shapes, verbose)
    dims = _fixed_dims(parsed, shapes)
    model = with_dims(parsed._model, dims) if dims else parsed._model
    model.name = f"{parsed.GetFilename()}_fromRSofieR"
    if verbose:
        shown = RModel(model, path)
        shown.PrintRequiredInputTensors()
        shown.PrintOutputTensors()
    sess = cling_session_of(model)
    if verbose > 1:
        print(sess.code.header)
    sizes = [t.size for _, t in sess.code.inputs]
    if sess.code.symbols or not all(isinstance(s, int) for s in sizes):
        raise ModelFormatError(f"RSofieReader({path!r}): input sizes {sizes} depend on open dims; give input shapes")
    key = hashlib.sha256(f"{sess.namespace}:{sess.weights_path}".encode()).hexdigest()[:16]
    _declare_reader(key, sess, [cpp_type(t.dtype) for _, t in sess.code.inputs], sizes)
    call.result = key
    for s in sizes:
        call.numbers.push_back(s)


def _declare_reader(key: str, sess: Any, types: list[str], sizes: list[int]) -> None:
    """Declare (once) the three functions RSofieReader calls for this model, and register them."""
    from .._functor import weights_arg

    ns = f"sofie_rdf_reader_{key}"
    converted = [  # inputs of other element types than float, converted per event (bool included)
        f"   std::unique_ptr<{t}[]> x{k}(new {t}[{n}]);\n"
        f"   for (std::size_t i = 0; i < {n}; ++i) x{k}[i] = static_cast<{t}>(x[{k}][i]);"
        for k, (t, n) in enumerate(zip(types, sizes))
        if t != "float"
    ]
    pointers = [f"x{k}.get()" if t != "float" else f"x[{k}]" for k, t in enumerate(types)]
    code = "\n".join(
        [
            '#include "TMVA/RSofieReader.hxx"',
            f"namespace {ns} {{",
            f"inline void *Make() {{ return new {sess.cpp_type}({weights_arg(sess)}); }}",
            f"inline void Destroy(void *s) {{ delete static_cast<{sess.cpp_type} *>(s); }}",
            "inline std::vector<float> Infer(void *s, const float *const *x)",
            "{",
            *converted,
            "   std::vector<float> out;",
            f"   sofie_rdf_compat::AppendOutputs(static_cast<{sess.cpp_type} *>(s)->infer({', '.join(pointers)}), out);",
            "   return out;",
            "}",
            f'inline void Register() {{ sofie_rdf_compat::RegisterReaderModel("{key}", &Make, &Destroy, &Infer); }}',
            f"}} // namespace {ns}",
            "",
        ]
    )
    if _root.declare(f"compat-reader:{key}", code):
        getattr(_root.root(), ns).Register()


_OPS: dict[str, Callable[[Any, list[str]], None]] = {
    "parse_onnx": _parse_onnx,
    "parse_keras": _parse_keras,
    "parse_torch": _parse_torch,
    "check_onnx": _check_onnx,
    "is_registered": _is_registered,
    "new": _new,
    "initialize": _initialize,
    "generate": _generate,
    "output": _output,
    "method": _method,
    "write_weights": _write_weights,
    "head": _head,
    "exists": _exists,
    "initialized": _initialized,
    "shape": _shape,
    "type": _type,
    "tensor_data": _tensor_data,
    "names": _names,
    "rename": _rename,
    "reader_load": _reader_load,
}
