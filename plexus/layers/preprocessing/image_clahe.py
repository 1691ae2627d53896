"""`ContrastLimitedAdaptiveHistogramEqualization` (CLAHE): histogram equalization per tile,
with the histograms clipped to limit noise amplification and the tiles' mappings blended
bilinearly."""
import torch
import torch.nn.functional as F

from plexus.layers.preprocessing import image_ops as ops
from plexus.layers.preprocessing.image_base import ImageLayer

_BINS = 256


def _symmetric_pad(x, pad_h, pad_w):
    """Pad (N, H, W) at the bottom and right by repeating the edge rows and columns in
    reverse order (`d c b a | a b c d | d c b a`, NumPy's "symmetric")."""
    while pad_h > 0 or pad_w > 0:  # one mirror image at a time: pads may exceed the size
        step_h, step_w = min(pad_h, x.shape[1]), min(pad_w, x.shape[2])
        if step_h:
            x = torch.cat([x, x[:, -step_h:].flip(1)], dim=1)
        if step_w:
            x = torch.cat([x, x[:, :, -step_w:].flip(2)], dim=2)
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return x


def clahe(images, clip_limit=4.0, tile_grid_size=(8, 8)):
    """CLAHE of (B, H, W, C) images with values in [0, 255], per channel."""
    b, h, w, c = images.shape
    grid_h, grid_w = tile_grid_size
    tile_h, tile_w = -(-h // grid_h), -(-w // grid_w)
    pad_h, pad_w = tile_h * grid_h - h, tile_w * grid_w - w
    x = images.float()
    if pad_h or pad_w:
        x = _symmetric_pad(x.permute(0, 3, 1, 2).reshape(b * c, h, w), pad_h, pad_w)
        x = x.reshape(b, c, h + pad_h, w + pad_w).permute(0, 2, 3, 1)
    # Bin of each pixel: the value truncated to an integer in [0, 255].
    bins = torch.clamp(x.to(torch.int32), 0, _BINS - 1).long()  # (B, H', W', C)

    # One histogram per (image, tile, channel).
    tiles = bins.reshape(b, grid_h, tile_h, grid_w, tile_w, c).permute(0, 1, 3, 5, 2, 4)
    tiles = tiles.reshape(-1, tile_h * tile_w)
    hist = torch.zeros(tiles.shape[0], _BINS, dtype=torch.float32, device=x.device)
    hist.scatter_add_(1, tiles, torch.ones_like(tiles, dtype=torch.float32))
    area = tile_h * tile_w
    if clip_limit > 0:
        limit = clip_limit * area / float(_BINS)
        clipped = torch.clamp(hist, 0, limit)
        hist = clipped + (hist - clipped).sum(-1, keepdim=True) / float(_BINS)
    cdf = torch.cumsum(hist, dim=-1)
    cdf_min = cdf.amin(-1, keepdim=True)
    denom = area - cdf_min
    denom = torch.where(denom == 0, torch.ones_like(denom), denom)
    mapping = torch.clamp((cdf - cdf_min) * 255.0 / denom, 0, 255)
    # (B, C, grid_h, grid_w, 256), tiles repeated once past each edge.
    mapping = mapping.reshape(b, grid_h, grid_w, c, _BINS).permute(0, 3, 4, 1, 2)
    mapping = F.pad(mapping.reshape(b, c * _BINS, grid_h, grid_w), (1, 1, 1, 1),
                    mode="replicate").reshape(b, c, _BINS, grid_h + 2, grid_w + 2)

    # Each pixel blends the mappings of the four tiles whose centres surround it.
    def axis(length, tile, grid):
        pos = (torch.arange(length, dtype=torch.float32, device=x.device) - tile / 2.0) / tile \
            + 1.0
        lo = torch.floor(pos)
        weight = pos - lo
        return (torch.clamp(lo, 0, grid + 1).long(), torch.clamp(lo + 1, 0, grid + 1).long(),
                weight)
    y0, y1, wy = axis(h, tile_h, grid_h)  # only the unpadded rows and columns are kept
    x0, x1, wx = axis(w, tile_w, grid_w)
    bins = bins[:, :h, :w, :].permute(0, 3, 1, 2)  # (B, C, H, W)
    flat = mapping.reshape(b, c, -1)  # index = bin * (gh + 2) * (gw + 2) + ty * (gw + 2) + tx
    row = grid_w + 2
    base = bins * ((grid_h + 2) * row)

    def look(ty, tx):
        idx = base + ty.view(1, 1, h, 1) * row + tx.view(1, 1, 1, w)
        return torch.gather(flat, 2, idx.reshape(b, c, -1)).reshape(b, c, h, w)
    wx, wy = wx.view(1, 1, 1, w), wy.view(1, 1, h, 1)
    top = look(y0, x0) * (1 - wx) + look(y0, x1) * wx
    bottom = look(y1, x0) * (1 - wx) + look(y1, x1) * wx
    return (top * (1 - wy) + bottom * wy).permute(0, 2, 3, 1)


class ContrastLimitedAdaptiveHistogramEqualization(ImageLayer):
    """Contrast Limited Adaptive Histogram Equalization (CLAHE).

    Each image is cut into `tile_grid_size` tiles (padded at the bottom and right by mirroring
    when the size does not divide); each tile's histogram of each channel (256 bins over
    `value_range`) is clipped at `clip_limit` times the mean bin count, the excess spread over
    all bins, and turned into an equalizing mapping; each pixel blends the mappings of the
    four nearest tiles bilinearly. Applied in training and inference alike (not an
    augmentation).

    Departures from Keras 3.15 on its torch backend, where plexus computes what Keras computes
    on TensorFlow and JAX: the tiles are padded by mirroring (Keras's torch `pad` repeats the
    edge pixel instead), and the clip limit is not rounded down to a whole number of pixels
    (Keras's torch histograms are integers, so a limit under one pixel per bin flattens small
    tiles completely and leaves them unchanged). Where these do not arise (image sizes that
    the grid divides, limits that are whole numbers) the results are Keras's.

    Args:
        value_range: the range of the input pixels, `(0, 255)` by default.
        clip_limit: how much a bin may exceed the mean bin count; 0 or less disables the
            clipping (plain adaptive equalization).
        tile_grid_size: `(rows, columns)` of tiles.
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> layer = ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(4, 4))
        >>> layer(np.random.randint(0, 256, (1, 64, 64, 3))).shape
        torch.Size([1, 64, 64, 3])
    """

    _USE_BASE_FACTOR = False

    def __init__(self, value_range=(0, 255), clip_limit=4.0, tile_grid_size=(8, 8),
                 data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        name = "ContrastLimitedAdaptiveHistogramEqualization"
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2 or \
                value_range[0] >= value_range[1]:
            raise ValueError(f"{name}: value_range must be a pair (low, high) with low < high; "
                             f"received {value_range!r}.")
        if not isinstance(tile_grid_size, (tuple, list)) or len(tile_grid_size) != 2 or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in tile_grid_size):
            raise ValueError(f"{name}: tile_grid_size must be two positive integers (rows, "
                             f"columns); received {tile_grid_size!r}.")
        if isinstance(clip_limit, bool) or not isinstance(clip_limit, (int, float)):
            raise ValueError(f"{name}: clip_limit must be a number; received "
                             f"{clip_limit!r}.")
        self.value_range, self.clip_limit = value_range, clip_limit
        self.tile_grid_size = tuple(tile_grid_size)

    def transform_images(self, images, transformation=None, training=True):
        x = ops.value_range_to(images.float(), self.value_range, (0, 255))
        x = clahe(x, self.clip_limit, self.tile_grid_size)
        return ops.value_range_to(x, (0, 255), self.value_range).to(images.dtype)

    def call(self, data, training=None):
        return super().call(data, training=True)  # not an augmentation

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "clip_limit": self.clip_limit, "tile_grid_size": self.tile_grid_size}
