"""`BackupAndRestore`: resume an interrupted `fit` where its last backup left off."""
import json
import os
import shutil

from plexus.distribution import runtime as distributed
from plexus.training.callbacks import Callback


class BackupAndRestore(Callback):
    """Back up the model's weights, its optimizer's state and the epoch reached into
    `backup_dir` after every epoch (or every `save_freq` batches); when `fit` starts again with
    the same callback after an interruption, it restores them and continues from the first
    epoch not finished. The backup is deleted when `fit` ends normally.

    A restarted run continues after the last batch backed up (with `save_freq="epoch"`, at the
    start of the epoch that was interrupted); with the same data order (no shuffling, or
    seeded shuffling) it ends with the weights and optimizer state an uninterrupted run would
    have. (Keras restarts the interrupted epoch from its first batch even after a backup in
    the middle of it; the files are the same, with a `batches_done` entry Keras ignores.)

    Args:
        backup_dir: the folder for the backup (`latest.weights.h5` and
            `training_metadata.json`).
        save_freq: `"epoch"`, or a number of batches between backups.
        double_checkpoint: keep the previous backup too (`*.bkp`), and fall back to it when
            the latest one cannot be read (e.g. the interruption came while writing it).
        delete_checkpoint: delete the backup when training ends.

    Example:
        >>> cb = plexus.callbacks.BackupAndRestore(backup_dir="/tmp/backup")
        >>> model.fit(x, y, epochs=10, callbacks=[cb])  # interrupted? run it again
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: backup_dir is empty; give the folder to keep "
                             "the backup in.")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or a positive number "
                             f"of batches; received {save_freq!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq, self.double_checkpoint = save_freq, double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self._metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._current_epoch = 0
        self._batches_since_save = 0
        self._last_batch = self._batches_done = 0

    def on_train_begin(self, logs=None):
        try:
            self._restore()
        except (OSError, ValueError):  # (a backup cut short by the interruption, perhaps)
            previous = self._weights_path + ".bkp"
            if not os.path.exists(previous):
                raise
            shutil.copyfile(previous, self._weights_path)
            if os.path.exists(self._metadata_path + ".bkp"):
                shutil.copyfile(self._metadata_path + ".bkp", self._metadata_path)
            elif os.path.exists(self._metadata_path):
                os.remove(self._metadata_path)
            self._restore()

    def _restore(self):
        if not self.model.built:
            raise ValueError(
                "BackupAndRestore needs a built model: build it (call it on a batch, or give "
                "its input shape) before fit().")
        if os.path.exists(self._weights_path):
            self.model.load_weights(self._weights_path)
        if os.path.exists(self._metadata_path):
            with open(self._metadata_path) as f:
                metadata = json.load(f)
            epoch = metadata.get("epoch") if isinstance(metadata, dict) else None
            if not isinstance(epoch, int) or epoch < 0:
                raise ValueError(f"BackupAndRestore: {self._metadata_path} does not hold an "
                                 f"epoch number; received {metadata!r}.")
            done = metadata.get("batches_done", 0)
            self.model._initial_epoch = epoch
            done = done if isinstance(done, int) and done > 0 else 0
            self.model._initial_step = done
            self._current_epoch, self._batches_done, self._last_batch = epoch, done, done - 1

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch, self._batches_done = 0, 0
        if self.save_freq == "epoch":
            self._save()

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += batch + 1 if batch <= self._last_batch \
            else batch - self._last_batch
        self._last_batch, self._batches_done = batch, batch + 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save()

    def _save(self):
        chief = distributed.is_chief()  # (in a distributed run, rank 0 writes the files)
        if chief:
            os.makedirs(self.backup_dir, exist_ok=True)
            if self.double_checkpoint:
                for path in (self._weights_path, self._metadata_path):
                    if os.path.exists(path):
                        shutil.copyfile(path, path + ".bkp")
        self.model.save_weights(self._weights_path, overwrite=True)
        if chief:
            tmp = self._metadata_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"epoch": self._current_epoch, "batch": self._last_batch,
                           "batches_done": self._batches_done}, f)
            os.replace(tmp, self._metadata_path)
        distributed.barrier("waiting for rank 0 to write the backup")

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir) and \
                distributed.is_chief():
            shutil.rmtree(self.backup_dir)
        distributed.barrier("waiting for rank 0 to delete the backup")
