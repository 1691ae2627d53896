"""Names Keras keeps at the top level (`keras.Metric`, `keras.remat`, `keras.version()`)."""
import keras
import numpy as np
import torch

import plexus
from tests.parity.oracle import assert_close


def test_base_classes_are_the_namespaces_ones():
    assert plexus.Metric is plexus.metrics.Metric
    assert plexus.Loss is plexus.losses.Loss
    assert plexus.Optimizer is plexus.optimizers.Optimizer
    assert plexus.Initializer is plexus.initializers.Initializer
    assert plexus.Regularizer is plexus.regularizers.Regularizer
    assert plexus.Quantizer is plexus.quantizers.Quantizer
    assert plexus.version() == plexus.__version__


def _chain(m):
    def f(x):
        for _ in range(3):
            x = m.ops.tanh(x) * 1.5 + x * 0.1
        return x
    return f


def test_remat_gives_keras_values_and_gradients():
    x = torch.linspace(-2, 2, 12).reshape(3, 4)
    xp, xk = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_p, out_k = plexus.remat(_chain(plexus))(xp), keras.remat(_chain(keras))(xk)
    assert_close(out_p.detach(), out_k.detach())
    out_p.square().sum().backward()
    out_k.square().sum().backward()
    assert_close(xp.grad, xk.grad)
    with torch.no_grad():
        assert_close(plexus.remat(_chain(plexus))(x), out_k.detach())


def test_remat_keeps_fewer_tensors_for_the_backward_pass():
    def saved(fn):
        count = [0]

        def pack(t):
            count[0] += 1
            return t
        x = torch.randn(3, 4, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x)
        return count[0]
    assert saved(plexus.remat(_chain(plexus))) < saved(_chain(plexus))  # only the input


def test_remat_in_a_layer_trains_like_without(tmp_path):
    class Block(plexus.layers.Layer):
        def __init__(self, use_remat, **kwargs):
            super().__init__(**kwargs)
            self.dense = plexus.layers.Dense(4)
            self.inner = plexus.remat(self.intermediate) if use_remat else self.intermediate

        def intermediate(self, x):
            return plexus.ops.relu(self.dense(x)) * 2.0

        def call(self, x):
            return self.inner(x)

    data = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    weights = []
    for use_remat in (True, False):
        plexus.utils.set_random_seed(3)
        inputs = plexus.Input((4,))
        model = plexus.Model(inputs, plexus.layers.Dense(1)(Block(use_remat)(inputs)))
        model.compile(plexus.optimizers.SGD(0.1), "mse")
        model.fit(data, data[:, :1], batch_size=8, epochs=2, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-6)
