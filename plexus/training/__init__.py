"""Training: compile/fit/evaluate/predict loops, losses, metrics, optimizers, callbacks.

The public faces are `plexus.losses`, `plexus.metrics`, `plexus.optimizers` (with
`plexus.optimizers.schedules`) and `plexus.callbacks`; the loops run through `Model.fit` & co.
"""
