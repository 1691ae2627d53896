"""Models whose inputs are intermediate tensors (`Model(encoded, predictions)`, as the
keras.io FeatureSpace example builds its training model), against Keras."""
import keras
import numpy as np
import pytest

import plexus
from tests.parity.oracle import assert_close

X = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")


def _graphs():
    def build(m):
        i = m.Input((3,), name="raw")
        h = m.layers.Dense(4, name="encode")(i)
        o = m.layers.Dense(2, name="head")(m.layers.Activation("relu", name="act")(h))
        return i, h, o
    p, k = build(plexus), build(keras)
    k_full, p_full = keras.Model(k[0], k[2]), plexus.Model(p[0], p[2])
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=w.shape).astype("float32") for w in k_full.get_weights()]
    k_full.set_weights(weights)
    p_full.set_weights(weights)
    return p, k


def test_a_model_from_an_intermediate_tensor_matches_keras(tmp_path):
    (pi, ph, po), (ki, kh, ko) = _graphs()
    p_model, k_model = plexus.Model(ph, po), keras.Model(kh, ko)
    # an Input named after the tensor, as Keras names it (tensor names count separately)
    assert [l.name for l in p_model.layers] == [ph.name + "CLONE", "act", "head"]
    assert [l.name for l in k_model.layers] == [kh.name + "CLONE", "act", "head"]
    assert_close(p_model.predict(X, verbose=0), k_model.predict(X, verbose=0), atol=1e-6)
    # the layers are shared with the full model (as in Keras)
    full = plexus.Model(pi, po)
    assert full.get_layer("head") is p_model.get_layer("head")
    p_model.save(tmp_path / "p.keras")
    from_keras = keras.models.load_model(tmp_path / "p.keras")
    assert_close(from_keras.predict(X, verbose=0), k_model.predict(X, verbose=0), atol=1e-6)
    assert_close(plexus.models.load_model(tmp_path / "p.keras").predict(X, verbose=0),
                 p_model.predict(X, verbose=0))
    p_model.compile("sgd", "mse")
    p_model.fit(X, np.zeros((5, 2)), epochs=1, verbose=0)
    assert_close(full.get_layer("head").get_weights()[0],
                 p_model.get_layer("head").get_weights()[0])


def test_mixed_inputs_and_errors():
    i = plexus.Input((3,), name="a")
    j = plexus.Input((4,), name="b")
    h = plexus.layers.Dense(4, name="d")(i)
    out = plexus.layers.Add(name="add")([h, j])
    model = plexus.Model([h, j], out)
    assert {l.name for l in model.layers} == {h.name + "CLONE", "b", "add"}
    np.testing.assert_allclose(model.predict([X, X], verbose=0), 2 * X, atol=1e-6)
    with pytest.raises(ValueError, match="disconnected"):
        plexus.Model(h, out)  # `out` also needs `b`
