"""Files with the newer layers cross between Keras 3 and plexus: each saves, the other loads,
predictions agree; configs rebuild the same layers in both."""
import json

import keras
import numpy as np
import pytest

import plexus
from plexus.saving.serialization import deserialize_keras_object, serialize_layer
from plexus.saving.weights import is_op
from tests.parity.oracle import assert_close, to_numpy
from tests.parity.test_saving_keras import _inputs, _randomize


def _einsum_gqa(k):
    q, v = k.Input((4, 6)), k.Input((5, 6))
    x = k.layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de")(q)
    x = k.layers.Reshape((4, 6))(x)
    a = k.layers.GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2,
                                     use_gate=True)(x, v)
    b = k.layers.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1,
                                     use_bias=False)(q, v, use_causal_mask=True)
    return k.Model([q, v], k.layers.Add()([a, b]))


def _conv_lstm(k):
    inp = k.Input((3, 6, 6, 2))
    x = k.layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True)(inp)
    x = k.layers.Reshape((3, 36, 3))(x)
    x = k.layers.ConvLSTM1D(2, 2, go_backwards=True)(x)
    y = k.layers.ConvLSTM3D(2, 2)(k.layers.Reshape((3, 3, 4, 3, 2))(inp))
    return k.Model(inp, [x, y])


def _normalization(k):
    inp = k.Input((5, 4))
    x = k.layers.RMSNormalization()(inp)
    x = k.layers.SpectralNormalization(k.layers.Dense(3))(x)
    x = k.layers.SpectralNormalization(k.layers.Conv1D(2, 2), power_iterations=2)(x)
    return k.Model(inp, k.layers.AdaptiveAveragePooling1D(2)(x))


def _pooling(k):
    inp = k.Input((7, 6, 2))
    a = k.layers.AdaptiveMaxPooling2D((3, 2))(inp)
    b = k.layers.AdaptiveAveragePooling2D(3, data_format="channels_first")(inp)
    c = k.layers.AdaptiveMaxPooling3D(2)(k.layers.Reshape((7, 3, 2, 2))(inp))
    flat = [k.layers.Flatten()(t) for t in (a, b, c)]
    return k.Model(inp, k.layers.Concatenate()(flat))


def _reversible(k):
    inp = k.Input((6,), dtype="int32")
    emb = k.layers.ReversibleEmbedding(20, 4, tie_weights=False, logit_soft_cap=3.0)
    hidden = emb(inp)
    return k.Model(inp, emb(k.layers.Dense(4)(hidden), reverse=True))


def _pipeline(k):
    inp = k.Input((5,))
    pipe = k.layers.Pipeline([k.layers.Dense(4, activation="relu"), k.layers.Dropout(0.5),
                              k.layers.Dense(2)])
    return k.Model(inp, pipe(inp, training=False))


BUILDERS = {"einsum_gqa": _einsum_gqa, "conv_lstm": _conv_lstm, "normalization": _normalization,
            "pooling": _pooling, "reversible": _reversible, "pipeline": _pipeline}


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_keras_file_loads_in_plexus(family, tmp_path):
    km = BUILDERS[family](keras)
    _randomize(km)
    x = _inputs(km)
    expected = km.predict(x, verbose=0)
    km.save(tmp_path / "k.keras")
    pm = plexus.models.load_model(tmp_path / "k.keras")
    assert [l.name for l in pm.layers if not is_op(l)] == [l.name for l in km.layers]
    assert_close(pm.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`build\\(\\)` was called on layer 'pipeline'")  # Keras's own
@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_plexus_file_loads_in_keras(family, tmp_path):
    pm = BUILDERS[family](plexus)
    _randomize(pm)
    x = _inputs(pm)
    expected = pm.predict(x, verbose=0)
    pm.save(tmp_path / "p.keras")
    km = keras.saving.load_model(tmp_path / "p.keras")
    assert [l.name for l in km.layers] == [l.name for l in pm.layers if not is_op(l)]
    assert_close(km.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["einsum_gqa", "normalization", "pipeline"])
def test_weights_files_cross(family, tmp_path):
    km, pm = BUILDERS[family](keras), BUILDERS[family](plexus)
    _randomize(km)
    x = _inputs(km)
    km.save_weights(tmp_path / "k.weights.h5")
    pm.load_weights(tmp_path / "k.weights.h5")
    assert_close(pm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    _randomize(pm)
    pm.save_weights(tmp_path / "p.weights.h5")
    km.load_weights(tmp_path / "p.weights.h5")
    assert_close(km.predict(x, verbose=0), pm.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


CONFIG_CASES = [
    ("EinsumDense", dict(equation="...b,bc->...c", output_shape=3, bias_axes="c",
                         activation="relu"), (4,)),
    ("RMSNormalization", dict(axis=-1, epsilon=1e-4), (5,)),
    ("AdaptiveMaxPooling1D", dict(output_size=2), (6, 3)),
    ("ConvLSTM1D", dict(filters=2, kernel_size=2, return_sequences=True,
                        recurrent_activation="hard_sigmoid"), (3, 5, 2)),
    ("ReversibleEmbedding", dict(input_dim=9, output_dim=3, mask_zero=True), (4,)),
    ("SpectralNormalization", dict(layer=("Dense", dict(units=2)), power_iterations=3), (3,)),
]


@pytest.mark.parametrize("name,kwargs,shape", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_layer_config_crosses(name, kwargs, shape):
    kwargs = dict(kwargs)
    if "layer" in kwargs:
        inner, inner_kwargs = kwargs["layer"]
        kwargs["layer"] = getattr(plexus.layers, inner)(**inner_kwargs)
    dtype = "int32" if "Embedding" in name else "float32"
    layer = getattr(plexus.layers, name)(**kwargs)
    layer(plexus.Input(shape, dtype=dtype))
    config = json.loads(json.dumps(serialize_layer(layer)))
    again = deserialize_keras_object(config)
    assert type(again) is type(layer)
    assert json.dumps(serialize_layer(again)["config"], sort_keys=True) == \
        json.dumps(config["config"], sort_keys=True)
    klayer = keras.layers.deserialize(config)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 9, size=(2,) + shape) if dtype == "int32" else \
        rng.normal(size=(2,) + shape).astype("float32")
    klayer(x)
    assert [w.shape for w in klayer.get_weights()] == [w.shape for w in layer.get_weights()]
    klayer.set_weights(layer.get_weights())
    assert_close(layer(x), to_numpy(klayer(x)), rtol=1e-4, atol=1e-5)
