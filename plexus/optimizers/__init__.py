"""Optimizers: `plexus.optimizers.Adam(learning_rate=1e-3)`, ... and `schedules`."""
from plexus.optimizers import legacy, schedules  # noqa: F401
from plexus.training.optimizers import (  # noqa: F401
    SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Nadam, Optimizer, RMSprop, deserialize, get,
    serialize)
from plexus.training.optimizers_more import (  # noqa: F401
    Adafactor, Ftrl, Lamb, Lion, Muon, ScheduleFreeAdamW)
from plexus.optimizers.loss_scale_optimizer import LossScaleOptimizer  # noqa: F401
from plexus.optimizers.multi_optimizer import MultiOptimizer, OptimizerMap  # noqa: F401
