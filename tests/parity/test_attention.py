"""MultiHeadAttention, Attention, AdditiveAttention and Dot against Keras on copied weights."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close, to_numpy


def _mha_pair(**kw):
    return layers.MultiHeadAttention(**kw), keras.layers.MultiHeadAttention(**kw)


def _copy_mha(p, k, q, v, key=None):
    p(q, v, key=key)
    k(q, v, key=key)
    wp = p.get_weights()
    assert [w.shape for w in wp] == [tuple(w.shape) for w in k.get_weights()]
    k.set_weights(wp)


MHA_CASES = [
    dict(num_heads=2, key_dim=3),
    dict(num_heads=3, key_dim=2, value_dim=4, use_bias=False),
    dict(num_heads=2, key_dim=4, output_shape=6),
]


@pytest.mark.parametrize("kw", MHA_CASES, ids=["default", "value_dim-nobias", "output_shape"])
def test_mha_matches_keras(kw):
    q = np.random.randn(2, 4, 5).astype("float32")
    v = np.random.randn(2, 6, 7).astype("float32")
    key = np.random.randn(2, 6, 3).astype("float32")
    p, k = _mha_pair(**kw)
    _copy_mha(p, k, q, v, key)
    assert_close(p(q, v, key=key), k(q, v, key=key))
    out_p, s_p = p(q, v, key=key, return_attention_scores=True)
    out_k, s_k = k(q, v, key=key, return_attention_scores=True)
    assert_close([out_p, s_p], [out_k, s_k])
    assert tuple(s_p.shape) == (2, kw["num_heads"], 4, 6)


def test_mha_masks_match_keras():
    x = np.random.randn(2, 5, 4).astype("float32")
    p, k = _mha_pair(num_heads=2, key_dim=3)
    _copy_mha(p, k, x, x)
    am = np.random.rand(2, 5, 5) > 0.3
    am[:, :, 0] = True  # every query sees at least one key
    assert_close(p(x, x, attention_mask=torch.tensor(am)), k(x, x, attention_mask=am))
    assert_close(p(x, x, use_causal_mask=True), k(x, x, use_causal_mask=True))
    assert_close(p(x, x, attention_mask=torch.tensor(am), use_causal_mask=True,
                   return_attention_scores=True),
                 list(k(x, x, attention_mask=am, use_causal_mask=True,
                        return_attention_scores=True)))
    vm = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    assert_close(p(x, x, value_mask=torch.tensor(vm)), k(x, x, value_mask=vm))
    am[0, 2] = False  # a query that may attend nowhere: both code paths behave as Keras's
    assert_close(p(x, x, attention_mask=torch.tensor(am)), k(x, x, attention_mask=am))
    assert_close(list(p(x, x, attention_mask=torch.tensor(am), return_attention_scores=True)),
                 list(k(x, x, attention_mask=am, return_attention_scores=True)))


def test_mha_self_attention_gradients_match_keras():
    x = np.random.randn(2, 4, 6).astype("float32")
    p, k = _mha_pair(num_heads=2, key_dim=3)
    _copy_mha(p, k, x, x)
    r = torch.tensor(np.random.randn(2, 4, 6).astype("float32"))
    xp, xk = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (p(xp, xp, use_causal_mask=True) * r).sum().backward()
    (k(xk, xk, use_causal_mask=True) * r).sum().backward()
    assert_close(xp.grad, xk.grad)
    grads = [w.to_keras(getattr(l, w.attr).grad) for l, w in p._weight_entries()]
    assert_close(grads, [to_numpy(v.value.grad) for v in k.trainable_weights])


def test_mha_attention_axes_matches_keras():
    x = np.random.randn(2, 3, 4, 5).astype("float32")
    kw = dict(num_heads=2, key_dim=3, attention_axes=(1, 2), output_shape=(2, 3))
    p, k = _mha_pair(**kw)
    _copy_mha(p, k, x, x)
    assert_close(list(p(x, x, return_attention_scores=True)),
                 list(k(x, x, return_attention_scores=True)))
    kw = dict(num_heads=2, key_dim=3, attention_axes=2)
    p, k = _mha_pair(**kw)
    _copy_mha(p, k, x, x)
    assert_close(list(p(x, x, return_attention_scores=True)),
                 list(k(x, x, return_attention_scores=True)))


def test_mha_in_functional_model_with_embedding_mask():
    def build(lib):
        inp = lib.Input(shape=(6,), dtype="int32")
        e = lib.layers.Embedding(20, 8, mask_zero=True)(inp)
        a = lib.layers.MultiHeadAttention(num_heads=2, key_dim=4)(e, e)
        return lib.Model(inp, lib.layers.GlobalAveragePooling1D()(a))

    mp, mk = build(plexus), build(keras)
    assert len(mp.get_weights()) == len(mk.get_weights())
    mk.set_weights(mp.get_weights())
    ids = np.array([[3, 5, 2, 9, 0, 0], [1, 2, 3, 4, 5, 6], [0, 0, 7, 7, 1, 0]])
    # The embedding's mask reaches the attention as query_mask and value_mask.
    assert_close(mp(ids), mk(ids))


def test_mha_symbolic_shapes():
    q = plexus.Input(shape=(4, 8))
    v = plexus.Input(shape=(6, 5))
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=3)
    out, scores = mha(q, v, return_attention_scores=True)
    assert out.shape == (None, 4, 8) and scores.shape == (None, 2, 4, 6)
    assert mha.count_params() == (8 * 6 + 6) + 2 * (5 * 6 + 6) + (6 * 8 + 8)


@pytest.mark.parametrize("kw", [{}, {"use_scale": True}, {"score_mode": "concat"},
                                {"score_mode": "concat", "use_scale": True}])
def test_attention_matches_keras(kw):
    q = np.random.randn(2, 3, 4).astype("float32")
    v = np.random.randn(2, 5, 4).astype("float32")
    p, k = layers.Attention(**kw), keras.layers.Attention(**kw)
    p([q, v]), k([q, v])
    k.set_weights([w + 0.5 for w in p.get_weights()])
    p.set_weights(k.get_weights())
    assert_close(p([q, v]), k([q, v]))
    qm = np.array([[1, 1, 0], [1, 1, 1]], dtype=bool)
    vm = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], dtype=bool)
    assert_close(list(p([q, v, v * 2], mask=[torch.tensor(qm), torch.tensor(vm)],
                        return_attention_scores=True)),
                 list(k([q, v, v * 2], mask=[qm, vm], return_attention_scores=True)))
    assert_close(p([q, v], use_causal_mask=True), k([q, v], use_causal_mask=True))


def test_additive_attention_matches_keras():
    q = np.random.randn(2, 3, 4).astype("float32")
    v = np.random.randn(2, 5, 4).astype("float32")
    p, k = layers.AdditiveAttention(), keras.layers.AdditiveAttention()
    p([q, v]), k([q, v])
    k.set_weights(p.get_weights())
    vm = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], dtype=bool)
    assert_close(p([q, v], mask=[None, torch.tensor(vm)]), k([q, v], mask=[None, vm]))
    p2, k2 = layers.AdditiveAttention(use_scale=False), keras.layers.AdditiveAttention(use_scale=False)
    assert_close(p2([q, v]), k2([q, v]))


def test_attention_symbolic_and_mask_propagation():
    inp = plexus.Input(shape=(None,))
    e = layers.Embedding(10, 4, mask_zero=True)(inp)
    out = layers.Attention()([e, e])
    assert out.shape == (None, None, 4) and out.has_mask


@pytest.mark.parametrize("axes,shapes", [(1, [(3, 4), (3, 4)]), (-1, [(3, 4), (3, 4)]),
                                         ((2, 2), [(3, 5, 4), (3, 6, 4)]),
                                         ((1, 1), [(3, 5, 4), (3, 5, 2)]),
                                         ((2, 1), [(2, 3, 4), (2, 4, 5)])])
@pytest.mark.parametrize("normalize", [False, True])
def test_dot_matches_keras(axes, shapes, normalize):
    a, b = (np.random.randn(*s).astype("float32") for s in shapes)
    out_p = layers.Dot(axes=axes, normalize=normalize)([a, b])
    assert_close(out_p, keras.layers.Dot(axes=axes, normalize=normalize)([a, b]))
    sym = layers.Dot(axes=axes)([plexus.Input(shape=s[1:]) for s in shapes])
    assert sym.shape == (None,) + tuple(out_p.shape[1:])


def test_bad_attention_inputs():
    with pytest.raises(ValueError, match="score_mode"):
        layers.Attention(score_mode="general")
    with pytest.raises(ValueError, match="list"):
        layers.Attention()(plexus.Input(shape=(3, 4)))
    with pytest.raises(ValueError, match="must match"):
        layers.Dot(axes=1)([plexus.Input(shape=(3,)), plexus.Input(shape=(4,))])
    with pytest.raises(ValueError, match="positive integer"):
        layers.MultiHeadAttention(num_heads=0, key_dim=2)
