"""Callbacks: objects whose hooks `fit`, `evaluate` and `predict` call as they run.

Batch-level logs are lazy: reading them (`logs["loss"]`) waits for the device to report the
running metrics, so callbacks that ignore batch logs cost nothing per step.
"""
import csv
import os
from collections.abc import MutableMapping

import numpy as np
import torch

from plexus.training.progbar import Progbar

_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
          "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
          "on_predict_batch_end")


class LazyLogs(MutableMapping):
    """A dict of metric values computed on first access by `compute()`."""

    def __init__(self, compute):
        self._compute, self._data = compute, None

    def _d(self):
        if self._data is None:
            self._data = dict(self._compute())
        return self._data

    def __getitem__(self, k):
        return self._d()[k]

    def __setitem__(self, k, v):
        self._d()[k] = v

    def __delitem__(self, k):
        del self._d()[k]

    def __iter__(self):
        return iter(self._d())

    def __len__(self):
        return len(self._d())

    def copy(self):
        return dict(self._d())

    def __repr__(self):
        return repr(self._d())


class Callback:
    """Base class: override the hooks you need. `self.model` and `self.params` are set by fit.

    Hooks: `on_train_begin/end(logs)`, `on_epoch_begin/end(epoch, logs)`,
    `on_train_batch_begin/end(batch, logs)` (alias `on_batch_begin/end`),
    `on_test_begin/end`, `on_test_batch_begin/end`, `on_predict_begin/end`,
    `on_predict_batch_begin/end`.
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass


def _overrides(cb, hook):
    if hook in cb.__dict__:  # LambdaCallback-style instance attribute
        return True
    own = getattr(type(cb), hook)
    if own is not getattr(Callback, hook):
        return True
    alias = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}
    if hook in alias and own is getattr(Callback, hook):
        a = alias[hook]
        return a in cb.__dict__ or getattr(type(cb), a) is not getattr(Callback, a)
    return False


class CallbackList:
    """Calls every callback's hook in order; batch hooks only on callbacks that define them."""

    def __init__(self, callbacks=None, model=None, add_history=False, add_progbar=False,
                 verbose=1, epochs=1, steps=None, mode="train"):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be plexus.callbacks.Callback objects; received {cb!r}."
                )
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.insert(0, ProgbarLogger())
        if add_history:
            self.callbacks.append(History())
        self.params = {"verbose": verbose, "epochs": epochs, "steps": steps}
        self.mode = mode
        for cb in self.callbacks:
            cb.set_params(self.params)
            cb.set_model(model)
            if isinstance(cb, ProgbarLogger):
                cb.mode = mode
        self._batch = {h: [cb for cb in self.callbacks if _overrides(cb, h)] for h in _HOOKS}
        self.check_finite = any(getattr(cb, "_check_finite", False) for cb in self.callbacks)

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def _call_batch(self, hook, batch, logs):
        for cb in self._batch[hook]:
            getattr(cb, hook)(batch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_batch("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call_batch("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call_batch("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call_batch("on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_batch("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call_batch("on_predict_batch_end", batch, logs)


class History(Callback):
    """Records the epoch logs: `history.history["loss"]` is the loss of every epoch.

    `fit` returns it and also sets it as `model.history`.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        self.model.history = self

    def set_model(self, model):
        super().set_model(model)
        model.history = self

    def __repr__(self):
        return f"<plexus.callbacks.History epochs={len(self.epoch)}>"


class ProgbarLogger(Callback):
    """Prints `Epoch i/n` and a progress bar with the running metrics (added by `fit` when
    `verbose` is not 0)."""

    def __init__(self, count_mode="steps", stateful_metrics=None):
        super().__init__()
        self.bar = None
        self.mode = "train"
        self.step = 0

    def _new_bar(self):
        self.bar = Progbar(self.params.get("steps"), verbose=self.params.get("verbose", 1))
        self.step = 0

    def on_epoch_begin(self, epoch, logs=None):
        if self.params.get("verbose"):
            print(f"Epoch {epoch + 1}/{self.params.get('epochs')}", flush=True)
        self._new_bar()

    def on_test_begin(self, logs=None):
        if self.mode == "test":
            self._new_bar()

    def on_predict_begin(self, logs=None):
        self._new_bar()

    def _batch(self, batch, logs):
        self.step = batch + 1
        if self.bar is not None and self.bar.due(self.step) and self.bar.target != self.step:
            self.bar.update(self.step, dict(logs or {}))

    def on_train_batch_end(self, batch, logs=None):
        self._batch(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if self.mode == "test":
            self._batch(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._batch(batch, None)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.update(self.step, logs, finalize=True)

    def on_test_end(self, logs=None):
        if self.mode == "test" and self.bar is not None:
            self.bar.update(self.step, logs, finalize=True)

    def on_predict_end(self, logs=None):
        if self.bar is not None:
            self.bar.update(self.step, None, finalize=True)


def _monitor_mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'; received {mode!r}.")
    if mode != "auto":
        return mode
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if any(name.endswith(s) for s in ("acc", "accuracy", "auc", "precision", "recall")):
        return "max"
    return "min"


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class EarlyStopping(Callback):
    """Stop training when `monitor` has stopped improving for `patience` epochs.

    Args:
        monitor: the log to watch (`"val_loss"` by default).
        min_delta: smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        mode: `"min"`, `"max"` or `"auto"` (from the name).
        baseline: a value the monitor must beat.
        restore_best_weights: put back the weights of the best epoch when training ends.
        start_from_epoch: epochs to wait before watching.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.mode = _monitor_mode(mode, monitor)
        self.min_delta = abs(min_delta)

    def _better(self, current, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = None, None

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            import warnings
            warnings.warn(f"EarlyStopping is watching {self.monitor!r}, which is not in the "
                          f"logs (available: {', '.join(logs or {})}).", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _snapshot(self.model)
        self.wait += 1
        if self._better(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)

    def get_monitor_value(self, logs):
        return (logs or {}).get(self.monitor)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after epochs, optionally only when `monitor` improves.

    Args:
        filepath: where to save; may hold `{epoch}` and log names (`"m-{epoch:02d}.keras"`).
            With `save_weights_only`, it must end in `.weights.h5`; otherwise in `.keras`.
        save_best_only: save only when `monitor` improves on the best value so far.
        save_freq: `"epoch"` or a number of batches.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _monitor_mode(mode, monitor)
        self.save_freq = save_freq
        self.best = initial_value_threshold
        if save_weights_only and not self.filepath.endswith(".weights.h5"):
            raise ValueError(
                f"ModelCheckpoint with save_weights_only=True needs a filepath ending in "
                f"'.weights.h5'; received {self.filepath!r}."
            )
        if not save_weights_only and not self.filepath.endswith((".keras", ".h5")):
            raise ValueError(
                f"ModelCheckpoint saving whole models needs a filepath ending in '.keras'; "
                f"received {self.filepath!r}. Use save_weights_only=True with '.weights.h5' "
                "to save weights only."
            )
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive int; received "
                             f"{save_freq!r}.")
        self._batches = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._batches += 1
            if self._batches % self.save_freq == 0:
                self._save(self._epoch, batch, dict(logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _save(self, epoch, batch, logs):
        path = self.filepath.format(epoch=epoch + 1, batch=batch, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                import warnings
                warnings.warn(f"ModelCheckpoint can save the best model only with "
                              f"{self.monitor!r} in the logs; skipping.", stacklevel=2)
                return
            better = self.best is None or (current < self.best if self.mode == "min"
                                           else current > self.best)
            if not better:
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best} to "
                      f"{current}, saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        method = "save_weights" if self.save_weights_only else "save"
        if not hasattr(self.model, method):
            raise RuntimeError(f"ModelCheckpoint needs model.{method}(), which this model "
                               "does not have.")
        getattr(self.model, method)(path)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` stops improving for `patience`
    epochs (then wait `cooldown` epochs), never below `min_lr`."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1; received {factor}.")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.mode = _monitor_mode(mode, monitor)
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.wait, self.cooldown_counter, self.best = 0, 0, None

    def on_train_begin(self, logs=None):
        self.wait, self.cooldown_counter, self.best = 0, 0, None

    def _better(self, current):
        if self.best is None:
            return True
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    opt.learning_rate = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to `schedule(epoch, lr)` (or
    `schedule(epoch)`)."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = float(opt.learning_rate)
        try:
            lr = self.schedule(epoch, lr)
        except TypeError:
            lr = self.schedule(epoch)
        if isinstance(lr, torch.Tensor):
            lr = lr.item()
        if not isinstance(lr, (float, int, np.floating, np.integer)):
            raise ValueError(f"The learning-rate schedule must return a number; it returned "
                             f"{lr!r}.")
        opt.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file: a header `epoch,<sorted keys>`, then a row per epoch."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys, self._file, self._writer = None, None, None

    def on_train_begin(self, logs=None):
        has_header = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._has_header = has_header
        self.keys, self._writer = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.keys is None:
            self.keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.sep)
            if not self._has_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({k: logs.get(k, "NA") for k in self.keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite.

    The failing update is not applied, so the model keeps the weights of the last good step.
    (This checks the loss every batch, which waits for the device once per step.)

    Args:
        raise_error: raise a RuntimeError instead of stopping quietly.
    """

    _check_finite = True

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss at batch {batch}: training stopped.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: `LambdaCallback(on_epoch_end=lambda epoch, logs: ...)`.

    Accepts `on_epoch_begin/end(epoch, logs)`, `on_train_begin/end(logs)`,
    `on_train_batch_begin/end(batch, logs)` (and `on_batch_begin/end`), and the test and
    predict hooks.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}.")
            if fn is not None:
                setattr(self, name, fn)
