"""Files with the newer layers cross between Keras 3 and plexus: each saves, the other loads,
predictions agree; configs rebuild the same layers in both (the checks of test_saving_keras.py
and test_saving_configs.py, on these layers)."""
import keras
import pytest
import torch

import plexus
from tests.parity import test_saving_configs as saving_configs
from tests.parity import test_saving_keras as saving_keras


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


# The tests of test_saving_keras.py, run on these families.
@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_keras_file_loads_in_plexus(family, tmp_path, monkeypatch):
    monkeypatch.setitem(saving_keras.BUILDERS, family, BUILDERS[family])
    saving_keras.test_keras_saved_model_loads_in_plexus(family, tmp_path)


@pytest.mark.filterwarnings("ignore:`build\\(\\)` was called on layer 'pipeline'")  # Keras's own
@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_plexus_file_loads_in_keras(family, tmp_path, monkeypatch):
    monkeypatch.setitem(saving_keras.BUILDERS, family, BUILDERS[family])
    saving_keras.test_plexus_saved_model_loads_in_keras(family, tmp_path)


@pytest.mark.parametrize("family", ["einsum_gqa", "normalization", "pipeline"])
def test_weights_files_cross(family, tmp_path, monkeypatch):
    monkeypatch.setitem(saving_keras.BUILDERS, family, BUILDERS[family])
    saving_keras.test_weights_files_cross(family, tmp_path)


CONFIG_CASES = [
    ("EinsumDense", dict(equation="...b,bc->...c", output_shape=3, bias_axes="c",
                         activation="relu"), (4,)),
    ("RMSNormalization", dict(axis=-1, epsilon=1e-4), (5,)),
    ("AdaptiveMaxPooling1D", dict(output_size=2), (6, 3)),
    ("ConvLSTM1D", dict(filters=2, kernel_size=2, return_sequences=True,
                        recurrent_activation="hard_sigmoid"), (3, 5, 2)),
    ("SpectralNormalization", dict(layer=("Dense", dict(units=2)), power_iterations=3), (3,)),
]


@pytest.mark.parametrize("name,kwargs,shape", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_layer_config_crosses(name, kwargs, shape):
    saving_configs.test_layer_config_crosses(name, kwargs, shape)


def test_the_model_mode_wins_over_a_recorded_training_argument(tmp_path):
    # Keras records `training=False` with Dropout and SpectralNormalization calls and
    # `training=True` with Pipeline's; fit and predict still set the mode, as in Keras.
    inp = keras.Input((50,))
    x = keras.layers.Pipeline([keras.layers.Dropout(0.5)])(keras.layers.Dropout(0.5)(inp))
    keras.Model(inp, x).save(tmp_path / "drop.keras")
    inp = keras.Input((50,))
    keras.Model(inp, keras.layers.SpectralNormalization(keras.layers.Dense(50))(inp)).save(
        tmp_path / "sn.keras")
    ones = torch.ones((4, 50))
    dropping = plexus.models.load_model(tmp_path / "drop.keras")
    assert (dropping(ones, training=True) == 0).any()  # dropout in a training call
    assert not (dropping.predict(ones.numpy(), verbose=0) == 0).any()  # none in predict
    normalizing = plexus.models.load_model(tmp_path / "sn.keras")
    sn = normalizing.layers[-1]
    u0 = sn.vector_u.detach().clone()
    normalizing.predict(ones.numpy(), verbose=0)
    assert torch.equal(u0, sn.vector_u)
    normalizing(ones, training=True)
    assert not torch.equal(u0, sn.vector_u)  # normalized in a training call
    drop = plexus.Input((50,))
    forced = plexus.Model(drop, plexus.layers.Dropout(0.5)(drop, training=True))
    assert (forced(ones) == 0).any() and not (forced.predict(ones.numpy(), verbose=0) == 0).any()
