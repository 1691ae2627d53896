"""Image and audio preprocessing layers against Keras: a transformation drawn by plexus is
replayed by Keras's `transform_images`, so the random draws are shared and the arithmetic is
compared; deterministic layers are compared on the same inputs."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L
from tests.parity.oracle import assert_close

X = torch.rand(4, 9, 11, 3, generator=torch.Generator().manual_seed(1)) * 255

AUGMENTATIONS = [
    ("flip", "RandomFlip", {}),
    ("flip_horizontal", "RandomFlip", {"mode": "horizontal"}),
    ("flip_vertical", "RandomFlip", {"mode": "vertical"}),
    ("rotation_reflect", "RandomRotation", {"factor": 0.2}),
    ("rotation_wrap", "RandomRotation", {"factor": 0.2, "fill_mode": "wrap"}),
    ("rotation_constant", "RandomRotation", {"factor": (-0.3, 0.1), "fill_mode": "constant",
                                             "fill_value": 7.0}),
    ("rotation_nearest_fill", "RandomRotation", {"factor": 0.2, "fill_mode": "nearest"}),
    ("rotation_nearest_interp", "RandomRotation", {"factor": 0.2,
                                                   "interpolation": "nearest"}),
    ("zoom", "RandomZoom", {"height_factor": 0.3, "width_factor": 0.2}),
    ("zoom_in_constant", "RandomZoom", {"height_factor": (-0.4, -0.1), "fill_mode": "constant"}),
    ("translation", "RandomTranslation", {"height_factor": 0.2, "width_factor": 0.3}),
    ("translation_wrap", "RandomTranslation", {"height_factor": 0.2, "width_factor": 0.3,
                                               "fill_mode": "wrap"}),
    ("shear", "RandomShear", {"x_factor": 0.3, "y_factor": 0.2}),
    ("contrast", "RandomContrast", {"factor": 0.5}),
    ("brightness", "RandomBrightness", {"factor": 0.3}),
    ("brightness_unit_range", "RandomBrightness", {"factor": (-0.2, 0.4),
                                                   "value_range": (0, 1)}),
    ("grayscale", "RandomGrayscale", {"factor": 0.5}),
    ("color_degeneration", "RandomColorDegeneration", {"factor": 0.5}),
    ("saturation", "RandomSaturation", {"factor": 0.5}),
    ("hue", "RandomHue", {"factor": 0.5}),
    ("invert", "RandomInvert", {"factor": 0.5}),
    ("posterization", "RandomPosterization", {"factor": 4}),
    ("sharpness", "RandomSharpness", {"factor": 0.5}),
    ("solarization", "Solarization", {"addition_factor": 0.5, "threshold_factor": 0.5}),
    ("auto_contrast", "AutoContrast", {}),
    ("equalization", "Equalization", {}),
    ("mix_up", "MixUp", {}),
    ("cut_mix", "CutMix", {}),
    ("gaussian_blur", "RandomGaussianBlur", {"factor": 0.7, "kernel_size": 5}),
    ("erasing_noise", "RandomErasing", {}),
    ("erasing_value", "RandomErasing", {"factor": 0.8, "fill_value": 7.0}),
]


@pytest.mark.parametrize("name,cls,kwargs", AUGMENTATIONS, ids=[a[0] for a in AUGMENTATIONS])
def test_transform_matches_keras(name, cls, kwargs):
    p_layer = getattr(L, cls)(**kwargs)
    k_layer = getattr(keras.layers, cls)(**kwargs)
    t = p_layer.get_random_transformation(X, training=True)
    out_p = p_layer.transform_images(X.clone(), t)
    out_k = k_layer.transform_images(X.clone(), t)
    # geometric resampling: grid_sample's normalized coordinates against Keras's pixel ones
    assert_close(out_p, out_k, atol=1e-3, rtol=1e-5)


def test_labels_are_mixed_like_keras():
    labels = torch.eye(4)
    for cls in ("MixUp", "CutMix"):
        p_layer, k_layer = getattr(L, cls)(seed=3), getattr(keras.layers, cls)()
        t = p_layer.get_random_transformation(X)
        assert_close(p_layer.transform_labels(labels, t), k_layer.transform_labels(labels, t))
    out = L.MixUp(seed=1)({"images": X, "labels": labels})
    np.testing.assert_allclose(out["labels"].sum(1).numpy(), np.ones(4), rtol=1e-5)


def test_rand_augment_applies_the_chosen_layers():
    layer = L.RandAugment(num_ops=2, seed=5)
    t = layer.get_random_transformation(X)
    expected = X.clone()
    for i in t["layer_idxes"].tolist():  # (Keras's own RandAugment also shifts brightness in
        name = layer._AUGMENT_LAYERS[i]  # place as a side effect, so it is not the oracle)
        k_sub = getattr(keras.layers.RandAugment(), name)
        expected = torch.as_tensor(np.asarray(k_sub.transform_images(
            expected, t["transforms"][name])))
    assert_close(layer.transform_images(X.clone(), t), expected, atol=1e-3)


@pytest.mark.parametrize("cls,args,kwargs", [
    ("Resizing", (5, 7), {}), ("Resizing", (6, 4), {"crop_to_aspect_ratio": True}),
    ("Resizing", (6, 4), {"pad_to_aspect_ratio": True, "fill_value": 2.0}),
    ("Resizing", (12, 15), {"interpolation": "nearest"}),
    ("Resizing", (6, 4), {"interpolation": "bicubic", "antialias": True}),
    ("CenterCrop", (5, 7), {}), ("CenterCrop", (12, 14), {}),
])
def test_deterministic_layers_match_keras(cls, args, kwargs):
    assert_close(getattr(L, cls)(*args, **kwargs)(X), getattr(keras.layers, cls)(*args,
                                                                                 **kwargs)(X))


def test_random_crop_training_and_inference():
    layer = L.RandomCrop(5, 6, seed=0)
    out = layer(X)
    assert out.shape == (4, 5, 6, 3)
    top, left = layer.get_random_transformation(X)
    k_out = keras.layers.RandomCrop(5, 6).transform_images(X, (top, left))
    assert_close(layer.transform_images(X, (top, left)), k_out)
    # inference: the centre cropped to the aspect ratio, resized (what Keras documents)
    expected = keras.layers.Resizing(5, 6, crop_to_aspect_ratio=True)(X)
    assert_close(layer(X, training=False), expected, atol=1e-4)


def test_seeded_layers_reproduce_and_differ_between_calls():
    a, b = L.RandomRotation(0.3, seed=42), L.RandomRotation(0.3, seed=42)
    first = a(X)
    assert torch.equal(first, b(X))
    assert not torch.equal(first, a(X))  # the stream moves on
    plexus.utils.set_random_seed(7)
    u1 = L.RandomFlip()(X)
    plexus.utils.set_random_seed(7)
    assert torch.equal(u1, L.RandomFlip()(X))  # unseeded layers follow the global seed


def test_augmentation_only_in_training_inside_a_model(tmp_path):
    inputs = plexus.Input(shape=(9, 11, 3))
    x = L.RandomFlip(seed=1)(inputs)
    x = L.RandomRotation(0.2, seed=1)(x)
    x = L.RandomZoom(0.2, seed=1)(x)
    outputs = L.Dense(2)(L.GlobalAveragePooling2D()(x))
    model = plexus.Model(inputs, outputs)
    data = X.numpy()
    np.testing.assert_array_equal(model.predict(data, verbose=0), model.predict(data, verbose=0))
    model.compile("adam", "mse")
    model.fit(data, np.zeros((4, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "aug.keras")
    k_model = keras.models.load_model(tmp_path / "aug.keras")
    assert_close(k_model.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-4)


def test_keras_file_with_augmentations_loads_in_inference_mode(tmp_path):
    inputs = keras.Input((9, 11, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)  # Keras records training=True here
    x = keras.layers.RandomContrast(0.5)(x)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    k_model = keras.Model(inputs, outputs)
    k_model.save(tmp_path / "k.keras")
    p_model = plexus.models.load_model(tmp_path / "k.keras")
    data = X.numpy()
    assert_close(p_model.predict(data, verbose=0), k_model.predict(data, verbose=0), atol=1e-4)


def test_channels_first_and_single_images():
    layer = L.RandomRotation(0.2, seed=3, data_format="channels_first")
    t = layer.get_random_transformation(X)
    nchw = X.permute(0, 3, 1, 2)
    p_out = layer._from_nhwc(layer.transform_images(X, t), False)
    k_out = keras.layers.RandomRotation(0.2, data_format="channels_first").transform_images(
        nchw, t)  # (after plexus: Keras's affine_transform rewrites the matrix in place)
    assert_close(p_out, k_out, atol=1e-3)
    assert L.RandomFlip()(X[0]).shape == (9, 11, 3)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="factor"):
        L.RandomRotation(2.0)
    with pytest.raises(NotImplementedError, match="fill_mode"):
        L.RandomZoom(0.1, fill_mode="mirrorball")
    with pytest.raises(ValueError, match="rank 3"):
        L.RandomFlip()(np.zeros((2, 3), "float32"))
    with pytest.raises(TypeError, match="RandomFlip.*strings"):
        L.RandomFlip()(np.array([["a"]]))
    with pytest.raises(NotImplementedError, match="bounding boxes"):
        L.RandomFlip()({"images": X, "bounding_boxes": {"boxes": np.zeros((4, 1, 4))}})


def test_mel_spectrogram_matches_keras():
    audio = np.random.default_rng(0).normal(size=(2, 4000)).astype("float32")
    for kwargs in ({}, {"power_to_db": False, "mag_exp": 1.0, "num_mel_bins": 40,
                        "fft_length": 512, "sequence_stride": 128, "window": "hamming"}):
        p, k = L.MelSpectrogram(**kwargs), keras.layers.MelSpectrogram(**kwargs)
        out_p, out_k = p(audio), k(audio)
        scale = float(np.abs(keras.ops.convert_to_numpy(out_k)).max())
        assert_close(out_p / scale, out_k / scale, atol=1e-5)
        assert tuple(p.compute_output_shape((None, 4000))) == tuple(
            k.compute_output_shape((None, 4000)))


@pytest.mark.parametrize("mode", ["log", "magnitude", "psd", "real", "imag", "stft"])
def test_stft_spectrogram_matches_keras(mode):
    signal = np.random.default_rng(1).normal(size=(2, 600, 2)).astype("float32")
    window = torch.hann_window(128, periodic=False).numpy()  # (Keras needs SciPy for names)
    for kwargs in ({"window": window, "frame_length": 128},
                   {"window": None, "frame_length": 128, "padding": "same",
                    "expand_dims": True, "frame_step": 50, "scaling": "spectrum"}):
        p = L.STFTSpectrogram(mode=mode, **kwargs)
        k = keras.layers.STFTSpectrogram(mode=mode, **kwargs)
        assert_close(p(signal), k(signal), atol=1e-4, rtol=1e-4)
        assert [w.shape for w in p.get_weights()] == [w.shape for w in k.get_weights()]
    named = L.STFTSpectrogram(mode=mode, frame_length=128)(signal)
    assert_close(named, L.STFTSpectrogram(mode=mode, frame_length=128, window=window)(signal),
                 atol=1e-4)


def test_pipeline_runs_its_layers_and_crosses_to_keras(tmp_path):
    pipeline = L.Pipeline([L.RandomFlip("horizontal", seed=1), L.Rescaling(1 / 255.0)])
    assert float(pipeline(X, training=False).max()) <= 1.0
    inputs = keras.Input((9, 11, 3))
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Pipeline(
        [keras.layers.RandomFlip("horizontal"), keras.layers.Rescaling(1 / 255.0)])(inputs)))
    k_model = keras.Model(inputs, outputs)
    k_model.save(tmp_path / "pipe.keras")  # Keras records mask= and training= for it
    p_model = plexus.models.load_model(tmp_path / "pipe.keras")
    assert_close(p_model.predict(X.numpy(), verbose=0), k_model.predict(X.numpy(), verbose=0),
                 atol=1e-4)
