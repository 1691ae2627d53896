"""TensorBoard (event files read back with TensorBoard's own reader), BackupAndRestore
(an interrupted fit resumed ends as an uninterrupted one), RemoteMonitor (against a local HTTP
server), SwapEMAWeights (against Keras) and duck-typed callback objects."""
import http.server
import json
import threading
import urllib.parse

import keras
import numpy as np
import pytest

import plexus
from tests.parity.training_helpers import assert_weights_close, data, mlp_pair

EventAccumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator").EventAccumulator


def _events(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_tensorboard_writes_what_tensorboard_reads(tmp_path):
    pm, _ = mlp_pair()
    x, y = data(n=16)
    pm.compile(optimizer=plexus.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    cb = plexus.callbacks.TensorBoard(tmp_path, histogram_freq=2, write_images=True,
                                      update_freq=3, write_steps_per_second=True)
    hist = pm.fit(x, y, batch_size=4, epochs=3, validation_data=(x[:8], y[:8]), verbose=0,
                  callbacks=[cb])
    train, val = _events(tmp_path / "train"), _events(tmp_path / "validation")
    tags = train.Tags()
    assert {"epoch_loss", "epoch_mae", "epoch_learning_rate", "epoch_steps_per_second",
            "batch_loss", "batch_mae", "batch_steps_per_second"} <= set(tags["scalars"])
    np.testing.assert_allclose([e.value for e in train.Scalars("epoch_loss")],
                               hist.history["loss"], rtol=1e-6)
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1, 2]
    assert [e.step for e in train.Scalars("batch_loss")] == [3, 6, 9, 12]  # every 3rd of 12
    assert [e.value for e in train.Scalars("epoch_learning_rate")] == pytest.approx([0.05] * 3)
    assert {"hidden/kernel/histogram", "out/bias/histogram"} <= set(tags["histograms"])
    assert [e.step for e in train.Histograms("hidden/kernel/histogram")] == [0, 2]
    assert "hidden/kernel/image" in tags["images"]
    assert tags["graph"] and "keras" in tags["tensors"]
    np.testing.assert_allclose([e.value for e in val.Scalars("epoch_loss")],
                               hist.history["val_loss"], rtol=1e-6)
    assert [e.step for e in val.Scalars("evaluation_loss_vs_iterations")] == [4, 8, 12]


def test_tensorboard_errors(monkeypatch):
    with pytest.raises(ValueError, match="profiling is not available"):
        plexus.callbacks.TensorBoard(profile_batch=2)
    with pytest.raises(ValueError, match="update_freq"):
        plexus.callbacks.TensorBoard(update_freq="sometimes")
    import builtins
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ImportError, match=r"plexus\[tensorboard\]"):
        plexus.callbacks.TensorBoard()


class _Interrupt(plexus.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated interruption")


@pytest.mark.parametrize("save_freq", ["epoch", 2])
def test_backup_and_restore_resumes_exactly(tmp_path, save_freq):
    x, y = data(n=12)
    reference, _ = mlp_pair()
    reference.compile(optimizer=plexus.optimizers.Adam(0.01), loss="mse")
    reference.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0)

    model, _ = mlp_pair()
    model.compile(optimizer=plexus.optimizers.Adam(0.01), loss="mse")
    backup = plexus.callbacks.BackupAndRestore(tmp_path / "backup", save_freq=save_freq)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0,
                  callbacks=[backup, _Interrupt(2, 1)])
    assert (tmp_path / "backup" / "latest.weights.h5").exists()
    fresh, _ = mlp_pair(seed=5)  # a new process: other weights, a fresh optimizer
    fresh.compile(optimizer=plexus.optimizers.Adam(0.01), loss="mse")
    history = fresh.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0,
                        callbacks=[plexus.callbacks.BackupAndRestore(tmp_path / "backup",
                                                                     save_freq=save_freq)])
    assert history.epoch == [2, 3]
    for a, b in zip(fresh.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(fresh.optimizer.variables, reference.optimizer.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert fresh.optimizer.iterations == reference.optimizer.iterations == 12
    assert not (tmp_path / "backup").exists()


def test_backup_falls_back_to_the_previous_copy(tmp_path):
    x, y = data(n=8)
    model, _ = mlp_pair()
    model.compile(optimizer="sgd", loss="mse")
    keep = plexus.callbacks.BackupAndRestore(tmp_path, double_checkpoint=True,
                                             delete_checkpoint=False)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[keep])
    assert (tmp_path / "latest.weights.h5.bkp").exists()
    (tmp_path / "latest.weights.h5").write_bytes(b"cut short")
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[keep])
    assert history.epoch == [1, 2]  # the previous copy was taken after the first epoch
    with pytest.raises(ValueError, match="save_freq"):
        plexus.callbacks.BackupAndRestore(tmp_path, save_freq="often")


class _Recorder(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802  (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_remote_monitor_posts_epoch_logs():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        pm, _ = mlp_pair()
        x, y = data(n=8)
        pm.compile(optimizer="sgd", loss="mse")
        pm.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[
            plexus.callbacks.RemoteMonitor(root=root, path="/form"),
            plexus.callbacks.RemoteMonitor(root=root, path="/json", send_as_json=True,
                                           headers={"X-Run": "7"})])
    finally:
        server.shutdown()
        server.server_close()
    form = [r for r in _Recorder.received if r[0] == "/form"]
    sent = [json.loads(urllib.parse.parse_qs(body)["data"][0]) for _, _, body in form]
    assert [s["epoch"] for s in sent] == [0, 1] and all("loss" in s for s in sent)
    as_json = [json.loads(body) for path, kind, body in _Recorder.received if path == "/json"]
    assert [s["epoch"] for s in as_json] == [0, 1]
    with pytest.warns(UserWarning, match="could not reach"):
        plexus.callbacks.RemoteMonitor(root="http://127.0.0.1:9", timeout=2).on_epoch_end(
            0, {"loss": 1.0})


@pytest.mark.parametrize("swap_on_epoch", [False, True])
def test_swap_ema_weights_matches_keras(swap_on_epoch):
    pm, km = mlp_pair()
    x, y = data()
    hist = {}
    for lib, m in (("plexus", pm), ("keras", km)):
        L = plexus if lib == "plexus" else keras
        m.compile(optimizer=L.optimizers.SGD(0.1, momentum=0.5, use_ema=True,
                                             ema_momentum=0.6), loss="mse")
        hist[lib] = m.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
                          validation_data=(x[:6], y[:6]),
                          callbacks=[L.callbacks.SwapEMAWeights(swap_on_epoch)]).history
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(hist["plexus"][key], hist["keras"][key], rtol=1e-5)
    assert_weights_close(pm, km)
    np.testing.assert_allclose(pm.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0),
                               rtol=1e-5)


def test_swap_ema_weights_needs_an_averaging_optimizer():
    pm, _ = mlp_pair()
    x, y = data(n=4)
    pm.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="use_ema=True"):
        pm.fit(x, y, verbose=0, validation_data=(x, y),
               callbacks=[plexus.callbacks.SwapEMAWeights()])


def test_duck_typed_callbacks():
    class Plain:
        def __init__(self):
            self.epochs, self.batches = [], 0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append((epoch, round(logs["loss"], 6)))

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1

    pm, _ = mlp_pair()
    x, y = data(n=8)
    pm.compile(optimizer="sgd", loss="mse")
    plain = Plain()
    hist = pm.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[plain])
    assert plain.epochs == [(e, round(v, 6)) for e, v in enumerate(hist.history["loss"])]
    assert plain.batches == 4 and plain.model is pm and plain.params["epochs"] == 2
    with pytest.raises(TypeError, match="on_epoch_end"):
        pm.fit(x, y, verbose=0, callbacks=[object()])


def test_auto_mode_follows_the_metric_direction():
    from plexus.training.watchers import _resolve_mode
    pm, _ = mlp_pair(out_units=3, out_activation="softmax")
    x, y = data(n=8, out_units=3)
    pm.compile(optimizer="sgd", loss="mse", metrics=[plexus.metrics.F1Score(), "mae",
                                                     plexus.metrics.R2Score(name="fit")])
    pm.fit(x, y, verbose=0)
    modes = {}
    for monitor in ("val_f1_score", "fit", "val_mae", "loss", "val_accuracy"):
        cb = plexus.callbacks.EarlyStopping(monitor=monitor)
        cb.set_model(pm)
        modes[monitor] = _resolve_mode(cb)
    assert modes == {"val_f1_score": "max", "fit": "max", "val_mae": "min", "loss": "min",
                     "val_accuracy": "max"}


def test_tensorboard_writes_embeddings_for_the_projector(tmp_path):
    i = plexus.Input(shape=(3,), dtype="int64")
    e = plexus.layers.Embedding(5, 2, name="words")(i)
    m = plexus.Model(i, plexus.layers.Dense(1)(plexus.layers.Flatten()(e)))
    m.compile(optimizer="sgd", loss="mse")
    labels = tmp_path / "labels.tsv"
    labels.write_text("\n".join("abcde"))
    m.fit(np.array([[0, 1, 2], [3, 4, 0]]), np.ones((2, 1)), verbose=0, callbacks=[
        plexus.callbacks.TensorBoard(tmp_path / "logs", write_graph=False, embeddings_freq=1,
                                     embeddings_metadata={"words": str(labels)})])
    config = (tmp_path / "logs" / "train" / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "words:00000"' in config
    tsv = next((tmp_path / "logs" / "train").glob("*/words/metadata.tsv"))
    assert tsv.read_text().split() == list("abcde")
