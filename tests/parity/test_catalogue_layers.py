"""Adaptive pooling, RMSNormalization, SpectralNormalization, ReversibleEmbedding, Pipeline and
Wrapper against Keras on copied weights: outputs, gradients, training-mode updates."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close, to_numpy


def _copy_weights(p_layer, k_layer, scale=1.0, seed=0):
    """Same random weights in both layers (shapes and order must already agree)."""
    rng = np.random.default_rng(seed)
    wp, wk = p_layer.get_weights(), k_layer.get_weights()
    assert [w.shape for w in wp] == [tuple(w.shape) for w in wk]
    weights = [(rng.normal(size=w.shape) * scale).astype("float32") for w in wp]
    p_layer.set_weights(weights)
    k_layer.set_weights(weights)


def _grads(p_layer, k_layer, x, **kwargs):
    """Gradients of a random projection of each output, w.r.t. input and trainable weights."""
    xp, xk = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_p, out_k = p_layer(xp, **kwargs), k_layer(xk, **kwargs)
    up = torch.randn(out_p.shape)
    gp = torch.autograd.grad((out_p * up).sum(), [xp] + p_layer.trainable_weights)
    gk = torch.autograd.grad((out_k * up).sum(),
                             [xk] + [w.value for w in k_layer.trainable_weights])
    assert_close(list(gp), list(gk), atol=1e-4, rtol=1e-4)


POOL_CASES = [
    ("AdaptiveAveragePooling1D", dict(output_size=4), (2, 9, 3)),
    ("AdaptiveMaxPooling1D", dict(output_size=(3,)), (2, 10, 2)),
    ("AdaptiveAveragePooling2D", dict(output_size=(3, 2)), (2, 7, 5, 3)),
    ("AdaptiveMaxPooling2D", dict(output_size=4), (2, 9, 6, 2)),
    ("AdaptiveMaxPooling2D", dict(output_size=2, data_format="channels_first"), (2, 3, 5, 7)),
    ("AdaptiveAveragePooling3D", dict(output_size=(2, 3, 4)), (1, 5, 6, 7, 2)),
    ("AdaptiveMaxPooling3D", dict(output_size=3), (1, 4, 7, 6, 2)),
]


@pytest.mark.parametrize("name,kwargs,shape", POOL_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(POOL_CASES)])
def test_adaptive_pooling_matches_keras(name, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    p, k = getattr(layers, name)(**kwargs), getattr(keras.layers, name)(**kwargs)
    assert_close(p(x), k(x), atol=1e-6)
    _grads(p, k, x)
    symbolic = (None,) + shape[1:]
    assert p.compute_output_shape(symbolic) == tuple(k.compute_output_shape(symbolic))
    assert p(plexus.Input(shape[1:])).shape == symbolic[:1] + tuple(p(x).shape[1:])


def test_adaptive_pooling_bad_arguments():
    with pytest.raises(ValueError, match="output_size"):
        layers.AdaptiveAveragePooling2D((2, 2, 2))
    with pytest.raises(ValueError, match="4 dimensions"):
        layers.AdaptiveMaxPooling2D(2)(np.zeros((2, 5, 3), "float32"))


RMS_CASES = [({}, (3, 7)), ({"epsilon": 1e-3}, (2, 4, 6)), ({"axis": [2, 3]}, (2, 3, 4, 5))]


@pytest.mark.parametrize("kwargs,shape", RMS_CASES, ids=[str(c[0]) for c in RMS_CASES])
def test_rms_normalization_matches_keras(kwargs, shape):
    x = np.random.randn(*shape).astype("float32") * 3
    p, k = layers.RMSNormalization(**kwargs), keras.layers.RMSNormalization(**kwargs)
    p(x), k(x)
    _copy_weights(p, k)
    assert_close(p(x), k(x), atol=1e-5)
    _grads(p, k, x)
    assert [w.name for _, w in p._weight_entries()] == [w.name for w in k.weights]


def test_rms_normalization_over_a_middle_axis_matches_formula():
    # Keras's torch backend fails on a non-trailing axis (it hands it to F.rms_norm); the
    # reference is the defining formula.
    x = np.random.randn(2, 3, 4).astype("float32")
    p = layers.RMSNormalization(axis=1)
    p(x)
    scale = np.random.rand(3).astype("float32") + 0.5
    p.set_weights([scale])
    want = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-6) * scale[:, None]
    assert_close(p(x), want, atol=1e-5)
    with pytest.raises(ValueError, match=r"built for size \(3,\)"):
        p(np.zeros((2, 4, 4), "float32"))


def test_rms_normalization_mixed_precision():
    x = np.random.randn(4, 8).astype("float32")
    p = layers.RMSNormalization(dtype="mixed_bfloat16")
    out = p(x)
    assert out.dtype == torch.bfloat16 and p.scale.dtype == torch.float32
    assert_close(out.float(), layers.RMSNormalization()(x), atol=2e-2, rtol=2e-2)


SN_CASES = [("Dense", dict(units=4), (3, 5)), ("Conv2D", dict(filters=3, kernel_size=2),
                                                (2, 5, 5, 2)),
            ("Embedding", dict(input_dim=10, output_dim=4), (2, 3))]


@pytest.mark.parametrize("inner,kwargs,shape", SN_CASES, ids=[c[0] for c in SN_CASES])
def test_spectral_normalization_matches_keras(inner, kwargs, shape):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, shape) if inner == "Embedding" else \
        rng.normal(size=shape).astype("float32")
    p = layers.SpectralNormalization(getattr(layers, inner)(**kwargs), power_iterations=2)
    k = keras.layers.SpectralNormalization(getattr(keras.layers, inner)(**kwargs),
                                           power_iterations=2)
    p(x), k(x)
    _copy_weights(p, k)
    before = p.get_weights()[0].copy()
    assert_close(p(x), k(x), atol=1e-5)  # inference: the kernel as it is
    assert np.array_equal(p.get_weights()[0], before)
    for _ in range(3):  # training: the kernel is normalized in place, u carried over
        assert_close(p(x, training=True), k(x, training=True), atol=1e-5, rtol=1e-5)
        assert_close(p.get_weights(), [to_numpy(w) for w in k.weights], atol=1e-5, rtol=1e-5)
    matrix = p.get_weights()[0].reshape(-1, p.get_weights()[0].shape[-1])
    assert abs(np.linalg.svd(matrix, compute_uv=False)[0] - 1.0) < 0.05
    assert [w.shape for w in p.get_weights()] == [tuple(w.shape) for w in k.weights]
    assert [w.requires_grad for w in p.weights] == [w.trainable for w in k.weights]


def test_spectral_normalization_keeps_a_zero_kernel_and_needs_a_kernel():
    p = layers.SpectralNormalization(layers.Dense(3, kernel_initializer="zeros"))
    out = p(np.ones((2, 4), "float32"), training=True)
    assert torch.all(p.layer.kernel == 0) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="neither a `kernel` nor an `embeddings`"):
        layers.SpectralNormalization(layers.ReLU())(np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match="power_iterations"):
        layers.SpectralNormalization(layers.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="plexus layer to wrap"):
        layers.SpectralNormalization(torch.nn.Linear(2, 2))


def test_spectral_normalization_trains_in_fit():
    inp = plexus.Input((5,))
    sn = layers.SpectralNormalization(layers.Dense(3))
    model = plexus.Model(inp, layers.Dense(1)(sn(inp)))
    model.compile("sgd", "mse")
    x, y = np.random.randn(32, 5).astype("float32"), np.random.randn(32, 1).astype("float32")
    u0 = sn.vector_u.detach().clone()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not torch.equal(u0, sn.vector_u)  # updated in training steps
    kernel = sn.layer.kernel.detach().clone()
    model.predict(x, verbose=0)
    assert torch.equal(kernel, sn.layer.kernel)  # not at inference


REV_CASES = [{}, {"tie_weights": False}, {"logit_soft_cap": 2.0},
             {"reverse_dtype": "float16"}]


@pytest.mark.parametrize("kwargs", REV_CASES, ids=[str(c) for c in REV_CASES])
def test_reversible_embedding_matches_keras(kwargs):
    ids = np.random.randint(0, 10, (2, 5))
    hidden = np.random.randn(2, 5, 4).astype("float32")
    p, k = layers.ReversibleEmbedding(10, 4, **kwargs), \
        keras.layers.ReversibleEmbedding(10, 4, **kwargs)
    p(ids), k(ids)
    _copy_weights(p, k)
    assert_close(p(ids), k(ids))
    out_p, out_k = p(hidden, reverse=True), k(hidden, reverse=True)
    assert str(out_p.dtype).split(".")[-1] == str(to_numpy(out_k).dtype)
    assert_close(out_p.float(), to_numpy(out_k).astype("float32"), atol=1e-2 if kwargs.get(
        "reverse_dtype") else 1e-5)
    assert p.compute_output_shape((None, 5, 4), reverse=True) == (None, 5, 10)


def test_reversible_embedding_mask_only_on_the_way_in():
    inp = plexus.Input((5,), dtype="int32")
    emb = layers.ReversibleEmbedding(10, 4, mask_zero=True)
    hidden = emb(inp)
    logits = emb(hidden, reverse=True)
    assert hidden.has_mask and not logits.has_mask
    lstm = layers.LSTM(2)
    model = plexus.Model(inp, [lstm(hidden), logits])
    ids = np.array([[1, 2, 0, 0, 0]])
    masked, out_logits = model(ids)
    assert_close(masked, lstm(emb(ids[:, :2])), atol=1e-6)  # padded steps skipped
    assert tuple(out_logits.shape) == (1, 5, 10)


def test_pipeline_applies_layers_in_training_mode_when_called_alone():
    pipe = layers.Pipeline([layers.Dense(3), layers.Dropout(0.5), layers.Dense(2)])
    x = np.ones((64, 5), "float32")
    alone = pipe(x)
    assert torch.unique(alone, dim=0).shape[0] > 1  # dropout active: rows differ
    inp = plexus.Input((5,))
    model = plexus.Model(inp, pipe(inp))
    first, second = pipe.layers[0], pipe.layers[2]
    want = (torch.as_tensor(x) @ first.kernel + first.bias) @ second.kernel + second.bias
    assert_close(model.predict(x, verbose=0), want, atol=1e-5)  # inference in a model
    assert_close(pipe(x, training=False), want, atol=1e-5)
    assert [w.shape for w in pipe.get_weights()] == [(5, 3), (3,), (3, 2), (2,)]


def test_pipeline_matches_keras_and_passes_masks():
    kpipe = keras.layers.Pipeline([keras.layers.Dense(3, activation="relu"),
                                   keras.layers.Dense(2)])
    ppipe = layers.Pipeline([layers.Dense(3, activation="relu"), layers.Dense(2)])
    x = np.random.randn(4, 5).astype("float32")
    kpipe(x), ppipe(x)
    _copy_weights(ppipe, kpipe)
    assert_close(ppipe(x), kpipe(x), atol=1e-6)
    inp = plexus.Input((6,), dtype="int32")
    out = layers.Pipeline([layers.Embedding(10, 3, mask_zero=True), layers.Dense(4)])(inp)
    assert out.has_mask
    assert layers.LSTM(2)(out).shape == (None, 2)
    with pytest.raises(ValueError, match="list of plexus layers"):
        layers.Pipeline([torch.nn.Linear(2, 2)])


def test_wrapper_base_builds_and_serializes_its_layer():
    class Twice(layers.Wrapper):
        def call(self, x):
            return 2 * self.layer(x)

        def compute_output_shape(self, shape):
            return self.layer.compute_output_shape(shape)

    w = Twice(layers.Dense(3, name="inner"))
    out = w(np.ones((2, 4), "float32"))
    assert w.layer.built and tuple(out.shape) == (2, 3)
    config = w.get_config()
    assert config["layer"]["class_name"] == "Dense"
    again = Twice.from_config(config)
    assert isinstance(again.layer, layers.Dense) and again.layer.name == "inner"
    assert isinstance(layers.TimeDistributed(layers.Dense(2)), layers.Wrapper)
    with pytest.raises(ValueError, match="plexus layer to wrap"):
        layers.TimeDistributed("dense")


MIXED_CASES = [
    ("EinsumDense", lambda d: layers.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d",
                                                 dtype=d), (2, 3, 5)),
    ("GroupQueryAttention", lambda d: layers.GroupQueryAttention(2, 4, 2, dtype=d), (2, 3, 6)),
    ("AdaptiveAveragePooling2D", lambda d: layers.AdaptiveAveragePooling2D(2, dtype=d),
     (2, 5, 5, 3)),
    ("SpectralNormalization", lambda d: layers.SpectralNormalization(
        layers.Dense(3, dtype=d), dtype=d), (2, 5)),
    ("ReversibleEmbedding", lambda d: layers.ReversibleEmbedding(10, 4, dtype=d), (2, 5)),
]


@pytest.mark.parametrize("name,make,shape", MIXED_CASES, ids=[c[0] for c in MIXED_CASES])
def test_mixed_bfloat16_policy(name, make, shape):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, shape) if name == "ReversibleEmbedding" else \
        rng.normal(size=shape).astype("float32")
    mixed, plain = make("mixed_bfloat16"), make("float32")
    args = (x, x) if name == "GroupQueryAttention" else (x,)
    out = mixed(*args, training=True) if name == "SpectralNormalization" else mixed(*args)
    plain(*args)
    plain.set_weights(mixed.get_weights())
    assert out.dtype == torch.bfloat16
    assert all(w.dtype == torch.float32 for w in mixed.weights)
    assert_close(out.float(), plain(*args), atol=5e-2, rtol=5e-2)
