"""`RandomGaussianBlur` and `RandomErasing`."""
import torch

from plexus.layers.preprocessing import image_ops as ops
from plexus.layers.preprocessing.image_base import ImageLayer, parse_factor
from plexus.layers.preprocessing.image_mixing import random_boxes


# Blur (B, H, W, C) images with a separable Gaussian of `kernel_size` (height, width) and
# `sigma` (x, y), zero padding (as Keras's `image.gaussian_blur`).
gaussian_blur = ops.gaussian_blur_2d


class RandomGaussianBlur(ImageLayer):
    """Blurs each image with a probability drawn in `factor`'s range, with a Gaussian of
    `kernel_size` and a standard deviation drawn in `sigma`'s range, during training."""

    _USE_BASE_FACTOR = False

    def __init__(self, factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255),
                 data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = parse_factor(factor, (0, 1), "factor", "RandomGaussianBlur")
        sizes = tuple(kernel_size) if isinstance(kernel_size, (tuple, list)) else \
            (kernel_size, kernel_size)
        if len(sizes) != 2 or any(int(k) % 2 == 0 for k in sizes):
            raise ValueError(f"RandomGaussianBlur: kernel_size must be an odd number or a pair "
                             f"of odd numbers; received {kernel_size!r}.")
        self.kernel_size = tuple(int(k) for k in sizes)
        self.sigma = parse_factor(sigma, (0, 1), "sigma", "RandomGaussianBlur")
        self.value_range = value_range

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, b = self._rng(seed), data.shape[0]
        probability = rng.uniform((b,), *self.factor, device=data.device)
        apply = rng.uniform((b,), device=data.device) < probability
        sigma = rng.uniform((2,), *self.sigma, device=data.device) + 1e-6
        return {"should_apply_blur": apply, "blur_factor": sigma}

    def transform_images(self, images, transformation=None, training=True):
        if not training or transformation is None:
            return images
        blurred = gaussian_blur(images, self.kernel_size,
                                transformation["blur_factor"].to(images.dtype))
        chosen = transformation["should_apply_blur"].view(-1, 1, 1, 1)
        out = torch.where(chosen, blurred, images)
        return torch.clamp(out, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "kernel_size": self.kernel_size,
                "sigma": self.sigma, "value_range": self.value_range, "seed": self.seed}


class RandomErasing(ImageLayer):
    """Replaces a random box of each image (with a probability drawn in `factor`'s range) by
    `fill_value` (a number or an RGB triple), or by Gaussian noise when it is None, during
    training. `scale` is the range of the box's sides as fractions (squared) of the image's."""

    _USE_BASE_FACTOR = False

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255),
                 seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = parse_factor(factor, (0, 1), "factor", "RandomErasing")
        self.scale = parse_factor(scale, (0, 1), "scale", "RandomErasing")
        if fill_value is not None and not (isinstance(fill_value, (int, float)) or (
                isinstance(fill_value, (tuple, list)) and len(fill_value) == 3)):
            raise ValueError(f"RandomErasing: fill_value must be None, a number or three "
                             f"numbers; received {fill_value!r}.")
        self.fill_value, self.value_range = fill_value, value_range

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, b = self._rng(seed), data.shape[0]
        ratios = torch.sqrt(rng.uniform((b, 2), *self.scale, device=data.device))
        masks, _ = random_boxes(rng, data, ratios[:, 0], ratios[:, 1])
        probability = rng.uniform((b,), *self.factor, device=data.device)
        apply = rng.uniform((b,), device=data.device) < probability
        if self.fill_value is None:
            fill = rng.normal(tuple(data.shape), device=data.device) * self.value_range[1]
        else:
            fill = torch.as_tensor(self.fill_value, dtype=data.dtype,
                                   device=data.device).expand(data.shape)
        fill = torch.clamp(fill, self.value_range[0], self.value_range[1])
        return {"apply_erasing": apply, "batch_masks": masks, "fill_value": fill}

    def transform_images(self, images, transformation=None, training=True):
        if not training or transformation is None:
            return images
        erased = torch.where(transformation["batch_masks"],
                             transformation["fill_value"].to(images.dtype), images)
        return torch.where(transformation["apply_erasing"].view(-1, 1, 1, 1), erased, images)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale,
                "fill_value": self.fill_value, "value_range": self.value_range,
                "seed": self.seed}
