"""Keras 3 front end (torch backend): recurrent layers, Embedding and MultiHeadAttention against ``model.predict``.

Checked like tests/test_keras.py: from the object, the ``.keras`` and the
``.h5`` file, rtol 1e-4 / atol 1e-5, batch 3, sequences of 7 steps (9 where
the length is left open).  Each model has several outputs so one compiled
session covers many layer options.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.test_keras import BATCH, _data, _seeded

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

STEPS, FEATURES, UNITS = 7, 4, 5


def _outputs(*results) -> list:
    """Layer results flattened (layers with return_state give lists)."""
    return [t for r in results for t in (r if isinstance(r, (list, tuple)) else [r])]


def _tokens(steps: int = STEPS, vocabulary: int = 11, dtype=np.int32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocabulary, (BATCH, steps)).astype(dtype)


# Per layer class: option sets, each one output group of one model.
OPTIONS = {
    "SimpleRNN": [{}, {"return_sequences": True, "go_backwards": True, "activation": "relu"},
                  {"return_sequences": True, "return_state": True, "use_bias": False, "activation": "linear"},
                  {"activation": "sigmoid", "dropout": 0.3, "recurrent_dropout": 0.2}],
    "GRU": [{}, {"reset_after": False, "return_sequences": True},
            {"return_sequences": True, "go_backwards": True, "recurrent_activation": "hard_sigmoid"},
            {"reset_after": False, "return_sequences": True, "return_state": True, "use_bias": False,
             "activation": "relu"},
            {"return_sequences": True, "return_state": True, "activation": "linear", "dropout": 0.3}],
    "LSTM": [{}, {"return_sequences": True, "go_backwards": True, "unit_forget_bias": False},
             {"return_sequences": True, "return_state": True, "recurrent_activation": "hard_sigmoid",
              "activation": "relu"},
             {"use_bias": False, "activation": "linear", "recurrent_dropout": 0.2}],
}


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_recurrent_layers(check_keras, kind):
    x = keras.Input((STEPS, FEATURES), name="x")
    results = [getattr(layers, kind)(UNITS, name=f"{kind.lower()}_{k}", **options)(x)
               for k, options in enumerate(OPTIONS[kind])]
    results.append(layers.RNN(getattr(layers, f"{kind}Cell")(3), return_sequences=True, name="generic")(x))
    check_keras(_seeded(keras.Model(x, _outputs(*results), name=f"{kind.lower()}s")), _data(STEPS, FEATURES))


def test_last_output_with_states(check_keras):
    """return_state without return_sequences: the output is the final h, also returned as a state."""
    x = keras.Input((STEPS, FEATURES), name="x")
    joined = [layers.Concatenate(name=f"joined_{kind.lower()}")(
        _outputs(getattr(layers, kind)(UNITS, return_state=True)(x))) for kind in ("SimpleRNN", "GRU", "LSTM")]
    check_keras(_seeded(keras.Model(x, joined, name="last_with_states")), _data(STEPS, FEATURES))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional(check_keras, merge_mode):
    x = keras.Input((STEPS, FEATURES), name="x")
    results = [
        layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True), merge_mode=merge_mode)(x),
        layers.Bidirectional(layers.GRU(3, reset_after=merge_mode == "sum"), merge_mode=merge_mode)(x),
        layers.Bidirectional(layers.SimpleRNN(3, return_sequences=True, return_state=True, activation="relu"),
                             merge_mode=merge_mode)(x),
    ]
    model = keras.Model(x, _outputs(*results), name=f"bidirectional_{merge_mode}")
    check_keras(_seeded(model), _data(STEPS, FEATURES))


def test_bidirectional_different_halves(check_keras):
    """Halves that cannot share one ONNX node: different cells and sizes, a forward half reading backwards."""
    x = keras.Input((STEPS, FEATURES), name="x")
    # Keras cannot mix cells with different state counts under return_state (it lists the forward states twice).
    mixed = layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True),
                                 backward_layer=layers.GRU(3, return_sequences=True, go_backwards=True))(x)
    reversed_halves = layers.Bidirectional(
        layers.SimpleRNN(3, return_sequences=True, go_backwards=True),
        backward_layer=layers.SimpleRNN(3, return_sequences=True, activation="relu"), merge_mode="sum")(x)
    activations = layers.Bidirectional(  # one ONNX node, activations per direction
        layers.LSTM(3, return_sequences=True),
        backward_layer=layers.LSTM(3, return_sequences=True, go_backwards=True, activation="relu",
                                   recurrent_activation="hard_sigmoid"), merge_mode="mul")(x)
    last = layers.Bidirectional(layers.GRU(3), backward_layer=layers.LSTM(3, go_backwards=True), merge_mode="ave")(x)
    check_keras(_seeded(keras.Model(x, _outputs(mixed, reversed_halves, activations, last), name="bidirectional_mixed")),
                _data(STEPS, FEATURES))


def test_open_length_and_initial_states(check_keras):
    """keras.Input((None, F)): the sequence length is a symbol; initial states are model inputs."""
    x = keras.Input((None, FEATURES), name="x")
    h = keras.Input((UNITS,), name="h")
    c = keras.Input((UNITS,), name="c")
    results = [
        layers.LSTM(UNITS, return_sequences=True)(x, initial_state=[h, c]),
        layers.GRU(UNITS, go_backwards=True)(x, initial_state=[h]),
        layers.Bidirectional(layers.SimpleRNN(UNITS, return_sequences=True))(x, initial_state=[h, h]),
        layers.Bidirectional(layers.GRU(3))(x),
        layers.MultiHeadAttention(2, 3, name="causal")(x, x, use_causal_mask=True),
    ]
    model = _seeded(keras.Model([x, h, c], _outputs(*results), name="open_length"))
    check_keras(model, [_data(9, FEATURES), _data(UNITS, seed=1), _data(UNITS, seed=2)])


def test_embedding(check_keras):
    """int32, int64 and float indices (Keras casts floats to int32)."""
    inputs = [keras.Input((STEPS,), dtype=dtype, name=f"tokens_{dtype}") for dtype in ("int32", "int64", "float32")]
    outputs = [layers.Embedding(11, 6, name=f"embedding_{k}")(t) for k, t in enumerate(inputs)]
    model = _seeded(keras.Model(inputs, outputs, name="embeddings"))
    check_keras(model, [_tokens(dtype=dtype, seed=k) for k, dtype in enumerate((np.int32, np.int64, np.float32))])


def test_multi_head_attention(check_keras):
    query = keras.Input((STEPS, 8), name="query")
    value = keras.Input((6, FEATURES), name="value")
    key = keras.Input((6, 3), name="key")
    output, scores = layers.MultiHeadAttention(2, 3, name="cross")(query, value, return_attention_scores=True)
    results = [
        output, scores,
        layers.MultiHeadAttention(3, 4, value_dim=2, use_bias=False, output_shape=(7,), name="with_key")(
            query, value, key),
        layers.MultiHeadAttention(2, 4, name="causal")(query, query, use_causal_mask=True),
        layers.MultiHeadAttention(2, 4, use_gate=True, sliding_window=2, dropout=0.2, name="gated")(query, query),
    ]
    model = _seeded(keras.Model([query, value, key], results, name="attention"))
    check_keras(model, [_data(STEPS, 8), _data(6, FEATURES, seed=1), _data(6, 3, seed=2)])


def test_multi_head_attention_axes(check_keras):
    """Rank-4 inputs: attention over both inner axes (default) and over one."""
    x = keras.Input((2, 3, FEATURES), name="x")
    results = [layers.MultiHeadAttention(2, 3, name="both")(x, x),
               layers.MultiHeadAttention(2, 3, attention_axes=(2,), output_shape=(2, 3), name="inner")(x, x)]
    check_keras(_seeded(keras.Model(x, results, name="attention_axes")), _data(2, 3, FEATURES))


def test_sequence_classifier(check_keras):
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    h = layers.Embedding(20, 8)(tokens)
    h = layers.Bidirectional(layers.LSTM(6))(h)
    probabilities = layers.Dense(3, activation="softmax", name="classes")(h)
    check_keras(_seeded(keras.Model(tokens, probabilities, name="classifier")), _tokens(vocabulary=20))


def test_transformer_block(check_keras):
    x = keras.Input((STEPS, 8), name="x")
    attended = layers.MultiHeadAttention(2, 4)(x, x)
    h = layers.LayerNormalization()(layers.Add()([x, attended]))
    feed_forward = layers.Dense(8)(layers.Dense(16, activation="gelu")(h))
    y = layers.LayerNormalization(name="block")(layers.Add()([h, feed_forward]))
    check_keras(_seeded(keras.Model(x, y, name="transformer_block")), _data(STEPS, 8))


def _stack(*sizes: int) -> layers.StackedRNNCells:
    """An LSTM, a GRU and a SimpleRNN cell (as many as ``sizes``), stacked."""
    kinds = [layers.LSTMCell, layers.GRUCell, layers.SimpleRNNCell]
    return layers.StackedRNNCells([kinds[k % 3](units) for k, units in enumerate(sizes)])


def _stacked_outputs(h) -> list:
    """Every option of an RNN of stacked cells, on the sequence ``h`` (an LSTM cell's states come as a pair)."""
    return keras.tree.flatten((
        layers.RNN(_stack(4, 3, 2), name="stack_last")(h),
        layers.RNN(_stack(4, 3, 2), return_sequences=True, return_state=True, name="stack_states")(h),
        layers.RNN(_stack(3, 4, 2), return_sequences=True, return_state=True, go_backwards=True, name="stack_back")(h),
        layers.RNN(_stack(2, 3), go_backwards=True, name="stack_back_last")(h),
        layers.RNN([layers.GRUCell(3, reset_after=False), layers.GRUCell(2)], name="cell_list")(h),
        layers.Bidirectional(layers.RNN(_stack(3, 2), return_sequences=True, return_state=True), name="stack_both")(h),
        layers.Bidirectional(layers.RNN(_stack(2, 2)), merge_mode="sum", name="stack_both_sum")(h)))


def test_stacked_cells(check_keras):
    """keras.layers.RNN over StackedRNNCells (or a list of cells): one ONNX node per cell; sequences, states, reading
    backwards, Bidirectional."""
    x = keras.Input((STEPS, FEATURES), name="x")
    check_keras(_seeded(keras.Model(x, _stacked_outputs(x), name="stacked_cells")), _data(STEPS, FEATURES))


def test_stacked_cells_masked(check_keras):
    """A Keras mask skips a step in every cell of the stack."""
    x = keras.Input((STEPS, FEATURES), name="x")
    x_data = _data(STEPS, FEATURES)
    x_data[0, :2] = x_data[1, 3] = x_data[2, -2:] = 0.0
    model = keras.Model(x, _stacked_outputs(layers.Masking(0.0)(x)), name="stacked_masked")
    check_keras(_seeded(model), x_data, sources=("object", "keras"))


def test_stacked_cells_open_length_and_initial_states(check_keras):
    """An open sequence length; initial states given per cell (an LSTM cell's as a pair)."""
    x = keras.Input((None, FEATURES), name="x")
    h = keras.Input((UNITS,), name="h")
    c = keras.Input((UNITS,), name="c")
    g = keras.Input((3,), name="g")
    results = [
        layers.RNN(_stack(UNITS, 3), return_sequences=True, return_state=True)(x, initial_state=[[h, c], g]),
        layers.RNN(_stack(UNITS, 3), go_backwards=True, return_sequences=True)(x, initial_state=[[h, c], g]),
    ]
    model = _seeded(keras.Model([x, h, c, g], keras.tree.flatten(results), name="stacked_open"))
    check_keras(model, [_data(9, FEATURES), _data(UNITS, seed=1), _data(UNITS, seed=2), _data(3, seed=3)])


def test_stacked_cells_refused():
    """A stack inside a stack has no converter: refused naming the layer, not misread."""
    x = keras.Input((None, FEATURES))
    nested = layers.RNN(layers.StackedRNNCells([_stack(3), layers.GRUCell(2)]), name="nested")
    with pytest.raises(sr.UnsupportedOperatorError, match="RNN of a StackedRNNCells in StackedRNNCells.*nested"):
        sr.load(keras.Model(x, nested(x)))


def test_backwards_sequence_of_open_length(check_keras):
    """go_backwards with return_sequences over an open length: the sequence reversed at run time."""
    x = keras.Input((None, FEATURES), name="x")
    y = layers.GRU(3, go_backwards=True, return_sequences=True, name="gru")(x)
    check_keras(_seeded(keras.Model(x, y, name="backwards_open")), _data(STEPS, FEATURES))
