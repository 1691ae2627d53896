"""`plexus.visualization`: masks drawn as Keras draws them; boxes drawn with Pillow (Keras
needs OpenCV, so they are checked against known pixels); galleries written by Matplotlib."""
import keras
import numpy as np
import pytest
from PIL import Image

import plexus
from plexus import visualization as V

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 200, (2, 20, 24, 3)).astype("float32")
MASKS = RNG.integers(0, 4, (2, 20, 24, 1)).astype("int32")


@pytest.mark.parametrize("kwargs", [{"num_classes": 4, "alpha": 0.5},
                                    {"num_classes": 4, "ignore_index": 0},
                                    {"num_classes": 3, "blend": False},
                                    {"num_classes": 2, "color_mapping": {0: (1, 2, 3),
                                                                         1: (250, 0, 9)}}])
def test_segmentation_masks_match_keras(kwargs):
    masks = np.minimum(MASKS, kwargs["num_classes"] - 1)  # (Keras on torch fails on others)
    out = V.draw_segmentation_masks(IMAGES, masks, **kwargs)
    expected = np.asarray(keras.visualization.draw_segmentation_masks(IMAGES, masks, **kwargs))
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, atol=1)  # (float32 rounding before the uint8 cast)
    first = V.draw_segmentation_masks(IMAGES.transpose(0, 3, 1, 2), masks.transpose(0, 3, 1, 2),
                                      data_format="channels_first", **kwargs)
    np.testing.assert_array_equal(first, out)


def test_segmentation_masks_defaults_and_errors():
    # every class in the masks is painted by default; classes past num_classes are not
    np.testing.assert_array_equal(V.draw_segmentation_masks(IMAGES, MASKS),
                                  V.draw_segmentation_masks(IMAGES, MASKS, num_classes=4))
    two = V.draw_segmentation_masks(IMAGES, MASKS[..., 0], num_classes=2)
    top = MASKS[..., 0] >= 2
    np.testing.assert_array_equal(two[top], IMAGES.astype("uint8")[top])
    assert not np.array_equal(two[~top], IMAGES.astype("uint8")[~top])
    with pytest.raises(TypeError, match="integers"):
        V.draw_segmentation_masks(IMAGES, MASKS.astype("float32"))


def test_bounding_boxes_are_drawn_on_their_edges():
    images = np.zeros((2, 40, 50, 3), "uint8")
    boxes = {"boxes": np.array([[[5, 6, 30, 20], [0, 0, 3, 3]], [[0.1, 0.2, 0.5, 0.9],
                                                                  [0, 0, 0, 0]]]),
             "labels": np.array([[1, -1], [2, -1]])}
    out = V.draw_bounding_boxes(images[:1], {k: v[:1] for k, v in boxes.items()}, "xyxy",
                                color=(255, 0, 0), line_thickness=1)
    assert out.shape == (1, 40, 50, 3) and out.dtype == np.uint8
    red = (out[0] == (255, 0, 0)).all(-1)
    assert red[6, 5:31].all() and red[20, 5:31].all() and red[6:21, 5].all() \
        and red[6:21, 30].all()  # the four edges
    assert not red[7:20, 6:30].any()  # the inside stays
    assert not red[:4, :4].any()  # the box labelled -1 is skipped
    rel = V.draw_bounding_boxes(images[1:], {"boxes": boxes["boxes"][1:] * 1.0,
                                             "labels": boxes["labels"][1:]}, "rel_xyxy",
                                color=(0, 255, 0), line_thickness=1)
    green = (rel[0] == (0, 255, 0)).all(-1)
    assert green[8, 5:26].all() and green[8:37, 5].all()  # x 0.1..0.5 of 50, y 0.2..0.9 of 40
    named = V.draw_bounding_boxes(images[:1] / 255.0, {"boxes": boxes["boxes"][:1],
                                                       "labels": boxes["labels"][:1],
                                                       "confidences": np.array([[0.9, 0.1]])},
                                  "xyxy", class_mapping={1: "cat"}, color=(255, 0, 0))
    assert (named[0, 21:, :] != 0).any()  # the label text (below the top, as it fits there)
    with pytest.raises(ValueError, match="'boxes' and 'labels'"):
        V.draw_bounding_boxes(images, {"boxes": boxes["boxes"]}, "xyxy")
    with pytest.raises(ValueError, match="rank 4"):
        V.draw_bounding_boxes(images[0], boxes, "xyxy")


def test_galleries_are_written(tmp_path):
    V.plot_image_gallery(IMAGES, y_true=np.array([0, 1]), y_pred=np.array([1, 1]),
                         label_map={0: "a", 1: "b"}, rows=1, cols=2,
                         path=tmp_path / "images.png")
    assert Image.open(tmp_path / "images.png").size[0] > 0
    boxes = {"boxes": np.array([[[2, 2, 10, 10]], [[1, 1, 5, 9]]]), "labels": np.array([[0], [1]])}
    V.plot_bounding_box_gallery(IMAGES, "xyxy", y_true=boxes, y_pred=boxes, legend=True,
                                class_mapping={0: "a", 1: "b"}, path=tmp_path / "boxes.png")
    V.plot_segmentation_mask_gallery(IMAGES, num_classes=4, y_true=MASKS, y_pred=MASKS,
                                     path=tmp_path / "masks.png")
    wide = Image.open(tmp_path / "masks.png").size
    V.plot_segmentation_mask_gallery(IMAGES, num_classes=4, y_true=MASKS,
                                     path=tmp_path / "narrow.png")
    assert wide[0] > Image.open(tmp_path / "narrow.png").size[0]  # three columns, not two
    assert (tmp_path / "boxes.png").exists()
    with pytest.raises(ValueError, match="label_map"):
        V.plot_image_gallery(IMAGES, y_true=np.array([0, 1]), path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="not both"):
        V.plot_image_gallery(IMAGES, path=tmp_path / "x.png", show=True)


def test_integer_images_are_clipped_not_wrapped():
    images = np.full((1, 8, 8, 3), 300, "int32")
    images[0, 0, 0] = -5
    boxes = {"boxes": np.zeros((1, 1, 4), "float32"), "labels": -np.ones((1, 1), "int32")}
    out = V.draw_bounding_boxes(images, boxes, "xyxy")
    assert out.dtype == np.uint8 and out[0, 4, 4, 0] == 255 and out[0, 0, 0, 0] == 0
