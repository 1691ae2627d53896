"""Mixed precision: dtype policies, layers under them, loss scaling, files; Keras 3 (torch
backend) is the oracle."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L
from plexus import mixed_precision as mp
from tests.parity.oracle import assert_close, to_numpy

_NAMES = ["float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16"]
_TOL = {"mixed_bfloat16": dict(rtol=3e-2, atol=3e-2), "mixed_float16": dict(rtol=3e-3, atol=3e-3)}


@pytest.fixture(autouse=True)
def _float32_everywhere_after():
    yield
    mp.set_global_policy("float32")
    keras.mixed_precision.set_global_policy("float32")


# ------------------------------------------------------------------ policies
@pytest.mark.parametrize("name", _NAMES)
def test_policy_properties_match_keras(name):
    p, k = mp.Policy(name), keras.mixed_precision.Policy(name)
    assert (p.name, p.compute_dtype, p.variable_dtype) == (k.name, k.compute_dtype,
                                                          k.variable_dtype)
    assert repr(p) == repr(k)
    assert mp.DTypePolicy is mp.Policy and plexus.dtype_policies.DTypePolicy is mp.Policy
    assert plexus.DTypePolicy is mp.Policy


@pytest.mark.parametrize("bad", ["mixed_float32", "float", "fp16", "complex64"])
def test_bad_policy_names_are_value_errors_listing_the_valid_ones(bad):
    if bad == "float":  # torch-style alias: plexus reads it as float32, as its dtypes do
        assert mp.Policy(bad).compute_dtype == "float32"
        return
    with pytest.raises(ValueError, match="mixed_bfloat16") as e:
        mp.Policy(bad)
    assert repr(bad) in str(e.value)
    with pytest.raises(ValueError, match="Valid policies"):
        mp.set_global_policy(bad)
    with pytest.raises(ValueError, match="Valid policies"):
        L.Dense(2, dtype=bad)
    with pytest.raises(ValueError, match="policy name"):
        mp.set_global_policy(3)


def test_global_policy_aliases_and_reset():
    assert mp.global_policy().name == "float32"
    mp.set_global_policy("mixed_bfloat16")
    assert mp.dtype_policy() == mp.Policy("mixed_bfloat16") == mp.global_policy()
    dense, f32 = L.Dense(2), L.Dense(2, dtype="float32")
    assert dense.dtype_policy.name == "mixed_bfloat16" and f32.compute_dtype == "float32"
    mp.set_dtype_policy(mp.Policy("float16"))
    assert L.Dense(2).compute_dtype == L.Dense(2).dtype == "float16"
    plexus.clear_session()
    assert mp.global_policy().name == "float32" and L.Dense(2).compute_dtype == "float32"


def test_dtype_argument_forms():
    serialized = {"module": "keras", "class_name": "DTypePolicy",
                  "config": {"name": "mixed_float16"}, "registered_name": None}
    for value in ("mixed_float16", mp.Policy("mixed_float16"), serialized):
        layer = L.Dense(2, dtype=value)
        assert (layer.dtype, layer.variable_dtype, layer.compute_dtype) == (
            "float32", "float32", "float16")
        assert layer.get_config()["dtype"] == "mixed_float16"
    assert plexus.dtype_policies.serialize(mp.Policy("mixed_float16")) == \
        keras.dtype_policies.serialize(keras.DTypePolicy("mixed_float16"))
    layer.dtype_policy = "bfloat16"
    assert layer.compute_dtype == layer.dtype == "bfloat16"
    x = np.ones((1, 3), "float32")  # autocast=False: neither inputs nor weights are cast
    plain = L.Dense(2, dtype="mixed_bfloat16", autocast=False)
    kplain = keras.layers.Dense(2, dtype="mixed_bfloat16", autocast=False)
    assert plain(x).dtype == torch.float32 and str(kplain(x).dtype).endswith("float32")


# ------------------------------------------------------------------ layers and graphs
def _graph(lib):
    ids = lib.Input((5,), dtype="int32", name="ids")
    feats = lib.Input((4,), name="feats")
    e = lib.layers.GlobalAveragePooling1D()(lib.layers.Embedding(10, 4)(ids))
    x = lib.layers.Flatten()(feats)
    x = lib.layers.Dense(4, activation="relu")(lib.layers.Concatenate()([x, e]))
    x = lib.layers.BatchNormalization()(x)
    x = lib.layers.LayerNormalization()(x)
    out = lib.layers.Dense(3, activation="softmax", dtype="float32")(x)
    return lib.Model([ids, feats], out)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_graph_under_global_policy_matches_keras(policy):
    mp.set_global_policy(policy)
    keras.mixed_precision.set_global_policy(policy)
    pm, km = _graph(plexus), _graph(keras)
    for lp, lk in zip(pm.layers, km.layers):
        assert (lp.dtype, lp.compute_dtype, lp.dtype_policy.name) == (
            lk.dtype, lk.compute_dtype, lk.dtype_policy.name), lp.name
        assert lp.output.dtype == lk.output.dtype, lp.name
    assert [w.dtype for w in pm.weights] == [torch.float32] * len(pm.weights)
    assert pm.dtype_policy.name == km.dtype_policy.name == policy
    km.set_weights(pm.get_weights())
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 10, (3, 5)).astype("int32"), rng.normal(size=(3, 4)).astype("float32")]
    yp, yk = pm.predict(x, verbose=0), km.predict(x, verbose=0)
    assert yp.dtype == np.float32
    assert_close(yp, yk, **_TOL[policy])
    lines = []
    pm.summary(print_fn=lines.append)
    assert any("(None, 3)" in line for line in lines)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("make, shape", [
    (lambda k, p: k.layers.Dense(5, activation="tanh", dtype=p), (3, 4)),
    (lambda k, p: k.layers.Conv2D(3, 3, padding="same", dtype=p), (2, 6, 6, 2)),
    (lambda k, p: k.layers.LSTM(3, return_sequences=True, dtype=p), (2, 4, 3)),
    (lambda k, p: k.layers.BatchNormalization(dtype=p), (4, 3)),
    (lambda k, p: k.layers.MultiHeadAttention(2, 3, dtype=p), (2, 4, 3)),
], ids=["dense", "conv2d", "lstm", "batchnorm", "mha"])
def test_layer_outputs_match_keras(policy, make, shape):
    pl, kl = make(plexus, policy), make(keras, policy)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    args = (x, x) if isinstance(pl, L.MultiHeadAttention) else (x,)
    kl(*args)
    pl(*args)
    kl.set_weights(pl.get_weights())
    yp, yk = pl(*args), kl(*args)
    assert yp.dtype == getattr(torch, pl.compute_dtype) and str(yk.dtype).endswith(
        pl.compute_dtype)
    assert_close(yp.float(), yk.float(), **_TOL[policy])


def test_gradients_reach_float32_weights_and_int_ids_stay_ints():
    mp.set_global_policy("mixed_bfloat16")
    emb, dense = L.Embedding(10, 4), L.Dense(2)
    ids = torch.tensor([[1, 2, 3]])
    h = emb(ids)
    assert h.dtype == torch.bfloat16
    y = dense(h)
    y.float().sum().backward()
    for p in (emb.embeddings, dense.kernel, dense.bias):
        assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
    assert "kernel" not in dense.__dict__  # the compute-dtype copy lives only during the call


# ------------------------------------------------------------------ training
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.filterwarnings("ignore:Training with float16")
def test_fit_lowers_the_loss_and_keeps_float32_weights(policy):
    mp.set_global_policy(policy)
    inp = plexus.Input((4,))
    x = L.Dense(8, activation="relu")(inp)
    out = L.Dense(2, activation="softmax", dtype="float32")(x)
    model = plexus.Model(inp, out)
    model.compile(optimizer=plexus.optimizers.Adam(0.05), loss="categorical_crossentropy")
    assert isinstance(model.optimizer, mp.LossScaleOptimizer) == (policy == "mixed_float16")
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(64, 4)).astype("float32")
    ys = plexus.utils.to_categorical((xs[:, 0] > 0).astype(int), 2)
    hist = model.fit(xs, ys, epochs=6, batch_size=16, verbose=0).history["loss"]
    assert hist[-1] < hist[0] * 0.8
    assert all(w.dtype == torch.float32 for w in model.weights)
    assert model.optimizer.iterations == 24


def test_compile_wraps_like_keras():
    keras.mixed_precision.set_global_policy("mixed_float16")
    mp.set_global_policy("mixed_float16")
    km = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    pm = plexus.Sequential([plexus.Input((2,)), L.Dense(1)])
    km.compile("sgd", "mse")
    pm.compile("sgd", "mse")
    assert type(pm.optimizer).__name__ == type(km.optimizer).__name__ == "LossScaleOptimizer"
    assert pm.optimizer.name == km.optimizer.name
    assert type(pm.optimizer.inner_optimizer).__name__ == "SGD"
    pm.compile("sgd", "mse", auto_scale_loss=False)
    assert type(pm.optimizer).__name__ == "SGD"


def _apply_both(grads_seq, **kw):
    """Apply the same gradients with plexus's and Keras's LossScaleOptimizer over SGD."""
    w0 = np.array([1.0, -2.0], "float32")
    pw = torch.nn.Parameter(torch.tensor(w0))
    kw_var = keras.Variable(w0)
    po = mp.LossScaleOptimizer(plexus.optimizers.SGD(0.1), **kw)
    ko = keras.mixed_precision.LossScaleOptimizer(keras.optimizers.SGD(0.1), **kw)
    out = []
    for g in grads_seq:
        po.apply([torch.tensor(g)], [pw])
        ko.apply([keras.ops.convert_to_tensor(g)], [kw_var])
        out.append((pw.detach().numpy().copy(), to_numpy(kw_var.value).copy(),
                    po.loss_scale, float(to_numpy(ko.dynamic_scale)),
                    po.iterations, int(to_numpy(ko.iterations))))
    return out


@pytest.mark.filterwarnings("ignore:Training with float16")
def test_loss_scale_skips_non_finite_steps_halves_and_grows_like_keras():
    grads = [np.array([8.0, 16.0], "float32"), np.array([np.inf, 1.0], "float32"),
             np.array([4.0, np.nan], "float32"), np.array([2.0, 2.0], "float32"),
             np.array([2.0, 2.0], "float32")]
    steps = _apply_both(grads, initial_scale=8.0, dynamic_growth_steps=2)
    for pw, kw, ps, ks, pi, ki in steps:
        np.testing.assert_allclose(pw, kw, rtol=1e-6)
        assert (ps, pi) == (ks, ki)
    scales = [s[2] for s in steps]
    assert scales == [8.0, 4.0, 2.0, 2.0, 4.0]  # halved on each bad step, doubled after 2 good
    np.testing.assert_array_equal(steps[1][0], steps[0][0])  # skipped: weights unchanged
    np.testing.assert_allclose(steps[0][0], [1.0 - 0.1, -2.0 - 0.2])  # gradients unscaled


def test_loss_scale_optimizer_scales_the_loss_and_round_trips_its_config():
    opt = mp.LossScaleOptimizer(plexus.optimizers.Adam(0.01))
    assert opt.initial_scale == 2.0 ** 15 and opt.dynamic_growth_steps == 2000
    assert float(opt.scale_loss(torch.tensor(2.0))) == 2.0 ** 16
    assert opt.learning_rate == pytest.approx(0.01)
    clone = plexus.optimizers.deserialize(plexus.optimizers.serialize(opt))
    assert isinstance(clone, mp.LossScaleOptimizer)
    assert type(clone.inner_optimizer).__name__ == "Adam"
    with pytest.raises(ValueError, match="inner optimizer"):
        mp.LossScaleOptimizer(plexus.optimizers.SGD(), clipnorm=1.0)


def test_inf_gradient_in_fit_skips_the_step():
    mp.set_global_policy("mixed_float16")
    model = plexus.Sequential([plexus.Input((2,)), L.Dense(1)])
    model.compile("sgd", "mse")
    before = model.get_weights()
    x = np.array([[6e4, 6e4]], "float32")  # float16 overflows: inf in the forward pass
    with pytest.warns(UserWarning, match="use mixed_bfloat16"):  # float16 is slow on CPUs
        model.fit(x, np.zeros((1, 1), "float32"), epochs=1, verbose=0)
    assert model.optimizer.loss_scale == 2.0 ** 14 and model.optimizer.iterations == 0
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ files
def _small(lib):
    inp = lib.Input((4,))
    x = lib.layers.Dense(6, activation="relu")(inp)
    x = lib.layers.BatchNormalization()(x)
    return lib.Model(inp, lib.layers.Dense(2, dtype="float32")(x))


def test_keras_written_mixed_file_loads_in_plexus_and_back(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    km = _small(keras)
    km.save(tmp_path / "k.keras")
    keras.mixed_precision.set_global_policy("float32")
    pm = plexus.saving.load_model(tmp_path / "k.keras")
    names = [l.dtype_policy.name for l in km.layers[1:]]  # (an InputLayer takes the global one)
    assert [l.dtype_policy.name for l in pm.layers[1:]] == names
    assert pm.layers[1].compute_dtype == "float16" and pm.layers[-1].compute_dtype == "float32"
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    assert_close(pm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-3, atol=1e-3)
    pm.save(tmp_path / "p.keras")
    again = keras.saving.load_model(tmp_path / "p.keras")
    assert [l.dtype_policy.name for l in again.layers[1:]] == names
    assert_close(again.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-3, atol=1e-3)


def test_plexus_round_trip_keeps_policies(tmp_path):
    mp.set_global_policy("mixed_bfloat16")
    model = _small(plexus)
    model.save(tmp_path / "m.keras")
    plexus.clear_session()  # float32 again: the file alone decides the policies
    back = plexus.saving.load_model(tmp_path / "m.keras")
    assert back.layers[1].dtype_policy.name == "mixed_bfloat16"
    assert back.dtype_policy.name == "float32"  # a model's own policy is not saved (as Keras)
    assert [l.compute_dtype for l in back.layers[1:]] == [l.compute_dtype for l in model.layers[1:]]
    x = np.ones((2, 4), "float32")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.filterwarnings("ignore:Training with float16")
def test_loss_scale_state_crosses_files_both_ways(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    mp.set_global_policy("mixed_float16")
    x, y = np.ones((4, 3), "float32"), np.ones((4, 1), "float32")
    km = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                           keras.layers.Dense(1, dtype="float32")])
    km.compile("adam", "mse")
    km.fit(x, y, epochs=2, verbose=0)
    km.save(tmp_path / "k.keras")
    pm = plexus.saving.load_model(tmp_path / "k.keras")
    assert isinstance(pm.optimizer, mp.LossScaleOptimizer)
    assert pm.optimizer.loss_scale == float(to_numpy(km.optimizer.dynamic_scale))
    assert pm.optimizer.iterations == int(to_numpy(km.optimizer.iterations))
    pm.fit(x, y, epochs=1, verbose=0)
    pm.save(tmp_path / "p.keras")
    back = keras.saving.load_model(tmp_path / "p.keras")
    assert float(to_numpy(back.optimizer.dynamic_scale)) == pm.optimizer.loss_scale
    assert int(to_numpy(back.optimizer.iterations)) == pm.optimizer.iterations
    for a, b in zip(back.optimizer.inner_optimizer.variables[2:], pm.optimizer.variables):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_predict_returns_the_compute_dtype_like_keras(policy):
    models = []
    for lib in (plexus, keras):
        lib.mixed_precision.set_global_policy(policy)
        inp = lib.Input((4,))
        models.append(lib.Model(inp, lib.layers.Dense(2)(lib.layers.Rescaling(0.5)(inp))))
    pm, km = models
    km.set_weights(pm.get_weights())
    x = np.arange(8, dtype="float32").reshape(2, 4)
    yp, yk = pm.predict(x, verbose=0), km.predict(x, verbose=0)
    assert yp.dtype == yk.dtype and str(yp.dtype) == policy.split("_")[1]
    assert_close(yp.astype("float32"), yk.astype("float32"), **_TOL[policy])


@pytest.mark.filterwarnings("ignore:Training with float16")
def test_loss_scale_optimizer_on_a_float32_model_trains_like_its_inner_optimizer():
    # Scaling by a power of two and unscaling is exact: every training path (including any
    # fast path that computes gradients without autograd) must scale the loss it
    # backpropagates, or the wrapped optimizer's updates come out 2**15 times too small.
    models = []
    for opt in (plexus.optimizers.SGD(0.1), mp.LossScaleOptimizer(plexus.optimizers.SGD(0.1))):
        plexus.clear_session()
        inp = plexus.Input((4,))
        out = L.Dense(3, activation="softmax")(L.Dense(5, activation="relu")(inp))
        model = plexus.Model(inp, out)
        model.set_weights([np.full(w.shape, 0.1 * (i + 1), "float32") + np.arange(
            w.size, dtype="float32").reshape(w.shape) * 0.01
            for i, w in enumerate(model.get_weights())])
        model.compile(opt, "categorical_crossentropy")
        models.append(model)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = plexus.utils.to_categorical(rng.integers(0, 3, 16), 3)
    for model in models:
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert models[1].optimizer.iterations == 4
    for a, b in zip(*(m.get_weights() for m in models)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_batchnorm_training_keeps_float32_statistics_like_keras(policy):
    pl = L.BatchNormalization(momentum=0.5, dtype=policy)
    kl = keras.layers.BatchNormalization(momentum=0.5, dtype=policy)
    x = np.random.default_rng(2).normal(2.0, 3.0, size=(6, 3)).astype("float32")
    yp, yk = pl(x, training=True), kl(x, training=True)
    assert yp.dtype == getattr(torch, pl.compute_dtype)
    assert_close(yp.float(), yk.float(), **_TOL[policy])
    assert all(w.dtype == torch.float32 for w in pl.weights)
    for a, b in zip(pl.get_weights(), kl.get_weights()):  # moving statistics in float32
        np.testing.assert_allclose(a, to_numpy(b), rtol=1e-2, atol=1e-2)
