"""Callbacks: `plexus.callbacks.EarlyStopping(...)`, `ModelCheckpoint(...)`, ..."""
from plexus.training.callbacks import (  # noqa: F401
    Callback, CallbackList, CSVLogger, History, LambdaCallback, ProgbarLogger, TerminateOnNaN)
from plexus.training.watchers import (  # noqa: F401
    EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau)
