"""Stored IR in ``.root`` files (``Model.save`` / ``sr.load("file.root:key")``) and ROOT weights files.

A round trip must give the same model: the generated header byte for byte,
the same weight bits and the same outputs.  Damaged, foreign or missing
data must raise ``ModelFormatError`` naming the file and key.
"""

from __future__ import annotations

import copy
import json

import ml_dtypes
import numpy as np
import onnx
import pytest
from conftest import make_model, random_array
from onnx import helper, numpy_helper

import sofie_rdf as sr
from sofie_rdf.parsers.onnx import from_onnx as parse_onnx
from sofie_rdf.parsers.root import BLOB_BRANCH, BLOB_TREE, MODEL_OBJECT, list_models, load_root, save_root
from sofie_rdf.session import jit_session

uproot = pytest.importorskip("uproot")


# ---- models of several kinds ---------------------------------------------------------

def mlp() -> onnx.ModelProto:
    """Gemm + Relu + Gemm with a symbolic batch."""
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["y"])]
    weights = {"W1": random_array((16, 8), seed=1), "B1": random_array((16,), seed=2),
               "W2": random_array((16, 3), seed=3), "B2": random_array((3,), seed=4)}
    return make_model(nodes, [("x", np.float32, ("N", 8))], [("y", np.float32, ("N", 3))], weights, name="mlp")


def conv_net() -> onnx.ModelProto:
    """Conv + BatchNormalization + Relu + MaxPool + Flatten + Gemm (fixed batch)."""
    nodes = [helper.make_node("Conv", ["x", "K", "KB"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]), helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2],
                                                                     strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "W", "B"], ["y"])]
    weights = {"K": random_array((4, 2, 3, 3), seed=5), "KB": random_array((4,), seed=6),
               "g": random_array((4,), seed=7), "b": random_array((4,), seed=8), "mu": random_array((4,), seed=9),
               "var": np.abs(random_array((4,), seed=10)) + 0.5, "W": random_array((36, 5), seed=11),
               "B": random_array((5,), seed=12)}
    return make_model(nodes, [("x", np.float32, (2, 2, 6, 6))], [("y", np.float32, (2, 5))], weights, name="convnet")


def typed() -> onnx.ModelProto:
    """float16, int64 and bool initializers; a Constant node with a tensor attribute; symbolic batch."""
    const = numpy_helper.from_array(random_array((4,), seed=13), "c")
    nodes = [helper.make_node("Add", ["h", "H"], ["yh"]),
             helper.make_node("Add", ["i", "I"], ["s"]), helper.make_node("Where", ["M", "s", "i"], ["yi"]),
             helper.make_node("Constant", [], ["cv"], value=const), helper.make_node("Mul", ["x", "cv"], ["yc"])]
    weights = {"H": random_array((4,), np.float16, seed=14), "I": random_array((4,), np.int64, seed=15),
               "M": random_array((4,), np.bool_, seed=16)}
    return make_model(nodes, [("h", np.float16, ("batch", 4)), ("i", np.int64, ("batch", 4)),
                              ("x", np.float32, ("batch", 4))],
                      [("yh", np.float16, ("batch", 4)), ("yi", np.int64, ("batch", 4)), ("yc", np.float32, ("batch", 4))],
                      weights, name="typed")


def opaque_attributes() -> onnx.ModelProto:
    """A string attribute the op reads (Gelu's approximate); a custom-domain node's string and subgraph attributes."""
    body = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "body",
                             [helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [1])],
                             [helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [1])])
    nodes = [helper.make_node("Gelu", ["x"], ["g"], approximate="tanh"), helper.make_node("Relu", ["g"], ["y"]),
             helper.make_node("Mystery", ["y"], ["z"], domain="com.example", note="kept as is", body=body)]
    model = make_model(nodes, [("x", np.float32, ("N", 5))], [("z", np.float32, ("N", 5))], opset=20, name="opaque")
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


MODELS = {"mlp": mlp, "convnet": conv_net, "typed": typed}


def feeds_for(model: sr.Model, batch: int = 3) -> list[np.ndarray]:
    return [random_array(tuple(batch if isinstance(d, str) else d for d in t.shape), t.dtype, seed=20 + k)
            for k, t in enumerate(model.inputs)]


def as_list(out) -> list[np.ndarray]:
    return list(out) if isinstance(out, tuple) else [out]


def assert_same_bits(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k


# ---- round trips ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(MODELS))
def test_round_trip_is_exact(kind, tmp_path):
    original = sr.load(MODELS[kind]())
    path = tmp_path / "models.root"
    original.save(path, kind)
    loaded = sr.load(f"{path}:{kind}")
    assert loaded.name == original.name
    assert loaded.inputs == original.inputs and loaded.outputs == original.outputs
    for weights in ("dat", "embed"):
        a, b = original.code(weights=weights), loaded.code(weights=weights)
        assert a.header == b.header
        assert_same_bits(a.weights, b.weights)
    assert_same_bits(original.ir.initializers, loaded.ir.initializers)
    for n0, n1 in zip(original.ir.nodes, loaded.ir.nodes):
        assert (n0.op_type, n0.domain, n0.version, n0.name, n0.inputs, n0.outputs) == \
            (n1.op_type, n1.domain, n1.version, n1.name, n1.inputs, n1.outputs)
        assert n0.attrs.keys() == n1.attrs.keys()
    x = feeds_for(original)
    for a, b in zip(as_list(sr.compile(original).infer(*x)), as_list(sr.compile(loaded).infer(*x))):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_attributes_of_every_kind_round_trip(tmp_path):
    """Raw IR: tensor and opaque attributes, tuples, None, numpy scalars; 0-d, empty and 16-bit tensors."""
    graph = parse_onnx(opaque_attributes())
    custom = graph.nodes[2]  # a custom-domain node: no schema checks its attributes
    custom.attrs.update(ints=[1, -2], floats=[0.5, float("inf")], strings=["a", "ü"], nested=[(1, "x"), [2.5, None]],
                      flag=True, scalar=np.float32(1.5), table=random_array((2, 3), np.int8, seed=1))
    graph.initializers.update(empty=np.zeros((0, 4), np.float32), zero_d=np.array(7, np.int64),
                              bf=random_array((3,), seed=2).astype(ml_dtypes.bfloat16), u64=np.array([2**64 - 1], np.uint64))
    path = tmp_path / "raw.root"
    save_root(graph, path, "raw")
    back = load_root(path, "raw")
    assert_same_bits(graph.initializers, back.initializers)
    got = back.nodes[2].attrs
    for k, v in custom.attrs.items():
        if isinstance(v, np.ndarray):
            assert got[k].dtype == v.dtype and got[k].tobytes() == v.tobytes()
        else:
            assert got[k] == v and type(got[k]) is type(v), k
    assert isinstance(got["body"], onnx.AttributeProto) and got["body"] == custom.attrs["body"]
    assert back.tensors["x"].shape == graph.tensors["x"].shape
    assert (back.opsets, back.source, back.doc) == (graph.opsets, graph.source, graph.doc)


def test_three_models_in_one_file_and_replacing_one(tmp_path):
    path = tmp_path / "three.root"
    models = {k: sr.load(MODELS[k]()) for k in ("mlp", "convnet", "typed")}
    for key, model in models.items():
        model.save(path, key)
    assert list_models(path) == ["mlp", "convnet", "typed"]
    headers = {k: sr.load(f"{path}:{k}").code().header for k in models}
    assert headers == {k: m.code().header for k, m in models.items()}

    models["convnet"].save(path, "mlp")  # replace: the other keys keep their models
    assert sorted(list_models(path)) == ["convnet", "mlp", "typed"]
    assert sr.load(f"{path}:mlp").code().header == headers["convnet"]
    assert sr.load(f"{path}:typed").code().header == headers["typed"]

    ROOT = pytest.importorskip("ROOT")
    f = ROOT.TFile.Open(str(path))
    try:
        assert sorted(k.GetName() for k in f.GetListOfKeys()) == ["convnet", "mlp", "typed"]
        assert json.loads(str(f.Get("typed").Get(MODEL_OBJECT).GetString()))["name"] == "typed"
    finally:
        f.Close()


def test_load_without_key_takes_the_only_model(tmp_path):
    path = tmp_path / "one.root"
    model = sr.load(mlp())
    model.save(path)  # key: the model name
    assert sr.load(path).code().header == model.code().header
    assert sr.from_root(path, name="Renamed").name == "Renamed"
    model.save(path, "second")
    with pytest.raises(sr.ModelFormatError, match="2 sofie-rdf models.*mlp, second"):
        sr.load(path)


# ---- bad files -----------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.root"
    sr.load(mlp()).save(path, "mlp")
    return path


def test_damaged_and_foreign_files(saved, tmp_path):
    data = saved.read_bytes()
    cases = {"truncated.root": data[: len(data) // 2], "random.root": np.random.default_rng(0).bytes(4000),
             "empty.root": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(sr.ModelFormatError, match=f"{name}.*key 'mlp'"):
            sr.load(f"{tmp_path / name}:mlp")
    foreign = tmp_path / "histogram.root"
    with uproot.recreate(foreign) as f:
        f["mlp"] = np.histogram(np.arange(10.0), bins=4)
    with pytest.raises(sr.ModelFormatError, match="histogram.root.*key 'mlp'.*TH1D, not a sofie-rdf model"):
        sr.load(f"{foreign}:mlp")
    with pytest.raises(sr.ModelFormatError, match="holds 0 sofie-rdf models"):
        sr.load(foreign)
    with pytest.raises(sr.ModelFormatError, match="key 'mlp'.*refusing to replace"):
        sr.load(mlp()).save(foreign, "mlp")
    with pytest.raises(sr.ModelFormatError, match="missing.root"):
        sr.load(f"{tmp_path / 'missing.root'}:mlp")


def test_missing_key(saved):
    with pytest.raises(sr.ModelFormatError, match=r"good.root', key 'nope': no such key \(models in the file: mlp\)"):
        sr.load(f"{saved}:nope")


def rewrite_description(path, key: str, edit) -> None:
    """Replace the stored JSON of ``key`` by ``edit(description)``, keeping its payload."""
    with uproot.open(path) as f:
        description = json.loads(str(f[f"{key}/{MODEL_OBJECT}"]))
        chunks = f[f"{key}/{BLOB_TREE}"][BLOB_BRANCH].array()
    with uproot.recreate(path) as f:
        f[f"{key}/{MODEL_OBJECT}"] = json.dumps(edit(description))
        f.mktree(f"{key}/{BLOB_TREE}", {BLOB_BRANCH: "var * uint8"}).extend({BLOB_BRANCH: chunks})


def _set(description: dict, where: str, value) -> dict:
    obj = description
    *parents, last = where.split(".")
    for p in parents:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    obj[int(last) if isinstance(obj, list) else last] = value
    return description


@pytest.mark.parametrize("where, value, message", [
    ("initializers.0.shape", [16, 9], "has 512 bytes"),
    ("initializers.0.dtype", "float128", "element type 'float128' is not supported"),
    ("inputs.0.shape", ["N", -1], "invalid dim -1"),
    ("inputs.0.shape", [{"__class__": "x"}, 8], "invalid dim"),
    ("nodes.1.op_type", "NoSuchOp", "unsupported operator"),
    ("nodes.0.attrs.transB", {"t": "str", "v": "1"}, "attribute 'transB' should be INT"),
    ("blob_bytes", [1], "truncated or damaged"),
    ("version", 99, "format version 99"),
])
def test_tampered_descriptions_are_refused(saved, where, value, message):
    rewrite_description(saved, "mlp", lambda d: _set(d, where, value))
    with pytest.raises(sr.SofieError, match=message):
        sr.load(f"{saved}:mlp")


# ---- generated weights as a ROOT file ----------------------------------------------------

def test_root_weights_match_dat_weights(tmp_path):
    ROOT = pytest.importorskip("ROOT")
    for kind in ("convnet", "typed"):
        model = sr.load(MODELS[kind]())
        x = feeds_for(model)
        expected = as_list(sr.compile(model).infer(*x))
        sess = sr.compile(model, weights="root")
        assert sess.weights_path.suffix == ".root" and "#include <TFile.h>" in sess.code.header
        for a, b in zip(expected, as_list(sess.infer(*x))):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    files = model.generate(tmp_path, weights="root")
    assert files.weights == tmp_path / "typed.root"
    f = ROOT.TFile.Open(str(files.weights))
    try:
        names = sorted(k.GetName() for k in f.Get("typed_weights").GetListOfKeys())
        assert names == ["tensor_H", "tensor_I", "tensor_M", "tensor_cv"]
    finally:
        f.Close()
    assert "TFile" not in model.code(weights="dat").header


def test_root_weights_native_build():
    model = sr.load(mlp())
    x = feeds_for(model)
    sess = sr.compile(model, backend="native", weights="root")
    # The same build with the weights in the header: the bits agree (Cling's baseline x86-64 build may not, as
    # -march=native contracts multiply-adds).
    np.testing.assert_array_equal(sess.infer(*x), sr.compile(model, backend="native").infer(*x))


def test_bad_root_weights_file_raises(tmp_path):
    model = sr.load(mlp())
    sess = sr.compile(model, weights="root")
    foreign = tmp_path / "foreign.root"
    with uproot.recreate(foreign) as f:
        f["h"] = np.histogram(np.arange(10.0), bins=4)
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(sess.weights_path.read_bytes()[:300])
    cases = {foreign: "has no tensor 'mlp_weights/tensor_", truncated: "cannot open ROOT weights file",
             tmp_path / "missing.root": "cannot open ROOT weights file"}
    for path, message in cases.items():
        with pytest.raises(sr.SofieError) as info:
            jit_session(sess.code, sess.namespace, path, None)
        assert path.name in str(info.value) and message in str(info.value)


def test_unknown_weights_mode():
    with pytest.raises(sr.SofieError, match=r"weights must be a mode \(dat, root, embed\)"):
        sr.compile(sr.load(mlp()), weights="hdf5")


def test_unstorable_values_are_refused(tmp_path):
    graph = copy.deepcopy(parse_onnx(mlp()))
    graph.nodes[0].attrs["odd"] = {1: 2}
    with pytest.raises(sr.ModelFormatError, match="attribute 'odd'.*dict cannot be stored"):
        save_root(graph, tmp_path / "x.root", "x")
    with pytest.raises(sr.ModelFormatError, match="invalid model key"):
        save_root(parse_onnx(mlp()), tmp_path / "x.root", "a/b")


def test_payload_of_the_wrong_type_is_refused(saved):
    with uproot.open(saved) as f:
        text = str(f[f"mlp/{MODEL_OBJECT}"])
    with uproot.recreate(saved) as f:
        f[f"mlp/{MODEL_OBJECT}"] = text
        f.mktree(f"mlp/{BLOB_TREE}", {BLOB_BRANCH: "float64"}).extend({BLOB_BRANCH: np.arange(4.0)})
    with pytest.raises(sr.ModelFormatError, match="key 'mlp': the payload tree has no branch 'bytes' of bytes"):
        sr.load(f"{saved}:mlp")


# ---- the three front ends in one file ------------------------------------------------------

def _keras_model():
    keras = pytest.importorskip("keras")
    layers = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    h = layers.MaxPooling2D(2)(layers.Conv2D(3, 3, padding="same", activation="relu")(x))
    h = layers.Dense(4, activation="tanh")(layers.Flatten()(layers.BatchNormalization()(h)))
    kmodel = keras.Model(x, layers.Dense(2, activation="softmax")(h), name="keras_cnn")
    rng = np.random.default_rng(3)
    for w in kmodel.weights:  # non-trivial BatchNorm statistics and biases
        value = keras.ops.convert_to_numpy(w)
        w.assign((value + 0.1 * rng.standard_normal(value.shape)).astype(value.dtype))
    return kmodel, lambda x: kmodel.predict(x, verbose=0)


def _torch_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.LSTM(16, 4, batch_first=True))

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = module

        def forward(self, x):
            return self.body(x)[0]

    head = Head().eval()
    example = torch.randn(2, 5, 8)
    model = sr.from_pytorch(head, example, name="torch_lstm", dynamic_axes={0: {0: "N"}})
    return model, lambda x: head(torch.from_numpy(x)).detach().numpy()


def test_models_of_all_three_front_ends_in_one_file(tmp_path):
    """ONNX, Keras and PyTorch models stored side by side; each comes back identical and computes as its framework."""
    kmodel, keras_predict = _keras_model()
    torch_model, torch_predict = _torch_model()
    originals = {"onnx_mlp": (sr.load(mlp()), None), "keras_cnn": (sr.load(kmodel), keras_predict),
                 "torch_lstm": (torch_model, torch_predict)}
    path = tmp_path / "three.root"
    for key, (model, _) in originals.items():
        model.save(path, key)
    assert list_models(path) == list(originals)
    for key, (model, predict) in originals.items():
        loaded = sr.load(f"{path}:{key}")
        assert loaded.code().header == model.code().header, key
        assert_same_bits(loaded.code().weights, model.code().weights)
        x = feeds_for(loaded)
        got = as_list(sr.compile(loaded).infer(*x))
        expected = as_list(sr.compile(model).infer(*x)) if predict is None else [predict(*x)]
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=key)
