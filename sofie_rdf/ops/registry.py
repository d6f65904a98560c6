"""Operator registry and the one node constructor every front end uses.

An operator is a subclass of :class:`~sofie_rdf.ops.base.Op` decorated with
:func:`register`; ONNX-style versioning picks, for a node of opset ``v``, the
class with the highest ``since_version`` not above ``v``.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np
import onnx
import onnx.defs
from onnx import AttributeProto

from ..errors import ModelFormatError, UnsupportedOperatorError
from ..ir import Model, Node

_REGISTRY: dict[tuple[str, str], list[type]] = {}
# Bumped by every registration: a plan made before a user (re)defined an operator is not reused after.
_generation = 0

DEFAULT_DOMAINS = ("", "ai.onnx")
# Nodes the passes make (fused operators); a model file may not contain them.
INTERNAL_DOMAIN = "sofie_rdf"


def _domain_key(domain: str) -> str:
    return "" if domain in DEFAULT_DOMAINS else domain


def register(cls: type) -> type:
    """Class decorator adding an operator implementation to the registry."""
    global _generation
    _generation += 1
    versions = _REGISTRY.setdefault((_domain_key(cls.domain), cls.op_type), [])
    versions[:] = [c for c in versions if c.since_version != cls.since_version] + [cls]
    versions.sort(key=lambda c: c.since_version)
    return cls


def registry_generation() -> int:
    """Changes whenever an implementation is registered (part of the plan cache's key)."""
    return _generation


def lookup(op_type: str, domain: str = "", version: int = 0) -> Optional[type]:
    """Implementation class for a node, or None when unsupported."""
    versions = _REGISTRY.get((_domain_key(domain), op_type))
    if not versions:
        return None
    if version <= 0:
        return versions[-1]
    usable = [c for c in versions if c.since_version <= version]
    return usable[-1] if usable else None


def op_for(node: Node, model: str = "") -> Any:
    """The operator instance computing ``node`` (of model ``model``, named in its errors)."""
    return lookup(node.op_type, node.domain, node.version)(node, model)


def versions_of(op_type: str, domain: str = "") -> list[type]:
    """The implementation classes registered for an op type, oldest version first (a copy)."""
    return list(_REGISTRY.get((_domain_key(domain), op_type), ()))


def replace_versions(op_type: str, domain: str, classes: list[type]) -> None:
    """Make ``classes`` the implementations of an op type (none: unregister it); for ``sofie_rdf.custom``."""
    key = (_domain_key(domain), op_type)
    _REGISTRY.pop(key, None)
    for cls in classes:
        register(cls)


def registered_op_types() -> list[str]:
    """Sorted list of supported op types (``domain::Type`` outside ONNX)."""
    return sorted(t if not d else f"{d}::{t}" for d, t in _REGISTRY)


def unsupported_nodes(model: Model) -> dict[str, list[str]]:
    """Op type -> names of the model's nodes that have no implementation."""
    missing: dict[str, list[str]] = {}
    for node in model.nodes:
        if lookup(node.op_type, node.domain, node.version) is None:
            missing.setdefault(node.qualified_type, []).append(node.name)
    return missing


def check_supported(model: Model) -> None:
    """Raise :class:`UnsupportedOperatorError` listing every unsupported op."""
    missing = unsupported_nodes(model)
    if missing:
        raise UnsupportedOperatorError(model.name, missing)


# ---- node construction ----------------------------------------------------

_PY_TYPES = {
    AttributeProto.FLOAT: (float, int, np.floating, np.integer),
    AttributeProto.INT: (int, np.integer),
    AttributeProto.STRING: (str,),
    AttributeProto.TENSOR: (np.ndarray,),
    AttributeProto.FLOATS: (list, tuple),
    AttributeProto.INTS: (list, tuple),
    AttributeProto.STRINGS: (list, tuple),
}


def _schema(op_type: str, version: int, domain: str) -> Optional[onnx.defs.OpSchema]:
    try:
        return onnx.defs.get_schema(op_type, max(version, 1), _domain_key(domain))
    except onnx.defs.SchemaError:
        return None


def _default_value(attr: onnx.defs.OpSchema.Attribute) -> Any:
    """A schema's default in the form parsers give attribute values (text as str, tensors as arrays)."""
    proto = attr.default_value
    if proto is None or proto.type == AttributeProto.UNDEFINED:
        return None
    value = onnx.helper.get_attribute_value(proto)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    if isinstance(value, (list, tuple)) and proto.type in (AttributeProto.FLOATS, AttributeProto.INTS):
        return list(value)
    if proto.type == AttributeProto.TENSOR:
        return onnx.numpy_helper.to_array(value)
    return value


def make_node(
    op_type: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    attrs: Optional[dict[str, Any]] = None,
    name: str = "",
    domain: str = "",
    version: int = 0,
    model: str = "",
    internal: bool = False,
) -> Node:
    """Build an IR node with every attribute present.

    Defaults come from the ONNX schema of ``op_type`` at ``version`` (or from
    the registered class's ``attr_defaults`` for custom operators); a missing
    required attribute, an attribute the schema does not know or a value of
    the wrong kind raises :class:`ModelFormatError` naming the model and node.
    Only ``internal`` nodes (made by the passes) may use the internal domain,
    so a model file cannot set the attributes the passes reserve.
    """
    node = Node(op_type, list(inputs), list(outputs), dict(attrs or {}), name, domain, version)
    if not node.name:
        node.name = f"{op_type}_{node.outputs[0] if node.outputs else ''}"
    where = f"model {model!r}: {node}"
    if domain == INTERNAL_DOMAIN and not internal:
        raise ModelFormatError(f"{where}: domain {INTERNAL_DOMAIN!r} is reserved for nodes sofie-rdf makes itself")
    schema = _schema(op_type, version, domain)
    if schema is not None:
        unknown = sorted(set(node.attrs) - set(schema.attributes))
        if unknown:
            raise ModelFormatError(f"{where}: unknown attribute(s) {', '.join(map(repr, unknown))} "
                                   f"(not in the ONNX schema of {op_type}-{schema.since_version})")
        for aname, spec in schema.attributes.items():
            if aname in node.attrs:
                expected = _PY_TYPES.get(spec.type)
                if expected and not isinstance(node.attrs[aname], expected):
                    raise ModelFormatError(
                        f"{where}: attribute {aname!r} should be {AttributeProto.AttributeType.Name(spec.type)},"
                        f" got {type(node.attrs[aname]).__name__}"
                    )
                continue
            if spec.required:
                raise ModelFormatError(f"{where}: required attribute {aname!r} is missing")
            default = _default_value(spec)
            if default is not None:
                node.attrs[aname] = default
    cls = lookup(op_type, domain, version)
    if schema is None and getattr(cls, "strict_attrs", False):
        _check_declared_attrs(node, cls.attr_defaults, where)
    for aname, default in getattr(cls, "attr_defaults", {}).items():
        node.attrs.setdefault(aname, default)
    return node


def _check_declared_attrs(node: Node, declared: dict[str, Any], where: str) -> None:
    """Attributes of a user-registered op (no ONNX schema) against the defaults it declares: same names, same kinds.

    A wrong kind is refused here rather than emitted as C++ of the wrong type.
    """
    unknown = sorted(set(node.attrs) - set(declared))
    if unknown:
        raise ModelFormatError(f"{where}: unknown attribute(s) {', '.join(map(repr, unknown))} "
                               f"(declared: {', '.join(map(repr, declared)) or 'none'})")
    for aname, value in node.attrs.items():
        if not _same_kind(value, declared[aname]):
            raise ModelFormatError(f"{where}: attribute {aname!r} should be like {declared[aname]!r}, got {value!r}")


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` fits the kind of ``default`` (ints fit floats; bools and ints interchange, as ONNX
    stores flags as ints)."""
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple)) and (not default or all(_same_kind(v, default[0]) for v in value))
    if isinstance(default, (bool, int, np.integer)):
        return isinstance(value, (bool, int, np.integer))
    if isinstance(default, float):
        return isinstance(value, (float, int, np.floating, np.integer))
    return isinstance(value, type(default))
