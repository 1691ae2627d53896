"""Regularization layers: SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout,
ActivityRegularization.

The random layers act only in training (inside `fit`, after `model.train()`, or when called with
`training=True`) and return their inputs unchanged otherwise.
"""
import math

import torch

from plexus import regularizers
from plexus.layers import conv_utils as cu
from plexus.layers.layer import Layer

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check_rate(layer, rate, arg="rate"):
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}): {arg} must be a number between 0 "
            f"and 1; received {arg}={rate!r}.")
    return rate


class _NoiseLayer(Layer):
    """Shared behaviour: same output shape and dtype as the input, masks pass through."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.supports_masking = True
        self._generator = None

    def _active(self, training):
        return self.training if training is None else bool(training)

    def _gen(self, device):
        """A torch.Generator seeded from `seed` (None: torch's global generator)."""
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(int(self.seed))
        return self._generator

    def _normal(self, x):
        return torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=self._gen(x.device))

    def _uniform(self, shape, x):
        return torch.rand(shape, dtype=x.dtype, device=x.device, generator=self._gen(x.device))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _output_dtype(self, inputs):
        return inputs.dtype


class _SpatialDropout(_NoiseLayer):
    """Dropout of whole feature maps: one keep/drop draw per (sample, channel)."""

    _rank = None  # the input rank the subclass expects

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(self, rate)
        self.data_format = cu.normalize_data_format(data_format, type(self).__name__)

    def _check_rank(self, shape):
        if len(shape) != self._rank:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) expects inputs of rank "
                f"{self._rank} (batch, {'..., ' * (self._rank - 2)}channels); received an input "
                f"of shape {tuple(shape)}.")

    def build(self, input_shape):
        self._check_rank(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        if not self._active(training) or self.rate == 0:
            return inputs
        self._check_rank(inputs.shape)
        if self.rate == 1:
            return torch.zeros_like(inputs)
        shape = [1] * inputs.ndim
        shape[0] = inputs.shape[0]
        channel = 1 if self.data_format == "channels_first" else -1
        shape[channel] = inputs.shape[channel]
        keep = (self._uniform(shape, inputs) >= self.rate).to(inputs.dtype)
        return inputs * (keep / (1.0 - self.rate))

    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class SpatialDropout1D(_SpatialDropout):
    """Drops entire channels of a sequence: each (sample, channel) is zeroed with probability
    `rate` across all time steps; kept values are scaled by `1 / (1 - rate)`.

    Args:
        rate: fraction of channels to drop, between 0 and 1.
        seed: optional integer seed for reproducible masks.

    Input shape: `(batch, steps, channels)`. Output shape: same as the input.
    """

    _rank = 3

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, data_format="channels_last", seed=seed, **kwargs)


class SpatialDropout2D(_SpatialDropout):
    """Drops entire feature maps of an image: each (sample, channel) is zeroed with
    probability `rate`; kept values are scaled by `1 / (1 - rate)`.

    Args:
        rate: fraction of feature maps to drop, between 0 and 1.
        data_format: `"channels_last"` (default) or `"channels_first"`.
        seed: optional integer seed for reproducible masks.

    Input shape: `(batch, rows, cols, channels)` (channels-last). Output shape: same.
    """

    _rank = 4

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class SpatialDropout3D(SpatialDropout2D):
    """Drops entire 3-D feature maps: each (sample, channel) is zeroed with probability
    `rate`; kept values are scaled by `1 / (1 - rate)`.

    Args:
        rate: fraction of feature maps to drop, between 0 and 1.
        data_format: `"channels_last"` (default) or `"channels_first"`.
        seed: optional integer seed for reproducible masks.

    Input shape: `(batch, dim1, dim2, dim3, channels)` (channels-last). Output shape: same.
    """

    _rank = 5


class GaussianNoise(_NoiseLayer):
    """Adds zero-centred Gaussian noise of standard deviation `stddev` during training.

    Args:
        stddev: standard deviation of the noise, between 0 and 1.
        seed: optional integer seed.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = _check_rate(self, stddev, "stddev")

    def call(self, inputs, training=None):
        if not self._active(training) or self.stddev == 0:
            return inputs
        return inputs + self._normal(inputs) * self.stddev

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_NoiseLayer):
    """Multiplies inputs by Gaussian noise of mean 1 and standard deviation
    `sqrt(rate / (1 - rate))` during training.

    Args:
        rate: drop probability as for `Dropout`, between 0 and 1.
        seed: optional integer seed.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(self, rate)

    def call(self, inputs, training=None):
        if not self._active(training) or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate)) if self.rate < 1 else math.inf
        return inputs * (1.0 + self._normal(inputs) * stddev)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(_NoiseLayer):
    """Dropout for self-normalizing (SELU) networks: dropped units are set to SELU's negative
    saturation value and the result is affinely rescaled to keep the inputs' mean and variance.

    Args:
        rate: fraction of units to drop, between 0 and 1.
        noise_shape: shape of the keep/drop mask (None entries follow the input), e.g.
            `(None, 1, features)` to drop the same features at every time step.
        seed: optional integer seed.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(self, rate)
        self.noise_shape = noise_shape

    def call(self, inputs, training=None):
        if not self._active(training) or self.rate == 0:
            return inputs
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(inputs.shape[i] if d is None else d
                          for i, d in enumerate(self.noise_shape))
        keep = (self._uniform(shape, inputs) >= self.rate).to(inputs.dtype)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        return a * (inputs * keep + alpha_p * (1 - keep)) + b

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}


class ActivityRegularization(Layer):
    """Passes its input through unchanged and adds `l1 * sum(|x|) + l2 * sum(x**2)`, divided by
    the batch size, to `model.losses` on every call.

    Args:
        l1: L1 factor (>= 0).
        l2: L2 factor (>= 0).

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        super().__init__(**kwargs)
        for arg, value in (("l1", l1), ("l2", l2)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f"Layer {self.name!r} (ActivityRegularization): {arg} must be a number "
                    f">= 0; received {arg}={value!r}.")
        self.l1, self.l2 = l1, l2
        self.activity_regularizer = regularizers.L1L2(l1=l1, l2=l2)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _output_dtype(self, inputs):
        return inputs.dtype

    def get_config(self):
        config = {**super().get_config(), "l1": self.l1, "l2": self.l2}
        config.pop("activity_regularizer", None)
        return config
