"""Image ops (`keras.ops.image`): resizing, geometric transforms, colour spaces, patches.

Images are `(batch, height, width, channels)` (or one image without the batch axis) for
`data_format="channels_last"`, `(batch, channels, height, width)` for `"channels_first"`;
`data_format=None` means the global image data format.
"""

import torch
import torch.nn.functional as F

from plexus.layers import conv_utils as cu
from plexus.ops.common import float_tensor, t
from plexus.ops.image_common import _back, _float_work, _fmt, _gauss1d, _nchw, _restore
from plexus.ops.image_sampling import (  # noqa: F401 (keras.ops.image holds them)
    affine_transform, elastic_transform, lanczos_resize, map_coordinates, perspective_transform,
    scale_and_translate,
)
from plexus.ops.table import op

_MODES = {"bilinear": "bilinear", "nearest": "nearest-exact", "bicubic": "bicubic",
          "area": "area"}


@op("image", "Resize", ("images",))
def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    """Resize images to `size = (height, width)`.

    `interpolation`: "bilinear", "nearest", "bicubic", "area", "lanczos3" or "lanczos5";
    `antialias` filters when downsampling (bilinear, bicubic, lanczos). With
    `crop_to_aspect_ratio` the largest centred crop of the target aspect ratio is resized;
    with `pad_to_aspect_ratio` the image is padded with `fill_value` to it instead.
    """
    what = "resize"
    data_format = _fmt(data_format, what)
    if len(size) != 2:
        raise ValueError(f"resize: size must be (height, width); got {size}.")
    if interpolation not in _MODES and interpolation not in ("lanczos3", "lanczos5"):
        raise ValueError(f"resize: interpolation must be one of {sorted(_MODES)} or 'lanczos3', "
                         f"'lanczos5'; got {interpolation!r}.")
    if fill_mode != "constant":
        raise ValueError(f"resize: fill_mode must be 'constant'; got {fill_mode!r}.")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("resize: give only one of crop_to_aspect_ratio and pad_to_aspect_ratio.")
    x, unbatched = _nchw(images, data_format, what)
    x, dtype = _float_work(x)
    th, tw = int(size[0]), int(size[1])
    h, w = x.shape[-2:]
    if crop_to_aspect_ratio:
        ch = max(min(h, int(w * th / tw)), 1)
        cw = max(min(w, int(h * tw / th)), 1)
        top, left = int((h - ch) / 2), int((w - cw) / 2)
        x = x[:, :, top:top + ch, left:left + cw]
    elif pad_to_aspect_ratio:
        ph, pw = max(h, int(w * th / tw)), max(w, int(h * tw / th))
        top, left = int((ph - h) / 2), int((pw - w) / 2)
        x = F.pad(x, (left, left, top, top), value=fill_value)
    if interpolation.startswith("lanczos"):
        y = lanczos_resize(x, (th, tw), int(interpolation[-1]), antialias)
    else:
        mode = _MODES[interpolation]
        aa = antialias and interpolation in ("bilinear", "bicubic")
        align = False if interpolation in ("bilinear", "bicubic") else None
        y = F.interpolate(x, size=(th, tw), mode=mode, align_corners=align, antialias=aa)
    if interpolation == "bicubic" and dtype is torch.uint8:
        y = y.clamp(0, 255)
    return _back(_restore(y, dtype), data_format, unbatched)


# ------------------------------------------------------------------------------ colour
def _channel_axis(data_format):
    return -1 if data_format == "channels_last" else -3


@op("image", "RGBToGrayscale", ("images",))
def rgb_to_grayscale(images, data_format=None):
    """Luma `0.2989 R + 0.587 G + 0.114 B`, keeping a channel axis of size 1."""
    data_format = _fmt(data_format, "rgb_to_grayscale")
    x = t(images)
    if x.ndim not in (3, 4):
        raise ValueError(f"rgb_to_grayscale: images must have 3 or 4 axes; got shape "
                         f"{tuple(x.shape)}.")
    axis = _channel_axis(data_format)
    if x.shape[axis] == 1:
        return x.clone()
    if x.shape[axis] != 3:
        raise ValueError(f"rgb_to_grayscale: images must have 3 (RGB) or 1 channels; got shape "
                         f"{tuple(x.shape)}.")
    r, g, b = x.unbind(axis)
    return (0.2989 * r + 0.587 * g + 0.114 * b).to(x.dtype).unsqueeze(axis)


def _float_images(images, what):
    x = t(images)
    if not x.is_floating_point():
        raise ValueError(f"{what}: images must be floating point; got {x.dtype}.")
    if x.ndim not in (3, 4):
        raise ValueError(f"{what}: images must have 3 or 4 axes; got shape {tuple(x.shape)}.")
    return x


@op("image", "RGBToHSV", ("images",))
def rgb_to_hsv(images, data_format=None):
    """RGB in [0, 1] to HSV (hue, saturation, value in [0, 1])."""
    axis = _channel_axis(_fmt(data_format, "rgb_to_hsv"))
    x = _float_images(images, "rgb_to_hsv")
    x = torch.where(torch.abs(x) < torch.finfo(x.dtype).eps, torch.zeros_like(x), x)
    r, g, b = x.unbind(axis)
    value = torch.maximum(torch.maximum(r, g), b)
    spread = value - torch.minimum(torch.minimum(r, g), b)
    one = torch.ones_like(value)
    sat = torch.where(value > 0, spread / torch.where(value > 0, value, one), torch.zeros_like(value))
    norm = 1.0 / (6.0 * torch.where(spread > 0, spread, one))
    hue = torch.where(value == g, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = torch.where(value == r, norm * (g - b), hue)
    hue = torch.where(spread > 0, hue, torch.zeros_like(hue)) + (hue < 0).to(hue.dtype)
    return torch.stack([hue, sat, value], dim=axis)


@op("image", "HSVToRGB", ("images",))
def hsv_to_rgb(images, data_format=None):
    """HSV (all in [0, 1]) to RGB in [0, 1]."""
    axis = _channel_axis(_fmt(data_format, "hsv_to_rgb"))
    x = _float_images(images, "hsv_to_rgb")
    hue, sat, value = x.unbind(axis)
    dh = torch.remainder(hue, 1.0) * 6.0
    dr = torch.clamp(torch.abs(dh - 3.0) - 1.0, 0.0, 1.0)
    dg = torch.clamp(2.0 - torch.abs(dh - 2.0), 0.0, 1.0)
    db = torch.clamp(2.0 - torch.abs(dh - 4.0), 0.0, 1.0)
    base = 1.0 - sat
    return torch.stack([value * (base + sat * d) for d in (dr, dg, db)], dim=axis)


# ------------------------------------------------------------------------------ crop / pad
@op("image", "CropImages", ("images",))
def crop_images(images, top_cropping=None, left_cropping=None, bottom_cropping=None,
                right_cropping=None, target_height=None, target_width=None, data_format=None):
    """Crop images to a box given by two of (top, bottom, target height) and two of (left,
    right, target width)."""
    what = "crop_images"
    data_format = _fmt(data_format, what)
    x, unbatched = _nchw(images, data_format, what)
    h, w = x.shape[-2:]
    top, left = top_cropping, left_cropping
    if top is None:
        top = h - bottom_cropping - target_height if bottom_cropping is not None else 0
    if left is None:
        left = w - right_cropping - target_width if right_cropping is not None else 0
    th = target_height if target_height is not None else h - top - (bottom_cropping or 0)
    tw = target_width if target_width is not None else w - left - (right_cropping or 0)
    if top < 0 or left < 0 or th <= 0 or tw <= 0 or top + th > h or left + tw > w:
        raise ValueError(f"{what}: the crop box (top={top}, left={left}, height={th}, "
                         f"width={tw}) does not fit images of height {h} and width {w}.")
    return _back(x[:, :, top:top + th, left:left + tw], data_format, unbatched)


@op("image", "PadImages", ("images",))
def pad_images(images, top_padding=None, left_padding=None, bottom_padding=None,
               right_padding=None, target_height=None, target_width=None, data_format=None):
    """Pad images with zeros, given two of (top, bottom, target height) and two of (left,
    right, target width)."""
    what = "pad_images"
    data_format = _fmt(data_format, what)
    x, unbatched = _nchw(images, data_format, what)
    h, w = x.shape[-2:]
    top, left = top_padding, left_padding
    if top is None:
        top = target_height - h - bottom_padding if bottom_padding is not None else 0
    if left is None:
        left = target_width - w - right_padding if right_padding is not None else 0
    bottom = bottom_padding if bottom_padding is not None else (target_height or h + top) - h - top
    right = right_padding if right_padding is not None else (target_width or w + left) - w - left
    if min(top, left, bottom, right) < 0:
        raise ValueError(f"{what}: the padding (top={top}, bottom={bottom}, left={left}, "
                         f"right={right}) is negative for images of height {h} and width {w}.")
    return _back(F.pad(x, (left, right, top, bottom)), data_format, unbatched)


# ------------------------------------------------------------------------------ patches, filters
def _patches(x, size, strides, dilation_rate, padding, rank, what):
    size = (size,) * rank if isinstance(size, int) else tuple(size)
    strides = size if not strides else ((strides,) * rank if isinstance(strides, int)
                                         else tuple(strides))
    dil = (dilation_rate,) * rank if isinstance(dilation_rate, int) else tuple(dilation_rate)
    if padding == "same":
        pads = cu.spatial_pads(x.shape[2:], size, strides, dil)
        x = F.pad(x, cu.torch_pad_arg(pads))
    elif padding != "valid":
        raise ValueError(f"{what}: padding must be 'valid' or 'same'; got {padding!r}.")
    c = x.shape[1]
    out = x
    for i, (k, s, d) in enumerate(zip(size, strides, dil)):
        out = out.unfold(2 + i, (k - 1) * d + 1, s)[..., ::d]
    # (b, c, *positions, *window) -> (b, *positions, *window, c) flattened per patch
    n_pos = out.ndim - 2 - rank
    perm = [0] + list(range(2, 2 + n_pos)) + list(range(2 + n_pos, out.ndim)) + [1]
    out = out.permute(*perm)
    return out.reshape(out.shape[:1 + n_pos] + (-1,)), c


@op("image", "ExtractPatches", ("images",))
def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid",
                    data_format=None):
    """Patches of `size` (h, w) taken every `strides` (default: `size`), each flattened in
    (row, column, channel) order into the channel axis."""
    what = "extract_patches"
    if not isinstance(size, int) and len(size) == 3:
        return _extract_patches_3d(images, size, strides, dilation_rate, padding, data_format)
    data_format = _fmt(data_format, what)
    x, unbatched = _nchw(images, data_format, what)
    out, _ = _patches(x, size, strides, dilation_rate, padding, 2, what)
    if data_format == "channels_first":
        out = out.permute(0, 3, 1, 2)
    return out[0] if unbatched else out


def extract_patches_3d(volumes, size, strides=None, dilation_rate=1, padding="valid",
                       data_format=None):
    """3-D patches of `size` (d, h, w) from volumes `(batch, d, h, w, channels)`, each
    flattened in (depth, row, column, channel) order; recorded as `extract_patches`."""
    size = (size,) * 3 if isinstance(size, int) else tuple(size)
    return extract_patches(volumes, size, strides, dilation_rate, padding, data_format)


def _extract_patches_3d(volumes, size, strides, dilation_rate, padding, data_format):
    what = "extract_patches_3d"
    data_format = _fmt(data_format, what)
    x = t(volumes)
    if x.ndim not in (4, 5):
        raise ValueError(f"{what}: volumes must have 4 or 5 axes; got shape {tuple(x.shape)}.")
    unbatched = x.ndim == 4
    if unbatched:
        x = x[None]
    if data_format == "channels_last":
        x = x.permute(0, 4, 1, 2, 3)
    out, _ = _patches(x, size, strides, dilation_rate, padding, 3, what)
    if data_format == "channels_first":
        out = out.permute(0, 4, 1, 2, 3)
    return out[0] if unbatched else out


@op("image", "GaussianBlur", ("images",))
def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None):
    """Blur with a Gaussian kernel of `kernel_size` (h, w) and standard deviations `sigma`."""
    what = "gaussian_blur"
    data_format = _fmt(data_format, what)
    x, unbatched = _nchw(images, data_format, what)
    x, dtype = _float_work(x)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sh, sw = (sigma, sigma) if isinstance(sigma, (int, float)) else sigma
    ky = _gauss1d(int(kh), float(sh), x.dtype, x.device)
    kx = _gauss1d(int(kw), float(sw), x.dtype, x.device)
    kernel = torch.outer(kx, ky) if kh == kw else torch.outer(ky, kx)
    c = x.shape[1]
    k = kernel.reshape(1, 1, *kernel.shape).expand(c, 1, *kernel.shape)
    y = F.conv2d(x, k, padding=(int(kh) // 2, int(kw) // 2), groups=c)
    return _back(_restore(y, dtype), data_format, unbatched)


@op("image", "SobelEdges", ("images",))
def sobel_edges(images, data_format=None):
    """Sobel gradients `(dy, dx)` of each channel, stacked on a new last axis."""
    what = "sobel_edges"
    data_format = _fmt(data_format, what)
    x, unbatched = _nchw(images, data_format, what)
    x = float_tensor(x)
    c = x.shape[1]
    sx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=x.dtype, device=x.device)
    kx = sx.reshape(1, 1, 3, 3).expand(c, 1, 3, 3)
    ky = sx.t().reshape(1, 1, 3, 3).expand(c, 1, 3, 3)
    edges = torch.stack([F.conv2d(x, ky, padding=1, groups=c),
                         F.conv2d(x, kx, padding=1, groups=c)], dim=-1)
    if data_format == "channels_last":
        edges = edges.permute(0, 2, 3, 1, 4)
    return edges[0] if unbatched else edges


@op("image", "SSIM", "image1,image2")
def ssim(image1, image2, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03,
         data_format=None):
    """Structural similarity of two images (batches), averaged per image: shape `(batch,)`."""
    what = "ssim"
    data_format = _fmt(data_format, what)
    a, unbatched = _nchw(image1, data_format, what)
    b, _ = _nchw(image2, data_format, what)
    a, b = float_tensor(a), float_tensor(b).to(a.device)
    c = a.shape[1]
    g = _gauss1d(filter_size, filter_sigma, a.dtype, a.device)
    kernel = torch.outer(g, g).reshape(1, 1, filter_size, filter_size).expand(c, 1, -1, -1)

    def blur(v):
        return F.conv2d(v, kernel, groups=c)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) *
                                                     (var_a + var_b + c2))
    out = s.mean(dim=(1, 2, 3))
    return out[0] if unbatched else out
