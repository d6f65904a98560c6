"""Operators: one module per family, each registering its classes on import.

Adding an operator means adding (or extending) one module here and listing it
below; nothing else in the package changes.
"""

from . import (  # noqa: F401  (registration)
    activations,
    conv,
    einsum,
    elementwise,
    gemm,
    indexing,
    logic,
    lrn,
    movement,
    normalization,
    pad,
    pool,
    recurrent,
    reduce,
    resize,
    select,
    shape,
    softmax,
    sort,
    space,
)
from .base import Op
from .registry import check_supported, lookup, make_node, register, registered_op_types, unsupported_nodes

__all__ = ["Op", "check_supported", "lookup", "make_node", "register", "registered_op_types", "unsupported_nodes"]
