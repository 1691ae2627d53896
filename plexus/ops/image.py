"""Image ops (`keras.ops.image`): resizing, geometric transforms, colour spaces, patches.

Images are `(batch, height, width, channels)` (or one image without the batch axis) for
`data_format="channels_last"`, `(batch, channels, height, width)` for `"channels_first"`;
`data_format=None` means the global image data format.
"""
import itertools
import math

import torch
import torch.nn.functional as F

from plexus.layers import conv_utils as cu
from plexus.ops.common import float_tensor, t
from plexus.ops.dtypes import image_data_format
from plexus.ops.table import op

_MODES = {"bilinear": "bilinear", "nearest": "nearest-exact", "bicubic": "bicubic",
          "area": "area"}
_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


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
        y = _lanczos_resize(x, (th, tw), int(interpolation[-1]), antialias)
    else:
        mode = _MODES[interpolation]
        aa = antialias and interpolation in ("bilinear", "bicubic")
        align = False if interpolation in ("bilinear", "bicubic") else None
        y = F.interpolate(x, size=(th, tw), mode=mode, align_corners=align, antialias=aa)
    if interpolation == "bicubic" and dtype is torch.uint8:
        y = y.clamp(0, 255)
    return _back(_restore(y, dtype), data_format, unbatched)


# ------------------------------------------------------------------------------ scale_and_translate
def _triangle(x):
    return torch.clamp(1 - torch.abs(x), min=0)


def _cubic(x):
    x = torch.abs(x)
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = torch.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return torch.where(x >= 2.0, torch.zeros_like(x), out)


def _lanczos(radius):
    def kernel(x):
        y = radius * torch.sin(math.pi * x) * torch.sin(math.pi * x / radius)
        out = torch.where(x > 1e-3, y / torch.where(x > 1e-3, math.pi ** 2 * x * x,
                                                    torch.ones_like(x)), torch.ones_like(x))
        return torch.where(x > radius, torch.zeros_like(x), out)
    return kernel


_KERNELS = {"linear": _triangle, "bilinear": _triangle, "trilinear": _triangle,
            "cubic": _cubic, "bicubic": _cubic, "tricubic": _cubic,
            "lanczos3": _lanczos(3), "lanczos5": _lanczos(5)}


def _weights(in_size, out_size, scale, translation, kernel, antialias, dtype, device):
    """`(in_size, out_size)` resampling weights: output pixel centres mapped back into the
    input, the kernel widened by `1 / scale` when `antialias` and downsampling."""
    inv_scale = 1.0 / scale
    kernel_scale = max(inv_scale, 1.0) if antialias else 1.0
    centers = (torch.arange(out_size, dtype=dtype, device=device) + 0.5) * inv_scale \
        - translation * inv_scale - 0.5
    positions = torch.arange(in_size, dtype=dtype, device=device)
    w = kernel(torch.abs(positions[:, None] - centers[None, :]) / kernel_scale)
    total = torch.sum(w, dim=0, keepdim=True)
    w = torch.where(torch.abs(total) > 1000 * torch.finfo(dtype).eps,
                    w / torch.where(total != 0, total, torch.ones_like(total)), torch.zeros_like(w))
    inside = (centers >= -0.5) & (centers <= in_size - 0.5)
    return torch.where(inside[None, :], w, torch.zeros_like(w))


def _scale_translate(x, output_shape, spatial_dims, scale, translation, kernel, antialias):
    for i, d in enumerate(spatial_dims):
        n, m = x.shape[d], int(output_shape[d])
        if n == m and float(scale[i]) == 1.0 and float(translation[i]) == 0.0:
            continue
        w = _weights(n, m, float(scale[i]), float(translation[i]), kernel, antialias,
                     x.dtype, x.device)
        x = torch.movedim(torch.tensordot(torch.movedim(x, d, -1), w, dims=([-1], [0])), -1, d)
    return x


def _lanczos_resize(x, size, radius, antialias):
    h, w = x.shape[-2:]
    scale = (size[0] / h, size[1] / w)
    out_shape = tuple(x.shape[:2]) + tuple(size)
    return _scale_translate(x, out_shape, (2, 3), scale, (0.0, 0.0), _lanczos(radius), antialias)


@op("image", "ScaleAndTranslate", "images,output_shape,scale,translation")
def scale_and_translate(images, output_shape, scale, translation, spatial_dims, method,
                        antialias=True):
    """Resample `images` to `output_shape` over `spatial_dims`: output position `y` reads the
    input at `(y + 0.5 - translation) / scale - 0.5`, with the kernel of `method`."""
    if method not in _KERNELS:
        raise ValueError(f"scale_and_translate: method must be one of {sorted(_KERNELS)}; got "
                         f"{method!r}.")
    x, dtype = _float_work(t(images))
    scale = [float(v) for v in (t(scale).tolist() if not isinstance(scale, (list, tuple))
                                else scale)]
    translation = [float(v) for v in (t(translation).tolist()
                                      if not isinstance(translation, (list, tuple)) else translation)]
    y = _scale_translate(x, tuple(output_shape), tuple(spatial_dims), scale, translation,
                         _KERNELS[method], antialias)
    return _restore(y, dtype)


# ------------------------------------------------------------------------------ sampling
def _fix_index(index, size, mode):
    if mode in ("constant", "nearest"):
        return index.clamp(0, size - 1)
    if mode == "wrap":
        return torch.remainder(index, size)
    if mode == "mirror":
        if size == 1:
            return torch.zeros_like(index)
        period = 2 * (size - 1)
        return (size - 1) - torch.abs(torch.remainder(index, period) - (size - 1))
    period = 2 * size  # reflect: the edge pixel is repeated
    r = torch.remainder(index, period)
    return torch.where(r >= size, period - 1 - r, r)


def _corners(coord, order):
    if order == 0:
        idx = coord if not coord.is_floating_point() else torch.round(coord)
        return [(idx.long(), None)]
    low = torch.floor(coord)
    frac = coord - low
    return [(low.long(), 1 - frac), (low.long() + 1, frac)]


@op("image", "MapCoordinates", "inputs,coordinates")
def map_coordinates(inputs, coordinates, order, fill_mode="constant", fill_value=0):
    """Sample `inputs` at `coordinates` (one coordinate array per input axis) with nearest
    (`order=0`) or linear (`order=1`) interpolation; points outside are handled by
    `fill_mode` ("constant" uses `fill_value`)."""
    x = t(inputs)
    coords = [t(c).to(x.device) for c in coordinates]
    if len(coords) != x.ndim:
        raise ValueError(f"map_coordinates: coordinates has {len(coords)} arrays for inputs of "
                         f"rank {x.ndim} (shape {tuple(x.shape)}); give one per axis.")
    if order not in (0, 1):
        raise NotImplementedError(f"map_coordinates: order must be 0 or 1; got {order}.")
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"map_coordinates: fill_mode must be one of {_FILL_MODES}; got "
                         f"{fill_mode!r}.")
    integer = not x.is_floating_point()
    work = x.float() if integer else x
    coords = [c.to(work.dtype) if c.is_floating_point() else c for c in coords]
    total = None
    for combo in itertools.product(*[_corners(c, order) for c in coords]):
        idx = tuple(_fix_index(i, n, fill_mode) for (i, _), n in zip(combo, x.shape))
        value = work[idx]
        if fill_mode == "constant":
            ok = None
            for (i, _), n in zip(combo, x.shape):
                inside = (i >= 0) & (i < n)
                ok = inside if ok is None else ok & inside
            value = torch.where(ok, value, torch.as_tensor(fill_value, dtype=work.dtype,
                                                           device=work.device))
        weight = None
        for _, wgt in combo:
            if wgt is not None:
                weight = wgt if weight is None else weight * wgt
        value = value if weight is None else value * weight
        total = value if total is None else total + value
    return torch.round(total).to(x.dtype) if integer else total


def _sample_nhwc(images, ys, xs, order, fill_mode, fill_value):
    """Sample each image `(h, w, c)` of a batch at per-pixel `(ys, xs)` (batch, h', w')."""
    b, h, w, c = images.shape
    work = images if images.is_floating_point() else images.float()
    batch = torch.arange(b, device=images.device).reshape(b, 1, 1)
    total = None
    for (yi, wy), (xi, wx) in itertools.product(_corners(ys, order), _corners(xs, order)):
        fy, fx = _fix_index(yi, h, fill_mode), _fix_index(xi, w, fill_mode)
        value = work[batch, fy, fx]
        if fill_mode == "constant":
            ok = ((yi >= 0) & (yi < h) & (xi >= 0) & (xi < w))[..., None]
            value = torch.where(ok, value, torch.as_tensor(fill_value, dtype=work.dtype,
                                                           device=work.device))
        if wy is not None:
            value = value * (wy * wx)[..., None]
        total = value if total is None else total + value
    return total if images.is_floating_point() else torch.round(total).to(images.dtype)


def _check_sampling(interpolation, fill_mode, what):
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"{what}: interpolation must be 'nearest' or 'bilinear'; got "
                         f"{interpolation!r}.")
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"{what}: fill_mode must be one of {_FILL_MODES}; got {fill_mode!r}.")
    return 0 if interpolation == "nearest" else 1


@op("image", "AffineTransform", "images,transform")
def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                     fill_value=0, data_format=None):
    """Apply projective transforms `[a0, a1, a2, b0, b1, b2, c0, c1]` (one per image, or one
    for all): output pixel `(x, y)` reads the input at `((a0 x + a1 y + a2) / k,
    (b0 x + b1 y + b2) / k)`, `k = c0 x + c1 y + 1`."""
    what = "affine_transform"
    order = _check_sampling(interpolation, fill_mode, what)
    data_format = _fmt(data_format, what)
    x, unbatched = _nchw(images, data_format, what)
    nhwc = x.permute(0, 2, 3, 1)
    tr = t(transform).to(nhwc.device)
    if tr.ndim not in (1, 2) or tr.shape[-1] != 8:
        raise ValueError(f"affine_transform: transform must have shape (8,) or (batch, 8); got "
                         f"{tuple(tr.shape)}.")
    tr = float_tensor(tr).reshape(-1, 8).expand(nhwc.shape[0], 8)
    dtype = nhwc.dtype if nhwc.is_floating_point() else torch.float32
    tr = tr.to(dtype)
    h, w = nhwc.shape[1:3]
    gy, gx = torch.meshgrid(torch.arange(h, dtype=dtype, device=nhwc.device),
                            torch.arange(w, dtype=dtype, device=nhwc.device), indexing="ij")
    a = [tr[:, i].reshape(-1, 1, 1) for i in range(8)]
    k = a[6] * gx + a[7] * gy + 1
    xs = (a[0] * gx + a[1] * gy + a[2]) / k
    ys = (a[3] * gx + a[4] * gy + a[5]) / k
    out = _sample_nhwc(nhwc, ys, xs, order, fill_mode, fill_value)
    return _back(out.permute(0, 3, 1, 2), data_format, unbatched)


def _homography(start, end):
    """The 8 projective coefficients mapping `end` corners to `start` corners (per batch)."""
    rows, rhs = [], []
    for i in range(4):
        sx, sy = start[:, i, 0], start[:, i, 1]
        ex, ey = end[:, i, 0], end[:, i, 1]
        zero, one = torch.zeros_like(ex), torch.ones_like(ex)
        rows.append(torch.stack([ex, ey, one, zero, zero, zero, -sx * ex, -sx * ey], -1))
        rows.append(torch.stack([zero, zero, zero, ex, ey, one, -sy * ex, -sy * ey], -1))
        rhs += [sx, sy]
    m = torch.stack(rows, 1).double()
    return torch.linalg.solve(m, torch.stack(rhs, 1).double()[..., None])[..., 0]


@op("image", "PerspectiveTransform", "images,start_points,end_points")
def perspective_transform(images, start_points, end_points, interpolation="bilinear",
                          fill_value=0, data_format=None):
    """Warp images so that the four `start_points` (x, y) move to `end_points`."""
    what = "perspective_transform"
    data_format = _fmt(data_format, what)
    s, e = float_tensor(start_points), float_tensor(end_points)
    s, e = s.reshape(-1, 4, 2), e.reshape(-1, 4, 2)
    coeffs = _homography(s, e)
    x = t(images)
    return affine_transform.__wrapped__(x, coeffs.to(x.dtype if x.is_floating_point()
                                                     else torch.float32),
                                        interpolation, "constant", fill_value, data_format)


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
def _box(h, w, top, left, bottom, right, target_h, target_w, what, verb):
    if top is None and bottom is None:
        top = 0 if target_h is None else None
    if target_h is None:
        if top is None or bottom is None:
            raise ValueError(f"{what}: give two of top_{verb}, bottom_{verb} and target_height.")
    if left is None and right is None:
        left = 0 if target_w is None else None
    if target_w is None:
        if left is None or right is None:
            raise ValueError(f"{what}: give two of left_{verb}, right_{verb} and target_width.")
    return top, left, bottom, right


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


def _gauss1d(size, sigma, dtype, device):
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


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


@op("image", "ElasticTransform", ("images",))
def elastic_transform(images, alpha=20.0, sigma=5.0, interpolation="bilinear",
                      fill_mode="reflect", fill_value=0.0, seed=None, data_format=None):
    """Displace pixels by a random smooth field (Gaussian-blurred noise of strength `alpha`,
    smoothness `sigma`); `seed` (an int) makes it reproducible."""
    what = "elastic_transform"
    order = _check_sampling(interpolation, fill_mode, what)
    data_format = _fmt(data_format, what)
    x, unbatched = _nchw(images, data_format, what)
    nhwc = x.permute(0, 2, 3, 1)
    b, h, w, _ = nhwc.shape
    dtype = nhwc.dtype if nhwc.is_floating_point() else torch.float32
    gen = torch.Generator(device=nhwc.device)
    if seed is not None:
        gen.manual_seed(int(seed))
    else:
        gen.seed()
    noise = torch.rand((b, 2, h, w), generator=gen, device=nhwc.device, dtype=dtype) * 2 - 1
    size = int(6 * sigma) | 1
    k = _gauss1d(size, float(sigma), dtype, nhwc.device)
    kernel = torch.outer(k, k).reshape(1, 1, size, size).expand(2, 1, -1, -1)
    field = F.conv2d(noise, kernel, padding=size // 2, groups=2) * alpha
    gy, gx = torch.meshgrid(torch.arange(h, dtype=dtype, device=nhwc.device),
                            torch.arange(w, dtype=dtype, device=nhwc.device), indexing="ij")
    out = _sample_nhwc(nhwc, gy + field[:, 0], gx + field[:, 1], order, fill_mode, fill_value)
    return _back(out.permute(0, 3, 1, 2), data_format, unbatched)
