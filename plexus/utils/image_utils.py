"""`load_img`, `img_to_array`, `array_to_img`, `save_img`, `smart_resize` (Pillow images)."""
import io
import os
import pathlib

import numpy as np
import torch

_PIL_INTERPOLATION = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        raise ImportError("Image utilities need Pillow: pip install pillow") from None
    return Image


def _channels_last(data_format):
    from plexus.layers.preprocessing.image_base import image_data_format
    return image_data_format(data_format) == "channels_last"


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest",
             keep_aspect_ratio=False):
    """Load an image file (or file-like object, or bytes) as a Pillow image.

    Args:
        path: a path, a file-like object or the file's bytes.
        color_mode: `"rgb"`, `"rgba"` or `"grayscale"`.
        target_size: `(height, width)` to resize to, or None.
        interpolation: Pillow's resampling: `"nearest"`, `"bilinear"`, `"bicubic"`,
            `"hamming"`, `"box"`, `"lanczos"`.
        keep_aspect_ratio: crop the centre to the target aspect ratio before resizing.
    """
    Image = _pil()
    if isinstance(path, bytes):
        path = io.BytesIO(path)
    elif isinstance(path, pathlib.Path):
        path = str(path)
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow raises several kinds
        raise ValueError(f"Could not decode image {path!r}: {e}. Only image files that "
                         "Pillow reads (JPEG, PNG, BMP, GIF, ...) are supported.") from e
    modes = {"grayscale": ("L", "I;16", "I"), "rgba": ("RGBA",), "rgb": ("RGB",)}
    if color_mode not in modes:
        raise ValueError(f"color_mode must be 'grayscale', 'rgb' or 'rgba'; received "
                         f"{color_mode!r}.")
    if img.mode not in modes[color_mode]:
        img = img.convert({"grayscale": "L", "rgba": "RGBA", "rgb": "RGB"}[color_mode])
    if target_size is not None:
        height, width = target_size
        if img.size != (width, height):
            if interpolation not in _PIL_INTERPOLATION:
                raise ValueError(f"interpolation must be one of {_PIL_INTERPOLATION}; "
                                 f"received {interpolation!r}.")
            resample = getattr(Image, interpolation.upper(), None) or getattr(
                Image.Resampling, interpolation.upper())
            if keep_aspect_ratio:
                w, h = img.size
                crop_w, crop_h = min(w, int(h * width / height)), min(h, int(w * height / width))
                left, top = (w - crop_w) // 2, (h - crop_h) // 2
                img = img.crop((left, top, left + crop_w, top + crop_h))
            img = img.resize((width, height), resample)
    return img


def img_to_array(img, data_format=None, dtype=None):
    """A Pillow image as a NumPy array `(height, width, channels)` (float32 by default)."""
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 2:
        x = x[..., None]
    elif x.ndim != 3:
        raise ValueError(f"Unsupported image shape {x.shape}.")
    return x if _channels_last(data_format) else x.transpose(2, 0, 1)


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A `(height, width, channels)` array (or tensor) as a Pillow image; with `scale`,
    values are stretched to [0, 255]."""
    Image = _pil()
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=dtype or "float32")
    if x.ndim != 3:
        raise ValueError(f"array_to_img expects an image of rank 3; received shape {x.shape}.")
    if not _channels_last(data_format):
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        peak = np.max(x)
        if peak != 0:
            x = x / peak
        x = x * 255
    channels = x.shape[2]
    if channels == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported number of channels: {channels}.")


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Save an image array (or tensor) to a file; the format follows the extension."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and (file_format == "jpeg" or str(path).lower().endswith(
            (".jpg", ".jpeg"))):
        img = img.convert("RGB")  # JPEG has no alpha channel
    img.save(os.fspath(path), format=file_format, **kwargs)


def smart_resize(x, size, interpolation="bilinear", data_format="channels_last"):
    """Resize an image (or batch) to `size` without distortion: crop the centre to the target
    aspect ratio, then resize."""
    from plexus.layers.preprocessing import image_ops
    is_numpy = not isinstance(x, torch.Tensor)
    t = torch.as_tensor(np.asarray(x, dtype="float32")) if is_numpy else x.float()
    single = t.ndim == 3
    if single:
        t = t.unsqueeze(0)
    if data_format == "channels_first":
        t = t.permute(0, 2, 3, 1)
    out = image_ops.smart_resize(t, int(size[0]), int(size[1]), interpolation)
    if data_format == "channels_first":
        out = out.permute(0, 3, 1, 2)
    out = out[0] if single else out
    return out.numpy() if is_numpy else out
