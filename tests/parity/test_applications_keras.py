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
from tests.parity.applications_helpers import (  # noqa: E402
    assert_same_architecture, assert_same_predictions, calibrate, fresh, pair, pixel_scale,
    write_legacy_h5,
)


# Small inputs and a 10-class top (logits) where the architecture allows it: the same layers
# as Keras, then the same predictions with Keras's weights copied in.
SMALL = [
    ("VGG16", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("ResNet50", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("InceptionV3", dict(input_shape=(75, 75, 3), classes=10, classifier_activation=None)),
    ("MobileNetV2", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("MobileNetV2", dict(include_top=False, alpha=0.35, input_shape=(40, 48, 3))),
    ("ResNet50V2", dict(include_top=False, input_shape=(32, 32, 3), pooling="max")),
    ("EfficientNetB0", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("EfficientNetV2B0", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("ConvNeXtTiny", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg")),
    ("MobileNet", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("MobileNetV3Small", dict(input_shape=(32, 32, 3), classes=10,
                              classifier_activation=None)),
]


@pytest.mark.parametrize("name,kwargs", SMALL, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SMALL)])
def test_architecture_and_predictions_as_keras(name, kwargs):
    km, pm = pair(name, **kwargs)
    assert_same_architecture(km, pm)
    rng = np.random.default_rng(0)
    scale = pixel_scale(name)
    calibrate(km, rng, kwargs["input_shape"], scale)
    assert_same_predictions(km, pm, kwargs["input_shape"], rng, scale=scale)


# The rest of the families' predictions: slower (depthwise-separable and densely connected
# networks run slowly on CPU in both frameworks).
SMALL_SLOW = [
    ("VGG19", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg")),
    ("Xception", dict(include_top=False, input_shape=(71, 71, 3), pooling="avg")),
    ("DenseNet121", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("NASNetMobile", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("NASNetLarge", dict(include_top=False, input_shape=(32, 32, 3), pooling="max")),
    ("InceptionResNetV2", dict(include_top=False, input_shape=(75, 75, 3), pooling="avg")),
    ("EfficientNetB1", dict(include_top=False, input_shape=(33, 35, 3), pooling="max")),
    ("EfficientNetV2S", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None,
                             include_preprocessing=False)),
    ("ConvNeXtTiny", dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)),
    ("MobileNet", dict(include_top=False, alpha=0.5, depth_multiplier=2,
                       input_shape=(40, 48, 3))),
    ("MobileNetV3Large", dict(include_top=False, input_shape=(40, 48, 3), pooling="avg")),
    ("MobileNetV3Small", dict(minimalistic=True, alpha=0.75, input_shape=(32, 32, 3),
                              classes=10, classifier_activation=None, dropout_rate=0.0)),
    ("MobileNetV3Large", dict(alpha=1.25, input_shape=(32, 32, 3), classes=10,
                              include_preprocessing=False)),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", SMALL_SLOW,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(SMALL_SLOW)])
def test_more_predictions_as_keras(name, kwargs):
    test_architecture_and_predictions_as_keras(name, kwargs)


# Default image size with the 1000-class top: each family's full architecture.
# (The later families' full architectures: test_applications_families.py.)
FULL = ["VGG16", "ResNet50", "ResNet50V2", "InceptionV3", "Xception", "MobileNetV2",
        "DenseNet121"]


@pytest.mark.parametrize("name", FULL)
def test_full_size_with_top_as_keras(name):
    km, pm = pair(name)
    assert_same_architecture(km, pm)
    assert pm.input_shape == km.input_shape


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VGG19", "ResNet101", "ResNet152", "ResNet101V2",
                                  "ResNet152V2", "DenseNet169", "DenseNet201"])
def test_deeper_variants_full_size_as_keras(name):
    """Same blocks as the family's smallest member, deeper (up to 60M weights)."""
    km, pm = pair(name)
    assert_same_architecture(km, pm)


def test_weights_path_reads_keras_files(tmp_path):
    """weights=<path> loads a Keras 3 `.weights.h5` and a legacy `.h5` into the architecture."""
    fresh()
    km = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                        input_shape=(32, 32, 3), pooling="avg")
    calibrate(km, np.random.default_rng(2), (32, 32, 3))
    new_file = str(tmp_path / "m.weights.h5")
    km.save_weights(new_file)
    legacy_file = str(tmp_path / "m.h5")
    write_legacy_h5(km, legacy_file)
    for path in (new_file, legacy_file):
        plexus.clear_session()
        pm = applications.MobileNetV2(weights=path, include_top=False, alpha=0.35,
                                      input_shape=(32, 32, 3), pooling="avg")
        assert_same_predictions(km, pm, (32, 32, 3), np.random.default_rng(3), copy=False)


def test_imagenet_weights_found_in_keras_cache(tmp_path, monkeypatch):
    """weights='imagenet' reads the standard file from ~/.keras/models without downloading."""
    from plexus.applications import weights_files
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)

    def no_network(url, path):
        raise AssertionError(f"tried to download {url}")
    monkeypatch.setattr(weights_files, "download", no_network)
    fresh()
    km = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                        input_shape=(96, 96, 3))
    calibrate(km, np.random.default_rng(4), (96, 96, 3))
    cache = tmp_path / ".keras" / "models"
    cache.mkdir(parents=True)
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    write_legacy_h5(km, str(cache / fname))
    plexus.clear_session()
    pm = applications.MobileNetV2(weights="imagenet", include_top=False, alpha=0.35,
                                  input_shape=(96, 96, 3))
    assert_same_predictions(km, pm, (96, 96, 3), np.random.default_rng(5), copy=False)


@pytest.mark.parametrize("module,mode", [
    ("vgg16", "caffe"), ("vgg19", "caffe"), ("resnet50", "caffe"), ("resnet", "caffe"),
    ("resnet_v2", "tf"), ("inception_v3", "tf"), ("xception", "tf"), ("mobilenet_v2", "tf"),
    ("densenet", "torch"), ("mobilenet", "tf"), ("nasnet", "tf"), ("inception_resnet_v2", "tf"),
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


@pytest.mark.parametrize("module", ["efficientnet", "efficientnet_v2", "convnext",
                                    "mobilenet_v3"])
def test_preprocess_input_passes_through_as_keras(module):
    """Models that scale pixels themselves: preprocess_input returns its input as it is."""
    images = np.random.default_rng(6).uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    assert getattr(keras.applications, module).preprocess_input(images) is images
    assert getattr(applications, module).preprocess_input(images) is images


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
    from keras.src.applications import (
        convnext, densenet, efficientnet, efficientnet_v2, inception_resnet_v2, inception_v3,
        mobilenet, mobilenet_v2, mobilenet_v3, nasnet, resnet, vgg16, vgg19, xception,
    )
    rn = resnet.BASE_WEIGHTS_PATH + "{}_weights_tf_dim_ordering_tf_kernels{}.h5"
    mb = (mobilenet_v2.BASE_WEIGHT_PATH
          + "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224{}.h5")
    irv2 = (inception_resnet_v2.BASE_WEIGHT_URL
            + "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels{}.h5")
    v3 = mobilenet_v3.BASE_WEIGHT_PATH + "weights_mobilenet_v3_{}_224_1.0_float{}.h5"

    def named(module, name):
        base = module.BASE_WEIGHTS_PATH + name
        return base + ".h5", base + "_notop.h5"
    return {
        "EfficientNetB0": named(efficientnet, "efficientnetb0"),
        "EfficientNetB7": named(efficientnet, "efficientnetb7"),
        "EfficientNetV2B0": named(efficientnet_v2, "efficientnetv2-b0"),
        "EfficientNetV2L": named(efficientnet_v2, "efficientnetv2-l"),
        "ConvNeXtTiny": named(convnext, "convnext_tiny"),
        "ConvNeXtXLarge": named(convnext, "convnext_xlarge"),
        "MobileNet": (mobilenet.BASE_WEIGHT_PATH + "mobilenet_1_0_224_tf.h5",
                      mobilenet.BASE_WEIGHT_PATH + "mobilenet_1_0_224_tf_no_top.h5"),
        "MobileNetV3Small": (v3.format("small", ""), v3.format("small", "_no_top_v2")),
        "MobileNetV3Large": (v3.format("large", ""), v3.format("large", "_no_top_v2")),
        "NASNetMobile": (nasnet.NASNET_MOBILE_WEIGHT_PATH, nasnet.NASNET_MOBILE_WEIGHT_PATH_NO_TOP),
        "NASNetLarge": (nasnet.NASNET_LARGE_WEIGHT_PATH, nasnet.NASNET_LARGE_WEIGHT_PATH_NO_TOP),
        "InceptionResNetV2": (irv2.format(""), irv2.format("_notop")),
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


# Keras caches these files under another name than the published one.
_CACHE_NAMES = {"NASNetMobile": ("nasnet_mobile.h5", "nasnet_mobile_no_top.h5"),
                "NASNetLarge": ("nasnet_large.h5", "nasnet_large_no_top.h5")}


@pytest.mark.filterwarnings("ignore:MobileNet(V2|V3Small|V3Large)?. input_shape is undefined")
@pytest.mark.parametrize("name", sorted(_keras_urls()))
def test_imagenet_weights_come_from_keras_urls(name, tmp_path, monkeypatch):
    """weights='imagenet' asks for the file Keras publishes, under Keras's file name; offline
    the error names the cache path, and no weight is made before the file is found."""
    from plexus.applications import weights_files
    from plexus.layers.layer import Layer
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    asked = []

    def offline(url, path):
        asked.append(url)
        raise OSError("network is unreachable")

    def no_weights(*args, **kwargs):
        raise AssertionError("a layer made weights before the weights file was found")
    monkeypatch.setattr(weights_files, "download", offline)
    monkeypatch.setattr(Layer, "add_weight", no_weights)
    for i, include_top in enumerate((True, False)):
        with pytest.raises(OSError) as info:
            getattr(applications, name)(weights="imagenet", include_top=include_top)
        fname = _CACHE_NAMES[name][i] if name in _CACHE_NAMES else asked[-1].rsplit("/", 1)[1]
        assert os.path.join(str(tmp_path), ".keras", "models", fname) in str(info.value)
    assert tuple(asked) == _keras_urls()[name]
