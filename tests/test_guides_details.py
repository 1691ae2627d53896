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
