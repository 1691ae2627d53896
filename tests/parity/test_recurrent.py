"""LSTM, GRU, SimpleRNN and RNN(cell) against Keras on copied weights: outputs, states,
gradients and masks."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close, to_numpy

KINDS = {"LSTM": (layers.LSTM, keras.layers.LSTM), "GRU": (layers.GRU, keras.layers.GRU),
         "SimpleRNN": (layers.SimpleRNN, keras.layers.SimpleRNN)}

CASES = [
    ("LSTM", {}), ("LSTM", {"return_sequences": True}),
    ("LSTM", {"return_state": True}), ("LSTM", {"go_backwards": True, "return_sequences": True}),
    ("LSTM", {"use_bias": False}), ("LSTM", {"unit_forget_bias": False}),
    ("LSTM", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
    ("GRU", {}), ("GRU", {"reset_after": False, "return_sequences": True}),
    ("GRU", {"return_state": True, "go_backwards": True}), ("GRU", {"use_bias": False}),
    ("GRU", {"reset_after": False, "return_state": True}),
    ("SimpleRNN", {}), ("SimpleRNN", {"activation": "relu", "return_sequences": True}),
    ("SimpleRNN", {"return_state": True, "go_backwards": True}),
    ("SimpleRNN", {"activation": "sigmoid", "use_bias": False}),
]


def _pair(kind, units=5, **kw):
    p_cls, k_cls = KINDS[kind]
    return p_cls(units, **kw), k_cls(units, **kw)


def _copy(p, k, x, **call_kw):
    """Build both layers and copy plexus's weights into Keras."""
    p(x, **call_kw)
    k(x, **call_kw)
    wp = p.get_weights()
    assert [w.shape for w in wp] == [w.shape for w in k.get_weights()]
    k.set_weights(wp)


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.mark.parametrize("kind,kw", CASES, ids=[f"{k}-{'-'.join(kw) or 'default'}" for k, kw in CASES])
def test_forward_matches_keras(kind, kw):
    x = np.random.randn(3, 6, 4).astype("float32")
    p, k = _pair(kind, **kw)
    _copy(p, k, x)
    assert_close(_as_list(p(x)), _as_list(k(x)))


def test_default_weights_and_param_counts_match_keras():
    for kind in KINDS:
        p, k = _pair(kind, units=10)
        x = np.zeros((1, 100, 1), "float32")
        p(x), k(x)
        assert p.count_params() == k.count_params()
    lstm = layers.LSTM(3)
    lstm(np.zeros((1, 2, 2), "float32"))
    bias = lstm.get_weights()[2]
    np.testing.assert_array_equal(bias, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    rec = lstm.get_weights()[1]  # orthogonal (3, 12): orthonormal rows
    np.testing.assert_allclose(rec @ rec.T, np.eye(3), atol=1e-5)


def _grads_keras(k, x, r):
    xt = torch.tensor(x, requires_grad=True)
    out = _as_list(k(xt))
    loss = sum((o * torch.tensor(rr)).sum() for o, rr in zip(out, r))
    loss.backward()
    return xt.grad.numpy(), [to_numpy(v.value.grad) for v in k.trainable_weights]


def _grads_plexus(p, x, r):
    xt = torch.tensor(x, requires_grad=True)
    out = _as_list(p(xt))
    loss = sum((o * torch.tensor(rr)).sum() for o, rr in zip(out, r))
    loss.backward()
    grads = [w.to_keras(getattr(layer, w.attr).grad) for layer, w in p._weight_entries()]
    return xt.grad.numpy(), grads


@pytest.mark.parametrize("kind,kw", [("LSTM", {"return_state": True, "return_sequences": True}),
                                     ("GRU", {"return_sequences": True}),
                                     ("GRU", {"reset_after": False}),
                                     ("SimpleRNN", {"go_backwards": True})])
def test_gradients_match_keras(kind, kw):
    x = np.random.randn(2, 5, 3).astype("float32")
    p, k = _pair(kind, units=4, **kw)
    _copy(p, k, x)
    r = [np.random.randn(*o.shape).astype("float32") for o in _as_list(p(x))]
    gx_p, gw_p = _grads_plexus(p, x, r)
    gx_k, gw_k = _grads_keras(k, x, r)
    assert_close(gx_p, gx_k)
    assert_close(gw_p, gw_k)


MASKS = {
    "right": [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]],
    "left": [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1]],
    "holes": [[1, 0, 1, 0, 1, 1], [0, 1, 1, 0, 0, 1], [1, 1, 1, 1, 1, 0]],
    "empty_row": [[1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 0, 0]],
}
MASK_CASES = [(kind, m, kw) for kind in KINDS for m in MASKS
              for kw in ({"return_sequences": True, "return_state": True},
                         {"go_backwards": True, "return_state": True},
                         {"go_backwards": True, "return_sequences": True}, {})]


@pytest.mark.parametrize("kind,mask_name,kw", MASK_CASES,
                         ids=[f"{k}-{m}-{'-'.join(kw)}" for k, m, kw in MASK_CASES])
def test_masks_match_keras(kind, mask_name, kw):
    x = np.random.randn(3, 6, 4).astype("float32")
    mask = np.array(MASKS[mask_name], dtype=bool)
    p, k = _pair(kind, **kw)
    _copy(p, k, x)
    out_p = p(x, mask=torch.tensor(mask))
    out_k = k(x, mask=mask)
    assert_close(_as_list(out_p), _as_list(out_k))


def test_masked_python_loop_matches_keras():
    x = np.random.randn(3, 6, 4).astype("float32")
    mask = np.array(MASKS["holes"], dtype=bool)
    p, k = _pair("GRU", reset_after=False, return_sequences=True)
    _copy(p, k, x)
    assert_close(p(x, mask=torch.tensor(mask)), k(x, mask=mask))


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_embedding_mask_zero_model_matches_keras(padding):
    ids = np.array([[3, 5, 2, 0, 0], [7, 1, 0, 0, 0], [4, 4, 4, 4, 9]])
    if padding == "pre":
        ids = np.array([np.roll(r, int((r == 0).sum())) for r in ids])

    def build(lib):
        inp = lib.Input(shape=(5,), dtype="int32")
        e = lib.layers.Embedding(10, 3, mask_zero=True)(inp)
        s = lib.layers.LSTM(4, return_sequences=True)(e)
        h = lib.layers.GRU(4)(s)
        return lib.Model(inp, h)

    mp, mk = build(plexus), build(keras)
    mk.set_weights(mp.get_weights())
    assert_close(mp(ids), mk(ids))


def test_gradients_with_mask_match_keras():
    x = np.random.randn(3, 6, 4).astype("float32")
    mask = np.array(MASKS["left"], dtype=bool)
    p, k = _pair("LSTM", units=4, return_sequences=True)
    _copy(p, k, x)
    r = np.random.randn(3, 6, 4).astype("float32")
    xt_p, xt_k = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (p(xt_p, mask=torch.tensor(mask)) * torch.tensor(r)).sum().backward()
    (k(xt_k, mask=torch.tensor(mask)) * torch.tensor(r)).sum().backward()
    assert_close(xt_p.grad, xt_k.grad)
    gw_p = [w.to_keras(getattr(l, w.attr).grad) for l, w in p._weight_entries()]
    assert_close(gw_p, [to_numpy(v.value.grad) for v in k.trainable_weights])


def test_initial_state_matches_keras():
    x = np.random.randn(2, 4, 3).astype("float32")
    h0, c0 = np.random.randn(2, 5).astype("float32"), np.random.randn(2, 5).astype("float32")
    p, k = _pair("LSTM", return_state=True)
    _copy(p, k, x)
    assert_close(_as_list(p(x, initial_state=[torch.tensor(h0), torch.tensor(c0)])),
                 _as_list(k(x, initial_state=[h0, c0])))


@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell", "SimpleRNNCell"])
def test_rnn_with_cell_matches_keras(cell):
    x = np.random.randn(2, 4, 3).astype("float32")
    p = layers.RNN(getattr(layers, cell)(5), return_sequences=True)
    k = keras.layers.RNN(getattr(keras.layers, cell)(5), return_sequences=True)
    _copy(p, k, x)
    assert_close(p(x), k(x))


def test_rnn_with_custom_cell():
    class MinimalCell(plexus.layers.Layer):
        state_size = 3

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

        def call(self, inputs, states):
            out = inputs @ self.kernel + states[0]
            return out, [out]

    layer = layers.RNN(MinimalCell(), return_sequences=True)
    x = torch.randn(2, 4, 2)
    y = layer(x)
    expected = torch.cumsum(x @ layer.cell.kernel, dim=1)
    assert_close(y, expected)


def test_symbolic_shapes_and_masks():
    inp = plexus.Input(shape=(10,))
    e = layers.Embedding(100, 8, mask_zero=True)(inp)
    seq, h, c = layers.LSTM(6, return_sequences=True, return_state=True)(e)
    assert seq.shape == (None, 10, 6) and h.shape == (None, 6) and c.shape == (None, 6)
    assert seq.has_mask
    out = layers.GRU(3)(seq)
    assert out.shape == (None, 3) and not out.has_mask


def test_dropout_is_active_only_in_training():
    x = torch.randn(4, 5, 3)
    layer = layers.LSTM(4, dropout=0.5, recurrent_dropout=0.5)
    a, b = layer(x), layer(x)
    assert_close(a, b)
    c = layer(x, training=True)
    assert not torch.allclose(a, c)
    c.sum().backward()  # the recurrent-dropout loop is differentiable
    assert layer.cell.kernel.grad is not None


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="stateful"):  # stateful layers need a fixed batch
        layers.LSTM(4, stateful=True)(plexus.Input(shape=(5, 3)))
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        layers.GRU(4)(plexus.Input(shape=(5,)))
    with pytest.raises(ValueError, match="positive integer"):
        layers.SimpleRNN(0)


def test_get_config_round_trip():
    layer = layers.GRU(7, reset_after=False, return_sequences=True, dropout=0.1, name="g")
    config = layer.get_config()
    assert config["units"] == 7 and config["reset_after"] is False
    assert config["return_sequences"] is True and config["name"] == "g"
    clone = layers.GRU.from_config(config)
    assert clone.reset_after is False and clone.dropout == 0.1
    keras_keys = set(keras.layers.GRU(7).get_config())
    assert keras_keys - {"use_cudnn"} <= set(config)


def test_masking_layer_feeds_recurrent_mask():
    x = np.random.randn(3, 5, 2).astype("float32")
    x[0, 3:] = 0.0
    x[2, :2] = 0.0

    def build(lib):
        inp = lib.Input(shape=(5, 2))
        m = lib.layers.Masking(mask_value=0.0)(inp)
        return lib.Model(inp, lib.layers.LSTM(3, return_sequences=True)(m))

    mp, mk = build(plexus), build(keras)
    mk.set_weights(mp.get_weights())
    assert_close(mp(x), mk(x))


def test_one_epoch_of_training_matches_keras():
    """fit() through a masked Embedding -> LSTM -> Dense model ends with Keras's weights."""
    def build(lib):
        inp = lib.Input(shape=(5,), dtype="int32")
        e = lib.layers.Embedding(12, 4, mask_zero=True)(inp)
        h = lib.layers.GRU(3, return_sequences=True)(e)
        h = lib.layers.LSTM(3)(h)
        return lib.Model(inp, lib.layers.Dense(1)(h))

    mp, mk = build(plexus), build(keras)
    mk.set_weights(mp.get_weights())
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 12, size=(8, 5))
    ids[::2, 3:] = 0  # half the batch right-padded
    ids[1::4, :2] = 0  # some left-padded
    y = rng.normal(size=(8, 1)).astype("float32")
    for m in (mp, mk):
        m.compile(optimizer="adam", loss="mse")
    hp = mp.fit(ids, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    hk = mk.fit(ids, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(hp.history["loss"], hk.history["loss"], rtol=1e-5)
    for a, b in zip(mp.get_weights(), mk.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-6)


def test_seq2seq_initial_state_from_graph_matches_keras():
    """Encoder states feed a decoder through `initial_state=` in a functional model."""
    def build(lib):
        enc_in, dec_in = lib.Input((None, 5)), lib.Input((None, 4))
        _, h, c = lib.layers.LSTM(6, return_state=True)(enc_in)
        dec = lib.layers.LSTM(6, return_sequences=True)(dec_in, initial_state=[h, c])
        _, gh = lib.layers.GRU(3, return_state=True)(dec_in)
        back = lib.layers.GRU(3, return_sequences=True, go_backwards=True)(enc_in, initial_state=gh)
        return lib.Model([enc_in, dec_in], [lib.layers.Dense(3, activation="softmax")(dec), back])

    mp, mk = build(plexus), build(keras)
    mk.set_weights(mp.get_weights())
    x = [np.random.randn(2, 7, 5).astype("float32"), np.random.randn(2, 3, 4).astype("float32")]
    assert_close(list(mp(x)), list(mk(x)))


@pytest.mark.parametrize("masked", [False, True])
def test_stacked_cells_match_keras(masked):
    x = np.random.randn(3, 6, 4).astype("float32")
    mask = np.array(MASKS["holes"], dtype=bool)
    p = layers.RNN([layers.LSTMCell(5), layers.GRUCell(3), layers.SimpleRNNCell(2)],
                   return_sequences=True, return_state=True)
    k = keras.layers.RNN([keras.layers.LSTMCell(5), keras.layers.GRUCell(3),
                          keras.layers.SimpleRNNCell(2)], return_sequences=True, return_state=True)
    _copy(p, k, x)
    kw_p = {"mask": torch.tensor(mask)} if masked else {}
    kw_k = {"mask": mask} if masked else {}
    out_p, out_k = p(x, **kw_p), k(x, **kw_k)
    flat = lambda o: [t for item in o for t in (item if isinstance(item, (list, tuple)) else [item])]  # noqa: E731
    assert_close(flat(out_p), flat(out_k))
    sym = layers.RNN([layers.LSTMCell(5), layers.GRUCell(3)], return_state=True)(
        plexus.Input((6, 4)))
    assert sym[0].shape == (None, 3) and [t.shape for t in sym[1]] == [(None, 5), (None, 5)]
    assert sym[2].shape == (None, 3)


def test_fused_kernel_under_torch_compile_is_one_opaque_call():
    """Compiled, an LSTM keeps its fused kernel (one `plexus::fused_rnn` op in the graph, no
    graph break) instead of being unrolled step by step, and gives the eager numbers."""
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")
    layer = plexus.layers.LSTM(4, return_sequences=True)
    x = torch.randn(2, 30, 3)
    ref = layer(x)
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    out = torch.compile(lambda t: layer(t) * 2, fullgraph=True, backend=backend)(x)
    torch.testing.assert_close(out, ref * 2)
    targets = [str(n.target) for n in graphs[0].graph.nodes if n.op == "call_function"]
    assert sum("fused_rnn" in t for t in targets) == 1
    assert not any("lstm_cell" in t or "sigmoid" in t for t in targets)  # not unrolled
