"""The applications of the later families (EfficientNet, EfficientNetV2, ConvNeXt, MobileNet,
MobileNetV3, NASNet, InceptionResNetV2) against Keras: every member's full architecture, the
published weight files and their hashes, the ImageNet-only stem of EfficientNet, and the layers
Keras defines inside application modules in saved files.

Small-input predictions on copied weights live in test_applications_keras.py with the other
families.
"""
import gc
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import plexus  # noqa: E402
from plexus import applications  # noqa: E402
from tests.parity.applications_helpers import (  # noqa: E402
    architecture_summary, assert_same_predictions, calibrate, fresh, keras_application, pair,
    pixel_scale, write_legacy_h5,
)
from tests.parity.oracle import assert_close  # noqa: E402

# `architecture_summary` of each Keras application at its default size with the top, recorded
# from Keras 3.15 (building the largest takes Keras seconds and gigabytes);
# test_recorded_architectures_are_keras (slow) derives every entry from Keras again.
KERAS_ARCHITECTURES = {
    "EfficientNetB0": (5330571, 240, 'f8d24d6388707a75'),
    "EfficientNetB1": (7856239, 342, 'ffb1163befeb08e6'),
    "EfficientNetB2": (9177569, 342, '38b133257e162283'),
    "EfficientNetB3": (12320535, 387, 'd7f25a0e41b68454'),
    "EfficientNetB4": (19466823, 477, 'f67f218cb1d9c432'),
    "EfficientNetB5": (30562527, 579, '6afb732030e8fb6d'),
    "EfficientNetB6": (43265143, 669, '64bf9f17f2639aef'),
    "EfficientNetB7": (66658687, 816, '067fc6559fae8ee9'),
    "EfficientNetV2B0": (7200312, 273, '14d507280244ec50'),
    "EfficientNetV2B1": (8212124, 337, '053faa8fb3cfb27e'),
    "EfficientNetV2B2": (10178374, 352, '360b3f79f8c3e987'),
    "EfficientNetV2B3": (14467622, 412, '029c11faa293b187'),
    "EfficientNetV2S": (21612360, 516, '8c0ffdc986f8cfda'),
    "EfficientNetV2M": (54431388, 743, '0bd7b812c34c1f31'),
    "EfficientNetV2L": (119027848, 1031, 'f896c6ed076c71ad'),
    "ConvNeXtTiny": (28589128, 135, '15b5e1199b7b1a0a'),
    "ConvNeXtSmall": (50223688, 261, '8ff378776300dd5e'),
    "ConvNeXtBase": (88591464, 261, 'ad95d1b2dc6795d7'),
    "ConvNeXtLarge": (197767336, 261, '764bd6b7e28f2d8b'),
    "ConvNeXtXLarge": (350196968, 261, '571f6cd55f1ad10c'),
    "MobileNet": (4253864, 91, 'e52ed007ccdde353'),
    "MobileNetV3Small": (2554968, 164, '210c93ea47c117e0'),
    "MobileNetV3Large": (5507432, 194, 'b2ed013aeb6f1ed5'),
    "NASNetMobile": (5326716, 771, '31801690dca96500'),
    "NASNetLarge": (88949818, 1041, 'eb63d2cb2a125e49'),
    "InceptionResNetV2": (55873736, 782, '5284ee15e32e4d2b'),
}
SMALLEST = ["EfficientNetB0", "EfficientNetV2B0", "ConvNeXtTiny", "MobileNet",
            "MobileNetV3Small", "NASNetMobile", "InceptionResNetV2"]


def _plexus_on_meta(name):
    """The plexus application with its weights on the meta device: shapes, no memory."""
    plexus.clear_session()
    with torch.device("meta"):
        return getattr(applications, name)(weights=None)


@pytest.mark.parametrize("name", SMALLEST)
def test_full_architecture_as_keras(name):
    """Names, types and weight shapes of every layer, parameter count and output shape."""
    assert architecture_summary(_plexus_on_meta(name)) == KERAS_ARCHITECTURES[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(KERAS_ARCHITECTURES) - set(SMALLEST)))
def test_larger_members_full_architecture_as_keras(name):
    test_full_architecture_as_keras(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KERAS_ARCHITECTURES))
def test_recorded_architectures_are_keras(name):
    """The recorded table is Keras's (up to 350M weights: one model at a time)."""
    fresh()
    model = keras_application(name)(weights=None)
    summary = architecture_summary(model)
    del model
    gc.collect()
    assert summary == KERAS_ARCHITECTURES[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["EfficientNetB0", "EfficientNetV2B0", "ConvNeXtTiny",
                                  "MobileNet", "MobileNetV3Large", "NASNetMobile"])
def test_full_size_predictions_as_keras(name):
    """At the size the ImageNet weights were trained at, with the 1000-class top
    (MobileNetV3 takes any size: 224)."""
    km, pm = pair(name)
    shape = tuple(224 if d is None else d for d in km.input_shape[1:])
    rng = np.random.default_rng(4)
    scale = pixel_scale(name)
    calibrate(km, rng, shape, scale)
    assert_same_predictions(km, pm, shape, rng, scale=scale)


def test_weight_file_hashes_are_keras():
    """The hashes a download is checked against are the ones Keras publishes."""
    from keras.src.applications import convnext as kc
    from keras.src.applications import efficientnet as ke
    from keras.src.applications import efficientnet_v2 as ke2
    from keras.src.applications import mobilenet_v3 as km3
    assert applications.efficientnet._HASHES == ke.WEIGHTS_HASHES
    assert applications.efficientnet_v2._HASHES == ke2.WEIGHTS_HASHES
    assert applications.mobilenet_v3._HASHES == km3.WEIGHTS_HASHES
    assert {f"convnext_{k}": v for k, v in applications.convnext._HASHES.items()} == \
        kc.WEIGHTS_HASHES


def test_efficientnet_imagenet_stem_reads_keras_file(tmp_path, monkeypatch):
    """With weights='imagenet', EfficientNet divides once more by the square root of the
    ImageNet standard deviations after its Normalization layer (as Keras does): Keras's model
    and plexus's, the same file, the same predictions; the Normalization statistics (an int32
    count among them) cross in legacy `.h5` files both ways."""
    from keras.src.applications import efficientnet as keras_efficientnet
    from plexus.applications import weights_files
    shape = (32, 32, 3)
    rng = np.random.default_rng(0)
    cache = tmp_path / ".keras" / "models"
    cache.mkdir(parents=True)
    path = str(cache / "efficientnetb0_notop.h5")
    # A first file for Keras to load, written by plexus in Keras 2's layout.
    applications.EfficientNetB0(weights=None, include_top=False,
                                input_shape=shape).save_weights(path)
    monkeypatch.setattr(keras_efficientnet.file_utils, "get_file", lambda *a, **k: path)
    fresh()
    km = keras.applications.EfficientNetB0(weights="imagenet", include_top=False,
                                           input_shape=shape)
    calibrate(km, rng, shape, 255.0)
    write_legacy_h5(km, path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setattr(weights_files, "download", lambda url, path: pytest.fail(url))
    plexus.clear_session()
    pm = applications.EfficientNetB0(weights="imagenet", include_top=False, input_shape=shape)
    assert [l.name for l in pm.layers] == [l.name for l in km.layers]
    assert [l.name for l in pm.layers][1:5] == ["rescaling", "normalization", "rescaling_1",
                                                "stem_conv_pad"]
    assert_same_predictions(km, pm, shape, rng, copy=False, scale=255.0)


@pytest.mark.slow
def test_convnext_reads_legacy_h5_with_nested_models(tmp_path):
    """ConvNeXt's published files hold its stem and downsampling steps as nested models."""
    shape = (32, 32, 3)
    rng = np.random.default_rng(1)
    fresh()
    km = keras.applications.ConvNeXtTiny(weights=None, include_top=False, input_shape=shape)
    calibrate(km, rng, shape, 255.0)
    path = str(tmp_path / "convnext_tiny_notop.h5")
    write_legacy_h5(km, path)
    plexus.clear_session()
    pm = applications.ConvNeXtTiny(weights=path, include_top=False, input_shape=shape)
    assert_same_predictions(km, pm, shape, rng, copy=False, scale=255.0)


def _scaled_residual(lib, layer_scale, custom_scale):
    x = lib.Input((6, 6, 4))
    y = lib.layers.Conv2D(4, 1, name="conv")(x)
    y = layer_scale(0.5, 4, name="scale")(y)
    return lib.Model(x, custom_scale(0.3, name="residual")([x, y]))


def test_application_layers_in_keras_files(tmp_path):
    """ConvNeXt's LayerScale and InceptionResNetV2's CustomScaleLayer live in the application
    modules (Keras saves them under those modules): files cross in both directions."""
    from keras.src.applications import convnext as kc
    from keras.src.applications import inception_resnet_v2 as ki
    from plexus.applications import convnext as pc
    from plexus.applications import inception_resnet_v2 as pi
    x = np.random.default_rng(2).uniform(-1, 1, (2, 6, 6, 4)).astype("float32")
    gamma = [np.arange(1, 5, dtype="float32")]
    km = _scaled_residual(keras, kc.LayerScale, ki.CustomScaleLayer)
    km.get_layer("scale").set_weights(gamma)
    km.save(str(tmp_path / "k.keras"))
    pm = plexus.models.load_model(str(tmp_path / "k.keras"))
    assert [type(l) for l in pm.layers[2:]] == [pc.LayerScale, pi.CustomScaleLayer]
    assert_close(pm(x), km(x).detach().numpy())
    pm = _scaled_residual(plexus, pc.LayerScale, pi.CustomScaleLayer)
    pm.get_layer("scale").set_weights(gamma)
    pm.save(str(tmp_path / "p.keras"))
    km = keras.saving.load_model(str(tmp_path / "p.keras"))
    assert [type(l) for l in km.layers[2:]] == [kc.LayerScale, ki.CustomScaleLayer]
    assert_close(pm(x), km(x).detach().numpy())



def _round_trip(name, kwargs, tmp_path):
    km, pm = pair(name, **kwargs)
    rng = np.random.default_rng(5)
    calibrate(km, rng, kwargs["input_shape"], 255.0)
    pm.set_weights(km.get_weights())
    pm.save(str(tmp_path / "p.keras"))
    km.save(str(tmp_path / "k.keras"))
    from_plexus = keras.saving.load_model(str(tmp_path / "p.keras"))
    from_keras = plexus.models.load_model(str(tmp_path / "k.keras"))
    assert [l.name for l in from_keras.layers] == [l.name for l in km.layers]
    x = rng.uniform(0, 255, (2,) + kwargs["input_shape"]).astype("float32")
    expected = km.predict(x, verbose=0)
    atol = 1e-5 * float(np.abs(expected).max())
    assert_close(from_plexus.predict(x, verbose=0), expected, rtol=1e-5, atol=atol)
    assert_close(from_keras.predict(x, verbose=0), expected, rtol=1e-5, atol=atol)


def test_mobilenet_v3_in_keras_files_both_ways(tmp_path):
    """Its hard sigmoid's recorded operations and its layers cross in `.keras` files."""
    _round_trip("MobileNetV3Small", dict(input_shape=(32, 32, 3), classes=10), tmp_path)


@pytest.mark.slow
def test_convnext_in_keras_files_both_ways(tmp_path):
    """Nested Sequential steps, LayerScale and the residual operations, 28M weights."""
    _round_trip("ConvNeXtTiny", dict(input_shape=(32, 32, 3), include_top=False,
                                     pooling="avg"), tmp_path)
