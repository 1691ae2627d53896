"""Convolution, pooling and patch ops (`keras.ops.nn`), on torch's kernels.

Inputs are `(batch, *spatial, channels)` for `data_format="channels_last"` (the default, or
the global image data format) and `(batch, channels, *spatial)` for `"channels_first"`.
Kernels use Keras's layout: `(*kernel_size, in_channels / groups, out_channels)`.
"""
import torch
import torch.nn.functional as F

from plexus.layers import conv_utils as cu
from plexus.layers.conv_transpose import transpose_crop_start, transpose_output_length
from plexus.ops.common import float_tensor, pair, t
from plexus.ops.dtypes import image_data_format
from plexus.ops.table import op

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _format(data_format, what):
    data_format = image_data_format() if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{what}: data_format must be 'channels_last' or 'channels_first'; "
                         f"got {data_format!r}.")
    return data_format


def _tuple(value, rank, what, arg):
    if isinstance(value, int):
        return (value,) * rank
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * rank
    if len(value) != rank:
        raise ValueError(f"{what}: {arg} must be an int or {rank} ints; got {value}.")
    return value


def _first(x, data_format, what, min_rank=3):
    if x.ndim < min_rank or x.ndim > 5:
        raise ValueError(f"{what}: inputs must have 3 to 5 axes (batch, spatial..., channels); "
                         f"got shape {tuple(x.shape)}.")
    return cu.to_channels_first(x) if data_format == "channels_last" else x


def _back(y, data_format):
    return cu.to_channels_last(y) if data_format == "channels_last" else y


def _pad(x, padding, kernels, strides, dilations, what, value=0.0):
    padding = padding.lower()
    if padding == "valid":
        return x
    if padding != "same":
        raise ValueError(f"{what}: padding must be 'valid' or 'same'; got {padding!r}.")
    pads = cu.spatial_pads(x.shape[2:], kernels, strides, dilations)
    return F.pad(x, cu.torch_pad_arg(pads), value=value) if any(a or b for a, b in pads) else x


def _conv_setup(inputs, kernel, strides, dilation_rate, data_format, what):
    x, k = pair(inputs, kernel)
    x = float_tensor(x)
    k = k.to(x.dtype)
    data_format = _format(data_format, what)
    rank = x.ndim - 2
    if k.ndim != rank + 2:
        raise ValueError(f"{what}: kernel must have {rank + 2} axes (*kernel_size, in_channels, "
                         f"out_channels) for inputs of shape {tuple(x.shape)}; got kernel shape "
                         f"{tuple(k.shape)}.")
    x = _first(x, data_format, what)
    return (x, k, rank, _tuple(strides, rank, what, "strides"),
            _tuple(dilation_rate, rank, what, "dilation_rate"), data_format)


@op("nn", "Conv", "inputs,kernel")
def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """N-D convolution (1-D to 3-D) of `inputs` with a Keras-layout `kernel`; grouped when
    the kernel's input channels divide the inputs' channels."""
    what = "conv"
    x, k, rank, strides, dil, data_format = _conv_setup(inputs, kernel, strides, dilation_rate,
                                                        data_format, what)
    in_ch, k_in = x.shape[1], k.shape[-2]
    if in_ch % k_in:
        raise ValueError(f"conv: the inputs have {in_ch} channels, not a multiple of the "
                         f"kernel's {k_in} input channels (kernel shape {tuple(k.shape)}).")
    w = k.permute(rank + 1, rank, *range(rank))
    x = _pad(x, padding, k.shape[:rank], strides, dil, what)
    return _back(_CONV[rank](x, w, None, strides, 0, dil, in_ch // k_in), data_format)


@op("nn", "DepthwiseConv", "inputs,kernel")
def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1):
    """Depthwise convolution: each input channel convolved with its own
    `(*kernel_size, in_channels, multiplier)` filters."""
    what = "depthwise_conv"
    x, k, rank, strides, dil, data_format = _conv_setup(inputs, kernel, strides, dilation_rate,
                                                        data_format, what)
    in_ch, mult = k.shape[-2], k.shape[-1]
    if x.shape[1] != in_ch:
        raise ValueError(f"depthwise_conv: the inputs have {x.shape[1]} channels but the kernel "
                         f"(shape {tuple(k.shape)}) expects {in_ch}.")
    w = k.reshape(k.shape[:rank] + (1, in_ch * mult)).permute(rank + 1, rank, *range(rank))
    x = _pad(x, padding, k.shape[:rank], strides, dil, what)
    return _back(_CONV[rank](x, w, None, strides, 0, dil, in_ch), data_format)


@op("nn", "SeparableConv", "inputs,depthwise_kernel,pointwise_kernel")
def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid",
                   data_format=None, dilation_rate=1):
    """Depthwise convolution followed by a 1x1 (pointwise) convolution."""
    y = depthwise_conv.__wrapped__(inputs, depthwise_kernel, strides, padding, data_format,
                                   dilation_rate)
    return conv.__wrapped__(y, pointwise_kernel, 1, "valid", data_format, 1)


@op("nn", "ConvTranspose", "inputs,kernel")
def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None,
                   data_format=None, dilation_rate=1):
    """Transposed convolution; `kernel` is `(*kernel_size, out_channels, in_channels)`.
    Output sizes follow Keras: `n * stride` for 'same', `(n - 1) * stride + kernel` for
    'valid', adjusted by `output_padding` when given."""
    what = "conv_transpose"
    x, k, rank, strides, dil, data_format = _conv_setup(inputs, kernel, strides, dilation_rate,
                                                        data_format, what)
    if x.shape[1] != k.shape[-1]:
        raise ValueError(f"conv_transpose: the inputs have {x.shape[1]} channels but the kernel "
                         f"(shape {tuple(k.shape)}) expects {k.shape[-1]} (its last axis).")
    padding = padding.lower()
    out_pads = (None,) * rank if output_padding is None else _tuple(output_padding, rank, what,
                                                                    "output_padding")
    kernels = k.shape[:rank]
    w = k.permute(rank + 1, rank, *range(rank))
    y = _CONV_T[rank](x, w, None, strides, 0, 0, 1, dil)
    starts, lengths = [], []
    for n, kk, s, o, d in zip(x.shape[2:], kernels, strides, out_pads, dil):
        starts.append(transpose_crop_start(n, kk, s, padding, o, d))
        lengths.append(transpose_output_length(n, kk, s, padding, o, d))
    extend = [max(0, a + m - f) for a, m, f in zip(starts, lengths, y.shape[2:])]
    y = y[(slice(None), slice(None)) + tuple(slice(a, a + m) for a, m in zip(starts, lengths))]
    if any(extend):
        y = F.pad(y, cu.torch_pad_arg([(0, e) for e in extend]))
    return _back(y, data_format)


def _pool_setup(inputs, pool_size, strides, data_format, what):
    x = t(inputs)
    data_format = _format(data_format, what)
    x = _first(x, data_format, what)
    rank = x.ndim - 2
    pool = _tuple(pool_size, rank, what, "pool_size")
    strides = pool if strides is None else _tuple(strides, rank, what, "strides")
    return x, rank, pool, strides, data_format


@op("nn", "MaxPool", ("inputs",))
def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Max pooling over windows of `pool_size` (strides default to the pool size)."""
    x, rank, pool, strides, data_format = _pool_setup(inputs, pool_size, strides, data_format,
                                                      "max_pool")
    low = torch.finfo(x.dtype).min if x.is_floating_point() else torch.iinfo(x.dtype).min
    x = _pad(x, padding, pool, strides, (1,) * rank, "max_pool", value=low)
    return _back(_MAX[rank](x, pool, strides), data_format)


@op("nn", "AveragePool", ("inputs",))
def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Average pooling over windows of `pool_size`; 'same' padding averages only the real
    (unpadded) values of each window."""
    x, rank, pool, strides, data_format = _pool_setup(inputs, pool_size, strides, data_format,
                                                      "average_pool")
    x = float_tensor(x)
    if padding.lower() == "same":
        ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
        total = _AVG[rank](_pad(x, padding, pool, strides, (1,) * rank, "average_pool"),
                           pool, strides)
        count = _AVG[rank](_pad(ones, padding, pool, strides, (1,) * rank, "average_pool"),
                           pool, strides)
        return _back(total / count, data_format)
    _pad(x, padding, pool, strides, (1,) * rank, "average_pool")  # validates `padding`
    return _back(_AVG[rank](x, pool, strides), data_format)


_ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
_ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


def _adaptive(x, output_size, data_format, kernels, what):
    data_format = _format(data_format, what)
    x = _first(x, data_format, what)
    rank = x.ndim - 2
    return _back(kernels[rank](x, _tuple(output_size, rank, what, "output_size")), data_format)


@op("nn", "AdaptiveAveragePool", ("inputs",))
def adaptive_average_pool(inputs, output_size, data_format=None):
    """Average pooling to a fixed spatial `output_size`, whatever the input size."""
    return _adaptive(float_tensor(inputs), output_size, data_format, _ADAPTIVE_AVG,
                     "adaptive_average_pool")


@op("nn", "AdaptiveMaxPool", ("inputs",))
def adaptive_max_pool(inputs, output_size, data_format=None):
    """Max pooling to a fixed spatial `output_size`, whatever the input size."""
    return _adaptive(t(inputs), output_size, data_format, _ADAPTIVE_MAX, "adaptive_max_pool")


@op("nn", "DepthToSpace")
def depth_to_space(x, block_size, data_format="channels_last"):
    """Move blocks of channels into `block_size x block_size` spatial blocks (4-D input)."""
    x = t(x)
    data_format = _format(data_format, "depth_to_space")
    if x.ndim != 4:
        raise ValueError(f"depth_to_space: x must be 4-D; got shape {tuple(x.shape)}.")
    c = x.shape[-1] if data_format == "channels_last" else x.shape[1]
    if c % (block_size * block_size):
        raise ValueError(f"depth_to_space: {c} channels do not divide by block_size**2 = "
                         f"{block_size * block_size}.")
    if data_format == "channels_first":  # channels ordered (channel, row, column)
        return F.pixel_shuffle(x, block_size)
    n, h, w, _ = x.shape  # channels ordered (row, column, channel), as TensorFlow's
    y = x.reshape(n, h, w, block_size, block_size, c // block_size ** 2)
    return y.permute(0, 1, 3, 2, 4, 5).reshape(n, h * block_size, w * block_size, -1)


@op("nn", "SpaceToDepth")
def space_to_depth(x, block_size, data_format="channels_last"):
    """Move `block_size x block_size` spatial blocks into channels (4-D input)."""
    x = t(x)
    data_format = _format(data_format, "space_to_depth")
    if x.ndim != 4:
        raise ValueError(f"space_to_depth: x must be 4-D; got shape {tuple(x.shape)}.")
    h, w = x.shape[1:3] if data_format == "channels_last" else x.shape[2:]
    if h % block_size or w % block_size:
        raise ValueError(f"space_to_depth: height {h} and width {w} must divide by "
                         f"block_size {block_size}.")
    if data_format == "channels_first":
        return F.pixel_unshuffle(x, block_size)
    n, _, _, c = x.shape
    y = x.reshape(n, h // block_size, block_size, w // block_size, block_size, c)
    return y.permute(0, 1, 3, 2, 4, 5).reshape(n, h // block_size, w // block_size, -1)


@op("nn", "Unfold")
def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding patches of a channels-first `(N, C, H, W)` tensor as `(N, C*kh*kw, L)`."""
    return F.unfold(float_tensor(x), kernel_size, dilation=dilation, padding=padding, stride=stride)


@op("nn", "Fold")
def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The inverse of `unfold`: sum `(N, C*kh*kw, L)` patches into `(N, C, *output_size)`."""
    return F.fold(float_tensor(x), output_size, kernel_size, dilation=dilation, padding=padding,
                  stride=stride)
