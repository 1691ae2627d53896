"""plexus.Variable: Keras's variable API on weights that stay torch parameters and buffers."""
import copy
import inspect
import io
import pickle

import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close, keras


def _paths(model):
    return [v.path for v in model.weights]


def test_paths_and_order_match_keras():
    def build(lib):
        class Block(lib.layers.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.inner = lib.layers.Dense(2)

            def build(self, input_shape):
                self.counter = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                               name="counter")
                self.scale = self.add_weight(shape=(2,), initializer="ones", name="scale")

            def call(self, x):
                return self.inner(x) * self.scale

        seq = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3),
                              lib.layers.BatchNormalization()])
        lazy = lib.Sequential([lib.layers.Dense(3)])
        lazy(np.zeros((1, 4), "float32"))
        inputs = lib.Input((3,))
        functional = lib.Model(inputs, Block()(lib.layers.Dense(3)(inputs)))
        block = functional.layers[-1]
        return [_paths(m) for m in (seq, lazy, functional)] + [[v.name for v in block.weights]]

    plexus.backend.clear_session(free_memory=False)
    keras.backend.clear_session(free_memory=False)
    assert build(plexus) == build(keras)


def test_variable_api_on_a_dense_kernel():
    dense = layers.Dense(3)
    dense.build((None, 4))
    k = dense.kernel
    assert isinstance(k, plexus.Variable) and isinstance(k, torch.nn.Parameter)
    assert k.value is k and k.name == "kernel" and k.path == "dense/kernel"
    assert k.shape == (4, 3) and k.trainable and k.dtype is torch.float32
    assert k.assign(np.ones((4, 3))) is k and float(dense.kernel.detach().sum()) == 12
    k.assign_add(np.full((4, 3), 2.0)).assign_sub(torch.ones(4, 3))
    np.testing.assert_array_equal(k.numpy(), np.full((4, 3), 2.0))  # trainable: numpy() works
    with torch.no_grad():
        dense.kernel.mul_(3)  # the torch side is the same object
    np.testing.assert_array_equal(dense.get_weights()[0], np.full((4, 3), 6.0))
    np.testing.assert_array_equal(np.asarray(k), k.numpy())
    assert k.assign(5.0).numpy().max() == 5
    with pytest.raises(ValueError, match=r"'dense/kernel'.*\(3, 4\).*\(4, 3\)"):
        k.assign(np.zeros((3, 4)))
    k.trainable = False
    assert not k.requires_grad and [w.name for w in dense.trainable_weights] == ["bias"]
    assert "Variable path=dense/kernel, shape=(4, 3), dtype=float32" in repr(k)


def test_value_grad_in_a_hand_written_loop():
    dense = layers.Dense(1, use_bias=False)
    x = torch.ones(2, 3)
    loss = dense(x).sum()
    loss.backward()
    assert torch.equal(dense.kernel.value.grad, torch.full((3, 1), 2.0))
    dense.kernel.assign_sub(dense.kernel.value.grad * 0.5)  # a plain SGD step, Keras style
    assert dense.kernel.grad is not None


def test_torch_layout_weights_speak_keras_layout():
    conv = layers.Conv2D(8, 3)
    conv.build((None, 5, 5, 2))
    k = conv.kernel
    assert k.shape == (8, 2, 3, 3) and k.keras_shape == (3, 3, 2, 8)  # torch's layout inside
    np.testing.assert_array_equal(k.numpy(), conv.get_weights()[0])
    values = np.random.RandomState(0).rand(3, 3, 2, 8).astype("float32")
    k.assign(values)
    np.testing.assert_array_equal(conv.get_weights()[0], values)
    k.assign(k.value * 2)  # a torch tensor of the stored layout is taken as it is
    np.testing.assert_allclose(k.numpy(), values * 2)
    with pytest.raises(ValueError, match="stored layout"):
        k.assign(np.zeros((8, 2, 3, 3)))
    lstm = layers.LSTM(4)
    lstm.build((None, 5, 3))
    kernels = [v for v in lstm.weights if v.name == "kernel"]
    assert kernels[0].numpy().shape == (3, 16)
    kk = keras.layers.LSTM(4)
    kk.build((None, 5, 3))
    kk.set_weights(lstm.get_weights())
    x = np.random.RandomState(1).rand(2, 5, 3).astype("float32")
    kernels[0].assign(kernels[0].numpy() + 0.5)
    kk.weights[0].assign(kk.weights[0].numpy() + 0.5)
    assert_close(lstm(x), kk(x))


def test_non_trainable_weights_are_buffers():
    bn = layers.BatchNormalization()
    bn.build((None, 3))
    assert [n for n, _ in bn.named_buffers()] == ["moving_mean", "moving_variance"]
    assert [n for n, _ in bn.named_parameters()] == ["gamma", "beta"]
    assert list(bn.state_dict()) == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert all(isinstance(v, plexus.Variable) for v in bn.weights)
    assert [v.name for v in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]
    bn.moving_mean.assign(np.ones(3))
    assert bn.get_weights()[2].tolist() == [1, 1, 1]
    bn.trainable = False  # frozen later: parameters with requires_grad off, as torch does
    assert [n for n, _ in bn.named_parameters()] == ["gamma", "beta"]
    assert not bn.gamma.requires_grad and len(bn.non_trainable_weights) == 4
    bn.trainable = True
    assert bn.gamma.requires_grad and not bn.moving_mean.requires_grad


def test_weight_order_is_keras_order():
    def make(lib):
        class L(lib.layers.Layer):
            def build(self, shape):
                self.a = self.add_weight(shape=(1,), name="a", trainable=False)
                self.b = self.add_weight(shape=(2,), name="b")
                self.c = self.add_weight(shape=(3,))  # unnamed: variable, variable_1, ...
                self.d = self.add_weight(shape=(4,))

            def call(self, x):
                return x

        layer = L()
        layer(np.zeros((1, 3), "float32"))
        return ([v.name for v in layer.weights], [v.path for v in layer.weights],
                [w.shape for w in layer.get_weights()])

    keras.backend.clear_session(free_memory=False)
    assert make(plexus) == make(keras)


def test_copies_pickles_and_dtype_moves_keep_variables():
    model = plexus.Sequential([plexus.Input((4,)), layers.Dense(3),
                               layers.BatchNormalization()])
    x = np.random.RandomState(0).rand(2, 4).astype("float32")
    expected = model(x)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model)),
                  torch.load(buf, weights_only=False)):
        assert [v.path for v in other.weights] == _paths(model)
        assert all(isinstance(v, plexus.Variable) for v in other.weights)
        assert [n for n, _ in other.named_buffers()] == [
            "batch_normalization.moving_mean", "batch_normalization.moving_variance"]
        assert_close(other(x), expected)
    mean = model.layers[1].moving_mean
    model.double()
    assert model.layers[1].moving_mean is mean and mean.dtype is torch.float64
    assert dict(model.named_buffers())["batch_normalization.moving_mean"] is mean
    model.float()
    state = {k: v.clone() + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state, assign=True)
    assert isinstance(model.layers[1].moving_mean, plexus.Variable)
    assert_close(model.layers[1].moving_mean, np.ones(3))


def test_torch_export_with_variables():
    model = plexus.Sequential([plexus.Input((4,)), layers.Dense(3),
                               layers.BatchNormalization()])
    x = torch.rand(2, 4)
    program = torch.export.export(model, (x,))
    assert list(program.graph_signature.buffers) == [
        "batch_normalization.moving_mean", "batch_normalization.moving_variance"]
    assert_close(program.module()(x), model(x))


def test_standalone_variables_and_attribute_tracking():
    v = plexus.Variable(np.zeros((2, 2)), name="counts")
    assert v.dtype is torch.float32 and v.trainable and v.path == "counts"
    v.assign_add(np.ones((2, 2)))
    assert v.numpy().sum() == 4
    assert plexus.Variable(initializer="ones", shape=(3,)).numpy().tolist() == [1, 1, 1]
    i = plexus.Variable(np.array([1, 2], "int32"))
    assert i.dtype is torch.int32 and not i.trainable
    with pytest.raises(ValueError, match="shape"):
        plexus.Variable("ones")
    with pytest.raises(ValueError, match=r"\(3,\).*shape=\(2,\)"):
        plexus.Variable(np.zeros(3), shape=(2,))
    with pytest.raises(ValueError, match="aggregation"):
        plexus.Variable(np.zeros(3), aggregation="max")

    class Counter(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.total = plexus.Variable(0.0, trainable=False, name="total")
            self.scale = plexus.Variable(np.ones(2), name="scale")

        def call(self, x):
            self.total.assign_add(1.0)
            return x * self.scale

    c = Counter()
    c(np.ones((1, 2)))
    assert [v.name for v in c.weights] == ["scale", "total"]
    assert [n for n, _ in c.named_buffers()] == ["total"] and float(c.total) == 1


def test_add_weight_takes_every_keras_argument():
    ours = inspect.signature(layers.Layer.add_weight).parameters
    theirs = inspect.signature(keras.layers.Layer.add_weight).parameters
    for name, p in theirs.items():
        if name in ("self", "args"):
            continue
        assert name in ours and ours[name].default == p.default, name

    class Scaled(layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],), initializer=lambda s, dtype: torch.full(
                s, 2.0, dtype=dtype), regularizer="l2", constraint="non_neg", autocast=False,
                aggregation="mean", name="w")

        def call(self, x):
            assert self.w.dtype is torch.float32  # not cast under mixed_bfloat16
            return x * self.w

    s = Scaled(dtype="mixed_bfloat16")
    s(torch.ones(1, 3))
    w = s.w
    assert w.autocast is False and w.aggregation == "mean" and w.numpy().tolist() == [2, 2, 2]
    assert w.regularizer is not None and w.constraint is not None
    assert abs(float(sum(s.losses).detach()) - 0.01 * 12) < 1e-6
    with pytest.raises(TypeError, match="unexpected keyword"):
        s.add_weight(shape=(1,), colour="red")


def test_overwrite_with_gradient():
    class Scale(layers.Layer):
        def build(self, shape):
            self.amax = self.add_weight(shape=(), initializer="zeros",
                                        overwrite_with_gradient=True, name="amax")

        def call(self, x):
            return x + 0.0 * self.amax + self.amax * 0.0 + x.abs().amax() * 0 + self.amax

    inputs = plexus.Input((2,))
    model = plexus.Model(inputs, Scale()(inputs))
    model.compile(plexus.optimizers.SGD(0.1), "mse")
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 2), "float32")
    model.train_on_batch(x, y)
    # loss = mean((1 + amax)^2) -> d/d amax = 2 * (1 + 0) = 2: the weight becomes 2, not -0.2
    assert abs(float(model.layers[-1].amax) - 2.0) < 1e-6
