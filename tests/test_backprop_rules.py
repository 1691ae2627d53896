"""The closed-form training step against autograd: randomly generated eligible models, and
changes made between two fits (hooks, regularizers, constraints, trainable flags, overrides).

The closed form (`plexus/training/backprop.py` with the layers' and losses' rules) must give
autograd's numbers, and must step aside whenever autograd would do something it does not.
"""
import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L
from plexus.training import backprop


def _fit(model, x, y, closed_form, monkeypatch=None, **kwargs):
    """Fit with or without the closed form; returns (history, whether it was planned)."""
    real = backprop.plan
    if not closed_form:
        backprop.plan = lambda *a: None
    try:
        torch.manual_seed(1)
        kwargs.setdefault("batch_size", 16)
        hist = model.fit(x, y, epochs=kwargs.pop("epochs", 1), shuffle=False, verbose=0,
                         **kwargs)
    finally:
        backprop.plan = real
    return hist.history, model._compile_state.cache.get("backprop") is not None


def _close(h1, w1, h2, w2, rtol=2e-5):
    assert h1.keys() == h2.keys()
    for k in h1:
        np.testing.assert_allclose(h1[k], h2[k], rtol=rtol, atol=1e-6, err_msg=k)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


# ---------------------------------------------------------------------- random models
_ACTS = [None, "relu", "sigmoid", "tanh", "softmax"]


def _random_case(seed):
    """A random eligible model (as a builder), its compile arguments, data and fit arguments."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 48))
    kind = ["categorical", "sparse", "binary", "mse"][seed % 4]
    start = rng.choice(["dense", "flatten", "embedding"], p=[0.6, 0.2, 0.2])
    depth = int(rng.integers(0, 4))
    widths = [int(rng.integers(3, 17)) for _ in range(depth)]
    acts = [_ACTS[int(rng.integers(len(_ACTS)))] for _ in range(depth)]
    extras = [rng.choice(["none", "dropout", "activation"], p=[0.6, 0.25, 0.15])
              for _ in range(depth)]
    rates = [float(rng.choice([0.0, 0.1, 0.3, 0.5])) for _ in range(depth)]
    extra_acts = [_ACTS[int(rng.integers(len(_ACTS)))] for _ in range(depth)]
    biases = [bool(rng.random() < 0.8) for _ in range(depth + 1)]
    frozen = int(rng.integers(-1, depth + 1)) if rng.random() < 0.25 else None
    units = int(rng.integers(2, 12)) if kind != "binary" else int(rng.integers(1, 4))
    from_logits = bool(rng.random() < 0.4) and kind in ("categorical", "sparse", "binary")
    smoothing = float(rng.choice([0.0, 0.1])) if kind in ("categorical", "binary") else 0.0
    final = None if from_logits else {"categorical": "softmax", "sparse": "softmax",
                                      "binary": "sigmoid"}.get(kind, _ACTS[seed % 5])
    vocab, steps, feat = 20, int(rng.integers(2, 6)), int(rng.integers(3, 12))
    pool = bool(rng.random() < 0.5)
    split_final = bool(rng.random() < 0.3)  # the final activation as its own layer

    def build():
        if start == "embedding":
            inp = plexus.Input(shape=(steps,), dtype="int32")
            h = L.Embedding(vocab, feat, trainable=frozen != -1)(inp)
            h = L.GlobalAveragePooling1D()(h) if pool else L.Flatten()(h)
        elif start == "flatten":
            inp = plexus.Input(shape=(steps, feat))
            h = L.Flatten()(inp)
        else:
            inp = h = plexus.Input(shape=(feat,))
        for i in range(depth):
            h = L.Dense(widths[i], activation=acts[i], use_bias=biases[i],
                        trainable=frozen != i)(h)
            if extras[i] == "dropout":
                h = L.Dropout(rates[i])(h)
            elif extras[i] == "activation":
                h = L.Activation(extra_acts[i])(h)
        out = L.Dense(units, activation=None if split_final else final, use_bias=biases[-1],
                      trainable=frozen != depth or depth == 0)(h)
        if split_final:
            out = L.Activation(final)(out)
        return plexus.Model(inp, out)

    if start == "embedding":
        x = rng.integers(0, vocab, size=(n, steps))
    elif start == "flatten":
        x = rng.normal(size=(n, steps, feat)).astype("float32")
    else:
        x = rng.normal(size=(n, feat)).astype("float32")
    if kind == "categorical":
        y = rng.random((n, units)).astype("float32") if rng.random() < 0.5 else \
            np.eye(units, dtype="float32")[rng.integers(0, units, n)]
        loss = plexus.losses.CategoricalCrossentropy(from_logits=from_logits,
                                                     label_smoothing=smoothing)
    elif kind == "sparse":
        y = rng.integers(0, units, size=n)
        loss = plexus.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    elif kind == "binary":
        y = rng.integers(0, 2, size=(n, units)).astype("float32")
        if units == 1 and rng.random() < 0.5:
            y = y[:, 0]
        loss = plexus.losses.BinaryCrossentropy(from_logits=from_logits,
                                                label_smoothing=smoothing)
    else:
        y = rng.normal(size=(n, units)).astype("float32")
        loss = "mse"
    momentum = float(rng.choice([0.0, 0.9]))
    opt = [lambda: plexus.optimizers.SGD(0.05, momentum=momentum),
           lambda: plexus.optimizers.Adam(0.01), lambda: plexus.optimizers.RMSprop(0.01),
           lambda: plexus.optimizers.Adam(0.01, clipnorm=0.5)][int(rng.integers(4))]
    loss_weight = float(rng.choice([1.0, 0.5]))
    fit = dict(batch_size=int(rng.choice([5, 8, 16, 32])), epochs=2)
    if rng.random() < 0.4:
        fit["sample_weight"] = rng.uniform(0.1, 2.0, size=n).astype("float32")
    return build, dict(optimizer=opt, loss=loss, loss_weights=[loss_weight]), x, y, fit


@pytest.mark.parametrize("seed", range(30))
def test_random_eligible_models_train_as_through_autograd(seed):
    build, compile_kwargs, x, y, fit = _random_case(seed)
    out = []
    for closed_form in (True, False):
        plexus.clear_session()
        torch.manual_seed(0)
        model = build()
        kw = dict(compile_kwargs, optimizer=compile_kwargs["optimizer"]())
        model.compile(**kw)
        hist, planned = _fit(model, x, y, closed_form, **dict(fit))
        if closed_form:
            assert planned, "an eligible model must take the closed form"
        out.append((hist, model.get_weights()))
    _close(*out[0], *out[1])


# ---------------------------------------------------------------------- changes between fits
def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, n)]
    return x, y


def _mlp():
    torch.manual_seed(0)
    inp = plexus.Input(shape=(12,))
    h = L.Dense(8, activation="relu", name="hidden")(inp)
    model = plexus.Model(inp, L.Dense(4, activation="softmax", name="out")(h))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    return model


def _both_ways(change):
    """Fit, `change(model)`, fit again: once with the closed form allowed, once through
    autograd only. Returns the second fits' (history, weights, planned) for both."""
    x, y = _data()
    out = []
    for closed_form in (True, False):
        plexus.clear_session()
        model = _mlp()
        _, planned = _fit(model, x, y, closed_form)
        assert planned == closed_form
        change(model)
        hist, planned = _fit(model, x, y, closed_form)
        out.append((hist, model.get_weights(), planned, model))
    return out


def test_activity_regularizer_set_after_a_fit_counts():
    def change(model):
        model.get_layer("hidden").activity_regularizer = plexus.regularizers.L2(0.5)
    (h1, w1, planned, _), (h2, w2, _, _) = _both_ways(change)
    assert not planned
    _close(h1, w1, h2, w2)
    x, y = _data()
    plexus.clear_session()
    plain = _mlp()
    _fit(plain, x, y, True)
    assert _fit(plain, x, y, True)[0]["loss"][0] < h1["loss"][0]  # the penalty is in the loss


def test_forward_hook_added_after_a_fit_fires():
    seen = []

    def change(model):
        seen.clear()
        model.get_layer("hidden").register_forward_hook(lambda *a: seen.append(1))
    (h1, w1, planned, _), (h2, w2, _, _) = _both_ways(change)
    assert not planned
    assert len(seen) == 3  # three batches of 16 in the autograd-only run, as in the other
    _close(h1, w1, h2, w2)


@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_global_hooks_added_after_a_fit_fire():
    x, y = _data()
    model = _mlp()
    assert _fit(model, x, y, True)[1]
    seen = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, *a: seen.append(m) if m is model.get_layer("hidden") else None)
    try:
        assert not _fit(model, x, y, True)[1]
        assert len(seen) == 3
    finally:
        handle.remove()
    grads = []
    handle = torch.nn.modules.module.register_module_full_backward_hook(
        lambda m, gi, go: grads.append(m))
    try:
        assert not _fit(model, x, y, True)[1]
        assert grads
    finally:
        handle.remove()
    assert _fit(model, x, y, True)[1]  # all hooks gone: the closed form again


def test_hook_added_by_a_callback_in_the_middle_of_a_fit_fires():
    x, y = _data()
    model = _mlp()
    seen = []

    class AddHook(plexus.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0 and not seen:
                model.get_layer("hidden").register_forward_hook(lambda *a: seen.append(1))
    _fit(model, x, y, True, callbacks=[AddHook()], epochs=2)
    assert len(seen) == 5  # batches 1 and 2 of the first epoch, the three of the second


def test_backward_hook_on_a_layer_sees_gradients():
    grads = []

    def change(model):
        model.get_layer("out").register_full_backward_hook(lambda m, gi, go: grads.append(go))
    (h1, w1, planned, _), (h2, w2, _, _) = _both_ways(change)
    assert not planned and grads
    _close(h1, w1, h2, w2)


def test_kernel_constraint_set_after_a_fit_applies():
    def change(model):
        model.get_layer("hidden").kernel.constraint = plexus.constraints.NonNeg()
    (h1, w1, planned, model), (h2, w2, _, _) = _both_ways(change)
    assert planned  # constraints apply after the update either way
    assert (model.get_layer("hidden").kernel.detach() >= 0).all()
    _close(h1, w1, h2, w2)


def test_kernel_regularizer_set_after_a_fit_counts():
    def change(model):
        model.get_layer("hidden").kernel.regularizer = plexus.regularizers.L2(0.1)
    (h1, w1, planned, _), (h2, w2, _, _) = _both_ways(change)
    assert not planned
    _close(h1, w1, h2, w2)


def test_layer_frozen_after_a_fit_stays_frozen():
    def change(model):
        model.get_layer("hidden").trainable = False
    (h1, w1, planned, model), (h2, w2, _, _) = _both_ways(change)
    assert planned
    _close(h1, w1, h2, w2)
    x, y = _data()
    before = model.get_layer("hidden").get_weights()
    _fit(model, x, y, True)
    for a, b in zip(before, model.get_layer("hidden").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_add_loss_outside_a_call_and_dtype_policy_take_autograd():
    def add(model):
        model.get_layer("hidden").add_loss(torch.tensor(0.25))
    (h1, w1, planned, _), (h2, w2, _, _) = _both_ways(add)
    assert not planned
    _close(h1, w1, h2, w2)
    x, y = _data()
    plexus.clear_session()
    plain = _mlp()
    _fit(plain, x, y, True)
    hist, _ = _fit(plain, x, y, True)  # (as in Keras, the next call of the model clears it)
    np.testing.assert_allclose(h1["loss"], hist["loss"], rtol=1e-5)

    x, y = _data()
    model = _mlp()
    _fit(model, x, y, True)
    model.get_layer("hidden").dtype_policy = "mixed_bfloat16"
    assert not _fit(model, x, y, True)[1]


def test_overrides_below_a_rule_take_autograd():
    class Doubled(L.Dense):  # a subclass's own call: the Dense rule does not hold for it
        def call(self, inputs):
            return super().call(inputs) * 2.0

    class Kept(L.Dense):  # no new call: the rule holds
        pass

    class MyLoss(plexus.losses.CategoricalCrossentropy):
        def call(self, y_true, y_pred):
            return super().call(y_true, y_pred) * 3.0

    x, y = _data()
    for cls, loss, expected in ((Doubled, "categorical_crossentropy", False),
                                (Kept, "categorical_crossentropy", True),
                                (L.Dense, MyLoss(), False)):
        out = []
        for closed_form in (True, False):
            plexus.clear_session()
            torch.manual_seed(0)
            inp = plexus.Input(shape=(12,))
            h = cls(8, activation="relu")(inp)
            model = plexus.Model(inp, L.Dense(4, activation="softmax")(h))
            model.compile(optimizer="sgd", loss=loss)
            hist, planned = _fit(model, x, y, closed_form)
            if closed_form:
                assert planned == expected, cls
            out.append((hist, model.get_weights()))
        _close(*out[0], *out[1])


def test_overridden_train_step_and_compute_loss_are_what_fit_runs():
    calls = []

    class Counted(plexus.Model):
        def compute_loss(self, *args, **kwargs):
            calls.append(1)
            return super().compute_loss(*args, **kwargs)

    x, y = _data()
    inp = plexus.Input(shape=(12,))
    model = Counted(inp, L.Dense(4, activation="softmax")(L.Dense(8, activation="relu")(inp)))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    _fit(model, x, y, True)
    assert len(calls) == 3
    assert model._compile_state.cache.get("backprop") is None


def test_run_eagerly_takes_autograd():
    x, y = _data()
    model = _mlp()
    model.compile(optimizer="sgd", loss="categorical_crossentropy", run_eagerly=True)
    assert not _fit(model, x, y, True)[1]
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert _fit(model, x, y, True)[1]


def test_gradient_hooks_on_weights_fire():
    seen = []

    def change(model):
        seen.clear()
        model.get_layer("hidden").kernel.register_hook(lambda g: seen.append(1))
    (h1, w1, planned, _), (h2, w2, _, _) = _both_ways(change)
    assert not planned and len(seen) == 3
    _close(h1, w1, h2, w2)


def test_gradient_hooks_on_weights_fire_under_a_distribution():
    """A plexus distribution (one process here) averages gradients however they come; the
    user's own hook on a weight still sends training through autograd."""
    import plexus
    D = plexus.distribution
    D.set_distribution(D.DataParallel())
    try:
        test_gradient_hooks_on_weights_fire()
    finally:
        D.set_distribution(None)


def test_layers_outside_their_rules_say_so():
    assert L.Dropout(1.0)._closed_form_rule(2) is None
    assert L.Dropout(0.5, noise_shape=(None, 1))._closed_form_rule(2) is None
    assert L.Flatten(data_format="channels_first")._closed_form_rule(3) is None
    assert L.GlobalAveragePooling1D(keepdims=True)._closed_form_rule(3) is None
    assert L.Activation("elu")._closed_form_rule(2) is None
    assert L.Activation(lambda t: t)._closed_form_rule(2) is None
    emb = L.Embedding(5, 2, mask_zero=True)
    emb.build((None, 3))
    assert emb._closed_form_rule(2) is None
    dense = L.Dense(2)
    dense.build((None, 3, 4))
    assert dense._closed_form_rule(3) is None  # (rank-3 inputs: autograd)


def test_dropout_of_rate_one_trains_as_through_autograd():
    def build():
        inp = plexus.Input(shape=(12,))
        h = L.Dropout(1.0)(L.Dense(8, activation="relu")(inp))
        return plexus.Model(inp, L.Dense(4, activation="softmax")(h))
    x, y = _data()
    torch.manual_seed(0)
    model = build()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    hist, planned = _fit(model, x, y, True)
    assert not planned  # the closed form declines the chain (its mask would be 0/0)
    assert np.isfinite(hist["loss"]).all()


def test_dropout_rate_changed_by_a_callback_during_a_fit():
    def build():
        inp = plexus.Input(shape=(12,))
        h = L.Dropout(0.1, name="drop")(L.Dense(8, activation="relu")(inp))
        return plexus.Model(inp, L.Dense(4, activation="softmax")(h))

    class Schedule(plexus.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.get_layer("drop").rate = 0.6 if batch == 0 else 1.0
    x, y = _data()
    out = []
    for closed_form in (True, False):
        plexus.clear_session()
        torch.manual_seed(0)
        model = build()
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        hist, planned = _fit(model, x, y, closed_form, callbacks=[Schedule()])
        assert planned == closed_form
        out.append((hist, model.get_weights()))
    _close(*out[0], *out[1])


def test_a_torch_process_group_takes_autograd(monkeypatch):
    x, y = _data()
    model = _mlp()
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    assert not _fit(model, x, y, True)[1]
    monkeypatch.undo()
    assert _fit(model, x, y, True)[1]


# ---------------------------------------------------------------------- each rule alone
@pytest.mark.parametrize("make,shape", [
    *[(lambda a=a: L.Dense(5, activation=a), (7, 4)) for a in _ACTS],
    (lambda: L.Dense(5, use_bias=False, activation="tanh"), (7, 4)),
    *[(lambda a=a: L.Activation(a), (40, 6)) for a in _ACTS],  # (40 rows: transposed softmax)
    (lambda: L.Dropout(0.4), (40, 6)),
    (lambda: L.Flatten(), (3, 4, 5)),
    (lambda: L.GlobalAveragePooling1D(), (3, 4, 5)),
    (lambda: L.Embedding(9, 4), (3, 5)),
])
def test_each_rule_matches_autograd_through_the_layers_call(make, shape):
    layer = make()
    ids = isinstance(layer, L.Embedding)
    x = torch.randint(0, 9, shape) if ids else torch.randn(shape)
    layer(x)  # built
    rule = layer._closed_form_rule(len(shape))
    assert rule is not None and layer._calls_only_call()
    weights = list(rule.weights)
    rule.slots = tuple(range(len(weights)))
    with torch.no_grad():
        torch.manual_seed(3)
        h, saved = rule.forward(x.clone())
    leaf = x if ids else x.clone().requires_grad_(True)
    torch.manual_seed(3)
    ref = layer(leaf, training=True)
    torch.testing.assert_close(h, ref, rtol=1e-6, atol=1e-6)
    g = torch.randn(h.shape)
    wrt = weights + ([] if ids else [leaf])
    expected = torch.autograd.grad(ref, wrt, g)
    for w in weights:
        w.grad = None
    with torch.no_grad():
        g_in = rule.backward(g.clone(), saved, [None] * len(weights))
    got = [w.grad for w in weights] + ([] if ids else [g_in])
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
