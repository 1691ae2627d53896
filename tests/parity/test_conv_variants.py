"""Transposed, depthwise and separable convolutions against Keras (torch backend) on copied
weights: outputs, weight layouts, output shapes, a gradient check and errors."""
import keras
import numpy as np
import pytest
import torch

from plexus import Input, layers
from tests.parity.oracle import assert_close, layer_parity

CASES = [
    ("Conv1DTranspose", dict(filters=3, kernel_size=3), (2, 5, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"), (2, 5, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=2, strides=3), (2, 4, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2, output_padding=1), (2, 4, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=4, strides=3, padding="same",
                             output_padding=2), (2, 4, 2)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"),
     (2, 5, 2)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2, padding="same",
                             activation="relu"), (2, 4, 5, 3)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=(2, 3), strides=(2, 1)), (2, 4, 5, 3)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=4, strides=2, padding="same"), (2, 3, 3, 2)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2, padding="valid",
                             output_padding=(1, 0), use_bias=True), (2, 3, 3, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, data_format="channels_first",
                             strides=2, padding="same"), (2, 3, 4, 4)),
    ("Conv3DTranspose", dict(filters=2, kernel_size=2, strides=2), (1, 2, 3, 2, 2)),
    ("Conv3DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same"),
     (1, 2, 3, 2, 2)),
    ("DepthwiseConv1D", dict(kernel_size=3), (2, 7, 3)),
    ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=2, strides=2, padding="same"),
     (2, 7, 3)),
    ("DepthwiseConv2D", dict(kernel_size=3, padding="same"), (2, 5, 6, 3)),
    ("DepthwiseConv2D", dict(kernel_size=(3, 2), depth_multiplier=3, strides=2,
                             activation="relu"), (2, 7, 6, 2)),
    ("DepthwiseConv2D", dict(kernel_size=3, dilation_rate=2, use_bias=False), (2, 7, 7, 2)),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, data_format="channels_first"),
     (2, 2, 5, 5)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3), (2, 7, 3)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, depth_multiplier=2, strides=2,
                             padding="same", activation="tanh"), (2, 8, 3)),
    ("SeparableConv2D", dict(filters=5, kernel_size=3, padding="same"), (2, 6, 5, 3)),
    ("SeparableConv2D", dict(filters=5, kernel_size=3, depth_multiplier=2, strides=2,
                             use_bias=False), (2, 7, 7, 3)),
    ("SeparableConv2D", dict(filters=4, kernel_size=3, dilation_rate=2, padding="same",
                             data_format="channels_first"), (2, 3, 6, 6)),
]


def _ids(cases):
    return [f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items())}" for c in cases]


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=_ids(CASES))
def test_forward_matches_keras(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    p_layer, k_layer = getattr(layers, name)(**kwargs), getattr(keras.layers, name)(**kwargs)
    layer_parity(p_layer, k_layer, x, atol=1e-4)
    # The default weights are random, so give the bias values to see it everywhere.
    if kwargs.get("use_bias", True):
        weights = p_layer.get_weights()
        weights[-1] = np.random.randn(*weights[-1].shape).astype("float32")
        p_layer.set_weights(weights)
        k_layer.set_weights(weights)
        assert_close(p_layer(x), k_layer(x), atol=1e-4)
    symbolic = getattr(layers, name)(**kwargs)(Input(shape=shape[1:])).shape
    assert symbolic == tuple(k_layer.compute_output_shape((None,) + shape[1:]))


@pytest.mark.parametrize("name,kwargs,shape", [
    ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"), (2, 3, 4, 2)),
    ("SeparableConv2D", dict(filters=3, kernel_size=3, depth_multiplier=2), (2, 5, 5, 2)),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, padding="same"), (2, 4, 4, 2)),
])
def test_gradients_match_keras(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    p_layer, k_layer = getattr(layers, name)(**kwargs), getattr(keras.layers, name)(**kwargs)
    layer_parity(p_layer, k_layer, x, atol=1e-4)
    results = []
    for layer, params in ((p_layer, p_layer.weights), (k_layer, [v.value for v in k_layer.weights])):
        xt = torch.tensor(x, requires_grad=True)
        out = layer(xt)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        results.append((xt.grad, [p.grad for p in params]))
    (gx_p, gw_p), (gx_k, gw_k) = results
    assert_close(gx_p, gx_k, atol=1e-4)
    for (layer, w), g_p, g_k in zip(p_layer._weight_entries(), gw_p, gw_k):
        assert_close(w.to_keras(g_p), g_k, atol=1e-4)


@pytest.mark.parametrize("name,kwargs,in_shape,weights", [
    ("Conv2DTranspose", dict(filters=8, kernel_size=3), (6, 6, 4), [(3, 3, 8, 4), (8,)]),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2), (6, 6, 4), [(3, 3, 4, 2), (8,)]),
    ("SeparableConv2D", dict(filters=5, kernel_size=3, depth_multiplier=2), (6, 6, 4),
     [(3, 3, 4, 2), (1, 1, 8, 5), (5,)]),
    ("SeparableConv1D", dict(filters=5, kernel_size=3), (6, 4), [(3, 4, 1), (1, 4, 5), (5,)]),
    ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=3), (6, 4), [(3, 4, 3), (12,)]),
])
def test_weight_layouts_and_param_counts_match_keras(name, kwargs, in_shape, weights):
    layer = getattr(layers, name)(**kwargs)
    layer(Input(shape=in_shape))
    k_layer = getattr(keras.layers, name)(**kwargs)
    k_layer(keras.Input(shape=in_shape))
    assert [w.shape for w in layer.get_weights()] == weights
    assert [tuple(w.shape) for w in k_layer.weights] == weights
    assert layer.count_params() == k_layer.count_params()
    assert [w.name for _, w in layer._weight_entries()] == [w.name for w in k_layer.weights]


@pytest.mark.parametrize("name,kwargs,shape,expected", [
    ("Conv2DTranspose", dict(filters=8, kernel_size=3, strides=2, padding="same"), (7, 7, 16),
     (None, 14, 14, 8)),
    ("Conv2DTranspose", dict(filters=8, kernel_size=3, strides=2), (None, 7, 16),
     (None, None, 15, 8)),
    ("Conv1DTranspose", dict(filters=4, kernel_size=3), (None, 2), (None, None, 4)),
    ("DepthwiseConv2D", dict(kernel_size=3, padding="same"), (8, 8, 16), (None, 8, 8, 16)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3), (None, 2), (None, None, 4)),
])
def test_symbolic_shapes(name, kwargs, shape, expected):
    assert getattr(layers, name)(**kwargs)(Input(shape=shape)).shape == expected


@pytest.mark.parametrize("name,kwargs", [
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2, padding="same",
                             output_padding=1)),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2)),
    ("SeparableConv2D", dict(filters=4, kernel_size=3, depth_multiplier=2)),
])
def test_config_round_trip_has_keras_keys(name, kwargs):
    layer = getattr(layers, name)(**kwargs)
    config = layer.get_config()
    k_config = getattr(keras.layers, name)(**kwargs).get_config()
    assert set(k_config) <= set(config)
    for key in ("kernel_size", "strides", "padding", "depth_multiplier", "filters",
                "output_padding"):
        if key in k_config:
            assert config[key] == k_config[key]
    assert getattr(layers, name).from_config(config).get_config() == config


@pytest.mark.parametrize("make,message", [
    (lambda: layers.Conv2DTranspose(4, 3, strides=2, output_padding=2), "output_padding"),
    (lambda: layers.Conv2DTranspose(4, 3, padding="causal"), "padding"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier"),
    (lambda: layers.SeparableConv2D(0, 3), "filters"),
    (lambda: layers.DepthwiseConv2D(3)(Input(shape=(2, 5, 3))), r"\(None, 2, 5, 3\).*too small"),
    (lambda: layers.SeparableConv1D(4, 3)(Input(shape=(5, 5, 3))), "expects inputs with 3"),
])
def test_bad_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()
