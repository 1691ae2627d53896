"""`RMSNormalization`: `x * rsqrt(mean(x**2 over axis) + epsilon) * scale`, on torch's fused
`F.rms_norm` when the normalized axes are the trailing ones."""
import torch
import torch.nn.functional as F

from plexus.layers.layer import Layer
from plexus.layers.normalization import _as_float, _broadcast, _check_axes, _known_dims


class RMSNormalization(Layer):
    """Root mean square normalization (Zhang & Sennrich, 2019) with a learned scale.

    Each sample is divided by the root mean square of its values over `axis` (no mean is
    subtracted, no offset is added) and multiplied by `scale`:
    `x * rsqrt(mean(square(x), axis) + epsilon) * scale`.

    Args:
        axis: an axis or a list of axes to normalize over (the features by default).
        epsilon: added to the mean square before the square root.

    Weights: `scale`, shaped like the normalized axes, initialized to ones.

    Input shape: any. Output shape: same as the input. Under a mixed policy the statistics are
    computed in float32 and the output cast to the compute dtype.

    Example:
        >>> layer = RMSNormalization()
        >>> layer(np.random.rand(2, 10)).shape
        torch.Size([2, 10])
    """

    _autocast = _autocast_weights = False  # float32 math, as the other normalization layers
    _cast_outputs = True

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axis = list(axis)
        elif not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(
                f"Layer {self.name!r} (RMSNormalization): axis must be an int or a list of "
                f"ints; received axis={axis!r}.")
        self.axis = axis
        self.epsilon = float(epsilon)

    def _axes(self):
        return self.axis if isinstance(self.axis, list) else [self.axis]

    def build(self, input_shape):
        axes = sorted(_check_axes(self, self._axes(), input_shape))
        self.axis = sorted(self._axes(), key=lambda a: a % len(input_shape))
        self.scale = self.add_weight(shape=_known_dims(self, axes, input_shape),
                                     initializer="ones", name="scale")
        self.built = True

    def call(self, inputs):
        x = _as_float(self, inputs)
        axes = sorted(_check_axes(self, self._axes(), x.shape))
        scale = self.scale if self.scale.dtype == x.dtype else self.scale.to(x.dtype)
        dims = tuple(x.shape[a] for a in axes)
        if dims != tuple(scale.shape):
            raise ValueError(
                f"Layer {self.name!r} (RMSNormalization) was built for size {tuple(scale.shape)} "
                f"on axis {self.axis}, but received an input of shape {tuple(x.shape)}.")
        if axes == list(range(x.ndim - len(axes), x.ndim)):
            return F.rms_norm(x, dims, scale, self.epsilon)
        inv = torch.rsqrt(torch.mean(torch.square(x), dim=axes, keepdim=True) + self.epsilon)
        return x * inv * _broadcast(scale, x.ndim, axes)

    def compute_output_shape(self, input_shape):
        _check_axes(self, self._axes(), input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
