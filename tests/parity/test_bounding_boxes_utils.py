"""`plexus.utils.bounding_boxes` against `keras.utils.bounding_boxes`."""
import itertools

import keras
import numpy as np
import pytest
import torch

from plexus.utils import bounding_boxes as P
from tests.parity.oracle import assert_close

K = keras.utils.bounding_boxes
RNG = np.random.default_rng(0)
XY = RNG.uniform(0, 50, (2, 5, 2))
BOXES = np.concatenate([XY, XY + RNG.uniform(1, 40, (2, 5, 2))], -1).astype("float32")
FORMATS = P.SUPPORTED_FORMATS


def _np(x):
    return np.asarray(torch.as_tensor(np.asarray(x)))


@pytest.mark.parametrize("source,target", list(itertools.product(FORMATS, FORMATS)))
def test_convert_format_matches_keras(source, target):
    # boxes in `source`: Keras's own conversion from xyxy
    boxes = _np(K.convert_format(BOXES.copy(), "xyxy", source, height=90, width=120))
    out = P.convert_format(boxes, source, target, height=90, width=120)
    assert isinstance(out, torch.Tensor)
    assert_close(out, _np(K.convert_format(boxes.copy(), source, target, height=90,
                                           width=120)), atol=1e-4)


def test_convert_format_dicts_dtypes_and_errors():
    out = P.convert_format({"boxes": BOXES[0], "labels": np.arange(5)}, "xyxy", "xywh",
                           dtype="float64")
    assert out["boxes"].dtype == torch.float64 and list(out["labels"]) == list(range(5))
    assert_close(P.convert_format([[10, 20, 30, 40]], "XYXY", "center_yxhw"),
                 np.array([[30.0, 20.0, 20.0, 20.0]]))
    with pytest.raises(ValueError, match="height and width"):
        P.convert_format(BOXES, "xyxy", "rel_xyxy")
    with pytest.raises(ValueError, match="source and target"):
        P.convert_format(BOXES, "xyxy", "xxyy")
    with pytest.raises(ValueError, match="last axis of 4"):
        P.convert_format(np.zeros((2, 3)), "xyxy", "xywh")


def test_clip_crop_pad_match_keras():
    boxes = BOXES - 10.0
    labels = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    boxes[0, 0] = [-30, -30, -5, -5]  # clipped to nothing: label -1
    for fmt, (h, w), b in (("xyxy", (40, 60), boxes), ("rel_xyxy", (None, None), boxes / 50)):
        out = P.clip_to_image_size({"boxes": b, "labels": labels}, h, w, fmt)
        expected = K.clip_to_image_size({"boxes": torch.as_tensor(b),
                                         "labels": torch.as_tensor(labels)}, h, w, fmt)
        assert_close(out["boxes"], _np(expected["boxes"]))
        np.testing.assert_array_equal(out["labels"].numpy(), _np(expected["labels"]))
    assert int(out["labels"][0, 0]) == -1
    assert_close(P.crop(BOXES, 10, 20, 40, 30), _np(K.crop(torch.as_tensor(BOXES), 10, 20, 40, 30)))
    assert_close(P.pad(BOXES, 7, 3), _np(K.pad(torch.as_tensor(BOXES), 7, 3)))
    with pytest.raises(NotImplementedError, match="'xyxy'"):
        P.crop(BOXES, 0, 0, 1, 1, bounding_box_format="xywh")


def test_affine_transform_matches_keras():
    args = [torch.tensor(v, dtype=torch.float32) for v in (
        [30.0, -45.0], [0.1, -0.2], [0.05, 0.0], [1.2, 0.8], [10.0, 0.0], [0.0, -15.0])]
    out = P.affine_transform(BOXES, *args, height=90, width=120)
    expected = K.affine_transform(torch.as_tensor(BOXES), *args, height=90, width=120)
    assert_close(out, _np(expected), atol=1e-3)
    center = [torch.tensor([0.2, 0.7]), torch.tensor([0.4, 0.5])]
    assert_close(P.affine_transform(BOXES, *args, 90, 120, *center),
                 _np(K.affine_transform(torch.as_tensor(BOXES), *args, 90, 120, *center)),
                 atol=1e-3)


@pytest.mark.parametrize("shapes", [((0, 5), (1, 5)), ((0, 5), (1, 3)), ((0,), (1, 5)),
                                    ((0, 5), (1,))])
def test_iou_matches_keras(shapes):
    a = BOXES[shapes[0][0], :shapes[0][1]] if len(shapes[0]) == 2 else BOXES
    b = BOXES[shapes[1][0], :shapes[1][1]] if len(shapes[1]) == 2 else BOXES[::-1].copy()
    if len(shapes[0]) == 1:
        a, b = b, a  # a batched against an unbatched
    for fmt in ("xyxy", "yxyx"):
        out = P.compute_iou(a, b, fmt)
        expected = K.compute_iou(torch.as_tensor(a), torch.as_tensor(b), fmt)
        assert out.shape == tuple(expected.shape)
        assert_close(out, _np(expected), atol=1e-6)
    padded = np.concatenate([BOXES[0], -np.ones((2, 4), "float32")])
    out = P.compute_iou(padded, BOXES[1], "xyxy", use_masking=True, mask_val=-3)
    assert_close(out, _np(K.compute_iou(torch.as_tensor(padded), torch.as_tensor(BOXES[1]),
                                        "xyxy", use_masking=True, mask_val=-3)))
    assert float(out[-1].max()) == -3
    rel = BOXES[0] / 100
    assert_close(P.compute_iou(rel, rel, "rel_xyxy", image_shape=(100, 100, 3)),
                 _np(K.compute_iou(torch.as_tensor(rel), torch.as_tensor(rel), "rel_xyxy",
                                   image_shape=(100, 100, 3))), atol=1e-6)


def test_iou_known_answer():
    assert_close(P.compute_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]]), "xyxy"),
                 np.array([[1 / 7]]), atol=1e-6)


def test_ciou_matches_keras():
    a, b = BOXES[0], BOXES[1]
    for fmt in ("xyxy", "center_xywh"):
        assert_close(P.compute_ciou(a, b, fmt),
                     _np(K.compute_ciou(torch.as_tensor(a), torch.as_tensor(b), fmt)),
                     atol=1e-5)
    assert_close(P.compute_ciou(a, a, "xyxy"), np.ones(5), atol=1e-5)  # identical boxes
    with pytest.raises(ValueError, match="relative"):
        P.compute_ciou(a, b, "rel_xyxy")


@pytest.mark.parametrize("encoding", ["center_yxhw", "center_xywh"])
def test_deltas_match_keras_and_round_trip(encoding):
    anchors = BOXES[0]
    variance = [0.1, 0.1, 0.2, 0.2]
    deltas = P.encode_box_to_deltas(anchors, BOXES, "xyxy", "xyxy", encoding, variance)
    expected = K.encode_box_to_deltas(torch.as_tensor(anchors), torch.as_tensor(BOXES), "xyxy",
                                      "xyxy", encoding, variance)
    assert_close(deltas, _np(expected), atol=1e-5)
    boxes = P.decode_deltas_to_boxes(anchors, deltas, "xyxy", "xywh", encoding, variance)
    assert_close(boxes, _np(K.decode_deltas_to_boxes(torch.as_tensor(anchors), deltas, "xyxy",
                                                     "xywh", encoding, variance)), atol=1e-4)
    assert_close(boxes, _np(K.convert_format(BOXES.copy(), "xyxy", "xywh")), atol=1e-3)
    levels = P.decode_deltas_to_boxes({"p3": anchors}, {"p3": deltas}, "xyxy", "xyxy", encoding,
                                      variance)
    assert_close(levels["p3"], BOXES, atol=1e-3)
    with pytest.raises(ValueError, match="variance"):
        P.encode_box_to_deltas(anchors, BOXES, "xyxy", "xyxy", variance=[1, 2])
