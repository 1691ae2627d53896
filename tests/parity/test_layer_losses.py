"""`model.losses` (weight and activity regularization) against Keras's `model.losses`."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers, regularizers
from tests.parity.oracle import assert_close


def _reg(lib, kind, *args):
    mod = keras.regularizers if lib is keras else regularizers
    return {"l1": mod.L1, "l2": mod.L2, "l1_l2": mod.L1L2}[kind](*args)


def _dense_model(lib):
    L = lib.layers
    i = L.Input(shape=(5,))
    h = L.Dense(4, kernel_regularizer=_reg(lib, "l2", 0.01), bias_regularizer=_reg(lib, "l1", 0.1),
                activity_regularizer=_reg(lib, "l1_l2", 0.01, 0.02), name="d1")(i)
    h = L.ActivityRegularization(l1=0.01, l2=0.2)(h)
    o = L.Dense(2, kernel_regularizer=_reg(lib, "l1_l2", 0.01, 0.02))(h)
    return lib.Model(i, o), (3, 5)


def _conv_model(lib):
    L = lib.layers
    i = L.Input(shape=(6, 6, 2))
    h = L.Conv2D(3, 3, kernel_regularizer=_reg(lib, "l2", 0.05),
                 activity_regularizer=_reg(lib, "l2", 0.001))(i)
    h = L.BatchNormalization(gamma_regularizer=_reg(lib, "l2", 0.3),
                             beta_regularizer=_reg(lib, "l1", 0.2))(h)
    h = L.PReLU(alpha_regularizer=_reg(lib, "l1", 0.5))(h)
    h = L.Conv1D(2, 2, kernel_regularizer=_reg(lib, "l1", 0.01))(L.Reshape((16, 3))(h))
    return lib.Model(i, h), (2, 6, 6, 2)


def _embedding_model(lib):
    L = lib.layers
    i = L.Input(shape=(4,), dtype="int32")
    h = L.Embedding(10, 3, embeddings_regularizer=_reg(lib, "l2", 0.1))(i)
    h = L.LayerNormalization(gamma_regularizer=_reg(lib, "l2", 0.2))(h)
    return lib.Model(i, h), (2, 4)


def _nested_model(lib):
    inner, shape = _dense_model(lib)
    L = lib.layers
    i = L.Input(shape=(5,))
    o = L.Dense(1, kernel_regularizer=_reg(lib, "l2", 0.3), activity_regularizer=_reg(lib, "l1", 1.0))(
        inner(i))
    return lib.Model(i, o), shape


def _sequential_model(lib):
    L = lib.layers
    model = lib.Sequential([L.Input(shape=(3,)), L.Dense(4, kernel_regularizer=_reg(lib, "l2", 0.1)),
                            L.ActivityRegularization(l2=0.5), L.Dense(2)])
    return model, (2, 3)


MODELS = [("dense", _dense_model), ("conv_bn_prelu", _conv_model),
          ("embedding_layernorm", _embedding_model), ("nested", _nested_model),
          ("sequential", _sequential_model)]


def _input(shape, int_input):
    if int_input:
        return np.random.randint(0, 10, size=shape)
    return np.random.randn(*shape).astype("float32")


def _values(losses):
    return sorted(float(v.detach()) for v in losses)


@pytest.mark.parametrize("case,make", MODELS, ids=[m[0] for m in MODELS])
def test_losses_match_keras(case, make):
    mk, shape = make(keras)
    mp, _ = make(plexus)
    weights = [np.random.uniform(0.5, 1.5, w.shape).astype("float32") * np.sign(
        np.random.randn(*w.shape)).astype("float32") for w in mk.get_weights()]
    mk.set_weights(weights)
    mp.set_weights(weights)
    x = _input(shape, case.startswith("embedding"))
    # before any call: weight penalties only
    assert_close(sorted(_values(mp.losses)), sorted(_values(mk.losses)), rtol=1e-5)
    mk(x)
    mp(x)
    assert len(mp.losses) == len(mk.losses)
    np.testing.assert_allclose(_values(mp.losses), _values(mk.losses), rtol=1e-5, atol=1e-7)
    # a second call replaces the activity losses instead of accumulating them
    x2 = _input(shape, case.startswith("embedding"))
    mk(x2)
    mp(x2)
    np.testing.assert_allclose(_values(mp.losses), _values(mk.losses), rtol=1e-5, atol=1e-7)


def test_loss_gradients_match_keras():
    mk, shape = _conv_model(keras)
    mp, _ = _conv_model(plexus)
    mp.set_weights(mk.get_weights())
    x = np.random.randn(*shape).astype("float32")
    mk(x)
    mp.train()
    mp(x)
    grads_p = torch.autograd.grad(sum(mp.losses), mp.trainable_weights, allow_unused=True)
    mk_vars = [v.value for v in mk.trainable_weights]
    grads_k = torch.autograd.grad(sum(mk.losses), mk_vars, allow_unused=True)
    entry = {id(p): w for (layer, w) in mp._weight_entries() for p in [getattr(layer, w.attr)]}
    assert len(grads_p) == len(grads_k)
    # compare in Keras layout (conv kernels are stored in torch's layout)
    for (gp, p), v, gk in zip(zip(grads_p, mp.trainable_weights), mk_vars, grads_k):
        to_keras = entry[id(p)].to_keras
        gp_k = np.zeros(tuple(v.shape), "float32") if gp is None else to_keras(gp).numpy()
        gk_n = np.zeros(tuple(v.shape), "float32") if gk is None else gk.numpy()
        np.testing.assert_allclose(gp_k, gk_n, rtol=1e-4, atol=1e-6)


def test_frozen_layers_drop_weight_penalties_like_keras():
    mk, shape = _dense_model(keras)
    mp, _ = _dense_model(plexus)
    mp.set_weights(mk.get_weights())
    mk.get_layer("d1").trainable = False
    mp.get_layer("d1").trainable = False
    x = np.random.randn(*shape).astype("float32")
    mk(x)
    mp(x)
    np.testing.assert_allclose(_values(mp.losses), _values(mk.losses), rtol=1e-5)
    mp.trainable = False
    mk.trainable = False
    np.testing.assert_allclose(_values(mp.losses), _values(mk.losses), rtol=1e-5)


def test_layer_losses_direct_call_and_add_loss():
    dense = layers.Dense(2, activity_regularizer="l2")
    x = np.ones((4, 3), "float32")
    assert dense.losses == []
    y = dense(x)
    (loss,) = dense.losses
    assert_close(loss, 0.01 * (y ** 2).sum() / 4)

    class Penalized(layers.Layer):
        def call(self, inputs):
            self.add_loss(inputs.abs().mean())
            return inputs * 2

    inp = layers.Input(shape=(3,))
    model = plexus.Model(inp, Penalized()(inp))
    model(x)
    model(x * 3)
    assert len(model.losses) == 1
    assert_close(model.losses[0], 3.0)


def test_training_loss_with_regularization_backpropagates():
    mp, shape = _dense_model(plexus)
    mp.train()
    x = torch.randn(*shape)
    out = mp(x)
    total = out.pow(2).mean() + sum(mp.losses)
    total.backward()
    kernel = mp.get_layer("d1").kernel
    assert kernel.grad is not None and torch.isfinite(kernel.grad).all()
