"""plexus.config, plexus.backend and plexus.random against keras.config / keras.random."""
import inspect
import logging
import warnings

import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close, keras


@pytest.fixture
def restore_config():
    yield
    for mod in (plexus.config, keras.config):
        mod.set_floatx("float32")
        mod.set_epsilon(1e-7)
        mod.set_image_data_format("channels_last")
        mod.set_max_epochs(None)
        mod.set_max_steps_per_epoch(None)


# ---------------------------------------------------------------------- config and backend
def test_names_and_defaults_match_keras():
    for name in dir(keras.config):
        if not name.startswith("_"):
            assert hasattr(plexus.config, name), f"plexus.config lacks {name}"
    for name in dir(keras.backend):
        if not name.startswith("_"):
            assert hasattr(plexus.backend, name), f"plexus.backend lacks {name}"
    assert plexus.config.backend() == plexus.backend.backend() == "torch"
    for name in ("floatx", "epsilon", "image_data_format", "max_epochs", "max_steps_per_epoch",
                 "is_flash_attention_enabled", "is_interactive_logging_enabled"):
        assert getattr(plexus.config, name)() == getattr(keras.config, name)(), name
    for dtype in (int, float, bool, np.int32, np.dtype("int8"), torch.float16, "uint16", None):
        assert plexus.backend.standardize_dtype(dtype) == keras.backend.standardize_dtype(dtype)
    for pair in (("int32", "float32"), ("int8", "uint8"), ("bfloat16", "float16")):
        assert plexus.backend.result_type(*pair) == keras.backend.result_type(*pair)
    assert plexus.backend.is_float_dtype("bfloat16") and not plexus.backend.is_int_dtype("bool")
    assert [plexus.backend.get_uid("x"), plexus.backend.get_uid("x")] == [1, 2]
    assert plexus.backend.is_keras_tensor(plexus.Input((2,)))
    with pytest.raises(ValueError, match="set_backend"):
        plexus.config.set_backend("jax")


def test_bad_settings_are_value_errors(restore_config):
    with pytest.raises(ValueError, match="floatx"):
        plexus.config.set_floatx("int32")
    with pytest.raises(ValueError, match="data_format"):
        plexus.config.set_image_data_format("channels_middle")
    with pytest.raises(ValueError, match="data_format"):
        layers.Conv2D(2, 3, data_format="NHWC")
    with pytest.raises(ValueError, match="max_epochs"):
        plexus.config.set_max_epochs(0)
    with pytest.raises(TypeError, match="set_epsilon"):
        plexus.config.set_epsilon("small")


def test_floatx_sets_default_dtypes(restore_config):
    plexus.config.set_floatx("float64")
    inputs = plexus.Input((3,))
    dense = layers.Dense(2)
    out = dense(inputs)
    assert inputs.dtype == out.dtype == "float64" and dense.kernel.dtype is torch.float64
    assert plexus.random.normal((2,)).dtype is torch.float64
    assert plexus.Variable(np.zeros(2)).dtype is torch.float64
    y = plexus.Model(inputs, out)(np.ones((4, 3)))  # float64 NumPy data keeps its precision
    assert y.dtype is torch.float64


def test_epsilon_is_used_by_losses(restore_config):
    y_true = np.array([[0.0, 1.0, 0.0]], "float32")
    y_pred = np.array([[0.5, 0.0, 0.5]], "float32")
    for eps in (1e-7, 1e-3):
        plexus.config.set_epsilon(eps)
        keras.config.set_epsilon(eps)
        ours = plexus.losses.categorical_crossentropy(y_true, y_pred)
        theirs = keras.losses.categorical_crossentropy(y_true, y_pred)
        assert_close(ours, theirs, rtol=1e-6)
        assert abs(float(ours[0]) + np.log(eps)) < 1e-3


def test_image_data_format_is_the_layers_default(restore_config):
    x = np.random.RandomState(0).rand(2, 3, 6, 5).astype("float32")  # channels first
    for mod in (plexus.config, keras.config):
        mod.set_image_data_format("channels_first")
    conv, kconv = layers.Conv2D(4, 3), keras.layers.Conv2D(4, 3)
    pool, kpool = layers.MaxPooling2D(), keras.layers.MaxPooling2D()
    assert conv.data_format == pool.data_format == layers.Flatten().data_format == \
        layers.GlobalAveragePooling2D().data_format == "channels_first"
    y = conv(x)
    kconv(x)
    kconv.set_weights(conv.get_weights())
    assert_close(pool(y), kpool(kconv(x)))
    assert conv.get_config()["data_format"] == "channels_first"  # saved explicitly


def test_max_epochs_and_steps_cap_fit(restore_config):
    model = plexus.Sequential([plexus.Input((2,)), layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((64, 2), "float32"), np.zeros((64, 1), "float32")
    batches = []
    cb = plexus.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    plexus.config.set_max_epochs(2)
    plexus.config.set_max_steps_per_epoch(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[cb])
    messages = [str(w.message) for w in caught]
    assert any("Limiting epochs to 2" in m for m in messages)
    assert any("Limiting steps_per_epoch to 3" in m for m in messages)
    assert len(history.history["loss"]) == 2 and batches == [0, 1, 2, 0, 1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert model.predict(x, batch_size=8, verbose=0).shape == (24, 1)


def test_clear_session_resets_session_state(restore_config):
    layers.Dense(1)
    plexus.config.enable_unsafe_deserialization()
    plexus.config.disable_flash_attention()
    plexus.config.set_dtype_policy("mixed_bfloat16")
    plexus.config.set_floatx("float64")
    plexus.backend.get_uid("y")
    plexus.backend.clear_session()
    assert layers.Dense(1).name == "dense" and plexus.backend.get_uid("y") == 1
    assert plexus.config.dtype_policy().name == "float64"  # the policy follows floatx again
    assert plexus.config.is_flash_attention_enabled() is None
    assert not plexus.config.is_unsafe_deserialization_enabled()
    assert plexus.config.floatx() == "float64"  # kept, as in Keras


def test_interactive_logging_off_sends_output_to_the_logger(caplog, capsys):
    model = plexus.Sequential([plexus.Input((2,)), layers.Dense(1)])
    plexus.config.disable_interactive_logging()
    try:
        with caplog.at_level(logging.INFO, logger="plexus"):
            model.summary()
            model.compile("sgd", "mse")
            model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=1)
    finally:
        plexus.config.enable_interactive_logging()
    assert capsys.readouterr().out == ""
    text = caplog.text
    assert "Total params: 3" in text and "Epoch 1/1" in text and "loss" in text


def test_flash_attention_switch_keeps_results():
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=4)
    q = torch.rand(2, 5, 8)
    expected = mha(q, q)
    plexus.config.disable_flash_attention()
    assert plexus.config.is_flash_attention_enabled() is False
    assert_close(mha(q, q), expected, atol=1e-6)
    plexus.config.enable_flash_attention()


# ---------------------------------------------------------------------- random
def test_random_signatures_match_keras():
    for name in dir(keras.random):
        if name.startswith("_"):
            continue
        ours, theirs = getattr(plexus.random, name), getattr(keras.random, name)
        if inspect.isclass(theirs):
            ours, theirs = ours.__init__, theirs.__init__
        pa = inspect.signature(ours).parameters
        pk = inspect.signature(theirs).parameters
        assert [(p.name, p.default) for p in pa.values()] == \
            [(p.name, p.default) for p in pk.values()], name


def test_random_distributions():
    r = plexus.random
    n = (200_000,)
    x = r.normal(n, mean=1.0, stddev=2.0, seed=1)
    assert x.dtype is torch.float32 and abs(x.mean() - 1) < 0.02 and abs(x.std() - 2) < 0.02
    u = r.uniform(n, minval=-1.0, maxval=3.0, seed=2)
    assert u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1) < 0.02
    t = r.truncated_normal(n, mean=0.5, stddev=2.0, seed=3, dtype="float16")
    assert t.dtype is torch.float16 and t.float().min() >= -3.5 and t.float().max() <= 4.5
    assert abs(t.float().std() - 2 * 0.8796) < 0.03  # std of a normal cut at 2 sigma
    i = r.randint((1000,), 3, 7, seed=4)
    assert i.dtype is torch.int32 and set(i.tolist()) == {3, 4, 5, 6}
    logits = torch.log(torch.tensor([[0.2, 0.8], [0.9, 0.1]]))
    c = r.categorical(logits, 20_000, seed=5)
    assert c.shape == (2, 20_000) and c.dtype is torch.int32
    assert abs(c[0].float().mean() - 0.8) < 0.02 and abs(c[1].float().mean() - 0.1) < 0.02
    g = r.gamma(n, alpha=3.0, seed=6)
    assert abs(g.mean() - 3) < 0.03 and abs(g.var() - 3) < 0.1
    b = r.binomial(n, counts=10, probabilities=0.3, seed=7)
    assert abs(b.mean() - 3) < 0.03 and b.min() >= 0 and b.max() <= 10
    be = r.beta(n, alpha=2.0, beta=6.0, seed=8)
    assert abs(be.mean() - 0.25) < 0.005 and be.min() > 0 and be.max() < 1
    s = r.shuffle(torch.arange(10).reshape(5, 2), seed=9)
    assert sorted(s[:, 0].tolist()) == [0, 2, 4, 6, 8] and (s[:, 1] == s[:, 0] + 1).all()


def test_dropout_rate_scale_and_noise_shape():
    x = torch.ones(400, 50)
    for seed in (None, 3, plexus.random.SeedGenerator(1)):
        y = plexus.random.dropout(x, 0.3, seed=seed)
        kept = y != 0
        assert abs(kept.float().mean() - 0.7) < 0.01
        assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    y = plexus.random.dropout(torch.ones(8, 5, 6), 0.5, noise_shape=(None, 1, 6), seed=2)
    assert (y == y[:, :1, :]).all()  # the same features dropped at every step
    assert plexus.random.dropout(x, 0.0) is x and (plexus.random.dropout(x, 1.0) == 0).all()


def test_seeds_follow_keras_semantics():
    r = plexus.random
    assert torch.equal(r.normal((5,), seed=11), r.normal((5,), seed=11))
    assert not torch.equal(r.normal((5,), seed=11), r.normal((5,), seed=12))
    g1, g2 = r.SeedGenerator(7), r.SeedGenerator(7)
    a1, b1 = r.uniform((4,), seed=g1), r.uniform((4,), seed=g1)
    a2, b2 = r.uniform((4,), seed=g2), r.uniform((4,), seed=g2)
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and not torch.equal(a1, b1)
    plexus.utils.set_random_seed(5)
    first = (r.normal((3,)), r.SeedGenerator()._initial_seed, r.dropout(torch.ones(9), 0.5))
    plexus.utils.set_random_seed(5)
    second = (r.normal((3,)), r.SeedGenerator()._initial_seed, r.dropout(torch.ones(9), 0.5))
    assert torch.equal(first[0], second[0]) and torch.equal(first[2], second[2])
    assert first[1] is None and second[1] is None
    assert r.SeedGenerator(3).next().tolist() == [3, 0]
    with pytest.raises(ValueError, match="seed"):
        r.normal((2,), seed="abc")
    with pytest.raises(ValueError, match="floating"):
        r.uniform((2,), dtype="int32")
    with pytest.raises(ValueError, match="rank 2"):
        r.categorical(torch.zeros(3), 2)
    with pytest.raises(ValueError, match="integer"):
        r.SeedGenerator(1.5)
    with pytest.raises(TypeError, match="symbolic tensor"):
        r.dropout(plexus.Input((3,)), 0.5)


class Noise(plexus.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = plexus.random.SeedGenerator(1337)

    def call(self, x):
        return x + plexus.random.normal(tuple(x.shape), stddev=0.1, seed=self.seed_generator)


def test_layer_with_a_seed_generator(tmp_path):
    import h5py
    import zipfile
    inputs = plexus.Input((3,))
    model = plexus.Model(inputs, Noise()(layers.Dense(3)(inputs)))
    noise = model.layers[-1]
    state = noise.seed_generator.state
    assert state.path == "seed_generator/seed_generator_state"
    assert any(v is state for v in model.variables) and any(
        v is state for v in noise.non_trainable_variables)
    assert all(v is not state for v in model.weights)
    a, b = model(np.zeros((2, 3))), model(np.zeros((2, 3)))
    assert not torch.equal(a, b) and state.tolist() == [1337, 2]  # building the graph draws none
    path = tmp_path / "noise.keras"
    model.save(path)
    with zipfile.ZipFile(path) as z, h5py.File(z.open("model.weights.h5"), "r") as f:
        assert len(f["layers/noise/vars"]) == 0  # as Keras: seed states are not saved
    loaded = plexus.saving.load_model(path, custom_objects={"Noise": Noise})
    assert loaded(np.zeros((2, 3))).shape == (2, 3)


def test_random_draws_follow_the_data_device():
    class Jitter(plexus.layers.Layer):
        def call(self, x):
            return x + plexus.random.uniform(tuple(x.shape), seed=3)

    layer = Jitter()
    out = layer(torch.zeros(2, 3, device="meta"))  # the data's device, not the default one
    assert out.device.type == "meta"
    assert plexus.random.normal((2,)).device.type == "cpu"  # outside calls: the default device
    model = plexus.Sequential([plexus.Input((3,)), Jitter()])
    assert model(torch.zeros(2, 3, device="meta")).device.type == "meta"
