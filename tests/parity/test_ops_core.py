"""plexus.ops by hand: dtype promotion, gradients, control flow, custom gradients, the ops
that return Python values, documented NumPy behaviour, errors, and ops inside layers."""
import itertools

import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import ops
from plexus.ops.dtypes import result_type

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "bfloat16", "float16", "float32",
          "float64", "complex64"]


def test_result_type_matches_keras_on_every_pair():
    kinds = DTYPES + [int, float]
    for a, b in itertools.product(kinds, kinds):
        try:
            expected = keras.backend.result_type(a, b)
        except ValueError:
            with pytest.raises(ValueError):
                result_type(a, b)
            continue
        assert result_type(a, b) == expected, (a, b)
    assert result_type("int32", "float16", int) == keras.backend.result_type("int32", "float16",
                                                                             int)
    assert result_type() == "float32"


def _k(x):
    return keras.ops.convert_to_numpy(x)


def test_numpy_and_python_inputs_give_torch_tensors():
    out = ops.add(np.ones((2, 3), "float32"), 1)
    assert isinstance(out, torch.Tensor) and out.dtype is torch.float32
    assert ops.add(1, 2).dtype is torch.int32 and ops.add(1.0, 2).dtype is torch.float32
    assert ops.mean(np.arange(4)).dtype is torch.float32
    assert torch.equal(ops.convert_to_tensor([[1, 2]]), torch.tensor([[1, 2]], dtype=torch.int32))
    for fn, args in [(ops.sum, (np.ones((2, 2), "int8"),)), (ops.sqrt, (np.arange(3),)),
                     (ops.where, (np.array([True, False]), 1, 2.5))]:
        assert ops.dtype(fn(*args)) == keras.backend.standardize_dtype(
            keras.ops.convert_to_tensor(getattr(keras.ops, fn.__name__)(*args)).dtype)


# A representative set: gradients of sum(op(x)) through autograd, against Keras's torch ops.
GRAD_CASES = [
    ("mean", lambda o, x: o.mean(x, axis=1)),
    ("softmax", lambda o, x: o.softmax(x) * o.arange(4, dtype="float32")),
    ("logsumexp", lambda o, x: o.logsumexp(x, axis=-1)),
    ("matmul", lambda o, x: o.matmul(x, o.transpose(x))),
    ("gelu", lambda o, x: o.gelu(x, approximate=False)),
    ("where", lambda o, x: o.where(x > 0, o.square(x), o.exp(x))),
    ("take", lambda o, x: o.take(x, np.array([0, 2, 2]), axis=1)),
    ("norm", lambda o, x: o.norm(x, axis=-1)),
    ("sort", lambda o, x: o.sort(x) * o.arange(4, dtype="float32")),
    ("layer_norm", lambda o, x: o.layer_normalization(x) * o.arange(4, dtype="float32")),
    ("max_pool", lambda o, x: o.max_pool(o.reshape(x, (1, 3, 4, 1)), 2, padding="same")),
    ("einsum", lambda o, x: o.einsum("ij,kj->ik", x, x)),
    ("cumprod", lambda o, x: o.cumprod(x, axis=1)),
    ("stft", lambda o, x: o.stft(o.reshape(x, (12,)), 4, 2, 4)[0]),
]


@pytest.mark.parametrize("name,fn", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_match_keras(name, fn):
    value = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    grads = []
    for lib in (ops, keras.ops):
        x = torch.tensor(value, requires_grad=True)
        out = fn(lib, x)
        torch.sum(out if isinstance(out, torch.Tensor) else out[0]).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-5)


def test_control_flow_matches_keras():
    x = np.arange(6, dtype="float32").reshape(3, 2)
    for lib in (ops,):
        assert float(lib.cond(True, lambda: 1.0 * 2, lambda: 0.0)) == 2.0
        assert int(lib.while_loop(lambda i: i < 10, lambda i: i + 3, 0)) == 12
        a, b = lib.while_loop(lambda a, b: a < 5, lambda a, b: (a + 1, b * 2), (0, 1))
        assert (int(a), int(b)) == (5, 32)
        assert int(lib.while_loop(lambda i: i < 100, lambda i: i + 1, 0,
                                  maximum_iterations=7)) == 7
        assert int(lib.fori_loop(0, 5, lambda i, v: v + i, 0)) == 10
    carry, ys = ops.scan(lambda c, v: (c + v, c * v), ops.zeros((2,)), x)
    kc, kys = keras.ops.scan(lambda c, v: (c + v, c * v), keras.ops.zeros((2,)), x)
    np.testing.assert_allclose(carry, _k(kc))
    np.testing.assert_allclose(ys, _k(kys))
    carry, _ = ops.scan(lambda c, v: (c + v, None), ops.zeros((2,)), x, reverse=True)
    np.testing.assert_allclose(carry, x.sum(0))
    np.testing.assert_allclose(ops.associative_scan(ops.add, x, axis=0), np.cumsum(x, 0))
    np.testing.assert_allclose(ops.associative_scan(ops.add, x, reverse=True, axis=1),
                               _k(keras.ops.associative_scan(keras.ops.add, x, reverse=True,
                                                             axis=1)))
    np.testing.assert_allclose(ops.map(lambda v: v * 2, x), x * 2)
    np.testing.assert_allclose(ops.vectorized_map(lambda v: ops.sum(v), x), x.sum(1))
    branches = [lambda v: v + 1, lambda v: v * 10]
    np.testing.assert_allclose(ops.switch(1, branches, x), x * 10)
    np.testing.assert_allclose(ops.switch(7, branches, x), x * 10)  # clamped, as Keras


def test_custom_gradient_and_stop_gradient():
    @ops.custom_gradient
    def log1pexp(x):
        e = ops.exp(x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.multiply(upstream, 1.0 - 1.0 / ops.add(1, e))
        return ops.log(1 + e), grad

    x = torch.tensor([0.0, 100.0], requires_grad=True)
    y = log1pexp(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 1.0])  # autograd alone gives nan at 100
    w = torch.ones(2, requires_grad=True)
    (ops.stop_gradient(w) * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 1.0])


def test_vectorize_and_jvp():
    f = ops.vectorize(lambda a, b: a * b + 1)
    np.testing.assert_allclose(f(np.ones((2, 3), "float32"), np.arange(3, dtype="float32")),
                               np.arange(3) + np.ones((2, 3)))
    dot = ops.vectorize(lambda a, b: ops.sum(a * b), signature="(n),(n)->()")
    np.testing.assert_allclose(dot(np.ones((4, 3), "float32"), np.ones((4, 3), "float32")),
                               np.full(4, 3.0))
    out, tangent = ops.linalg.jvp(lambda v: v ** 2, (torch.tensor([3.0]),), (torch.tensor([1.0]),))
    assert float(out) == 9.0 and float(tangent) == 6.0


def test_python_valued_ops():
    x = plexus.Input((3, 4))
    assert ops.shape(x) == (None, 3, 4) and ops.ndim(x) == 3 and ops.dtype(x) == "float32"
    t = torch.zeros(2, 5, dtype=torch.int32)
    assert ops.shape(t) == (2, 5) and ops.ndim(t) == 2 and ops.dtype(t) == "int32"
    assert ops.is_tensor(t) and not ops.is_tensor(np.zeros(2)) and not ops.is_tensor(x)
    arr = ops.convert_to_numpy(torch.ones(2, requires_grad=True))
    assert isinstance(arr, np.ndarray) and arr.tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="no data"):
        ops.convert_to_numpy(x)


def test_segment_reductions_by_hand():
    data = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    ids = torch.tensor([0, 0, 2])
    np.testing.assert_allclose(ops.segment_sum(data, ids), [[4, 6], [0, 0], [5, 6]])
    np.testing.assert_allclose(ops.segment_prod(data, ids), [[3, 8], [1, 1], [5, 6]])
    np.testing.assert_allclose(ops.segment_min(data, ids, num_segments=3)[[0, 2]],
                               [[1, 2], [5, 6]])
    assert ops.segment_max(data, ids)[1, 0] == torch.finfo(torch.float32).min
    np.testing.assert_allclose(ops.segment_sum(data, torch.tensor([0, -1, 1])), [[1, 2], [5, 6]])


def test_sparsemax_against_numpy_reference():
    def reference(z):
        s = np.sort(z)[::-1]
        k = np.arange(1, len(z) + 1)
        cum = np.cumsum(s)
        k_z = k[1 + k * s > cum][-1]
        return np.maximum(z - (cum[k_z - 1] - 1) / k_z, 0)
    x = np.random.default_rng(3).normal(size=(4, 6)).astype("float32")
    out = ops.sparsemax(x).numpy()
    np.testing.assert_allclose(out, np.stack([reference(r) for r in x]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


def test_numpy_behaviour_where_keras_differs():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(ops.pad(x, 1), np.pad(x, 1))
    np.testing.assert_allclose(ops.pad(x, ((1, 1), (2, 0)), mode="symmetric"),
                               np.pad(x, ((1, 1), (2, 0)), mode="symmetric"))
    w = np.array([[1, 2, 3], [4, 5, 6]], "float32")
    np.testing.assert_allclose(ops.average(x, weights=w), np.average(x, weights=w), rtol=1e-6)
    np.testing.assert_allclose(ops.cross(np.array([1.0, 2.0]), np.array([3.0, 4.0])),
                               np.cross([1.0, 2.0, 0.0], [3.0, 4.0, 0.0])[2])
    np.testing.assert_allclose(ops.repeat(x, [1, 2], axis=0), np.repeat(x, [1, 2], axis=0))


def test_symbolic_errors_name_the_op_arguments_and_shapes():
    a, b = plexus.Input((3,)), plexus.Input((4,))
    with pytest.raises(ValueError, match=r"ops.add.*x1 of shape \(None, 3\).*x2 of shape "
                                         r"\(None, 4\)"):
        ops.add(a, b)
    with pytest.raises(ValueError, match=r"ops.matmul.*x1 of shape \(None, 3\).*x2 of shape"):
        ops.matmul(a, plexus.KerasTensor((5, 2)))
    with pytest.raises(ValueError, match="ops.reshape"):
        ops.reshape(a, (-1, 7))
    with pytest.raises(ValueError, match="more than one size to infer"):
        ops.reshape(a, (ops.shape(a)[0], -1))
    assert ops.reshape(a, (ops.shape(a)[0], 3, 1)).shape == (None, 3, 1)
    with pytest.raises(ValueError, match="ops.conv.*kernel"):
        ops.conv(plexus.Input((8, 3)), np.zeros((3, 5, 4), "float32"))
    with pytest.raises(ValueError, match="ops.unstack.*unknown"):
        ops.unstack(plexus.Input((3,)), axis=0)
    with pytest.raises(TypeError, match="ops.mean"):
        ops.mean(a, axiss=1)
    with pytest.raises(TypeError, match="ops.trapezoid: argument 'x' is a setting"):
        ops.trapezoid(a, x=plexus.Input((3,)))


def test_operators_record_the_same_ops_as_the_functions():
    x, y = plexus.Input((3,)), plexus.Input((3,))
    pairs = [(x + 1, "Add"), (1 - x, "Subtract"), (x * y, "Multiply"), (x / 2, "TrueDivide"),
             (x // 2, "FloorDivide"), (x % 2, "Mod"), (x ** 2, "Power"), (-x, "Negative"),
             (abs(x), "Absolute"), (x < y, "Less"), (x >= 0, "GreaterEqual"),
             (x != y, "NotEqual"), ((x > 0) & (y > 0), "LogicalAnd"), (~(x > 0), "LogicalNot"),
             (x[:, 0], "GetItem"), (round(x), "Round"), (x @ np.ones((3, 2), "float32"), "Matmul")]
    for out, class_name in pairs:
        assert type(out.node.layer).__name__ == class_name
    assert type(ops.add(x, 1).node.layer) is type((x + 1).node.layer)
    assert (1 - x).node.args[0] == 1  # the constant keeps its place


def test_ops_between_layers_build_run_and_train():
    inp = plexus.Input((6,))
    h = plexus.layers.Dense(8)(inp)
    h = ops.reshape(h, (-1, 2, 4))
    h = ops.where(h > 0, h, 0.1 * h)
    h = ops.mean(h, axis=1) + ops.max(h, axis=1)
    out = plexus.layers.Dense(1)(ops.concatenate([h, ops.square(h)], axis=-1))
    model = plexus.Model(inp, out)
    assert model.output_shape == (None, 1)
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    y = x.sum(1, keepdims=True)
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


class _Scaled(plexus.layers.Layer):
    """A custom layer without compute_output_shape: its ops are traced for the shape."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        x = ops.softmax(x * self.w, axis=-1)
        return ops.stack([ops.sum(x, axis=-1), ops.max(x, axis=-1)], axis=-1)


def test_ops_inside_a_custom_layer_and_a_lambda():
    inp = plexus.Input((5,))
    out = _Scaled()(inp)
    assert out.shape == (None, 2)
    lam = plexus.layers.Lambda(lambda t: ops.expand_dims(ops.norm(t, axis=-1), -1))(out)
    assert lam.shape == (None, 1)
    images = plexus.Input((8, 8, 3))
    assert ops.image.elastic_transform(images, seed=1).shape == (None, 8, 8, 3)
    assert ops.image.resize(images, (4, 6)).shape == (None, 4, 6, 3)
    model = plexus.Model(inp, lam)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    s = torch.softmax(torch.from_numpy(x), -1)
    expected = torch.linalg.vector_norm(torch.stack([s.sum(-1), s.max(-1).values], -1), dim=-1)
    np.testing.assert_allclose(model(x).detach().numpy()[:, 0], expected.numpy(), rtol=1e-6)
