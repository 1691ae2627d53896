"""Transposed convolutions: Conv1DTranspose, Conv2DTranspose, Conv3DTranspose.

They run torch's `F.conv_transpose*d` without padding, which gives the full output
`(length - 1) * stride + dilated_kernel`, then keep the window Keras's padding rules describe
(zero-extended on the right where `output_padding` asks for more). The kernel is stored as
torch's `(in_channels, filters, *kernel_size)`; `get_weights()` gives Keras's
`(*kernel_size, filters, in_channels)`.
"""
import torch.nn.functional as F

from plexus.layers import conv_utils as cu
from plexus.layers.conv import BaseConv
from plexus.layers.core import resolve_weight_args, weight_args_config

_CONV_T_FN = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def transpose_output_length(length, kernel, stride, padding, output_padding, dilation):
    """Output length of a transposed convolution along one axis (None stays None)."""
    if length is None:
        return None
    span = cu.effective_size(kernel, dilation)
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return (length - 1) * stride + span + extra
    if output_padding is None:
        return length * stride
    return (length - 1) * stride + span % 2 + output_padding


def transpose_crop_start(length, kernel, stride, padding, output_padding, dilation):
    """How many leading positions of torch's full output fall before the wanted window."""
    if padding == "valid":
        return 0
    span = cu.effective_size(kernel, dilation)
    out = transpose_output_length(length, kernel, stride, padding, output_padding, dilation)
    total = out - (length - 1) * stride + span - 2  # padding in the direct-conv picture
    return max(span - 1 - (total + 1) // 2, 0)


class ConvTranspose(BaseConv):
    """Transposed convolution (sometimes called deconvolution); base of Conv*DTranspose.

    Args:
        filters: number of output channels.
        kernel_size, strides, dilation_rate: ints or tuples of `rank` ints.
        padding: 'valid' (output `(n - 1) * stride + max(kernel, stride)`) or 'same'
            (output `n * stride`).
        output_padding: extra size added at the end of each spatial axis (each entry smaller
            than the stride); None lets `padding` decide.
        data_format: 'channels_last' (default) or 'channels_first'.
        activation, use_bias and the initializer/regularizer/constraint arguments: as `Conv2D`.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         bias_constraint=bias_constraint, **kwargs)
        cls = type(self).__name__
        if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(f"{cls}: `filters` must be a positive integer; received {filters!r}.")
        self.filters = filters
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = cu.normalize_tuple(output_padding, self.rank, "output_padding",
                                                     cls, allow_zero=True)
            if any(op >= s for op, s in zip(self.output_padding, self.strides)):
                raise ValueError(
                    f"{cls}: every entry of `output_padding` must be smaller than the matching "
                    f"stride; received output_padding={self.output_padding}, "
                    f"strides={self.strides}."
                )
        resolve_weight_args(self, kernel_initializer=kernel_initializer,
                            kernel_regularizer=kernel_regularizer,
                            kernel_constraint=kernel_constraint)

    def _output_paddings(self):
        return self.output_padding or (None,) * self.rank

    def _out_spatial(self, spatial):
        return tuple(transpose_output_length(n, k, s, self.padding, op, d) for n, k, s, op, d in
                     zip(spatial, self.kernel_size, self.strides, self._output_paddings(),
                         self.dilation_rate))

    def _out_channels(self, in_channels):
        return self.filters

    def _build_kernels(self, in_channels):
        shape = self.kernel_size + (self.filters, in_channels)
        self.kernel = self._torch_kernel(shape, self.kernel_initializer, self.kernel_regularizer,
                                         self.kernel_constraint, "kernel")

    def _padded(self, x):
        return x, 0

    def _convolve(self, x, padding):
        spatial = x.shape[2:]
        starts, lengths = [], []
        for n, k, s, op, d in zip(spatial, self.kernel_size, self.strides,
                                  self._output_paddings(), self.dilation_rate):
            starts.append(transpose_crop_start(n, k, s, self.padding, op, d))
            lengths.append(transpose_output_length(n, k, s, self.padding, op, d))
        full = [(n - 1) * s + cu.effective_size(k, d) for n, k, s, d in
                zip(spatial, self.kernel_size, self.strides, self.dilation_rate)]
        extend = [max(0, a + m - f) for a, m, f in zip(starts, lengths, full)]
        fused_bias = self.bias if not any(extend) else None
        y = _CONV_T_FN[self.rank](x, self.kernel, fused_bias, self.strides, 0, 0, 1,
                                  self.dilation_rate)
        y = y[(slice(None), slice(None)) + tuple(slice(a, a + m) for a, m in zip(starts, lengths))]
        if any(extend):
            y = F.pad(y, cu.torch_pad_arg([(0, e) for e in extend]))
            if self.bias is not None:
                y = y + self.bias.view(-1, *([1] * self.rank))
        return y

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "output_padding": self.output_padding,
                       **weight_args_config(self, "kernel_initializer", "kernel_regularizer",
                                            "kernel_constraint")})
        return config


class Conv1DTranspose(ConvTranspose):
    """Transposed 1D convolution: `(batch, steps, channels)` -> `(batch, new_steps, filters)`,
    with `new_steps = steps * stride` for padding='same'."""

    rank = 1


class Conv2DTranspose(ConvTranspose):
    """Transposed 2D convolution, the upsampling half of encoder-decoder image models.

    Input shape: `(batch, h, w, channels)`. Output shape: `(batch, new_h, new_w, filters)`.

    Example:
        >>> Conv2DTranspose(8, 3, strides=2, padding="same")(Input(shape=(7, 7, 16))).shape
        (None, 14, 14, 8)
    """

    rank = 2


class Conv3DTranspose(ConvTranspose):
    """Transposed 3D convolution: `(batch, d1, d2, d3, channels)` ->
    `(batch, new_d1, new_d2, new_d3, filters)`."""

    rank = 3


Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose, Convolution3DTranspose = Conv2DTranspose, Conv3DTranspose
