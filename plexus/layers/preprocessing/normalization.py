"""`Normalization`: shift and scale features to mean 0 and variance 1."""
import itertools
import math

import numpy as np
import torch

from plexus.graph.tensor import torch_dtype
from plexus.layers.layer import text_refused
from plexus.layers.preprocessing.base import DataLayer, adapt_batches

_EPSILON = 1e-7  # Keras's backend.epsilon(): the smallest standard deviation divided by


class Normalization(DataLayer):
    """Normalizes continuous features: `(inputs - mean) / sqrt(variance)`.

    The mean and variance are given to the constructor or learned with `adapt(data)` (before
    `fit`), and kept per index of the `axis` axes.

    Args:
        axis: the axis or axes that keep a separate mean and variance per index (`-1`: one per
            feature of the last axis); `None` for one scalar mean and variance.
        mean: the mean(s) to use instead of `adapt`, broadcast to the kept axes.
        variance: the variance(s) to use; given together with `mean`.
        invert: apply the inverse: `mean + inputs * sqrt(variance)`.

    Example:
        >>> layer = Normalization(axis=None)
        >>> layer.adapt(np.array([1., 2., 3., 4., 5.]))
        >>> layer(np.array([1., 2., 3.]))
        tensor([-1.4142, -0.7071,  0.0000])
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, int):
            axis = (axis,)
        self.axis = tuple(int(a) for a in axis)
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        self.supports_masking = True
        self._build_input_shape = None
        if (mean is None) != (variance is None):
            raise ValueError(
                f"Normalization: pass both `mean` and `variance`, or neither (and call adapt()); "
                f"received mean={mean} and variance={variance}.")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(
                    f"Normalization: `mean` and `variance` must have the same shape; received "
                    f"{np.shape(mean)} and {np.shape(variance)}.")
            if np.ndim(mean) > len(self.axis):
                raise ValueError(
                    f"Normalization: `mean` has rank {np.ndim(mean)}, more than the number of "
                    f"kept axes (axis={self.axis}). Pass one value per index of the kept axes.")

    def build(self, input_shape):
        ndim = len(input_shape)
        self._build_input_shape = tuple(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(
                f"Layer {self.name!r} (Normalization): axis={self.axis} is out of range for "
                f"inputs of shape {tuple(input_shape)} (rank {ndim}).")
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(
                    f"Layer {self.name!r} (Normalization): the kept axis {d} of inputs of shape "
                    f"{tuple(input_shape)} has no fixed size. Give the Input a fixed size there, "
                    "or normalize over other axes (`axis=`).")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = [input_shape[d] if d in self._keep_axis else 1
                                 for d in range(ndim)]
        shape = tuple(input_shape[d] for d in self._keep_axis)
        self._mean_and_var_shape = shape
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=shape, initializer="zeros",
                                              trainable=False)
            self.adapt_variance = self.add_weight(name="variance", shape=shape,
                                                  initializer="ones", trainable=False)
            self.count = self.add_weight(name="count", shape=(), dtype="int32",
                                         initializer="zeros", trainable=False)
        else:
            mean = self._broadcast_given(self.input_mean, ndim)
            variance = self._broadcast_given(self.input_variance, ndim)
            # Buffers (not saved, as in Keras): they follow the layer to its device.
            self.register_buffer("_given_mean", mean, persistent=False)
            self.register_buffer("_given_variance", variance, persistent=False)
        self.built = True

    def _broadcast_given(self, value, ndim):
        value = torch.as_tensor(np.asarray(value, dtype="float32"))
        if value.ndim:  # align the given dimensions with the kept axes, from the right
            expanded = [1] * ndim
            for i in range(1, value.ndim + 1):
                expanded[self._keep_axis[-i]] = value.shape[-i]
            value = value.reshape(expanded)
        try:
            return torch.broadcast_to(value, self._broadcast_shape).clone()
        except RuntimeError:
            raise ValueError(
                f"Layer {self.name!r} (Normalization): the given mean/variance of shape "
                f"{tuple(np.shape(self.input_mean))} cannot be broadcast to the kept axes' "
                f"shape {self._mean_and_var_shape}.") from None

    def adapt(self, data, batch_size=None, steps=None):
        """Compute the mean and variance of `data` (an array, a tensor, or an iterable of
        batches) per index of the kept axes, and store them as the layer's weights."""
        batches = adapt_batches(data, self, steps)
        first = next(batches)
        if not self.built:
            self.build(tuple(first.shape))
        if self.input_mean is not None:
            raise ValueError(
                f"Layer {self.name!r} (Normalization) was given `mean` and `variance`; it "
                "cannot also adapt. Create it without them to learn them from data.")
        total_mean = total_var = None
        total_count = 0
        for batch in itertools.chain([first], batches):
            x = self._float_batch(batch)
            for d in self._keep_axis:
                if d >= x.ndim or x.shape[d] != self._build_input_shape[d]:
                    raise ValueError(
                        f"Layer {self.name!r} (Normalization) was built for inputs of shape "
                        f"{self._build_input_shape}; adapt() received a batch of shape "
                        f"{tuple(x.shape)}.")
            count = math.prod(x.shape[d] for d in self._reduce_axis) if self._reduce_axis else 1
            if count == 0:
                continue
            mean = x.mean(dim=self._reduce_axis) if self._reduce_axis else x
            var = x.var(dim=self._reduce_axis, unbiased=False) if self._reduce_axis \
                else torch.zeros_like(x)
            if total_mean is None:
                total_mean, total_var, total_count = mean, var, count
                continue
            # Merge with the statistics so far (the lack-of-fit sum of squares).
            total_count += count
            w = count / total_count
            new_mean = total_mean * (1 - w) + mean * w
            total_var = ((total_var + (total_mean - new_mean) ** 2) * (1 - w)
                         + (var + (mean - new_mean) ** 2) * w)
            total_mean = new_mean
        if total_mean is None:
            raise ValueError(f"Layer {self.name!r} (Normalization): adapt() received no "
                             "samples.")
        with torch.no_grad():
            self.adapt_mean.copy_(total_mean.reshape(self._mean_and_var_shape))
            self.adapt_variance.copy_(total_var.reshape(self._mean_and_var_shape))

    def _float_batch(self, batch):
        if isinstance(batch, np.ndarray):
            if batch.dtype.kind in "USO":
                raise text_refused(self)
            batch = torch.from_numpy(np.ascontiguousarray(batch))
        return batch.detach().to("cpu", torch.float64)

    def call(self, inputs):
        dtype = torch_dtype(self.compute_dtype)
        x = inputs if inputs.dtype == dtype else inputs.to(dtype)
        mean, variance = self.mean.to(dtype), self.variance.to(dtype)
        std = torch.clamp(torch.sqrt(variance), min=_EPSILON)
        if self.invert:
            return mean + x * std
        return (x - mean) / std

    @property
    def mean(self):
        """The mean, shaped to broadcast against the inputs (None before the layer is built)."""
        if not self.built:
            return None
        if self.input_mean is not None:
            return self._given_mean
        return self.adapt_mean.detach().reshape(self._broadcast_shape)

    @property
    def variance(self):
        """The variance, shaped to broadcast against the inputs (None before build)."""
        if not self.built:
            return None
        if self.input_mean is not None:
            return self._given_variance
        return self.adapt_variance.detach().reshape(self._broadcast_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "invert": self.invert,
                "mean": np.array(self.input_mean).tolist(),
                "variance": np.array(self.input_variance).tolist()}
