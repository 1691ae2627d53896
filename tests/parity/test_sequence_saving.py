"""Recurrent, wrapper and attention layers travel through `.keras` files both ways with Keras."""
import keras
import numpy as np

import plexus
from tests.parity.oracle import assert_close


def _build(lib):
    i = lib.Input((6,), dtype="int32")
    e = lib.layers.Embedding(20, 5, mask_zero=True)(i)
    a = lib.layers.MultiHeadAttention(2, 3)(e, e)
    s = lib.layers.LSTM(4, return_sequences=True)(a)
    t = lib.layers.TimeDistributed(lib.layers.Dense(3))(s)
    b = lib.layers.Bidirectional(lib.layers.GRU(2, reset_after=False))(t)
    c = lib.layers.SimpleRNN(3, go_backwards=True)(t)
    return lib.Model(i, lib.layers.concatenate([b, c]))


IDS = np.array([[1, 2, 3, 0, 0, 0], [4, 5, 6, 7, 8, 9], [0, 0, 3, 3, 1, 2]])


def test_plexus_file_loads_in_keras(tmp_path):
    model = _build(plexus)
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert_close(model(IDS), restored(IDS))


def test_keras_file_loads_in_plexus(tmp_path):
    model = _build(keras)
    model.save(tmp_path / "m.keras")
    restored = plexus.models.load_model(tmp_path / "m.keras")
    assert_close(restored(IDS), model(IDS))
    assert [w.shape for w in restored.get_weights()] == [tuple(w.shape) for w in model.weights]


def test_rnn_with_cells_round_trips_with_keras(tmp_path):
    def build(lib):
        i = lib.Input((5, 3))
        stacked = lib.layers.RNN([lib.layers.LSTMCell(4), lib.layers.GRUCell(2)])(i)
        single = lib.layers.RNN(lib.layers.SimpleRNNCell(3), return_sequences=True)(i)
        return lib.Model(i, [stacked, single])

    x = np.random.randn(2, 5, 3).astype("float32")
    mp = build(plexus)
    mp.save(tmp_path / "p.keras")
    assert_close(list(mp(x)), list(keras.models.load_model(tmp_path / "p.keras")(x)))
    mk = build(keras)
    mk.save(tmp_path / "k.keras")
    assert_close(list(plexus.models.load_model(tmp_path / "k.keras")(x)), list(mk(x)))
