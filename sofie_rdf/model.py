"""The public model object returned by :func:`sofie_rdf.load`."""

from __future__ import annotations

import copy
import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from . import ir
from .errors import NeedsDimsError, ShapeError, SofieError
from .ops import unsupported_nodes
from .passes import prepare
from .planning import Planned, plan
from .targets import Target
from .targets.cpu import WEIGHTS_MODES, GeneratedCode, GeneratedFiles, cpu_target, write_files, write_header


class Model:
    """A parsed model: its IR plus what users ask of it.

    Parsing already validated the graph, checked every operator is supported
    and inferred all shapes, so ``inputs``/``outputs`` are exact and errors
    come at load time, not at compile time.
    """

    def __init__(self, graph: ir.Model):
        self.ir = graph
        # Why one build cannot serve every size of the input dims (None: it can); sr.compile then builds the
        # model for the dims of each call (sofie_rdf._specialise).
        self.needs_dims: Optional[NeedsDimsError] = None
        self._prepared = self._prepare(graph)
        self._digest = graph.digest()

    def _prepare(self, graph: ir.Model) -> Optional[ir.Model]:
        """The prepared graph, or None (``needs_dims`` set) when a shape is only settled by the dims' sizes."""
        try:
            return prepare(graph)
        except NeedsDimsError as exc:
            if not ir.free_symbols(graph.tensors[n].shape for n in graph.inputs):
                raise ShapeError(f"{exc} (the inputs' dims are all fixed: it depends on the inputs' values, which "
                                 "sofie-rdf cannot generate code for)") from None
            self.needs_dims = exc
            return None

    def specialised(self, dims: Mapping[str, int]) -> Model:
        """This model with the input dims in ``dims`` fixed (as ``sr.load(..., dims=dims)`` would), its IR
        otherwise shared: what :func:`sofie_rdf.compile` builds for the dims of a call when :attr:`needs_dims`."""
        graph = copy.copy(self.ir)
        graph.tensors = dict(graph.tensors)
        graph.unnamed_dims, graph.equated_dims = set(graph.unnamed_dims), dict(graph.equated_dims)
        graph.fix_inputs(dims)
        return Model(graph)

    @property
    def name(self) -> str:
        """Model name, a valid C++ identifier (used as ``TMVA_SOFIE_<name>``)."""
        return self.ir.name

    @name.setter
    def name(self, value: str) -> None:
        self.ir.name = ir.model_name_from(value)
        if self._prepared is not None:
            self._prepared.name = self.ir.name
        self._digest = self.ir.digest()

    @property
    def inputs(self) -> list[ir.TensorInfo]:
        return (self._prepared or self.ir).input_info

    @property
    def outputs(self) -> list[ir.TensorInfo]:
        """The outputs' types; a model that :attr:`needs_dims` has them only once its dims are given."""
        if self._prepared is None:
            raise self._unsettled("its outputs' shapes")
        return self._prepared.output_info

    def planned(self, target: Union[str, Target] = "native") -> Planned:
        """The model planned for ``target`` (rewritten, bound, memory placed): computed once per content."""
        digest = self.ir.digest()
        if digest != self._digest:  # the IR was changed in place since it was prepared
            self._prepared, self._digest = self._prepare(self.ir), digest
        if self._prepared is None:
            raise self._unsettled("code for it")
        return plan(self.ir, _target(target), self._prepared, digest)

    def _unsettled(self, what: str) -> NeedsDimsError:
        """The error of asking a model that :attr:`needs_dims` for what only its dims' sizes decide."""
        exc = self.needs_dims
        return NeedsDimsError(f"{exc}.  There is no {what} until those dims are given: load it with "
                              "sr.load(..., dims={...}) or use model.specialised({...}); sr.compile builds it for "
                              "the dims of each call by itself", exc.dims)

    def code(self, name: Optional[str] = None, namespace: Optional[str] = None, weights: str = "dat",
             weights_file: Optional[str] = None, target: Union[str, Target] = "native",
             profile: bool = False) -> Any:
        """Generated code in memory (see :meth:`generate` to write files): a
        :class:`~sofie_rdf.targets.cpu.GeneratedCode`, or for ``target="cuda"`` a
        :class:`~sofie_rdf.targets.cuda.CudaCode` (its weights always in one binary file)."""
        name = ir.model_name_from(name) if name else self.name
        planned = self.planned(target)
        if planned.target.name == "cuda":
            from .targets.cuda import write_source

            if weights != "dat" or weights_file is not None or profile:
                raise SofieError("the CUDA target reads its weights from one binary file and has no profiling build: "
                                 "weights, weights_file and profile keep their defaults")
            return write_source(planned, name, namespace)
        return write_header(planned, name, namespace, weights, weights_file, profile)

    def generate(self, outdir: str | os.PathLike = ".", name: Optional[str] = None,
                 weights: str = "dat", target: Union[str, Target] = "native",
                 profile: bool = False, weights_dtype: str = "float32") -> GeneratedFiles:
        """Write ``<Name>.hxx`` and its weights into ``outdir``.

        ``weights``: ``"dat"`` (SOFIE's text file ``<Name>.dat``), ``"root"``
        (``<Name>.root``, read with ROOT's ``TFile``: the header then needs ROOT)
        or ``"embed"`` (in the header, no weights file).
        ``target``: the compiler the header is for.  ``"native"`` (an optimizing compiler:
        ``g++ -O3 -march=native``) may pick kernels that only such a compiler makes fast;
        ``"jit"`` avoids them, for a header you ``gInterpreter.Declare`` to Cling yourself.
        Either header is correct under either compiler.  ``"cuda"`` (or a
        :class:`~sofie_rdf.targets.cuda.CudaTarget`) writes ``<Name>.cu`` and ``<Name>.cuda.bin`` for NVIDIA
        GPUs (weights and profile keep their defaults).
        ``profile``: time every node (``Session::profile_ns()``: nanoseconds per node, summed over
        calls; ``profile_reset()`` zeroes them), like SOFIE's ``Options::kProfile``.
        ``weights_dtype``: ``"bf16"``, ``"fp16"`` or ``"int8"`` store the weights of the float products smaller
        (computed in float; CPU targets only, see :func:`sofie_rdf.compile` for the deviation it makes).
        """
        if weights not in WEIGHTS_MODES:
            raise SofieError(f"weights must be one of {', '.join(WEIGHTS_MODES)}, got {weights!r}")
        code = self.code(name, weights=weights, target=_weights_target(target, weights_dtype), profile=profile)
        if not isinstance(code, GeneratedCode):
            from .targets.cuda import write_files as write_cuda_files

            return write_cuda_files(code, Path(outdir))
        return write_files(code, Path(outdir))

    def save(self, path: str | os.PathLike, key: Optional[str] = None) -> None:
        """Store the IR under ``key`` (default: the model name) of a ``.root`` file, written with uproot.

        Other keys of an existing file are kept; a model already stored under
        ``key`` is replaced.  ``sofie_rdf.load("file.root:key")`` reads it back.
        """
        from .parsers.root import save_root

        save_root(self.ir, path, key or self.name)

    def summary(self) -> str:
        """Inputs, outputs, operator counts and parameter count, as text."""
        return describe(self.ir, self.inputs, self.outputs if self._prepared is not None else None)

    def __repr__(self) -> str:
        outputs = self.outputs if self._prepared is not None else "known once its dims are given"
        return f"<sofie_rdf.Model {self.name}: {len(self.ir.nodes)} nodes, inputs {self.inputs}, outputs {outputs}>"


def describe(graph: ir.Model, inputs: Optional[Sequence] = None, outputs: Optional[Sequence] = None) -> str:
    """Text summary; works on models with unsupported operators too."""
    lines = [f"model {graph.name} ({graph.source})"]
    for label, infos, names in (("input", inputs, graph.inputs), ("output", outputs, graph.outputs)):
        if infos is None:
            infos = [graph.tensors[n].info(n) if n in graph.tensors else n for n in names]
        for t in infos:
            lines.append(f"  {label:6} {t}")
    params = sum(v.size for v in graph.initializers.values())
    lines.append(f"  parameters: {params:,} in {len(graph.initializers)} initializers")
    counts = Counter(n.qualified_type for n in graph.nodes)
    lines.append(f"  operators ({len(graph.nodes)} nodes): " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
    missing = unsupported_nodes(graph)
    lines.append("  unsupported: " + (", ".join(f"{k} ({len(v)} nodes)" for k, v in sorted(missing.items()))
                                      if missing else "none"))
    return "\n".join(lines)


def _weights_target(spec: Union[str, Target], weights_dtype: str) -> Union[str, Target]:
    """``spec`` storing its products' weights as ``weights_dtype`` (CPU targets only)."""
    if weights_dtype == "float32":
        return spec
    target = _target(spec)
    if target.name != "cpu":
        raise SofieError(f"weights_dtype={weights_dtype!r} is for the CPU targets; the {target.name} target stores "
                         "its weights as the model gives them")
    return cpu_target(target, weights=weights_dtype)


def _target(spec: Union[str, Target]) -> Target:
    """The target of a public name (``"native"``, ``"jit"``, ``"cuda"``) or a :class:`Target` as it is."""
    if isinstance(spec, Target):
        return spec
    if spec == "cuda":
        from .targets.cuda import cuda_target

        return cuda_target()
    if spec not in (None, "native", "jit"):
        raise SofieError(f"target must be one of native, jit, cuda, got {spec!r}")
    return cpu_target(spec)
