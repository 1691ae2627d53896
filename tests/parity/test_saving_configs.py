"""Every layer's config crosses: plexus writes it, Keras and plexus rebuild the same layer."""
import json

import numpy as np
import pytest

import keras
import plexus
from plexus.saving.serialization import deserialize_keras_object, serialize_layer
from tests.parity.oracle import assert_close

CASES = [
    ("Dense", dict(units=3, activation="tanh", kernel_regularizer="l1"), (5,)),
    ("Embedding", dict(input_dim=10, output_dim=3, mask_zero=True), (4,)),
    ("Masking", dict(mask_value=0.5), (4, 3)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=3, strides=2), (6, 3)),
    ("Conv3DTranspose", dict(filters=2, kernel_size=2), (3, 3, 3, 2)),
    ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=2), (6, 3)),
    ("SeparableConv1D", dict(filters=4, kernel_size=2), (6, 3)),
    ("MaxPooling1D", dict(pool_size=2), (6, 3)),
    ("AveragePooling3D", dict(pool_size=2), (4, 4, 4, 2)),
    ("GlobalMaxPooling3D", dict(), (2, 2, 2, 3)),
    ("Cropping1D", dict(cropping=(1, 2)), (6, 3)),
    ("Cropping3D", dict(cropping=1), (4, 4, 4, 2)),
    ("UpSampling1D", dict(size=3), (4, 2)),
    ("UpSampling3D", dict(size=2), (2, 2, 2, 1)),
    ("ZeroPadding1D", dict(padding=2), (4, 2)),
    ("ZeroPadding3D", dict(padding=1), (2, 2, 2, 1)),
    ("Rescaling", dict(scale=2.0, offset=-1.0), (3,)),
    ("RepeatVector", dict(n=3), (4,)),
    ("Permute", dict(dims=(2, 1)), (4, 3)),
    ("UnitNormalization", dict(), (4,)),
    ("BatchNormalization", dict(momentum=0.9, epsilon=1e-4, center=False), (4,)),
    ("ReLU", dict(max_value=6.0, negative_slope=0.1, threshold=0.5), (4,)),
    ("Softmax", dict(axis=-1), (4,)),
    ("AlphaDropout", dict(rate=0.2), (4,)),
    ("GaussianDropout", dict(rate=0.2), (4,)),
    ("SpatialDropout2D", dict(rate=0.2), (3, 3, 2)),
    ("SpatialDropout3D", dict(rate=0.2), (2, 2, 2, 2)),
    ("SimpleRNN", dict(units=3, activation="relu", return_sequences=True), (5, 2)),
    ("GRU", dict(units=2, reset_after=False), (5, 2)),
    ("LSTM", dict(units=2, unit_forget_bias=False, go_backwards=True), (5, 2)),
    ("TimeDistributed", dict(layer=("Dense", dict(units=2))), (3, 4)),
    ("Bidirectional", dict(layer=("SimpleRNN", dict(units=2)), merge_mode="mul"), (3, 4)),
]


def _make(lib, name, kwargs):
    kwargs = dict(kwargs)
    if "layer" in kwargs:
        inner, inner_kwargs = kwargs["layer"]
        kwargs["layer"] = getattr(lib.layers, inner)(**inner_kwargs)
    return getattr(lib.layers, name)(**kwargs)


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=[c[0] for c in CASES])
def test_layer_config_crosses(name, kwargs, shape):
    dtype = "int32" if name == "Embedding" else "float32"
    layer = _make(plexus, name, kwargs)
    layer(plexus.Input(shape, dtype=dtype))
    config = json.loads(json.dumps(serialize_layer(layer)))
    again = deserialize_keras_object(config)
    assert type(again) is type(layer)
    assert json.dumps(serialize_layer(again)["config"], sort_keys=True) == \
        json.dumps(config["config"], sort_keys=True)
    klayer = keras.layers.deserialize(config)
    assert type(klayer).__name__ == name
    x = np.random.default_rng(0).integers(1, 9, size=(2,) + shape) if dtype == "int32" \
        else np.random.default_rng(0).normal(size=(2,) + shape).astype("float32")
    klayer(x)
    assert [w.shape for w in klayer.get_weights()] == [w.shape for w in layer.get_weights()]
    klayer.set_weights(layer.get_weights())
    assert_close(layer(x), klayer(x), rtol=1e-4, atol=1e-5)
