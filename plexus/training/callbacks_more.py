"""`RemoteMonitor` (post each epoch's logs to a server) and `SwapEMAWeights` (evaluate with
the optimizer's moving averages of the weights)."""
import json
import urllib.error
import urllib.parse
import urllib.request
import warnings

import numpy as np
import torch

from plexus.training.callbacks import Callback


class RemoteMonitor(Callback):
    """POST the logs of every epoch to `root + path`: as a form field `field` holding JSON
    (default), or as a JSON body with `send_as_json=True`. A server that cannot be reached
    gives a warning, not an error.

    Args:
        root: the server, e.g. `"http://localhost:9000"`.
        path: the path on it (`"/publish/epoch/end/"`).
        field: the form field holding the JSON (`"data"`).
        headers: extra HTTP headers (a dict).
        send_as_json: send `{"epoch": ..., <logs>}` as an `application/json` body.
        timeout: seconds to wait for the server (10).
    """

    def __init__(self, root="http://localhost:9000", path="/publish/epoch/end/", field="data",
                 headers=None, send_as_json=False, timeout=10.0):
        super().__init__()
        self.root, self.path, self.field = root, path, field
        self.headers, self.send_as_json, self.timeout = headers, send_as_json, timeout

    def on_epoch_end(self, epoch, logs=None):
        send = {"epoch": epoch}
        for k, v in (logs or {}).items():
            send[k] = v.item() if isinstance(v, (np.ndarray, np.generic)) and np.size(v) == 1 \
                else v.tolist() if isinstance(v, np.ndarray) else v
        if self.send_as_json:
            body, kind = json.dumps(send).encode(), "application/json"
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode()
            kind = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.root + self.path, data=body, method="POST",
                                         headers={"Content-Type": kind, **(self.headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                pass
        except (urllib.error.URLError, OSError) as e:
            warnings.warn(f"RemoteMonitor could not reach the server at {self.root} ({e}).",
                          stacklevel=2)


class SwapEMAWeights(Callback):
    """Put the optimizer's moving averages of the weights (`use_ema=True`) into the model
    for evaluation and prediction, and the trained weights back afterwards; with
    `swap_on_epoch`, also for `on_epoch_end` callbacks after it (such as `ModelCheckpoint`,
    placed after this callback, saving the averaged weights).

    Example:
        >>> model.compile(optimizer=plexus.optimizers.SGD(use_ema=True), loss="mse")
        >>> model.fit(x, y, validation_data=(vx, vy), callbacks=[SwapEMAWeights()])
    """

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._ema_weights_in_model = False

    def _optimizers(self):
        opt = self.model.optimizer
        opt = getattr(opt, "inner_optimizer", opt)
        parts = getattr(opt, "optimizers", None)
        found = [o for o in (parts if parts is not None else [opt])
                 if getattr(o, "use_ema", False)]
        if not found:
            raise ValueError("SwapEMAWeights needs an optimizer with use_ema=True (at least one "
                             "sub-optimizer of a MultiOptimizer); the model's optimizer keeps "
                             "no moving averages.")
        return [o for o in found if o.built]

    @torch.no_grad()
    def _swap(self):
        for opt in self._optimizers():
            weights, averages = opt._vars, list(opt._model_variables_moving_average)
            kept = [w.detach().clone() for w in weights]
            torch._foreach_copy_(weights, averages)
            torch._foreach_copy_(averages, kept)

    @torch.no_grad()
    def _keep_averages(self):
        """At the end of fit the averages are written into the weights; with the averages
        already in the model, keep them in the optimizer too so that they stay."""
        for opt in self._optimizers():
            torch._foreach_copy_(list(opt._model_variables_moving_average), opt._vars)

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch and self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = True
            if epoch == self.params.get("epochs", 0) - 1:
                self._keep_averages()

    def on_test_begin(self, logs=None):
        if not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = True

    def on_test_end(self, logs=None):
        if self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False

    on_predict_begin = on_test_begin
    on_predict_end = on_test_end
