"""The training step by batch halves (plexus/training/halves.py): the same gradients and the
same training as the whole batch, only where splitting the batch cannot change the result,
and the thread policy's use of it (racing it, switching it on for its steps only)."""
import numpy as np
import pytest
import torch

import plexus as K
from plexus import config
from plexus.training import halves
from plexus.training import steps as S
from plexus.training import threads as T

L = K.layers


@pytest.fixture
def torch_policy():
    """The thread policy off: each test turns the halves on and off itself."""
    config.set_thread_policy("torch")
    yield
    config.set_thread_policy("auto")
    halves.set_active(False)


def posts_like(seed=0):
    """Embedding + Conv1D + pooling, two outputs with weights and a metric (a small posts
    model of the seeds)."""
    K.utils.set_random_seed(seed)
    inp = K.Input(shape=(None,), dtype="int32")
    x = L.Embedding(100, 8)(inp)
    x = L.Conv1D(6, 3, activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(6, 3, activation="relu")(x)
    h = L.Dense(5, activation="relu")(L.GlobalMaxPooling1D()(x))
    model = K.Model(inp, [L.Dense(1, name="a")(h),
                          L.Dense(3, activation="softmax", name="b")(h)])
    model.compile(optimizer="rmsprop", loss=["mse", "categorical_crossentropy"],
                  loss_weights=[0.5, 1.0], metrics=[[], ["accuracy"]])
    return model


def residual(seed=0):
    K.utils.set_random_seed(seed)
    inp = K.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    y = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = L.add([x, y])
    x = L.Concatenate()([L.GlobalAveragePooling2D()(x), L.GlobalMaxPooling2D()(x)])
    model = K.Model(inp, L.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def posts_data(n=13):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 100, size=(n, 20)).astype("int32")
    return x, [rng.random((n, 1)).astype("float32"),
               np.eye(3, dtype="float32")[rng.integers(0, 3, n)]]


def fit_both(build, x, y, **kw):
    """Train two copies from the same weights, the second by halves; both histories and
    weight lists."""
    out = []
    for by_halves in (False, True):
        model = build()
        halves.set_active(by_halves)
        try:
            hist = model.fit(x, y, verbose=0, shuffle=False, **kw)
        finally:
            halves.set_active(False)
        out.append((model, hist.history))
    return out


def test_training_by_halves_matches_the_whole_batch(torch_policy):
    x, y = posts_data()
    sw = np.linspace(0.5, 1.5, len(x)).astype("float32")
    # batches of 5, 5 and 3: halves of 2 and 3, then 1 and 2
    (whole, h1), (split, h2) = fit_both(posts_like, x, y, batch_size=5, epochs=3,
                                        sample_weight=sw)
    assert split._compile_state.cache["halves"] is not None
    for a, b in zip(whole.get_weights(), split.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert h1.keys() == h2.keys()
    for key in h1:
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-5, atol=1e-6)


def test_residual_convolutions_by_halves_match(torch_policy):
    rng = np.random.default_rng(1)
    x = rng.random((12, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 2, 12)
    (whole, _), (split, _) = fit_both(residual, x, y, batch_size=6, epochs=2)
    for a, b in zip(whole.get_weights(), split.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradients_by_halves_equal_autograd_on_the_whole_batch(torch_policy):
    """Every weight's gradient, the embedding table's (built once from both halves' rows)
    included, equals backpropagation of the whole batch."""
    model = posts_like()
    x, y = posts_data(9)
    model.fit(x, y, batch_size=9, epochs=1, verbose=0)  # (prepared: the step is planned)
    st = model._compile_state
    xs = [torch.as_tensor(x)]
    ys = [torch.as_tensor(t) for t in y]
    params = st.cache["params"]
    for p in params:
        p.grad = None
    total, _, _ = S._loss_fn(model, st, st.cache["regs"], xs, ys, None)
    total.backward()
    expected = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    got_total, values, preds = st.cache["halves"](xs, ys, None)
    assert torch.allclose(got_total, total, rtol=1e-6)
    assert [tuple(p.shape) for p in preds] == [(9, 1), (9, 3)]
    table = model.layers[1].embeddings
    assert any(p is table for p in params)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.grad, e, rtol=1e-5, atol=1e-7)


def test_a_batch_of_one_sample_runs_the_whole_step(torch_policy):
    model = posts_like()
    x, y = posts_data(3)
    model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    xs = [torch.as_tensor(x[:1])]
    assert model._compile_state.cache["halves"](xs, [torch.as_tensor(t[:1]) for t in y],
                                                None) is None


def test_only_models_a_split_batch_cannot_change(torch_policy):
    assert halves.eligible(posts_like()) and halves.eligible(residual())

    def one(layer_fn, inputs=None, dtype="float32"):
        inp = K.Input((6,) if inputs is None else inputs, dtype=dtype)
        return K.Model(inp, L.Dense(1)(layer_fn(inp)))

    assert not halves.eligible(one(lambda t: L.BatchNormalization()(t)))  # batch statistics
    assert not halves.eligible(one(lambda t: L.Dropout(0.5)(t)))  # random draws
    assert not halves.eligible(one(lambda t: L.Dense(3, activity_regularizer="l2")(t)))
    assert not halves.eligible(one(
        lambda t: L.GlobalAveragePooling1D()(L.Embedding(10, 4, mask_zero=True)(t)),
        inputs=(5,), dtype="int32"))  # masks
    half = K.Input((6,))
    assert not halves.eligible(K.Model(half, L.Dense(2, dtype="mixed_bfloat16")(half)))
    fixed = K.Input((6,), batch_size=4)  # a known batch size: the batch axis normalized
    assert not halves.eligible(K.Model(fixed, L.LayerNormalization(axis=0)(fixed)))
    assert not halves.eligible(K.Model(fixed, L.LayerNormalization(axis=[-2, -1])(fixed)))
    assert halves.eligible(K.Model(fixed, L.LayerNormalization()(fixed)))
    shared = L.Dense(6)
    inp = K.Input((6,))
    assert halves.eligible(K.Model(inp, shared(shared(inp))))  # one layer called twice: fine

    class Sub(K.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(1)

        def call(self, x):
            return self.d(x)

    assert not halves.eligible(Sub())
    hooked = one(lambda t: L.Dense(3)(t))
    handle = hooked.layers[1].register_forward_hook(lambda *a: None)
    assert not halves.eligible(hooked)
    handle.remove()
    assert halves.eligible(hooked)
    # penalties on the weights: eligible, but the step is not planned
    reg = one(lambda t: L.Dense(3, kernel_regularizer="l2")(t))
    reg.compile("sgd", "mse")
    reg.fit(np.ones((4, 6), "float32"), np.ones((4, 1), "float32"), verbose=0)
    assert reg._compile_state.cache["halves"] is None


def test_a_bad_id_in_a_half_gives_the_layers_error(torch_policy):
    model = posts_like()
    x, y = posts_data(6)
    model.fit(x, y, batch_size=6, epochs=1, verbose=0)
    x[5, 3] = 500  # in the second half: looked up by the other thread
    halves.set_active(True)
    try:
        with pytest.raises(ValueError, match="outside \\[0, 100\\)"):
            model.fit(x, y, batch_size=6, epochs=1, verbose=0)
    finally:
        halves.set_active(False)


# ---------------------------------------------------------------------- the thread policy
def test_tuner_prefers_torchs_threads_then_halves_within_two_percent():
    def race(times):
        tuner = T.Tuner((2, T.HALVES, 1), start=1)
        for _ in range(40):
            n = tuner.next_threads()
            tuner.record(n, times[n])
            if not tuner.plan and tuner.calibrations:
                break
        return tuner.choice

    assert race({2: 0.010, T.HALVES: 0.0101, 1: 0.020}) == 2
    assert race({2: 0.020, T.HALVES: 0.010, 1: 0.0101}) == 1
    assert race({2: 0.020, T.HALVES: 0.010, 1: 0.015}) == T.HALVES


@pytest.fixture
def auto(monkeypatch):
    """'auto' free to tune on a quiet 2-CPU machine (as in test_threads.py)."""
    saved = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(T, "_AT_IMPORT", 2)
    monkeypatch.setattr(T, "torch_default_threads", lambda *a: 2)
    monkeypatch.setattr(T, "available_cpus", lambda *a: 2)
    monkeypatch.setattr(T, "others_running", lambda *a: 0)
    config.set_thread_policy("auto")
    torch.set_num_threads(2)
    yield
    config.set_thread_policy("auto")
    torch.set_num_threads(saved)
    halves.set_active(False)


def test_fit_races_the_halves_and_switches_them_on_for_its_steps_only(auto, monkeypatch):
    seen = []

    class Watch(K.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((halves.active(), torch.get_num_threads()))

        def on_test_batch_end(self, batch, logs=None):
            seen.append(("test", halves.active()))

    model = posts_like()
    x, y = posts_data(40)
    times = {2: 0.030, T.HALVES: 0.010, 1: 0.020}  # a busy machine: the halves win
    real = T.Tuner.record
    monkeypatch.setattr(T.Tuner, "record", lambda self, n, sec: real(self, n, times[n]))
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Watch()],
              validation_data=(x[:8], [t[:8] for t in y]))
    key = ("train", 4, (2, 1, T.HALVES))
    tuner = model._thread_tuners[key]
    assert tuner.choice == T.HALVES
    on = [s for s in seen if s[0] is True]
    assert on and all(n == 1 for _, n in on)  # each half on one intra-op thread
    assert all(not s[1] for s in seen if s[0] == "test")  # validation: the whole batch
    assert not halves.active() and torch.get_num_threads() == 2  # restored after fit
    # evaluate and predict are never raced against the halves
    model.evaluate(x, y, batch_size=4, verbose=0)
    assert all(T.HALVES not in k[2] for k in model._thread_tuners if k[0] != "train")


def test_train_on_batch_runs_by_halves_when_chosen(auto, monkeypatch):
    model = posts_like()
    x, y = posts_data(6)
    model.train_on_batch(x, y)  # prepared and tuned through threads.call
    key = next(k for k in model._thread_tuners if k[0] == "train")
    assert T.HALVES in key[2]
    tuner = model._thread_tuners[key]
    tuner.choice, tuner.plan, tuner.warmup, tuner.reference = T.HALVES, [], 0, 1.0
    used = []
    real = halves.Step.__call__
    monkeypatch.setattr(halves.Step, "__call__", lambda self, *a: (
        used.append(torch.get_num_threads()), real(self, *a))[1])
    model.train_on_batch(x, y)
    assert used == [1] and not halves.active() and torch.get_num_threads() == 2


def test_a_forked_child_gets_its_own_pool_thread(monkeypatch):
    """After a fork the parent's pool thread does not exist in the child: a new pool."""
    first = halves._worker()
    assert halves._worker() is first
    monkeypatch.setattr(halves, "_pool", (-1, first))  # as a child sees the parent's pool
    fresh = halves._worker()
    assert fresh is not first and fresh.submit(lambda: 7).result() == 7


def test_a_gradient_hook_on_a_weight_sees_the_whole_batch_once_per_step(torch_policy):
    """A weight's own gradient hook, set before `fit` or by a callback during it, makes the
    step run on the whole batch: the hook fires once per step with the whole gradient."""
    x, y = posts_data(12)
    model = posts_like()
    seen = []
    kernel = model.get_layer("a").kernel
    kernel.register_hook(lambda g: seen.append(g.shape))
    halves.set_active(True)
    try:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert model._compile_state.cache["halves"] is None and len(seen) == 3
        late = posts_like()
        late.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert late._compile_state.cache["halves"] is not None
        fired = []

        class AddHook(K.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 0:
                    late.get_layer("a").kernel.register_hook(lambda g: fired.append(1))

        late.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[AddHook()])
        assert len(fired) == 2  # batches 1 and 2, once each
    finally:
        halves.set_active(False)


def test_an_activity_regularizer_set_after_a_fit_is_seen(torch_policy):
    model = posts_like()
    x, y = posts_data(6)
    model.fit(x, y, batch_size=6, epochs=1, verbose=0)
    assert model._compile_state.cache["halves"] is not None
    model.get_layer("a").activity_regularizer = K.regularizers.L2(0.5)
    model.train_on_batch(x, y)
    assert model._compile_state.cache["halves"] is None
