"""What a caller sees of a model: its inputs and outputs, and the interface of its compiled library.

Light on purpose (numpy only, no sympy): a native Session is built from a library's :class:`Interface`
alone, in a process that never parses the model (``sofie_rdf._native``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

# Version of the C ABI a native library exports (targets/_cxx/c_abi.py) and the JSON describing it.
ABI_VERSION = 1

# How a CPU target may store the weights of the float products (sr.compile(..., weights="bf16"): computed in
# float; targets/cpu/emitters/reduced.py): here, where sr.compile reads it before anything heavy is imported.
WEIGHT_DTYPES = ("float32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class TensorInfo:
    """Public description of a model input or output.

    ``shape`` holds ints for fixed dims and strings for symbolic ones
    (``("N", 7)``), the form users see and write.
    """

    name: str
    dtype: np.dtype
    shape: tuple

    def __repr__(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        return f"TensorInfo({self.name!r}, {self.dtype}, ({dims}{',' if len(self.shape) == 1 else ''}))"


@dataclass(frozen=True)
class Interface:
    """How to call a compiled model: what its C ABI takes and gives, in the order it takes them.

    ``symbols`` are the model's dims in the order ``infer`` takes their values; ``runtime_dims`` those its
    code computes while running; ``runtime_sized`` the outputs sized by them (the library keeps those and
    the caller copies them out after the call).
    """

    name: str
    namespace: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    symbols: tuple[str, ...]
    runtime_dims: tuple[str, ...]
    runtime_sized: tuple[int, ...]
    weights_mode: str
    nodes: int
    profile: bool

    def to_json(self) -> str:
        def tensors(infos: tuple[TensorInfo, ...]) -> list[dict[str, Any]]:
            return [{"name": t.name, "dtype": np.dtype(t.dtype).name, "shape": list(t.shape)} for t in infos]

        return json.dumps({"abi": ABI_VERSION, "name": self.name, "namespace": self.namespace,
                           "inputs": tensors(self.inputs), "outputs": tensors(self.outputs),
                           "symbols": list(self.symbols), "runtime_dims": list(self.runtime_dims),
                           "runtime_sized": list(self.runtime_sized), "weights_mode": self.weights_mode,
                           "nodes": self.nodes, "profile": self.profile}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Interface:
        d = json.loads(text)
        if d.get("abi") != ABI_VERSION:
            raise ValueError(f"C ABI version {d.get('abi')}, this sofie-rdf reads version {ABI_VERSION}")

        def tensors(items: list[dict[str, Any]]) -> tuple[TensorInfo, ...]:
            return tuple(TensorInfo(t["name"], element_type(t["dtype"]), tuple(t["shape"])) for t in items)

        return cls(d["name"], d["namespace"], tensors(d["inputs"]), tensors(d["outputs"]), tuple(d["symbols"]),
                   tuple(d["runtime_dims"]), tuple(d["runtime_sized"]), d["weights_mode"], d["nodes"], d["profile"])


# Type names numpy knows only once ml_dtypes defines them.
_ML_DTYPES = ("bfloat16", "int4", "uint4", "int2", "uint2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
              "float8_e5m2fnuz", "float4_e2m1fn")


def element_type(name: str) -> np.dtype:
    """The numpy dtype of a type name; bfloat16 and the narrow types come from ml_dtypes, imported only when a
    model has them."""
    if name in _ML_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)
