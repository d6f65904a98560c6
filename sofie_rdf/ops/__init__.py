"""Operators: one module per family, each registering its classes on import.

Adding an operator means adding (or extending) one module here and listing it
below; nothing else in the package changes.
"""

from . import (  # noqa: F401  (registration)
    activations,
    attention,
    bitwise,
    conv,
    einsum,
    elementwise,
    gemm,
    indexing,
    linalg,
    logic,
    loss,
    lrn,
    misc,
    movement,
    normalization,
    pad,
    pool,
    recurrent,
    reduce,
    resize,
    sampling,
    select,
    shape,
    signal,
    softmax,
    sort,
    space,
    transformer,
)
from .base import Op
from .registry import check_supported, lookup, make_node, register, registered_op_types, unsupported_nodes

__all__ = ["Op", "check_supported", "lookup", "make_node", "register", "registered_op_types", "unsupported_nodes"]
