"""plexus.applications on their own: the seeds' snippets, arguments, errors, weight files,
the ImageNet cache and download (never the real network), decode_predictions.

Comparisons with Keras itself live in tests/parity/test_applications_keras.py.
"""
import json
import os
import urllib.error

import numpy as np
import pytest
import torch

import plexus
from plexus import Input, Model, applications, layers
from plexus.applications import imagenet_utils, weights_files


def small_mobilenet(**kwargs):
    """The cheapest application: MobileNetV2 at width 0.35."""
    args = dict(weights=None, include_top=False, alpha=0.35, input_shape=(32, 32, 3))
    args.update(kwargs)
    return applications.MobileNetV2(**args)


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """An empty home folder (so an empty ~/.keras cache) and a downloader that fails like a
    machine without a network."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    calls = []

    def no_network(url, path):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(weights_files, "download", no_network)
    return tmp_path, calls


# ---------------------------------------------------------------- the seeds' snippets
@pytest.fixture(scope="module")
def xception_base():
    """The seed's shared vision model (built once for the tests that use it)."""
    return applications.Xception(weights=None, include_top=False)


def test_seed_shared_xception_base(xception_base):
    left_input = Input(shape=(250, 250, 3))
    right_input = Input(shape=(250, 250, 3))
    left_features = xception_base(left_input)
    right_features = xception_base(right_input)
    merged_features = layers.concatenate([left_features, right_features], axis=-1)
    assert xception_base.input_shape == (None, None, None, 3)
    assert merged_features.shape == (None, 8, 8, 4096)
    model = Model([left_input, right_input], merged_features)
    # One set of weights, used by both branches.
    assert model.count_params() == xception_base.count_params() == 20_861_480
    assert [l.name for l in model.layers].count("xception") == 1


def test_shared_xception_base_runs_on_data(xception_base):
    """The same two-branch graph run on images (small ones, to keep the test quick)."""
    left, right = Input(shape=(71, 71, 3)), Input(shape=(71, 71, 3))
    model = Model([left, right],
                  layers.concatenate([xception_base(left), xception_base(right)], axis=-1))
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (1, 71, 71, 3)).astype("float32")
    b = rng.uniform(-1, 1, (1, 71, 71, 3)).astype("float32")
    out = model([a, b]).detach()
    assert tuple(out.shape) == (1, 3, 3, 4096)
    both = xception_base(np.concatenate([a, b])).detach()
    torch.testing.assert_close(out[..., :2048], both[:1])
    torch.testing.assert_close(out[..., 2048:], both[1:])


def test_seed_vgg19_feature_extraction():
    vgg19 = applications.VGG19(weights=None)
    features_list = [layer.output for layer in vgg19.layers]
    feat_extraction_model = plexus.Model(inputs=vgg19.input, outputs=features_list)
    img = np.random.random((1, 224, 224, 3)).astype("float32")
    extracted_features = feat_extraction_model(img)
    assert len(extracted_features) == len(vgg19.layers) == 26
    assert tuple(extracted_features[0].shape) == (1, 224, 224, 3)
    assert tuple(extracted_features[1].shape) == (1, 224, 224, 64)
    assert tuple(extracted_features[-5].shape) == (1, 7, 7, 512)  # block5_pool
    probabilities = extracted_features[-1].detach()
    assert tuple(probabilities.shape) == (1, 1000)
    torch.testing.assert_close(probabilities.sum(), torch.tensor(1.0))
    torch.testing.assert_close(probabilities, vgg19(img).detach())


def test_seed_vgg19_default_weights_offline_error(offline_home):
    """`VGG19()` asks for ImageNet weights; offline and without the file the error says
    where to put it, and nothing big is built first."""
    home, calls = offline_home
    with pytest.raises(OSError) as info:
        applications.VGG19()
    message = str(info.value)
    expected = os.path.join(str(home), ".keras", "models",
                            "vgg19_weights_tf_dim_ordering_tf_kernels.h5")
    assert expected in message
    assert "storage.googleapis.com/tensorflow/keras-applications/vgg19/" in message
    assert "weights=None" in message
    assert calls == ["https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
                     "vgg19_weights_tf_dim_ordering_tf_kernels.h5"]
    assert not list((home / ".keras" / "models").iterdir())  # no partial file left


# ---------------------------------------------------------------- constructor arguments
def test_pooling_and_output_shapes():
    assert small_mobilenet().output_shape == (None, 1, 1, 1280)
    assert small_mobilenet(pooling="avg").output_shape == (None, 1280)
    assert small_mobilenet(pooling="max").output_shape == (None, 1280)
    model = small_mobilenet(include_top=True, classes=7, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 7)
    assert model.name == "mobilenetv2_0.35_64"
    assert small_mobilenet(name="features").name == "features"


def test_input_tensor_from_another_layer():
    """A model built on a preprocessed tensor starts from that tensor's Input."""
    raw = Input(shape=(32, 32, 3))
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0)(raw)
    model = small_mobilenet(input_tensor=scaled, input_shape=None)
    assert len(model.inputs) == 1 and model.inputs[0] is raw
    assert [l.name for l in model.layers][:3] == [raw.node.layer.name, scaled.node.layer.name,
                                                  "Conv1"]
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    plain = small_mobilenet()
    plain.set_weights(model.get_weights())  # Rescaling has no weights
    torch.testing.assert_close(model(x), plain(x / 127.5 - 1.0))


def test_input_tensor_must_be_symbolic():
    with pytest.raises(TypeError, match="input_tensor"):
        applications.ResNet50(weights=None, input_tensor=torch.zeros(1, 32, 32, 3))


def test_classifier_activation():
    model = small_mobilenet(include_top=True, classes=5, classifier_activation=None)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    logits = model(x).detach()
    assert model.get_layer("predictions").activation is plexus.activations.get(None)
    probs = torch.softmax(logits, -1)
    soft = small_mobilenet(include_top=True, classes=5)
    soft.set_weights(model.get_weights())
    torch.testing.assert_close(soft(x).detach(), probs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(weights="no/such/file.h5"), "weights"),
    (dict(weights="imagenet", classes=10), "classes"),
    (dict(weights=None, include_top=False, input_shape=(16, 16, 3)), "at least 32x32"),
    (dict(weights=None, include_top=False, input_shape=(32, 32)), "three integers"),
    (dict(weights=None, include_top=True, input_shape=(None, None, 3)), "fixed"),
    (dict(weights="imagenet", include_top=True, input_shape=(100, 100, 3)), r"\(224, 224, 3\)"),
    (dict(weights="imagenet", include_top=False, input_shape=(64, 64, 1)), "3 input channels"),
    (dict(weights="imagenet", classifier_activation="relu"), "classifier_activation"),
    (dict(weights=None, include_top=False, pooling="mean"), "pooling"),
])
def test_bad_arguments(kwargs, match, offline_home):
    with pytest.raises(ValueError, match=match):
        applications.ResNet50(**kwargs)
    assert offline_home[1] == []  # argument errors come before any download


def test_mobilenet_bad_alpha_for_imagenet(offline_home):
    with pytest.raises(ValueError, match="alpha"):
        applications.MobileNetV2(weights="imagenet", alpha=0.6)


@pytest.mark.parametrize("ctor,kwargs,match", [
    ("MobileNet", dict(weights="imagenet", alpha=0.3), "alpha"),
    ("MobileNet", dict(weights="imagenet", depth_multiplier=2), "depth_multiplier"),
    ("MobileNetV3Small", dict(weights="imagenet", alpha=0.5), "alpha"),
    ("MobileNetV3Large", dict(weights="imagenet", alpha=0.75, minimalistic=True), "alpha"),
    ("MobileNetV3Small", dict(weights=None, input_shape=(16, 40, 3)), "at least 32x32"),
    ("NASNetLarge", dict(weights="imagenet", include_top=False, input_shape=(None, None, 3)),
     "fixed input size"),
    ("EfficientNetB3", dict(weights="imagenet", classes=10), "classes"),
    ("EfficientNetV2S", dict(weights=None, include_top=False, input_shape=(31, 64, 3)),
     "at least 32x32"),
    ("ConvNeXtBase", dict(weights=None, include_top=False, pooling="mean"), "pooling"),
    ("InceptionResNetV2", dict(weights=None, include_top=False, input_shape=(74, 80, 3)),
     "75x75"),
])
def test_later_families_bad_arguments(ctor, kwargs, match, offline_home):
    """Wrong arguments fail before any layer has weights and before any download."""
    from plexus.layers.layer import Layer

    def no_weights(*args, **kw):
        raise AssertionError("a layer made weights before the arguments were checked")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Layer, "add_weight", no_weights)
        with pytest.raises(ValueError, match=match):
            getattr(applications, ctor)(**kwargs)
    assert offline_home[1] == []


def test_mobilenet_v3_input_tensor_and_shape():
    inp = Input(shape=(48, 40, 3))
    model = applications.MobileNetV3Small(weights=None, input_tensor=inp, include_top=False,
                                          minimalistic=True, alpha=0.75)
    assert model.inputs[0] is inp and model.output_shape == (None, 2, 2, 432)
    with pytest.raises(ValueError, match="disagree"):
        applications.MobileNetV3Small(weights=None, input_tensor=inp, input_shape=(48, 48, 3))


def test_imagenet_file_follows_the_architecture_not_the_name(offline_home):
    """A custom `name` keeps the architecture's ImageNet file (Keras would look for
    `<name>.h5`, which does not exist)."""
    with pytest.raises(OSError, match="efficientnetv2-s_notop.h5"):
        applications.EfficientNetV2S(weights="imagenet", include_top=False, name="backbone")
    with pytest.raises(OSError, match="convnext_small.h5"):
        applications.ConvNeXtSmall(name="mine")


def test_later_families_train():
    """One `fit` step through squeeze-and-excite, drop-connect dropout, hard-swish, the
    Normalization stem: finite loss, trainable weights move, the stem's
    Normalization statistics (not trainable) stay."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, 4)
    for ctor in ("EfficientNetB0", "MobileNetV3Small"):
        plexus.clear_session()
        model = getattr(applications, ctor)(weights=None, input_shape=(32, 32, 3), classes=3)
        before = [w.copy() for w in model.get_weights()]
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = model.get_weights()
        moved = [not np.array_equal(a, b) for a, b in zip(before, after)]
        assert sum(moved) > len(moved) // 2, ctor
        if ctor == "EfficientNetB0":
            norm = model.get_layer("normalization").get_weights()
            np.testing.assert_array_equal(norm[0], np.zeros(3, "float32"))


def test_minimum_sizes():
    with pytest.raises(ValueError, match="75x75"):
        applications.InceptionV3(weights=None, include_top=False, input_shape=(74, 74, 3))
    with pytest.raises(ValueError, match="71x71"):
        applications.Xception(weights=None, include_top=False, input_shape=(70, 80, 3))


# ---------------------------------------------------------------- weights files
def test_weights_path_round_trip(tmp_path):
    model = small_mobilenet(pooling="avg")
    rng = np.random.default_rng(1)
    model.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    path = str(tmp_path / "mobile.weights.h5")
    model.save_weights(path)
    plexus.clear_session()
    loaded = small_mobilenet(pooling="avg", weights=path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_file_for_another_architecture_is_refused(tmp_path):
    path = str(tmp_path / "mobile.weights.h5")
    small_mobilenet().save_weights(path)
    with pytest.raises(Exception) as info:
        applications.VGG16(weights=path, include_top=False, input_shape=(32, 32, 3))
    assert type(info.value).__name__ != "KeyError"
    assert "mobile.weights.h5" in str(info.value)


def test_imagenet_file_from_cache_then_download(offline_home, monkeypatch):
    """The cached file is used without the network; a missing one is downloaded to the cache
    (here by a fake downloader) and its hash checked."""
    home, calls = offline_home
    source = small_mobilenet()
    source_path = str(home / "source.weights.h5")
    source.save_weights(source_path)
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"

    def fake_download(url, path):
        calls.append(url)
        with open(source_path, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
    monkeypatch.setattr(weights_files, "download", fake_download)
    model = small_mobilenet(weights="imagenet", input_shape=(96, 96, 3))
    assert calls == [f"https://storage.googleapis.com/tensorflow/keras-applications/"
                     f"mobilenet_v2/{fname}"]
    assert os.path.exists(home / ".keras" / "models" / fname)
    for a, b in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)
    small_mobilenet(weights="imagenet", input_shape=(96, 96, 3))
    assert len(calls) == 1  # the second time it came from the cache


def test_keras_home_is_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert weights_files.default_cache_dir() == str(tmp_path / "kh" / "models")


def test_download_with_wrong_hash_is_rejected(offline_home, monkeypatch):
    home, _ = offline_home

    def corrupt(url, path):
        with open(path, "wb") as f:
            f.write(b"not the file")
    monkeypatch.setattr(weights_files, "download", corrupt)
    with pytest.raises(OSError, match="hash"):
        applications.ResNet50(weights="imagenet", include_top=False)
    assert not list((home / ".keras" / "models").iterdir())


# ---------------------------------------------------------------- decode_predictions
def _fake_class_index(home):
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    folder = home / ".keras" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "imagenet_class_index.json", "w") as f:
        json.dump(index, f)


def test_decode_predictions(offline_home, monkeypatch):
    monkeypatch.setattr(imagenet_utils, "_CLASS_INDEX", None)
    _fake_class_index(offline_home[0])
    preds = np.full((2, 1000), 1e-4, dtype="float32")
    preds[0, [3, 7, 500]] = [0.5, 0.3, 0.1]
    preds[1, 999] = 0.9
    decoded = applications.vgg16.decode_predictions(preds, top=3)
    assert [r[:2] for r in decoded[0]] == [("n00000003", "class_3"), ("n00000007", "class_7"),
                                           ("n00000500", "class_500")]
    assert decoded[0][0][2] == pytest.approx(0.5)
    assert decoded[1][0][:2] == ("n00000999", "class_999")
    assert len(applications.densenet.decode_predictions(torch.from_numpy(preds))[1]) == 5


def test_decode_predictions_errors(offline_home, monkeypatch):
    monkeypatch.setattr(imagenet_utils, "_CLASS_INDEX", None)
    with pytest.raises(ValueError, match=r"\(samples, 1000\)"):
        applications.resnet50.decode_predictions(np.zeros((2, 10)))
    with pytest.raises(OSError, match="imagenet_class_index.json"):
        applications.resnet50.decode_predictions(np.zeros((2, 1000)))


def test_module_paths():
    """Each family under its Keras module path, with its own preprocessing."""
    for module, ctor in [("vgg16", "VGG16"), ("vgg19", "VGG19"), ("resnet50", "ResNet50"),
                         ("resnet", "ResNet152"), ("resnet_v2", "ResNet50V2"),
                         ("inception_v3", "InceptionV3"), ("xception", "Xception"),
                         ("mobilenet_v2", "MobileNetV2"), ("densenet", "DenseNet121"),
                         ("mobilenet", "MobileNet"), ("mobilenet_v3", "MobileNetV3Large"),
                         ("efficientnet", "EfficientNetB7"), ("efficientnet_v2", "EfficientNetV2L"),
                         ("convnext", "ConvNeXtXLarge"), ("nasnet", "NASNetMobile"),
                         ("inception_resnet_v2", "InceptionResNetV2")]:
        mod = getattr(applications, module)
        assert getattr(mod, ctor) is getattr(applications, ctor)
        assert callable(mod.preprocess_input) and callable(mod.decode_predictions)
    x = np.full((1, 2, 2, 3), 255.0, dtype="float32")
    np.testing.assert_allclose(applications.xception.preprocess_input(x), np.ones_like(x))
    np.testing.assert_allclose(applications.vgg16.preprocess_input(x)[0, 0, 0],
                               [255 - 103.939, 255 - 116.779, 255 - 123.68], rtol=1e-6)
