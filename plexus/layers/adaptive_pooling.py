"""Adaptive pooling: max or mean over bins that split each spatial axis into `output_size`
parts, whatever the input size, on torch's `F.adaptive_*_pool*d` kernels.

Bin `i` of an axis of length `n` split into `m` bins covers `[floor(i*n/m), ceil((i+1)*n/m))`
(torch's rule, which Keras's layers follow), so bins may overlap when `n` is not a multiple of
`m`. Inputs are channels-last at the surface and a channels-first view inside (no copy).
"""
import torch.nn.functional as F

from plexus.layers import conv_utils as cu
from plexus.layers.layer import Layer

_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


class AdaptivePooling(Layer):
    """Pools each spatial axis into a fixed number of bins; base of the Adaptive*Pooling layers.

    Args:
        output_size: an int (the same for every spatial axis) or a tuple of `rank` ints, the
            spatial size of the output.
        data_format: 'channels_last' (default, `(batch, *spatial, channels)`) or
            'channels_first' (`(batch, channels, *spatial)`).
    """

    rank = None
    _kernels = None

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.output_size = cu.normalize_tuple(output_size, self.rank, "output_size", cls)
        self.data_format = cu.normalize_data_format(data_format, cls)

    def compute_output_shape(self, input_shape):
        cu.check_rank(self, input_shape, self.rank)
        if self.data_format == "channels_last":
            return (input_shape[0],) + self.output_size + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + self.output_size

    def _output_dtype(self, inputs):
        return inputs.dtype

    def call(self, inputs):
        if inputs.ndim != self.rank + 2:
            self.compute_output_shape(tuple(inputs.shape))  # the rank error, naming the layer
        last = self.data_format == "channels_last"
        x = cu.to_channels_first(inputs) if last else inputs
        y = self._kernels[self.rank](x, self.output_size)
        return cu.to_channels_last(y) if last else y

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size,
                "data_format": self.data_format}


class AdaptiveAveragePooling1D(AdaptivePooling):
    """Mean over `output_size` bins of the steps: `(batch, steps, channels)` ->
    `(batch, output_size, channels)`.

    Example:
        >>> AdaptiveAveragePooling1D(4)(Input(shape=(10, 3))).shape
        (None, 4, 3)
    """

    rank, _kernels = 1, _AVG


class AdaptiveAveragePooling2D(AdaptivePooling):
    """Mean over `output_size` bins of an image: `(batch, h, w, channels)` ->
    `(batch, out_h, out_w, channels)`.

    Example:
        >>> AdaptiveAveragePooling2D((7, 7))(Input(shape=(32, 30, 3))).shape
        (None, 7, 7, 3)
    """

    rank, _kernels = 2, _AVG


class AdaptiveAveragePooling3D(AdaptivePooling):
    """Mean over `output_size` bins of a volume: `(batch, d1, d2, d3, channels)` ->
    `(batch, *output_size, channels)`."""

    rank, _kernels = 3, _AVG


class AdaptiveMaxPooling1D(AdaptivePooling):
    """Max over `output_size` bins of the steps: `(batch, steps, channels)` ->
    `(batch, output_size, channels)`."""

    rank, _kernels = 1, _MAX


class AdaptiveMaxPooling2D(AdaptivePooling):
    """Max over `output_size` bins of an image: `(batch, h, w, channels)` ->
    `(batch, out_h, out_w, channels)`."""

    rank, _kernels = 2, _MAX


class AdaptiveMaxPooling3D(AdaptivePooling):
    """Max over `output_size` bins of a volume: `(batch, d1, d2, d3, channels)` ->
    `(batch, *output_size, channels)`."""

    rank, _kernels = 3, _MAX
