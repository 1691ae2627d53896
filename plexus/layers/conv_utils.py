"""Shared helpers of the convolution and pooling layers: argument checks, output lengths,
"same" padding amounts, and moving the channel axis between plexus's surface layout
(channels-last) and torch's kernels (channels-first)."""
import functools
import math

import torch
import torch.nn.functional as F


def normalize_tuple(value, rank, arg, cls_name, allow_zero=False):
    """`3` -> `(3, 3)` for rank 2; checks a tuple's length and that every entry is an int."""
    if isinstance(value, int) and not isinstance(value, bool):
        values = (value,) * rank
    else:
        try:
            values = tuple(value)
        except TypeError:
            values = None
        if values is None or len(values) != rank or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError(
                f"{cls_name}: `{arg}` must be an integer or a tuple of {rank} integers; "
                f"received {arg}={value!r}."
            )
    low = 0 if allow_zero else 1
    if any(v < low for v in values):
        raise ValueError(
            f"{cls_name}: every entry of `{arg}` must be {'>= 0' if allow_zero else 'positive'}; "
            f"received {arg}={value!r}."
        )
    return values


def normalize_padding(padding, cls_name, allow_causal=False):
    """Lower-cases and checks a padding mode: 'valid', 'same' (and 'causal' for 1D)."""
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode not in allowed:
        raise ValueError(
            f"{cls_name}: `padding` must be one of {', '.join(repr(a) for a in allowed)}; "
            f"received padding={padding!r}."
        )
    return mode


def normalize_data_format(data_format, cls_name):
    """None -> the global default (`plexus.config.image_data_format()`); checks the value."""
    from plexus import config
    fmt = (data_format or config.image_data_format()).lower()
    if fmt not in ("channels_last", "channels_first"):
        raise ValueError(
            f"{cls_name}: `data_format` must be 'channels_last' or 'channels_first'; "
            f"received data_format={data_format!r}."
        )
    return fmt


def effective_size(kernel, dilation):
    """Span of a dilated kernel: a 3-tap kernel with dilation 2 covers 5 inputs."""
    return (kernel - 1) * dilation + 1


def conv_output_length(length, kernel, stride, padding, dilation=1):
    """Output length of a convolution or pooling window along one axis (None stays None)."""
    if length is None:
        return None
    if padding in ("same", "causal"):
        return -(-length // stride)
    span = effective_size(kernel, dilation)
    return (length - span) // stride + 1 if length >= span else -1


def same_pads(length, kernel, stride, dilation=1):
    """(before, after) padding of 'same' mode along one axis; the odd one goes after."""
    span = effective_size(kernel, dilation)
    out = -(-length // stride)
    total = max(0, (out - 1) * stride + span - length)
    return total // 2, total - total // 2


def spatial_pads(spatial_shape, kernels, strides, dilations):
    return [same_pads(n, k, s, d) for n, k, s, d in zip(spatial_shape, kernels, strides, dilations)]


def torch_pad_arg(pads):
    """[(before, after) per axis, first axis first] -> F.pad's flat list, last axis first."""
    flat = []
    for before, after in reversed(pads):
        flat += [before, after]
    return flat


def pad_same(x, kernels, strides, dilations, mode="constant"):
    """Pads channels-first `x` for 'same' mode. Returns `(x, padding)` where `padding` is what
    the torch kernel should add itself: symmetric padding is left to the kernel (no copy),
    asymmetric padding is applied here with `mode`."""
    pads = spatial_pads(x.shape[2:], kernels, strides, dilations)
    if all(a == b for a, b in pads):
        return x, tuple(a for a, _ in pads)
    return F.pad(x, torch_pad_arg(pads), mode=mode), 0


def to_channels_first(x):
    """(batch, *spatial, channels) -> (batch, channels, *spatial) as a view (no copy)."""
    return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


def to_channels_last(x):
    """(batch, channels, *spatial) -> (batch, *spatial, channels) as a view (no copy)."""
    return x.permute(0, *range(2, x.ndim), 1)


def _kernel_to_torch(rank, t):
    return t.permute(rank + 1, rank, *range(rank))


def _kernel_to_keras(rank, t):
    return t.permute(*range(2, rank + 2), 1, 0)


# Layout converters are `functools.partial`s of module-level functions, not closures, so that
# the variables holding them (and so every model) can be pickled.
def keras_kernel_to_torch(rank):
    """Layout converter: Keras `(*k, in, out)` -> torch `(out, in, *k)`."""
    return functools.partial(_kernel_to_torch, rank)


def torch_kernel_to_keras(rank):
    """Layout converter: torch `(out, in, *k)` -> Keras `(*k, in, out)`."""
    return functools.partial(_kernel_to_keras, rank)


def channels_last_format(ndim):
    """torch memory format that stores a channels-first tensor of `ndim` dims channels-last."""
    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(ndim)


def spatial_axes(ndim, data_format):
    """Indices of the spatial axes of a tensor with `ndim` dims."""
    return tuple(range(1, ndim - 1)) if data_format == "channels_last" else tuple(range(2, ndim))


def check_rank(layer, input_shape, rank):
    """Raises a ValueError naming `layer` unless the input has `rank` spatial axes."""
    if len(input_shape) != rank + 2:
        layout = ("(batch, " + ", ".join(f"d{i + 1}" for i in range(rank)) + ", channels)")
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) expects inputs with {rank + 2} "
            f"dimensions {layout}, but received an input of shape {tuple(input_shape)}."
        )


def product(values):
    return math.prod(values)
