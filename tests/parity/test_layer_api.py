"""Smaller parts of Keras 3's Layer/Model API: masks on tensors, stateful RNNs, input-rank
adaptation, callback logs, custom metrics' variables, summary of unbuilt models."""
import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import assert_close, keras


def _ids():
    return np.array([[3, 5, 0, 0], [7, 0, 0, 0]], "int32")


def test_masks_travel_with_tensors_as_in_keras():
    def run(lib):
        emb = lib.layers.Embedding(10, 3, mask_zero=True)
        seen = []

        class Probe(lib.layers.Layer):
            def __init__(self):
                super().__init__()
                self.supports_masking = True

            def call(self, x, mask=None):
                seen.append(mask)
                return x

        e = emb(_ids())
        out = Probe()(e)  # a custom layer receives the mask of its input
        inputs = lib.Input((4,), dtype="int32")
        x = lib.layers.Embedding(10, 3, mask_zero=True)(inputs)
        y = lib.layers.LSTM(2, return_sequences=True)(x)
        model = lib.Model(inputs, Probe()(y))
        z = model(_ids())
        concrete = [np.asarray(m) for m in seen if type(m) is torch.Tensor
                    and m.device.type == "cpu"]  # the eager calls' masks
        return (np.asarray(e._keras_mask), concrete, getattr(out, "_keras_mask", None) is None,
                np.asarray(z._keras_mask))

    ours, theirs = run(plexus), run(keras)
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert len(ours[1]) == len(theirs[1]) == 2  # the eager call and the model call
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_array_equal(a, b)
    assert ours[2] == theirs[2]
    np.testing.assert_array_equal(ours[3], theirs[3])


def test_custom_compute_mask_creates_a_mask():
    class NonZero(layers.Layer):
        def call(self, x):
            return x

        def compute_mask(self, x, mask=None):
            return x != 0

    class Count(layers.Layer):
        def call(self, x, mask=None):
            return mask.sum(-1, keepdim=True).float()

    inputs = plexus.Input((4,))
    model = plexus.Model(inputs, Count()(NonZero()(inputs)))
    assert NonZero().supports_masking and not layers.Layer().supports_masking
    assert model(np.array([[1.0, 0, 2, 0]])).tolist() == [[2.0]]
    assert NonZero()(torch.tensor([[0.0, 1.0]]))._keras_mask.tolist() == [[False, True]]


def test_stateful_lstm_matches_keras():
    x = np.random.RandomState(0).rand(2, 5, 3).astype("float32")

    def make(lib):
        inputs = lib.Input(batch_shape=(2, 5, 3))
        return lib.Model(inputs, lib.layers.LSTM(4, stateful=True)(inputs))

    ours, theirs = make(plexus), make(keras)
    theirs.set_weights(ours.get_weights())
    first = ours.predict(x, verbose=0)
    second = ours.predict(x, verbose=0)
    assert_close(first, theirs.predict(x, verbose=0))
    assert_close(second, theirs.predict(x, verbose=0))  # carried over from the first call
    assert not np.allclose(first, second)
    ours.layers[1].reset_state()
    theirs.layers[1].reset_state()
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))
    assert len(ours.weights) == 3 and len(ours.state_dict()) == 3  # states are not weights
    ours.compile("sgd", "mse")  # trains: each batch starts from the previous batch's states
    ours.fit(np.tile(x, (3, 1, 1)), np.zeros((6, 4)), batch_size=2, shuffle=False, verbose=0)
    ours.reset_states()
    assert float(ours.layers[1].states[0].abs().sum()) == 0
    with pytest.raises(ValueError, match="batch size must be static"):
        layers.GRU(2, stateful=True)(plexus.Input((5, 3)))
    with pytest.raises(ValueError, match="Expected batch size: 2"):
        ours.layers[1](torch.zeros(3, 5, 3))


def test_input_rank_adaptation_as_keras():
    inputs = plexus.Input((6, 6, 1))
    model = plexus.Model(inputs, layers.Dense(2)(layers.Flatten()(inputs)))
    data = np.random.RandomState(0).rand(4, 6, 6).astype("float32")
    assert model(data).shape == (4, 2)
    model.compile("sgd", "mse")
    model.fit(data, np.zeros((4, 2)), verbose=0)
    flat = plexus.Input((3,))
    squeeze = plexus.Model(flat, layers.Dense(2)(flat))
    assert squeeze.predict(np.zeros((5, 3, 1)), verbose=0).shape == (5, 2)
    with pytest.raises(ValueError, match=r"expects arrays of shape \(None, 3\)"):
        squeeze(np.zeros((5, 3, 2)))


def test_callbacks_always_receive_a_logs_dict():
    received = {}
    hooks = [name for name in dir(plexus.callbacks.Callback) if name.startswith("on_")]

    def recorder(name):
        return lambda self, *args: received.setdefault(name, []).append(args[-1])

    Recorder = type("Recorder", (plexus.callbacks.Callback,),
                    {name: recorder(name) for name in hooks})

    model = plexus.Sequential([plexus.Input((2,)), layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((4, 2)), np.zeros((4, 1))
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, validation_data=(x, y),
              callbacks=[Recorder()])
    model.evaluate(x, y, verbose=0, callbacks=[Recorder()])
    model.predict(x, verbose=0, callbacks=[Recorder()])
    assert {"on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_test_begin",
            "on_test_batch_begin", "on_predict_begin", "on_predict_batch_begin",
            "on_predict_batch_end", "on_train_end"} <= set(received)
    for hook, logs in received.items():
        assert all(isinstance(v, dict) or hasattr(v, "keys") for v in logs), hook
    assert received["on_predict_batch_end"][0]["outputs"].shape == (4, 1)


def test_custom_metric_with_add_variable_matches_keras():
    def make(lib, ops_sum):
        class TruePositives(lib.metrics.Metric):
            def __init__(self, name="tp", **kwargs):
                super().__init__(name=name, **kwargs)
                self.count = self.add_variable(shape=(), initializer="zeros", name="count")

            def update_state(self, y_true, y_pred, sample_weight=None):
                hits = (np.asarray(y_true) > 0.5) & (np.asarray(y_pred) > 0.5)
                self.count.assign_add(ops_sum(hits.astype("float32")))

            def result(self):
                return self.count

        return TruePositives()

    ours, theirs = make(plexus, np.sum), make(keras, np.sum)
    y_true, y_pred = np.array([1, 1, 0, 1.0]), np.array([0.9, 0.2, 0.8, 0.7])
    for m in (ours, theirs):
        m.update_state(y_true, y_pred)
        m.update_state(y_true, y_pred)
    assert float(ours.result()) == float(theirs.result()) == 4.0
    assert [v.path for v in ours.variables] == ["tp/count"] and ours.dtype == theirs.dtype
    ours.reset_state()
    assert float(ours.result()) == 0.0
    w = plexus.metrics.Metric(name="m").add_weight(name="w")
    assert w.shape == () and not w.trainable


def test_summary_of_unbuilt_models_lists_layers():
    model = plexus.Sequential([layers.Dense(3), layers.Dense(2, name="out")])
    lines = []
    model.summary(print_fn=lines.append)
    rows = [line for line in lines if "(Dense)" in line]
    assert len(rows) == 2 and all("?" in r and "0 (unbuilt)" in r for r in rows)
    assert "Total params: 0" in lines
