"""The training engine at its limits: models moved to other dtypes train, two threads predict
with one model, `clear_session` resets the session, graph rebuilding stays linear whatever the
order of the config, and a 10,000-layer chain goes through every stage."""
import contextlib
import io
import threading

import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[np.argmax(x[:, :3] + 0.5 * x[:, 3:], axis=1)]
    return x, y


def _model(seed=0):
    torch.manual_seed(seed)
    inp = plexus.Input(shape=(6,))
    h = L.Dense(8, activation="relu")(inp)
    h = L.BatchNormalization()(h)
    h = L.Dropout(0.1)(h)
    model = plexus.Model(inp, L.Dense(3, activation="softmax")(h))
    model.compile(optimizer=plexus.optimizers.Adam(0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


# ---------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("move,dtype", [("double", torch.float64), ("half", torch.float16),
                                        ("bfloat16", torch.bfloat16),
                                        ("to", torch.float64)])
def test_models_moved_to_another_dtype_train(move, dtype):
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model = model.to(dtype) if move == "to" else getattr(model, move)()
    before = [w.detach().clone() for w in model.trainable_weights]
    hist = model.fit(x, y, batch_size=16, epochs=6, verbose=0).history
    assert all(w.dtype == dtype for w in model.weights)
    assert all(np.isfinite(hist["loss"])) and hist["loss"][-1] < hist["loss"][0]
    assert all(not torch.equal(a, b) for a, b in zip(before, model.trainable_weights))
    assert model.predict(x, verbose=0).dtype == np.dtype(str(dtype).replace("torch.", "")) \
        if dtype is not torch.bfloat16 else True
    assert np.isfinite(model.evaluate(x, y, verbose=0)).all()


def test_float64_training_follows_float32_training():
    x, y = _data()
    out = []
    for double in (False, True):
        plexus.clear_session()
        model = _model()
        if double:
            model.double()
        torch.manual_seed(1)
        out.append((model.fit(x, y, batch_size=16, epochs=2, shuffle=False,
                              verbose=0).history["loss"], model.get_weights()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-4)
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert out[1][1][0].dtype == np.float64


def test_back_to_float32_takes_the_closed_form_again():
    x, y = _data()
    torch.manual_seed(0)
    inp = plexus.Input(shape=(6,))
    model = plexus.Model(inp, L.Dense(3, activation="softmax")(L.Dense(8, "relu")(inp)))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.double()
    model.fit(x, y, verbose=0)
    assert model._compile_state.cache.get("backprop") is None  # float64: autograd
    model.float()
    model.fit(x, y, verbose=0)
    assert model._compile_state.cache.get("backprop") is not None
    assert model.layers[1].compute_dtype == "float32"


# ---------------------------------------------------------------------- threads
def test_two_threads_predict_with_one_model_as_one_after_the_other():
    torch.manual_seed(0)
    inp = plexus.Input(shape=(6,))
    h = L.Dense(16, activation="relu", activity_regularizer="l2")(inp)
    h = L.BatchNormalization()(h)
    h = L.Dropout(0.5)(h)  # (inactive in predict)
    model = plexus.Model(inp, L.Dense(3, activation="softmax")(h))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(int(rng.integers(1, 40)), 6)).astype("float32")
               for _ in range(2)]
    expected = [[model.predict(b, verbose=0) for _ in range(15)] for b in batches]
    expected_call = [model(b).detach().numpy() for b in batches]
    got, errors = [[], []], []
    start = threading.Barrier(2)

    def work(i):
        try:
            start.wait()
            for _ in range(15):
                got[i].append(model.predict(batches[i], verbose=0))
                got[i].append(model(batches[i]).detach().numpy())
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for i in range(2):
        assert len(got[i]) == 30
        for k, out in enumerate(got[i]):
            want = expected[i][k // 2] if k % 2 == 0 else expected_call[i]
            np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------- clear_session
def test_clear_session_resets_the_session_state():
    from plexus import backend
    from plexus.layers.layer import published_losses
    L.Dense(1)
    backend.get_uid("x")
    plexus.mixed_precision.set_global_policy("mixed_bfloat16")
    plexus.config.enable_unsafe_deserialization()
    plexus.config.disable_flash_attention()
    layer = L.Dense(2, activity_regularizer="l2")
    layer(np.ones((2, 3), "float32"))
    assert published_losses({id(layer)})
    plexus.clear_session()
    assert L.Dense(1).name == "dense"
    assert backend.get_uid("x") == 1
    assert plexus.mixed_precision.global_policy().name == "float32"
    assert not plexus.config.is_unsafe_deserialization_enabled()
    assert plexus.config.is_flash_attention_enabled() is None or \
        plexus.config.is_flash_attention_enabled()
    assert not published_losses({id(layer)}) and layer.losses == []


# ---------------------------------------------------------------------- scale
def _chain_config(n):
    inp = plexus.Input((2,), name="inp")
    x = inp
    for i in range(n):
        x = L.Activation("relu", name=f"a{i}")(x)
    return plexus.Model(inp, x).get_config()


@pytest.mark.parametrize("reverse", [False, True])
def test_config_rebuilding_is_linear_whatever_the_order(reverse, monkeypatch):
    from plexus.models import config as C
    tries = []
    real = C._node_call_args
    monkeypatch.setattr(C, "_node_call_args", lambda *a: tries.append(1) or real(*a))
    n = 300
    cfg = _chain_config(n)
    if reverse:
        cfg["layers"] = cfg["layers"][:1] + cfg["layers"][:0:-1]
    model = plexus.Model.from_config(cfg)
    assert len(model.layers) == n + 1
    # each recorded call is tried at most twice: once too early, once when its input exists
    assert len(tries) <= (2 * n if reverse else n)
    x = np.array([[-1.0, 2.0]], "float32")
    np.testing.assert_array_equal(model(x).detach().numpy(), [[0.0, 2.0]])


@pytest.mark.slow
def test_a_chain_of_10000_layers_builds_runs_summarises_trains_saves_and_loads(tmp_path):
    inp = plexus.Input((2,))
    x = inp
    for i in range(10_000):
        x = L.Dense(2)(x) if i % 2 else L.Activation("tanh")(x)
    model = plexus.Model(inp, x)
    data = np.ones((4, 2), "float32")
    out = model.predict(data, verbose=0)
    assert out.shape == (4, 2)
    with contextlib.redirect_stdout(io.StringIO()) as text:
        model.summary()
    assert "Total params: 30,000" in text.getvalue()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(data, data, epochs=1, verbose=0)
    out = model.predict(data, verbose=0)
    model.save(tmp_path / "deep.keras")
    loaded = plexus.models.load_model(tmp_path / "deep.keras")
    np.testing.assert_allclose(loaded.predict(data, verbose=0), out, rtol=1e-6)
    config = model.get_config()
    config["layers"] = config["layers"][:1] + config["layers"][:0:-1]
    assert len(plexus.Model.from_config(config).layers) == 10_001
