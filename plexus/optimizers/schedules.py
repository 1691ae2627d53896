"""Learning-rate schedules: `plexus.optimizers.schedules.ExponentialDecay(...)`, ..."""
from plexus.training.schedules import (  # noqa: F401
    CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule,
    PiecewiseConstantDecay, deserialize, serialize)
