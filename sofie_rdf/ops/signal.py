"""Signal processing: HannWindow, HammingWindow, BlackmanWindow, DFT, STFT and MelWeightMatrix.

Complex tensors are real tensors with a last axis of 2 (real, imaginary), or
of 1 for real input, as ONNX lays them out.  The transforms are direct
O(n^2) sums accumulated in double over tabulated twiddles.
A window's size known when the code is generated fixes its output shape;
computed at run time it becomes a run-time dim (:meth:`Op.runtime_dim`).  So do
DFT's axis and dft_length and STFT's frame_step and frame_length: known, they
specialise the code; computed at run time, the node's code reads and checks
them, and the output dims they set become run-time dims.
"""

from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np
import sympy

from ..ir import TensorType
from ..ir.dims import Dim, as_dim, simplify
from ..ir.dtypes import FLOAT_TYPES, from_onnx
from .base import Op, normalize_axis
from .registry import register

_SIZE_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


def _half_spectrum(length: Dim) -> Dim:
    """Bins of a one-sided spectrum: the others mirror them (conjugate symmetry of a real signal's transform)."""
    return length // 2 + 1 if isinstance(length, int) else simplify(sympy.floor(length / 2) + 1)


def _scalar(op: Op, inputs: list[Optional[TensorType]], i: int, what: str) -> Optional[int]:
    """A scalar integer input needed when generating (None when omitted)."""
    value = op.value_of(inputs, i, what)
    if value is None:
        return None
    value = np.asarray(value).reshape(-1)
    if value.size != 1 or inputs[i].dtype not in _SIZE_TYPES:
        raise op.error(f"{what} must be an int32 or int64 scalar, got {inputs[i].dtype} of shape {inputs[i].shape}")
    return int(value[0])


def _at_run_time(inputs: list[Optional[TensorType]], i: int) -> bool:
    """Input ``i`` is given and its value is computed while the code runs."""
    return i < len(inputs) and inputs[i] is not None and inputs[i].value is None


def _check_run_time_scalar(op: Op, inputs: list[Optional[TensorType]], i: int, what: str) -> None:
    """A scalar integer input read while running must at least be typed as one when generating."""
    t = inputs[i]
    if t.dtype not in _SIZE_TYPES or t.size != 1:
        raise op.error(f"{what} must be an int32 or int64 scalar, got {t.dtype} of shape {t.shape}")


class _CosineWindow(Op):
    """a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N); subclasses give the coefficients."""

    since_version = 17
    value_inputs = (0,)  # read at run time when not known
    coefficients: ClassVar[tuple[float, float, float]] = (0.0, 0.0, 0.0)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        size = inputs[0]
        if size.dtype not in _SIZE_TYPES or size.size != 1:
            raise self.error(f"size must be an int32 or int64 scalar, got {size.dtype} of shape {size.shape}")
        dtype = from_onnx(int(self.attrs.get("output_datatype", 1)))
        if size.value is None:
            return [TensorType(dtype, (self.runtime_dim("size"),))]
        n = as_dim(np.asarray(size.value).reshape(-1)[0])
        if isinstance(n, int) and n < 0:
            raise self.error(f"size must not be negative, got {n}")
        return [TensorType(dtype, (n,))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        size = int(np.asarray(values[0]).reshape(-1)[0])
        period = size if self.attrs.get("periodic", 1) else size - 1
        a0, a1, a2 = self.coefficients
        with np.errstate(divide="ignore", invalid="ignore"):
            phase = 2 * np.pi * np.arange(size) / period
        y = a0 - a1 * np.cos(phase) + a2 * np.cos(2 * phase)
        dtype = from_onnx(int(self.attrs.get("output_datatype", 1)))
        return [(y if dtype.kind == "f" else y.astype(np.float32)).astype(dtype)]


@register
class HannWindow(_CosineWindow):
    op_type = "HannWindow"
    coefficients = (0.5, 0.5, 0.0)


@register
class HammingWindow(_CosineWindow):
    op_type = "HammingWindow"
    coefficients = (25 / 46, 21 / 46, 0.0)


@register
class BlackmanWindow(_CosineWindow):
    op_type = "BlackmanWindow"
    coefficients = (0.42, 0.5, 0.08)


def _numpy_spectrum(x: np.ndarray) -> np.ndarray:
    """Complex numpy view of a (..., 1|2) real tensor."""
    return x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0].astype(np.complex128)


def _pairs(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


@register
class DFT(Op):
    """Fourier transform along one axis; opset 17 takes the axis as an attribute (default 1).

    ``inverse`` scales by 1 / length; ``onesided`` keeps length // 2 + 1 bins
    forward, and inverse reads a one-sided spectrum and gives the real signal
    (the irfft: default length 2 * (bins - 1), last axis 1).
    """

    op_type = "DFT"
    since_version = 17
    value_inputs = (1,)  # read at run time when not known

    def axis_value(self, inputs: list[Optional[TensorType]]) -> Optional[int]:
        """The axis before normalising; None when read at run time."""
        return int(self.attrs.get("axis", 1))

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the node's code reads its axis or length while running."""
        return any(_at_run_time(inputs, i) for i in self.value_inputs)

    def _check_signal(self, x: TensorType) -> None:
        if x.dtype not in FLOAT_TYPES or x.rank < 2 or x.shape[-1] not in (1, 2):
            raise self.error(f"input must be a float32/float64 (..., 1|2) tensor, got {x.dtype} {x.shape}")

    def known_axis(self, inputs: list[Optional[TensorType]]) -> Optional[int]:
        """The normalised axis, checked; None when read at run time."""
        axis = self.axis_value(inputs)
        if axis is None:
            return None
        axis = normalize_axis(self, axis, inputs[0].rank)
        if axis == inputs[0].rank - 1:
            raise self.error("axis must not be the last (real, imaginary) axis")
        return axis

    def transform_kind(self) -> tuple[bool, bool, bool]:
        """(inverse, onesided, real inverse: the irfft of a one-sided spectrum)."""
        inverse, onesided = bool(self.attrs.get("inverse", 0)), bool(self.attrs.get("onesided", 0))
        return inverse, onesided, inverse and onesided

    def _default_length(self, n: Dim) -> Dim:
        """The length without dft_length, from the n values along the axis."""
        return simplify(2 * (n - 1)) if self.transform_kind()[2] else n

    def _bins(self, length: Dim) -> Dim:
        inverse, onesided, _ = self.transform_kind()
        return _half_spectrum(length) if onesided and not inverse else length

    def layout(self, inputs: list[Optional[TensorType]]) -> tuple[int, Dim, Dim, bool]:
        """(axis, length, output bins, real inverse) of the transform, all known when generating."""
        x = inputs[0]
        self._check_signal(x)
        axis = self.known_axis(inputs)
        if axis is None:
            raise self.error("axis (input 2) must be known when the code is generated, but it is computed at run time")
        length = _scalar(self, inputs, 1, "dft_length")
        if length is None:
            length = self._default_length(x.shape[axis])
        if isinstance(length, int) and length < 1:
            raise self.error(f"the transform length (dft_length) must be positive, got {length}")
        return axis, length, self._bins(length), self.transform_kind()[2]

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        if self.at_run_time(inputs):
            return [TensorType(inputs[0].dtype, self.runtime_shape(inputs))]
        axis, _, bins, real_inverse = self.layout(inputs)
        x = inputs[0]
        shape = (*x.shape[:axis], bins, *x.shape[axis + 1:-1], 1 if real_inverse else 2)
        return [TensorType(x.dtype, shape)]

    def runtime_shape(self, inputs: list[Optional[TensorType]]) -> tuple:
        """Output shape when the axis or the length is read at run time: the bins along a known axis are a
        run-time dim; with the axis unknown, which dim they replace is too, so every dim but the last is one."""
        x = inputs[0]
        self._check_signal(x)
        for i, what in ((1, "dft_length"), (2, "axis")):
            if _at_run_time(inputs, i):
                _check_run_time_scalar(self, inputs, i, what)
        axis, length = self.known_axis(inputs), self.known_length(inputs)
        if isinstance(length, int) and length < 1:
            raise self.error(f"the transform length (dft_length) must be positive, got {length}")
        last = 1 if self.transform_kind()[2] else 2
        if axis is None:
            return (*(self.runtime_dim(f"d{i}") for i in range(x.rank - 1)), last)
        return (*x.shape[:axis], self.runtime_dim("bins"), *x.shape[axis + 1:-1], last)

    def known_length(self, inputs: list[Optional[TensorType]]) -> Optional[Dim]:
        """The given dft_length when known while generating (None when omitted or read at run time)."""
        return None if _at_run_time(inputs, 1) else _scalar(self, inputs, 1, "dft_length")

    def length_bound(self, inputs: list[Optional[TensorType]]) -> Optional[Dim]:
        """The longest transform the node's code may run, for its scratch: a known dft_length, or the default
        along the known axis or along any; None when dft_length is read at run time (no bound)."""
        if _at_run_time(inputs, 1):
            return None
        length = self.known_length(inputs)
        if length is not None:
            return length
        x, axis = inputs[0], self.known_axis(inputs)
        dims = [x.shape[axis]] if axis is not None else x.shape[:-1]
        return simplify(sympy.Max(1, *(self._default_length(d) for d in dims)))

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        inputs = [None if v is None else TensorType(v.dtype, v.shape, v) for v in values]
        axis, length, bins, real_inverse = self.layout(inputs)
        z = _numpy_spectrum(x)
        if real_inverse:
            return [np.fft.irfft(z, n=length, axis=axis)[..., None].astype(x.dtype)]
        transform = np.fft.ifft if self.attrs.get("inverse", 0) else np.fft.fft
        y = transform(z, n=length, axis=axis)
        return [_pairs(np.take(y, np.arange(bins), axis=axis), x.dtype)]

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """Twiddle tables and one line, in double, for the longest transform; none for a length read at run
        time, whose code computes in place."""
        length = self.layout(inputs)[1] if not self.at_run_time(inputs) else self.length_bound(inputs)
        return [] if length is None else [TensorType(np.float64, (simplify(4 * length),))]


@register
class DFT20(DFT):
    """Opset 20: the axis is an optional input (default -2), read at run time when not known."""

    since_version = 20
    value_inputs = (1, 2)

    def axis_value(self, inputs: list[Optional[TensorType]]) -> Optional[int]:
        if _at_run_time(inputs, 2):
            return None
        axis = _scalar(self, inputs, 2, "axis")
        return -2 if axis is None else axis


@register
class STFT(Op):
    """Fourier transforms of frames frame_step apart, each frame_length long and weighted by the window."""

    op_type = "STFT"
    since_version = 17
    value_inputs = (1, 3)  # read at run time when not known

    def at_run_time(self, inputs: list[Optional[TensorType]]) -> bool:
        """Whether the node's code reads frame_step or frame_length while running."""
        return any(_at_run_time(inputs, i) for i in self.value_inputs)

    def frame_length(self, inputs: list[Optional[TensorType]]) -> Optional[Dim]:
        """The frame length, checked against the window and the signal: frame_length, else the window's
        length, else the whole signal; None when frame_length is read at run time without a window."""
        x = inputs[0]
        window = inputs[2] if len(inputs) > 2 else None
        if x.dtype not in FLOAT_TYPES or x.rank != 3 or x.shape[-1] not in (1, 2):
            raise self.error(f"signal must be a float32/float64 (batch, length, 1|2) tensor, got {x.dtype} {x.shape}")
        if window is not None and (window.rank != 1 or window.dtype != x.dtype):
            raise self.error(f"window must be a 1-D {x.dtype} tensor, got {window.dtype} {window.shape}")
        if _at_run_time(inputs, 3):
            _check_run_time_scalar(self, inputs, 3, "frame_length")
            return None if window is None else window.shape[0]  # the code checks the frame_length read
        length = _scalar(self, inputs, 3, "frame_length")
        if length is None:
            length = window.shape[0] if window is not None else x.shape[1]
        if window is not None and window.shape[0] != length:
            raise self.error(f"window has {window.shape[0]} values for frames of {length}")
        if isinstance(length, int) and length < 1:
            raise self.error(f"frame_length must be positive, got {length}")
        self.require(sympy.Ge(x.shape[1], length), f"the signal ({x.shape[1]}) must hold a frame ({length})")
        return length

    def layout(self, inputs: list[Optional[TensorType]]) -> tuple[int, Dim, Dim, Dim]:
        """(step, frame length, frames, bins), all known when generating."""
        x = inputs[0]
        step = _scalar(self, inputs, 1, "frame_step")
        if step is None or step < 1:
            raise self.error(f"frame_step must be positive, got {step}")
        length = self.frame_length(inputs)
        if length is None:
            raise self.error("frame_length (input 3) must be known when the code is generated, but it is computed at run time")
        frames = simplify(1 + sympy.floor(sympy.Integer(1) * (x.shape[1] - length) / step))
        return step, length, frames, self._bins(length)

    def _bins(self, length: Dim) -> Dim:
        return _half_spectrum(length) if self.attrs.get("onesided", 1) else length

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if self.at_run_time(inputs):
            return [TensorType(x.dtype, self.runtime_shape(inputs))]
        _, _, frames, bins = self.layout(inputs)
        return [TensorType(x.dtype, (x.shape[0], frames, bins, 2))]

    def runtime_shape(self, inputs: list[Optional[TensorType]]) -> tuple:
        """Output shape when frame_step or frame_length is read at run time: the frame count is a run-time
        dim, and so are the bins when the frame length is one (no window fixes it)."""
        if _at_run_time(inputs, 1):
            _check_run_time_scalar(self, inputs, 1, "frame_step")
        elif (step := _scalar(self, inputs, 1, "frame_step")) is None or step < 1:
            raise self.error(f"frame_step must be positive, got {step}")
        length = self.frame_length(inputs)
        bins = self.runtime_dim("bins") if length is None else self._bins(length)
        return (inputs[0].shape[0], self.runtime_dim("frames"), bins, 2)

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        x = values[0]
        inputs = [None if v is None else TensorType(v.dtype, v.shape, v) for v in values]
        step, length, frames, bins = self.layout(inputs)
        window = values[2] if len(values) > 2 and values[2] is not None else np.ones(length)
        z = _numpy_spectrum(x)
        framed = np.stack([z[:, f * step:f * step + length] * window for f in range(frames)], axis=1)
        return [_pairs(np.fft.fft(framed, axis=-1)[..., :bins], x.dtype)]

    def workspace(self, inputs: list[Optional[TensorType]], outputs: list[Optional[TensorType]]) -> list[TensorType]:
        """Twiddle tables and one frame, in double; for a frame length read at run time, room for the longest
        frame the signal holds (the code checks that it holds the frame)."""
        length = self.frame_length(inputs)
        return [TensorType(np.float64, (simplify(4 * (inputs[0].shape[1] if length is None else length)),))]


@register
class MelWeightMatrix(Op):
    """Triangular mel filter bank, (dft_length / 2 + 1, num_mel_bins), of the requested output type.

    Inputs known when the code is generated fold it to a constant; otherwise it is computed at run
    time, with run-time dims for the sizes not known (:meth:`Op.runtime_dim`).
    """

    op_type = "MelWeightMatrix"
    since_version = 17
    value_inputs = (0, 1, 2, 3, 4)  # read at run time when not known

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        for i, what in enumerate(("num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz")):
            allowed = _SIZE_TYPES if i < 3 else FLOAT_TYPES
            if inputs[i].dtype not in allowed or inputs[i].size != 1:
                raise self.error(f"{what} must be a scalar of {[str(t) for t in allowed]}, got {inputs[i].dtype} "
                                 f"of shape {inputs[i].shape}")
        dtype = from_onnx(int(self.attrs.get("output_datatype", 1)))
        if dtype.kind == "b":
            raise self.error("output_datatype bool is not allowed")
        mel = self._known(inputs, 0)
        length = self._known(inputs, 1)
        bins = self.runtime_dim("spectrogram_bins") if length is None else _half_spectrum(length)
        return [TensorType(dtype, (bins, self.runtime_dim("mel_bins") if mel is None else mel))]

    @staticmethod
    def _known(inputs: list[Optional[TensorType]], i: int) -> Optional[Dim]:
        """The value of scalar input ``i`` when known while generating."""
        value = inputs[i].value
        return None if value is None else as_dim(np.asarray(value).reshape(-1)[0])

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        mel, length, rate = (int(np.asarray(v).reshape(-1)[0]) for v in values[:3])
        lower, upper = (float(np.asarray(v).reshape(-1)[0]) for v in values[3:5])
        bins = length // 2 + 1
        low, high = (2595 * np.log1p(f / 700) / np.log(10) for f in (lower, upper))
        hz = 700 * np.expm1((np.arange(mel + 2) * (high - low) / (mel + 2) + low) / 2595 * np.log(10))
        edges = np.floor((length + 1) * hz / rate).astype(np.int64)
        if mel and (edges[0] < 0 or edges[-2] >= bins or edges[-1] > bins):
            raise self.error(f"mel bands (bins {edges.tolist()}) fall outside the {bins} spectrogram bins")
        y = np.zeros((bins, mel))
        for i, (left, center, right) in enumerate(zip(edges, edges[1:], edges[2:])):
            if center == left:
                y[center, i] = 1
            else:
                y[left:center + 1, i] = (np.arange(left, center + 1) - left) / (center - left)
            y[center:right, i] = (right - np.arange(center, right)) / max(right - center, 1)
        return [y.astype(from_onnx(int(self.attrs.get("output_datatype", 1))))]
