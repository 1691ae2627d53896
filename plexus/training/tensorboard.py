"""`TensorBoard`: training curves, weight histograms and the model's graph as event files
TensorBoard reads, written with `torch.utils.tensorboard` (install `plexus[tensorboard]`)."""
import json
import os
import time
import warnings

import numpy as np
import torch

from plexus.training.callbacks import Callback


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch's writer needs the `tensorboard` package
        raise ImportError(
            "The TensorBoard callback writes event files with torch.utils.tensorboard, which "
            "needs the `tensorboard` package: pip install 'plexus[tensorboard]' (or pip install "
            "tensorboard).") from e
    return SummaryWriter


class TensorBoard(Callback):
    """Write logs for TensorBoard (`tensorboard --logdir logs`), in Keras's layout:
    `log_dir/train` and `log_dir/validation` hold `epoch_<metric>` curves (with
    `epoch_learning_rate`), `batch_<metric>` curves every `update_freq` batches, and
    `evaluation_<metric>_vs_iterations` after each validation.

    Args:
        log_dir: where to write the event files.
        histogram_freq: every how many epochs to write a histogram of each weight (0: never).
        write_graph: write the model's graph (its Keras config, and the traced torch graph).
        write_images: also write each weight (up to 3-D) as an image with the histograms.
        write_steps_per_second: write the training speed (`epoch_steps_per_second`, and
            `batch_steps_per_second` with batch-level logging).
        update_freq: `"epoch"`, `"batch"` (every batch) or a number of batches.
        profile_batch: must be 0; profiling is not available (as in Keras on torch).
        embeddings_freq: every how many epochs to write `Embedding` layers' weights for the
            projector (0: never).
        embeddings_metadata: a file with one label per line for the embeddings, or a dict of
            such files by layer name.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        if profile_batch:
            raise ValueError("TensorBoard: profiling is not available with plexus (as with "
                             f"Keras's torch backend); received profile_batch={profile_batch!r} "
                             "(must be 0). Use torch.profiler directly.")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool)
                                       or not isinstance(update_freq, int) or update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"number of batches; received {update_freq!r}.")
        _summary_writer()  # fail now, not after the first epoch, if tensorboard is missing
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq, self.write_graph = histogram_freq, write_graph
        self.write_images, self.write_steps_per_second = write_images, write_steps_per_second
        self.update_freq = update_freq
        self.embeddings_freq, self.embeddings_metadata = embeddings_freq, embeddings_metadata
        self._writers = {}
        self._global_train_batch = 0
        self._graph_written = False

    # ------------------------------------------------------------------ writers
    def _writer(self, kind):
        if kind not in self._writers:
            folder = os.path.join(self.log_dir, "train" if kind == "train" else "validation")
            self._writers[kind] = _summary_writer()(log_dir=folder)
        return self._writers[kind]

    def _close(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _scalars(self, kind, prefix, logs, step):
        writer = self._writer(kind)
        for name, value in logs.items():
            value = np.asarray(value)
            if value.size == 1 and np.issubdtype(value.dtype, np.number):
                writer.add_scalar(f"{prefix}{name}", float(value), step)

    # ------------------------------------------------------------------ hooks
    def set_model(self, model):
        super().set_model(model)
        self._close()
        self._graph_written = False

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        if self.write_graph and not self._graph_written:
            self._write_graph()
            self._graph_written = True

    def on_train_end(self, logs=None):
        self._close()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()
        self._epoch_start_updates = self._updates()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        self._batch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        step = self._global_train_batch
        self._scalars("train", "batch_", dict(logs or {}), step)
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._batch_start, 1e-9)
            self._writer("train").add_scalar("batch_steps_per_second", 1.0 / elapsed, step)

    def on_test_end(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if logs and optimizer is not None and hasattr(optimizer, "iterations"):
            self._scalars("validation", "evaluation_",
                          {f"{k}_vs_iterations": v for k, v in logs.items()},
                          int(optimizer.iterations))
            self._writer("validation").flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        train.update(self._learning_rates())
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._epoch_start, 1e-9)
            train["steps_per_second"] = (self._updates() - self._epoch_start_updates) / elapsed
        self._scalars("train", "epoch_", train, epoch)
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if val:
            self._scalars("validation", "epoch_", val, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0:
            self._embeddings(epoch)
        for writer in self._writers.values():
            writer.flush()

    # ------------------------------------------------------------------ contents
    def _updates(self):
        optimizer = getattr(self.model, "optimizer", None)
        return int(getattr(optimizer, "iterations", 0) or 0)

    def _learning_rates(self):
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if optimizer is None:
            return {}
        if getattr(optimizer, "optimizers", None):
            return {f"learning_rate_{o.name}": float(o.learning_rate)
                    for o in optimizer.optimizers}
        return {"learning_rate": float(optimizer.learning_rate)}

    def _weights(self, epoch):
        writer = self._writer("train")
        for layer, w in self.model._weight_entries():
            value = w.to_keras(getattr(layer, w.attr).detach()).float().cpu()
            tag = f"{layer.name}/{w.name}"
            writer.add_histogram(f"{tag}/histogram", value, epoch)
            if self.write_images:
                image = _as_image(value)
                if image is not None:
                    writer.add_images(f"{tag}/image", image, epoch, dataformats="NHWC")

    def _embeddings(self, epoch):
        from plexus.layers import Embedding
        writer = self._writer("train")
        metadata = self.embeddings_metadata
        for layer in self.model.layers:
            if not isinstance(layer, Embedding):
                continue
            path = metadata.get(layer.name) if isinstance(metadata, dict) else metadata
            labels = None
            if path is not None:
                with open(path) as f:
                    labels = [line.rstrip("\n") for line in f]
            writer.add_embedding(layer.get_weights()[0], metadata=labels, tag=layer.name,
                                 global_step=epoch)

    def _write_graph(self):
        """The model's Keras config (TensorBoard's conceptual graph of a Keras model) and, for
        a model with fixed input shapes, the torch graph traced on zeros."""
        writer = self._writer("train")
        model = self.model
        try:
            _write_keras_config(writer, json.dumps({"class_name": "Functional",
                                                    "config": model.get_config()}))
        except (TypeError, ValueError, NotImplementedError) as e:
            warnings.warn(f"TensorBoard: the model's config could not be written ({e}).",
                          stacklevel=3)
        inputs = getattr(model, "inputs", None)
        if not inputs or any(d is None for t in inputs for d in t.shape[1:]):
            return
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        example = [torch.zeros((1,) + tuple(t.shape[1:]), device=device,
                               dtype=getattr(torch, str(t.dtype), torch.float32))
                   for t in inputs]
        was_training = model.training
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (the tracer's notes on Python branches)
                writer.add_graph(model.eval(), example if len(example) > 1 else example[0])
        except Exception as e:  # noqa: BLE001  (tracing is best effort, as in Keras)
            warnings.warn(f"TensorBoard: the model could not be traced for its graph ({e}); "
                          "the other logs are written.", stacklevel=3)
        finally:
            model.train(was_training)


def _as_image(value):
    """A weight as a batch of one-channel images (NHWC), or None beyond 3-D."""
    value = value.squeeze()
    if value.dim() == 1:
        return value.reshape(1, 1, -1, 1)
    if value.dim() == 2:
        if value.shape[0] > value.shape[1]:
            value = value.T
        return value.reshape(1, value.shape[0], value.shape[1], 1)
    if value.dim() == 3:
        return value.permute(2, 0, 1).unsqueeze(-1)
    return None


def _write_keras_config(writer, config_json):
    """A `keras` summary for TensorBoard's graph plugin: the model config as JSON."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="graph_keras_model", content=b"1"))
    tensor = TensorProto(dtype=7, string_val=[config_json.encode()],  # 7: DT_STRING
                         tensor_shape=TensorShapeProto())
    summary = Summary(value=[Summary.Value(tag="keras", metadata=metadata, tensor=tensor)])
    writer._get_file_writer().add_summary(summary, 0)
