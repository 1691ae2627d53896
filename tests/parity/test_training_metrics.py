"""Metrics against keras.metrics: the same values after the same sequence of updates."""
import re

import keras
import numpy as np
import pytest

import plexus

rng = np.random.default_rng(7)
PROBS = rng.uniform(0, 1, (2, 16, 1)).astype("float32")
LABELS = rng.integers(0, 2, (2, 16, 1)).astype("float32")
MULTI = rng.uniform(0, 1, (2, 16, 6)).astype("float32")
ONEHOT = np.eye(6, dtype="float32")[rng.integers(0, 6, (2, 16))]
IDS = rng.integers(0, 6, (2, 16, 1))
REAL = rng.normal(size=(2, 16, 3)).astype("float32")
REAL2 = rng.normal(size=(2, 16, 3)).astype("float32")
SW = rng.uniform(0, 2, (2, 16)).astype("float32")

CASES = [
    ("BinaryAccuracy", {}, LABELS, PROBS),
    ("BinaryAccuracy", {"threshold": 0.3}, LABELS, PROBS),
    ("CategoricalAccuracy", {}, ONEHOT, MULTI),
    ("SparseCategoricalAccuracy", {}, IDS, MULTI),
    ("TopKCategoricalAccuracy", {"k": 2}, ONEHOT, MULTI),
    ("SparseTopKCategoricalAccuracy", {"k": 3}, IDS, MULTI),
    ("MeanSquaredError", {}, REAL, REAL2),
    ("MeanAbsoluteError", {}, REAL, REAL2),
    ("RootMeanSquaredError", {}, REAL, REAL2),
    ("AUC", {}, LABELS, PROBS),
    ("AUC", {"curve": "PR"}, LABELS, PROBS),
    ("AUC", {"num_thresholds": 20, "summation_method": "minoring"}, LABELS, PROBS),
    ("Precision", {}, LABELS, PROBS),
    ("Recall", {"thresholds": 0.3}, LABELS, PROBS),
    ("BinaryCrossentropy", {}, LABELS, PROBS),
    ("CategoricalCrossentropy", {}, ONEHOT, MULTI),
]


@pytest.mark.parametrize("name,kwargs,y_true,y_pred", CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}" for c in CASES])
@pytest.mark.parametrize("weighted", [False, True])
def test_metric_matches_keras(name, kwargs, y_true, y_pred, weighted):
    p = getattr(plexus.metrics, name)(**kwargs)
    k = getattr(keras.metrics, name)(**kwargs)
    for i in range(2):
        sw = SW[i] if weighted else None
        p.update_state(y_true[i], y_pred[i], sample_weight=sw)
        k.update_state(y_true[i], y_pred[i], sample_weight=sw)
        np.testing.assert_allclose(float(p.result()), float(k.result()), rtol=1e-5, atol=1e-6)
    assert p.name == re.sub(r"_\d+$", "", k.name)  # Keras numbers repeated AUC names
    p.reset_state()
    assert float(p.result()) == 0.0


def test_mean_metric():
    p, k = plexus.metrics.Mean(), keras.metrics.Mean()
    for v, w in ((np.array([1.0, 2.0]), None), (np.array([4.0]), np.array([3.0]))):
        p.update_state(v, sample_weight=w)
        k.update_state(v, sample_weight=w)
    np.testing.assert_allclose(float(p.result()), float(k.result()), rtol=1e-6)


@pytest.mark.parametrize("loss,y", [
    ("binary_crossentropy", LABELS[0]),
    ("categorical_crossentropy", ONEHOT[0]),
    ("sparse_categorical_crossentropy", IDS[0]),
])
def test_accuracy_is_resolved_as_keras_resolves_it(loss, y):
    units = 1 if loss == "binary_crossentropy" else 6
    act = "sigmoid" if units == 1 else "softmax"
    x = rng.normal(size=(16, 4)).astype("float32")
    out = {}
    for lib in (plexus, keras):
        i = lib.Input(shape=(4,))
        m = lib.Model(i, lib.layers.Dense(units, activation=act)(i))
        if lib is keras:
            m.set_weights(weights)
        else:
            weights = m.get_weights()
        m.compile("sgd", loss=loss, metrics=["accuracy", "acc"])
        out[lib.__name__] = m.evaluate(x, y, verbose=0, return_dict=True)
    assert set(out["plexus"]) == set(out["keras"]) == {"loss", "accuracy", "acc"}
    for key in out["keras"]:
        np.testing.assert_allclose(out["plexus"][key], out["keras"][key], rtol=1e-5)


def test_unknown_metric_lists_close_matches():
    i = plexus.Input(shape=(4,))
    m = plexus.Model(i, plexus.layers.Dense(1)(i))
    with pytest.raises(ValueError, match="accuracy"):
        m.compile("sgd", loss="mse", metrics=["acuracy"])
