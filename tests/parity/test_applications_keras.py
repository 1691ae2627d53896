"""Applications against Keras: same layer names, order, parameter counts and weight shapes, and
the same predictions on weights copied from a Keras model (or read from a Keras weights file).

Small inputs keep this affordable on CPU; one default-size model with the classifier top per
family checks the full architecture's counts.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import plexus  # noqa: E402
from plexus import applications  # noqa: E402
from tests.parity.oracle import assert_close  # noqa: E402


def _fresh():
    keras.backend.clear_session()
    plexus.clear_session()


def _pair(name, **kwargs):
    """The same application built by Keras and by plexus, from fresh name counters (and
    seeded: Keras's random weights, which the predictions are compared on, do not depend on
    what ran before)."""
    _fresh()
    keras.utils.set_random_seed(0)
    km = getattr(keras.applications, name)(weights=None, **kwargs)
    _fresh()
    pm = getattr(applications, name)(weights=None, **kwargs)
    return km, pm


def _assert_same_architecture(km, pm):
    assert pm.name == km.name
    assert [l.name for l in pm.layers] == [l.name for l in km.layers]
    assert [type(l).__name__ for l in pm.layers] == [type(l).__name__ for l in km.layers]
    assert pm.count_params() == km.count_params()
    assert [w.shape for w in pm.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    assert tuple(pm.output_shape) == tuple(km.output_shape)


def _calibrate_batchnorm(model, rng, input_shape):
    """Random BatchNormalization scales and offsets, then moving statistics taken from one
    batch of random images: the network then keeps its input's signal (with freshly
    initialized statistics, deep random networks give nearly the same output for any input),
    and inference-mode normalization with non-trivial moving statistics is exercised."""
    bns = [l for l in model.layers if type(l).__name__ == "BatchNormalization"]
    for layer in bns:
        ws = layer.get_weights()
        shape = ws[0].shape
        if layer.scale:
            ws[0] = rng.uniform(0.5, 1.5, shape).astype("float32")
        if layer.center:
            ws[1 if layer.scale else 0] = rng.normal(0.0, 0.1, shape).astype("float32")
        layer.set_weights(ws)
        layer.momentum = 0.0  # the next training-mode call sets the moving statistics
    if not bns:
        return
    model(rng.uniform(0, 1, (4,) + tuple(input_shape)).astype("float32"), training=True)
    for layer in bns:
        # Channels that hardly vary over the batch would divide by ~sqrt(epsilon) and amplify
        # rounding differences; floor their variance at the layer's median.
        ws = layer.get_weights()
        floor = float(np.median(ws[-1])) or 1.0
        ws[-1] = np.maximum(ws[-1], floor)
        layer.set_weights(ws)


def _assert_same_predictions(km, pm, input_shape, rng, copy=True):
    """Keras's weights copied into plexus give Keras's predictions (and before the copy,
    plexus's own random weights do not: the comparison can fail)."""
    x = rng.uniform(0, 1, (2,) + tuple(input_shape)).astype("float32")
    expected = km.predict(x, verbose=0)
    scale = float(np.abs(expected).max())
    # The outputs must depend on the input, or the comparison would prove little.
    assert float(np.abs(expected[0] - expected[1]).max()) > 1e-2 * scale > 0
    if copy:
        assert not np.allclose(pm(x).detach().numpy(), expected, rtol=1e-2, atol=1e-2 * scale)
        pm.set_weights(km.get_weights())
    assert_close(pm(x), expected, rtol=1e-4, atol=1e-4 * scale)


# Small inputs and a 10-class top (logits) where the architecture allows it: the same layers
# as Keras, then the same predictions with Keras's weights copied in.
SMALL = [
    ("VGG16", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("ResNet50", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("InceptionV3", dict(input_shape=(75, 75, 3), classes=10, classifier_activation=None)),
    ("MobileNetV2", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("MobileNetV2", dict(include_top=False, alpha=0.35, input_shape=(40, 48, 3))),
    ("ResNet50V2", dict(include_top=False, input_shape=(32, 32, 3), pooling="max")),
]


@pytest.mark.parametrize("name,kwargs", SMALL, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SMALL)])
def test_architecture_and_predictions_as_keras(name, kwargs):
    km, pm = _pair(name, **kwargs)
    _assert_same_architecture(km, pm)
    rng = np.random.default_rng(0)
    _calibrate_batchnorm(km, rng, kwargs["input_shape"])
    _assert_same_predictions(km, pm, kwargs["input_shape"], rng)


# The rest of the families' predictions: slower (depthwise-separable and densely connected
# networks run slowly on CPU in both frameworks).
SMALL_SLOW = [
    ("VGG19", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg")),
    ("Xception", dict(include_top=False, input_shape=(71, 71, 3), pooling="avg")),
    ("DenseNet121", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", SMALL_SLOW, ids=[n for n, _ in SMALL_SLOW])
def test_more_predictions_as_keras(name, kwargs):
    test_architecture_and_predictions_as_keras(name, kwargs)


# Default image size with the 1000-class top: each family's full architecture.
FULL = ["VGG16", "ResNet50", "ResNet50V2", "InceptionV3", "Xception", "MobileNetV2",
        "DenseNet121"]


@pytest.mark.parametrize("name", FULL)
def test_full_size_with_top_as_keras(name):
    km, pm = _pair(name)
    _assert_same_architecture(km, pm)
    assert pm.input_shape == km.input_shape


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VGG19", "ResNet101", "ResNet152", "ResNet101V2",
                                  "ResNet152V2", "DenseNet169", "DenseNet201"])
def test_deeper_variants_full_size_as_keras(name):
    """Same blocks as the family's smallest member, deeper (up to 60M weights)."""
    km, pm = _pair(name)
    _assert_same_architecture(km, pm)


def _write_legacy_h5(keras_model, path):
    """A Keras 2 style `.h5` weights file, the format of the published ImageNet weights."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_model)


def test_weights_path_reads_keras_files(tmp_path):
    """weights=<path> loads a Keras 3 `.weights.h5` and a legacy `.h5` into the architecture."""
    _fresh()
    km = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                        input_shape=(32, 32, 3), pooling="avg")
    _calibrate_batchnorm(km, np.random.default_rng(2), (32, 32, 3))
    new_file = str(tmp_path / "m.weights.h5")
    km.save_weights(new_file)
    legacy_file = str(tmp_path / "m.h5")
    _write_legacy_h5(km, legacy_file)
    for path in (new_file, legacy_file):
        plexus.clear_session()
        pm = applications.MobileNetV2(weights=path, include_top=False, alpha=0.35,
                                      input_shape=(32, 32, 3), pooling="avg")
        _assert_same_predictions(km, pm, (32, 32, 3), np.random.default_rng(3), copy=False)


def test_imagenet_weights_found_in_keras_cache(tmp_path, monkeypatch):
    """weights='imagenet' reads the standard file from ~/.keras/models without downloading."""
    from plexus.applications import weights_files
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)

    def no_network(url, path):
        raise AssertionError(f"tried to download {url}")
    monkeypatch.setattr(weights_files, "download", no_network)
    _fresh()
    km = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                        input_shape=(96, 96, 3))
    _calibrate_batchnorm(km, np.random.default_rng(4), (96, 96, 3))
    cache = tmp_path / ".keras" / "models"
    cache.mkdir(parents=True)
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    _write_legacy_h5(km, str(cache / fname))
    plexus.clear_session()
    pm = applications.MobileNetV2(weights="imagenet", include_top=False, alpha=0.35,
                                  input_shape=(96, 96, 3))
    _assert_same_predictions(km, pm, (96, 96, 3), np.random.default_rng(5), copy=False)


@pytest.mark.parametrize("module,mode", [
    ("vgg16", "caffe"), ("vgg19", "caffe"), ("resnet50", "caffe"), ("resnet", "caffe"),
    ("resnet_v2", "tf"), ("inception_v3", "tf"), ("xception", "tf"), ("mobilenet_v2", "tf"),
    ("densenet", "torch"),
])
def test_preprocess_input_as_keras(module, mode):
    rng = np.random.default_rng(6)
    images = rng.uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    expected = getattr(keras.applications, module).preprocess_input(images.copy())
    ours = getattr(applications, module).preprocess_input
    np.testing.assert_allclose(ours(images), expected, rtol=1e-6, atol=1e-4)
    # Integer images and torch tensors too; the input itself is left untouched.
    ints = rng.integers(0, 256, (1, 3, 3, 3)).astype("uint8")
    np.testing.assert_allclose(ours(ints), getattr(keras.applications, module).preprocess_input(
        ints.copy()), rtol=1e-6, atol=1e-4)
    import torch
    t = torch.from_numpy(images.copy())
    np.testing.assert_allclose(ours(t).numpy(), expected, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(t.numpy(), images)
    # Symbolic: recorded in the graph, same numbers when run.
    inp = plexus.Input(shape=(5, 4, 3))
    model = plexus.Model(inp, ours(inp))
    np.testing.assert_allclose(model(images).numpy(), expected, rtol=1e-6, atol=1e-4)


def test_preprocess_input_channels_first_as_keras():
    from keras.applications import imagenet_utils as k_utils
    images = np.random.default_rng(7).uniform(0, 255, (2, 3, 4, 5)).astype("float32")
    for mode in ("caffe", "tf", "torch"):
        expected = k_utils.preprocess_input(images.copy(), data_format="channels_first",
                                            mode=mode)
        ours = applications.imagenet_utils.preprocess_input(images, "channels_first", mode)
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-4)


def _keras_urls():
    """Where Keras downloads each application's ImageNet weights (with top, without top)."""
    from keras.src.applications import (densenet, inception_v3, mobilenet_v2, resnet, vgg16,
                                        vgg19, xception)
    rn = resnet.BASE_WEIGHTS_PATH + "{}_weights_tf_dim_ordering_tf_kernels{}.h5"
    mb = (mobilenet_v2.BASE_WEIGHT_PATH
          + "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224{}.h5")
    return {
        "VGG16": (vgg16.WEIGHTS_PATH, vgg16.WEIGHTS_PATH_NO_TOP),
        "VGG19": (vgg19.WEIGHTS_PATH, vgg19.WEIGHTS_PATH_NO_TOP),
        "InceptionV3": (inception_v3.WEIGHTS_PATH, inception_v3.WEIGHTS_PATH_NO_TOP),
        "Xception": (xception.WEIGHTS_PATH, xception.WEIGHTS_PATH_NO_TOP),
        "DenseNet121": (densenet.DENSENET121_WEIGHT_PATH, densenet.DENSENET121_WEIGHT_PATH_NO_TOP),
        "DenseNet201": (densenet.DENSENET201_WEIGHT_PATH, densenet.DENSENET201_WEIGHT_PATH_NO_TOP),
        "ResNet50": (rn.format("resnet50", ""), rn.format("resnet50", "_notop")),
        "ResNet152": (rn.format("resnet152", ""), rn.format("resnet152", "_notop")),
        "ResNet50V2": (rn.format("resnet50v2", ""), rn.format("resnet50v2", "_notop")),
        "MobileNetV2": (mb.format(""), mb.format("_no_top")),
    }


@pytest.mark.filterwarnings("ignore:MobileNetV2. input_shape is undefined")
@pytest.mark.parametrize("name", sorted(_keras_urls()))
def test_imagenet_weights_come_from_keras_urls(name, tmp_path, monkeypatch):
    """weights='imagenet' asks for the file Keras publishes, under Keras's file name; offline
    the error names the cache path (and nothing is built before the file is found)."""
    from plexus.applications import weights_files
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    asked = []

    def offline(url, path):
        asked.append(url)
        raise OSError("network is unreachable")
    monkeypatch.setattr(weights_files, "download", offline)
    for include_top in (True, False):
        with pytest.raises(OSError) as info:
            getattr(applications, name)(weights="imagenet", include_top=include_top)
        cached = os.path.join(str(tmp_path), ".keras", "models", asked[-1].rsplit("/", 1)[1])
        assert cached in str(info.value)
    assert tuple(asked) == _keras_urls()[name]
