"""Pooling layers against Keras (torch backend): outputs, shapes, masks, configs, errors."""
import keras
import numpy as np
import pytest

from plexus import Input, Model, layers
from tests.parity.oracle import assert_close

POOL_CASES = [
    ("MaxPooling1D", dict(pool_size=2), (2, 7, 3)),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 8, 3)),
    ("AveragePooling1D", dict(pool_size=3), (2, 7, 3)),
    ("AveragePooling1D", dict(pool_size=3, strides=1, padding="same"), (2, 5, 2)),
    ("AveragePooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 6, 2)),
    ("AveragePooling1D", dict(pool_size=4, strides=1, padding="same"), (2, 5, 2)),
    ("MaxPooling2D", dict(pool_size=(2, 2)), (2, 6, 7, 3)),
    ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 7, 6, 3)),
    ("MaxPooling2D", dict(pool_size=2, data_format="channels_first"), (2, 3, 6, 4)),
    ("AveragePooling2D", dict(pool_size=2), (2, 6, 7, 3)),
    ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 7, 7, 3)),
    ("AveragePooling2D", dict(pool_size=3, strides=1, padding="same"), (2, 5, 6, 2)),
    ("AveragePooling2D", dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (2, 5, 6, 2)),
    ("MaxPooling3D", dict(pool_size=2), (1, 4, 5, 4, 2)),
    ("MaxPooling3D", dict(pool_size=3, strides=2, padding="same"), (1, 5, 4, 5, 2)),
    ("AveragePooling3D", dict(pool_size=2), (1, 4, 5, 4, 2)),
    ("AveragePooling3D", dict(pool_size=3, strides=1, padding="same"), (1, 4, 3, 5, 2)),
    ("GlobalMaxPooling1D", {}, (2, 5, 3)),
    ("GlobalMaxPooling1D", dict(keepdims=True), (2, 5, 3)),
    ("GlobalAveragePooling1D", {}, (2, 5, 3)),
    ("GlobalAveragePooling1D", dict(data_format="channels_first"), (2, 5, 3)),
    ("GlobalMaxPooling2D", {}, (2, 4, 5, 3)),
    ("GlobalAveragePooling2D", dict(keepdims=True), (2, 4, 5, 3)),
    ("GlobalAveragePooling2D", dict(data_format="channels_first"), (2, 3, 4, 5)),
    ("GlobalMaxPooling3D", {}, (1, 3, 4, 2, 3)),
    ("GlobalAveragePooling3D", dict(keepdims=True), (1, 3, 4, 2, 3)),
]


def _ids(cases):
    return [f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items())}" for c in cases]


@pytest.mark.parametrize("name,kwargs,shape", POOL_CASES, ids=_ids(POOL_CASES))
def test_pooling_matches_keras(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    out = getattr(layers, name)(**kwargs)(x)
    k_layer = getattr(keras.layers, name)(**kwargs)
    assert_close(out, k_layer(x))
    sym = getattr(layers, name)(**kwargs)(Input(shape=shape[1:])).shape
    assert sym == tuple(k_layer.compute_output_shape((None,) + shape[1:]))


@pytest.mark.parametrize("alias,name", [
    ("MaxPool1D", "MaxPooling1D"), ("MaxPool2D", "MaxPooling2D"), ("MaxPool3D", "MaxPooling3D"),
    ("AvgPool1D", "AveragePooling1D"), ("AvgPool2D", "AveragePooling2D"),
    ("AvgPool3D", "AveragePooling3D"), ("GlobalMaxPool2D", "GlobalMaxPooling2D"),
    ("GlobalAvgPool1D", "GlobalAveragePooling1D"), ("GlobalAvgPool2D", "GlobalAveragePooling2D"),
])
def test_pooling_aliases(alias, name):
    assert getattr(layers, alias) is getattr(layers, name)
    assert getattr(keras.layers, alias) is getattr(keras.layers, name)


@pytest.mark.parametrize("name,kwargs,shape,expected", [
    ("MaxPooling1D", dict(pool_size=5), (None, 128), (None, None, 128)),
    ("MaxPooling2D", dict(pool_size=(2, 2)), (148, 148, 32), (None, 74, 74, 32)),
    ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (28, None, 256),
     (None, 14, None, 256)),
    ("MaxPooling3D", dict(pool_size=2), (4, 5, None, 1), (None, 2, 2, None, 1)),
    ("GlobalMaxPooling1D", {}, (None, 7), (None, 7)),
    ("GlobalAveragePooling2D", dict(keepdims=True), (None, None, 7), (None, 1, 1, 7)),
])
def test_pooling_symbolic_shapes(name, kwargs, shape, expected):
    assert getattr(layers, name)(**kwargs)(Input(shape=shape)).shape == expected


def test_max_pooling_default_strides_equal_pool_size():
    layer = layers.MaxPooling1D(3)
    assert layer.strides == (3,)
    assert layer.get_config()["strides"] == (3,)
    assert layers.MaxPooling2D().pool_size == (2, 2)


def test_pooling_config_has_keras_keys():
    config = layers.AveragePooling2D(3, strides=2, padding="same").get_config()
    k_config = keras.layers.AveragePooling2D(3, strides=2, padding="same").get_config()
    for key in ("pool_size", "strides", "padding", "data_format"):
        assert tuple(np.atleast_1d(config[key])) == tuple(np.atleast_1d(k_config[key]))
    g = layers.GlobalAveragePooling1D(keepdims=True).get_config()
    assert g["keepdims"] is True and g["data_format"] == "channels_last"
    assert layers.MaxPooling2D.from_config(layers.MaxPooling2D(3).get_config()).pool_size == (3, 3)


def test_global_average_pooling_1d_respects_mask():
    ids = np.array([[3, 5, 2, 0, 0], [1, 0, 0, 0, 0]])
    emb = layers.Embedding(10, 4, mask_zero=True)
    inp = Input(shape=(None,), dtype="int32")
    model = Model(inp, layers.GlobalAveragePooling1D()(emb(inp)))
    k_inp = keras.Input(shape=(None,), dtype="int32")
    k_emb = keras.layers.Embedding(10, 4, mask_zero=True)
    k_model = keras.Model(k_inp, keras.layers.GlobalAveragePooling1D()(k_emb(k_inp)))
    k_model.set_weights(model.get_weights())
    out = model(ids)
    assert_close(out, k_model(ids))
    vectors = emb.get_weights()[0][ids[0, :3]]
    np.testing.assert_allclose(out[0].detach().numpy(), vectors.mean(0), rtol=1e-5)


def test_global_average_pooling_1d_mask_argument_matches_keras():
    x = np.random.randn(2, 4, 3).astype("float32")
    mask = np.array([[True, True, False, False], [True, True, True, False]])
    import torch
    assert_close(layers.GlobalAveragePooling1D()(x, mask=torch.tensor(mask)),
                 keras.layers.GlobalAveragePooling1D()(x, mask=mask))


def test_pooling_input_too_small_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"'pool'.*\(None, 1, 5, 3\).*pool_size=\(2, 2\)"):
        layers.MaxPooling2D(name="pool")(Input(shape=(1, 5, 3)))


@pytest.mark.parametrize("make,message", [
    (lambda: layers.MaxPooling2D()(Input(shape=(5, 3))), "expects inputs with 4 dimensions"),
    (lambda: layers.GlobalMaxPooling1D()(Input(shape=(5, 5, 3))), "expects inputs with 3"),
    (lambda: layers.AveragePooling2D(padding="full"), "padding"),
    (lambda: layers.MaxPooling1D(pool_size=(2, 2)), "pool_size"),
    (lambda: layers.MaxPooling1D(data_format="nhwc"), "data_format"),
])
def test_pooling_bad_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_max_pooling_keeps_integer_dtype():
    x = np.arange(12, dtype="int32").reshape(1, 6, 2)
    out = layers.GlobalMaxPooling1D()(x)
    assert out.dtype.is_floating_point is False
    np.testing.assert_array_equal(out.numpy(), [[10, 11]])
