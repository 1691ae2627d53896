"""Bounding-box utilities, as `keras.utils.bounding_boxes`: converting between box formats,
clipping, cropping, padding, affine transforms, IoU and CIoU, and anchor deltas.

Boxes are arrays or tensors whose last axis holds 4 numbers; results are torch tensors.
Formats (case-insensitive):

- `"xyxy"`: `[left, top, right, bottom]`; `"yxyx"`: `[top, left, bottom, right]`;
- `"xywh"`: `[left, top, width, height]`;
- `"center_xywh"`: `[center_x, center_y, width, height]`;
  `"center_yxhw"`: `[center_y, center_x, height, width]`;
- `"rel_xyxy"`, `"rel_yxyx"`, `"rel_xywh"`, `"rel_center_xywh"`: the same with coordinates
  as fractions of the image's `width` and `height`.
"""
import math

import numpy as np
import torch

from plexus.graph.tensor import torch_dtype

SUPPORTED_FORMATS = ("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw", "rel_xyxy",
                     "rel_yxyx", "rel_xywh", "rel_center_xywh")
_EPSILON = 1e-7


def _tensor(x, dtype=None):
    if isinstance(x, torch.Tensor):
        return x if dtype is None else x.to(dtype)
    x = torch.as_tensor(np.asarray(x))
    return x if dtype is None else x.to(dtype)


def _split(boxes):
    return boxes.unbind(-1)


def _to_xyxy(boxes, fmt, height, width):
    a, b, c, d = _split(boxes)
    if fmt == "xyxy":
        out = (a, b, c, d)
    elif fmt == "yxyx":
        out = (b, a, d, c)
    elif fmt == "xywh":
        out = (a, b, a + c, b + d)
    elif fmt == "center_xywh":
        out = (a - c / 2.0, b - d / 2.0, a + c / 2.0, b + d / 2.0)
    elif fmt == "center_yxhw":
        out = (b - d / 2.0, a - c / 2.0, b + d / 2.0, a + c / 2.0)
    elif fmt == "rel_xyxy":
        out = (a * width, b * height, c * width, d * height)
    elif fmt == "rel_yxyx":
        out = (b * width, a * height, d * width, c * height)
    elif fmt == "rel_xywh":
        out = (a * width, b * height, (a + c) * width, (b + d) * height)
    else:  # rel_center_xywh
        out = ((a - c / 2.0) * width, (b - d / 2.0) * height, (a + c / 2.0) * width,
               (b + d / 2.0) * height)
    return torch.stack(out, dim=-1)


def _from_xyxy(boxes, fmt, height, width):
    x1, y1, x2, y2 = _split(boxes)
    w, h = x2 - x1, y2 - y1
    if fmt == "xyxy":
        out = (x1, y1, x2, y2)
    elif fmt == "yxyx":
        out = (y1, x1, y2, x2)
    elif fmt == "xywh":
        out = (x1, y1, w, h)
    elif fmt == "center_xywh":
        out = (x1 + w / 2.0, y1 + h / 2.0, w, h)
    elif fmt == "center_yxhw":
        out = (y1 + h / 2.0, x1 + w / 2.0, h, w)
    elif fmt == "rel_xyxy":
        out = (x1 / width, y1 / height, x2 / width, y2 / height)
    elif fmt == "rel_yxyx":
        out = (y1 / height, x1 / width, y2 / height, x2 / width)
    elif fmt == "rel_xywh":
        out = (x1 / width, y1 / height, w / width, h / height)
    else:  # rel_center_xywh
        out = ((x1 + w / 2.0) / width, (y1 + h / 2.0) / height, w / width, h / height)
    return torch.stack(out, dim=-1)


def convert_format(boxes, source, target, height=None, width=None, dtype="float32"):
    """Boxes converted from the format `source` to `target` (see the module docstring).

    Args:
        boxes: an array or tensor `(..., 4)`, or a dict whose `"boxes"` is one (a new dict
            with converted boxes is returned).
        source, target: the formats.
        height, width: the image size, needed when one format is relative (`rel_*`).
        dtype: the dtype of the result.

    Example:
        >>> convert_format(np.array([[10, 20, 30, 40]]), "xyxy", "xywh")
        tensor([[10., 20., 20., 20.]])
    """
    if isinstance(boxes, dict):
        return {**boxes, "boxes": convert_format(boxes["boxes"], source, target, height,
                                                 width, dtype)}
    boxes = _tensor(boxes)
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"convert_format: boxes must have a last axis of 4 numbers; "
                         f"received shape {tuple(boxes.shape)}.")
    if not isinstance(source, str) or not isinstance(target, str) or \
            source.lower() not in SUPPORTED_FORMATS or target.lower() not in SUPPORTED_FORMATS:
        raise ValueError(f"convert_format: source and target must be among "
                         f"{SUPPORTED_FORMATS}; received source={source!r}, "
                         f"target={target!r}.")
    source, target = source.lower(), target.lower()
    if (source.startswith("rel_") or target.startswith("rel_")) and (
            height is None or width is None):
        raise ValueError(f"convert_format: converting between {source!r} and {target!r} "
                         f"needs the image's height and width; received height={height}, "
                         f"width={width}.")
    boxes = boxes.to(torch_dtype(dtype))
    if source == target:
        return boxes
    if source.startswith("rel_") and target.startswith("rel_"):
        source, target = source[4:], target[4:]
    return _from_xyxy(_to_xyxy(boxes, source, height, width), target, height, width)


def _area(boxes):
    """Areas of `xyxy` (or `yxyx`) boxes."""
    a, b, c, d = _split(boxes)
    return (c - a) * (d - b)


def clip_to_image_size(bounding_boxes, height=None, width=None, bounding_box_format="xyxy"):
    """Boxes clipped to the image; labels of boxes left with no area become -1.

    Args:
        bounding_boxes: a dict with `"boxes"` `(..., N, 4)` and optionally `"labels"`
            `(..., N)`.
        height, width: the image size (needed for `"xyxy"`).
        bounding_box_format: `"xyxy"` or `"rel_xyxy"` (clipped to [0, 1]).
    """
    if bounding_box_format not in ("xyxy", "rel_xyxy"):
        raise NotImplementedError(f"clip_to_image_size: bounding_box_format must be 'xyxy' or "
                                  f"'rel_xyxy'; received {bounding_box_format!r}. Convert "
                                  "the boxes with convert_format() first.")
    if bounding_box_format == "xyxy" and (height is None or width is None):
        raise ValueError("clip_to_image_size: height and width are needed for the 'xyxy' "
                         "format.")
    boxes = _tensor(bounding_boxes["boxes"])
    high_x, high_y = (1.0, 1.0) if bounding_box_format == "rel_xyxy" else (width, height)
    x1, y1, x2, y2 = _split(boxes)
    boxes = torch.stack([x1.clamp(0, high_x), y1.clamp(0, high_y), x2.clamp(0, high_x),
                         y2.clamp(0, high_y)], dim=-1).to(boxes.dtype)
    result = {**bounding_boxes, "boxes": boxes}
    if bounding_boxes.get("labels") is not None:
        labels = _tensor(bounding_boxes["labels"])
        result["labels"] = torch.where(_area(boxes) > 0, labels,
                                       torch.full_like(labels, -1))
    return result


def crop(boxes, top, left, height, width, bounding_box_format="xyxy"):
    """`xyxy` boxes moved into the window at `(top, left)` of size `(height, width)` and
    clipped to it."""
    if bounding_box_format != "xyxy":
        raise NotImplementedError(f"crop: bounding_box_format must be 'xyxy'; received "
                                  f"{bounding_box_format!r}.")
    x1, y1, x2, y2 = _split(_tensor(boxes))
    return torch.stack([(x1 - left).clamp(0, width), (y1 - top).clamp(0, height),
                        (x2 - left).clamp(0, width), (y2 - top).clamp(0, height)], dim=-1)


def pad(boxes, top, left, height=None, width=None, bounding_box_format="xyxy"):
    """`xyxy` boxes moved by `top` rows and `left` columns (the image was padded)."""
    if bounding_box_format != "xyxy":
        raise NotImplementedError(f"pad: bounding_box_format must be 'xyxy'; received "
                                  f"{bounding_box_format!r}.")
    x1, y1, x2, y2 = _split(_tensor(boxes))
    return torch.stack([x1 + left, y1 + top, x2 + left, y2 + top], dim=-1)


def affine_transform(boxes, angle, translate_x, translate_y, scale, shear_x, shear_y, height,
                     width, center_x=None, center_y=None, bounding_box_format="xyxy"):
    """`xyxy` boxes `(B, N, 4)` moved by the affine transform an image of `(height, width)`
    undergoes (per image: `angle` and shears in degrees, translations as fractions of the
    size, `scale`, about the centre `(center_x, center_y)` given as fractions, 0.5 by
    default): each result is the smallest box around the moved corners."""
    if bounding_box_format != "xyxy":
        raise NotImplementedError(f"affine_transform: bounding_box_format must be 'xyxy'; "
                                  f"received {bounding_box_format!r}.")
    angle = _tensor(angle)
    dtype = angle.dtype if angle.is_floating_point() else torch.float32
    angle = angle.to(dtype)
    val = lambda v: _tensor(v, dtype)  # noqa: E731
    cx = (0.5 if center_x is None else val(center_x)) * (width - 1)
    cy = (0.5 if center_y is None else val(center_y)) * (height - 1)
    rot = -angle * math.pi / 180.0
    sx, sy = -val(shear_x) * math.pi / 180.0, -val(shear_y) * math.pi / 180.0
    tx, ty = -val(translate_x) * (width - 1), -val(translate_y) * (height - 1)
    scale = val(scale)
    # the forward map of points (the inverse of the map the image is sampled through)
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = a * torch.tan(sx) + torch.sin(rot)
    c = -torch.sin(rot - sy) / torch.cos(sy)
    d = torch.cos(rot) - c * torch.tan(sx)
    a0, a1, b0, b1 = d * scale, -b * scale, -c * scale, a * scale
    a2 = cx - a0 * (cx + tx) - a1 * (cy + ty)
    b2 = cy - b0 * (cx + tx) - b1 * (cy + ty)
    boxes = _tensor(boxes, dtype)
    x1, y1, x2, y2 = _split(boxes)
    xs = torch.stack([x1, x2, x2, x1], dim=-1)  # the four corners, (B, N, 4)
    ys = torch.stack([y1, y1, y2, y2], dim=-1)
    col = lambda t: t.reshape(-1, 1, 1)  # noqa: E731
    new_x = col(a0) * xs + col(a1) * ys + col(a2)
    new_y = col(b0) * xs + col(b1) * ys + col(b2)
    return torch.stack([new_x.amin(-1), new_y.amin(-1), new_x.amax(-1), new_y.amax(-1)], dim=-1)


def _image_hw(image_shape):
    if image_shape is None:
        return None, None
    height, width, _ = image_shape
    return height, width


def compute_iou(boxes1, boxes2, bounding_box_format, use_masking=False, mask_val=-1,
                image_shape=None):
    """Intersection over union of every box of `boxes1` with every box of `boxes2`.

    `(M, 4)` and `(N, 4)` give `(M, N)`; if either is batched `(B, ..., 4)` the result is
    `(B, M, N)`. With `use_masking`, pairs where either box has all coordinates negative
    (padding) get `mask_val`. Relative formats need `image_shape` `(height, width, channels)`.

    Example:
        >>> compute_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]]), "xyxy")
        tensor([[0.1429]])
    """
    boxes1, boxes2 = _tensor(boxes1), _tensor(boxes2)
    for name, boxes in (("boxes1", boxes1), ("boxes2", boxes2)):
        if boxes.ndim not in (2, 3):
            raise ValueError(f"compute_iou: {name} must have shape (N, 4) or (batch, N, 4); "
                             f"received shape {tuple(boxes.shape)}.")
    if "rel" in bounding_box_format and image_shape is None:
        raise ValueError("compute_iou: relative formats need image_shape (height, width, "
                         "channels).")
    height, width = _image_hw(image_shape)
    boxes1 = convert_format(boxes1, bounding_box_format, "yxyx", height, width)
    boxes2 = convert_format(boxes2, bounding_box_format, "yxyx", height, width)
    b1, b2 = boxes1.unsqueeze(-2), boxes2.unsqueeze(-3)  # (..., M, 1, 4), (..., 1, N, 4)
    inter_h = (torch.minimum(b1[..., 2], b2[..., 2]) -
               torch.maximum(b1[..., 0], b2[..., 0])).clamp(min=0)
    inter_w = (torch.minimum(b1[..., 3], b2[..., 3]) -
               torch.maximum(b1[..., 1], b2[..., 1])).clamp(min=0)
    intersection = inter_h * inter_w
    union = _area(b1) + _area(b2) - intersection
    iou = intersection / (union + _EPSILON)
    if not use_masking:
        return iou
    padding = (boxes1.amax(-1) < 0).unsqueeze(-1) | (boxes2.amax(-1) < 0).unsqueeze(-2)
    return torch.where(padding, torch.full_like(iou, float(mask_val)), iou)


def compute_ciou(boxes1, boxes2, bounding_box_format, image_shape=None):
    """Complete IoU of matching boxes (`(..., 4)` each): IoU minus the normalized distance of
    the centres and an aspect-ratio term (Zheng et al., 2020), as Keras computes it."""
    if "rel" in bounding_box_format:
        raise ValueError("compute_ciou: relative formats are not supported (as in Keras); "
                         "convert the boxes to an absolute format first.")
    height, width = _image_hw(image_shape)
    x1a, y1a, x2a, y2a = _split(convert_format(_tensor(boxes1), bounding_box_format, "xyxy",
                                               height, width))
    x1b, y1b, x2b, y2b = _split(convert_format(_tensor(boxes2), bounding_box_format, "xyxy",
                                               height, width))
    w1, h1 = x2a - x1a, y2a - y1a + _EPSILON
    w2, h2 = x2b - x1b, y2b - y1b + _EPSILON
    intersection = (torch.minimum(x2a, x2b) - torch.maximum(x1a, x1b)).clamp(min=0) * \
        (torch.minimum(y2a, y2b) - torch.maximum(y1a, y1b)).clamp(min=0)
    union = w1 * h1 + w2 * h2 - intersection + _EPSILON
    iou = intersection / (union + _EPSILON)
    hull_w = torch.maximum(x2a, x2b) - torch.minimum(x1a, x1b)
    hull_h = torch.maximum(y2a, y2b) - torch.minimum(y1a, y1b)
    diagonal = hull_w ** 2 + hull_h ** 2 + _EPSILON
    centres = ((x1a + x2a) / 2 - (x1b + x2b) / 2) ** 2 + ((y1a + y2a) / 2 - (y1b + y2b) / 2) ** 2
    v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    alpha = v / (v - iou + (1 + _EPSILON))
    return iou - (centres / diagonal + v * alpha)


def _check_variance(variance):
    if variance is None:
        return None
    variance = _tensor(variance, torch.float32)
    if variance.shape[-1:] != (4,):
        raise ValueError(f"variance must hold 4 numbers; received {variance.tolist()}.")
    return variance


def encode_box_to_deltas(anchors, boxes, anchor_format, box_format,
                         encoding_format="center_yxhw", variance=None, image_shape=None):
    """The offsets (centres, as fractions of the anchor's size) and log-scales of `boxes`
    relative to `anchors`, in `encoding_format` (`"center_yxhw"` or `"center_xywh"`),
    divided by `variance` when given."""
    variance = _check_variance(variance)
    if encoding_format not in ("center_xywh", "center_yxhw"):
        raise ValueError(f"encoding_format must be 'center_xywh' or 'center_yxhw'; received "
                         f"{encoding_format!r}.")
    height, width = _image_hw(image_shape)
    anchors = convert_format(anchors, anchor_format, encoding_format, height, width)
    boxes = convert_format(boxes, box_format, encoding_format, height, width)
    anchor_size = anchors[..., 2:].clamp(min=_EPSILON)
    box_size = boxes[..., 2:].clamp(min=_EPSILON)
    deltas = torch.cat([(boxes[..., :2] - anchors[..., :2]) / anchor_size,
                        torch.log(box_size / anchor_size)], dim=-1)
    return deltas / variance if variance is not None else deltas


def decode_deltas_to_boxes(anchors, boxes_delta, anchor_format, box_format,
                           encoded_format="center_yxhw", variance=None, image_shape=None):
    """The boxes (in `box_format`) that `boxes_delta` encode relative to `anchors`: the
    inverse of `encode_box_to_deltas`. `anchors` and `boxes_delta` may be dicts of levels."""
    variance = _check_variance(variance)
    if encoded_format not in ("center_xywh", "center_yxhw"):
        raise ValueError(f"encoded_format must be 'center_xywh' or 'center_yxhw'; received "
                         f"{encoded_format!r}.")
    height, width = _image_hw(image_shape)

    def decode(anchor, delta):
        anchor = convert_format(anchor, anchor_format, encoded_format, height, width)
        delta = _tensor(delta, anchor.dtype)
        if variance is not None:
            delta = delta * variance
        box = torch.cat([delta[..., :2] * anchor[..., 2:] + anchor[..., :2],
                         torch.exp(delta[..., 2:]) * anchor[..., 2:]], dim=-1)
        return convert_format(box, encoded_format, box_format, height, width)

    if isinstance(anchors, dict) and isinstance(boxes_delta, dict):
        return {level: decode(anchor, boxes_delta[level]) for level, anchor in anchors.items()}
    return decode(anchors, boxes_delta)
