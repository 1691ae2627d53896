"""`layers.Normalization` against Keras: adapted or given statistics, kept axes, inversion,
weights, configs and saved files."""
import keras
import numpy as np
import pytest
import torch

import plexus
from tests.parity.oracle import assert_close

DATA = np.random.default_rng(0).uniform(-3, 7, (10, 4, 5, 3)).astype("float32")


@pytest.mark.parametrize("kwargs", [
    dict(axis=None), dict(axis=-1), dict(axis=(1, 3)), dict(axis=2, invert=True),
    dict(mean=[1.0, 2.0, 3.0], variance=[4.0, 5.0, 0.0]), dict(mean=2.0, variance=3.0),
    dict(axis=(1, 2, 3), mean=[[1.0, 2.0, 3.0]], variance=[[1.0, 4.0, 9.0]]),
], ids=str)
def test_normalization_as_keras(kwargs):
    k, p = keras.layers.Normalization(**kwargs), plexus.layers.Normalization(**kwargs)
    if "mean" not in kwargs:
        k.adapt(DATA)
        p.adapt(DATA)
    x = np.random.default_rng(1).uniform(-5, 5, (2, 4, 5, 3)).astype("float32")
    assert_close(p(x), k(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert [w.shape for w in p.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    for ours, theirs in zip(p.get_weights(), k.get_weights()):
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-6)
    config = {key: p.get_config()[key] for key in ("axis", "invert", "mean", "variance")}
    expected = {key: k.get_config()[key] for key in config}
    assert {key: list(v) if isinstance(v, tuple) else v for key, v in config.items()} == \
        {key: list(v) if isinstance(v, tuple) else v for key, v in expected.items()}


def test_adapt_over_batches_as_keras():
    """Statistics pooled over an iterable of batches (of different sizes) equal Keras's over
    the whole data (Keras's own iterable path needs TensorFlow); integer images are
    normalized in float32."""
    k, p = keras.layers.Normalization(), plexus.layers.Normalization()
    k.adapt(DATA)
    p.adapt(iter([DATA[:3], DATA[3:4], DATA[4:]]))
    for ours, theirs in zip(p.get_weights()[:2], k.get_weights()[:2]):
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-6)
    ints = np.random.default_rng(2).integers(0, 255, (2, 4, 5, 3)).astype("uint8")
    out = p(ints)
    assert out.dtype == torch.float32
    assert_close(out, k(ints).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_normalization_in_model_files_both_ways(tmp_path):
    """Adapted statistics travel in `.keras` files: plexus to Keras and back."""
    inp = plexus.Input((4, 5, 3))
    norm = plexus.layers.Normalization(axis=-1, name="norm")
    model = plexus.Model(inp, norm(inp))
    norm.adapt(DATA)
    model.save(str(tmp_path / "n.keras"))
    km = keras.saving.load_model(str(tmp_path / "n.keras"))
    x = DATA[:2]
    assert_close(model(x), km(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    km.save(str(tmp_path / "k.keras"))
    back = plexus.models.load_model(str(tmp_path / "k.keras"))
    assert_close(back(x), model(x).detach().numpy())


def test_normalization_errors():
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        plexus.layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="same shape"):
        plexus.layers.Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="out of range"):
        plexus.layers.Normalization(axis=4)(plexus.Input((4, 5, 3)))
    with pytest.raises(ValueError, match="known sizes"):
        plexus.layers.Normalization(axis=1)(plexus.Input((None, 3)))
    layer = plexus.layers.Normalization()
    layer.adapt(DATA)
    with pytest.raises(ValueError, match=r"adapt\(\) received data of shape \(2, 4, 5, 4\)"):
        layer.adapt(np.zeros((2, 4, 5, 4), "float32"))
    with pytest.raises(ValueError, match="no data"):
        plexus.layers.Normalization().adapt([])
    with pytest.raises(ValueError, match="given at construction"):
        plexus.layers.Normalization(mean=1.0, variance=1.0).adapt(DATA)
