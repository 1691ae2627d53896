"""EinsumDense and GroupQueryAttention against Keras on copied weights: outputs, scores,
gradients, masks; and their bad inputs."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close


def _same_weights(p_layer, k_layer, seed=0):
    rng = np.random.default_rng(seed)
    wp, wk = p_layer.get_weights(), k_layer.get_weights()
    assert [w.shape for w in wp] == [tuple(w.shape) for w in wk]
    weights = [rng.normal(size=w.shape).astype("float32") for w in wp]
    p_layer.set_weights(weights)
    k_layer.set_weights(weights)


EINSUM_CASES = [
    ("ab,bc->ac", 4, "c", (3, 5)),
    ("abc,cd->abd", (None, 4), "d", (2, 3, 5)),
    ("abc,cde->abde", (None, 2, 3), "de", (2, 3, 5)),
    ("abc,cde->abde", (None, 2, 3), "e", (2, 3, 5)),
    ("abc,cde->abde", (None, 2, 3), None, (2, 3, 5)),
    ("abcd,cde->abe", (None, 3), "e", (2, 3, 4, 5)),
    ("...x,xy->...y", 4, "y", (2, 3, 5)),
    ("...b,bc->...c", 4, "c", (3, 5)),
    ("ab...,bc->ac...", (4,), "c", (2, 3, 5, 6)),
]


@pytest.mark.parametrize("equation,output_shape,bias_axes,shape", EINSUM_CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in EINSUM_CASES])
def test_einsum_dense_matches_keras(equation, output_shape, bias_axes, shape):
    x = np.random.randn(*shape).astype("float32")
    kwargs = dict(output_shape=output_shape, bias_axes=bias_axes, activation="tanh")
    p, k = layers.EinsumDense(equation, **kwargs), keras.layers.EinsumDense(equation, **kwargs)
    p(x), k(x)
    _same_weights(p, k)
    assert_close(p(x), k(x), atol=1e-5)
    xp, xk = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_p, out_k = p(xp), k(xk)
    up = torch.randn(out_p.shape)
    gp = torch.autograd.grad((out_p * up).sum(), [xp] + p.trainable_weights)
    gk = torch.autograd.grad((out_k * up).sum(), [xk] + [w.value for w in k.trainable_weights])
    assert_close(list(gp), list(gk), atol=1e-4, rtol=1e-4)
    assert p(plexus.Input(shape[1:])).shape[1:] == tuple(out_p.shape[1:])


def test_einsum_dense_shapes_where_keras_reports_less():
    # Keras leaves a None of output_shape unknown and lists the dimensions a left ellipsis
    # stands for in reverse order; plexus reports what the data will have.
    seq = layers.EinsumDense("abc,cd->abd", (None, 64), bias_axes="d")
    assert seq(plexus.Input((32, 128))).shape == (None, 32, 64)
    ell = layers.EinsumDense("...x,xy->...y", 64)
    assert ell(plexus.Input((5, 7, 128))).shape == (None, 5, 7, 64)
    assert tuple(ell(np.zeros((2, 5, 7, 128), "float32")).shape) == (2, 5, 7, 64)


def test_einsum_dense_initializer_fans_from_the_equation():
    # glorot_uniform over (dim, heads, head_dim) counts fan-in dim and fan-out heads*head_dim
    layer = layers.EinsumDense("abc,cde->abde", (None, 16, 64), bias_axes="de")
    layer.build((None, 8, 512))
    limit = np.sqrt(6.0 / (512 + 16 * 64))
    kernel = layer.get_weights()[0]
    assert kernel.shape == (512, 16, 64) and np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit


def test_einsum_dense_bad_arguments():
    with pytest.raises(ValueError, match="invalid equation"):
        layers.EinsumDense("ab->b", 3)(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="expects inputs of rank 3"):
        layers.EinsumDense("abc,cd->abd", (None, 4))(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="bias_axes"):
        layers.EinsumDense("ab,bc->ac", 4, bias_axes="x")(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="output_shape"):
        layers.EinsumDense("ab,bc->ac", (4, 5))(np.zeros((2, 3), "float32"))
    dense = layers.EinsumDense("ab,bc->ac", 4)
    dense(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="built with a kernel of shape"):
        dense(plexus.Input((5,)))
    with pytest.raises(ValueError, match="lora_rank"):
        layers.EinsumDense("ab,bc->ac", 4, lora_rank=2)


GQA_CASES = [
    dict(),
    dict(use_gate=True),
    dict(use_bias=False, num_key_value_heads=1),
    dict(dropout=0.1),
    dict(sliding_window=2),
]
CALLS = ["plain", "causal", "attention_mask", "scores", "value_mask"]


def _call_kwargs(kind, t, s):
    rng = np.random.default_rng(1)
    if kind == "causal":
        return {"use_causal_mask": True}
    if kind == "attention_mask":
        return {"attention_mask": rng.random((2, t, s)) > 0.3}
    if kind == "scores":
        return {"return_attention_scores": True, "use_causal_mask": True}
    if kind == "value_mask":
        return {"value_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)}
    return {}


@pytest.mark.parametrize("kwargs", GQA_CASES, ids=[str(c) for c in GQA_CASES])
def test_group_query_attention_matches_keras(kwargs):
    kwargs = {"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2, **kwargs}
    q = np.random.randn(2, 4, 6).astype("float32")
    v = np.random.randn(2, 5, 6).astype("float32")
    key = np.random.randn(2, 5, 7).astype("float32")
    p, k = layers.GroupQueryAttention(**kwargs), keras.layers.GroupQueryAttention(**kwargs)
    p(q, v, key=key), k(q, v, key=key)
    _same_weights(p, k)
    assert [w.name for _, w in p._weight_entries()] == [w.name for w in k.weights]
    for kind in CALLS:
        ckw = _call_kwargs(kind, 4, 5)
        assert_close(p(q, v, key=key, **ckw), k(q, v, key=key, **ckw), atol=1e-5, rtol=1e-4)
    qp = torch.tensor(q, requires_grad=True)
    qk = torch.tensor(q, requires_grad=True)
    out_p = p(qp, v, key=key, use_causal_mask=True)
    out_k = k(qk, v, key=key, use_causal_mask=True)
    gp = torch.autograd.grad(out_p.square().sum(), [qp] + p.trainable_weights)
    gk = torch.autograd.grad(out_k.square().sum(), [qk] + [w.value for w in k.trainable_weights])
    assert_close(list(gp), list(gk), atol=1e-4, rtol=1e-3)


def test_group_query_attention_in_a_model_with_masks_and_dropout():
    ids = plexus.Input((5,), dtype="int32")
    x = layers.Embedding(10, 8, mask_zero=True)(ids)
    gqa = layers.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2,
                                     dropout=0.5)
    out, scores = gqa(x, x, return_attention_scores=True)
    assert out.shape == (None, 5, 8) and scores.shape == (None, 4, 5, 5) and out.has_mask
    model = plexus.Model(ids, [out, scores])
    data = np.array([[3, 4, 5, 0, 0]])
    probs = model.predict(data, verbose=0)[1]
    assert np.allclose(probs[0, :, :3, 3:], 0) and np.allclose(probs[0, :, :3].sum(-1), 1)
    a = gqa(model.layers[1](data), training=True, value=model.layers[1](data))
    b = gqa(model.layers[1](data), training=False, value=model.layers[1](data))
    assert not torch.allclose(a, b)  # dropout only in training


def test_group_query_attention_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        layers.GroupQueryAttention(4, 6, 4)
    with pytest.raises(ValueError, match="sliding_window"):
        layers.GroupQueryAttention(4, 4, 2, sliding_window=0)
    with pytest.raises(ValueError, match="same feature size"):
        layers.GroupQueryAttention(4, 4, 2)(plexus.Input((3, 8)), plexus.Input((5, 6)))
    with pytest.raises(ValueError, match="dropout is not supported"):
        layers.GroupQueryAttention(4, 4, 2, dropout=0.1, flash_attention=True)
    flash = layers.GroupQueryAttention(4, 4, 2, flash_attention=True)
    plain = layers.GroupQueryAttention(4, 4, 2)
    x = np.random.randn(1, 3, 8).astype("float32")
    flash(x, x), plain(x, x)
    plain.set_weights(flash.get_weights())
    assert_close(flash(x, x), plain(x, x), atol=1e-5)  # torch's flash kernel runs on CPUs
    with pytest.raises(ValueError, match="flash_attention=True"):
        flash(x, x, return_attention_scores=True)
