"""`ImageLayer`: what image preprocessing and augmentation layers share.

A layer draws a random *transformation* for a batch (`get_random_transformation`) and applies
it (`transform_images`, `transform_labels`), with Keras's names and transformation dicts, so a
transformation drawn by plexus can be replayed by Keras and the other way round. Inside, images
are channels-last batches `(B, H, W, C)` in the layer's compute dtype; `channels_first` inputs
and single images `(H, W, C)` are converted at the edges.

Augmentations run when the layer is called in training mode: in `fit`, and (as in Keras) when
the layer or a model holding it is called directly without `training=False`. `predict` and
`evaluate` pass `training=False`, where they return the images unchanged (cast to float); the
model's mode also wins over the `training=True` Keras records with these layers' calls.
"""
import torch

from plexus.graph.tensor import torch_dtype
from plexus.layers.preprocessing.base import DataLayer, SeedState


def image_data_format(data_format):
    if data_format is None:
        try:
            from plexus import config
            data_format = config.image_data_format()
        except (ImportError, AttributeError):
            data_format = "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first'; received "
                         f"{data_format!r}.")
    return data_format


def parse_factor(factor, bounds, name, layer_name, symmetric=True):
    """`(lower, upper)` from a number or a pair, checked against `bounds`."""
    msg = (f"{layer_name}: {name} must be a number or a pair of numbers in "
           f"[{bounds[0]}, {bounds[1]}]; received {name}={factor!r}.")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(msg)
        return tuple(sorted(factor))
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        if factor < bounds[0] or factor > bounds[1]:
            raise ValueError(msg)
        factor = abs(factor)
        return (max(-factor, bounds[0]), factor) if symmetric else (bounds[0], factor)
    raise ValueError(msg)


def parse_value_range(value_range, layer_name):
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise ValueError(f"{layer_name}: value_range must be a pair (low, high); received "
                         f"{value_range!r}.")
    return sorted(value_range)


class ImageLayer(DataLayer):
    """Base of the image layers (see the module docstring)."""

    _USE_BASE_FACTOR = True
    _FACTOR_BOUNDS = (-1, 1)
    _TRANSFORMS_BOUNDING_BOXES = False  # layers that define `transform_bounding_boxes`

    def __init__(self, factor=None, bounding_box_format=None, data_format=None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.bounding_box_format = bounding_box_format
        self.data_format = image_data_format(data_format)
        if self._USE_BASE_FACTOR:
            self.factor = parse_factor(factor or 0.0, self._FACTOR_BOUNDS, "factor",
                                       type(self).__name__)
        elif factor is not None:
            raise ValueError(f"{type(self).__name__} does not take a `factor` argument.")
        self.seed = seed
        self.generator = SeedState(seed)

    # ------------------------------------------------------------------ what layers define
    def get_random_transformation(self, data, training=True, seed=None):
        """The random parameters for the batch `data` (`(B, H, W, C)` images)."""
        return None

    def transform_images(self, images, transformation, training=True):
        return images

    def transform_labels(self, labels, transformation, training=True):
        return labels

    def transform_segmentation_masks(self, masks, transformation, training=True):
        return masks

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        return bounding_boxes

    # ------------------------------------------------------------------ helpers
    def _rng(self, seed):
        """The random stream for one draw: this layer's, or a fresh one from `seed`."""
        if seed is None:
            return self.generator
        return seed if isinstance(seed, SeedState) else SeedState(seed)

    def _float(self, images):
        dtype = torch_dtype(self.compute_dtype)
        if not isinstance(images, torch.Tensor):
            images = torch.as_tensor(images)
        return images if images.dtype == dtype else images.to(dtype)

    def _to_nhwc(self, images):
        if images.ndim not in (3, 4):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) takes images of rank 3 "
                f"(height, width, channels) or 4 (a batch); received shape "
                f"{tuple(images.shape)}.")
        single = images.ndim == 3
        if single:
            images = images.unsqueeze(0)
        if self.data_format == "channels_first":
            images = images.permute(0, 2, 3, 1)
        return images, single

    def _from_nhwc(self, images, single):
        if self.data_format == "channels_first":
            images = images.permute(0, 3, 1, 2)
        return images[0] if single else images

    # ------------------------------------------------------------------ call
    def call(self, data, training=None):
        training = True if training is None else bool(training)
        if isinstance(data, dict):
            return self._call_dict(data, training)
        images, single = self._to_nhwc(self._float(data))
        transformation = self.get_random_transformation(images, training=training)
        images = self.transform_images(images, transformation, training=training)
        return self._from_nhwc(images, single)

    def _call_dict(self, data, training):
        if "bounding_boxes" in data and not self._TRANSFORMS_BOUNDING_BOXES:
            raise NotImplementedError(
                f"Layer {self.name!r}: transforming bounding boxes is not implemented in "
                "plexus yet; pass images (and labels or segmentation masks) only.")
        out = dict(data)
        images, single = self._to_nhwc(self._float(data["images"]))
        transformation = self.get_random_transformation(images, training=training)
        out["images"] = self._from_nhwc(
            self.transform_images(images, transformation, training=training), single)
        if "labels" in data:
            labels = torch.as_tensor(data["labels"])
            if single:
                labels = labels.unsqueeze(0)
            labels = self.transform_labels(labels, transformation, training=training)
            out["labels"] = labels[0] if single else labels
        if "segmentation_masks" in data:
            masks, _ = self._to_nhwc(torch.as_tensor(data["segmentation_masks"]))
            masks = self.transform_segmentation_masks(masks, transformation, training)
            out["segmentation_masks"] = self._from_nhwc(masks, single)
        if "bounding_boxes" in data:
            out["bounding_boxes"] = self.transform_bounding_boxes(
                data["bounding_boxes"], transformation, training=training)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {**super().get_config(), "data_format": self.data_format}
        if self.bounding_box_format is not None:
            config["bounding_box_format"] = self.bounding_box_format
        return config
