"""Focal, generalized, Dice, Tversky, Circle and CTC losses against keras.losses: values under
every reduction and with sample weights, gradients, configs, names in compile."""
import keras
import numpy as np
import pytest
import torch

import plexus
from tests.parity.training_helpers import assert_weights_close, mlp_pair

rng = np.random.default_rng(7)
PROBS = rng.uniform(0.02, 0.98, (6, 3)).astype("float32")
SOFT = (PROBS / PROBS.sum(-1, keepdims=True)).astype("float32")
ONEHOT = np.eye(3, dtype="float32")[rng.integers(0, 3, 6)]
BIN = rng.integers(0, 2, (6, 3)).astype("float32")
LOGITS = rng.normal(size=(6, 3)).astype("float32")
IDS = np.array([0, 1, 2, 1, 0, 2])
MASKS = rng.integers(0, 2, (6, 4, 4, 1)).astype("float32")
MASK_PRED = rng.uniform(0, 1, (6, 4, 4, 1)).astype("float32")
EMB = rng.normal(size=(6, 5)).astype("float32")
EMB /= np.linalg.norm(EMB, axis=1, keepdims=True)
CTC_TRUE = np.array([[1, 2, 2, 0], [3, 1, 0, 0], [2, 0, 0, 0], [1, 3, 2, 1],
                     [3, 0, 0, 0], [1, 1, 0, 0]])
CTC_PRED = rng.normal(size=(6, 9, 4)).astype("float32")
SW = rng.uniform(0.1, 2, (6,)).astype("float32")

CASES = [
    ("BinaryFocalCrossentropy", {}, BIN, PROBS),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.4, "gamma": 3.0,
                                 "from_logits": True, "label_smoothing": 0.1}, BIN, LOGITS),
    ("CategoricalFocalCrossentropy", {}, ONEHOT, SOFT),
    ("CategoricalFocalCrossentropy", {"alpha": 0.5, "gamma": 1.0, "from_logits": True,
                                      "label_smoothing": 0.2}, ONEHOT, LOGITS),
    ("CategoricalGeneralizedCrossEntropy", {"q": 0.3}, IDS, SOFT),
    ("Dice", {}, MASKS, MASK_PRED),
    ("Dice", {"axis": (1, 2, 3)}, MASKS, MASK_PRED),
    ("Tversky", {"alpha": 0.3, "beta": 0.7, "axis": (1, 2, 3)}, MASKS, MASK_PRED),
    ("Tversky", {}, MASKS, MASK_PRED),
    ("Circle", {}, IDS, EMB),
    ("Circle", {"gamma": 10.0, "margin": 0.2, "remove_diagonal": False}, IDS, EMB),
    ("CTC", {}, CTC_TRUE, CTC_PRED),
]
NAMES = [f"{c[0]}{'-' + '-'.join(c[1]) if c[1] else ''}" for c in CASES]


@pytest.mark.parametrize("name,kwargs,y_true,y_pred", CASES, ids=NAMES)
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none",
                                       "mean_with_sample_weight"])
def test_task_loss_matches_keras(name, kwargs, y_true, y_pred, reduction):
    p = getattr(plexus.losses, name)(reduction=reduction, **kwargs)
    k = getattr(keras.losses, name)(reduction=reduction, **kwargs)
    np.testing.assert_allclose(p(y_true, y_pred).numpy(), np.asarray(k(y_true, y_pred)),
                               rtol=1e-5, atol=1e-5)
    per_sample = "axis" in kwargs or name in ("CTC", "Circle", "CategoricalGeneralizedCrossEntropy",
                                              "BinaryFocalCrossentropy",
                                              "CategoricalFocalCrossentropy")
    if per_sample:
        np.testing.assert_allclose(p(y_true, y_pred, sample_weight=SW).numpy(),
                                   np.asarray(k(y_true, y_pred, sample_weight=SW)),
                                   rtol=1e-5, atol=1e-5)
    assert p.name == k.name
    assert p.get_config() == k.get_config()


@pytest.mark.parametrize("name,kwargs,y_true,y_pred", CASES[::2], ids=NAMES[::2])
def test_task_loss_gradient_matches_keras(name, kwargs, y_true, y_pred):
    grads = []
    for lib in (plexus, keras):
        pred = torch.tensor(y_pred, requires_grad=True)
        getattr(lib.losses, name)(**kwargs)(torch.as_tensor(y_true), pred).backward()
        grads.append(pred.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("fn", ["binary_focal_crossentropy", "categorical_focal_crossentropy",
                                "dice", "tversky", "circle", "ctc"])
def test_task_loss_functions_match_keras(fn):
    case = next(c for c in CASES if c[0].lower() == fn.replace("_", ""))
    y_true, y_pred = case[2], case[3]
    np.testing.assert_allclose(getattr(plexus.losses, fn)(y_true, y_pred).numpy(),
                               np.asarray(getattr(keras.losses, fn)(y_true, y_pred)),
                               rtol=1e-5, atol=1e-5)


def test_sparse_categorical_ignore_class_averages_over_the_kept_entries():
    y = np.array([0, 2, -1, 1, -1, 0])
    for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight"):
        p = plexus.losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)
        k = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)
        np.testing.assert_allclose(p(y, SOFT).numpy(), np.asarray(k(y, SOFT)), rtol=1e-5)
        np.testing.assert_allclose(p(y, SOFT, SW).numpy(), np.asarray(k(y, SOFT, SW)),
                                   rtol=1e-5)


def test_focal_loss_by_name_trains_as_keras():
    pm, km = mlp_pair(out_units=1, out_activation="sigmoid")
    x = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    for m in (pm, km):
        m.compile(optimizer="sgd", loss="binary_focal_crossentropy")
    hp = pm.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    hk = km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=1e-5)
    assert_weights_close(pm, km)


def test_task_loss_errors():
    with pytest.raises(ValueError, match=r"q must be in the interval \(0, 1\)"):
        plexus.losses.CategoricalGeneralizedCrossEntropy(q=1.5)
    with pytest.raises(ValueError, match="batch_size, max_length"):
        plexus.losses.ctc(np.zeros((2, 3, 1)), CTC_PRED[:2])
    with pytest.raises(ValueError, match="logits of shape"):
        plexus.losses.ctc(CTC_TRUE, CTC_PRED[:, :, 0])
    with pytest.raises(ValueError, match="axis must be an integer"):
        plexus.losses.binary_focal_crossentropy(BIN, PROBS, axis=True)
    again = plexus.losses.deserialize(plexus.losses.serialize(plexus.losses.Tversky(0.2, 0.8)))
    assert (again.alpha, again.beta) == (0.2, 0.8)
