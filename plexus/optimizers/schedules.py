"""Learning-rate schedules: `plexus.optimizers.schedules.ExponentialDecay(...)`, ..."""
from plexus.training.schedules import (  # noqa: F401
    CosineDecay, CosineDecayRestarts, ExponentialDecay, InverseTimeDecay, LearningRateSchedule,
    PiecewiseConstantDecay, PolynomialDecay, deserialize, serialize)
