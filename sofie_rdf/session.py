"""Python face of a compiled model: numpy in, numpy out.

A :class:`Session` checks arrays against the model's :class:`~sofie_rdf.ir.info.Interface` and hands them to
a binding that calls the C++: the native backend's C ABI (:mod:`sofie_rdf._native`, no ROOT) or, for the
JIT, the Session class declared to Cling (:class:`_CppyyBinding`, through PyROOT).
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from .errors import ShapeError, SofieError
from .ir.info import Interface, TensorInfo

if TYPE_CHECKING:
    from .profiling import Profile
    from .targets.cpu import GeneratedCode


class _Columnar:
    """How :meth:`Session.infer` hands arrays it does not know (awkward, dask-awkward) to the integration
    that does: :mod:`sofie_rdf.columnar` registers itself here on import (the Session never imports it)."""

    accepts: Optional[Callable[[Any], bool]] = None
    infer: Optional[Callable[..., Any]] = None


def register_columnar(accepts: Callable[[Any], bool], infer: Callable[..., Any]) -> None:
    """Route ``Session.infer`` calls with arrays ``accepts`` recognises, or with keyword options, to ``infer``."""
    _Columnar.accepts, _Columnar.infer = accepts, infer


class Session:
    """A compiled model: ``infer`` takes numpy arrays and gives numpy arrays.

    ``infer`` checks the arrays against the model's inputs (count, dtype,
    rank, fixed dims, consistent symbolic dims), reads the symbolic dims
    (batch, sequence length) off the arrays, and calls the allocation-free
    C++ ``infer`` writing straight into freshly allocated numpy outputs.
    Outputs whose size the model computes while running (NonZero's count)
    are copied out after the call, shaped with the dims it computed.
    A Session is not thread safe: use one per thread, as in C++ (a native
    Session serialises calls from several threads; other Sessions run meanwhile).

    Sessions are made by :func:`sofie_rdf.compile`; ``code`` (the generated C++) and ``model`` are at hand
    when the compile made them, or made again on first use when the Session came from the compile cache.
    """

    def __init__(self, interface: Interface, binding: Any, backend: str, weights: Optional[Path],
                 folder: Optional[Path], code: Optional[GeneratedCode] = None):
        self.interface = interface
        self.name = interface.name
        self.namespace = interface.namespace
        self.backend = backend
        self.weights_path = weights
        self.folder = folder
        # how far smaller stored weights move the outputs (sr.compile(weights="bf16"): sofie_rdf.precision)
        self.precision_report = None
        self.library: Optional[Path] = None  # the native library this Session calls
        self.cpp_type = f"{interface.namespace}::Session"
        self._code = code
        self.code_source: Optional[Callable[[], GeneratedCode]] = None  # regenerates code (Sessions from the cache)
        self._model: Optional[Any] = None
        self.model_source: Optional[Callable[[], Any]] = None  # loads the model (Sessions from the cache)
        # Builds this Session's twin with a timer around every node (set by sofie_rdf.compile); see profile.
        self.profiling_twin: Optional[Callable[[], Session]] = None
        self._twin: Optional[Session] = None
        self._binding = binding
        direct = binding.direct(self._checked_infer)
        if direct is not None:  # the native binding's extension: a call is one C function, checks included
            self.infer = direct

    @property
    def code(self) -> GeneratedCode:
        """The generated C++ (:class:`~sofie_rdf.targets.cpu.GeneratedCode`) this Session runs."""
        if self._code is None:
            if self.code_source is None:
                raise SofieError(f"model {self.name!r}: this Session does not know the code it was built from")
            self._code = self.code_source()
        return self._code

    @property
    def model(self) -> Optional[Any]:
        """The :class:`~sofie_rdf.Model` compiled, when known (Dask workers rebuild from it)."""
        if self._model is None and self.model_source is not None:
            self._model = self.model_source()
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        self._model = model

    @property
    def inputs(self) -> list[TensorInfo]:
        return list(self.interface.inputs)

    @property
    def outputs(self) -> list[TensorInfo]:
        return list(self.interface.outputs)

    def infer(self, *arrays: Any, **columnar: Any) -> Any:
        """Run the model; one array per input, in model input order.

        numpy arrays give numpy arrays.  awkward (and dask-awkward) arrays give
        awkward arrays aligned with their events: record fields as features,
        jagged axes padded or kept at their per-event length; ``columnar``
        takes ``features=`` and ``fill=`` (see :mod:`sofie_rdf.columnar`).
        """
        if not columnar:
            out = self._binding.fast(*arrays)
            if out is not NotImplemented:
                return out
        return self._checked_infer(*arrays, **columnar)

    def __call__(self, *arrays: Any, **columnar: Any) -> Any:
        return self.infer(*arrays, **columnar)

    def _checked_infer(self, *arrays: Any, **columnar: Any) -> Any:
        """``infer`` of anything but C-contiguous arrays of the right dtypes and shapes: awkward arrays, or
        arrays converted after checking them (a ShapeError saying what does not fit)."""
        if _Columnar.infer is not None and (columnar or any(map(_Columnar.accepts, arrays))):
            return _Columnar.infer(self, *arrays, **columnar)
        if columnar:
            raise SofieError(f"model {self.name!r}: infer takes {', '.join(columnar)} only for awkward arrays")
        arrays, dims = self._checked(arrays)
        return self._binding.run(dims, arrays)

    def profile(self, *arrays: Any, repeat: int = 100, warmup: int = 5) -> Profile:
        """Where the time of a call on ``arrays`` goes, node by node: a :class:`~sofie_rdf.profiling.Profile`
        (print it for the table; ``.nodes`` has op type, name, shapes, seconds, share and GFLOP/s).

        The first call compiles a twin of this Session with a timer around every node (this Session
        itself has none); then the two run the inputs in turn ``repeat`` times after ``warmup`` calls,
        and the profile holds median times (see :mod:`sofie_rdf.profiling`).
        """
        from .profiling import profile_session

        if self._twin is None:
            if self.interface.profile:
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
        return np.asarray(self._binding.profile_ns(), dtype=np.float64)[: self.interface.nodes]

    def profile_reset(self) -> None:
        """Zero the node timers of a profiling build."""
        self._binding.profile_reset()

    def call_dims(self, arrays: Any) -> dict[str, int]:
        """The value of every dim, by name, for a call on ``arrays``, those computed by the last call included."""
        _, values = self._checked(tuple(arrays))
        dims = dict(zip(self.interface.symbols, values))
        for k, d in enumerate(self.interface.runtime_dims):
            dims[d] = self._binding.runtime_dim(k)
        return dims

    def _checked(self, arrays: tuple) -> tuple[list[np.ndarray], list[int]]:
        """The arrays as contiguous inputs and the dim values, or a ShapeError saying what does not fit."""
        inputs = self.interface.inputs
        if len(arrays) != len(inputs):
            raise ShapeError(f"model {self.name!r} takes {len(inputs)} input(s) "
                             f"({', '.join(t.name for t in inputs)}), got {len(arrays)}")
        values: dict[str, int] = {}
        args = [self._check(t, a, values) for t, a in zip(inputs, arrays)]
        expressions = [(t, axis, d) for t in inputs for axis, d in enumerate(t.shape) if _is_expression(d)]
        if expressions:
            _check_expressions(self.name, expressions, args, inputs, values)
        return args, [values.get(s, 0) for s in self.interface.symbols]

    def _check(self, t: TensorInfo, array: Any, values: dict[str, int]) -> np.ndarray:
        a = np.asarray(array)
        where = f"model {self.name!r}, input {t.name!r}"
        if a.dtype != t.dtype:
            raise ShapeError(f"{where}: expected dtype {t.dtype}, got {a.dtype} (convert with .astype(np.{t.dtype}))")
        if a.ndim != len(t.shape):
            raise ShapeError(f"{where}: expected shape {_spell(t.shape)}, got {a.shape}")
        for axis, (want, got) in enumerate(zip(t.shape, a.shape)):
            if isinstance(want, int):
                ok = want == got
            elif want in self.interface.symbols:
                ok = values.setdefault(want, got) == got
            else:
                ok = True  # expression dims are checked once every symbol is bound
            if not ok:
                raise ShapeError(f"{where}: expected shape {_spell(t.shape)}, got {a.shape} "
                                 f"(axis {axis}: {want} = {values.get(want, want)})")
        return np.ascontiguousarray(a)


def failure(model: str, value: bool, message: str) -> SofieError:
    """The error of a failed C++ call (the bindings raise it): ``value`` when the model could not accept a value
    (a run-time shape, axis or size: std::invalid_argument, naming the node), a :class:`ShapeError`; else a
    failure of the code itself."""
    if value:
        text = message.removeprefix("sofie-rdf: ")
        return ShapeError(text if text.startswith("model ") else f"model {model!r}: {text}")
    return SofieError(f"model {model!r}: inference failed: {message}")


def _is_expression(dim: Any) -> bool:
    return isinstance(dim, str) and not dim.isidentifier()


def _check_expressions(model: str, expressions: list, arrays: list, inputs: tuple, values: dict[str, int]) -> None:
    """Check axes whose size is an expression of dims (``2*N``) once the symbols are bound (sympy, on this
    rare path only)."""
    import sympy

    for t, axis, dim in expressions:
        expr = sympy.sympify(dim, locals={s: sympy.Symbol(s, integer=True, nonnegative=True) for s in values})
        if {s.name for s in expr.free_symbols} <= values.keys():
            want = int(expr.subs({sympy.Symbol(k, integer=True, nonnegative=True): v for k, v in values.items()}))
            got = arrays[inputs.index(t)].shape[axis]
            if want != got:
                raise ShapeError(f"model {model!r}, input {t.name!r}: axis {axis} must be {dim} = {want}, got {got}")


def input_spec(t: TensorInfo, symbols: tuple[str, ...]) -> tuple[np.dtype, Optional[tuple[int, ...]]]:
    """(dtype, per axis the fixed size or ~index of its dim) for the bindings' fast path; pattern None when
    an axis is an expression of dims (checked by the full path only)."""
    pattern = []
    for d in t.shape:
        if isinstance(d, int):
            pattern.append(d)
        elif d in symbols:
            pattern.append(~symbols.index(d))
        else:
            return t.dtype, None
    return t.dtype, tuple(pattern)


def _spell(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class _CppyyBinding:
    """The JIT's binding: the C++ Session declared to Cling, called through PyROOT (cppyy).

    Buffers go as typed pointers, except those cppyy cannot pass (``by_address_types``: ``int8_t *`` reads as a
    C string, the 16-bit floats have no numpy view), which go as addresses cast back in C++; outputs sized
    at run time go as C++ vectors owned here (reused: no allocation once large enough).
    """

    def __init__(self, code: GeneratedCode, namespace: str, weights: Optional[Path]):
        from ._root import root
        from .targets._cxx.c_abi import runtime_sized
        from .targets._cxx.cpp import cpp_type

        self.name = code.name
        cls = getattr(root(), namespace).Session
        try:
            self._cpp = cls(str(weights)) if weights is not None else cls()
        except Exception as exc:
            raise SofieError(f"model {code.name!r}: creating the C++ Session failed: {_cpp_message(exc)}") from None
        self._n_dims = len(code.symbols)
        symbols = [orig for orig, _ in code.symbols]
        self._outputs = [(t.dtype, _shape_function(symbols + list(code.runtime_dims), t.shape)) for _, t in code.outputs]
        self._vectors = {k: root().std.vector[cpp_type(code.outputs[k][1].dtype)]() for k in runtime_sized(code)}
        self._n_runtime = len(code.runtime_dims)
        self._symbols, self._constraints = symbols, list(code.constraints)
        self._specs = [input_spec(t.info(n), tuple(symbols)) for n, t in code.inputs]
        self._call = _adapter(code, namespace, self._cpp, self._vectors)

    def direct(self, checked_infer: Callable[..., Any]) -> None:
        """No call path of its own: ``Session.infer`` calls :meth:`fast`, then the checked path."""
        return None

    def fast(self, *arrays: Any) -> Any:
        """The outputs when every array is a C-contiguous ndarray that fits its input; else NotImplemented."""
        dims = _fast_dims(self._specs, self._n_dims, arrays)
        return NotImplemented if dims is None else self.run(dims, arrays)

    def run(self, dims: list[int], arrays: Any) -> Any:
        self._check_constraints(dims)
        unknown = [0] * self._n_runtime  # the shapes of outputs allocated here do not use them
        outputs = [None if k in self._vectors else np.empty(shape(*dims, *unknown), dtype=dtype)
                   for k, (dtype, shape) in enumerate(self._outputs)]
        try:
            self._call(dims, arrays, outputs)
        except Exception as exc:
            message = _cpp_message(exc)
            kind, _, text = message.partition(": ")
            value = kind == "invalid_argument"
            raise failure(self.name, value, text if value else message) from None
        if self._vectors:
            runtime = [self.runtime_dim(k) for k in range(self._n_runtime)]
            for k, vec in self._vectors.items():
                dtype, shape = self._outputs[k]
                outputs[k] = _from_vector(vec, dtype).reshape(shape(*dims, *runtime))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _check_constraints(self, dims: list[int]) -> None:
        """The conditions on the dims that the C++ checks too, checked before the output shapes are computed
        from them (this binding allocates the outputs in Python)."""
        if not self._constraints:
            return
        import sympy

        values = {sympy.Symbol(s, integer=True, nonnegative=True): v for s, v in zip(self._symbols, dims)}
        for c in self._constraints:
            if c.condition.free_symbols <= values.keys() and not bool(c.condition.subs(values)):
                raise ShapeError(f"model {self.name!r}: {c.message} (dims: "
                                 f"{', '.join(f'{k} = {v}' for k, v in values.items())})")

    def runtime_dim(self, k: int) -> int:
        return int(self._cpp.runtime_dim(k))

    def profile_ns(self) -> list[float]:
        return list(self._cpp.profile_ns())

    def profile_reset(self) -> None:
        self._cpp.profile_reset()


def jit_session(code: GeneratedCode, namespace: str, weights: Optional[Path], folder: Optional[Path]) -> Session:
    """The Session of a header declared to Cling (``namespace::Session``)."""
    from .targets._cxx.c_abi import interface_of

    return Session(interface_of(code, namespace), _CppyyBinding(code, namespace, weights), "jit", weights, folder,
                   code)


def _fast_dims(specs: list, n_dims: int, arrays: tuple) -> Optional[list[int]]:
    """The dim values when every array is a C-contiguous ndarray that fits its input; else None.

    Each input's spec lists per axis a fixed size (>= 0) or the complement (~k) of the index of the dim it binds.
    """
    if len(arrays) != len(specs):
        return None
    dims = [-1] * n_dims
    for (dtype, pattern), a in zip(specs, arrays):
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
    return [max(d, 0) for d in dims]


def _from_vector(vec: Any, dtype: np.dtype) -> np.ndarray:
    """A copy of a C++ vector's elements (std::vector<bool> has no contiguous buffer)."""
    from .ir.dtypes import STORAGE_TYPES

    n = int(vec.size())
    if dtype == np.bool_:
        return np.array([bool(v) for v in vec], dtype=np.bool_)
    if dtype in STORAGE_TYPES and n:  # cppyy gives a pointer to class objects, not a buffer: read the bits
        import cppyy

        bits = (ctypes.c_uint8 * (n * dtype.itemsize)).from_address(cppyy.ll.addressof(vec.data()))
        return np.ctypeslib.as_array(bits).copy().view(dtype)
    return np.frombuffer(vec.data(), dtype=dtype, count=n).copy() if n else np.empty(0, dtype)


def _adapter(code: GeneratedCode, namespace: str, cpp: Any, vectors: dict[int, Any]) -> Callable[[list, list, list], None]:
    """``infer`` through a free function declared to Cling: ``call(dims, inputs, outputs)``.

    cppyy calls a free function with one signature several times faster than
    the overloaded member ``Session::infer``, which it resolves on each call.
    Buffers go as typed pointers, except those cppyy cannot pass (``by_address_types``:
    ``int8_t *`` reads as a C string, the storage types (16-bit floats, narrow types) have no numpy view),
    which go as addresses cast back in C++; outputs sized at run time
    (``vectors``) go as the C++ vectors they are.
    """
    from ._root import declare, root
    from .ir.dtypes import STORAGE_TYPES
    from .targets._cxx.cpp import cpp_type

    by_address_types = (np.dtype(np.int8), *STORAGE_TYPES)  # see _CppyyBinding
    dims = [f"size_t d{k}" for k in range(len(code.symbols))]
    params, args, by_address = [], [], []
    n_in = len(code.inputs)
    for k, (const, (_, t)) in enumerate([(True, io) for io in code.inputs] + [(False, io) for io in code.outputs]):
        ptr = f"{'const ' if const else ''}{cpp_type(t.dtype)} *"
        if k - n_in in vectors:
            params.append(f"std::vector<{cpp_type(t.dtype)}> &p{k}")
            args.append(f"p{k}")
        elif t.dtype in by_address_types:
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


def _shape_function(symbols: list[str], shape: tuple):
    """Python function of the dim values (``symbols``, by name) giving a concrete output shape."""
    if all(isinstance(d, int) for d in shape):
        fixed = tuple(shape)
        return lambda *_: fixed
    import sympy

    f = sympy.lambdify([sympy.Symbol(s, integer=True, nonnegative=True) for s in symbols], list(shape), modules="math")
    return lambda *v: tuple(int(d) for d in f(*v))


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
