"""Mixed precision: dtype policies and loss scaling.

    plexus.mixed_precision.set_global_policy("mixed_bfloat16")
    layer = plexus.layers.Dense(10)      # float32 weights, computes in bfloat16
    layer.compute_dtype, layer.variable_dtype   # ('bfloat16', 'float32')
"""
from plexus.mixed_precision.policy import (  # noqa: F401
    DTypePolicy, FloatDTypePolicy, Policy, dtype_policy, global_policy, set_dtype_policy,
    set_global_policy)
from plexus.optimizers.loss_scale_optimizer import LossScaleOptimizer  # noqa: F401
