"""Weight initializers with Keras's names and defaults.

Every initializer is called with a Keras-layout shape (Dense kernel `(in, units)`, Conv2D kernel
`(kh, kw, in, out)`) and returns a float32 torch tensor of that shape. Without a `seed` the
values come from torch's global generator, so `plexus.utils.set_random_seed` makes weights
reproducible; with an integer `seed` every call returns the same values, the very numbers
Keras's torch backend draws for that seed.
"""
import math

import numpy as np
import torch


def _fans(shape, input_axes=None, output_axes=None):
    if input_axes is not None and output_axes is not None:
        return (math.prod(shape[a] for a in input_axes),
                math.prod(shape[a] for a in output_axes))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: `init(shape, dtype=None)` returns a tensor of that shape."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_seed(seed, name):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"{name}: seed must be an integer or None; received {seed!r}.")
    return seed


def _generator(seed):
    """A generator seeded as Keras's torch backend seeds one for an integer seed, or None
    (torch's global generator)."""
    if seed is None:
        return None
    return torch.Generator().manual_seed(int(seed) & 0xFFFFFFFF)


def _normal(shape, mean, stddev, dtype, seed):
    return torch.normal(float(mean), float(stddev), size=tuple(shape),
                        generator=_generator(seed), dtype=dtype or torch.float32)


def _uniform(shape, minval, maxval, dtype, seed):
    t = torch.rand(tuple(shape), generator=_generator(seed), dtype=dtype or torch.float32)
    return t * (maxval - minval) + minval


def _truncated_normal(shape, mean, stddev, dtype, seed):
    """Normal values within two standard deviations of the mean."""
    dtype = dtype or torch.float32
    if seed is None:
        t = torch.empty(tuple(shape), dtype=dtype)
        return torch.nn.init.trunc_normal_(t, mean, stddev, mean - 2 * stddev, mean + 2 * stddev)
    # Keras's way for a seed (the same numbers): four draws per value, the first within bounds
    x = torch.normal(0.0, 1.0, size=tuple(shape) + (4,), generator=_generator(seed), dtype=dtype)
    first = ((x > -2) & (x < 2)).max(-1, keepdim=True)[1]
    return x.gather(-1, first).squeeze(-1) * stddev + mean


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return torch.zeros(tuple(shape), dtype=dtype or torch.float32)


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return torch.ones(tuple(shape), dtype=dtype or torch.float32)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return torch.full(tuple(shape), float(self.value), dtype=dtype or torch.float32)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    """Normal values with `mean` and `stddev` (0.05)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = mean, stddev
        self.seed = _check_seed(seed, type(self).__name__)

    def __call__(self, shape, dtype=None):
        if self.seed is None:
            return torch.randn(tuple(shape), dtype=dtype or torch.float32) * self.stddev + self.mean
        return _normal(shape, self.mean, self.stddev, dtype, self.seed)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    """Uniform values in `[minval, maxval)` (default +-0.05)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval = minval, maxval
        self.seed = _check_seed(seed, type(self).__name__)

    def __call__(self, shape, dtype=None):
        return _uniform(shape, self.minval, self.maxval, dtype, self.seed)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(Initializer):
    """Normal values with `mean` and `stddev` (0.05), redrawn beyond two deviations."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = mean, stddev
        self.seed = _check_seed(seed, type(self).__name__)

    def __call__(self, shape, dtype=None):
        return _truncated_normal(shape, self.mean, self.stddev, dtype, self.seed)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """Values with variance `scale / n`, `n` the fan-in, fan-out or their mean (`mode`).

    Args:
        distribution: `"truncated_normal"` (alias `"normal"`), `"untruncated_normal"` or
            `"uniform"`.
        input_axes, output_axes: the axes that count as inputs and outputs for the fans
            (both or neither; by default the last axis is the output, the one before the
            input, the others a receptive field).
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        if not scale > 0:
            raise ValueError(f"VarianceScaling: scale must be positive; received {scale!r}.")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling mode must be 'fan_in', 'fan_out' or 'fan_avg'; got {mode!r}.")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "VarianceScaling distribution must be 'truncated_normal', 'untruncated_normal' "
                f"or 'uniform'; got {distribution!r}."
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.seed = _check_seed(seed, type(self).__name__)
        self.input_axes, self.output_axes = input_axes, output_axes

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(tuple(shape), self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        dtype = dtype or torch.float32
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            return _uniform(shape, -limit, limit, dtype, self.seed)
        if self.distribution == "untruncated_normal":
            if self.seed is None:
                return torch.randn(tuple(shape), dtype=dtype) * math.sqrt(scale)
            return _normal(shape, 0.0, math.sqrt(scale), dtype, self.seed)
        return _truncated_normal(shape, 0.0, math.sqrt(scale) / 0.87962566103423978, dtype,
                                 self.seed)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class _Preset(VarianceScaling):
    """A `VarianceScaling` with fixed scale, mode and distribution (`_PRESET`)."""

    _PRESET = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(*self._PRESET, seed=seed, input_axes=input_axes,
                         output_axes=output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class GlorotUniform(_Preset):
    """Uniform in `+-sqrt(6 / (fan_in + fan_out))` (Xavier uniform)."""
    _PRESET = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Preset):
    """Truncated normal with variance `2 / (fan_in + fan_out)` (Xavier normal)."""
    _PRESET = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_Preset):
    """Uniform in `+-sqrt(6 / fan_in)`."""
    _PRESET = (2.0, "fan_in", "uniform")


class HeNormal(_Preset):
    """Truncated normal with variance `2 / fan_in`."""
    _PRESET = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_Preset):
    """Uniform in `+-sqrt(3 / fan_in)`."""
    _PRESET = (1.0, "fan_in", "uniform")


class LecunNormal(_Preset):
    """Truncated normal with variance `1 / fan_in`."""
    _PRESET = (1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    """An orthogonal matrix (rows or columns, whichever are fewer), times `gain`; shapes of
    rank > 2 are initialized as `(prod(shape[:-1]), shape[-1])` and reshaped."""

    def __init__(self, gain=1.0, seed=None):
        self.gain = gain
        self.seed = _check_seed(seed, type(self).__name__)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"The Orthogonal initializer needs a shape of rank 2 or more; got {shape}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = _normal((max(rows, cols), min(rows, cols)), 0.0, 1.0, torch.float32, self.seed)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).to(dtype or torch.float32)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """`gain` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"The Identity initializer needs a 2D shape; got {tuple(shape)}.")
        return self.gain * torch.eye(*shape, dtype=dtype or torch.float32)

    def get_config(self):
        return {"gain": self.gain}


_WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window,
            "blackman": torch.blackman_window, "bartlett": torch.bartlett_window,
            "boxcar": lambda n, periodic, dtype: torch.ones(n, dtype=dtype)}


class STFT(Initializer):
    """Kernels of a short-time Fourier transform, as a 1-D convolution computes it: shape
    `(frame_length, 1, fft_length // 2 + 1)` holds the real (`side="real"`) or imaginary
    (`"imag"`) part of the DFT, times a window.

    Args:
        side: `"real"` or `"imag"`.
        window: a name (`"hann"`, `"hamming"`, `"blackman"`, `"bartlett"`, `"boxcar"`), the
            window's values (one per frame element), or None.
        scaling: `"density"` (divide by the window's L2 norm), `"spectrum"` (by its L1 norm)
            or None.
        periodic: use the periodic form of a named window (as for spectral analysis)
            rather than the symmetric one.
    """

    def __init__(self, side="real", window="hann", scaling="density", periodic=False):
        if side not in ("real", "imag"):
            raise ValueError(f"STFT: side must be 'real' or 'imag'; received {side!r}.")
        if isinstance(window, str) and window not in _WINDOWS:
            raise ValueError(f"STFT: unknown window {window!r}; known windows: "
                             f"{', '.join(_WINDOWS)} (or pass the window's values).")
        if scaling not in (None, "density", "spectrum"):
            raise ValueError(f"STFT: scaling must be 'density', 'spectrum' or None; received "
                             f"{scaling!r}.")
        self.side, self.window, self.scaling, self.periodic = side, window, scaling, periodic

    def __call__(self, shape, dtype=None):
        if len(shape) != 3:
            raise ValueError(f"STFT kernels have shape (frame_length, 1, fft_length // 2 + 1); "
                             f"received {tuple(shape)}.")
        frame_length, _, bins = shape
        dtype = dtype or torch.float32
        time = torch.arange(frame_length, dtype=torch.float64).reshape(-1, 1, 1)
        freq = torch.arange(bins, dtype=torch.float64).reshape(1, 1, -1) / ((bins - 1) * 2)
        angle = -2.0 * math.pi * time * freq
        kernel = torch.cos(angle) if self.side == "real" else torch.sin(angle)
        if self.window is not None:
            if isinstance(self.window, str):
                win = _WINDOWS[self.window](frame_length, periodic=self.periodic,
                                            dtype=torch.float64)
            else:
                win = torch.as_tensor(self.window, dtype=torch.float64)
            if tuple(win.shape) != (frame_length,):
                raise ValueError(f"STFT: the window has shape {tuple(win.shape)}; expected "
                                 f"({frame_length},), one value per frame element.")
            kernel = kernel * win.reshape(-1, 1, 1)
            if self.scaling == "density":
                kernel = kernel / torch.sqrt(torch.sum(win * win))
            elif self.scaling == "spectrum":
                kernel = kernel / torch.sum(torch.abs(win))
        return kernel.to(dtype)

    def get_config(self):
        window = self.window
        if window is not None and not isinstance(window, str):
            window = [float(v) for v in torch.as_tensor(window).reshape(-1)]
        return {"side": self.side, "window": window, "periodic": self.periodic,
                "scaling": self.scaling}


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
    "identity": Identity, "uniform": RandomUniform, "normal": RandomNormal, "stft": STFT,
    "one": Ones, "zero": Zeros,
}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}
_BY_CLASS.update({"IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal,
                  "STFTInitializer": STFT})
# Keras's other names.
IdentityInitializer, OrthogonalInitializer, STFTInitializer = Identity, Orthogonal, STFT
identity, stft, variance_scaling = Identity, STFT, VarianceScaling
zeros, ones, constant = Zeros, Ones, Constant
glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, HeNormal
lecun_uniform, lecun_normal, orthogonal = LecunUniform, LecunNormal, Orthogonal
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal


def get(identifier):
    """Resolve an initializer given as a name, a config dict, a class, an instance or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown initializer {identifier!r}. Known initializers: {', '.join(sorted(_BY_NAME))}."
            )
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_CLASS.get(identifier["class_name"]) or _BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"Unknown initializer class {identifier['class_name']!r}.")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, (torch.Tensor, np.ndarray, np.generic)):
        return _fixed_values(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"Cannot interpret {identifier!r} as an initializer.")


def _fixed_values(values):
    """An initializer returning `values` (an array or tensor) for exactly their shape."""
    values = torch.as_tensor(values).detach().clone()

    def initialize(shape, dtype=None):
        if tuple(shape) != tuple(values.shape):
            raise ValueError(f"This initializer holds fixed values of shape "
                             f"{tuple(values.shape)}; it was asked for shape {tuple(shape)}.")
        return values.to(dtype or torch.float32)
    return initialize


def serialize(init):
    if init is None:
        return None
    if isinstance(init, Initializer):
        return {"module": "keras.initializers", "class_name": type(init).__name__,
                "config": init.get_config(), "registered_name": None}
    return getattr(init, "__name__", str(init))


def deserialize(config, custom_objects=None):
    """The initializer a config (`{"class_name": ..., "config": {...}}`) or a name describes;
    `custom_objects` maps further class names to classes."""
    name = config.get("class_name") if isinstance(config, dict) else config
    if custom_objects and name in custom_objects:
        cls = custom_objects[name]
        conf = config.get("config", {}) if isinstance(config, dict) else {}
        return cls.from_config(conf) if hasattr(cls, "from_config") else cls(**conf)
    return get(config)
