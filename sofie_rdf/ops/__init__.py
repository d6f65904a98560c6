"""Operators: one module per family, each registering its classes on import.

Adding an operator means adding (or extending) one module here and listing it
below; nothing else in the package changes.
"""

from . import (  # noqa: F401  (registration)
    activations,
    attention,
    bitwise,
    control,
    conv,
    conv_extra,
    einsum,
    elementwise,
    fused,
    gemm,
    indexing,
    kvcache,
    linalg,
    logic,
    loss,
    lrn,
    misc,
    ml,
    movement,
    normalization,
    pad,
    pool,
    qlinear,
    qonnx,
    quantized,
    recurrent,
    reduce,
    reinterpret,
    resize,
    roi,
    sampling,
    select,
    shape,
    signal,
    softmax,
    sort,
    space,
    text,
    training,
    transformer,
    trees,
)
from .base import Op
from .registry import check_supported, lookup, make_node, op_for, register, registered_op_types, unsupported_nodes

__all__ = ["Op", "check_supported", "lookup", "make_node", "op_for", "register", "registered_op_types", "unsupported_nodes"]
