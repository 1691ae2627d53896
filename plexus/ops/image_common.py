"""Helpers the image ops share: data formats, batching, float working copies, kernels."""
import torch

from plexus.ops.common import t
from plexus.ops.dtypes import image_data_format


def _fmt(data_format, what):
    data_format = image_data_format() if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{what}: data_format must be 'channels_last' or 'channels_first'; "
                         f"got {data_format!r}.")
    return data_format


def _nchw(images, data_format, what):
    """Images as a 4-D channels-first batch; returns `(x, unbatched)`."""
    x = t(images)
    if x.ndim not in (3, 4):
        raise ValueError(f"{what}: images must have 3 axes (one image) or 4 (a batch); got "
                         f"shape {tuple(x.shape)}.")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    if data_format == "channels_last":
        x = x.permute(0, 3, 1, 2)
    return x, unbatched


def _back(x, data_format, unbatched):
    if data_format == "channels_last":
        x = x.permute(0, 2, 3, 1)
    return x[0] if unbatched else x


def _float_work(x):
    """A float tensor to compute in, and how to return to `x`'s dtype."""
    if x.is_floating_point():
        return x, None
    return x.float(), x.dtype


def _restore(y, dtype):
    if dtype is None:
        return y
    if dtype is torch.bool:
        return y > 0.5
    info = torch.iinfo(dtype)
    return torch.round(y).clamp(info.min, info.max).to(dtype)


def _gauss1d(size, sigma, dtype, device):
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()
