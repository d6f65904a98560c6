"""Operators: one module per family, each registering its classes on import.

Adding an operator means adding (or extending) one module here and listing it
below; nothing else in the package changes.
"""

from . import conv, elementwise, gemm, lrn, movement, normalization, pad, pool, resize, shape, softmax, space  # noqa: F401  (registration)
from .base import Op
from .registry import check_supported, lookup, make_node, register, registered_op_types, unsupported_nodes

__all__ = ["Op", "check_supported", "lookup", "make_node", "register", "registered_op_types", "unsupported_nodes"]
