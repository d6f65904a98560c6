"""Python face of a compiled model: numpy in, numpy out."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import sympy

from .errors import ShapeError, SofieError
from .ir import TensorInfo, TensorType
from .ir.dtypes import HALF_TYPES
from .profiling import Profile, profile_session
from .targets.cpu import GeneratedCode
from .targets.cpu.cpp import cpp_type

# Element types whose buffers cppyy cannot pass: int8_t * reads as a C string, the 16-bit floats are
# class types numpy knows nothing of.
_BY_ADDRESS = (np.dtype(np.int8), *HALF_TYPES)


class _Columnar:
    """How :meth:`Session.infer` hands arrays it does not know (awkward, dask-awkward) to the integration
    that does: :mod:`sofie_rdf.columnar` registers itself here on import (the Session never imports it)."""

    accepts: Optional[Callable[[Any], bool]] = None
    infer: Optional[Callable[..., Any]] = None


def register_columnar(accepts: Callable[[Any], bool], infer: Callable[..., Any]) -> None:
    """Route ``Session.infer`` calls with arrays ``accepts`` recognises, or with keyword options, to ``infer``."""
    _Columnar.accepts, _Columnar.infer = accepts, infer


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
        self.model: Optional[Any] = None  # the sofie_rdf.Model compiled, when known (Dask workers rebuild from it)
        # Builds this Session's twin with a timer around every node (set by sofie_rdf.compile); see profile.
        self.profiling_twin: Optional[Callable[[], Session]] = None
        self._twin: Optional[Session] = None
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
        self._specs = [_input_spec(t, self._symbols) for _, t in code.inputs]
        self._call = _adapter(code, namespace, self._cpp, self._vectors)

    @property
    def inputs(self) -> list[TensorInfo]:
        return [t.info(n) for n, t in self.code.inputs]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [t.info(n) for n, t in self.code.outputs]

    def infer(self, *arrays: Any, **columnar: Any) -> Any:
        """Run the model; one array per input, in model input order.

        numpy arrays give numpy arrays.  awkward (and dask-awkward) arrays give
        awkward arrays aligned with their events: record fields as features,
        jagged axes padded or kept at their per-event length; ``columnar``
        takes ``features=`` and ``fill=`` (see :mod:`sofie_rdf.columnar`).
        """
        sym_values = self._fast_dims(arrays)
        if sym_values is None:  # not plain contiguous arrays of the right type and shape: check and say why
            if _Columnar.infer is not None and (columnar or any(map(_Columnar.accepts, arrays))):
                return _Columnar.infer(self, *arrays, **columnar)
            if columnar:
                raise SofieError(f"model {self.name!r}: infer takes {', '.join(columnar)} only for awkward arrays "
                                 "(import sofie_rdf.columnar)")
            arrays, sym_values = self._checked(arrays)
        unknown = [0] * len(self.code.runtime_dims)  # the shapes of outputs allocated here do not use them
        outputs = [None if k in self._vectors else np.empty(shape(*sym_values, *unknown), dtype=dtype)
                   for k, (dtype, shape) in enumerate(self._outputs)]
        try:
            self._call(sym_values, arrays, outputs)
        except Exception as exc:
            raise _inference_error(self.name, _cpp_message(exc)) from None
        if self._vectors:
            runtime = [int(self._cpp.runtime_dim(k)) for k in range(len(self.code.runtime_dims))]
            for k, vec in self._vectors.items():
                dtype, shape = self._outputs[k]
                outputs[k] = _from_vector(vec, dtype).reshape(shape(*sym_values, *runtime))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def profile(self, *arrays: Any, repeat: int = 100, warmup: int = 5) -> Profile:
        """Where the time of a call on ``arrays`` goes, node by node: a :class:`~sofie_rdf.profiling.Profile`
        (print it for the table; ``.nodes`` has op type, name, shapes, seconds, share and GFLOP/s).

        The first call compiles a twin of this Session with a timer around every node (this Session
        itself has none); then the two run the inputs in turn ``repeat`` times after ``warmup`` calls,
        and the profile holds median times (see :mod:`sofie_rdf.profiling`).
        """
        if self._twin is None:
            if self.code.profile:
                self._twin = self
            elif self.profiling_twin is None:
                raise SofieError(f"model {self.name!r}: this Session was not made by sofie_rdf.compile, "
                                 "which profile needs to build its timed twin")
            else:
                self._twin = self.profiling_twin()
        arrays, _ = self._checked(arrays)
        return profile_session(self, self._twin, arrays, repeat, warmup)

    def profile_ns(self) -> np.ndarray:
        """Nanoseconds each node took, summed over the calls since ``profile_reset`` (profiling builds only)."""
        return np.fromiter(self._cpp.profile_ns(), dtype=np.float64, count=len(self.code.nodes))

    def profile_reset(self) -> None:
        """Zero the node timers of a profiling build."""
        self._cpp.profile_reset()

    def call_dims(self, arrays: Any) -> dict[sympy.Symbol, int]:
        """The value of every dim for a call on ``arrays``, those computed by the last call included."""
        _, values = self._checked(tuple(arrays))
        dims = dict(zip(self._symbols, values))
        for k, d in enumerate(self.code.runtime_dims):
            dims[sympy.Symbol(d, integer=True, nonnegative=True)] = int(self._cpp.runtime_dim(k))
        return dims

    def _fast_dims(self, arrays: tuple) -> Optional[list[int]]:
        """The dim values when every array is a C-contiguous ndarray that fits its input; else None.

        The common call, checked without sympy: each input's spec lists per axis a fixed size (>= 0) or
        the complement (~k) of the index of the dim it binds.
        """
        if len(arrays) != len(self._specs):
            return None
        dims = [-1] * len(self._symbols)
        for (dtype, pattern), a in zip(self._specs, arrays):
            if pattern is None or type(a) is not np.ndarray or a.dtype != dtype or len(a.shape) != len(pattern) \
                    or not a.flags.c_contiguous:
                return None
            for want, got in zip(pattern, a.shape):
                if want >= 0:
                    if want != got:
                        return None
                elif dims[~want] < 0:
                    dims[~want] = got
                elif dims[~want] != got:
                    return None
        if self.code.constraints:
            values = dict(zip(self._symbols, dims))
            if not all(bool(c.condition.subs(values)) for c in self.code.constraints
                       if c.condition.free_symbols <= values.keys()):
                return None
        return [max(d, 0) for d in dims]

    def _checked(self, arrays: tuple) -> tuple[list[np.ndarray], list[int]]:
        """The arrays as contiguous inputs and the dim values, or a ShapeError saying what does not fit."""
        if len(arrays) != len(self._inputs):
            raise ShapeError(f"model {self.name!r} takes {len(self._inputs)} input(s) "
                             f"({', '.join(n for n, _ in self._inputs)}), got {len(arrays)}")
        values: dict[sympy.Symbol, int] = {}
        args = [self._check(name, t, a, values) for (name, t), a in zip(self._inputs, arrays)]
        for c in self.code.constraints:
            if c.condition.free_symbols <= values.keys() and not bool(c.condition.subs(values)):
                raise ShapeError(f"model {self.name!r}: {c.message} (dims: "
                                 f"{', '.join(f'{k} = {v}' for k, v in values.items())})")
        return args, [values.get(s, 0) for s in self._symbols]

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


def _input_spec(t: TensorType, symbols: list) -> tuple[np.dtype, Optional[tuple[int, ...]]]:
    """(dtype, per axis the fixed size or ~index of its dim) for :meth:`Session._fast_dims`; pattern None when
    an axis is an expression of dims (checked by the full path only)."""
    pattern = []
    for d in t.shape:
        if isinstance(d, int):
            pattern.append(d)
        elif d.is_Symbol and d in symbols:
            pattern.append(~symbols.index(d))
        else:
            return t.dtype, None
    return t.dtype, tuple(pattern)


def _adapter(code: GeneratedCode, namespace: str, cpp: Any, vectors: dict[int, Any]) -> Callable[[list, list, list], None]:
    """``infer`` through a free function declared to Cling: ``call(dims, inputs, outputs)``.

    cppyy calls a free function with one signature several times faster than
    the overloaded member ``Session::infer``, which it resolves on each call.
    Buffers go as typed pointers, except those cppyy cannot pass (``_BY_ADDRESS``:
    ``int8_t *`` reads as a C string, the 16-bit floats have no numpy view),
    which go as addresses cast back in C++; outputs sized at run time
    (``vectors``) go as the C++ vectors they are.
    """
    from ._root import declare, root

    dims = [f"size_t d{k}" for k in range(len(code.symbols))]
    params, args, by_address = [], [], []
    n_in = len(code.inputs)
    for k, (const, (_, t)) in enumerate([(True, io) for io in code.inputs] + [(False, io) for io in code.outputs]):
        ptr = f"{'const ' if const else ''}{cpp_type(t.dtype)} *"
        if k - n_in in vectors:
            params.append(f"std::vector<{cpp_type(t.dtype)}> &p{k}")
            args.append(f"p{k}")
        elif t.dtype in _BY_ADDRESS:
            params.append(f"std::uintptr_t p{k}")
            args.append(f"reinterpret_cast<{ptr}>(p{k})")
            by_address.append(k)
        else:
            params.append(f"{ptr}p{k}")
            args.append(f"p{k}")
    declare(f"infer-adapter:{namespace}", (
        f"#include <cstdint>\n#include <vector>\nnamespace {namespace} {{\n"
        f"inline void sofie_rdf_infer({', '.join(['Session &s', *dims, *params])})\n"
        f"{{ s.infer({', '.join([f'd{k}' for k in range(len(code.symbols))] + args)}); }}\n}}\n"))
    adapter = getattr(root(), namespace).sofie_rdf_infer
    null = root().nullptr
    tensors = [t for _, t in code.inputs + code.outputs]
    if not vectors and not by_address and all(isinstance(t.size, int) and t.size for t in tensors):
        return lambda dims_, inputs, outputs: adapter(cpp, *dims_, *inputs, *outputs)  # the common case

    def call(dims_: list, inputs: list, outputs: list) -> None:
        buffers = [*inputs, *outputs]
        for k, b in enumerate(buffers):
            if b is None:  # an output sized at run time: its C++ vector
                buffers[k] = vectors[k - n_in]
            elif k in by_address:
                buffers[k] = b.ctypes.data
            elif not b.size:
                buffers[k] = null  # cppyy refuses empty buffers
        adapter(cpp, *dims_, *buffers)

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


def _inference_error(model: str, message: str) -> SofieError:
    """The Python error of a C++ exception thrown by ``infer``: the generated code throws
    std::invalid_argument for a value it cannot accept (a run-time shape, axis or size, naming the node),
    which is a :class:`ShapeError`; anything else is a failure of the code itself."""
    kind, _, text = message.partition(": ")
    if kind == "invalid_argument":
        text = text.removeprefix("sofie-rdf: ")
        return ShapeError(text if text.startswith("model ") else f"model {model!r}: {text}")
    return SofieError(f"model {model!r}: inference failed: {message}")


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
