"""ConvLSTM1D/2D/3D against Keras on copied weights: outputs, states, masks, gradients; the
dropout semantics (one mask per gate, fixed over time) and bad inputs."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close

CASES = [
    ("ConvLSTM2D", dict(filters=3, kernel_size=3), (2, 4, 6, 5, 2)),
    ("ConvLSTM2D", dict(filters=3, kernel_size=(2, 3), padding="same", return_sequences=True,
                        return_state=True), (2, 4, 6, 5, 2)),
    ("ConvLSTM2D", dict(filters=2, kernel_size=3, strides=2, go_backwards=True,
                        return_sequences=True), (2, 3, 7, 7, 2)),
    ("ConvLSTM2D", dict(filters=2, kernel_size=3, data_format="channels_first",
                        return_sequences=True, activation="relu"), (2, 3, 2, 7, 6)),
    ("ConvLSTM1D", dict(filters=2, kernel_size=2, dilation_rate=2, padding="same",
                        use_bias=False), (2, 5, 8, 3)),
    ("ConvLSTM3D", dict(filters=2, kernel_size=2, return_state=True), (2, 3, 4, 4, 4, 2)),
]


def _pair(name, kwargs, x):
    p, k = getattr(layers, name)(**kwargs), getattr(keras.layers, name)(**kwargs)
    p(x), k(x)
    rng = np.random.default_rng(0)
    wp = p.get_weights()
    assert [w.shape for w in wp] == [tuple(w.shape) for w in k.get_weights()]
    weights = [(rng.normal(size=w.shape) * 0.3).astype("float32") for w in wp]
    p.set_weights(weights)
    k.set_weights(weights)
    return p, k


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                          enumerate(CASES)])
def test_conv_lstm_matches_keras(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    p, k = _pair(name, kwargs, x)
    assert_close(p(x), k(x), atol=1e-5)
    symbolic = (None,) + shape[1:]
    want = k.compute_output_shape(symbolic)
    want = [tuple(s) for s in want] if kwargs.get("return_state") else tuple(want)
    assert p.compute_output_shape(symbolic) == want
    out = p(plexus.Input(shape[1:]))
    got = [t.shape for t in out] if kwargs.get("return_state") else out.shape
    assert got == want
    assert [w.name for _, w in p._weight_entries()] == [w.name for w in k.weights]


def test_conv_lstm_masks_initial_states_and_gradients_match_keras():
    kwargs = dict(filters=3, kernel_size=3, padding="same", return_sequences=True,
                  return_state=True)
    x = np.random.randn(2, 4, 5, 5, 2).astype("float32")
    p, k = _pair("ConvLSTM2D", kwargs, x)
    mask = np.ones((2, 4), bool)
    mask[0, 2:] = False
    mask[1, 0] = False
    init = [np.random.randn(2, 5, 5, 3).astype("float32") for _ in range(2)]
    assert_close(p(x, mask=mask, initial_state=init), k(x, mask=mask, initial_state=init),
                 atol=1e-5)
    xp, xk = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_p, out_k = p(xp, mask=mask)[0], k(xk, mask=mask)[0]
    gp = torch.autograd.grad(out_p.square().sum(), [xp] + p.trainable_weights)
    gk = torch.autograd.grad(out_k.square().sum(), [xk] + [w.value for w in k.trainable_weights])
    keras_layout = [w.to_keras(g) for (_, w), g in zip(p._weight_entries(), gp[1:])]
    assert_close([gp[0]] + keras_layout, list(gk), atol=1e-4, rtol=1e-3)


def test_conv_lstm_mask_from_the_graph():
    inp = plexus.Input((4, 5, 5, 2))
    masked = layers.Masking()(inp)
    out = layers.ConvLSTM2D(2, 3, return_sequences=True)(masked)
    assert out.has_mask
    model = plexus.Model(inp, out)
    x = np.random.randn(1, 4, 5, 5, 2).astype("float32")
    x[:, 2:] = 0.0  # masked steps repeat the last unmasked output
    y = model.predict(x, verbose=0)
    assert np.allclose(y[:, 2], y[:, 1]) and np.allclose(y[:, 3], y[:, 1])


def test_conv_lstm_dropout_masks_are_fixed_over_time():
    # Identical frames, no recurrent kernel and a closed forget gate: every step computes
    # the same thing, so outputs repeat over time exactly when each gate's input dropout
    # mask stays the same at every step.
    layer = layers.ConvLSTM2D(2, 3, padding="same", dropout=0.5, return_sequences=True,
                              recurrent_initializer="zeros", unit_forget_bias=False)
    frame = np.random.rand(3, 1, 6, 6, 2).astype("float32") + 0.5
    x = np.repeat(frame, 5, axis=1)
    layer(x)
    kernel, rec, bias = layer.get_weights()
    bias[2:4] = -50.0  # forget gate (i, f, c, o blocks of 2) closed
    layer.set_weights([kernel, rec, bias])
    trained = layer(x, training=True)
    assert torch.allclose(trained, trained[:, :1].expand_as(trained))
    inference = layer(x)
    assert not torch.allclose(trained, inference)
    layer.cell.recurrent_dropout = 0.5  # now also a (fixed) mask on the state per gate
    assert torch.isfinite(layer(x, training=True)).all()


def test_conv_lstm_trains_in_fit_and_runs_in_mixed_precision():
    inp = plexus.Input((3, 6, 6, 1))
    x = layers.ConvLSTM2D(2, 3, padding="same", dropout=0.2, recurrent_dropout=0.2)(inp)
    model = plexus.Model(inp, layers.Dense(1)(layers.Flatten()(x)))
    model.compile("adam", "mse")
    data = np.random.randn(8, 3, 6, 6, 1).astype("float32")
    hist = model.fit(data, np.zeros((8, 1), "float32"), epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    mixed = layers.ConvLSTM2D(2, 3, dtype="mixed_bfloat16")
    plain = layers.ConvLSTM2D(2, 3)
    out = mixed(data)
    plain(data)
    plain.set_weights(mixed.get_weights())
    assert out.dtype == torch.bfloat16
    assert_close(out.float(), plain(data), atol=5e-2, rtol=5e-2)


def test_conv_lstm_bad_inputs():
    with pytest.raises(ValueError, match="5 dimensions"):
        layers.ConvLSTM2D(2, 3)(np.zeros((2, 4, 5, 2), "float32"))
    with pytest.raises(ValueError, match="spatial sizes"):
        layers.ConvLSTM2D(2, 3)(plexus.Input((4, None, 5, 2)))
    with pytest.raises(ValueError, match="too small"):
        layers.ConvLSTM2D(2, 5)(np.zeros((1, 2, 3, 3, 1), "float32"))
    with pytest.raises(ValueError, match="stateful"):
        layers.ConvLSTM1D(2, 3, stateful=True)
    with pytest.raises(ValueError, match="filters"):
        layers.ConvLSTM3D(0, 3)
    layer = layers.ConvLSTM2D(2, 3)
    x = np.zeros((1, 2, 5, 5, 1), "float32")
    with pytest.raises(ValueError, match=r"each of shape \(1, 3, 3, 2\)"):
        layer(x, initial_state=[np.zeros((1, 5, 5, 2), "float32")] * 2)
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=[np.zeros((1, 3, 3, 2), "float32")])


def test_bidirectional_conv_lstm_matches_keras():
    x = np.random.randn(2, 3, 5, 5, 2).astype("float32")
    k = keras.layers.Bidirectional(keras.layers.ConvLSTM2D(2, 3, padding="same",
                                                           return_sequences=True))
    p = layers.Bidirectional(layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True))
    k(x), p(x)
    p.set_weights(k.get_weights())
    assert_close(p(x), k(x), atol=1e-5)
    assert p(plexus.Input((3, 5, 5, 2))).shape == (None, 3, 5, 5, 4)


def test_cell_step_is_one_step_of_the_layer():
    layer = layers.ConvLSTM2D(3, 3, padding="same", return_state=True)
    x = np.random.randn(2, 1, 5, 5, 2).astype("float32")
    layer(x)
    h0, c0 = layer.cell.get_initial_state(2)
    assert tuple(h0.shape) == (2, 5, 5, 3) and not h0.any()
    h0, c0 = torch.randn(2, 5, 5, 3), torch.randn(2, 5, 5, 3)
    out, (h, c) = layer.cell.call(torch.tensor(x[:, 0]), [h0, c0])
    assert_close([out, h, c], layer(x, initial_state=[h0, c0]), atol=1e-6)
