"""fit/evaluate/predict against Keras on a weighted two-output model, and the data forms fit
accepts (lists, dicts, sample and class weights, validation, generators, DataLoaders)."""
import keras
import numpy as np
import pytest
import torch

import plexus
from tests.parity.training_helpers import assert_weights_close, mlp_pair, two_output_pair

rng = np.random.default_rng(11)
X = rng.normal(size=(20, 5)).astype("float32")
YA = rng.integers(0, 2, (20, 1)).astype("float32")
YB = np.eye(3, dtype="float32")[rng.integers(0, 3, 20)]
SW = rng.uniform(0.2, 2, 20).astype("float32")


def _compile_both(pm, km, **kw):
    pm.compile(optimizer=plexus.optimizers.Adam(0.01), **kw)
    km.compile(optimizer=keras.optimizers.Adam(0.01), **kw)


@pytest.mark.parametrize("style", ["list", "dict"])
def test_weighted_two_output_model_matches_keras(style):
    pm, km = two_output_pair()
    if style == "list":
        kw = dict(loss=["binary_crossentropy", "categorical_crossentropy"],
                  loss_weights=[1.0, 0.2], metrics=[["acc"], ["acc", "mse"]])
        y = [YA, YB]
    else:
        kw = dict(loss={"a": "binary_crossentropy", "b": "categorical_crossentropy"},
                  loss_weights={"a": 0.25, "b": 10.0}, metrics={"b": ["accuracy"]})
        y = {"a": YA, "b": YB}
    _compile_both(pm, km, **kw)
    hp = pm.fit(X, y, batch_size=6, epochs=2, shuffle=False, verbose=0, validation_split=0.25)
    hk = km.fit(X, y, batch_size=6, epochs=2, shuffle=False, verbose=0, validation_split=0.25)
    assert list(hp.history) == list(hk.history)
    for key in hk.history:
        np.testing.assert_allclose(hp.history[key], hk.history[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    assert_weights_close(pm, km)
    ep = pm.evaluate(X, y, verbose=0)
    ek = km.evaluate(X, y, verbose=0)
    np.testing.assert_allclose(ep, ek, rtol=1e-5)
    dp = pm.evaluate(X, y, verbose=0, return_dict=True)
    dk = km.evaluate(X, y, verbose=0, return_dict=True)
    assert list(dp) == list(dk)
    pp, pk = pm.predict(X, verbose=0), km.predict(X, verbose=0)
    assert isinstance(pp, list) and len(pp) == 2
    np.testing.assert_allclose(pp[1], np.asarray(pk[1]), rtol=1e-5, atol=1e-6)


def test_one_loss_for_two_outputs_and_sample_weights():
    pm, km = two_output_pair()
    _compile_both(pm, km, loss="mse")
    hp = pm.fit(X, [YA, YB], sample_weight=SW, batch_size=8, epochs=1, shuffle=False,
                verbose=0)
    hk = km.fit(X, [YA, YB], sample_weight=SW, batch_size=8, epochs=1, shuffle=False,
                verbose=0)
    assert sorted(hp.history) == sorted(hk.history) == ["a_loss", "b_loss", "loss"]
    for key in hk.history:
        np.testing.assert_allclose(hp.history[key], hk.history[key], rtol=1e-5)
    assert_weights_close(pm, km)


def test_class_weight_and_train_test_on_batch_match_keras():
    pm, km = mlp_pair(out_units=3, out_activation="softmax", in_dim=5)
    y = rng.integers(0, 3, (20, 1))
    for m in (pm, km):
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["acc"])
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    hp = pm.fit(X, y, class_weight=cw, batch_size=7, shuffle=False, verbose=0)
    hk = km.fit(X, y, class_weight=cw, batch_size=7, shuffle=False, verbose=0)
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(pm.train_on_batch(X[:6], y[:6]), km.train_on_batch(X[:6], y[:6]),
                               rtol=1e-5)
    np.testing.assert_allclose(pm.test_on_batch(X, y), km.test_on_batch(X, y), rtol=1e-5)
    np.testing.assert_allclose(pm.predict_on_batch(X[:3]), np.asarray(km.predict_on_batch(X[:3])),
                               rtol=1e-5, atol=1e-6)
    assert_weights_close(pm, km)


def test_validation_data_and_sequential_model():
    ps = plexus.Sequential([plexus.layers.Dense(3, activation="relu"), plexus.layers.Dense(1)])
    ks = keras.Sequential([keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
    ps.build((None, 5))
    ks.build((None, 5))
    ks.set_weights(ps.get_weights())
    y = X[:, :1] * 2
    for m in (ps, ks):
        m.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
    hp = ps.fit(X, y, validation_data=(X[:5], y[:5]), epochs=2, batch_size=4, shuffle=False,
                verbose=0)
    hk = ks.fit(X, y, validation_data=(X[:5], y[:5]), epochs=2, batch_size=4, shuffle=False,
                verbose=0)
    assert list(hp.history) == list(hk.history)
    for key in hk.history:
        np.testing.assert_allclose(hp.history[key], hk.history[key], rtol=1e-5, err_msg=key)


def test_multi_input_list_dict_generator_and_dataloader_agree():
    def build():
        plexus.utils.set_random_seed(1)
        a, b = plexus.Input(shape=(3,), name="left"), plexus.Input(shape=(2,), name="right")
        h = plexus.layers.concatenate([a, b])
        m = plexus.Model([a, b], plexus.layers.Dense(1, name="score")(h))
        m.compile(optimizer="adam", loss="mse")
        return m
    xa, xb, y = X[:, :3], X[:, 3:], X[:, :1]
    results = []
    m = build()
    m.fit([xa, xb], y, batch_size=5, shuffle=False, verbose=0)
    results.append(m.get_weights())
    m = build()
    m.fit({"left": xa, "right": xb}, {"score": y}, batch_size=5, shuffle=False, verbose=0)
    results.append(m.get_weights())
    m = build()
    gen = (([xa[i:i + 5], xb[i:i + 5]], y[i:i + 5]) for i in range(0, 20, 5))
    m.fit(gen, steps_per_epoch=4, verbose=0)
    results.append(m.get_weights())
    m = build()
    ds = torch.utils.data.TensorDataset(torch.tensor(xa), torch.tensor(xb), torch.tensor(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=5, shuffle=False,
                                         collate_fn=lambda b: ([torch.stack([r[0] for r in b]),
                                                                torch.stack([r[1] for r in b])],
                                                               torch.stack([r[2] for r in b])))
    m.fit(loader, epochs=1, verbose=0)
    results.append(m.get_weights())
    for other in results[1:]:
        for w0, w1 in zip(results[0], other):
            np.testing.assert_allclose(w0, w1, rtol=1e-6)


def test_same_seed_same_training():
    runs = []
    for _ in range(2):
        plexus.utils.set_random_seed(42)
        i = plexus.Input(shape=(5,))
        h = plexus.layers.Dropout(0.5)(plexus.layers.Dense(8, activation="relu")(i))
        m = plexus.Model(i, plexus.layers.Dense(1)(h))
        m.compile("adam", "mse")
        h = m.fit(X, X[:, :1], epochs=2, batch_size=4, verbose=0)  # shuffled
        runs.append((h.history["loss"], m.get_weights()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_fit_switches_train_mode_and_back():
    pm, _ = mlp_pair(in_dim=5)
    pm.compile("sgd", "mse")
    seen = []
    cb = plexus.callbacks.LambdaCallback(on_train_batch_end=lambda b, l: seen.append(pm.training))
    pm.fit(X, X[:, :2], batch_size=10, verbose=0, callbacks=[cb])
    assert seen == [True, True] and pm.training is False


def test_jit_compile_gives_the_same_result():
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")
    weights = []
    for jit in (False, True):
        pm, _ = mlp_pair(in_dim=5)
        pm.compile(optimizer="adam", loss="mse", jit_compile=jit)
        pm.fit(X, X[:, :2], batch_size=10, epochs=1, shuffle=False, verbose=0)
        weights.append(pm.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_jit_compile_two_outputs_matches_keras_and_compiles_the_gradients():
    """The compiled path (forward, losses and gradients in one torch.compile graph) trains a
    weighted two-output model with metrics to Keras's numbers."""
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")
    pm, km = two_output_pair()
    kw = dict(loss=["binary_crossentropy", "categorical_crossentropy"], loss_weights=[1.0, 0.2],
              metrics=[["acc"], ["acc"]])
    pm.compile(optimizer=plexus.optimizers.Adam(0.01), jit_compile=True, **kw)
    km.compile(optimizer=keras.optimizers.Adam(0.01), **kw)
    hp = pm.fit(X, [YA, YB], batch_size=6, epochs=2, shuffle=False, verbose=0)
    hk = km.fit(X, [YA, YB], batch_size=6, epochs=2, shuffle=False, verbose=0)
    for key in hk.history:
        np.testing.assert_allclose(hp.history[key], hk.history[key], rtol=1e-4, atol=1e-5,
                                   err_msg=key)
    assert_weights_close(pm, km, rtol=1e-4, atol=1e-5)
    compiled = pm._compile_state.cache["jit"].compiled  # (the race's compiled side)
    if hasattr(torch._dynamo.config, "trace_autograd_ops"):
        out = compiled([torch.from_numpy(X[:6])],
                       [torch.from_numpy(YA[:6]), torch.from_numpy(YB[:6])], None)
        grads = out[3]
        assert len(grads) == len(pm.trainable_weights)
        assert all(g is not None and g.shape == p.shape
                   for g, p in zip(grads, pm.trainable_weights))


def test_jit_compile_with_recurrent_layers_warns_and_trains_eagerly():
    inp = plexus.Input((4, 3))
    m = plexus.Model(inp, plexus.layers.Dense(1)(plexus.layers.LSTM(2)(inp)))
    m.compile("adam", "mse", jit_compile=True)
    before = m.get_weights()
    x = rng.normal(size=(8, 4, 3)).astype("float32")
    with pytest.warns(UserWarning, match="LSTM layers.*trains eagerly"):
        m.fit(x, x[:, 0, :1], batch_size=4, epochs=1, verbose=0)
    assert m._compile_state.cache["jit"] is None
    assert all(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))


def test_subclassed_and_deferred_sequential_models_train():
    class Small(plexus.Model):
        def __init__(self):
            super().__init__()
            self.d1 = plexus.layers.Dense(8, activation="relu")
            self.d2 = plexus.layers.Dense(1)

        def call(self, x, training=None):
            return self.d2(self.d1(x))

    y = X.sum(axis=1, keepdims=True)
    for m in (Small(), plexus.Sequential([plexus.layers.Dense(4, activation="relu"),
                                         plexus.layers.Dense(1)])):
        m.compile("adam", "mse", metrics=["mae"])
        h = m.fit(X, y, epochs=3, batch_size=5, verbose=0)
        assert sorted(h.history) == ["loss", "mae"] and h.history["loss"][2] < h.history["loss"][0]
        assert m.predict(X[:3], verbose=0).shape == (3, 1)
        assert len(m.evaluate(X, y, verbose=0)) == 2


def test_subclassed_model_with_list_inputs_trains_from_its_first_fit():
    class TwoInputs(plexus.Model):
        def __init__(self):
            super().__init__()
            self.dense = plexus.layers.Dense(1)

        def call(self, inputs):
            a, b = inputs
            return self.dense(torch.cat([a, b], dim=-1))

    rng = np.random.default_rng(1)
    xa, xb = rng.random((12, 2)).astype("float32"), rng.random((12, 3)).astype("float32")
    y = (xa.sum(1, keepdims=True) - xb.sum(1, keepdims=True)).astype("float32")
    m = TwoInputs()
    m.compile("sgd", "mse")
    h = m.fit([xa, xb], y, epochs=3, batch_size=4, validation_split=0.25, verbose=0)
    assert h.history["loss"][2] < h.history["loss"][0]
    assert np.any(m.get_weights()[1] != 0)  # the bias moved in the very first fit

    def batches():
        for i in range(0, 12, 4):
            yield [xa[i:i + 4], xb[i:i + 4]], y[i:i + 4]

    g = TwoInputs()
    g.compile("sgd", "mse")
    g.fit(batches(), epochs=1, verbose=0)
    assert np.any(g.get_weights()[1] != 0)
    with pytest.raises(ValueError, match="same number of samples"):
        m.fit([xa, xb[:11]], y, verbose=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_runs_on_the_device_of_the_parameters():
    pm, km = mlp_pair(in_dim=5)
    pm.to("cuda")
    pm.compile(optimizer="adam", loss="mse", metrics=["mae"])
    km.compile(optimizer="adam", loss="mse", metrics=["mae"])
    hp = pm.fit(X, X[:, :2], batch_size=4, epochs=2, shuffle=False, verbose=0)
    hk = km.fit(X, X[:, :2], batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert all(p.device.type == "cuda" for p in pm.parameters())
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=1e-4)
    assert_weights_close(pm, km, rtol=1e-4, atol=1e-5)
    assert isinstance(pm.predict(X, verbose=0), np.ndarray)


@pytest.mark.skipif(not hasattr(plexus.models, "load_model"), reason="saving not present")
def test_training_resumed_from_a_saved_model_matches_an_uninterrupted_run(tmp_path):
    x, y = X[:, :4], X[:, 3:5]

    def make():
        pm, _ = mlp_pair()
        pm.compile(optimizer=plexus.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
        return pm
    whole = make()
    whole.fit(x, y, epochs=4, batch_size=6, shuffle=False, verbose=0)
    first = make()
    first.fit(x, y, epochs=2, batch_size=6, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    first.save(path)
    resumed = plexus.models.load_model(path)
    assert resumed.optimizer.iterations == 8
    resumed.fit(x, y, epochs=2, batch_size=6, shuffle=False, verbose=0)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
