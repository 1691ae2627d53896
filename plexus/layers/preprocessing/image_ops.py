"""Image kernels the preprocessing layers share, on channels-last batches `(B, H, W, C)`.

`affine_transform` samples each output pixel `(x, y)` at input point
`(a0*x + a1*y + a2, b0*x + b1*y + b2)` (Keras's 8-number transforms, pixel centers at integer
coordinates). Fill modes `constant`, `nearest` and `reflect` run on torch's fused
`grid_sample` (the same numbers as Keras's per-tap index rules: for these modes clamping or
reflecting the coordinate and fixing each tap's index agree); `wrap` and `mirror` gather taps.
"""
import math

import torch
import torch.nn.functional as F

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("nearest", "bilinear")
_GRID_PADDING = {"constant": "zeros", "nearest": "border", "reflect": "reflection"}


def _pixel_grid(h, w, device, dtype):
    ys = torch.arange(h, device=device, dtype=dtype).view(1, h, 1)
    xs = torch.arange(w, device=device, dtype=dtype).view(1, 1, w)
    return xs, ys


def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                     fill_value=0.0):
    """Resample `images` (B, H, W, C) through per-image transforms (B, 8) (or (8,))."""
    b, h, w, _ = images.shape
    t = transform.to(images.dtype).reshape(-1, 8)
    if t.shape[0] == 1 and b > 1:
        t = t.expand(b, 8)
    xs, ys = _pixel_grid(h, w, images.device, images.dtype)
    col = lambda i: t[:, i].view(-1, 1, 1)  # noqa: E731
    x_in = col(0) * xs + col(1) * ys + col(2)
    y_in = col(3) * xs + col(4) * ys + col(5)
    return sample(images, x_in, y_in, interpolation, fill_mode, fill_value)


def sample(images, x_in, y_in, interpolation, fill_mode, fill_value=0.0):
    """`images` (B, H, W, C) read at input coordinates `x_in`, `y_in` (B, H', W')."""
    b, h, w, c = images.shape
    if fill_mode in _GRID_PADDING:
        grid = torch.stack(((2 * x_in + 1) / w - 1, (2 * y_in + 1) / h - 1), dim=-1)
        src = images.permute(0, 3, 1, 2)
        if fill_mode == "constant" and fill_value:
            src = src - fill_value  # zero padding of (image - v), plus v: every outside tap is v
        out = F.grid_sample(src, grid, mode=interpolation, padding_mode=_GRID_PADDING[fill_mode],
                            align_corners=False)
        if fill_mode == "constant" and fill_value:
            out = out + fill_value
        return out.permute(0, 2, 3, 1)
    return _gather_sample(images, x_in, y_in, interpolation, fill_mode)


def _fix(index, size, fill_mode):
    if fill_mode == "wrap":
        return index % size
    s = max(size - 1, 1)  # mirror: reflect about the edge pixels (d c b | a b c d | c b a)
    return torch.abs((index + s) % (2 * s) - s) if size > 1 else torch.zeros_like(index)


def _gather_sample(images, x_in, y_in, interpolation, fill_mode):
    b, h, w, c = images.shape
    flat = images.reshape(b, h * w, c)

    def take(yi, xi):
        idx = (_fix(yi, h, fill_mode) * w + _fix(xi, w, fill_mode)).reshape(b, -1, 1)
        return torch.gather(flat, 1, idx.expand(-1, -1, c)).reshape(*yi.shape, c)

    if interpolation == "nearest":
        return take(torch.round(y_in).long(), torch.round(x_in).long())
    x0, y0 = torch.floor(x_in), torch.floor(y_in)
    wx, wy = (x_in - x0).unsqueeze(-1), (y_in - y0).unsqueeze(-1)
    x0, y0 = x0.long(), y0.long()
    top = take(y0, x0) * (1 - wx) + take(y0, x0 + 1) * wx
    bottom = take(y0 + 1, x0) * (1 - wx) + take(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def affine_matrix(center_x, center_y, angle, translate_x, translate_y, scale, shear_x,
                  shear_y, height, width):
    """Keras's 8-number transforms (B, 8) for rotations (degrees), translations (pixels),
    scales and shears (degrees) about a center given as a fraction of the image size."""
    rad = math.pi / 180.0
    angle, shear_x, shear_y = angle * rad, torch.tan(shear_x * rad), torch.tan(shear_y * rad)
    cx, cy = center_x * (width - 1), center_y * (height - 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    a0 = scale * (cos + shear_x * sin)
    a1 = scale * (-sin + shear_x * cos)
    a2 = translate_x + cx - cx * a0 - cy * a1
    b0 = scale * (shear_y * cos + sin)
    b1 = scale * (shear_y * -sin + cos)
    b2 = translate_y + cy - cx * b0 - cy * b1
    zeros = torch.zeros_like(a0)
    return torch.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], dim=1)


def resize(images, height, width, interpolation="bilinear", antialias=False,
           crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, fill_value=0.0):
    """Resize (B, H, W, C) images to (height, width), as Keras's `image.resize` on torch."""
    if interpolation not in ("bilinear", "nearest", "bicubic", "area"):
        raise ValueError(f"interpolation must be 'bilinear', 'nearest', 'bicubic' or 'area' on "
                         f"torch; received {interpolation!r}.")
    x = images.permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    if crop_to_aspect_ratio:
        ch, cw = crop_box(h, w, height, width)
        top, left = int((h - ch) / 2), int((w - cw) / 2)
        x = x[:, :, top:top + ch, left:left + cw]
    elif pad_to_aspect_ratio:
        ph = max(h, int(float(w * height) / width))
        pw = max(w, int(float(h * width) / height))
        top, left = int((ph - h) / 2), int((pw - w) / 2)
        x = F.pad(x, (left, left, top, top), value=float(fill_value))
    mode = {"nearest": "nearest-exact"}.get(interpolation, interpolation)
    align = False if interpolation in ("bilinear", "bicubic") else None
    anti = antialias and interpolation in ("bilinear", "bicubic")
    out = F.interpolate(x, size=(height, width), mode=mode, align_corners=align, antialias=anti)
    return out.permute(0, 2, 3, 1)


def crop_box(h, w, target_h, target_w):
    """The largest (height, width) of the target's aspect ratio that fits in (h, w)."""
    ch = max(min(h, int(float(w * target_h) / target_w)), 1)
    cw = max(min(w, int(float(h * target_w) / target_h)), 1)
    return ch, cw


def smart_resize(images, height, width, interpolation="bilinear"):
    """Crop the centre to the target aspect ratio, then resize (no distortion)."""
    return resize(images, height, width, interpolation, crop_to_aspect_ratio=True)


def rgb_to_grayscale(images):
    """(B, H, W, 3) -> (B, H, W, 1), ITU-R 601 luma weights (as Keras); one channel stays."""
    if images.shape[-1] == 1:
        return images.clone()
    r, g, b = images.unbind(-1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-1)


def rgb_to_hsv(images):
    """RGB in [0, 1] to hue, saturation, value in [0, 1] (last axis)."""
    eps = torch.finfo(images.dtype).eps
    images = torch.where(torch.abs(images) < eps, torch.zeros_like(images), images)
    r, g, b = images.unbind(-1)
    value = torch.maximum(torch.maximum(r, g), b)
    rng = value - torch.minimum(torch.minimum(r, g), b)
    one = torch.ones_like(value)
    saturation = torch.where(value > 0, rng / torch.where(value > 0, value, one),
                             torch.zeros_like(value))
    norm = 1.0 / (6.0 * torch.where(rng > 0, rng, one))
    hue = torch.where(value == g, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = torch.where(value == r, norm * (g - b), hue)
    hue = torch.where(rng > 0, hue, torch.zeros_like(hue)) + (hue < 0.0).to(hue.dtype)
    return torch.stack([hue, saturation, value], dim=-1)


def hsv_to_rgb(images):
    """Hue, saturation, value in [0, 1] to RGB (last axis)."""
    hue, saturation, value = images.unbind(-1)
    dh = torch.remainder(hue, 1.0) * 6.0
    dr = torch.clamp(torch.abs(dh - 3.0) - 1.0, 0.0, 1.0)
    dg = torch.clamp(2.0 - torch.abs(dh - 2.0), 0.0, 1.0)
    db = torch.clamp(2.0 - torch.abs(dh - 4.0), 0.0, 1.0)
    one_minus_s = 1.0 - saturation
    return torch.stack([value * (one_minus_s + saturation * d) for d in (dr, dg, db)], dim=-1)


def value_range_to(images, source, target):
    """Map values linearly from the range `source` to `target`."""
    if tuple(source) == tuple(target):
        return images
    images = (images - source[0]) / (source[1] - source[0])
    return images * (target[1] - target[0]) + target[0]


def homography_matrix(start_points, end_points):
    """The projective transforms (B, 8) that map each output point of `end_points` (B, 4, 2)
    back to its input point in `start_points`: input `x = (a0*x' + a1*y' + a2) / d`,
    `y = (b0*x' + b1*y' + b2) / d` with `d = c0*x' + c1*y' + 1` (Keras's 8-number layout)."""
    dtype = start_points.dtype
    src, dst = start_points.double(), end_points.double()
    xe, ye = dst[..., 0], dst[..., 1]  # (B, 4)
    xs, ys = src[..., 0], src[..., 1]
    one, zero = torch.ones_like(xe), torch.zeros_like(xe)
    rows_x = torch.stack([xe, ye, one, zero, zero, zero, -xs * xe, -xs * ye], dim=-1)
    rows_y = torch.stack([zero, zero, zero, xe, ye, one, -ys * xe, -ys * ye], dim=-1)
    system = torch.stack([rows_x, rows_y], dim=2).reshape(-1, 8, 8)  # x1, y1, x2, y2, ...
    target = torch.stack([xs, ys], dim=2).reshape(-1, 8, 1)
    return torch.linalg.solve(system, target).reshape(-1, 8).to(dtype)


def projective_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                         fill_value=0.0):
    """Resample `images` (B, H, W, C) through per-image projective transforms (B, 8)."""
    b, h, w, _ = images.shape
    t = transform.to(images.dtype).reshape(-1, 8)
    if t.shape[0] == 1 and b > 1:
        t = t.expand(b, 8)
    xs, ys = _pixel_grid(h, w, images.device, images.dtype)
    col = lambda i: t[:, i].view(-1, 1, 1)  # noqa: E731
    denom = col(6) * xs + col(7) * ys + 1.0
    x_in = (col(0) * xs + col(1) * ys + col(2)) / denom
    y_in = (col(3) * xs + col(4) * ys + col(5)) / denom
    return sample(images, x_in, y_in, interpolation, fill_mode, fill_value)


def gaussian_blur_2d(images, kernel_size, sigma):
    """Blur (B, H, W, C) images with a separable Gaussian: `kernel_size` (height, width),
    `sigma` (along x, along y), zero padding of `kernel_size[0] // 2` (as Keras)."""
    def kernel1d(size, s):
        x = torch.arange(size, dtype=images.dtype, device=images.device) - (size - 1) / 2
        k = torch.exp(-0.5 * (x / s) ** 2)
        return k / k.sum()
    kernel = torch.outer(kernel1d(kernel_size[1], sigma[1]), kernel1d(kernel_size[0], sigma[0]))
    c = images.shape[-1]
    weight = kernel.view(1, 1, kernel_size[0], kernel_size[1]).expand(c, 1, -1, -1)
    out = F.conv2d(images.permute(0, 3, 1, 2), weight, padding=int(kernel_size[0] // 2),
                   groups=c)
    return out.permute(0, 2, 3, 1)


def elastic_transform(images, alpha, sigma, noise, interpolation="bilinear",
                      fill_mode="reflect", fill_value=0.0):
    """Elastic deformation (Simard et al.) of `images` (B, H, W, C): standard-normal `noise`
    (B, 2, H, W), the x and y displacement fields before smoothing, is scaled by `sigma`,
    blurred by a Gaussian of standard deviation `sigma` (kernel `int(6 * sigma) | 1`), and
    moves each output pixel's sampling point by `alpha` times the result."""
    b, h, w, _ = images.shape
    sigma = float(sigma)
    size = int(6 * sigma) | 1
    # The Gaussian is separable: a column pass then a row pass (zero padding) equal the 2D
    # kernel's one pass, at 2 * size instead of size**2 multiplications per pixel.
    k = torch.arange(size, dtype=images.dtype, device=images.device) - (size - 1) / 2
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    fields = noise.to(images.dtype) * sigma  # (B, 2, H, W)
    fields = F.conv2d(fields, k.view(1, 1, size, 1).expand(2, 1, size, 1), padding=(size // 2, 0),
                      groups=2)
    fields = F.conv2d(fields, k.view(1, 1, 1, size).expand(2, 1, 1, size), padding=(0, size // 2),
                      groups=2)
    xs, ys = _pixel_grid(h, w, images.device, images.dtype)
    x_in = xs + alpha * fields[:, 0]
    y_in = ys + alpha * fields[:, 1]
    return sample(images, x_in, y_in, interpolation, fill_mode, fill_value)
