"""fit/evaluate/predict on generators, PyDatasets, torch datasets and plexus datasets."""
import numpy as np
import pytest
import torch

import plexus
from plexus import layers


def _model():
    inputs = plexus.Input(shape=(3,))
    model = plexus.Model(inputs, layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    return model


class StepCounter(plexus.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train, self.test = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.train.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.train[-1] += 1

    def on_test_begin(self, logs=None):
        self.test.append(0)

    def on_test_batch_end(self, batch, logs=None):
        self.test[-1] += 1


def _gen(n=5, size=4):
    for _ in range(n):
        yield np.ones((size, 3), "float32"), np.ones((size, 1), "float32")


def test_finite_generator_trains_every_epoch():
    counter = StepCounter()
    history = _model().fit(_gen(), epochs=3, verbose=0, callbacks=[counter])
    assert counter.train == [5, 5, 5]
    assert len(history.history["loss"]) == 3


def test_finite_generator_as_validation_data():
    counter = StepCounter()
    history = _model().fit(np.ones((8, 3)), np.ones((8, 1)), validation_data=_gen(3),
                           epochs=3, verbose=0, callbacks=[counter])
    assert counter.test == [3, 3, 3]
    assert len(history.history["val_loss"]) == 3


def test_endless_generator_with_steps_per_epoch():
    def endless():
        while True:
            yield np.ones((2, 3), "float32"), np.zeros((2, 1), "float32")
    counter = StepCounter()
    _model().fit(endless(), epochs=2, steps_per_epoch=4, validation_data=endless(),
                 validation_steps=2, verbose=0, callbacks=[counter])
    assert counter.train == [4, 4] and counter.test == [2, 2]


class Batches(plexus.utils.PyDataset):
    def __init__(self, n=4, **kwargs):
        super().__init__(**kwargs)
        self.n, self.begins, self.ends, self.seen = n, 0, 0, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.seen.append(i)
        return np.full((2, 3), i, "float32"), np.full((2, 1), i, "float32")

    def on_epoch_begin(self):
        self.begins += 1

    def on_epoch_end(self):
        self.ends += 1


@pytest.mark.parametrize("workers", [1, 3])
def test_py_dataset_epoch_hooks_and_workers(workers):
    ds = Batches(workers=workers, max_queue_size=2)
    counter = StepCounter()
    _model().fit(ds, epochs=2, verbose=0, callbacks=[counter])
    assert counter.train == [4, 4]
    assert ds.begins == 2 and ds.ends == 2
    assert sorted(ds.seen) == sorted(list(range(4)) * 2)
    predictions = _model().predict(Batches(), verbose=0)
    assert predictions.shape == (8, 1)


def test_py_dataset_in_processes():
    ds = Batches(workers=2, use_multiprocessing=True)
    model = _model()
    model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(model.evaluate(ds, verbose=0))


class EndlessSequence:
    """Keras-style Sequence without __len__ whose __getitem__ never raises IndexError."""

    def __getitem__(self, i):
        return np.ones((2, 3), "float32"), np.ones((2, 1), "float32")

    def on_epoch_end(self):
        pass


def test_sequence_without_length_is_a_clear_error_not_an_endless_loop():
    with pytest.raises(ValueError, match="no __len__.*steps_per_epoch"):
        _model().fit(EndlessSequence(), epochs=1, verbose=0)
    counter = StepCounter()
    _model().fit(EndlessSequence(), epochs=2, steps_per_epoch=3, verbose=0,
                 callbacks=[counter])
    assert counter.train == [3, 3]


def test_torch_datasets_are_batched():
    x, y = torch.randn(10, 3), torch.randn(10, 1)
    counter = StepCounter()
    model = _model()
    model.fit(torch.utils.data.TensorDataset(x, y), batch_size=4, epochs=2, verbose=0,
              callbacks=[counter])
    assert counter.train == [3, 3]

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(zip(x, y))
    counter = StepCounter()
    model.fit(Stream(), batch_size=5, epochs=2, verbose=0, callbacks=[counter])
    assert counter.train == [2, 2]
    assert model.predict(torch.utils.data.TensorDataset(x), batch_size=4,
                         verbose=0).shape == (10, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2)
    counter = StepCounter()
    model.fit(loader, epochs=2, steps_per_epoch=3, verbose=0, callbacks=[counter])
    assert counter.train == [3, 3]


def test_class_weight_with_a_generator_weights_the_loss():
    def batches():
        yield np.ones((4, 3), "float32"), np.array([[0], [0], [1], [1]], "float32")
    model = _model()
    plain = model.evaluate(list(batches())[0][0], list(batches())[0][1], verbose=0)
    weighted = model.fit(batches(), class_weight={0: 0.0, 1: 2.0}, epochs=1, verbose=0)
    assert weighted.history["loss"][0] != pytest.approx(plain)


def test_plexus_dataset_trains_and_shuffles_reproducibly():
    x = np.arange(20, dtype="float32").reshape(10, 2)
    ds = plexus.utils.timeseries_dataset_from_array(x, np.arange(10), sequence_length=3,
                                                    batch_size=4, shuffle=True, seed=3)
    first = [b[1].tolist() for b in ds]
    again = plexus.utils.timeseries_dataset_from_array(x, np.arange(10), sequence_length=3,
                                                       batch_size=4, shuffle=True, seed=3)
    assert [b[1].tolist() for b in again] == first
    inputs = plexus.Input(shape=(3, 2))
    model = plexus.Model(inputs, layers.Dense(1)(layers.Flatten()(inputs)))
    model.compile("sgd", "mse")
    counter = StepCounter()
    model.fit(ds, epochs=2, verbose=0, callbacks=[counter])
    assert counter.train == [2, 2]
