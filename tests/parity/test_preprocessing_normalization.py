"""Normalization against Keras: adapt (arrays, batches), given statistics, invert, files."""
import keras
import numpy as np
import pytest

import plexus
from plexus import layers
from tests.parity.oracle import assert_close

CASES = [
    ("last_axis", {}, (20, 3)),
    ("global", {"axis": None}, (20, 4)),
    ("image_channels", {}, (6, 4, 5, 3)),
    ("two_axes", {"axis": (1, 2)}, (6, 4, 5)),
    ("axis_1", {"axis": 1}, (6, 4, 5)),
    ("invert", {"invert": True}, (10, 3)),
]


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=[c[0] for c in CASES])
def test_adapt_matches_keras(name, kwargs, shape):
    data = np.random.uniform(-3, 5, shape).astype("float32")
    p, k = layers.Normalization(**kwargs), keras.layers.Normalization(**kwargs)
    p.adapt(data)
    k.adapt(data)
    assert_close(p.get_weights()[:2], [w for w in k.get_weights()[:2]], atol=1e-5)
    x = np.random.uniform(-3, 5, shape).astype("float32")
    assert_close(p(x), k(x), atol=1e-5)


def test_adapt_on_batches_matches_keras():
    data = np.random.normal(2, 3, (50, 4)).astype("float32")
    batches = [data[i:i + 16] for i in range(0, 50, 16)]
    p, k = layers.Normalization(), keras.layers.Normalization()
    p.adapt(iter(batches))
    k.adapt(data)  # (Keras reads iterables through TensorFlow: it adapts on the whole array)
    assert_close(p.get_weights()[:2], k.get_weights()[:2], atol=1e-5)
    # the merged statistics equal the statistics of the whole array
    np.testing.assert_allclose(p.get_weights()[0], data.mean(0), atol=1e-5)
    np.testing.assert_allclose(p.get_weights()[1], data.var(0), rtol=1e-5)


def test_adapt_on_x_y_batches_reads_x():
    data = np.random.normal(1, 2, (40, 3)).astype("float32")
    p = layers.Normalization()
    p.adapt((data[i:i + 8], np.zeros(8)) for i in range(0, 40, 8))
    np.testing.assert_allclose(p.get_weights()[0], data.mean(0), atol=1e-5)


@pytest.mark.parametrize("mean,variance,shape", [
    (3.0, 2.0, (5, 1)), ([1.0, 2.0, 3.0], [4.0, 1.0, 9.0], (4, 3)),
    ([1.0, 2.0, 3.0], [4.0, 1.0, 9.0], (2, 5, 3)), ([[1.0, 2.0]], [[1.0, 4.0]], (3, 1, 2)),
])
def test_given_statistics_match_keras(mean, variance, shape):
    axis = -1 if np.ndim(mean) < 2 else (1, 2)
    x = np.random.uniform(0, 5, shape).astype("float32")
    for invert in (False, True):
        p = layers.Normalization(axis=axis, mean=mean, variance=variance, invert=invert)
        k = keras.layers.Normalization(axis=axis, mean=mean, variance=variance, invert=invert)
        assert_close(p(x), k(x), atol=1e-5)
        assert p.get_weights() == [] and k.get_weights() == []


def test_integer_inputs_become_float():
    p = layers.Normalization(mean=1.0, variance=4.0)
    out = p(np.array([[1], [3], [5]], dtype="int64"))
    assert out.dtype.is_floating_point
    np.testing.assert_allclose(out.numpy().ravel(), [0.0, 1.0, 2.0])


def _model(lib, adapt_data):
    norm = lib.layers.Normalization()
    norm.adapt(adapt_data)
    inputs = lib.Input(shape=(3,))
    outputs = lib.layers.Dense(2)(norm(inputs))
    return lib.Model(inputs, outputs)


def test_keras_file_both_ways(tmp_path):
    data = np.random.normal(4, 2, (30, 3)).astype("float32")
    x = np.random.normal(4, 2, (5, 3)).astype("float32")
    p_model = _model(plexus, data)
    p_model.save(tmp_path / "p.keras")
    k_loaded = keras.models.load_model(tmp_path / "p.keras")
    assert_close(k_loaded.predict(x, verbose=0), p_model.predict(x, verbose=0), atol=1e-5)
    k_model = _model(keras, data)
    k_model.save(tmp_path / "k.keras")
    p_loaded = plexus.models.load_model(tmp_path / "k.keras")
    assert_close(p_loaded.predict(x, verbose=0), k_model.predict(x, verbose=0), atol=1e-5)
    assert_close(p_loaded.layers[1].get_weights()[:2], k_model.layers[1].get_weights()[:2])


def test_bad_input_is_a_clear_error():
    layer = layers.Normalization()
    with pytest.raises(ValueError, match="empty"):
        layer.adapt(np.zeros((0, 3), "float32"))
    with pytest.raises(ValueError, match="empty iterable"):
        layer.adapt(iter([]))
    with pytest.raises(TypeError, match="Normalization.*strings"):
        layer(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        layers.Normalization(mean=1.0)
    layer.adapt(np.zeros((4, 3), "float32"))
    with pytest.raises(ValueError, match=r"shape \(4, 3\)|\(None, 3\)|built for"):
        layer.adapt(np.zeros((4, 5), "float32"))
