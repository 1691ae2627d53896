"""What further keras.io examples do, shrunk to seconds on synthetic data: image classification
with a Vision Transformer (patches from `ops.image.extract_patches`, a position-encoding layer)
and with modern MLP models (MLP-Mixer, FNet through `ops.fft2`, gMLP), timeseries forecasting
from `timeseries_dataset_from_array`, a Conv1D/Conv1DTranspose anomaly autoencoder, and the
"Introduction to Keras for engineers" custom Dense and seeded Dropout."""
import numpy as np

import plexus as keras
from plexus import layers, ops


class Patches(layers.Layer):
    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def call(self, images):
        shape = ops.shape(images)
        patches = ops.image.extract_patches(images, size=self.patch_size)
        n = (shape[1] // self.patch_size) * (shape[2] // self.patch_size)
        return ops.reshape(patches, (shape[0], n, self.patch_size * self.patch_size * shape[3]))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


class PatchEncoder(layers.Layer):
    def __init__(self, num_patches, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = num_patches
        self.projection = layers.Dense(units=projection_dim)
        self.position_embedding = layers.Embedding(input_dim=num_patches, output_dim=projection_dim)

    def call(self, patch):
        positions = ops.expand_dims(ops.arange(start=0, stop=self.num_patches, step=1), axis=0)
        return self.projection(patch) + self.position_embedding(positions)


def _images(n=24, size=16, classes=5):
    rng = np.random.RandomState(0)
    return (rng.randint(0, 256, size=(n, size, size, 3)).astype("float32"),
            rng.randint(0, classes, size=(n, 1)))


def test_vision_transformer(tmp_path):
    x, y = _images()
    augmentation = keras.Sequential([layers.Normalization(), layers.Resizing(18, 18),
                                     layers.RandomFlip("horizontal"),
                                     layers.RandomRotation(factor=0.02)])
    augmentation.layers[0].adapt(x)
    patches = Patches(6)(ops.convert_to_tensor(x[:1]))
    assert tuple(patches.shape) == (1, 4, 108)
    np.testing.assert_array_equal(ops.convert_to_numpy(patches)[0, 1].reshape(6, 6, 3),
                                  x[0, :6, 6:12])  # the second patch, row-major

    inputs = keras.Input(shape=(16, 16, 3))
    encoded = PatchEncoder(9, 8)(Patches(6)(augmentation(inputs)))
    x1 = layers.LayerNormalization(epsilon=1e-6)(encoded)
    attention = layers.MultiHeadAttention(num_heads=2, key_dim=8, dropout=0.1)(x1, x1)
    x2 = layers.Add()([attention, encoded])
    x3 = layers.Dense(8, activation=keras.activations.gelu)(layers.LayerNormalization()(x2))
    representation = layers.Flatten()(layers.Add()([x3, x2]))
    model = keras.Model(inputs, layers.Dense(5)(representation))
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                           keras.metrics.SparseTopKCategoricalAccuracy(3, name="top-3")])
    checkpoint = str(tmp_path / "checkpoint.weights.h5")
    history = model.fit(x, y, batch_size=8, epochs=1, validation_split=0.25, verbose=0,
                        callbacks=[keras.callbacks.ModelCheckpoint(
                            checkpoint, monitor="val_accuracy", save_best_only=True,
                            save_weights_only=True)])
    assert {"loss", "accuracy", "top-3", "val_accuracy"} <= set(history.history)
    model.load_weights(checkpoint)
    assert len(model.evaluate(x, y, verbose=0)) == 3


def test_mlp_mixer_fnet_and_gmlp_blocks():
    x, y = _images(n=16)

    class MLPMixerLayer(layers.Layer):
        def __init__(self, num_patches, hidden_units, **kwargs):
            super().__init__(**kwargs)
            self.mlp1 = keras.Sequential([layers.Dense(num_patches, activation="gelu"),
                                          layers.Dense(num_patches)])
            self.mlp2 = keras.Sequential([layers.Dense(num_patches, activation="gelu"),
                                          layers.Dense(hidden_units)])
            self.normalize = layers.LayerNormalization(epsilon=1e-6)

        def call(self, inputs):
            x = ops.transpose(self.normalize(inputs), axes=(0, 2, 1))
            x = ops.transpose(self.mlp1(x), axes=(0, 2, 1)) + inputs
            return x + self.mlp2(self.normalize(x))

    class FNetLayer(layers.Layer):
        def __init__(self, embedding_dim, **kwargs):
            super().__init__(**kwargs)
            self.ffn = layers.Dense(embedding_dim, activation="gelu")
            self.normalize = layers.LayerNormalization(epsilon=1e-6)

        def call(self, inputs):
            real = ops.fft2((inputs, ops.zeros_like(inputs)))[0]
            x = self.normalize(real + inputs)
            return x + self.ffn(x)

    class GMLPLayer(layers.Layer):
        def __init__(self, num_patches, embedding_dim, **kwargs):
            super().__init__(**kwargs)
            self.channel_projection1 = layers.Dense(embedding_dim * 2, activation="gelu")
            self.channel_projection2 = layers.Dense(embedding_dim)
            self.spatial_projection = layers.Dense(num_patches, bias_initializer="Ones")
            self.normalize = layers.LayerNormalization(epsilon=1e-6)

        def call(self, inputs):
            u, v = ops.split(self.channel_projection1(inputs), indices_or_sections=2, axis=2)
            v = ops.transpose(self.spatial_projection(ops.transpose(self.normalize(v),
                                                                    axes=(0, 2, 1))), (0, 2, 1))
            return inputs + self.channel_projection2(u * v)

    # FNet's Fourier mixing is the real part of a 2-D FFT over (patches, channels)
    z = np.random.RandomState(1).rand(2, 4, 6).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(ops.fft2((z, np.zeros_like(z)))[0]),
                               np.fft.fft2(z).real, rtol=1e-4, atol=1e-4)
    for block in (MLPMixerLayer(4, 8), FNetLayer(8), GMLPLayer(4, 8)):
        inputs = keras.Input(shape=(16, 16, 3))
        h = layers.Dense(8)(Patches(8)(inputs))
        h = keras.Sequential([block])(h)
        model = keras.Model(inputs, layers.Dense(5)(layers.GlobalAveragePooling1D()(h)))
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                  callbacks=[keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=5)])
        assert model.predict(x[:2], verbose=0).shape == (2, 5)


def test_timeseries_forecasting_and_anomaly_autoencoder():
    t = np.arange(400)
    features = np.stack([np.sin(t / 20 + k) for k in range(3)], axis=1).astype("float32")
    past, future, step, batch = 24, 4, 3, 16
    targets = features[past + future:, 1]
    dataset = keras.utils.timeseries_dataset_from_array(
        features[:len(targets)], targets, sequence_length=past // step, sampling_rate=step,
        batch_size=batch)
    for inputs, labels in dataset.take(1):
        assert tuple(inputs.shape) == (batch, past // step, 3) and tuple(labels.shape) == (batch,)
    np.testing.assert_allclose(np.asarray(inputs[1, :, 0]),
                               features[1:1 + past:step, 0], rtol=1e-6)
    inp = keras.Input(shape=(inputs.shape[1], inputs.shape[2]))
    model = keras.Model(inp, layers.Dense(1)(layers.LSTM(8)(inp)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    history = model.fit(dataset, epochs=2, validation_data=dataset, verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)])
    assert len(history.history["val_loss"]) == 2

    windows = np.stack([features[i:i + 32, :1] for i in range(0, 300, 5)])
    autoencoder = keras.Sequential([
        layers.Input(shape=(32, 1)),
        layers.Conv1D(8, 7, padding="same", strides=2, activation="relu"),
        layers.Dropout(0.2),
        layers.Conv1DTranspose(8, 7, padding="same", strides=2, activation="relu"),
        layers.Conv1DTranspose(1, 7, padding="same")])
    autoencoder.compile(optimizer="adam", loss="mse")
    autoencoder.fit(windows, windows, epochs=1, batch_size=16, validation_split=0.1, verbose=0)
    assert autoencoder.predict(windows, verbose=0).shape == windows.shape


def test_engineers_intro_custom_dense_and_seeded_dropout():
    class MyDense(layers.Layer):
        def __init__(self, units, activation=None, name=None):
            super().__init__(name=name)
            self.units = units
            self.activation = keras.activations.get(activation)

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                     initializer=keras.initializers.GlorotNormal(), name="kernel")
            self.b = self.add_weight(shape=(self.units,), initializer=keras.initializers.Zeros(),
                                     name="bias")

        def call(self, inputs):
            return self.activation(ops.matmul(inputs, self.w) + self.b)

    class MyDropout(layers.Layer):
        def __init__(self, rate, name=None):
            super().__init__(name=name)
            self.rate = rate
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)

    inputs = keras.Input(shape=(6,))
    dropout = MyDropout(0.5)
    outputs = MyDense(3, activation="softmax")(dropout(MyDense(8, activation="relu")(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(), optimizer="adam",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
    x = np.random.rand(32, 6).astype("float32")
    y = np.random.randint(0, 3, 32)
    before = ops.convert_to_numpy(dropout.seed_generator.state).copy()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = ops.convert_to_numpy(dropout.seed_generator.state)
    assert after[0] == before[0] and after[1] == before[1] + 4  # one draw per training step
    assert [w.name for w in model.layers[1].weights] == ["kernel", "bias"]


def test_conv_subclasses_with_their_own_call_or_convolution_op(tmp_path):
    """The keras.io recipe "Customizing the convolution operation of a Conv2D layer": a
    subclass overriding `convolution_op`, and one overriding `call`, both reading
    `self.kernel` in Keras's layout `(kh, kw, in, filters)`."""
    class StandardizedConv2DWithOverride(layers.Conv2D):
        def convolution_op(self, inputs, kernel):
            mean, var = ops.moments(kernel, axes=[0, 1, 2], keepdims=True)
            return ops.conv(inputs, (kernel - mean) / ops.sqrt(var + 1e-10), padding="valid",
                            strides=list(self.strides), dilation_rate=list(self.dilation_rate))

    class StandardizedConv2DWithCall(layers.Conv2D):
        def call(self, inputs):
            mean, var = ops.moments(self.kernel, axes=[0, 1, 2], keepdims=True)
            result = ops.conv(inputs, (self.kernel - mean) / ops.sqrt(var + 1e-10),
                              padding="valid", strides=list(self.strides),
                              dilation_rate=list(self.dilation_rate))
            return result + self.bias if self.use_bias else result

    x = np.random.RandomState(0).rand(2, 9, 9, 3).astype("float32")
    for cls, activation in ((StandardizedConv2DWithOverride, "relu"),
                            (StandardizedConv2DWithCall, None)):
        layer = cls(4, 3, activation=activation, bias_initializer="ones")
        out = ops.convert_to_numpy(layer(x))
        assert tuple(layer.kernel.shape) == (3, 3, 3, 4)
        k, b = layer.get_weights()
        standardized = (k - k.mean(axis=(0, 1, 2), keepdims=True)) / np.sqrt(
            k.var(axis=(0, 1, 2), keepdims=True) + 1e-10)
        plain = layers.Conv2D(4, 3, activation=activation)
        plain.build(x.shape)
        plain.set_weights([standardized, b])
        np.testing.assert_allclose(out, ops.convert_to_numpy(plain(x)), rtol=1e-4, atol=1e-4)

    model = keras.Sequential([keras.Input((9, 9, 3)), StandardizedConv2DWithCall(4, 3),
                              StandardizedConv2DWithOverride(2, 3, activation="relu"),
                              layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(x, np.eye(2), epochs=1, verbose=0)
    model.save(tmp_path / "std.keras")
    loaded = keras.models.load_model(tmp_path / "std.keras", custom_objects={
        "StandardizedConv2DWithCall": StandardizedConv2DWithCall,
        "StandardizedConv2DWithOverride": StandardizedConv2DWithOverride})
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_miniature_gpt_one_target_for_the_only_output_with_a_loss():
    """The keras.io miniature-GPT example: a model with two outputs (logits and the
    transformer's features), compiled with `loss=[loss_fn, None]` and fit on one target
    array; a causal mask built with ops; a callback sampling with `ops.top_k`."""
    vocab, maxlen, dim = 30, 8, 8

    class Block(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.att = layers.MultiHeadAttention(2, dim)
            self.ffn = keras.Sequential([layers.Dense(dim, activation="relu"),
                                         layers.Dense(dim)])

        def call(self, inputs):
            n = ops.shape(inputs)[1]
            i, j = ops.arange(n)[:, None], ops.arange(n)
            mask = ops.reshape(ops.cast(i >= j, "bool"), [1, n, n])
            mult = ops.concatenate([ops.expand_dims(ops.shape(inputs)[0], -1),
                                    ops.convert_to_tensor([1, 1])], 0)
            x = inputs + self.att(inputs, inputs, attention_mask=ops.tile(mask, mult))
            return x + self.ffn(x)

    inputs = layers.Input(shape=(maxlen,), dtype="int32")
    x = Block()(layers.Embedding(vocab, dim)(inputs))
    outputs = layers.Dense(vocab)(x)
    model = keras.Model(inputs=inputs, outputs=[outputs, x])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.SGD(0.0), loss=[loss_fn, None])

    sampled = []

    class TextGenerator(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            y, _ = self.model.predict(np.array([[3, 4, 5] + [0] * (maxlen - 3)]), verbose=0)
            logits, indices = ops.top_k(y[0][2], k=5, sorted=True)
            probs = np.asarray(keras.activations.softmax(ops.expand_dims(logits, 0))[0])
            sampled.append(int(np.random.choice(np.asarray(indices), p=probs / probs.sum())))

    rng = np.random.RandomState(0)
    seqs = rng.randint(1, vocab, size=(16, maxlen + 1))
    history = model.fit(seqs[:, :-1], seqs[:, 1:], batch_size=16, epochs=1, verbose=0,
                        callbacks=[TextGenerator()])
    assert sorted(history.history) == ["loss"] and len(sampled) == 1
    logits, _ = model(seqs[:, :-1])
    np.testing.assert_allclose(history.history["loss"][0],
                               float(loss_fn(seqs[:, 1:], logits).detach()), rtol=1e-5)
    # a single target array stays ambiguous when several outputs take targets
    model.compile("adam", loss=[loss_fn, "mse"])
    try:
        model.fit(seqs[:, :-1], seqs[:, 1:], verbose=0)
        raise AssertionError("expected a ValueError")
    except ValueError as e:
        assert "expects 2 outputs" in str(e)
