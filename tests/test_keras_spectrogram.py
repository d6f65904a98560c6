"""Keras's STFTSpectrogram and MelSpectrogram against ``model.predict`` (torch backend).

Checked like tests/test_keras.py: from the object, the ``.keras`` and the
``.h5`` file, rtol 1e-4 / atol 1e-5, batch 3 of seeded normal signals times 2.
Each model has several outputs, one per option set, so that one compiled
session covers many options: every STFTSpectrogram mode, both paddings, both
layouts, ``expand_dims``, the windows and scalings of its kernels (trained
kernels too: the weights are moved off their initial values); for
MelSpectrogram the windows of ``keras.ops.stft``, window shorter than the FFT,
``mag_exp``, ``power_to_db`` with ``ref_power``/``top_db``/``min_power``, the
frequency range, and inputs with channels or of an open length.
"""

from __future__ import annotations

import numpy as np
import pytest

import sofie_rdf as sr
from tests.test_keras import _data, _seeded

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

STFT_OPTIONS = [
    {"mode": "log"},
    {"mode": "magnitude", "padding": "same"},
    {"mode": "psd", "window": "hamming", "periodic": True},
    {"mode": "real", "scaling": "spectrum", "expand_dims": True},
    {"mode": "imag", "scaling": None, "padding": "same", "expand_dims": True},
    {"mode": "angle"},
    {"mode": "stft", "window": "blackman", "frame_step": 2},
    {"mode": "log", "frame_length": 7, "fft_length": 12, "frame_step": 3, "window": [0.5, 1, 2, 1, 0.5, 0.25, 1]},
]


def _stft(options: dict, **more) -> layers.Layer:
    settings = {"frame_length": 8, "frame_step": 4, "fft_length": 8, **options, **more}
    return layers.STFTSpectrogram(**settings)


def test_stft_spectrogram_channels_last(check_keras):
    x = keras.Input((30, 2), name="x")
    model = keras.Model(x, [_stft(o)(x) for o in STFT_OPTIONS], name="stft_last")
    check_keras(_seeded(model), _data(30, 2))


def test_stft_spectrogram_channels_first(check_keras):
    x = keras.Input((3, 27), name="x")
    model = keras.Model(x, [_stft(o, data_format="channels_first")(x) for o in STFT_OPTIONS], name="stft_first")
    check_keras(_seeded(model), _data(3, 27))


def test_stft_spectrogram_open_length(check_keras):
    """An open number of samples: the frames counted at run time, for both paddings and both layouts."""
    x = keras.Input((None, 2), name="x")
    outputs = [_stft(o)(x) for o in STFT_OPTIONS[:5]]
    model = keras.Model(x, outputs + [_stft(STFT_OPTIONS[3], data_format="channels_first")(layers.Permute((2, 1))(x))],
                        name="stft_open")
    check_keras(_seeded(model), _data(29, 2), sources=["object"])


def test_stft_angle_of_zeros_and_constants():
    """atan2's quadrants and signed zeros: frames of zeros, of negative constants and of noise."""
    x = keras.Input((32, 1), name="x")
    model = keras.Model(x, layers.STFTSpectrogram(mode="angle", frame_length=8, frame_step=4, fft_length=8)(x))
    signal = np.zeros((2, 32, 1), np.float32)
    signal[0, 8:16], signal[1, :8] = -1.0, 3.0
    signal[1, 16:] = np.random.default_rng(0).standard_normal((16, 1))
    expected = model.predict(signal, verbose=0)
    got = sr.compile(sr.load(model)).infer(signal)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


MEL_OPTIONS = [
    {},
    {"window": "hamming", "power_to_db": False, "mag_exp": 1.0},
    {"window": None, "sequence_length": 19, "sequence_stride": 7, "mag_exp": 1.5, "ref_power": 2.0, "top_db": 20.0,
     "min_freq": 50.0, "max_freq": 400.0},
    {"window": np.linspace(0.2, 1.0, 20).tolist(), "sequence_length": 20, "sequence_stride": 5, "min_power": 1e-3},
]


def _mel(options: dict) -> layers.Layer:
    return layers.MelSpectrogram(**{"fft_length": 32, "sequence_stride": 8, "num_mel_bins": 6, "sampling_rate": 1000,
                                    **options})


def test_mel_spectrogram(check_keras):
    x = keras.Input((50,), name="x")
    model = keras.Model(x, [_mel(o)(x) for o in MEL_OPTIONS], name="mel")
    check_keras(model, _data(50))


def test_mel_spectrogram_channels_and_open_length(check_keras):
    """A (channels, samples) input; an open number of samples (the frames counted at run time)."""
    x = keras.Input((2, 40), name="x")
    check_keras(keras.Model(x, [_mel(o)(x) for o in MEL_OPTIONS[:2]], name="mel_channels"), _data(2, 40))
    x = keras.Input((None,), name="x")
    check_keras(keras.Model(x, [_mel(o)(x) for o in MEL_OPTIONS[1:3]], name="mel_open"), _data(45), sources=["object"])


def test_refused_options():
    """What has no translation is refused naming the layer and the option."""
    x = keras.Input((40,), name="x")
    blackman = layers.MelSpectrogram(fft_length=16, window="blackman", name="mel_blackman")
    with pytest.raises(sr.UnsupportedOperatorError, match=r"keras.layers.MelSpectrogram with window='blackman'.*mel_blackman"):
        sr.load(keras.Model(x, blackman(x)))  # the graph only infers shapes: Keras refuses it on data
    x = keras.Input((40, 1), name="x")
    wide = layers.STFTSpectrogram(frame_length=8, dtype="float64", name="stft64")
    with pytest.raises(sr.UnsupportedOperatorError, match=r"STFTSpectrogram with compute dtype float64.*stft64"):
        sr.load(keras.Model(x, wide(x)))

