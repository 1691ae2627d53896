"""The closed-form training step for plain chains (plexus/training/backprop.py, with the rules of
plexus/layers/closed_form.py and plexus/training/fused_losses.py).

Every eligible model is trained twice from the same weights and seed: once with the closed-form
step, once through autograd (the plan switched off); losses, metrics and weights must agree. The
autograd path is itself tested against Keras elsewhere; one test here also checks the closed-form
step against Keras directly.
"""
import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L
from plexus.training import backprop


def _mlp(hidden=("relu", "tanh"), out_units=10, out_act="softmax", dropout=0.0, use_bias=True):
    inp = plexus.Input(shape=(12,))
    h = inp
    for act in hidden:
        h = L.Dense(9, activation=act, use_bias=use_bias)(h)
        if dropout:
            h = L.Dropout(dropout)(h)
    return plexus.Model(inp, L.Dense(out_units, activation=out_act)(h))


def _data(n=40, kind="onehot", units=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype("float32")
    ids = rng.integers(0, units, size=n)
    if kind == "onehot":
        y = np.eye(units, dtype="float32")[ids]
    elif kind == "soft":
        y = rng.random((n, units)).astype("float32")
    elif kind == "ids":
        y = ids
    elif kind == "ids_col":
        y = ids.reshape(-1, 1).astype("float32")
    elif kind == "binary":
        y = rng.integers(0, 2, size=(n, units)).astype("float32")
    elif kind == "binary_flat":
        y = rng.integers(0, 2, size=n).astype("float32")
    else:
        y = rng.normal(size=(n, units)).astype("float32")
    return x, y


def _train_both(build, compile_kwargs, x, y, epochs=2, expect_plan=True, batch_size=16,
                **fit_kwargs):
    """Train the model `build()` makes, with and without the closed-form step; return both
    histories and final weights."""
    results = []
    for use_plan in (True, False):
        plexus.clear_session()
        torch.manual_seed(0)
        model = build()
        model.compile(**compile_kwargs)
        plan = backprop.plan
        if not use_plan:
            backprop.plan = lambda *a: None
        try:
            torch.manual_seed(1)
            hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False,
                             verbose=0,
                             **fit_kwargs)
        finally:
            backprop.plan = plan
        chain = model._compile_state.cache.get("backprop")
        if use_plan:
            assert (chain is not None) == expect_plan
        results.append((hist.history, model.get_weights()))
    (h1, w1), (h2, w2) = results
    assert h1.keys() == h2.keys()
    for k in h1:
        np.testing.assert_allclose(h1[k], h2[k], rtol=2e-5, atol=1e-6, err_msg=k)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    return results


@pytest.mark.parametrize("kind", ["onehot", "soft"])
@pytest.mark.parametrize("opt", ["rmsprop", "adam", "sgd"])
def test_categorical_softmax_matches_autograd(kind, opt):
    x, y = _data(kind=kind)
    _train_both(_mlp, dict(optimizer=opt, loss="categorical_crossentropy",
                           metrics=["accuracy"]), x, y)


@pytest.mark.parametrize("loss,out_act", [
    (plexus.losses.CategoricalCrossentropy(label_smoothing=0.1), "softmax"),
    (plexus.losses.CategoricalCrossentropy(from_logits=True), None),
])
def test_categorical_variants(loss, out_act):
    x, y = _data(kind="onehot")
    _train_both(lambda: _mlp(out_act=out_act), dict(optimizer="rmsprop", loss=loss), x, y)


def test_batches_of_32_and_more_take_the_transposed_softmax():
    # (a softmax over fewer than 16 classes runs over the transposed view from 32 rows on)
    for kind, loss in (("soft", "categorical_crossentropy"),
                       ("ids", "sparse_categorical_crossentropy")):
        x, y = _data(n=96, kind=kind)
        _train_both(_mlp, dict(optimizer="rmsprop", loss=loss, metrics=["accuracy"]), x, y,
                    batch_size=48)


@pytest.mark.parametrize("kind", ["ids", "ids_col"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical(kind, from_logits):
    x, y = _data(kind=kind)
    loss = plexus.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    _train_both(lambda: _mlp(out_act=None if from_logits else "softmax"),
                dict(optimizer="adam", loss=loss, metrics=["sparse_categorical_accuracy"]), x, y)


@pytest.mark.parametrize("kind,units", [("binary", 3), ("binary_flat", 1)])
@pytest.mark.parametrize("loss", ["binary_crossentropy",
                                  plexus.losses.BinaryCrossentropy(from_logits=True),
                                  plexus.losses.BinaryCrossentropy(label_smoothing=0.2)])
def test_binary(kind, units, loss):
    x, y = _data(kind=kind, units=units)
    logits = getattr(loss, "_fn_kwargs", {}).get("from_logits", False)
    _train_both(lambda: _mlp(out_units=units, out_act=None if logits else "sigmoid"),
                dict(optimizer="rmsprop", loss=loss, metrics=["binary_accuracy"]), x, y)


@pytest.mark.parametrize("out_act", [None, "sigmoid", "tanh", "relu", "softmax"])
def test_mse_through_any_final_activation(out_act):
    x, y = _data(kind="real", units=4)
    _train_both(lambda: _mlp(out_units=4, out_act=out_act, hidden=("sigmoid",)),
                dict(optimizer="sgd", loss="mse", metrics=["mae"]), x, y)


def test_dropout_activation_layers_no_bias_and_hidden_softmax():
    def build():
        inp = plexus.Input(shape=(12,))
        h = L.Dense(9, use_bias=False)(inp)
        h = L.Activation("relu")(h)
        h = L.Dropout(0.3)(h)
        h = L.Dense(7, activation="softmax")(h)
        h = L.Activation("tanh")(h)
        h = L.Dense(10)(h)
        return plexus.Model(inp, L.Activation("softmax")(h))
    x, y = _data()
    _train_both(build, dict(optimizer="rmsprop", loss="categorical_crossentropy"), x, y)


def test_dropout_in_mlp_and_sequential_and_loss_weights():
    x, y = _data(kind="soft")
    _train_both(lambda: _mlp(dropout=0.25), dict(optimizer="adam", loss=["categorical_crossentropy"],
                                                 loss_weights=[0.5]), x, y)

    def seq():
        return plexus.Sequential([plexus.Input(shape=(12,)), L.Dense(8, activation="relu"),
                                  L.Dense(10, activation="softmax")])
    _train_both(seq, dict(optimizer="rmsprop", loss="categorical_crossentropy"), x, y)


def test_frozen_layer_and_large_unpacked_layer():
    def build():
        inp = plexus.Input(shape=(12,))
        frozen = L.Dense(9, activation="relu", trainable=False)
        h = frozen(inp)
        h = L.Dense(300, activation="relu")(h)
        h = L.Dense(260, activation="relu")(h)  # 78,260 weights: too large to be packed
        return plexus.Model(inp, L.Dense(10, activation="softmax")(h))
    x, y = _data()
    (_, w1), _ = _train_both(build, dict(optimizer="rmsprop", loss="categorical_crossentropy"),
                             x, y, epochs=1)
    plexus.clear_session()
    torch.manual_seed(0)
    fresh = build()
    np.testing.assert_array_equal(w1[0], fresh.get_weights()[0])  # the frozen kernel stayed


@pytest.mark.parametrize("kind,units,out_act,loss", [
    ("soft", 10, "softmax", "categorical_crossentropy"),
    ("ids", 10, "softmax", "sparse_categorical_crossentropy"),
    ("binary", 3, "sigmoid", "binary_crossentropy"),
    ("real", 4, None, "mse"),
])
def test_sample_weights_and_class_weights(kind, units, out_act, loss):
    x, y = _data(kind=kind, units=units)
    sw = np.linspace(0.1, 2.0, len(x)).astype("float32")
    build = lambda: _mlp(out_units=units, out_act=out_act)  # noqa: E731
    metric = "mae" if kind == "real" else "accuracy"
    _train_both(build, dict(optimizer="rmsprop", loss=loss, loss_weights=[0.7],
                            weighted_metrics=[metric]), x, y, sample_weight=sw)



@pytest.mark.parametrize("kind,units,out_act,loss", [
    ("ids", 10, "softmax", "sparse_categorical_crossentropy"),
    ("onehot", 10, "softmax", "categorical_crossentropy"),
    ("binary_flat", 1, "sigmoid", "binary_crossentropy"),
])
def test_class_weights(kind, units, out_act, loss):
    x, y = _data(kind=kind, units=units)
    _train_both(lambda: _mlp(out_units=units, out_act=out_act),
                dict(optimizer="adam", loss=loss, metrics=["accuracy"]), x, y,
                class_weight={i: 0.3 + i / 4 for i in range(max(units, 2))})


def test_validation_and_callbacks_see_the_same_logs():
    x, y = _data()
    _train_both(_mlp, dict(optimizer="rmsprop", loss="categorical_crossentropy",
                           metrics=["accuracy"]), x, y, validation_split=0.25)


def _plan_of(model, **compile_kwargs):
    model.compile(**{"optimizer": "rmsprop", "loss": "categorical_crossentropy",
                     **compile_kwargs})
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    return model._compile_state.cache.get("backprop")


def test_models_outside_the_rule_train_through_autograd():
    inp = plexus.Input(shape=(12,))
    h = L.Dense(9, activation="relu", kernel_regularizer="l2")(inp)
    assert _plan_of(plexus.Model(inp, L.Dense(10, activation="softmax")(h))) is None

    inp = plexus.Input(shape=(12,))
    h = L.Dense(9, activation="elu")(inp)  # no rule for elu
    assert _plan_of(plexus.Model(inp, L.Dense(10, activation="softmax")(h))) is None

    inp = plexus.Input(shape=(12,))
    h = L.BatchNormalization()(L.Dense(9)(inp))
    assert _plan_of(plexus.Model(inp, L.Dense(10, activation="softmax")(h))) is None

    inp = plexus.Input(shape=(12,))
    a = L.Dense(9)(inp)
    h = L.Add()([a, L.Dense(9)(inp)])  # a branch
    assert _plan_of(plexus.Model(inp, L.Dense(10, activation="softmax")(h))) is None

    # a custom loss function, and categorical cross-entropy on a linear output
    assert _plan_of(_mlp(), loss=lambda t, p: torch.mean((t - p) ** 2)) is None
    assert _plan_of(_mlp(out_act=None)) is None

    model = _mlp()
    model.layers[1].register_forward_hook(lambda *a: None)  # a hook must see its calls
    assert _plan_of(model) is None

    assert _plan_of(_mlp()) is not None


def test_targets_of_the_wrong_shape_get_the_usual_error():
    model = _mlp()
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    x, _ = _data()
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        model.fit(x, np.zeros((len(x), 7), "float32"), epochs=1, verbose=0)


def test_closed_form_step_matches_keras(tmp_path):
    keras = pytest.importorskip("keras")
    x, y = _data(kind="soft")
    model = _mlp(hidden=("relu", "sigmoid"))
    k_inp = keras.Input(shape=(12,))
    h = keras.layers.Dense(9, activation="relu")(k_inp)
    h = keras.layers.Dense(9, activation="sigmoid")(h)
    k_model = keras.Model(k_inp, keras.layers.Dense(10, activation="softmax")(h))
    k_model.set_weights(model.get_weights())
    for m in (model, k_model):
        m.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    h1 = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
    h2 = k_model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
    assert model._compile_state.cache.get("backprop") is not None
    np.testing.assert_allclose(h1, h2, rtol=1e-4)
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-3, atol=1e-5)


def test_flatten_first_the_beginner_tutorial_model():
    rng = np.random.default_rng(3)
    x = rng.random((40, 6, 5)).astype("float32")
    y = rng.integers(0, 10, size=40)

    def build():
        return plexus.Sequential([plexus.Input(shape=(6, 5)), L.Flatten(),
                                  L.Dense(8, activation="relu"), L.Dropout(0.2), L.Dense(10)])
    _train_both(build, dict(optimizer="adam",
                            loss=plexus.losses.SparseCategoricalCrossentropy(from_logits=True),
                            metrics=["accuracy"]), x, y)

    def middle():  # a Flatten between Dense layers passes the gradient through
        inp = plexus.Input(shape=(12,))
        h = L.Flatten()(L.Dense(9, activation="tanh")(inp))
        return plexus.Model(inp, L.Dense(10, activation="softmax")(h))
    x, y = _data()
    _train_both(middle, dict(optimizer="rmsprop", loss="categorical_crossentropy"), x, y)


def _ids(n=48, steps=7, vocab=30, seed=4):
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, size=(n, steps)), rng.integers(0, 2, size=n).astype("float32")


@pytest.mark.parametrize("pool,frozen", [("mean", False), ("flatten", False), ("mean", True)])
def test_text_classifier_embedding_first(pool, frozen):
    x, y = _ids()

    def build():  # the text-classification tutorials' models
        inp = plexus.Input(shape=(7,), dtype="int32")
        h = L.Embedding(30, 6, trainable=not frozen)(inp)
        h = L.Dropout(0.2)(h)
        h = L.GlobalAveragePooling1D()(h) if pool == "mean" else L.Flatten()(h)
        h = L.Dense(5, activation="relu")(h)
        return plexus.Model(inp, L.Dense(1)(h))
    _train_both(build, dict(optimizer="adam",
                            loss=plexus.losses.BinaryCrossentropy(from_logits=True),
                            metrics=["binary_accuracy"]), x, y)


def test_embedding_outside_the_rule():
    x, y = _ids()
    inp = plexus.Input(shape=(7,), dtype="int32")
    h = L.GlobalAveragePooling1D()(L.Embedding(30, 6, mask_zero=True)(inp))
    model = plexus.Model(inp, L.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model._compile_state.cache.get("backprop") is None  # a mask: autograd

    inp = plexus.Input(shape=(7,), dtype="int32")
    h = L.GlobalAveragePooling1D()(L.Embedding(30, 6)(inp))
    model = plexus.Model(inp, L.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    with pytest.raises(ValueError, match="outside"):  # the layer's own message for a bad id
        model.fit(np.full((8, 7), 99), y[:8], batch_size=4, epochs=1, verbose=0)


@pytest.mark.parametrize("closed_form", [True, False])
def test_class_ids_out_of_range_get_a_clear_error(closed_form, monkeypatch):
    if not closed_form:
        monkeypatch.setattr(backprop, "plan", lambda *a: None)
    model = _mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _data(kind="ids")
    y[3] = 12  # ten classes
    with pytest.raises(ValueError, match="class ids from 0 to 12, but the predictions have 10"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
