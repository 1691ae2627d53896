"""Normalization layers against Keras on copied weights: outputs, gradients, moving statistics."""
import keras
import numpy as np
import pytest
import torch

from plexus import layers
from tests.parity.oracle import assert_close, to_numpy


def _random_weights(layer):
    """Non-trivial weights (positive where they must be, e.g. variances)."""
    return [np.random.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()]


def _copy_and_compare(p_layer, k_layer, x, call_kwargs=None, atol=1e-5):
    call_kwargs = call_kwargs or {}
    p_layer(x), k_layer(x)  # build both
    weights = _random_weights(p_layer)
    p_layer.set_weights(weights)
    k_layer.set_weights(weights)
    out_p = p_layer(x, **call_kwargs)
    out_k = k_layer(x, **call_kwargs)
    assert_close(out_p, out_k, atol=atol, rtol=1e-4)
    return out_p, out_k


def _compare_gradients(p_layer, k_layer, x):
    """Gradients of a random projection of the output, w.r.t. the input and trainable weights."""
    xp, xk = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_p, out_k = p_layer(xp), k_layer(xk)
    upstream = torch.randn(out_p.shape)
    gp = torch.autograd.grad((out_p * upstream).sum(), [xp] + p_layer.trainable_weights)
    gk = torch.autograd.grad((out_k * upstream).sum(),
                             [xk] + [w.value for w in k_layer.trainable_weights])
    assert_close(list(gp), list(gk), atol=1e-4, rtol=1e-3)


NORM_CASES = [
    ("bn_last", "BatchNormalization", {}, (4, 3)),
    ("bn_image", "BatchNormalization", {}, (2, 3, 4, 5)),
    ("bn_axis1", "BatchNormalization", {"axis": 1}, (2, 3, 4, 5)),
    ("bn_axis2_3d", "BatchNormalization", {"axis": 2}, (3, 4, 5)),
    ("bn_no_center", "BatchNormalization", {"center": False, "epsilon": 1e-2}, (4, 6)),
    ("bn_no_scale", "BatchNormalization", {"scale": False, "momentum": 0.5}, (4, 6)),
    ("bn_5d", "BatchNormalization", {}, (2, 2, 3, 3, 4)),
    ("ln_last", "LayerNormalization", {}, (3, 7)),
    ("ln_seq", "LayerNormalization", {"epsilon": 1e-5}, (2, 4, 6)),
    ("ln_two_axes", "LayerNormalization", {"axis": [1, 2]}, (2, 3, 4)),
    ("ln_no_center", "LayerNormalization", {"center": False}, (2, 5)),
    ("ln_no_scale", "LayerNormalization", {"scale": False}, (2, 5)),
    ("ln_rms", "LayerNormalization", {"rms_scaling": True}, (2, 3, 5)),
    ("gn_default", "GroupNormalization", {"groups": 2}, (2, 3, 4, 6)),
    ("gn_axis1", "GroupNormalization", {"groups": 3, "axis": 1}, (2, 6, 5)),
    ("gn_instance", "GroupNormalization", {"groups": -1}, (2, 5, 4)),
    ("gn_one_group", "GroupNormalization", {"groups": 1, "center": False}, (2, 5, 4)),
    ("unit_last", "UnitNormalization", {}, (3, 5)),
    ("unit_axes", "UnitNormalization", {"axis": [1, 2]}, (2, 3, 4)),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,cls,kwargs,shape", NORM_CASES, ids=[c[0] for c in NORM_CASES])
def test_normalization_inference_matches_keras(case, cls, kwargs, shape):
    x = np.random.randn(*shape).astype("float32") * 2 + 0.5
    p, k = getattr(layers, cls)(**kwargs), getattr(keras.layers, cls)(**kwargs)
    _copy_and_compare(p, k, x)
    _compare_gradients(p, k, x)
    assert p.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:]
    assert [w.shape for w in p.get_weights()] == [tuple(w.shape) for w in k.weights]
    assert [w.name for _, w in p._weight_entries()] == [w.name for w in k.weights]


BN_TRAIN_CASES = [
    ("last", {}, (6, 4)),
    ("image", {"momentum": 0.9}, (3, 4, 5, 2)),
    ("axis1", {"axis": 1}, (3, 2, 4, 5)),
    ("no_center_scale", {"center": False, "scale": False}, (5, 3)),
    ("single_sample", {}, (1, 3)),
]


@pytest.mark.parametrize("case,kwargs,shape", BN_TRAIN_CASES, ids=[c[0] for c in BN_TRAIN_CASES])
def test_batchnorm_training_outputs_grads_and_moving_stats(case, kwargs, shape):
    x = np.random.randn(*shape).astype("float32") * 3 + 1
    p, k = layers.BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    p(x), k(x)
    weights = _random_weights(p)
    p.set_weights(weights)
    k.set_weights(weights)
    xp = torch.tensor(x, requires_grad=True)
    xk = torch.tensor(x, requires_grad=True)
    for _ in range(2):  # two steps: the moving statistics compound
        out_p, out_k = p(xp, training=True), k(xk, training=True)
        assert_close(out_p, out_k, atol=1e-4, rtol=1e-4)
        assert_close(p.get_weights(), [to_numpy(w) for w in k.weights], atol=1e-5, rtol=1e-5)
    upstream = torch.randn(out_p.shape)
    gp = torch.autograd.grad((out_p * upstream).sum(), [xp] + p.trainable_weights)
    gk = torch.autograd.grad((out_k * upstream).sum(),
                             [xk] + [w.value for w in k.trainable_weights])
    assert_close(list(gp), list(gk), atol=1e-4, rtol=1e-3)


def test_layernorm_non_trailing_axis_matches_formula():
    # Keras's torch backend fails on a non-trailing axis (it hands it to F.layer_norm), so the
    # reference here is the defining formula in NumPy.
    x = np.random.randn(2, 3, 4, 5).astype("float32")
    layer = layers.LayerNormalization(axis=1)
    layer(x)
    gamma, beta = _random_weights(layer)
    layer.set_weights([gamma, beta])
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    want = (x - mean) / np.sqrt(var + 1e-3) * gamma[:, None, None] + beta[:, None, None]
    assert_close(layer(x), want, atol=1e-5)


def test_batchnorm_biased_variance_in_moving_statistics():
    x = np.array([[0.0], [2.0]], dtype="float32")  # biased var 1, unbiased var 2
    layer = layers.BatchNormalization(momentum=0.0)
    layer(x, training=True)
    np.testing.assert_allclose(layer.get_weights()[2:], [[1.0], [1.0]], rtol=1e-6)


def test_batchnorm_inference_does_not_touch_moving_statistics():
    x = np.random.randn(4, 3).astype("float32")
    layer = layers.BatchNormalization()
    layer(x)
    before = layer.get_weights()
    layer(x, training=False)
    layer.train()
    layer.eval()
    assert_close(layer.get_weights(), before)


def test_batchnorm_follows_module_training_mode():
    x = np.random.randn(5, 3).astype("float32") * 4 + 2
    layer = layers.BatchNormalization()
    layer.train()
    y = layer(x).detach().numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)  # batch statistics
    assert not np.allclose(layer.get_weights()[2], 0)


def test_batchnorm_trainable_false_runs_in_inference_mode():
    x = np.random.randn(6, 3).astype("float32") * 2 + 1
    p, k = layers.BatchNormalization(), keras.layers.BatchNormalization()
    p(x), k(x)
    weights = _random_weights(p)
    p.set_weights(weights)
    k.set_weights(weights)
    p.trainable = False
    k.trainable = False
    assert_close(p(x, training=True), k(x, training=True))
    assert_close(p.get_weights(), weights)  # moving statistics untouched
    assert len(p.trainable_weights) == 0 and len(p.non_trainable_weights) == 4


def test_batchnorm_weight_order_and_trainability():
    layer = layers.BatchNormalization()
    layer(np.zeros((2, 3), "float32"))
    assert [w.name for _, w in layer._weight_entries()] == [
        "gamma", "beta", "moving_mean", "moving_variance"]
    assert len(layer.trainable_weights) == 2 and len(layer.non_trainable_weights) == 2
    assert layer.count_params() == 12


def test_batchnorm_masked_training_matches_keras():
    x = np.random.randn(3, 5, 4).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=bool)
    p, k = layers.BatchNormalization(), keras.layers.BatchNormalization()
    p(x), k(x)
    weights = _random_weights(p)
    p.set_weights(weights)
    k.set_weights(weights)
    out_p = p(x, training=True, mask=torch.tensor(mask))
    out_k = k(x, training=True, mask=keras.ops.convert_to_tensor(mask))
    assert_close(out_p, out_k, atol=1e-4)
    assert_close(p.get_weights(), [to_numpy(w) for w in k.weights])


def test_batchnorm_in_functional_model_uses_mode():
    inp = layers.Input(shape=(3,))
    from plexus import Model
    model = Model(inp, layers.BatchNormalization()(inp))
    x = np.random.randn(8, 3).astype("float32") * 3 + 5
    assert_close(model(x), x / np.sqrt(1 + 1e-3), atol=1e-4)
    model.train()
    y = model(x).detach().numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("cls,kwargs", [
    ("BatchNormalization", {"axis": 2, "momentum": 0.9, "epsilon": 1e-2, "center": False}),
    ("LayerNormalization", {"axis": -1, "epsilon": 1e-4, "scale": False}),
    ("GroupNormalization", {"groups": 4, "axis": -1, "epsilon": 1e-5}),
    ("UnitNormalization", {"axis": -1}),
])
def test_normalization_config_matches_keras(cls, kwargs):
    p, k = getattr(layers, cls)(**kwargs), getattr(keras.layers, cls)(**kwargs)
    cp, ck = p.get_config(), k.get_config()
    for key in ck:
        if key in ("dtype", "name"):
            continue
        assert key in cp, f"{cls} config lacks {key!r}"
        if "initializer" in key or "regularizer" in key or "constraint" in key:
            continue
        assert cp[key] == ck[key], f"{cls}.{key}: {cp[key]!r} vs {ck[key]!r}"
    assert type(p).from_config(cp).get_config() == cp


@pytest.mark.parametrize("make,shape,words", [
    (lambda: layers.BatchNormalization(axis=3), (2, 4, 5), ["axis 3", "out of range"]),
    (lambda: layers.BatchNormalization(axis=-4), (2, 4, 5), ["axis -4"]),
    (lambda: layers.LayerNormalization(axis=[1, 5]), (2, 4, 5), ["axis 5"]),
    (lambda: layers.GroupNormalization(groups=4), (2, 3, 6), ["6 channels", "groups=4"]),
    (lambda: layers.GroupNormalization(groups=8), (2, 3, 6), ["groups=8"]),
    (lambda: layers.UnitNormalization(axis=2), (2, 4), ["axis 2"]),
])
def test_normalization_bad_input_raises_naming_layer(make, shape, words):
    layer = make()
    with pytest.raises(ValueError) as err:
        layer(layers.Input(batch_shape=shape))
    msg = str(err.value)
    assert layer.name in msg
    for w in words:
        assert w in msg


def test_groupnorm_rejects_bad_groups_and_bn_rejects_renorm():
    with pytest.raises(ValueError, match="groups"):
        layers.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="renorm"):
        layers.BatchNormalization(renorm=True)


@pytest.mark.parametrize("cls,kwargs", [("BatchNormalization", {}), ("LayerNormalization", {}),
                                        ("GroupNormalization", {"groups": 3}),
                                        ("UnitNormalization", {})])
@pytest.mark.parametrize("dtype", [torch.int64, torch.float64, torch.float16])
def test_normalization_promotes_inputs_to_weight_dtype(cls, kwargs, dtype):
    x = (torch.arange(12).reshape(4, 3) % 5).to(dtype)
    p, k = getattr(layers, cls)(**kwargs), getattr(keras.layers, cls)(**kwargs)
    out = p(x)
    assert out.dtype == torch.float32
    assert_close(out, k(x.float().numpy()), atol=1e-5)
