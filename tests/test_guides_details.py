"""Details of the keras.io guides "Understanding masking & padding", "The Sequential model" and
"Transfer learning & fine-tuning" that the broader guide tests do not reach, on small data."""
import numpy as np
import pytest
import torch

import plexus as keras
from plexus import layers, ops


def test_symbolic_tensors_show_their_mask_as_keras_mask():
    class MyActivation(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs):
            return ops.relu(inputs)

    class TemporalSoftmax(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            assert mask is not None
            m = ops.expand_dims(ops.cast(mask, "float32"), -1)
            e = ops.exp(inputs) * m
            return e / ops.sum(e * m, axis=-1, keepdims=True)

    inputs = keras.Input(shape=(None,), dtype="int32")
    assert inputs._keras_mask is None
    x = layers.Embedding(input_dim=50, output_dim=4, mask_zero=True)(inputs)
    x = MyActivation()(x)
    mask = x._keras_mask
    assert mask is not None and mask.shape == (None, None) and mask.dtype == "bool"
    y = layers.Dense(1)(x)
    assert y._keras_mask is not None  # Dense passes the mask on
    outputs = TemporalSoftmax()(y)
    lstm_out = layers.LSTM(3)(x)
    assert lstm_out._keras_mask is None  # the LSTM consumes it
    model = keras.Model(inputs, [outputs, lstm_out])
    data = np.random.randint(0, 50, size=(4, 7))
    data[:, -2:] = 0
    soft, _ = model(data)
    # the guide's softmax runs over the last axis (of size 1): 1 where unmasked, 0/0 where masked
    assert torch.all(torch.isnan(soft[:, -2:])) and torch.all(soft[:, :-2][data[:, :-2] != 0] == 1)


class _LogisticEndpoint(layers.Layer):
    """The endpoint-layer recipe: a layer that adds its own loss from targets it is given."""

    def call(self, logits, targets=None, sample_weight=None):
        if targets is not None:
            self.add_loss(keras.losses.BinaryCrossentropy(from_logits=True)(
                targets, logits, sample_weight))
        return ops.sigmoid(logits)


def test_a_layer_called_with_keyword_arguments_only_takes_the_first_as_its_inputs(tmp_path):
    class LogReg(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(1, kernel_initializer="ones")
            self.logistic_endpoint = _LogisticEndpoint()

        def call(self, inputs):
            logits = self.dense(inputs["inputs"])
            return self.logistic_endpoint(logits=logits, targets=inputs["targets"],
                                          sample_weight=inputs["sample_weight"])

    data = {"inputs": np.ones((8, 3)), "targets": np.ones((8, 1)),
            "sample_weight": np.ones((8, 1))}
    model = LogReg()
    model.compile(keras.optimizers.SGD(0.0))
    history = model.fit(data, epochs=1, batch_size=8, verbose=0)
    # logits are 3 everywhere: binary crossentropy log(1 + e^-3) against targets 1
    np.testing.assert_allclose(history.history["loss"][0], np.log1p(np.exp(-3.0)), rtol=1e-5)

    # the same keyword-only call while building a functional model, saved and loaded
    i = keras.Input((3,), name="inputs")
    t = keras.Input((1,), name="targets")
    p = _LogisticEndpoint()(logits=layers.Dense(1)(i), targets=t)
    functional = keras.Model({"inputs": i, "targets": t}, p)
    functional.compile("adam")
    functional.fit({"inputs": np.ones((8, 3)), "targets": np.ones((8, 1))}, verbose=0)
    functional.save(tmp_path / "endpoint.keras")
    loaded = keras.models.load_model(tmp_path / "endpoint.keras",
                                     custom_objects={"_LogisticEndpoint": _LogisticEndpoint})
    x = {"inputs": np.ones((2, 3)), "targets": np.ones((2, 1))}
    np.testing.assert_allclose(functional.predict(x, verbose=0), loaded.predict(x, verbose=0))
    with pytest.raises(TypeError, match="called without inputs"):
        _LogisticEndpoint()(targets=torch.ones(2, 1))


def test_a_sequential_block_built_by_its_first_call_takes_other_lengths_later():
    block = keras.Sequential([layers.Dense(4), layers.Dense(2)])
    assert tuple(block(ops.ones((2, 5, 3))).shape) == (2, 5, 2)
    assert tuple(block(ops.ones((6, 7, 3))).shape) == (6, 7, 2)  # as Keras: sizes not enforced
    with pytest.raises(ValueError):
        block(ops.ones((6, 7)))  # a different rank still is


def _translation_model(vocab_size=50, embed_dim=8, num_heads=2):
    """The keras.io Transformer translation example, small: custom layers that make, pass and
    consume masks (a list of masks for a list of inputs), a causal mask built with ops (tile
    by a tensor of counts), Sequential feed-forward blocks."""
    class PositionalEmbedding(layers.Layer):
        def __init__(self, sequence_length, vocab_size, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embeddings = layers.Embedding(vocab_size, embed_dim)
            self.position_embeddings = layers.Embedding(sequence_length, embed_dim)

        def call(self, inputs):
            positions = ops.arange(0, ops.shape(inputs)[-1], 1)
            return self.token_embeddings(inputs) + self.position_embeddings(positions)

        def compute_mask(self, inputs, mask=None):
            return ops.not_equal(inputs, 0)

    class TransformerEncoder(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.dense_proj = keras.Sequential([layers.Dense(16, activation="relu"),
                                                layers.Dense(embed_dim)])
            self.layernorm = layers.LayerNormalization()
            self.supports_masking = True

        def call(self, inputs, mask=None):
            padding_mask = None if mask is None else ops.cast(mask[:, None, :], "int32")
            x = inputs + self.attention(query=inputs, value=inputs, key=inputs,
                                        attention_mask=padding_mask)
            return self.layernorm(x + self.dense_proj(x))

    class TransformerDecoder(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.attention_1 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.attention_2 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.dense_proj = keras.Sequential([layers.Dense(16, activation="relu"),
                                                layers.Dense(embed_dim)])
            self.supports_masking = True
            self.seen_masks = []

        def call(self, inputs, mask=None):
            inputs, encoder_outputs = inputs
            causal_mask = self.get_causal_attention_mask(inputs)
            inputs_mask, encoder_mask = (None, None) if mask is None else mask
            self.seen_masks.append((inputs_mask is not None, encoder_mask is not None))
            out_1 = inputs + self.attention_1(query=inputs, value=inputs, key=inputs,
                                              attention_mask=causal_mask, query_mask=inputs_mask)
            out_2 = out_1 + self.attention_2(query=out_1, value=encoder_outputs,
                                             key=encoder_outputs, query_mask=inputs_mask,
                                             key_mask=encoder_mask)
            return out_2 + self.dense_proj(out_2)

        def get_causal_attention_mask(self, inputs):
            input_shape = ops.shape(inputs)
            batch_size, sequence_length = input_shape[0], input_shape[1]
            i = ops.arange(sequence_length)[:, None]
            j = ops.arange(sequence_length)
            mask = ops.reshape(ops.cast(i >= j, "int32"), (1, sequence_length, sequence_length))
            mult = ops.concatenate([ops.expand_dims(batch_size, -1),
                                    ops.convert_to_tensor([1, 1])], axis=0)
            return ops.tile(mask, mult)

    enc_in = keras.Input(shape=(None,), dtype="int64", name="encoder_inputs")
    dec_in = keras.Input(shape=(None,), dtype="int64", name="decoder_inputs")
    encoded = TransformerEncoder()(PositionalEmbedding(12, vocab_size, embed_dim)(enc_in))
    decoder = TransformerDecoder()
    x = decoder([PositionalEmbedding(12, vocab_size, embed_dim)(dec_in), encoded])
    out = layers.Dense(vocab_size, activation="softmax")(x)
    return keras.Model({"encoder_inputs": enc_in, "decoder_inputs": dec_in}, out), decoder


def test_a_transformer_translation_model_with_masks_and_a_causal_mask():
    model, decoder = _translation_model()
    assert decoder.seen_masks and decoder.seen_masks[-1] == (True, True)  # traced with both
    rng = np.random.RandomState(0)
    enc = rng.randint(1, 50, size=(8, 10))
    dec = rng.randint(1, 50, size=(8, 9))
    enc[:, 7:] = 0
    dec[:, 6:] = 0
    model.compile("rmsprop", loss="sparse_categorical_crossentropy")
    model.fit({"encoder_inputs": enc, "decoder_inputs": dec}, rng.randint(0, 50, size=(8, 9)),
              batch_size=4, verbose=0)
    assert decoder.seen_masks[-1] == (True, True)
    pred = model.predict({"encoder_inputs": enc, "decoder_inputs": dec}, verbose=0)
    assert pred.shape == (8, 9, 50)
    # the causal mask: changing a later decoder token leaves earlier predictions unchanged
    dec2 = dec.copy()
    dec2[:, 4] = (dec2[:, 4] % 49) + 1
    pred2 = model.predict({"encoder_inputs": enc, "decoder_inputs": dec2}, verbose=0)
    np.testing.assert_allclose(pred[:, :4], pred2[:, :4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(pred[:, 4], pred2[:, 4])


def test_knowledge_distillation_with_a_compute_loss_override_without_training():
    """The keras.io distillation example overrides `compute_loss(x, y, y_pred, sample_weight,
    allow_empty=False)` (no `training=`); fit and evaluate call it as Keras does."""
    class Distiller(keras.Model):
        def __init__(self, student, teacher):
            super().__init__()
            self.teacher, self.student = teacher, student

        def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn, alpha=0.1,
                    temperature=3):
            super().compile(optimizer=optimizer, metrics=metrics)
            self.student_loss_fn, self.distillation_loss_fn = student_loss_fn, distillation_loss_fn
            self.alpha, self.temperature = alpha, temperature

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                         allow_empty=False):
            teacher_pred = self.teacher(x, training=False)
            student_loss = self.student_loss_fn(y, y_pred)
            distillation_loss = self.distillation_loss_fn(
                ops.softmax(teacher_pred / self.temperature, axis=1),
                ops.softmax(y_pred / self.temperature, axis=1)) * (self.temperature ** 2)
            return self.alpha * student_loss + (1 - self.alpha) * distillation_loss

        def call(self, x):
            return self.student(x)

    def net(width):
        return keras.Sequential([keras.Input((6,)), layers.Dense(width, activation="relu"),
                                 layers.Dense(3)])

    teacher, student = net(8), net(4)
    distiller = Distiller(student=student, teacher=teacher)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0),
                      metrics=[keras.metrics.SparseCategoricalAccuracy()],
                      student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      distillation_loss_fn=keras.losses.KLDivergence(), alpha=0.1, temperature=10)
    x = np.random.rand(8, 6).astype("float32")
    y = np.random.randint(0, 3, 8)
    history = distiller.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert sorted(history.history) == ["loss", "sparse_categorical_accuracy"]
    t, s = teacher(x), student(x)
    expected = 0.1 * keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, s) + \
        0.9 * keras.losses.KLDivergence()(ops.softmax(t / 10, axis=1),
                                          ops.softmax(s / 10, axis=1)) * 100
    np.testing.assert_allclose(history.history["loss"][0], float(expected.detach()), rtol=1e-5)
    loss, acc = distiller.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, float(expected.detach()), rtol=1e-5)


def test_integer_inputs_reach_dense_as_numbers():
    """`Input(dtype="int32")` feeding a Dense (counts, ids used as numbers): the integers are
    promoted to the kernel's dtype, as Keras's matmul promotes them."""
    i = keras.Input((3,), dtype="int32")
    model = keras.Model(i, layers.Dense(2, kernel_initializer="ones")(i))
    out = model.predict(np.array([[1, 2, 3]], dtype="int32"), verbose=0)
    np.testing.assert_allclose(out, [[6.0, 6.0]])
    dense = layers.Dense(2, kernel_initializer="ones", use_bias=False)
    np.testing.assert_allclose(ops.convert_to_numpy(dense(torch.tensor([[1, 2]]))), [[3.0, 3.0]])


def test_conv_subclass_calling_super_call_and_causal_convolution_op():
    """A Conv subclass overriding `call` that hands back to `super().call(...)`, and a causal
    Conv1D overriding `convolution_op`: both compute as the plain layer on the same kernel."""
    import numpy as np
    import plexus as keras

    class Doubled(keras.layers.Conv2D):
        def call(self, x):
            return super().call(x * 2)

    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    doubled, plain = Doubled(4, 3), keras.layers.Conv2D(4, 3)
    doubled(x), plain(x)
    plain.set_weights(doubled.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(doubled(x)),
                               keras.ops.convert_to_numpy(plain(x * 2)), rtol=1e-5, atol=1e-5)

    class Hooked(keras.layers.Conv1D):
        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, kernel)

    s = np.random.default_rng(1).normal(size=(2, 10, 3)).astype("float32")
    hooked = Hooked(4, 3, padding="causal", dilation_rate=2)
    causal = keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2)
    hooked(s), causal(s)
    causal.set_weights(hooked.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hooked(s)),
                               keras.ops.convert_to_numpy(causal(s)), rtol=1e-5, atol=1e-5)
