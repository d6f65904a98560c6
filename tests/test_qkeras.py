"""QKeras models (Keras 2 ``.h5`` files, as QKeras saves them) read without QKeras or TensorFlow
(``sofie_rdf.parsers.keras.qkeras``): an MLP and a CNN of QDense, QConv2D, QDepthwiseConv2D and QActivation with
quantized_bits (fixed alpha, a numeric alpha, "auto", "auto_po2", QKeras's kernel default) and quantized_relu
quantizers, in both the serialized and the string form.

QKeras installs only with TensorFlow, so the files are written with h5py (``tests/keras2_files.py``) and the
reference is a numpy transcription of QKeras's quantizers (``qkeras/quantizers.py``) and of the layers.  The
inputs are quantized first, so that every product and sum is exact in float32: the outputs must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.keras2_files import common, initializer, input_layer, layer, sequential, write_model_h5

pytest.importorskip("keras")
pytest.importorskip("h5py")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

F32 = np.float32
BATCH = 5


# ---- QKeras's quantizers in numpy (qkeras/quantizers.py, the inference branch: qnoise_factor 1) -------------------


def quantized_bits(x, bits=8, integer=0, symmetric=0, keep_negative=True, alpha=None):
    x = np.asarray(x, F32)
    unsigned = bits - int(keep_negative)
    m, m_i = F32(2.0**unsigned), F32(2.0**integer)
    if isinstance(alpha, str):
        return _auto(x, bits, m, m_i, alpha)
    scale = F32(1.0 if alpha is None else alpha)
    p = x * m / m_i
    return scale * (m_i * np.clip(np.round(p), int(keep_negative) * (-m + symmetric), m - 1) / m)


def _auto(x, bits, m, m_i, alpha):
    """alpha "auto" / "auto_po2": symmetric, scales per last axis (QKeras's channels-last default)."""
    axis = tuple(range(x.ndim - 1))
    x = x / m_i
    levels = F32((2 ** (bits - 1) - 1) * 2)

    def z_of(scale):
        v = np.floor(np.abs(x) / scale + F32(0.5))
        return np.sign(x) * np.where(v < levels / 2, v, levels / 2)

    def po2(scale):
        return np.power(F32(2), np.round(np.log(scale + F32(1e-7)) / F32(np.log(2.0))))

    scale = np.max(np.abs(x), axis=axis, keepdims=True) * 2 / levels
    if alpha == "auto_po2":
        scale = po2(scale)
        for _ in range(5):
            z = z_of(scale)
            qx = np.mean(x * z, axis=axis, keepdims=True, dtype=F32)
            qq = np.mean(z * z, axis=axis, keepdims=True, dtype=F32)
            scale = po2(qx / (qq + F32(1e-7)))
    z = z_of(scale)
    return scale * m * (m_i * z / m)


def quantized_relu(x, bits=8, integer=0):
    m, m_i = F32(2.0**bits), F32(2.0**integer)
    p = np.asarray(x, F32) * m / m_i
    return m_i * np.clip(np.round(p) / m, 0.0, 1.0 - 1.0 / m).astype(F32)


def test_quantizer_values_by_hand():
    """A few values worked out from QKeras's formulas: 4 bits, 3 of them fractional; 6-bit relu of 2 integer
    bits; the narrow range of a symmetric quantizer."""
    np.testing.assert_array_equal(quantized_bits([0.3, -1.2, 0.9999, -0.0625], 4, 0, alpha=1),
                                  [0.25, -1.0, 0.875, -0.0])
    np.testing.assert_array_equal(quantized_relu([-1.0, 0.1, 3.99, 5.0], 6, 2), [0.0, 0.125, 3.9375, 3.9375])
    np.testing.assert_array_equal(quantized_bits([-5.0], 4, 0, symmetric=1, alpha=1), [-0.875])


# ---- the layers in numpy, channels-last --------------------------------------------------------------------------


def conv2d(x, kernel, bias, padding):
    """Keras's Conv2D (kernel (kh, kw, in, out)), stride 1; "same" pads (k - 1) // 2 before."""
    kh, kw = kernel.shape[:2]
    if padding == "same":
        x = np.pad(x, [(0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)])
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    patches = np.stack([x[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)], axis=3)
    y = np.einsum("nhwkc,kco->nhwo", patches, kernel.reshape(kh * kw, *kernel.shape[2:]))
    return y if bias is None else y + bias


def depthwise(x, kernel):
    """DepthwiseConv2D, depth multiplier 1, valid, no bias (kernel (kh, kw, c, 1))."""
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return sum(x[:, i:i + h, j:j + w, :] * kernel[i, j, :, 0] for i in range(kh) for j in range(kw))


def max_pool(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---- QKeras layer configurations as Keras 2 saves them ---------------------------------------------------------


def serialized(name: str, **config) -> dict:
    """A quantizer as QKeras's get_config and tf.keras 2.15's serialization write it."""
    defaults = {"quantized_bits": {"bits": 8, "integer": 0, "symmetric": 0, "alpha": None, "keep_negative": True,
                                   "use_stochastic_rounding": False, "qnoise_factor": 1.0,
                                   "post_training_scale": None},
                "quantized_relu": {"bits": 8, "integer": 0, "use_sigmoid": 0, "negative_slope": 0.0,
                                   "use_stochastic_rounding": False, "relu_upper_bound": None,
                                   "qnoise_factor": 1.0}}[name]
    return {"module": "qkeras.quantizers", "class_name": name, "config": {**defaults, **config},
            "registered_name": name}


def q_activation(name: str, activation) -> dict:
    return {"class_name": "QActivation", "config": {**common(name), "activation": activation}}


def q_dense(name: str, units: int, activation, kernel, bias, use_bias: bool = True) -> dict:
    return layer("QDense", name, units=units, activation=activation, use_bias=use_bias,
                 kernel_initializer=initializer("HeNormal"), bias_initializer=initializer("Zeros"),
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 kernel_quantizer=kernel, bias_quantizer=bias, kernel_range=None, bias_range=None)


def conv_config(padding: str) -> dict:
    return dict(kernel_size=[3, 3], strides=[1, 1], padding=padding, data_format="channels_last",
                dilation_rate=[1, 1], groups=1, bias_initializer=initializer("Zeros"))


def _mlp(rng) -> tuple[dict, dict, callable]:
    config = sequential("qkeras_mlp", [
        input_layer("x", [16]),
        q_activation("q_input", "quantized_bits(8,2,alpha=1)"),
        q_dense("qdense_1", 32, "linear", "quantized_bits(6,0,alpha=1)", serialized("quantized_bits", bits=6, alpha=1)),
        q_activation("q_relu_1", serialized("quantized_relu", bits=6, integer=2)),
        q_dense("qdense_2", 16, "quantized_relu(4,1)",
                serialized("quantized_bits", bits=4, symmetric=1, alpha="auto_po2"), None, use_bias=False),
        q_dense("qdense_3", 5, "linear", "quantized_bits(8,1)", "quantized_bits(8,3,alpha=1)"),
        layer("Activation", "softmax", activation="softmax")])
    weights = {"qdense_1": {"kernel": rng.standard_normal((16, 32)).astype(F32) / 3,
                            "bias": rng.standard_normal(32).astype(F32) / 4},
               "qdense_2": {"kernel": rng.standard_normal((32, 16)).astype(F32) / 5},
               "qdense_3": {"kernel": rng.standard_normal((16, 5)).astype(F32),
                            "bias": rng.standard_normal(5).astype(F32)}}

    def reference(x):
        w = weights
        h = quantized_bits(x, 8, 2, alpha=1)
        h = h @ quantized_bits(w["qdense_1"]["kernel"], 6, 0, alpha=1) + quantized_bits(w["qdense_1"]["bias"], 6,
                                                                                        alpha=1)
        h = quantized_relu(h, 6, 2)
        h = quantized_relu(h @ quantized_bits(w["qdense_2"]["kernel"], 4, symmetric=1, alpha="auto_po2"), 4, 1)
        # QKeras makes a kernel's quantized_bits of no alpha an "auto_po2" one (QDense's _set_trainable_parameter)
        h = h @ quantized_bits(w["qdense_3"]["kernel"], 8, 1, alpha="auto_po2") + quantized_bits(
            w["qdense_3"]["bias"], 8, 3, alpha=1)
        return softmax(h)

    return config, weights, reference


def _cnn(rng) -> tuple[dict, dict, callable]:
    conv = layer("QConv2D", "qconv", filters=4, activation="quantized_relu(4,1)", use_bias=True,
                 kernel_initializer=initializer("HeNormal"), kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, kernel_quantizer="quantized_bits(4,0,alpha=1)",
                 bias_quantizer="quantized_bits(4,2,alpha=1)", kernel_range=None, bias_range=None,
                 **conv_config("same"))
    dw = layer("QDepthwiseConv2D", "qdepthwise", depth_multiplier=1, activation="linear", use_bias=False,
               depthwise_initializer=initializer("HeNormal"), depthwise_regularizer=None, depthwise_constraint=None,
               depthwise_quantizer=serialized("quantized_bits", bits=5, integer=1, symmetric=1, alpha="auto"),
               bias_quantizer=None, depthwise_range=None, **{k: v for k, v in conv_config("valid").items()
                                                              if k != "groups"})
    config = sequential("qkeras_cnn", [
        input_layer("image", [8, 8, 2]), q_activation("q_input", "quantized_bits(8,3,alpha=1)"), conv,
        layer("MaxPooling2D", "pool", pool_size=[2, 2], strides=[2, 2], padding="valid", data_format="channels_last"),
        dw, q_activation("q_dw", "quantized_bits(6,2,1,alpha=1)"),
        layer("Flatten", "flatten", data_format="channels_last"),
        q_dense("qdense", 3, "linear", "quantized_bits(6,0,alpha=0.5)", "quantized_bits(6,2,alpha=1)")])
    weights = {"qconv": {"kernel": rng.standard_normal((3, 3, 2, 4)).astype(F32) / 2,
                         "bias": rng.standard_normal(4).astype(F32)},
               "qdepthwise": {"depthwise_kernel": rng.standard_normal((3, 3, 4, 1)).astype(F32)},
               "qdense": {"kernel": rng.standard_normal((16, 3)).astype(F32),
                          "bias": rng.standard_normal(3).astype(F32)}}

    def reference(x):
        w = weights
        h = quantized_bits(x, 8, 3, alpha=1)
        h = conv2d(h, quantized_bits(w["qconv"]["kernel"], 4, 0, alpha=1),
                   quantized_bits(w["qconv"]["bias"], 4, 2, alpha=1), "same")
        h = max_pool(quantized_relu(h, 4, 1))
        h = depthwise(h, quantized_bits(w["qdepthwise"]["depthwise_kernel"], 5, 1, symmetric=1, alpha="auto"))
        h = quantized_bits(h, 6, 2, symmetric=1, alpha=1).reshape(len(x), -1)
        return h @ quantized_bits(w["qdense"]["kernel"], 6, 0, alpha=0.5) + quantized_bits(w["qdense"]["bias"], 6,
                                                                                           2, alpha=1)

    return config, weights, reference


@pytest.mark.parametrize("network, shape", [(_mlp, (16,)), (_cnn, (8, 8, 2))])
def test_against_numpy_qkeras(tmp_path, network, shape):
    rng = np.random.default_rng(7)
    config, weights, reference = network(rng)
    path = tmp_path / "model.h5"
    write_model_h5(path, config, weights)
    model = sr.load(path)
    assert any(n.op_type == "Quant" and n.domain == "qonnx.custom_op.general" for n in model.ir.nodes)
    sess = sr.compile(model, backend="native")
    x = (rng.standard_normal((BATCH, *shape)) * 2).astype(F32)
    np.testing.assert_allclose(sess.infer(x), reference(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation, problem", [
    ("binary()", r"'binary' is not supported"),
    ("quantized_bits(8,0,alpha='auto')", r"alpha='auto' on an activation depends on each batch"),
    ("quantized_relu(4,0,use_stochastic_rounding=True)", "stochastic rounding is random"),
    ("quantized_relu(4,0,negative_slope=0.25)", "negative_slope=0.25 is not supported"),
    (serialized("quantized_relu", bits=4, qnoise_factor=0.5), "qnoise_factor=0.5 is not quantized"),
    ("quantized_bits(4,0,wide=1)", "quantized_bits has no argument"),
])
def test_refused_quantizers_name_the_layer(tmp_path, activation, problem):
    path = tmp_path / "refused.h5"
    write_model_h5(path, sequential("refused", [input_layer("x", [4]), q_activation("q_act", activation)]), {})
    with pytest.raises(sr.ModelFormatError, match=problem) as info:
        sr.load(path)
    assert "'refused'" in str(info.value) and "'q_act'" in str(info.value)


# ---- QKeras layers saved by Keras 3 (.keras archives: config.json + model.weights.h5) ----------------------------


def keras3_tensor(layer_name: str, shape: list) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"shape": shape, "dtype": "float32",
                                                         "keras_history": [layer_name, 0, 0]}}


def keras3_layer(spec: dict, *args) -> dict:
    """A layer of a Keras 3 Functional config: DTypePolicy dtype, module keys, inbound nodes as args/kwargs."""
    config = {**spec["config"], "dtype": {"module": "keras", "class_name": "DTypePolicy",
                                          "config": {"name": "float32"}, "registered_name": None}}
    module = "qkeras.qlayers" if spec["class_name"].startswith("Q") else "keras.layers"
    return {"module": module, "class_name": spec["class_name"], "config": config, "name": config["name"],
            "registered_name": f"qkeras>{spec['class_name']}" if module.startswith("qkeras") else None,
            "inbound_nodes": [{"args": list(args), "kwargs": {}}] if args else []}


def write_keras3_archive(path, config: dict, weights: dict) -> None:
    """``model.save("m.keras")`` as Keras 3 lays it out: each layer's variables under layers/<key>/vars/<i>,
    the vars group naming the layer."""
    import io
    import json
    import zipfile

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, (layer_name, arrays) in weights.items():
            group = f.create_group(f"layers/{key}/vars")
            group.attrs["name"] = layer_name
            for i, array in enumerate(arrays):
                group.create_dataset(str(i), data=array)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.14.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())


def test_qkeras_keras3_archive_against_numpy(tmp_path):
    """A Functional QKeras model saved by Keras 3: two quantized branches added, as QKeras on Keras 3 writes it."""
    rng = np.random.default_rng(3)
    inputs = {"module": "keras.layers", "class_name": "InputLayer", "name": "x", "inbound_nodes": [],
              "config": {"batch_shape": [None, 8], "dtype": "float32", "sparse": False, "ragged": False,
                         "name": "x", "optional": False}}
    x_t = keras3_tensor("x", [None, 8])
    layers = [inputs,
              keras3_layer(q_activation("q_in", serialized("quantized_bits", bits=8, integer=2, alpha=1)), x_t),
              keras3_layer(q_dense("fc_a", 4, "linear", serialized("quantized_bits", bits=6, alpha=1),
                                   serialized("quantized_bits", bits=6, alpha=1)), keras3_tensor("q_in", [None, 8])),
              keras3_layer(q_dense("fc_b", 4, "linear", serialized("quantized_bits", bits=4, integer=1, alpha=1),
                                   None, use_bias=False), keras3_tensor("q_in", [None, 8])),
              keras3_layer(layer("Add", "add"), [keras3_tensor("fc_a", [None, 4]), keras3_tensor("fc_b", [None, 4])]),
              keras3_layer(q_activation("q_relu", serialized("quantized_relu", bits=6, integer=1)),
                           keras3_tensor("add", [None, 4]))]
    config = {"module": "keras", "class_name": "Functional", "config": {
        "name": "qkeras3", "layers": layers, "input_layers": [["x", 0, 0]], "output_layers": ["q_relu", 0, 0]}}
    wa, ba, wb = rng.standard_normal((8, 4)).astype(F32) / 3, rng.standard_normal(4).astype(F32) / 4, \
        rng.standard_normal((8, 4)).astype(F32)
    path = tmp_path / "qkeras3.keras"
    write_keras3_archive(path, config, {"q_dense": ("fc_a", [wa, ba]), "q_dense_1": ("fc_b", [wb])})
    x = (rng.standard_normal((BATCH, 8)) * 2).astype(F32)
    h = quantized_bits(x, 8, 2, alpha=1)
    expected = quantized_relu(h @ quantized_bits(wa, 6, alpha=1) + quantized_bits(ba, 6, alpha=1)
                              + h @ quantized_bits(wb, 4, 1, alpha=1), 6, 1)
    np.testing.assert_allclose(sr.compile(sr.load(path), backend="native").infer(x), expected, rtol=1e-6, atol=1e-7)


def test_qkeras_keras3_archive_nested_model_refused(tmp_path):
    inner = {"module": "keras", "class_name": "Sequential", "config": {"name": "inner", "layers": []}}
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "outer", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "x"}},
        keras3_layer(q_activation("q_in", "quantized_bits(8,2,alpha=1)")), inner]}}
    path = tmp_path / "nested.keras"
    write_keras3_archive(path, config, {})
    with pytest.raises(sr.ModelFormatError, match=r"'nested': nested model 'inner' in a Keras 3 archive"):
        sr.load(path)


def test_public_qkeras3_file():
    """hls4ml's QKeras-on-Keras-3 example (example-models/keras/qkeras-v3_3layer.keras), where
    ``benchmarks.public --fetch`` put it, against numpy: QDense with quantized_bits(6, 0, alpha=1) kernels and
    biases, quantized_relu(6, 0) activations, a softmax."""
    import io
    import json
    import zipfile

    import h5py

    from benchmarks.public import models_dir

    path = models_dir() / "fastmachinelearning+example-models" / "keras" / "qkeras-v3_3layer.keras"
    if not path.is_file():
        pytest.skip("hls4ml's qkeras-v3_3layer is not fetched (python -m benchmarks.public --fetch ...)")
    with zipfile.ZipFile(path) as archive:
        specs = json.loads(archive.read("config.json"))["config"]["layers"][1:]
        with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as f:
            weights = {f[f"layers/{k}/vars"].attrs["name"]: [np.asarray(f[f"layers/{k}/vars/{i}"]) for i in range(2)]
                       for k in f["layers"] if k.startswith("q_dense")}
    x = (np.random.default_rng(9).standard_normal((64, 16)) * 2).astype(F32)
    h = x
    for spec in specs:
        c = spec["config"]
        if spec["class_name"] == "QDense":
            kq, bq = c["kernel_quantizer"]["config"], c["bias_quantizer"]["config"]
            assert (kq["bits"], kq["integer"], kq["alpha"], bq["bits"], bq["integer"], bq["alpha"]) == (6, 0, 1, 6, 0, 1)
            kernel, bias = weights[c["name"]]
            h = h @ quantized_bits(kernel, 6, 0, alpha=1) + quantized_bits(bias, 6, 0, alpha=1)
        elif spec["class_name"] == "QActivation":
            assert (c["activation"]["class_name"], c["activation"]["config"]["bits"],
                    c["activation"]["config"]["integer"]) == ("quantized_relu", 6, 0)
            h = quantized_relu(h, 6, 0)
        else:
            assert c["activation"] == "softmax"
            h = softmax(h)
    np.testing.assert_allclose(sr.compile(sr.load(path), backend="native").infer(x), h, rtol=1e-5, atol=1e-7)
