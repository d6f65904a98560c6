"""RNN, GRU and LSTM against onnxruntime: directions, layouts, every optional input and output,
sequence_lens, activations with parameters, clip, GRU linear_before_reset, LSTM peepholes and
input_forget, symbolic sequence length and batch, float64, and the numpy reference (folding)."""

import numpy as np
import pytest
from conftest import make_model, ort_run, sofie_run
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.errors import ShapeError, SofieError, UnsupportedOperatorError

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
SEQ, BATCH, INPUT, HIDDEN = 5, 3, 4, 6


def recurrent_model(op: str, *, direction: str = "forward", layout: int = 0, bias: bool = True,
                    lens: bool = False, initial_h: bool = False, initial_c: bool = False, peephole: bool = False,
                    outputs: tuple = (0, 1, 2), weights_as_inputs: bool = False, symbolic: bool = False,
                    dtype=np.float32, seq: int = SEQ, batch: int = BATCH, opset: int = 14, seed: int = 0,
                    scale: float = 0.5, **attrs):
    """An ONNX model with one recurrent node and the feeds to run it (random, seeded)."""
    rng = np.random.default_rng(seed)
    d = 2 if direction == "bidirectional" else 1
    g = GATES[op]

    def rand(*shape):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    x_shape = (batch, seq, INPUT) if layout else (seq, batch, INPUT)
    state = (batch, d, HIDDEN) if layout else (d, batch, HIDDEN)
    values = {"X": rand(*x_shape), "W": rand(d, g * HIDDEN, INPUT), "R": rand(d, g * HIDDEN, HIDDEN)}
    names = ["X", "W", "R"]
    optional = [("B", bias, lambda: rand(d, 2 * g * HIDDEN)),
                ("sequence_lens", lens, lambda: rng.integers(0, seq + 1, batch).astype(np.int32)),
                ("initial_h", initial_h, lambda: rand(*state)),
                ("initial_c", initial_c, lambda: rand(*state)),
                ("P", peephole, lambda: rand(d, 3 * HIDDEN))]
    for name, wanted, make in optional[:5 if op == "LSTM" else 3]:
        names.append(name if wanted else "")
        if wanted:
            values[name] = make()
    while names[-1] == "":
        names.pop()
    out_names = ["Y", "Y_h", "Y_c"][:3 if op == "LSTM" else 2]
    node_outputs = [n if k in outputs else "" for k, n in enumerate(out_names)]
    while node_outputs[-1] == "":
        node_outputs.pop()
    if layout:
        attrs["layout"] = 1
    node = helper.make_node(op, names, node_outputs, hidden_size=HIDDEN, direction=direction, **attrs)
    seq_dim, batch_dim = ("S" if symbolic else seq), ("N" if symbolic else batch)
    xs = (batch_dim, seq_dim, INPUT) if layout else (seq_dim, batch_dim, INPUT)
    ss = (batch_dim, d, HIDDEN) if layout else (d, batch_dim, HIDDEN)
    ys = (batch_dim, seq_dim, d, HIDDEN) if layout else (seq_dim, d, batch_dim, HIDDEN)
    feeds_names = ["X"] + (["W", "R", "B"] if weights_as_inputs else []) + ["sequence_lens", "initial_h", "initial_c"]
    shapes = {"X": xs, "W": values["W"].shape, "R": values["R"].shape, "B": (d, 2 * g * HIDDEN),
              "sequence_lens": (batch_dim,), "initial_h": ss, "initial_c": ss}
    inputs = [(n, values[n].dtype, shapes[n]) for n in feeds_names if n in values]
    inits = {n: v for n, v in values.items() if n not in [i[0] for i in inputs]}
    outs = [(n, dtype, ys if n == "Y" else ss) for n in node_outputs if n]
    model = make_model([node], inputs, outs, inits, opset=opset, name=f"{op.lower()}_test")
    return model, {i[0]: values[i[0]] for i in inputs}


def check(model, feeds, rtol=1e-4, atol=1e-5):
    ours, ref = sofie_run(model, feeds), ort_run(model, feeds)
    assert len(ours) == len(ref)
    for k, (a, b) in enumerate(zip(ours, ref)):
        assert a.shape == b.shape and a.dtype == b.dtype, f"output {k}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"output {k}")
    return ours


def check_batch_major(op: str, **options):
    """layout=1 (which onnxruntime refuses) against the time-major model on transposed tensors."""
    model, feeds = recurrent_model(op, layout=1, **options)
    twin, _ = recurrent_model(op, layout=0, **options)  # same seed: same weights
    time_major = {k: (v.transpose(1, 0, 2) if k in ("X", "initial_h", "initial_c") else v) for k, v in feeds.items()}
    ours, ref = sofie_run(model, feeds), ort_run(twin, time_major)
    names = [o.name for o in model.graph.output]
    for name, a, b in zip(names, ours, ref):
        b = b.transpose(2, 0, 1, 3) if name == "Y" else b.transpose(1, 0, 2)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)


# ---- against onnxruntime -------------------------------------------------------------

OPTIONS = {
    "defaults": {},
    "no_bias": {"bias": False},
    "reverse": {"direction": "reverse"},
    "bidirectional": {"direction": "bidirectional"},
    "initial_states": {"initial_h": True, "initial_c": True, "direction": "bidirectional"},
    "sequence_lens": {"lens": True, "seed": 3},
    "sequence_lens_reverse": {"lens": True, "direction": "reverse", "seed": 5},
    "sequence_lens_bidirectional": {"lens": True, "initial_h": True, "initial_c": True, "direction": "bidirectional"},
    "clip": {"clip": 0.3, "direction": "bidirectional", "scale": 1.0},
    "only_Y": {"outputs": (0,)},
    "only_Y_h": {"outputs": (1,)},
    "only_last_state": {"outputs": (2,)},
    "weights_as_inputs": {"weights_as_inputs": True, "initial_h": True, "lens": True, "direction": "bidirectional"},
    "symbolic_seq_and_batch": {"symbolic": True, "lens": True, "initial_h": True},
    "opset7": {"opset": 7, "initial_h": True, "direction": "bidirectional"},
    "batch_1": {"batch": 1, "seq": 20},
    "seq_1": {"seq": 1, "direction": "bidirectional"},
}


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("op", GATES)
def test_options(op, option):
    kwargs = dict(OPTIONS[option])
    if op != "LSTM" and kwargs.get("outputs") == (2,):
        kwargs["outputs"] = (0, 1)  # no Y_c
    check(*recurrent_model(op, **kwargs))


@pytest.mark.parametrize("op", GATES)
def test_sequence_lens_covers_zero_and_full(op):
    """Rows of every length in one batch: 0 (zeros in Y and Y_h), partial and the whole tensor."""
    model, feeds = recurrent_model(op, lens=True, initial_h=True, initial_c=True, direction="bidirectional", batch=4)
    feeds["sequence_lens"] = np.array([0, 2, SEQ, 1], np.int32)
    ours = check(model, feeds)
    assert np.all(ours[0][2:, :, 1] == 0) and np.all(ours[0][:, :, 0] == 0) and np.all(ours[1][:, 0] == 0)


@pytest.mark.parametrize("op", GATES)
def test_batch_major_layout(op):
    check_batch_major(op, lens=True, initial_h=True, initial_c=True, direction="bidirectional", seed=2)


@pytest.mark.parametrize("op", GATES)
def test_batch_major_symbolic(op):
    check_batch_major(op, symbolic=True, direction="reverse")


def test_gru_linear_before_reset():
    check(*recurrent_model("GRU", linear_before_reset=1, direction="bidirectional", lens=True, initial_h=True))
    check(*recurrent_model("GRU", linear_before_reset=1, clip=0.4, scale=1.0, outputs=(1,)))


def test_lstm_peepholes_and_input_forget():
    check(*recurrent_model("LSTM", peephole=True, initial_c=True, direction="bidirectional"))
    check(*recurrent_model("LSTM", input_forget=1, peephole=True, clip=0.5, scale=1.0))
    check(*recurrent_model("LSTM", input_forget=1, direction="reverse", lens=True))


ACTIVATIONS = ["Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid",
               "Elu", "Softsign", "Softplus"]


# The ONNX spec's defaults where onnxruntime (which uses 0) differs: given explicitly to onnxruntime.
SPEC_DEFAULTS = {"Affine": {"activation_alpha": [1.0], "activation_beta": [0.0]},
                 "ThresholdedRelu": {"activation_alpha": [1.0]},
                 "ScaledTanh": {"activation_alpha": [1.0], "activation_beta": [1.0]}}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_rnn_activation(activation):
    """Each activation with explicit alpha/beta (consumed only where used) and with its defaults."""
    check(*recurrent_model("RNN", activations=[activation], activation_alpha=[0.7], activation_beta=[0.3], scale=1.0))
    model, feeds = recurrent_model("RNN", activations=[activation], seed=1)
    if activation not in SPEC_DEFAULTS:
        check(model, feeds)
        return
    explicit, _ = recurrent_model("RNN", activations=[activation], seed=1, **SPEC_DEFAULTS[activation])
    for ours, ref in zip(sofie_run(model, feeds), ort_run(explicit, feeds)):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_activations_per_direction_and_gate():
    check(*recurrent_model("LSTM", activations=["HardSigmoid", "ScaledTanh", "Affine", "Sigmoid", "Elu", "Softsign"],
                           activation_alpha=[0.7, 0.4, 1.5, 0.2], activation_beta=[0.3, 0.6],
                           direction="bidirectional"))
    check(*recurrent_model("GRU", activations=["HardSigmoid", "LeakyRelu", "Sigmoid", "Softplus"],
                           activation_alpha=[0.3], direction="bidirectional"))
    check(*recurrent_model("RNN", activations=["Relu", "ThresholdedRelu"], activation_alpha=[0.1, 0.2],
                           direction="bidirectional"))


@pytest.mark.parametrize("op", GATES)
def test_float64(op):
    """onnxruntime has no double GRU/LSTM: compare with its float32 run of the same values."""
    options = {"lens": True, "initial_h": True, "initial_c": True, "direction": "bidirectional"}
    model, feeds = recurrent_model(op, dtype=np.float64, **options)
    twin, _ = recurrent_model(op, dtype=np.float32, **options)
    ours = sofie_run(model, feeds)
    ref = ort_run(twin, {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in feeds.items()})
    for a, b in zip(ours, ref):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", GATES)
def test_numpy_reference(op, check_folded):
    """Everything constant: the whole layer folds at generation time through the numpy reference."""
    model, feeds = recurrent_model(op, lens=True, initial_h=True, initial_c=True, peephole=True,
                                   direction="bidirectional", clip=0.8)
    check_folded(model, feeds)


def test_weights_are_packed_and_outputs_feed_downstream(check_model):
    """Constant W and R are stored transposed for the kernel; Y, Y_h, Y_c are used by later nodes."""
    model, feeds = recurrent_model("LSTM", direction="bidirectional", initial_h=True)
    graph = model.graph
    for name in ("Y", "Y_h", "Y_c"):
        graph.node.append(helper.make_node("Relu", [name], [f"{name}_relu"]))
    graph.node.append(helper.make_node("Add", ["Y_h_relu", "Y_c_relu"], ["state_sum"]))
    outputs = [helper.make_tensor_value_info(n, 1, None) for n in ("Y_relu", "state_sum")]
    del graph.output[:]
    graph.output.extend(outputs)
    check_model(model, feeds)
    code = sr.load(model).code().header
    assert "rec.packed_w = true; rec.packed_r = true;" in code and "kernels::lstm(rec, 1, true" in code


# ---- errors ---------------------------------------------------------------------------

def test_sequence_lens_out_of_range_raises():
    model, feeds = recurrent_model("GRU", lens=True)
    session = sr.compile(sr.load(model))
    feeds["sequence_lens"] = np.array([1, SEQ + 1, 0], np.int32)
    with pytest.raises(SofieError, match=r"sequence_lens\[1\] = 6 is outside \[0, 5\]"):
        session.infer(*[feeds[i.name] for i in session.inputs])


def test_bad_weights_shape():
    model, _ = recurrent_model("LSTM")
    init = {i.name: i for i in model.graph.initializer}
    init["R"].dims[1] = 3 * HIDDEN
    init["R"].raw_data = init["R"].raw_data[: 3 * HIDDEN * HIDDEN * 4]
    with pytest.raises(ShapeError, match=r"LSTM node .*R has shape \(1, 18, 6\), expected"):
        sr.load(model).code()


def test_hidden_size_mismatch():
    model, _ = recurrent_model("RNN")
    next(a for a in model.graph.node[0].attribute if a.name == "hidden_size").i = HIDDEN + 1
    with pytest.raises(ShapeError, match="hidden_size is 7 but R has hidden size 6"):
        sr.load(model).code()


def test_unknown_activation():
    model, _ = recurrent_model("GRU", activations=["Sigmoid", "Gelu"])
    with pytest.raises(UnsupportedOperatorError, match="GRU activation 'Gelu'"):
        sr.load(model).code()


def test_wrong_number_of_activations():
    model, _ = recurrent_model("LSTM", activations=["Sigmoid", "Tanh"])
    with pytest.raises(ShapeError, match="2 activations given, expected 3 per direction"):
        sr.load(model).code()


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_saturated_states_through_the_denormal_range(op):
    """Large weights saturate the gates and a forget gate near 0 decays the state through the denormal range, which
    the recurrence runs with denormals flushed (FTZ/DAZ, native code): the outputs match onnxruntime, and the
    caller's floating-point state is restored (numpy still makes a denormal afterwards)."""
    model, feeds = recurrent_model(op, seq=40, batch=4, scale=6.0, seed=3)
    sess = sr.compile(sr.load(model), backend="native")
    ours, ref = sess.infer(*feeds.values()), ort_run(model, feeds)
    for a, b in zip(ours if isinstance(ours, tuple) else (ours,), ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    tiny = np.array([1e-39], np.float32)
    assert (tiny * np.float32(1.0))[0] != 0  # FTZ/DAZ did not leak into the caller's thread
