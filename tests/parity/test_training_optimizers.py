"""Every optimizer (and clipping, weight decay, schedules) trains one epoch exactly as Keras."""
import keras
import numpy as np
import pytest

import plexus
from tests.parity.training_helpers import assert_weights_close, data, mlp_pair

CASES = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "beta_1": 0.8}),
    ("AdamW", {}),
    ("AdamW", {"weight_decay": 0.1, "learning_rate": 0.01}),
    ("Adagrad", {}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adamax", {}),
    ("Nadam", {}),
    ("SGD", {"clipnorm": 0.1, "learning_rate": 0.1}),
    ("Adam", {"clipvalue": 0.01}),
    ("RMSprop", {"global_clipnorm": 0.05}),
    ("SGD", {"weight_decay": 0.05, "momentum": 0.5}),
]


def _train_pair(p_optimizer, k_optimizer):
    """Two epochs of the same model and data in plexus and Keras; checks that the weights,
    the losses and the update counts agree, and returns the two models."""
    pm, km = mlp_pair()
    x, y = data()
    pm.compile(optimizer=p_optimizer, loss="mse")
    km.compile(optimizer=k_optimizer, loss="mse")
    hp = pm.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    hk = km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert_weights_close(pm, km)
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=1e-5)
    assert pm.optimizer.iterations == int(km.optimizer.iterations.numpy())
    return pm, km


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_optimizer_epoch_matches_keras(name, kwargs):
    pm, _ = _train_pair(getattr(plexus.optimizers, name)(**kwargs),
                        getattr(keras.optimizers, name)(**kwargs))
    assert pm.optimizer.iterations == 6


SCHEDULES = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5)),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5,
                              staircase=True)),
    ("PiecewiseConstantDecay", dict(boundaries=[1, 3], values=[0.1, 0.05, 0.01])),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=4, alpha=0.1)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=3, warmup_target=0.1,
                         warmup_steps=2)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=1, decay_rate=0.5)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=4, power=2.0)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=2, end_learning_rate=0.01,
                             cycle=True)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=2, m_mul=0.5,
                                 alpha=0.1)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=2, t_mul=1.0)),
]


@pytest.mark.parametrize("name,kwargs", SCHEDULES,
                         ids=[f"{s[0]}-{'-'.join(s[1])}" for s in SCHEDULES])
def test_schedule_matches_keras(name, kwargs):
    ps = getattr(plexus.optimizers.schedules, name)(**kwargs)
    ks = getattr(keras.optimizers.schedules, name)(**kwargs)
    for step in range(7):
        np.testing.assert_allclose(ps(step), float(ks(step)), rtol=1e-6, atol=1e-9)
    pm, km = mlp_pair()
    x, y = data()
    pm.compile(optimizer=plexus.optimizers.SGD(ps, momentum=0.5), loss="mse")
    km.compile(optimizer=keras.optimizers.SGD(ks, momentum=0.5), loss="mse")
    pm.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert_weights_close(pm, km)


def test_optimizer_names_and_defaults():
    for name in ("sgd", "rmsprop", "adam", "adamw", "adagrad", "adadelta", "adamax", "nadam"):
        p, k = plexus.optimizers.get(name), keras.optimizers.get(name)
        assert type(p).__name__ == type(k).__name__
        pc, kc = p.get_config(), k.get_config()
        for key, value in pc.items():
            if key in kc and key != "name":
                assert kc[key] == pytest.approx(value), (name, key)


def test_unknown_optimizer_lists_close_matches():
    pm, _ = mlp_pair()
    with pytest.raises(ValueError, match="adam"):
        pm.compile(optimizer="adamm", loss="mse")


def test_constraint_applied_after_each_step():
    i = plexus.Input(shape=(4,))
    o = plexus.layers.Dense(3, kernel_constraint=plexus.constraints.NonNeg())(i)
    m = plexus.Model(i, o)
    m.compile(optimizer=plexus.optimizers.SGD(1.0), loss="mse")
    x, y = data(out_units=3)
    m.fit(x, -10 * np.abs(y), batch_size=4, epochs=1, verbose=0)
    assert (m.get_weights()[0] >= 0).all()


@pytest.mark.parametrize("name,kwargs", [("Nadam", {}), ("Adam", {"amsgrad": True}),
                                         ("RMSprop", {"momentum": 0.5, "centered": True}),
                                         ("SGD", {"momentum": 0.9}), ("Adadelta", {}),
                                         ("Adamax", {}), ("Adagrad", {})])
def test_optimizer_state_in_keras_order(name, kwargs):
    pm, km = mlp_pair()
    x, y = data()
    pm.compile(optimizer=getattr(plexus.optimizers, name)(**kwargs), loss="mse")
    km.compile(optimizer=getattr(keras.optimizers, name)(**kwargs), loss="mse")
    pm.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    km.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    head = 2  # Keras lists iterations and the learning rate first
    theirs = [np.asarray(v) for v in km.optimizer.variables][head:]
    ours = [v.detach().numpy() for v in pm.optimizer.variables]
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


ACCUMULATION = [
    ("SGD", {"momentum": 0.9, "gradient_accumulation_steps": 2}),
    ("Adam", {"gradient_accumulation_steps": 3}),
    ("RMSprop", {"gradient_accumulation_steps": 2, "clipnorm": 0.5}),
    ("SGD", {"gradient_accumulation_steps": 2, "learning_rate": plexus.optimizers.schedules
             .ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)}),
    ("Adam", {"loss_scale_factor": 128.0}),
    ("SGD", {"loss_scale_factor": 4.0, "gradient_accumulation_steps": 2}),
]


@pytest.mark.parametrize("closed_form", [True, False])
@pytest.mark.parametrize("name,kwargs", ACCUMULATION,
                         ids=[f"{n}-{'-'.join(k)}" for n, k in ACCUMULATION])
def test_gradient_accumulation_and_loss_scale_factor_match_keras(name, kwargs, closed_form,
                                                                 monkeypatch):
    from plexus.training import backprop
    if not closed_form:
        monkeypatch.setattr(backprop, "plan", lambda *a: None)
    k_kwargs = dict(kwargs)
    if not isinstance(k_kwargs.get("learning_rate", 0.0), float):
        k_kwargs["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(
            0.1, decay_steps=1, decay_rate=0.5)
    pm, km = _train_pair(getattr(plexus.optimizers, name)(**kwargs),
                         getattr(keras.optimizers, name)(**k_kwargs))
    for key in ("gradient_accumulation_steps", "loss_scale_factor"):
        assert pm.optimizer.get_config()[key] == km.optimizer.get_config()[key]


def test_accumulated_state_survives_saving(tmp_path):
    pm, _ = mlp_pair()
    x, y = data(16)  # 12 samples to save after, 4 more to train on after loading
    pm.compile(optimizer=plexus.optimizers.Adam(gradient_accumulation_steps=2), loss="mse")
    pm.fit(x[:12], y[:12], batch_size=4, epochs=1, shuffle=False, verbose=0)  # 3 steps: 1 update
    assert pm.optimizer.iterations == 1 and pm.optimizer._iterations == 3
    path = tmp_path / "m.keras"
    pm.save(path)
    for loaded in (plexus.models.load_model(path), keras.models.load_model(path)):
        opt = loaded.optimizer
        assert opt.get_config()["gradient_accumulation_steps"] == 2
        assert int(np.asarray(opt.iterations)) == 1
    again = plexus.models.load_model(path)
    pm.fit(x[12:16], y[12:16], batch_size=4, epochs=1, shuffle=False, verbose=0)
    again.fit(x[12:16], y[12:16], batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(pm.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("bad", [1, 0.5, "2"])
def test_bad_gradient_accumulation_steps(bad):
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        plexus.optimizers.SGD(gradient_accumulation_steps=bad)
