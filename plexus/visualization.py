"""Drawing boxes and masks on images and plotting image galleries, as `keras.visualization`.

`draw_bounding_boxes` draws with Pillow (Keras uses OpenCV), `draw_segmentation_masks` with
NumPy; the `plot_*` galleries need Matplotlib (the `plot` extra: `pip install plexus[plot]`).
Images are batches `(batch, height, width, channels)` (or channels-first with
`data_format="channels_first"`); results are NumPy arrays.
"""
import functools
import math

import numpy as np

from plexus.utils import bounding_boxes as boxes_lib


def _numpy(x):
    from plexus.ops import convert_to_numpy  # (bfloat16 tensors included)
    return convert_to_numpy(x)


def _data_format(data_format):
    from plexus.config import standardize_data_format
    return standardize_data_format(data_format)


def _batched_images(images, what):
    images = _numpy(images)
    if images.ndim != 4:
        raise ValueError(f"{what}: images must be a batch of rank 4 (batch, height, width, "
                         f"channels); received shape {images.shape}.")
    return images


def _pyplot(what):
    try:
        import matplotlib.pyplot as plt  # (Matplotlib picks a non-interactive backend
    except ImportError:                  # on machines without a display)
        raise ImportError(f"{what} needs Matplotlib: `pip install matplotlib` (or the "
                          "`plot` extra of plexus).") from None
    return plt


def _text_origin(x, y, font_height, thickness):
    """Where a label goes: above the box when it fits, else inside its top-left corner."""
    if y - 8 - 2 * font_height > 0:
        return x, y - 8 - font_height
    return x + 3, y + thickness + 3


def draw_bounding_boxes(images, bounding_boxes, bounding_box_format, class_mapping=None,
                        color=(128, 128, 128), line_thickness=2, text_thickness=1,
                        font_scale=1.0, data_format=None):
    """Images with their bounding boxes drawn (and class names, with confidences if given).

    Args:
        images: a batch of images; float images in [0, 1] are scaled to [0, 255], others
            clipped to [0, 255]; drawn on as uint8.
        bounding_boxes: a dict with `"boxes"` `(batch, num_boxes, 4)`, `"labels"`
            `(batch, num_boxes)` (boxes labelled -1 are padding and skipped) and optionally
            `"confidences"`.
        bounding_box_format: the boxes' format (see `plexus.utils.bounding_boxes`).
        class_mapping: class id -> name, written beside each box of a named class.
        color: the RGB colour of boxes and text.
        line_thickness: the width of box lines in pixels.
        text_thickness: the stroke width of the text.
        font_scale: the text size (1.0: about 12 pixels).
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Returns:
        uint8 NumPy images, channels-last.
    """
    from PIL import Image, ImageDraw, ImageFont
    what = "draw_bounding_boxes"
    images = _batched_images(images, what)
    if not isinstance(bounding_boxes, dict):
        raise TypeError(f"{what}: bounding_boxes must be a dict with 'boxes' and 'labels'; "
                        f"received {type(bounding_boxes).__name__}.")
    if "boxes" not in bounding_boxes or "labels" not in bounding_boxes:
        raise ValueError(f"{what}: bounding_boxes must hold 'boxes' and 'labels'; received "
                         f"keys {sorted(bounding_boxes)}.")
    if _data_format(data_format) == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    class_mapping = class_mapping or {}
    text_thickness = text_thickness or line_thickness
    height, width = images.shape[1:3]
    xyxy = _numpy(boxes_lib.convert_format(bounding_boxes["boxes"], bounding_box_format,
                                           "xyxy", height, width))
    labels = _numpy(bounding_boxes["labels"])
    confidences = _numpy(bounding_boxes["confidences"]) if "confidences" in bounding_boxes \
        else None
    if images.dtype.kind == "f" and images.size and images.max() <= 1.0:
        images = np.clip(images, 0, 1) * 255
    images = np.clip(images, 0, 255).astype("uint8")  # (integers too: 300 is 255, not 44)
    font_height = max(int(12 * font_scale), 1)
    try:
        font = ImageFont.load_default(size=font_height)
    except TypeError:  # Pillow < 10.1 has one size
        font = ImageFont.load_default()
    color = tuple(int(c) for c in color)
    drawn = []
    for i in range(images.shape[0]):
        channels = images.shape[-1]
        picture = Image.fromarray(images[i, ..., 0] if channels == 1 else images[i])
        fill = color[0] if channels == 1 else color[:channels]
        pen = ImageDraw.Draw(picture)
        for j in range(xyxy.shape[1]):
            label = int(labels[i, j])
            if label == -1:
                continue
            x1, y1, x2, y2 = (int(v) for v in xyxy[i, j])
            pen.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=fill,
                          width=int(line_thickness))
            if label in class_mapping:
                text = str(class_mapping[label])
                if confidences is not None:
                    text = f"{text} | {float(confidences[i, j]):.2f}"
                pen.text(_text_origin(x1, y1, font_height, int(text_thickness)), text,
                         fill=fill, font=font, stroke_width=max(int(text_thickness) - 1, 0),
                         stroke_fill=fill)
        out = np.asarray(picture)
        drawn.append(out[..., None] if channels == 1 else out)
    return np.stack(drawn, axis=0)


def _palette(num_classes):
    base = np.array([2 ** 25 - 1, 2 ** 15 - 1, 2 ** 21 - 1])
    return [((i * base) % 255).tolist() for i in range(num_classes)]


def draw_segmentation_masks(images, segmentation_masks, num_classes=None, color_mapping=None,
                            alpha=0.8, blend=True, ignore_index=-1, data_format=None):
    """Images with their segmentation masks painted on, as Keras draws them.

    Pixels of class `k` (for `0 <= k < num_classes`) take the colour `color_mapping[k]` (a
    generated palette by default), blended with the image by `alpha` when `blend`; pixels
    equal to `ignore_index` keep the image, and so do classes outside that range.
    `num_classes` defaults to one more than the largest class in the masks, so that every
    class is painted (Keras's default, the largest class itself, leaves that class out on
    TensorFlow and JAX and fails on torch).

    Args:
        images: a batch of images, values in [0, 255].
        segmentation_masks: integer masks `(batch, height, width)` or
            `(batch, height, width, 1)`.

    Returns:
        uint8 NumPy images when blending, else float32 images with the colours painted in.
    """
    what = "draw_segmentation_masks"
    images = _batched_images(images, what)
    masks = _numpy(segmentation_masks)
    if _data_format(data_format) == "channels_first":
        images = images.transpose(0, 2, 3, 1)
        masks = masks.transpose(0, 2, 3, 1) if masks.ndim == 4 else masks
    if masks.dtype.kind not in "iu":
        raise TypeError(f"{what}: segmentation_masks must hold integers; received dtype "
                        f"{masks.dtype}.")
    if masks.ndim == 3:
        masks = masks[..., None]
    images = images.astype("float32")
    if num_classes is None:
        num_classes = int(masks.max()) + 1 if masks.size else 0
    colors = _palette(num_classes) if color_mapping is None else \
        [color_mapping[i] for i in range(num_classes)]
    classes = masks[..., 0]
    painted = images.copy()
    for k, color in enumerate(colors):
        painted[classes == k] = np.asarray(color, dtype="float32")[None, :]
    if not blend:
        return painted
    out = images * (1 - alpha) + painted * alpha
    out = np.where((classes != ignore_index)[..., None], out, images)
    return out.astype("uint8")


def plot_image_gallery(images, y_true=None, y_pred=None, label_map=None, rows=None, cols=None,
                       value_range=(0, 255), scale=2, path=None, show=None, transparent=True,
                       dpi=60, legend_handles=None, data_format=None):
    """Shows (or saves to `path`) a grid of images, titled with their labels and predictions
    (class ids named by `label_map`). `rows`/`cols` default to a near-square grid; images
    are mapped from `value_range` to [0, 255]."""
    what = "plot_image_gallery"
    plt = _pyplot(what)
    if path is not None and show:
        raise ValueError(f"{what}: pass either `path` (save the figure) or `show=True`, not "
                         "both.")
    if (y_true is not None or y_pred is not None) and label_map is None:
        raise ValueError(f"{what}: y_true or y_pred need a label_map (class id -> name).")
    show = path is None if show is None else show
    images = _batched_images(images, what)
    if _data_format(data_format) == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    batch_size = images.shape[0]
    rows = rows or int(math.ceil(math.sqrt(batch_size)))
    cols = cols or int(math.ceil(batch_size // rows))
    images = images[:rows * cols].astype("float32")
    low, high = value_range
    images = (images - low) / (high - low) * 255.0
    y_true = None if y_true is None else _numpy(y_true)
    y_pred = None if y_pred is None else _numpy(y_pred)
    fig, axes = plt.subplots(nrows=rows, ncols=cols, figsize=(cols * scale, rows * scale),
                             frameon=False, layout="tight", squeeze=False, sharex="row",
                             sharey="col")
    fig.subplots_adjust(wspace=0, hspace=0)
    if legend_handles is not None:
        fig.legend(handles=legend_handles, loc="lower center")
    for index in range(rows * cols):
        axis = axes[index // cols, index % cols]
        axis.axis("off")
        if index >= images.shape[0]:
            continue
        picture = np.clip(images[index], 0, 255).astype("uint8")
        axis.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture,
                    cmap="gray" if picture.shape[-1] == 1 else None)
        axis.margins(x=0, y=0)
        titles = []
        if y_true is not None and index < len(y_true):
            titles.append(f"Label: {label_map.get(_key(y_true[index]), 'Unknown')}")
        if y_pred is not None and index < len(y_pred):
            titles.append(f"Pred: {label_map.get(_key(y_pred[index]), 'Unknown')}")
        if titles:
            axis.set_title("  ".join(titles), fontsize=8)
    if path is not None:
        plt.savefig(fname=path, pad_inches=0, bbox_inches="tight", transparent=transparent,
                    dpi=dpi)
        plt.close(fig)
    elif show:
        plt.show()
        plt.close(fig)


def _key(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else tuple(value.tolist())


def plot_bounding_box_gallery(images, bounding_box_format, y_true=None, y_pred=None,
                              value_range=(0, 255), true_color=(0, 188, 212),
                              pred_color=(255, 235, 59), line_thickness=2, font_scale=1.0,
                              text_thickness=None, class_mapping=None,
                              ground_truth_mapping=None, prediction_mapping=None, legend=False,
                              legend_handles=None, rows=None, cols=None, data_format=None,
                              **kwargs):
    """A gallery of images with their true (`y_true`) and predicted (`y_pred`) boxes drawn
    in two colours; other arguments as `draw_bounding_boxes` and `plot_image_gallery`."""
    what = "plot_bounding_box_gallery"
    _pyplot(what)
    images = _batched_images(images, what)
    if _data_format(data_format) == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    draw = functools.partial(draw_bounding_boxes, bounding_box_format=bounding_box_format,
                             line_thickness=line_thickness, text_thickness=text_thickness,
                             font_scale=font_scale, data_format="channels_last")
    plotted = images
    if y_true is not None:
        plotted = draw(plotted, y_true, color=true_color,
                       class_mapping=ground_truth_mapping or class_mapping)
    if y_pred is not None:
        plotted = draw(plotted, y_pred, color=pred_color,
                       class_mapping=prediction_mapping or class_mapping)
    if legend:
        if legend_handles:
            raise ValueError(f"{what}: pass `legend` or `legend_handles`, not both.")
        from matplotlib import patches
        legend_handles = [
            patches.Patch(color=np.array(true_color) / 255.0, label="Ground Truth"),
            patches.Patch(color=np.array(pred_color) / 255.0, label="Prediction")]
    return plot_image_gallery(plotted, value_range=value_range, legend_handles=legend_handles,
                              rows=rows, cols=cols, data_format="channels_last", **kwargs)


def plot_segmentation_mask_gallery(images, num_classes, value_range=(0, 255), y_true=None,
                                   y_pred=None, color_mapping=None, blend=True, alpha=0.8,
                                   ignore_index=-1, data_format=None, **kwargs):
    """A gallery with one row per image: the image, then its true and predicted masks drawn
    on it (`draw_segmentation_masks`)."""
    what = "plot_segmentation_mask_gallery"
    _pyplot(what)
    images = _batched_images(images, what)
    channels_first = _data_format(data_format) == "channels_first"
    if channels_first:
        images = images.transpose(0, 2, 3, 1)
    draw = functools.partial(draw_segmentation_masks, num_classes=num_classes,
                             color_mapping=color_mapping, alpha=alpha,
                             ignore_index=ignore_index, blend=blend,
                             data_format="channels_last")

    def masks(y):
        y = _numpy(y).astype("int32")
        return y.transpose(0, 2, 3, 1) if channels_first and y.ndim == 4 else y
    drawn = [draw(images, masks(y)) for y in (y_true, y_pred) if y is not None]
    gallery = []
    for i in range(images.shape[0]):
        gallery.append(images[i].astype("float32"))
        gallery.extend(d[i].astype("float32") for d in drawn)
    return plot_image_gallery(np.stack(gallery), value_range=value_range,
                              rows=images.shape[0], cols=1 + len(drawn),
                              data_format="channels_last", **kwargs)
