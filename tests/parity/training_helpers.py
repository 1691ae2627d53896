"""Shared set-up for the training parity tests: one small model built in plexus and in Keras
with the same weights, and the same data."""
import keras
import numpy as np

import plexus


def mlp_pair(out_units=2, out_activation=None, in_dim=4, hidden=3, seed=0):
    """The same Dense(hidden, tanh) -> Dense(out_units) model in plexus and in Keras."""
    def build(lib):
        i = lib.Input(shape=(in_dim,), name="x")
        h = lib.layers.Dense(hidden, activation="tanh", name="hidden")(i)
        o = lib.layers.Dense(out_units, activation=out_activation, name="out")(h)
        return lib.Model(i, o)
    pm, km = build(plexus), build(keras)
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in pm.get_weights()]
    pm.set_weights(weights)
    km.set_weights(weights)
    return pm, km


def two_output_pair(seed=0):
    """A model with a sigmoid output 'a' and a softmax output 'b', in plexus and in Keras."""
    def build(lib):
        i = lib.Input(shape=(5,), name="x")
        h = lib.layers.Dense(4, activation="relu", name="hidden")(i)
        a = lib.layers.Dense(1, activation="sigmoid", name="a")(h)
        b = lib.layers.Dense(3, activation="softmax", name="b")(h)
        return lib.Model(i, [a, b])
    pm, km = build(plexus), build(keras)
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in pm.get_weights()]
    pm.set_weights(weights)
    km.set_weights(weights)
    return pm, km


def data(n=12, in_dim=4, out_units=2, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, in_dim)).astype("float32")
    y = rng.normal(size=(n, out_units)).astype("float32")
    return x, y


def assert_weights_close(pm, km, rtol=1e-5, atol=1e-6):
    for a, b in zip(pm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=rtol, atol=atol)
