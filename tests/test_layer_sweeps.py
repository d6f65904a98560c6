"""Every class of ``keras.layers`` and of ``torch.nn``'s modules, each in a small model of its own, against the
framework's own output (issue 67).

The classes are enumerated from the installed libraries, so that a class a new Keras or torch adds cannot go
unnoticed: ``test_every_class_is_declared`` fails until the class is given a case or is listed, with its reason,
among the classes not swept: those that are not inference layers (base classes, containers, losses) and those a
model on Keras's torch backend cannot hold (layers that need TensorFlow or JAX, string layers).  A case builds one
model around its class (one more per option that changes the computation), loads it with ``sr.load``, compiles it
with the JIT and compares every output with Keras's ``model.predict`` or with the torch module in eval mode, at
rtol 1e-4 / atol 1e-5 (integers exactly).  A class we refuse is a case too: it
must raise a :class:`~sofie_rdf.errors.SofieError` of the declared type whose message names the class, and its
reason is declared with it.

``docs/guides/layer_coverage.md`` is generated from these declarations (``python -m tests.test_layer_sweeps
--write-docs``); ``test_coverage_page_is_current`` checks it without running a model.  make test runs the cases
named in QUICK (a sweep has one parameter, of which tests/conftest.py's covering subset would keep every value),
make test-full the rest.
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import sofie_rdf as sr  # noqa: E402
from sofie_rdf.errors import ModelFormatError, SofieError  # noqa: E402

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
L = keras.layers
nn = torch.nn

RTOL, ATOL = 1e-4, 1e-5
BATCH = 2
VOCABULARY = 10  # integer inputs (embedding indices, categories) lie in [0, VOCABULARY)
PAGE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "layer_coverage.md"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@dataclass(frozen=True)
class Case:
    """One model around ``cls`` (the class's public name): ``build`` returns the framework's model and its inputs.

    ``options`` names what the case sets that changes the computation ("" for the defaults).  ``refused`` is the
    reason we do not translate the class (then loading or compiling must raise ``error`` naming the class)."""

    cls: str
    options: str
    build: Callable[[], tuple[Any, tuple]]
    refused: str = ""
    error: type = SofieError

    @property
    def id(self) -> str:
        return f"{self.cls}[{self.options}]" if self.options else self.cls


# ---- Keras ----------------------------------------------------------------------------------------------------


def _data(shape: Sequence[int], seed: int, dtype: str) -> np.ndarray:
    """Seeded batch of ``shape``: normal floats times 2, or integers in [0, VOCABULARY)."""
    rng = np.random.default_rng(seed)
    if dtype.startswith("int"):
        return rng.integers(0, VOCABULARY, (BATCH, *shape)).astype(dtype)
    return (rng.standard_normal((BATCH, *shape)) * 2.0).astype(dtype)


def _perturbed(model):
    """Keras starts biases at zero and BatchNormalization at the identity: every weight is moved off its initial
    value (seeded), so a bias or a moving statistic read wrong shows."""
    rng = np.random.default_rng(7)
    for w in model.weights:
        value = keras.ops.convert_to_numpy(w)
        if value.dtype.kind == "f":
            moved = value + 0.1 * rng.standard_normal(value.shape)
            w.assign((np.abs(moved) if "variance" in w.path else moved).astype(value.dtype))
    return model


def K(cls: str, options: str, make: Callable[[], Any], *shapes: Sequence[int], dtype: str = "float32",
      call: Callable[[Any, list], Any] | None = None) -> Case:
    """A Keras case: ``make()``'s layer on inputs of ``shapes`` (no batch), called on the one input or on the list
    of them (``call(layer, inputs)`` where the layer takes them otherwise)."""

    def build() -> tuple[Any, tuple]:
        keras.utils.set_random_seed(0)
        inputs = [keras.Input(tuple(s), dtype=dtype, name=f"x{k}") for k, s in enumerate(shapes)]
        layer = make()
        if call is not None:
            outputs = call(layer, inputs)
        else:
            outputs = layer(inputs[0] if len(inputs) == 1 else inputs)
        model = _perturbed(keras.Model(inputs, outputs, name="sweep"))
        return model, tuple(_data(s, k, dtype) for k, s in enumerate(shapes))

    return Case(cls, options, build)


S1, S2, S3 = (6, 3), (5, 5, 2), (4, 4, 4, 2)  # (steps, channels), 2-D and 3-D images, channels last
IMAGE = (8, 8, 3)


def _keras_cases() -> list[Case]:
    cases = [
        # core and activations
        K("Dense", "", lambda: L.Dense(4, activation="tanh"), S1),
        K("Dense", "use_bias=False", lambda: L.Dense(4, use_bias=False), (5,)),
        K("EinsumDense", "abc,cd->abd", lambda: L.EinsumDense("abc,cd->abd", (6, 4), bias_axes="d"), S1),
        K("EinsumDense", "ab,bc->ac", lambda: L.EinsumDense("ab,bc->ac", 4, activation="relu"), (5,)),
        K("Activation", "tanh", lambda: L.Activation("tanh"), S1),
        K("Activation", "softmax", lambda: L.Activation("softmax"), S1),
        K("ELU", "", lambda: L.ELU(alpha=0.5), S1),
        K("LeakyReLU", "", lambda: L.LeakyReLU(negative_slope=0.2), S1),
        K("PReLU", "", lambda: L.PReLU(), S1),
        K("PReLU", "shared_axes=[1]", lambda: L.PReLU(shared_axes=[1]), S1),
        K("ReLU", "", lambda: L.ReLU(), S1),
        K("ReLU", "max_value, negative_slope, threshold", lambda: L.ReLU(6.0, 0.1, 0.5), S1),
        K("Softmax", "", lambda: L.Softmax(), S1),
        K("Softmax", "axis=1", lambda: L.Softmax(axis=1), S1),
        K("Identity", "", lambda: L.Identity(), S1),
        K("Lambda", "keras.ops", lambda: L.Lambda(lambda t: keras.ops.tanh(t) * 2.0 + 1.0), S1),
        K("Masking", "", lambda: L.Masking(0.0), S1),
        K("TorchModuleWrapper", "nn.Linear", lambda: L.TorchModuleWrapper(nn.Linear(3, 4), output_shape=(None, 6, 4)), S1),
        # merging
        K("Add", "", lambda: L.Add(), S1, S1),
        K("Subtract", "", lambda: L.Subtract(), S1, S1),
        K("Multiply", "", lambda: L.Multiply(), S1, S1),
        K("Average", "", lambda: L.Average(), S1, S1),
        K("Maximum", "", lambda: L.Maximum(), S1, S1),
        K("Minimum", "", lambda: L.Minimum(), S1, S1),
        K("Concatenate", "", lambda: L.Concatenate(), S1, S1),
        K("Concatenate", "axis=1", lambda: L.Concatenate(axis=1), S1, S1),
        K("Dot", "axes=2", lambda: L.Dot(axes=2), S1, (5, 3)),
        K("Dot", "normalize=True", lambda: L.Dot(axes=1, normalize=True), S1, S1),
        # reshaping
        K("Flatten", "", lambda: L.Flatten(), S2),
        K("Permute", "", lambda: L.Permute((2, 1)), S1),
        K("RepeatVector", "", lambda: L.RepeatVector(3), (4,)),
        K("Reshape", "", lambda: L.Reshape((3, -1)), S1),
        K("Cropping1D", "", lambda: L.Cropping1D((1, 2)), S1),
        K("Cropping2D", "", lambda: L.Cropping2D(((1, 0), (0, 2))), S2),
        K("Cropping2D", "channels_first", lambda: L.Cropping2D(1, data_format="channels_first"), (2, 5, 5)),
        K("Cropping3D", "", lambda: L.Cropping3D(1), S3),
        K("ZeroPadding1D", "", lambda: L.ZeroPadding1D((1, 2)), S1),
        K("ZeroPadding2D", "", lambda: L.ZeroPadding2D(((1, 0), (2, 1))), S2),
        K("ZeroPadding2D", "channels_first", lambda: L.ZeroPadding2D(1, data_format="channels_first"), (2, 5, 5)),
        K("ZeroPadding3D", "", lambda: L.ZeroPadding3D(1), S3),
        K("UpSampling1D", "", lambda: L.UpSampling1D(2), S1),
        K("UpSampling2D", "", lambda: L.UpSampling2D(2), S2),
        K("UpSampling2D", "bilinear", lambda: L.UpSampling2D(2, interpolation="bilinear"), S2),
        K("UpSampling2D", "channels_first", lambda: L.UpSampling2D((2, 3), data_format="channels_first"), (2, 5, 5)),
        K("UpSampling3D", "", lambda: L.UpSampling3D(2), S3),
        # convolutions
        K("Conv1D", "", lambda: L.Conv1D(4, 3), S1),
        K("Conv1D", "padding=same, dilation_rate=2", lambda: L.Conv1D(4, 3, padding="same", dilation_rate=2), S1),
        K("Conv1D", "padding=causal", lambda: L.Conv1D(4, 3, padding="causal"), S1),
        K("Conv1D", "strides=2, groups=3", lambda: L.Conv1D(3, 2, strides=2, groups=3), S1),
        K("Conv1D", "channels_first", lambda: L.Conv1D(4, 3, data_format="channels_first"), (3, 6)),
        K("Conv2D", "", lambda: L.Conv2D(3, 3, activation="relu"), S2),
        K("Conv2D", "padding=same, strides=2", lambda: L.Conv2D(3, 3, strides=2, padding="same"), S2),
        K("Conv2D", "channels_first", lambda: L.Conv2D(3, 2, data_format="channels_first"), (2, 5, 5)),
        K("Conv3D", "", lambda: L.Conv3D(3, 2), S3),
        K("Conv3D", "padding=same", lambda: L.Conv3D(3, 3, padding="same"), S3),
        K("Conv1DTranspose", "", lambda: L.Conv1DTranspose(4, 3, strides=2), S1),
        K("Conv1DTranspose", "padding=same", lambda: L.Conv1DTranspose(4, 3, strides=2, padding="same"), S1),
        K("Conv2DTranspose", "", lambda: L.Conv2DTranspose(3, 3, strides=2), S2),
        K("Conv2DTranspose", "padding=same", lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same"), S2),
        K("Conv2DTranspose", "channels_first", lambda: L.Conv2DTranspose(3, 2, strides=2, data_format="channels_first"),
          (2, 5, 5)),
        K("Conv3DTranspose", "", lambda: L.Conv3DTranspose(2, 2, strides=2), S3),
        K("DepthwiseConv1D", "", lambda: L.DepthwiseConv1D(3, depth_multiplier=2), S1),
        K("DepthwiseConv2D", "", lambda: L.DepthwiseConv2D(3, depth_multiplier=2), S2),
        K("DepthwiseConv2D", "padding=same", lambda: L.DepthwiseConv2D(3, padding="same"), S2),
        K("SeparableConv1D", "", lambda: L.SeparableConv1D(4, 3), S1),
        K("SeparableConv2D", "", lambda: L.SeparableConv2D(4, 3, padding="same"), S2),
        # pooling
        K("MaxPooling1D", "", lambda: L.MaxPooling1D(2), S1),
        K("MaxPooling1D", "padding=same", lambda: L.MaxPooling1D(2, strides=2, padding="same"), (5, 3)),
        K("MaxPooling2D", "", lambda: L.MaxPooling2D(2), S2),
        K("MaxPooling2D", "padding=same", lambda: L.MaxPooling2D(2, padding="same"), S2),
        K("MaxPooling2D", "channels_first", lambda: L.MaxPooling2D(2, data_format="channels_first"), (2, 5, 5)),
        K("MaxPooling3D", "", lambda: L.MaxPooling3D(2), S3),
        K("AveragePooling1D", "", lambda: L.AveragePooling1D(2), S1),
        K("AveragePooling1D", "padding=same", lambda: L.AveragePooling1D(2, padding="same"), (5, 3)),
        K("AveragePooling1D", "channels_first", lambda: L.AveragePooling1D(2, data_format="channels_first"), (3, 6)),
        K("AveragePooling2D", "", lambda: L.AveragePooling2D(2), S2),
        K("AveragePooling2D", "padding=same", lambda: L.AveragePooling2D(2, padding="same"), S2),
        K("AveragePooling3D", "", lambda: L.AveragePooling3D(2), S3),
        K("GlobalAveragePooling1D", "", lambda: L.GlobalAveragePooling1D(), S1),
        K("GlobalAveragePooling1D", "keepdims=True", lambda: L.GlobalAveragePooling1D(keepdims=True), S1),
        K("GlobalAveragePooling2D", "", lambda: L.GlobalAveragePooling2D(), S2),
        K("GlobalAveragePooling2D", "channels_first", lambda: L.GlobalAveragePooling2D(data_format="channels_first"),
          (2, 5, 5)),
        K("GlobalAveragePooling3D", "", lambda: L.GlobalAveragePooling3D(), S3),
        K("GlobalMaxPooling1D", "", lambda: L.GlobalMaxPooling1D(), S1),
        K("GlobalMaxPooling1D", "channels_first", lambda: L.GlobalMaxPooling1D(data_format="channels_first"), S1),
        K("GlobalMaxPooling2D", "", lambda: L.GlobalMaxPooling2D(), S2),
        K("GlobalMaxPooling2D", "keepdims=True", lambda: L.GlobalMaxPooling2D(keepdims=True), S2),
        K("GlobalMaxPooling3D", "", lambda: L.GlobalMaxPooling3D(), S3),
        K("AdaptiveAveragePooling1D", "", lambda: L.AdaptiveAveragePooling1D(4), S1),
        K("AdaptiveAveragePooling2D", "", lambda: L.AdaptiveAveragePooling2D((2, 3)), S2),
        K("AdaptiveAveragePooling3D", "", lambda: L.AdaptiveAveragePooling3D(3), S3),
        K("AdaptiveMaxPooling1D", "", lambda: L.AdaptiveMaxPooling1D(4), S1),
        K("AdaptiveMaxPooling2D", "", lambda: L.AdaptiveMaxPooling2D((2, 3)), S2),
        K("AdaptiveMaxPooling3D", "", lambda: L.AdaptiveMaxPooling3D(3), S3),
        # normalization
        K("BatchNormalization", "", lambda: L.BatchNormalization(), S1),
        K("BatchNormalization", "axis=1", lambda: L.BatchNormalization(axis=1, center=False), S1),
        K("LayerNormalization", "", lambda: L.LayerNormalization(), S1),
        K("LayerNormalization", "axis=[1, 2], rms_scaling", lambda: L.LayerNormalization(axis=[1, 2], rms_scaling=True), S1),
        K("LayerNormalization", "center=False, scale=False", lambda: L.LayerNormalization(center=False, scale=False), S1),
        K("GroupNormalization", "", lambda: L.GroupNormalization(groups=2), (6, 4)),
        K("RMSNormalization", "", lambda: L.RMSNormalization(), S1),
        K("UnitNormalization", "", lambda: L.UnitNormalization(), S1),
        K("Normalization", "mean, variance", lambda: L.Normalization(mean=[0.5, 1.0, -1.0], variance=[1.0, 4.0, 2.0]), S1),
        K("Normalization", "invert=True", lambda: L.Normalization(mean=1.0, variance=4.0, invert=True), S1),
        K("SpectralNormalization", "", lambda: L.SpectralNormalization(L.Dense(4)), S1),
        # training-only layers: identities at inference
        K("Dropout", "", lambda: L.Dropout(0.5), S1),
        K("AlphaDropout", "", lambda: L.AlphaDropout(0.5), S1),
        K("GaussianDropout", "", lambda: L.GaussianDropout(0.5), S1),
        K("GaussianNoise", "", lambda: L.GaussianNoise(0.5), S1),
        K("SpatialDropout1D", "", lambda: L.SpatialDropout1D(0.5), S1),
        K("SpatialDropout2D", "", lambda: L.SpatialDropout2D(0.5), S2),
        K("SpatialDropout3D", "", lambda: L.SpatialDropout3D(0.5), S3),
        K("ActivityRegularization", "", lambda: L.ActivityRegularization(0.1, 0.1), S1),
        # recurrent
        K("SimpleRNN", "", lambda: L.SimpleRNN(4), S1),
        K("SimpleRNN", "return_sequences, go_backwards", lambda: L.SimpleRNN(4, return_sequences=True, go_backwards=True), S1),
        K("SimpleRNN", "activation=relu", lambda: L.SimpleRNN(4, activation="relu"), S1),
        K("LSTM", "", lambda: L.LSTM(4), S1),
        K("LSTM", "return_sequences, return_state", lambda: L.LSTM(4, return_sequences=True, return_state=True), S1),
        K("LSTM", "go_backwards", lambda: L.LSTM(4, go_backwards=True), S1),
        K("GRU", "", lambda: L.GRU(4), S1),
        K("GRU", "reset_after=False, return_sequences", lambda: L.GRU(4, reset_after=False, return_sequences=True), S1),
        K("RNN", "SimpleRNNCell", lambda: L.RNN(L.SimpleRNNCell(4)), S1),
        K("SimpleRNNCell", "in RNN, return_sequences", lambda: L.RNN(L.SimpleRNNCell(4), return_sequences=True), S1),
        K("LSTMCell", "in RNN", lambda: L.RNN(L.LSTMCell(4)), S1),
        K("GRUCell", "in RNN", lambda: L.RNN(L.GRUCell(4)), S1),
        K("StackedRNNCells", "in RNN", lambda: L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)])), S1),
        K("StackedRNNCells", "in RNN, return_sequences, return_state, go_backwards", lambda: L.RNN(
            L.StackedRNNCells([L.GRUCell(4), L.SimpleRNNCell(3)]), return_sequences=True, return_state=True,
            go_backwards=True), S1),
        K("Bidirectional", "LSTM", lambda: L.Bidirectional(L.LSTM(3)), S1),
        K("Bidirectional", "GRU, return_sequences, merge_mode=sum",
          lambda: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"), S1),
        K("Bidirectional", "SimpleRNN, merge_mode=None", lambda: L.Bidirectional(L.SimpleRNN(3), merge_mode=None), S1),
        K("TimeDistributed", "", lambda: L.TimeDistributed(L.Dense(4)), S1),
        K("ConvLSTM1D", "", lambda: L.ConvLSTM1D(2, 2), (3, 5, 2)),
        K("ConvLSTM1D", "return_sequences, padding=same", lambda: L.ConvLSTM1D(2, 3, padding="same", return_sequences=True),
          (3, 5, 2)),
        K("ConvLSTM2D", "", lambda: L.ConvLSTM2D(2, 2), (3, 4, 4, 2)),
        K("ConvLSTM3D", "", lambda: L.ConvLSTM3D(2, 2), (2, 3, 3, 3, 1)),
        # attention
        K("Attention", "", lambda: L.Attention(), S1, (5, 3), call=lambda layer, x: layer([x[0], x[1]])),
        K("Attention", "use_scale, score_mode=concat", lambda: L.Attention(use_scale=True, score_mode="concat"), S1, (5, 3),
          call=lambda layer, x: layer([x[0], x[1]])),
        K("AdditiveAttention", "", lambda: L.AdditiveAttention(), S1, (5, 3), call=lambda layer, x: layer([x[0], x[1]])),
        K("Attention", "use_causal_mask", lambda: L.Attention(), S1,
          call=lambda layer, x: layer([x[0], x[0]], use_causal_mask=True)),
        K("MultiHeadAttention", "", lambda: L.MultiHeadAttention(2, 4), S1, (5, 3), call=lambda layer, x: layer(x[0], x[1])),
        K("MultiHeadAttention", "use_causal_mask", lambda: L.MultiHeadAttention(2, 4), S1,
          call=lambda layer, x: layer(x[0], x[0], use_causal_mask=True)),
        K("MultiHeadAttention", "return_attention_scores", lambda: L.MultiHeadAttention(2, 4), S1, (5, 3),
          call=lambda layer, x: layer(x[0], x[1], return_attention_scores=True)),
        K("GroupQueryAttention", "", lambda: L.GroupQueryAttention(4, 4, 2), S1, (5, 3), call=lambda layer, x: layer(x[0], x[1])),
        # embeddings and integer preprocessing
        K("Embedding", "", lambda: L.Embedding(VOCABULARY, 3), (5,), dtype="int32"),
        K("Embedding", "mask_zero, LSTM after", lambda: L.Embedding(VOCABULARY, 3, mask_zero=True), (5,), dtype="int32",
          call=lambda layer, x: L.LSTM(2)(layer(x[0]))),
        K("ReversibleEmbedding", "", lambda: L.ReversibleEmbedding(VOCABULARY, 3), (5,), dtype="int32"),
        K("CategoryEncoding", "one_hot", lambda: L.CategoryEncoding(VOCABULARY, output_mode="one_hot"), (1,), dtype="int32"),
        K("CategoryEncoding", "multi_hot", lambda: L.CategoryEncoding(VOCABULARY, output_mode="multi_hot"), (4,), dtype="int32"),
        K("CategoryEncoding", "count", lambda: L.CategoryEncoding(VOCABULARY, output_mode="count"), (4,), dtype="int32"),
        K("Discretization", "", lambda: L.Discretization(bin_boundaries=[-1.0, 0.0, 0.5]), S1),
        # image preprocessing
        K("Rescaling", "", lambda: L.Rescaling(1.0 / 255, offset=0.5), IMAGE),
        K("Rescaling", "per-channel scale", lambda: L.Rescaling([0.5, 2.0, -1.0]), IMAGE),
        K("CenterCrop", "", lambda: L.CenterCrop(5, 6), IMAGE),
        K("Resizing", "bilinear", lambda: L.Resizing(5, 11), IMAGE),
        K("Resizing", "nearest", lambda: L.Resizing(5, 11, interpolation="nearest"), IMAGE),
        K("Resizing", "bicubic", lambda: L.Resizing(5, 11, interpolation="bicubic"), IMAGE),
        K("Resizing", "crop_to_aspect_ratio", lambda: L.Resizing(4, 6, crop_to_aspect_ratio=True), IMAGE),
        K("Resizing", "channels_first", lambda: L.Resizing(5, 4, data_format="channels_first"), (3, 8, 8)),
        K("AutoContrast", "", lambda: L.AutoContrast(), IMAGE),
        K("ContrastLimitedAdaptiveHistogramEqualization", "", lambda: L.ContrastLimitedAdaptiveHistogramEqualization(), IMAGE),
        K("ContrastLimitedAdaptiveHistogramEqualization", "tile_grid_size=(3, 2), clip_limit=40",
          lambda: L.ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(3, 2), clip_limit=40.0), (10, 9, 3)),
        K("ContrastLimitedAdaptiveHistogramEqualization",
          "value_range=(-4, 4), clip_limit=0, tile_grid_size=(2, 3), channels_first",
          lambda: L.ContrastLimitedAdaptiveHistogramEqualization(value_range=(-4, 4), clip_limit=0.0, tile_grid_size=(2, 3),
                                                                data_format="channels_first"), (2, 12, 7)),
        K("MaxNumBoundingBoxes", "", lambda: L.MaxNumBoundingBoxes(4), IMAGE),
        K("Pipeline", "Rescaling, CenterCrop", lambda: L.Pipeline([L.Rescaling(0.5), L.CenterCrop(4, 4)]), IMAGE),
        K("STFTSpectrogram", "", lambda: L.STFTSpectrogram(mode="magnitude", frame_length=8, frame_step=4, fft_length=8),
          (32, 1)),
        K("STFTSpectrogram", "mode=log, padding=same, hamming", lambda: L.STFTSpectrogram(
            frame_length=8, frame_step=4, fft_length=16, window="hamming", padding="same"), (30, 2)),
        K("STFTSpectrogram", "mode=angle", lambda: L.STFTSpectrogram(mode="angle", frame_length=8, frame_step=4), (32, 1)),
        K("STFTSpectrogram", "mode=psd, channels_first, expand_dims", lambda: L.STFTSpectrogram(
            mode="psd", frame_length=8, frame_step=3, data_format="channels_first", expand_dims=True), (2, 30)),
        K("STFTSpectrogram", "mode=stft, scaling=spectrum", lambda: L.STFTSpectrogram(
            mode="stft", frame_length=8, frame_step=4, scaling="spectrum"), (32, 1)),
        K("MelSpectrogram", "", lambda: L.MelSpectrogram(fft_length=16, sequence_stride=8, sequence_length=16, num_mel_bins=4,
                                                         sampling_rate=800), (64,)),
        K("MelSpectrogram", "power_to_db=False, mag_exp=1, hamming", lambda: L.MelSpectrogram(
            fft_length=16, sequence_stride=5, sequence_length=12, num_mel_bins=4, sampling_rate=800, window="hamming",
            power_to_db=False, mag_exp=1.0), (64,)),
        K("MelSpectrogram", "channels, ref_power, top_db", lambda: L.MelSpectrogram(
            fft_length=16, sequence_stride=8, num_mel_bins=4, sampling_rate=800, ref_power=2.0, top_db=30.0), (2, 40)),
    ]
    # image augmentation: identities at inference
    augmentation = ["AugMix", "CutMix", "MixUp", "RandAugment", "RandomBrightness", "RandomColorDegeneration",
                    "RandomColorJitter", "RandomContrast", "RandomCrop", "RandomElasticTransform", "RandomErasing",
                    "RandomFlip", "RandomGaussianBlur", "RandomGrayscale", "RandomHue", "RandomInvert",
                    "RandomPerspective", "RandomPosterization", "RandomRotation", "RandomSaturation", "RandomSharpness",
                    "RandomShear", "RandomTranslation", "RandomZoom", "Solarization"]
    arguments = {"RandomBrightness": (0.2,), "RandomColorDegeneration": (0.2,), "RandomContrast": (0.2,),
                 "RandomCrop": (8, 8), "RandomHue": (0.2,), "RandomPosterization": (4,),
                 "RandomRotation": (0.2,), "RandomSaturation": (0.2,), "RandomSharpness": (0.2,), "RandomShear": (0.2,),
                 "RandomTranslation": (0.1, 0.1), "RandomZoom": (0.2,)}
    for name in augmentation:
        cases.append(K(name, "", lambda name=name: getattr(L, name)(*arguments.get(name, ())), IMAGE))
    return cases


KERAS_CASES = _keras_cases()

# Public classes of keras.layers that are not inference layers, or that a model on the torch backend cannot hold.
KERAS_NOT_SWEPT = {
    "Layer": "the base class of every layer",
    "Wrapper": "the base class of Bidirectional, TimeDistributed and SpectralNormalization",
    "InputSpec": "a description of a layer's input, not a layer",
    "InputLayer": "a model's input: part of every case",
    "JaxLayer": "wraps JAX functions: needs the JAX backend",
    "FlaxLayer": "wraps a Flax module: needs the JAX backend",
    "TFSMLayer": "wraps a TensorFlow SavedModel: needs TensorFlow",
    "StringLookup": "maps strings: the torch backend has no string tensors",
    "TextVectorization": "splits and maps strings: the torch backend has no string tensors",
    "IntegerLookup": "Keras 3.15 builds it on TensorFlow only ('Layer IntegerLookup requires TensorFlow')",
    "Hashing": "Keras 3.15 builds it on TensorFlow only ('Layer Hashing requires TensorFlow')",
    "HashedCrossing": "Keras 3.15 builds it on TensorFlow only ('Layer HashedCrossing requires TensorFlow')",
    "Equalization": "Keras 3.15 cannot put it in a model: its symbolic call returns its input, 'part of a cycle'"
                    " (at inference it returns its input)",
}


# ---- torch.nn -------------------------------------------------------------------------------------------------


def _torch_data(shape: Sequence[int], seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Seeded tensor of ``shape``: normal floats times 2, or integers in [0, VOCABULARY)."""
    gen = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(*shape, generator=gen, dtype=dtype) * 2.0
    return torch.randint(0, VOCABULARY, tuple(shape), generator=gen, dtype=dtype)


def _perturbed_module(module: nn.Module) -> nn.Module:
    """torch starts norms at the identity and running statistics at (0, 1): every float parameter and buffer is
    moved off its initial value (seeded; variances kept positive), so one read wrong shows."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, value in [*module.named_parameters(), *module.named_buffers()]:
            if value.is_floating_point():
                moved = value + 0.1 * torch.randn(value.shape, generator=gen)
                value.copy_(moved.abs() if name.endswith("running_var") else moved)
    return module


def T(cls: str, options: str, make: Callable[[], nn.Module], *shapes: Sequence[int], dtype: torch.dtype = torch.float32) -> Case:
    """A torch case: ``make()``'s module in eval mode on inputs of ``shapes`` (batch included)."""

    def build() -> tuple[Any, tuple]:
        torch.manual_seed(0)
        module = make()
        inputs = tuple(_torch_data(s, k, dtype) for k, s in enumerate(shapes))
        if any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in module.modules()):
            module(*inputs)  # a lazy module takes its shapes from its first call and becomes its eager class
        return _perturbed_module(module).eval(), inputs

    return Case(cls, options, build)


class Call(nn.Module):
    """A module calling ``fn(inner, *inputs)``: for a module whose forward takes more than tensors, or whose
    inference method is not its forward."""

    def __init__(self, inner: nn.Module, fn: Callable[..., Any]):
        super().__init__()
        self.inner, self.fn = inner, fn

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.fn(self.inner, *inputs)


class PoolUnpool(nn.Module):
    """MaxUnpool needs the indices of a MaxPool(return_indices=True)."""

    def __init__(self, pool: nn.Module, unpool: nn.Module):
        super().__init__()
        self.pool, self.unpool = pool, unpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unpool(*self.pool(x))


T1, T2, T3 = (BATCH, 3, 6), (BATCH, 2, 5, 5), (BATCH, 2, 4, 4, 4)  # (N, C, ...) 1-D, 2-D and 3-D


def _samples(shape: Sequence[int], pooled: int) -> torch.Tensor:
    """FractionalMaxPool's fixed ``_random_samples`` for inputs of ``shape``: one per batch row, channel and pooled
    axis, in [0.2, 0.8) so that the sweep's perturbation of buffers (0.1 sigma) leaves them in [0, 1)."""
    return 0.2 + 0.6 * torch.rand(shape[0], shape[1], pooled)
SEQ = (BATCH, 5, 4)  # (N, L, features), batch_first


def _torch_cases() -> list[Case]:
    def pool_unpool(n: int) -> Callable[[], nn.Module]:
        return lambda: PoolUnpool(getattr(nn, f"MaxPool{n}d")(2, return_indices=True), getattr(nn, f"MaxUnpool{n}d")(2))

    def pad(kind: str, n: int) -> Callable[[], nn.Module]:
        return lambda: getattr(nn, f"{kind}Pad{n}d")(*((1, 2.5) if kind == "Constant" else (1,)))

    cases = [
        # activations
        T("CELU", "", lambda: nn.CELU(0.5), T1),
        T("ELU", "", lambda: nn.ELU(0.5), T1),
        T("GELU", "", lambda: nn.GELU(), T1),
        T("GELU", "approximate=tanh", lambda: nn.GELU(approximate="tanh"), T1),
        T("GLU", "", lambda: nn.GLU(dim=-1), T1),
        T("Hardshrink", "", lambda: nn.Hardshrink(0.7), T1),
        T("Hardsigmoid", "", lambda: nn.Hardsigmoid(), T1),
        T("Hardswish", "", lambda: nn.Hardswish(), T1),
        T("Hardtanh", "", lambda: nn.Hardtanh(-0.5, 1.5), T1),
        T("LeakyReLU", "", lambda: nn.LeakyReLU(0.2), T1),
        T("LogSigmoid", "", lambda: nn.LogSigmoid(), T1),
        T("LogSoftmax", "", lambda: nn.LogSoftmax(dim=1), T1),
        T("Mish", "", lambda: nn.Mish(), T1),
        T("PReLU", "", lambda: nn.PReLU(), T1),
        T("PReLU", "num_parameters=3", lambda: nn.PReLU(3), T1),
        T("RReLU", "", lambda: nn.RReLU(0.1, 0.3), T1),
        T("ReLU", "", lambda: nn.ReLU(), T1),
        T("ReLU6", "", lambda: nn.ReLU6(), T1),
        T("SELU", "", lambda: nn.SELU(), T1),
        T("SiLU", "", lambda: nn.SiLU(), T1),
        T("Sigmoid", "", lambda: nn.Sigmoid(), T1),
        T("Softmax", "", lambda: nn.Softmax(dim=1), T1),
        T("Softmax2d", "", lambda: nn.Softmax2d(), T2),
        T("Softmin", "", lambda: nn.Softmin(dim=-1), T1),
        T("Softplus", "beta, threshold", lambda: nn.Softplus(beta=2.0, threshold=3.0), T1),
        T("Softshrink", "", lambda: nn.Softshrink(0.7), T1),
        T("Softsign", "", lambda: nn.Softsign(), T1),
        T("Tanh", "", lambda: nn.Tanh(), T1),
        T("Tanhshrink", "", lambda: nn.Tanhshrink(), T1),
        T("Threshold", "", lambda: nn.Threshold(0.3, -1.0), T1),
        # linear
        T("Identity", "", lambda: nn.Identity(), T1),
        T("Linear", "", lambda: nn.Linear(6, 4), T1),
        T("Linear", "bias=False", lambda: nn.Linear(6, 4, bias=False), (BATCH, 6)),
        T("LazyLinear", "", lambda: nn.LazyLinear(4), T1),
        T("Bilinear", "", lambda: nn.Bilinear(3, 4, 5), (BATCH, 3), (BATCH, 4)),
        T("Sequential", "Linear, ReLU", lambda: nn.Sequential(nn.Linear(6, 4), nn.ReLU()), T1),
        # convolutions
        T("Conv1d", "", lambda: nn.Conv1d(3, 4, 3), T1),
        T("Conv1d", "padding=same, dilation=2", lambda: nn.Conv1d(3, 4, 3, padding="same", dilation=2), T1),
        T("Conv1d", "groups=3, stride=2", lambda: nn.Conv1d(3, 6, 2, stride=2, groups=3), T1),
        T("Conv1d", "padding_mode=circular", lambda: nn.Conv1d(3, 4, 3, padding=1, padding_mode="circular"), T1),
        T("Conv2d", "", lambda: nn.Conv2d(2, 3, 3), T2),
        T("Conv2d", "padding_mode=reflect, stride=2", lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, padding_mode="reflect"),
          T2),
        T("Conv2d", "padding_mode=replicate", lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate"), T2),
        T("Conv2d", "padding=same, even kernel", lambda: nn.Conv2d(2, 3, 4, padding="same"), T2),
        T("Conv3d", "", lambda: nn.Conv3d(2, 3, 2), T3),
        T("ConvTranspose1d", "", lambda: nn.ConvTranspose1d(3, 4, 3, stride=2), T1),
        T("ConvTranspose1d", "padding, output_padding",
          lambda: nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1), T1),
        T("ConvTranspose2d", "", lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), T2),
        T("ConvTranspose2d", "groups=2, dilation=2", lambda: nn.ConvTranspose2d(2, 4, 2, groups=2, dilation=2), T2),
        T("ConvTranspose3d", "", lambda: nn.ConvTranspose3d(2, 2, 2, stride=2), T3),
        T("LazyConv1d", "", lambda: nn.LazyConv1d(4, 3), T1),
        T("LazyConv2d", "", lambda: nn.LazyConv2d(3, 3), T2),
        T("LazyConv3d", "", lambda: nn.LazyConv3d(3, 2), T3),
        T("LazyConvTranspose1d", "", lambda: nn.LazyConvTranspose1d(4, 3), T1),
        T("LazyConvTranspose2d", "", lambda: nn.LazyConvTranspose2d(3, 3), T2),
        T("LazyConvTranspose3d", "", lambda: nn.LazyConvTranspose3d(2, 2), T3),
        T("Fold", "", lambda: nn.Fold((4, 5), 2), (BATCH, 8, 12)),
        T("Unfold", "", lambda: nn.Unfold(2, dilation=1, padding=1, stride=2), T2),
        # pooling
        T("MaxPool1d", "", lambda: nn.MaxPool1d(2), T1),
        T("MaxPool1d", "ceil_mode, dilation", lambda: nn.MaxPool1d(2, stride=2, dilation=2, ceil_mode=True), (BATCH, 3, 7)),
        T("MaxPool2d", "", lambda: nn.MaxPool2d(2), T2),
        T("MaxPool2d", "padding, ceil_mode", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), T2),
        T("MaxPool2d", "return_indices", lambda: nn.MaxPool2d(2, return_indices=True), T2),
        T("MaxPool3d", "", lambda: nn.MaxPool3d(2), T3),
        T("AvgPool1d", "", lambda: nn.AvgPool1d(2), T1),
        T("AvgPool2d", "", lambda: nn.AvgPool2d(2), T2),
        T("AvgPool2d", "padding, count_include_pad=False, ceil_mode",
          lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True), T2),
        T("AvgPool3d", "", lambda: nn.AvgPool3d(2), T3),
        T("AdaptiveAvgPool1d", "", lambda: nn.AdaptiveAvgPool1d(4), T1),
        T("AdaptiveAvgPool2d", "", lambda: nn.AdaptiveAvgPool2d((2, 3)), T2),
        T("AdaptiveAvgPool2d", "output_size=1", lambda: nn.AdaptiveAvgPool2d(1), T2),
        T("AdaptiveAvgPool3d", "", lambda: nn.AdaptiveAvgPool3d(3), T3),
        T("AdaptiveMaxPool1d", "", lambda: nn.AdaptiveMaxPool1d(4), T1),
        T("AdaptiveMaxPool2d", "", lambda: nn.AdaptiveMaxPool2d((2, 3)), T2),
        T("AdaptiveMaxPool2d", "return_indices", lambda: nn.AdaptiveMaxPool2d((3, 2), return_indices=True), (BATCH, 2, 5, 7)),
        T("AdaptiveMaxPool3d", "", lambda: nn.AdaptiveMaxPool3d(3), T3),
        T("LPPool1d", "", lambda: nn.LPPool1d(2, 2), T1),
        T("LPPool2d", "", lambda: nn.LPPool2d(3, 2), T2),
        T("LPPool3d", "", lambda: nn.LPPool3d(2, 2), T3),
        T("MaxUnpool1d", "", pool_unpool(1), T1),
        T("MaxUnpool2d", "", pool_unpool(2), (BATCH, 2, 4, 4)),
        T("MaxUnpool3d", "", pool_unpool(3), T3),
        T("FractionalMaxPool2d", "", lambda: nn.FractionalMaxPool2d(2, output_size=(3, 3)), T2),
        T("FractionalMaxPool2d", "_random_samples, output_ratio=0.6, return_indices",
          lambda: nn.FractionalMaxPool2d(2, output_ratio=0.6, return_indices=True, _random_samples=_samples(T2, 2)), T2),
        T("FractionalMaxPool3d", "", lambda: nn.FractionalMaxPool3d(2, output_size=(2, 2, 2)), T3),
        T("FractionalMaxPool3d", "_random_samples", lambda: nn.FractionalMaxPool3d(
            2, output_size=(2, 2, 2), _random_samples=_samples(T3, 3)), T3),
        # normalization
        T("BatchNorm1d", "", lambda: nn.BatchNorm1d(3), T1),
        T("BatchNorm1d", "2-D input", lambda: nn.BatchNorm1d(6), (BATCH, 6)),
        T("BatchNorm2d", "", lambda: nn.BatchNorm2d(2), T2),
        T("BatchNorm2d", "affine=False", lambda: nn.BatchNorm2d(2, affine=False), T2),
        T("BatchNorm3d", "", lambda: nn.BatchNorm3d(2), T3),
        T("LazyBatchNorm1d", "", lambda: nn.LazyBatchNorm1d(), T1),
        T("LazyBatchNorm2d", "", lambda: nn.LazyBatchNorm2d(), T2),
        T("LazyBatchNorm3d", "", lambda: nn.LazyBatchNorm3d(), T3),
        T("SyncBatchNorm", "", lambda: nn.SyncBatchNorm(2), T2),
        T("InstanceNorm1d", "", lambda: nn.InstanceNorm1d(3), T1),
        T("InstanceNorm1d", "affine, track_running_stats", lambda: nn.InstanceNorm1d(3, affine=True, track_running_stats=True),
          T1),
        T("InstanceNorm2d", "affine", lambda: nn.InstanceNorm2d(2, affine=True), T2),
        T("InstanceNorm2d", "track_running_stats", lambda: nn.InstanceNorm2d(2, track_running_stats=True), T2),
        T("InstanceNorm3d", "", lambda: nn.InstanceNorm3d(2), T3),
        T("LazyInstanceNorm1d", "", lambda: nn.LazyInstanceNorm1d(affine=True), T1),
        T("LazyInstanceNorm2d", "", lambda: nn.LazyInstanceNorm2d(affine=True), T2),
        T("LazyInstanceNorm3d", "", lambda: nn.LazyInstanceNorm3d(affine=True), T3),
        T("LayerNorm", "", lambda: nn.LayerNorm(6), T1),
        T("LayerNorm", "2 axes, bias=False", lambda: nn.LayerNorm((3, 6), bias=False), T1),
        T("LayerNorm", "elementwise_affine=False", lambda: nn.LayerNorm(6, elementwise_affine=False), T1),
        T("GroupNorm", "", lambda: nn.GroupNorm(2, 4), (BATCH, 4, 5)),
        T("GroupNorm", "affine=False", lambda: nn.GroupNorm(2, 4, affine=False), (BATCH, 4, 5)),
        T("RMSNorm", "", lambda: nn.RMSNorm(6), T1),
        T("RMSNorm", "eps=None", lambda: nn.RMSNorm(6, eps=None), T1),
        T("LocalResponseNorm", "", lambda: nn.LocalResponseNorm(3), (BATCH, 5, 4, 4)),
        T("CrossMapLRN2d", "", lambda: nn.CrossMapLRN2d(3), (BATCH, 5, 4, 4)),
        T("CrossMapLRN2d", "size=4 over 3 channels, alpha=1, beta=0.5, k=2",
          lambda: nn.CrossMapLRN2d(4, alpha=1.0, beta=0.5, k=2.0), (BATCH, 3, 4, 4)),
        T("CrossMapLRN2d", "size=5, alpha=0.5 over 8 channels", lambda: nn.CrossMapLRN2d(5, alpha=0.5), (BATCH, 8, 3, 3)),
        # training-only layers: identities in eval mode
        T("Dropout", "", lambda: nn.Dropout(0.5), T1),
        T("Dropout1d", "", lambda: nn.Dropout1d(0.5), T1),
        T("Dropout2d", "", lambda: nn.Dropout2d(0.5), T2),
        T("Dropout3d", "", lambda: nn.Dropout3d(0.5), T3),
        T("AlphaDropout", "", lambda: nn.AlphaDropout(0.5), T1),
        T("FeatureAlphaDropout", "", lambda: nn.FeatureAlphaDropout(0.5), T2),
        # padding
        *[T(f"{kind}Pad{n}d", "", pad(kind, n), shape)
          for kind in ("Constant", "Zero", "Reflection", "Replication", "Circular") for n, shape in ((1, T1), (2, T2), (3, T3))],
        # shapes
        T("Flatten", "", lambda: nn.Flatten(), T2),
        T("Flatten", "start_dim=2", lambda: nn.Flatten(start_dim=2), T3),
        T("Unflatten", "", lambda: nn.Unflatten(2, (2, 3)), T1),
        T("PixelShuffle", "", lambda: nn.PixelShuffle(2), (BATCH, 8, 3, 3)),
        T("PixelUnshuffle", "", lambda: nn.PixelUnshuffle(2), (BATCH, 2, 4, 6)),
        T("ChannelShuffle", "", lambda: nn.ChannelShuffle(2), (BATCH, 4, 3, 3)),
        T("Upsample", "nearest", lambda: nn.Upsample(scale_factor=2), T2),
        T("Upsample", "nearest-exact", lambda: nn.Upsample(size=(7, 8), mode="nearest-exact"), T2),
        T("Upsample", "bilinear", lambda: nn.Upsample(size=(7, 8), mode="bilinear"), T2),
        T("Upsample", "bilinear, align_corners", lambda: nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True), T2),
        T("Upsample", "bicubic", lambda: nn.Upsample(scale_factor=2, mode="bicubic"), T2),
        T("Upsample", "linear", lambda: nn.Upsample(scale_factor=2, mode="linear"), T1),
        T("Upsample", "trilinear", lambda: nn.Upsample(scale_factor=2, mode="trilinear"), T3),
        T("UpsamplingNearest2d", "", lambda: nn.UpsamplingNearest2d(scale_factor=2), T2),
        T("UpsamplingBilinear2d", "", lambda: nn.UpsamplingBilinear2d(scale_factor=2), T2),
        # distances
        T("CosineSimilarity", "", lambda: nn.CosineSimilarity(dim=1), T1, T1),
        T("PairwiseDistance", "", lambda: nn.PairwiseDistance(), (BATCH, 6), (BATCH, 6)),
        T("PairwiseDistance", "p=1, keepdim", lambda: nn.PairwiseDistance(p=1.0, keepdim=True), (BATCH, 6), (BATCH, 6)),
        # embeddings
        T("Embedding", "", lambda: nn.Embedding(VOCABULARY, 3), (BATCH, 5), dtype=torch.int64),
        T("Embedding", "padding_idx", lambda: nn.Embedding(VOCABULARY, 3, padding_idx=0), (BATCH, 5), dtype=torch.int64),
        T("Embedding", "max_norm", lambda: nn.Embedding(VOCABULARY, 3, max_norm=1.0), (BATCH, 5), dtype=torch.int64),
        T("EmbeddingBag", "mean, 2-D input", lambda: nn.EmbeddingBag(VOCABULARY, 3), (BATCH, 5), dtype=torch.int64),
        T("EmbeddingBag", "max", lambda: nn.EmbeddingBag(VOCABULARY, 3, mode="max"), (BATCH, 5), dtype=torch.int64),
        # recurrent
        T("RNN", "", lambda: nn.RNN(4, 3, batch_first=True), SEQ),
        T("RNN", "relu, 2 layers, bidirectional",
          lambda: nn.RNN(4, 3, num_layers=2, nonlinearity="relu", bidirectional=True, batch_first=True), SEQ),
        T("LSTM", "", lambda: nn.LSTM(4, 3, batch_first=True), SEQ),
        T("LSTM", "2 layers, bidirectional, sequence first", lambda: nn.LSTM(4, 3, num_layers=2, bidirectional=True), SEQ),
        T("LSTM", "proj_size", lambda: nn.LSTM(4, 3, proj_size=2, batch_first=True), SEQ),
        T("LSTM", "initial states", lambda: Call(nn.LSTM(4, 3, batch_first=True), lambda lstm, x, h, c: lstm(x, (h, c))),
          SEQ, (1, BATCH, 3), (1, BATCH, 3)),
        T("GRU", "", lambda: nn.GRU(4, 3, batch_first=True), SEQ),
        T("GRU", "2 layers, bidirectional", lambda: nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True), SEQ),
        T("GRU", "initial state", lambda: nn.GRU(4, 3, batch_first=True), SEQ, (1, BATCH, 3)),
        T("RNNCell", "", lambda: nn.RNNCell(4, 3), (BATCH, 4), (BATCH, 3)),
        T("LSTMCell", "", lambda: Call(nn.LSTMCell(4, 3), lambda cell, x, h, c: cell(x, (h, c))), (BATCH, 4), (BATCH, 3),
          (BATCH, 3)),
        T("GRUCell", "", lambda: nn.GRUCell(4, 3), (BATCH, 4), (BATCH, 3)),
        # attention and transformers
        T("MultiheadAttention", "", lambda: nn.MultiheadAttention(4, 2, batch_first=True), SEQ, SEQ, SEQ),
        T("MultiheadAttention", "kdim, vdim, sequence first, averaged weights",
          lambda: nn.MultiheadAttention(4, 2, kdim=3, vdim=5), SEQ, (BATCH, 5, 3), (BATCH, 5, 5)),
        T("MultiheadAttention", "need_weights=False, causal mask",
          lambda: Call(nn.MultiheadAttention(4, 2, batch_first=True), lambda mha, x: mha(
              x, x, x, need_weights=False, attn_mask=nn.Transformer.generate_square_subsequent_mask(x.shape[1]))[0]), SEQ),
        T("MultiheadAttention", "key_padding_mask, per-head weights",
          lambda: Call(nn.MultiheadAttention(4, 2, batch_first=True), lambda mha, x: mha(
              x, x, x, key_padding_mask=(torch.arange(x.shape[1]) >= 3).expand(x.shape[0], -1), average_attn_weights=False)),
          SEQ),
        T("TransformerEncoderLayer", "", lambda: nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), SEQ),
        T("TransformerEncoderLayer", "norm_first, gelu",
          lambda: nn.TransformerEncoderLayer(4, 2, 8, activation="gelu", norm_first=True, batch_first=True), SEQ),
        T("TransformerDecoderLayer", "", lambda: nn.TransformerDecoderLayer(4, 2, 8, batch_first=True), SEQ, SEQ),
        T("TransformerEncoder", "", lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), 2,
                                                                  enable_nested_tensor=False), SEQ),
        T("TransformerDecoder", "", lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, 8, batch_first=True), 2),
          SEQ, SEQ),
        T("Transformer", "", lambda: nn.Transformer(4, 2, 1, 1, 8, batch_first=True), SEQ, SEQ),
        T("AdaptiveLogSoftmaxWithLoss", "log_prob",
          lambda: Call(nn.AdaptiveLogSoftmaxWithLoss(6, 10, [4, 8]), lambda m, x: m.log_prob(x)), (BATCH, 6)),
    ]
    return cases


TORCH_CASES = _torch_cases()

_LOSSES = ("BCELoss", "BCEWithLogitsLoss", "CTCLoss", "CosineEmbeddingLoss", "CrossEntropyLoss", "GaussianNLLLoss",
           "HingeEmbeddingLoss", "HuberLoss", "KLDivLoss", "L1Loss", "LinearCrossEntropyLoss", "MSELoss",
           "MarginRankingLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "NLLLoss",
           "NLLLoss2d", "PoissonNLLLoss", "SmoothL1Loss", "SoftMarginLoss", "TripletMarginLoss",
           "TripletMarginWithDistanceLoss")

# Public module classes of torch.nn.modules that are not inference layers.
TORCH_NOT_SWEPT = {
    "Module": "the base class of every module",
    "Container": "deprecated base class of the containers",
    "ModuleList": "a list of modules: its owner's forward says what runs",
    "ModuleDict": "a dict of modules: its owner's forward says what runs",
    "ParameterList": "a list of parameters, no forward",
    "ParameterDict": "a dict of parameters, no forward",
    "RNNBase": "the base class of RNN, LSTM and GRU",
    "RNNCellBase": "the base class of RNNCell, LSTMCell and GRUCell",
    **{name: "a training loss of predictions and targets" for name in _LOSSES},
}


# ---- refusals -------------------------------------------------------------------------------------------------

_RANDOM_REGIONS = ("without _random_samples it draws random pooling regions at every call, in eval mode too (with them,"
                   " the regions are fixed and it passes)")


def _refuse(cases: list[Case], reasons: dict[str, tuple[type, str]]) -> list[Case]:
    """``cases`` with those named in ``reasons`` (by id: a class's base case is its name) turned into expected
    refusals (error type, reason)."""
    out = []
    for case in cases:
        if case.id in reasons:
            error, reason = reasons[case.id]
            case = Case(case.cls, case.options, case.build, refused=reason, error=error)
        out.append(case)
    return out


TORCH_CASES = _refuse(TORCH_CASES, {
    "FractionalMaxPool2d": (ModelFormatError, _RANDOM_REGIONS),
    "FractionalMaxPool3d": (ModelFormatError, _RANDOM_REGIONS),
})


# ---- the sweeps -----------------------------------------------------------------------------------------------


def _flat(outputs: Any) -> list[np.ndarray]:
    """Outputs as a flat list of arrays: torch's recurrent modules return ``(y, (h, c))``."""
    if isinstance(outputs, (list, tuple)):
        return [a for o in outputs for a in _flat(o)]
    return [outputs.detach().numpy() if isinstance(outputs, torch.Tensor) else np.asarray(outputs)]


def _load(model: Any, inputs: tuple) -> sr.Model:
    if isinstance(model, keras.Model):  # (an nn.Module too, on the torch backend)
        return sr.load(model)
    return sr.load(model, example_inputs=inputs)


def _expected(model: Any, inputs: tuple) -> list[np.ndarray]:
    if isinstance(model, keras.Model):
        return _flat(model.predict(list(inputs) if len(inputs) > 1 else inputs[0], verbose=0))
    with torch.no_grad():
        return _flat(model(*inputs))


def check_case(case: Case) -> None:
    """Build the case's model; a refusal must raise its error naming the class, anything else match the framework."""
    model, inputs = case.build()
    if case.refused:
        with pytest.raises(case.error, match=case.cls):
            sr.compile(_load(model, inputs), backend="jit")
        return
    session = sr.compile(_load(model, inputs), backend="jit")
    got, expected = _flat(session.infer(*(np.asarray(x) for x in inputs))), _expected(model, inputs)
    assert len(got) == len(expected), f"{len(got)} outputs, the framework has {len(expected)}"
    for k, (a, e) in enumerate(zip(got, expected)):
        assert a.shape == e.shape, f"output {k}: shape {a.shape} != {e.shape}"
        if e.dtype.kind == "f":
            np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(a, e, err_msg=f"output {k}")


# make test runs these cases (a pass of each kind of model, translations of our own and a refusal), make test-full
# the rest.
QUICK = {"Dense", "LSTM[return_sequences, return_state]", "Conv2D[padding=same, strides=2]", "MelSpectrogram",
         "Linear", "LSTM[2 layers, bidirectional, sequence first]", "Conv2d", "AdaptiveMaxPool2d[return_indices]",
         "CrossMapLRN2d", "FractionalMaxPool2d"}


def _params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id, marks=() if c.id in QUICK else pytest.mark.slow) for c in cases]


@pytest.mark.parametrize("case", _params(KERAS_CASES))
def test_keras_layer(case: Case) -> None:
    check_case(case)


@pytest.mark.parametrize("case", _params(TORCH_CASES))
def test_torch_module(case: Case) -> None:
    check_case(case)


# ---- every class declared ------------------------------------------------------------------------------------


def keras_classes() -> dict[type, list[str]]:
    """Every public class of ``keras.layers`` with its public names (Keras exports aliases: AvgPool1D)."""
    return _public_classes(L, lambda c: True)


def torch_classes() -> dict[type, list[str]]:
    """Every public ``nn.Module`` class of ``torch.nn.modules``."""
    return _public_classes(nn.modules, lambda c: issubclass(c, nn.Module))


def _public_classes(namespace: Any, keep: Callable[[type], bool]) -> dict[type, list[str]]:
    classes: dict[type, list[str]] = {}
    for name in sorted(dir(namespace)):
        value = getattr(namespace, name)
        if not name.startswith("_") and inspect.isclass(value) and keep(value):
            classes.setdefault(value, []).append(name)
    return classes


SWEEPS = {"keras": (keras_classes, L, KERAS_CASES, KERAS_NOT_SWEPT),
          "torch": (torch_classes, nn.modules, TORCH_CASES, TORCH_NOT_SWEPT)}


@pytest.mark.parametrize("framework", SWEEPS)
def test_every_class_is_declared(framework: str) -> None:
    """Every public class has a case or is listed as not swept, with its reason, and every declared name is one."""
    enumerate_classes, namespace, cases, excluded = SWEEPS[framework]
    classes = enumerate_classes()
    declared = {c.cls for c in cases} | set(excluded)
    unknown = sorted(n for n in declared if not any(n in names for names in classes.values()))
    assert not unknown, f"declared but not a public {framework} class: {unknown}"
    missing = sorted(names[0] for names in classes.values() if not declared & set(names))
    assert not missing, f"{framework} classes with neither a case nor a reason in the not-swept table: {missing}"
    both = sorted({c.cls for c in cases} & set(excluded))
    assert not both, f"both swept and listed as not swept: {both}"
    for names in classes.values():
        assert len(declared & set(names)) == 1, f"declared under more than one of its names: {names}"


@pytest.mark.parametrize("framework", SWEEPS)
def test_training_only_classes_are_cases(framework: str) -> None:
    """Dropout, noise and augmentation layers compute at inference too (the identity): they are swept, not listed."""
    _, _, cases, excluded = SWEEPS[framework]
    listed = [n for n in excluded if "Dropout" in n or "Noise" in n or n.startswith("Random")]
    assert not listed
    assert {"Dropout", "AlphaDropout"} <= {c.cls for c in cases}


# ---- the docs page --------------------------------------------------------------------------------------------


def _rows(classes: dict[type, list[str]], cases: list[Case], excluded: dict[str, str]) -> tuple[list[str], list[str]]:
    """The swept classes' rows (class | options | result) and the excluded classes' rows (class | reason)."""
    by_name = {name: names for names in classes.values() for name in names}
    swept: dict[str, list[Case]] = {}
    for case in cases:
        swept.setdefault(case.cls, []).append(case)
    rows = []
    for name in sorted(swept, key=str.lower):
        group = swept[name]
        aliases = [n for n in by_name[name] if n != name]
        label = f"`{name}`" + (f" ({', '.join(f'`{a}`' for a in aliases)})" if aliases else "")
        options = "; ".join(c.options or "base" for c in group)
        results = {f"refused: {c.refused}" if c.refused else "passes" for c in group}
        rows.append(f"| {label} | {options} | {'; '.join(sorted(results))} |")
    return rows, [f"| `{name}` | {reason} |" for name, reason in sorted(excluded.items(), key=lambda i: i[0].lower())]


def coverage_page() -> str:
    """docs/guides/layer_coverage.md as the sweeps declare it."""
    versions = {"keras": keras.__version__, "torch": torch.__version__}
    lines = [
        "# Keras layers and torch modules",
        "",
        "Every public class of `keras.layers` and every public module class of `torch.nn.modules`, each built into a",
        "small model of its own (one more per option that changes the computation), loaded with `sr.load`, compiled",
        "with the JIT and compared with the framework's own output (Keras's `model.predict` on the torch backend, the",
        "torch module in eval mode) at rtol 1e-4 / atol 1e-5.  A refused class raises a `SofieError` naming it.",
        "Classes not swept are listed with the reason: those that are not inference layers (base classes, containers,",
        "losses) and those a Keras model on the torch backend cannot hold (TensorFlow or JAX layers, string layers).",
        "Generated from `tests/test_layer_sweeps.py` (`python -m tests.test_layer_sweeps --write-docs`), whose tests",
        "check each row: `make test` a few cases, `make test-full` all of them.  Options are separated by `;`, each",
        "one model; `base` is the class with the arguments the test gives it and no other option.",
        "",
        f"Made with Keras {versions['keras']} and torch {versions['torch']}.",
    ]
    for framework, title in (("keras", "Keras 3 (`keras.layers`)"), ("torch", "PyTorch (`torch.nn`)")):
        enumerate_classes, _, cases, excluded = SWEEPS[framework]
        classes = enumerate_classes()
        rows, excluded_rows = _rows(classes, cases, excluded)
        refused = {c.cls for c in cases if c.refused}
        passing = {c.cls for c in cases} - refused
        lines += [
            "", f"## {title}", "",
            f"{len(classes)} public classes: {len(passing)} pass, {len(refused)} refused, {len(excluded)} not swept;"
            f" {len(cases)} models.",
            "", "| class | options checked | result |", "| --- | --- | --- |", *rows,
            "", "Not swept:", "", "| class | why |", "| --- | --- |", *excluded_rows,
        ]
    return "\n".join(lines) + "\n"


def _without_versions(page: str) -> str:
    return "\n".join(line for line in page.splitlines() if not line.startswith("Made with "))


def test_coverage_page_is_current() -> None:
    """The page holds what the sweeps declare (the library versions it names may be older)."""
    assert _without_versions(PAGE.read_text()) == _without_versions(coverage_page()), (
        "docs/guides/layer_coverage.md is stale: python -m tests.test_layer_sweeps --write-docs")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-docs"]:
        sys.exit("usage: python -m tests.test_layer_sweeps --write-docs")
    PAGE.write_text(coverage_page())
    print(f"wrote {PAGE}")
