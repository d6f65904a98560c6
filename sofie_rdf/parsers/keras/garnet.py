"""hls4ml's GarNet and GarNetStack layers (``hls4ml/contrib/garnet.py``) read from Keras 2 files.

GarNet (Qasim et al. 2019, hls4ml's L1 calorimeter example) is a custom tf.keras 2 layer, so a file holding
one names a class Keras 3 does not have.  :mod:`.legacy` builds it here as :class:`Hls4mlGarNet` layers (one
class for both: a GarNet is a stack of one), which compute in ``keras.ops`` what hls4ml's ``call`` computes,
so the Keras model the reader rebuilds runs; the converter writes the same computation as ONNX operators.

Per sublayer, on vertex data ``x`` (batch, V, D) with a vertex mask ``m`` (batch, V, 1):

* ``f = FLR(x)`` (batch, V, P), ``d = S(x)`` (batch, V, A): two dense transforms;
* ``w = m * exp(-d^2)``, the weight of each vertex for each of the A aggregators;
* ``a[s] = mean over the V vertices of w[v, s] f[v]`` (batch, A, P), or their sum divided by the vertex
  count with ``mean_by_nvert``; masked vertices weigh 0, but count in V;
* ``u[v] = (w[v, s] a[s]) over s`` flattened (batch, V, A * P), then ``m * act(Fout(u))``.

The mask comes from the vertex-count input (``input_format`` "xn": vertex ``v`` is kept where ``v < int(n)``;
"xen": the energies are appended to the features first) or from a non-zero fourth feature ("x").  ``collapse``
reduces the vertex axis at the end (mean, sum, max, or none).  Where hls4ml's code computes something other
than its description, this module computes what hls4ml's does, as a model trained with it expects:

* GarNet applies ``output_activation`` twice (as Fout's activation, then as an Activation sublayer);
  GarNetStack once;
* ``collapse="mean"`` with ``mean_by_nvert`` divides the vertex sum by ``mean_by_nvert`` itself (True: 1);
* with input_format "x", the vertex count ``mean_by_nvert`` divides by is the sum of the masks of the whole
  batch (``K.sum(vertex_mask)``): one event's output then depends on the others in its batch.

Refused, naming the option: ``simplified=False`` (hls4ml builds Fout for D + A*P + A inputs and feeds it
D + 2*A*(P+A) + A, so its own layer cannot run) and ``quantize_transforms`` (its quantizers' total_bits and
int_bits are not in the saved configuration: hls4ml's own ``from_config`` cannot rebuild them either).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .builder import GraphBuilder, Tensor, cast, weight
from .core import ACTIVATIONS, activation
from .registry import converts

# hls4ml's class names in a Keras 2 configuration -> whether the class is the stacked one.
CLASSES = {"GarNet": False, "GarNetStack": True}
# Configuration keys hls4ml's get_config writes (Keras's common ones included); any other is refused.
_KEYS = frozenset({"name", "trainable", "dtype", "simplified", "collapse", "input_format", "output_activation",
                   "quantize_transforms", "mean_by_nvert", "n_aggregators", "n_filters", "n_propagate",
                   "n_sublayers"})
_FORMATS = ("x", "xn", "xen")
_COLLAPSES = (None, "mean", "sum", "max")


@dataclass(frozen=True)
class GarNetSpec:
    """What a GarNet or GarNetStack configuration says, checked; one entry per sublayer in the tuples."""

    stacked: bool
    propagate: tuple[int, ...]
    aggregators: tuple[int, ...]
    filters: tuple[int, ...]
    collapse: Optional[str]
    input_format: str
    output_activation: str  # a Keras activation's name; "linear" for none
    mean_by_nvert: Any  # hls4ml divides by it in collapse="mean" (True: 1), so a number is kept as it is

    @property
    def activations(self) -> int:
        """How many times hls4ml applies ``output_activation`` (GarNet's Fout has it as well)."""
        return 1 if self.stacked else 2


def spec_of(cls: str, config: dict) -> GarNetSpec:
    """The checked specification of hls4ml's layer ``cls`` from its saved configuration (ValueError naming the
    option hls4ml's layer cannot compute, or that is not one it writes)."""
    stacked = CLASSES[cls]
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise ValueError(f"{cls} configuration keys {unknown} are not ones hls4ml's {cls}.get_config writes")
    quantized = config.get("quantize_transforms", False)
    if (quantized is not None) if stacked else bool(quantized):
        raise ValueError(
            f"quantize_transforms={quantized!r}: hls4ml's {cls} then quantizes FLR, Fout and the output with "
            "QKeras quantizers of total_bits and int_bits, which its get_config does not save, so they cannot "
            f"be rebuilt from the file (hls4ml's own from_config fails too); only the float {cls} "
            f"(quantize_transforms={'None' if stacked else 'False'}) is supported")
    if not config.get("simplified", False):
        raise ValueError(
            "simplified=False: hls4ml's GarNet builds its Fout transform for D + A*P + A inputs but feeds it "
            "D + 2*A*(P+A) + A (the max and mean aggregates of P+A features), so hls4ml's own layer cannot run "
            "it; only simplified=True is supported")
    sizes = [config.get(key) for key in ("n_propagate", "n_aggregators", "n_filters")]
    sizes = [list(s) if isinstance(s, (list, tuple)) else [s] for s in sizes]
    if not stacked and any(len(s) != 1 for s in sizes):
        raise ValueError("GarNet's n_propagate, n_aggregators and n_filters are single integers")
    if len({len(s) for s in sizes}) != 1 or not sizes[0]:
        raise ValueError(f"{cls}'s n_propagate, n_aggregators and n_filters are lists of one length, got {sizes}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for s in sizes for v in s):
        raise ValueError(f"{cls}'s n_propagate, n_aggregators and n_filters must be positive integers, got {sizes}")
    collapse, input_format = config.get("collapse"), config.get("input_format", "xn")
    if collapse not in _COLLAPSES:
        raise ValueError(f"collapse={collapse!r} is not one of {list(_COLLAPSES)} (hls4ml refuses it too)")
    if input_format not in _FORMATS:
        raise ValueError(f"input_format={input_format!r} is not one of {list(_FORMATS)}")
    by_nvert = config.get("mean_by_nvert", False)
    if not isinstance(by_nvert, (bool, int, float)):
        raise ValueError(f"mean_by_nvert={by_nvert!r} is neither a bool nor a number")
    act = config.get("output_activation", "tanh") or "linear"  # None: no activation, as Keras reads it
    if act != "linear" and act not in ACTIVATIONS:
        raise ValueError(f"output_activation={act!r} is not a Keras activation this front end writes "
                         f"(known: {', '.join(sorted(ACTIVATIONS))})")
    return GarNetSpec(stacked, *map(tuple, sizes), collapse, input_format, act, by_nvert)


def make_layer(cls: str, config: dict, keras: Any) -> Any:
    """The Keras 3 layer computing hls4ml's ``cls`` (GarNet or GarNetStack) as its configuration says."""
    return _layer_class(keras)(spec_of(cls, config), name=config.get("name"), dtype=config.get("dtype", "float32"))


@functools.cache
def _layer_class(keras: Any) -> type:
    """:class:`Hls4mlGarNet`, defined once Keras is imported (the front end imports it lazily)."""
    ops = keras.ops

    class Hls4mlGarNet(keras.layers.Layer):
        """hls4ml's GarNet / GarNetStack on Keras 3: its weights in hls4ml's saved order (FLR, S, Fout kernel
        and bias per sublayer) and its ``call`` in ``keras.ops``, step for step."""

        def __init__(self, spec: GarNetSpec, **kwargs: Any):
            super().__init__(**kwargs)
            self.spec = spec
            self.transforms: list[list[Any]] = []

        def build(self, input_shape: Any) -> None:
            width = _data_width(self.spec, [tuple(s) for s in _as_list(input_shape)])
            for k, (p, a, f) in enumerate(zip(self.spec.propagate, self.spec.aggregators, self.spec.filters)):
                tag = str(k) if self.spec.stacked else ""
                shapes = {"FLR": (width, p), "S": (width, a), "Fout": (a * p, f)}
                self.transforms.append([self.add_weight(shape=s, name=f"{n}{tag}_{part}", initializer="zeros")
                                        for n, (i, o) in shapes.items() for part, s in (("kernel", (i, o)),
                                                                                       ("bias", (o,)))])
                width = f

        def call(self, inputs: Any) -> Any:
            spec = self.spec
            data, num_vertex, mask = self._unpack(_as_list(inputs))
            for flr_k, flr_b, s_k, s_b, out_k, out_b in self.transforms:
                features = ops.matmul(data, flr_k) + flr_b
                distance = ops.matmul(data, s_k) + s_b
                edges = mask * ops.exp(-ops.square(distance))
                product = ops.expand_dims(ops.transpose(edges, (0, 2, 1)), 3) * ops.expand_dims(features, 1)
                a, p = edges.shape[-1], features.shape[-1]
                if spec.mean_by_nvert:
                    aggregated = ops.reshape(ops.reshape(ops.sum(product, axis=2), (-1, a * p)) / num_vertex,
                                             (-1, a, p))
                else:
                    aggregated = ops.mean(product, axis=2)
                updated = ops.expand_dims(edges, 3) * ops.expand_dims(aggregated, 1)
                y = ops.matmul(ops.reshape(updated, (-1, ops.shape(edges)[1], a * p)), out_k) + out_b
                for _ in range(spec.activations):
                    y = keras.activations.get(spec.output_activation)(y)
                data = mask * y
            if spec.collapse == "mean":
                return ops.sum(data, axis=1) / spec.mean_by_nvert if spec.mean_by_nvert else ops.mean(data, axis=1)
            if spec.collapse == "sum":
                return ops.sum(data, axis=1)
            return ops.max(data, axis=1) if spec.collapse == "max" else data

        def _unpack(self, inputs: list) -> tuple[Any, Any, Any]:
            if self.spec.input_format == "x":
                data = inputs[0]
                mask = ops.cast(ops.not_equal(data[..., 3:4], 0.0), "float32")
                return data, ops.sum(mask), mask
            if self.spec.input_format == "xn":
                data, num_vertex = inputs
            else:
                data_x, energies, num_vertex = inputs
                data = ops.concatenate([data_x, ops.reshape(energies, (-1, energies.shape[1], 1))], axis=-1)
            indices = ops.expand_dims(ops.arange(0, ops.shape(data)[1], dtype="int32"), 0)
            mask = ops.expand_dims(ops.cast(ops.less(indices, ops.cast(num_vertex, "int32")), "float32"), -1)
            return data, ops.cast(num_vertex, "float32"), mask

        def compute_output_shape(self, input_shape: Any) -> tuple:
            data = tuple(_as_list(input_shape)[0])
            return data[:2] + (self.spec.filters[-1],) if self.spec.collapse is None else (data[0], self.spec.filters[-1])

    return Hls4mlGarNet


def _as_list(value: Any) -> list:
    """A layer's inputs (or their shapes) as a list: one tensor (or shape) for input_format "x", a list otherwise.
    A shape is a tuple of ints and Nones, so a tuple of anything else is a sequence of inputs."""
    if isinstance(value, list):
        return value
    if isinstance(value, tuple) and value and not isinstance(value[0], (int, type(None))):
        return list(value)
    return [value]


def _data_width(spec: GarNetSpec, shapes: Sequence[tuple]) -> int:
    """The feature width D of the vertex data, after checking the inputs the input format takes."""
    expected = {"x": 1, "xn": 2, "xen": 3}[spec.input_format]
    if len(shapes) != expected:
        raise ValueError(f"input_format={spec.input_format!r} takes {expected} input(s), got {len(shapes)}")
    data = shapes[0]
    if len(data) != 3 or data[2] is None:
        raise ValueError(f"GarNet's vertex data must be (batch, vertices, features) with known features, got {data}")
    if spec.input_format == "x" and data[2] < 4:
        raise ValueError(f"input_format='x' reads the vertex mask from feature 3, but the data has {data[2]} features")
    if spec.input_format != "x" and tuple(shapes[-1][1:]) != (1,):
        raise ValueError(f"the vertex count input must be (batch, 1), got {shapes[-1]} (hls4ml compares it with "
                         "each vertex index per event)")
    if spec.input_format == "xen":
        energies = shapes[1]
        if len(energies) not in (2, 3) or tuple(energies[1:2]) != tuple(data[1:2]) or energies[2:] not in ((), (1,)):
            raise ValueError(f"input_format='xen' takes energies (batch, vertices) beside the data {data}, "
                             f"got {energies}")
        return data[2] + 1
    return data[2]


@converts("Hls4mlGarNet")
def _garnet(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    """hls4ml's GarNet / GarNetStack (see the module's docstring) as ONNX operators."""
    spec = layer.spec
    data, num_vertex, mask = _unpack(b, spec, inputs, str(call.input_tensors[-1].dtype))
    shape = list(inputs[0].shape[:2])
    divisor = _vertices(b, inputs[0], np.float32) if not spec.mean_by_nvert else \
        num_vertex if spec.input_format == "x" else b.reshape(num_vertex, [-1, 1, 1])
    for flr_k, flr_b, s_k, s_b, out_k, out_b in ([weight(v) for v in t] for t in layer.transforms):
        a, p = s_k.shape[1], flr_k.shape[1]
        features = _dense(b, data, flr_k, flr_b, "FLR")
        distance = _dense(b, data, s_k, s_b, "S")
        edges = b.add("Mul", [mask, b.add("Exp", [b.add("Neg", [b.add("Mul", [distance, distance])])])], hint="edges")
        sums = b.add("MatMul", [b.add("Transpose", [edges], {"perm": [0, 2, 1]}), features], hint="aggregated_sum")
        aggregated = b.add("Div", [sums, divisor], hint="aggregated")
        updated = b.add("Mul", [b.add("Unsqueeze", [edges, b.ints([3], "axes")]),
                                b.add("Unsqueeze", [aggregated, b.ints([1], "axes")])], hint="updated")
        y = _dense(b, b.reshape(updated, [0, 0, a * p]), out_k, out_b, "Fout")
        for _ in range(spec.activations):
            y = activation(b, Tensor(y, tuple(shape) + (out_k.shape[1],)), spec.output_activation)
        data = b.add("Mul", [mask, y], hint="masked")
    return _collapse(b, spec, data)


def _dense(b: GraphBuilder, x: str, kernel: np.ndarray, bias: np.ndarray, hint: str) -> str:
    return b.add("Add", [b.add("MatMul", [x, b.const(kernel, f"{hint}_kernel")]), b.const(bias, f"{hint}_bias")],
                 hint=hint)


def _unpack(b: GraphBuilder, spec: GarNetSpec, inputs: list[Tensor], dtype: str) -> tuple[str, str, str]:
    """(vertex data, vertex count as float32, vertex mask (batch, V, 1)) as hls4ml's ``_unpack_input``;
    ``dtype``: the Keras dtype of the vertex-count input."""
    if spec.input_format == "x":
        data = inputs[0].name
        fourth = b.add("Slice", [data, b.ints([3], "starts"), b.ints([4], "ends"), b.ints([2], "axes")])
        mask = b.add("Cast", [b.add("Not", [b.add("Equal", [fourth, b.const(0.0, "zero")])])], {"to": 1}, hint="mask")
        return data, b.add("ReduceSum", [mask], {"keepdims": 0}, hint="num_vertex"), mask
    if spec.input_format == "xn":
        data, count = inputs[0].name, inputs[1]
    else:
        # (batch, V, 1); an open V is copied from the energies' axis 1 (ONNX Reshape's 0)
        energies, count = b.reshape(inputs[1].name, [-1, inputs[0].shape[1] or 0, 1]), inputs[2]
        data = b.add("Concat", [inputs[0].name, energies], {"axis": -1}, hint="data")
    vertices = b.add("Range", [b.const(0, "start", np.int32), _vertices(b, inputs[0], np.int32),
                               b.const(1, "delta", np.int32)], hint="vertex_index")
    kept = b.add("Less", [vertices, cast(b, count.name, dtype, "int32")])
    mask = b.add("Unsqueeze", [b.add("Cast", [kept], {"to": 1}), b.ints([-1], "axes")], hint="mask")
    return data, cast(b, count.name, dtype, "float32"), mask


def _vertices(b: GraphBuilder, data: Tensor, dtype: Any) -> str:
    """V, the vertex count of the data's shape (what K.mean over the vertices divides by, the end of the vertex
    indices): a constant where Keras knows it."""
    if data.shape[1] is not None:
        return b.const(data.shape[1], "n_vertices", dtype)
    size = b.add("Gather", [b.add("Shape", [data.name]), b.const(1, "axis", np.int64)], {"axis": 0})
    return b.add("Cast", [size], {"to": 6 if dtype is np.int32 else 1})


def _collapse(b: GraphBuilder, spec: GarNetSpec, data: str) -> str:
    axes = b.ints([1], "axes")
    if spec.collapse == "mean":
        if spec.mean_by_nvert:
            return b.add("Div", [b.add("ReduceSum", [data, axes], {"keepdims": 0}),
                                 b.const(float(spec.mean_by_nvert), "mean_by_nvert")], hint="collapsed")
        return b.add("ReduceMean", [data, axes], {"keepdims": 0}, hint="collapsed")
    if spec.collapse in ("sum", "max"):
        return b.add("ReduceSum" if spec.collapse == "sum" else "ReduceMax", [data, axes], {"keepdims": 0},
                     hint="collapsed")
    return data
