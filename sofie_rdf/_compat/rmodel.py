"""``RModel``: a parsed model with the methods SOFIE's Python users call, over a :class:`sofie_rdf.Model`.

The code is sofie-rdf's, generated for Cling (``target="jit"``) and keeping SOFIE's interface: namespace
``TMVA_SOFIE_<Name>``, ``struct Session`` constructed from the weights file, ``infer`` returning the output
as a ``std::vector``.  Tensor names are reported as SOFIE's parsers clean them (``0.weight`` -> ``0weight``)
and found by either spelling.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from ..errors import SofieError
from ..model import Model
from ..targets.cpu import GeneratedCode
from ..targets.cpu.weights import atomic_write, root_weights_dir, write_dat, write_root
from .common import ConvertTypeToString, ETensorType, Options, SofieCompatError, dtype_of, tensor_type_of

# Asks Cling for optimised code, as sr.compile's JIT does; compilers other than Cling never see the pragma.
_CLING_OPTIMIZE = "#ifdef __CLING__\n#pragma cling optimize(3)\n#endif\n"
_WEIGHTS_SUFFIX = {"dat": ".dat", "root": ".root"}


def clean_name(name: str) -> str:
    """A tensor name as SOFIE's parsers store it (``UTILITY::Clean_name``): ``-`` becomes ``_``, every other
    character that is neither alphanumeric nor ``_`` goes."""
    return re.sub(r"[^0-9A-Za-z_]", "", name.replace("-", "_"))


def _shape_text(shape: tuple) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def with_dims(model: Model, dims: Mapping[str, int]) -> Model:
    """``model`` with symbolic input dims fixed (``RModel::Initialize``); the parsed graph is left as it was."""
    graph = copy.copy(model.ir)
    graph.tensors = dict(model.ir.tensors)
    graph.fix_inputs(dims)
    return Model(graph)


def batch_dims(model: Model, size: int) -> dict[str, int]:
    """``{dim: size}`` for the leading dim of every input where it is symbolic: the batch, which SOFIE fixes
    from ``Generate(options, batchSize)`` and which its Keras parser sets to 1."""
    return {str(i.shape[0]): size for i in model.inputs if i.shape and isinstance(i.shape[0], str)}


class TensorData:
    """``model.GetTensorData['float'](name)``: SOFIE's member template, subscripted with the element type
    (``'float'``, ``'double'``, ``'int64_t'``, ...) as cppyy subscripts C++ templates; called without the
    subscript it returns the tensor in its own type."""

    def __init__(self, model: RModel):
        self._model = model

    def __getitem__(self, type_name: Any) -> Callable[[str], np.ndarray]:
        wanted = dtype_of(type_name)
        return lambda name: self._model._tensor_data(name, wanted)

    def __call__(self, name: str) -> np.ndarray:
        return self._model._tensor_data(name, None)


class RModel:
    """``TMVA::Experimental::SOFIE::RModel`` as SOFIE's Python scripts use it, returned by the parsers
    (``RModelParser_ONNX().Parse``, ``PyKeras.Parse``, ``PyTorch.Parse``).

    ``Generate`` writes the code in memory, ``OutputGenerated`` writes the header and its weights
    (``<Name>.hxx`` and ``.dat``, ``.root`` or none, by the options), which ``ROOT.gInterpreter.Declare``
    then compiles.  Building a model operator by operator (``AddOperator``, ``AddInitializedTensor``, ...)
    needs SOFIE's C++ operator classes and raises :class:`SofieCompatError`, as do the calls listed in
    ``NOT_PROVIDED``.
    """

    def __init__(self, model: Model, source: str = ""):
        if not isinstance(model, Model):
            raise SofieCompatError(
                "RModel(name, parsetime) makes an empty model for SOFIE's C++ operators to be added one by one, "
                "which sofie-rdf does not provide: parse a model file with RModelParser_ONNX, PyKeras or PyTorch"
            )
        self._model = model
        self._source = source
        self._code: Optional[GeneratedCode] = None
        self._initialized = False
        self._no_session = False

    def __repr__(self) -> str:
        return f"<sofie_rdf.compat.RModel {self._model.name} from {self._source or 'memory'}>"

    # ---- names -------------------------------------------------------------------
    def GetFilename(self) -> str:
        """The model's name: the parsed file's stem, made an identifier (``TMVA_SOFIE_<name>``)."""
        return self._model.name

    def SetFilename(self, name: str) -> None:
        """Rename the model (and so its namespace ``TMVA_SOFIE_<name>``); generate again to use it."""
        self._model.name = name
        self._code = None

    def GetInputTensorNames(self) -> list[str]:
        """The inputs' names, in the order ``infer`` takes them, as SOFIE's parsers clean them."""
        return [clean_name(i.name) for i in self._model.inputs]

    def GetOutputTensorNames(self) -> list[str]:
        """The outputs' names, in the order ``infer`` returns them."""
        return [clean_name(o.name) for o in self._model.outputs]

    def UseSession(self) -> bool:
        """False after ``Generate(Options.kNoSession | Options.kNoWeightFile)``, as in SOFIE (the header then
        also has SOFIE's free function ``infer``; its Session stays, under it)."""
        return not self._no_session

    # ---- generating ----------------------------------------------------------------
    def Initialize(self, batchSize: Union[int, Mapping[str, int]] = -1, verbose: bool = False) -> None:
        """Fix symbolic input dims before the code is generated: a batch size (> 0) fixes the leading dim of
        every input where it is symbolic; a mapping (a dict or a ``std::map<std::string, size_t>``) fixes dims by
        name.  As in SOFIE, a model is initialized once (``Generate`` does it) and later calls change nothing."""
        if self._initialized:
            if verbose:
                print("Model is already initialized  - skip initialization")
            return
        if isinstance(batchSize, (int, np.integer)):
            dims = batch_dims(self._model, int(batchSize)) if batchSize > 0 else {}
        else:
            pairs = batchSize.items() if hasattr(batchSize, "items") else batchSize
            dims = {str(k): int(v) for k, v in pairs}
        if dims:
            self._model = with_dims(self._model, dims)
            if verbose:
                print(f"sofie-rdf: model {self._model.name}: dims {dims} fixed; inputs {self._model.inputs}")
        self._initialized = True

    def Generate(
        self, options: Union[Options, int] = Options.kDefault, batchSize: int = -1, pos: int = 0, verbose: bool = False
    ) -> None:
        """Generate the header in memory (``PrintGenerated``, ``OutputGenerated``).

        ``options`` (``Options`` flags, ``|``-combined): weights in SOFIE's text ``.dat`` by default,
        ``kRootBinaryWeightFile`` in a ``.root`` file, ``kNoWeightFile`` in the header; ``kNoSession`` (with
        ``kNoWeightFile``) adds SOFIE's free ``infer``; ``kProfile`` times every node.  ``batchSize`` > 0 fixes
        a symbolic batch (``Initialize``).  ``pos`` (an offset into a shared text weights file) and the GNN
        flags have no counterpart and raise :class:`SofieCompatError`.
        """
        flags = Options(int(options))
        mode = _weights_mode(flags, pos)
        self.Initialize(batchSize, verbose)
        self._code = self._model.code(weights=mode, target="jit", profile=bool(flags & Options.kProfile))
        self._no_session = bool(flags & Options.kNoSession)
        if verbose:
            print(f"sofie-rdf: generated {self._code.namespace} for Cling, weights {mode}")

    def _generated(self, call: str) -> GeneratedCode:
        if self._code is None:
            raise SofieError(f"RModel.{call}: call Generate() first")
        return self._code

    def ReturnGenerated(self) -> str:
        """The generated header's text: what ``OutputGenerated`` writes."""
        code = self._generated("ReturnGenerated")
        optimize = "" if "#pragma cling optimize" in code.header else _CLING_OPTIMIZE  # Cling warns about a second one
        return optimize + code.header + (_free_functions(code) if self._no_session else "")

    def PrintGenerated(self) -> None:
        """Print the generated header (after ``Generate``)."""
        print(self.ReturnGenerated())

    def OutputGenerated(self, filename: str = "", append: bool = False) -> None:
        """Write the header to ``filename`` (default ``<Name>.hxx``) and the weights next to it, named after it
        (``X.hxx`` -> ``X.dat`` or ``X.root``; by default ``<Name>.dat``), as SOFIE does.

        ``append`` adds the header to an existing file: several models in one header, which one
        ``gInterpreter.Declare`` compiles.  Their ``.root`` weights share one file (a directory per model, the
        others kept); text weights cannot share a ``.dat`` (in SOFIE the next model overwrites it), so appending a
        model with text weights to an existing header raises :class:`SofieCompatError`.
        """
        code = self._generated("OutputGenerated")
        header = Path(filename or f"{code.name}.hxx")
        if append and header.exists() and code.weights_mode == "dat":
            raise SofieCompatError(
                f"RModel.OutputGenerated({str(header)!r}, append=True): the text weights of several models cannot "
                "share one .dat file (SOFIE's next model overwrites it); generate with "
                "Options.kRootBinaryWeightFile (one directory per model in one .root file) or Options.kNoWeightFile"
            )
        text = self.ReturnGenerated()
        if append and header.exists():
            with open(header, "a") as f:
                f.write("\n" + text)
        else:
            atomic_write(header, text)
        for file_name, included in code.includes.items():  # custom operator headers, included by file name
            atomic_write(header.parent / file_name, included)
        if code.weights_mode != "embed":
            self.WriteInitializedTensorsToFile(str(header.with_suffix(_WEIGHTS_SUFFIX[code.weights_mode])) if filename else "")

    def WriteInitializedTensorsToFile(self, filename: str = "") -> int:
        """Write the weights in the generated mode to ``filename`` (default ``<Name>.dat`` or ``.root``); returns
        the file's size in bytes.  A ``.root`` file is updated: the model's directory replaced, others kept."""
        code = self._generated("WriteInitializedTensorsToFile")
        if code.weights_mode == "embed":
            raise SofieError(
                "RModel.WriteInitializedTensorsToFile: the weights were generated into the header (Options.kNoWeightFile)"
            )
        path = Path(filename or f"{code.name}{_WEIGHTS_SUFFIX[code.weights_mode]}")
        if code.weights_mode == "root":
            write_root(path, code.weights, root_weights_dir(code.name), update=True)
        else:
            write_dat(path, code.weights)
        return path.stat().st_size

    # ---- tensors ---------------------------------------------------------------------
    def _initializer(self, name: str) -> Optional[tuple[str, np.ndarray]]:
        weights = self._model.ir.initializers
        if name in weights:
            return name, weights[name]
        found = [(n, v) for n, v in weights.items() if clean_name(n) == name]
        return found[0] if found else None

    def _tensor(self, name: str, call: str) -> tuple[str, np.dtype, tuple]:
        """(SOFIE name, dtype, shape) of an input, weight, output or intermediate tensor of the model."""
        weight = self._initializer(name)
        if weight is not None:
            return clean_name(weight[0]), weight[1].dtype, weight[1].shape
        for info in self._model.inputs + self._model.outputs:
            if name in (info.name, clean_name(info.name)):
                return clean_name(info.name), info.dtype, info.shape
        for tensor, t in self._intermediates().items():
            if name in (tensor, clean_name(tensor)):
                return clean_name(tensor), t.dtype, tuple(d if isinstance(d, int) else str(d) for d in t.shape)
        raise SofieError(f"RModel.{call}: model {self._model.name!r} has no tensor {name!r}")

    def _intermediates(self) -> dict:
        """The tensors the generated code computes between inputs and outputs (after sofie-rdf's rewrites)."""
        planned = self._model.planned("jit").model
        boundary = set(planned.inputs) | set(planned.outputs) | set(planned.initializers)
        return {n: planned.tensors[n] for node in planned.nodes for n in node.outputs if n and n not in boundary}

    def _tensor_data(self, name: str, wanted: Optional[np.dtype]) -> np.ndarray:
        weight = self._initializer(name)
        if weight is None:
            raise SofieError(f"RModel.GetTensorData: {name!r} is no initialized tensor of model {self._model.name!r}")
        values = weight[1]
        if wanted is not None and values.dtype != wanted:
            raise SofieError(f"RModel.GetTensorData: tensor {name!r} holds {values.dtype}, not {wanted}")
        return values.reshape(-1).copy()

    @property
    def GetTensorData(self) -> TensorData:
        """The values of an initialized tensor (a weight), flat, as ``model.GetTensorData['float']('0weight')``."""
        return TensorData(self)

    def CheckIfTensorAlreadyExist(self, name: str) -> bool:
        """Whether the model has an input, weight, output or intermediate tensor of this name."""
        try:
            self._tensor(name, "CheckIfTensorAlreadyExist")
        except SofieError:
            return False
        return True

    def IsInitializedTensor(self, name: str) -> bool:
        """Whether ``name`` is a weight (an initializer of the parsed model)."""
        return self._initializer(name) is not None

    def GetTensorShape(self, name: str) -> list[int]:
        """The shape of a tensor whose dims are all numbers (``GetDynamicTensorShape`` for symbolic ones)."""
        shape = self._tensor(name, "GetTensorShape")[2]
        if not all(isinstance(d, (int, np.integer)) for d in shape):
            raise SofieError(
                f"RModel.GetTensorShape: tensor {name!r} has the dynamic shape {_shape_text(shape)}: use GetDynamicTensorShape"
            )
        return [int(d) for d in shape]

    def GetDynamicTensorShape(self, name: str) -> list[Union[int, str]]:
        """The shape of a tensor, its symbolic dims as their names."""
        return list(self._tensor(name, "GetDynamicTensorShape")[2])

    def GetTensorType(self, name: str) -> ETensorType:
        """The tensor's element type as SOFIE numbers it (``ConvertTypeToString`` spells it)."""
        return tensor_type_of(self._tensor(name, "GetTensorType")[1])

    # ---- printing --------------------------------------------------------------------
    def PrintRequiredInputTensors(self) -> None:
        """Print the inputs with their types and shapes (symbolic dims by name), as SOFIE lists them."""
        print("Model requires following inputs:")
        for i in self._model.inputs:
            kind = "Fully Specified" if all(isinstance(d, int) for d in i.shape) else "Partially Specified"
            print(f"{kind} Tensor name: {clean_name(i.name)}\ttype: {_type_name(i.dtype)}\tshape: {_shape_text(i.shape)}")
        print()

    def PrintInitializedTensors(self) -> None:
        """Print the weights' names, types and shapes, as SOFIE lists them."""
        print("Model initialized the following tensors:")
        for n, v in self._model.ir.initializers.items():
            print(f'Tensor name: "{clean_name(n)}"\ttype: {_type_name(v.dtype)}\tshape: {_shape_text(v.shape)}')
        print()

    def PrintIntermediateTensors(self) -> None:
        """The tensors the generated code computes, after sofie-rdf's rewrites (fusions fold some of SOFIE's)."""
        print("Model specify the following intermediate tensors:")
        for n, t in self._intermediates().items():
            shape = tuple(str(d) for d in t.shape)
            print(f'Tensor name: "{clean_name(n)}"\ttype: {_type_name(t.dtype)}\tshape: {_shape_text(shape)}')
        print()

    def PrintDynamicTensors(self) -> None:
        """The intermediate tensors whose size depends on a symbolic dim."""
        print("Model specify the following dynamic tensors:")
        for n, t in self._intermediates().items():
            if not all(isinstance(d, int) for d in t.shape):
                print(
                    f'Tensor name: "{clean_name(n)}"\ttype: {_type_name(t.dtype)}\t'
                    f"shape: {_shape_text(tuple(str(d) for d in t.shape))}"
                )
        print()

    def PrintOutputTensors(self) -> None:
        """Print the outputs' names and shapes."""
        print("Model specify the following output tensors:")
        for o in self._model.outputs:
            print(f'Tensor name: "{clean_name(o.name)}"\tshape: {_shape_text(o.shape)}')
        print()

    def HeadInitializedTensors(self, name: str, n_print: int = 50) -> None:
        """Name, type, shape and the first ``n_print`` values of a weight."""
        found = self._initializer(name)
        if found is None:
            print(f"Tensor {name} not found in model's initialized tensor list")
            return
        values = found[1].reshape(-1)
        print(f"Tensor name: {clean_name(found[0])}\ttype: {_type_name(found[1].dtype)}\tshape: {_shape_text(found[1].shape)}")
        shown = " ,".join(str(v) for v in values[:n_print].tolist())
        print(f"data: [\n{shown}{', ...' if values.size > n_print else ''}]")


def _weights_mode(flags: Options, pos: int) -> str:
    """The weights mode ``Generate``'s options ask for, refusing what sofie-rdf cannot honour."""
    if flags & (Options.kGNN | Options.kGNNComponent):
        raise SofieCompatError(
            "RModel.Generate: Options.kGNN and kGNNComponent are the flags ROOT's RModel_GNN sets on the models of "
            "its update functions; sofie-rdf builds graph networks as one model with sr.gnn (see the guide "
            "'Graph networks')"
        )
    if pos:
        raise SofieCompatError(
            f"RModel.Generate(pos={pos}): reading text weights from an offset of a file shared by several models "
            "is not provided; use Options.kRootBinaryWeightFile, which keeps each model in its own directory of "
            "one .root file"
        )
    if flags & Options.kNoSession and (not flags & Options.kNoWeightFile or flags & Options.kRootBinaryWeightFile):
        raise SofieCompatError(
            "RModel.Generate: cannot use a separate weight file without generating a Session "
            "class (Options.kNoSession takes Options.kNoWeightFile, as in SOFIE)"
        )
    return "root" if flags & Options.kRootBinaryWeightFile else "embed" if flags & Options.kNoWeightFile else "dat"


def _type_name(dtype: Any) -> str:
    return ConvertTypeToString(tensor_type_of(dtype))


def _free_functions(code: GeneratedCode) -> str:
    """SOFIE's ``Options::kNoSession`` interface, ``TMVA_SOFIE_<Name>::infer(...)`` as a free function, over one
    Session per thread (weights embedded, so it needs no file)."""
    ns = code.namespace
    signature = code.signatures["infer_vectors"]
    return "\n".join(
        [
            "",
            f"#ifndef {ns}_NOSESSION_HXX",
            f"#define {ns}_NOSESSION_HXX",
            "// Options::kNoSession: SOFIE's free infer function, over one Session per thread.",
            f"namespace {ns} {{",
            "inline Session &session_of_this_thread()",
            "{",
            "   static thread_local Session session;",
            "   return session;",
            "}",
            f"inline {signature}",
            "{",
            f"   return session_of_this_thread().infer({code.signatures['infer_vectors_args']});",
            "}",
            f"}} // namespace {ns}",
            f"#endif // {ns}_NOSESSION_HXX",
            "",
        ]
    )


# SOFIE calls with no counterpart here, with the reason each raises.
_BY_OPERATOR = (
    "building an RModel operator by operator needs SOFIE's C++ ROperator classes, which sofie-rdf does "
    "not provide; export the model to ONNX, Keras or PyTorch and parse that file"
)
NOT_PROVIDED = {  # RModel method -> why it raises SofieCompatError
    **{
        name: _BY_OPERATOR
        for name in (
            "AddInputTensorInfo",
            "AddOperator",
            "AddOperatorReference",
            "AddInitializedTensor",
            "AddConstantTensor",
            "AddIntermediateTensor",
            "AddDynamicTensor",
            "AddInputTensorName",
            "AddOutputTensorNameList",
            "UpdateOutputTensorList",
            "UpdateInitializedTensor",
            "AddBlasRoutines",
            "AddNeededStdLib",
            "AddNeededCustomHeader",
            "InitializeSubGraph",
            "SetNotWritableInitializedTensor",
        )
    },
    "GetInitializedTensorData": "it returns a C++ shared_ptr<void>; use GetTensorData['float'](name), a numpy array",
    "ReadInitializedTensorsFromFile": "the Session constructor reads the weights itself",
    "SetOptimizationLevel": "sofie-rdf's rewrites and memory plan are always on; it has no basic level",
    "GenerateInferSignature": "it is part of SOFIE's own code writer",
    "AllocateIntermediateMemory": "it is part of SOFIE's own memory planner",
    "CheckAndFlushIntermediateMemory": "it is part of SOFIE's own memory planner",
}
"""The ``RModel`` methods of SOFIE that raise :class:`SofieCompatError`, each with the reason its message gives."""


def _not_provided(name: str, reason: str) -> Callable[..., Any]:
    def call(self: RModel, *args: Any, **kwargs: Any) -> Any:  # the method that stands for the SOFIE call
        raise SofieCompatError(f"RModel.{name} is a SOFIE call sofie-rdf does not provide: {reason}")

    call.__name__ = name
    call.__doc__ = f"Raises :class:`SofieCompatError`: {reason}."
    return call


for _name, _reason in NOT_PROVIDED.items():
    setattr(RModel, _name, _not_provided(_name, _reason))
