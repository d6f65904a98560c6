"""User-defined operators: run a model whose ONNX file uses ops sofie-rdf does not ship.

The model below has two nodes of a custom domain "my.ops": SoftClip, implemented by a
function in a C++ header of ours (sr.custom_op), and SplitSign, a full operator class
with two outputs (sr.register_op), the way sofie-rdf's own operators are written.
"""

import tempfile
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr

scratch = tempfile.TemporaryDirectory(prefix="sofie_custom_op_")  # removed when the script ends
work = Path(scratch.name)

# 1. A C++-only operator: our header, our function.  The generated code #includes the header and
#    calls soft_clip(input, input size, output, output size, attributes...).
(work / "my_kernels.h").write_text("""#pragma once
#include <cmath>
#include <cstddef>

inline void soft_clip(const float* x, size_t n, float* y, size_t, float limit) {
   for (size_t i = 0; i < n; ++i) y[i] = limit * std::tanh(x[i] / limit);
}
""")
sr.custom_op("SoftClip", domain="my.ops", header=work / "my_kernels.h", function="soft_clip", attrs={"limit": 1.0})


# 2. A full operator class: shape inference in Python, C++ from emit().
@sr.register_op("SplitSign", domain="my.ops")
class SplitSign(sr.Op):
    """pos = max(x, 0) * scale, neg = min(x, 0) * scale."""

    attr_defaults = {"scale": 1.0}

    def infer(self, inputs):
        x = inputs[0]
        return [sr.TensorType(x.dtype, x.shape), sr.TensorType(x.dtype, x.shape)]

    def emit(self, ctx):
        scale = ctx.literal(self.attrs["scale"], ctx.outputs[0].dtype)
        x, pos, neg = ctx.x(0), ctx.y(0), ctx.y(1)
        return (f"for (size_t i_ = 0; i_ < {ctx.dim(ctx.outputs[0].size)}; ++i_) {{\n"
                f"   {pos}[i_] = {x}[i_] > 0 ? {scale} * {x}[i_] : 0;\n"
                f"   {neg}[i_] = {x}[i_] < 0 ? {scale} * {x}[i_] : 0;\n}}")


# An ONNX model using both (any exporter that writes custom-domain nodes gives the same).
w = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["h"]),
     helper.make_node("SoftClip", ["h"], ["c"], domain="my.ops", limit=2.0),
     helper.make_node("SplitSign", ["c"], ["pos", "neg"], domain="my.ops", scale=10.0)],
    "custom_demo",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
    [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in ("pos", "neg")],
    [numpy_helper.from_array(w, "w")])
proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.ops", 1)])

model = sr.load(proto)
x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
pos, neg = sr.compile(model).infer(x)
clipped = 2.0 * np.tanh(x @ w / 2.0)
np.testing.assert_allclose(pos, 10 * np.maximum(clipped, 0), rtol=1e-4, atol=1e-5)
np.testing.assert_allclose(neg, 10 * np.minimum(clipped, 0), rtol=1e-4, atol=1e-5)
print("custom ops agree with numpy:", pos[0], neg[0])

# The header travels with the generated code: it is copied next to custom_demo.hxx.
files = model.generate(work / "generated")
print(sorted(p.name for p in files.header.parent.iterdir()))

# A model stored in a .root file keeps its custom nodes; loading it needs the same registrations.
model.save(work / "models.root", key="demo")
print(sr.load(f"{work / 'models.root'}:demo").summary().splitlines()[0])
