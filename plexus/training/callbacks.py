"""Callbacks: objects whose hooks `fit`, `evaluate` and `predict` call as they run.

Batch-level logs are lazy: reading them (`logs["loss"]`) waits for the device to report the
running metrics, so callbacks that ignore batch logs cost nothing per step.
"""
import csv
import os
from collections.abc import MutableMapping

import numpy as np

from plexus.training.progbar import Progbar, print_msg

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
        self.callbacks = [cb if isinstance(cb, Callback) else _Adapter(cb)
                          for cb in (callbacks or [])]
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

    def stops_in_batches(self):
        """Whether a callback other than the built-in ones may set `stop_training` between
        batches (then the processes of a distributed run compare it after every batch)."""
        return any(type(cb) not in (ProgbarLogger, History) for cb in
                   self._batch["on_train_batch_end"])

    # As in Keras, hooks always receive a logs dict: `{}` where there is nothing to report.
    def _call(self, hook, *args):
        *head, logs = args
        for cb in self.callbacks:
            getattr(cb, hook)(*head, {} if logs is None else logs)

    def _call_batch(self, hook, batch, logs):
        for cb in self._batch[hook]:
            getattr(cb, hook)(batch, {} if logs is None else logs)

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


_ALL_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
              "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end") + _HOOKS


class _Adapter(Callback):
    """Any object with some of the callback hooks (`on_epoch_end(epoch, logs)`, ...), used as
    a callback: its hooks are called, the others do nothing; it gets `model` and `params`
    through its own `set_model`/`set_params` if it has them, else as attributes."""

    def __init__(self, obj):
        super().__init__()
        hooks = [h for h in _ALL_HOOKS if callable(getattr(obj, h, None))]
        if not hooks:
            raise TypeError(
                f"callbacks must be plexus.callbacks.Callback objects or objects with callback "
                f"methods such as on_epoch_end(epoch, logs); received {obj!r}, which has none. "
                "Subclass plexus.callbacks.Callback, or use "
                "plexus.callbacks.LambdaCallback(on_epoch_end=...).")
        self.wrapped = obj
        for hook in hooks:
            setattr(self, hook, getattr(obj, hook))

    def set_model(self, model):
        super().set_model(model)
        _hand_over(self.wrapped, "set_model", "model", model)

    def set_params(self, params):
        super().set_params(params)
        _hand_over(self.wrapped, "set_params", "params", params)


def _hand_over(obj, method, attr, value):
    if callable(getattr(obj, method, None)):
        getattr(obj, method)(value)
    else:
        try:
            setattr(obj, attr, value)
        except AttributeError:
            pass  # (an object with slots or a read-only property keeps its own)


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
            print_msg(f"Epoch {epoch + 1}/{self.params.get('epochs')}")
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
