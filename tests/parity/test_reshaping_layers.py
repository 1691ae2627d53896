"""Shaping layers against Keras (torch backend): outputs, symbolic shapes, configs, masks,
errors."""
import keras
import numpy as np
import pytest
import torch

from plexus import Input, Model, layers
from tests.parity.oracle import assert_close

CASES = [
    ("Permute", dict(dims=(2, 1)), (2, 3, 4)),
    ("Permute", dict(dims=(3, 1, 2)), (2, 3, 4, 5)),
    ("RepeatVector", dict(n=3), (2, 4)),
    ("Cropping1D", {}, (2, 5, 3)),
    ("Cropping1D", dict(cropping=(2, 0)), (2, 5, 3)),
    ("Cropping2D", dict(cropping=1), (2, 5, 6, 3)),
    ("Cropping2D", dict(cropping=((1, 0), (2, 1))), (2, 5, 6, 3)),
    ("Cropping2D", dict(cropping=(1, 2), data_format="channels_first"), (2, 3, 5, 6)),
    ("Cropping3D", {}, (1, 4, 5, 3, 2)),
    ("Cropping3D", dict(cropping=((0, 1), (1, 1), (0, 0))), (1, 4, 5, 3, 2)),
    ("ZeroPadding1D", {}, (2, 4, 3)),
    ("ZeroPadding1D", dict(padding=(0, 2)), (2, 4, 3)),
    ("ZeroPadding2D", {}, (2, 3, 4, 2)),
    ("ZeroPadding2D", dict(padding=((1, 2), (0, 3))), (2, 3, 4, 2)),
    ("ZeroPadding2D", dict(padding=(2, 1), data_format="channels_first"), (2, 2, 3, 4)),
    ("ZeroPadding3D", dict(padding=(1, 0, 2)), (1, 2, 3, 2, 2)),
    ("UpSampling1D", dict(size=3), (2, 4, 3)),
    ("UpSampling2D", {}, (2, 3, 4, 2)),
    ("UpSampling2D", dict(size=(2, 3), interpolation="bilinear"), (2, 3, 4, 2)),
    ("UpSampling2D", dict(size=2, interpolation="bilinear", data_format="channels_first"),
     (2, 2, 3, 4)),
    ("UpSampling2D", dict(size=(3, 1), interpolation="bicubic"), (1, 3, 4, 2)),
    ("UpSampling3D", dict(size=(1, 2, 3)), (1, 2, 3, 2, 2)),
    ("Rescaling", dict(scale=1 / 255.0), (2, 3, 4)),
    ("Rescaling", dict(scale=2.0, offset=-1.0), (2, 3, 4)),
    ("Rescaling", dict(scale=[0.5, 2.0, 3.0], offset=[0.0, 1.0, -1.0]), (2, 4, 3)),
    ("Masking", {}, (2, 4, 3)),
    ("Masking", dict(mask_value=0.5), (2, 4, 3)),
]


def _ids(cases):
    return [f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items())}" for c in cases]


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=_ids(CASES))
def test_matches_keras(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    if name == "Masking":  # give it whole steps to mask
        x[0, 1, :] = kwargs.get("mask_value", 0.0)
        x[1, 3, :] = kwargs.get("mask_value", 0.0)
    layer, k_layer = getattr(layers, name)(**kwargs), getattr(keras.layers, name)(**kwargs)
    assert_close(layer(x), k_layer(x), atol=1e-5)
    expected = tuple(k_layer.compute_output_shape((None,) + shape[1:]))
    assert getattr(layers, name)(**kwargs)(Input(shape=shape[1:])).shape == expected
    config, k_config = layer.get_config(), k_layer.get_config()
    for key in set(k_config) - {"name", "dtype", "trainable"}:
        assert config[key] == k_config[key], key


@pytest.mark.parametrize("name,kwargs,shape,expected", [
    ("Permute", dict(dims=(2, 1)), (None, 64), (None, 64, None)),
    ("RepeatVector", dict(n=3), (32,), (None, 3, 32)),
    ("Cropping1D", dict(cropping=(1, 2)), (None, 3), (None, None, 3)),
    ("Cropping2D", dict(cropping=((1, 1), (2, 2))), (None, 10, 3), (None, None, 6, 3)),
    ("ZeroPadding2D", dict(padding=3), (224, None, 3), (None, 230, None, 3)),
    ("ZeroPadding1D", dict(padding=2), (None, 5), (None, None, 5)),
    ("UpSampling2D", {}, (None, 7, 4), (None, None, 14, 4)),
    ("UpSampling3D", {}, (2, None, 3, 1), (None, 4, None, 6, 1)),
    ("Masking", {}, (None, 8), (None, None, 8)),
])
def test_symbolic_shapes(name, kwargs, shape, expected):
    assert getattr(layers, name)(**kwargs)(Input(shape=shape)).shape == expected


def test_shape_layers_keep_integer_dtype_and_rescaling_makes_floats():
    x = np.arange(24, dtype="int32").reshape(2, 3, 4)
    assert layers.Permute((2, 1))(x).dtype == torch.int32
    assert layers.ZeroPadding1D()(x).dtype == torch.int32
    assert layers.Permute((2, 1))(Input(shape=(3, 4), dtype="int32")).dtype == "int32"
    out = layers.Rescaling(0.5)(x)
    assert out.dtype == torch.float32
    assert_close(out, keras.layers.Rescaling(0.5)(x))


def test_masking_makes_a_mask_for_downstream_layers():
    x = np.random.randn(2, 5, 3).astype("float32")
    x[0, 3:] = 0.0
    x[1, 1] = 0.0
    inp = Input(shape=(None, 3))
    masked = layers.Masking()(inp)
    model = Model(inp, layers.GlobalAveragePooling1D()(masked))
    k_inp = keras.Input(shape=(None, 3))
    k_model = keras.Model(k_inp, keras.layers.GlobalAveragePooling1D()(keras.layers.Masking()(k_inp)))
    out = model(x)
    assert_close(out, k_model(x))
    np.testing.assert_allclose(out[0].numpy(), x[0, :3].mean(0), rtol=1e-5)
    mask = layers.Masking().compute_mask(torch.tensor(x))
    assert mask.tolist() == [[True, True, True, False, False], [True, False, True, True, True]]


def test_rescaling_passes_a_mask_on():
    inp = Input(shape=(None,), dtype="int32")
    emb = layers.Embedding(10, 4, mask_zero=True)(inp)
    out = layers.Rescaling(2.0)(emb)
    assert out.has_mask


@pytest.mark.parametrize("make,message", [
    (lambda: layers.Permute((1, 3)), "permutation"),
    (lambda: layers.Permute((2, 1))(Input(shape=(2, 3, 4))), r"\(None, 2, 3, 4\)"),
    (lambda: layers.RepeatVector(0), "positive"),
    (lambda: layers.RepeatVector(2)(Input(shape=(2, 3))), r"\(None, 2, 3\)"),
    (lambda: layers.Cropping1D((3, 3))(Input(shape=(5, 2))), r"'cropping1d'.*\(None, 5, 2\)"),
    (lambda: layers.Cropping2D(((1, 1), (3, 3)))(Input(shape=(5, 6, 2))), "at least one row"),
    (lambda: layers.Cropping2D((1, 2, 3)), "cropping"),
    (lambda: layers.ZeroPadding2D(-1), "non-negative"),
    (lambda: layers.ZeroPadding2D()(Input(shape=(5, 2))), "expects inputs with 4 dimensions"),
    (lambda: layers.UpSampling2D(interpolation="lanczos9"), "interpolation"),
    (lambda: layers.UpSampling1D(size=0), "size"),
])
def test_bad_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_configs_round_trip():
    for layer in (layers.Cropping2D(((1, 0), (2, 1))), layers.ZeroPadding3D(2),
                  layers.UpSampling2D(3, interpolation="bilinear"), layers.Permute((2, 1)),
                  layers.RepeatVector(4), layers.Rescaling(0.5, 1.0), layers.Masking(-1.0),
                  layers.UpSampling1D(3), layers.Cropping1D((0, 2))):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config


def test_masking_makes_lstm_skip_masked_steps_like_keras():
    x = np.random.randn(2, 5, 3).astype("float32")
    x[0, 3:] = 0.0  # right padding
    x[1, 1] = 0.0  # a masked step in the middle
    inp = Input(shape=(None, 3))
    model = Model(inp, layers.LSTM(4)(layers.Masking()(inp)))
    k_inp = keras.Input(shape=(None, 3))
    k_model = keras.Model(k_inp, keras.layers.LSTM(4)(keras.layers.Masking()(k_inp)))
    k_model.set_weights(model.get_weights())
    assert_close(model(x), k_model(x))
