"""Python face of a compiled model: numpy in, numpy out."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import sympy

from .codegen import GeneratedCode
from .errors import ShapeError, SofieError
from .ir import TensorInfo, TensorType, cpp_type
from .ir.dtypes import HALF_TYPES

# Element types whose buffers cppyy cannot pass: int8_t * reads as a C string, the 16-bit floats are
# class types numpy knows nothing of.
_BY_ADDRESS = (np.dtype(np.int8), *HALF_TYPES)


class Session:
    """A compiled model bound to one C++ ``Session`` object.

    ``infer`` checks the arrays against the model's inputs (count, dtype,
    rank, fixed dims, consistent symbolic dims), reads the symbolic dims
    (batch, sequence length) off the arrays, and calls the allocation-free
    C++ ``infer`` writing straight into freshly allocated numpy outputs.
    Outputs whose size the model computes while running (NonZero's count)
    come back through C++ vectors owned by this object, shaped with the dims
    ``infer`` reports (``runtime_dim``).
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
        runtime = [sympy.Symbol(d, integer=True, nonnegative=True) for d in code.runtime_dims]
        self._inputs = code.inputs
        self._outputs = [(t.dtype, _shape_function(self._symbols + runtime, t.shape)) for _, t in code.outputs]
        # Outputs sized while running: C++ vectors the call fills (reused: no allocation once large enough).
        self._vectors = {k: root().std.vector[cpp_type(t.dtype)]() for k, (_, t) in enumerate(code.outputs)
                         if any(s in runtime for s in getattr(t.size, "free_symbols", ()))}
        self._call = self._cpp.infer
        if any(t.dtype in _BY_ADDRESS for _, t in code.inputs + code.outputs):
            self._call = _address_call(code, namespace, self._cpp, set(self._vectors))

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
        for c in self.code.constraints:
            if c.condition.free_symbols <= values.keys() and not bool(c.condition.subs(values)):
                raise ShapeError(f"model {self.name!r}: {c.message} (dims: "
                                 f"{', '.join(f'{k} = {v}' for k, v in values.items())})")
        sym_values = [values.get(s, 0) for s in self._symbols]
        unknown = [0] * len(self.code.runtime_dims)  # the shapes of outputs allocated here do not use them
        outputs = [None if k in self._vectors else np.empty(shape(*sym_values, *unknown), dtype=dtype)
                   for k, (dtype, shape) in enumerate(self._outputs)]
        buffers = [a if a.size else _nullptr() for a in args]  # cppyy refuses empty buffers
        buffers += [self._vectors[k] if o is None else (o if o.size else _nullptr()) for k, o in enumerate(outputs)]
        try:
            self._call(*sym_values, *buffers)
        except Exception as exc:
            raise SofieError(f"model {self.name!r}: inference failed: {_cpp_message(exc)}") from None
        if self._vectors:
            runtime = [int(self._cpp.runtime_dim(k)) for k in range(len(self.code.runtime_dims))]
            for k, vec in self._vectors.items():
                dtype, shape = self._outputs[k]
                outputs[k] = _from_vector(vec, dtype).reshape(shape(*sym_values, *runtime))
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


def _from_vector(vec: Any, dtype: np.dtype) -> np.ndarray:
    """A copy of a C++ vector's elements (std::vector<bool> has no contiguous buffer)."""
    n = int(vec.size())
    if dtype == np.bool_:
        return np.array([bool(v) for v in vec], dtype=np.bool_)
    if dtype in HALF_TYPES and n:  # cppyy gives a pointer to class objects, not a buffer: read the bits
        import cppyy

        bits = (ctypes.c_uint16 * n).from_address(cppyy.ll.addressof(vec.data()))
        return np.ctypeslib.as_array(bits).copy().view(dtype)
    return np.frombuffer(vec.data(), dtype=dtype, count=n).copy() if n else np.empty(0, dtype)


def _nullptr() -> Any:
    from ._root import root

    return root().nullptr


def _address_call(code: GeneratedCode, namespace: str, cpp: Any, vectors: set[int]) -> Any:
    """``infer`` called with buffer addresses, for models with tensors of a type in ``_BY_ADDRESS``.

    cppyy reads ``int8_t *`` (``signed char *``) as a C string and refuses
    numpy buffers for it, and has no numpy view of the 16-bit float types, so
    such models go through a small Cling adapter that takes every buffer as an
    address and casts it back (outputs sized at run time, ``vectors``, are
    passed as the C++ vectors they are).
    """
    from ._root import declare, root

    dims = [f"size_t d{k}" for k in range(len(code.symbols))]
    params, casts = [], []
    n_in = len(code.inputs)
    for k, (const, (_, t)) in enumerate([(True, io) for io in code.inputs] + [(False, io) for io in code.outputs]):
        if k - n_in in vectors:
            params.append(f"std::vector<{cpp_type(t.dtype)}> &p{k}")
            casts.append(f"p{k}")
            continue
        params.append(f"std::uintptr_t p{k}")
        casts.append(f"reinterpret_cast<{'const ' if const else ''}{cpp_type(t.dtype)} *>(p{k})")
    args = [f"d{k}" for k in range(len(code.symbols))] + casts
    declare(f"address-call:{namespace}", (
        f"#include <cstdint>\n#include <vector>\nnamespace {namespace} {{\n"
        f"inline void sofie_rdf_infer_addresses({', '.join(['Session &s', *dims, *params])})\n"
        f"{{ s.infer({', '.join(args)}); }}\n}}\n"))
    adapter = getattr(root(), namespace).sofie_rdf_infer_addresses
    n_dims = len(code.symbols)

    def call(*values: Any) -> None:
        dims_, buffers = values[:n_dims], values[n_dims:]
        adapter(cpp, *dims_, *[b.ctypes.data if isinstance(b, np.ndarray) else b if hasattr(b, "size") else 0
                               for b in buffers])

    return call


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
    """The what() of a C++ exception surfaced by cppyy, without cppyy's prefix.

    cppyy reports one line per overload it tried ("sig =>  error"); the
    overloads that merely did not match (the copy constructor for a string
    argument) say TypeError, so the one that threw is the line to show.
    """
    text = str(exc)
    if "=>" not in text:
        return text
    errors = [" ".join(e.split()) for e in re.findall(r"=>\s*(.*?)(?=\n  \S[^\n]*=>|\Z)", text, re.DOTALL)]
    thrown = [e for e in errors if not e.startswith("TypeError:")]
    return (thrown or errors or [text])[-1]
