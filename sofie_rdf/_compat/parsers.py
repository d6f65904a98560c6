"""SOFIE's parsers (``RModelParser_ONNX``, ``PyKeras``, ``PyTorch``) over sofie-rdf's front ends.

Each returns an :class:`RModel` named after the file's stem, as SOFIE names it (``Higgs.onnx`` ->
``TMVA_SOFIE_Higgs``).  The front ends are sofie-rdf's: they read more than SOFIE's (every Keras layer and ONNX
operator sofie-rdf supports), and what they refuse they refuse with sofie-rdf's errors, every unsupported
operator named at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional

from ..errors import ModelFormatError, UnsupportedOperatorError
from ..model import Model
from .common import ETensorType, SofieCompatError, dtype_of
from .rmodel import RModel, batch_dims, with_dims


def _model_file(filename: Any) -> Path:
    path = Path(str(filename))
    if not path.is_file():
        raise ModelFormatError(f"Model file {str(path)!r} not found!")
    return path


class RModelParser_ONNX:
    """``TMVA::Experimental::SOFIE::RModelParser_ONNX``: ``RModelParser_ONNX().Parse("model.onnx")``."""

    def Parse(self, filename: str, verbose: bool = False) -> RModel:
        """The model of an ONNX file; symbolic dims stay symbolic (fix them with ``Generate(options, batchSize)``
        or ``Initialize``), the Session's ``infer`` then taking them first, as SOFIE's does."""
        from ..api import from_onnx

        path = _model_file(filename)
        model = from_onnx(str(path), name=path.stem)
        if verbose:
            print(model.summary())
        return RModel(model, str(path))

    def CheckModel(self, filename: str, verbose: bool = False) -> bool:
        """Whether sofie-rdf supports every operator of an ONNX file; prints those it does not."""
        from ..api import from_onnx

        try:
            model = from_onnx(str(_model_file(filename)))
        except UnsupportedOperatorError as missing:
            print(missing)
            return False
        if verbose:
            print(model.summary())
        return True

    def IsRegisteredOperator(self, op_type: str) -> bool:
        """Whether sofie-rdf implements ``op_type`` (``domain::Type`` outside the ONNX domain)."""
        return op_type in self.GetRegisteredOperators()

    def GetRegisteredOperators(self) -> list[str]:
        """The operator types sofie-rdf implements (``domain::Type`` outside the ONNX domain)."""
        from ..ops import registered_op_types

        return registered_op_types()

    def RegisterOperator(self, *args: Any) -> None:
        """Raises :class:`SofieCompatError`: SOFIE registers a C++ factory of ROperator objects."""
        raise SofieCompatError(
            "RModelParser_ONNX.RegisterOperator takes a C++ factory of SOFIE ROperator objects, which sofie-rdf does "
            "not have; register the operator with sofie_rdf.custom_op or sofie_rdf.register_op (guide 'Custom "
            "operators')"
        )


class PyKeras:
    """``TMVA::Experimental::SOFIE::PyKeras``: ``PyKeras.Parse("model.h5")``, also ``.keras`` files."""

    @staticmethod
    def Parse(filename: str, batch_size: int = 1) -> RModel:
        """The model of a Keras file, its batch dim fixed to ``batch_size`` where the model leaves it open (as
        SOFIE's parser does; 0 or less keeps it symbolic).  Keras runs on its torch backend, not TensorFlow."""
        from ..api import from_keras

        path = _model_file(filename)
        model = from_keras(str(path), name=path.stem)
        if batch_size > 0 and batch_dims(model, batch_size):
            model = with_dims(model, batch_dims(model, batch_size))
        return RModel(model, str(path))


class PyTorch:
    """``TMVA::Experimental::SOFIE::PyTorch``: ``PyTorch.Parse("model.pt", input_shapes)``."""

    @staticmethod
    def Parse(filename: str, input_shapes: Iterable[Iterable[Any]], input_dtypes: Optional[Iterable[Any]] = None) -> RModel:
        """The model of a TorchScript file (``torch.jit.save``) for inputs of ``input_shapes`` (a list of
        shapes, or the ``std::vector<std::vector<size_t>>`` SOFIE's tutorials build), of ``input_dtypes``
        (``ETensorType`` values or type names; float by default)."""
        import torch

        from ..api import from_pytorch

        path = _model_file(filename)
        shapes = [[int(d) for d in shape] for shape in input_shapes]
        dtypes = [dtype_of(t) for t in input_dtypes] if input_dtypes is not None else [dtype_of(ETensorType.FLOAT)] * len(shapes)
        if len(dtypes) != len(shapes):
            raise ModelFormatError(f"PyTorch.Parse: {len(shapes)} input shapes but {len(dtypes)} input types")
        examples = tuple(
            torch.rand(*s).to(getattr(torch, d.name)) if d.kind == "f" else torch.zeros(s, dtype=getattr(torch, d.name))
            for s, d in zip(shapes, dtypes)
        )
        model: Model = from_pytorch(str(path), examples if len(examples) > 1 else examples[0], name=path.stem)
        return RModel(model, str(path))


class _GraphNetsParser:
    """ROOT's ``RModel_GNN`` and ``RModel_GraphIndependent``, which read DeepMind graph_nets models."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, call: str) -> Any:
        if call.startswith("_"):  # Python's and tools' own probes (copy, pickle, IPython) find nothing here
            raise AttributeError(call)
        raise SofieCompatError(
            f"{self._name}.{call} reads DeepMind graph_nets models (TensorFlow, Sonnet), which sofie-rdf does not "
            "load; build the same blocks with sofie_rdf.gnn (guide 'Graph networks'), which RDataFrame runs through "
            "sofie_rdf.gnn.define"
        )


RModel_GNN = _GraphNetsParser("RModel_GNN")
RModel_GraphIndependent = _GraphNetsParser("RModel_GraphIndependent")
