"""Colour image layers: `RandomContrast`, `RandomBrightness`, `RandomGrayscale`,
`RandomColorDegeneration`, `RandomSaturation`, `RandomHue`, `RandomColorJitter`,
`RandomInvert`, `RandomPosterization`, `RandomSharpness`, `Solarization`, `AutoContrast`,
`Equalization`. `value_range` is the range of the input pixels (`(0, 255)` by default)."""
import torch
import torch.nn.functional as F

from plexus.layers.preprocessing import image_ops as ops
from plexus.layers.preprocessing.image_base import (
    ImageLayer, parse_factor, parse_value_range,
)

_EPSILON = 1e-7


def _batch(data):
    return data.shape[0]


class _ColorLayer(ImageLayer):
    """A colour layer with a `value_range` and a seed (config written as Keras does)."""

    def __init__(self, factor=None, value_range=(0, 255), seed=None, data_format=None,
                 sort_range=True, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)
        self.value_range = parse_value_range(value_range, type(self).__name__) if sort_range \
            else value_range

    def get_config(self):
        config = {**super().get_config(), "value_range": self.value_range, "seed": self.seed}
        if self._USE_BASE_FACTOR:
            config["factor"] = self.factor
        return config


class RandomContrast(_ColorLayer):
    """Scales each image's deviation from its mean by a random factor in
    `[1 - lower, 1 + upper]` during training, then clips to `value_range`."""

    _FACTOR_BOUNDS = (0, 1)

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor=factor, value_range=value_range, seed=seed, sort_range=False,
                         **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        shape = (_batch(data), 1, 1, 1)
        if not training:
            return {"contrast_factor": torch.zeros(shape, device=data.device)}
        return {"contrast_factor": self._rng(seed).uniform(
            shape, 1.0 - self.factor[0], 1.0 + self.factor[1], device=data.device)}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        factor = transformation["contrast_factor"].to(images.dtype)
        mean = images.mean(dim=(1, 2), keepdim=True)
        out = (images - mean) * factor + mean
        return torch.clamp(out, self.value_range[0], self.value_range[1])


class RandomBrightness(_ColorLayer):
    """Adds a random offset, a fraction of `value_range` in `factor`'s range, during
    training: `factor=0.2` shifts by up to ±20% of the range."""

    def get_random_transformation(self, data, training=True, seed=None):
        shape = (_batch(data), 1, 1, 1)
        if not training:
            return {"rgb_delta": torch.zeros(shape, device=data.device)}
        delta = self._rng(seed).uniform(shape, *self.factor, device=data.device)
        return {"rgb_delta": delta * (self.value_range[1] - self.value_range[0])}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        out = images + transformation["rgb_delta"].to(images.dtype)
        return torch.clamp(out, self.value_range[0], self.value_range[1])


class RandomGrayscale(ImageLayer):
    """Turns a random fraction `factor` of the images grey (the grey value repeated in every
    channel), during training."""

    _USE_BASE_FACTOR = False

    def __init__(self, factor=0.5, data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        if not 0 <= factor <= 1:
            raise ValueError(f"RandomGrayscale: factor must be in [0, 1]; received {factor}.")
        self.factor = factor

    def get_random_transformation(self, data, training=True, seed=None):
        values = self._rng(seed).uniform((_batch(data),), device=data.device)
        return (values < self.factor).view(-1, 1, 1, 1)

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        return torch.where(transformation, ops.rgb_to_grayscale(images), images)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomColorDegeneration(_ColorLayer):
    """Blends each image towards its grey version by a random factor during training."""

    def get_random_transformation(self, data, training=True, seed=None):
        return {"factor": self._rng(seed).uniform((_batch(data), 1, 1, 1), *self.factor,
                                                  device=data.device)}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        factor = transformation["factor"].to(images.dtype)
        out = images + factor * (ops.rgb_to_grayscale(images) - images)
        return torch.clamp(out, self.value_range[0], self.value_range[1])


class RandomSaturation(_ColorLayer):
    """Scales saturation by a random factor during training (0 gives grey images)."""

    _FACTOR_BOUNDS = (0, 1)

    def get_random_transformation(self, data, training=True, seed=None):
        f = self._rng(seed).uniform((_batch(data),), *self.factor, device=data.device)
        return {"factor": f / (1 - f + _EPSILON)}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        factor = transformation["factor"].to(images.dtype).view(-1, 1, 1)
        hsv = ops.rgb_to_hsv(images)
        s = torch.clamp(hsv[..., 1] * factor, self.value_range[0], self.value_range[1])
        return ops.hsv_to_rgb(torch.stack([hsv[..., 0], s, hsv[..., 2]], dim=-1))


class RandomHue(_ColorLayer):
    """Shifts hue by a random amount (up to half a turn for `factor=1`) during training."""

    _FACTOR_BOUNDS = (0, 1)

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(factor=factor, value_range=value_range, seed=seed,
                         data_format=data_format, sort_range=False, **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        rng, b = self._rng(seed), _batch(data)
        invert = rng.uniform((b,), device=data.device)
        invert = torch.where(invert > 0.5, -torch.ones_like(invert), torch.ones_like(invert))
        factor = rng.uniform((b,), *self.factor, device=data.device)
        return {"factor": invert * factor * 0.5}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        images = ops.value_range_to(images, self.value_range, (0, 1))
        hsv = ops.rgb_to_hsv(images)
        h = hsv[..., 0] + transformation["factor"].to(images.dtype).view(-1, 1, 1)
        h = torch.where(h > 1.0, h - 1.0, h)
        h = torch.where(h < 0.0, h + 1.0, h)
        rgb = torch.clamp(ops.hsv_to_rgb(torch.stack([h, hsv[..., 1], hsv[..., 2]], -1)), 0, 1)
        return ops.value_range_to(rgb, (0, 1), self.value_range)


class RandomColorJitter(ImageLayer):
    """Random brightness, contrast, saturation and hue in turn, each given by its factor
    (None skips it), during training."""

    _USE_BASE_FACTOR = False

    def __init__(self, value_range=(0, 255), brightness_factor=None, contrast_factor=None,
                 saturation_factor=None, hue_factor=None, seed=None, data_format=None,
                 **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.value_range = value_range
        self.brightness_factor, self.contrast_factor = brightness_factor, contrast_factor
        self.saturation_factor, self.hue_factor = saturation_factor, hue_factor
        parts = (("random_brightness", RandomBrightness, brightness_factor),
                 ("random_contrast", RandomContrast, contrast_factor),
                 ("random_saturation", RandomSaturation, saturation_factor),
                 ("random_hue", RandomHue, hue_factor))
        self._parts = []
        for attr, cls, factor in parts:
            layer = None if factor is None else cls(factor=factor, value_range=value_range,
                                                    seed=seed)
            setattr(self, attr, layer)
            if layer is not None:
                self._parts.append(layer)

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        for layer in self._parts:
            t = layer.get_random_transformation(images, seed=self.generator)
            images = layer.transform_images(images, t)
        return images

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "brightness_factor": self.brightness_factor,
                "contrast_factor": self.contrast_factor,
                "saturation_factor": self.saturation_factor, "hue_factor": self.hue_factor,
                "seed": self.seed}


class RandomInvert(_ColorLayer):
    """Inverts (`high - x`) each image with a probability drawn in `factor`'s range."""

    _USE_BASE_FACTOR = False

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, data_format=None,
                 **kwargs):
        super().__init__(value_range=value_range, seed=seed, data_format=data_format,
                         sort_range=False, **kwargs)
        self.factor = parse_factor(factor, (0, 1), "factor", "RandomInvert")

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, b = self._rng(seed), _batch(data)
        probability = rng.uniform((b,), *self.factor, device=data.device)
        return {"apply_inversion": rng.uniform((b,), device=data.device) < probability}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        chosen = transformation["apply_inversion"].view(-1, 1, 1, 1)
        return torch.where(chosen, self.value_range[1] - images, images)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomPosterization(_ColorLayer):
    """Keeps only the `bits` most significant bits of each 8-bit value, `bits` drawn in
    `[1, factor]` (or `factor`'s pair range) during training."""

    _USE_BASE_FACTOR = False
    _MAX_FACTOR = 8

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(value_range=value_range, seed=seed, data_format=data_format,
                         **kwargs)
        self.factor = parse_factor(factor, (1, 8), "factor", "RandomPosterization", False)

    def get_random_transformation(self, data, training=True, seed=None):
        b = _batch(data)
        low, high = int(self.factor[0]), int(self.factor[1])
        if low != high:
            bits = self._rng(seed).randint((b,), low, high, device=data.device)
        else:
            bits = torch.full((b,), low, dtype=torch.int64, device=data.device)
        return {"shift_factor": (self._MAX_FACTOR - bits).to(torch.uint8)}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        shift = transformation["shift_factor"].to(torch.uint8).view(-1, 1, 1, 1)
        x = ops.value_range_to(images, self.value_range, (0, 255)).to(torch.uint8)
        x = torch.bitwise_left_shift(torch.bitwise_right_shift(x, shift), shift)
        return ops.value_range_to(x.to(images.dtype), (0, 255), self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomSharpness(_ColorLayer):
    """Sharpens or blurs each image by a random factor during training (0.5 leaves it)."""

    _FACTOR_BOUNDS = (0, 1)
    _USE_BASE_FACTOR = True

    def get_random_transformation(self, data, training=True, seed=None):
        return {"factor": self._rng(seed).uniform((_batch(data),), *self.factor,
                                                  device=data.device)}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        factor = (transformation["factor"] * 2).to(images.dtype).view(-1, 1, 1, 1)
        c = images.shape[-1]
        a, b = 1.0 / 13.0, 5.0 / 13.0
        kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], dtype=images.dtype,
                              device=images.device).expand(c, 1, 3, 3)
        smooth = F.conv2d(images.permute(0, 3, 1, 2), kernel, padding=1, groups=c)
        smooth = smooth.permute(0, 2, 3, 1)
        out = images + (1.0 - factor) * (smooth - images)
        return torch.clamp(out, self.value_range[0], self.value_range[1])


class Solarization(_ColorLayer):
    """Inverts the pixels above a random threshold after adding a random offset, during
    training (`addition_factor`, `threshold_factor`: fractions of 255 in [0, 1])."""

    _USE_BASE_FACTOR = False

    def __init__(self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255),
                 seed=None, **kwargs):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.addition_factor = parse_factor(addition_factor, (0, 1), "addition_factor",
                                            "Solarization", False)
        self.threshold_factor = parse_factor(threshold_factor, (0, 1), "threshold_factor",
                                             "Solarization", False)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, shape = self._rng(seed), (_batch(data), 1, 1, 1)
        return {"additions": rng.uniform(shape, self.addition_factor[0],
                                         self.addition_factor[1] * 255, device=data.device),
                "thresholds": rng.uniform(shape, self.threshold_factor[0],
                                          self.threshold_factor[1] * 255, device=data.device)}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        x = ops.value_range_to(images, self.value_range, (0, 255))
        x = torch.clamp(x + transformation["additions"].to(x.dtype), 0, 255)
        x = torch.where(x < transformation["thresholds"].to(x.dtype), x, 255 - x)
        return ops.value_range_to(x, (0, 255), self.value_range)

    def get_config(self):
        return {**super().get_config(), "addition_factor": self.addition_factor,
                "threshold_factor": self.threshold_factor}


class AutoContrast(_ColorLayer):
    """Stretches each image's values per channel to fill `value_range` (always, not an
    augmentation)."""

    _USE_BASE_FACTOR = False

    def __init__(self, value_range=(0, 255), **kwargs):
        super().__init__(value_range=value_range, **kwargs)

    def transform_images(self, images, transformation=None, training=True):
        x = ops.value_range_to(images, self.value_range, (0, 255))
        low = x.amin(dim=(1, 2), keepdim=True)
        high = x.amax(dim=(1, 2), keepdim=True)
        scale = 255.0 / (high - low)
        out = torch.clamp(x * scale - low * scale, 0.0, 255.0)
        out = ops.value_range_to(out, (0, 255), self.value_range)
        return torch.where(torch.isnan(out), images, out)

    def call(self, data, training=None):
        return super().call(data, training=True)

    def get_config(self):
        config = super().get_config()
        config.pop("seed", None)
        return config


class Equalization(_ColorLayer):
    """Equalizes the histogram of each channel (one histogram over the whole batch, as
    Keras) to spread values over `value_range`, during training."""

    _USE_BASE_FACTOR = False

    def __init__(self, value_range=(0, 255), bins=256, data_format=None, **kwargs):
        super().__init__(value_range=value_range, data_format=data_format, **kwargs)
        self.bins = bins

    def _equalize(self, channel):
        vr = tuple(self.value_range)
        if vr != (0, 255):
            channel = ops.value_range_to(channel, vr, (0, 255))
        idx = torch.clamp(((channel.float()) * (self.bins - 1) / 255.0).to(torch.int32), 0,
                          self.bins - 1)
        hist = torch.bincount(idx.reshape(-1).long(), minlength=self.bins)
        if int((hist != 0).sum()) <= 1:
            out = channel
        else:
            cdf = torch.cumsum(hist, 0)
            cdf_min = cdf[torch.nonzero(cdf)[0][0]]
            denom = cdf[-1] - cdf_min
            denom = torch.where(denom == 0, torch.ones_like(denom), denom)
            table = torch.clamp(torch.round((cdf - cdf_min) * 255 / denom), 0, 255)
            index = torch.clamp(channel / 255.0 * (self.bins - 1), 0, self.bins - 1)
            out = table[index.to(torch.int32).long()].to(channel.dtype)
        return ops.value_range_to(out, (0, 255), vr) if vr != (0, 255) else out

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        return torch.stack([self._equalize(images[..., i]) for i in range(images.shape[-1])],
                           dim=-1)

    def get_config(self):
        config = {**super().get_config(), "bins": self.bins}
        config.pop("seed", None)
        return config
