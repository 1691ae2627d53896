"""Layers that mix images (and their labels): `MixUp`, `CutMix`; and `RandAugment`, which
applies a few augmentations drawn at random."""
import numpy as np
import torch

from plexus.layers.preprocessing import image_color as color
from plexus.layers.preprocessing import image_geometry as geometry
from plexus.layers.preprocessing.image_base import ImageLayer, parse_factor


def _beta(rng, size, a, b, device):
    """Beta(a, b) samples drawn from the layer's stream (NumPy draws them from a seed taken
    from it, since torch's beta sampler has no generator argument)."""
    seed = int(rng.randint((), 0, 2 ** 31 - 1))
    out = np.random.default_rng(seed).beta(a, b, size=size).astype("float32")
    return torch.from_numpy(out).to(device)


def _mix_labels(labels, transformation):
    """Labels blended like their images: `w * labels + (1 - w) * labels[permutation]`."""
    w = transformation["mix_weight"].view(-1, 1)
    other = labels.index_select(0, transformation["permutation_order"].long())
    return w * labels + (1.0 - w) * other


def random_boxes(rng, data, ratio_w, ratio_h):
    """Boxes of `ratio_w` x `ratio_h` of each image's size at random places: a boolean mask
    shaped like `data` (B, H, W, C) and the corners `(x0, x1, y0, y1)`."""
    b, h, w = data.shape[:3]

    def bounds(length, ratio):
        size = ratio * length
        start = rng.uniform((b,), device=data.device) * (length - size)
        return start, start + size
    x0, x1 = bounds(w, ratio_w)
    y0, y1 = bounds(h, ratio_h)
    ys = torch.arange(h, dtype=data.dtype, device=data.device).view(1, h, 1, 1)
    xs = torch.arange(w, dtype=data.dtype, device=data.device).view(1, 1, w, 1)
    v = lambda t: t.view(-1, 1, 1, 1)  # noqa: E731
    masks = (xs >= v(x0)) & (xs < v(x1)) & (ys >= v(y0)) & (ys < v(y1))
    return masks.expand(-1, -1, -1, data.shape[-1]), (x0, x1, y0, y1)


class MixUp(ImageLayer):
    """MixUp during training: each image (and label) is blended with another of the batch,
    `w * x + (1 - w) * x_other`, `w ~ Beta(alpha, alpha)`. Call it on
    `{"images": ..., "labels": ...}` (one-hot labels) to mix the labels too.

    Args:
        alpha: the Beta distribution's parameter.
        seed: an int for reproducible mixing.
    """

    _USE_BASE_FACTOR = False

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.alpha = alpha

    def get_random_transformation(self, data, training=True, seed=None):
        rng, b = self._rng(seed), data.shape[0]
        order = torch.randperm(b, generator=rng.generator(), device="cpu").to(data.device)
        return {"mix_weight": _beta(rng, b, self.alpha, self.alpha, data.device),
                "permutation_order": order}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        w = transformation["mix_weight"].to(images.dtype).view(-1, 1, 1, 1)
        other = images.index_select(0, transformation["permutation_order"].long())
        return w * images + (1.0 - w) * other

    def transform_labels(self, labels, transformation, training=True):
        return _mix_labels(labels, transformation) if training and transformation else labels

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "seed": self.seed}


class CutMix(ImageLayer):
    """CutMix during training: a random box of each image is replaced by the same box of
    another image of the batch; labels (given as `{"images", "labels"}`) are mixed by the
    box's area.

    Args:
        factor: the range of the Beta distribution's parameter (a number or a pair in [0, 1]).
        seed: an int for reproducible mixing.
    """

    _USE_BASE_FACTOR = False

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = parse_factor(factor, (0, 1), "factor", "CutMix")

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, (b, h, w) = self._rng(seed), data.shape[:3]
        alpha = float(rng.uniform((), *self.factor)) + 1e-6
        ratio = torch.sqrt(1.0 - _beta(rng, b, alpha, alpha, data.device))
        masks, (x0, x1, y0, y1) = random_boxes(rng, data, ratio, ratio)
        order = torch.randperm(b, generator=rng.generator(), device="cpu").to(data.device)
        return {"permutation_order": order, "batch_masks": masks,
                "mix_weight": 1.0 - (x1 - x0) * (y1 - y0) / (w * h)}

    def transform_images(self, images, transformation=None, training=True):
        if not training or transformation is None:
            return images
        other = images.index_select(0, transformation["permutation_order"].long())
        return torch.where(transformation["batch_masks"], other, images)

    def transform_labels(self, labels, transformation, training=True):
        return _mix_labels(labels, transformation) if training and transformation else labels

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


class RandAugment(ImageLayer):
    """RandAugment: `num_ops` augmentations, each picked at random per batch among shear,
    translation, rotation, brightness, colour degeneration, contrast, sharpness,
    posterization, solarization, auto-contrast and equalization, at strength `factor`.

    Args:
        value_range: the range of the input pixels.
        num_ops: how many augmentations to apply in turn.
        factor: the strength, a number or a pair in [0, 1].
        interpolation: for the geometric augmentations.
        seed: an int for reproducible choices.
    """

    _USE_BASE_FACTOR = False
    _AUGMENT_LAYERS = ["random_shear", "random_translation", "random_rotation",
                       "random_brightness", "random_color_degeneration", "random_contrast",
                       "random_sharpness", "random_posterization", "solarization",
                       "auto_contrast", "equalization"]

    def __init__(self, value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear",
                 seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.value_range, self.num_ops, self.interpolation = value_range, num_ops, interpolation
        self.factor = parse_factor(factor, (0, 1), "factor", "RandAugment")
        f, vr = self.factor, value_range
        self.random_shear = geometry.RandomShear(f, f, interpolation=interpolation, seed=seed)
        self.random_translation = geometry.RandomTranslation(f, f, interpolation=interpolation,
                                                             seed=seed)
        self.random_rotation = geometry.RandomRotation(f, interpolation=interpolation,
                                                       seed=seed)
        self.random_brightness = color.RandomBrightness(f, value_range=vr, seed=seed)
        self.random_color_degeneration = color.RandomColorDegeneration(f, value_range=vr,
                                                                       seed=seed)
        self.random_contrast = color.RandomContrast(f, value_range=vr, seed=seed)
        self.random_sharpness = color.RandomSharpness(f, value_range=vr, seed=seed)
        self.solarization = color.Solarization(f, f, value_range=vr, seed=seed)
        self.random_posterization = color.RandomPosterization(max(1, int(8 * f[1])),
                                                              value_range=vr, seed=seed)
        self.auto_contrast = color.AutoContrast(value_range=vr)
        self.equalization = color.Equalization(value_range=vr)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng = self._rng(seed)
        idx = rng.randint((self.num_ops,), 0, len(self._AUGMENT_LAYERS))
        transforms = {name: getattr(self, name).get_random_transformation(data, seed=rng)
                      for name in self._AUGMENT_LAYERS}
        return {"transforms": transforms, "layer_idxes": idx}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        # Only the chosen augmentation runs (Keras computes all of them and selects one).
        for i in transformation["layer_idxes"].tolist():
            name = self._AUGMENT_LAYERS[i]
            images = getattr(self, name).transform_images(
                images, transformation["transforms"][name])
        return images

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "num_ops": self.num_ops, "factor": self.factor,
                "interpolation": self.interpolation, "seed": self.seed}
