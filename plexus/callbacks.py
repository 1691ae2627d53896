"""Callbacks: `plexus.callbacks.EarlyStopping(...)`, `ModelCheckpoint(...)`, ..."""
from plexus.training.callbacks import (  # noqa: F401
    Callback, CallbackList, CSVLogger, EarlyStopping, History, LambdaCallback,
    LearningRateScheduler, ModelCheckpoint, ProgbarLogger, ReduceLROnPlateau, TerminateOnNaN)
