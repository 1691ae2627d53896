"""Keras's training doors: `train_step`, `test_step`, `predict_step`, `compute_loss`,
`compute_metrics`, `metrics`, `run_eagerly`, `steps_per_execution`, and the model classes
(`Functional`, subclassed `Model`, `Sequential`).

The overrides follow the keras.io guides "Customizing what happens in fit() with PyTorch" and
"Writing a training loop from scratch in PyTorch" (synthetic data instead of MNIST; `v.grad`
for the guides' `v.value.grad`).
"""
import warnings

import numpy as np
import pytest
import torch

import plexus as keras
from plexus import layers


def _xy(n=64, d=8, units=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype("float32"), rng.random((n, units)).astype("float32")


def _build(cls, d=8, units=1):
    keras.clear_session()
    torch.manual_seed(0)
    inputs = keras.Input(shape=(d,))
    return cls(inputs, layers.Dense(units)(layers.Dense(4, activation="relu")(inputs)))


# ---------------------------------------------------------------------- model classes
def test_model_classes_follow_keras():
    i = keras.Input((3,))
    m = keras.Model(i, layers.Dense(2)(i))
    assert type(m).__name__ == "Functional" and type(m) is keras.Functional
    assert keras.models.Functional is keras.Functional and isinstance(m, keras.Model)
    s = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    assert isinstance(s, keras.Functional) and type(s).__name__ == "Sequential"

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(2)

        def call(self, x):
            return self.d(x)
    assert type(Sub()) is Sub and not isinstance(Sub(), keras.Functional)


def test_subclass_called_with_inputs_and_outputs_becomes_functional():
    class Custom(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.note = "kept"

    i = keras.Input((3,))
    m = Custom(i, layers.Dense(2)(i))
    assert type(m) is Custom and isinstance(m, keras.Functional) and m.note == "kept"
    assert m.predict(np.ones((2, 3), "float32"), verbose=0).shape == (2, 2)
    assert [type(l).__name__ for l in m.layers] == ["InputLayer", "Dense"]


# ---------------------------------------------------------------------- train_step
class GuideModel(keras.Model):
    """The guide's first example: compute_loss, backward, optimizer.apply, self.metrics."""

    calls = 0

    def train_step(self, data):
        type(self).calls += 1
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        trainable_weights = [v for v in self.trainable_weights]
        gradients = [v.grad for v in trainable_weights]
        with torch.no_grad():
            self.optimizer.apply(gradients, trainable_weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_train_step_override_is_what_fit_runs_and_matches_the_default():
    x, y = _xy()
    GuideModel.calls = 0
    custom = _build(GuideModel)
    custom.compile(optimizer="adam", loss="mse", metrics=["mae"])
    hist = custom.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert GuideModel.calls == 8  # 4 batches x 2 epochs
    plain = _build(keras.Model)
    plain.compile(optimizer="adam", loss="mse", metrics=["mae"])
    ref = plain.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(custom.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert sorted(hist.history) == ["loss", "mae"]
    # (the guide's loss tracker averages unweighted batch losses: equal batches here)
    np.testing.assert_allclose(hist.history["loss"], ref.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(hist.history["mae"], ref.history["mae"], rtol=1e-5)


def test_train_step_override_with_its_own_loss_tracker_and_metrics():
    class CustomModel(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data):
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
            loss.backward()
            weights = [v for v in self.trainable_weights]
            with torch.no_grad():
                self.optimizer.apply([v.grad for v in weights], weights)
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    x, y = _xy()
    model = _build(CustomModel)
    model.compile(optimizer="sgd")  # no loss: the step computes its own
    starts = []
    remember = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append(model.get_weights()))
    hist = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                     callbacks=[remember])
    assert sorted(hist.history) == ["loss", "mae"] and len(hist.history["loss"]) == 3
    assert model.metrics == [model.loss_tracker, model.mae_metric]
    # The trackers are reset every epoch: replay the last epoch from its starting weights.
    model.set_weights(starts[-1])
    sgd, losses = keras.optimizers.SGD(), []
    for i in range(4):
        xb, yb = torch.from_numpy(x[i * 16:(i + 1) * 16]), torch.from_numpy(y[i * 16:(i + 1) * 16])
        model.zero_grad()
        loss = keras.losses.MeanSquaredError()(yb, model(xb, training=True))
        losses.append(float(loss.detach()))
        loss.backward()
        with torch.no_grad():
            sgd.apply([v.grad for v in model.trainable_weights], model.trainable_weights)
    np.testing.assert_allclose(hist.history["loss"][-1], np.mean(losses), rtol=1e-5)
    model.reset_metrics()
    assert float(model.loss_tracker.result()) == 0.0


def test_gan_with_two_optimizers():
    latent_dim, n = 4, 32
    discriminator = keras.Sequential([keras.Input((6,)), layers.Dense(8), layers.LeakyReLU(0.2),
                                      layers.Dense(1)], name="discriminator")
    generator = keras.Sequential([keras.Input((latent_dim,)), layers.Dense(8),
                                  layers.LeakyReLU(0.2), layers.Dense(6, activation="sigmoid")],
                                 name="generator")

    class GAN(keras.Model):
        def __init__(self, discriminator, generator, latent_dim):
            super().__init__()
            self.discriminator, self.generator = discriminator, generator
            self.latent_dim = latent_dim
            self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
            self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
            self.built = True

        @property
        def metrics(self):
            return [self.d_loss_tracker, self.g_loss_tracker]

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile()
            self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

        def train_step(self, real_images):
            if isinstance(real_images, tuple):
                real_images = real_images[0]
            batch_size = real_images.shape[0]
            generated = self.generator(torch.randn(batch_size, self.latent_dim))
            combined = torch.concat([generated, real_images], axis=0)
            labels = torch.concat([torch.ones((batch_size, 1)), torch.zeros((batch_size, 1))])
            labels += 0.05 * torch.rand(labels.shape)
            self.zero_grad()
            d_loss = self.loss_fn(labels, self.discriminator(combined))
            d_loss.backward()
            grads = [v.grad for v in self.discriminator.trainable_weights]
            with torch.no_grad():
                self.d_optimizer.apply(grads, self.discriminator.trainable_weights)
            self.zero_grad()
            predictions = self.discriminator(self.generator(torch.randn(batch_size,
                                                                        self.latent_dim)))
            g_loss = self.loss_fn(torch.zeros((batch_size, 1)), predictions)
            g_loss.backward()
            grads = [v.grad for v in self.generator.trainable_weights]
            with torch.no_grad():
                self.g_optimizer.apply(grads, self.generator.trainable_weights)
            self.d_loss_tracker.update_state(d_loss)
            self.g_loss_tracker.update_state(g_loss)
            return {"d_loss": self.d_loss_tracker.result(),
                    "g_loss": self.g_loss_tracker.result()}

    images = torch.rand(n, 6)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, images),
                                         batch_size=8)
    gan = GAN(discriminator, generator, latent_dim)
    d_opt, g_opt = keras.optimizers.Adam(3e-4), keras.optimizers.Adam(3e-4)
    gan.compile(d_optimizer=d_opt, g_optimizer=g_opt,
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    g_before, d_before = generator.get_weights(), discriminator.get_weights()
    hist = gan.fit(loader, epochs=2, verbose=0)
    assert sorted(hist.history) == ["d_loss", "g_loss"] and len(hist.history["d_loss"]) == 2
    assert d_opt.iterations == g_opt.iterations == 8
    assert all(not np.allclose(a, b) for a, b in zip(generator.get_weights(), g_before))
    assert all(not np.allclose(a, b) for a, b in zip(discriminator.get_weights(), d_before))


# ---------------------------------------------------------------------- other doors
def test_compute_loss_override_is_honoured():
    class VAELike(keras.Model):
        calls = 0

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            type(self).calls += 1
            reconstruction = torch.mean((y_pred - y) ** 2)
            penalty = 0.5 * torch.mean(y_pred ** 2)  # a KL-like term on the outputs
            return reconstruction + penalty

    x, y = _xy()
    model = _build(VAELike)
    model.compile(optimizer="sgd", loss="mse")
    w = model.get_weights()
    hist = model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    assert VAELike.calls == 1
    model.set_weights(w)
    pred = model(torch.from_numpy(x))
    pred = pred.detach()
    expected = float(torch.mean((pred - torch.from_numpy(y)) ** 2) + 0.5 * torch.mean(pred ** 2))
    np.testing.assert_allclose(hist.history["loss"][0], expected, rtol=1e-5)


def test_test_step_and_predict_step_overrides():
    class Custom(keras.Model):
        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {"loss": self.metrics[0].result(), "twice": 2 * self.metrics[0].result()}

        def predict_step(self, data):
            return {"twice": 2 * self(data, training=False)}

    x, y = _xy()
    model = _build(Custom)
    model.compile(loss="mse")
    logs = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert sorted(logs) == ["loss", "twice"]
    np.testing.assert_allclose(logs["twice"], 2 * logs["loss"], rtol=1e-6)
    out = model.predict(x, batch_size=16, verbose=0)
    np.testing.assert_allclose(out["twice"], 2 * model(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-6)


def test_compute_metrics_override_adds_a_metric():
    class Custom(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.extra = keras.metrics.Mean(name="mean_prediction")

        def compute_metrics(self, x, y, y_pred, sample_weight=None):
            results = super().compute_metrics(x, y, y_pred, sample_weight)
            self.extra.update_state(y_pred)
            results["mean_prediction"] = self.extra.result()
            return results

    x, y = _xy()
    model = _build(Custom)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    hist = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert sorted(hist.history) == ["loss", "mae", "mean_prediction"]
    assert model.metrics[0].name == "loss" and model.extra in model.metrics


def test_run_eagerly_runs_train_step_and_matches_the_fast_path():
    x, y = _xy(units=3)
    results = []
    for eager in (False, True):
        model = _build(keras.Model, units=3)
        model.compile("rmsprop", "categorical_crossentropy", metrics=["accuracy"],
                      run_eagerly=eager)
        results.append((model.fit(x, y, batch_size=16, epochs=2, shuffle=False,
                                  verbose=0).history, model.get_weights()))
    (h1, w1), (h2, w2) = results
    for k in h1:
        np.testing.assert_allclose(h1[k], h2[k], rtol=1e-5, err_msg=k)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_steps_per_execution_runs_batches_back_to_back():
    seen = []
    cb = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: seen.append(("begin", b)),
        on_train_batch_end=lambda b, logs: seen.append(("end", b)))
    x, y = _xy(n=40)
    model = _build(keras.Model)
    model.compile("sgd", "mse", steps_per_execution=3)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[cb])
    assert seen == [("begin", 0), ("end", 2), ("begin", 3), ("end", 5), ("begin", 6),
                    ("end", 8), ("begin", 9), ("end", 9)]
    assert model.optimizer.iterations == 10
    with pytest.raises(ValueError, match="steps_per_execution"):
        model.compile("sgd", "mse", steps_per_execution=0)


def test_metrics_list_the_loss_tracker_first_and_reset():
    x, y = _xy()
    model = _build(keras.Model)
    assert model.metrics == []
    model.compile("sgd", "mse", metrics=["mae"])
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics"]  # as Keras 3
    model.fit(x, y, verbose=0)
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics"]
    assert sorted(model.metrics[1].result()) == ["mae"]
    assert isinstance(model.metrics[0], keras.metrics.Mean)
    assert float(model.metrics[0].result()) > 0
    model.reset_metrics()
    assert float(model.metrics[0].result()) == 0.0
    logs = model.get_metrics_result()
    assert sorted(logs) == ["loss", "mae"]


def test_default_train_step_called_directly_returns_logs():
    x, y = _xy()
    model = _build(keras.Model)
    model.compile("sgd", "mse")
    logs = model.train_step((torch.from_numpy(x), torch.from_numpy(y)))
    assert list(logs) == ["loss"] and float(logs["loss"]) > 0
    assert model.optimizer.iterations == 1


def test_unpack_and_optimizer_apply():
    x, y, sw = keras.utils.unpack_x_y_sample_weight((1, 2))
    assert (x, y, sw) == (1, 2, None)
    assert keras.utils.unpack_x_y_sample_weight([1]) == (1, None, None)
    with pytest.raises(ValueError, match="data batch"):
        keras.utils.unpack_x_y_sample_weight((1, 2, 3, 4))
    w = torch.nn.Parameter(torch.ones(3))
    opt = keras.optimizers.SGD(0.5)
    opt.apply_gradients(zip([torch.ones(3)], [w]))
    opt.apply([torch.ones(3)], [w])
    np.testing.assert_allclose(w.detach().numpy(), [0.0, 0.0, 0.0])


def test_an_unknown_input_key_warns_in_calls_and_in_fit():
    a, b = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    model = keras.Model({"a": a, "b": b}, layers.Dense(1)(layers.Concatenate()([a, b])))
    model.compile("sgd", "mse")
    x = {"a": np.ones((4, 2), "float32"), "b": np.ones((4, 1), "float32"),
         "extra": np.ones((4, 3), "float32")}
    for run in (lambda: model(x), lambda: model.fit(x, np.ones((4, 1)), verbose=0),
                lambda: model.predict(x, verbose=0)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
        assert any("ignores input keys ['extra']" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="missing 'b'"):
        model.fit({"a": x["a"]}, np.ones((4, 1)), verbose=0)
