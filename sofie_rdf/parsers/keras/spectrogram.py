"""Keras spectrogram layers: ``STFTSpectrogram`` and ``MelSpectrogram``.

A short-time Fourier transform with a fixed window, frame length and hop is a
strided 1-D convolution of the signal with constant kernels, the window times
the cosines and minus the sines of the DFT: one ``Conv`` node computes the real
and the imaginary parts of every bin of every frame, one group per input
channel, so no transpose of the batch is needed.

``STFTSpectrogram`` is that convolution in Keras itself: its kernels are the
layer's weights (``real_kernel``, ``imag_kernel``: any window Keras accepts, trained
or not), its padding Keras's ``"valid"``/``"same"`` (ONNX ``SAME_UPPER``), and
each mode (``real``, ``imag``, ``stft``, ``angle``, ``psd``, ``magnitude``,
``log``) the same arithmetic on the two results, with ``keras.backend.epsilon()``
as Keras's floor; ``angle`` is ``atan2`` written out from ``Atan`` (ONNX has
no ``Atan2``), signed zeros included.

``MelSpectrogram`` calls ``keras.ops.stft(center=True)``, torch's ``stft``:
the signal reflect-padded by ``fft_length // 2`` on each side, the window
(periodic ``hann``/``hamming``, an array, or none) zero-padded to
``fft_length`` around its centre.  The convolution reads only the window's
samples, so the reflection is cut to what they reach.  The magnitude to the power
``mag_exp`` goes through the layer's own mel filter bank (a constant
``MatMul``) and, with ``power_to_db``, into decibels clipped ``top_db``
below the maximum, which Keras takes over the whole tensor (every sample of
the batch, as ``model.predict`` does over each of its batches).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import UnsupportedOperatorError
from .builder import GraphBuilder, Tensor, weight
from .preprocessing import to_compute_dtype
from .registry import converts


def _refuse(b: GraphBuilder, layer: Any, option: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(b.model_name, {f"keras.layers.{type(layer).__name__} with {option}": [layer.name]})


def _float32(b: GraphBuilder, layer: Any, call: Any, x: str) -> str:
    """The input in the layer's compute dtype, which must be float32."""
    if str(layer.compute_dtype) != "float32":
        raise _refuse(b, layer, f"compute dtype {layer.compute_dtype} (float32 only)")
    return to_compute_dtype(b, x, call, layer)


def _dft_conv(b: GraphBuilder, x: str, kernels: np.ndarray, channels: int, stride: int, padding: Any) -> str:
    """``Conv`` of ``x`` (N, channels, T) with ``kernels`` (K, L) applied to each channel: (N, channels * K, frames),
    channel ``c * K + k`` the kernel ``k`` on channel ``c``."""
    w = np.ascontiguousarray(np.tile(kernels[:, None, :], (channels, 1, 1)), dtype=np.float32)
    attrs: dict[str, Any] = {"kernel_shape": [w.shape[-1]], "strides": [stride], "group": channels}
    attrs.update({"auto_pad": "SAME_UPPER"} if padding == "same" else {"pads": [0, 0]})
    return b.add("Conv", [x, b.const(w, "dft_kernel")], attrs)


def _power(b: GraphBuilder, re: str, im: str) -> str:
    """``re^2 + im^2``, as Keras adds the squares."""
    return b.add("Add", [b.add("Mul", [re, re]), b.add("Mul", [im, im])])


def _frames_first(b: GraphBuilder, y: str, channels: int, bins: int) -> str:
    """(N, channels * bins, frames) as (N, frames, channels, bins); the frames axis, whose length can be a
    run-time one, is never the one a Reshape infers."""
    return b.reshape(b.transpose(y, [0, 2, 1]), [0, 0, channels, bins])


def _negative(b: GraphBuilder, v: str) -> str:
    """``v``'s sign bit, zeros included: ``1 / v < 0`` (true for -0.0, whose reciprocal is -inf)."""
    return b.add("Less", [b.add("Reciprocal", [v]), b.const(0.0, "zero")])


def _atan2(b: GraphBuilder, y: str, x: str) -> str:
    """``atan2(y, x)`` as IEEE 754 (and torch) define it, signed zeros included: ``atan(y / x)``, plus pi with
    the sign of ``y`` where ``x`` is negative or -0.0; where both are zeros, ``y`` itself before that."""
    zero = b.const(0.0, "zero")
    both_zero = b.add("And", [b.add("Equal", [x, zero]), b.add("Equal", [y, zero])])
    base = b.add("Where", [both_zero, y, b.add("Atan", [b.add("Div", [y, x])])])
    pi = b.add("Where", [_negative(b, y), b.const(-math.pi, "minus_pi"), b.const(math.pi, "pi")])
    return b.add("Where", [_negative(b, x), b.add("Add", [base, pi]), base])


# ---- STFTSpectrogram ------------------------------------------------------------------------------------------


def _keras_epsilon() -> float:
    import keras

    return float(keras.backend.epsilon())


def _adjust_shapes(b: GraphBuilder, layer: Any, y: str, channels: int, bins: int) -> str:
    """Keras's ``_adjust_shapes`` of the (N, channels * bins, frames) result: the layer's output layout."""
    last = layer.data_format == "channels_last"
    if not layer.expand_dims:
        return b.transpose(y, [0, 2, 1]) if last else y
    # Keras: (N, frames, bins, channels) channels last, (N, channels, frames, bins) channels first.
    return b.transpose(_frames_first(b, y, channels, bins), [0, 1, 3, 2] if last else [0, 2, 1, 3])


@converts("STFTSpectrogram")
def _stft_spectrogram(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    x = inputs[0]
    last = layer.data_format == "channels_last"
    channels = x.shape[-1] if last else x.shape[1]
    if channels is None:
        raise _refuse(b, layer, "an open number of input channels")
    signal = _float32(b, layer, call, x.name)
    if last:
        signal = b.transpose(signal, [0, 2, 1])
    mode, bins = layer.mode, layer._fft_length // 2 + 1

    def conv(kernel: Any) -> str:  # Keras kernels are (frame_length, 1, bins); the Conv reads (bins, frame_length)
        return _dft_conv(b, signal, weight(kernel)[:, 0, :].T, channels, layer._frame_step, layer.padding)

    if mode in ("real", "imag"):
        return _adjust_shapes(b, layer, conv(layer.real_kernel if mode == "real" else layer.imag_kernel), channels, bins)
    if mode == "stft":  # per channel the real bins, then the imaginary ones: one kernel of both
        kernels = np.concatenate([weight(k)[:, 0, :].T for k in (layer.real_kernel, layer.imag_kernel)])
        both = _dft_conv(b, signal, kernels, channels, layer._frame_step, layer.padding)
        return _adjust_shapes(b, layer, both, channels, 2 * bins)
    re, im = conv(layer.real_kernel), conv(layer.imag_kernel)
    if mode == "angle":
        return _adjust_shapes(b, layer, _atan2(b, im, re), channels, bins)
    power = _power(b, re, im)
    if mode == "psd":  # Keras adds the bins between the first and the last once more
        double = np.full((channels, bins, 1), 2.0, np.float32)
        double[:, [0, -1]] = 1.0
        double = b.const(double.reshape(channels * bins, 1), "one_sided")
        return _adjust_shapes(b, layer, b.add("Mul", [power, double]), channels, bins)
    epsilon = b.const(_keras_epsilon(), "epsilon")
    magnitude = b.add("Sqrt", [b.add("Max", [power, epsilon])])
    if mode == "log":
        magnitude = b.add("Log", [b.add("Max", [magnitude, epsilon])])
    return _adjust_shapes(b, layer, magnitude, channels, bins)


# ---- MelSpectrogram -------------------------------------------------------------------------------------------


def _window(b: GraphBuilder, layer: Any, length: int) -> np.ndarray:
    """The window ``keras.ops.stft`` (torch backend) applies: periodic hann or hamming, an array, or ones."""
    window = layer.window
    n = np.arange(length, dtype=np.float64)
    if window is None:
        return np.ones(length)
    if isinstance(window, str):
        cosine = np.cos(2.0 * np.pi * n / length)
        if window == "hann":
            return 0.5 - 0.5 * cosine
        if window == "hamming":
            return 0.54 - 0.46 * cosine
        raise _refuse(b, layer, f"window={window!r} (keras.ops.stft takes 'hann' or 'hamming')")
    values = np.asarray(window, dtype=np.float64).reshape(-1)
    if values.size != length:
        raise _refuse(b, layer, f"a window of {values.size} values for sequence_length={length}")
    return values


def _stft_kernels(window: np.ndarray, fft_length: int) -> tuple[np.ndarray, int]:
    """The (2 * bins, len(window)) kernels of torch's centred STFT (the real parts of the one-sided bins, then the
    imaginary ones), and where the window starts in a frame of ``fft_length`` samples."""
    start = (fft_length - window.size) // 2
    n = start + np.arange(window.size)
    k = np.arange(fft_length // 2 + 1)
    angle = 2.0 * np.pi * ((k[:, None] * n[None, :]) % fft_length) / fft_length
    return np.concatenate([window * np.cos(angle), -window * np.sin(angle)]), start


def _mel_matrix(layer: Any, bins: int) -> np.ndarray:
    """The layer's own filter bank, (bins, mel bins), as Keras computes it."""
    from keras import ops

    matrix = layer.linear_to_mel_weight_matrix(num_mel_bins=layer.num_mel_bins, num_spectrogram_bins=bins,
                                               sampling_rate=layer.sampling_rate, lower_edge_hertz=layer.min_freq,
                                               upper_edge_hertz=layer.max_freq)
    return np.asarray(ops.convert_to_numpy(matrix), dtype=np.float32)


def _decibels(b: GraphBuilder, layer: Any, spectrum: str) -> str:
    """Keras's ``_dbscale``: ``10 log10(max(s, min_power) / max(|ref_power|, min_power))``, clipped ``top_db``
    below its maximum over the whole tensor."""
    if layer.top_db is None:
        raise _refuse(b, layer, "power_to_db and top_db=None (Keras itself fails on it)")
    to_db = b.const(10.0 / math.log(10.0), "decibels_per_neper")
    log_spec = b.add("Mul", [b.add("Log", [b.add("Max", [spectrum, b.const(float(layer.min_power), "min_power")])]),
                             to_db])
    reference = 10.0 * math.log10(max(abs(float(layer.ref_power)), float(layer.min_power)))
    if reference != 0.0:
        log_spec = b.add("Sub", [log_spec, b.const(reference, "reference_db")])
    floor = b.add("Sub", [b.add("ReduceMax", [log_spec], {"keepdims": 0}), b.const(float(layer.top_db), "top_db")])
    return b.add("Max", [log_spec, floor])


@converts("MelSpectrogram")
def _mel_spectrogram(b: GraphBuilder, layer: Any, inputs: list[Tensor], call: Any) -> str:
    x = inputs[0]
    middle = x.shape[1:-1]
    if any(d is None for d in middle):
        raise _refuse(b, layer, f"input shape {x.shape} (open dims other than the batch and the samples)")
    channels = int(np.prod(middle, dtype=np.int64))
    fft_length, length, stride = int(layer.fft_length), int(layer.sequence_length), int(layer.sequence_stride)
    kernels, start = _stft_kernels(_window(b, layer, length), fft_length)
    bins = fft_length // 2 + 1
    half = fft_length // 2
    end = fft_length - start - length  # zero window samples after the window in a frame
    if x.shape[-1] is not None and x.shape[-1] <= half:
        raise _refuse(b, layer, f"{x.shape[-1]} samples (reflect padding by fft_length // 2 = {half} needs more)")
    signal = b.reshape(_float32(b, layer, call, x.name), [0, channels, -1])
    signal = b.add("Pad", [signal, b.ints([0, 0, half - start, 0, 0, half - end], "pads")], {"mode": "reflect"})
    re, im = (_dft_conv(b, signal, k, channels, stride, "valid") for k in np.split(kernels, 2))
    spectrum = b.add("Sqrt", [_frames_first(b, _power(b, re, im), channels, bins)])  # (N, frames, channels, bins)
    exponent = float(layer.mag_exp)
    if exponent == 2.0:
        spectrum = b.add("Mul", [spectrum, spectrum])
    elif exponent != 1.0:
        spectrum = b.add("Pow", [spectrum, b.const(exponent, "mag_exp")])
    y = b.add("MatMul", [spectrum, b.const(_mel_matrix(layer, bins), "mel_filters")])  # (N, frames, channels, mel)
    if layer.power_to_db:
        y = _decibels(b, layer, y)
    if len(middle) != 1:
        y = b.reshape(y, [0, 0, *middle, layer.num_mel_bins])
    rank = len(middle) + 3
    return b.transpose(y, [0, *range(2, rank - 1), rank - 1, 1])  # Keras swaps the frames and the mel bins last
