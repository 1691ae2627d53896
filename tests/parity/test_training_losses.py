"""Losses against keras.losses (values, sample weights, reductions, options), and one epoch of
training with each loss ending with Keras's weights."""
import keras
import numpy as np
import pytest
import torch

import plexus
from tests.parity.training_helpers import assert_weights_close, mlp_pair

rng = np.random.default_rng(3)
PROBS = rng.uniform(0.01, 0.99, (6, 3)).astype("float32")
SOFT = (PROBS / PROBS.sum(-1, keepdims=True)).astype("float32")
ONEHOT = np.eye(3, dtype="float32")[rng.integers(0, 3, 6)]
BIN = rng.integers(0, 2, (6, 3)).astype("float32")
REAL = rng.normal(size=(6, 3)).astype("float32")
REAL2 = rng.normal(size=(6, 3)).astype("float32")
POS = rng.uniform(0.1, 3, (6, 3)).astype("float32")
IDS = rng.integers(0, 3, (6,)).astype("int64")
SW = rng.uniform(0, 2, (6,)).astype("float32")

# (class name, constructor kwargs, y_true, y_pred)
CASES = [
    ("MeanSquaredError", {}, REAL, REAL2),
    ("MeanAbsoluteError", {}, REAL, REAL2),
    ("MeanAbsolutePercentageError", {}, REAL, REAL2),
    ("MeanSquaredLogarithmicError", {}, POS, REAL2),
    ("CosineSimilarity", {}, REAL, REAL2),
    ("Huber", {"delta": 0.7}, REAL, REAL2),
    ("LogCosh", {}, REAL, REAL2),
    ("Hinge", {}, BIN, REAL2),
    ("SquaredHinge", {}, BIN, REAL2),
    ("CategoricalHinge", {}, ONEHOT, REAL2),
    ("KLDivergence", {}, SOFT, PROBS),
    ("Poisson", {}, POS, POS[::-1].copy()),
    ("BinaryCrossentropy", {}, BIN, PROBS),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, BIN, REAL2),
    ("CategoricalCrossentropy", {}, ONEHOT, PROBS),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, ONEHOT, REAL2),
    ("SparseCategoricalCrossentropy", {}, IDS, SOFT),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, IDS, REAL2),
]
IDS_ = [f"{c[0]}{'-' + '-'.join(c[1]) if c[1] else ''}" for c in CASES]


@pytest.mark.parametrize("name,kwargs,y_true,y_pred", CASES, ids=IDS_)
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_loss_matches_keras(name, kwargs, y_true, y_pred, reduction):
    p = getattr(plexus.losses, name)(reduction=reduction, **kwargs)
    k = getattr(keras.losses, name)(reduction=reduction, **kwargs)
    np.testing.assert_allclose(p(y_true, y_pred).numpy(), np.asarray(k(y_true, y_pred)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p(y_true, y_pred, sample_weight=SW).numpy(),
                               np.asarray(k(y_true, y_pred, sample_weight=SW)),
                               rtol=1e-5, atol=1e-6)
    assert p.name == k.name


def test_probability_clipping_keeps_loss_finite():
    y = np.array([[1.0, 0.0]], dtype="float32")
    p = np.array([[0.0, 1.0]], dtype="float32")
    for name in ("binary_crossentropy", "categorical_crossentropy"):
        ours = getattr(plexus.losses, name)(y, p).numpy()
        theirs = np.asarray(getattr(keras.losses, name)(y, p))
        assert np.isfinite(ours).all()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)


TRAIN = [("mse", None, 2), ("mae", None, 2), ("mape", None, 2), ("msle", "relu", 2),
         ("huber", None, 2), ("log_cosh", None, 2), ("cosine_similarity", None, 2),
         ("hinge", "tanh", 2), ("squared_hinge", "tanh", 2), ("categorical_hinge", None, 3),
         ("kl_divergence", "softmax", 3), ("poisson", "softplus", 2),
         ("binary_crossentropy", "sigmoid", 2), ("categorical_crossentropy", "softmax", 3),
         ("sparse_categorical_crossentropy", "softmax", 3)]


@pytest.mark.parametrize("loss,activation,units", TRAIN, ids=[t[0] for t in TRAIN])
def test_training_with_each_loss_matches_keras(loss, activation, units):
    pm, km = mlp_pair(out_units=units, out_activation=activation)
    r = np.random.default_rng(5)
    x = r.normal(size=(12, 4)).astype("float32")
    if loss == "sparse_categorical_crossentropy":
        y = r.integers(0, units, (12, 1))
    elif loss in ("binary_crossentropy", "hinge", "squared_hinge"):
        y = r.integers(0, 2, (12, units)).astype("float32")
    elif loss in ("categorical_crossentropy", "categorical_hinge", "kl_divergence"):
        y = np.eye(units, dtype="float32")[r.integers(0, units, 12)]
    else:
        y = r.uniform(0.1, 2, (12, units)).astype("float32")
    pm.compile(optimizer=plexus.optimizers.SGD(0.1), loss=loss)
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    hp = pm.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    hk = km.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=1e-5, atol=1e-6)
    assert_weights_close(pm, km)


def test_loss_objects_and_functions_in_compile():
    pm, km = mlp_pair(out_units=2, out_activation="sigmoid")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.random.default_rng(1).integers(0, 2, (8, 2)).astype("float32")
    pm.compile("sgd", loss=plexus.losses.BinaryCrossentropy(label_smoothing=0.1))
    km.compile("sgd", loss=keras.losses.BinaryCrossentropy(label_smoothing=0.1))
    np.testing.assert_allclose(pm.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0),
                               rtol=1e-5)

    def my_loss(y_true, y_pred):
        return torch.mean(torch.abs(y_true - y_pred) ** 3, dim=-1)
    pm.compile("sgd", loss=my_loss)
    expected = np.mean(np.mean(np.abs(y - pm.predict(x, verbose=0)) ** 3, -1))
    np.testing.assert_allclose(pm.evaluate(x, y, verbose=0), expected, rtol=1e-5)


def test_unknown_loss_lists_close_matches():
    pm, _ = mlp_pair()
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        pm.compile(optimizer="rmsprop", loss="categorycal_crossentropy")


def test_weight_and_activity_regularization_train_as_in_keras():
    def build(lib):
        i = lib.Input(shape=(4,))
        h = lib.layers.Dense(3, activation="tanh", kernel_regularizer=lib.regularizers.L2(0.1),
                             bias_regularizer=lib.regularizers.L1(0.05),
                             activity_regularizer=lib.regularizers.L1(0.02))(i)
        return lib.Model(i, lib.layers.Dense(2, kernel_regularizer=lib.regularizers.L1L2(
            0.01, 0.02))(h))
    pm, km = build(plexus), build(keras)
    km.set_weights(pm.get_weights())
    r = np.random.default_rng(2)
    x, y = r.normal(size=(12, 4)).astype("float32"), r.normal(size=(12, 2)).astype("float32")
    for m, lib in ((pm, plexus), (km, keras)):
        m.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse")
    hp = pm.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    hk = km.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=1e-5)
    assert_weights_close(pm, km)
    np.testing.assert_allclose(pm.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0),
                               rtol=1e-5)
