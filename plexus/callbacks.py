"""Callbacks: `plexus.callbacks.EarlyStopping(...)`, `ModelCheckpoint(...)`, `TensorBoard(...)`, ...

Besides `Callback` subclasses, `fit` takes any object with some of the callback methods
(`on_epoch_end(epoch, logs)`, ...): its methods are called and the others skipped.
"""
from plexus.training.backup import BackupAndRestore  # noqa: F401
from plexus.training.callbacks import (  # noqa: F401
    Callback, CallbackList, CSVLogger, History, LambdaCallback, ProgbarLogger, TerminateOnNaN)
from plexus.training.callbacks_more import RemoteMonitor, SwapEMAWeights  # noqa: F401
from plexus.training.tensorboard import TensorBoard  # noqa: F401
from plexus.training.watchers import (  # noqa: F401
    EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau)
