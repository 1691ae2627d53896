"""Bad input to compile/fit/evaluate: clear errors raised before any training step."""
import numpy as np
import pytest

import plexus


def _model():
    a = plexus.Input(shape=(3,), name="left")
    b = plexus.Input(shape=(2,), name="right")
    h = plexus.layers.concatenate([a, b])
    out1 = plexus.layers.Dense(1, name="score")(h)
    out2 = plexus.layers.Dense(2, activation="softmax", name="kind")(h)
    return plexus.Model([a, b], [out1, out2])


def _unchanged(model, fn):
    before = model.get_weights()
    fn()
    for x, y in zip(before, model.get_weights()):
        np.testing.assert_array_equal(x, y)


XA, XB = np.zeros((8, 3), "float32"), np.zeros((8, 2), "float32")
Y1, Y2 = np.zeros((8, 1), "float32"), np.eye(2, dtype="float32")[np.zeros(8, int)]


def test_fit_before_compile():
    m = _model()
    with pytest.raises(RuntimeError, match="compile"):
        m.fit([XA, XB], [Y1, Y2])


def test_different_numbers_of_samples():
    m = _model()
    m.compile("sgd", ["mse", "categorical_crossentropy"])
    with pytest.raises(ValueError, match="same number of samples") as e:
        _unchanged(m, lambda: m.fit([XA, XB[:5]], [Y1, Y2], verbose=0))
    assert "8" in str(e.value) and "5" in str(e.value)
    with pytest.raises(ValueError, match="same number of samples"):
        m.fit([XA, XB], [Y1[:3], Y2], verbose=0)


def test_dict_missing_names_lists_expected():
    m = _model()
    m.compile("sgd", ["mse", "categorical_crossentropy"])
    with pytest.raises(ValueError, match="'right'") as e:
        m.fit({"left": XA}, [Y1, Y2], verbose=0)
    assert "left" in str(e.value)
    with pytest.raises(ValueError, match="'kind'") as e:
        m.fit({"left": XA, "right": XB}, {"score": Y1}, verbose=0)
    assert "score" in str(e.value)


def test_wrong_shape_names_the_input():
    m = _model()
    m.compile("sgd", ["mse", "categorical_crossentropy"])
    with pytest.raises(ValueError, match="'right'") as e:
        _unchanged(m, lambda: m.fit([XA, np.zeros((8, 4))], [Y1, Y2], verbose=0))
    assert "(None, 2)" in str(e.value) and "(8, 4)" in str(e.value)


def test_wrong_number_of_arrays():
    m = _model()
    m.compile("sgd", ["mse", "categorical_crossentropy"])
    with pytest.raises(ValueError, match="2 input"):
        m.fit([XA], [Y1, Y2], verbose=0)
    with pytest.raises(ValueError, match="2 output"):
        m.fit([XA, XB], [Y1], verbose=0)
    with pytest.raises(ValueError, match="loss"):
        m.compile("sgd", ["mse"])
    with pytest.raises(ValueError, match="not outputs"):
        m.compile("sgd", {"scroe": "mse"})


def test_unknown_names_list_close_matches():
    m = _model()
    with pytest.raises(ValueError, match="Did you mean 'mse'"):
        m.compile("sgd", "mes")
    with pytest.raises(ValueError, match="rmsprop"):
        m.compile("rmsprp", "mse")
    with pytest.raises(ValueError, match="Did you mean"):
        m.compile("sgd", "mse", metrics=["preicsion"])


def test_terminate_on_nan_keeps_last_good_weights():
    i = plexus.Input(shape=(2,))
    m = plexus.Model(i, plexus.layers.Dense(1)(i))
    m.compile(plexus.optimizers.SGD(0.01), "mse")
    x = np.ones((8, 2), "float32")
    y = np.ones((8, 1), "float32")
    y[6] = np.nan  # the second batch of 4 has a NaN target
    good = []
    cb = plexus.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: good.append(m.get_weights()))
    h = m.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
              callbacks=[plexus.callbacks.TerminateOnNaN(), cb])
    assert len(h.epoch) == 1 and np.isnan(h.history["loss"][0])
    for w in m.get_weights():
        assert np.isfinite(w).all()
    for a, b in zip(good[0], m.get_weights()):  # the weights after the last good step
        np.testing.assert_array_equal(a, b)


def test_symbolic_tensor_as_data_is_refused():
    i = plexus.Input(shape=(2,))
    m = plexus.Model(i, plexus.layers.Dense(1)(i))
    m.compile("sgd", "mse")
    with pytest.raises(TypeError, match="real data"):
        m.fit(i, np.zeros((2, 1)))


def test_add_loss_only_model_trains_and_no_loss_at_all_is_explained():
    class Penalty(plexus.layers.Layer):
        def call(self, x):
            self.add_loss(x.pow(2).mean())
            return x

    i = plexus.Input(shape=(2,))
    m = plexus.Model(i, Penalty()(plexus.layers.Dense(2)(i)))
    m.compile(plexus.optimizers.SGD(0.1), loss=None)
    h = m.fit(np.ones((8, 2), "float32"), epochs=3, verbose=0)  # no targets needed
    assert h.history["loss"][2] < h.history["loss"][0]
    j = plexus.Input(shape=(2,))
    m2 = plexus.Model(j, plexus.layers.Dense(2)(j))
    m2.compile("sgd", loss=None)
    with pytest.raises(ValueError, match="no loss"):
        m2.fit(np.ones((8, 2), "float32"), np.zeros((8, 2), "float32"), verbose=0)


def test_frozen_model_warns_and_trains_nothing_like_keras():
    """The classic GAN recipe: the discriminator is frozen after its own compile. As in Keras 3
    its train_on_batch then computes the loss, warns and updates nothing, while the combined
    model trains the generator."""
    L = plexus.layers
    d_in = plexus.Input((4,))
    d = plexus.Model(d_in, L.Dense(1, activation="sigmoid")(L.Dense(8, activation="relu")(d_in)))
    d.compile("adam", "binary_crossentropy")
    d.trainable = False
    z = plexus.Input((2,))
    g = plexus.Model(z, L.Dense(4)(z))
    gan = plexus.Model(z, d(g(z)))
    gan.compile("adam", "binary_crossentropy")
    x = np.random.rand(8, 4).astype("float32")
    y = np.ones((8, 1), "float32")
    d_before, g_before = d.get_weights(), g.get_weights()
    with pytest.warns(UserWarning, match="no trainable weights"):
        loss = d.train_on_batch(x, y)
    assert np.isfinite(loss)
    gan.train_on_batch(np.random.rand(8, 2).astype("float32"), y)
    assert all(np.array_equal(a, b) for a, b in zip(d_before, d.get_weights()))
    assert all(not np.array_equal(a, b) for a, b in zip(g_before, g.get_weights()))


@pytest.mark.parametrize("jit", [False, True])
def test_loss_independent_of_the_trainable_weights_is_a_clear_error(jit):
    inp = plexus.Input((3,))
    frozen = plexus.layers.Dense(1, trainable=False, name="frozen")(inp)
    free = plexus.layers.Dense(1, name="free")(inp)
    m = plexus.Model(inp, [frozen, free])
    m.compile("sgd", loss=["mse", None], jit_compile=jit)
    x = np.ones((4, 3), "float32")
    with pytest.raises(ValueError, match="does not depend on any trainable weight"):
        m.fit(x, [np.ones((4, 1), "float32"), np.ones((4, 1), "float32")], verbose=0)


@pytest.mark.parametrize("make", [
    lambda: plexus.layers.Dense(4, lora_rank=2),
    lambda: plexus.layers.Embedding(10, 4, lora_rank=2),
    lambda: plexus.layers.Conv2D(4, 3, lora_rank=2),
])
def test_lora_rank_is_refused_not_ignored(make):
    with pytest.raises(ValueError, match="lora_rank=2 asks for LoRA"):
        make()
    plexus.layers.Dense(4, lora_rank=None)  # the default (and what files record) is fine



@pytest.mark.parametrize("bad", [lambda: 1.0, "l2", plexus.Input(shape=(2,))])
def test_add_loss_outside_call_is_a_clear_error(bad):
    i = plexus.Input(shape=(2,))
    m = plexus.Model(i, plexus.layers.Dense(1)(i))
    with pytest.raises(ValueError, match="add_loss\\(\\) takes a tensor"):
        m.add_loss(bad)
    m.layers[1].add_loss(np.float32(0.5))  # a number is fine
    assert float(m.layers[1].losses[0]) == 0.5
