"""User-defined operators (sofie_rdf.custom): C++ bodies, user headers, class-based ops,
onnxruntime's com.microsoft ops, collisions with built-ins, .root storage and Keras layers."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from conftest import ATOL, ORT_IR_VERSION, RTOL, ort_run, random_array
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr
from sofie_rdf.ops import lookup

DOMAIN = "test.custom"

# A user kernel library: a smooth clip, called through custom_op(header=, function=).
HEADER = """#pragma once
#include <cmath>
#include <cstddef>

inline void soft_clip(const float* x, size_t n, float* y, size_t, float limit) {
   for (size_t i = 0; i < n; ++i) y[i] = limit * std::tanh(x[i] / limit);
}
"""


@pytest.fixture
def registered():
    """Registrations a test makes, (op_type, domain) appended; undone afterwards so tests stay independent."""
    made: list[tuple[str, str]] = []
    yield made
    for op_type, domain in reversed(made):
        sr.unregister_op(op_type, domain)


def custom_model(nodes, inputs, outputs, initializers=None, name="custom", domains=(DOMAIN,)) -> onnx.ModelProto:
    """ONNX model importing opset 17 and the custom domains; inputs/outputs are (name, shape)."""
    def info(n, shape):
        return helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)

    graph = helper.make_graph(nodes, name, [info(*i) for i in inputs], [info(*o) for o in outputs],
                              [numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()])
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets, ir_version=ORT_IR_VERSION)


def run(model: sr.Model, *xs, backend: str = "jit") -> list[np.ndarray]:
    out = sr.compile(model, backend=backend).infer(*xs)
    return list(out) if isinstance(out, tuple) else [out]


def close(actual, expected) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


# ---- a custom activation in C++ ------------------------------------------------------------------

def soft_clip_model(limit: float) -> sr.Model:
    node = helper.make_node("SoftClip", ["x"], ["y"], domain=DOMAIN, limit=limit)
    return sr.load(custom_model([node], [("x", ["N", 5])], [("y", ["N", 5])], name="soft_clip"))


def test_activation_from_a_cpp_body(registered):
    sr.custom_op("SoftClip", domain=DOMAIN, attrs={"limit": 1.0},
                 body="for (size_t i = 0; i < x0_size; ++i) y0[i] = limit * std::tanh(x0[i] / limit);")
    registered.append(("SoftClip", DOMAIN))
    x = 4 * random_array((3, 5), seed=1)
    close(run(soft_clip_model(2.5), x)[0], 2.5 * np.tanh(x / 2.5))


def test_activation_from_a_user_header(registered, tmp_path):
    header = tmp_path / "my_kernels.h"
    header.write_text(HEADER)
    sr.custom_op("SoftClip", domain=DOMAIN, header=header, function="soft_clip", attrs={"limit": 1.0})
    registered.append(("SoftClip", DOMAIN))
    model = soft_clip_model(3.0)
    x = 6 * random_array((4, 5), seed=2)
    for backend in ("jit", "native"):  # both find the header copied into their cache folder
        close(run(model, x, backend=backend)[0], 3.0 * np.tanh(x / 3.0))
    # a second model including the same header in this process (its guard keeps one definition)
    close(run(soft_clip_model(1.5), x)[0], 1.5 * np.tanh(x / 1.5))
    # model.generate copies the header next to the generated one, which includes it by name
    files = model.generate(tmp_path / "out")
    assert (files.header.parent / "my_kernels.h").read_text() == HEADER
    assert '#include "my_kernels.h"' in files.header.read_text()
    # the header's text is part of the digest: editing it recompiles
    before = model.code().digest
    header.write_text(HEADER.replace("std::tanh", "std::atan"))
    assert model.code().digest != before


WEIGHTED_ROW_SUMS = """
const size_t rows = x0_shape[0], cols = x0_shape[1];
for (size_t r = 0; r < rows; ++r) {
   float s = 0, t = 0;
   for (size_t c = 0; c < cols; ++c) {
      s += weights[c] * x0[r * cols + c];
      t += x1[r * cols + c];
   }
   y0[r] = negate ? -s : s;
   y1[r] = t + offset;
}
"""


def test_body_with_a_shape_function_two_outputs_and_list_attributes(registered):
    sr.custom_op("WeightedRowSums", domain=DOMAIN, body=WEIGHTED_ROW_SUMS,
                 attrs={"weights": [1.0, 1.0, 1.0], "negate": False, "offset": 0},
                 output_shape=lambda inputs, attrs: [inputs[0].shape[:1], inputs[1].shape[:1]])
    registered.append(("WeightedRowSums", DOMAIN))
    node = helper.make_node("WeightedRowSums", ["a", "b"], ["s", "t"], domain=DOMAIN,
                            weights=[0.5, -1.0, 2.0], negate=1, offset=3)
    model = sr.load(custom_model([node], [("a", ["N", 3]), ("b", ["N", 3])], [("s", ["N"]), ("t", ["N"])]))
    assert [o.shape for o in model.outputs] == [("N",), ("N",)]
    a, b = random_array((4, 3), seed=10), random_array((4, 3), seed=11)
    s, t = run(model, a, b)
    close(s, -(a @ np.array([0.5, -1.0, 2.0], np.float32)))
    close(t, b.sum(1) + 3)


@pytest.mark.parametrize("header", ["bad name.h", "x.h\"", "kernels.cpp"])
def test_header_names_are_plain(tmp_path, header):
    with pytest.raises(sr.OperatorRegistrationError, match="header file name"):
        sr.custom_op("Bad", domain=DOMAIN, header=tmp_path / header, function="f")


def test_function_needs_a_header_and_a_name():
    with pytest.raises(sr.OperatorRegistrationError, match="function="):
        sr.custom_op("Bad", domain=DOMAIN, function="f")
    with pytest.raises(sr.OperatorRegistrationError, match="either body= or function="):
        sr.custom_op("Bad", domain=DOMAIN)


# ---- a class-based op: two inputs, two outputs, attributes -----------------------------------------

class SumDiff(sr.Op):
    """y0 = alpha * a + b, y1 = (a - b) * 2**shift: the documented Op contract, emitted as a plain loop."""

    attr_defaults = {"alpha": 1.0, "shift": 0}

    def infer(self, inputs):
        a, b = inputs
        if a.dtype != b.dtype or len(a.shape) != len(b.shape):
            raise self.error(f"inputs differ: {a} and {b}")
        return [sr.TensorType(a.dtype, a.shape), sr.TensorType(a.dtype, a.shape)]

    def evaluate(self, values):
        a, b = values
        return [self.attrs["alpha"] * a + b, (a - b) * 2.0 ** self.attrs["shift"]]

    def emit(self, ctx):
        t = ctx.outputs[0].dtype
        alpha, scale = ctx.literal(self.attrs["alpha"], t), ctx.literal(2.0 ** self.attrs["shift"], t)
        a, b = ctx.x(0), ctx.x(1)
        return (f"for (size_t i_ = 0; i_ < {ctx.dim(ctx.outputs[0].size)}; ++i_) {{\n"
                f"   {ctx.y(0)}[i_] = {alpha} * {a}[i_] + {b}[i_];\n"
                f"   {ctx.y(1)}[i_] = ({a}[i_] - {b}[i_]) * {scale};\n}}")


def sum_diff_model() -> sr.Model:
    node = helper.make_node("SumDiff", ["a", "b"], ["s", "d"], domain=DOMAIN, alpha=0.5, shift=2)
    inputs = [("a", ["N", 3]), ("b", ["N", 3])]
    return sr.load(custom_model([node], inputs, [("s", ["N", 3]), ("d", ["N", 3])], name="sum_diff"))


def sum_diff_check(model: sr.Model) -> None:
    a, b = random_array((4, 3), seed=3), random_array((4, 3), seed=4)
    s, d = run(model, a, b)
    close(s, 0.5 * a + b)
    close(d, (a - b) * 4)


def test_class_based_op_with_two_inputs_two_outputs_and_attributes(registered):
    sr.register_op("SumDiff", domain=DOMAIN)(SumDiff)
    registered.append(("SumDiff", DOMAIN))
    sum_diff_check(sum_diff_model())


def test_declared_attributes_are_checked(registered):
    sr.register_op("SumDiff", domain=DOMAIN)(SumDiff)
    registered.append(("SumDiff", DOMAIN))
    for attrs, message in (({"gamma": 1.0}, "unknown attribute"), ({"shift": 1.5}, "should be like 0")):
        node = helper.make_node("SumDiff", ["a", "b"], ["s", "d"], domain=DOMAIN, **attrs)
        with pytest.raises(sr.ModelFormatError, match=message):
            sr.load(custom_model([node], [("a", [2]), ("b", [2])], [("s", [2]), ("d", [2])]))


def test_stored_custom_op_round_trips_and_needs_registering(registered, tmp_path):
    sr.register_op("SumDiff", domain=DOMAIN)(SumDiff)
    registered.append(("SumDiff", DOMAIN))
    sum_diff_model().save(tmp_path / "models.root", key="sd")
    sum_diff_check(sr.load(f"{tmp_path / 'models.root'}:sd"))
    sr.unregister_op("SumDiff", DOMAIN)
    registered.clear()
    with pytest.raises(sr.UnsupportedOperatorError, match=f"{DOMAIN}::SumDiff"):
        sr.load(f"{tmp_path / 'models.root'}:sd")


# ---- collisions with built-ins, unknown domains ----------------------------------------------------------

def test_collision_with_a_builtin_is_refused_unless_overriding(registered):
    builtin = lookup("Relu", "", 17)
    with pytest.raises(sr.OperatorRegistrationError, match="already registered.*override=True"):
        sr.custom_op("Relu", body="y0[0] = x0[0];")
    assert lookup("Relu", "", 17) is builtin
    mine = sr.custom_op("Relu", body="for (size_t i = 0; i < x0_size; ++i) y0[i] = x0[i] > 0 ? x0[i] : 0.5f * x0[i];",
                        override=True)
    registered.append(("Relu", ""))
    assert lookup("Relu", "", 17) is mine  # every opset's Relu is the override now
    x = random_array((2, 6), seed=5)
    model = sr.load(custom_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2, 6])], [("y", [2, 6])],
                                 name="relu_override", domains=()))
    close(run(model, x)[0], np.where(x > 0, x, 0.5 * x))
    sr.unregister_op("Relu")
    registered.clear()
    assert lookup("Relu", "", 17) is builtin
    with pytest.raises(sr.OperatorRegistrationError, match="no user operator"):
        sr.unregister_op("Relu")


def test_registering_twice_needs_override(registered):
    sr.custom_op("Twice", domain=DOMAIN, body="")
    registered.append(("Twice", DOMAIN))
    with pytest.raises(sr.OperatorRegistrationError, match="test.custom::Twice"):
        sr.custom_op("Twice", domain=DOMAIN, body="")


def test_internal_domain_is_reserved():
    with pytest.raises(sr.OperatorRegistrationError, match="reserved"):
        sr.custom_op("FusedGemm", domain="sofie_rdf", body="", override=True)


def test_unknown_custom_domain_is_named():
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.acme")
    proto = custom_model([node], [("x", [2])], [("y", [2])], domains=("com.acme",))
    with pytest.raises(sr.UnsupportedOperatorError, match="com.acme::Frobnicate"):
        sr.load(proto)


# ---- onnxruntime's com.microsoft FusedMatMul ---------------------------------------------------------------

class FusedMatMul(sr.Op):
    """com.microsoft FusedMatMul: Y = alpha * op(A) @ op(B), op a transpose of the last two dims when asked.

    A is (..., M, K) (or (..., K, M) with transA); B is 2-D or has A's batch dims.
    """

    attr_defaults = {"alpha": 1.0, "transA": 0, "transB": 0, "transBatchA": 0, "transBatchB": 0}

    def _dims(self, a, b):
        m, k = a.shape[-2:][::-1] if self.attrs["transA"] else a.shape[-2:]
        kb, n = b.shape[-2:][::-1] if self.attrs["transB"] else b.shape[-2:]
        return m, k, kb, n

    def infer(self, inputs):
        a, b = inputs
        if self.attrs["transBatchA"] or self.attrs["transBatchB"]:
            raise self.error("transBatchA/transBatchB are not implemented")
        m, k, kb, n = self._dims(a, b)
        if k != kb or len(b.shape) not in (2, len(a.shape)):
            raise self.error(f"shapes {a.shape} and {b.shape} do not multiply")
        return [sr.TensorType(a.dtype, (*a.shape[:-2], m, n))]

    def emit(self, ctx):
        a, b = ctx.inputs
        m, k, _, n = (ctx.dim(d) for d in self._dims(a, b))
        batch = ctx.dim(math.prod(a.shape[:-2]))
        flags = {name: "true" if self.attrs[name] else "false" for name in ("transA", "transB")}
        b_stride = "0" if len(b.shape) == 2 else "k * n"  # one B for every batch, or one each
        return (
            "[](const float* a, const float* b, float* y, size_t batch, size_t m, size_t k, size_t n) {\n"
            f"   const bool tA = {flags['transA']}, tB = {flags['transB']};\n"
            "   for (size_t i = 0; i < batch; ++i)\n"
            "      for (size_t r = 0; r < m; ++r)\n"
            "         for (size_t c = 0; c < n; ++c) {\n"
            "            float acc = 0;\n"
            "            for (size_t kk = 0; kk < k; ++kk)\n"
            "               acc += a[i * m * k + (tA ? kk * m + r : r * k + kk)]\n"
            f"                    * b[i * {b_stride} + (tB ? c * k + kk : kk * n + c)];\n"
            f"            y[(i * m + r) * n + c] = {ctx.literal(self.attrs['alpha'], np.float32)} * acc;\n"
            "         }\n"
            f"}}({ctx.x(0)}, {ctx.x(1)}, {ctx.y(0)}, {batch}, {m}, {k}, {n});")


def ort_optimized(proto: onnx.ModelProto, path) -> onnx.ModelProto:
    """The model as onnxruntime's extended graph optimizations rewrite it (com.microsoft fused ops)."""
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(path)
    ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return onnx.load(str(path))


def test_com_microsoft_fused_matmul_matches_onnxruntime(registered, tmp_path):
    w = random_array((8, 6), seed=6)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["xt", "w"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["y"])]
    plain = custom_model(nodes, [("x", ["N", 8, 5])], [("y", ["N", 5, 6])],
                         {"w": w, "half": np.array(0.5, np.float32)}, name="fused_matmul", domains=())
    optimized = ort_optimized(plain, tmp_path / "optimized.onnx")
    fused = [n for n in optimized.graph.node if n.domain == "com.microsoft"]
    assert [n.op_type for n in fused] == ["FusedMatMul"]
    with pytest.raises(sr.UnsupportedOperatorError, match="com.microsoft::FusedMatMul"):
        sr.load(optimized)
    sr.register_op("FusedMatMul", domain="com.microsoft")(FusedMatMul)
    registered.append(("FusedMatMul", "com.microsoft"))
    x = random_array((3, 8, 5), seed=7)
    (expected,) = ort_run(optimized, {"x": x})
    close(run(sr.load(optimized), x)[0], expected)
    close(expected, 0.5 * np.transpose(x, (0, 2, 1)) @ w)


# ---- Keras custom layers -------------------------------------------------------------------------------

def test_keras_custom_layer(registered, check_keras):
    keras = pytest.importorskip("keras")

    @keras.saving.register_keras_serializable(package="sofie_rdf_tests")
    class ScaledSoftClip(keras.layers.Layer):
        def __init__(self, limit=1.0, **kwargs):
            super().__init__(**kwargs)
            self.limit = limit

        def call(self, x):
            return self.limit * keras.ops.tanh(x / self.limit)

        def get_config(self):
            return {**super().get_config(), "limit": self.limit}

    sr.custom_op("SoftClip", domain=DOMAIN, attrs={"limit": 1.0},
                 body="for (size_t i = 0; i < x0_size; ++i) y0[i] = limit * std::tanh(x0[i] / limit);")
    registered.append(("SoftClip", DOMAIN))

    @sr.keras_layer("ScaledSoftClip")
    def convert(b, layer, inputs, call):
        return b.add("SoftClip", [inputs[0].name], {"limit": float(layer.limit)}, domain=DOMAIN, version=1)

    try:
        with pytest.raises(sr.SofieError, match="already has a converter"):
            sr.keras_layer("ScaledSoftClip")(convert)
        inp = keras.Input((6,))
        out = ScaledSoftClip(limit=2.0)(keras.layers.Dense(4)(inp))
        check_keras(keras.Model(inp, out, name="custom_layer"), 3 * random_array((3, 6), seed=8),
                    sources=("object", "keras", "h5"))
    finally:
        sr.unregister_keras_layer("ScaledSoftClip")


# ---- PyTorch custom modules ------------------------------------------------------------------------------

def test_pytorch_custom_op_through_custom_translation_table(registered):
    """A torch custom op exported by the dynamo exporter as a custom-domain node (the route docs/guides/custom_operators.md
    documents)."""
    torch = pytest.importorskip("torch")
    onnxscript = pytest.importorskip("onnxscript")
    from onnx.defs import OpSchema

    # the schema is spelled out: this module's postponed annotations hide the types from torch
    @torch.library.custom_op("sofie_rdf_tests::soft_clip", mutates_args=(), schema="(Tensor x, float limit) -> Tensor")
    def soft_clip(x, limit):
        return limit * torch.tanh(x / limit)

    @soft_clip.register_fake
    def _(x, limit):
        return torch.empty_like(x)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x):
            return soft_clip(self.linear(x), 2.0)

    # onnxscript builds nodes from ONNX schemas, so the custom op gets one
    domain = "test.torch"
    onnx.defs.register_schema(OpSchema(
        "SoftClip", domain, 1, inputs=[OpSchema.FormalParameter("x", "T")], outputs=[OpSchema.FormalParameter("y", "T")],
        type_constraints=[("T", ["tensor(float)"], "float tensors")],
        attributes=[OpSchema.Attribute("limit", OpSchema.AttrType.FLOAT, "clip level")]))
    try:
        opset = onnxscript.values.Opset(domain, 1)
        net, x = Net().eval(), torch.from_numpy(4 * random_array((5, 4), seed=9))
        program = torch.onnx.export(net, (x,), dynamo=True, verbose=False, custom_translation_table={
            torch.ops.sofie_rdf_tests.soft_clip.default: lambda t, limit: opset.SoftClip(t, limit=limit)})
        assert any(n.domain == domain for n in program.model_proto.graph.node)
        sr.custom_op("SoftClip", domain=domain, attrs={"limit": 1.0},
                     body="for (size_t i = 0; i < x0_size; ++i) y0[i] = limit * std::tanh(x0[i] / limit);")
        registered.append(("SoftClip", domain))
        with torch.no_grad():
            close(run(sr.load(program.model_proto), x.numpy())[0], net(x).numpy())
    finally:
        onnx.defs.deregister_schema("SoftClip", 1, domain)
