"""Python face of a compiled model: numpy in, numpy out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import sympy

from .codegen import GeneratedCode
from .errors import ShapeError, SofieError
from .ir import TensorInfo, TensorType


class Session:
    """A compiled model bound to one C++ ``Session`` object.

    ``infer`` checks the arrays against the model's inputs (count, dtype,
    rank, fixed dims, consistent symbolic dims), reads the symbolic dims
    (batch, sequence length) off the arrays, and calls the allocation-free
    C++ ``infer`` writing straight into freshly allocated numpy outputs.
    A Session is not thread safe: use one per thread, as in C++.
    """

    def __init__(self, code: GeneratedCode, namespace: str, backend: str, weights: Optional[Path],
                 folder: Optional[Path] = None):
        from ._root import root

        self.code = code
        self.name = code.name
        self.namespace = namespace
        self.backend = backend
        self.weights_path = weights
        self.folder = folder
        self.cpp_type = f"{namespace}::Session"
        cls = getattr(root(), namespace).Session
        try:
            self._cpp = cls(str(weights)) if weights is not None else cls()
        except Exception as exc:
            raise SofieError(f"model {code.name!r}: creating the C++ Session failed: {_cpp_message(exc)}") from None
        self._symbols = [sympy.Symbol(orig, integer=True, nonnegative=True) for orig, _ in code.symbols]
        self._inputs = code.inputs
        self._outputs = [(t.dtype, _shape_function(self._symbols, t.shape)) for _, t in code.outputs]

    @property
    def inputs(self) -> list[TensorInfo]:
        return [t.info(n) for n, t in self.code.inputs]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [t.info(n) for n, t in self.code.outputs]

    def infer(self, *arrays: Any) -> Union[np.ndarray, tuple[np.ndarray, ...]]:
        """Run the model; one array per input, in model input order."""
        if len(arrays) != len(self._inputs):
            raise ShapeError(f"model {self.name!r} takes {len(self._inputs)} input(s) "
                             f"({', '.join(n for n, _ in self._inputs)}), got {len(arrays)}")
        values: dict[sympy.Symbol, int] = {}
        args = [self._check(name, t, a, values) for (name, t), a in zip(self._inputs, arrays)]
        sym_values = [values.get(s, 0) for s in self._symbols]
        outputs = [np.empty(shape(*sym_values), dtype=dtype) for dtype, shape in self._outputs]
        try:
            self._cpp.infer(*sym_values, *args, *outputs)
        except Exception as exc:
            raise SofieError(f"model {self.name!r}: inference failed: {_cpp_message(exc)}") from None
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    __call__ = infer

    def _check(self, name: str, t: TensorType, array: Any, values: dict) -> np.ndarray:
        a = np.asarray(array)
        where = f"model {self.name!r}, input {name!r}"
        if a.dtype != t.dtype:
            raise ShapeError(f"{where}: expected dtype {t.dtype}, got {a.dtype} (convert with .astype(np.{t.dtype}))")
        if a.ndim != t.rank:
            raise ShapeError(f"{where}: expected shape {_spell(t.shape)}, got {a.shape}")
        for axis, (want, got) in enumerate(zip(t.shape, a.shape)):
            if isinstance(want, int):
                ok = want == got
            elif want.is_Symbol:
                ok = values.setdefault(want, got) == got
            else:
                ok = True  # expression dims are checked below, once every symbol is bound
            if not ok:
                raise ShapeError(f"{where}: expected shape {_spell(t.shape)}, got {a.shape} "
                                 f"(axis {axis}: {want} = {values.get(want, want)})")
        for axis, (want, got) in enumerate(zip(t.shape, a.shape)):
            if not isinstance(want, int) and not want.is_Symbol and want.free_symbols <= values.keys():
                if int(want.subs(values)) != got:
                    raise ShapeError(f"{where}: axis {axis} must be {want} = {want.subs(values)}, got {got}")
        return np.ascontiguousarray(a)


def _shape_function(symbols: list, shape: tuple):
    """Python function of the dim values giving a concrete output shape."""
    if all(isinstance(d, int) for d in shape):
        fixed = tuple(shape)
        return lambda *_: fixed
    f = sympy.lambdify(symbols, list(shape), modules="math")
    return lambda *v: tuple(int(d) for d in f(*v))


def _spell(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _cpp_message(exc: Exception) -> str:
    """The what() of a C++ exception surfaced by cppyy, without cppyy's prefix."""
    text = str(exc)
    return text.split("=>", 1)[-1].strip().replace("\n   ", " ") if "=>" in text else text
