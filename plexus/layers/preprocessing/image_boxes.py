"""`MaxNumBoundingBoxes`: gives every image the same number of bounding boxes."""
import numpy as np
import torch

from plexus.layers.preprocessing.image_base import ImageLayer


class MaxNumBoundingBoxes(ImageLayer):
    """Pads or truncates each image's bounding boxes to exactly `max_number`.

    Call it on `{"images": ..., "bounding_boxes": {"boxes": ..., "labels": ...}}`: `boxes`
    `(batch, num_boxes, 4)` and `labels` `(batch, num_boxes)` (or, for one image,
    `(num_boxes, 4)` and `(num_boxes,)`) become `(batch, max_number, 4)` and
    `(batch, max_number)`: boxes past `max_number` are dropped, missing ones are filled with
    `fill_value`. `boxes` may also be a list with one `(n_i, 4)` array per image (different
    counts) and `labels` a list of `(n_i,)` arrays. Images (and labels, segmentation masks)
    pass through unchanged. The boxes are not read, so any `bounding_box_format` works and
    none need be given (Keras asks for one).

    Args:
        max_number: how many boxes each image gets.
        fill_value: the value of padding boxes and labels, -1 by default.

    Example:
        >>> layer = MaxNumBoundingBoxes(max_number=4)
        >>> out = layer({"images": np.zeros((1, 8, 8, 3)),
        ...              "bounding_boxes": {"boxes": np.array([[[0, 0, 4, 4]]]),
        ...                                 "labels": np.array([[2]])}})
        >>> out["bounding_boxes"]["labels"]
        tensor([[ 2, -1, -1, -1]])
    """

    _USE_BASE_FACTOR = False
    _TRANSFORMS_BOUNDING_BOXES = True

    def __init__(self, max_number, fill_value=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_number, bool) or not isinstance(max_number, (int, np.integer)) or \
                max_number < 1:
            raise ValueError(f"MaxNumBoundingBoxes: max_number must be a positive integer; "
                             f"received max_number={max_number!r}.")
        if isinstance(fill_value, bool) or not isinstance(fill_value, (int, float,
                                                                       np.number)):
            raise ValueError(f"MaxNumBoundingBoxes: fill_value must be a number; received "
                             f"fill_value={fill_value!r}.")
        self.max_number, self.fill_value = int(max_number), int(fill_value)

    def _fit(self, rows, width, what):
        """(n, *width) -> (max_number, *width), truncated or padded with `fill_value`."""
        rows = torch.as_tensor(np.asarray(rows) if isinstance(rows, list) else rows)
        if tuple(rows.shape[1:]) != width:
            raise ValueError(
                f"Layer {self.name!r} (MaxNumBoundingBoxes): each image's {what} must have "
                f"shape (num_boxes{', 4' if width else ''}); received shape "
                f"{tuple(rows.shape)}.")
        rows = rows[:self.max_number]
        missing = self.max_number - rows.shape[0]
        if missing > 0:
            pad = torch.full((missing, *width), self.fill_value, dtype=rows.dtype,
                             device=rows.device)
            rows = torch.cat([rows, pad], dim=0)
        return rows

    def transform_bounding_boxes(self, bounding_boxes, transformation=None, training=True):
        name = f"Layer {self.name!r} (MaxNumBoundingBoxes)"
        if not isinstance(bounding_boxes, dict) or not {"boxes", "labels"} <= set(
                bounding_boxes):
            keys = sorted(bounding_boxes) if isinstance(bounding_boxes, dict) else ""
            raise ValueError(f"{name}: bounding_boxes must be a dict with 'boxes' and 'labels'; "
                             f"received {type(bounding_boxes).__name__} {keys}.")
        extra = set(bounding_boxes) - {"boxes", "labels"}
        if extra:
            raise ValueError(f"{name}: bounding_boxes holds unsupported keys {sorted(extra)}; "
                             "only 'boxes' and 'labels' are supported.")
        boxes, labels = bounding_boxes["boxes"], bounding_boxes["labels"]
        ragged = isinstance(boxes, (list, tuple)) and (len(boxes) == 0 or np.ndim(boxes[0]) == 2)
        if not ragged:
            boxes, labels = torch.as_tensor(np.asarray(boxes) if isinstance(boxes, (list, tuple))
                                            else boxes), \
                torch.as_tensor(np.asarray(labels) if isinstance(labels, (list, tuple))
                                else labels)
            if boxes.ndim == 2:  # one image
                return {"boxes": self._fit(boxes, (4,), "boxes"),
                        "labels": self._fit(labels, (), "labels")}
            if boxes.ndim != 3:
                raise ValueError(f"{name}: boxes must have shape (batch, num_boxes, 4) or "
                                 f"(num_boxes, 4); received shape {tuple(boxes.shape)}.")
        if len(boxes) != len(labels):
            raise ValueError(f"{name}: boxes and labels must describe the same images; "
                             f"received {len(boxes)} and {len(labels)}.")
        fitted_boxes = [self._fit(b, (4,), "boxes") for b in boxes]
        fitted_labels = [self._fit(lab, (), "labels") for lab in labels]
        if not fitted_boxes:
            return {"boxes": torch.full((0, self.max_number, 4), self.fill_value),
                    "labels": torch.full((0, self.max_number), self.fill_value)}
        return {"boxes": torch.stack(fitted_boxes), "labels": torch.stack(fitted_labels)}

    def call(self, data, training=None):
        return super().call(data, training=True)  # not an augmentation

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict) and "bounding_boxes" in input_shape:
            shape = dict(input_shape)
            boxes = dict(shape["bounding_boxes"])
            boxes["boxes"] = (boxes["boxes"][0], self.max_number, *boxes["boxes"][2:])
            boxes["labels"] = (boxes["labels"][0], self.max_number)
            shape["bounding_boxes"] = boxes
            return shape
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_number": self.max_number,
                "fill_value": self.fill_value}
