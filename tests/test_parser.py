"""ONNX parser and IR validation: every malformed model gets a clear SofieError."""

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import TensorProto, helper, numpy_helper

import sofie_rdf as sr


def relu_model(**kw):
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                      [("x", np.float32, ["batch", 3])], [("y", np.float32, ["batch", 3])], **kw)


def test_symbolic_dims_are_kept():
    model = sr.load(relu_model())
    assert model.inputs[0].shape == ("batch", 3)
    assert model.outputs[0].shape == ("batch", 3)


def test_unsupported_operators_listed_at_once():
    nodes = [helper.make_node("FancyOp", ["x"], ["a"], name="f1", domain="my.domain"),
             helper.make_node("Relu", ["a"], ["b"], name="r"),
             helper.make_node("NotAnOp", ["b"], ["c"], name="n1"),
             helper.make_node("NotAnOp", ["c"], ["y"], name="n2")]
    m = make_model(nodes, [("x", np.float32, [3])], [("y", np.float32, [3])])
    m.opset_import.append(helper.make_opsetid("my.domain", 1))
    with pytest.raises(sr.UnsupportedOperatorError) as err:
        sr.load(m)
    text = str(err.value)
    assert "my.domain::FancyOp" in text and "'f1'" in text
    assert "NotAnOp: 2 node(s)" in text and "'n1'" in text and "'n2'" in text
    assert set(err.value.unsupported) == {"my.domain::FancyOp", "NotAnOp"}


def graph_model(nodes, outputs=("y",)):
    return make_model(nodes, [("x", np.float32, [3])], [(o, np.float32, [3]) for o in outputs])


def test_dangling_input():
    m = graph_model([helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")])
    with pytest.raises(sr.ModelFormatError, match="adder.*'ghost'"):
        sr.load(m)


def test_cycle():
    m = graph_model([helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
                     helper.make_node("Relu", ["a"], ["b"], name="n2"),
                     helper.make_node("Relu", ["a"], ["y"], name="n3")])
    with pytest.raises(sr.ModelFormatError, match="cycle"):
        sr.load(m)


def test_duplicate_output():
    m = graph_model([helper.make_node("Relu", ["x"], ["y"], name="one"),
                     helper.make_node("Neg", ["x"], ["y"], name="two")])
    with pytest.raises(sr.ModelFormatError, match="produced twice"):
        sr.load(m)


def test_output_never_produced():
    m = graph_model([helper.make_node("Relu", ["x"], ["y"])], outputs=("y", "z"))
    with pytest.raises(sr.ModelFormatError, match="'z' is never produced"):
        sr.load(m)


def test_nodes_out_of_order_are_sorted(check_model):
    m = graph_model([helper.make_node("Neg", ["a"], ["y"]), helper.make_node("Relu", ["x"], ["a"])])
    check_model(m, {"x": np.array([-1, 2, -3], np.float32)})


def test_opset_newer_than_onnx_knows():
    m = relu_model()
    m.opset_import[0].version = 10_000
    with pytest.raises(sr.ModelFormatError, match="opset 10000"):
        sr.load(m.SerializeToString())


def test_old_opset_converted_with_a_warning():
    """Relu changed at opset 6: an opset-5 model is upgraded by onnx.version_converter, and the user is told
    (onnxruntime runs no opset below 7: the reference is numpy)."""
    m = relu_model()
    m.opset_import[0].version = 5
    with pytest.warns(sr.LegacyModelWarning, match="opset 5.*converted to opset 7"):
        model = sr.load(m.SerializeToString())
    assert model.ir.opsets[""] == 7
    x = np.array([[-1, 2, -3]], np.float32)
    np.testing.assert_array_equal(sr.compile(model, backend="native").infer(x), np.maximum(x, 0))


def test_old_opset_batchnorm_converted():
    """Opset 6's BatchNormalization has an ``is_test`` attribute opset 7 dropped: the converted graph (not the
    file's) is what is parsed.  Weights are listed as graph inputs too, as IR 3 required."""
    rng = np.random.default_rng(0)
    scale, bias, mean = (rng.standard_normal(3).astype(np.float32) for _ in range(3))
    var = rng.random(3).astype(np.float32) + 0.5
    weights = {"scale": scale, "bias": bias, "mean": mean, "var": var}
    node = helper.make_node("BatchNormalization", ["x", *weights], ["y"], is_test=1, epsilon=1e-5)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])]
                              + [helper.make_tensor_value_info(k, TensorProto.FLOAT, [3]) for k in weights],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)], ir_version=3)
    with pytest.warns(sr.LegacyModelWarning, match="opset 6"):
        sess = sr.compile(sr.load(m, name="batchnorm6"), backend="native")
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    c = (slice(None), None)
    expected = (x - mean[c]) / np.sqrt(var[c] + 1e-5) * scale[c] + bias[c]
    np.testing.assert_allclose(sess.infer(x), expected, rtol=1e-5, atol=1e-6)


def test_old_opset_with_unchanged_operators(check_model):
    """Below opset 7 a model loads when each operator it uses is defined as in opset 7 (Relu since 6)."""
    m = relu_model()
    m.opset_import[0].version = 6
    check_model(m, {"x": np.array([[-1, 2, -3]], np.float32)})


def test_garbage_bytes():
    with pytest.raises(sr.ModelFormatError):
        sr.load(b"\x00\x01garbage" * 10)
    with pytest.raises(sr.ModelFormatError, match="not an ONNX model"):
        sr.load(numpy_helper.from_array(np.zeros(3, np.float32)).SerializeToString())


def test_missing_file(tmp_path):
    with pytest.raises(sr.ModelFormatError, match="cannot read"):
        sr.load(str(tmp_path / "nope.onnx"))


def test_missing_required_attribute():
    m = make_model([helper.make_node("Concat", ["x", "x"], ["y"], name="cat")],
                   [("x", np.float32, [3])], [("y", np.float32, [6])])
    with pytest.raises(sr.ModelFormatError, match="cat.*required attribute 'axis'"):
        sr.load(m)


def test_wrong_attribute_type():
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="lr", alpha="big")
    m = make_model([node], [("x", np.float32, [3])], [("y", np.float32, [3])])
    with pytest.raises(sr.ModelFormatError, match="lr.*'alpha'"):
        sr.load(m)


def test_shape_mismatch_names_node():
    m = make_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                   [("x", np.float32, [2, 3])], [("y", np.float32, [2, 5])], {"w": np.zeros((4, 5), np.float32)})
    with pytest.raises(sr.ShapeError, match="mm"):
        sr.load(m)


def external_model(tmp_path, location="weights.bin", data_len=None):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    (tmp_path / "weights.bin").write_bytes(w.tobytes()[: data_len])
    t = onnx.TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend(w.shape)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(w.nbytes))):
        e = t.external_data.add()
        e.key, e.value = k, v
    m = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", np.float32, [2, 3])],
                   [("y", np.float32, [2, 3])])
    m.graph.initializer.append(t)
    path = tmp_path / "model.onnx"
    path.write_bytes(m.SerializeToString())
    return path, w


def test_external_data_loads(tmp_path):
    path, w = external_model(tmp_path)
    sess = sr.compile(sr.load(str(path)))
    np.testing.assert_array_equal(sess.infer(np.ones((2, 3), np.float32)), w + 1)


@pytest.mark.parametrize("location", ["../weights.bin", "/etc/passwd", "sub/../../weights.bin"])
def test_external_data_outside_folder_refused(tmp_path, location):
    inner = tmp_path / "inner"
    inner.mkdir()
    path, _ = external_model(inner, location)
    with pytest.raises(sr.ModelFormatError, match="external data"):
        sr.load(str(path))


def test_external_data_symlink_out_refused(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    path, _ = external_model(inner, "link.bin")
    (tmp_path / "secret.bin").write_bytes(b"\0" * 24)
    (inner / "link.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(sr.ModelFormatError, match="outside"):
        sr.load(str(path))


def test_external_data_truncated(tmp_path):
    path, _ = external_model(tmp_path, data_len=10)
    with pytest.raises(sr.ModelFormatError, match="shorter"):
        sr.load(str(path))


def test_external_data_needs_a_path(tmp_path):
    path, _ = external_model(tmp_path)
    with pytest.raises(sr.ModelFormatError, match="file path"):
        sr.load(path.read_bytes())


def test_name_from_file(tmp_path):
    path = tmp_path / "my-model.v2.onnx"
    path.write_bytes(relu_model().SerializeToString())
    assert sr.load(str(path)).name == "my_model_v2"
    assert sr.load(str(path), name="Other").name == "Other"


def test_unknown_attribute_refused():
    """An attribute the schema does not know (e.g. one the passes reserve, like packed_w) is refused."""
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=2, packed_w=1, name="lstm")
    rng = np.random.default_rng(0)
    init = {"W": rng.standard_normal((1, 8, 3)).astype(np.float32), "R": rng.standard_normal((1, 8, 2)).astype(np.float32)}
    model = make_model([node], [("x", np.float32, [4, 1, 3])], [("y", np.float32, None)], init, name="sneaky")
    with pytest.raises(sr.ModelFormatError, match=r"'sneaky'.*'lstm'.*unknown attribute\(s\) 'packed_w'"):
        sr.load(model)


def test_internal_domain_refused():
    node = helper.make_node("FusedGemm", ["x", "W"], ["y"], domain="sofie_rdf", name="fused", activation="Relu")
    model = make_model([node], [("x", np.float32, [1, 2])], [("y", np.float32, None)],
                       {"W": np.ones((2, 2), np.float32)}, name="internal")
    model.opset_import.append(helper.make_opsetid("sofie_rdf", 1))
    with pytest.raises(sr.ModelFormatError, match="'fused'.*reserved"):
        sr.load(model)


def test_absurd_sizes_refused_before_allocation(monkeypatch):
    """Inputs, initializers and intermediate tensors over the per-tensor limit (configurable) are refused at load."""
    big_input = relu_model()
    big_input.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 10**12
    with pytest.raises(sr.ModelFormatError, match="input 'x'.*over the limit"):
        sr.load(big_input)
    shape = numpy_helper.from_array(np.array([10**6, 10**6], np.int64), "shape")
    node = helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill")
    huge = make_model([node], [], [("y", np.float32, None)], {"shape": numpy_helper.to_array(shape)}, name="huge")
    with pytest.raises(sr.ShapeError, match=r"'huge'.*'fill'.*over the limit.*SOFIE_RDF_MAX_TENSOR_BYTES"):
        sr.load(huge)
    monkeypatch.setenv("SOFIE_RDF_MAX_TENSOR_BYTES", "1000")
    with pytest.raises(sr.ModelFormatError, match="initializer 'W'.*limit 1,000 bytes"):
        sr.load(make_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [("x", np.float32, [1, 16])],
                           [("y", np.float32, None)], {"W": np.ones((16, 16), np.float32)}))
    sr.load(relu_model())  # small models stay fine
