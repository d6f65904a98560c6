"""hls4ml's GarNet and GarNetStack (``hls4ml/contrib/garnet.py``) read from Keras 2 files
(``sofie_rdf.parsers.keras.garnet``), against a numpy transcription of hls4ml's ``call``.

hls4ml's layer needs TensorFlow, so the files are written with h5py (``tests/keras2_files.py``) as tf.keras 2
saves a model holding the layer (its get_config keys, its weights named ``FLR_kernel`` ... in build order), and
the reference below follows hls4ml's code line by line (K.tile, K.reshape and all), including what it does
that its description does not say: GarNet applies its output activation twice, collapse="mean" with
mean_by_nvert divides by mean_by_nvert, and input_format "x" counts the vertices of the whole batch.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.keras2_files import common, dense, functional, input_layer, node, normal, write_json_and_weights

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

F32 = np.float32
V, D = 12, 3  # vertices, features per vertex
ACTIVATIONS = {None: lambda x: x, "linear": lambda x: x, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0),
               "sigmoid": lambda x: 1 / (1 + np.exp(-x))}


# ---- hls4ml's GarNet.call in numpy ----------------------------------------------------------------------------


def _apply_edge_weights(features, edge_weights, aggregation=None):
    features = features[:, None]  # (B, 1, v, f)
    edge_weights = edge_weights[..., None]  # (B, u, v, 1)
    out = edge_weights * features  # (B, u, v, f)
    if aggregation:
        return aggregation(out, axis=2)
    return out.reshape(-1, edge_weights.shape[1], features.shape[-1] * features.shape[-2])


def _unpack_input(x, input_format):
    if input_format == "x":
        data = x[0]
        vertex_mask = (data[..., 3:4] != 0.0).astype(F32)
        return data, vertex_mask.sum(dtype=F32), vertex_mask
    if input_format == "xn":
        data, num_vertex = x
    else:
        data_x, data_e, num_vertex = x
        data = np.concatenate([data_x, data_e.reshape(-1, data_e.shape[1], 1)], axis=-1)
    b, v = data.shape[:2]
    vertex_indices = np.tile(np.arange(v)[None], (b, 1))
    vertex_mask = (vertex_indices < num_vertex.astype(np.int32)).astype(F32)[..., None]
    return data, num_vertex.astype(F32), vertex_mask


def hls4ml_garnet(x, config: dict, transforms: list, stacked: bool):
    """GarNet(Stack).call: ``transforms`` are (FLR, S, Fout) (kernel, bias) per sublayer."""
    act = ACTIVATIONS[config["output_activation"]]
    data, num_vertex, vertex_mask = _unpack_input(x, config["input_format"])
    for (flr_k, flr_b), (s_k, s_b), (out_k, out_b) in transforms:
        features = data @ flr_k + flr_b
        distance = data @ s_k + s_b
        edge_weights = vertex_mask * np.exp(-np.square(distance))
        n_agg, n_prop = s_k.shape[1], flr_k.shape[1]

        def graph_mean(out, axis, n_agg=n_agg, n_prop=n_prop):
            if not config["mean_by_nvert"]:
                return out.mean(axis=axis, dtype=F32)
            s = out.sum(axis=axis, dtype=F32).reshape(-1, n_agg * n_prop) / num_vertex
            return s.reshape(-1, n_agg, n_prop)

        aggregated = _apply_edge_weights(features, edge_weights.transpose(0, 2, 1), aggregation=graph_mean)
        updated = _apply_edge_weights(aggregated, edge_weights)
        out = updated @ out_k + out_b
        data = vertex_mask * act(out if stacked else act(out))  # GarNet's Fout has the activation too
    collapse = config["collapse"]
    if collapse == "mean":
        return data.sum(axis=1) / config["mean_by_nvert"] if config["mean_by_nvert"] else data.mean(axis=1)
    if collapse == "sum":
        return data.sum(axis=1)
    return data.max(axis=1) if collapse == "max" else data


# ---- Keras 2 files holding the layer ----------------------------------------------------------------------------


def garnet_config(cls: str = "GarNet", **options) -> dict:
    """hls4ml's get_config of a GarNet (or GarNetStack: lists of sizes and n_sublayers)."""
    config = {**common("gar_1"), "simplified": True, "collapse": "mean", "input_format": "xn",
              "output_activation": None, "quantize_transforms": False if cls == "GarNet" else None,
              "mean_by_nvert": False, "n_aggregators": 4, "n_filters": 5, "n_propagate": 6, **options}
    config.pop("activity_regularizer")
    return {"class_name": cls, "config": config}


def count_input(name: str) -> dict:
    spec = input_layer(name, [1])
    spec["config"]["dtype"] = "int32"
    return spec


def write_garnet(tmp_path, config: dict, rng, head: bool = False):
    """The Keras 2 json + weights of a model around the layer; returns (paths, transforms, weights)."""
    c = config["config"]
    stacked = config["class_name"] == "GarNetStack"
    sizes = [c["n_propagate"], c["n_aggregators"], c["n_filters"]]
    sizes = list(zip(*sizes)) if stacked else [sizes]
    width, transforms, weights = {"x": 4, "xn": D, "xen": D + 1}[c["input_format"]], [], {}
    for k, (p, a, f) in enumerate(sizes):
        tag = str(k) if stacked else ""
        t = [(normal(rng, width, p) / 2, normal(rng, p) / 4), (normal(rng, width, a) / 2, normal(rng, a) / 4),
             (normal(rng, a * p, f) / 2, normal(rng, f) / 4)]
        transforms.append(t)
        for part, (kernel, bias) in zip(("FLR", "S", "Fout"), t):
            weights[f"{part}{tag}_kernel"], weights[f"{part}{tag}_bias"] = kernel, bias
        width = f
    inputs = {"x": [input_layer("data", [V, 4])], "xn": [input_layer("data", [V, D]), count_input("n_vertex")],
              "xen": [input_layer("data", [V, D]), input_layer("energy", [V]), count_input("n_vertex")]}
    layers = [node(spec) for spec in inputs[c["input_format"]]]
    names = [spec["config"]["name"] for spec in inputs[c["input_format"]]]
    layers.append(node(config, *names))
    all_weights = {"gar_1": weights}
    output = "gar_1"
    if head:  # a Dense after the layer, as in hls4ml's example model
        head_w = (normal(rng, sizes[-1][2], 2), normal(rng, 2))
        layers.append(node(dense("dense", 2, "sigmoid"), "gar_1"))
        all_weights["dense"] = {"kernel": head_w[0], "bias": head_w[1]}
        output, transforms = "dense", (transforms, head_w)
    json_path, weights_path = tmp_path / "garnet.json", tmp_path / "garnet_weights.h5"
    write_json_and_weights(json_path, weights_path, functional("garnet", layers, names, [output]), all_weights)
    return (json_path, weights_path), transforms


def feeds(rng, input_format: str, batch: int = 6, min_count: int = 0) -> list[np.ndarray]:
    """Random vertices; counts from min_count to past V (vertices at or past the count are masked)."""
    data = rng.standard_normal((batch, V, D)).astype(F32)
    counts = np.array([[min_count], [V], [V + 3], *[[c] for c in rng.integers(min_count, V, batch - 3)]],
                      dtype=np.int32)
    if input_format == "x":
        data = rng.standard_normal((batch, V, 4)).astype(F32)
        data[:, :, 3] *= rng.random((batch, V)) < 0.6  # a zero fourth feature masks the vertex
        return [data]
    if input_format == "xen":
        return [data, rng.standard_normal((batch, V)).astype(F32), counts]
    return [data, counts]


CASES = {
    "mean": dict(collapse="mean"),
    "mean_by_nvert": dict(collapse="mean", mean_by_nvert=True),
    "sum_tanh": dict(collapse="sum", output_activation="tanh"),
    "max_relu_by_nvert": dict(collapse="max", output_activation="relu", mean_by_nvert=True),
    "none": dict(collapse=None, output_activation="sigmoid"),
    "xen_sum": dict(collapse="sum", input_format="xen"),
    "x_by_nvert": dict(collapse=None, input_format="x", mean_by_nvert=True),
    "stack_mean": dict(cls="GarNetStack", collapse="mean", output_activation="tanh", n_aggregators=[4, 3],
                       n_filters=[5, 4], n_propagate=[6, 2], n_sublayers=2),
}


@pytest.mark.parametrize("case", CASES)
def test_garnet_against_hls4ml_numpy(tmp_path, case):
    options = dict(CASES[case])
    cls = options.pop("cls", "GarNet")
    config = garnet_config(cls, **options)
    rng = np.random.default_rng(sorted(CASES).index(case))
    (json_path, weights_path), transforms = write_garnet(tmp_path, config, rng)
    model = sr.load(json_path, weights=weights_path)
    x = feeds(rng, config["config"]["input_format"], min_count=1 if options.get("mean_by_nvert") else 0)
    expected = hls4ml_garnet(x, config["config"], transforms, cls == "GarNetStack")
    got = sr.compile(model, backend="native").infer(*x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # the Keras model the reader rebuilds (the benchmark's reference) computes the same
    from sofie_rdf.parsers.keras.legacy import read_keras2

    rebuilt = read_keras2(json_path, weights_path, keras).predict(x if len(x) > 1 else x[0], verbose=0)
    np.testing.assert_allclose(rebuilt, expected, rtol=1e-5, atol=1e-6)


def test_garnet_masks_vertices_past_the_count(tmp_path):
    """The vertex count decides: features of vertices at or past it change nothing."""
    config = garnet_config(collapse="sum", output_activation="tanh")
    rng = np.random.default_rng(11)
    (json_path, weights_path), _ = write_garnet(tmp_path, config, rng)
    sess = sr.compile(sr.load(json_path, weights=weights_path), backend="native")
    data, counts = feeds(rng, "xn")
    changed = data.copy()
    for event, count in enumerate(counts[:, 0]):
        changed[event, count:] = rng.standard_normal(changed[event, count:].shape)
    np.testing.assert_array_equal(sess.infer(data, counts), sess.infer(changed, counts))
    assert not np.array_equal(sess.infer(data, counts), sess.infer(data, np.full_like(counts, V)))


@pytest.mark.parametrize("cls, options, problem", [
    ("GarNet", dict(simplified=False), r"simplified=False: hls4ml's GarNet builds its Fout transform"),
    ("GarNet", dict(quantize_transforms=True), r"quantize_transforms=True: hls4ml's GarNet then quantizes"),
    ("GarNetStack", dict(quantize_transforms=False, n_aggregators=[2], n_filters=[2], n_propagate=[2]),
     r"quantize_transforms=False: hls4ml's GarNetStack then quantizes"),
    ("GarNet", dict(collapse="median"), r"collapse='median' is not one of"),
    ("GarNet", dict(input_format="xne"), r"input_format='xne' is not one of"),
    ("GarNet", dict(output_activation="swoosh"), r"output_activation='swoosh' is not a Keras activation"),
    ("GarNet", dict(total_bits=8), r"keys \['total_bits'\] are not ones hls4ml's GarNet.get_config writes"),
])
def test_refused_garnet_options_name_model_layer_and_option(tmp_path, cls, options, problem):
    config = garnet_config(cls, **options)
    spec = config["config"]
    json_path = tmp_path / "garnet.json"
    layers = [node(input_layer("data", [V, D])), node(count_input("n_vertex")), node(config, "data", "n_vertex")]
    write_json_and_weights(json_path, tmp_path / "w.h5", functional("refused_garnet", layers, ["data", "n_vertex"],
                                                                    [spec["name"]]), {})
    with pytest.raises(sr.ModelFormatError, match=problem) as info:
        sr.load(json_path, weights=tmp_path / "w.h5")
    assert "'garnet'" in str(info.value) and "'gar_1'" in str(info.value)


def test_public_garnet_file():
    """hls4ml's example model (example-models/keras/garnet_1layer), where ``benchmarks.public --fetch`` put it."""
    from benchmarks.public import models_dir

    folder = models_dir() / "fastmachinelearning+example-models" / "keras"
    if not (folder / "garnet_1layer.json").is_file():
        pytest.skip("hls4ml's garnet_1layer is not fetched (python -m benchmarks.public --fetch ...)")
    import json

    import h5py

    model = sr.load(folder / "garnet_1layer.json", weights=folder / "garnet_1layer_weights.h5")
    with h5py.File(folder / "garnet_1layer_weights.h5") as f:
        group = f["model_weights"]
        w = {f"{layer}/{name}": np.asarray(group[layer][layer][f"{name}:0"]) for layer in ("gar_1", "dense", "dense_1")
             for name in ([f"{t}_{part}" for t in ("FLR", "S", "Fout") for part in ("kernel", "bias")]
                          if layer == "gar_1" else ["kernel", "bias"])}
    config = next(spec["config"] for spec in json.loads((folder / "garnet_1layer.json").read_text())["config"]["layers"]
                  if spec["class_name"] == "GarNet")
    transforms = [[(w[f"gar_1/{t}_kernel"], w[f"gar_1/{t}_bias"]) for t in ("FLR", "S", "Fout")]]
    rng = np.random.default_rng(3)
    data = rng.random((8, 128, 4), dtype=F32)
    counts = np.array([[0], [1], [37], [128], [200], [64], [5], [100]], dtype=np.int32)
    hidden = np.maximum(hls4ml_garnet([data, counts], config, transforms, stacked=False) @ w["dense/kernel"]
                        + w["dense/bias"], 0)
    expected = ACTIVATIONS["sigmoid"](hidden @ w["dense_1/kernel"] + w["dense_1/bias"])
    got = sr.compile(model, backend="native").infer(data, counts)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
