"""Depthwise and separable convolutions: DepthwiseConv1D/2D, SeparableConv1D/2D.

A depthwise convolution filters each input channel on its own (torch's grouped convolution with
`groups = in_channels`); a separable convolution follows it with a 1x1 convolution that mixes
channels. Kernels are stored in torch's layouts; `get_weights()` gives Keras's: the depthwise
kernel `(*kernel_size, in_channels, depth_multiplier)`, the pointwise kernel
`(1, ..., 1, in_channels * depth_multiplier, filters)`.
"""

import functools

from plexus import constraints, initializers, regularizers
from plexus.layers import conv_utils as cu
from plexus.layers.conv import _CONV_FN, BaseConv
from plexus.layers.core import _ser


def _depthwise_kernel_to_torch(rank, t):
    t = t.reshape(t.shape[:rank] + (1, t.shape[rank] * t.shape[rank + 1]))
    return t.permute(rank + 1, rank, *range(rank))


def _depthwise_kernel_to_keras(rank, multiplier, t):
    t = t.permute(*range(2, rank + 2), 1, 0)
    return t.reshape(t.shape[:rank] + (t.shape[rank + 1] // multiplier, multiplier))


def _depthwise_to_torch(rank):
    """Keras `(*k, in, multiplier)` -> torch `(in * multiplier, 1, *k)` (a picklable partial)."""
    return functools.partial(_depthwise_kernel_to_torch, rank)


def _depthwise_to_keras(rank, multiplier):
    """torch `(in * multiplier, 1, *k)` -> Keras `(*k, in, multiplier)` (a picklable partial)."""
    return functools.partial(_depthwise_kernel_to_keras, rank, multiplier)


class _DepthwiseBase(BaseConv):
    """Arguments and the depthwise kernel shared by depthwise and separable convolutions."""

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         bias_constraint=bias_constraint, **kwargs)
        if (not isinstance(depth_multiplier, int) or isinstance(depth_multiplier, bool)
                or depth_multiplier <= 0):
            raise ValueError(f"{type(self).__name__}: `depth_multiplier` must be a positive "
                             f"integer; received {depth_multiplier!r}.")
        self.depth_multiplier = depth_multiplier
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def _add_depthwise_kernel(self, in_channels, name):
        param = self.add_weight(
            shape=self.kernel_size + (in_channels, self.depth_multiplier),
            initializer=self.depthwise_initializer, regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint, name=name,
            layout=(_depthwise_to_torch(self.rank),
                    _depthwise_to_keras(self.rank, self.depth_multiplier)))
        fmt = cu.channels_last_format(param.ndim)
        if fmt is not None and self.data_format == "channels_last":
            param.data = param.data.contiguous(memory_format=fmt)
        return param

    def _depthwise(self, x, kernel, padding, bias=None):
        return _CONV_FN[self.rank](x, kernel, bias, self.strides, padding, self.dilation_rate,
                                   self._in_channels)

    def get_config(self):
        config = super().get_config()
        config.update({
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "depthwise_regularizer": _ser(self.depthwise_regularizer),
            "depthwise_constraint": _ser(self.depthwise_constraint)})
        return config


class DepthwiseConv(_DepthwiseBase):
    """Depthwise convolution: each input channel convolved with `depth_multiplier` filters of
    its own; output channels `in_channels * depth_multiplier`. Base of DepthwiseConv1D/2D."""

    def _out_channels(self, in_channels):
        return in_channels * self.depth_multiplier

    def _build_kernels(self, in_channels):
        self.kernel = self._add_depthwise_kernel(in_channels, "kernel")

    def _convolve(self, x, padding):
        return self._depthwise(x, self.kernel, padding, self.bias)


class DepthwiseConv1D(DepthwiseConv):
    """Depthwise 1D convolution: `(batch, steps, channels)` ->
    `(batch, new_steps, channels * depth_multiplier)`."""

    rank = 1


class DepthwiseConv2D(DepthwiseConv):
    """Depthwise 2D convolution, as in MobileNet: `(batch, h, w, channels)` ->
    `(batch, new_h, new_w, channels * depth_multiplier)`.

    Example:
        >>> DepthwiseConv2D(3, padding="same")(Input(shape=(8, 8, 16))).shape
        (None, 8, 8, 16)
    """

    rank = 2

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format,
                         dilation_rate, **kwargs)


class SeparableConv(_DepthwiseBase):
    """Depthwise convolution followed by a 1x1 pointwise convolution to `filters` channels;
    base of SeparableConv1D/2D.

    Args:
        filters: output channels of the pointwise step.
        kernel_size, strides, padding, data_format, dilation_rate: of the depthwise step.
        depth_multiplier: depthwise filters per input channel.
        depthwise_*/pointwise_*/bias_*: initializers, regularizers and constraints of the
            three weights.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding,
                         depth_multiplier=depth_multiplier, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         depthwise_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer,
                         depthwise_regularizer=depthwise_regularizer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         depthwise_constraint=depthwise_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(f"{type(self).__name__}: `filters` must be a positive integer; "
                             f"received {filters!r}.")
        self.filters = filters
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def _out_channels(self, in_channels):
        return self.filters

    def _build_kernels(self, in_channels):
        self.depthwise_kernel = self._add_depthwise_kernel(in_channels, "depthwise_kernel")
        shape = (1,) * self.rank + (in_channels * self.depth_multiplier, self.filters)
        self.pointwise_kernel = self._torch_kernel(shape, self.pointwise_initializer,
                                                   self.pointwise_regularizer,
                                                   self.pointwise_constraint, "pointwise_kernel")

    def _convolve(self, x, padding):
        y = self._depthwise(x, self.depthwise_kernel, padding)
        return _CONV_FN[self.rank](y, self.pointwise_kernel, self.bias)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "pointwise_regularizer": _ser(self.pointwise_regularizer),
            "pointwise_constraint": _ser(self.pointwise_constraint)})
        return config


class SeparableConv1D(SeparableConv):
    """Separable 1D convolution: `(batch, steps, channels)` -> `(batch, new_steps, filters)`."""

    rank = 1


class SeparableConv2D(SeparableConv):
    """Separable 2D convolution, as in Xception: `(batch, h, w, channels)` ->
    `(batch, new_h, new_w, filters)`."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         **kwargs)


SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
