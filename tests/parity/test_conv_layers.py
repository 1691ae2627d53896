"""Convolution layers against Keras (torch backend) on copied weights: outputs, gradients,
weight layouts, symbolic output shapes and error messages."""
import keras
import numpy as np
import pytest
import torch

from plexus import Input, layers
from tests.parity.oracle import assert_close, layer_parity, to_numpy

# (class name, constructor kwargs, input shape) -- every case is checked against Keras.
CONV_CASES = [
    ("Conv1D", dict(filters=4, kernel_size=3), (2, 9, 3)),
    ("Conv1D", dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 9, 3)),
    ("Conv1D", dict(filters=4, kernel_size=4, strides=3, padding="same"), (2, 10, 3)),
    ("Conv1D", dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2), (2, 9, 3)),
    ("Conv1D", dict(filters=6, kernel_size=2, groups=3, activation="relu"), (2, 7, 3)),
    ("Conv1D", dict(filters=4, kernel_size=3, use_bias=False, data_format="channels_first"),
     (2, 3, 9)),
    ("Conv2D", dict(filters=5, kernel_size=3, activation="relu"), (2, 7, 8, 3)),
    ("Conv2D", dict(filters=5, kernel_size=(3, 2), strides=(2, 1), padding="same"), (2, 7, 8, 3)),
    ("Conv2D", dict(filters=4, kernel_size=4, strides=2, padding="same"), (2, 9, 8, 2)),
    ("Conv2D", dict(filters=4, kernel_size=3, dilation_rate=2, padding="same"), (2, 9, 8, 2)),
    ("Conv2D", dict(filters=4, kernel_size=2, groups=2, activation="tanh"), (2, 5, 5, 4)),
    ("Conv2D", dict(filters=4, kernel_size=3, padding="same", data_format="channels_first"),
     (2, 3, 6, 5)),
    ("Conv3D", dict(filters=3, kernel_size=2), (2, 4, 5, 4, 2)),
    ("Conv3D", dict(filters=3, kernel_size=3, strides=2, padding="same"), (1, 5, 4, 6, 2)),
]


def _ids(cases):
    return [f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items())}" for c in cases]


@pytest.mark.parametrize("name,kwargs,shape", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv_forward_matches_keras(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    out, _ = layer_parity(getattr(layers, name)(**kwargs), getattr(keras.layers, name)(**kwargs),
                          x, atol=1e-4)
    k_shape = getattr(keras.layers, name)(**kwargs).compute_output_shape((None,) + shape[1:])
    assert tuple(out.shape[1:]) == tuple(k_shape[1:])


GRAD_CASES = [
    ("Conv1D", dict(filters=3, kernel_size=3, padding="causal"), (2, 6, 2)),
    ("Conv2D", dict(filters=3, kernel_size=3, strides=2, padding="same", activation="relu"),
     (2, 6, 5, 2)),
]


@pytest.mark.parametrize("name,kwargs,shape", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_conv_gradients_match_keras(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    p_layer, k_layer = getattr(layers, name)(**kwargs), getattr(keras.layers, name)(**kwargs)
    layer_parity(p_layer, k_layer, x, atol=1e-4)
    grads = []
    for layer, kernel in ((p_layer, lambda: p_layer.kernel), (k_layer, lambda: k_layer.kernel.value)):
        xt = torch.tensor(x, requires_grad=True)
        out = layer(xt)
        weight = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
        (out * weight).sum().backward()
        grads.append((xt.grad, kernel().grad))
    (gx_p, gk_p), (gx_k, gk_k) = grads
    assert_close(gx_p, gx_k, atol=1e-4)
    to_keras = p_layer._weight_table[0].to_keras
    assert_close(to_keras(gk_p), gk_k, atol=1e-4)


@pytest.mark.parametrize("name,kwargs,shape,expected", [
    ("Conv1D", dict(filters=16, kernel_size=3), (None, 8), (None, None, 16)),
    ("Conv1D", dict(filters=16, kernel_size=3, padding="same", strides=2), (None, 8),
     (None, None, 16)),
    ("Conv1D", dict(filters=16, kernel_size=3), (10, 8), (None, 8, 16)),
    ("Conv2D", dict(filters=32, kernel_size=3, activation="relu"), (150, 150, 3),
     (None, 148, 148, 32)),
    ("Conv2D", dict(filters=8, kernel_size=3, strides=2, padding="same"), (None, 9, 3),
     (None, None, 5, 8)),
    ("Conv3D", dict(filters=4, kernel_size=(1, 2, 3)), (5, None, 6, 2), (None, 5, None, 4, 4)),
])
def test_conv_symbolic_shapes(name, kwargs, shape, expected):
    assert getattr(layers, name)(**kwargs)(Input(shape=shape)).shape == expected


def test_conv2d_params_and_weight_layout():
    layer = layers.Conv2D(32, (3, 3), activation="relu")
    layer(Input(shape=(150, 150, 3)))
    assert layer.count_params() == 896
    assert [w.shape for w in layer.get_weights()] == [(3, 3, 3, 32), (32,)]
    grouped = layers.Conv2D(6, 3, groups=3)
    grouped(Input(shape=(8, 8, 9)))
    assert grouped.get_weights()[0].shape == (3, 3, 3, 6)


def test_conv_set_weights_round_trip():
    layer = layers.Conv1D(4, 3)
    layer(np.zeros((1, 5, 2), "float32"))
    kernel = np.random.randn(3, 2, 4).astype("float32")
    bias = np.random.randn(4).astype("float32")
    layer.set_weights([kernel, bias])
    got = layer.get_weights()
    np.testing.assert_array_equal(got[0], kernel)
    np.testing.assert_array_equal(got[1], bias)


def test_conv_config_round_trip_uses_keras_names():
    layer = layers.Conv2D(8, 3, strides=2, padding="same", dilation_rate=1, activation="relu",
                          name="c")
    config = layer.get_config()
    k_config = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu").get_config()
    assert set(k_config) - {"lora_rank", "lora_alpha"} <= set(config)
    assert config["kernel_size"] == (3, 3) and config["strides"] == (2, 2)
    clone = layers.Conv2D.from_config(config)
    assert clone.get_config() == config


def test_conv_input_too_small_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"'tiny'.*\(None, 2, 2, 3\).*kernel_size=\(3, 3\)"):
        layers.Conv2D(4, 3, name="tiny")(Input(shape=(2, 2, 3)))


@pytest.mark.parametrize("make,message", [
    (lambda: layers.Conv2D(4, 3)(Input(shape=(8, 3))), "expects inputs with 4 dimensions"),
    (lambda: layers.Conv2D(4, 3, groups=2)(Input(shape=(8, 8, 3))), "groups=2"),
    (lambda: layers.Conv2D(5, 3, groups=2), "divisible"),
    (lambda: layers.Conv2D(4, 3, padding="causal"), "padding"),
    (lambda: layers.Conv2D(4, (3, 3, 3)), "kernel_size"),
    (lambda: layers.Conv1D(0, 3), "filters"),
    (lambda: layers.Conv2D(4, 3, strides=2, dilation_rate=2), "dilation_rate"),
])
def test_conv_bad_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_conv_rejects_other_channel_count_after_build():
    layer = layers.Conv2D(4, 3)
    layer(Input(shape=(8, 8, 3)))
    with pytest.raises(ValueError, match="built for inputs with 3 channels"):
        layer(Input(shape=(8, 8, 5)))


def test_conv_in_functional_model_matches_keras():
    from plexus import Model
    inp = Input(shape=(9, 9, 2))
    out = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    out = layers.Conv2D(3, 2, strides=2)(out)
    model = Model(inp, out)
    k_inp = keras.Input(shape=(9, 9, 2))
    k_out = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(k_inp)
    k_out = keras.layers.Conv2D(3, 2, strides=2)(k_out)
    k_model = keras.Model(k_inp, k_out)
    k_model.set_weights(model.get_weights())
    x = np.random.randn(2, 9, 9, 2).astype("float32")
    assert_close(model(x), to_numpy(k_model(x)), atol=1e-4)


@pytest.mark.parametrize("name,kwargs,shape", [
    ("Conv2D", dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 7, 6, 3)),
    ("Conv3D", dict(filters=2, kernel_size=2), (1, 3, 4, 3, 2)),
])
def test_weights_copied_from_keras_give_keras_outputs(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    k_layer = getattr(keras.layers, name)(**kwargs)
    k_layer(x)
    k_layer.set_weights([np.random.randn(*w.shape).astype("float32") for w in k_layer.get_weights()])
    layer = getattr(layers, name)(**kwargs)
    layer(x)
    layer.set_weights(k_layer.get_weights())
    assert_close(layer(x), k_layer(x), atol=1e-4)
    for mine, theirs in zip(layer.get_weights(), k_layer.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_seed_inception_module_and_residual_shapes():
    x = Input(batch_shape=(1000, 28, 28, 256))
    a = layers.Conv2D(64, 1, activation="relu", strides=2)(x)
    b = layers.Conv2D(64, 1, activation="relu")(x)
    b = layers.Conv2D(128, 1, activation="relu", strides=2, padding="same")(b)
    c = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    c = layers.Conv2D(128, 1, activation="relu", padding="same")(c)
    d = layers.Conv2D(128, 1, activation="relu")(x)
    d = layers.Conv2D(128, 3, activation="relu", padding="same")(d)
    d = layers.Conv2D(128, 3, activation="relu", strides=2, padding="same")(d)
    assert [t.shape for t in (a, b, c, d)] == [(1000, 14, 14, 64)] + [(1000, 14, 14, 128)] * 3
    assert layers.concatenate([a, b, c, d], axis=-1).shape == (1000, 14, 14, 448)

    x = Input(batch_shape=(1000, 32, 32, 128))
    z = layers.Conv2D(128, 3, activation="relu", padding="same")(x)
    z = layers.Conv2D(128, 3, activation="relu", padding="same")(z)
    t = layers.MaxPool2D(2, strides=2)(z)
    residual = layers.Conv2D(128, 1, strides=2, padding="same")(x)
    assert (z.shape, t.shape, residual.shape) == ((1000, 32, 32, 128), (1000, 16, 16, 128),
                                                   (1000, 16, 16, 128))
    assert layers.add([t, residual]).shape == (1000, 16, 16, 128)


def test_seed_conv1d_text_stack_params():
    from plexus import Model
    posts = Input(shape=(None,), dtype="int32")
    h = layers.Embedding(500, 16)(posts)
    conv = layers.Conv1D(128, 5, activation="relu")
    h = layers.MaxPooling1D(5)(conv(h))
    h = layers.GlobalMaxPooling1D()(layers.Conv1D(8, 5, activation="relu")(h))
    assert h.shape == (None, 8)
    assert conv.count_params() == 16 * 5 * 128 + 128
    big = layers.Conv1D(128, 5)
    big(Input(shape=(None, 256)))
    assert big.count_params() == 163968
    model = Model(posts, h)
    out = model(np.random.randint(1, 500, size=(2, 40)))
    assert tuple(out.shape) == (2, 8)


def test_conv_casts_integer_and_float64_inputs():
    layer = layers.Conv1D(2, 2)
    ints = np.arange(12, dtype="int64").reshape(1, 6, 2)
    out = layer(torch.tensor(ints))
    assert out.dtype == torch.float32
    assert_close(out, layer(ints.astype("float32")))
    assert layer(torch.tensor(ints, dtype=torch.float64)).dtype == torch.float32


def test_too_short_sequence_at_run_time_raises_value_error():
    from plexus import Model
    inp = Input(shape=(None, 3))
    out = layers.Conv1D(4, 5, name="late")(layers.MaxPooling1D(2, name="pool")(inp))
    model = Model(inp, out)
    with pytest.raises(ValueError, match=r"'late'.*\(1, 3, 3\).*kernel_size=\(5,\)"):
        model(np.zeros((1, 6, 3), "float32"))
    with pytest.raises(ValueError, match=r"'pool'.*\(1, 1, 3\)"):
        model(np.zeros((1, 1, 3), "float32"))
