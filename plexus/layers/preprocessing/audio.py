"""Audio layers: `MelSpectrogram` (torch's STFT, Keras's HTK mel filters) and
`STFTSpectrogram` (the STFT as a 1-D convolution whose kernels are weights, as Keras)."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from plexus.graph.tensor import torch_dtype
from plexus.layers.preprocessing.base import DataLayer

_MEL_BREAK_HZ, _MEL_HIGH_Q = 700.0, 1127.0
_WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window,
            "blackman": torch.blackman_window}


def window(name_or_values, length, periodic, dtype=torch.float32):
    """A window of `length` samples: a name (`"hann"`, `"hamming"`, `"blackman"`), values, or
    None (rectangular)."""
    if name_or_values is None:
        return torch.ones(length, dtype=dtype)
    if isinstance(name_or_values, str):
        if name_or_values not in _WINDOWS:
            raise NotImplementedError(
                f"Window {name_or_values!r} is not available in plexus; use one of "
                f"{sorted(_WINDOWS)} or pass the window's values as an array.")
        return _WINDOWS[name_or_values](length, periodic=periodic, dtype=dtype)
    values = torch.as_tensor(np.asarray(name_or_values), dtype=dtype)
    if values.shape != (length,):
        raise ValueError(f"The window must have shape ({length},); received "
                         f"{tuple(values.shape)}.")
    return values


def _hz_to_mel(hz):
    return _MEL_HIGH_Q * torch.log(1.0 + hz / _MEL_BREAK_HZ)


def mel_weight_matrix(num_mel_bins, num_spectrogram_bins, sampling_rate, lower_hz, upper_hz,
                      dtype=torch.float32):
    """`(num_spectrogram_bins, num_mel_bins)` triangular HTK mel filters (peak 1)."""
    nyquist = sampling_rate / 2.0
    freqs = torch.linspace(0.0, nyquist, num_spectrogram_bins, dtype=dtype)[1:]
    bins_mel = _hz_to_mel(freqs).unsqueeze(1)
    edges = torch.linspace(float(_hz_to_mel(torch.tensor(lower_hz, dtype=dtype))),
                           float(_hz_to_mel(torch.tensor(upper_hz, dtype=dtype))),
                           num_mel_bins + 2, dtype=dtype)
    lower, center, upper = edges[:-2].view(1, -1), edges[1:-1].view(1, -1), edges[2:].view(1, -1)
    lower_slopes = (bins_mel - lower) / (center - lower)
    upper_slopes = (upper - bins_mel) / (upper - center)
    weights = torch.clamp(torch.minimum(lower_slopes, upper_slopes), min=0.0)
    return F.pad(weights, (0, 0, 1, 0))


class MelSpectrogram(DataLayer):
    """Turns raw audio `(batch, samples)` (or `(samples,)`) into mel spectrograms
    `(batch, num_mel_bins, frames)`, in decibels by default.

    Args:
        fft_length: the FFT size.
        sequence_stride: the hop between frames, in samples.
        sequence_length: the window length (defaults to `fft_length`).
        window: `"hann"`, `"hamming"` or None.
        sampling_rate: samples per second.
        num_mel_bins: the number of mel bands.
        min_freq, max_freq: the band edges in Hz (`max_freq` defaults to half the rate).
        power_to_db: convert power to decibels (`10 log10(power / ref_power)`), clipped at
            `top_db` below the batch's maximum.
        mag_exp: 1 for magnitudes, 2 for power.
        min_power, ref_power: the floor and the reference of the decibel scale.
    """

    def __init__(self, fft_length=2048, sequence_stride=512, sequence_length=None,
                 window="hann", sampling_rate=16000, num_mel_bins=128, min_freq=20.0,
                 max_freq=None, power_to_db=True, top_db=80.0, mag_exp=2.0, min_power=1e-10,
                 ref_power=1.0, **kwargs):
        self.fft_length, self.sequence_stride = fft_length, sequence_stride
        self.sequence_length = sequence_length or fft_length
        if self.fft_length < self.sequence_length:
            raise ValueError(f"MelSpectrogram: fft_length ({fft_length}) must be >= "
                             f"sequence_length ({self.sequence_length}).")
        if isinstance(window, str) and window not in ("hann", "hamming"):
            raise ValueError(f"MelSpectrogram: window must be 'hann', 'hamming' or None; "
                             f"received {window!r}.")
        self.window, self.sampling_rate, self.num_mel_bins = window, sampling_rate, num_mel_bins
        self.min_freq, self.max_freq = min_freq, max_freq or int(sampling_rate / 2)
        self.power_to_db, self.top_db, self.mag_exp = power_to_db, top_db, mag_exp
        self.min_power, self.ref_power = min_power, ref_power
        super().__init__(**kwargs)

    def call(self, inputs):
        dtype = torch_dtype(self.compute_dtype)
        work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        x = inputs.to(work)
        lead, samples = x.shape[:-1], x.shape[-1]
        win = window(self.window, self.sequence_length, True, work).to(x.device)
        spec = torch.stft(x.reshape(-1, samples), n_fft=self.fft_length,
                          hop_length=self.sequence_stride, win_length=self.sequence_length,
                          window=win, center=True, return_complex=True)
        spec = torch.sqrt(spec.real ** 2 + spec.imag ** 2) ** self.mag_exp  # (N, bins, frames)
        matrix = mel_weight_matrix(self.num_mel_bins, spec.shape[1], self.sampling_rate,
                                   self.min_freq, self.max_freq, work).to(x.device)
        mel = torch.einsum("nbf,bm->nmf", spec, matrix)
        if self.power_to_db:
            log_spec = 10.0 * torch.log10(torch.clamp(mel, min=self.min_power))
            ref = max(abs(self.ref_power), self.min_power)
            log_spec = log_spec - 10.0 * math.log10(ref)
            mel = torch.maximum(log_spec, log_spec.max() - self.top_db)
        return mel.reshape(*lead, *mel.shape[1:]).to(dtype)

    def compute_output_shape(self, input_shape):
        frames = lambda n: None if n is None else (n + self.sequence_stride + 1) \
            // self.sequence_stride  # noqa: E731
        if len(input_shape) == 1:
            return (self.num_mel_bins, frames(input_shape[0]))
        return (input_shape[0], self.num_mel_bins, frames(input_shape[1]))

    def get_config(self):
        return {**super().get_config(), "fft_length": self.fft_length,
                "sequence_stride": self.sequence_stride,
                "sequence_length": self.sequence_length, "window": self.window,
                "sampling_rate": self.sampling_rate, "num_mel_bins": self.num_mel_bins,
                "min_freq": self.min_freq, "max_freq": self.max_freq,
                "power_to_db": self.power_to_db, "top_db": self.top_db,
                "mag_exp": self.mag_exp, "min_power": self.min_power,
                "ref_power": self.ref_power}


class STFTSpectrogram(DataLayer):
    """Short-time Fourier transform of `(batch, samples, channels)` signals as a strided 1-D
    convolution with trainable cosine/sine kernels (Keras's layout, so weights load either
    way).

    Args:
        mode: `"log"`, `"magnitude"`, `"psd"`, `"real"`, `"imag"`, `"angle"` or `"stft"`.
        frame_length: the window length in samples.
        frame_step: the hop (default half the frame).
        fft_length: the FFT size (default: the next power of two of `frame_length`).
        window: `"hann"`, `"hamming"`, `"blackman"`, an array, or None.
        periodic: a periodic (rather than symmetric) window.
        scaling: `"density"`, `"spectrum"` or None.
        padding: `"valid"` or `"same"`.
        expand_dims: keep channels as a separate axis.
    """

    _MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")

    def __init__(self, mode="log", frame_length=256, frame_step=None, fft_length=None,
                 window="hann", periodic=False, scaling="density", padding="valid",
                 expand_dims=False, data_format=None, **kwargs):
        if frame_step is not None and not 1 <= frame_step <= frame_length:
            raise ValueError(f"STFTSpectrogram: frame_step must be in [1, frame_length]; "
                             f"received {frame_step}.")
        if fft_length is not None and fft_length < frame_length:
            raise ValueError(f"STFTSpectrogram: fft_length must be >= frame_length; received "
                             f"{fft_length}.")
        if mode not in self._MODES:
            raise ValueError(f"STFTSpectrogram: mode must be one of {self._MODES}; received "
                             f"{mode!r}.")
        if scaling not in (None, "density", "spectrum"):
            raise ValueError(f"STFTSpectrogram: scaling must be None, 'density' or "
                             f"'spectrum'; received {scaling!r}.")
        if padding not in ("valid", "same"):
            raise ValueError(f"STFTSpectrogram: padding must be 'valid' or 'same'; received "
                             f"{padding!r}.")
        window_values = window if window is None or isinstance(window, str) else \
            np.asarray(window).tolist()
        super().__init__(**kwargs)
        from plexus.layers.preprocessing.image_base import image_data_format
        self.mode, self.frame_length, self.frame_step = mode, frame_length, frame_step
        self._frame_step = frame_step or frame_length // 2
        self.fft_length = fft_length
        self._fft_length = fft_length or 2 ** int(math.ceil(math.log2(frame_length)))
        self.window, self.periodic, self.scaling = window_values, periodic, scaling
        self.padding, self.expand_dims = padding, expand_dims
        self.data_format = image_data_format(data_format)
        if isinstance(window, str):
            window_fn = _WINDOWS.get(window)
            if window_fn is None:
                raise NotImplementedError(
                    f"STFTSpectrogram: window {window!r} is not available in plexus; use one "
                    f"of {sorted(_WINDOWS)} or pass the window's values.")

    def _kernel(self, side):
        bins = self._fft_length // 2 + 1
        f32 = torch.float32  # the same float32 arithmetic as Keras, so kernels agree closely
        win = window(self.window, self.frame_length, self.periodic, f32)
        scale = 1.0
        if self.window is not None and self.scaling == "density":
            scale = torch.sqrt((win ** 2).sum())
        elif self.window is not None and self.scaling == "spectrum":
            scale = win.abs().sum()
        freq = torch.arange(bins, dtype=f32).view(1, 1, bins) / ((bins - 1) * 2)
        t = torch.arange(self.frame_length, dtype=f32).view(-1, 1, 1)
        args = (-2 * t) * freq * torch.arccos(torch.tensor(-1.0, dtype=f32))
        kernel = torch.cos(args) if side == "real" else torch.sin(args)
        return kernel * win.view(-1, 1, 1) / scale

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Layer {self.name!r} (STFTSpectrogram) takes inputs of rank 3 "
                             f"(batch, samples, channels); received {tuple(input_shape)}.")
        shape = (self.frame_length, 1, self._fft_length // 2 + 1)
        if self.mode != "imag":
            self.real_kernel = self.add_weight(name="real_kernel", shape=shape,
                                               initializer=lambda s, dtype=None:
                                               self._kernel("real"))
        if self.mode != "real":
            self.imag_kernel = self.add_weight(name="imag_kernel", shape=shape,
                                               initializer=lambda s, dtype=None:
                                               self._kernel("imag"))
        self.built = True

    def _conv(self, x, kernel):
        # x: (batch, channels, samples) -> (batch, channels, freq, frames)
        b, c, n = x.shape
        w = kernel.to(x.dtype).permute(2, 1, 0)  # (freq, 1, frame_length)
        flat = x.reshape(b * c, 1, n)
        if self.padding == "same":
            frames = -(-n // self._frame_step)
            total = max((frames - 1) * self._frame_step + self.frame_length - n, 0)
            flat = F.pad(flat, (total // 2, total - total // 2))
        out = F.conv1d(flat, w, stride=self._frame_step)
        return out.reshape(b, c, out.shape[1], out.shape[2])

    def _arrange(self, out):
        b, c, f, t = out.shape
        if self.data_format == "channels_last":
            return out.permute(0, 3, 2, 1) if self.expand_dims else \
                out.reshape(b, c * f, t).permute(0, 2, 1)
        return out.permute(0, 1, 3, 2) if self.expand_dims else out.reshape(b, c * f, t)

    def call(self, inputs):
        if not inputs.is_floating_point():
            raise TypeError(f"Layer {self.name!r} (STFTSpectrogram) takes float signals; "
                            f"received {inputs.dtype}.")
        x = inputs.permute(0, 2, 1) if self.data_format == "channels_last" else inputs
        real = self._conv(x, self.real_kernel) if self.mode != "imag" else None
        imag = self._conv(x, self.imag_kernel) if self.mode != "real" else None
        if self.mode in ("real", "imag"):
            return self._arrange(real if self.mode == "real" else imag)
        if self.mode == "angle":
            return self._arrange(torch.atan2(imag, real))
        if self.mode == "stft":
            return self._arrange(torch.cat([real, imag], dim=2))
        power = real ** 2 + imag ** 2
        if self.mode == "psd":
            return self._arrange(power + F.pad(power[:, :, 1:-1, :], (0, 0, 1, 1)))
        magnitude = self._arrange(torch.sqrt(torch.clamp(power, min=1e-7)))
        return magnitude if self.mode == "magnitude" else torch.log(
            torch.clamp(magnitude, min=1e-7))

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        n = input_shape[1] if self.data_format == "channels_last" else input_shape[2]
        freq = (self._fft_length // 2 + 1) * (2 if self.mode == "stft" else 1)
        if n is None:
            frames = None
        elif self.padding == "same":
            frames = -(-n // self._frame_step)
        else:
            frames = (n - self.frame_length) // self._frame_step + 1
        if self.expand_dims:
            return (input_shape[0], frames, freq, channels) if self.data_format == \
                "channels_last" else (input_shape[0], channels, frames, freq)
        width = None if channels is None else freq * channels
        return (input_shape[0], frames, width) if self.data_format == "channels_last" \
            else (input_shape[0], width, frames)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "frame_length": self.frame_length,
                "frame_step": self.frame_step, "fft_length": self.fft_length,
                "window": self.window, "periodic": self.periodic, "scaling": self.scaling,
                "padding": self.padding, "expand_dims": self.expand_dims,
                "data_format": self.data_format}
