"""Intermediate representation shared by every front end and back end."""

from .dims import Dim, as_dim, is_static, num_elements, symbol
from .dtypes import dtype_info
from .model import Model, Node, model_name_from
from .tensors import TensorInfo, TensorType

__all__ = [
    "Dim", "Model", "Node", "TensorInfo", "TensorType", "as_dim", "dtype_info",
    "is_static", "model_name_from", "num_elements", "symbol",
]
