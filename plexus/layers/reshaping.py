"""Shaping layers: Permute, RepeatVector, Cropping1D/2D/3D, ZeroPadding1D/2D/3D,
UpSampling1D/2D/3D, Rescaling and Masking. (Flatten and Reshape live in `core`.)

Spatial layers take channels-last inputs (`(batch, *spatial, channels)`) unless
`data_format='channels_first'`.
"""
import torch
import torch.nn.functional as F

from plexus.graph.tensor import torch_dtype
from plexus.layers import conv_utils as cu
from plexus.layers.layer import Layer


class Permute(Layer):
    """Reorders the non-batch axes: `Permute((2, 1))` swaps the two axes of `(batch, a, b)`.

    Args:
        dims: a permutation of `1..n` (the batch axis, 0, always stays first).

    Example:
        >>> Permute((2, 1))(Input(shape=(10, 64))).shape
        (None, 64, 10)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                f"Permute: `dims` must be a permutation of 1..{len(self.dims)} (axis 0 is the "
                f"batch and is never moved); received dims={dims!r}."
            )

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims) + 1:
            raise ValueError(
                f"Layer {self.name!r} (Permute) with dims={self.dims} expects inputs with "
                f"{len(self.dims) + 1} dimensions, but received an input of shape "
                f"{tuple(input_shape)}."
            )
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def _output_dtype(self, inputs):
        return inputs.dtype

    def call(self, inputs):
        return inputs.permute(0, *self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


class RepeatVector(Layer):
    """Repeats a vector `n` times: `(batch, features)` -> `(batch, n, features)`.

    Example:
        >>> RepeatVector(3)(Input(shape=(32,))).shape
        (None, 3, 32)
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"RepeatVector: `n` must be a positive integer; received n={n!r}.")
        self.n = n

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                f"Layer {self.name!r} (RepeatVector) expects inputs of shape (batch, features), "
                f"but received an input of shape {tuple(input_shape)}. Flatten it first."
            )
        return (input_shape[0], self.n, input_shape[1])

    def _output_dtype(self, inputs):
        return inputs.dtype

    def call(self, inputs):
        return inputs.unsqueeze(1).repeat(1, self.n, 1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


def _pairs(value, rank, arg, cls):
    """An int, `rank` ints or `rank` (before, after) pairs -> `rank` (before, after) pairs.
    For rank 1 a pair of ints means (before, after)."""
    pairs = None
    if isinstance(value, int) and not isinstance(value, bool):
        pairs = ((value, value),) * rank
    elif isinstance(value, (tuple, list)):
        items = tuple(value)
        if rank == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
            pairs = (items,)
        elif len(items) == rank:
            pairs = tuple((v, v) if isinstance(v, int) else
                          tuple(v) if isinstance(v, (tuple, list)) else () for v in items)
    ok = pairs is not None and all(
        len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in p)
        for p in pairs)
    if not ok:
        form = "an int or a pair of ints" if rank == 1 else (
            f"an int, a tuple of {rank} ints, or a tuple of {rank} (before, after) pairs")
        raise ValueError(f"{cls}: `{arg}` must be {form} (non-negative); received {arg}={value!r}.")
    return pairs


class _SpatialLayer(Layer):
    """Shared checks of the cropping, padding and upsampling layers."""

    rank = None

    def _spatial_axes(self, ndim):
        return cu.spatial_axes(ndim, getattr(self, "data_format", "channels_last"))

    def _output_dtype(self, inputs):
        return inputs.dtype

    def _check(self, input_shape):
        cu.check_rank(self, input_shape, self.rank)


class _Cropping(_SpatialLayer):
    """Removes rows at the start and end of each spatial axis."""

    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pairs(cropping, self.rank, "cropping", type(self).__name__)
        self.data_format = cu.normalize_data_format(data_format, type(self).__name__)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        shape = list(input_shape)
        for axis, (a, b) in zip(self._spatial_axes(len(shape)), self.cropping):
            if shape[axis] is not None:
                if a + b >= shape[axis]:
                    raise ValueError(
                        f"Layer {self.name!r} ({type(self).__name__}) cannot crop {a + b} rows "
                        f"from axis {axis} of an input of shape {tuple(input_shape)}: "
                        f"cropping={self._config_value()} must leave at least one row."
                    )
                shape[axis] -= a + b
        return tuple(shape)

    def call(self, inputs):
        index = [slice(None)] * inputs.ndim
        for axis, (a, b) in zip(self._spatial_axes(inputs.ndim), self.cropping):
            index[axis] = slice(a, inputs.shape[axis] - b)
        return inputs[tuple(index)]

    def _config_value(self):
        return self.cropping[0] if self.rank == 1 else self.cropping

    def get_config(self):
        config = {**super().get_config(), "cropping": self._config_value()}
        if self.rank > 1:
            config["data_format"] = self.data_format
        return config


class Cropping1D(_Cropping):
    """Crops steps: `Cropping1D((1, 2))` drops 1 step at the start and 2 at the end of
    `(batch, steps, features)`."""

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, **kwargs)


class Cropping2D(_Cropping):
    """Crops rows and columns of images.

    Args:
        cropping: an int (same on all sides), `(rows, cols)` (symmetric) or
            `((top, bottom), (left, right))`.
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Crops the three spatial axes of volumes; `cropping` as in Cropping2D, with three
    entries."""

    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class _ZeroPadding(_SpatialLayer):
    """Adds zeros at the start and end of each spatial axis."""

    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pairs(padding, self.rank, "padding", type(self).__name__)
        self.data_format = cu.normalize_data_format(data_format, type(self).__name__)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        shape = list(input_shape)
        for axis, (a, b) in zip(self._spatial_axes(len(shape)), self.padding):
            if shape[axis] is not None:
                shape[axis] += a + b
        return tuple(shape)

    def call(self, inputs):
        pads = [(0, 0)] * inputs.ndim
        for axis, pair in zip(self._spatial_axes(inputs.ndim), self.padding):
            pads[axis] = pair
        return F.pad(inputs, cu.torch_pad_arg(pads[1:]))

    def get_config(self):
        value = self.padding[0] if self.rank == 1 else self.padding
        return {**super().get_config(), "padding": value, "data_format": self.data_format}


class ZeroPadding1D(_ZeroPadding):
    """Pads steps with zeros: `ZeroPadding1D((1, 2))` adds 1 step before and 2 after."""

    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Pads images with zero rows and columns.

    Args:
        padding: an int (same on all sides), `(rows, cols)` (symmetric) or
            `((top, bottom), (left, right))`.
        data_format: 'channels_last' (default) or 'channels_first'.

    Example:
        >>> ZeroPadding2D(3)(Input(shape=(224, 224, 3))).shape
        (None, 230, 230, 3)
    """

    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Pads the three spatial axes of volumes with zeros; `padding` as in ZeroPadding2D."""

    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class _UpSampling(_SpatialLayer):
    """Repeats each row of each spatial axis `size` times."""

    def __init__(self, size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.size = cu.normalize_tuple(size, self.rank, "size", type(self).__name__)
        self.data_format = cu.normalize_data_format(data_format, type(self).__name__)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        shape = list(input_shape)
        for axis, f in zip(self._spatial_axes(len(shape)), self.size):
            if shape[axis] is not None:
                shape[axis] *= f
        return tuple(shape)

    def call(self, inputs):
        for axis, f in zip(self._spatial_axes(inputs.ndim), self.size):
            if f != 1:
                inputs = torch.repeat_interleave(inputs, f, dim=axis)
        return inputs

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}


class UpSampling1D(_UpSampling):
    """Repeats each step `size` times: `(batch, steps, features)` ->
    `(batch, steps * size, features)`."""

    rank = 1

    def __init__(self, size=2, **kwargs):
        super().__init__(size, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        config["size"] = self.size[0]
        return config


class UpSampling2D(_UpSampling):
    """Enlarges images by whole factors: `(batch, h, w, c)` -> `(batch, h * sh, w * sw, c)`.

    Args:
        size: an int or `(sh, sw)`.
        data_format: 'channels_last' (default) or 'channels_first'.
        interpolation: 'nearest' (repeat pixels) or 'bilinear' (half-pixel centers, no corner
            alignment).
    """

    rank = 2
    _INTERPOLATIONS = ("nearest", "bilinear", "bicubic")

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format, **kwargs)
        if interpolation not in self._INTERPOLATIONS:
            raise ValueError(
                f"UpSampling2D: `interpolation` must be one of {self._INTERPOLATIONS}; received "
                f"interpolation={interpolation!r}."
            )
        self.interpolation = interpolation

    def call(self, inputs):
        if self.interpolation == "nearest":
            return super().call(inputs)
        last = self.data_format == "channels_last"
        x = cu.to_channels_first(inputs) if last else inputs
        y = F.interpolate(x, scale_factor=self.size, mode=self.interpolation,
                          align_corners=False)
        return cu.to_channels_last(y) if last else y

    def _output_dtype(self, inputs):
        return inputs.dtype if self.interpolation == "nearest" else self.compute_dtype

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(_UpSampling):
    """Enlarges volumes by whole factors along their three spatial axes (nearest)."""

    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format, **kwargs)


class Rescaling(Layer):
    """`inputs * scale + offset`, e.g. `Rescaling(1 / 255)` to bring pixels into [0, 1].

    Args:
        scale: a number, or one number per channel (last axis).
        offset: a number, or one number per channel.

    Integer inputs are cast to the layer's float dtype first.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, inputs):
        dtype = torch_dtype(self.compute_dtype)
        x = inputs.to(dtype)
        scale = torch.as_tensor(self.scale, dtype=dtype, device=x.device)
        offset = torch.as_tensor(self.offset, dtype=dtype, device=x.device)
        return x * scale + offset

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Masking(Layer):
    """Marks timesteps to skip: a step whose features all equal `mask_value` is masked for the
    layers downstream (recurrent layers skip it, GlobalAveragePooling1D leaves it out), and its
    output is zero.

    Input shape: `(batch, steps, features)`. Output shape: the same.

    Example:
        >>> x = Masking(mask_value=0.0)(Input(shape=(None, 8)))
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _output_dtype(self, inputs):
        return inputs.dtype

    def _makes_mask(self):
        return True

    def _symbolic_mask(self, inputs, in_masked):
        return True

    def compute_mask(self, inputs, mask=None):
        return torch.any(inputs != self.mask_value, dim=-1)

    def call(self, inputs):
        keep = torch.any(inputs != self.mask_value, dim=-1, keepdim=True)
        return torch.where(keep, inputs, torch.zeros((), dtype=inputs.dtype, device=inputs.device))

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
