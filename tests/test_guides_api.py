"""What the keras.io guides do with Keras 3's Layer/Model API, on small synthetic data: one test
per guide ("Making new layers and models via subclassing", "Understanding masking & padding",
"Working with RNNs", "Writing your own callbacks", "Save, serialize, and export models",
"Training & evaluation with the built-in methods", "The Sequential model", "The Functional
API"). Layers compute with `keras.ops`, as the guides do."""
import numpy as np
import pytest
import torch

import plexus as keras
from plexus import layers, ops


def test_subclassing_guide(tmp_path):
    class Linear(keras.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                     initializer="random_normal", trainable=True)
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    linear = Linear(4)
    assert linear(torch.ones(2, 2)).shape == (2, 4)
    assert linear.weights == [linear.w, linear.b]
    assert Linear.from_config(linear.get_config()).units == 4

    class ComputeSum(keras.layers.Layer):
        def __init__(self, input_dim):
            super().__init__()
            self.total = self.add_weight(initializer="zeros", shape=(input_dim,),
                                         trainable=False)

        def call(self, inputs):
            self.total.assign_add(ops.sum(inputs, axis=0))
            return self.total

    my_sum = ComputeSum(2)
    my_sum(torch.ones(2, 2))
    assert my_sum(torch.ones(2, 2)).numpy().tolist() == [4.0, 4.0]
    assert (len(my_sum.weights), len(my_sum.non_trainable_weights),
            my_sum.trainable_weights) == (1, 1, [])

    class CustomDropout(keras.layers.Layer):
        def __init__(self, rate, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs, training=None):
            if training:
                return keras.random.dropout(inputs, rate=self.rate, seed=self.seed_generator)
            return inputs

    drop = CustomDropout(0.5)
    assert torch.equal(drop(torch.ones(4, 4)), torch.ones(4, 4))
    assert (drop(torch.ones(100, 100), training=True) == 0).float().mean().item() > 0.4

    class Sampling(keras.layers.Layer):  # the guide's VAE
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch, dim = ops.shape(z_mean)[0], ops.shape(z_mean)[1]
            eps = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * eps

    class VAE(keras.Model):
        def __init__(self, original_dim, latent_dim=2, **kwargs):
            super().__init__(**kwargs)
            self.dense = layers.Dense(8, activation="relu")
            self.mean, self.log_var = layers.Dense(latent_dim), layers.Dense(latent_dim)
            self.sampling = Sampling()
            self.decoder = layers.Dense(original_dim, activation="sigmoid")

        def call(self, inputs):
            h = self.dense(inputs)
            z_mean, z_log_var = self.mean(h), self.log_var(h)
            z = self.sampling((z_mean, z_log_var))
            kl = -0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1)
            self.add_loss(kl)
            return self.decoder(z)

    x = np.random.RandomState(0).rand(64, 12).astype("float32")
    vae = VAE(12)
    vae.compile(keras.optimizers.Adam(1e-3), loss=keras.losses.MeanSquaredError())
    history = vae.fit(x, x, epochs=2, batch_size=16, verbose=0)
    assert len(history.history["loss"]) == 2 and len(vae.losses) == 1
    vae.save_weights(tmp_path / "vae.weights.h5")


def test_masking_and_padding_guide():
    raw = [[711, 632, 71], [73, 8, 3215, 55, 927], [83, 91, 1, 645, 1253, 927]]
    padded = np.zeros((3, 6), "int32")  # keras.utils.pad_sequences(raw, padding="post")
    for row, seq in zip(padded, raw):
        row[:len(seq)] = seq
    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    masked = embedding(padded)
    assert masked._keras_mask.tolist() == (padded != 0).tolist()
    masking = layers.Masking()
    unmasked = torch.as_tensor(np.repeat(padded[:, :, None], 4, axis=2), dtype=torch.float32)
    assert masking(unmasked)._keras_mask.tolist() == (padded != 0).tolist()

    class TemporalSplit(keras.layers.Layer):
        def call(self, inputs):
            return ops.split(inputs, 2, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None if mask is None else ops.split(mask, 2, axis=1)

    first_half, second_half = TemporalSplit()(masked)
    assert first_half._keras_mask.shape == (3, 3)

    class CustomEmbedding(keras.layers.Layer):
        def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
            super().__init__(**kwargs)
            self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero

        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                              initializer="random_normal")

        def call(self, inputs):
            return ops.take(self.embeddings, inputs, axis=0)

        def compute_mask(self, inputs, mask=None):
            return ops.not_equal(inputs, 0) if self.mask_zero else None

    out = CustomEmbedding(10, 32, mask_zero=True)(np.random.RandomState(0).randint(10, size=(3, 10)))
    assert out._keras_mask.dtype is torch.bool

    class MyActivation(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs):
            return ops.relu(inputs)

    class TemporalSoftmax(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            broadcast_float_mask = ops.expand_dims(ops.cast(mask, "float32"), -1)
            inputs_exp = ops.exp(inputs) * broadcast_float_mask
            return inputs_exp / ops.sum(inputs_exp, axis=1, keepdims=True)

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=10, output_dim=32, mask_zero=True)(inputs)
    x = MyActivation()(layers.Dense(32)(x))
    outputs = TemporalSoftmax()(layers.Dense(1)(x))
    model = keras.Model(inputs, outputs)
    y = model(np.random.RandomState(1).randint(0, 10, size=(32, 100)))
    assert y.shape == (32, 100, 1) and torch.allclose(y.sum(1), torch.ones(32, 1))


def test_rnn_guide():
    inputs = keras.Input((None,), dtype="int32")
    x = layers.Embedding(50, 8)(inputs)
    output, h, c = layers.LSTM(6, return_state=True)(x)
    decoded = layers.LSTM(6)(layers.Embedding(50, 8)(inputs), initial_state=[h, c])
    model = keras.Model(inputs, layers.Dense(3)(decoded))
    assert model(np.ones((2, 5), "int32")).shape == (2, 3)

    paragraphs = np.random.RandomState(0).random((3, 20, 10, 50)).astype("float32")
    lstm = layers.LSTM(64, stateful=True)
    outputs = [lstm(p) for p in paragraphs]  # each continues from the previous states
    existing = lstm.states
    assert [s.shape for s in existing] == [(20, 64), (20, 64)]
    fresh = layers.LSTM(64)  # "RNN state reuse": a new layer starts from the carried states
    fresh(paragraphs[2])
    fresh.set_weights(lstm.get_weights())
    reused = fresh(paragraphs[2], initial_state=[s.detach().clone() for s in existing])
    assert torch.allclose(reused, lstm(paragraphs[2]), atol=1e-6)
    assert not torch.allclose(reused, fresh(paragraphs[2]), atol=1e-3)
    lstm.reset_states()
    assert torch.allclose(lstm(paragraphs[0]), outputs[0], atol=1e-6)

    class NestedCell(keras.layers.Layer):
        def __init__(self, unit_1, unit_2, **kwargs):
            super().__init__(**kwargs)
            self.state_size = [unit_1, unit_2]
            self.output_size = unit_1

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.state_size[0]),
                                          initializer="uniform", name="kernel")

        def call(self, inputs, states):
            h = ops.matmul(inputs, self.kernel) + states[0]
            return h, [h, states[1]]

    rnn = layers.RNN(NestedCell(4, 3))
    assert rnn(torch.ones(2, 5, 3)).shape == (2, 4)


def test_callbacks_guide():
    seen = {}

    class CustomCallback(keras.callbacks.Callback):
        def _record(self, hook, logs):
            seen.setdefault(hook, set()).update(logs.keys())  # logs is always a dict

    for hook in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
                 "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end",
                 "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
                 "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end"):
        def method(self, *args, _hook=hook):
            self._record(_hook, args[-1])
        setattr(CustomCallback, hook, method)

    class EarlyStoppingAtMinLoss(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.best, self.best_weights, self.stopped = np.inf, None, None

        def on_epoch_end(self, epoch, logs=None):
            if np.less(logs.get("loss"), self.best):
                self.best, self.best_weights = logs["loss"], self.model.get_weights()
            else:
                self.model.stop_training, self.stopped = True, epoch
                self.model.set_weights(self.best_weights)

    class CustomLearningRateScheduler(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            lr = float(np.array(self.model.optimizer.learning_rate))
            self.model.optimizer.learning_rate = lr * 0.5

    model = keras.Sequential([keras.Input((4,)), layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mean_absolute_error"])
    x, y = np.random.RandomState(0).rand(32, 4), np.random.RandomState(1).rand(32, 1)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.25,
              callbacks=[CustomCallback(), EarlyStoppingAtMinLoss(),
                         CustomLearningRateScheduler()])
    model.evaluate(x, y, verbose=0, callbacks=[CustomCallback()])
    model.predict(x, verbose=0, callbacks=[CustomCallback()])
    assert {"loss", "mean_absolute_error", "val_loss"} <= seen["on_epoch_end"]
    assert seen["on_train_begin"] == set() and seen["on_predict_batch_end"] == {"outputs"}
    assert abs(float(model.optimizer.learning_rate) - 0.025) < 1e-7


def test_saving_guide(tmp_path):
    @keras.saving.register_keras_serializable(package="my_package", name="custom_fn")
    def custom_fn(x):
        return x ** 2

    @keras.saving.register_keras_serializable(package="MyLayers")
    class CustomLayer(keras.layers.Layer):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    assert keras.saving.get_registered_object("my_package>custom_fn") is custom_fn
    assert keras.saving.get_registered_name(CustomLayer) == "MyLayers>CustomLayer"
    inputs = keras.Input((3,))
    x = layers.Dense(3, activation=custom_fn)(inputs)
    model = keras.Model(inputs, CustomLayer(0.5)(x))
    data = np.random.RandomState(0).rand(4, 3).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0))
    config = keras.saving.serialize_keras_object(model.layers[1])
    with keras.saving.custom_object_scope({"custom_fn": custom_fn}):
        layer = keras.saving.deserialize_keras_object(config)
    assert layer.activation is custom_fn
    clone = keras.models.model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(data).detach().numpy(), model(data).detach().numpy())
    model.layers[1].kernel.assign(np.zeros((3, 3)))  # the loaded model has its own weights
    assert not model.layers[1].kernel.numpy().any() and loaded.layers[1].kernel.numpy().any()


def test_training_guide():
    class CategoricalTruePositives(keras.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp",
                                                    initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            values = ops.cast(y_true, "int32") == ops.cast(y_pred, "int32")
            values = ops.cast(values, "float32")
            if sample_weight is not None:
                values = ops.multiply(values, ops.cast(sample_weight, "float32"))
            self.true_positives.assign_add(ops.sum(values))

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    class ActivityRegularizationLayer(layers.Layer):
        def call(self, inputs):
            self.add_loss(ops.sum(inputs) * 0.1)
            return inputs

    inputs = keras.Input(shape=(8,), name="digits")
    x = ActivityRegularizationLayer()(layers.Dense(16, activation="relu")(inputs))
    outputs = layers.Dense(4, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[CategoricalTruePositives()])
    rng = np.random.RandomState(0)
    x_train, y_train = rng.rand(64, 8).astype("float32"), rng.randint(0, 4, (64, 1))
    history = model.fit(x_train, y_train, batch_size=16, epochs=2, validation_split=0.25,
                        class_weight={0: 1.0, 1: 2.0, 2: 1.0, 3: 1.0}, verbose=0)
    assert {"categorical_true_positives", "val_categorical_true_positives"} <= \
        set(history.history)
    counted = history.history["categorical_true_positives"][-1]
    assert counted == int(counted) and 0 <= counted <= 48
    results = model.evaluate(x_train, y_train, batch_size=16, verbose=0, return_dict=True)
    assert 0 <= results["categorical_true_positives"] <= 64


def test_sequential_and_functional_guides():
    model = keras.Sequential([layers.Dense(2, activation="relu"), layers.Dense(3),
                              layers.Dense(4)])
    assert model.weights == []  # not built yet
    model.summary(print_fn=lambda *a, **k: None)
    model.build((None, 4))
    assert len(model.weights) == 6 and model.layers[0].kernel.path == "sequential/dense/kernel"
    model.pop()
    assert len(model.layers) == 2
    extractor = keras.Model(inputs=model.inputs, outputs=[l.output for l in model.layers])
    assert [f.shape for f in extractor(torch.ones(1, 4))] == [(1, 2), (1, 3)]
    for layer in model.layers[:-1]:
        layer.trainable = False
    assert [w.path for w in model.trainable_weights] == ["sequential/dense_1/kernel",
                                                         "sequential/dense_1/bias"]
    inputs = keras.Input(shape=(6, 6, 1))
    x = layers.Conv2D(2, 3, activation="relu")(inputs)
    functional = keras.Model(inputs, layers.Dense(1)(layers.Flatten()(x)))
    assert keras.utils.get_source_inputs(functional.output) == [inputs]
    # Keras adds the missing channel axis to (N, 6, 6) images
    assert functional.predict(np.zeros((3, 6, 6)), verbose=0).shape == (3, 1)
    with pytest.raises(ValueError, match="expects arrays of shape"):
        functional.predict(np.zeros((3, 6, 7)), verbose=0)
