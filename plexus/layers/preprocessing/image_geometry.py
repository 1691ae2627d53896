"""Geometric image layers: `Resizing`, `CenterCrop`, `RandomCrop`, `RandomFlip`,
`RandomRotation`, `RandomZoom`, `RandomTranslation`, `RandomShear`."""
import torch

from plexus.layers.preprocessing import image_ops as ops
from plexus.layers.preprocessing.image_base import ImageLayer, parse_factor


def _hw_axes(data_format):
    return (-2, -1) if data_format == "channels_first" else (-3, -2)


def _spatial_output_shape(layer, input_shape, height, width):
    shape = list(input_shape)
    h_axis, w_axis = _hw_axes(layer.data_format)
    shape[h_axis], shape[w_axis] = height, width
    return tuple(shape)


class Resizing(ImageLayer):
    """Resizes images to `(height, width)`.

    Args:
        height, width: the output size.
        interpolation: `"bilinear"`, `"nearest"`, `"bicubic"` or `"area"`.
        crop_to_aspect_ratio: crop the centre to the target aspect ratio first (no
            distortion).
        pad_to_aspect_ratio: pad (with `fill_value`) to the target aspect ratio first.
        antialias: smooth when downsampling (bilinear and bicubic).
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> Resizing(180, 180)(np.zeros((2, 300, 200, 3))).shape
        torch.Size([2, 180, 180, 3])
    """

    _USE_BASE_FACTOR = False

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0,
                 antialias=False, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Resizing: pass only one of crop_to_aspect_ratio and "
                             "pad_to_aspect_ratio.")
        if fill_mode != "constant":
            raise ValueError(f"Resizing: fill_mode must be 'constant'; received {fill_mode!r}.")
        self.height, self.width, self.interpolation = int(height), int(width), interpolation
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = crop_to_aspect_ratio, \
            pad_to_aspect_ratio
        self.fill_mode, self.fill_value, self.antialias = fill_mode, fill_value, bool(antialias)

    def transform_images(self, images, transformation=None, training=True):
        return ops.resize(images, self.height, self.width, self.interpolation, self.antialias,
                          self.crop_to_aspect_ratio, self.pad_to_aspect_ratio, self.fill_value)

    def transform_segmentation_masks(self, masks, transformation=None, training=True):
        return ops.resize(masks.float(), self.height, self.width, "nearest",
                          crop_to_aspect_ratio=self.crop_to_aspect_ratio,
                          pad_to_aspect_ratio=self.pad_to_aspect_ratio).to(masks.dtype)

    def call(self, data, training=None):
        return super().call(data, training=True)  # resizing is not an augmentation

    def compute_output_shape(self, input_shape):
        return _spatial_output_shape(self, input_shape, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias}


class CenterCrop(ImageLayer):
    """Crops the centre `(height, width)` of images; images smaller than that are first
    cropped to the target aspect ratio and resized (as Keras's `smart_resize`).

    Example:
        >>> CenterCrop(24, 24)(np.zeros((1, 32, 40, 3))).shape
        torch.Size([1, 24, 24, 3])
    """

    _USE_BASE_FACTOR = False

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.height, self.width = int(height), int(width)

    def transform_images(self, images, transformation=None, training=True):
        h, w = images.shape[1:3]
        dh, dw = h - self.height, w - self.width
        if dh >= 0 and dw >= 0:
            top, left = dh // 2, dw // 2
            return images[:, top:top + self.height, left:left + self.width, :]
        return ops.smart_resize(images, self.height, self.width)

    transform_segmentation_masks = transform_images

    def call(self, data, training=None):
        return super().call(data, training=True)

    def compute_output_shape(self, input_shape):
        return _spatial_output_shape(self, input_shape, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class RandomCrop(ImageLayer):
    """Crops a random `(height, width)` window in training; at inference (and for images
    smaller than the target) crops the centre to the target aspect ratio and resizes.

    Departure from Keras 3.15, whose layer returns inference inputs uncropped (a shape its own
    `compute_output_shape` does not promise): plexus does what the Keras docstring says.
    """

    _USE_BASE_FACTOR = False

    def __init__(self, height, width, seed=None, data_format=None, name=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, name=name, **kwargs)
        self.height, self.width = int(height), int(width)

    def get_random_transformation(self, data, training=True, seed=None):
        h, w = data.shape[1:3]
        if training and h > self.height and w > self.width:
            rng = self._rng(seed)
            top = int(rng.uniform((), 0, float(h - self.height + 1)))
            left = int(rng.uniform((), 0, float(w - self.width + 1)))
            return top, left
        ch, cw = ops.crop_box(h, w, self.height, self.width)
        return int((h - ch) / 2), int((w - cw) / 2)

    def transform_images(self, images, transformation, training=True):
        top, left = transformation
        h, w = images.shape[1:3]
        if training and h > self.height and w > self.width:
            return images[:, top:top + self.height, left:left + self.width, :]
        ch, cw = ops.crop_box(h, w, self.height, self.width)
        images = images[:, top:top + ch, left:left + cw, :]
        if (ch, cw) != (self.height, self.width):
            images = ops.resize(images, self.height, self.width)
        return images

    transform_segmentation_masks = transform_images

    def call(self, data, training=None):
        return super().call(data, training)

    def compute_output_shape(self, input_shape):
        return _spatial_output_shape(self, input_shape, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "seed": self.seed}


HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL = "horizontal", "vertical", "horizontal_and_vertical"


class RandomFlip(ImageLayer):
    """Flips half of the images at random during training.

    Args:
        mode: `"horizontal"` (left-right), `"vertical"` (up-down) or
            `"horizontal_and_vertical"` (both axes for the chosen images, as Keras).
        seed: an int for reproducible flips.
    """

    _USE_BASE_FACTOR = False

    def __init__(self, mode=HORIZONTAL_AND_VERTICAL, seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        if mode not in (HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL):
            raise ValueError(f"RandomFlip: mode must be 'horizontal', 'vertical' or "
                             f"'horizontal_and_vertical'; received {mode!r}.")
        self.mode = mode

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = tuple(data.shape)
        flips = self._rng(seed).uniform((shape[0], 1, 1, 1), device=data.device) <= 0.5
        return {"flips": flips, "input_shape": shape}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        flips = transformation["flips"].reshape(-1).to(images.device)
        dims = {HORIZONTAL: [2], VERTICAL: [1], HORIZONTAL_AND_VERTICAL: [1, 2]}[self.mode]
        if not bool(flips.any()):
            return images
        out = images.clone()
        out[flips] = torch.flip(images[flips], dims)  # only the chosen images are copied
        return out

    transform_segmentation_masks = transform_images

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "mode": self.mode}


class _AffineLayer(ImageLayer):
    """Layers that resample images through an affine transform."""

    _USE_BASE_FACTOR = False

    def _init_fill(self, fill_mode, interpolation, fill_value):
        name = type(self).__name__
        if fill_mode not in ops.FILL_MODES:
            raise NotImplementedError(f"{name}: unknown fill_mode {fill_mode!r}; expected one "
                                      f"of {ops.FILL_MODES}.")
        if interpolation not in ops.INTERPOLATIONS:
            raise NotImplementedError(f"{name}: unknown interpolation {interpolation!r}; "
                                      f"expected one of {ops.INTERPOLATIONS}.")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, \
            fill_value

    def _matrix(self, transformation, images):
        raise NotImplementedError

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        return ops.affine_transform(images, self._matrix(transformation, images),
                                    self.interpolation, self.fill_mode, self.fill_value)

    def transform_segmentation_masks(self, masks, transformation, training=True):
        if not training or transformation is None:
            return masks
        return ops.affine_transform(masks.float(), self._matrix(transformation, masks),
                                    "nearest", self.fill_mode, self.fill_value).to(masks.dtype)

    def _fill_config(self):
        return {"fill_mode": self.fill_mode, "fill_value": self.fill_value,
                "interpolation": self.interpolation, "seed": self.seed}


class RandomRotation(_AffineLayer):
    """Rotates images by a random angle during training.

    Args:
        factor: a fraction of a full turn: `0.1` draws angles in [-36°, 36°]; a pair
            `(-0.2, 0.3)` draws in [-72°, 108°].
        fill_mode: how points outside the image are filled: `"reflect"` (default),
            `"wrap"`, `"constant"` (`fill_value`) or `"nearest"`.
        interpolation: `"bilinear"` or `"nearest"`.
        seed: an int for reproducible rotations.
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = parse_factor(factor, (-1, 1), "factor", "RandomRotation")
        self._init_fill(fill_mode, interpolation, fill_value)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        b, h, w = data.shape[:3]
        angle = self._rng(seed).uniform((b,), self.factor[0] * 360.0, self.factor[1] * 360.0,
                                        device=data.device)
        zeros, ones = torch.zeros_like(angle), torch.ones_like(angle)
        matrix = ops.affine_matrix(0.5, 0.5, angle, zeros, zeros, ones, zeros, zeros, h, w)
        return {"angle": angle, "rotation_matrix": matrix, "image_height": h,
                "image_width": w, "batch_size": b}

    def _matrix(self, transformation, images):
        return transformation["rotation_matrix"]

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, **self._fill_config()}


def _parse_range_factor(factor, name, layer_name, open_low=False):
    """Zoom/translation factors: a number `f` means `[-f, f]`; a pair is sorted."""
    msg = (f"{layer_name}: {name} must be a number or a pair of numbers in "
           f"{'(' if open_low else '['}-1, 1]; received {name}={factor!r}.")

    def check(v):
        if v > 1.0 or v < -1.0 or (open_low and v <= -1.0):
            raise ValueError(msg)
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(msg)
        check(factor[0]), check(factor[1])
        return tuple(sorted(factor))
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        check(factor)
        return (-abs(factor), abs(factor))
    raise ValueError(msg)


class RandomZoom(_AffineLayer):
    """Zooms images in or out by a random amount during training.

    Args:
        height_factor: a fraction of the height: `0.2` zooms by a factor drawn in
            [0.8, 1.2] (positive values zoom out, negative in); or a pair `(low, high)`.
        width_factor: the same for the width; None keeps the aspect ratio.
        fill_mode, interpolation, seed, fill_value: as `RandomRotation`.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_lower, self.height_upper = _parse_range_factor(
            height_factor, "height_factor", "RandomZoom", open_low=True)
        if width_factor is not None:
            self.width_lower, self.width_upper = _parse_range_factor(
                width_factor, "width_factor", "RandomZoom", open_low=True)
        self._init_fill(fill_mode, interpolation, fill_value)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, shape = self._rng(seed), (data.shape[0], 1)
        height_zoom = rng.uniform(shape, 1.0 + self.height_lower, 1.0 + self.height_upper,
                                  device=data.device)
        width_zoom = height_zoom if self.width_factor is None else rng.uniform(
            shape, 1.0 + self.width_lower, 1.0 + self.width_upper, device=data.device)
        return {"height_zoom": height_zoom, "width_zoom": width_zoom,
                "input_shape": tuple(data.shape)}

    def _matrix(self, transformation, images):
        h, w = images.shape[1:3]
        zx = transformation["width_zoom"].reshape(-1, 1).float()
        zy = transformation["height_zoom"].reshape(-1, 1).float()
        zeros = torch.zeros_like(zx)
        return torch.cat([zx, zeros, (w - 1.0) / 2.0 * (1.0 - zx), zeros, zy,
                          (h - 1.0) / 2.0 * (1.0 - zy), zeros, zeros], dim=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor, **self._fill_config()}


class RandomTranslation(_AffineLayer):
    """Shifts images by a random fraction of their size during training.

    Args:
        height_factor: `0.2` shifts up or down by up to 20% of the height; a pair
            `(low, high)` sets the range (negative values shift up).
        width_factor: the same for left (negative) and right shifts.
        fill_mode, interpolation, seed, fill_value: as `RandomRotation`.
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_lower, self.height_upper = _parse_range_factor(
            height_factor, "height_factor", "RandomTranslation")
        self.width_lower, self.width_upper = _parse_range_factor(
            width_factor, "width_factor", "RandomTranslation")
        self._init_fill(fill_mode, interpolation, fill_value)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, (b, h, w) = self._rng(seed), data.shape[:3]
        dy = rng.uniform((b, 1), self.height_lower, self.height_upper, device=data.device) * h
        dx = rng.uniform((b, 1), self.width_lower, self.width_upper, device=data.device) * w
        return {"translations": torch.cat([dx, dy], dim=1).float(),
                "input_shape": tuple(data.shape)}

    def _matrix(self, transformation, images):
        t = transformation["translations"].float()
        ones, zeros = torch.ones_like(t[:, :1]), torch.zeros_like(t[:, :1])
        return torch.cat([ones, zeros, -t[:, 0:1], zeros, ones, -t[:, 1:], zeros, zeros], dim=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor, **self._fill_config()}


class RandomShear(_AffineLayer):
    """Shears images along x and y by random amounts during training.

    Args:
        x_factor: the largest horizontal shear (a number in [0, 1] or a pair); the sign is
            drawn at random.
        y_factor: the same vertically.
        interpolation, fill_mode, fill_value, seed: as `RandomRotation`.
    """

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear",
                 fill_mode="reflect", fill_value=0.0, data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.x_factor = parse_factor(x_factor, (0, 1), "x_factor", "RandomShear", False)
        self.y_factor = parse_factor(y_factor, (0, 1), "y_factor", "RandomShear", False)
        self._init_fill(fill_mode, interpolation, fill_value)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, b = self._rng(seed), data.shape[0]
        invert = rng.uniform((b, 1), device=data.device)
        invert = torch.where(invert > 0.5, -torch.ones_like(invert), torch.ones_like(invert))
        shear_y = rng.uniform((b, 1), *self.y_factor, device=data.device)
        shear_x = rng.uniform((b, 1), *self.x_factor, device=data.device)
        return {"shear_factor": torch.cat([shear_x, shear_y], dim=1) * invert,
                "input_shape": tuple(data.shape)}

    def _matrix(self, transformation, images):
        s = transformation["shear_factor"].float()
        ones, zeros = torch.ones_like(s[:, 0]), torch.zeros_like(s[:, 0])
        return torch.stack([ones, s[:, 0], zeros, s[:, 1], ones, zeros, zeros, zeros], dim=1)

    def get_config(self):
        return {**super().get_config(), "x_factor": self.x_factor, "y_factor": self.y_factor,
                **self._fill_config()}
