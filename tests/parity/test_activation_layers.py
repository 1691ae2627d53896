"""Advanced activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax) against Keras."""
import keras
import numpy as np
import pytest
import torch

from plexus import layers
from tests.parity.oracle import assert_close, layer_parity

# Inputs include exact thresholds/caps so boundary handling is compared too.
_GRID = np.array([[-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 5.0, 6.0, 7.5]], dtype="float32")

ACT_CASES = [
    ("relu", "ReLU", {}),
    ("relu_cap", "ReLU", {"max_value": 6.0}),
    ("relu_cap_small", "ReLU", {"max_value": 1.5}),
    ("relu_slope", "ReLU", {"negative_slope": 0.1}),
    ("relu_threshold", "ReLU", {"threshold": 1.0}),
    ("relu_all", "ReLU", {"max_value": 5.0, "negative_slope": 0.2, "threshold": 0.5}),
    ("relu_slope_cap", "ReLU", {"max_value": 2.0, "negative_slope": 0.3}),
    ("leaky_default", "LeakyReLU", {}),
    ("leaky_slope", "LeakyReLU", {"negative_slope": 0.05}),
    ("elu", "ELU", {}),
    ("elu_alpha", "ELU", {"alpha": 0.4}),
    ("softmax", "Softmax", {}),
    ("softmax_axis1", "Softmax", {"axis": 1}),
    ("softmax_two_axes", "Softmax", {"axis": [1, 2]}),
]


@pytest.mark.parametrize("case,cls,kwargs", ACT_CASES, ids=[c[0] for c in ACT_CASES])
def test_activation_layers_match_keras(case, cls, kwargs):
    x = np.concatenate([np.tile(_GRID, (6, 1)), np.random.randn(6, 10).astype("float32") * 3])
    x = x.reshape(3, 4, 10)
    p, k = getattr(layers, cls)(**kwargs), getattr(keras.layers, cls)(**kwargs)
    assert_close(p(x), k(x))
    assert p.compute_output_shape((None, 4, 10)) == (None, 4, 10)
    cp, ck = p.get_config(), k.get_config()
    for key in set(ck) - {"name", "dtype"}:
        assert cp[key] == ck[key], key
    # gradients
    xp, xk = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    up = torch.randn(x.shape)
    (gp,) = torch.autograd.grad((p(xp) * up).sum(), xp)
    (gk,) = torch.autograd.grad((k(xk) * up).sum(), xk)
    # at exact kinks the subgradient choice may differ; compare away from them
    off_kink = ~np.isin(x, [0.0, 0.5, 1.0, 1.5, 2.0, 5.0, 6.0])
    assert_close(gp.numpy()[off_kink], gk.numpy()[off_kink], atol=1e-5)


PRELU_CASES = [
    ("dense", {}, (3, 5)),
    ("image", {}, (2, 3, 4, 2)),
    ("shared_spatial", {"shared_axes": [1, 2]}, (2, 3, 4, 2)),
    ("shared_int", {"shared_axes": 1}, (2, 3, 4)),
]


@pytest.mark.parametrize("case,kwargs,shape", PRELU_CASES, ids=[c[0] for c in PRELU_CASES])
def test_prelu_matches_keras(case, kwargs, shape):
    x = np.random.randn(*shape).astype("float32")
    p = layers.PReLU(alpha_initializer="random_uniform", **kwargs)
    k = keras.layers.PReLU(**kwargs)
    layer_parity(p, k, x)
    xp, xk = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    up = torch.randn(x.shape)
    gp = torch.autograd.grad((p(xp) * up).sum(), [xp, p.alpha])
    gk = torch.autograd.grad((k(xk) * up).sum(), [xk, k.alpha.value])
    assert_close(list(gp), list(gk), atol=1e-5)
    assert p.get_weights()[0].shape == tuple(k.weights[0].shape)
    assert p.get_config()["shared_axes"] == k.get_config()["shared_axes"]


def test_softmax_mask_matches_keras():
    x = np.random.randn(2, 3, 5).astype("float32")
    mask = np.random.rand(2, 3, 5) > 0.4
    mask[:, :, 0] = True
    assert_close(layers.Softmax()(x, mask=torch.tensor(mask)),
                 keras.layers.Softmax()(x, mask=keras.ops.convert_to_tensor(mask)))
    row_mask = np.array([True, False, True, True, False])  # broadcasts over leading axes
    assert_close(layers.Softmax()(x, mask=torch.tensor(row_mask)),
                 keras.layers.Softmax()(x, mask=keras.ops.convert_to_tensor(row_mask)))


def test_softmax_bad_mask_names_layer():
    layer = layers.Softmax()
    with pytest.raises(ValueError, match=layer.name):
        layer(np.zeros((2, 3, 5), "float32"), mask=torch.ones(2, 4, dtype=torch.bool))


@pytest.mark.parametrize("make", [
    lambda: layers.ReLU(max_value=-1.0),
    lambda: layers.ReLU(negative_slope=-0.1),
    lambda: layers.ReLU(threshold=None),
    lambda: layers.LeakyReLU(negative_slope=-1),
])
def test_activation_layers_reject_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_prelu_bad_shared_axis_and_names():
    layer = layers.PReLU(shared_axes=[3])
    with pytest.raises(ValueError, match=layer.name):
        layer(layers.Input(shape=(4, 5)))
    assert layers.ReLU().name.startswith("re_lu")
    assert layers.LeakyReLU(alpha=0.2).negative_slope == 0.2
