"""Regularization layers: identity at inference, Keras's formulas and statistics in training.

Random draws cannot be copied from Keras, so training behaviour is checked through what every
draw must satisfy (values, per-channel structure, constants shared with Keras) and through
statistics on inputs large enough for tight bounds but still tiny in time.
"""
import math

import keras
import numpy as np
import pytest
import torch

from plexus import layers
from tests.parity.oracle import assert_close

INFERENCE_CASES = [
    ("SpatialDropout1D", (0.5,), {}, (2, 4, 3)),
    ("SpatialDropout2D", (0.5,), {}, (2, 3, 4, 3)),
    ("SpatialDropout2D", (0.5,), {"data_format": "channels_first"}, (2, 3, 4, 3)),
    ("SpatialDropout3D", (0.3,), {}, (2, 2, 3, 2, 3)),
    ("GaussianNoise", (0.5,), {}, (3, 4)),
    ("GaussianDropout", (0.4,), {}, (3, 4)),
    ("AlphaDropout", (0.2,), {}, (3, 4)),
    ("ActivityRegularization", (), {"l1": 0.1, "l2": 0.2}, (3, 4)),
]


@pytest.mark.parametrize("cls,args,kwargs,shape", INFERENCE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(INFERENCE_CASES)])
def test_identity_at_inference_and_config_matches_keras(cls, args, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    p, k = getattr(layers, cls)(*args, **kwargs), getattr(keras.layers, cls)(*args, **kwargs)
    assert_close(p(x), x)
    kw = {} if cls == "ActivityRegularization" else {"training": False}
    assert_close(p(x, **kw), k(x, **kw))
    assert p.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:]
    cp, ck = p.get_config(), k.get_config()
    for key in set(ck) - {"name", "dtype", "trainable"}:
        assert cp[key] == ck[key], f"{cls}.{key}: {cp.get(key)!r} vs {ck[key]!r}"
    assert type(p).from_config(cp).get_config() == cp


@pytest.mark.parametrize("cls,shape,data_format", [
    ("SpatialDropout1D", (40, 5, 30), None),
    ("SpatialDropout2D", (40, 3, 2, 30), "channels_last"),
    ("SpatialDropout2D", (40, 30, 3, 2), "channels_first"),
    ("SpatialDropout3D", (40, 2, 2, 2, 30), "channels_last"),
    ("SpatialDropout3D", (40, 30, 2, 2, 2), "channels_first"),
])
def test_spatial_dropout_drops_whole_channels(cls, shape, data_format):
    rate = 0.4
    kwargs = {} if data_format is None else {"data_format": data_format}
    layer = getattr(layers, cls)(rate, **kwargs)
    x = np.random.rand(*shape).astype("float32") + 0.5  # strictly positive
    y = layer(x, training=True).numpy()
    ratio = y / x
    np.testing.assert_allclose(np.unique(np.round(ratio, 5)), [0.0, round(1 / (1 - rate), 5)],
                               rtol=1e-5)
    channel = 1 if data_format == "channels_first" else -1
    kept = np.moveaxis(y != 0, channel, 1).reshape(shape[0], x.shape[channel], -1)
    assert np.all(kept == kept[:, :, :1]), "a feature map was only partly dropped"
    dropped = 1 - kept[:, :, 0].mean()
    assert 0.3 < dropped < 0.5  # 1200 draws at rate 0.4


def test_spatial_dropout_follows_module_mode_and_seed():
    x = np.random.rand(8, 4, 6).astype("float32") + 0.5
    a, b = layers.SpatialDropout1D(0.5, seed=3), layers.SpatialDropout1D(0.5, seed=3)
    a.train()
    assert not np.allclose(a(x).numpy(), x)
    assert_close(a(np.ones((2, 2, 2), "float32"), training=False), np.ones((2, 2, 2)))
    a2 = layers.SpatialDropout1D(0.5, seed=3)
    assert_close(a2(x, training=True), b(x, training=True))


def test_gaussian_noise_statistics():
    x = np.random.randn(100, 100).astype("float32")
    y = layers.GaussianNoise(0.3)(x, training=True).numpy()
    noise = y - x
    assert abs(noise.mean()) < 0.01
    assert abs(noise.std() - 0.3) < 0.01


def test_gaussian_dropout_statistics():
    rate = 0.3
    x = np.random.rand(100, 100).astype("float32") + 1.0
    y = layers.GaussianDropout(rate)(x, training=True).numpy()
    factor = y / x
    assert abs(factor.mean() - 1.0) < 0.02
    assert abs(factor.std() - math.sqrt(rate / (1 - rate))) < 0.02


def test_alpha_dropout_formula_and_constants_match_keras():
    rate = 0.25
    x = np.random.randn(60, 50).astype("float32")
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    y = layers.AlphaDropout(rate)(x, training=True).numpy()
    kept = np.isclose(y, a * x + b, atol=1e-6)
    np.testing.assert_allclose(y[~kept], a * alpha_p + b, rtol=1e-6)
    assert 0.2 < (~kept).mean() < 0.3
    # Keras's output obeys the same two values: kept units a*x+b, dropped units one constant.
    yk = keras.ops.convert_to_numpy(keras.layers.AlphaDropout(rate)(x, training=True))
    kept_k = np.isclose(yk, a * x + b, atol=1e-6)
    np.testing.assert_allclose(yk[~kept_k], a * alpha_p + b, rtol=1e-6)


def test_alpha_dropout_keeps_selu_statistics_and_noise_shape():
    x = np.random.randn(200, 100).astype("float32")
    y = layers.AlphaDropout(0.2)(x, training=True).numpy()
    assert abs(y.mean()) < 0.03 and abs(y.var() - 1.0) < 0.05
    x3 = np.random.randn(4, 6, 5).astype("float32")
    layer = layers.AlphaDropout(0.5, noise_shape=(None, 1, 5))
    y3 = layer(x3, training=True).numpy()
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    a = ((1 - 0.5) * (1 + 0.5 * alpha_p ** 2)) ** -0.5
    dropped = np.isclose(y3, a * alpha_p - a * alpha_p * 0.5, atol=1e-6)
    assert np.all(dropped == dropped[:, :1, :]), "noise_shape (None, 1, 5) must share the mask"


def test_activity_regularization_passes_input_and_matches_keras_loss():
    x = np.random.randn(4, 3).astype("float32")
    p = layers.ActivityRegularization(l1=0.1, l2=0.05)
    k = keras.layers.ActivityRegularization(l1=0.1, l2=0.05)
    assert_close(p(x), x)
    k(x)
    assert len(p.losses) == 1
    assert_close([l.detach() for l in p.losses], [l.detach() for l in k.losses], rtol=1e-6)


@pytest.mark.parametrize("make,shape,words", [
    (lambda: layers.SpatialDropout2D(0.2), (2, 3, 4), ["rank 4", "(2, 3, 4)"]),
    (lambda: layers.SpatialDropout1D(0.2), (2, 3, 4, 5), ["rank 3"]),
    (lambda: layers.SpatialDropout3D(0.2), (2, 3, 4, 5), ["rank 5"]),
])
def test_spatial_dropout_wrong_rank_names_layer(make, shape, words):
    layer = make()
    with pytest.raises(ValueError) as err:
        layer(layers.Input(batch_shape=shape))
    assert layer.name in str(err.value)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("make", [
    lambda: layers.SpatialDropout1D(1.5),
    lambda: layers.GaussianNoise(-0.1),
    lambda: layers.GaussianDropout(2),
    lambda: layers.AlphaDropout(-1),
    lambda: layers.ActivityRegularization(l1=-1),
    lambda: layers.SpatialDropout2D(0.1, data_format="nhwc"),
])
def test_bad_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


def test_noise_layers_keep_gradients_flowing():
    x = torch.randn(5, 4, 3, requires_grad=True)
    for layer in [layers.SpatialDropout1D(0.3), layers.GaussianNoise(0.1),
                  layers.GaussianDropout(0.2), layers.AlphaDropout(0.1)]:
        y = layer(x, training=True)
        (g,) = torch.autograd.grad(y.sum(), x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
