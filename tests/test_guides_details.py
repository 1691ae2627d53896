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
