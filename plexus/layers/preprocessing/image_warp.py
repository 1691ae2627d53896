"""Layers that warp images through non-affine maps: `RandomPerspective` (a projective
transform that moves the image's corners) and `RandomElasticTransform` (a smooth random
displacement field)."""
import torch

from plexus.layers.preprocessing import image_ops as ops
from plexus.layers.preprocessing.image_base import ImageLayer, parse_factor


def _check_interpolation(layer, interpolation):
    if interpolation not in ops.INTERPOLATIONS:
        raise NotImplementedError(
            f"{type(layer).__name__}: unknown interpolation {interpolation!r}; expected one of "
            f"{ops.INTERPOLATIONS}.")


def _apply_draw(rng, factor, b, device):
    """Which images of a batch of `b` are transformed: each with a probability drawn in
    `factor`'s range."""
    probability = rng.uniform((b,), *factor, device=device)
    return rng.uniform((b,), device=device) < probability


class RandomPerspective(ImageLayer):
    """Distorts the perspective of images during training by moving their corners.

    Each image is transformed with a probability drawn in `factor`'s range; the corners
    `(width - 1, 0)`, `(0, height - 1)` and `(width - 1, height - 1)` move by a random fraction
    in `[-scale / 2, scale / 2]` of their coordinates (as Keras: the corner at the origin stays),
    and the image is resampled through the projective map between the two quadrilaterals.
    Points from outside the image read `fill_value`.

    Args:
        factor: the probability of transforming an image, drawn per image: a number `f`
            draws it in `[0, f]` (so the default 1.0 transforms half of the images on
            average, as Keras does), a pair `(low, high)` in that range; `(1.0, 1.0)`
            transforms every image.
        scale: the strength of the distortion, in [0, 1].
        interpolation: `"bilinear"` or `"nearest"`.
        fill_value: the value of points outside the image.
        seed: an int for reproducible transforms.
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> layer = RandomPerspective(scale=0.3, seed=0)
        >>> layer(np.random.rand(2, 32, 32, 3) * 255).shape
        torch.Size([2, 32, 32, 3])
    """

    _USE_BASE_FACTOR = False

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0,
                 seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = parse_factor(factor, (0, 1), "factor", "RandomPerspective")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not \
                0.0 <= scale <= 1.0:
            raise ValueError(f"RandomPerspective: scale must be a number in [0, 1]; received "
                             f"scale={scale!r}.")
        _check_interpolation(self, interpolation)
        self.scale, self.interpolation, self.fill_value = scale, interpolation, fill_value

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng, (b, h, w) = self._rng(seed), data.shape[:3]
        apply = _apply_draw(rng, self.factor, b, data.device)
        shift = rng.uniform((b, 4, 2), -0.5 * self.scale, 0.5 * self.scale, device=data.device)
        corners = torch.tensor([[0.0, 0.0], [w - 1.0, 0.0], [0.0, h - 1.0], [w - 1.0, h - 1.0]],
                               device=data.device)
        start = corners.expand(b, 4, 2).clone()
        return {"apply_perspective": apply, "start_points": start,
                "end_points": start + start * shift, "input_shape": tuple(data.shape)}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        start = torch.as_tensor(transformation["start_points"], device=images.device)
        end = torch.as_tensor(transformation["end_points"], device=images.device)
        matrix = ops.homography_matrix(start.to(images.dtype), end.to(images.dtype))
        out = ops.projective_transform(images, matrix, self.interpolation, "constant",
                                       self.fill_value)
        apply = torch.as_tensor(transformation["apply_perspective"], device=images.device)
        return torch.where(apply.view(-1, 1, 1, 1), out, images)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale,
                "interpolation": self.interpolation, "fill_value": self.fill_value,
                "seed": self.seed}


class RandomElasticTransform(ImageLayer):
    """Deforms images elastically during training: each pixel samples the input at a point
    moved by a smooth random field (Gaussian noise blurred by a Gaussian), then the result
    is clipped to `value_range`.

    With a distortion `d` drawn in `scale`'s range per batch, an image of size `(H, W)` is
    displaced by `alpha = 0.1 * d * max(H, W)` times noise smoothed with standard deviation
    `sigma = 0.05 * d * min(H, W)` pixels. Each image is transformed with a probability drawn
    in `factor`'s range.

    Args:
        factor: the probability of transforming an image, drawn per image: a number `f`
            draws it in `[0, f]` (so the default 1.0 transforms half of the images on
            average, as Keras does), a pair `(low, high)` in that range; `(1.0, 1.0)`
            transforms every image.
        scale: the strength of the distortion: a number `s` draws it in `[0, s]`, a pair in
            that range (values in [0, 1]).
        interpolation: `"bilinear"` or `"nearest"`.
        fill_mode: how points outside the image are read: `"reflect"` (default,
            `d c b a | a b c d`), `"mirror"` (`c d c b | a b c d`), `"wrap"`, `"nearest"` or
            `"constant"` (`fill_value`).
        fill_value: the value outside the image for `fill_mode="constant"`.
        value_range: the range of the input pixels, `(0, 255)` by default.
        seed: an int for reproducible deformations.
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> layer = RandomElasticTransform(scale=0.5, seed=0)
        >>> layer(np.random.rand(2, 32, 32, 3) * 255).shape
        torch.Size([2, 32, 32, 3])
    """

    _USE_BASE_FACTOR = False
    _FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = parse_factor(factor, (0, 1), "factor", "RandomElasticTransform")
        self.scale = parse_factor(scale, (0, 1), "scale", "RandomElasticTransform")
        _check_interpolation(self, interpolation)
        if fill_mode not in self._FILL_MODES:
            raise NotImplementedError(f"RandomElasticTransform: unknown fill_mode "
                                      f"{fill_mode!r}; expected one of {self._FILL_MODES}.")
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
            raise ValueError(f"RandomElasticTransform: value_range must be a pair (low, high); "
                             f"received {value_range!r}.")
        self.interpolation, self.fill_mode, self.fill_value = interpolation, fill_mode, \
            fill_value
        self.value_range = value_range

    @staticmethod
    def elastic_params(height, width, distortion):
        """`(alpha, sigma)` of the deformation of an image of `(height, width)`."""
        return max(height, width) * 0.1 * distortion, min(height, width) * 0.05 * distortion

    def get_random_transformation(self, data, training=True, seed=None):
        if not training or self.scale[1] == 0 or self.factor[1] == 0:
            return None
        rng, (b, h, w) = self._rng(seed), data.shape[:3]
        apply = _apply_draw(rng, self.factor, b, data.device)
        distortion = rng.uniform((), *self.scale, device=data.device)
        noise = rng.normal((b, 2, h, w), device=data.device)
        # "seed" is the key Keras's layer reads for its own noise draw.
        return {"apply_transform": apply, "distortion_factor": distortion, "noise": noise,
                "seed": self.seed}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        h, w = images.shape[1:3]
        distortion = float(transformation["distortion_factor"])
        alpha, sigma = self.elastic_params(h, w, distortion)
        if sigma <= 0:
            out = images
        else:
            noise = torch.as_tensor(transformation["noise"], device=images.device)
            if tuple(noise.shape[-2:]) != (h, w):
                raise ValueError(
                    f"Layer {self.name!r} (RandomElasticTransform): the transformation was "
                    f"drawn for images of size {tuple(noise.shape[-2:])}, not {(h, w)}.")
            out = ops.elastic_transform(images, alpha, sigma, noise, self.interpolation,
                                        self.fill_mode, self.fill_value)
        apply = torch.as_tensor(transformation["apply_transform"], device=images.device)
        out = torch.where(apply.view(-1, 1, 1, 1), out, images)
        return torch.clamp(out, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale,
                "interpolation": self.interpolation, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "value_range": self.value_range,
                "seed": self.seed}
