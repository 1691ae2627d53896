"""Core and merge layers against Keras on copied weights."""
import keras
import numpy as np
import pytest

import plexus
from plexus import layers
from tests.parity.oracle import assert_close, layer_parity


def test_dense_matches_keras():
    x = np.random.rand(4, 7).astype("float32")
    layer_parity(layers.Dense(5, activation="relu"), keras.layers.Dense(5, activation="relu"), x)


def test_dense_on_3d_input():
    x = np.random.rand(2, 3, 7).astype("float32")
    layer_parity(layers.Dense(4, activation="tanh"), keras.layers.Dense(4, activation="tanh"), x)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus",
                                 "softsign", "gelu", "silu", "linear", "exponential", "relu6",
                                 "hard_sigmoid", "leaky_relu", "mish", "log_softmax"])
def test_activations_match_keras(act):
    x = (np.random.randn(3, 6) * 2).astype("float32")
    assert_close(layers.Activation(act)(x), keras.layers.Activation(act)(x))


def test_embedding_matches_keras():
    ids = np.random.randint(0, 50, size=(3, 9))
    layer_parity(layers.Embedding(50, 8), keras.layers.Embedding(50, 8), ids)


def test_flatten_reshape_match_keras():
    x = np.random.rand(2, 3, 4, 5).astype("float32")
    assert_close(layers.Flatten()(x), keras.layers.Flatten()(x))
    assert_close(layers.Reshape((12, 5))(x), keras.layers.Reshape((12, 5))(x))
    assert_close(layers.Reshape((-1, 10))(x), keras.layers.Reshape((-1, 10))(x))


def test_dropout_is_identity_at_inference_and_scales_in_training():
    x = np.ones((200, 50), dtype="float32")
    layer = layers.Dropout(0.5)
    assert_close(layer(x), x)
    y = layer(x, training=True).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.3 < (y == 0).mean() < 0.7


@pytest.mark.parametrize("name", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"])
def test_merges_match_keras(name):
    a = np.random.rand(3, 4).astype("float32")
    b = np.random.rand(3, 4).astype("float32")
    assert_close(getattr(layers, name)()([a, b]), getattr(keras.layers, name)()([a, b]))


def test_concatenate_matches_keras():
    a = np.random.rand(2, 3, 4).astype("float32")
    b = np.random.rand(2, 3, 2).astype("float32")
    assert_close(layers.concatenate([a, b]), keras.layers.concatenate([a, b]))
    c = np.random.rand(2, 5, 4).astype("float32")
    assert_close(layers.Concatenate(axis=1)([a, c]), keras.layers.Concatenate(axis=1)([a, c]))
