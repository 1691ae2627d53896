"""Image resampling (`keras.ops.image`): coordinate sampling with fill modes, affine,
perspective and elastic warps, and `scale_and_translate` (also lanczos resizing)."""
import itertools
import math

import torch
import torch.nn.functional as F

from plexus.ops.common import float_tensor, t
from plexus.ops.image_common import _back, _float_work, _fmt, _nchw, _restore, _gauss1d
from plexus.ops.table import op

_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


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


def lanczos_resize(x, size, radius, antialias):
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
