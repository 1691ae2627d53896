"""`Normalization`: shift and scale features to mean 0 and variance 1 with statistics given up
front or learned from data with `adapt()`."""
import numpy as np
import torch

from plexus.graph.tensor import torch_dtype
from plexus.layers.layer import Layer

_EPSILON = 1e-7  # the floor of the standard deviation, Keras's backend epsilon


class Normalization(Layer):
    """Normalizes inputs as `(x - mean) / sqrt(variance)`, per index of the kept `axis`.

    The mean and variance are either given (`mean=`, `variance=`; the layer then has no
    weights) or computed from data by `adapt()` and stored in the non-trainable weights `mean`,
    `variance` and `count`, which files save and load.

    Args:
        axis: the axis or axes that keep a separate mean and variance per index (`-1`: one per
            feature); None for a single scalar mean and variance.
        mean: the mean value(s), broadcast to the kept axes; given together with `variance`.
        variance: the variance value(s).
        invert: apply the inverse, `mean + x * sqrt(variance)`, turning normalized values back.

    Example:
        >>> layer = Normalization(axis=None)
        >>> layer.adapt(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
        >>> layer(np.array([1.0, 2.0, 3.0]))   # [-1.414, -0.707, 0.]
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, int):
            axis = (axis,)
        self.axis = tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError(
                f"Layer {self.name!r} (Normalization): pass both `mean` and `variance`, or "
                f"neither (then call adapt()); received mean={mean!r}, variance={variance!r}.")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(
                    f"Layer {self.name!r} (Normalization): `mean` and `variance` must have the "
                    f"same shape; received shapes {np.shape(mean)} and {np.shape(variance)}.")
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError(
                    f"Layer {self.name!r} (Normalization): `mean` has rank "
                    f"{len(np.shape(mean))}, more than the {len(self.axis)} kept axes "
                    f"axis={self.axis}.")
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        self.supports_masking = True

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(
                f"Layer {self.name!r} (Normalization): axis={self.axis} is out of range for "
                f"inputs of shape {tuple(input_shape)} (rank {ndim}).")
        keep = sorted(a % ndim for a in self.axis)
        if any(input_shape[a] is None for a in keep):
            raise ValueError(
                f"Layer {self.name!r} (Normalization): the kept axes {self.axis} must have known "
                f"sizes; received inputs of shape {tuple(input_shape)}.")
        self._keep = tuple(keep)
        self._input_shape = tuple(input_shape)
        self._broadcast = tuple(input_shape[d] if d in keep else 1 for d in range(ndim))
        stats_shape = tuple(input_shape[d] for d in keep)
        if self.input_mean is None:
            self.mean = self.add_weight(shape=stats_shape, initializer="zeros", trainable=False,
                                        name="mean")
            self.variance = self.add_weight(shape=stats_shape, initializer="ones",
                                            trainable=False, name="variance")
            self.count = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                         trainable=False, name="count")
        else:
            self.register_buffer("_mean", self._given(self.input_mean, ndim), persistent=False)
            self.register_buffer("_variance", self._given(self.input_variance, ndim),
                                 persistent=False)
        self.built = True

    def _given(self, value, ndim):
        """A given mean or variance aligned with the kept axes (from the right), broadcast."""
        value = torch.as_tensor(np.asarray(value, dtype="float32"))
        shape = [1] * ndim
        for i in range(1, value.ndim + 1):
            shape[self._keep[-i]] = value.shape[-i]
        try:
            return value.reshape(shape).expand(self._broadcast).clone()
        except RuntimeError as e:
            raise ValueError(
                f"Layer {self.name!r} (Normalization): a mean/variance of shape "
                f"{tuple(value.shape)} does not broadcast to the kept axes {self.axis} of inputs "
                f"of shape {self._input_shape}.") from e

    def _stats(self):
        if self.input_mean is not None:
            return self._mean, self._variance
        return self.mean.reshape(self._broadcast), self.variance.reshape(self._broadcast)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, inputs):
        x = inputs.to(torch_dtype(self.compute_dtype))
        mean, variance = self._stats()
        mean, variance = mean.to(x.dtype), variance.to(x.dtype)
        std = torch.clamp(torch.sqrt(variance), min=_EPSILON)
        return mean + x * std if self.invert else (x - mean) / std

    def adapt(self, data):
        """Compute the mean and variance of `data` (an array, a tensor, or an iterable of
        batches, each an array or an `(x, ...)` tuple) and store them in the layer."""
        batches = iter([data]) if isinstance(data, (np.ndarray, torch.Tensor)) else iter(data)
        first = next(batches, None)
        if first is None:
            raise ValueError(
                f"Layer {self.name!r} (Normalization): adapt() received no data; pass an array "
                "or a non-empty iterable of batches.")
        if self.input_mean is not None:
            raise ValueError(
                f"Layer {self.name!r} (Normalization): the mean and variance were given at "
                "construction; adapt() cannot change them.")
        total_mean = total_var = None
        total = 0
        for batch in _chain(first, batches):
            x = torch.as_tensor(np.asarray(batch[0] if isinstance(batch, tuple) else batch),
                                dtype=torch.float64)
            if not self.built:
                self.build(tuple(x.shape))
            self._check_adapt_shape(tuple(x.shape))
            reduce = [d for d in range(x.ndim) if d not in self._keep]
            n = int(np.prod([x.shape[d] for d in reduce])) if reduce else 1
            mean = x.mean(dim=reduce) if reduce else x
            var = x.var(dim=reduce, unbiased=False) if reduce else torch.zeros_like(x)
            if total_mean is None:
                total_mean, total_var, total = mean, var, n
                continue
            w = n / (total + n)
            new_mean = total_mean * (1 - w) + mean * w
            # Pooled variance: each part's variance plus its mean's distance to the new mean.
            total_var = ((total_var + (total_mean - new_mean) ** 2) * (1 - w)
                         + (var + (mean - new_mean) ** 2) * w)
            total_mean, total = new_mean, total + n
        with torch.no_grad():
            self.mean.copy_(total_mean.reshape(self.mean.shape))
            self.variance.copy_(total_var.reshape(self.variance.shape))

    def _check_adapt_shape(self, shape):
        if len(shape) != len(self._input_shape) or any(
                shape[d] != self._input_shape[d] for d in self._keep):
            raise ValueError(
                f"Layer {self.name!r} (Normalization): the layer was built for inputs of shape "
                f"{self._input_shape}, but adapt() received data of shape {shape}; the kept "
                f"axes {self.axis} must match.")

    def get_config(self):
        def plain(v):
            return None if v is None else np.array(v).tolist()
        return {**super().get_config(), "axis": self.axis, "invert": self.invert,
                "mean": plain(self.input_mean), "variance": plain(self.input_variance)}


def _chain(first, rest):
    yield first
    yield from rest
