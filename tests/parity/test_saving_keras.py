"""Files cross between Keras 3 and plexus: each saves, the other loads, predictions agree."""
import numpy as np
import pytest

import keras
import plexus
from plexus.saving.weights import is_op
from tests.parity.oracle import assert_close, to_numpy


def _mlp(k):
    inp = k.Input((6,), name="features")
    a = k.layers.Dense(5, activation="relu", kernel_regularizer="l2")(inp)
    b = k.layers.Dense(5, activation="tanh")(inp)
    x = k.layers.Concatenate()([a, b])
    x = k.layers.Add()([k.layers.Dense(4)(x), k.layers.Dense(4)(x)])
    x = k.layers.Dropout(0.3)(x)
    x = k.layers.Activation("softmax")(x)
    return k.Model(inp, x)


def _conv(k):
    inp = k.Input((9, 9, 3))
    x = k.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.MaxPooling2D()(x)
    x = k.layers.DepthwiseConv2D(3, padding="same")(x)
    x = k.layers.SeparableConv2D(3, 2)(x)
    x = k.layers.Conv2DTranspose(2, 3, strides=2)(x)
    x = k.layers.AveragePooling2D(2)(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inp, k.layers.Dense(2)(x))


def _conv1d_3d(k):
    a = k.Input((10, 3))
    x = k.layers.Conv1D(4, 3, activation="relu")(a)
    x = k.layers.GlobalMaxPooling1D()(x)
    b = k.Input((4, 4, 4, 2))
    y = k.layers.Conv3D(2, 2)(b)
    y = k.layers.Flatten()(y)
    return k.Model([a, b], k.layers.Concatenate()([x, y]))


def _norm_act(k):
    inp = k.Input((5, 6))
    x = k.layers.LayerNormalization()(inp)
    x = k.layers.GroupNormalization(groups=2)(x)
    x = k.layers.PReLU()(x)
    x = k.layers.LeakyReLU(negative_slope=0.1)(x)
    x = k.layers.ELU()(x)
    x = k.layers.Reshape((30,))(x)
    return k.Model(inp, k.layers.Softmax()(x))


def _recurrent(k):
    inp = k.Input((7,), dtype="int32")
    x = k.layers.Embedding(20, 4, mask_zero=True)(inp)
    x = k.layers.LSTM(3, return_sequences=True)(x)
    x = k.layers.GRU(3, return_sequences=True)(x)
    x = k.layers.SimpleRNN(2)(x)
    return k.Model(inp, x)


def _nested(k):
    inner_in = k.Input((4,))
    inner = k.Model(inner_in, k.layers.Dense(3, activation="relu")(inner_in), name="inner")
    inp = k.Input((4,))
    x = inner(inp)
    y = inner(k.layers.Dense(4)(inp))
    return k.Model(inp, [k.layers.Dense(2)(x), y], name="outer")


def _sequential(k):
    return k.Sequential([k.Input((6,)), k.layers.Dense(4, activation="relu"),
                         k.layers.BatchNormalization(), k.layers.Dense(2)], name="stack")


def _wrappers(k):
    inp = k.Input((5, 3))
    x = k.layers.Bidirectional(k.layers.LSTM(2, return_sequences=True))(inp)
    x = k.layers.TimeDistributed(k.layers.Dense(3))(x)
    x = k.layers.Bidirectional(k.layers.GRU(2), merge_mode="sum")(x)
    return k.Model(inp, x)


def _reshaping(k):
    inp = k.Input((4, 4, 2))
    x = k.layers.ZeroPadding2D(1)(inp)
    x = k.layers.Cropping2D(((1, 0), (0, 1)))(x)
    x = k.layers.UpSampling2D(2)(x)
    x = k.layers.Rescaling(0.5, offset=0.1)(x)
    x = k.layers.Permute((3, 1, 2))(x)
    x = k.layers.Reshape((2, -1))(x)
    x = k.layers.GaussianNoise(0.1)(x)
    x = k.layers.SpatialDropout1D(0.2)(x)
    x = k.layers.ActivityRegularization(l1=0.01)(x)
    y = k.layers.RepeatVector(3)(k.layers.Flatten()(x))
    return k.Model(inp, k.layers.Dense(2)(y))


def _attention(k):
    q = k.Input((4, 6))
    v = k.Input((5, 6))
    a = k.layers.MultiHeadAttention(num_heads=2, key_dim=3)(q, v)
    b = k.layers.Attention()([q, v])
    c = k.layers.AdditiveAttention()([q, v])
    d = k.layers.Dot(axes=(2, 2))([a, b])
    return k.Model([q, v], [k.layers.Add()([a, b, c]), d])


BUILDERS = {"wrappers": _wrappers, "reshaping": _reshaping, "attention": _attention, "mlp": _mlp, "conv2d": _conv, "conv1d_3d": _conv1d_3d, "norm_act": _norm_act,
            "recurrent": _recurrent, "nested": _nested, "sequential": _sequential}


def _inputs(model):
    rng = np.random.default_rng(0)
    xs = []
    for shape, dtype in [(tuple(t.shape), str(t.dtype)) for t in model.inputs]:
        shape = (3,) + tuple(shape[1:])
        if "int" in dtype:
            x = rng.integers(0, 20, size=shape).astype("int32")
            x[:, -2:] = 0  # padding, masked
            xs.append(x)
        else:
            xs.append(rng.normal(size=shape).astype("float32"))
    return xs[0] if len(xs) == 1 else xs


def _randomize(model):
    rng = np.random.default_rng(1)
    model.set_weights([rng.uniform(0.2, 1.0, size=w.shape).astype(w.dtype)
                       for w in model.get_weights()])


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_keras_saved_model_loads_in_plexus(family, tmp_path):
    km = BUILDERS[family](keras)
    _randomize(km)
    x = _inputs(km)
    expected = km.predict(x, verbose=0)
    km.save(tmp_path / "k.keras")
    pm = plexus.models.load_model(tmp_path / "k.keras")
    assert [l.name for l in pm.layers if not is_op(l)] == [l.name for l in km.layers]
    assert_close(pm(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_plexus_saved_model_loads_in_keras(family, tmp_path):
    pm = BUILDERS[family](plexus)
    _randomize(pm)
    x = _inputs(pm)
    expected = to_numpy(pm(x))
    pm.save(tmp_path / "p.keras")
    km = keras.saving.load_model(tmp_path / "p.keras")
    assert [l.name for l in km.layers] == [l.name for l in pm.layers]
    assert_close(km.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["conv2d", "recurrent", "nested", "wrappers", "attention"])
def test_weights_files_cross(family, tmp_path):
    km, pm = BUILDERS[family](keras), BUILDERS[family](plexus)
    _randomize(km)
    x = _inputs(km)
    km.save_weights(tmp_path / "k.weights.h5")
    pm.load_weights(tmp_path / "k.weights.h5")
    assert_close(pm(x), km.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    _randomize(pm)
    pm.save_weights(tmp_path / "p.weights.h5")
    km.load_weights(tmp_path / "p.weights.h5")
    assert_close(pm(x), km.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_legacy_h5_weights_from_keras(tmp_path):
    """Keras 2's layout (how application weights ship), by order and by name."""
    from keras.src.legacy.saving import legacy_h5_format
    import h5py
    km = _conv(keras)
    _randomize(km)
    with h5py.File(tmp_path / "legacy.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, km)
    x = _inputs(km)
    pm = _conv(plexus)
    pm.load_weights(tmp_path / "legacy.h5")
    assert_close(pm(x), km.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    pm2 = _conv(plexus)
    for lp, lk in zip(pm2.layers, km.layers):  # same names, so by_name matches every layer
        lp.name = lk.name
    pm2.load_weights(tmp_path / "legacy.h5", by_name=True)
    assert_close(pm2(x), km.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_keras_legacy_full_model_h5(tmp_path):
    km = _mlp(keras)
    _randomize(km)
    km.save(tmp_path / "legacy_model.h5")
    pm = plexus.models.load_model(tmp_path / "legacy_model.h5")
    x = _inputs(km)
    assert_close(pm(x), km.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_plexus_config_is_keras_config():
    """plexus's get_config() rebuilds in Keras through Keras's own from_config, and back."""
    pm = _nested(plexus)
    km = keras.Model.from_config(pm.get_config())
    assert [l.name for l in km.layers] == [l.name for l in pm.layers]
    km.set_weights(pm.get_weights())
    x = _inputs(pm)
    assert_close(km.predict(x, verbose=0), pm(x), rtol=1e-5, atol=1e-6)
    pm2 = plexus.models.model_from_json(km.to_json())
    pm2.set_weights(km.get_weights())
    assert_close(pm2(x), pm(x))


def _ops(k):
    inp = k.Input((3, 4))
    x = 1.0 + inp * 2.0
    y = -abs(x - inp) / 3.0
    z = x[:, 0] + y[:, 1, ...]
    return k.Model(inp, [z, k.layers.Dense(2)(x) ** 2.0])


def test_operator_graphs_cross_both_ways(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    pm = _ops(plexus)
    pm.save(tmp_path / "p.keras")
    km = keras.saving.load_model(tmp_path / "p.keras")
    assert_close(km.predict(x, verbose=0), pm(x))
    pm2 = plexus.models.load_model(tmp_path / "p.keras")
    assert_close(pm2(x), pm(x))
    km = _ops(keras)
    km.save(tmp_path / "k.keras")
    assert_close(plexus.models.load_model(tmp_path / "k.keras")(x), km.predict(x, verbose=0))


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "nadam"])
def test_keras_training_state_resumes_in_plexus(tmp_path, optimizer):
    """Keras trains, saves; plexus and Keras each continue from the file: same weights."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = x.sum(1, keepdims=True)
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    km = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(inp)))
    km.compile(optimizer=optimizer, loss="mse")
    km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    km.save(tmp_path / "k.keras")
    pm = plexus.models.load_model(tmp_path / "k.keras")
    assert pm.optimizer.iterations == 4
    km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    pm.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert_close(pm.get_weights(), km.get_weights(), rtol=1e-5, atol=1e-6)
    pm.save(tmp_path / "p.keras")
    assert int(keras.saving.load_model(tmp_path / "p.keras").optimizer.iterations) == 8


def test_keras_lambda_needs_the_function_from_the_caller(tmp_path):
    inp = keras.Input((3,))
    km = keras.Model(inp, keras.layers.Lambda(lambda t: t * 3.0, name="triple")(inp))
    km.save(tmp_path / "lam.keras")
    with pytest.raises(plexus.saving.LoadError, match="safe_mode=True refuses"):
        plexus.models.load_model(tmp_path / "lam.keras")
    pm = plexus.models.load_model(tmp_path / "lam.keras",
                                  custom_objects={"triple": lambda t: t * 3.0})
    x = np.ones((2, 3), "float32")
    assert_close(pm(x), km.predict(x, verbose=0))


def test_plexus_full_model_h5_loads_in_keras_and_plexus(tmp_path):
    pm = _nested(plexus)
    _randomize(pm)
    pm.compile(optimizer="adam", loss="mse")
    pm.save(tmp_path / "m.h5")
    x = _inputs(pm)
    # Keras 3.15 cannot re-compile legacy .h5 files with string losses, even its own.
    km = keras.saving.load_model(tmp_path / "m.h5", compile=False)
    assert_close(km.predict(x, verbose=0), pm(x))
    pm2 = plexus.models.load_model(tmp_path / "m.h5")
    assert_close(pm2(x), pm(x))
    assert pm2.compiled


def test_application_weights_in_keras2_layout(tmp_path):
    """Published application weights are Keras 2 `.h5` files; a Keras model's weights written
    that way load into plexus's application, by order and by layer name."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    kwargs = dict(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=5)
    km = keras.applications.MobileNetV2(**kwargs)
    rng = np.random.default_rng(0)  # perturb every weight, moving statistics included
    km.set_weights([w + rng.normal(0, 0.02, w.shape).astype(w.dtype) for w in km.get_weights()])
    path = tmp_path / "mobilenet_v2_weights.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, km)
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 32, 32, 3)).astype("float32")
    expected = to_numpy(km(x))
    pm = plexus.applications.MobileNetV2(**kwargs)
    pm.load_weights(path)
    assert_close(pm(x), expected, rtol=1e-4, atol=1e-5)
    pm = plexus.applications.MobileNetV2(**kwargs)
    pm.load_weights(path, by_name=True)
    assert_close(pm(x), expected, rtol=1e-4, atol=1e-5)


def test_keras_compile_config_with_objects_and_dicts(tmp_path):
    """Per-output losses, loss weights, metric objects and optimizer options travel."""
    inp = keras.Input((4,), name="x")
    km = keras.Model(inp, {"cls": keras.layers.Dense(2, activation="softmax", name="cls")(inp),
                           "reg": keras.layers.Dense(1, name="reg")(inp)})
    km.compile(optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0),
               loss={"cls": keras.losses.SparseCategoricalCrossentropy(), "reg": "mse"},
               loss_weights={"cls": 1.0, "reg": 0.5},
               metrics={"cls": ["accuracy"], "reg": [keras.metrics.MeanAbsoluteError()]})
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 4)).astype("float32")
    y = {"cls": rng.integers(0, 2, 8), "reg": rng.uniform(size=(8, 1)).astype("float32")}
    km.fit(x, y, verbose=0)
    km.save(tmp_path / "k.keras")
    pm = plexus.models.load_model(tmp_path / "k.keras")
    assert pm.optimizer.clipnorm == 1.0 and pm.optimizer.iterations == 1
    expected = km.evaluate(x, y, verbose=0, return_dict=True)
    got = pm.evaluate(x, y, verbose=0, return_dict=True)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6)


def test_plexus_compile_config_and_state_load_in_keras(tmp_path):
    inp = plexus.Input((4,), name="x")
    pm = plexus.Model(inp, {"cls": plexus.layers.Dense(2, activation="softmax", name="cls")(inp),
                            "reg": plexus.layers.Dense(1, name="reg")(inp)})
    pm.compile(optimizer=plexus.optimizers.Adam(0.01),
               loss={"cls": plexus.losses.SparseCategoricalCrossentropy(), "reg": "mse"},
               loss_weights={"cls": 1.0, "reg": 0.5},
               metrics={"cls": ["accuracy"], "reg": [plexus.metrics.MeanAbsoluteError()]})
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 4)).astype("float32")
    y = {"cls": rng.integers(0, 2, 8), "reg": rng.uniform(size=(8, 1)).astype("float32")}
    pm.fit(x, y, verbose=0)
    pm.save(tmp_path / "p.keras")
    km = keras.saving.load_model(tmp_path / "p.keras")
    assert km.compiled and int(km.optimizer.iterations) == 1
    expected = pm.evaluate(x, y, verbose=0, return_dict=True)
    got = km.evaluate(x, y, verbose=0, return_dict=True)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6)


def test_learning_rate_schedule_travels(tmp_path):
    inp = plexus.Input((4,))
    pm = plexus.Model(inp, plexus.layers.Dense(1)(inp))
    schedule = plexus.optimizers.schedules.ExponentialDecay(0.1, 3, 0.5)
    pm.compile(optimizer=plexus.optimizers.Adam(schedule), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    pm.fit(x, x.sum(1, keepdims=True), batch_size=8, epochs=2, verbose=0)
    pm.save(tmp_path / "s.keras")
    loaded = plexus.models.load_model(tmp_path / "s.keras")
    assert isinstance(loaded.optimizer._learning_rate, type(schedule))
    assert loaded.optimizer.learning_rate == pytest.approx(pm.optimizer.learning_rate)
    km = keras.saving.load_model(tmp_path / "s.keras")
    assert int(km.optimizer.iterations) == 4
    assert float(km.optimizer.learning_rate) == pytest.approx(pm.optimizer.learning_rate)
