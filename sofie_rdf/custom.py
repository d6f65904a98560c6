"""User-defined operators: plug in an operator no front end knows, in Python or C++.

A user operator is a first-class op: a subclass of :class:`~sofie_rdf.ops.base.Op` in the
same registry as ours, found by ``(domain, op_type)`` for every node any front end builds
(ONNX files, ``.root`` storage, Keras converters).  Three ways in:

* :func:`register_op`: a class decorator for a full :class:`Op` (``infer`` returns the output
  :class:`TensorType` list, ``emit(ctx)`` returns C++; ``attr_defaults`` declares the attributes).
* :func:`custom_op` with ``body=``: a C++ body plus a Python ``output_shape`` function; the body
  runs inside a lambda whose parameters are, per input ``i``, ``const T* xi, size_t xi_size,
  const size_t* xi_shape`` and per output ``j``, ``T* yj, size_t yj_size, const size_t* yj_shape``
  (``T`` the element type of that tensor); every attribute is a ``const`` local of its name.
* :func:`custom_op` with ``header=``, ``function=``: the generated code ``#include``s the header and calls
  ``void function(const T* x0, size_t x0_size, ..., T* y0, size_t y0_size, ..., attributes...)``
  (sizes are element counts; attributes in declaration order: ``float``, ``int64_t``, ``bool``,
  ``const char*``, and lists as a ``const float*`` or ``const int64_t*`` followed by its ``size_t`` length).
  A ``header=`` may also come with ``body=``, for helpers the body calls.

Outputs are not zeroed and never share memory with inputs.  Attributes are declared with
defaults (``attrs={"alpha": 1.0, "axis": -1}``); the default's Python type is the attribute's
type, and nodes with unknown or mistyped attributes are refused when the model is read.

The header travels with the generated code: ``model.generate(outdir)`` copies it next to
``<Name>.hxx``, and ``sr.compile`` into its cache folder.  Its text is part of the code's
digest, so editing it recompiles the model.  It must be self-contained (system includes only); a guard
made of its text's hash includes it once per translation unit, so several models may share it.

Registering an ``(domain, op_type)`` that is already taken (a built-in op or an earlier
registration) is refused unless ``override=True``; :func:`unregister_op` restores what was
there before.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Sequence, Union

import numpy as np
import sympy

from .errors import SofieError
from .ir import TensorType
from .ir.dims import as_dim
from .ops.base import Op
from .ops.registry import INTERNAL_DOMAIN, replace_versions, versions_of
from .targets._cxx.context import NodeContext, cpp_literal
from .targets._cxx.names import string_literal
from .targets.cpu.library import HEADER_NAME

__all__ = ["FunctionOp", "Op", "OperatorRegistrationError", "TensorType", "custom_op", "keras_layer", "register_op",
           "unregister_keras_layer", "unregister_op"]

OutputShape = Union[None, Sequence, TensorType, Callable[[list[Optional[TensorType]], dict[str, Any]], Any]]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FUNCTION = re.compile(r"(::)?[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*")
# Names the lambda of a body-form op declares itself (and C++ words an attribute cannot be called).
_PARAMETER = re.compile(r"[xy][0-9]+(_size|_shape)?")
_CPP_WORDS = frozenset(
    "alignas alignof and asm auto bool break case catch char class const constexpr continue decltype default delete "
    "do double else enum explicit export extern false float for friend goto if inline int long mutable namespace new "
    "noexcept not nullptr operator or private protected public register return short signed sizeof static struct "
    "switch template this throw true try typedef typeid typename union unsigned using virtual void volatile while "
    "size_t int64_t std".split())

# (domain, op_type) -> the registrations each user registration replaced, most recent last.
_SHADOWED: dict[tuple[str, str], list[list[type]]] = {}


class OperatorRegistrationError(SofieError, ValueError):
    """A user operator cannot be registered (taken name, bad header, ...)."""


# ---- the registry side ---------------------------------------------------------------------

def _key(op_type: str, domain: str) -> tuple[str, str]:
    return ("" if domain == "ai.onnx" else domain, op_type)


def _install(cls: type[Op], override: bool) -> None:
    """Put ``cls`` in the registry in place of every version registered for its op type."""
    key = _key(cls.op_type, cls.domain)
    qualified = f"{key[0]}::{key[1]}" if key[0] else key[1]
    if not _IDENTIFIER.fullmatch(cls.op_type):
        raise OperatorRegistrationError(f"op_type {cls.op_type!r} is not a plain identifier")
    if key[0] == INTERNAL_DOMAIN:
        raise OperatorRegistrationError(f"domain {INTERNAL_DOMAIN!r} is reserved for sofie-rdf's own fused operators")
    previous = versions_of(cls.op_type, cls.domain)
    if previous and not override:
        raise OperatorRegistrationError(
            f"operator {qualified!r} is already registered ({previous[-1].__module__}.{previous[-1].__qualname__}); "
            "pass override=True to replace it")
    _SHADOWED.setdefault(key, []).append(previous)
    cls.strict_attrs = True
    replace_versions(cls.op_type, cls.domain, [cls])


def register_op(op_type: str, domain: str = "", *, since_version: int = 1,
                override: bool = False) -> Callable[[type[Op]], type[Op]]:
    """Class decorator registering an :class:`Op` subclass as ``domain::op_type``.

    The class implements ``infer(inputs) -> [TensorType]`` and ``emit(ctx) -> str`` (C++), and
    may set ``attr_defaults`` (every attribute with its default), ``evaluate`` (numpy, for constant
    folding), ``kernels`` and ``headers`` (paths of user C++ headers to include).  ``since_version``
    is the first opset version of ``domain`` it implements.
    """
    def decorate(cls: type[Op]) -> type[Op]:
        if not (isinstance(cls, type) and issubclass(cls, Op)):
            raise TypeError(f"register_op decorates a subclass of sofie_rdf.Op, not {cls!r}")
        cls.op_type, cls.domain, cls.since_version = op_type, domain, since_version
        cls.headers = tuple(_header_path(h) for h in getattr(cls, "headers", ()))
        _install(cls, override)
        return cls
    return decorate


def unregister_op(op_type: str, domain: str = "") -> None:
    """Remove the latest user registration of ``domain::op_type``, restoring what it replaced (a built-in op)."""
    stack = _SHADOWED.get(_key(op_type, domain))
    if not stack:
        raise OperatorRegistrationError(f"no user operator {op_type!r} is registered in domain {domain!r}")
    replace_versions(op_type, domain, stack.pop())


# ---- the function-based shortcut ----------------------------------------------------------------

class FunctionOp(Op):
    """An operator made by :func:`custom_op`: a C++ body or a call into a user header."""

    output_shape: ClassVar[OutputShape] = None
    reference: ClassVar[Optional[Callable[..., Any]]] = None
    body: ClassVar[str] = ""
    function: ClassVar[str] = ""
    headers: ClassVar[tuple[str, ...]] = ()

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        present = [t for t in inputs if t is not None]
        if not present:
            raise self.error("a custom operator needs at least one input")
        spec = self.output_shape
        result = spec(inputs, dict(self.attrs)) if callable(spec) else spec
        items = [present[0]] * len(self.node.outputs) if result is None else [result] if _is_one(result) else result
        types = [t if isinstance(t, TensorType) else TensorType(present[0].dtype, tuple(as_dim(d) for d in t))
                 for t in items]
        if len(types) != len(self.node.outputs):
            raise self.error(f"output_shape gave {len(types)} output(s) for a node with {len(self.node.outputs)}")
        return [TensorType(t.dtype, t.shape) for t in types]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        if self.reference is None:
            raise NotImplementedError
        out = self.reference(*values, **self.attrs)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def emit(self, ctx: NodeContext) -> str:
        params, args = [], []
        for label, types, pointer, const in (("x", ctx.inputs, ctx.x, "const "), ("y", ctx.outputs, ctx.y, "")):
            for i, t in enumerate(types):
                name = f"{label}{i}"
                params += [f"{const}{ctx.ctype(t.dtype) if t else 'float'}* {name}", f"size_t {name}_size"]
                args += [pointer(i) if t else "nullptr", ctx.dim(t.size) if t else "0"]
                if self.body:
                    params.append(f"const size_t* {name}_shape")
                    args.append(ctx.array(f"shape_{name}", t.shape) if t else "nullptr")
        lines = [_attribute_declaration(name, value, self.attr_defaults[name]) for name, value in self.attrs.items()]
        lines.append(self.body.strip() if self.body else f"{self.function}({', '.join(self._call_arguments(ctx))});")
        inner = "\n".join("   " + line for text in lines for line in text.splitlines())
        return f"[]({', '.join(params)}) {{\n{inner}\n}}({', '.join(args)});"

    def _call_arguments(self, ctx: NodeContext) -> list[str]:
        names = [f"{label}{i}{suffix}" for label, types in (("x", ctx.inputs), ("y", ctx.outputs))
                 for i in range(len(types)) for suffix in ("", "_size")]
        for name, default in self.attr_defaults.items():
            names += [name, f"size_t({len(self.attrs[name])})"] if isinstance(default, (list, tuple)) else [name]
        return names


def _is_one(result: Any) -> bool:
    """Whether ``output_shape`` gave one output (a TensorType or a shape) rather than a list of them."""
    return isinstance(result, TensorType) or (
        isinstance(result, (tuple, list)) and all(isinstance(d, (int, np.integer, sympy.Expr, str)) for d in result))


def _attribute_declaration(name: str, value: Any, default: Any) -> str:
    """``const <type> name = <value>;`` with the C++ type the default's Python type stands for."""
    if isinstance(default, (list, tuple)):
        dtype = np.float32 if any(isinstance(v, float) for v in default) else np.int64
        items = ", ".join(cpp_literal(v, dtype) for v in value) or "0"
        return f"const {'float' if dtype is np.float32 else 'int64_t'} {name}[] = {{{items}}};"
    if isinstance(default, bool):
        return f"const bool {name} = {cpp_literal(value, np.bool_)};"
    if isinstance(default, str):
        return f"const char* const {name} = {string_literal(value)};"
    if isinstance(default, float):
        return f"const float {name} = {cpp_literal(value, np.float32)};"
    return f"const int64_t {name} = {cpp_literal(value, np.int64)};"


def _check_attributes(attrs: dict[str, Any]) -> None:
    for name, default in attrs.items():
        if not _IDENTIFIER.fullmatch(name) or name in _CPP_WORDS or _PARAMETER.fullmatch(name):
            raise OperatorRegistrationError(f"attribute name {name!r} cannot be a C++ local (reserved or not an identifier)")
        scalar_types = (bool, int, float, str)
        ok = isinstance(default, scalar_types) or (
            isinstance(default, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in default))
        if not ok:
            raise OperatorRegistrationError(
                f"attribute {name!r}: default {default!r} must be a bool, int, float, str or a list of numbers")


def _header_path(header: str | Path) -> str:
    """Absolute path of a user header, whose file name is safe to write in a quoted ``#include``."""
    path = Path(header).expanduser().resolve()
    if not HEADER_NAME.fullmatch(path.name):
        raise OperatorRegistrationError(
            f"header file name {path.name!r} must be letters, digits, '_', '.', '+' or '-' ending in .h, .hh, .hpp or .hxx")
    if not path.is_file():
        raise OperatorRegistrationError(f"header {str(path)!r} does not exist")
    return str(path)


def custom_op(op_type: str, *, domain: str = "", output_shape: OutputShape = None, body: Optional[str] = None,
              header: Optional[str | Path] = None, function: Optional[str] = None,
              attrs: Optional[dict[str, Any]] = None, reference: Optional[Callable[..., Any]] = None,
              since_version: int = 1, override: bool = False) -> type[Op]:
    """Register ``domain::op_type`` from a C++ ``body`` or a ``function`` in a user ``header``; returns its class.

    ``output_shape``: None (every output has input 0's type), a shape, or a function
    ``(inputs: list[TensorType | None], attrs: dict) -> shape | TensorType | list of them``
    (a plain shape takes input 0's dtype; shapes may hold sympy dims).  ``reference``:
    ``fn(*input arrays, **attrs) -> array | tuple`` used to fold constant inputs (optional).
    The C++ each form sees is described in this module's docstring.
    """
    if (body is None) == (function is None):
        raise OperatorRegistrationError(f"custom_op {op_type!r}: give either body= or function= (with header=)")
    if function is not None and (header is None or not _FUNCTION.fullmatch(function)):
        raise OperatorRegistrationError(
            f"custom_op {op_type!r}: function= must be a C++ (qualified) name declared in header=, got {function!r}")
    attrs = dict(attrs or {})
    _check_attributes(attrs)
    namespace = {
        "__doc__": f"User operator {domain + '::' if domain else ''}{op_type} (sofie_rdf.custom_op).",
        "__module__": __name__,
        "op_type": op_type, "domain": domain, "since_version": since_version, "attr_defaults": attrs,
        "output_shape": staticmethod(output_shape) if callable(output_shape) else output_shape,
        "reference": staticmethod(reference) if reference else None,
        "body": body or "", "function": function or "",
        "headers": (_header_path(header),) if header is not None else (),
    }
    cls = type(op_type, (FunctionOp,), namespace)
    _install(cls, override)
    return cls


# ---- Keras layers ---------------------------------------------------------------------------------

def keras_layer(*class_names: str, override: bool = False) -> Callable:
    """Decorator registering ``fn(builder, layer, inputs, call) -> name | [names]`` for Keras layer classes.

    The same converter contract as sofie-rdf's own (``sofie_rdf.parsers.keras.registry``):
    ``builder.add(op_type, inputs, attrs, outputs=1, domain=...)`` emits IR nodes, custom
    operators included.  The Keras class must also be known to Keras to load a ``.keras`` file
    (``keras.saving.register_keras_serializable``).  Replacing a built-in converter needs ``override``.
    """
    from .parsers.keras.registry import add_converter

    def decorate(fn: Callable) -> Callable:
        for name in class_names:
            add_converter(name, fn, override)
        return fn
    return decorate


def unregister_keras_layer(class_name: str) -> None:
    """Remove the latest converter :func:`keras_layer` registered for ``class_name``, restoring the one before."""
    from .parsers.keras.registry import remove_converter

    remove_converter(class_name)
