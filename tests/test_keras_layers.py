"""Keras 3 front end (torch backend): preprocessing layers, training-only layers, TimeDistributed and masks against
``model.predict``.

Checked like tests/test_keras.py (``check_keras``: the object, the ``.keras`` and the ``.h5`` file where Keras can
write one), rtol 1e-4 / atol 1e-5, batch 3.  Masked models are fed padded batches whose masks have holes in the
middle, a fully masked row and unmasked rows.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.test_keras import _data, _seeded

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ---- preprocessing and training-only layers ---------------------------------------------------------------------


def test_rescaling_and_normalization(check_keras):
    x = keras.Input((4, 3), name="x")
    adapted = layers.Normalization(axis=-1, name="adapted")
    adapted.adapt(_data(4, 3, seed=5) * 3.0 + 1.0)
    per_step = layers.Normalization(axis=(1, 2), name="per_step")
    per_step.adapt(_data(4, 3, seed=6))
    outs = [
        layers.Rescaling(1.0 / 255, name="rescale")(x),
        layers.Rescaling([0.5, 2.0, -1.0], offset=0.25, name="per_channel")(x),
        adapted(x),
        per_step(x),
        layers.Normalization(mean=2.0, variance=4.0, name="given_scalar")(x),
        layers.Normalization(axis=1, mean=[0.0, 1.0, 2.0, 3.0], variance=[1.0, 2.0, 0.0, 4.0], name="axis1")(x),
        layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0], invert=True, name="inverted")(x),
        layers.Normalization(axis=None, mean=0.5, variance=2.0, name="global")(x),
        layers.Identity(name="identity")(x),
    ]
    check_keras(keras.Model(x, outs, name="preprocess"), _data(4, 3), sources=("object", "keras"))


def test_integer_images_are_cast():
    """Rescaling and the augmentation layers cast integer pixels to the compute dtype first."""
    x = keras.Input((4, 4, 3), dtype="int32", name="pixels")
    model = keras.Model(x, [layers.Rescaling(1.0 / 255, name="scaled")(x), layers.RandomFlip(name="flip")(x)])
    pixels = np.random.default_rng(3).integers(0, 256, (3, 4, 4, 3)).astype(np.int32)
    expected = model.predict(pixels, verbose=0)
    got = sr.compile(sr.load(model)).infer(pixels)
    for g, e in zip(got, expected):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


def test_center_crop(check_keras):
    x = keras.Input((7, 6, 2), name="x")
    first = keras.Input((2, 7, 6), name="first")
    outs = [
        layers.CenterCrop(3, 4, name="crop")(x),
        layers.CenterCrop(7, 5, name="crop_width")(x),
        layers.CenterCrop(4, 2, data_format="channels_first", name="crop_first")(first),
    ]
    check_keras(
        keras.Model([x, first], outs, name="center_crop"), [_data(7, 6, 2), _data(2, 7, 6, seed=1)], sources=("object", "keras")
    )


def test_resizing(check_keras):
    x = keras.Input((6, 9, 2), name="x")
    first = keras.Input((2, 6, 9), name="first")
    outs = [
        layers.Resizing(4, 5, name="bilinear_down")(x),
        layers.Resizing(8, 13, name="bilinear_up")(x),
        layers.Resizing(5, 4, interpolation="nearest", name="nearest")(x),
        layers.Resizing(11, 7, interpolation="nearest", name="nearest_up")(x),
        layers.Resizing(7, 10, interpolation="bicubic", name="bicubic")(x),
        layers.Resizing(4, 4, crop_to_aspect_ratio=True, name="cropped")(x),
        layers.Resizing(3, 4, data_format="channels_first", name="first_format")(first),
    ]
    check_keras(
        keras.Model([x, first], outs, name="resizing"), [_data(6, 9, 2), _data(2, 6, 9, seed=1)], sources=("object", "keras")
    )


def test_training_only_layers_are_identities(check_keras):
    """Augmentation layers return their input at inference; a Dense after them shows the graph goes on."""
    x = keras.Input((6, 6, 3), name="x")
    augment = [
        layers.RandomFlip(),
        layers.RandomRotation(0.2),
        layers.RandomZoom(0.2),
        layers.RandomTranslation(0.1, 0.1),
        layers.RandomContrast(0.3),
        layers.RandomBrightness(0.2),
        layers.RandomCrop(6, 6),
        layers.MixUp(),
        layers.RandomErasing(),
        layers.RandomGaussianBlur(),
        layers.RandAugment(),
        layers.Solarization(),
    ]
    h = x
    for layer in augment:
        h = layer(h)
    y = layers.Dense(2, name="head")(h)
    check_keras(_seeded(keras.Model(x, y, name="augment")), _data(6, 6, 3) + 1.0, sources=("object", "keras"))


def test_discretization_and_spectral_normalization(check_keras):
    x = keras.Input((4, 3), name="x")
    outs = [  # (Discretization.adapt needs TensorFlow)
        layers.Discretization(bin_boundaries=[-1.0, 0.0, 0.5], name="given")(x),
        layers.Discretization(bin_boundaries=[0.25], name="two_bins")(x),
        layers.SpectralNormalization(layers.Dense(5), name="dense")(x),
        layers.SpectralNormalization(layers.Conv1D(2, 2, activation="tanh"), name="conv")(x),
    ]
    model = _seeded(keras.Model(x, outs, name="discretize"))
    x_data = _data(4, 3)
    x_data[0, 0] = [-1.0, 0.0, 0.5]  # values on the boundaries go to the bin above
    check_keras(model, x_data, sources=("object", "keras"))


def test_category_encoding_and_pipeline(check_keras):
    ids = keras.Input((4,), dtype="int32", name="ids")
    one = keras.Input((1,), dtype="int64", name="one")
    image = keras.Input((6, 6, 2), name="image")
    pipeline = layers.Pipeline([layers.Rescaling(0.5), layers.RandomFlip(), layers.CenterCrop(4, 3)], name="pipeline")
    outs = [
        layers.CategoryEncoding(6, output_mode="multi_hot", name="multi_hot")(ids),
        layers.CategoryEncoding(6, output_mode="count", name="count")(ids),
        layers.CategoryEncoding(6, output_mode="one_hot", name="one_hot")(one),
        pipeline(image),
    ]
    model = keras.Model([ids, one, image], outs, name="encodings")
    ids_data = np.array([[0, 3, 3, 5], [1, 1, 1, 1], [2, 4, 0, 2]], dtype=np.int32)
    check_keras(model, [ids_data, ids_data[:, :1].astype(np.int64), _data(6, 6, 2)], sources=("object", "keras"))


def test_auto_contrast(check_keras):
    x = keras.Input((5, 4, 3), name="x")
    outs = [layers.AutoContrast(name="pixels")(x), layers.AutoContrast(value_range=(-1, 1), name="signed")(x)]
    images = (np.random.default_rng(6).random((3, 5, 4, 3)) * 200 + 20).astype(np.float32)
    images[1, :, :, 2] = 7.0  # a constant channel keeps its values
    check_keras(keras.Model(x, outs, name="auto_contrast"), images, sources=("object", "keras"))


def test_center_crop_larger_than_the_images_is_refused_by_name():
    x = keras.Input((5, 5, 3), name="x")
    with pytest.raises(sr.ModelFormatError, match="grow"):
        sr.load(keras.Model(x, layers.CenterCrop(8, 8, name="grow")(x)))


# ---- ContrastLimitedAdaptiveHistogramEqualization -----------------------------------------------------------------

CLAHE = layers.ContrastLimitedAdaptiveHistogramEqualization


def _clahe_images(shape: tuple, value_range: tuple = (0.0, 255.0), seed: int = 0) -> np.ndarray:
    """Batch 3 of smooth channels-last images with noise: each tile's values bunch together, so its histogram has
    bins above the clip limit; a few values fall outside the value range."""
    rng = np.random.default_rng(seed)
    rows, columns = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    phase = rng.uniform(0.0, 6.0, (3, 1, 1, shape[2]))
    unit = 0.5 + 0.45 * np.sin(rows[None, :, :, None] / 4.0 + columns[None, :, :, None] / 7.0 + phase)
    unit = unit + 0.05 * rng.standard_normal((3, *shape))
    low, high = value_range
    return (low + (high - low) * unit).astype(np.float32)


def test_clahe(check_keras):
    """Against Keras on images whose sizes are no multiple of the grid (Keras's torch backend repeats the last row
    and column to fill the last tiles).  Keras truncates the clip limit ``clip_limit * tile area / 256`` to an
    integer: the default 4 on 3 x 3 tiles is 0 (every count spread evenly), 40 on 7 x 6 tiles 6, 50 on 4 x 4 tiles
    3, 20 on 9 x 4 tiles 2; clip_limit=0 does not clip."""
    pixels, signed = keras.Input((19, 23, 3), name="pixels"), keras.Input((16, 12, 2), name="signed")
    first = keras.Input((3, 17, 10), name="first")
    outs = [
        CLAHE(name="default")(pixels),
        CLAHE(tile_grid_size=(3, 4), clip_limit=40.0, name="clipped")(pixels),
        CLAHE(tile_grid_size=(2, 2), clip_limit=0.0, name="unclipped")(pixels),
        CLAHE(value_range=(-1, 1), tile_grid_size=(4, 3), clip_limit=50.0, name="signed_range")(signed),
        CLAHE(data_format="channels_first", tile_grid_size=(2, 3), clip_limit=20.0, name="channels_first")(first),
    ]
    images = [_clahe_images((19, 23, 3)), _clahe_images((16, 12, 2), (-1.0, 1.0), seed=1),
              _clahe_images((17, 10, 3), seed=2).transpose(0, 3, 1, 2).copy()]
    images[0][0, :10, :12, 0] = 0.0  # a tile of zeros: unclipped, its table is 0 / (area - area) (Keras divides by 1)
    check_keras(keras.Model([pixels, signed, first], outs, name="clahe"), images, sources=("object", "keras"))


def test_clahe_of_integer_images():
    """Keras equalizes integer images in their own dtype and truncates the result to it, but declares a float32
    output, which the layers after it read: ours is float32 holding Keras's integers.  Every step is Keras's float32
    operation, each result stored, so the truncated values are equal, not merely close."""
    pixels = keras.Input((12, 11, 3), dtype="uint8", name="pixels")
    counts = keras.Input((9, 14, 1), dtype="int32", name="counts")
    equalized = CLAHE(tile_grid_size=(2, 2), clip_limit=30.0, name="equalized")(pixels)
    outs = [equalized, layers.Rescaling(1.0 / 255, name="scaled")(equalized),
            CLAHE(value_range=(0, 100), tile_grid_size=(3, 2), clip_limit=10.0, name="ranged")(counts)]
    model = keras.Model([pixels, counts], outs, name="integer_clahe")
    images = [_clahe_images((12, 11, 3)).clip(0, 255).astype(np.uint8),
              _clahe_images((9, 14, 1), (0.0, 100.0), seed=3).clip(0, 100).astype(np.int32)]
    expected = model.predict(images, verbose=0)
    got = sr.compile(sr.load(model)).infer(*images)
    assert [e.dtype for e in expected] == [np.uint8, np.float32, np.int32]
    assert [g.dtype for g in got] == [np.float32] * 3
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_clahe_refusals_name_the_layer(monkeypatch):
    """What is not reproduced: an image rank other than 4 (Keras reads a rank-3 batch as one image whose rows are
    the batch), an impossible tile grid, and other backends than torch (their padding and histograms differ)."""
    images = keras.Input((6, 6, 1), name="images")
    cases = [(keras.Input((6, 6), name="rows"), CLAHE(name="rank3"), "rank 4"),
             (images, CLAHE(tile_grid_size=(0, 2), name="no_tiles"), "tile_grid_size"),
             (images, CLAHE(name="on_jax"), "jax backend")]
    for x, layer, reason in cases:
        model = keras.Model(x, layer(x))
        if layer.name == "on_jax":
            monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
        with pytest.raises(sr.ModelFormatError, match=f"{layer.name}.*{reason}"):
            sr.load(model)


# ---- TimeDistributed ------------------------------------------------------------------------------------------


def test_time_distributed(check_keras):
    frames = keras.Input((4, 6, 6, 2), name="frames")
    steps = keras.Input((5, 3), name="steps")
    conv = layers.TimeDistributed(layers.Conv2D(3, 3, activation="relu"), name="conv")(frames)
    pooled = layers.TimeDistributed(layers.MaxPooling2D(), name="pool")(conv)
    flat = layers.TimeDistributed(layers.Flatten(), name="flat")(pooled)
    outs = [
        layers.TimeDistributed(layers.Dense(4, activation="tanh"), name="dense")(steps),
        layers.TimeDistributed(layers.Dense(2), name="head")(flat),
        layers.TimeDistributed(layers.BatchNormalization(), name="norm")(steps),
    ]
    model = _seeded(keras.Model([frames, steps], outs, name="time_distributed"))
    check_keras(model, [_data(4, 6, 6, 2), _data(5, 3, seed=1)])


def test_time_distributed_open_length(check_keras):
    steps = keras.Input((None, 3), name="steps")
    y = layers.TimeDistributed(layers.Dense(4), name="dense")(steps)
    check_keras(_seeded(keras.Model(steps, y, name="time_distributed_open")), _data(6, 3))


def test_time_distributed_of_unsupported_layer_names_it():
    x = keras.Input((4, 6, 6, 3), name="x")
    y = layers.TimeDistributed(layers.Lambda(lambda t: t * 2.0), name="wrapped")(x)
    with pytest.raises(sr.UnsupportedOperatorError, match="TimeDistributed of keras.layers.Lambda"):
        sr.load(keras.Model(x, y))


# ---- masks ----------------------------------------------------------------------------------------------------

STEPS, UNITS = 7, 4


def _padded_tokens() -> np.ndarray:
    """Token ids, 0 for padding: holes in the middle and at both ends, a fully padded row, an unpadded row."""
    return np.array([[3, 0, 5, 0, 0, 7, 0], [0, 0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7], [0, 4, 4, 0, 9, 0, 2]], dtype=np.int32)


def _padded_features(features: int = 3) -> np.ndarray:
    """Float steps, all-zero steps masked by Masking(0.0), laid out as _padded_tokens."""
    x = np.random.default_rng(4).standard_normal((4, STEPS, features)).astype(np.float32)
    return x * (_padded_tokens() != 0)[:, :, None]


def _recurrent_outputs(h) -> list:
    """Every recurrent option a mask changes, on the masked sequence ``h``."""
    outs = [
        layers.LSTM(UNITS, return_sequences=True, name="lstm_sequence")(h),
        layers.LSTM(UNITS, name="lstm_last")(h),
        layers.GRU(UNITS, return_sequences=True, go_backwards=True, name="gru_backwards")(h),
        layers.GRU(UNITS, reset_after=False, go_backwards=True, name="gru_backwards_last")(h),
        layers.SimpleRNN(UNITS, return_sequences=True, zero_output_for_mask=True, name="rnn_zeroed")(h),
        layers.SimpleRNN(UNITS, zero_output_for_mask=True, name="rnn_zeroed_last")(h),
    ]
    outs += layers.LSTM(UNITS, return_state=True, name="lstm_states")(h)
    outs += [
        layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True), name="bi_sequence")(h),
        layers.Bidirectional(layers.GRU(3), merge_mode="sum", name="bi_last")(h),
    ]
    outs += layers.Bidirectional(
        layers.SimpleRNN(3, return_sequences=True, return_state=True), merge_mode=None, name="bi_states"
    )(h)
    return outs


def test_masked_recurrent_layers_after_embedding(check_keras):
    """Embedding(mask_zero=True): masked steps keep the states; outputs as Keras's step loop gives them."""
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    h = layers.Embedding(10, 3, mask_zero=True, name="embed")(tokens)
    model = _seeded(keras.Model(tokens, _recurrent_outputs(h), name="masked_embedding"))
    check_keras(model, _padded_tokens(), sources=("object", "keras"))


def test_masked_recurrent_layers_after_masking(check_keras):
    """Masking(0.0) zeroes masked steps (its output is checked too) and masks what follows."""
    x = keras.Input((STEPS, 3), name="x")
    h = layers.Masking(0.0, name="masking")(x)
    pooled = layers.GlobalAveragePooling1D(name="pooled")(layers.Dense(5, name="dense")(h))
    model = _seeded(keras.Model(x, [h, pooled, *_recurrent_outputs(h)], name="masked_features"))
    x_data = _padded_features()
    x_data[1] = 0.0
    x_data[1, 3] = 1.5  # pooling over no step is 0/0 in Keras too: keep one step in the padded row
    check_keras(model, x_data, sources=("object", "keras"))


def test_masking_value_and_stacked_layers(check_keras):
    """A non-zero mask_value; a mask flowing through return_sequences into a second masked layer."""
    x = keras.Input((STEPS, 2), name="x")
    h = layers.Masking(-1.0, name="masking")(x)
    first = layers.GRU(3, return_sequences=True, name="first")(h)
    y = layers.LSTM(UNITS, name="second")(first)
    x_data = np.random.default_rng(2).standard_normal((3, STEPS, 2)).astype(np.float32)
    x_data[0, 2:4] = -1.0
    x_data[2, 0] = -1.0
    x_data[1, 5, 0] = -1.0  # one feature equal to mask_value: not masked
    check_keras(_seeded(keras.Model(x, [first, y], name="masking_value")), x_data, sources=("object", "keras"))


def test_masked_open_length_and_initial_states(check_keras):
    """An open sequence length; initial states, which Keras masks only with a mask= given by hand (it hands a layer
    the carried mask of its only tensor argument), kept by a fully masked sequence."""
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    keep = keras.Input((None,), dtype="bool", name="keep")
    h0 = keras.Input((UNITS,), name="h0")
    c0 = keras.Input((UNITS,), name="c0")
    embedded = layers.Embedding(10, 3, mask_zero=True)(tokens)
    outs = [
        *layers.LSTM(UNITS, return_sequences=True, return_state=True, name="lstm")(embedded, mask=keep, initial_state=[h0, c0]),
        layers.GRU(UNITS, return_sequences=True, name="unmasked")(embedded, initial_state=[h0]),
        layers.GRU(UNITS, go_backwards=True, return_sequences=True, name="gru")(embedded),
        layers.Bidirectional(layers.SimpleRNN(3, return_sequences=True), name="bi")(embedded),
    ]
    model = _seeded(keras.Model([tokens, keep, h0, c0], outs, name="masked_open"))
    rng = np.random.default_rng(5)
    states = [rng.standard_normal((4, UNITS)).astype(np.float32) for _ in range(2)]
    check_keras(model, [_padded_tokens(), _padded_tokens() % 3 != 0, *states], sources=("object", "keras"))


def test_masked_softmax_and_time_distributed(check_keras):
    """Softmax reads a mask= given to the call; TimeDistributed(Dense) passes a carried mask on to an LSTM."""
    scores = keras.Input((STEPS,), name="scores")
    keep = keras.Input((STEPS,), dtype="bool", name="keep")
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    h = layers.TimeDistributed(layers.Dense(3), name="td")(layers.Embedding(10, 3, mask_zero=True)(tokens))
    outs = [layers.Softmax(name="softmax")(scores, mask=keep), layers.LSTM(UNITS, name="lstm")(h)]
    model = _seeded(keras.Model([scores, keep, tokens], outs, name="masked_softmax"))
    keep_data = _padded_tokens() != 0
    check_keras(model, [_data(STEPS)[:1].repeat(4, 0), keep_data, _padded_tokens()], sources=("object",))


def test_masks_merged_by_concatenate(check_keras):
    """Concatenate merges the masks of its inputs with keras.ops calls: a step is kept where any input keeps it
    (an unmasked input keeps every step: ones_like)."""
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    other = keras.Input((STEPS,), dtype="int32", name="other")
    features = keras.Input((STEPS, 2), name="features")
    first, second = layers.Embedding(10, 3, mask_zero=True)(tokens), layers.Embedding(10, 2, mask_zero=True)(other)
    outs = [
        layers.GRU(UNITS, name="either")(layers.Concatenate(name="joined")([first, second])),
        layers.GRU(UNITS, name="all_kept")(layers.Concatenate(name="with_features")([first, features])),
    ]
    model = _seeded(keras.Model([tokens, other, features], outs, name="merged_masks"))
    other_tokens = np.roll(_padded_tokens(), 2, axis=1)
    check_keras(model, [_padded_tokens(), other_tokens, _padded_features(2)], sources=("object", "keras"))


def test_masks_into_layers_without_mask_support_are_refused():
    x = keras.Input((STEPS, 5, 3), name="x")
    convolved = layers.ConvLSTM1D(2, 3, name="convolved")(layers.Masking()(x))
    with pytest.raises(sr.UnsupportedOperatorError, match="convolved"):
        sr.load(keras.Model(x, convolved))


# ---- keras.ops in functional graphs -------------------------------------------------------------------------------


def test_keras_ops_in_functional_graphs(check_keras):
    ops = keras.ops
    x = keras.Input((3, 4), name="x")
    ids = keras.Input((5,), dtype="int32", name="ids")
    positive = ops.abs(x) + 0.5
    outs = [
        ops.exp(x),
        ops.sum(x, axis=1),
        ops.sum(x, axis=(1, 2)),
        ops.multiply(x, 2.0),
        3.0 - x,
        x / 4.0,
        ops.power(positive, 2.0),
        ops.sqrt(positive),
        ops.log(positive),
        ops.square(x),
        ops.negative(x),
        ops.tanh(x),
        ops.maximum(x, 0.1),
        ops.mean(x, axis=-1, keepdims=True),
        ops.max(x, axis=(1, 2)),
        ops.min(x, axis=1),
        ops.prod(x, axis=2),
        ops.cast(ops.any(ops.not_equal(ids, 0), axis=-1), "float32"),
        ops.cast(ops.all(ops.greater(x, -1.0), axis=1), "float32"),
        ops.cast(ops.logical_and(ops.less(x, 0.5), ops.greater_equal(x, -0.5)), "float32"),
        ops.cast(ops.equal(ids, 3), "float32"),
        ops.cast(ids, "float32") * 0.5,
        ops.where(ops.greater(x, 0.0), x, -x),
        ops.clip(x, -0.5, 0.5),
        x[:, 1:, 0],
        x[:, -2:],
        x[..., None, 2:3],
        x[:, -1],
        x[:, 0:2, ::2],
        ops.expand_dims(x, 1),
        ops.squeeze(ops.expand_dims(x, -1), -1),
        ops.reshape(x, (-1, 12)),
        ops.transpose(x, (0, 2, 1)),
        ops.concatenate([x, ops.exp(x)], axis=1),
        ops.stack([x, x * 2.0], axis=1),
        ops.matmul(x, ops.transpose(x, (0, 2, 1))),
        ops.softmax(x, axis=1),
        ops.relu(x),
        ops.sigmoid(x),
    ]
    model = keras.Model([x, ids], outs, name="keras_ops")
    check_keras(model, [_data(3, 4), _padded_tokens()[:3, :5]], sources=("object", "keras"))


def test_keras_ops_without_converter_are_named():
    x = keras.Input((4,), name="x")
    with pytest.raises(sr.UnsupportedOperatorError, match="keras.ops.Cumprod"):
        sr.load(keras.Model(x, keras.ops.cumprod(x, axis=-1)))


# ---- Attention and AdditiveAttention ----------------------------------------------------------------------------


def test_attention_layers(check_keras):
    query = keras.Input((5, 4), name="query")
    value = keras.Input((6, 4), name="value")
    key = keras.Input((6, 4), name="key")
    scored, weights = layers.Attention(name="scores")([query, value], return_attention_scores=True)
    outs = [
        scored,
        weights,
        layers.Attention(use_scale=True, name="scaled")([query, value, key]),
        layers.Attention(score_mode="concat", use_scale=True, name="concat")([query, value]),
        layers.Attention(score_mode="concat", name="concat_unscaled")([query, value, key]),
        layers.Attention(name="causal")([query, query], use_causal_mask=True),
        layers.AdditiveAttention(name="additive")([query, value, key]),
        layers.AdditiveAttention(use_scale=False, name="additive_unscaled")([query, value]),
        layers.AdditiveAttention(name="additive_causal")([query, query], use_causal_mask=True),
    ]
    model = _seeded(keras.Model([query, value, key], outs, name="attention_layers"))
    check_keras(model, [_data(5, 4), _data(6, 4, seed=1), _data(6, 4, seed=2)], sources=("object", "keras"))


def test_masked_attention_layers(check_keras):
    """Masks carried from Embedding(mask_zero=True) (query and value) and given by hand."""
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    keep = keras.Input((STEPS,), dtype="bool", name="keep")
    embedded = layers.Embedding(10, 4, mask_zero=True, name="embed")(tokens)
    plain = layers.Embedding(10, 4, name="plain")(tokens)
    outs = [
        layers.Attention(name="self")([embedded, embedded]),
        layers.Attention(name="causal")([embedded, embedded], use_causal_mask=True),
        layers.AdditiveAttention(name="additive")([embedded, embedded]),
        layers.Attention(name="given")([plain, plain], mask=[None, keep]),
    ]
    pooled = layers.GlobalAveragePooling1D(name="pooled")(outs[0])  # Attention passes the query mask on
    model = _seeded(keras.Model([tokens, keep], [*outs, pooled], name="masked_attention"))
    tokens_data = _padded_tokens()[[0, 2, 3]]
    check_keras(model, [tokens_data, tokens_data % 3 != 0], sources=("object", "keras"))


def test_masked_multi_head_attention(check_keras):
    """MultiHeadAttention and GroupedQueryAttention with masks carried from Embedding(mask_zero=True) and Masking
    (query and value differing in cross attention), given by hand (attention_mask, bool and float; value_mask and
    key_mask; query_mask, which MultiHeadAttention ignores and GroupQueryAttention reads), with the causal
    mask.  Keras's two roads: the backend's dot_product_attention (a query position that sees nothing averages
    the values) and the masked Softmax (dropout, scores returned, rank-4 inputs: zeros).  The query's mask
    passes on to the pooling after.  Each layer reads tensors of its own: Keras's MultiHeadAttention.call
    clears the masks of the tensors it reads, so a second reader of one would see them or not depending on the
    order Keras runs the layers in."""
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    other = keras.Input((5,), dtype="int32", name="other")
    pairs = keras.Input((STEPS, 5), dtype="bool", name="pairs")
    weights = keras.Input((STEPS, STEPS), name="weights")
    keep = keras.Input((5,), dtype="bool", name="keep")

    def embedded(ids, masked: bool = True, features: int = 8):
        return layers.Embedding(10, features, mask_zero=masked)(ids)

    grid = keras.ops.reshape(embedded(tokens, False, 6), (-1, STEPS, 2, 3))
    steps = layers.Masking(name="steps")(grid)
    query = embedded(tokens)
    cross, scores = layers.MultiHeadAttention(2, 3, name="cross")(embedded(tokens), embedded(other),
                                                                return_attention_scores=True)
    plain = embedded(other, False, 6)
    outs = [
        layers.MultiHeadAttention(2, 4, name="self")(query, query),
        layers.MultiHeadAttention(2, 3, name="fused_cross")(embedded(tokens), embedded(other, features=6)),
        cross, scores,
        layers.MultiHeadAttention(2, 3, name="given")(embedded(tokens), embedded(other, False), attention_mask=pairs),
        layers.MultiHeadAttention(2, 4, name="float_mask")(*[embedded(tokens)] * 2, attention_mask=weights,
                                                           use_causal_mask=True),
        layers.MultiHeadAttention(2, 3, name="by_hand")(plain, plain, plain, value_mask=keep, key_mask=keep),
        layers.MultiHeadAttention(2, 3, name="query_mask_ignored")(plain, plain, query_mask=keep),  # as Keras does
        layers.GroupQueryAttention(2, 3, 1, name="grouped_by_hand")(plain, plain, query_mask=keep, value_mask=keep),
        layers.MultiHeadAttention(2, 4, dropout=0.1, name="dropout")(*[embedded(tokens)] * 2, use_causal_mask=True),
        layers.MultiHeadAttention(2, 3, attention_axes=(2,), name="rank4")(steps, steps),
        layers.GroupQueryAttention(4, 2, 2, name="grouped")(embedded(tokens), embedded(other)),
    ]
    pooled = layers.GlobalAveragePooling1D(name="pooled")(outs[0])
    model = _seeded(keras.Model([tokens, other, pairs, weights, keep], [*outs, pooled], name="masked_mha"))
    tokens_data = _padded_tokens()
    other_data = np.roll(tokens_data, 3, axis=1)[:, :5]
    rng = np.random.default_rng(5)
    check_keras(model, [tokens_data, other_data, rng.random((4, STEPS, 5)) > 0.4,
                        (rng.random((4, STEPS, STEPS)) > 0.3).astype(np.float32), other_data % 2 == 0],
                sources=("object", "keras"))


def test_grouped_query_attention(check_keras):
    query = keras.Input((5, 4), name="query")
    value = keras.Input((6, 4), name="value")
    key = keras.Input((6, 4), name="key")
    output, scores = layers.GroupQueryAttention(3, 4, 2, name="scores")(query, value, return_attention_scores=True)
    outs = [
        output,
        scores,
        layers.GroupQueryAttention(2, 4, 1, use_bias=False, name="one_group")(query, value, key),
        layers.GroupQueryAttention(3, 2, 2, use_gate=True, name="gated")(query, value),
        layers.GroupQueryAttention(3, 4, 2, name="causal")(query, query, use_causal_mask=True),
        layers.GroupQueryAttention(2, 4, 2, sliding_window=2, dropout=0.1, name="window")(query, query),
    ]
    model = _seeded(keras.Model([query, value, key], outs, name="grouped_query"))
    check_keras(model, [_data(5, 4), _data(6, 4, seed=1), _data(6, 4, seed=2)], sources=("object", "keras"))


# ---- ConvLSTM -------------------------------------------------------------------------------------------------


def test_conv_lstm(check_keras):
    """Unrolled: a few steps each (strides, padding, dilation, activations, go_backwards, states, data formats)."""
    frames = keras.Input((2, 6, 5, 2), name="frames")
    series = keras.Input((3, 7, 2), name="series")
    volumes = keras.Input((2, 4, 4, 3, 1), name="volumes")
    first = keras.Input((2, 2, 6, 5), name="first")
    outs = [
        layers.ConvLSTM2D(2, (3, 2), padding="same", strides=(2, 1), return_sequences=True, go_backwards=True, name="backwards")(
            frames
        ),
        *layers.ConvLSTM1D(
            3,
            2,
            dilation_rate=2,
            recurrent_activation="hard_sigmoid",
            activation="relu",
            use_bias=False,
            return_sequences=True,
            return_state=True,
            name="states",
        )(series),
        layers.ConvLSTM3D(2, 2, padding="same", name="volume")(volumes),
        layers.ConvLSTM2D(2, 3, data_format="channels_first", name="first_format")(first),
    ]
    model = _seeded(keras.Model([frames, series, volumes, first], outs, name="conv_lstm"))
    check_keras(
        model,
        [_data(2, 6, 5, 2), _data(3, 7, 2, seed=1), _data(2, 4, 4, 3, 1, seed=2), _data(2, 2, 6, 5, seed=3)],
        sources=("object", "keras"),
    )


def test_conv_lstm_initial_state(check_keras):
    frames = keras.Input((3, 5, 5, 2), name="frames")
    h0, c0 = keras.Input((5, 5, 2), name="h0"), keras.Input((5, 5, 2), name="c0")
    y = layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True, name="lstm")(frames, initial_state=[h0, c0])
    model = _seeded(keras.Model([frames, h0, c0], y, name="conv_lstm_initial"))
    check_keras(model, [_data(3, 5, 5, 2), _data(5, 5, 2, seed=1), _data(5, 5, 2, seed=2)], sources=("object",))


def test_adaptive_pooling_and_reversible_embedding(check_keras):
    x = keras.Input((7, 5, 3), name="x")
    series = keras.Input((9, 2), name="series")
    volume = keras.Input((5, 4, 6, 2), name="volume")
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    tied = layers.ReversibleEmbedding(10, 4, name="tied")
    untied = layers.ReversibleEmbedding(10, 4, tie_weights=False, logit_soft_cap=2.0, name="untied")
    outs = [
        layers.AdaptiveAveragePooling2D((3, 2), name="average")(x),
        layers.AdaptiveMaxPooling2D(4, name="max")(x),
        layers.AdaptiveAveragePooling2D((2, 5), data_format="channels_first", name="first")(x),
        layers.AdaptiveMaxPooling1D(4, name="series_max")(series),
        layers.AdaptiveAveragePooling3D((2, 3, 4), name="volume_average")(volume),
        tied(layers.Dense(4)(tied(tokens)), reverse=True),
        untied(untied(tokens), reverse=True),
    ]
    model = _seeded(keras.Model([x, series, volume, tokens], outs, name="adaptive"))
    check_keras(
        model, [_data(7, 5, 3), _data(9, 2, seed=1), _data(5, 4, 6, 2, seed=2), _padded_tokens()[:3]], sources=("object", "keras")
    )
