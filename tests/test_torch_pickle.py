"""A model is a picklable torch module: `pickle`, `torch.save(model)` with
`torch.load(..., weights_only=False)` and `copy.deepcopy` give a model that predicts, trains and
saves as the original does."""
import copy
import io
import pickle

import numpy as np
import pytest
import torch

import plexus as keras
from bench.workloads import WORKLOADS
from plexus import applications, layers

APPLICATIONS = sorted(n for n in dir(applications) if n[0].isupper())
# A deep graph (EfficientNet), depthwise and 1x1 convolutions, hard-swish: the rest of the
# catalogue is marked slow (building the 40 graphs takes ~30 s here).
FAST_APPLICATIONS = {"EfficientNetB0", "MobileNetV3Small"}
MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}


def torch_round_trip(model):
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def pickle_round_trip(model):
    return pickle.loads(pickle.dumps(model))


COPIES = {"pickle": pickle_round_trip, "torch.save": torch_round_trip, "deepcopy": copy.deepcopy}


def small_data(name):
    wl = type(name, (WORKLOADS[name],), {"vocabulary": 500})
    x, y = wl.data(6, np.random.default_rng(0))
    return (x[0] if len(x) == 1 else x), (y[0] if len(y) == 1 else y)


def as_list(out):
    return out if isinstance(out, list) else [out]


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_seed_workload_models_round_trip(name):
    model = WORKLOADS[name].build(keras)
    x, _ = small_data(name)
    expected = as_list(model.predict(x, verbose=0))
    for how, copier in COPIES.items():
        clone = copier(model)
        assert type(clone) is type(model) and clone.name == model.name
        assert [w.path for w in clone.weights] == [w.path for w in model.weights]
        got = as_list(clone.predict(x, verbose=0))
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=how)
        # The copy owns its weights (its own tensors, not the original's).
        assert all(c is not w for c, w in zip(clone.weights, model.weights))


def test_compiled_trained_model_round_trips_with_its_optimizer():
    rng = np.random.default_rng(0)
    x = rng.random((16, 8)).astype("float32")
    y = rng.random((16, 1)).astype("float32")

    def build():
        inp = keras.Input((8,))
        h = layers.Dense(4, activation="relu")(layers.BatchNormalization()(inp))
        model = keras.Model(inp, layers.Dense(1)(layers.Dropout(0.2)(h)))
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        return model

    model = build()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    restored = torch_round_trip(model)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 4
    # Both continue training from the same state to the same weights.
    keras.utils.set_random_seed(1)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    keras.utils.set_random_seed(1)
    restored.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # Buffers (BatchNormalization's moving statistics) travel as buffers.
    assert [n for n, _ in restored.named_buffers()] == [n for n, _ in model.named_buffers()]
    assert len(list(restored.named_buffers())) == 2


def test_every_layer_family_round_trips():
    seq_in = keras.Input((6, 4))
    img_in = keras.Input((8, 8, 3))
    s = layers.Bidirectional(layers.LSTM(3, return_sequences=True))(seq_in)
    s = layers.GRU(3, return_sequences=True)(s)
    s = layers.GRU(3, reset_after=False)(layers.SimpleRNN(3, return_sequences=True)(s))
    i = layers.SeparableConv2D(4, 3)(layers.DepthwiseConv2D(3, padding="same")(img_in))
    i = layers.Conv2DTranspose(2, 3)(layers.Conv2D(4, 3)(i))
    i = layers.GlobalAveragePooling2D()(i)
    c = layers.ConvLSTM1D(2, 3)(layers.Reshape((6, 4, 1))(seq_in))
    out = layers.concatenate([s, i, layers.Flatten()(c)])
    model = keras.Model([seq_in, img_in], layers.Dense(2)(out))
    x = [np.random.rand(3, 6, 4).astype("float32"), np.random.rand(3, 8, 8, 3).astype("float32")]
    expected = model.predict(x, verbose=0)
    for how, copier in COPIES.items():
        np.testing.assert_allclose(copier(model).predict(x, verbose=0), expected, rtol=1e-6,
                                   atol=1e-6, err_msg=how)


class Twice(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(2)

    def call(self, x):
        return self.dense(x) * 2


def test_sequential_and_subclassed_models_round_trip():
    seq = keras.Sequential([keras.Input((5,)), layers.Dense(3), layers.LayerNormalization()])
    sub = Twice()
    x = np.random.rand(4, 5).astype("float32")
    for model in (seq, sub):
        expected = model(x).detach().numpy()
        for how, copier in COPIES.items():
            clone = copier(model)
            np.testing.assert_allclose(clone(x).detach().numpy(), expected, rtol=1e-6,
                                       err_msg=f"{type(model).__name__} {how}")


def test_round_tripped_model_saves_to_a_keras_file(tmp_path):
    model = WORKLOADS["ticket_lstm"].build(keras)
    x, _ = small_data("ticket_lstm")
    clone = pickle_round_trip(model)
    path = tmp_path / "m.keras"
    clone.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(as_list(loaded.predict(x, verbose=0)), as_list(model.predict(x, verbose=0))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", [
    n if n in FAST_APPLICATIONS else pytest.param(n, marks=pytest.mark.slow)
    for n in APPLICATIONS])
def test_application_round_trips(name):
    """Every application (built on the meta device: graph and shapes without the cost of
    random weights) pickles and loads with the same graph and weights."""
    size = MIN_SIZE.get(name, 32)
    with torch.device("meta"):
        model = getattr(applications, name)(weights=None, input_shape=(size, size, 3))
    for copier in (pickle_round_trip, torch_round_trip):
        clone = copier(model)
        assert [l.name for l in clone.layers] == [l.name for l in model.layers]
        assert [(w.path, tuple(w.shape)) for w in clone.weights] == \
            [(w.path, tuple(w.shape)) for w in model.weights]
        assert clone.output_shape == model.output_shape == (None, 1000)


def test_deep_real_application_predicts_the_same_after_pickling():
    model = applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=3)
    x = np.random.rand(2, 32, 32, 3).astype("float32") * 255
    expected = model.predict(x, verbose=0)
    for how, copier in COPIES.items():
        np.testing.assert_allclose(copier(model).predict(x, verbose=0), expected, rtol=1e-5,
                                   atol=1e-6, err_msg=how)


@pytest.mark.slow
def test_model_trained_with_jit_compile_round_trips():
    """The compiled training plans are caches: dropped by pickling, made again by the copy."""
    rng = np.random.default_rng(0)
    x = rng.random((16, 5)).astype("float32")
    inp = keras.Input((5,))
    model = keras.Model(inp, layers.Dense(2)(layers.Dense(4, activation="relu")(inp)))
    model.compile("adam", "mse", jit_compile=True)
    model.fit(x, x[:, :2], batch_size=4, epochs=1, verbose=0)
    for copier in COPIES.values():
        clone = copier(model)
        np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=1e-6)
        clone.fit(x, x[:, :2], batch_size=4, epochs=1, verbose=0)
    assert model._compile_state.cache  # the original keeps its plans
