"""The C++ functors that feed RDataFrame columns to a Session (private: shared by ``rdf`` and its
distributed form).

A functor class is generated per model and column layout: one Session and reusable input and output
buffers per slot, so per-event inference allocates nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import sympy

from . import _root
from .errors import ShapeError, SofieError
from .ir.dims import is_static, num_elements
from .session import Session
from .targets._cxx.cpp import cpp_type, to_cpp
from .targets._cxx.names import string_literal

Columns = Sequence[Union[str, Sequence[str]]]
# Column type names RDataFrame reports (Float_t, ROOT::VecOps::RVec<float>, ...).
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:<>, ]*$")


def functor_header() -> Path:
    """Path of ``cling/SofieFunctor.hxx`` (shipped inside the package)."""
    return Path(str(resources.files("sofie_rdf").joinpath("cling", "SofieFunctor.hxx")))


def include_functor_header() -> None:
    """Declare ``SofieFunctor.hxx`` to Cling, once."""
    _root.declare("cling:SofieFunctor", f'#include "{functor_header()}"')


@dataclass(frozen=True)
class Layout:
    """How the columns feed the model's inputs: per input, its columns and their C++ types."""

    groups: tuple[tuple[str, ...], ...]
    types: tuple[tuple[str, ...], ...]


def layout_of(df: Any, sess: Session, columns: Columns) -> Layout:
    n_inputs = len(sess.code.inputs)
    if n_inputs == 1 and all(isinstance(c, str) for c in columns):
        groups = (tuple(columns),)
    elif len(columns) == n_inputs:
        groups = tuple((c,) if isinstance(c, str) else tuple(c) for c in columns)
    else:
        raise SofieError(f"model {sess.name!r} has {n_inputs} inputs: give one column list per input, "
                         f"got {list(columns)!r}")
    types = []
    for group in groups:
        if not group:
            raise SofieError(f"model {sess.name!r}: an input has no columns")
        names = tuple(str(df.GetColumnType(c)) for c in group)
        for c, t in zip(group, names):
            if not _TYPE_NAME.match(t):
                raise SofieError(f"column {c!r} has type {t!r}, which sofie-rdf cannot pass to a model")
        types.append(names)
    _check_scalar_counts(sess, groups, types)
    return Layout(groups, tuple(types))


def _check_scalar_counts(sess: Session, groups: tuple, types: list) -> None:
    """A fixed-size input fed by scalar columns only: the count is known now, so say so before the event loop.

    (Array columns are checked per event by the functor, which throws std::length_error.)
    """
    batch = batch_values(sess.code.inputs)
    for (name, t), group, names in zip(sess.code.inputs, groups, types):
        size = sympy.sympify(num_elements(t.shape)).subs(batch)
        if size.is_Integer and all("<" not in n and "[" not in n for n in names) and int(size) != len(group):
            raise SofieError(f"model {sess.name!r}, input {name!r} takes {int(size)} values per event, "
                             f"got {len(group)} scalar column(s) {list(group)!r}")


def batch_values(inputs: Sequence[tuple]) -> dict:
    """The batch dim, 1 per event: a symbol leading every input that has symbolic dims.

    Other symbols (a graph's ``n_nodes`` and ``n_edges``, leading different
    inputs) are read off the number of values in the event's columns.
    """
    leading = {t.shape[0] if isinstance(t.shape[0], sympy.Symbol) else None for _, t in inputs
               if not is_static(t.shape)}
    return {s: 1 for s in leading} if len(leading) == 1 and None not in leading else {}


class FunctorWriter:
    """C++ of the per-event functor for one model, column layout and output choice."""

    def __init__(self, sess: Session, layout: Layout, output: Optional[int], class_name: str,
                 weights: Optional[str] = None):
        self.sess, self.layout, self.output, self.class_name = sess, layout, output, class_name
        # C++ expression of the weights path: the session's own file unless told (workers find theirs elsewhere)
        self.weights = weights_arg(sess) if weights is None else weights
        self.code = sess.code
        self.dims = dict(self.code.symbols)
        if output is not None and not 0 <= output < len(self.code.outputs):
            raise SofieError(f"model {sess.name!r} has {len(self.code.outputs)} outputs, output={output} asked")

    def write(self) -> str:
        session = f"{self.sess.namespace}::Session"
        slot = [f"      std::shared_ptr<{session}> session;"]
        slot += [f"      sofie_rdf::detail::Buffer<{cpp_type(t.dtype)}> in{i};"
                 for i, (_, t) in enumerate(self.code.inputs)]
        slot += [f"      sofie_rdf::detail::Buffer<{cpp_type(t.dtype)}> out{k};"
                 for k, (_, t) in enumerate(self.code.outputs)]
        make = f"std::make_shared<{session}>({self.weights})"
        return "\n".join([
            f"class {self.class_name} {{",
            "public:",
            f"   explicit {self.class_name}(unsigned int nslots)",
            "   {",
            "      for (unsigned int i = 0; i < (nslots > 0 ? nslots : 1); ++i) {",
            "         fSlots.push_back(std::make_shared<Slot>());",
            f"         fSlots.back()->session = {make};",
            "      }",
            "   }",
            f"   {self.return_type()} operator()({self._params()})",
            "   {",
            "      Slot &s = *fSlots[slot];",
            *self._body(),
            "   }",
            "private:",
            "   struct Slot {", *slot, "   };",
            "   std::vector<std::shared_ptr<Slot>> fSlots; // shared: RDataFrame copies the functor",
            "};",
        ])

    def _params(self) -> str:
        params = ["unsigned int slot"]
        for i, types in enumerate(self.layout.types):
            params += [f"const {t} &c{i}_{j}" for j, t in enumerate(types)]
        return ", ".join(params)

    def _per_event_size(self, k: int) -> sympy.Expr:
        shape = self.code.outputs[k][1].shape
        return num_elements(shape).subs(self._batch_values())

    def _batch_values(self) -> dict:
        return batch_values(self.code.inputs)

    def return_type(self) -> str:
        if self.output is None:
            return "ROOT::RVec<float>"
        t = cpp_type(self.code.outputs[self.output][1].dtype)
        return t if self._per_event_size(self.output) == 1 else f"ROOT::RVec<{t}>"

    def _body(self) -> list[str]:
        lines = []
        for i, types in enumerate(self.layout.types):
            lines.append(f"      s.in{i}.clear();")
            lines += [f"      sofie_rdf::detail::Append(s.in{i}, c{i}_{j});" for j in range(len(types))]
        lines += self._dim_lines()
        for k, (_, t) in enumerate(self.code.outputs):
            lines.append(f"      s.out{k}.resize({to_cpp(num_elements(t.shape), self.dims)});")
        args = list(self.dims.values()) + [f"s.in{i}.data()" for i in range(len(self.code.inputs))]
        args += [f"s.out{k}.data()" for k in range(len(self.code.outputs))]
        lines.append(f"      s.session->infer({', '.join(args)});")
        lines += self._return_lines()
        return lines

    def _dim_lines(self) -> list[str]:
        """Symbolic dims of one event: leading dims are 1, others come from the input sizes."""
        known = self._batch_values()
        lines = [f"      const std::size_t {self.dims[s.name]} = 1;" for s in known]
        determined = set(known)  # dims with a C++ value by now; later inputs check their sizes against them
        for i, (name, t) in enumerate(self.code.inputs):
            size = sympy.sympify(num_elements(t.shape)).subs(known)
            unknown = sorted(getattr(size, "free_symbols", set()) - determined, key=lambda s: s.name)
            where = f"model {self.sess.name}, input {name}"
            if len(unknown) > 1:
                raise ShapeError(f"{where}: dims {', '.join(map(str, unknown))} cannot all be read off one column set")
            if unknown:
                sym = unknown[0]
                coeff = sympy.simplify(size / sym)
                if not coeff.is_Integer:
                    raise ShapeError(f"{where}: dim {sym} cannot be read off the number of input values")
                determined.add(sym)
                ident = self.dims[sym.name]
                bad = _literal(f"{where}: the number of values in the event is not a multiple of {int(coeff)}")
                lines += [f"      const std::size_t {ident} = s.in{i}.size() / {int(coeff)};",
                          f"      if ({ident} * {int(coeff)} != s.in{i}.size())",
                          f"         throw std::length_error({bad});"]
            else:
                expected = to_cpp(size, self.dims) if not isinstance(size, int) else str(size)
                lines += [f"      if (s.in{i}.size() != {expected})",
                          f"         throw std::length_error({_literal(where + ': wrong number of values in the event')});"]
        return lines

    def _return_lines(self) -> list[str]:
        if self.output is None:
            lines = ["      ROOT::RVec<float> all;"]
            for k in range(len(self.code.outputs)):
                lines += [f"      for (std::size_t i = 0; i < s.out{k}.size(); ++i)",
                          f"         all.push_back(static_cast<float>(s.out{k}[i]));"]
            return lines + ["      return all;"]
        k = self.output
        if self._per_event_size(k) == 1:
            return [f"      return s.out{k}[0];"]
        return [f"      return {self.return_type()}(s.out{k}.data(), s.out{k}.data() + s.out{k}.size());"]


def _literal(text: str) -> str:
    return string_literal(text)


def weights_arg(sess: Session) -> str:
    return _literal(str(sess.weights_path)) if sess.weights_path is not None else ""
