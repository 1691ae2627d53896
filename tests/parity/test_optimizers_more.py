"""Lion, Lamb, Ftrl, Adafactor, Muon, ScheduleFreeAdamW, MultiOptimizer and use_ema train
as Keras does (two epochs, weights, losses, state in Keras's order), and their state saved by
one library resumes training in the other."""
import keras
import numpy as np
import pytest

import plexus
from tests.parity.test_training_optimizers import _train_pair
from tests.parity.training_helpers import data, mlp_pair

CASES = [
    ("Lion", {}),
    ("Lion", {"learning_rate": 0.01, "beta_1": 0.8, "weight_decay": 0.1}),
    ("Lamb", {"learning_rate": 0.01}),
    ("Lamb", {"weight_decay": 0.05, "clipnorm": 0.5}),
    ("Ftrl", {"learning_rate": 0.1}),
    ("Ftrl", {"learning_rate": 0.1, "l1_regularization_strength": 0.01,
              "l2_regularization_strength": 0.02, "l2_shrinkage_regularization_strength": 0.01,
              "beta": 0.1, "learning_rate_power": -0.7}),
    ("Adafactor", {}),
    ("Adafactor", {"learning_rate": 0.05, "clip_threshold": 0.5, "beta_2_decay": -0.5}),
    ("Muon", {}),
    ("Muon", {"learning_rate": 0.01, "nesterov": False, "rms_rate": None,
              "exclude_layers": ["out"], "adam_lr_ratio": 0.5}),
    ("ScheduleFreeAdamW", {}),
    ("ScheduleFreeAdamW", {"warmup_steps": 3, "weight_decay": 0.01}),
    ("Adam", {"use_ema": True}),
    ("SGD", {"momentum": 0.9, "use_ema": True, "ema_momentum": 0.5,
             "ema_overwrite_frequency": 2}),
    ("RMSprop", {"use_ema": True, "gradient_accumulation_steps": 2}),
    ("Lion", {"use_ema": True, "ema_momentum": 0.9}),
]
IDS = [f"{n}-{'-'.join(k)}" for n, k in CASES]


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_optimizer_trains_as_keras(name, kwargs):
    pm, km = _train_pair(getattr(plexus.optimizers, name)(**kwargs),
                         getattr(keras.optimizers, name)(**kwargs))
    theirs = [np.asarray(v) for v in km.optimizer.variables][2:]
    ours = [v.detach().numpy() for v in pm.optimizer.variables]
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    k_config = km.optimizer.get_config()
    p_config = pm.optimizer.get_config()
    assert set(p_config) == set(k_config)
    for key in k_config:
        if key != "name":
            assert p_config[key] == pytest.approx(k_config[key]), key


def _resume_in_both(pm, km, tmp_path):
    """Save both trained models, load each library's file in the other (and plexus's in
    plexus), train all one more epoch: every copy ends with Keras's weights."""
    x, y = data()
    pm.save(tmp_path / "p.keras")
    km.save(tmp_path / "k.keras")
    resumed = [keras.models.load_model(tmp_path / "p.keras"),
               plexus.models.load_model(tmp_path / "k.keras"),
               plexus.models.load_model(tmp_path / "p.keras")]
    for m in [km] + resumed:
        m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for m in resumed:
        for a, b in zip(m.get_weights(), km.get_weights()):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kwargs", [CASES[0], CASES[4], CASES[6], CASES[8], CASES[10],
                                         CASES[13]], ids=[IDS[i] for i in (0, 4, 6, 8, 10, 13)])
def test_saved_state_resumes_in_either_library(name, kwargs, tmp_path):
    x, y = data()
    pm, km = mlp_pair()
    pm.compile(optimizer=getattr(plexus.optimizers, name)(**kwargs), loss="mse")
    km.compile(optimizer=getattr(keras.optimizers, name)(**kwargs), loss="mse")
    for m in (pm, km):
        m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    _resume_in_both(pm, km, tmp_path)


def _conv_pair(lib):
    i = lib.Input(shape=(6, 6, 2))
    h = lib.layers.Conv2D(3, 3, name="conv")(i)
    o = lib.layers.Dense(2, name="out")(lib.layers.Flatten()(h))
    return lib.Model(i, o)


@pytest.mark.parametrize("name", ["Adafactor", "Muon"])
def test_layout_aware_rules_match_keras_on_convolutions(name):
    pm, km = _conv_pair(plexus), _conv_pair(keras)
    km.set_weights(pm.get_weights())
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 6, 6, 2)).astype("float32"), rng.normal(size=(8, 2)).astype(
        "float32")
    pm.compile(optimizer=getattr(plexus.optimizers, name)(learning_rate=0.01), loss="mse")
    km.compile(optimizer=getattr(keras.optimizers, name)(learning_rate=0.01), loss="mse")
    for m in (pm, km):
        m.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(pm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


def test_multi_optimizer_matches_keras(tmp_path):
    def make(lib):
        O = lib.optimizers
        return O.MultiOptimizer(O.OptimizerMap(O.SGD(0.05, momentum=0.5),
                                               {"hidden/.*": O.Adam(0.01)}))
    pm, km = _train_pair(make(plexus), make(keras))
    assert [type(o).__name__ for o in pm.optimizer.optimizers] == ["Adam", "SGD"]
    with pytest.raises(AttributeError, match="sub-optimizers"):
        pm.optimizer.learning_rate  # noqa: B018
    _resume_in_both(pm, km, tmp_path)


def test_optimizer_argument_errors():
    O = plexus.optimizers
    with pytest.raises(ValueError, match="beta_1 must be in"):
        O.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="learning_rate_power must be negative"):
        O.Ftrl(learning_rate_power=0.5)
    with pytest.raises(ValueError, match="ema_momentum"):
        O.Adam(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        O.Adam(use_ema=True, ema_overwrite_frequency=0)
    with pytest.raises(ImportError, match="plexus.optimizers.Adam instead"):
        O.legacy.Adam()
    with pytest.raises(ValueError, match="several patterns"):
        O.OptimizerMap(O.SGD(), {"a.*": O.Adam(), ".*b": O.SGD()})["ab"]
    with pytest.raises(ValueError, match="cannot be a LossScaleOptimizer"):
        O.OptimizerMap(O.SGD(), {"a": O.LossScaleOptimizer(O.SGD())})
