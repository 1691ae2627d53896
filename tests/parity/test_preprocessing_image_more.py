"""AugMix, CLAHE, MaxNumBoundingBoxes, RandomElasticTransform and RandomPerspective against
Keras: a transformation drawn by plexus is replayed by Keras's `transform_images`, so the
random draws are shared and the arithmetic is compared; CLAHE and the box padding are
deterministic and compared on the same inputs; the random draws themselves are checked for
known properties with fixed seeds."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L
from tests.parity.oracle import assert_close

X = torch.rand(4, 17, 23, 3, generator=torch.Generator().manual_seed(1)) * 255


def _np(x):
    return torch.as_tensor(np.asarray(x))


@pytest.mark.parametrize("kwargs", [{}, {"scale": 0.4, "factor": (0.5, 1.0)},
                                    {"interpolation": "nearest", "fill_value": 9.0,
                                     "factor": (1.0, 1.0)}])
def test_perspective_matches_keras(kwargs):
    p_layer = L.RandomPerspective(seed=3, **kwargs)
    t = p_layer.get_random_transformation(X)
    out = p_layer.transform_images(X.clone(), t)
    assert_close(out, _np(keras.layers.RandomPerspective(**kwargs).transform_images(X.clone(), t)),
                 atol=2e-3, rtol=1e-5)
    applied = t["apply_perspective"]
    assert bool(applied.any())  # (seed 3 transforms some images: the test compares real work)
    assert torch.equal(out[~applied], X[~applied])


@pytest.mark.parametrize("kwargs", [{}, {"scale": 0.5, "factor": 0.7, "fill_mode": "constant",
                                         "fill_value": 3.0},
                                    {"fill_mode": "nearest"}, {"fill_mode": "mirror"},
                                    {"fill_mode": "wrap", "interpolation": "nearest"}])
def test_elastic_transform_matches_keras(kwargs):
    p_layer = L.RandomElasticTransform(seed=3, **kwargs)
    t = p_layer.get_random_transformation(X)
    # Keras draws its noise inside the op from torch's global stream; draw the same noise
    # here, give it to plexus, and replay Keras from the same state of the stream.
    b, h, w = X.shape[:3]
    torch.manual_seed(5)
    t["noise"] = torch.stack([torch.normal(0.0, 1.0, size=(b, h, w)),
                              torch.normal(0.0, 1.0, size=(b, h, w))], dim=1)
    out = p_layer.transform_images(X.clone(), t)
    torch.manual_seed(5)
    expected = _np(keras.layers.RandomElasticTransform(**kwargs).transform_images(X.clone(), t))
    assert_close(out, expected, atol=1e-3, rtol=1e-5)
    assert float((out - X).abs().max()) > 10.0  # the images really moved


def test_elastic_transform_with_a_wide_kernel_matches_keras():
    # 40x48 images, distortion near 1: sigma about 2 pixels, a 13-tap Gaussian (separable in
    # plexus, one 2D kernel in Keras)
    x = torch.rand(2, 40, 48, 3, generator=torch.Generator().manual_seed(2)) * 255
    kwargs = {"factor": (1.0, 1.0), "scale": (0.9, 1.0)}
    p_layer = L.RandomElasticTransform(seed=1, **kwargs)
    t = p_layer.get_random_transformation(x)
    torch.manual_seed(6)
    t["noise"] = torch.stack([torch.normal(0.0, 1.0, size=(2, 40, 48)),
                              torch.normal(0.0, 1.0, size=(2, 40, 48))], dim=1)
    out = p_layer.transform_images(x.clone(), t)
    torch.manual_seed(6)
    expected = _np(keras.layers.RandomElasticTransform(**kwargs).transform_images(x.clone(), t))
    assert int(6 * 40 * 0.05 * float(t["distortion_factor"])) | 1 >= 11
    assert_close(out, expected, atol=1e-3, rtol=1e-5)


def _clahe_images():
    x = torch.rand(2, 32, 48, 3, generator=torch.Generator().manual_seed(1)) * 200
    x[0, :, :, 0] = x[0, :, :, 0] * 0.2 + 50  # a low-contrast channel
    return x


@pytest.mark.parametrize("kwargs", [{"tile_grid_size": (2, 3)},
                                    {"tile_grid_size": (4, 3), "clip_limit": 2.0},
                                    {"tile_grid_size": (4, 4), "clip_limit": 0},
                                    {"tile_grid_size": (1, 1), "clip_limit": 1.0},
                                    {"tile_grid_size": (2, 2), "value_range": (0, 1)}])
def test_clahe_matches_keras(kwargs):
    x = _clahe_images()
    if kwargs.get("value_range") == (0, 1):
        x = x / 255.0
    out = L.ContrastLimitedAdaptiveHistogramEqualization(**kwargs)(x)
    expected = keras.layers.ContrastLimitedAdaptiveHistogramEqualization(**kwargs)(x)
    assert_close(out, _np(expected), atol=1e-3, rtol=1e-5)
    assert float((out - x).abs().max()) > 0.1 * float(x.max())


def test_clahe_channels_first_integers_and_mirrored_padding():
    x = _clahe_images().to(torch.uint8).permute(0, 3, 1, 2)
    out = L.ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(2, 2),
                                                          data_format="channels_first")(x)
    expected = keras.layers.ContrastLimitedAdaptiveHistogramEqualization(
        tile_grid_size=(2, 2), data_format="channels_first")(x)
    # plexus returns float images, as its other image layers; Keras casts back to uint8
    assert out.dtype == torch.float32
    assert_close(torch.floor(out), _np(expected).float(), atol=1e-3)
    # A size the grid does not divide: padding by mirroring gives the same result as CLAHE of
    # the image padded by NumPy's "symmetric" mode beforehand, cropped back.
    from plexus.layers.preprocessing.image_clahe import clahe
    y = _clahe_images()[:, :29, :33]
    padded = torch.as_tensor(np.pad(y.numpy(), [(0, 0), (0, 3), (0, 2), (0, 0)], "symmetric"))
    assert_close(clahe(y, 3.0, (4, 5)), clahe(padded, 3.0, (4, 5))[:, :29, :33])


def test_clahe_applies_at_inference_inside_a_model_and_saves(tmp_path):
    x = _clahe_images().numpy()
    inputs = plexus.Input(shape=(32, 48, 3))
    model = plexus.Model(inputs, L.ContrastLimitedAdaptiveHistogramEqualization(
        clip_limit=2.0, tile_grid_size=(2, 3))(inputs))
    out = model.predict(x, verbose=0)
    expected = keras.layers.ContrastLimitedAdaptiveHistogramEqualization(
        clip_limit=2.0, tile_grid_size=(2, 3))(x)
    np.testing.assert_allclose(out, np.asarray(expected), atol=1e-3)
    model.save(tmp_path / "clahe.keras")
    k_model = keras.models.load_model(tmp_path / "clahe.keras")
    np.testing.assert_allclose(np.asarray(k_model.predict(x, verbose=0)), out, atol=1e-3)
    reloaded = plexus.models.load_model(tmp_path / "clahe.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), out, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"all_ops": False, "num_chains": 2, "chain_depth": 4,
                                         "factor": 0.6, "alpha": 0.5}])
def test_aug_mix_matches_keras(kwargs):
    p_layer = L.AugMix(seed=11, **kwargs)
    k_layer = keras.layers.AugMix(**kwargs)
    t = p_layer.get_random_transformation(X)
    assert sum(len(c) for c in t["chain_transforms"]) > 0
    out = p_layer.transform_images(X.clone(), t)
    assert_close(out, _np(k_layer.transform_images(X.clone(), t)), atol=2e-3, rtol=1e-5)
    names = {s["layer_name"] for c in t["chain_transforms"] for s in c}
    assert names <= set(p_layer._augment_layers)


def test_aug_mix_draws():
    layer = L.AugMix(num_chains=4, chain_depth=3, seed=2)
    seen, none_steps = set(), 0
    for _ in range(30):
        t = layer.get_random_transformation(X)
        weights = t["chain_mixing_weights"]
        assert weights.shape == (4,) and bool((weights >= 0).all())
        assert abs(float(weights.sum()) - 1.0) < 1e-5
        assert 0.0 <= float(t["weight_sample"]) <= 1.0
        assert len(t["chain_transforms"]) == 4
        for chain in t["chain_transforms"]:
            none_steps += 3 - len(chain)
            seen |= {s["layer_name"] for s in chain}
    assert seen == set(layer._augment_layers)  # every augmentation is drawn
    assert 0 < none_steps < 360  # and some steps apply nothing
    first = L.AugMix(seed=9)(X)
    assert torch.equal(first, L.AugMix(seed=9)(X))  # seeded: reproducible
    assert float(first.min()) >= 0 and float(first.max()) <= 255
    assert torch.equal(L.AugMix(seed=9)(X, training=False), X)


def test_random_draws_follow_factor_and_scale():
    always = L.RandomPerspective(factor=(1.0, 1.0), scale=0.5, seed=0)
    t = always.get_random_transformation(X)
    assert bool(t["apply_perspective"].all())
    moved = t["end_points"] - t["start_points"]
    assert float(moved[:, 0].abs().max()) == 0.0  # the corner at the origin stays (as Keras)
    assert float((moved / t["start_points"].clamp(min=1))[:, 1:].abs().max()) <= 0.25
    assert torch.equal(L.RandomPerspective(factor=0.0, seed=0)(X), X)
    # factor=1.0 draws the probability in [0, 1]: half of the images on average
    half = L.RandomPerspective(seed=1)
    rate = np.mean([half.get_random_transformation(X)["apply_perspective"].float().mean()
                    for _ in range(200)])
    assert 0.4 < rate < 0.6
    assert torch.equal(L.RandomElasticTransform(scale=0.0, seed=0)(X), X)
    elastic = L.RandomElasticTransform(factor=(1.0, 1.0), scale=(0.2, 0.4), seed=0)
    draws = [float(elastic.get_random_transformation(X)["distortion_factor"]) for _ in range(50)]
    assert 0.2 <= min(draws) and max(draws) <= 0.4
    out = elastic(X)
    assert float(out.min()) >= 0 and float(out.max()) <= 255
    assert torch.equal(L.RandomElasticTransform(seed=4)(X), L.RandomElasticTransform(seed=4)(X))
    assert torch.equal(elastic(X, training=False), X)


def test_max_num_bounding_boxes_matches_keras():
    boxes = torch.tensor([[[10, 20, 100, 150], [50, 60, 200, 250], [0, 0, 50, 50]],
                          [[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]]], dtype=torch.float32)
    labels = torch.tensor([[1, 2, 3], [4, 5, 6]])
    images = torch.zeros(2, 8, 8, 3)
    for max_number in (2, 5):
        k_layer = keras.layers.MaxNumBoundingBoxes(max_number, fill_value=-7)
        expected = k_layer.transform_bounding_boxes(
            {"boxes": boxes, "labels": labels}, None)
        out = L.MaxNumBoundingBoxes(max_number, fill_value=-7)(
            {"images": images, "bounding_boxes": {"boxes": boxes, "labels": labels}})
        assert_close(out["bounding_boxes"]["boxes"], _np(expected["boxes"]))
        assert torch.equal(out["bounding_boxes"]["labels"], _np(expected["labels"]))
        assert torch.equal(out["images"], images)


def test_max_num_bounding_boxes_ragged_single_and_config():
    layer = L.MaxNumBoundingBoxes(3)
    out = layer({"images": np.zeros((2, 8, 8, 3)), "labels": np.eye(2),
                 "bounding_boxes": {"boxes": [np.ones((1, 4)), np.ones((5, 4)) * 2],
                                    "labels": [np.array([4]), np.arange(5)]}})
    np.testing.assert_array_equal(out["bounding_boxes"]["labels"].numpy(),
                                  [[4, -1, -1], [0, 1, 2]])
    np.testing.assert_array_equal(out["bounding_boxes"]["boxes"][0].numpy(),
                                  [[1, 1, 1, 1], [-1, -1, -1, -1], [-1, -1, -1, -1]])
    assert out["bounding_boxes"]["boxes"].shape == (2, 3, 4)
    np.testing.assert_array_equal(out["labels"].numpy(), np.eye(2))
    single = layer({"images": np.zeros((8, 8, 3)),
                    "bounding_boxes": {"boxes": [[0, 0, 2, 2]], "labels": [1]}})
    assert single["bounding_boxes"]["boxes"].shape == (3, 4)
    assert layer.compute_output_shape({"images": (2, 8, 8, 3), "bounding_boxes": {
        "boxes": (2, 7, 4), "labels": (2, 7)}})["bounding_boxes"]["boxes"] == (2, 3, 4)
    config = layer.get_config()
    assert config["max_number"] == 3 and config["fill_value"] == -1
    assert keras.layers.MaxNumBoundingBoxes.from_config(config).max_number == 3
    with pytest.raises(ValueError, match="unsupported keys"):
        layer({"images": np.zeros((1, 8, 8, 3)), "bounding_boxes": {
            "boxes": np.zeros((1, 1, 4)), "labels": np.zeros((1, 1)), "scores": 0}})
    with pytest.raises(ValueError, match=r"shape \(num_boxes, 4\)"):
        layer({"images": np.zeros((1, 8, 8, 3)), "bounding_boxes": {
            "boxes": [np.zeros((2, 3))], "labels": [np.zeros(2)]}})
    with pytest.raises(NotImplementedError, match="bounding boxes"):
        L.RandomPerspective()({"images": np.zeros((1, 8, 8, 3)), "bounding_boxes": {
            "boxes": np.zeros((1, 1, 4)), "labels": np.zeros((1, 1))}})


@pytest.mark.parametrize("cls,kwargs", [
    ("AugMix", {"num_chains": 2, "factor": (0.1, 0.4), "all_ops": False, "seed": 1}),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"clip_limit": 3.0,
                                                      "tile_grid_size": (4, 2)}),
    ("MaxNumBoundingBoxes", {"max_number": 4, "fill_value": 0}),
    ("RandomElasticTransform", {"factor": 0.5, "scale": (0.1, 0.3), "fill_mode": "mirror",
                                "value_range": (0, 1), "seed": 2}),
    ("RandomPerspective", {"factor": 0.3, "scale": 0.2, "interpolation": "nearest",
                           "fill_value": 1.0, "seed": 2}),
])
def test_configs_round_trip_with_keras(cls, kwargs):
    p_config = getattr(L, cls)(**kwargs).get_config()
    k_layer = getattr(keras.layers, cls).from_config(p_config)
    k_config = k_layer.get_config()
    for key, value in k_config.items():
        if key in ("name", "dtype", "trainable"):
            continue
        got = p_config[key]
        assert (list(got) if isinstance(got, tuple) else got) == (
            list(value) if isinstance(value, tuple) else value), key
    assert type(plexus.layers.deserialize(plexus.layers.serialize(
        getattr(L, cls)(**kwargs)))) is getattr(L, cls)


def test_augmentations_in_a_model_are_identity_at_inference(tmp_path):
    inputs = plexus.Input(shape=(17, 23, 3))
    x = L.RandomPerspective(scale=0.3, seed=1)(inputs)
    x = L.RandomElasticTransform(scale=0.3, seed=1)(x)
    x = L.AugMix(seed=1)(x)
    model = plexus.Model(inputs, x)
    data = X.numpy()
    np.testing.assert_array_equal(model.predict(data, verbose=0), data)
    assert not np.allclose(model(data, training=True).numpy(), data)
    model.save(tmp_path / "aug.keras")
    k_model = keras.models.load_model(tmp_path / "aug.keras")
    np.testing.assert_allclose(np.asarray(k_model.predict(data, verbose=0)), data, atol=1e-4)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="RandomPerspective: scale"):
        L.RandomPerspective(scale=1.5)
    with pytest.raises(NotImplementedError, match="interpolation"):
        L.RandomPerspective(interpolation="bicubic")
    with pytest.raises(NotImplementedError, match="fill_mode"):
        L.RandomElasticTransform(fill_mode="edge")
    with pytest.raises(ValueError, match="scale"):
        L.RandomElasticTransform(scale=2.0)
    with pytest.raises(ValueError, match="tile_grid_size"):
        L.ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=8)
    with pytest.raises(ValueError, match="value_range"):
        L.ContrastLimitedAdaptiveHistogramEqualization(value_range=(255, 0))
    with pytest.raises(ValueError, match="num_chains"):
        L.AugMix(num_chains=0)
    with pytest.raises(ValueError, match="max_number"):
        L.MaxNumBoundingBoxes(0)
    with pytest.raises(ValueError, match="rank 3"):
        L.RandomPerspective()(np.zeros((8, 8)))


@pytest.mark.parametrize("cls,kwargs", [
    ("RandomPerspective", {"factor": (1.0, 1.0), "scale": 0.4}),
    ("RandomElasticTransform", {"factor": (1.0, 1.0), "scale": 0.5}),
    ("AugMix", {}),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"tile_grid_size": (2, 2)}),
])
def test_channels_first_and_single_images_follow_channels_last(cls, kwargs):
    last = getattr(L, cls)(seed=7, **kwargs) if cls != \
        "ContrastLimitedAdaptiveHistogramEqualization" else getattr(L, cls)(**kwargs)
    first = getattr(L, cls)(seed=7, data_format="channels_first", **kwargs) if cls != \
        "ContrastLimitedAdaptiveHistogramEqualization" else getattr(L, cls)(
            data_format="channels_first", **kwargs)
    expected = last(X)
    assert not torch.allclose(expected, X)
    assert_close(first(X.permute(0, 3, 1, 2)).permute(0, 2, 3, 1), expected, atol=1e-4)
    single = getattr(L, cls)(**({"seed": 7} if "seed" in last.get_config() else {}), **kwargs)
    assert single(X[0]).shape == X[0].shape
