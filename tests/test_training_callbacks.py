"""Callbacks and the progress display."""
import csv
import io
import os

import numpy as np
import pytest

import plexus
from plexus.training.progbar import Progbar

X = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
Y = X.sum(axis=1, keepdims=True)


def _model(lr=0.05):
    i = plexus.Input(shape=(3,))
    m = plexus.Model(i, plexus.layers.Dense(1)(i))
    m.compile(plexus.optimizers.SGD(lr), "mse", metrics=["mae"])
    return m


def test_history_and_hook_order():
    calls = []

    class Recorder(plexus.callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin{epoch}")

        def on_batch_end(self, batch, logs=None):
            calls.append(f"batch{batch}:{sorted(logs)}")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch_end{epoch}:{sorted(logs)}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

        def on_test_begin(self, logs=None):
            calls.append("test_begin")

        def on_test_end(self, logs=None):
            calls.append(f"test_end:{sorted(logs)}")

    m = _model()
    h = m.fit(X, Y, batch_size=8, epochs=2, verbose=0, validation_split=0.25,
              callbacks=[Recorder()])
    assert h is m.history and h.epoch == [0, 1]
    assert sorted(h.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert calls[0] == "train_begin" and calls[-1] == "train_end"
    assert calls[1:7] == ["epoch_begin0", "batch0:['loss', 'mae']", "batch1:['loss', 'mae']",
                          "test_begin", "test_end:['loss', 'mae']",
                          "epoch_end0:['loss', 'mae', 'val_loss', 'val_mae']"]
    assert h.params == {"verbose": 0, "epochs": 2, "steps": 2}


def test_early_stopping_restores_best_weights():
    m = _model(lr=0.0)
    losses = iter([5.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    snapshots = []

    class FakeVal(plexus.callbacks.Callback):  # a scripted val_loss; weights change each epoch
        def on_epoch_end(self, epoch, logs=None):
            w = m.get_weights()
            m.set_weights([v + 1 for v in w])
            snapshots.append(m.get_weights())
            logs["val_loss"] = next(losses)

    es = plexus.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    h = m.fit(X, Y, epochs=6, verbose=0, callbacks=[FakeVal(), es])
    assert h.epoch == [0, 1, 2, 3] and es.stopped_epoch == 3 and es.best == 1.0
    for a, b in zip(m.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau_and_scheduler():
    m = _model()
    flat = plexus.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: logs.__setitem__("val_loss", 1.0))
    rl = plexus.callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.01)
    h = m.fit(X, Y, epochs=5, verbose=0, callbacks=[flat, rl])
    assert m.optimizer.learning_rate == pytest.approx(0.01)
    assert h.history["learning_rate"] == pytest.approx([0.05, 0.05, 0.025, 0.0125, 0.01])
    m = _model()
    sched = plexus.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    h = m.fit(X, Y, epochs=3, verbose=0, callbacks=[sched])
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    m = _model()
    m.fit(X, Y, epochs=2, verbose=0, callbacks=[plexus.callbacks.CSVLogger(path)])
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert set(rows[0]) == {"epoch", "loss", "mae"}
    assert float(rows[1]["loss"]) == pytest.approx(m.history.history["loss"][1], rel=1e-6)


def test_model_checkpoint_calls_save(tmp_path):
    saved = []

    class Recording(plexus.Model):
        def save_weights(self, path, overwrite=True):
            saved.append(("weights", path))

        def save(self, path, overwrite=True, **kw):
            saved.append(("model", path))

    i = plexus.Input(shape=(3,))
    m = Recording(i, plexus.layers.Dense(1)(i))
    m.compile("sgd", "mse")
    pattern = str(tmp_path / "w-{epoch:02d}.weights.h5")
    m.fit(X, Y, epochs=2, verbose=0,
          callbacks=[plexus.callbacks.ModelCheckpoint(pattern, save_weights_only=True)])
    assert saved == [("weights", pattern.format(epoch=1)), ("weights", pattern.format(epoch=2))]
    saved.clear()
    best = plexus.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), monitor="loss",
                                            save_best_only=True)
    m.fit(X, Y, epochs=3, verbose=0, callbacks=[best])
    assert saved and all(kind == "model" for kind, _ in saved)
    with pytest.raises(ValueError, match="weights.h5"):
        plexus.callbacks.ModelCheckpoint("x.keras", save_weights_only=True)


@pytest.mark.skipif(not hasattr(plexus.Model, "save_weights"), reason="saving not present")
def test_model_checkpoint_writes_a_loadable_file(tmp_path):
    m = _model()
    path = str(tmp_path / "best.weights.h5")
    m.fit(X, Y, epochs=2, verbose=0, callbacks=[
        plexus.callbacks.ModelCheckpoint(path, monitor="loss", save_weights_only=True)])
    m2 = _model()
    m2.load_weights(path)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_progress_lines_in_a_log_file(capsys):
    m = _model()
    m.fit(X, Y, epochs=2, batch_size=4, verbose=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and out[2] == "Epoch 2/2" and len(out) == 4
    assert out[1].startswith("4/4 ") and "/step - loss: " in out[1] and " - mae: " in out[1]
    m.fit(X, Y, epochs=2, batch_size=4, verbose=2)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[1].startswith("4/4 - ") and "loss:" in out[1]
    m.fit(X, Y, epochs=2, verbose=0)
    m.evaluate(X, Y, verbose=0)
    m.predict(X, verbose=0)
    assert capsys.readouterr().out == ""


def test_progbar_redraws_in_place_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = Progbar(3, stream=stream, interval=0)
    for step in (1, 2):
        bar.update(step, {"loss": 0.5})
    bar.update(3, {"loss": 0.25}, finalize=True)
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "3/3" in text and "loss: 0.2500" in text
