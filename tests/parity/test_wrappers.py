"""Bidirectional and TimeDistributed against Keras on copied weights."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close, to_numpy

MASK = np.array([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1]], dtype=bool)


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _pair(kind, merge_mode, **kw):
    p = layers.Bidirectional(getattr(layers, kind)(4, **kw), merge_mode=merge_mode)
    k = keras.layers.Bidirectional(getattr(keras.layers, kind)(4, **kw), merge_mode=merge_mode)
    return p, k


def _copy(p, k, x):
    p(x), k(x)
    wp = p.get_weights()
    assert [w.shape for w in wp] == [w.shape for w in k.get_weights()]
    k.set_weights(wp)


CASES = [("LSTM", mode, kw) for mode in ("concat", "sum", "mul", "ave", None)
         for kw in ({}, {"return_sequences": True})]
CASES += [("GRU", mode, kw) for mode in ("concat", None) for kw in ({}, {"return_sequences": True})]
CASES += [("SimpleRNN", "mul", {}), ("SimpleRNN", "ave", {"return_sequences": True})]
CASES += [("LSTM", "concat", {"return_state": True}),
          ("GRU", None, {"return_state": True, "return_sequences": True}),
          ("GRU", "sum", {"reset_after": False, "return_sequences": True}),
          ("LSTM", "ave", {"activation": "relu"})]


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("kind,mode,kw", CASES,
                         ids=[f"{k}-{m}-{'-'.join(kw) or 'last'}" for k, m, kw in CASES])
def test_bidirectional_matches_keras(kind, mode, kw, masked):
    x = np.random.randn(3, 6, 5).astype("float32")
    p, k = _pair(kind, mode, **kw)
    _copy(p, k, x)
    if masked:
        out_p, out_k = p(x, mask=torch.tensor(MASK)), k(x, mask=MASK)
    else:
        out_p, out_k = p(x), k(x)
    assert_close(_as_list(out_p), _as_list(out_k))


def test_bidirectional_names_weights_and_shapes():
    inp = plexus.Input(shape=(7, 3))
    bi = layers.Bidirectional(layers.LSTM(5, return_sequences=True))
    y = bi(inp)
    assert y.shape == (None, 7, 10)
    assert bi.forward_layer.name == "forward_lstm" and bi.backward_layer.name == "backward_lstm"
    assert bi.count_params() == 2 * 4 * (5 * (3 + 5) + 5)
    kbi = keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True))
    kbi.build((None, 7, 3))
    assert [w.shape for w in bi.get_weights()] == [tuple(w.shape) for w in kbi.weights]
    outs = layers.Bidirectional(layers.GRU(2, return_state=True), merge_mode=None)(inp)
    assert [t.shape for t in outs] == [(None, 2), (None, 2), (None, 2), (None, 2)]


def test_bidirectional_gradients_match_keras():
    x = np.random.randn(2, 5, 3).astype("float32")
    p, k = _pair("LSTM", "concat", return_sequences=True)
    _copy(p, k, x)
    r = torch.tensor(np.random.randn(2, 5, 8).astype("float32"))
    xp, xk = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (p(xp) * r).sum().backward()
    (k(xk) * r).sum().backward()
    assert_close(xp.grad, xk.grad)
    grads_p = [w.to_keras(getattr(l, w.attr).grad) for l, w in p._weight_entries()]
    assert_close(grads_p, [to_numpy(v.value.grad) for v in k.trainable_weights])


def test_bidirectional_with_backward_layer_and_initial_state():
    x = np.random.randn(2, 4, 3).astype("float32")
    states = [np.random.randn(2, 4).astype("float32") for _ in range(4)]
    p = layers.Bidirectional(layers.LSTM(4, return_sequences=True),
                             backward_layer=layers.LSTM(4, return_sequences=True, go_backwards=True))
    k = keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True),
        backward_layer=keras.layers.LSTM(4, return_sequences=True, go_backwards=True))
    _copy(p, k, x)
    assert_close(p(x, initial_state=[torch.tensor(s) for s in states]),
                 k(x, initial_state=states))


def test_bidirectional_in_masked_model_matches_keras():
    ids = np.array([[3, 5, 2, 0, 0], [0, 0, 7, 1, 8], [4, 4, 4, 4, 9]])

    def build(lib):
        inp = lib.Input(shape=(5,), dtype="int32")
        e = lib.layers.Embedding(10, 3, mask_zero=True)(inp)
        s = lib.layers.Bidirectional(lib.layers.LSTM(4, return_sequences=True))(e)
        h = lib.layers.Bidirectional(lib.layers.GRU(3), merge_mode="sum")(s)
        return lib.Model(inp, h)

    mp, mk = build(plexus), build(keras)
    mk.set_weights(mp.get_weights())
    assert_close(mp(ids), mk(ids))


def test_bidirectional_bad_arguments():
    with pytest.raises(ValueError, match="merge_mode"):
        layers.Bidirectional(layers.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="recurrent layer"):
        layers.Bidirectional(layers.Dense(3))
    with pytest.raises(ValueError, match="go_backwards"):
        layers.Bidirectional(layers.LSTM(3), backward_layer=layers.LSTM(3))


def test_time_distributed_dense_matches_keras():
    x = np.random.randn(2, 4, 6).astype("float32")
    p, k = layers.TimeDistributed(layers.Dense(3)), keras.layers.TimeDistributed(keras.layers.Dense(3))
    _copy(p, k, x)
    assert_close(p(x), k(x))
    assert plexus.layers.TimeDistributed(layers.Dense(3))(plexus.Input((4, 6))).shape == (None, 4, 3)


def test_time_distributed_conv2d_matches_keras():
    x = np.random.randn(2, 3, 6, 6, 2).astype("float32")
    p = layers.TimeDistributed(layers.Conv2D(4, 3, activation="relu"))
    k = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, activation="relu"))
    _copy(p, k, x)
    assert_close(p(x), k(x), atol=1e-5)
    y = layers.TimeDistributed(layers.Conv2D(4, 3))(plexus.Input((None, 6, 6, 2)))
    assert y.shape == (None, None, 4, 4, 4)


def test_time_distributed_passes_mask_on():
    inp = plexus.Input(shape=(None,))
    e = layers.Embedding(10, 3, mask_zero=True)(inp)
    d = layers.TimeDistributed(layers.Dense(4))(e)
    assert d.has_mask
    out = layers.LSTM(2)(d)
    model = plexus.Model(inp, out)
    ids = np.array([[1, 2, 0, 0, 0]])
    assert_close(model(ids), model(ids[:, :2]))


def test_time_distributed_bad_input():
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        layers.TimeDistributed(layers.Dense(2))(plexus.Input(shape=(4,)))
