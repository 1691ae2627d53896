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


class AugMix(ImageLayer):
    """AugMix (Hendrycks et al., 2020) during training: `num_chains` chains of up to
    `chain_depth` augmentations each (every step picks one of the augmentations below, or
    none, at random), the chains' outputs blended with Dirichlet(`alpha`) weights, and the
    blend mixed with the original images with a Beta(`alpha`, `alpha`) weight; the result is
    clipped to `value_range`. The same chains apply to every image of a batch.

    The augmentations: shear, translation, rotation, posterization, solarization,
    auto-contrast and equalization, plus (with `all_ops=True`) brightness, colour
    degeneration, contrast and sharpness, each at strength `factor`.

    Args:
        value_range: the range of the input pixels, `(0, 255)` by default.
        num_chains: how many chains are mixed.
        chain_depth: the most augmentations in a chain.
        factor: the strength of the augmentations, a number or a pair in [0, 1].
        alpha: the parameter of the Dirichlet and Beta distributions.
        all_ops: also use brightness, colour degeneration, contrast and sharpness.
        interpolation: for the geometric augmentations, `"bilinear"` or `"nearest"`.
        seed: an int for reproducible choices and strengths.
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> layer = AugMix(seed=0)
        >>> layer(np.random.rand(2, 32, 32, 3) * 255).shape
        torch.Size([2, 32, 32, 3])
    """

    _USE_BASE_FACTOR = False
    _BASE_LAYERS = ["random_shear", "random_translation", "random_rotation",
                    "random_posterization", "solarization", "auto_contrast", "equalization"]
    _EXTRA_LAYERS = ["random_brightness", "random_color_degeneration", "random_contrast",
                     "random_sharpness"]

    def __init__(self, value_range=(0, 255), num_chains=3, chain_depth=3, factor=0.3,
                 alpha=1.0, all_ops=True, interpolation="bilinear", seed=None,
                 data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        for arg, value in (("num_chains", num_chains), ("chain_depth", chain_depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AugMix: {arg} must be a positive integer; received "
                                 f"{arg}={value!r}.")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ValueError(f"AugMix: alpha must be a positive number; received "
                             f"alpha={alpha!r}.")
        if interpolation not in ("nearest", "bilinear"):
            raise NotImplementedError(f"AugMix: unknown interpolation {interpolation!r}; "
                                      "expected 'nearest' or 'bilinear'.")
        self.value_range, self.num_chains, self.chain_depth = value_range, num_chains, \
            chain_depth
        self.factor = parse_factor(factor, (0, 1), "factor", "AugMix")
        self.alpha, self.all_ops, self.interpolation = alpha, bool(all_ops), interpolation
        self._augment_layers = self._BASE_LAYERS + (self._EXTRA_LAYERS if self.all_ops else [])
        f, vr = self.factor, value_range
        self.random_shear = geometry.RandomShear(f, f, interpolation=interpolation, seed=seed)
        self.random_translation = geometry.RandomTranslation(
            f, f, interpolation=interpolation, seed=seed)
        self.random_rotation = geometry.RandomRotation(f, interpolation=interpolation,
                                                       seed=seed)
        self.solarization = color.Solarization(f, f, value_range=vr, seed=seed)
        self.random_posterization = color.RandomPosterization(
            max(1, int(8 * f[1])), value_range=vr, seed=seed)
        self.auto_contrast = color.AutoContrast(value_range=vr)
        self.equalization = color.Equalization(value_range=vr)
        if self.all_ops:
            self.random_brightness = color.RandomBrightness(f, value_range=vr, seed=seed)
            self.random_color_degeneration = color.RandomColorDegeneration(
                f, value_range=vr, seed=seed)
            self.random_contrast = color.RandomContrast(f, value_range=vr, seed=seed)
            self.random_sharpness = color.RandomSharpness(f, value_range=vr, seed=seed)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng = self._rng(seed)
        # torch has no seeded Dirichlet or Beta sampler: NumPy draws them from a seed taken
        # from the layer's stream.
        draws = np.random.default_rng(int(rng.randint((), 0, 2 ** 31 - 1)))
        weights = draws.dirichlet([self.alpha] * self.num_chains).astype("float32")
        mix = np.float32(draws.beta(self.alpha, self.alpha))
        choices = rng.randint((self.num_chains, self.chain_depth), 0,
                              len(self._augment_layers) + 1).tolist()
        chains = []
        for chain in choices:
            steps = []
            for i in chain:
                if i == len(self._augment_layers):
                    continue  # this step applies nothing
                name = self._augment_layers[i]
                steps.append({"layer_name": name, "transformation":
                              getattr(self, name).get_random_transformation(data, seed=rng)})
            chains.append(steps)
        return {"chain_mixing_weights": torch.from_numpy(weights).to(data.device),
                "weight_sample": torch.tensor(mix, device=data.device),
                "chain_transforms": chains}

    def _mix(self, images, transformation, method):
        weights = torch.as_tensor(transformation["chain_mixing_weights"]).to(
            images.device, torch.float32)
        mix = torch.as_tensor(transformation["weight_sample"]).to(images.device, torch.float32)
        blended = torch.zeros_like(images, dtype=torch.float32)
        for i, chain in enumerate(transformation["chain_transforms"]):
            x = images
            for step in chain:
                x = getattr(getattr(self, step["layer_name"]), method)(
                    x, step["transformation"])
            blended = blended + x.float() * weights[i]
        return mix * images.float() + (1 - mix) * blended

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        out = self._mix(images, transformation, "transform_images")
        return torch.clamp(out, self.value_range[0], self.value_range[1]).to(images.dtype)

    def transform_segmentation_masks(self, masks, transformation, training=True):
        if not training or transformation is None:
            return masks
        return self._mix(masks, transformation, "transform_segmentation_masks")

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "num_chains": self.num_chains, "chain_depth": self.chain_depth,
                "factor": self.factor, "alpha": self.alpha, "all_ops": self.all_ops,
                "interpolation": self.interpolation, "seed": self.seed}
