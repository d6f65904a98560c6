"""``sr.Reader``: ROOT's RSofieReader in one line, for any model ``sr.load`` takes."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import sympy

from . import rdf
from .compile import session_of
from .errors import ShapeError
from .session import Session


class Reader:
    """Parse, generate and compile a model; evaluate it event by event.

    ``Compute`` takes the values of one event (per model input: a sequence of
    numbers, without the batch dim) and returns the first output's values;
    ``define``/``declare`` put the model into RDataFrame.
    """

    def __init__(self, source: Any, backend: str = "auto", **load_options: Any):
        from .api import load

        self.model = load(source, **load_options)
        self.session: Session = session_of(self.model, backend)

    def Compute(self, *inputs: Any) -> Union[np.ndarray, tuple[np.ndarray, ...]]:  # noqa: N802 (ROOT's name)
        """Outputs of one event, each flattened (a tuple when the model has several)."""
        expected = self.session.code.inputs
        if len(inputs) != len(expected):
            raise ShapeError(f"model {self.session.name!r} takes {len(expected)} input(s), got {len(inputs)}")
        arrays = [self._event_array(name, t, values) for (name, t), values in zip(expected, inputs)]
        out = self.session.infer(*arrays)
        return out.reshape(-1) if isinstance(out, np.ndarray) else tuple(o.reshape(-1) for o in out)

    __call__ = Compute

    def _event_array(self, name: str, t: Any, values: Any) -> np.ndarray:
        flat = np.asarray(values, dtype=t.dtype).reshape(-1)
        shape = [1 if i == 0 and isinstance(d, sympy.Expr) else d for i, d in enumerate(t.shape)]
        unknown = [i for i, d in enumerate(shape) if not isinstance(d, int)]
        if len(unknown) > 1:
            raise ShapeError(f"model {self.session.name!r}, input {name!r}: dims {t.shape} cannot be read off one event")
        if unknown:
            shape[unknown[0]] = -1
        try:
            return flat.reshape(shape)
        except ValueError:
            raise ShapeError(f"model {self.session.name!r}, input {name!r}: {flat.size} values do not fit "
                             f"shape {tuple(t.shape)} for one event") from None

    def define(self, df: Any, name: str, columns: rdf.Columns, output: Optional[int] = 0) -> Any:
        """``sr.rdf.define`` with this model."""
        return rdf.define(df, name, self.session, columns, output)

    def declare(self, name: str, n_columns: int, all_outputs: bool = False) -> str:
        """C++ name of a functor usable in Define strings: ``name(rdfslot_, col1, ...)``."""
        return rdf.declare(self.session, name, n_columns, all_outputs=all_outputs)
