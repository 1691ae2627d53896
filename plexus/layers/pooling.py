"""Pooling layers: max and average, local (1D/2D/3D windows) and global, on torch's kernels.

Inputs are channels-last at the surface, channels-first inside (a permuted view, no copy).
With `padding='same'` and equal padding on both sides, average pooling leaves the padded
positions out of the count. When 'same' needs one more row at the end than at the start, the
edge values are repeated into it (this is what Keras computes on its torch backend; for max
pooling it changes nothing).
"""
import torch
import torch.nn.functional as F

from plexus.layers import closed_form as cf
from plexus.layers import conv_utils as cu
from plexus.layers.layer import Layer

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class Pooling(Layer):
    """Local pooling over windows of `pool_size`; base of the Max/AveragePooling layers.

    Args:
        pool_size: an int or a tuple of `rank` ints, the window size.
        strides: an int or a tuple, the step of the window; defaults to `pool_size`.
        padding: 'valid' (windows inside the input) or 'same' (output size
            `ceil(input / stride)`).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    rank = None
    mode = None

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = cu.normalize_tuple(pool_size, self.rank, "pool_size", cls)
        self.strides = (self.pool_size if strides is None else
                        cu.normalize_tuple(strides, self.rank, "strides", cls))
        self.padding = cu.normalize_padding(padding, cls)
        self.data_format = cu.normalize_data_format(data_format, cls)

    def compute_output_shape(self, input_shape):
        cu.check_rank(self, input_shape, self.rank)
        last = self.data_format == "channels_last"
        spatial = tuple(input_shape[1:-1] if last else input_shape[2:])
        out = tuple(cu.conv_output_length(n, k, s, self.padding)
                    for n, k, s in zip(spatial, self.pool_size, self.strides))
        if any(o is not None and o <= 0 for o in out):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) received an input of shape "
                f"{tuple(input_shape)} whose spatial size {spatial} is smaller than "
                f"pool_size={self.pool_size}. Use a smaller pool_size or padding='same'."
            )
        if last:
            return (input_shape[0],) + out + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + out

    def _output_dtype(self, inputs):
        return inputs.dtype

    def call(self, inputs):
        last = self.data_format == "channels_last"
        x = cu.to_channels_first(inputs) if last else inputs
        padding = 0
        if self.padding == "same":
            x, padding = cu.pad_same(x, self.pool_size, self.strides, (1,) * self.rank,
                                     mode="replicate")
        try:
            if self.mode == "max":
                y = _MAX[self.rank](x, self.pool_size, self.strides, padding)
            else:
                y = _AVG[self.rank](x, self.pool_size, self.strides, padding,
                                    count_include_pad=False)
        except RuntimeError as e:
            self.compute_output_shape(tuple(inputs.shape))  # a clear ValueError if too small
            raise e
        return cu.to_channels_last(y) if last else y

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": self.data_format}


class MaxPooling1D(Pooling):
    """Max over windows of `pool_size` steps. `(batch, steps, channels)` ->
    `(batch, pooled_steps, channels)`."""

    rank, mode = 1, "max"


class MaxPooling2D(Pooling):
    """Max over `pool_size` windows of an image. `(batch, h, w, channels)` ->
    `(batch, pooled_h, pooled_w, channels)`.

    Example:
        >>> MaxPooling2D((2, 2))(Input(shape=(148, 148, 32))).shape
        (None, 74, 74, 32)
    """

    rank, mode = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling3D(Pooling):
    """Max over `pool_size` windows of a volume. `(batch, d1, d2, d3, channels)` in and out."""

    rank, mode = 3, "max"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(Pooling):
    """Mean over windows of `pool_size` steps. `(batch, steps, channels)` ->
    `(batch, pooled_steps, channels)`."""

    rank, mode = 1, "avg"


class AveragePooling2D(Pooling):
    """Mean over `pool_size` windows of an image. `(batch, h, w, channels)` ->
    `(batch, pooled_h, pooled_w, channels)`."""

    rank, mode = 2, "avg"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling3D(Pooling):
    """Mean over `pool_size` windows of a volume. `(batch, d1, d2, d3, channels)` in and out."""

    rank, mode = 3, "avg"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class GlobalPooling(Layer):
    """Max or mean over all spatial positions; base of the Global*Pooling layers.

    Args:
        data_format: 'channels_last' (default) or 'channels_first'.
        keepdims: keep the spatial axes with size 1 (`(batch, 1, 1, channels)` for 2D) instead
            of dropping them (`(batch, channels)`).
    """

    rank = None
    mode = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = cu.normalize_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        cu.check_rank(self, input_shape, self.rank)
        axes = cu.spatial_axes(len(input_shape), self.data_format)
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i not in axes)

    def _output_dtype(self, inputs):
        return inputs.dtype if self.mode == "max" else self.compute_dtype

    def _symbolic_mask(self, inputs, in_masked):
        return False  # pooling over the steps consumes the mask

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs):
        axes = cu.spatial_axes(inputs.ndim, self.data_format)
        if self.mode == "max":
            return torch.amax(inputs, dim=axes, keepdim=self.keepdims)
        return torch.mean(inputs, dim=axes, keepdim=self.keepdims)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalMaxPooling1D(GlobalPooling):
    """Max over the steps: `(batch, steps, channels)` -> `(batch, channels)`."""

    rank, mode = 1, "max"


class GlobalAveragePooling1D(GlobalPooling):
    """Mean over the steps: `(batch, steps, channels)` -> `(batch, channels)`.

    With a mask (from `Embedding(mask_zero=True)` or `Masking`), only unmasked steps count.
    """

    rank, mode = 1, "avg"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(data_format, keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        axis = 1 if self.data_format == "channels_last" else 2
        weights = mask.unsqueeze(2 if axis == 1 else 1).to(inputs.dtype)
        total = torch.where(weights > 0, inputs, torch.zeros((), dtype=inputs.dtype,
                                                             device=inputs.device))
        total = total.sum(dim=axis, keepdim=self.keepdims)
        return total / weights.sum(dim=axis, keepdim=self.keepdims)

    def _closed_form_rule(self, in_rank):
        if self.data_format != "channels_last" or self.keepdims or in_rank != 3:
            return None
        return cf.StepMeanRule(self)


class GlobalMaxPooling2D(GlobalPooling):
    """Max over height and width: `(batch, h, w, channels)` -> `(batch, channels)`."""

    rank, mode = 2, "max"


class GlobalAveragePooling2D(GlobalPooling):
    """Mean over height and width: `(batch, h, w, channels)` -> `(batch, channels)`."""

    rank, mode = 2, "avg"


class GlobalMaxPooling3D(GlobalPooling):
    """Max over the three spatial axes: `(batch, d1, d2, d3, channels)` -> `(batch, channels)`."""

    rank, mode = 3, "max"


class GlobalAveragePooling3D(GlobalPooling):
    """Mean over the three spatial axes: `(batch, d1, d2, d3, channels)` -> `(batch, channels)`."""

    rank, mode = 3, "avg"


MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (GlobalMaxPooling1D, GlobalMaxPooling2D,
                                                     GlobalMaxPooling3D)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D,
                                                     GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)
