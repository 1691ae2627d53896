"""What further keras.io guides do, on small synthetic data: "Customizing what happens in fit()
with PyTorch", "Writing a training loop from scratch in PyTorch", the custom-layer parts of "The
Functional API" and "Save, serialize, and export models". Each test is short code of its own
doing what the guide does, with the guide's own API calls."""
import numpy as np
import pytest
import torch

import plexus as keras
from plexus import layers, ops


def _mlp():
    inputs = keras.Input(shape=(20,), name="digits")
    x = layers.Dense(16, activation="relu")(inputs)
    outputs = layers.Dense(4, name="predictions")(x)
    return keras.Model(inputs, outputs)


def _data(n=64):
    rng = np.random.RandomState(0)
    x = rng.rand(n, 20).astype("float32")
    y = keras.utils.to_categorical(rng.randint(0, 4, n), 4).astype("float32")
    return x, y


def test_training_loop_from_scratch_in_torch():
    x, y = _data()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16)

    # torch's own optimizer and loss on a plexus model
    model = _mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    first = None
    for _ in range(5):
        for inputs, targets in loader:
            loss = loss_fn(model(inputs), targets)
            model.zero_grad()
            loss.backward()
            optimizer.step()
            first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < first

    # a Keras optimizer and loss: gradients read from `v.value.grad`, applied under no_grad
    model = _mlp()
    optimizer = keras.optimizers.Adam(learning_rate=1e-2)
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
    train_acc = keras.metrics.CategoricalAccuracy()
    losses = []
    for _ in range(5):
        for inputs, targets in loader:
            logits = model(inputs)
            loss = loss_fn(targets, logits)
            model.zero_grad()
            trainable_weights = [v for v in model.trainable_weights]
            loss.backward()
            gradients = [v.value.grad for v in trainable_weights]
            assert all(g is not None for g in gradients)
            with torch.no_grad():
                optimizer.apply(gradients, trainable_weights)
            train_acc.update_state(targets, logits)
            losses.append(float(loss.detach().numpy()))
        assert 0.0 <= float(train_acc.result()) <= 1.0
        train_acc.reset_state()
    assert int(optimizer.iterations) == 20
    assert np.mean(losses[-4:]) < np.mean(losses[:4])

    # an activity-regularization layer: its loss is in `model.losses` after each forward pass
    class ActivityRegularizationLayer(layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * torch.sum(inputs))
            return inputs

    inputs = keras.Input(shape=(20,))
    h = ActivityRegularizationLayer()(layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, layers.Dense(4)(h))
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    for inputs, targets in loader:
        logits = model(inputs)
        assert len(model.losses) == 1
        loss = loss_fn(targets, logits) + torch.sum(*model.losses)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in model.trainable_weights],
                            model.trainable_weights)
    # a Keras optimizer serves the variables it was built for only, as in Keras
    with pytest.raises(ValueError, match="built for"):
        optimizer.apply([v.value.grad for v in _mlp().trainable_weights], _mlp().trainable_weights)


def test_custom_train_step_in_torch_with_sample_weights_and_dataloader_gan():
    class CustomModel(keras.Model):
        def train_step(self, data):
            if len(data) == 3:
                x, y, sample_weight = data
            else:
                sample_weight = None
                x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight)
            loss.backward()
            trainable_weights = [v for v in self.trainable_weights]
            gradients = [v.value.grad for v in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred, sample_weight=sample_weight)
            return {m.name: m.result() for m in self.metrics}

    rng = np.random.RandomState(1)
    x, y, sw = rng.rand(64, 8), rng.rand(64, 1), rng.rand(64, 1)
    inputs = keras.Input(shape=(8,))
    model = CustomModel(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(x, y, sample_weight=sw, epochs=2, batch_size=16, verbose=0)
    assert sorted(history.history) == ["loss", "mae"]

    # The GAN of the guide, fed by a torch DataLoader of (images, images) pairs
    latent_dim = 8
    discriminator = keras.Sequential([
        keras.Input(shape=(8, 8, 1)), layers.Conv2D(4, 3, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2), layers.GlobalMaxPooling2D(), layers.Dense(1)])
    generator = keras.Sequential([
        keras.Input(shape=(latent_dim,)), layers.Dense(4 * 4 * 4), layers.Reshape((4, 4, 4)),
        layers.Conv2DTranspose(4, 4, strides=2, padding="same"),
        layers.Conv2D(1, 3, padding="same", activation="sigmoid")])

    class GAN(keras.Model):
        def __init__(self, discriminator, generator, latent_dim):
            super().__init__()
            self.discriminator, self.generator, self.latent_dim = \
                discriminator, generator, latent_dim
            self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
            self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
            self.seed_generator = keras.random.SeedGenerator(1337)
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
            z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
            combined = torch.concat([self.generator(z), real_images], axis=0)
            labels = torch.concat([torch.ones((batch_size, 1)), torch.zeros((batch_size, 1))])
            labels += 0.05 * keras.random.uniform(labels.shape, seed=self.seed_generator)
            self.zero_grad()
            d_loss = self.loss_fn(labels, self.discriminator(combined))
            d_loss.backward()
            with torch.no_grad():
                self.d_optimizer.apply([v.value.grad for v in self.discriminator.trainable_weights],
                                       self.discriminator.trainable_weights)
            z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
            self.zero_grad()
            g_loss = self.loss_fn(torch.zeros((batch_size, 1)),
                                  self.discriminator(self.generator(z)))
            g_loss.backward()
            with torch.no_grad():
                self.g_optimizer.apply([v.value.grad for v in self.generator.trainable_weights],
                                       self.generator.trainable_weights)
            self.d_loss_tracker.update_state(d_loss)
            self.g_loss_tracker.update_state(g_loss)
            return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    digits = torch.rand(32, 8, 8, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(digits, digits),
                                         batch_size=8, shuffle=True)
    gan = GAN(discriminator, generator, latent_dim)
    gan.compile(d_optimizer=keras.optimizers.Adam(3e-4), g_optimizer=keras.optimizers.Adam(3e-4),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    d_before = [w.numpy().copy() for w in discriminator.weights]
    history = gan.fit(loader, epochs=1, verbose=0)
    assert sorted(history.history) == ["d_loss", "g_loss"]
    assert gan.d_optimizer.iterations == 4 and gan.g_optimizer.iterations == 4
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(d_before, discriminator.weights))


def test_custom_layer_whose_sublayers_are_built_in_a_functional_call():
    """The Functional API guide's CustomRNN: a layer without `build` whose Dense sublayers are
    first called while the functional model is being built, and which makes its state with
    `ops.zeros` of the static batch size."""
    units, timesteps, input_dim, batch_size = 6, 5, 3, 4

    class CustomRNN(layers.Layer):
        def __init__(self):
            super().__init__()
            self.units = units
            self.projection_1 = layers.Dense(units=units, activation="tanh")
            self.projection_2 = layers.Dense(units=units, activation="tanh")
            self.classifier = layers.Dense(1)

        def call(self, inputs):
            outputs = []
            state = ops.zeros(shape=(inputs.shape[0], self.units))
            for t in range(inputs.shape[1]):
                y = self.projection_1(inputs[:, t, :]) + self.projection_2(state)
                state = y
                outputs.append(y)
            return self.classifier(ops.stack(outputs, axis=1))

    inputs = keras.Input(batch_shape=(batch_size, timesteps, input_dim))
    x = layers.Conv1D(8, 3)(inputs)
    rnn = CustomRNN()
    outputs = rnn(x)
    assert tuple(outputs.shape) == (batch_size, timesteps - 2, 1)
    model = keras.Model(inputs, outputs)
    assert rnn.projection_2.built and len(model.weights) == 2 + 6
    for w in model.weights:
        assert w.device.type == "cpu" and type(w).__name__ == "Variable"
    data = np.random.rand(batch_size, timesteps, input_dim).astype("float32")
    out = model.predict(data, verbose=0)
    np.testing.assert_allclose(out, rnn(model.layers[1](torch.from_numpy(data))).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    model.compile(optimizer="adam", loss="mse")
    model.fit(data, np.zeros((batch_size, timesteps - 2, 1)), batch_size=batch_size, verbose=0)


def test_creation_ops_inside_a_call_follow_the_data_device():
    """`ops.zeros`/`ones`/`full`/`eye`/`arange` inside a layer's call make tensors on the device
    of the layer's data (Keras makes them on its current device)."""
    seen = {}

    class Maker(layers.Layer):
        def call(self, x):
            made = [ops.zeros((2,)), ops.ones((2,)), ops.full((2,), 3.0), ops.eye(2),
                    ops.arange(3), ops.identity(2), ops.tri(2), ops.empty((1,))]
            seen["devices"] = {m.device.type for m in made}
            return x + ops.sum(made[0])

    layer = Maker()
    layer(torch.zeros(2, 2, device="meta"))
    assert seen["devices"] == {"meta"}
    layer(torch.zeros(2, 2))
    assert seen["devices"] == {"cpu"}
    assert ops.zeros((2,)).device.type == "cpu"  # outside a call: torch's default device


def test_a_script_class_is_serialized_without_a_module_as_keras_does():
    class MyLayer(layers.Layer):
        pass

    MyLayer.__module__ = "__main__"
    config = keras.saving.serialize_keras_object(MyLayer(name="mine"))
    assert config["module"] is None and config["class_name"] == "MyLayer"
    restored = keras.saving.deserialize_keras_object(config, custom_objects={"MyLayer": MyLayer})
    assert isinstance(restored, MyLayer) and restored.name == "mine"
